#!/bin/sh
# Builds burrow-test-busybox-git:latest (see Dockerfile) from the host's git,
# unless an image built from the same inputs exists. Needs the busybox test
# image (tests/support/services.sh docker) and git on the host.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
image=${1:-burrow-test-busybox-git:latest}
base=burrow-test-busybox:latest
git=$(command -v git) || { echo "build.sh: no git on this machine" >&2; exit 1; }
libs=$(ldd "$git" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }')
base_id=$(docker image inspect -f '{{.Id}}' "$base")
inputs=$( { cat "$here/Dockerfile" "$git"; for l in $libs; do cat "$l"; done; echo "$base_id"; } | sha256sum | cut -c1-64)
have=$(docker image inspect -f '{{ index .Config.Labels "burrow.image-inputs" }}' "$image" 2>/dev/null || true)
[ "$have" = "$inputs" ] && exit 0
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin"
cp "$here/Dockerfile" "$ctx/"
cp "$git" "$ctx/rootfs/bin/git"
for l in $libs; do
  mkdir -p "$ctx/rootfs$(dirname "$l")"
  cp -L "$l" "$ctx/rootfs$l"
done
if ! DOCKER_BUILDKIT=0 docker build --label "burrow.image-inputs=$inputs" -t "$image" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  exit 1
fi

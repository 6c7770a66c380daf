#!/usr/bin/env bash
# The search benchmark with Burrow's docker, ssh and s3 environments beside the
# local one, the ripgrep columns and the reference, in one run (see
# benches/README.md, "Environments").
#
#   bash benches/envs.sh [ARGS...]     ARGS go to the bench binary; the markdown
#                                      report goes to stdout, progress to stderr
#
# It uses the services of tests/support/services.sh: the file named by
# BURROW_TEST_SERVICES_ENV (default target/test-services.env) when it exists,
# else it starts them. Then it prepares each environment on this machine:
#
# - docker: a container from the offline test image (burrow-test-busybox) with
#   the corpus bind-mounted at /workspace and networking off; the search helper
#   is the static build (BURROW_HELPER_BIN, built here when missing).
# - ssh: the loopback sshd and its unprivileged user. When that user cannot
#   read the corpus (it lives under /root), the corpus is bind-mounted
#   read-only at BURROW_BENCH_SSH_DIR (default /srv/burrow-bench/NAME) for
#   the run; nothing under /root changes mode.
# - s3: the bench uploads a sample of the corpus under
#   s3://BUCKET/burrow-bench/NAME-sample through the S3 API, counts downloads
#   in the S3 server's log and reads the S3 server's CPU time from its pid.
#
# BURROW_BENCH_WITH="docker ssh s3" picks environments (default: all three).
# Every other knob of the bench (BURROW_BENCH_*, OPENCODE_BIN) passes through.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WITH=" ${BURROW_BENCH_WITH:-docker ssh s3} "

die() {
  echo "envs.sh: error: $*" >&2
  exit 1
}
note() { echo "envs.sh: $*" >&2; }
# quote WORD: single-quoted for the bench's shell-style argument split.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

services_env=${BURROW_TEST_SERVICES_ENV:-$ROOT/target/test-services.env}
if [[ ! -f $services_env ]]; then
  note "starting the test services (tests/support/services.sh start docker ssh s3) ..."
  bash "$ROOT/tests/support/services.sh" start docker ssh s3
  services_env=$ROOT/target/test-services.env
fi
# shellcheck disable=SC1090
source "$services_env"

note "preparing the corpus ..."
corpus=$(cargo bench --bench search -- --prepare-corpus | tail -n 1)
[[ -d $corpus ]] || die "the bench printed no corpus folder (got: $corpus)"
name=$(basename "$corpus")

helper=${BURROW_HELPER_BIN:-$ROOT/target/$(uname -m)-unknown-linux-gnu/helper/burrow-helper}
if [[ $WITH == *" docker "* || $WITH == *" ssh "* ]] && [[ ! -x $helper ]]; then
  note "building the static helper ($helper) ..."
  helper=$(bash "$ROOT/tests/build-helper.sh" "$(uname -m)" | tail -n1)
fi
export BURROW_HELPER_BIN=$helper

cleanup=()
on_exit() {
  local c
  for c in "${cleanup[@]}"; do eval "$c" || true; done
}
trap on_exit EXIT

envs=()
if [[ $WITH == *" docker "* ]]; then
  image=${BURROW_TEST_DOCKER_IMAGE:-burrow-test-busybox:latest}
  container="burrow-bench-$$"
  # Burrow removes its container when it stops; this catches a killed one.
  cleanup+=("docker rm -f $container >/dev/null 2>&1")
  envs+=("docker=--env docker --image $(quote "$image") --mount $(quote "$corpus") --network none --name $container")
fi

if [[ $WITH == *" ssh "* ]]; then
  user=${BURROW_TEST_SSH_USER:?no ssh service in $services_env}
  remote_dir=$corpus
  if ! runuser -u "$user" -- test -r "$corpus/Makefile"; then
    remote_dir=${BURROW_BENCH_SSH_DIR:-/srv/burrow-bench/$name}
    if ! mountpoint -q "$remote_dir"; then
      mkdir -p "$remote_dir"
      mount --bind "$corpus" "$remote_dir"
      cleanup+=("umount $(quote "$remote_dir")")
      mount -o remount,bind,ro "$remote_dir"
    fi
    runuser -u "$user" -- test -r "$remote_dir/Makefile" || die "$user cannot read $remote_dir"
  fi
  host="$user@$BURROW_TEST_SSH_HOST:$BURROW_TEST_SSH_PORT"
  login="--identity $(quote "$BURROW_TEST_SSH_KEY")"
  # Another checkout's services.sh run rewrites the shared user's
  # authorized_keys: fall back on its password (Burrow reads BURROW_SSH_PASSWORD).
  if ! ssh -i "$BURROW_TEST_SSH_KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile="$BURROW_TEST_SSH_KNOWN_HOSTS" \
    -p "$BURROW_TEST_SSH_PORT" "$user@$BURROW_TEST_SSH_HOST" true 2>/dev/null; then
    [[ -n ${BURROW_TEST_SSH_PASSWORD:-} ]] || die "the ssh service refuses $BURROW_TEST_SSH_KEY and has no password"
    note "the ssh service refuses $BURROW_TEST_SSH_KEY; logging in with the test password"
    export BURROW_SSH_PASSWORD=$BURROW_TEST_SSH_PASSWORD
    login=""
  fi
  envs+=("ssh=--env ssh --host $host --dir $(quote "$remote_dir") $login --known-hosts $(quote "$BURROW_TEST_SSH_KNOWN_HOSTS")")
fi

if [[ $WITH == *" s3 "* ]]; then
  export BURROW_BENCH_S3="s3://${BURROW_TEST_S3_BUCKET:?no s3 service in $services_env}/burrow-bench/$name-sample"
  export BURROW_BENCH_S3_LOG=${BURROW_TEST_S3_LOG:-}
  BURROW_BENCH_S3_PID=$(cat "${BURROW_TEST_S3_PIDFILE:-/nonexistent}" 2>/dev/null || true)
  export BURROW_BENCH_S3_PID
fi

BURROW_BENCH_ENVS="$(IFS=';'; echo "${envs[*]}")${BURROW_BENCH_ENVS:+;$BURROW_BENCH_ENVS}"
export BURROW_BENCH_ENVS
note "BURROW_BENCH_ENVS=$BURROW_BENCH_ENVS"
cargo bench --bench search -- "$@"

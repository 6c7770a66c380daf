#!/bin/sh
# Runs the SDK contract (contract.mjs) with the real @opencode-ai/sdk (1.18.33
# and 1.19.3) against a Burrow started on a free port over a scratch
# workspace. Exits non-zero on any failure. The binary: the first argument, else BURROW_BIN, else
# target/debug/burrow (built if missing).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-${BURROW_BIN:-$repo/target/debug/burrow}}
if [ ! -x "$bin" ]; then
    (cd "$repo" && cargo build --bin burrow)
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

# The official Python client, in a virtual environment under target/.
venv="$repo/target/sdk-python"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "opencode-ai==0.1.0a36"

work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$work/root" "$work/data" "$work/home"
: > "$work/stdout"
echo "hello sdk world" > "$work/root/hello.txt"
root=$(cd "$work/root" && pwd -P)
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash

HOME="$work/home" SHELL="$shell" BURROW_DATA_DIR="$work/data" \
    "$bin" serve --port 0 --dir "$root" --allow-workspaces --workspace-root "$root" > "$work/stdout" 2> "$work/stderr" &
pid=$!

# The first line of stdout names the URL.
url=
tries=0
while [ -z "$url" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "burrow exited before listening:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    url=$(sed -n 's/^burrow server listening on \(http:[^ ]*\)$/\1/p' "$work/stdout" | head -n 1)
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ]; then
        echo "burrow did not print its URL" >&2
        exit 1
    fi
    [ -n "$url" ] || sleep 0.1
done

# The pinned SDK (the protocol's version) and the newest release, each with
# its v1 and v2 clients and the /api group.
for sdk in @opencode-ai/sdk sdk-1.19.3; do
    BURROW_SDK="$sdk" BURROW_URL="$url" BURROW_ROOT="$root" node "$here/contract.mjs"
done
BURROW_URL="$url" BURROW_ROOT="$root" "$venv/bin/python" "$here/contract.py"
BURROW_URL="$url" BURROW_ROOT="$root" node "$here/workspace.mjs"

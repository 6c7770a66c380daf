#!/bin/sh
# Installs the real OpenCode TUI for tests/tui_attach.rs (opencode-ai, pinned to
# 1.18.33 in package.json; it pins its platform binaries) and prints the path of
# its binary, which the test reads from BURROW_OPENCODE_BIN.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
(cd "$here" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2)
for bin in "$here"/node_modules/opencode-linux-*/bin/opencode; do
    if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
        echo "$bin"
        exit 0
    fi
done
echo "install.sh: no runnable opencode binary under $here/node_modules" >&2
exit 1

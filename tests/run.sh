#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine:
#   1. installs and starts the real services the tests use (Docker engine,
#      sshd on loopback, an S3-compatible server), see tests/support/services.sh;
#   2. builds the static helper that Burrow uploads into containers and onto
#      SSH hosts (crates/burrow-helper, by tests/build-helper.sh), for x86_64
#      and for aarch64 (installing the Rust target, the cross linker and
#      qemu-user-static, which runs the aarch64 build here in its test);
#   3. installs the real OpenCode TUI (tests/tui/install.sh) for the test that
#      drives `opencode attach` in a pseudo-terminal;
#   4. checks formatting (cargo fmt --check) and lints (cargo clippy -D warnings);
#   5. runs every Rust test of the workspace, all crates (unit, integration, the
#      conformance suite over every environment) and the contract tests with the
#      real @opencode-ai/sdk (1.18.33 and 1.19.3) and the PyPI opencode-ai client;
#   6. fuzzes the server against its own OpenAPI document with schemathesis.
#
# BURROW_TEST_ENVS (comma list) picks the environments of the conformance suite
# (tests/conformance) and of the Env contract suite (tests/env_contract, which
# also runs over `helper`, the helper session in process); default: all five.
# In CI (CI=true) a test whose service is missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export BURROW_TEST_ENVS="${BURROW_TEST_ENVS:-local,helper,docker,ssh,s3}"
services=()
for env in ${BURROW_TEST_ENVS//,/ }; do
  case "$env" in
    docker | ssh | s3) services+=("$env") ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

command -v rg >/dev/null || { step "installing ripgrep"; apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
command -v git >/dev/null || { step "installing git"; apt-get update -qq && apt-get install -y -qq git >/dev/null; }
command -v npm >/dev/null || { step "installing node and npm (the SDK contract, the OpenCode TUI)"; apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }

if ((${#services[@]})); then
  step "starting services: ${services[*]}"
  bash tests/support/services.sh start "${services[@]}"
  # shellcheck disable=SC1091
  source target/test-services.env
fi

rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || {
  step "installing the Rust target aarch64-unknown-linux-gnu (the aarch64 helper)"
  rustup target add aarch64-unknown-linux-gnu
}
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
  step "installing the aarch64 cross linker and qemu-user-static"
  apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static >/dev/null
fi

step "building the static helpers (crates/burrow-helper) for x86_64 and aarch64"
# The server picks the build of each environment's architecture (`uname -m`
# there): BURROW_HELPER_BIN is the native one, BURROW_HELPER_BIN_AARCH64 the
# other; crates/burrow-helper/tests/cross_arch.rs runs the latter under qemu.
BURROW_HELPER_BIN=$(bash tests/build-helper.sh x86_64 | tail -n1)
BURROW_HELPER_BIN_AARCH64=$(bash tests/build-helper.sh aarch64 | tail -n1)
export BURROW_HELPER_BIN BURROW_HELPER_BIN_AARCH64

step "installing the OpenCode TUI (opencode-ai 1.18.33) for tests/tui_attach.rs"
BURROW_OPENCODE_BIN=$(sh tests/tui/install.sh)
export BURROW_OPENCODE_BIN

step "cargo fmt --check and cargo clippy -D warnings"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "contract tests: @opencode-ai/sdk 1.18.33 and 1.19.3 (v1, v2, client.v2) and the PyPI opencode-ai client"
cargo build --quiet --locked
bash tests/sdk/run.sh "$PWD/target/debug/burrow"

step "schemathesis against /doc (tests/openapi/run.sh)"
bash tests/openapi/run.sh "$PWD/target/debug/burrow"

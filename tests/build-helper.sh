#!/usr/bin/env bash
# Builds the static search helper (crate burrow-helper) that Burrow uploads into
# containers and onto SSH hosts, and prints its path on the last line:
#
#   BURROW_HELPER_BIN=$(bash tests/build-helper.sh x86_64 | tail -n1)
#
# ARCH is x86_64 or aarch64 (default: this machine's). The binary is linked
# statically (glibc, +crt-static) and stripped, so it runs on any Linux of that
# architecture; the build fails if it is larger than MAX_HELPER_BYTES (8 MiB),
# since every new environment receives a copy.
#
# aarch64 needs the Rust target (`rustup target add aarch64-unknown-linux-gnu`)
# and a cross linker (Debian: gcc-aarch64-linux-gnu); qemu-user-static runs the
# result here (crates/burrow-helper/tests/cross_arch.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${1:-$(uname -m)}"
max_bytes="${MAX_HELPER_BYTES:-$((8 * 1024 * 1024))}"

case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *)
    echo "build-helper.sh: unknown architecture $arch (expected x86_64 or aarch64)" >&2
    exit 2
    ;;
esac
target="$arch-unknown-linux-gnu"

if [[ "$arch" != "$(uname -m)" ]]; then
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build-helper.sh: the Rust standard library for $target is not installed; run: rustup target add $target" >&2
    exit 1
  fi
  linker="$arch-linux-gnu-gcc"
  if ! command -v "$linker" >/dev/null; then
    echo "build-helper.sh: no cross linker $linker (Debian: apt-get install gcc-$arch-linux-gnu)" >&2
    exit 1
  fi
  upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
  export "CARGO_TARGET_${upper}_LINKER=$linker"
fi

# Only the helper's own target gets +crt-static; build scripts and proc macros
# stay dynamic (RUSTFLAGS applies to the target only when --target is given).
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --profile helper \
  --target "$target" -p burrow-helper >&2

bin="$PWD/target/$target/helper/burrow-helper"
size=$(stat -c %s "$bin")
if ((size > max_bytes)); then
  echo "build-helper.sh: $bin is $size bytes, more than the $max_bytes allowed" >&2
  exit 1
fi
if file "$bin" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "build-helper.sh: $bin is not statically linked" >&2
  exit 1
fi
echo "build-helper.sh: $target helper, $size bytes" >&2
echo "$bin"

#!/usr/bin/env bash
# Builds the stripped aarch64 release binary, fails if it exceeds the panel's 4 MiB flash budget,
# and runs it under qemu to prove it executes. The static musl build is the one that ships
# (board/aarch64-panel.toml); the linker and its flags are set in .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly LIMIT=4194304
target_dir=${CARGO_TARGET_DIR:-target}

# check TRIPLE QEMU_ARGS...: build, strip, print the size, run --version under qemu.
# Returns non-zero (with a message) on a build failure, a binary over budget or one that does not run.
check() {
  local triple=$1; shift
  local bin=$target_dir/$triple/release/panelcam size out
  cargo build --release --quiet --target "$triple" || return 1
  aarch64-linux-gnu-strip "$bin" || return 1  # the release profile strips already; make sure
  size=$(stat -c %s "$bin")
  echo "size-check: $triple: $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB; limit 4 MiB)"
  out=$(qemu-aarch64-static "$@" "$bin" --version) || { echo "size-check: $triple: does not run under qemu" >&2; return 1; }
  echo "size-check: $triple: runs: $out"
  [ "$size" -le $LIMIT ] || { echo "size-check: $triple: $size bytes is over the $LIMIT-byte budget" >&2; return 1; }
}

check aarch64-unknown-linux-musl || { echo "size-check: FAILED (aarch64-unknown-linux-musl)" >&2; exit 1; }

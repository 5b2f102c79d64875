#!/usr/bin/env bash
# The project's test command (README, CI): deps, services, fmt, clippy, tests, size budget, boot.
# Every check runs even when an earlier one failed, so one run reports all problems; the exit
# status is non-zero if any step failed. Setup steps (deps, services) stop the run at once.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=()
# step NAME CMD...: runs CMD and prints one summary line with its duration.
step() {
  local name=$1 start=$SECONDS rc=0; shift
  echo "==> $name: $*"
  "$@" || rc=$?
  if [ $rc = 0 ]; then
    echo "==> $name: ok ($((SECONDS - start)) s)"
  else
    echo "==> $name: FAILED, exit $rc ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}
setup() { step "$@"; [ ${#failed[@]} = 0 ] || { echo "test.sh: setup step '$1' failed" >&2; exit 1; }; }

setup deps bash scripts/deps.sh test
setup services bash scripts/services.sh

step fmt cargo fmt --all -- --check
step lint-slicing bash scripts/lint-slicing.sh
step tls-provider bash scripts/tls-check.sh
step clippy cargo clippy --all-targets -- -D warnings
profile=default
grep -q '^\[profile\.ci\]' .config/nextest.toml 2>/dev/null && profile=ci
step nextest cargo nextest run --workspace --profile "$profile"
# Doc tests compile each example separately: only worth it when the library has any.
if grep -rqE '^\s*//[/!].*```' src; then
  step doctest cargo test --doc
else
  echo "==> doctest: skipped (no code examples in doc comments)"
fi
step size bash scripts/size-check.sh
# The emulated panel: the image booted in qemu-system-aarch64 (rootfs-overlay/README.md, "The
# emulated panel"). A step of its own, after the tests, so it has both cores and its report.
step boot bash scripts/image-test.sh

if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED steps: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all steps passed"

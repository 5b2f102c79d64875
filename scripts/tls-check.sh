#!/usr/bin/env bash
# TLS has exactly one crypto provider in panelcam: ring. A second one (aws-lc-rs, the default
# of rustls and of many crates that use it) makes rustls refuse to pick one at start, which is
# how the system we replace crashed as soon as TLS was switched on; it would also add a C
# library and ~1 MiB to the 4 MiB binary. Fails if aws-lc is anywhere in what ships.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in aws-lc-rs aws-lc-sys; do
  out=$(cargo tree --edges normal,build --target all --invert "$crate" 2>&1 || true)
  if ! grep -q "did not match any packages\|nothing to print" <<<"$out"; then
    echo "tls-check: $crate is in panelcam's dependency tree:" >&2
    echo "$out" >&2
    status=1
  fi
done
ring=$(cargo tree --edges normal --target all --invert ring --depth 1 2>&1 | head -1)
[[ $ring == ring* ]] || { echo "tls-check: ring is not in the dependency tree: $ring" >&2; status=1; }
[ $status = 0 ] && echo "tls-check: one TLS provider (ring), no aws-lc"
exit $status

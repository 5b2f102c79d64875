#!/usr/bin/env bash
# Builds and starts panelcam with the default config: http://localhost:8080/dashboard shows the demo camera.
# Extra arguments are passed to panelcam.
set -euo pipefail
cd "$(dirname "$0")/.."  # config.json, cameras/ and recordings/ are relative to the repo root
bash scripts/deps.sh run
cargo build --release
exec "${CARGO_TARGET_DIR:-target}/release/panelcam" --config config.json "$@"

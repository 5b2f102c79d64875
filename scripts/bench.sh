#!/bin/bash
# Runs panelcam's benchmarks and prints their results: one line per measurement, with the
# issue's target and [ok]/[MISSED] next to it. A copy goes to target/bench-results.txt
# (or $BENCH_OUT).
#
#   scripts/bench.sh                          every bench, default scenarios (~5 min)
#   scripts/bench.sh live latency             one scenario of one bench (comma-separated list)
#   scripts/bench.sh live all                 also the FFmpeg option survey (~8 min more)
#   scripts/bench.sh latency                  a scenario name alone: passed to every bench
#   BENCH_SECONDS=10 scripts/bench.sh         shorter measuring times (default 30)
#
# Scenarios of `live`: latency (MJPEG glass-to-glass through the media router, through FFmpeg
# reading RTSP, and FFmpeg alone), server-latency, cpu, rss, first-picture, cold-start, and the
# media router's (issue 11, ~3 min together): router-cpu (process-tree CPU of 4 recording
# cameras with H.264 viewers only, and the rtsp_client "ffmpeg" setup before it),
# idle-camera-cpu, h264-latency (the /video passthrough decoded by FFmpeg at the client),
# first-jpeg (from an idle transcoder: MJPEG WebSocket and snapshot), first-h264; by name:
# ffmpeg-options, ffmpeg-stall, stop-under-load (~3 min), tls (WSS against WS: new-viewer
# handshake time and CPU, 50 viewers' latency and CPU; ~2 min, BENCH_TLS_SUITE=CHACHA20 to
# offer only that cipher suite):
#   scripts/bench.sh live tls
# Issue 11 in headless Chromium (/usr/bin/chromium; default scenarios, ~2.5 min together):
# browser-webcodecs (glass-to-glass through WebCodecs), browser-mse (through Media Source, and
# the drift of that latency; BENCH_MSE_SECONDS, default 60), browser-first-picture:
#   BENCH_MSE_SECONDS=600 scripts/bench.sh live browser-mse
# Experiment knobs (see benches/live/*.rs): BENCH_CONFIG, BENCH_CAMERA_ARGS, BENCH_CAMERA_FFMPEG,
# BENCH_CAMERA_EXTRA, BENCH_VARIANTS, BENCH_EXTRA_INPUT, BENCH_EXTRA_OUTPUT.
# RSS with every issue-9 feature on (MQTT with a picture per frame, frame storage, metrics):
#   BENCH_CONFIG='{"mqtt":{"enabled":true,"base_topic":"bench"},"server":{"metrics_token":"bench-metrics-0123456789"}}' \
#     BENCH_CAMERA_EXTRA='{"mqtt":{"publish_interval":0}}' scripts/bench.sh live rss
# The binary the live benches start: PANELCAM_BIN=<path> (a prebuilt release binary, e.g.
# target/x86_64-unknown-linux-musl/release/panelcam) instead of cargo's bench build, and
# PANELCAM_RUNNER=<command> in front of it (e.g. qemu-aarch64-static for the aarch64 musl build;
# FFmpeg stays the host's):
#   PANELCAM_BIN=target/aarch64-unknown-linux-musl/release/panelcam \
#     PANELCAM_RUNNER=qemu-aarch64-static scripts/bench.sh live cold-start,tls
# Scenarios of `framestore` (~8 min): ingest, writer-cpu, seek, retention, replay; by name:
# flash (bytes written to storage per byte recorded, ~6 min); its knobs
# (see benches/framestore.rs): BENCH_DIR (default /var/tmp/panelcam-bench, keeps ~3 GB of cached
# databases), BENCH_REBUILD=1, BENCH_ROUNDS, BENCH_SEEK_FRAMES, BENCH_RETENTION_FRAMES,
# BENCH_FLASH_CASES, BENCH_FLASH_CAMERA_ARGS.
# Scenarios of `video` (~2 min; the first run ~1.5 min more to encode its 10-minute fixture):
# recording-cpu, backlog-drain, timerange, status-latency; knobs BENCH_DIR, BENCH_REBUILD=1,
# BENCH_CAMERA_ARGS.
# Needs ffmpeg and /usr/bin/python3 with GStreamer's RTSP server (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHES=(live framestore video)

selected=("${BENCHES[@]}")
if [[ $# -gt 0 ]] && [[ " ${BENCHES[*]} " == *" $1 "* ]]; then
    selected=("$1")
    shift
fi

out="${BENCH_OUT:-${CARGO_TARGET_DIR:-target}/bench-results.txt}"
mkdir -p "$(dirname "$out")"
{
    echo "# panelcam benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
    echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(ffmpeg -version 2>/dev/null | head -1 | cut -d' ' -f1-3)"
} | tee "$out"
status=0
for bench in "${selected[@]}"; do
    # Cargo's build output goes to stderr; the results are the bench's stdout.
    cargo bench --quiet --bench "$bench" -- "$@" | tee -a "$out" || status=$?
done
echo "results: $out"
exit "$status"

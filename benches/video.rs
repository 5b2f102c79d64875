//! Video-recording benchmarks: the performance numbers, each printed next to its target.
//!
//!     cargo bench --bench video                          # every scenario (~6 min, first run ~2 min more)
//!     cargo bench --bench video -- backlog-drain         # one scenario (or a comma-separated list)
//!     BENCH_SECONDS=10 scripts/bench.sh video            # shorter measuring times
//!
//! - `recording-cpu` runs three real `panelcam`s side by side on one 1920x1080 25 fps RTSP test
//!   camera: live preview only, preview + recording (stream copy), preview + the re-encoding
//!   recorder of the system we replace (its MJPEG frames into libx264). See video/cpu.rs.
//! - `backlog-drain` ships exactly ten minutes of real 1080p segments from the outbox into the
//!   machine's PostgreSQL with panelcam's own shipper. See video/drain.rs.
//! - `timerange` asks a real `panelcam` with local storage (24 h of segments in segments.db,
//!   recording meanwhile) for recorded ranges and times the way to a segment's first byte.
//!   See video/timerange.rs.
//! - `status-latency` times `GET /api/status` on a real `panelcam` with four streaming cameras
//!   and a live viewer each while its outbox drains a 10-minute backlog into PostgreSQL.
//!   See video/status.rs.
//!
//! `BENCH_SECONDS` (default 30) scales the CPU window, the number of timerange requests and the
//! longest status-latency measurement (4x).
//! The ten minutes of 1080p segments are encoded once (~2 min) and cached in `BENCH_DIR`
//! (default /var/tmp/panelcam-bench, ~300 MB; `BENCH_REBUILD=1` encodes them again).
//! `BENCH_CAMERA_ARGS` adds test-camera arguments (later ones win, e.g. `--bitrate 8000`).
//! Needs ffmpeg, PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and the RTSP test camera
//! (scripts/deps.sh). The machine may be shared: the load average is printed with results.

#[path = "../tests/support/mod.rs"]
mod support;

// The other benches' helpers: result lines and the summary, statistics, BENCH_DIR, page-cache
// control (framestore); /proc CPU counters and RAM scratch directories (live). This bench
// uses only some of them.
#[allow(dead_code)]
#[path = "framestore/common.rs"]
mod framestore_common;
#[allow(dead_code)]
#[path = "live/common.rs"]
mod live_common;

#[path = "video/common.rs"]
mod common;
#[path = "video/cpu.rs"]
mod cpu;
#[path = "video/drain.rs"]
mod drain;
#[path = "video/fixture.rs"]
mod fixture;
#[path = "video/status.rs"]
mod status;
#[path = "video/timerange.rs"]
mod timerange;

use std::process::ExitCode;

/// (name, what it measures)
const SCENARIOS: &[(&str, &str)] = &[
    ("recording-cpu", "CPU of recording (stream copy) vs re-encoding, beyond the live preview, 1080p25"),
    ("backlog-drain", "a 10-minute 1080p backlog drained from the outbox into PostgreSQL"),
    ("timerange", "timerange request -> first byte of the first segment, local storage"),
    ("status-latency", "GET /api/status with 4 cameras streaming while a 10-minute backlog drains to PostgreSQL"),
];

async fn run(name: &str) {
    match name {
        "recording-cpu" => cpu::recording_cpu().await,
        "backlog-drain" => drain::backlog_drain().await,
        "timerange" => timerange::timerange().await,
        "status-latency" => status::status_latency().await,
        _ => unreachable!("checked against SCENARIOS"),
    }
}

fn main() -> ExitCode {
    framestore_common::run_bench("video", SCENARIOS, |name| Box::pin(run(name)))
}

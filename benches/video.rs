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
//!
//! `BENCH_SECONDS` (default 30) scales the CPU window and the number of timerange requests.
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
#[path = "video/timerange.rs"]
mod timerange;

use std::process::ExitCode;

/// (name, what it measures)
const SCENARIOS: &[(&str, &str)] = &[
    ("recording-cpu", "CPU of recording (stream copy) vs re-encoding, beyond the live preview, 1080p25"),
    ("backlog-drain", "a 10-minute 1080p backlog drained from the outbox into PostgreSQL"),
    ("timerange", "timerange request -> first byte of the first segment, local storage"),
];

async fn run(name: &str) {
    match name {
        "recording-cpu" => cpu::recording_cpu().await,
        "backlog-drain" => drain::backlog_drain().await,
        "timerange" => timerange::timerange().await,
        _ => unreachable!("checked against SCENARIOS"),
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; the first other argument selects scenarios.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let requested: Vec<&str> = match &filter {
        None => SCENARIOS.iter().map(|s| s.0).collect(),
        Some(f) if f == "all" => SCENARIOS.iter().map(|s| s.0).collect(),
        Some(f) => f.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
    };
    let known = |n: &&str| SCENARIOS.iter().any(|s| s.0 == *n);
    for unknown in requested.iter().filter(|n| !known(n)) {
        // `scripts/bench.sh <scenario>` passes the name to every bench: not ours, skip it.
        println!("video: ignoring {unknown:?}, not one of its scenarios");
    }
    let selected: Vec<&str> = requested.iter().copied().filter(known).collect();
    if selected.is_empty() {
        println!("video: its scenarios (comma-separated, or `all`):");
        for (name, what) in SCENARIOS {
            println!("  {name:<14} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = Vec::new();
    for name in selected {
        let what = SCENARIOS.iter().find(|s| s.0 == name).unwrap().1;
        println!(
            "== {name}: {what}  (BENCH_SECONDS={}, {} cores, load {})",
            framestore_common::bench_seconds(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            framestore_common::loadavg()
        );
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(run(name))));
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        if outcome.is_err() {
            println!("{name}: FAILED (see the panic above)");
            failed.push(name);
        }
        println!();
    }
    let rows = framestore_common::take_rows();
    if !rows.is_empty() {
        println!("== summary (load {})", framestore_common::loadavg());
        for r in &rows {
            let target = if r.target.is_empty() { String::new() } else { format!("  (target {})", r.target) };
            let mark = r.ok.map(|ok| format!("  {}", framestore_common::verdict(ok))).unwrap_or_default();
            println!("{}: {}{target}{mark}", r.what, r.value);
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed scenarios: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

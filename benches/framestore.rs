//! Frame-storage benchmarks: the recording numbers, each printed next to its target.
//!
//!     cargo bench --bench framestore                  # every scenario (~8 min)
//!     cargo bench --bench framestore -- seek,replay   # some scenarios (comma-separated)
//!     BENCH_SECONDS=10 scripts/bench.sh framestore    # shorter measuring times
//!
//! The library is used directly (`FrameStore`, `db::Tuning`); only `replay` runs the real
//! `panelcam` binary with the RTSP test camera. `BENCH_SECONDS` (default 30) scales every
//! measuring time. Databases live in `BENCH_DIR` (default /var/tmp/panelcam-bench, a real
//! disk); the 1M-frame seek database and the retention template (~1.5 and ~1.3 GB) are built
//! once and reused (`BENCH_REBUILD=1` rebuilds them; delete the directory to get the space
//! back). Other knobs: `BENCH_ROUNDS` (ingest, default 3), `BENCH_SEEK_FRAMES`,
//! `BENCH_SEEK_PROBES`, `BENCH_RETENTION_FRAMES`. The machine may be shared: the load average
//! is printed with every scenario.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "framestore/bulk.rs"]
mod bulk;
#[path = "framestore/common.rs"]
mod common;
#[path = "framestore/cpu.rs"]
mod cpu;
#[path = "framestore/ingest.rs"]
mod ingest;
#[path = "framestore/replay.rs"]
mod replay;
#[path = "framestore/retention.rs"]
mod retention;
#[path = "framestore/seek.rs"]
mod seek;

use std::process::ExitCode;

/// panelcam's schema, for the naive baseline that writes without `FrameStore`.
pub const SCHEMA: &str = include_str!("../src/record/schema.sql");

/// (name, what it measures)
const SCENARIOS: &[(&str, &str)] = &[
    ("ingest", "sustained ingest of 100 KB frames: panelcam vs naive SQLite, and the Tuning variants"),
    ("writer-cpu", "CPU of the writer threads, 4 cameras x 10 fps x 100 KB"),
    ("seek", "frame_near / frame_after in a database of >= 1,000,000 frames"),
    ("retention", "a retention run deleting a day of frames while recording"),
    ("replay", "replay pacing at 1x over ~60 s through the control WebSocket"),
];

async fn run(name: &str) {
    match name {
        "ingest" => ingest::ingest().await,
        "writer-cpu" => cpu::writer_cpu().await,
        "seek" => seek::seek().await,
        "retention" => retention::retention().await,
        "replay" => replay::replay().await,
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
    let selected: Vec<&str> = requested.iter().copied().filter(known).collect();
    if selected.is_empty() {
        // `scripts/bench.sh <scenario>` passes the name to every bench: not ours, skip.
        println!("framestore: no scenario named {:?}; its scenarios (comma-separated, or `all`):", requested.join(","));
        for (name, what) in SCENARIOS {
            println!("  {name:<12} {what}");
        }
        return ExitCode::SUCCESS;
    }
    for unknown in requested.iter().filter(|n| !known(n)) {
        println!("framestore: ignoring {unknown:?}, not one of its scenarios");
    }
    let mut failed = Vec::new();
    for name in selected {
        let what = SCENARIOS.iter().find(|s| s.0 == name).unwrap().1;
        println!(
            "== {name}: {what}  (BENCH_SECONDS={}, {} cores, load {})",
            common::bench_seconds(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            common::loadavg()
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
    let rows = common::take_rows();
    if !rows.is_empty() {
        println!("== summary (load {})", common::loadavg());
        for r in &rows {
            let target = if r.target.is_empty() { String::new() } else { format!("  (target {})", r.target) };
            let mark = r.ok.map(|ok| format!("  {}", common::verdict(ok))).unwrap_or_default();
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

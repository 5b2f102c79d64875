//! Frame-storage benchmarks: the recording numbers, each printed next to its target.
//!
//!     cargo bench --bench framestore                  # every scenario except flash (~8 min)
//!     cargo bench --bench framestore -- seek,replay   # some scenarios (comma-separated)
//!     cargo bench --bench framestore -- flash         # bytes written per byte recorded (~6 min)
//!     BENCH_SECONDS=10 scripts/bench.sh framestore    # shorter measuring times
//!
//! The library is used directly (`FrameStore`, `db::Tuning`); only `replay` and `flash` run the
//! real `panelcam` binary with the RTSP test camera. `flash` ("flash endurance") reads
//! `write_bytes` of `/proc/<pid>/io` of panelcam and its FFmpeg children over
//! `2 x BENCH_SECONDS` for frame storage (small and large JPEGs) and video storage (HLS in
//! SQLite and/or MP4 files), five panelcam runs; it runs only by name (`BENCH_FLASH_CASES`
//! picks cases, see framestore/flash.rs). `BENCH_SECONDS` (default 30) scales every
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
#[path = "framestore/flash.rs"]
mod flash;
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
    ("flash", "bytes written to storage per byte recorded, frames and video, real panelcam (~6 min)"),
];

/// Scenarios left out of the default run (they take long); they run by name or with `all`.
const ONLY_BY_NAME: &[&str] = &["flash"];

async fn run(name: &str) {
    match name {
        "ingest" => ingest::ingest().await,
        "writer-cpu" => cpu::writer_cpu().await,
        "seek" => seek::seek().await,
        "retention" => retention::retention().await,
        "replay" => replay::replay().await,
        "flash" => flash::flash().await,
        _ => unreachable!("checked against SCENARIOS"),
    }
}

fn main() -> ExitCode {
    common::run_bench_with("framestore", SCENARIOS, ONLY_BY_NAME, |name| Box::pin(run(name)))
}

//! Scenario `ingest`: sustained ingest of 100 KB frames through `FrameStore` as fast as its
//! writer takes them, against a naive SQLite configuration (rollback journal, `synchronous =
//! FULL`, 4 KiB pages, one transaction per frame) written directly with rusqlite, and the
//! `Tuning` variants that justify panelcam's defaults. Each round runs the naive baseline and
//! then every variant for the same time (`BENCH_SECONDS / 6`), `BENCH_ROUNDS` rounds (default
//! 3); tables show the mean and the range. The naive rate depends on the disk's fsync latency,
//! so each round probes `fdatasync` right before it.
//!
//! The producer offers frames in a loop; `offer` drops a frame when the writer's queue is full,
//! so after a drop the producer backs off for a millisecond and offers the same frame again:
//! what is measured is the writer's throughput, not how fast frames can be dropped. The clock
//! runs from the first offer until the store is shut down (last batch committed, WAL
//! checkpointed into the database file and truncated), so deferred checkpoint work is counted.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use panelcam::record::FrameStore;
use panelcam::record::db::Tuning;
use rusqlite::{Connection, params};

use crate::common::*;

pub const SPEEDUP_TARGET: f64 = 10.0;

/// One measured run.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    frames: u64,
    bytes: u64,
    /// From the first offer until the store is shut down (WAL checkpointed and truncated).
    secs: f64,
    /// From the first offer until the last frame was committed (`flush`).
    commit_secs: f64,
    file_bytes: u64,
    peak_wal: u64,
    retries: u64,
}

impl Run {
    fn fps(&self) -> f64 {
        self.frames as f64 / self.secs
    }

    fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }

    /// File size over the stored JPEG bytes, in percent.
    fn overhead(&self) -> f64 {
        (self.file_bytes as f64 / self.bytes.max(1) as f64 - 1.0) * 100.0
    }
}

fn tuning(page_size: u32, synchronous: &'static str, cache_kib: i64, wal: bool) -> Tuning {
    Tuning { page_size, synchronous, cache_kib, wal, ..Tuning::default() }
}

/// The defaults first, then one change at a time.
fn variants() -> Vec<(String, Tuning)> {
    let d = Tuning::default();
    let label = format!("defaults: page {}, {}, WAL, {} KiB cache", d.page_size, d.synchronous, d.cache_kib);
    let mut v = vec![(label, d)];
    for page in [4096, 8192, 32768, 65536] {
        v.push((format!("page_size {page}"), tuning(page, "NORMAL", 1024, true)));
    }
    v.push(("synchronous FULL (WAL)".into(), tuning(16384, "FULL", 1024, true)));
    v.push(("cache 8 MiB".into(), tuning(16384, "NORMAL", 8192, true)));
    v.push(("rollback journal, batched, FULL".into(), tuning(16384, "FULL", 1024, false)));
    v
}

pub async fn ingest() {
    let dir = bench_dir();
    let per_run = scaled(1.0 / 6.0, 2.0);
    let rounds = env_u64("BENCH_ROUNDS").unwrap_or(3).max(1) as usize;
    let variants = variants();
    println!(
        "{FRAME_TEXT} frames; per round: the naive baseline, then {} Tuning variants, {:.1} s each; {rounds} rounds; in {}",
        variants.len(),
        per_run.as_secs_f64(),
        dir.display()
    );
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    let mut naive: Vec<Run> = Vec::new();
    let mut fsyncs: Vec<f64> = Vec::new();
    let mut fsync_p50: Vec<f64> = Vec::new();
    for round in 1..=rounds {
        // The naive baseline pays several fsyncs per frame: probe the disk right before it.
        let fsync = fsync_latency(&dir.join("fsync-probe"), 100);
        let path = dir.join("ingest-naive.db");
        let run = naive_run(&path, per_run);
        remove_db(&path);
        println!(
            "  round {round}: naive: {:.0} frames/s, {:.1} MB/s (fdatasync just before: p50 {} ms, p99 {} ms)",
            run.fps(),
            run.mbps(),
            ms(Summary::of(&fsync).unwrap().p50),
            ms(Summary::of(&fsync).unwrap().p99)
        );
        fsync_p50.push(Summary::of(&fsync).unwrap().p50);
        fsyncs.extend(fsync);
        naive.push(run);
        for (i, (label, t)) in variants.iter().enumerate() {
            let path = dir.join(format!("ingest-{i}.db"));
            let run = store_run(&path, t, per_run).await;
            println!(
                "  round {round}: {label}: {:.0} frames/s, {:.1} MB/s ({:.0} frames/s until committed), \
                 file {:.1} MiB, peak WAL {:.1} MiB, {} retries",
                run.fps(),
                run.mbps(),
                run.frames as f64 / run.commit_secs,
                mib(run.file_bytes),
                mib(run.peak_wal),
                run.retries
            );
            runs[i].push(run);
            remove_db(&path);
        }
    }

    println!();
    println!(
        "{:<50} {:>9} {:>8} {:>15} {:>10} {:>9}",
        "Tuning variant (mean of the rounds)", "frames/s", "MB/s", "range frames/s", "disk over", "peak WAL"
    );
    println!("{:<50} {:>9} {:>8} {:>15} {:>10} {:>9}", "", "", "", "", "JPEG bytes", "% of data");
    let mean = |rs: &[Run], f: fn(&Run) -> f64| rs.iter().map(f).sum::<f64>() / rs.len() as f64;
    let range = |rs: &[Run]| {
        let (lo, hi) = rs.iter().map(Run::fps).fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        format!("{lo:.0}-{hi:.0}")
    };
    let wal_share = |r: &Run| r.peak_wal as f64 / r.bytes.max(1) as f64 * 100.0;
    for ((label, _), rs) in variants.iter().zip(&runs) {
        println!(
            "{label:<50} {:>9.0} {:>8.1} {:>15} {:>9.1}% {:>8.0}%",
            mean(rs, Run::fps),
            mean(rs, Run::mbps),
            range(rs),
            mean(rs, Run::overhead),
            mean(rs, wal_share),
        );
    }
    println!(
        "{:<50} {:>9.0} {:>8.1} {:>15} {:>9.1}%",
        "naive: rollback journal, FULL, page 4096, 1/txn",
        mean(&naive, Run::fps),
        mean(&naive, Run::mbps),
        range(&naive),
        mean(&naive, Run::overhead)
    );
    println!();

    result(
        "disk: fdatasync after a 4 KiB write (context for the naive baseline)",
        Summary::of(&fsyncs).unwrap().text(),
        "",
        None,
        "",
    );
    let default = &runs[0];
    let fps = mean(default, Run::fps);
    let frames: u64 = default.iter().map(|r| r.frames).sum();
    result(
        "ingest 100 KB frames, panelcam defaults",
        format!("{fps:.0} frames/s, {:.1} MB/s", mean(default, Run::mbps)),
        "",
        None,
        &format!("({frames} frames in {rounds} runs, range {} frames/s)", range(default)),
    );
    let naive_fps = mean(&naive, Run::fps);
    let frames: u64 = naive.iter().map(|r| r.frames).sum();
    result(
        "ingest 100 KB frames, naive (rollback journal, 1 frame/txn)",
        format!("{naive_fps:.0} frames/s, {:.1} MB/s", mean(&naive, Run::mbps)),
        "",
        None,
        &format!("({frames} frames in {rounds} runs, range {} frames/s)", range(&naive)),
    );
    let ratio = fps / naive_fps;
    let per_round: Vec<String> = (0..rounds)
        .map(|r| format!("{:.1}x at fdatasync p50 {} ms", default[r].fps() / naive[r].fps(), ms(fsync_p50[r])))
        .collect();
    result(
        "ingest speed-up, defaults vs naive",
        format!("{ratio:.1}x"),
        &format!(">= {SPEEDUP_TARGET}x"),
        Some(ratio >= SPEEDUP_TARGET),
        &format!("(per round: {})", per_round.join(", ")),
    );
    let best = variants.iter().zip(&runs).max_by(|a, b| mean(a.1, Run::fps).total_cmp(&mean(b.1, Run::fps)));
    if let Some(((label, _), rs)) = best {
        let best_fps = mean(rs, Run::fps);
        result(
            "ingest fastest Tuning variant",
            format!("{label}: {best_fps:.0} frames/s ({:+.0}% vs defaults)", (best_fps / fps - 1.0) * 100.0),
            "",
            None,
            "",
        );
    }
}

/// Ingests through a fresh `FrameStore` for `duration`.
async fn store_run(path: &Path, tuning: &Tuning, duration: Duration) -> Run {
    remove_db(path);
    sync_disk();
    let store = FrameStore::open("bench", path, tuning).expect("open the frame store");
    store.start_session(Some("ingest benchmark".into())).await.expect("start a session");
    let mut payloads = Payloads::new(0x1234_5678);
    let wal = wal_path(path);
    let base_ms = panelcam::util::now_ms();
    let (mut retries, mut peak_wal, mut seq) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        // Timestamps 1 ms apart: unique and increasing, as the writer wants them.
        let f = frame(payloads.frame_100k(), base_ms + seq as i64, seq);
        loop {
            let dropped = store.shared.frames_dropped.load(Relaxed);
            store.offer(&f);
            if store.shared.frames_dropped.load(Relaxed) == dropped {
                break;
            }
            retries += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        seq += 1;
        if seq.is_multiple_of(32) {
            peak_wal = peak_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
    }
    store.flush().await.expect("flush");
    let commit_secs = t0.elapsed().as_secs_f64();
    store.stop_session().await.expect("stop the session");
    let (frames, bytes) = (store.shared.frames_written.load(Relaxed), store.shared.bytes_written.load(Relaxed));
    store.shutdown().await;
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(frames, seq, "every offered frame is stored");
    Run { frames, bytes, secs, commit_secs, file_bytes: db_bytes(path), peak_wal, retries }
}

/// The naive baseline: SQLite's defaults (rollback journal, `synchronous = FULL`, 4 KiB pages)
/// and one `INSERT` per transaction into panelcam's schema.
fn naive_run(path: &Path, duration: Duration) -> Run {
    remove_db(path);
    sync_disk();
    let conn = Connection::open(path).expect("open the naive database");
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(crate::SCHEMA).expect("create the schema");
    let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
    assert_eq!(page, 4096, "SQLite's default page size");
    conn.execute("INSERT INTO sessions (id, start_ms, reason) VALUES (1, ?1, 'naive')", [panelcam::util::now_ms()])
        .unwrap();
    let mut payloads = Payloads::new(0x1234_5678);
    let mut insert = conn.prepare("INSERT INTO frames (ts_ms, session_id, jpeg) VALUES (?1, 1, ?2)").unwrap();
    let base_ms = panelcam::util::now_ms();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        let jpeg = payloads.frame_100k();
        insert.execute(params![base_ms + frames as i64, &jpeg[..]]).expect("insert a frame");
        frames += 1;
        bytes += jpeg.len() as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(insert);
    drop(conn);
    Run { frames, bytes, secs, commit_secs: secs, file_bytes: db_bytes(path), peak_wal: 0, retries: 0 }
}

/// Latency of `fdatasync` after overwriting 4 KiB of a file, `n` times: what a commit with
/// `synchronous = FULL` waits for, several times per transaction.
fn fsync_latency(path: &Path, n: usize) -> Vec<f64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::File::create(path).expect("create the fsync probe");
    file.write_all(&vec![1u8; 1 << 20]).unwrap();
    file.sync_all().unwrap();
    let mut rng = Rng::new(3);
    let block = vec![7u8; 4096];
    let samples: Vec<f64> = (0..n)
        .map(|_| {
            file.seek(SeekFrom::Start(rng.range(0, 256) as u64 * 4096)).unwrap();
            file.write_all(&block).unwrap();
            let t = Instant::now();
            file.sync_data().unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(path);
    samples
}

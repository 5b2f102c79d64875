//! Scenario `retention`: a retention run deleting a day of frames while a camera records.
//!
//! A template database holds a day of old frames (864,000 frames of 1-2 KB at 10 fps in 24
//! hourly sessions, built once and cached; fewer when `BENCH_SECONDS` < 30, or
//! `BENCH_RETENTION_FRAMES`). Each run copies it, opens it with `FrameStore`, starts a session
//! and feeds 10 fps of 100 KB (90-110 KB) frames in real time while `retention(cutoff)` deletes every old
//! frame. Measured:
//! (a) `longest_batch_ms` of the `RetentionReport` (the writer's own timing of its delete and
//!     incremental-vacuum steps);
//! (b) from outside: polling `shared.frames_written` every 2 ms, the longest time it did not
//!     increase while an offered frame was waiting;
//! (c) each frame's latency from `offer` to the commit that made it visible in (b).
//! Frames offered during the run are compared with those offered before and after it, which
//! wait for the regular batch commit (every 500 ms by design, `writer::COMMIT_INTERVAL`).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use panelcam::record::FrameStore;
use panelcam::record::db::Tuning;

use crate::bulk::{self, Spec};
use crate::common::*;

pub const BLOCK_TARGET_MS: f64 = 100.0;
const DAY_FRAMES: u64 = 864_000;
const DAY_MS: i64 = 86_400_000;

/// What the poller saw: (offered, committed) per frame, and (since, length) of each time the
/// commit counter stood still while a frame was waiting.
#[derive(Default)]
struct Seen {
    commits: Vec<(Instant, Instant)>,
    stalls: Vec<(Instant, Duration)>,
}

pub async fn retention() {
    let dir = bench_dir();
    let scale = (bench_seconds() / 30.0).min(1.0);
    let frames = env_u64("BENCH_RETENTION_FRAMES").unwrap_or((DAY_FRAMES as f64 * scale) as u64).max(1000);
    let spec = Spec {
        frames,
        start_ms: (panelcam::util::now_ms() / DAY_MS - 3) * DAY_MS,
        interval_ms: 100,
        sessions: frames.div_ceil(36_000),
        min_bytes: 1000,
        max_bytes: 2000,
    };
    let template = dir.join("retention-template.db");
    let built = bulk::ensure(&template, &spec);
    let path = dir.join("retention.db");
    let t0 = Instant::now();
    copy_db(&template, &path);
    sync_disk();
    let file_before = db_bytes(&path);
    println!("copied the template in {:.1} s; cutoff just after its last frame", t0.elapsed().as_secs_f64());

    let store = FrameStore::open("ret", &path, &Tuning::default()).expect("open the frame store");
    store.start_session(Some("retention benchmark".into())).await.expect("start a session");
    let offered: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (store, offered, stop) = (store.clone(), offered.clone(), stop.clone());
        std::thread::spawn(move || feed(&store, &offered, &stop))
    };
    let poller = {
        let (store, offered, stop) = (store.clone(), offered.clone(), stop.clone());
        std::thread::spawn(move || poll(&store, &offered, &stop))
    };
    let calm = Duration::from_secs(3);
    tokio::time::sleep(calm).await;
    let r0 = Instant::now();
    let report = store.retention(built.last_ms + 1).await.expect("retention");
    let r1 = Instant::now();
    tokio::time::sleep(calm).await;
    stop.store(true, Relaxed);
    feeder.join().expect("feeder");
    store.flush().await.expect("flush");
    let seen = poller.join().expect("poller");
    let dropped = store.shared.frames_dropped.load(Relaxed);
    let _ = store.stop_session().await;
    store.shutdown().await;
    let file_after = db_bytes(&path);
    remove_db(&path);

    let took = (r1 - r0).as_secs_f64();
    println!(
        "retention deleted {} frames ({:.0} MB) and {} sessions, vacuumed {} pages, in {took:.1} s \
         ({:.0} frames/s); file {:.0} -> {:.0} MiB; {} live frames offered, {dropped} dropped",
        report.frames,
        report.bytes as f64 / 1e6,
        report.sessions,
        report.vacuumed_pages,
        report.frames as f64 / took,
        mib(file_before),
        mib(file_after),
        seen.commits.len()
    );
    assert_eq!(report.frames, built.frames, "every old frame deleted");
    let during = |t: Instant| t >= r0 && t < r1;
    let latency = |within: bool| -> Vec<f64> {
        seen.commits.iter().filter(|c| during(c.0) == within).map(|c| (c.1 - c.0).as_secs_f64() * 1e3).collect()
    };
    let stall = |within: bool| -> f64 {
        seen.stalls.iter().filter(|s| during(s.0) == within).map(|s| s.1.as_secs_f64() * 1e3).fold(0.0, f64::max)
    };
    let what = format!("retention of {}k frames", report.frames / 1000);
    let target = format!("<= {BLOCK_TARGET_MS} ms");
    let longest = report.longest_batch_ms as f64;
    result(
        &format!("{what}: longest delete/vacuum step (RetentionReport.longest_batch_ms)"),
        format!("{longest:.0} ms"),
        &target,
        Some(longest <= BLOCK_TARGET_MS),
        "",
    );
    let gap = stall(true);
    result(
        &format!("{what}: longest commit gap with a frame waiting, seen from outside"),
        format!("{} ms", ms(gap)),
        &target,
        Some(gap <= BLOCK_TARGET_MS && dropped == 0),
        &format!("(outside the run: {} ms, the 500 ms batch interval)", ms(stall(false))),
    );
    let during_run = latency(true);
    let s = Summary::of(&during_run).expect("frames were offered during the retention run");
    result(
        &format!("{what}: offer -> commit latency of frames offered during the run"),
        s.text(),
        &format!("max {target}"),
        Some(s.max <= BLOCK_TARGET_MS && dropped == 0),
        &format!("(outside the run: {})", Summary::of(&latency(false)).map_or("-".into(), |s| s.text())),
    );
    result(&format!("{what}: total retention time"), format!("{took:.1} s"), "", None, "");
}

/// 10 fps of 100 KB frames in real time until `stop`; records each offer's time first.
fn feed(store: &FrameStore, offered: &Mutex<Vec<Instant>>, stop: &AtomicBool) {
    let mut payloads = Payloads::new(99);
    let period = Duration::from_millis(100);
    let start = Instant::now();
    let mut tick = 0u32;
    while !stop.load(Relaxed) {
        let due = start + period * tick;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let jpeg = payloads.frame_100k();
        offered.lock().unwrap().push(Instant::now());
        store.offer(&frame(jpeg, panelcam::util::now_ms(), tick.into()));
        tick += 1;
    }
}

/// Polls the commit counter every 2 ms until `stop` and every offered frame is committed.
/// Assumes no frame is dropped (the k-th commit is then the k-th offered frame).
fn poll(store: &FrameStore, offered: &Mutex<Vec<Instant>>, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let (mut last, mut progress) = (0usize, Instant::now());
    loop {
        let written = store.shared.frames_written.load(Relaxed) as usize;
        let dropped = store.shared.frames_dropped.load(Relaxed) as usize;
        let now = Instant::now();
        let o = offered.lock().unwrap();
        if written > last {
            if let Some(&first_waiting) = o.get(last) {
                let since = progress.max(first_waiting);
                seen.stalls.push((since, now - since));
            }
            seen.commits.extend(o[last..written.min(o.len())].iter().map(|&t| (t, now)));
            (last, progress) = (written, now);
        }
        let all_offered = o.len();
        drop(o);
        if stop.load(Relaxed) && written + dropped >= all_offered {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

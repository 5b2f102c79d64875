//! Scenario `backlog-drain`: a 10-minute backlog drains into PostgreSQL at >= 10x real time.
//!
//! The backlog is what an outage leaves in the outbox: exactly ten minutes of real 1080p
//! segments (the fixture: 100 x 6 s, ~3 MB each) and their init segment, queued through
//! panelcam's own `Outbox::enqueue` and aged as if recorded during the outage. panelcam's own
//! shipper (`video::shipper::run` with `video::pg::Central`) then empties it into a fresh
//! database on the machine's PostgreSQL, over loopback. Two runs: HLS segments only, and HLS
//! plus the 5-minute MP4 files of `mp4_storage_type: "database"` (assembled by panelcam's
//! `Mp4Assembler` from the same segments), which doubles the bytes.
//!
//! While it drains, the camera keeps recording: a new segment enters the outbox every 6 s.
//! The shipper alternates the oldest item and the newest live one, so each live segment
//! should arrive within an upload or two instead of after the whole backlog.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use panelcam::store::outbox::{Item, Kind, NewItem, Outbox};
use panelcam::store::pg::Central;
use panelcam::store::segment::{Mp4Meta, sha256_hex};
use panelcam::util::now_ms;
use panelcam::video::mp4file::Mp4Assembler;
use panelcam::video::segment::SpoolSegment;

use crate::common::{DiskDir, mb};
use crate::fixture::{Fixture, ten_minutes_1080p};
use crate::framestore_common::{loadavg, result};
use crate::support::harness::eventually;
use crate::support::video::TestDb;

pub const TARGET_FACTOR: f64 = 10.0;
const CAMERA: &str = "cam";
/// panelcam's default `mp4_segment_minutes`.
pub const MP4_WINDOW_MS: i64 = 300_000;

pub async fn backlog_drain() {
    let fixture = ten_minutes_1080p().await;
    drain(&fixture, false).await;
    drain(&fixture, true).await;
}

/// A live segment queued while the backlog drains.
struct Live {
    id: i64,
    queued: Instant,
    backlog_left: usize,
    shipped: Option<(Instant, usize)>,
}

async fn drain(fx: &Fixture, with_mp4: bool) {
    let db = TestDb::create("bench_drain").await;
    let work = DiskDir::new("video-drain");
    let outbox = Outbox::open(&work.join("outbox"), 16 << 30).expect("open the outbox");
    // The ten minutes end a minute ago and start on an MP4 window boundary, so the MP4
    // variant has exactly two whole 5-minute files.
    let t0 = (now_ms() - fx.duration_ms() - 60_000).div_euclid(MP4_WINDOW_MS) * MP4_WINDOW_MS;
    let queue_started = Instant::now();
    let backlog = {
        let (ob, mp4_dir) = (outbox.clone(), with_mp4.then(|| work.join("mp4")));
        let fx_init = fx.init.clone();
        let segs: Vec<_> = fx.segments.iter().map(|s| (s.path.clone(), s.duration_ms, s.size)).collect();
        tokio::task::spawn_blocking(move || queue_backlog(&ob, CAMERA, &fx_init, &segs, t0, mp4_dir.as_deref()))
            .await
            .unwrap()
    };
    let queue_secs = queue_started.elapsed().as_secs_f64();
    age(&work.join("outbox/outbox.db"), t0);
    let bytes: u64 = backlog.iter().map(|i| i.size as u64).sum();
    let count = |k: Kind| backlog.iter().filter(|i| i.kind == k).count();
    let what = format!(
        "{} x 6 s HLS + init{}",
        count(Kind::Hls),
        if with_mp4 { format!(" + {} x 5-min MP4", count(Kind::Mp4)) } else { String::new() }
    );

    // Ship, timing until the last backlog item is gone from the outbox.
    let central = Arc::new(Central::new(&db.url, "bench").expect("database URL"));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let shipper = tokio::spawn(panelcam::store::shipper::run(outbox.clone(), central, stop_rx));
    let live: Arc<Mutex<Vec<Live>>> = Arc::default();
    let backlog_ids: HashSet<i64> = backlog.iter().map(|i| i.id).collect();
    let drained = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let init_sha = sha256_hex(&std::fs::read(&fx.init).unwrap());
    let feed =
        tokio::spawn(live_feed(outbox.clone(), fx.segments[0].path.clone(), init_sha, live.clone(), drained.clone()));
    let poll = {
        let (db_path, live, drained) = (work.join("outbox/outbox.db"), live.clone(), drained.clone());
        tokio::task::spawn_blocking(move || watch_outbox(&db_path, &backlog_ids, &live, &drained))
    };
    let drain_secs = poll.await.unwrap().duration_since(started).as_secs_f64();
    let _ = feed.await;
    // The last live segment may still be on its way.
    let all_live_shipped =
        eventually(Duration::from_secs(30), async || live.lock().unwrap().iter().all(|l| l.shipped.is_some())).await;
    let _ = stop_tx.send(true);
    let _ = shipper.await;

    let video_s = fx.duration_ms() as f64 / 1000.0;
    let factor = video_s / drain_secs;
    result(
        &format!("backlog drain, {what}"),
        format!(
            "{:.1} MB in {drain_secs:.2} s = {:.1} MB/s = {factor:.0}x real time",
            mb(bytes),
            mb(bytes) / drain_secs
        ),
        &format!(">= {TARGET_FACTOR}x real time"),
        Some(factor >= TARGET_FACTOR),
        &format!("(queueing it took {queue_secs:.1} s; load {})", loadavg()),
    );
    let live = std::mem::take(&mut *live.lock().unwrap());
    let details: Vec<String> = live
        .iter()
        .map(|l| match l.shipped {
            Some((at, left)) => format!(
                "queued at +{:.1} s with {} items waiting, shipped {:.2} s later with {left} backlog items left",
                l.queued.duration_since(started).as_secs_f64(),
                l.backlog_left,
                at.duration_since(l.queued).as_secs_f64()
            ),
            None => "never shipped".to_string(),
        })
        .collect();
    let interleaved = live.iter().filter(|l| l.shipped.is_some_and(|(_, left)| left > 0)).count();
    println!(
        "  live segments during the drain: {} queued, {interleaved} shipped before the backlog was empty{}",
        live.len(),
        if all_live_shipped { "" } else { " (some never shipped!)" }
    );
    for d in details {
        println!("    {d}");
    }
    verify(&db, t0, fx.duration_ms(), &backlog).await;
}

/// Queues the backlog as the pipeline would: the init segment, then each HLS segment, and
/// each MP4 file when the next window's first segment closes it (the file is removed once
/// queued, as `deliver_mp4` does). Also used by `status-latency`.
pub fn queue_backlog(
    outbox: &Outbox,
    camera: &str,
    init: &Path,
    segments: &[(std::path::PathBuf, i64, u64)],
    t0: i64,
    mp4_dir: Option<&Path>,
) -> Vec<Item> {
    let new = |kind, start_ms, duration_ms, name, init_sha256| NewItem {
        camera: camera.to_string(),
        kind,
        start_ms,
        duration_ms,
        name,
        init_sha256,
        session_id: None,
    };
    let enqueue_mp4 = |file: Mp4Meta| {
        let path = file.path.clone().expect("an MP4 file");
        let item = outbox.enqueue(new(Kind::Mp4, file.start_ms, file.duration_ms, Some(file.name), None), &path);
        std::fs::remove_file(&path).unwrap();
        item.expect("queue an MP4 file").expect("room in the outbox")
    };
    let init_sha = sha256_hex(&std::fs::read(init).unwrap());
    let mut items =
        vec![outbox.enqueue(new(Kind::Init, 0, 0, None, None), init).expect("queue the init segment").expect("room")];
    let mut assembler = mp4_dir.map(|d| Mp4Assembler::new(camera, d, MP4_WINDOW_MS as f64 / 60_000.0));
    let mut start_ms = t0;
    for (i, (path, duration_ms, size)) in segments.iter().enumerate() {
        let hls = new(Kind::Hls, start_ms, *duration_ms, None, Some(init_sha.clone()));
        items.push(outbox.enqueue(hls, path).expect("queue a segment").expect("room in the outbox"));
        if let Some(a) = assembler.as_mut() {
            let seg = SpoolSegment {
                name: format!("seg_{i}.m4s"),
                path: path.clone(),
                init_path: init.to_path_buf(),
                start_ms,
                duration_ms: *duration_ms,
                size: *size,
            };
            if let Some(file) = a.add(&seg, None).expect("assemble MP4") {
                items.push(enqueue_mp4(file));
            }
        }
        start_ms += duration_ms;
    }
    if let Some(file) = assembler.and_then(|mut a| a.finish().expect("close the MP4")) {
        items.push(enqueue_mp4(file));
    }
    items
}

/// Makes the backlog look recorded during the outage: `created_ms` (when an item entered the
/// outbox) becomes the end of its segment. Queued just now, every item would count as "live"
/// for the shipper's alternating pick, which is not what an outage leaves behind.
pub fn age(outbox_db: &Path, t0: i64) {
    let c = rusqlite::Connection::open(outbox_db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute("UPDATE items SET created_ms = CASE kind WHEN 'init' THEN ?1 ELSE start_ms + duration_ms END", [t0])
        .unwrap();
}

/// Queues a live segment 0.5 s after the drain starts and then every 6 s (the camera's
/// segment length) until the backlog is gone.
async fn live_feed(
    outbox: Arc<Outbox>,
    data: std::path::PathBuf,
    init_sha: String,
    live: Arc<Mutex<Vec<Live>>>,
    drained: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut wait = Duration::from_millis(500);
    loop {
        tokio::time::sleep(wait).await;
        if drained.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let (ob, path) = (outbox.clone(), data.clone());
        let init_sha = init_sha.clone();
        let item = tokio::task::spawn_blocking(move || {
            // Just finished recording: it started one segment length ago.
            let new = NewItem {
                camera: CAMERA.to_string(),
                kind: Kind::Hls,
                start_ms: now_ms() - 6_000,
                duration_ms: 6_000,
                name: None,
                init_sha256: Some(init_sha),
                session_id: None,
            };
            ob.enqueue(new, &path).expect("queue a live segment").expect("room in the outbox")
        })
        .await
        .unwrap();
        let left = waiting(&outbox);
        live.lock().unwrap().push(Live { id: item.id, queued: Instant::now(), backlog_left: left, shipped: None });
        wait = Duration::from_secs(6);
    }
}

/// Items waiting in the outbox (for the live lines; live ones included).
fn waiting(outbox: &Outbox) -> usize {
    outbox.status()["pending_items"].as_u64().unwrap_or(0) as usize
}

/// Polls the outbox every 2 ms through its own SQLite connection; records when live items
/// leave it and returns when the last backlog item has.
fn watch_outbox(
    db: &Path,
    backlog: &HashSet<i64>,
    live: &Mutex<Vec<Live>>,
    drained: &std::sync::atomic::AtomicBool,
) -> Instant {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ids: HashSet<i64> = c
            .prepare_cached("SELECT id FROM items")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let now = Instant::now();
        let left = ids.iter().filter(|id| backlog.contains(id)).count();
        for l in live.lock().unwrap().iter_mut().filter(|l| l.shipped.is_none() && !ids.contains(&l.id)) {
            l.shipped = Some((now, left));
        }
        if left == 0 {
            drained.store(true, std::sync::atomic::Ordering::Relaxed);
            return now;
        }
        assert!(now < deadline, "the backlog did not drain in 10 minutes ({left} items left)");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Everything arrived whole: the rows of the ten minutes, their sizes and checksums.
async fn verify(db: &TestDb, t0: i64, duration_ms: i64, backlog: &[Item]) {
    let pg = db.client().await;
    let t1 = t0 + duration_ms;
    let mut lines = Vec::new();
    for (kind, table) in [(Kind::Hls, "hls_segments"), (Kind::Mp4, "mp4_segments")] {
        let want: Vec<&Item> = backlog.iter().filter(|i| i.kind == kind).collect();
        let sql = format!(
            "SELECT count(*), coalesce(sum(size), 0)::bigint, coalesce(bool_and(sha256 = encode(sha256(data), 'hex') AND size = octet_length(data)), true)
             FROM {table} WHERE camera = $1 AND start_ms >= $2 AND start_ms < $3"
        );
        let row = pg.query_one(&sql, &[&CAMERA, &t0, &t1]).await.unwrap();
        let (n, size, intact): (i64, i64, bool) = (row.get(0), row.get(1), row.get(2));
        let want_size: i64 = want.iter().map(|i| i.size).sum();
        assert!(
            n as usize == want.len() && size == want_size && intact,
            "{table}: {n} rows of {size} bytes (intact: {intact}), expected {} of {want_size}",
            want.len()
        );
        if !want.is_empty() {
            lines.push(format!("{n} {table} ({:.1} MB)", mb(size as u64)));
        }
    }
    println!("  in PostgreSQL: {}, sizes and SHA-256 match", lines.join(", "));
}

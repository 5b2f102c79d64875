//! Scenario `seek`: goto and frame-by-timestamp in a database holding at least a million
//! frames, through the real API (`FrameStore::frame_near` and `frame_after`, each a read on the
//! reader pool via `spawn_blocking`, returning the JPEG).
//!
//! The database (1,000,000 frames of 1-2 KB, 10 fps, ~28 h in one session; `BENCH_SEEK_FRAMES`
//! to change) is built once and cached. Measured twice: with the file in the OS page cache
//! (read once before), and cold: before each probe the file's pages are dropped from the page
//! cache with `posix_fadvise(DONTNEED)`, so the probe's B-tree pages come from the disk (the
//! reader connection's own 256 KiB SQLite cache stays, as in a running panelcam).

use std::time::Instant;

use panelcam::record::FrameStore;
use panelcam::record::db::Tuning;

use crate::bulk::{self, Spec};
use crate::common::*;

pub const P99_TARGET_MS: f64 = 5.0;
/// The REST frame-by-timestamp default; the query costs the same for any tolerance.
const TOLERANCE_MS: i64 = 5_000;
/// `frame_after(ts, ts + WINDOW_MS)`: the next frame within 10 s.
const WINDOW_MS: i64 = 10_000;

pub async fn seek() {
    let frames = env_u64("BENCH_SEEK_FRAMES").unwrap_or(1_000_000);
    let probes = env_u64("BENCH_SEEK_PROBES").unwrap_or(10_000) as usize;
    let cold_probes = (probes / 20).max(50);
    let path = bench_dir().join("seek.db");
    let spec = Spec {
        frames,
        // Aligned to a day so a rebuild the same day makes the same file.
        start_ms: (panelcam::util::now_ms() / 86_400_000 - 30) * 86_400_000,
        interval_ms: 100,
        sessions: 1,
        min_bytes: 1000,
        max_bytes: 2000,
    };
    let built = bulk::ensure(&path, &spec);
    let store = FrameStore::open("seek", &path, &Tuning::default()).expect("open the frame store");
    let size = store.size().await.expect("size");
    println!(
        "{} frames from {} to {}, {:.0} MiB",
        built.frames,
        panelcam::util::iso_ms(built.first_ms),
        panelcam::util::iso_ms(built.last_ms),
        mib(size.database_bytes + size.wal_bytes)
    );
    let t0 = Instant::now();
    let read = warm_page_cache(&path).expect("read the database");
    println!("warmed the page cache: read {:.0} MiB in {:.1} s", mib(read), t0.elapsed().as_secs_f64());

    let mut rng = Rng::new(0x5EE6);
    let label = format!("seek {}k frames", built.frames / 1000);
    let samples = probe(&store, &mut rng, &built, probes, false).await;
    report(&format!("{label}, warm"), &samples);
    match evict_from_page_cache(&path) {
        Ok(()) => {
            let samples = probe(&store, &mut rng, &built, cold_probes, true).await;
            report(&format!("{label}, cold page cache"), &samples);
        }
        Err(e) => println!("cold page cache: not measured, posix_fadvise failed: {e}"),
    }
    store.shutdown().await;
}

/// Latencies in ms of `n` random probes of each kind.
struct Samples {
    near: Vec<f64>,
    after: Vec<f64>,
    goto: Vec<f64>,
}

/// `n` random probes of each: `frame_near(ts)`; goto as the control WebSocket does it,
/// `frame_near(ts)` and then `frame_after(found, ..)`; and `frame_after(ts2, ts2 + 10 s)` at
/// another random time. `cold` drops the file from the page cache before each of them.
async fn probe(store: &FrameStore, rng: &mut Rng, built: &bulk::Built, n: usize, cold: bool) -> Samples {
    let mut s = Samples { near: Vec::with_capacity(n), after: Vec::with_capacity(n), goto: Vec::with_capacity(n) };
    let evict = || {
        if cold {
            evict_from_page_cache(store.path()).expect("evict");
        }
    };
    let mut misses = 0;
    for _ in 0..n {
        let ts = rng.range(built.first_ms, built.last_ms);
        evict();
        let t = Instant::now();
        let found = store.frame_near(ts, TOLERANCE_MS).await.expect("frame_near");
        s.near.push(t.elapsed().as_secs_f64() * 1e3);
        let Some((at, jpeg)) = found else {
            misses += 1;
            continue;
        };
        misses += usize::from(jpeg.len() < 1000 || (at - ts).abs() > 100);
        let next = store.frame_after(at, i64::MAX).await.expect("frame_after");
        s.goto.push(t.elapsed().as_secs_f64() * 1e3);
        misses += usize::from(next.is_none() && at != built.last_ms);

        let ts = rng.range(built.first_ms, built.last_ms);
        evict();
        let t = Instant::now();
        let found = store.frame_after(ts, ts + WINDOW_MS).await.expect("frame_after");
        s.after.push(t.elapsed().as_secs_f64() * 1e3);
        misses += usize::from(found.is_none_or(|(at, _)| at <= ts || at > ts + 200));
    }
    assert_eq!(misses, 0, "every probe finds the right frame");
    s
}

fn report(label: &str, s: &Samples) {
    let target = format!("p99 <= {P99_TARGET_MS} ms");
    for (what, samples) in [
        ("frame_near(ts, 5 s) [frame-by-timestamp]", &s.near),
        ("frame_after(ts, ts + 10 s) [next frame]", &s.after),
        ("goto = frame_near + frame_after", &s.goto),
    ] {
        let sum = Summary::of(samples).expect("samples");
        result(&format!("{label}: {what}"), sum.text(), &target, Some(sum.p99 <= P99_TARGET_MS), "");
    }
}

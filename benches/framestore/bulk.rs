//! Builds big frame databases fast for the seek and retention scenarios: rusqlite bulk inserts
//! in large transactions into a file opened with panelcam's own `db::open_writer` (its schema,
//! page size, WAL and auto-vacuum), with frames 10 per second and realistic jitter, and session
//! rows covering them. A finished database carries its specification in `meta`, so a cached
//! copy is reused only when it matches.

use std::path::Path;
use std::time::Instant;

use panelcam::record::db::{Tuning, open_reader, open_writer};
use rusqlite::{OptionalExtension, params};

use crate::common::*;

/// Frames per transaction while building.
const BATCH: u64 = 50_000;

#[derive(Clone, Debug)]
pub struct Spec {
    pub frames: u64,
    /// Capture time of the first frame (Unix ms).
    pub start_ms: i64,
    /// Frames are `interval_ms` apart plus 0-9 ms of jitter.
    pub interval_ms: i64,
    /// The frames are split evenly into this many back-to-back sessions.
    pub sessions: u64,
    /// JPEG sizes are uniform in `min_bytes..max_bytes`.
    pub min_bytes: usize,
    pub max_bytes: usize,
}

impl Spec {
    /// What is stored in `meta` to recognise a cached database (without `start_ms`, which
    /// only has to be in the past).
    fn key(&self) -> String {
        format!(
            "frames={} interval={} sessions={} bytes={}..{}",
            self.frames, self.interval_ms, self.sessions, self.min_bytes, self.max_bytes
        )
    }
}

/// Facts about a built database.
#[derive(Clone, Copy, Debug)]
pub struct Built {
    pub first_ms: i64,
    pub last_ms: i64,
    pub frames: u64,
}

/// Reuses `path` if it holds a database built from an equal `spec` (and `BENCH_REBUILD` is not
/// 1), otherwise builds it. Prints what it did.
pub fn ensure(path: &Path, spec: &Spec) -> Built {
    if !rebuild_requested()
        && let Some(built) = cached(path, spec)
    {
        println!(
            "using the cached {} ({} frames, {:.0} MiB; BENCH_REBUILD=1 rebuilds it)",
            path.display(),
            built.frames,
            mib(db_bytes(path))
        );
        return built;
    }
    let t0 = Instant::now();
    let built = build(path, spec);
    println!(
        "built {} in {:.1} s: {} frames of {}-{} bytes at {} fps over {:.1} h, {} session(s), {:.0} MiB",
        path.display(),
        t0.elapsed().as_secs_f64(),
        built.frames,
        spec.min_bytes,
        spec.max_bytes,
        1000 / spec.interval_ms,
        (built.last_ms - built.first_ms) as f64 / 3.6e6,
        spec.sessions,
        mib(db_bytes(path))
    );
    built
}

fn cached(path: &Path, spec: &Spec) -> Option<Built> {
    if !path.exists() {
        return None;
    }
    let conn = open_reader(path).ok()?;
    let key: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'bench_spec'", [], |r| r.get(0)).optional().ok().flatten();
    if key.as_deref() != Some(spec.key().as_str()) {
        return None;
    }
    // Counting a million rows would read the whole file; min/max are rowid seeks.
    let (first_ms, last_ms): (i64, i64) =
        conn.query_row("SELECT min(ts_ms), max(ts_ms) FROM frames", [], |r| Ok((r.get(0)?, r.get(1)?))).ok()?;
    Some(Built { first_ms, last_ms, frames: spec.frames })
}

fn build(path: &Path, spec: &Spec) -> Built {
    remove_db(path);
    let mut conn = open_writer(path, &Tuning::default()).expect("create the database");
    let mut payloads = Payloads::new(0xB01C);
    let per_session = spec.frames.div_ceil(spec.sessions.max(1));
    let mut ts = spec.start_ms;
    let (mut first_ms, mut last_ms) = (None, spec.start_ms);
    let mut done = 0u64;
    // (start, last, frames, bytes) of the session being written
    let mut session: Option<(i64, i64, i64, i64)> = None;
    while done < spec.frames {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx.prepare("INSERT INTO frames (ts_ms, session_id, jpeg) VALUES (?1, ?2, ?3)").unwrap();
            let mut close = tx
                .prepare(
                    "INSERT INTO sessions (id, start_ms, end_ms, reason, frame_count, byte_count, last_frame_ms)
                     VALUES (?1, ?2, ?3, 'bulk-built benchmark data', ?4, ?5, ?3)",
                )
                .unwrap();
            let end = (done + BATCH).min(spec.frames);
            while done < end {
                let len = payloads.rng().range(spec.min_bytes as i64, spec.max_bytes as i64) as usize;
                let jpeg = payloads.take(len);
                let jitter = payloads.rng().range(0, 10);
                let id = (done / per_session + 1) as i64;
                let at = ts + jitter;
                insert.execute(params![at, id, &jpeg[..]]).expect("insert a frame");
                first_ms.get_or_insert(at);
                last_ms = at;
                let s = session.get_or_insert((at, at, 0, 0));
                s.1 = at;
                s.2 += 1;
                s.3 += len as i64;
                done += 1;
                ts += spec.interval_ms;
                if done.is_multiple_of(per_session) || done == spec.frames {
                    let (start, last, n, bytes) = session.take().unwrap();
                    close.execute(params![id, start, last, n, bytes]).expect("insert a session");
                }
            }
        }
        tx.commit().expect("commit");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    }
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench_spec', ?1)", [spec.key()]).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    drop(conn);
    Built { first_ms: first_ms.unwrap_or(spec.start_ms), last_ms, frames: done }
}

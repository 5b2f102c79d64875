//! Builds big frame stores fast for the seek and retention scenarios: frames 10 per second with
//! realistic jitter appended to data files in panelcam's record format, their chunk rows (one
//! per 100 frames, as the writer makes them at 10 fps) inserted in large transactions into a
//! database opened with panelcam's own `db::open_writer`, and session rows covering them. A
//! finished store carries its specification in `meta`, so a cached copy is reused only when it
//! matches.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use panelcam::record::chunk::{self, FrameRef};
use panelcam::record::data::{self, HEADER, Header};
use panelcam::record::db::{Tuning, open_reader, open_writer};
use rusqlite::{OptionalExtension, params};

use crate::common::*;

/// Frames per transaction while building.
const BATCH: u64 = 50_000;
/// Frames per chunk row: ten seconds at 10 fps, as the writer commits them.
const CHUNK: usize = 100;
/// Frames per data file: ten minutes at 10 fps, as the writer rotates them.
const FILE_FRAMES: u64 = 6000;

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
    let (first_ms, last_ms): (i64, i64) =
        conn.query_row("SELECT min(first_ts), max(last_ts) FROM chunks", [], |r| Ok((r.get(0)?, r.get(1)?))).ok()?;
    Some(Built { first_ms, last_ms, frames: spec.frames })
}

fn build(path: &Path, spec: &Spec) -> Built {
    remove_db(path);
    let mut conn = open_writer(path, &Tuning::default()).expect("create the database");
    let dir = data::dir_for(path);
    std::fs::create_dir_all(&dir).expect("create the data directory");
    let mut payloads = Payloads::new(0xB01C);
    let per_session = spec.frames.div_ceil(spec.sessions.max(1));
    let mut ts = spec.start_ms;
    let (mut first_ms, mut last_ms) = (None, spec.start_ms);
    let mut done = 0u64;
    // (start, last) of the session being written
    let mut session: Option<(i64, i64)> = None;
    // The data file being appended to: (id, file, length, frames)
    let mut file: Option<(i64, std::io::BufWriter<std::fs::File>, u64, u64)> = None;
    let mut pending: Vec<FrameRef> = Vec::with_capacity(CHUNK);
    while done < spec.frames {
        let tx = conn.transaction().expect("begin");
        let end = (done + BATCH).min(spec.frames);
        while done < end {
            let len = payloads.rng().range(spec.min_bytes as i64, spec.max_bytes as i64) as usize;
            let jpeg = payloads.take(len);
            let jitter = payloads.rng().range(0, 10);
            let id = (done / per_session + 1) as i64;
            let at = ts + jitter;
            if session.is_none() {
                tx.execute(
                    "INSERT INTO sessions (id, start_ms, reason) VALUES (?1, ?2, 'bulk-built benchmark data')",
                    params![id, at],
                )
                .expect("insert a session");
            }
            if file.as_ref().is_none_or(|f| f.3 >= FILE_FRAMES) {
                flush_chunk(&tx, &mut pending);
                close_file(&tx, file.take());
                tx.execute("INSERT INTO files (session_id, created_ms) VALUES (?1, ?2)", params![id, at]).unwrap();
                let fid = tx.last_insert_rowid();
                let f = std::fs::File::create(data::file_path(&dir, fid)).expect("create a data file");
                file = Some((fid, std::io::BufWriter::with_capacity(1 << 20, f), 0, 0));
            }
            let (fid, out, flen, fframes) = file.as_mut().unwrap();
            let header = Header { len: len as u32, ts_ms: at, session_id: id, crc: data::crc32(&jpeg[..]) };
            out.write_all(&header.encode()).unwrap();
            out.write_all(&jpeg[..]).unwrap();
            pending.push(FrameRef { ts_ms: at, session_id: id, file_id: *fid, offset: *flen, len: len as u32 });
            *flen += (HEADER + len) as u64;
            *fframes += 1;
            if pending.len() >= CHUNK {
                flush_chunk(&tx, &mut pending);
            }
            first_ms.get_or_insert(at);
            last_ms = at;
            let s = session.get_or_insert((at, at));
            s.1 = at;
            done += 1;
            ts += spec.interval_ms;
            if done.is_multiple_of(per_session) || done == spec.frames {
                flush_chunk(&tx, &mut pending);
                close_file(&tx, file.take());
                let (_, last) = session.take().unwrap();
                tx.execute("UPDATE sessions SET end_ms = ?2 WHERE id = ?1", params![id, last]).expect("end a session");
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

/// Indexes the frames appended since the last chunk (and counts them into their session).
fn flush_chunk(tx: &rusqlite::Transaction, pending: &mut Vec<FrameRef>) {
    if !pending.is_empty() {
        chunk::insert(tx, pending).expect("insert a chunk");
        pending.clear();
    }
}

fn close_file(tx: &rusqlite::Transaction, file: Option<(i64, std::io::BufWriter<std::fs::File>, u64, u64)>) {
    if let Some((id, out, len, _)) = file {
        out.into_inner().expect("write a data file").sync_all().expect("sync a data file");
        tx.execute("UPDATE files SET closed = 1, bytes = ?2 WHERE id = ?1", params![id, len as i64]).unwrap();
    }
}

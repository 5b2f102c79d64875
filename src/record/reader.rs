//! Read side of a frame store: a small pool of read-only connections used from
//! `spawn_blocking`, and the queries of the REST API and replay. Frames are found in three
//! places: the chunk index (a range seek on `first_ts`, bounded because a chunk spans at most
//! a minute), the frames the writer appended but has not indexed yet (a snapshot handed in by
//! the caller, taken *before* the query so nothing falls between the two), and the JPEG rows
//! of schema 1 and 2.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Semaphore;

use super::chunk::{self, FrameRef, MAX_CHUNK_SPAN_MS};
use super::data;
use super::db::open_reader;
use super::model::{FrameEntry, SESSION_COLUMNS, Session, StoreSize, session_from_row};
use crate::store::StoreError;

/// Connections kept open for reuse.
const POOL_SIZE: usize = 3;
/// Queries of one camera running at once; more wait their turn (asynchronously), so a burst
/// of API calls or replays can neither exhaust file descriptors nor the blocking pool.
const MAX_CONCURRENT: usize = 4;

pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    running: Semaphore,
}

impl ReaderPool {
    pub fn new(path: PathBuf) -> ReaderPool {
        ReaderPool { path, idle: Mutex::new(Vec::new()), running: Semaphore::new(MAX_CONCURRENT) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit =
            self.running.acquire().await.map_err(|_| StoreError::Unavailable("frame storage closed".into()))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Database(format!("query task failed: {e}")))?
    }

    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        result
    }
}

/// Sessions overlapping `[from, to]`, oldest first.
pub fn sessions_overlapping(c: &Connection, from: i64, to: i64) -> Result<Vec<Session>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE start_ms <= ?2 AND (end_ms IS NULL OR end_ms >= ?1) ORDER BY start_ms"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![from, to], session_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn session(c: &Connection, id: i64) -> Result<Session, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
    c.query_row(&sql, [id], session_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no recording session {id}")))
}

/// What a query reads besides its connection.
pub struct View {
    /// The data files' directory.
    pub dir: PathBuf,
    /// Appended but not yet indexed frames, in time order (a snapshot).
    pub live: Vec<FrameRef>,
    /// The database still holds JPEG rows of schema 1 or 2.
    pub legacy: bool,
    /// The active session with its current counters.
    pub active: Option<Session>,
}

impl View {
    /// The active session's current counters instead of its row's (updated per chunk).
    pub fn current(&self, s: Session) -> Session {
        match &self.active {
            Some(a) if a.id == s.id => {
                Session { frame_count: a.frame_count, byte_count: a.byte_count, last_frame_ms: a.last_frame_ms, ..s }
            }
            _ => s,
        }
    }
}

/// Where a frame's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Data(FrameRef),
    Legacy(i64),
}

impl Loc {
    fn ts(&self) -> i64 {
        match self {
            Loc::Data(f) => f.ts_ms,
            Loc::Legacy(ts) => *ts,
        }
    }
}

/// A chunk row: enough to decode its frames.
struct Row {
    session_id: i64,
    file_id: i64,
    first_ts: i64,
    offset: i64,
    idx: Vec<u8>,
}

impl Row {
    fn frames(&self) -> Vec<FrameRef> {
        // A malformed row (the database is outside input too) reads as empty.
        chunk::decode(self.session_id, self.file_id, self.first_ts, self.offset as u64, &self.idx).unwrap_or_default()
    }
}

const ROW_COLUMNS: &str = "session_id, file_id, first_ts, offset, idx";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok(Row { session_id: r.get(0)?, file_id: r.get(1)?, first_ts: r.get(2)?, offset: r.get(3)?, idx: r.get(4)? })
}

fn earlier(a: Option<Loc>, b: Option<Loc>) -> Option<Loc> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.ts() < a.ts() { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn later(a: Option<Loc>, b: Option<Loc>) -> Option<Loc> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.ts() > a.ts() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The first frame with `after < ts <= until`.
fn find_after(c: &Connection, v: &View, after: i64, until: i64) -> Result<Option<Loc>, StoreError> {
    let in_range = |ts: i64| ts > after && ts <= until;
    let mut best = v.live.iter().find(|f| in_range(f.ts_ms)).copied().map(Loc::Data);
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM chunks WHERE first_ts <= ?2 AND first_ts > ?3 AND last_ts > ?1 ORDER BY first_ts"
    ))?;
    let mut rows = stmt.query(params![after, until, after.saturating_sub(MAX_CHUNK_SPAN_MS)])?;
    while let Some(r) = rows.next()? {
        let r = row(r)?;
        if best.is_some_and(|b| r.first_ts > b.ts()) {
            break;
        }
        let found = r.frames().into_iter().find(|f| in_range(f.ts_ms)).map(Loc::Data);
        best = earlier(best, found);
    }
    if v.legacy {
        let mut stmt =
            c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms > ?1 AND ts_ms <= ?2 ORDER BY ts_ms LIMIT 1")?;
        let ts: Option<i64> = stmt.query_row(params![after, until], |r| r.get(0)).optional()?;
        best = earlier(best, ts.map(Loc::Legacy));
    }
    Ok(best)
}

/// The last frame with `since <= ts < before`.
fn find_before(c: &Connection, v: &View, before: i64, since: i64) -> Result<Option<Loc>, StoreError> {
    let in_range = |ts: i64| ts < before && ts >= since;
    let mut best = v.live.iter().rev().find(|f| in_range(f.ts_ms)).copied().map(Loc::Data);
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM chunks WHERE first_ts < ?1 AND first_ts >= ?3 AND last_ts >= ?2 ORDER BY first_ts DESC"
    ))?;
    let mut rows = stmt.query(params![before, since, since.saturating_sub(MAX_CHUNK_SPAN_MS)])?;
    while let Some(r) = rows.next()? {
        let r = row(r)?;
        // A chunk ends at most a minute after it starts: this one cannot beat `best`.
        if best.is_some_and(|b| r.first_ts.saturating_add(MAX_CHUNK_SPAN_MS) < b.ts()) {
            break;
        }
        let found = r.frames().into_iter().rev().find(|f| in_range(f.ts_ms)).map(Loc::Data);
        best = later(best, found);
    }
    if v.legacy {
        let mut stmt =
            c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms < ?1 AND ts_ms >= ?2 ORDER BY ts_ms DESC LIMIT 1")?;
        let ts: Option<i64> = stmt.query_row(params![before, since], |r| r.get(0)).optional()?;
        best = later(best, ts.map(Loc::Legacy));
    }
    Ok(best)
}

fn load(c: &Connection, v: &View, loc: Loc) -> Result<(i64, Bytes), StoreError> {
    match loc {
        Loc::Data(f) => match data::read_frame(&v.dir, f.file_id, f.offset, f.len) {
            Ok(jpeg) => Ok((f.ts_ms, Bytes::from(jpeg))),
            // Deleted between the index lookup and the read (retention, a session delete).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(format!(
                "the frame at {} was deleted meanwhile",
                crate::util::iso_ms(f.ts_ms)
            ))),
            Err(e) => Err(StoreError::Database(format!("cannot read the frame at {}: {e}", f.ts_ms))),
        },
        Loc::Legacy(ts) => {
            let mut stmt = c.prepare_cached("SELECT jpeg FROM frames WHERE ts_ms = ?1")?;
            let jpeg: Vec<u8> = stmt.query_row([ts], |r| r.get(0))?;
            Ok((ts, Bytes::from(jpeg)))
        }
    }
}

/// The first frame with `ts > after` and `ts <= until`.
pub fn frame_after(c: &Connection, v: &View, after: i64, until: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    find_after(c, v, after, until)?.map(|l| load(c, v, l)).transpose()
}

/// The last frame with `ts < before` and `ts >= since`.
pub fn frame_before(c: &Connection, v: &View, before: i64, since: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    find_before(c, v, before, since)?.map(|l| load(c, v, l)).transpose()
}

/// The frame nearest to `ts` within `tolerance` ms (ties go to the later).
pub fn frame_near(c: &Connection, v: &View, ts: i64, tolerance: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    let tolerance = tolerance.max(0);
    let after = find_after(c, v, ts.saturating_sub(1), ts.saturating_add(tolerance))?;
    let before = find_before(c, v, ts, ts.saturating_sub(tolerance))?;
    let best = match (before, after) {
        (Some(b), Some(a)) => Some(if ts - b.ts() < a.ts() - ts { b } else { a }),
        (b, a) => a.or(b),
    };
    best.map(|l| load(c, v, l)).transpose()
}

/// Frame timestamps and sizes of a session within `[from, to]`, at most `limit`; the bool
/// says whether more exist.
pub fn session_frames(
    c: &Connection,
    v: &View,
    s: &Session,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<(Vec<FrameEntry>, bool), StoreError> {
    // By the session's id, not its start and end: a clock step can put a session's frames
    // outside its own wall-clock span.
    let in_range = |ts: i64| ts >= from && ts <= to;
    let mut frames: Vec<FrameEntry> = v
        .live
        .iter()
        .filter(|f| f.session_id == s.id && in_range(f.ts_ms))
        .map(|f| FrameEntry { ts_ms: f.ts_ms, size: i64::from(f.len) })
        .collect();
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM chunks WHERE session_id = ?1 AND first_ts <= ?3 AND last_ts >= ?2 ORDER BY first_ts"
    ))?;
    let mut rows = stmt.query(params![s.id, from, to])?;
    while let Some(r) = rows.next()? {
        let r = row(r)?;
        if frames.len() > limit {
            settle(&mut frames, limit);
            // Chunks come in start order: once one starts after the limit-th frame, none
            // of the rest can come before it.
            if frames.get(limit).is_some_and(|f| r.first_ts > f.ts_ms) {
                break;
            }
        }
        frames.extend(
            r.frames()
                .into_iter()
                .filter(|f| in_range(f.ts_ms))
                .map(|f| FrameEntry { ts_ms: f.ts_ms, size: i64::from(f.len) }),
        );
    }
    if v.legacy {
        let mut stmt = c.prepare_cached(
            "SELECT ts_ms, length(jpeg) FROM frames WHERE session_id = ?3 AND ts_ms >= ?1 AND ts_ms <= ?2 ORDER BY ts_ms LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![from, to, s.id, limit as i64 + 1], |r| {
            Ok(FrameEntry { ts_ms: r.get(0)?, size: r.get(1)? })
        })?;
        for f in rows {
            frames.push(f?);
        }
    }
    settle(&mut frames, limit);
    let more = frames.len() > limit;
    frames.truncate(limit);
    Ok((frames, more))
}

/// Sorts, drops duplicates (a frame both just indexed and still in the snapshot) and keeps
/// one more than `limit` (to tell whether more exist).
fn settle(frames: &mut Vec<FrameEntry>, limit: usize) {
    frames.sort_unstable_by_key(|f| f.ts_ms);
    frames.dedup_by_key(|f| f.ts_ms);
    frames.truncate(limit.saturating_add(1));
}

pub fn size(c: &Connection, v: &View, path: &Path) -> Result<StoreSize, StoreError> {
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let page_size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let free_pages: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    // The active session's counters are current in memory (its row is updated per chunk).
    let active_id = v.active.as_ref().map_or(0, |a| a.id);
    let (mut frame_count, mut frame_bytes, session_count): (i64, i64, i64) = c.query_row(
        "SELECT coalesce(sum(frame_count) FILTER (WHERE id <> ?1), 0), coalesce(sum(byte_count) FILTER (WHERE id <> ?1), 0),
         count(*) FROM sessions",
        [active_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if let Some(a) = &v.active {
        frame_count += a.frame_count;
        frame_bytes += a.byte_count;
    }
    let (mut oldest, mut newest): (Option<i64>, Option<i64>) =
        c.query_row("SELECT min(first_ts), max(last_ts) FROM chunks", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut widen = |t: Option<i64>, n: Option<i64>| {
        oldest = [oldest, t].into_iter().flatten().min();
        newest = [newest, n].into_iter().flatten().max();
    };
    widen(v.live.first().map(|f| f.ts_ms), v.live.last().map(|f| f.ts_ms));
    if v.legacy {
        let (t, n) = c.query_row("SELECT min(ts_ms), max(ts_ms) FROM frames", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        widen(t, n);
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(StoreSize {
        database_bytes: file_len(path),
        wal_bytes: file_len(Path::new(&wal)),
        data_bytes: super::recover::data_bytes(&v.dir),
        free_bytes: (free_pages * page_size) as u64,
        frame_count,
        frame_bytes,
        session_count,
        oldest_frame_ms: oldest,
        newest_frame_ms: newest,
    })
}

/// The oldest frame outside kept and active sessions.
pub fn oldest_unprotected_frame(c: &Connection, v: &View) -> Result<Option<i64>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT first_ts FROM chunks WHERE session_id NOT IN (SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL)
         ORDER BY first_ts LIMIT 1",
    )?;
    let mut oldest: Option<i64> = stmt.query_row([], |r| r.get(0)).optional()?;
    if v.legacy {
        let mut stmt = c.prepare_cached(
            "SELECT ts_ms FROM frames WHERE session_id NOT IN (SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL)
             ORDER BY ts_ms LIMIT 1",
        )?;
        let t: Option<i64> = stmt.query_row([], |r| r.get(0)).optional()?;
        oldest = [oldest, t].into_iter().flatten().min();
    }
    Ok(oldest)
}

/// Ids of the sessions retention must not touch: kept ones and the active one.
pub fn protected_session_ids(c: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

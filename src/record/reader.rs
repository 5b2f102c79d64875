//! Read side of a frame database: a small pool of read-only connections used from
//! `spawn_blocking`, and the queries of the REST API and replay. Every frame lookup is a
//! rowid (= timestamp) seek; nothing scans.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Semaphore;

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

/// Frame timestamps and sizes of a session within `[from, to]`, at most `limit`; the bool
/// says whether more exist.
pub fn session_frames(
    c: &Connection,
    s: &Session,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<(Vec<FrameEntry>, bool), StoreError> {
    // By the session's id, not its start and end: a clock step can put a session's frames
    // outside its own wall-clock span.
    let mut stmt = c.prepare_cached(
        "SELECT ts_ms, length(jpeg) FROM frames WHERE session_id = ?3 AND ts_ms >= ?1 AND ts_ms <= ?2 ORDER BY ts_ms LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![from, to, s.id, limit as i64 + 1], |r| {
        Ok(FrameEntry { ts_ms: r.get(0)?, size: r.get(1)? })
    })?;
    let mut frames: Vec<FrameEntry> = rows.collect::<Result<_, _>>()?;
    let more = frames.len() > limit;
    frames.truncate(limit);
    Ok((frames, more))
}

fn frame_bytes(c: &Connection, ts: i64) -> Result<Bytes, StoreError> {
    let mut stmt = c.prepare_cached("SELECT jpeg FROM frames WHERE ts_ms = ?1")?;
    let jpeg: Vec<u8> = stmt.query_row([ts], |r| r.get(0))?;
    Ok(Bytes::from(jpeg))
}

/// The first frame with `ts > after` and `ts <= until`.
pub fn frame_after(c: &Connection, after: i64, until: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms > ?1 AND ts_ms <= ?2 ORDER BY ts_ms LIMIT 1")?;
    let ts: Option<i64> = stmt.query_row(params![after, until], |r| r.get(0)).optional()?;
    ts.map(|ts| Ok((ts, frame_bytes(c, ts)?))).transpose()
}

/// The last frame with `ts < before` and `ts >= since`.
pub fn frame_before(c: &Connection, before: i64, since: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms < ?1 AND ts_ms >= ?2 ORDER BY ts_ms DESC LIMIT 1")?;
    let ts: Option<i64> = stmt.query_row(params![before, since], |r| r.get(0)).optional()?;
    ts.map(|ts| Ok((ts, frame_bytes(c, ts)?))).transpose()
}

/// The timestamp of the frame nearest to `ts` within `tolerance` ms (ties go to the later).
pub fn nearest_ts(c: &Connection, ts: i64, tolerance: i64) -> Result<Option<i64>, StoreError> {
    let mut up = c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms >= ?1 ORDER BY ts_ms LIMIT 1")?;
    let after: Option<i64> = up.query_row([ts], |r| r.get(0)).optional()?;
    let mut down = c.prepare_cached("SELECT ts_ms FROM frames WHERE ts_ms < ?1 ORDER BY ts_ms DESC LIMIT 1")?;
    let before: Option<i64> = down.query_row([ts], |r| r.get(0)).optional()?;
    let best = match (before, after) {
        (Some(b), Some(a)) => Some(if ts - b < a - ts { b } else { a }),
        (b, a) => a.or(b),
    };
    Ok(best.filter(|&b| (b - ts).abs() <= tolerance))
}

pub fn frame_near(c: &Connection, ts: i64, tolerance: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
    nearest_ts(c, ts, tolerance)?.map(|t| Ok((t, frame_bytes(c, t)?))).transpose()
}

pub fn size(c: &Connection, path: &Path) -> Result<StoreSize, StoreError> {
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let page_size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let free_pages: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let (frame_count, frame_bytes, session_count): (i64, i64, i64) = c.query_row(
        "SELECT coalesce(sum(frame_count), 0), coalesce(sum(byte_count), 0), count(*) FROM sessions",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let oldest: Option<i64> = c.query_row("SELECT min(ts_ms) FROM frames", [], |r| r.get(0))?;
    let newest: Option<i64> = c.query_row("SELECT max(ts_ms) FROM frames", [], |r| r.get(0))?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(StoreSize {
        database_bytes: file_len(path),
        wal_bytes: file_len(Path::new(&wal)),
        free_bytes: (free_pages * page_size) as u64,
        frame_count,
        frame_bytes,
        session_count,
        oldest_frame_ms: oldest,
        newest_frame_ms: newest,
    })
}

/// The oldest frame outside kept and active sessions.
pub fn oldest_unprotected_frame(c: &Connection) -> Result<Option<i64>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT ts_ms FROM frames WHERE session_id NOT IN (SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL)
         ORDER BY ts_ms LIMIT 1",
    )?;
    Ok(stmt.query_row([], |r| r.get(0)).optional()?)
}

/// Ids of the sessions retention must not touch: kept ones and the active one.
pub fn protected_session_ids(c: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

//! The writer thread of one camera's frame store: the only one that writes.
//!
//! A frame is appended to its session's data file at once (one `write`, into the page cache:
//! a process crash loses nothing, see [`super::recover`]), and goes into the chunk being
//! built; the chunk's index row is committed every [`CHUNK_INTERVAL`] or when the chunk is
//! full, so the index costs one small row per thirty seconds instead of one per frame. Data files
//! are fsynced every [`SYNC_INTERVAL`] and when closed: at most that much is lost to a power
//! cut, and no part of the flash is written twice for it (docs/frame-storage.md).
//!
//! Control commands commit the open chunk first. Deleting (retention, session delete) is
//! split into small, self-timed batches interleaved with frames, and frees whole data files.
//!
//! Frames belong to sessions by id, never by time: deleting a session deletes exactly its
//! files, and retention spares protected sessions by their id, so a clock that stepped
//! backwards cannot make a delete hit (or miss) a neighbour's frames.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::chunk::{self, FrameRef, MAX_CHUNK_FRAMES, MAX_CHUNK_SPAN_MS};
use super::data::{self, HEADER, Header};
use super::model::{RetentionReport, SESSION_COLUMNS, Session, session_from_row};
use super::queue::{FrameRecord, WriterQueue};
use super::shared::Shared;
use crate::store::StoreError;
use crate::util::now_ms;

mod purge;

use purge::{Finish, Purge, Target};

/// How long frames wait for their index row (they are readable and crash-safe meanwhile).
/// Every index commit rewrites a few 4 KiB pages twice (WAL, checkpoint): at 30 s that is
/// about 4 % of the bytes of 640 px JPEGs at 10 fps, at 10 s it was 12 % (docs/frame-storage.md).
pub const CHUNK_INTERVAL: Duration = Duration::from_secs(30);
/// A data file is closed at this size or age, so deleting old recordings frees whole files.
const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_FILE_AGE_MS: i64 = 10 * 60_000;
/// Data files are fsynced this often (and when closed).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(30);

pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub enum Control {
    StartSession {
        reason: Option<String>,
        now_ms: i64,
        reply: Reply<Session>,
    },
    StopSession {
        now_ms: i64,
        reply: Reply<Session>,
    },
    SetKeep {
        id: i64,
        keep: bool,
        reply: Reply<Session>,
    },
    DeleteSession {
        id: i64,
        reply: Reply<Session>,
    },
    Retention {
        cutoff_ms: i64,
        reply: Reply<RetentionReport>,
    },
    /// Commit the open chunk and fsync the data: answers once everything is durable.
    Flush {
        reply: Reply<()>,
    },
}

/// The data file frames are appended to.
struct DataFile {
    id: i64,
    session_id: i64,
    file: File,
    len: u64,
    created_ms: i64,
    synced: bool,
}

pub struct Writer {
    pub conn: Connection,
    pub camera: String,
    pub queue: Arc<WriterQueue<Control>>,
    pub shared: Arc<Shared>,
    dir: PathBuf,
    file: Option<DataFile>,
    /// Frames of the chunk being built (all in `file`, in time order).
    chunk: Vec<FrameRef>,
    chunk_since: Option<Instant>,
    last_sync: Instant,
    purges: VecDeque<Purge>,
    failures_logged: u64,
}

impl Writer {
    pub fn new(
        conn: Connection,
        camera: String,
        queue: Arc<WriterQueue<Control>>,
        shared: Arc<Shared>,
        dir: PathBuf,
    ) -> Writer {
        Writer {
            conn,
            camera,
            queue,
            shared,
            dir,
            file: None,
            chunk: Vec::new(),
            chunk_since: None,
            last_sync: Instant::now(),
            purges: VecDeque::new(),
            failures_logged: 0,
        }
    }

    pub fn run(mut self) {
        loop {
            let wait = match (self.chunk_since, self.purges.is_empty()) {
                (_, false) => Duration::ZERO,
                (Some(since), true) => CHUNK_INTERVAL.saturating_sub(since.elapsed()).min(Duration::from_secs(1)),
                (None, true) => Duration::from_secs(1),
            };
            let inbox = self.queue.take(wait);
            for frame in inbox.frames {
                self.insert(frame);
            }
            let due = self.chunk_since.is_some_and(|t| t.elapsed() >= CHUNK_INTERVAL);
            if due || !inbox.controls.is_empty() {
                self.commit_chunk();
            }
            if self.last_sync.elapsed() >= SYNC_INTERVAL {
                self.sync();
            }
            for control in inbox.controls {
                self.control(control);
            }
            if !self.purges.is_empty() {
                self.purge_step();
            }
            if inbox.closed && self.queue.is_empty() {
                self.finish();
                return;
            }
        }
    }

    /// Logs a storage failure (the first few, then every 100th); the live stream is unaffected.
    fn failed(&mut self, what: &str, e: &dyn std::fmt::Display) {
        if self.failures_logged < 5 || self.failures_logged.is_multiple_of(100) {
            error!(camera = %self.camera, "frame storage: {what}: {e}");
        }
        self.failures_logged += 1;
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn drop_frame(&mut self, what: &str, e: &dyn std::fmt::Display) {
        self.shared.frames_dropped.fetch_add(1, Relaxed);
        self.failed(what, e);
    }

    fn insert(&mut self, f: FrameRecord) {
        // Frames of a session that was stopped meanwhile are not part of any recording.
        if f.session_id != self.shared.active_id.load(Relaxed) {
            return;
        }
        let Ok(len) = u32::try_from(f.jpeg.len()) else { return self.drop_frame("frame too large", &f.jpeg.len()) };
        // Capture times only increase within a chunk: sub-second jitter moves a frame by a
        // millisecond; a clock that stepped back starts a new chunk with the real times.
        let mut ts = f.ts_ms;
        if let Some(last) = self.chunk.last().map(|c| c.ts_ms)
            && ts <= last
        {
            if last - ts < 1000 {
                ts = last + 1;
            } else if !self.commit_chunk() {
                return self.unindexable();
            }
        }
        let now = now_ms();
        let rotate = self.file.as_ref().is_none_or(|d| {
            d.session_id != f.session_id || d.len >= MAX_FILE_BYTES || now - d.created_ms >= MAX_FILE_AGE_MS
        });
        if rotate {
            if !self.commit_chunk() {
                return self.unindexable();
            }
            self.close_file();
            if let Err(e) = self.open_file(f.session_id) {
                return self.drop_frame("cannot open a data file", &e);
            }
        }
        if let Some(first) = self.chunk.first()
            && (ts - first.ts_ms > MAX_CHUNK_SPAN_MS || self.chunk.len() >= MAX_CHUNK_FRAMES)
            && !self.commit_chunk()
        {
            return self.unindexable();
        }
        let Some(d) = self.file.as_mut() else { return };
        let header = Header { len, ts_ms: ts, session_id: f.session_id, crc: data::crc32(&f.jpeg) }.encode();
        let written = d.file.write_all(&header).and_then(|_| d.file.write_all(&f.jpeg));
        if let Err(e) = written {
            // Cut a half-written record off again: the file must stay a sequence of records.
            let _ = d.file.set_len(d.len);
            return self.drop_frame("cannot append a frame", &e);
        }
        let r = FrameRef { ts_ms: ts, session_id: f.session_id, file_id: d.id, offset: d.len, len };
        d.len += HEADER as u64 + u64::from(len);
        d.synced = false;
        self.chunk.push(r);
        self.chunk_since.get_or_insert_with(Instant::now);
        self.shared.push_unindexed(r);
        self.shared.add_counts(f.session_id, 1, i64::from(len), ts);
        self.shared.frames_written.fetch_add(1, Relaxed);
        self.shared.bytes_written.fetch_add(u64::from(len), Relaxed);
        self.shared.data_bytes.fetch_add(HEADER as u64 + u64::from(len), Relaxed);
        self.shared.last_commit_ms.store(now, Relaxed);
    }

    /// A frame that needs a new chunk while the last one cannot be indexed (a full disk):
    /// dropped and counted, the pending chunk is retried.
    fn unindexable(&mut self) {
        self.drop_frame("the index cannot be written", &"frame dropped until it can");
    }

    fn open_file(&mut self, session_id: i64) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let created_ms = now_ms();
        // The row first: a file on disk always has its row (a file without one was deleted).
        self.conn
            .execute("INSERT INTO files (session_id, created_ms) VALUES (?1, ?2)", params![session_id, created_ms])
            .map_err(|e| e.to_string())?;
        let id = self.conn.last_insert_rowid();
        let path = data::file_path(&self.dir, id);
        match OpenOptions::new().create_new(true).append(true).open(&path) {
            Ok(file) => {
                self.file = Some(DataFile { id, session_id, file, len: 0, created_ms, synced: true });
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute("DELETE FROM files WHERE id = ?1", [id]);
                Err(format!("{}: {e}", path.display()))
            }
        }
    }

    /// Makes the open data file durable.
    fn sync(&mut self) {
        self.last_sync = Instant::now();
        let failure = match self.file.as_mut() {
            Some(d) if !d.synced => match d.file.sync_data() {
                Ok(()) => {
                    d.synced = true;
                    None
                }
                Err(e) => Some(e),
            },
            _ => None,
        };
        if let Some(e) = failure {
            self.failed("cannot sync a data file", &e);
        }
    }

    /// Syncs and closes the data file: nothing more is appended to it. A file whose last
    /// chunk is still pending stays marked open, so that the next start's repair indexes it
    /// should the retries fail until then.
    fn close_file(&mut self) {
        self.sync();
        if !self.chunk.is_empty() {
            self.file = None;
            return;
        }
        if let Some(d) = self.file.take() {
            let r =
                self.conn.execute("UPDATE files SET closed = 1, bytes = ?2 WHERE id = ?1", params![d.id, d.len as i64]);
            if let Err(e) = r {
                self.failed("cannot close a data file", &e);
            }
        }
    }

    /// Commits the chunk being built: its index row and its session's counters, in one
    /// transaction. `false` when that failed (a full disk, say): the chunk stays pending,
    /// readable from memory, and is retried after [`CHUNK_INTERVAL`].
    fn commit_chunk(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let result = self.conn.transaction().and_then(|tx| {
            chunk::insert(&tx, &self.chunk)?;
            tx.commit()
        });
        match result {
            Ok(()) => {
                self.shared.indexed(self.chunk.len());
                self.chunk.clear();
                self.chunk_since = None;
                true
            }
            Err(e) => {
                self.chunk_since = Some(Instant::now());
                self.failed(&format!("cannot index {} frames", self.chunk.len()), &e);
                false
            }
        }
    }

    fn session(&self, id: i64) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
        Ok(self.conn.query_row(&sql, [id], session_from_row).optional()?)
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::StartSession { reason, now_ms, reply } => {
                let _ = reply.send(self.start_session(reason, now_ms));
            }
            Control::StopSession { now_ms, reply } => {
                let _ = reply.send(self.stop_session(now_ms));
            }
            Control::SetKeep { id, keep, reply } => {
                let result = self.conn.execute("UPDATE sessions SET keep = ?2 WHERE id = ?1", params![id, keep]);
                let answer = match result {
                    Ok(0) => Err(StoreError::NotFound(format!("no recording session {id}"))),
                    Ok(_) => self
                        .session(id)
                        .and_then(|s| s.ok_or_else(|| StoreError::NotFound(format!("no recording session {id}")))),
                    Err(e) => Err(e.into()),
                };
                if let Ok(s) = &answer {
                    self.shared.set_protected(s.id, s.keep || s.is_active());
                }
                let _ = reply.send(answer);
            }
            Control::DeleteSession { id, reply } => match self.session(id) {
                Ok(Some(s)) if s.is_active() => {
                    let msg = format!("session {id} is recording; stop it before deleting it");
                    let _ = reply.send(Err(StoreError::Conflict(msg, Some(s.to_json()))));
                }
                Ok(Some(s)) => {
                    let target = Target::Session(s.id);
                    self.purges.push_back(Purge::new(target, false, Finish::DeleteSession { session: s, reply }));
                }
                Ok(None) => {
                    let _ = reply.send(Err(StoreError::NotFound(format!("no recording session {id}"))));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Control::Retention { cutoff_ms, reply } => match self.protected_ids() {
                Ok(protected) => {
                    let target = Target::Before { cutoff: cutoff_ms, protected };
                    self.purges.push_back(Purge::new(target, true, Finish::Retention { cutoff_ms, reply }));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Control::Flush { reply } => {
                self.sync();
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn start_session(&mut self, reason: Option<String>, now_ms: i64) -> Result<Session, StoreError> {
        if let Some(active) = self.shared.active() {
            let msg = format!("Recording already active (session {})", active.id);
            return Err(StoreError::Conflict(msg, Some(active.to_json())));
        }
        self.conn.execute("INSERT INTO sessions (start_ms, reason) VALUES (?1, ?2)", params![now_ms, reason])?;
        let id = self.conn.last_insert_rowid();
        let session = self.session(id)?.ok_or_else(|| StoreError::Database("session vanished".into()))?;
        info!(camera = %self.camera, session = id, reason = reason.as_deref().unwrap_or(""), "recording started");
        self.shared.set_protected(id, true);
        self.shared.set_active(Some(session.clone()));
        Ok(session)
    }

    fn stop_session(&mut self, now_ms: i64) -> Result<Session, StoreError> {
        let Some(active) = self.shared.active() else {
            return Err(StoreError::NotFound("No active recording found".into()));
        };
        self.close_file();
        // The end covers every stored frame of the session, even one stamped a moment after
        // the stop request was made.
        let end = now_ms.max(active.start_ms);
        self.conn.execute(
            "UPDATE sessions SET end_ms = max(?2, coalesce(last_frame_ms, 0)) WHERE id = ?1",
            params![active.id, end],
        )?;
        self.shared.set_active(None);
        let session = self.session(active.id)?.ok_or_else(|| StoreError::Database("session vanished".into()))?;
        self.shared.set_protected(session.id, session.keep);
        info!(camera = %self.camera, session = session.id, frames = session.frame_count, "recording stopped");
        Ok(session)
    }

    /// Ids of the sessions retention must not touch: kept ones and the active one.
    fn protected_ids(&self) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Clean shutdown: index and sync what is written, remember an active session so it
    /// continues after the restart, checkpoint and truncate the WAL.
    fn finish(&mut self) {
        self.commit_chunk();
        self.close_file();
        for job in std::mem::take(&mut self.purges) {
            self.fail_purge(job, StoreError::Unavailable("shutting down".into()));
        }
        if let Some(active) = self.shared.active() {
            let r = self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('resume_session', ?1)",
                [active.id.to_string()],
            );
            if let Err(e) = r {
                warn!(camera = %self.camera, "cannot remember the active session for the restart: {e}");
            }
        }
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }
}

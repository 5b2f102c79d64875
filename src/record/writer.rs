//! The writer thread of one frame database: the only connection that writes.
//!
//! Frames are batched into one transaction that is committed at least every
//! [`COMMIT_INTERVAL`], so a crash loses at most the last half second. Control commands
//! commit the open batch first and then run in their own transaction. Deleting (retention,
//! session delete) is split into small, self-timed batches interleaved with frame commits,
//! so ingest never waits long behind a big delete.
//!
//! Frames belong to sessions by id, never by time: deleting a session deletes exactly the
//! frames it recorded, and retention spares the frames of protected sessions by their id,
//! so a clock that stepped backwards cannot make a delete hit (or miss) a neighbour's frames.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::model::{RetentionReport, SESSION_COLUMNS, Session, session_from_row};
use super::queue::{FrameRecord, WriterQueue};
use super::shared::Shared;
use crate::store::StoreError;
use crate::util::iso_ms;

/// Upper bound on how long a frame sits in an uncommitted transaction.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// A batch bigger than this is committed early (bounds WAL growth and commit time).
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Delete batches aim to stay under this, so a frame waits at most about this long.
const DELETE_BATCH_TARGET: Duration = Duration::from_millis(30);
/// Pages returned to the filesystem per incremental-vacuum step.
const VACUUM_STEP_PAGES: i64 = 512;

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
    /// Commit now; answers once the open batch is durable in the WAL.
    Flush {
        reply: Reply<()>,
    },
}

/// Which frames a delete job removes.
enum Target {
    /// Every frame a session recorded.
    Session(i64),
    /// Frames captured before `cutoff`, except those of the `protected` sessions.
    Before { cutoff: i64, protected: Vec<i64> },
    /// No frames (only the vacuum).
    Nothing,
}

impl Target {
    /// The SQL condition on `frames` and its one parameter (ids are integers, safe to inline).
    fn filter(&self) -> (String, i64) {
        match self {
            Target::Session(id) => ("session_id = ?1".into(), *id),
            Target::Before { cutoff, protected } if protected.is_empty() => ("ts_ms < ?1".into(), *cutoff),
            Target::Before { cutoff, protected } => {
                let list: Vec<String> = protected.iter().map(i64::to_string).collect();
                (format!("ts_ms < ?1 AND session_id NOT IN ({})", list.join(",")), *cutoff)
            }
            Target::Nothing => ("0 = 1".into(), 0),
        }
    }
}

/// A delete in progress: frames still to clear (in timestamp order from `cursor`), then
/// what to do at the end.
struct Purge {
    target: Target,
    /// Frames at or below this timestamp are done.
    cursor: i64,
    report: RetentionReport,
    batch_rows: i64,
    vacuum: bool,
    finish: Finish,
}

enum Finish {
    Retention {
        cutoff_ms: i64,
        reply: Reply<RetentionReport>,
    },
    DeleteSession {
        session: Session,
        reply: Reply<Session>,
    },
    /// Only the vacuum (after a session delete).
    Nothing,
}

#[derive(Default)]
struct Pending {
    frames: i64,
    bytes: i64,
    last_ts: i64,
}

pub struct Writer {
    pub conn: Connection,
    pub camera: String,
    pub queue: Arc<WriterQueue<Control>>,
    pub shared: Arc<Shared>,
    txn_since: Option<Instant>,
    batch_bytes: usize,
    pending: HashMap<i64, Pending>,
    last_ts: i64,
    purges: VecDeque<Purge>,
    failures_logged: u64,
}

impl Writer {
    pub fn new(conn: Connection, camera: String, queue: Arc<WriterQueue<Control>>, shared: Arc<Shared>) -> Writer {
        let last_ts: i64 = conn.query_row("SELECT coalesce(max(ts_ms), 0) FROM frames", [], |r| r.get(0)).unwrap_or(0);
        Writer {
            conn,
            camera,
            queue,
            shared,
            txn_since: None,
            batch_bytes: 0,
            pending: HashMap::new(),
            last_ts,
            purges: VecDeque::new(),
            failures_logged: 0,
        }
    }

    pub fn run(mut self) {
        loop {
            let wait = match (self.txn_since, self.purges.is_empty()) {
                (_, false) => Duration::ZERO,
                (Some(since), true) => COMMIT_INTERVAL.saturating_sub(since.elapsed()),
                (None, true) => Duration::from_secs(1),
            };
            let inbox = self.queue.take(wait);
            for frame in inbox.frames {
                self.insert(frame);
            }
            let due = self.txn_since.is_some_and(|t| t.elapsed() >= COMMIT_INTERVAL);
            if due || self.batch_bytes >= MAX_BATCH_BYTES || !inbox.controls.is_empty() || !self.purges.is_empty() {
                self.commit();
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

    fn insert(&mut self, f: FrameRecord) {
        // Frames of a session that was stopped meanwhile are not part of any recording.
        if f.session_id != self.shared.active_id.load(Relaxed) {
            return;
        }
        if self.txn_since.is_none() {
            if let Err(e) = self.conn.execute_batch("BEGIN") {
                self.shared.frames_dropped.fetch_add(1, Relaxed);
                self.failed("cannot begin a frame batch", &e);
                return;
            }
            self.txn_since = Some(Instant::now());
        }
        // The capture time is the key: keep it unique and increasing. Sub-second clock
        // jitter moves a frame by a millisecond; a big backward clock step keeps real times
        // and probes for a free slot.
        let mut ts = if f.ts_ms <= self.last_ts && self.last_ts - f.ts_ms < 1000 { self.last_ts + 1 } else { f.ts_ms };
        let mut inserted = false;
        let mut error = None;
        match self.conn.prepare_cached("INSERT OR IGNORE INTO frames (ts_ms, session_id, jpeg) VALUES (?1, ?2, ?3)") {
            Ok(mut stmt) => {
                for _ in 0..1000 {
                    match stmt.execute(params![ts, f.session_id, &f.jpeg[..]]) {
                        Ok(1) => {
                            inserted = true;
                            break;
                        }
                        Ok(_) => ts += 1,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
            Err(e) => error = Some(e),
        }
        if let Some(e) = error {
            self.shared.frames_dropped.fetch_add(1, Relaxed);
            return self.failed("cannot store a frame", &e);
        }
        if !inserted {
            self.shared.frames_dropped.fetch_add(1, Relaxed);
            return;
        }
        self.last_ts = self.last_ts.max(ts);
        self.batch_bytes += f.jpeg.len();
        let p = self.pending.entry(f.session_id).or_default();
        p.frames += 1;
        p.bytes += f.jpeg.len() as i64;
        p.last_ts = p.last_ts.max(ts);
    }

    /// Commits the open frame batch together with the sessions' counters.
    fn commit(&mut self) {
        if self.txn_since.is_none() {
            return;
        }
        let result = (|| -> rusqlite::Result<()> {
            let mut update = self.conn.prepare_cached(
                "UPDATE sessions SET frame_count = frame_count + ?2, byte_count = byte_count + ?3,
                 last_frame_ms = max(coalesce(last_frame_ms, 0), ?4) WHERE id = ?1",
            )?;
            for (id, p) in &self.pending {
                update.execute(params![id, p.frames, p.bytes, p.last_ts])?;
            }
            drop(update);
            self.conn.execute_batch("COMMIT")
        })();
        let (frames, bytes): (i64, i64) = self.pending.values().fold((0, 0), |a, p| (a.0 + p.frames, a.1 + p.bytes));
        self.txn_since = None;
        self.batch_bytes = 0;
        let pending = std::mem::take(&mut self.pending);
        match result {
            Ok(()) => {
                for (id, p) in pending {
                    self.shared.add_counts(id, p.frames, p.bytes, p.last_ts);
                }
                self.shared.frames_written.fetch_add(frames as u64, Relaxed);
                self.shared.bytes_written.fetch_add(bytes as u64, Relaxed);
                self.shared.last_commit_ms.store(crate::util::now_ms(), Relaxed);
            }
            Err(e) => {
                self.shared.frames_dropped.fetch_add(frames as u64, Relaxed);
                self.failed(&format!("cannot commit {frames} frames"), &e);
            }
        }
    }

    /// Logs a storage failure (the first few, then every 100th) and abandons the batch; the
    /// live stream is unaffected.
    fn failed(&mut self, what: &str, e: &rusqlite::Error) {
        if self.failures_logged < 5 || self.failures_logged.is_multiple_of(100) {
            error!(camera = %self.camera, "frame storage: {what}: {e}");
        }
        self.failures_logged += 1;
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.txn_since = None;
        self.batch_bytes = 0;
        self.pending.clear();
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

    /// One bounded step of the oldest delete job: a batch of frames, or a vacuum step, or
    /// the job's final bookkeeping.
    fn purge_step(&mut self) {
        let Some(mut job) = self.purges.pop_front() else { return };
        let started = Instant::now();
        let step = if !matches!(job.target, Target::Nothing) {
            self.delete_batch(&mut job)
        } else if job.vacuum {
            self.vacuum_step(&mut job)
        } else {
            return self.finish_purge(job);
        };
        let took = started.elapsed();
        job.report.longest_batch_ms = job.report.longest_batch_ms.max(took.as_millis() as u64);
        // Self-tuning batch size: stay near the target whatever the disk and frame size.
        if took < DELETE_BATCH_TARGET / 2 {
            job.batch_rows = (job.batch_rows * 2).min(8192);
        } else if took > DELETE_BATCH_TARGET {
            job.batch_rows = (job.batch_rows / 2).max(4);
        }
        if let Err(e) = step {
            warn!(camera = %self.camera, "frame storage delete step failed: {e}");
            return self.fail_purge(job, e);
        }
        self.purges.push_front(job);
    }

    /// Deletes the next `batch_rows` frames of the job (in timestamp order); the job's target
    /// becomes `Nothing` when none are left.
    fn delete_batch(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let (filter, param) = job.target.filter();
        let (last, bytes, n): (Option<i64>, i64, i64) = self.conn.query_row(
            &format!(
                "SELECT max(ts_ms), coalesce(sum(size), 0), count(*) FROM
                 (SELECT ts_ms, length(jpeg) AS size FROM frames WHERE {filter} AND ts_ms > ?2 ORDER BY ts_ms LIMIT ?3)"
            ),
            params![param, job.cursor, job.batch_rows],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some(last) = last else {
            job.target = Target::Nothing;
            return Ok(());
        };
        let tx = self.conn.transaction()?;
        let frames = tx.execute(
            &format!("DELETE FROM frames WHERE {filter} AND ts_ms > ?2 AND ts_ms <= ?3"),
            params![param, job.cursor, last],
        )?;
        tx.commit()?;
        job.cursor = last;
        job.report.frames += frames as u64;
        job.report.bytes += bytes as u64;
        if n < job.batch_rows {
            job.target = Target::Nothing;
        }
        Ok(())
    }

    fn vacuum_step(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let free: i64 = self.conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free == 0 {
            job.vacuum = false;
            return Ok(());
        }
        let n = free.min(VACUUM_STEP_PAGES);
        // The pragma frees one page per step (it yields a row per page): run it to the end.
        let mut stmt = self.conn.prepare(&format!("PRAGMA incremental_vacuum({n})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        job.report.vacuumed_pages += n as u64;
        Ok(())
    }

    fn finish_purge(&mut self, job: Purge) {
        match job.finish {
            Finish::Retention { cutoff_ms, reply } => {
                let result = self.retire_sessions(cutoff_ms).map(|sessions| {
                    let mut report = job.report;
                    report.sessions = sessions;
                    report
                });
                if let Ok(r) = &result
                    && (r.frames > 0 || r.sessions > 0)
                {
                    info!(camera = %self.camera, frames = r.frames, bytes = r.bytes, sessions = r.sessions,
                          longest_batch_ms = r.longest_batch_ms, "retention deleted everything recorded before {}", iso_ms(cutoff_ms));
                }
                let _ = reply.send(result);
            }
            Finish::DeleteSession { session, reply } => {
                let result =
                    self.conn.execute("DELETE FROM sessions WHERE id = ?1", [session.id]).map(|_| session.clone());
                if result.is_ok() {
                    info!(camera = %self.camera, session = session.id, frames = job.report.frames, "recording session deleted");
                    self.shared.forget(session.id);
                    // Give the space back right away, in steps.
                    self.purges.push_back(Purge::new(Target::Nothing, true, Finish::Nothing));
                }
                let _ = reply.send(result.map_err(StoreError::from));
            }
            Finish::Nothing => {}
        }
    }

    fn fail_purge(&mut self, job: Purge, e: StoreError) {
        match job.finish {
            Finish::Retention { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Finish::DeleteSession { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Finish::Nothing => {}
        }
    }

    /// Deletes unprotected sessions that ended before the cutoff and have no frames left,
    /// and recounts the unprotected ones that lost frames. Returns how many were deleted.
    fn retire_sessions(&mut self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM sessions WHERE keep = 0 AND end_ms IS NOT NULL AND end_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM frames WHERE session_id = sessions.id)",
            [cutoff_ms],
        )?;
        tx.execute(
            "UPDATE sessions SET
               frame_count = (SELECT count(*) FROM frames WHERE session_id = sessions.id),
               byte_count = (SELECT coalesce(sum(length(jpeg)), 0) FROM frames WHERE session_id = sessions.id)
             WHERE keep = 0 AND end_ms IS NOT NULL AND start_ms < ?1",
            [cutoff_ms],
        )?;
        tx.commit()?;
        Ok(deleted as u64)
    }

    /// Clean shutdown: commit, remember an active session so it continues after the
    /// restart, checkpoint and truncate the WAL.
    fn finish(&mut self) {
        self.commit();
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

impl Purge {
    fn new(target: Target, vacuum: bool, finish: Finish) -> Purge {
        Purge { target, cursor: i64::MIN, report: RetentionReport::default(), batch_rows: 64, vacuum, finish }
    }
}

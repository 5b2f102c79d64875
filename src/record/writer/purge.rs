//! Deleting recorded frames (retention, a deleted session) in the writer thread, in small
//! self-timed steps interleaved with frames: index rows first, then rows of the old per-frame
//! layout, then whole data files (one unlink per step), then an incremental vacuum. A step
//! stops after [`DELETE_BATCH_TARGET`], so a frame waits at most about that long.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, params};
use tracing::{info, warn};

use super::{Reply, Writer};
use crate::record::chunk::{self, FrameRef};
use crate::record::data;
use crate::record::model::{RetentionReport, Session};
use crate::store::StoreError;
use crate::util::iso_ms;

/// Delete batches aim to stay under this, so a frame waits at most about this long.
const DELETE_BATCH_TARGET: Duration = Duration::from_millis(30);
/// Pages returned to the filesystem per incremental-vacuum step.
const VACUUM_STEP_PAGES: i64 = 128;

/// Which frames a delete job removes.
pub(super) enum Target {
    /// Every frame a session recorded (its chunks, its files, legacy rows).
    Session(i64),
    /// Frames captured before `cutoff`, except those of the `protected` sessions.
    Before { cutoff: i64, protected: Vec<i64> },
}

/// A delete in progress, step by step: index rows, then legacy rows, then files, then what
/// to do at the end.
pub(super) struct Purge {
    target: Target,
    stage: Stage,
    report: RetentionReport,
    batch_rows: i64,
    vacuum: bool,
    finish: Finish,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Chunks,
    Legacy,
    Files,
    Vacuum,
    Done,
}

pub(super) enum Finish {
    Retention {
        cutoff_ms: i64,
        reply: Reply<RetentionReport>,
    },
    DeleteSession {
        session: Session,
        reply: Reply<Session>,
    },
    /// Only the vacuum.
    Nothing,
}

/// An index row as a delete job reads it.
struct StoredChunk {
    id: i64,
    session_id: i64,
    file_id: i64,
    first_ts: i64,
    last_ts: i64,
    offset: i64,
    idx: Vec<u8>,
}

impl Writer {
    /// One bounded step of the oldest delete job.
    pub(super) fn purge_step(&mut self) {
        let Some(mut job) = self.purges.pop_front() else { return };
        let started = Instant::now();
        let step = match job.stage {
            Stage::Chunks => self.delete_chunks(&mut job),
            Stage::Legacy => self.delete_legacy(&mut job),
            Stage::Files => self.delete_files(&mut job),
            Stage::Vacuum => self.vacuum_step(&mut job),
            Stage::Done => return self.finish_purge(job),
        };
        let took = started.elapsed();
        job.report.longest_batch_ms = job.report.longest_batch_ms.max(took.as_millis() as u64);
        // Self-tuning batch size: stay near the target whatever the disk.
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

    /// Deletes a batch of index rows (and counts them off their sessions). Retention cuts a
    /// chunk that straddles its cutoff: the row keeps the frames from the cutoff on (their
    /// bytes go with the file).
    fn delete_chunks(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let (filter, param) = match &job.target {
            Target::Session(id) => ("session_id = ?1".to_string(), *id),
            Target::Before { cutoff, protected } => (format!("first_ts < ?1{}", not_in(protected)), *cutoff),
        };
        let cutoff = match &job.target {
            Target::Session(_) => i64::MAX,
            Target::Before { cutoff, .. } => *cutoff,
        };
        let tx = self.conn.transaction()?;
        let rows: Vec<StoredChunk> = tx
            .prepare(&format!(
                "SELECT id, session_id, file_id, first_ts, last_ts, offset, idx FROM chunks WHERE {filter} LIMIT ?2"
            ))?
            .query_map(params![param, job.batch_rows], |r| {
                Ok(StoredChunk {
                    id: r.get(0)?,
                    session_id: r.get(1)?,
                    file_id: r.get(2)?,
                    first_ts: r.get(3)?,
                    last_ts: r.get(4)?,
                    offset: r.get(5)?,
                    idx: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut per_session: HashMap<i64, (i64, i64)> = HashMap::new();
        for c in &rows {
            let frames =
                chunk::decode(c.session_id, c.file_id, c.first_ts, c.offset as u64, &c.idx).unwrap_or_default();
            let (gone, kept): (Vec<FrameRef>, Vec<FrameRef>) = frames.into_iter().partition(|f| f.ts_ms < cutoff);
            tx.execute("DELETE FROM chunks WHERE id = ?1", [c.id])?;
            if c.last_ts >= cutoff && !kept.is_empty() {
                chunk::insert(&tx, &kept)?;
                // `insert` counted the kept frames in again; they were never counted out.
                let kept_bytes: i64 = kept.iter().map(|f| i64::from(f.len)).sum();
                let e = per_session.entry(c.session_id).or_default();
                e.0 += kept.len() as i64;
                e.1 += kept_bytes;
            }
            let bytes: i64 = gone.iter().map(|f| i64::from(f.len)).sum();
            let e = per_session.entry(c.session_id).or_default();
            e.0 += gone.len() as i64;
            e.1 += bytes;
            job.report.frames += gone.len() as u64;
            job.report.bytes += bytes as u64;
        }
        for (session, (frames, bytes)) in per_session {
            tx.execute(
                "UPDATE sessions SET frame_count = max(0, frame_count - ?2), byte_count = max(0, byte_count - ?3) WHERE id = ?1",
                params![session, frames, bytes],
            )?;
        }
        tx.commit()?;
        if (rows.len() as i64) < job.batch_rows {
            job.stage = if self.shared.legacy_frames.load(Relaxed) { Stage::Legacy } else { Stage::Files };
        }
        Ok(())
    }

    /// Deletes a batch of schema-2 frames (JPEGs inside SQLite).
    fn delete_legacy(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let (filter, param) = match &job.target {
            Target::Session(id) => ("session_id = ?1".to_string(), *id),
            Target::Before { cutoff, protected } => (format!("ts_ms < ?1{}", not_in(protected)), *cutoff),
        };
        let tx = self.conn.transaction()?;
        let (n, bytes): (i64, i64) = tx.query_row(
            &format!(
                "SELECT count(*), coalesce(sum(length(jpeg)), 0) FROM
                 (SELECT jpeg FROM frames WHERE {filter} ORDER BY ts_ms LIMIT ?2)"
            ),
            params![param, job.batch_rows],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            &format!(
                "DELETE FROM frames WHERE ts_ms IN (SELECT ts_ms FROM frames WHERE {filter} ORDER BY ts_ms LIMIT ?2)"
            ),
            params![param, job.batch_rows],
        )?;
        tx.commit()?;
        job.report.frames += n as u64;
        job.report.bytes += bytes as u64;
        if n < job.batch_rows {
            job.stage = Stage::Files;
            let left: bool = self.conn.query_row("SELECT EXISTS (SELECT 1 FROM frames)", [], |r| r.get(0))?;
            self.shared.legacy_frames.store(left, Relaxed);
        }
        Ok(())
    }

    /// Deletes the data files nothing refers to any more (closed, without chunks), rows first,
    /// one file at a time until the step has used its time: unlinking a 64 MiB file frees its
    /// extents and can take tens of milliseconds on a busy disk, and a day of retention frees
    /// dozens of them, which must not stall the frames waiting behind this thread. A crash
    /// between a row's commit and its unlink leaves an orphan that startup removes.
    fn delete_files(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let open = self.file.as_ref().map_or(0, |d| d.id);
        let filter = match &job.target {
            Target::Session(id) => format!("session_id = {id}"),
            Target::Before { .. } => {
                "closed = 1 AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.file_id = files.id)".into()
            }
        };
        let started = Instant::now();
        loop {
            let id: Option<i64> = self
                .conn
                .prepare_cached(&format!("SELECT id FROM files WHERE {filter} AND id <> ?1 LIMIT 1"))?
                .query_row([open], |r| r.get(0))
                .optional()?;
            let Some(id) = id else {
                job.stage = if job.vacuum { Stage::Vacuum } else { Stage::Done };
                return Ok(());
            };
            self.conn.execute("DELETE FROM files WHERE id = ?1", [id])?;
            let path = data::file_path(&self.dir, id);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(&path).is_ok() {
                self.shared.data_bytes.fetch_sub(len.min(self.shared.data_bytes.load(Relaxed)), Relaxed);
            }
            if started.elapsed() >= DELETE_BATCH_TARGET {
                return Ok(()); // the rest in the next step, after waiting frames
            }
        }
    }

    fn vacuum_step(&mut self, job: &mut Purge) -> Result<(), StoreError> {
        let free = crate::store::sqlite::vacuum_step(&self.conn, VACUUM_STEP_PAGES)?;
        if free <= VACUUM_STEP_PAGES {
            job.stage = Stage::Done;
        }
        job.report.vacuumed_pages += free.min(VACUUM_STEP_PAGES) as u64;
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
                    // Give the index's space back right away, in steps.
                    let mut vacuum = Purge::new(Target::Session(0), true, Finish::Nothing);
                    vacuum.stage = Stage::Vacuum;
                    self.purges.push_back(vacuum);
                }
                let _ = reply.send(result.map_err(StoreError::from));
            }
            Finish::Nothing => {}
        }
    }

    pub(super) fn fail_purge(&mut self, job: Purge, e: StoreError) {
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

    /// Deletes unprotected sessions that ended before the cutoff and have nothing left.
    fn retire_sessions(&mut self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let deleted = self.conn.execute(
            "DELETE FROM sessions WHERE keep = 0 AND end_ms IS NOT NULL AND end_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM chunks WHERE session_id = sessions.id)
             AND NOT EXISTS (SELECT 1 FROM files WHERE session_id = sessions.id)
             AND NOT EXISTS (SELECT 1 FROM frames WHERE session_id = sessions.id)",
            [cutoff_ms],
        )?;
        Ok(deleted as u64)
    }
}

/// ` AND session_id NOT IN (…)` for protected session ids (integers: safe to inline).
fn not_in(ids: &[i64]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!(" AND session_id NOT IN ({})", list.join(","))
}

impl Purge {
    pub(super) fn new(target: Target, vacuum: bool, finish: Finish) -> Purge {
        Purge { target, stage: Stage::Chunks, report: RetentionReport::default(), batch_rows: 64, vacuum, finish }
    }
}

//! Frame recording: per camera, JPEGs appended to data files (`<camera>.db.frames/`) and an
//! index of them in a SQLite database (`<database_path>/<camera>.db`); a writer thread fed by
//! a bounded queue, a checkpointer thread, and read-only connections for the API and replay.
//! Live streaming never waits for storage: frames the writer cannot take are dropped from
//! the recording and counted. docs/frame-storage.md explains the layout and its numbers.

pub mod chunk;
pub mod data;
pub mod db;
pub mod model;
pub mod queue;
pub mod reader;
pub mod recorder;
pub mod recover;
pub mod shared;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::bus::Frame;
use crate::store::StoreError;
use chunk::FrameRef;
use db::{DbError, Tuning};
use model::{FrameEntry, RetentionReport, SESSION_COLUMNS, Session, StoreSize, session_from_row};
use queue::{FrameRecord, WriterQueue};
use reader::{ReaderPool, View};
use shared::Shared;
use writer::{Control, Writer};

/// Frames waiting for the writer; beyond this they are dropped (a few seconds at 10 fps).
pub const QUEUE_FRAMES: usize = 64;
/// How often the checkpointer copies the WAL into the database (and fsyncs).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub struct FrameStore {
    pub camera: String,
    path: PathBuf,
    /// The data files' directory.
    dir: PathBuf,
    queue: Arc<WriterQueue<Control>>,
    pub shared: Arc<Shared>,
    readers: Arc<ReaderPool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop_checkpointer: Arc<AtomicBool>,
    /// `false` when only sessions are kept here (frame storage disabled, video recording on).
    store_frames: bool,
}

impl FrameStore {
    /// Opens (or creates) the database, repairs what a crash left behind and starts the
    /// writer and checkpointer threads.
    pub fn open(camera: &str, path: &Path, tuning: &Tuning) -> Result<Arc<FrameStore>, DbError> {
        Self::open_with(camera, path, tuning, true)
    }

    /// Like [`FrameStore::open`]; `store_frames = false` keeps sessions only.
    pub fn open_with(
        camera: &str,
        path: &Path,
        tuning: &Tuning,
        store_frames: bool,
    ) -> Result<Arc<FrameStore>, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = db::open_writer(path, tuning)?;
        let dir = data::dir_for(path);
        std::fs::create_dir_all(&dir).map_err(|e| DbError(format!("cannot create {}: {e}", dir.display())))?;
        let in_db = |e: rusqlite::Error| DbError(format!("{}: {e}", path.display()));
        recover::repair(&mut conn, &dir, camera).map_err(in_db)?;
        let active = recover(&conn, camera).map_err(in_db)?;
        let shared = Arc::new(Shared::default());
        shared.set_active(active);
        let legacy: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM frames)", [], |r| r.get(0)).map_err(in_db)?;
        shared.legacy_frames.store(legacy, Relaxed);
        shared.data_bytes.store(recover::data_bytes(&dir), Relaxed);
        let protected: Vec<i64> = conn
            .prepare("SELECT id FROM sessions WHERE keep = 1 OR end_ms IS NULL")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(in_db)?;
        shared.load_protected(protected);
        shared.disk_bytes.store(disk_bytes(path), Relaxed);
        let queue = Arc::new(WriterQueue::new(QUEUE_FRAMES));
        let writer = Writer::new(conn, camera.to_string(), queue.clone(), shared.clone(), dir.clone());
        let name = format!("rec-{}", truncate(camera, 11));
        let spawn_err = |e: std::io::Error| DbError(format!("cannot start the writer thread: {e}"));
        let span = crate::telemetry::component("record");
        let writer_thread =
            std::thread::Builder::new().name(name).spawn(move || span.in_scope(|| writer.run())).map_err(spawn_err)?;
        let stop_checkpointer = Arc::new(AtomicBool::new(false));
        let mut threads = vec![writer_thread];
        if tuning.wal {
            let checkpoint_conn = db::open_writer(path, tuning)?;
            let stop = stop_checkpointer.clone();
            let name = format!("ckpt-{}", truncate(camera, 10));
            let (cam, shared, db_path) = (camera.to_string(), shared.clone(), path.to_path_buf());
            let t = std::thread::Builder::new()
                .name(name)
                .spawn(move || checkpointer(checkpoint_conn, stop, cam, shared, db_path))
                .map_err(spawn_err)?;
            threads.push(t);
        }
        Ok(Arc::new(FrameStore {
            camera: camera.to_string(),
            path: path.to_path_buf(),
            dir,
            queue,
            shared,
            readers: Arc::new(ReaderPool::new(path.to_path_buf())),
            threads: Mutex::new(threads),
            stop_checkpointer,
            store_frames,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while a session is recording and frames are stored: the camera must make JPEGs.
    pub fn wants_frames(&self) -> bool {
        self.store_frames && self.shared.active_id.load(Relaxed) != 0
    }

    /// Called for every captured frame; cheap when nothing records.
    pub fn offer(&self, frame: &Frame) {
        let session_id = self.shared.active_id.load(Relaxed);
        if session_id == 0 || !self.store_frames {
            return;
        }
        let record = FrameRecord { ts_ms: frame.captured_ms, session_id, jpeg: frame.jpeg.clone() };
        if !self.queue.push_frame(record) {
            let dropped = self.shared.frames_dropped.fetch_add(1, Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(100) {
                warn!(camera = %self.camera, dropped, "frame storage cannot keep up; frames dropped from the recording");
            }
        }
    }

    /// Counts frames the recorder missed before they reached `offer` (bus lag).
    pub fn count_missed(&self, n: u64) {
        if self.shared.active_id.load(Relaxed) != 0 {
            self.shared.frames_dropped.fetch_add(n, Relaxed);
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(writer::Reply<T>) -> Control) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .push_control(make(tx))
            .map_err(|_| StoreError::Unavailable("frame storage is shutting down".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("frame storage writer stopped".into()))?
    }

    pub async fn start_session(&self, reason: Option<String>) -> Result<Session, StoreError> {
        let now_ms = crate::util::now_ms();
        self.ask(|reply| Control::StartSession { reason, now_ms, reply }).await
    }

    pub async fn stop_session(&self) -> Result<Session, StoreError> {
        let now_ms = crate::util::now_ms();
        self.ask(|reply| Control::StopSession { now_ms, reply }).await
    }

    pub fn active(&self) -> Option<Session> {
        self.shared.active()
    }

    pub async fn set_keep(&self, id: i64, keep: bool) -> Result<Session, StoreError> {
        self.ask(|reply| Control::SetKeep { id, keep, reply }).await
    }

    pub async fn delete_session(&self, id: i64) -> Result<Session, StoreError> {
        self.ask(|reply| Control::DeleteSession { id, reply }).await
    }

    /// Deletes every frame captured before `cutoff_ms` outside kept and active sessions.
    pub async fn retention(&self, cutoff_ms: i64) -> Result<RetentionReport, StoreError> {
        self.ask(|reply| Control::Retention { cutoff_ms, reply }).await
    }

    /// Commits whatever the writer holds (used by tests and before a clean stop).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.ask(|reply| Control::Flush { reply }).await
    }

    /// What queries read besides the database. Taken before the query runs: a frame the
    /// writer indexes meanwhile is then found in the index or in this snapshot, never in
    /// neither.
    fn view(&self, live: impl Fn(&FrameRef) -> bool) -> View {
        View {
            dir: self.dir.clone(),
            live: self.shared.unindexed_where(live),
            legacy: self.shared.legacy_frames.load(Relaxed),
            active: self.shared.active(),
        }
    }

    pub async fn sessions(&self, from: i64, to: i64) -> Result<Vec<Session>, StoreError> {
        let v = self.view(|_| false);
        self.readers
            .run(move |c| Ok(reader::sessions_overlapping(c, from, to)?.into_iter().map(|s| v.current(s)).collect()))
            .await
    }

    pub async fn session(&self, id: i64) -> Result<Session, StoreError> {
        let v = self.view(|_| false);
        self.readers.run(move |c| Ok(v.current(reader::session(c, id)?))).await
    }

    pub async fn session_frames(
        &self,
        id: i64,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Session, Vec<FrameEntry>, bool), StoreError> {
        let v = self.view(|f| f.session_id == id && f.ts_ms >= from && f.ts_ms <= to);
        self.readers
            .run(move |c| {
                let s = v.current(reader::session(c, id)?);
                let (frames, more) = reader::session_frames(c, &v, &s, from, to, limit)?;
                Ok((s, frames, more))
            })
            .await
    }

    pub async fn frame_near(&self, ts: i64, tolerance: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
        let (lo, hi) = (ts.saturating_sub(tolerance.max(0)), ts.saturating_add(tolerance.max(0)));
        let v = self.view(|f| f.ts_ms >= lo && f.ts_ms <= hi);
        self.readers.run(move |c| reader::frame_near(c, &v, ts, tolerance)).await
    }

    pub async fn frame_after(&self, after: i64, until: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
        let v = self.view(|f| f.ts_ms > after && f.ts_ms <= until);
        self.readers.run(move |c| reader::frame_after(c, &v, after, until)).await
    }

    pub async fn frame_before(&self, before: i64, since: i64) -> Result<Option<(i64, Bytes)>, StoreError> {
        let v = self.view(|f| f.ts_ms < before && f.ts_ms >= since);
        self.readers.run(move |c| reader::frame_before(c, &v, before, since)).await
    }

    /// Ids of kept and active sessions (video deletes leave their segments alone).
    pub async fn protected_session_ids(&self) -> Result<Vec<i64>, StoreError> {
        self.readers.run(reader::protected_session_ids).await
    }

    /// The capture time of the oldest frame outside protected sessions (the disk guard's
    /// next candidate), if any.
    pub async fn oldest_unprotected_frame(&self) -> Result<Option<i64>, StoreError> {
        let v = self.view(|_| false);
        self.readers.run(move |c| reader::oldest_unprotected_frame(c, &v)).await
    }

    pub async fn size(&self) -> Result<StoreSize, StoreError> {
        let path = self.path.clone();
        let v = self.view(|_| true);
        self.readers.run(move |c| reader::size(c, &v, &path)).await
    }

    /// Database, WAL and data files, as of the last checkpoint (about a second old): status
    /// pages read it without a system call.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.disk_bytes.load(Relaxed) + self.shared.data_bytes.load(Relaxed)
    }

    /// Clean stop: the writer commits, remembers an active session for the restart, and
    /// truncates the WAL; both threads are joined.
    pub async fn shutdown(&self) {
        self.queue.close();
        self.stop_checkpointer.store(true, Relaxed);
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &threads {
            t.thread().unpark();
        }
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i], // slice-ok: `i` comes from char_indices, a character boundary
        None => s,
    }
}

/// Video recording keeps segments for the session recorded here.
impl crate::video::pipeline::Sessions for FrameStore {
    fn active_session(&self) -> Option<crate::video::pipeline::ActiveSession> {
        self.active().map(|s| crate::video::pipeline::ActiveSession { id: s.id, start_ms: s.start_ms })
    }
}

/// Startup repair. A session left open by a crash or power loss is closed at the time of
/// its last stored frame; a session that was active at a clean shutdown continues.
fn recover(conn: &Connection, camera: &str) -> Result<Option<Session>, rusqlite::Error> {
    let resume: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'resume_session'", [], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|v| v.parse().ok());
    conn.execute("DELETE FROM meta WHERE key = 'resume_session'", [])?;
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE end_ms IS NULL ORDER BY id");
    let open: Vec<Session> = conn.prepare(&sql)?.query_map([], session_from_row)?.collect::<Result<_, _>>()?;
    let mut active = None;
    for s in open {
        if Some(s.id) == resume && active.is_none() {
            info!(camera, session = s.id, "continuing the recording that was active before the restart");
            active = Some(s);
            continue;
        }
        let end = s.last_frame_ms.unwrap_or(s.start_ms);
        conn.execute("UPDATE sessions SET end_ms = ?2 WHERE id = ?1", rusqlite::params![s.id, end])?;
        warn!(
            camera,
            session = s.id,
            "closed a recording session left open by a crash, at its last frame {}",
            crate::util::iso_ms(end)
        );
    }
    Ok(active)
}

/// Database plus WAL file size.
fn disk_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.as_os_str(), &wal].iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum()
}

/// Copies the WAL into the database once a second without blocking the writer (PASSIVE),
/// and measures the files for status pages while it is at it.
fn checkpointer(conn: Connection, stop: Arc<AtomicBool>, camera: String, shared: Arc<Shared>, path: PathBuf) {
    while !stop.load(Relaxed) {
        std::thread::park_timeout(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            warn!(camera = %camera, "checkpoint failed: {e}");
        }
        shared.disk_bytes.store(disk_bytes(&path), Relaxed);
    }
}

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tests;

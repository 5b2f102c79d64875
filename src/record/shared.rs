//! State shared between a frame store's async side (API, recorder) and its writer thread.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use super::chunk::FrameRef;
use super::model::Session;

#[derive(Default)]
pub struct Shared {
    /// Mirror of the active session, written only by the writer thread.
    active: Mutex<Option<Session>>,
    /// Its id (0 = none): read for every frame, so an atomic instead of the mutex.
    pub active_id: AtomicI64,
    /// Ids of protected sessions (kept or active), for deciders that must not wait for the
    /// database (the outbox's drop order).
    protected: Mutex<HashSet<i64>>,
    pub frames_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Frames that did not make it into the recording (queue full or storage error).
    pub frames_dropped: AtomicU64,
    pub last_commit_ms: AtomicI64,
    /// Database plus WAL size, measured by the checkpointer (status pages read this).
    pub disk_bytes: AtomicU64,
    /// Bytes in the data files.
    pub data_bytes: AtomicU64,
    /// Frames written to their data file whose chunk is not committed yet: readers see them
    /// here (replay and the API read while a session records).
    unindexed: Mutex<Vec<FrameRef>>,
    /// The database still holds frames of schema 1 or 2 (JPEGs inside SQLite).
    pub legacy_frames: AtomicBool,
    /// Wakes the recorder when a session starts or ends: JPEGs are made on demand, and a new
    /// session wants them at once.
    pub session_changed: tokio::sync::Notify,
}

impl Shared {
    pub fn active(&self) -> Option<Session> {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps the active session's counters current after a committed batch.
    pub fn add_counts(&self, session_id: i64, frames: i64, bytes: i64, last_ts: i64) {
        if frames == 0 {
            return;
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = active.as_mut().filter(|s| s.id == session_id) {
            s.frame_count += frames;
            s.byte_count += bytes;
            s.last_frame_ms = Some(s.last_frame_ms.unwrap_or(0).max(last_ts));
        }
    }

    pub fn set_active(&self, s: Option<Session>) {
        self.active_id.store(s.as_ref().map(|s| s.id).unwrap_or(0), Relaxed);
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = s;
        self.session_changed.notify_one();
    }

    pub fn set_protected(&self, id: i64, protected: bool) {
        let mut set = self.protected.lock().unwrap_or_else(|e| e.into_inner());
        if protected {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    pub fn forget(&self, id: i64) {
        self.set_protected(id, false);
    }

    pub fn is_protected(&self, id: i64) -> bool {
        self.protected.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }

    /// The unindexed frames `keep` selects, in time order.
    pub fn unindexed_where(&self, keep: impl Fn(&FrameRef) -> bool) -> Vec<FrameRef> {
        self.unindexed.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|f| keep(f)).copied().collect()
    }

    pub fn push_unindexed(&self, f: FrameRef) {
        self.unindexed.lock().unwrap_or_else(|e| e.into_inner()).push(f);
    }

    /// Forgets the first `n` unindexed frames: their chunk is committed.
    pub fn indexed(&self, n: usize) {
        let mut u = self.unindexed.lock().unwrap_or_else(|e| e.into_inner());
        let n = n.min(u.len());
        u.drain(..n);
    }

    pub fn load_protected(&self, ids: impl IntoIterator<Item = i64>) {
        self.protected.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
    }
}

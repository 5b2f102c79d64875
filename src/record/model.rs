//! What the frame store hands out: sessions, frame entries, sizes. Its errors are the
//! storage layer's [`crate::store::StoreError`].

use serde_json::{Value, json};

use crate::util::iso_ms;

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: i64,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub reason: Option<String>,
    pub keep: bool,
    pub frame_count: i64,
    pub byte_count: i64,
    pub last_frame_ms: Option<i64>,
}

impl Session {
    pub fn is_active(&self) -> bool {
        self.end_ms.is_none()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "session_id": self.id,
            "start_time": iso_ms(self.start_ms),
            "end_time": self.end_ms.map(iso_ms),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "reason": self.reason,
            "keep": self.keep,
            "active": self.is_active(),
            "frame_count": self.frame_count,
            "size_bytes": self.byte_count,
            "last_frame_time": self.last_frame_ms.map(iso_ms),
        })
    }
}

/// One stored frame without its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    pub ts_ms: i64,
    pub size: i64,
}

/// Disk use of one camera's frame store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreSize {
    pub database_bytes: u64,
    pub wal_bytes: u64,
    /// The JPEGs: the data files beside the database.
    pub data_bytes: u64,
    /// Space inside the file that is free for reuse (not yet returned by incremental vacuum).
    pub free_bytes: u64,
    pub frame_count: i64,
    pub frame_bytes: i64,
    pub session_count: i64,
    pub oldest_frame_ms: Option<i64>,
    pub newest_frame_ms: Option<i64>,
}

impl StoreSize {
    pub fn to_json(&self) -> Value {
        json!({
            "database_bytes": self.database_bytes,
            "wal_bytes": self.wal_bytes,
            "data_bytes": self.data_bytes,
            "total_bytes": self.database_bytes + self.wal_bytes + self.data_bytes,
            "free_bytes": self.free_bytes,
            "frame_count": self.frame_count,
            "frame_bytes": self.frame_bytes,
            "session_count": self.session_count,
            "oldest_frame_time": self.oldest_frame_ms.map(iso_ms),
            "newest_frame_time": self.newest_frame_ms.map(iso_ms),
        })
    }
}

/// What a retention run removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub frames: u64,
    pub bytes: u64,
    pub sessions: u64,
    pub vacuumed_pages: u64,
    /// The longest single delete transaction, i.e. the longest the writer was busy with
    /// retention instead of frames.
    pub longest_batch_ms: u64,
}

pub fn session_from_row(r: &rusqlite::Row) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        start_ms: r.get(1)?,
        end_ms: r.get(2)?,
        reason: r.get(3)?,
        keep: r.get::<_, i64>(4)? != 0,
        frame_count: r.get(5)?,
        byte_count: r.get(6)?,
        last_frame_ms: r.get(7)?,
    })
}

pub const SESSION_COLUMNS: &str = "id, start_ms, end_ms, reason, keep, frame_count, byte_count, last_frame_ms";

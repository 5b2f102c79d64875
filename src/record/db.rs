//! A camera's frame database: the tuning chosen by measurement (`cargo bench --bench
//! framestore`, see docs/frame-storage.md) and the schema with its migrations, opened through
//! the shared helper in `store::sqlite`.

use std::path::Path;

use rusqlite::Connection;

pub use crate::store::sqlite::DbError;
use crate::store::sqlite::{self, Pragmas, Schema};

const SCHEMA: Schema = Schema {
    create: include_str!("schema.sql"),
    version: 3,
    migrations: &[
        // 1 → 2: frames are deleted by the session that recorded them, not by a time range (a
        // clock step backwards must not delete or shield the wrong frames).
        (1, "CREATE INDEX IF NOT EXISTS frames_by_session ON frames (session_id, ts_ms);"),
        // 2 → 3: JPEGs go to data files, SQLite keeps the index (docs/frame-storage.md); the
        // frames already stored stay where they are and are still read.
        (
            2,
            "CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL,
                 created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0) STRICT;
             CREATE TABLE chunks (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, file_id INTEGER NOT NULL,
                 first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, offset INTEGER NOT NULL, end_offset INTEGER NOT NULL,
                 frames INTEGER NOT NULL, bytes INTEGER NOT NULL, idx BLOB NOT NULL) STRICT;
             CREATE INDEX chunks_by_time ON chunks (first_ts);
             CREATE INDEX chunks_by_session ON chunks (session_id, first_ts);",
        ),
    ],
    unversioned_table: None,
};

/// SQLite settings that matter for JPEG blobs on flash. `benches/framestore.rs` compares the
/// defaults with other values and with a naive configuration; docs/frame-storage.md has the
/// numbers and why each default was chosen (not every one is the fastest on a fast disk).
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Bytes per page; only takes effect when the file is created. JPEGs of 30-100 KB are
    /// overflow chains: bigger pages mean fewer chain links to write, read and free.
    pub page_size: u32,
    /// `NORMAL` in WAL mode: a commit is an append without fsync; the checkpointer fsyncs.
    /// A process crash loses nothing committed; a power cut loses at most the commits since
    /// the last checkpoint (about a second) and never corrupts the file.
    pub synchronous: &'static str,
    /// Page cache per connection, KiB. Blobs stream through it; a big cache only costs RAM.
    pub cache_kib: i64,
    /// The WAL file is truncated back to this size after a checkpoint.
    pub journal_size_limit: i64,
    /// `true` = WAL (production); `false` = rollback journal (the naive baseline).
    pub wal: bool,
}

impl Default for Tuning {
    /// The database holds the index and the sessions, not the JPEGs (schema 3): small pages,
    /// because every page a commit touches is written twice (WAL, then checkpoint).
    fn default() -> Self {
        Tuning { page_size: 4096, synchronous: "NORMAL", cache_kib: 1024, journal_size_limit: 4 << 20, wal: true }
    }
}

impl Tuning {
    fn pragmas(&self) -> Pragmas {
        Pragmas {
            page_size: self.page_size,
            wal: self.wal,
            synchronous: self.synchronous,
            cache_kib: self.cache_kib,
            // Checkpoints run on the checkpointer thread, not inside the writer's commits.
            manual_checkpoints: true,
            journal_size_limit: self.journal_size_limit,
        }
    }
}

/// A read-write connection (the writer thread's, and the checkpointer's).
pub fn open_writer(path: &Path, t: &Tuning) -> Result<Connection, DbError> {
    sqlite::open(path, &t.pragmas(), &SCHEMA)
}

/// A read-only connection for API queries and replay.
pub fn open_reader(path: &Path) -> Result<Connection, DbError> {
    sqlite::open_reader(path, 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("panelcam-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("cam.db")
    }

    #[test]
    fn creates_the_schema_once_with_the_tuning() {
        let path = temp_db("create");
        let conn = open_writer(&path, &Tuning::default()).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, 3);
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        assert_eq!(page, 4096);
        drop(conn);
        open_writer(&path, &Tuning::default()).unwrap();
        let r = open_reader(&path).unwrap();
        let n: i64 = r.query_row("SELECT count(*) FROM sessions", [], |row| row.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn version_1_files_get_the_session_index_and_the_chunks() {
        let path = temp_db("v1");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE sessions (id INTEGER PRIMARY KEY, start_ms INTEGER NOT NULL, end_ms INTEGER, reason TEXT,
                   keep INTEGER NOT NULL DEFAULT 0, frame_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0,
                   last_frame_ms INTEGER) STRICT;
                 CREATE TABLE frames (ts_ms INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, jpeg BLOB NOT NULL) STRICT;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let c = open_writer(&path, &Tuning::default()).unwrap();
        let plan: String = c
            .query_row("EXPLAIN QUERY PLAN SELECT ts_ms FROM frames WHERE session_id = 3 LIMIT 10", [], |r| r.get(3))
            .unwrap();
        assert!(plan.contains("frames_by_session"), "{plan}");
        let chunks: i64 = c.query_row("SELECT count(*) FROM chunks", [], |r| r.get(0)).unwrap();
        assert_eq!(chunks, 0);
    }
}

//! Opening a camera's frame database with the tuning chosen by measurement
//! (`cargo bench --bench framestore`, see docs/frame-storage.md), and schema versioning.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The schema version this build writes; `PRAGMA user_version` in the file.
pub const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = include_str!("schema.sql");

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
    fn default() -> Self {
        Tuning { page_size: 16384, synchronous: "NORMAL", cache_kib: 1024, journal_size_limit: 8 << 20, wal: true }
    }
}

#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e.to_string())
    }
}

/// The one read-write connection of a database (owned by the writer thread).
pub fn open_writer(path: &Path, t: &Tuning) -> Result<Connection, DbError> {
    let ctx = |e: rusqlite::Error| DbError(format!("{}: {e}", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(ctx)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(ctx)?;
    // Both only apply to a new, empty file; harmless afterwards.
    conn.pragma_update(None, "page_size", t.page_size).map_err(ctx)?;
    // Deleted frames must give their space back to the panel's small flash, in steps
    // (`incremental_vacuum`), never in one long VACUUM.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(ctx)?;
    let mode = if t.wal { "WAL" } else { "DELETE" };
    conn.pragma_update_and_check(None, "journal_mode", mode, |r| r.get::<_, String>(0)).map_err(ctx)?;
    conn.pragma_update(None, "synchronous", t.synchronous).map_err(ctx)?;
    conn.pragma_update(None, "cache_size", -t.cache_kib).map_err(ctx)?;
    // Checkpoints run on the checkpointer thread, not inside the writer's commits.
    conn.pragma_update(None, "wal_autocheckpoint", if t.wal { 0 } else { 1000 }).map_err(ctx)?;
    conn.pragma_update(None, "journal_size_limit", t.journal_size_limit).map_err(ctx)?;
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(ctx)?;
    migrate(&conn).map_err(|e| DbError(format!("{}: {e}", path.display())))?;
    Ok(conn)
}

/// A read-only connection for API queries and replay; WAL lets it read while the writer
/// appends.
pub fn open_reader(path: &Path) -> Result<Connection, DbError> {
    let ctx = |e: rusqlite::Error| DbError(format!("{}: {e}", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(ctx)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(ctx)?;
    conn.pragma_update(None, "cache_size", -256).map_err(ctx)?;
    Ok(conn)
}

/// Creates the schema in a new file, accepts the current version, refuses a newer one
/// (a downgraded panel must not rewrite a database it does not understand).
fn migrate(conn: &Connection) -> Result<(), DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => {
            conn.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        v if v > SCHEMA_VERSION => Err(DbError(format!(
            "schema version {v} was written by a newer panelcam (this one knows {SCHEMA_VERSION}); not touching it"
        ))),
        v => Err(DbError(format!("unknown schema version {v}"))),
    }
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
        assert_eq!(v, SCHEMA_VERSION);
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        assert_eq!(page, 16384);
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0)).unwrap();
        assert_eq!(vacuum, 2, "incremental");
        drop(conn);
        // Reopening an existing file keeps it.
        open_writer(&path, &Tuning::default()).unwrap();
        let r = open_reader(&path).unwrap();
        let n: i64 = r.query_row("SELECT count(*) FROM sessions", [], |row| row.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let path = temp_db("newer");
        let conn = open_writer(&path, &Tuning::default()).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = open_writer(&path, &Tuning::default()).unwrap_err();
        assert!(err.0.contains("newer panelcam"), "{err}");
    }
}

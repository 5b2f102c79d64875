//! The one place SQLite databases are opened: pragmas chosen by measurement
//! (docs/frame-storage.md, benches/framestore.rs) and schema versions with migrations.
//! Every database panelcam writes (frames, segments, outbox) goes through [`open`].

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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

/// Connection settings. Page size and auto-vacuum only take effect when a file is created.
#[derive(Clone, Debug)]
pub struct Pragmas {
    pub page_size: u32,
    /// `true` = WAL (readers never wait for the writer); `false` = rollback journal.
    pub wal: bool,
    /// `NORMAL` in WAL mode: a commit is an append without fsync (a checkpoint fsyncs);
    /// `FULL`: every commit is fsynced (the outbox, which holds the only copy of its data).
    pub synchronous: &'static str,
    /// Page cache per connection, KiB.
    pub cache_kib: i64,
    /// `true`: checkpoints are run by the owner (a checkpointer thread), never inside commits.
    pub manual_checkpoints: bool,
    /// The WAL is truncated back to this size after a checkpoint.
    pub journal_size_limit: i64,
}

impl Default for Pragmas {
    fn default() -> Self {
        Pragmas {
            page_size: 4096,
            wal: true,
            synchronous: "NORMAL",
            cache_kib: 512,
            manual_checkpoints: false,
            journal_size_limit: 8 << 20,
        }
    }
}

/// A database's schema: the current version, how to create it, and how to get there from
/// each older version.
pub struct Schema {
    /// Full schema of a new file (the latest version).
    pub create: &'static str,
    pub version: i64,
    /// `(from, sql)`: the step from version `from` to `from + 1`.
    pub migrations: &'static [(i64, &'static str)],
    /// A table whose presence in a file without a version means "version 1" (databases
    /// created before versions were recorded).
    pub unversioned_table: Option<&'static str>,
}

/// Opens (creating if needed) a read-write database with `p` and brings its schema to the
/// current version. Deleted data gives its space back in steps (`incremental_vacuum`),
/// never in one long VACUUM.
pub fn open(path: &Path, p: &Pragmas, schema: &Schema) -> Result<Connection, DbError> {
    let ctx = |e: rusqlite::Error| DbError(format!("{}: {e}", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(ctx)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(ctx)?;
    conn.pragma_update(None, "page_size", p.page_size).map_err(ctx)?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(ctx)?;
    let mode = if p.wal { "WAL" } else { "DELETE" };
    conn.pragma_update_and_check(None, "journal_mode", mode, |r| r.get::<_, String>(0)).map_err(ctx)?;
    conn.pragma_update(None, "synchronous", p.synchronous).map_err(ctx)?;
    conn.pragma_update(None, "cache_size", -p.cache_kib).map_err(ctx)?;
    if p.wal {
        conn.pragma_update(None, "wal_autocheckpoint", if p.manual_checkpoints { 0 } else { 1000 }).map_err(ctx)?;
    }
    conn.pragma_update(None, "journal_size_limit", p.journal_size_limit).map_err(ctx)?;
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(ctx)?;
    migrate(&conn, schema).map_err(|e| DbError(format!("{}: {e}", path.display())))?;
    Ok(conn)
}

/// A read-only connection (API queries, replay): WAL lets it read while the writer appends.
pub fn open_reader(path: &Path, cache_kib: i64) -> Result<Connection, DbError> {
    let ctx = |e: rusqlite::Error| DbError(format!("{}: {e}", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(ctx)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(ctx)?;
    conn.pragma_update(None, "cache_size", -cache_kib).map_err(ctx)?;
    Ok(conn)
}

/// Creates the schema in a new file, migrates an older one step by step (each step in its
/// own transaction, so a crash mid-way resumes at the right step), refuses a newer one (a
/// downgraded panel must not rewrite a database it does not understand).
fn migrate(conn: &Connection, schema: &Schema) -> Result<(), DbError> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0
        && let Some(table) = schema.unversioned_table
    {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if exists {
            version = 1;
        }
    }
    if version == 0 {
        conn.execute_batch(&format!("BEGIN; {} PRAGMA user_version = {}; COMMIT;", schema.create, schema.version))?;
        return Ok(());
    }
    if version > schema.version {
        return Err(DbError(format!(
            "schema version {version} was written by a newer panelcam (this one knows {}); not touching it",
            schema.version
        )));
    }
    while version < schema.version {
        let Some((_, sql)) = schema.migrations.iter().find(|(from, _)| *from == version) else {
            return Err(DbError(format!("no migration from schema version {version}")));
        };
        conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {}; COMMIT;", version + 1))?;
        version += 1;
    }
    Ok(())
}

/// Returns up to `pages` freed pages to the filesystem; returns how many were free before.
/// The pragma frees one page per step (it yields a row per page), so it is stepped to the end.
pub fn vacuum_step(c: &Connection, pages: i64) -> rusqlite::Result<i64> {
    let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    if free > 0 {
        let mut stmt = c.prepare(&format!("PRAGMA incremental_vacuum({})", pages.max(1)))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
    }
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: Schema = Schema {
        create: "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX t_b ON t (b);",
        version: 2,
        migrations: &[(1, "CREATE INDEX t_b ON t (b);")],
        unversioned_table: Some("t"),
    };

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("panelcam-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("x.db")
    }

    fn indexes(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 't_b'", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn creates_new_files_at_the_latest_version() {
        let path = temp("new");
        let c = open(&path, &Pragmas { page_size: 16384, ..Pragmas::default() }, &V2).unwrap();
        assert_eq!(c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)).unwrap(), 2);
        assert_eq!(c.pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0)).unwrap(), 16384);
        assert_eq!(c.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0)).unwrap(), 2, "incremental");
        assert_eq!(c.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0)).unwrap(), "wal");
        assert_eq!(indexes(&c), 1);
    }

    #[test]
    fn migrates_old_and_unversioned_files_and_refuses_newer_ones() {
        let path = temp("old");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);").unwrap();
        }
        let c = open(&path, &Pragmas::default(), &V2).unwrap();
        assert_eq!(indexes(&c), 1, "the unversioned file was taken as version 1 and migrated");
        c.pragma_update(None, "user_version", 9).unwrap();
        drop(c);
        let e = open(&path, &Pragmas::default(), &V2).unwrap_err();
        assert!(e.0.contains("newer panelcam"), "{e}");
    }
}

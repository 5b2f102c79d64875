//! The panel-local video store of one camera: `<database_path>/<camera>/segments.db` holding
//! HLS segments (database_type "sqlite"), the index of MP4 files, and MP4 blobs
//! (mp4_storage_type "database"). Writes are one segment every few seconds, so a mutex around
//! one connection (used from the blocking pool) is all the concurrency needed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::error::StoreError;
use super::segment::{HlsMeta, Kept, Mp4Meta};
use super::sqlite::{self, Pragmas, Schema};

const SCHEMA: Schema = Schema {
    create: include_str!("segments_schema.sql"),
    version: 2,
    // 1 → 2: the covering listing indexes.
    migrations: &[(
        1,
        "CREATE INDEX IF NOT EXISTS hls_segments_listing ON hls_segments (start_ms, duration_ms, init_sha256, session_id, size);
         CREATE INDEX IF NOT EXISTS mp4_segments_listing ON mp4_segments (start_ms, duration_ms, name, size, session_id, path);",
    )],
    unversioned_table: None,
};

/// Segments are large blobs: big pages, WAL, and space returned after deletes (in steps, by
/// [`LocalIndex::vacuum_step`], off the recording path).
fn pragmas() -> Pragmas {
    Pragmas { page_size: 65536, cache_kib: 512, ..Pragmas::default() }
}

pub struct LocalIndex {
    conn: Mutex<Connection>,
    pub path: PathBuf,
}

impl LocalIndex {
    pub fn open(path: &Path) -> Result<Arc<LocalIndex>, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = sqlite::open(path, &pragmas(), &SCHEMA)?;
        Ok(Arc::new(LocalIndex { conn: Mutex::new(conn), path: path.to_path_buf() }))
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(StoreError::from)
    }

    /// Runs `f` on the blocking pool.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&LocalIndex) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| StoreError::Database(format!("task failed: {e}")))?
    }

    pub fn put_init(&self, sha256: &str, data: &[u8]) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("INSERT OR IGNORE INTO init_segments (sha256, data) VALUES (?1, ?2)", params![sha256, data])
                .map(|_| ())
        })
    }

    pub fn init(&self, sha256: &str) -> Result<Option<Bytes>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT data FROM init_segments WHERE sha256 = ?1", [sha256], |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })
        .map(|o| o.map(Bytes::from))
    }

    /// Stores a segment once; a second call for the same start time changes nothing.
    pub fn put_hls(&self, m: &HlsMeta, data: &[u8]) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO hls_segments (start_ms, duration_ms, init_sha256, session_id, size, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.start_ms, m.duration_ms, m.init_sha256, m.session_id, data.len() as i64, data],
            )
            .map(|_| ())
        })
    }

    /// Segments that overlap `[from, to]`, oldest first.
    pub fn list_hls(&self, from: i64, to: i64) -> Result<Vec<HlsMeta>, StoreError> {
        self.with(|c| {
            // Segments are at most a minute long: the start-time index bounds the scan.
            let mut stmt = c.prepare_cached(
                "SELECT start_ms, duration_ms, init_sha256, session_id, size FROM hls_segments
                 WHERE start_ms >= ?1 - 600000 AND start_ms < ?2 AND start_ms + duration_ms > ?1 ORDER BY start_ms",
            )?;
            let rows = stmt.query_map(params![from, to], |r| {
                Ok(HlsMeta {
                    start_ms: r.get(0)?,
                    duration_ms: r.get(1)?,
                    init_sha256: r.get(2)?,
                    session_id: r.get(3)?,
                    size: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn hls(&self, start_ms: i64) -> Result<Option<Bytes>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT data FROM hls_segments WHERE start_ms = ?1", [start_ms], |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })
        .map(|o| o.map(Bytes::from))
    }

    /// Deletes HLS segments starting in `[from, to)` except those of kept sessions; returns
    /// (segments, bytes).
    pub fn delete_hls(&self, from: i64, to: i64, kept: &Kept) -> Result<(u64, u64), StoreError> {
        let filter = kept.sql();
        self.with(|c| {
            let bytes: i64 = c.query_row(
                &format!(
                    "SELECT coalesce(sum(size), 0) FROM hls_segments WHERE start_ms >= ?1 AND start_ms < ?2{filter}"
                ),
                params![from, to],
                |r| r.get(0),
            )?;
            let n = c.execute(
                &format!("DELETE FROM hls_segments WHERE start_ms >= ?1 AND start_ms < ?2{filter}"),
                params![from, to],
            )?;
            c.execute(
                "DELETE FROM init_segments WHERE sha256 NOT IN (SELECT DISTINCT init_sha256 FROM hls_segments)",
                [],
            )?;
            Ok((n as u64, bytes as u64))
        })
    }

    /// Deletes the HLS segments kept for one session (its pre-event buffer included).
    pub fn delete_hls_session(&self, session_id: i64) -> Result<u64, StoreError> {
        self.with(|c| {
            let n = c.execute("DELETE FROM hls_segments WHERE session_id = ?1", [session_id])?;
            c.execute(
                "DELETE FROM init_segments WHERE sha256 NOT IN (SELECT DISTINCT init_sha256 FROM hls_segments)",
                [],
            )?;
            Ok(n as u64)
        })
    }

    pub fn put_mp4(&self, m: &Mp4Meta, data: Option<&[u8]>) -> Result<(), StoreError> {
        let path = m.path.as_ref().map(|p| p.display().to_string());
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO mp4_segments (start_ms, duration_ms, name, size, session_id, path, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![m.start_ms, m.duration_ms, m.name, m.size, m.session_id, path, data],
            )
            .map(|_| ())
        })
    }

    /// Stores an MP4 file as a blob without holding it in RAM: a zero blob of its size is
    /// inserted and filled in chunks, all in one transaction.
    pub fn put_mp4_file(&self, m: &Mp4Meta, file: &Path) -> Result<(), StoreError> {
        use std::io::{Read, Write};
        let mut input = std::fs::File::open(file)
            .map_err(|e| StoreError::Database(format!("cannot read {}: {e}", file.display())))?;
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO mp4_segments (start_ms, duration_ms, name, size, session_id, path, data)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, zeroblob(?4))",
            params![m.start_ms, m.duration_ms, m.name, m.size, m.session_id],
        )?;
        let rowid = tx.last_insert_rowid();
        {
            let mut blob = tx.blob_open(rusqlite::MAIN_DB, "mp4_segments", "data", rowid, false)?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| StoreError::Database(format!("cannot read {}: {e}", file.display())))?;
                if n == 0 {
                    break;
                }
                blob.write_all(buf.get(..n).unwrap_or_default()).map_err(|e| {
                    StoreError::Database(format!("{}: {e} (file larger than indexed?)", file.display()))
                })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn list_mp4(&self, from: i64, to: i64) -> Result<Vec<Mp4Meta>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, start_ms, duration_ms, size, session_id, path FROM mp4_segments
                 WHERE start_ms <= ?2 AND start_ms + duration_ms >= ?1 ORDER BY start_ms",
            )?;
            let rows = stmt.query_map(params![from, to], mp4_row)?;
            rows.collect()
        })
    }

    pub fn mp4(&self, name: &str) -> Result<Option<Mp4Meta>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, start_ms, duration_ms, size, session_id, path FROM mp4_segments WHERE name = ?1",
                [name],
                mp4_row,
            )
            .optional()
        })
    }

    /// Bytes `[offset, offset+len)` of an MP4 stored in the database, read incrementally so a
    /// range request never loads the whole file.
    pub fn mp4_blob_range(&self, start_ms: i64, offset: u64, len: usize) -> Result<Bytes, StoreError> {
        self.with(|c| {
            let rowid: i64 =
                c.query_row("SELECT rowid FROM mp4_segments WHERE start_ms = ?1", [start_ms], |r| r.get(0))?;
            let blob = c.blob_open(rusqlite::MAIN_DB, "mp4_segments", "data", rowid, true)?;
            let mut buf = vec![0u8; len];
            let n = blob.read_at(&mut buf, offset as usize)?;
            buf.truncate(n);
            Ok(Bytes::from(buf))
        })
    }

    /// Removes MP4 index rows (and blobs) starting in `[from, to)` except those of kept
    /// sessions; returns what was removed so the caller can delete the files.
    pub fn delete_mp4(&self, from: i64, to: i64, kept: &Kept) -> Result<Vec<Mp4Meta>, StoreError> {
        let filter = kept.sql();
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT name, start_ms, duration_ms, size, session_id, path FROM mp4_segments WHERE start_ms >= ?1 AND start_ms < ?2{filter}"
            ))?;
            let rows: Vec<Mp4Meta> = stmt.query_map(params![from, to], mp4_row)?.collect::<Result<_, _>>()?;
            c.execute(&format!("DELETE FROM mp4_segments WHERE start_ms >= ?1 AND start_ms < ?2{filter}"), params![from, to])?;
            Ok(rows)
        })
    }

    pub fn delete_mp4_named(&self, name: &str) -> Result<Option<Mp4Meta>, StoreError> {
        let found = self.mp4(name)?;
        if found.is_some() {
            self.with(|c| c.execute("DELETE FROM mp4_segments WHERE name = ?1", [name]).map(|_| ()))?;
        }
        Ok(found)
    }

    /// The start of the oldest recording the disk guard may delete (kept sessions excepted).
    pub fn oldest(&self, kept: &Kept) -> Result<Option<i64>, StoreError> {
        let filter = kept.sql();
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT min(t) FROM (SELECT min(start_ms) AS t FROM hls_segments WHERE 1 = 1{filter}
                     UNION ALL SELECT min(start_ms) FROM mp4_segments WHERE 1 = 1{filter})"
                ),
                [],
                |r| r.get(0),
            )
        })
    }

    /// Whether an MP4 file is indexed (startup: finished files a crash left unindexed).
    pub fn has_mp4(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| c.query_row("SELECT count(*) > 0 FROM mp4_segments WHERE name = ?1", [name], |r| r.get(0)))
    }

    /// Returns up to `pages` pages freed by deletes to the filesystem. The lock is held for
    /// this step only, so recording waits at most one step. Returns the pages still free.
    pub fn vacuum_step(&self, pages: i64) -> Result<i64, StoreError> {
        self.with(|c| Ok((sqlite::vacuum_step(c, pages)? - pages).max(0)))
    }
}

fn mp4_row(r: &rusqlite::Row) -> rusqlite::Result<Mp4Meta> {
    Ok(Mp4Meta {
        name: r.get(0)?,
        start_ms: r.get(1)?,
        duration_ms: r.get(2)?,
        size: r.get(3)?,
        session_id: r.get(4)?,
        path: r.get::<_, Option<String>>(5)?.map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_databases_get_the_listing_indexes() {
        let dir = std::env::temp_dir().join(format!("panelcam-local-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("segments.db");
        drop(LocalIndex::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "DROP INDEX hls_segments_listing; DROP INDEX mp4_segments_listing; PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let idx = LocalIndex::open(&path).unwrap();
        let (version, indexes): (i64, i64) = idx
            .with(|c| {
                let v = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                let n = c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE '%_listing'",
                    [],
                    |r| r.get(0),
                )?;
                Ok((v, n))
            })
            .unwrap();
        assert_eq!((version, indexes), (2, 2));
        let plan: String = idx
            .with(|c| c.query_row("EXPLAIN QUERY PLAN SELECT start_ms, duration_ms, init_sha256, session_id, size FROM hls_segments WHERE start_ms >= 0 AND start_ms < 10", [], |r| r.get(3)))
            .unwrap();
        assert!(plan.contains("COVERING INDEX"), "listings never touch segment data: {plan}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn deletes_leave_the_vacuum_to_later_steps() {
        let dir = std::env::temp_dir().join(format!("panelcam-local-vacuum-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let idx = LocalIndex::open(&dir.join("segments.db")).unwrap();
        idx.put_init("aa", b"init").unwrap();
        let data = vec![1u8; 300_000];
        for i in 0..20 {
            let m =
                HlsMeta { start_ms: i * 6000, duration_ms: 6000, init_sha256: "aa".into(), session_id: None, size: 0 };
            idx.put_hls(&m, &data).unwrap();
        }
        idx.delete_hls(0, i64::MAX, &Kept::none()).unwrap();
        let free = |idx: &LocalIndex| {
            idx.with(|c| c.pragma_query_value(None, "freelist_count", |r| r.get::<_, i64>(0))).unwrap()
        };
        let before = free(&idx);
        assert!(before > 64, "the delete returned nothing yet (the recording path did not vacuum): {before}");
        let left = idx.vacuum_step(64).unwrap();
        assert_eq!(free(&idx), before - 64);
        assert_eq!(left, before - 64);
        while idx.vacuum_step(64).unwrap() > 0 {}
        assert_eq!(free(&idx), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stores_lists_and_deletes_segments() {
        let dir = std::env::temp_dir().join(format!("panelcam-local-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let idx = LocalIndex::open(&dir.join("segments.db")).unwrap();
        idx.put_init("aa", b"init").unwrap();
        for i in 0..10 {
            let m = HlsMeta {
                start_ms: i * 6000,
                duration_ms: 6000,
                init_sha256: "aa".into(),
                session_id: Some(1),
                size: 3,
            };
            idx.put_hls(&m, b"seg").unwrap();
            idx.put_hls(&m, b"other").unwrap(); // idempotent
        }
        assert_eq!(idx.list_hls(7000, 20_000).unwrap().len(), 3, "overlapping 7 s..20 s: 6, 12, 18");
        assert_eq!(idx.hls(6000).unwrap().unwrap(), Bytes::from_static(b"seg"));
        idx.with(|c| c.execute("UPDATE hls_segments SET session_id = 2 WHERE start_ms = 12000", [])).unwrap();
        let (n, bytes) = idx.delete_hls(0, 60_000, &Kept::Sessions(vec![2])).unwrap();
        assert_eq!((n, bytes), (9, 27));
        assert!(idx.init("aa").unwrap().is_some(), "still referenced by the protected segment");
        idx.delete_hls(0, 60_000, &Kept::none()).unwrap();
        assert!(idx.init("aa").unwrap().is_none(), "unreferenced init removed");

        let m = Mp4Meta {
            name: "c_1.mp4".into(),
            start_ms: 5,
            duration_ms: 300_000,
            size: 6,
            session_id: None,
            path: None,
        };
        idx.put_mp4(&m, Some(b"abcdef")).unwrap();
        assert_eq!(idx.mp4_blob_range(5, 2, 3).unwrap(), Bytes::from_static(b"cde"));
        assert_eq!(idx.list_mp4(0, 10).unwrap(), vec![m.clone()]);
        assert!(idx.delete_mp4(0, 100, &Kept::Everything).unwrap().is_empty());
        assert_eq!(idx.delete_mp4(0, 100, &Kept::none()).unwrap(), vec![m]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

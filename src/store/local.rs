//! The panel-local video store of one camera: `<database_path>/<camera>/segments.db` indexing
//! HLS segments (database_type "sqlite"), MP4 files (mp4_storage_type "filesystem") and MP4
//! segments held by the store (mp4_storage_type "database"). Since schema 3 the bytes of HLS
//! and "database" MP4 segments are files managed by the index (`store::blobs`), not blobs in
//! SQLite, which wrote every byte twice; rows of older versions keep their blobs and are read
//! as before. Writes are one segment every few seconds, so a mutex around one connection
//! (used from the blocking pool) is all the concurrency needed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::blobs::{self, Blobs};
use super::error::StoreError;
use super::segment::{HlsMeta, Kept, Mp4Meta};
use super::sqlite::{self, Pragmas, Schema};

const SCHEMA: Schema = Schema {
    create: include_str!("segments_schema.sql"),
    version: 3,
    migrations: &[
        // 1 → 2: the covering listing indexes.
        (
            1,
            "CREATE INDEX IF NOT EXISTS hls_segments_listing ON hls_segments (start_ms, duration_ms, init_sha256, session_id, size);
             CREATE INDEX IF NOT EXISTS mp4_segments_listing ON mp4_segments (start_ms, duration_ms, name, size, session_id, path);",
        ),
        // 2 → 3: segment bytes in files beside the database (`store::blobs`).
        (2, "ALTER TABLE hls_segments ADD COLUMN file TEXT; ALTER TABLE mp4_segments ADD COLUMN file TEXT;"),
    ],
    unversioned_table: None,
};

/// Rows only (the bytes are files): small pages, because every page a commit touches is
/// written twice (WAL, checkpoint). A database created before schema 3 keeps its 64 KiB pages
/// and its blobs; space is returned after deletes in steps ([`LocalIndex::vacuum_step`]).
fn pragmas() -> Pragmas {
    Pragmas { page_size: 4096, cache_kib: 512, ..Pragmas::default() }
}

/// After a power cut, rows of segments that started this long before the newest one are
/// checked against their files (the files are not fsynced one by one).
const CHECK_AFTER_START_MS: i64 = 15 * 60_000;

pub struct LocalIndex {
    conn: Mutex<Connection>,
    pub path: PathBuf,
    blobs: Blobs,
}

impl LocalIndex {
    /// `<database_path>/<camera>`: the index, and every file of this camera's video.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn open(path: &Path) -> Result<Arc<LocalIndex>, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = sqlite::open(path, &pragmas(), &SCHEMA)?;
        let root = path.parent().unwrap_or(Path::new(".")).join("segments");
        let index = LocalIndex { conn: Mutex::new(conn), path: path.to_path_buf(), blobs: Blobs::new(root) };
        index.repair()?;
        Ok(Arc::new(index))
    }

    /// Startup: rows whose file a power cut lost or shortened go, files without a row (a
    /// crash between write and insert) go.
    fn repair(&self) -> Result<(), StoreError> {
        let newest: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT max(t) FROM (SELECT max(start_ms) AS t FROM hls_segments WHERE file IS NOT NULL
                 UNION ALL SELECT max(start_ms) FROM mp4_segments WHERE file IS NOT NULL)",
                [],
                |r| r.get(0),
            )
        })?;
        if let Some(newest) = newest {
            let since = newest - CHECK_AFTER_START_MS;
            let rows = self.files_since(since)?;
            let broken: Vec<&(String, i64, &str)> =
                rows.iter().filter(|(rel, size, _)| !self.blobs.is_whole(rel, *size as u64)).collect();
            for (rel, _, table) in &broken {
                self.with(|c| c.execute(&format!("DELETE FROM {table} WHERE file = ?1"), [rel]))?;
                self.blobs.remove(rel);
            }
            if !broken.is_empty() {
                tracing::warn!(index = %self.path.display(), segments = broken.len(), "removed segments whose bytes were lost (power cut)");
            }
        }
        // Files of the two newest days that no row names.
        let today = crate::util::now_ms().div_euclid(86_400_000) * 86_400_000;
        let since = newest.map_or(today, |n| n.div_euclid(86_400_000) * 86_400_000).min(today) - 86_400_000;
        let known: std::collections::HashSet<String> =
            self.files_since(since)?.into_iter().map(|(rel, _, _)| rel).collect();
        let removed = self.blobs.sweep_newest(2, |rel| known.contains(rel));
        if removed > 0 {
            tracing::info!(index = %self.path.display(), files = removed, "removed segment files without an index row");
        }
        Ok(())
    }

    /// (file, size, table) of file-backed rows starting at or after `since`.
    fn files_since(&self, since: i64) -> Result<Vec<(String, i64, &'static str)>, StoreError> {
        self.with(|c| {
            let mut out = Vec::new();
            for table in ["hls_segments", "mp4_segments"] {
                let mut stmt =
                    c.prepare(&format!("SELECT file, size FROM {table} WHERE start_ms >= ?1 AND file IS NOT NULL"))?;
                let rows = stmt.query_map([since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, table)))?;
                for r in rows {
                    out.push(r?);
                }
            }
            Ok(out)
        })
    }

    /// Removes day directories older than every indexed segment (after deletes).
    pub fn prune_days(&self) -> Result<usize, StoreError> {
        let oldest: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT min(t) FROM (SELECT min(start_ms) AS t FROM hls_segments UNION ALL SELECT min(start_ms) FROM mp4_segments)",
                [],
                |r| r.get(0),
            )
        })?;
        // Never yesterday or today: a segment being stored may not have its row yet.
        let yesterday = crate::util::now_ms() - 86_400_000;
        let before = blobs::day(oldest.map_or(yesterday, |o| o.min(yesterday)));
        Ok(self.blobs.prune_before(&before))
    }

    /// Bytes of the segment files (the database itself aside).
    pub fn file_bytes(&self) -> u64 {
        self.blobs.bytes()
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

    /// Stores the segment in file `src` once (its size is measured); a second call for the
    /// same start time changes nothing. The file first, then its row (see `store::blobs`).
    pub fn put_hls(&self, m: &HlsMeta, src: &Path) -> Result<(), StoreError> {
        let exists: bool = self.with(|c| {
            c.query_row("SELECT count(*) > 0 FROM hls_segments WHERE start_ms = ?1", [m.start_ms], |r| r.get(0))
        })?;
        if exists {
            return Ok(());
        }
        let name = src.file_name().and_then(|n| n.to_str()).unwrap_or("segment.m4s");
        let rel = Blobs::name(m.start_ms, &format!("{}_{name}", m.start_ms));
        let size = self.blobs.put_copy(&rel, src).map_err(|e| StoreError::Database(format!("{rel}: {e}")))?;
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO hls_segments (start_ms, duration_ms, init_sha256, session_id, size, data, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, x'', ?6)",
                params![m.start_ms, m.duration_ms, m.init_sha256, m.session_id, size as i64, rel],
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
        let row: Option<(Option<String>, i64)> = self.with(|c| {
            c.query_row("SELECT file, size FROM hls_segments WHERE start_ms = ?1", [start_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })?;
        match row {
            None => Ok(None),
            Some((Some(rel), size)) => match self.blobs.read(&rel, size.max(0) as u64) {
                Ok(data) => Ok(Some(Bytes::from(data))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StoreError::Database(format!("segment {rel}: {e}"))),
            },
            Some((None, _)) => self
                .with(|c| {
                    c.query_row("SELECT data FROM hls_segments WHERE start_ms = ?1", [start_ms], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional()
                })
                .map(|o| o.map(Bytes::from)),
        }
    }

    /// Files of the rows `filter` selects (before they are deleted).
    fn files_where(&self, table: &str, filter: &str, p: impl rusqlite::Params) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT file FROM {table} WHERE file IS NOT NULL AND {filter}"))?;
            let rows = stmt.query_map(p, |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// Deletes HLS segments starting in `[from, to)` except those of kept sessions; returns
    /// (segments, bytes).
    pub fn delete_hls(&self, from: i64, to: i64, kept: &Kept) -> Result<(u64, u64), StoreError> {
        let filter = kept.sql();
        for rel in
            self.files_where("hls_segments", &format!("start_ms >= ?1 AND start_ms < ?2{filter}"), params![from, to])?
        {
            self.blobs.remove(&rel);
        }
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
        for rel in self.files_where("hls_segments", "session_id = ?1", [session_id])? {
            self.blobs.remove(&rel);
        }
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

    /// Takes a finished MP4 file into the store (mp4_storage_type "database"): moved beside
    /// the database (no byte written again when it is on the same disk), then indexed.
    pub fn put_mp4_file(&self, m: &Mp4Meta, file: &Path) -> Result<(), StoreError> {
        let rel = Blobs::name(m.start_ms, &m.name);
        self.blobs.put_move(&rel, file).map_err(|e| StoreError::Database(format!("{}: {e}", file.display())))?;
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO mp4_segments (start_ms, duration_ms, name, size, session_id, path, data, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6)",
                params![m.start_ms, m.duration_ms, m.name, m.size, m.session_id, rel],
            )
            .map(|_| ())
        })
    }

    pub fn list_mp4(&self, from: i64, to: i64) -> Result<Vec<Mp4Meta>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, start_ms, duration_ms, size, session_id, path, file FROM mp4_segments
                 WHERE start_ms <= ?2 AND start_ms + duration_ms >= ?1 ORDER BY start_ms",
            )?;
            let rows = stmt.query_map(params![from, to], |r| mp4_row(r, &self.blobs))?;
            rows.collect()
        })
    }

    pub fn mp4(&self, name: &str) -> Result<Option<Mp4Meta>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, start_ms, duration_ms, size, session_id, path, file FROM mp4_segments WHERE name = ?1",
                [name],
                |r| mp4_row(r, &self.blobs),
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
                "SELECT name, start_ms, duration_ms, size, session_id, path, file FROM mp4_segments WHERE start_ms >= ?1 AND start_ms < ?2{filter}"
            ))?;
            let rows: Vec<Mp4Meta> =
                stmt.query_map(params![from, to], |r| mp4_row(r, &self.blobs))?.collect::<Result<_, _>>()?;
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

/// An MP4 row; a segment held by the store as a file reads like a filesystem one (`path`).
fn mp4_row(r: &rusqlite::Row, blobs: &Blobs) -> rusqlite::Result<Mp4Meta> {
    let file: Option<String> = r.get(6)?;
    Ok(Mp4Meta {
        name: r.get(0)?,
        start_ms: r.get(1)?,
        duration_ms: r.get(2)?,
        size: r.get(3)?,
        session_id: r.get(4)?,
        path: r.get::<_, Option<String>>(5)?.map(PathBuf::from).or_else(|| file.and_then(|f| blobs.path(&f))),
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
                "DROP INDEX hls_segments_listing; DROP INDEX mp4_segments_listing;
                 ALTER TABLE hls_segments DROP COLUMN file; ALTER TABLE mp4_segments DROP COLUMN file;
                 PRAGMA user_version = 1;",
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
        assert_eq!((version, indexes), (3, 2));
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
        // Blobs of schema 2 (the only rows that free pages inside the database).
        let data = vec![1u8; 300_000];
        for i in 0..20i64 {
            idx.with(|c| {
                c.execute(
                    "INSERT INTO hls_segments (start_ms, duration_ms, init_sha256, size, data) VALUES (?1, 6000, 'aa', 300000, ?2)",
                    params![i * 6000, data],
                )
            })
            .unwrap();
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
        let (seg, other) = (dir.join("seg.m4s"), dir.join("other.m4s"));
        std::fs::write(&seg, b"seg").unwrap();
        std::fs::write(&other, b"other").unwrap();
        for i in 0..10 {
            let m = HlsMeta {
                start_ms: i * 6000,
                duration_ms: 6000,
                init_sha256: "aa".into(),
                session_id: Some(1),
                size: 0,
            };
            idx.put_hls(&m, &seg).unwrap();
            idx.put_hls(&m, &other).unwrap(); // idempotent
        }
        assert_eq!(idx.list_hls(7000, 20_000).unwrap().len(), 3, "overlapping 7 s..20 s: 6, 12, 18");
        assert_eq!(idx.hls(6000).unwrap().unwrap(), Bytes::from_static(b"seg"));
        idx.with(|c| c.execute("UPDATE hls_segments SET session_id = 2 WHERE start_ms = 12000", [])).unwrap();
        let (n, bytes) = idx.delete_hls(0, 60_000, &Kept::Sessions(vec![2])).unwrap();
        assert_eq!((n, bytes), (9, 27));
        assert_eq!(idx.file_bytes(), 3, "the files went with their rows");
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

    #[test]
    fn segment_bytes_are_files_and_a_restart_repairs_what_a_crash_left() {
        let dir = std::env::temp_dir().join(format!("panelcam-local-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let idx = LocalIndex::open(&dir.join("segments.db")).unwrap();
        let t = crate::util::now_ms();
        let src = dir.join("seg_1.m4s");
        std::fs::write(&src, vec![7u8; 1000]).unwrap();
        for i in 0..4 {
            let m = HlsMeta {
                start_ms: t + i * 2000,
                duration_ms: 2000,
                init_sha256: "aa".into(),
                session_id: None,
                size: 0,
            };
            idx.put_hls(&m, &src).unwrap();
        }
        assert_eq!(idx.hls(t).unwrap().unwrap().len(), 1000);
        assert_eq!(idx.list_hls(t, t + 10_000).unwrap()[0].size, 1000, "the size is measured");
        // An MP4 segment held by the store is moved in, not copied, and reads like a file.
        let part = dir.join("c_1.mp4.part");
        std::fs::write(&part, b"mp4bytes").unwrap();
        let m = Mp4Meta {
            name: "c_1.mp4".into(),
            start_ms: t,
            duration_ms: 300_000,
            size: 8,
            session_id: None,
            path: None,
        };
        idx.put_mp4_file(&m, &part).unwrap();
        assert!(!part.exists());
        let stored = idx.mp4("c_1.mp4").unwrap().unwrap().path.unwrap();
        assert_eq!(std::fs::read(&stored).unwrap(), b"mp4bytes");
        // A legacy row with its blob inside the database still reads.
        idx.with(|c| {
            c.execute("INSERT INTO hls_segments (start_ms, duration_ms, init_sha256, size, data) VALUES (5, 1, 'aa', 3, x'010203')", [])
        })
        .unwrap();
        assert_eq!(idx.hls(5).unwrap().unwrap().as_ref(), &[1, 2, 3]);
        let files: Vec<String> = idx.files_since(t).unwrap().into_iter().map(|f| f.0).collect();
        drop(idx);
        // The crash: one file lost, one cut short, one written without its row.
        let root = dir.join("segments");
        std::fs::remove_file(root.join(&files[0])).unwrap();
        std::fs::write(root.join(&files[1]), b"short").unwrap();
        let orphan = root.join(blobs::day(t)).join("orphan.m4s");
        std::fs::write(&orphan, b"x").unwrap();
        let idx = LocalIndex::open(&dir.join("segments.db")).unwrap();
        assert!(!orphan.exists(), "a file no row names is removed");
        assert_eq!(idx.list_hls(t, t + 10_000).unwrap().len(), 2, "rows without their bytes are removed");
        assert!(idx.hls(t + 4000).unwrap().is_some());
        assert!(idx.mp4("c_1.mp4").unwrap().is_some());
        // Deleting removes the files too; the emptied day directory goes.
        idx.delete_hls(i64::MIN, i64::MAX, &Kept::none()).unwrap();
        let removed = idx.delete_mp4(i64::MIN, i64::MAX, &Kept::none()).unwrap();
        for m in removed {
            std::fs::remove_file(m.path.unwrap()).unwrap();
        }
        assert_eq!(idx.file_bytes(), 0);
        assert_eq!(idx.prune_days().unwrap(), 0, "today's directory stays while it is today");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

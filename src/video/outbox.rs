//! The durable store-and-forward outbox: segments waiting for PostgreSQL, on the panel's
//! disk, surviving restarts and network outages.
//!
//! `<database_path>/outbox/outbox.db` lists the items; each item's bytes are the file
//! `<database_path>/outbox/<id>`. An item is written as a temp file (fsynced), then the row
//! is inserted and the file renamed in one step; at startup rows without files and files
//! without rows are removed. When the disk budget is full the oldest waiting media items are
//! dropped, counted (durably) and logged: nothing disappears silently.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::segment::{Kept, hex};
use crate::record::model::StoreError;
use crate::util::now_ms;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id          INTEGER PRIMARY KEY,   -- also the file name in the outbox directory
    camera      TEXT NOT NULL,         -- camera id
    kind        TEXT NOT NULL,         -- 'init', 'hls' or 'mp4'
    start_ms    INTEGER NOT NULL,      -- segment start (init: 0)
    duration_ms INTEGER NOT NULL,
    name        TEXT,                  -- MP4 file name
    init_sha256 TEXT,                  -- HLS: its init segment
    session_id  INTEGER,
    size        INTEGER NOT NULL,      -- bytes of the file
    sha256      TEXT NOT NULL,         -- hex SHA-256 of the file, verified after upload
    created_ms  INTEGER NOT NULL,      -- when it entered the outbox
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS counters (
    key   TEXT PRIMARY KEY,            -- 'dropped_items', 'dropped_bytes', 'uploaded_items', 'uploaded_bytes'
    value INTEGER NOT NULL
) STRICT;";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Init,
    Hls,
    Mp4,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Hls => "hls",
            Kind::Mp4 => "mp4",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "init" => Kind::Init,
            "mp4" => Kind::Mp4,
            _ => Kind::Hls,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: i64,
    pub camera: String,
    pub kind: Kind,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub name: Option<String>,
    pub init_sha256: Option<String>,
    pub session_id: Option<i64>,
    pub size: i64,
    pub sha256: String,
    pub created_ms: i64,
    pub attempts: i64,
}

/// What to enqueue (everything but what the outbox computes itself).
#[derive(Clone, Debug)]
pub struct NewItem {
    pub camera: String,
    pub kind: Kind,
    pub start_ms: i64,
    pub duration_ms: i64,
    pub name: Option<String>,
    pub init_sha256: Option<String>,
    pub session_id: Option<i64>,
}

pub struct Outbox {
    dir: PathBuf,
    conn: Mutex<Connection>,
    budget: u64,
    /// Wakes the shipper when something arrives.
    pub arrived: tokio::sync::Notify,
    /// Init segments already queued or shipped, so each is sent once per run.
    known_inits: Mutex<HashSet<(String, String)>>,
    pub last_error: Mutex<Option<String>>,
    pub reachable: std::sync::atomic::AtomicBool,
    pub uploaded_since_start: AtomicU64,
}

const COLUMNS: &str =
    "id, camera, kind, start_ms, duration_ms, name, init_sha256, session_id, size, sha256, created_ms, attempts";

fn item_row(r: &rusqlite::Row) -> rusqlite::Result<Item> {
    Ok(Item {
        id: r.get(0)?,
        camera: r.get(1)?,
        kind: Kind::parse(&r.get::<_, String>(2)?),
        start_ms: r.get(3)?,
        duration_ms: r.get(4)?,
        name: r.get(5)?,
        init_sha256: r.get(6)?,
        session_id: r.get(7)?,
        size: r.get(8)?,
        sha256: r.get(9)?,
        created_ms: r.get(10)?,
        attempts: r.get(11)?,
    })
}

impl Outbox {
    pub fn open(dir: &Path, budget: u64) -> Result<Arc<Outbox>, StoreError> {
        let io = |e: std::io::Error| StoreError::Database(format!("outbox {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let conn = Connection::open(dir.join("outbox.db"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        // The outbox is the only copy of data on its way out: commits are fsynced.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            conn: Mutex::new(conn),
            budget,
            arrived: tokio::sync::Notify::new(),
            known_inits: Mutex::new(HashSet::new()),
            last_error: Mutex::new(None),
            reachable: std::sync::atomic::AtomicBool::new(true),
            uploaded_since_start: AtomicU64::new(0),
        };
        outbox.recover()?;
        Ok(Arc::new(outbox))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn file(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Removes what a crash left half done.
    fn recover(&self) -> Result<(), StoreError> {
        let ids: HashSet<i64> = {
            let c = self.lock();
            let mut stmt = c.prepare("SELECT id FROM items")?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<HashSet<i64>, _>>()?
        };
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| StoreError::Database(e.to_string()))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.parse::<i64>() {
                Ok(id) if ids.contains(&id) => {
                    present.insert(id);
                }
                Ok(_) => {
                    warn!(file = %name, "outbox: removing a file without an entry (crash while queueing)");
                    let _ = std::fs::remove_file(entry.path());
                }
                Err(_) if name.ends_with(".tmp") => {
                    let _ = std::fs::remove_file(entry.path());
                }
                Err(_) => {}
            }
        }
        let c = self.lock();
        for id in ids.difference(&present) {
            warn!(id, "outbox: entry without its file removed");
            c.execute("DELETE FROM items WHERE id = ?1", [id])?;
        }
        let (n, bytes): (i64, i64) =
            c.query_row("SELECT count(*), coalesce(sum(size), 0) FROM items", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if n > 0 {
            info!(items = n, bytes, "outbox: resuming uploads left from before the restart");
        }
        Ok(())
    }

    /// True the first time an init segment is offered in this run.
    pub fn init_is_new(&self, camera: &str, sha: &str) -> bool {
        self.known_inits.lock().unwrap_or_else(|e| e.into_inner()).insert((camera.to_string(), sha.to_string()))
    }

    /// Copies `source` into the outbox as a new item. Blocking: call from the blocking pool.
    pub fn enqueue(&self, new: NewItem, source: &Path) -> Result<Item, StoreError> {
        let io = |e: std::io::Error| StoreError::Database(format!("outbox: {}: {e}", source.display()));
        // Every camera's pipeline thread enqueues: the temp name must be unique per call.
        static NEXT_TMP: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!("{}-{}.tmp", std::process::id(), NEXT_TMP.fetch_add(1, Relaxed)));
        let tmp_err = |e: std::io::Error| StoreError::Database(format!("outbox: {}: {e}", tmp.display()));
        let (size, sha) = {
            let mut input = std::fs::File::open(source).map_err(io)?;
            let mut out = std::fs::File::create(&tmp).map_err(tmp_err)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 << 10];
            let mut size = 0u64;
            loop {
                let n = input.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(tmp_err)?;
                size += n as u64;
            }
            out.sync_all().map_err(tmp_err)?;
            (size, hex(&hasher.finalize()))
        };
        self.make_room(size)?;
        let mut c = self.lock();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO items (camera, kind, start_ms, duration_ms, name, init_sha256, session_id, size, sha256, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![new.camera, new.kind.as_str(), new.start_ms, new.duration_ms, new.name, new.init_sha256, new.session_id, size as i64, sha, now_ms()],
        )?;
        let id = tx.last_insert_rowid();
        std::fs::rename(&tmp, self.file(id)).map_err(tmp_err)?;
        tx.commit()?;
        let item = tx_item(&c, id)?;
        drop(c);
        self.arrived.notify_one();
        Ok(item)
    }

    /// Drops the oldest media items until `incoming` more bytes fit the budget.
    fn make_room(&self, incoming: u64) -> Result<(), StoreError> {
        loop {
            let c = self.lock();
            let used: i64 = c.query_row("SELECT coalesce(sum(size), 0) FROM items", [], |r| r.get(0))?;
            if used as u64 + incoming <= self.budget {
                return Ok(());
            }
            let oldest: Option<Item> = c
                .query_row(
                    &format!("SELECT {COLUMNS} FROM items WHERE kind <> 'init' ORDER BY start_ms, id LIMIT 1"),
                    [],
                    item_row,
                )
                .optional()?;
            let Some(old) = oldest else { return Ok(()) };
            c.execute("DELETE FROM items WHERE id = ?1", [old.id])?;
            bump(&c, "dropped_items", 1)?;
            bump(&c, "dropped_bytes", old.size)?;
            drop(c);
            let _ = std::fs::remove_file(self.file(old.id));
            warn!(camera = %old.camera, kind = old.kind.as_str(), start = %crate::util::iso_ms(old.start_ms), bytes = old.size,
                  "outbox full ({} bytes budget): dropped the oldest waiting segment", self.budget);
        }
    }

    /// The next item to ship: alternately the oldest (draining a backlog in order) and the
    /// newest live one (so a backlog never starves the present).
    pub fn next(&self, live_turn: bool, live_window_ms: i64) -> Result<Option<Item>, StoreError> {
        let c = self.lock();
        // Init segments first: media refers to them.
        let init = c
            .query_row(&format!("SELECT {COLUMNS} FROM items WHERE kind = 'init' ORDER BY id LIMIT 1"), [], item_row)
            .optional()?;
        if init.is_some() {
            return Ok(init);
        }
        if live_turn {
            let live = c
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM items WHERE created_ms >= ?1 ORDER BY start_ms DESC, id DESC LIMIT 1"
                    ),
                    [now_ms() - live_window_ms],
                    item_row,
                )
                .optional()?;
            if live.is_some() {
                return Ok(live);
            }
        }
        // Items the server keeps refusing go behind the others instead of blocking them.
        let sql = format!("SELECT {COLUMNS} FROM items ORDER BY min(attempts, 3), start_ms, id LIMIT 1");
        Ok(c.query_row(&sql, [], item_row).optional()?)
    }

    /// The item arrived and was verified: forget it.
    pub fn done(&self, item: &Item) -> Result<(), StoreError> {
        let c = self.lock();
        c.execute("DELETE FROM items WHERE id = ?1", [item.id])?;
        bump(&c, "uploaded_items", 1)?;
        bump(&c, "uploaded_bytes", item.size)?;
        drop(c);
        let _ = std::fs::remove_file(self.file(item.id));
        self.uploaded_since_start.fetch_add(1, Relaxed);
        Ok(())
    }

    pub fn failed(&self, item: &Item, error: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE items SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![item.id, error],
        )?;
        Ok(())
    }

    /// Waiting items of a camera and kind overlapping `[from, to]` (for playback before
    /// the upload happened).
    pub fn pending(&self, camera: &str, kind: Kind, from: i64, to: i64) -> Result<Vec<Item>, StoreError> {
        let c = self.lock();
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE camera = ?1 AND kind = ?2 AND start_ms <= ?4 AND (start_ms + duration_ms > ?3 OR start_ms = ?3) ORDER BY start_ms"
        ))?;
        let rows = stmt.query_map(params![camera, kind.as_str(), from, to], item_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn pending_init(&self, camera: &str, sha: &str) -> Result<Option<Item>, StoreError> {
        let c = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM items WHERE camera = ?1 AND kind = 'init' AND sha256 = ?2 LIMIT 1");
        Ok(c.query_row(&sql, params![camera, sha], item_row).optional()?)
    }

    /// Deletes waiting items of a camera and kind starting in `[from, to)`, except those of
    /// kept sessions.
    pub fn remove_starting(
        &self,
        camera: &str,
        kind: Kind,
        from: i64,
        to: i64,
        kept: &Kept,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT id FROM items WHERE camera = ?1 AND kind = ?2 AND start_ms >= ?3 AND start_ms < ?4{}",
            kept.sql()
        );
        self.remove_where(&sql, params![camera, kind.as_str(), from, to])
    }

    /// Deletes waiting items of a camera, kind and session.
    pub fn remove_session(&self, camera: &str, kind: Kind, session_id: i64) -> Result<u64, StoreError> {
        let sql = "SELECT id FROM items WHERE camera = ?1 AND kind = ?2 AND session_id = ?3";
        self.remove_where(sql, params![camera, kind.as_str(), session_id])
    }

    /// Deletes the items (rows and files) whose ids `select` returns.
    fn remove_where(&self, select: &str, args: impl rusqlite::Params) -> Result<u64, StoreError> {
        let c = self.lock();
        let mut stmt = c.prepare(select)?;
        let ids: Vec<i64> = stmt.query_map(args, |r| r.get(0))?.collect::<Result<_, _>>()?;
        for id in &ids {
            c.execute("DELETE FROM items WHERE id = ?1", [id])?;
            let _ = std::fs::remove_file(self.file(*id));
        }
        Ok(ids.len() as u64)
    }

    pub fn status(&self) -> Value {
        let c = self.lock();
        let (items, bytes, oldest): (i64, i64, Option<i64>) = c
            .query_row("SELECT count(*), coalesce(sum(size), 0), min(created_ms) FROM items", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap_or((0, 0, None));
        let counter = |k: &str| {
            c.query_row("SELECT value FROM counters WHERE key = ?1", [k], |r| r.get::<_, i64>(0)).unwrap_or(0)
        };
        json!({
            "pending_items": items,
            "pending_bytes": bytes,
            "budget_bytes": self.budget,
            "oldest_pending_age_secs": oldest.map(|o| (now_ms() - o) / 1000),
            "dropped_items": counter("dropped_items"),
            "dropped_bytes": counter("dropped_bytes"),
            "uploaded_items": counter("uploaded_items"),
            "uploaded_bytes": counter("uploaded_bytes"),
            "postgresql_reachable": self.reachable.load(Relaxed),
            "last_error": self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

fn tx_item(c: &Connection, id: i64) -> Result<Item, StoreError> {
    Ok(c.query_row(&format!("SELECT {COLUMNS} FROM items WHERE id = ?1"), [id], item_row)?)
}

fn bump(c: &Connection, key: &str, by: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO counters (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = value + ?2",
        params![key, by],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests;

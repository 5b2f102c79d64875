//! The durable store-and-forward outbox: segments waiting for PostgreSQL, on the panel's
//! disk, surviving restarts, crashes and network outages.
//!
//! `<database_path>/outbox/outbox.db` lists the items; each item's bytes are the file
//! `<database_path>/outbox/<id>`. Ids come from `AUTOINCREMENT` and are never reused, so a
//! file name always belongs to exactly one item, even while another thread deletes.
//!
//! An item is written row first: the row (state `writing`, with where the bytes come from)
//! is committed, then the bytes are copied to a temp file, fsynced, renamed to `<id>` and the
//! directory fsynced, then the row becomes `ready`. So every file has a row, and a crash at
//! any point is repaired at the next start: a complete file is verified and kept, an
//! incomplete copy is redone from its source, and only an item whose source is gone too is
//! given up, loudly and counted. Finished items lose their row first and their file after;
//! a file without a row is therefore one that was already uploaded or deleted.
//!
//! When the disk budget is full, continuous-recording segments go first, then segments of
//! sessions nobody protected; dropping a protected session's segment is an error in the log
//! and a counter in the status. Nothing disappears silently.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use super::error::StoreError;
use super::segment::{Kept, hex};
use super::sqlite::{self, Pragmas, Schema};
use crate::util::now_ms;

const SCHEMA: Schema = Schema {
    create: "
CREATE TABLE items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused; also the file name in the outbox directory
    camera      TEXT NOT NULL,         -- camera id
    kind        TEXT NOT NULL,         -- 'init', 'hls' or 'mp4'
    start_ms    INTEGER NOT NULL,      -- segment start (init: 0)
    duration_ms INTEGER NOT NULL,
    name        TEXT,                  -- MP4 file name
    init_sha256 TEXT,                  -- HLS: its init segment
    session_id  INTEGER,               -- recording session; NULL = continuous recording
    size        INTEGER NOT NULL,      -- bytes of the file (of the source while 'writing')
    sha256      TEXT NOT NULL,         -- hex SHA-256 of the file, verified after upload ('' while 'writing')
    created_ms  INTEGER NOT NULL,      -- when it entered the outbox
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    state       TEXT NOT NULL DEFAULT 'ready', -- 'writing' until the file is complete and fsynced
    source      TEXT                   -- where the bytes are copied from (redone after a crash)
) STRICT;
CREATE TABLE counters (
    key   TEXT PRIMARY KEY,            -- dropped_*, uploaded_*, lost_items (see Counters)
    value INTEGER NOT NULL
) STRICT;",
    version: 2,
    // 1 → 2: ids that are never reused (AUTOINCREMENT) and row-first writes.
    migrations: &[(
        1,
        "ALTER TABLE items RENAME TO items_v1;
         CREATE TABLE items (
             id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, kind TEXT NOT NULL,
             start_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL, name TEXT, init_sha256 TEXT,
             session_id INTEGER, size INTEGER NOT NULL, sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, state TEXT NOT NULL DEFAULT 'ready', source TEXT
         ) STRICT;
         INSERT INTO items (id, camera, kind, start_ms, duration_ms, name, init_sha256, session_id, size, sha256,
                            created_ms, attempts, last_error)
             SELECT id, camera, kind, start_ms, duration_ms, name, init_sha256, session_id, size, sha256,
                    created_ms, attempts, last_error FROM items_v1;
         DROP TABLE items_v1;",
    )],
    unversioned_table: Some("items"),
};

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

/// Whether a camera's session is protected (kept or recording). Installed by whoever knows
/// the sessions (the camera registry); without it every session counts as protected.
pub type Protection = Box<dyn Fn(&str, i64) -> bool + Send + Sync>;

/// Figures kept in memory for status pages, MQTT and metrics: reading them never touches
/// the database or waits for an upload.
#[derive(Default)]
pub struct Counters {
    pub pending_items: AtomicU64,
    pub pending_bytes: AtomicU64,
    pub oldest_pending_ms: AtomicI64,
    pub dropped_items: AtomicU64,
    pub dropped_bytes: AtomicU64,
    /// Dropped although their session was protected: always an error.
    pub dropped_kept_items: AtomicU64,
    pub uploaded_items: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    /// Items whose bytes were gone after a crash (neither their file nor their source).
    pub lost_items: AtomicU64,
}

pub struct Outbox {
    dir: PathBuf,
    conn: Mutex<Connection>,
    budget: u64,
    /// Wakes the shipper when something arrives.
    pub arrived: tokio::sync::Notify,
    /// Init segments already queued or shipped, so each is sent once per run.
    known_inits: Mutex<HashSet<(String, String)>>,
    protection: Mutex<Option<Protection>>,
    pub counters: Counters,
    pub last_error: Mutex<Option<String>>,
    pub reachable: AtomicBool,
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

/// Drop priority: continuous recording first, then unprotected sessions, protected last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Continuous,
    Session,
    Protected,
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Database(format!("outbox: {}: {e}", what.display()))
}

/// Makes a rename or unlink in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

impl Outbox {
    pub fn open(dir: &Path, budget: u64) -> Result<Arc<Outbox>, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        // The outbox is the only copy of data on its way out: every commit is fsynced.
        let pragmas = Pragmas { synchronous: "FULL", cache_kib: 256, ..Pragmas::default() };
        let conn = sqlite::open(&dir.join("outbox.db"), &pragmas, &SCHEMA)?;
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            conn: Mutex::new(conn),
            budget,
            arrived: tokio::sync::Notify::new(),
            known_inits: Mutex::new(HashSet::new()),
            protection: Mutex::new(None),
            counters: Counters::default(),
            last_error: Mutex::new(None),
            reachable: AtomicBool::new(true),
        };
        outbox.load_counters()?;
        outbox.recover()?;
        outbox.refresh_pending()?;
        Ok(Arc::new(outbox))
    }

    /// Tells the outbox which sessions are protected (drop order when it is full).
    pub fn set_protection(&self, p: Protection) {
        *self.protection.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn file(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// The directory of the items' files (served files must resolve inside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn load_counters(&self) -> Result<(), StoreError> {
        let c = self.lock();
        let mut stmt = c.prepare("SELECT key, value FROM counters")?;
        let rows: Vec<(String, i64)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        for (key, value) in rows {
            if let Some(counter) = self.counter(&key) {
                counter.store(value.max(0) as u64, Relaxed);
            }
        }
        Ok(())
    }

    fn counter(&self, key: &str) -> Option<&AtomicU64> {
        let c = &self.counters;
        Some(match key {
            "dropped_items" => &c.dropped_items,
            "dropped_bytes" => &c.dropped_bytes,
            "dropped_kept_items" => &c.dropped_kept_items,
            "uploaded_items" => &c.uploaded_items,
            "uploaded_bytes" => &c.uploaded_bytes,
            "lost_items" => &c.lost_items,
            _ => return None,
        })
    }

    /// Adds to a durable counter (in the caller's transaction) and to its in-memory copy.
    fn bump(&self, c: &Connection, key: &str, by: i64) -> rusqlite::Result<()> {
        c.execute(
            "INSERT INTO counters (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = value + ?2",
            params![key, by],
        )?;
        if let Some(counter) = self.counter(key) {
            counter.fetch_add(by.max(0) as u64, Relaxed);
        }
        Ok(())
    }

    /// Recomputes the pending figures (called with every change, the table is small).
    fn refresh_pending(&self) -> Result<(), StoreError> {
        let c = self.lock();
        self.refresh_pending_locked(&c)
    }

    fn refresh_pending_locked(&self, c: &Connection) -> Result<(), StoreError> {
        let (n, bytes, oldest): (i64, i64, Option<i64>) =
            c.query_row("SELECT count(*), coalesce(sum(size), 0), min(created_ms) FROM items", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        self.counters.pending_items.store(n as u64, Relaxed);
        self.counters.pending_bytes.store(bytes as u64, Relaxed);
        self.counters.oldest_pending_ms.store(oldest.unwrap_or(0), Relaxed);
        Ok(())
    }

    /// Repairs what a crash left half done (see the module documentation).
    fn recover(&self) -> Result<(), StoreError> {
        let (rows, last_id): (Vec<(i64, String, Option<String>)>, i64) = {
            let c = self.lock();
            let mut stmt = c.prepare("SELECT id, state, source FROM items")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            let seq: Option<i64> =
                c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'items'", [], |r| r.get(0)).optional()?;
            (rows, seq.unwrap_or(0))
        };
        let ids: HashSet<i64> = rows.iter().map(|r| r.0).collect();
        for (id, state, source) in rows {
            let file = self.file(id);
            let present = file.exists();
            match (state.as_str(), present, source) {
                ("ready", true, _) => {}
                ("writing", true, _) => {
                    // Renamed into place, the crash came before the row said so.
                    let (size, sha) = hash_file(&file)?;
                    self.mark_ready(id, size, &sha)?;
                    info!(id, "outbox: completed an item whose write was interrupted");
                }
                ("writing", false, Some(source)) if Path::new(&source).exists() => {
                    self.copy_in(id, Path::new(&source))?;
                    info!(id, source = %source, "outbox: re-queued an item whose copy was interrupted");
                }
                (_, _, source) => {
                    error!(id, state = %state, source = source.as_deref().unwrap_or("-"),
                           "outbox: an item's bytes are gone (neither its file nor its source exists); it is lost");
                    let c = self.lock();
                    c.execute("DELETE FROM items WHERE id = ?1", [id])?;
                    self.bump(&c, "lost_items", 1)?;
                }
            }
        }
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.parse::<i64>() {
                Ok(id) if ids.contains(&id) => {}
                Ok(id) if id <= last_id => {
                    // Rows go first when an item is finished: this one was uploaded or deleted.
                    info!(id, "outbox: removing the file of an item that was already uploaded or deleted");
                    let _ = std::fs::remove_file(entry.path());
                }
                Ok(id) => warn!(id, "outbox: a file with an id never issued here; left alone"),
                Err(_) if name.ends_with(".tmp") => {
                    // A copy in progress; its row (if any) was redone above from the source.
                    let _ = std::fs::remove_file(entry.path());
                }
                Err(_) => {}
            }
        }
        let c = self.lock();
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

    fn priority(&self, camera: &str, session_id: Option<i64>) -> Priority {
        let Some(session) = session_id else { return Priority::Continuous };
        let protection = self.protection.lock().unwrap_or_else(|e| e.into_inner());
        match protection.as_ref() {
            Some(is_protected) if !is_protected(camera, session) => Priority::Session,
            _ => Priority::Protected,
        }
    }

    /// Copies `source` into the outbox as a new item. Blocking: call from the blocking pool.
    /// `Ok(None)`: the outbox is full of more important items and this one was dropped
    /// (counted and logged).
    pub fn enqueue(&self, new: NewItem, source: &Path) -> Result<Option<Item>, StoreError> {
        let size = std::fs::metadata(source).map_err(io_err(source))?.len();
        let priority = self.priority(&new.camera, new.session_id);
        let id = {
            let mut c = self.lock();
            if new.kind != Kind::Init && !self.make_room(&c, size, priority)? {
                let tx = c.transaction()?;
                self.bump(&tx, "dropped_items", 1)?;
                self.bump(&tx, "dropped_bytes", size as i64)?;
                tx.commit()?;
                warn!(camera = %new.camera, kind = new.kind.as_str(), start = %crate::util::iso_ms(new.start_ms),
                      "outbox full ({} bytes budget) of more important segments: this one was not queued", self.budget);
                return Ok(None);
            }
            c.execute(
                "INSERT INTO items (camera, kind, start_ms, duration_ms, name, init_sha256, session_id, size, sha256,
                                    created_ms, state, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, 'writing', ?10)",
                params![
                    new.camera,
                    new.kind.as_str(),
                    new.start_ms,
                    new.duration_ms,
                    new.name,
                    new.init_sha256,
                    new.session_id,
                    size as i64,
                    now_ms(),
                    source.display().to_string()
                ],
            )?;
            let id = c.last_insert_rowid();
            self.refresh_pending_locked(&c)?;
            id
        };
        crate::fault::point("outbox.after_row");
        if let Err(e) = self.copy_in(id, source) {
            // Give the row back: nothing of this item is on disk.
            let c = self.lock();
            c.execute("DELETE FROM items WHERE id = ?1", [id])?;
            self.refresh_pending_locked(&c)?;
            return Err(e);
        }
        let item = self.lock().query_row(&format!("SELECT {COLUMNS} FROM items WHERE id = ?1"), [id], item_row)?;
        self.arrived.notify_one();
        Ok(Some(item))
    }

    /// Copies the bytes of item `id` from `source`: temp file, fsync, rename, directory fsync,
    /// then the row is marked ready.
    fn copy_in(&self, id: i64, source: &Path) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!("{id}.tmp"));
        let (size, sha) = {
            let mut input = std::fs::File::open(source).map_err(io_err(source))?;
            let mut out = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 << 10];
            let mut size = 0u64;
            loop {
                let n = input.read(&mut buf).map_err(io_err(source))?;
                if n == 0 {
                    break;
                }
                let chunk = buf.get(..n).unwrap_or_default();
                hasher.update(chunk);
                if let Err(e) = out.write_all(chunk) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io_err(&tmp)(e));
                }
                size += n as u64;
            }
            out.sync_all().map_err(io_err(&tmp))?;
            (size, hex(&hasher.finalize()))
        };
        let file = self.file(id);
        std::fs::rename(&tmp, &file).map_err(io_err(&tmp))?;
        sync_dir(&self.dir)?;
        crate::fault::point("outbox.after_rename");
        self.mark_ready(id, size, &sha)
    }

    fn mark_ready(&self, id: i64, size: u64, sha: &str) -> Result<(), StoreError> {
        let c = self.lock();
        c.execute(
            "UPDATE items SET state = 'ready', size = ?2, sha256 = ?3, source = NULL WHERE id = ?1",
            params![id, size as i64, sha],
        )?;
        self.refresh_pending_locked(&c)
    }

    /// Drops queued media until `incoming` more bytes fit the budget, taking nothing more
    /// important than the incoming item itself. `false`: the incoming item must be dropped.
    fn make_room(&self, c: &Connection, incoming: u64, incoming_priority: Priority) -> Result<bool, StoreError> {
        loop {
            let used: i64 = c.query_row("SELECT coalesce(sum(size), 0) FROM items", [], |r| r.get(0))?;
            if used as u64 + incoming <= self.budget {
                return Ok(true);
            }
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM items WHERE kind <> 'init' AND state = 'ready'
                 ORDER BY session_id IS NOT NULL, start_ms, id"
            ))?;
            let candidates: Vec<Item> = stmt.query_map([], item_row)?.collect::<Result<_, _>>()?;
            drop(stmt);
            let victim = candidates
                .into_iter()
                .map(|i| (self.priority(&i.camera, i.session_id), i))
                .filter(|(p, _)| *p <= incoming_priority)
                .min_by_key(|(p, i)| (*p, i.start_ms, i.id));
            let Some((priority, old)) = victim else { return Ok(false) };
            c.execute("DELETE FROM items WHERE id = ?1", [old.id])?;
            self.bump(c, "dropped_items", 1)?;
            self.bump(c, "dropped_bytes", old.size)?;
            if priority == Priority::Protected {
                self.bump(c, "dropped_kept_items", 1)?;
                error!(camera = %old.camera, session = old.session_id, start = %crate::util::iso_ms(old.start_ms), bytes = old.size,
                       "outbox full ({} bytes budget) of protected recordings: dropped a segment of a protected session", self.budget);
            } else {
                warn!(camera = %old.camera, kind = old.kind.as_str(), start = %crate::util::iso_ms(old.start_ms), bytes = old.size,
                      "outbox full ({} bytes budget): dropped the oldest waiting {} segment", self.budget,
                      if priority == Priority::Continuous { "continuous-recording" } else { "unprotected session's" });
            }
            let _ = std::fs::remove_file(self.file(old.id));
            self.refresh_pending_locked(c)?;
        }
    }

    /// The next item to ship: alternately the oldest (draining a backlog in order) and the
    /// newest live one (so a backlog never starves the present).
    pub fn next(&self, live_turn: bool, live_window_ms: i64) -> Result<Option<Item>, StoreError> {
        let c = self.lock();
        // Init segments first: media refers to them.
        let init = c
            .query_row(
                &format!("SELECT {COLUMNS} FROM items WHERE kind = 'init' AND state = 'ready' ORDER BY id LIMIT 1"),
                [],
                item_row,
            )
            .optional()?;
        if init.is_some() {
            return Ok(init);
        }
        if live_turn {
            let live = c
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM items WHERE created_ms >= ?1 AND state = 'ready'
                         ORDER BY start_ms DESC, id DESC LIMIT 1"
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
        let sql = format!(
            "SELECT {COLUMNS} FROM items WHERE state = 'ready' ORDER BY min(attempts, 3), start_ms, id LIMIT 1"
        );
        Ok(c.query_row(&sql, [], item_row).optional()?)
    }

    /// The item arrived and was verified: forget it (row first, see the module docs).
    pub fn done(&self, item: &Item) -> Result<(), StoreError> {
        {
            let mut c = self.lock();
            let tx = c.transaction()?;
            tx.execute("DELETE FROM items WHERE id = ?1", [item.id])?;
            self.bump(&tx, "uploaded_items", 1)?;
            self.bump(&tx, "uploaded_bytes", item.size)?;
            tx.commit()?;
            self.refresh_pending_locked(&c)?;
        }
        let _ = std::fs::remove_file(self.file(item.id));
        Ok(())
    }

    pub fn failed(&self, item: &Item, error: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE items SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![item.id, error],
        )?;
        Ok(())
    }
}

/// Size and hex SHA-256 of a file.
fn hash_file(path: &Path) -> Result<(u64, String), StoreError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok((size, hex(&hasher.finalize())));
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
}

mod lookup;
#[cfg(test)]
mod tests;

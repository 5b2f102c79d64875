//! Looking into the outbox and taking items out of it without uploading them: what playback
//! reads before an upload happened, what deletions remove, and the status counters. Split from
//! `outbox.rs`, which keeps the write path (enqueue, crash repair, the disk budget, the upload
//! queue).

use std::sync::atomic::Ordering::Relaxed;

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::{COLUMNS, Item, Kept, Kind, Outbox, item_row};
use crate::store::error::StoreError;
use crate::util::now_ms;

impl Outbox {
    /// Waiting items of a camera and kind overlapping `[from, to]` (for playback before
    /// the upload happened).
    pub fn pending(&self, camera: &str, kind: Kind, from: i64, to: i64) -> Result<Vec<Item>, StoreError> {
        let c = self.lock();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items WHERE camera = ?1 AND kind = ?2 AND state = 'ready' AND start_ms <= ?4
             AND (start_ms + duration_ms > ?3 OR start_ms = ?3) ORDER BY start_ms"
        ))?;
        let rows = stmt.query_map(params![camera, kind.as_str(), from, to], item_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn pending_named(&self, camera: &str, name: &str) -> Result<Option<Item>, StoreError> {
        let c = self.lock();
        let sql = format!("SELECT {COLUMNS} FROM items WHERE camera = ?1 AND name = ?2 AND state = 'ready' LIMIT 1");
        Ok(c.query_row(&sql, params![camera, name], item_row).optional()?)
    }

    pub fn pending_init(&self, camera: &str, sha: &str) -> Result<Option<Item>, StoreError> {
        let c = self.lock();
        let sql = format!(
            "SELECT {COLUMNS} FROM items WHERE camera = ?1 AND kind = 'init' AND sha256 = ?2 AND state = 'ready' LIMIT 1"
        );
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
            "SELECT id FROM items WHERE camera = ?1 AND kind = ?2 AND state = 'ready' AND start_ms >= ?3 AND start_ms < ?4{}",
            kept.sql()
        );
        self.remove_where(&sql, params![camera, kind.as_str(), from, to])
    }

    /// Deletes waiting items of a camera, kind and session.
    pub fn remove_session(&self, camera: &str, kind: Kind, session_id: i64) -> Result<u64, StoreError> {
        let sql = "SELECT id FROM items WHERE camera = ?1 AND kind = ?2 AND state = 'ready' AND session_id = ?3";
        self.remove_where(sql, params![camera, kind.as_str(), session_id])
    }

    /// Deletes one waiting item by id.
    pub fn remove(&self, id: i64) -> Result<u64, StoreError> {
        self.remove_where("SELECT id FROM items WHERE id = ?1 AND state = 'ready'", params![id])
    }

    /// Deletes the items whose ids `select` returns: rows in one transaction, then files.
    fn remove_where(&self, select: &str, args: impl rusqlite::Params) -> Result<u64, StoreError> {
        let ids: Vec<i64> = {
            let mut c = self.lock();
            let tx = c.transaction()?;
            let ids: Vec<i64> = tx.prepare(select)?.query_map(args, |r| r.get(0))?.collect::<Result<_, _>>()?;
            for id in &ids {
                tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
            }
            tx.commit()?;
            self.refresh_pending_locked(&c)?;
            ids
        };
        for id in &ids {
            let _ = std::fs::remove_file(self.file(*id));
        }
        Ok(ids.len() as u64)
    }

    /// The outbox in `/api/status` (and later MQTT and metrics): counters only, no I/O.
    pub fn status(&self) -> Value {
        let c = &self.counters;
        let oldest = c.oldest_pending_ms.load(Relaxed);
        json!({
            "pending_items": c.pending_items.load(Relaxed),
            "pending_bytes": c.pending_bytes.load(Relaxed),
            "budget_bytes": self.budget,
            "oldest_pending_age_secs": (oldest > 0).then(|| (now_ms() - oldest).max(0) / 1000),
            "dropped_items": c.dropped_items.load(Relaxed),
            "dropped_bytes": c.dropped_bytes.load(Relaxed),
            "dropped_protected_items": c.dropped_kept_items.load(Relaxed),
            "lost_items": c.lost_items.load(Relaxed),
            "uploaded_items": c.uploaded_items.load(Relaxed),
            "uploaded_bytes": c.uploaded_bytes.load(Relaxed),
            "postgresql_reachable": self.reachable.load(Relaxed),
            "last_error": self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

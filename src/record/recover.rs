//! Startup repair of the data files after a crash or power cut.
//!
//! A data file that is not marked closed was being appended to when the process ended. Its
//! index may lag behind the file (frames are appended at once, indexed every few seconds:
//! a `kill -9` leaves unindexed frames behind) or run ahead of it (the index is durable
//! before the data is fsynced: a power cut can leave index rows for bytes that never reached
//! the flash). The file is scanned record by record (header and CRC); index rows that point
//! past the last good record are dropped, good records past the last indexed one are indexed,
//! a torn tail is cut off, and the file is closed. Data files without a row (a delete that
//! stopped between its commit and the unlink) are removed.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::Path;

use rusqlite::{Connection, params};
use tracing::{info, warn};

use super::chunk::{self, FrameRef};
use super::data;

/// The largest JPEG a record may claim (recording.max_frame_size is at most this).
const MAX_RECORD: u32 = 256 << 20;

/// What the repair did, for the log and for tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Frames found in data files beyond their index, now indexed.
    pub recovered_frames: u64,
    /// Index entries whose bytes were not in the file (lost to a power cut).
    pub lost_frames: u64,
    /// Bytes cut off torn tails.
    pub cut_bytes: u64,
    pub orphan_files: u64,
}

/// Repairs the data files in `dir` against the index in `conn`.
pub fn repair(conn: &mut Connection, dir: &Path, camera: &str) -> rusqlite::Result<Repair> {
    let mut repair = Repair::default();
    let open: Vec<(i64, i64)> = conn
        .prepare("SELECT id, session_id FROM files WHERE closed = 0 ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (file_id, session_id) in open {
        repair_file(conn, dir, file_id, session_id, &mut repair)?;
    }
    remove_orphans(conn, dir, &mut repair)?;
    if repair != Repair::default() {
        warn!(
            camera,
            recovered_frames = repair.recovered_frames,
            lost_frames = repair.lost_frames,
            cut_bytes = repair.cut_bytes,
            orphan_files = repair.orphan_files,
            "frame storage repaired after an unclean stop"
        );
    }
    Ok(repair)
}

fn repair_file(
    conn: &mut Connection,
    dir: &Path,
    file_id: i64,
    session_id: i64,
    repair: &mut Repair,
) -> rusqlite::Result<()> {
    let path = data::file_path(dir, file_id);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The row was committed, the file never created: nothing was appended to it.
            return drop_file(conn, file_id, session_id, repair);
        }
        Err(e) => {
            warn!(file = %path.display(), "cannot open a data file to repair it: {e}");
            return Ok(());
        }
    };
    let (records, good_end) = match data::scan(&file, 0, MAX_RECORD) {
        Ok(r) => r,
        Err(e) => {
            warn!(file = %path.display(), "cannot read a data file to repair it: {e}");
            return Ok(());
        }
    };
    let tx = conn.transaction()?;
    // Index rows pointing past the good records lost their bytes.
    let lost: Vec<(i64, i64, i64)> = tx
        .prepare("SELECT id, frames, bytes FROM chunks WHERE file_id = ?1 AND end_offset > ?2")?
        .query_map(params![file_id, good_end as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, frames, bytes) in &lost {
        tx.execute("DELETE FROM chunks WHERE id = ?1", [id])?;
        tx.execute(
            "UPDATE sessions SET frame_count = max(0, frame_count - ?2), byte_count = max(0, byte_count - ?3) WHERE id = ?1",
            params![session_id, frames, bytes],
        )?;
        repair.lost_frames += *frames as u64;
    }
    // Good records past the last indexed one are indexed now.
    let indexed_end: i64 =
        tx.query_row("SELECT coalesce(max(end_offset), 0) FROM chunks WHERE file_id = ?1", [file_id], |r| r.get(0))?;
    let unindexed: Vec<FrameRef> = records
        .iter()
        .filter(|r| r.offset >= indexed_end as u64 && r.header.session_id == session_id)
        .map(|r| FrameRef { ts_ms: r.header.ts_ms, session_id, file_id, offset: r.offset, len: r.header.len })
        .collect();
    for group in chunk::split(&unindexed) {
        chunk::insert(&tx, group)?;
        repair.recovered_frames += group.len() as u64;
    }
    tx.execute("UPDATE files SET closed = 1, bytes = ?2 WHERE id = ?1", params![file_id, good_end as i64])?;
    tx.commit()?;
    // Cut the torn tail only once the index no longer points there.
    let len = file.metadata().map(|m| m.len()).unwrap_or(good_end);
    if len > good_end {
        cut(&file, good_end, &path);
        repair.cut_bytes += len - good_end;
    }
    Ok(())
}

fn cut(file: &File, at: u64, path: &Path) {
    if let Err(e) = file.set_len(at).and_then(|_| file.sync_all()) {
        warn!(file = %path.display(), "cannot cut the torn tail of a data file: {e}");
    }
}

fn drop_file(conn: &Connection, file_id: i64, _session_id: i64, repair: &mut Repair) -> rusqlite::Result<()> {
    let frames: i64 =
        conn.query_row("SELECT coalesce(sum(frames), 0) FROM chunks WHERE file_id = ?1", [file_id], |r| r.get(0))?;
    repair.lost_frames += frames as u64;
    conn.execute("DELETE FROM chunks WHERE file_id = ?1", [file_id])?;
    conn.execute("DELETE FROM files WHERE id = ?1", [file_id])?;
    Ok(())
}

/// Removes data files that have no row (their delete was committed, the unlink not done).
fn remove_orphans(conn: &Connection, dir: &Path, repair: &mut Repair) -> rusqlite::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let known: HashSet<i64> =
        conn.prepare("SELECT id FROM files")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jpgs")).and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        if !known.contains(&id) && std::fs::remove_file(entry.path()).is_ok() {
            info!(file = %entry.path().display(), "removed a data file whose recording was deleted");
            repair.orphan_files += 1;
        }
    }
    Ok(())
}

/// Bytes in the data files (status and the disk guard).
pub fn data_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

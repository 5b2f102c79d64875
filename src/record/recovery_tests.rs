//! What a crash, a power cut, a full disk and an old database leave behind, and how the
//! frame store copes.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Instant;

use super::data::{Header, crc32};
use super::*;
use crate::util::now_ms;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("panelcam-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("cam.db")
}

fn frame(ts: i64, size: usize) -> Frame {
    Frame { jpeg: Bytes::from(vec![(ts % 251) as u8; size]), captured_ms: ts, seq: ts as u64, received: Instant::now() }
}

fn record(ts: i64, session: i64, jpeg: &[u8]) -> Vec<u8> {
    let h = Header { len: jpeg.len() as u32, ts_ms: ts, session_id: session, crc: crc32(jpeg) };
    [h.encode().as_slice(), jpeg].concat()
}

async fn all_frames(store: &FrameStore, session: i64) -> Vec<i64> {
    let (_, frames, _) = store.session_frames(session, 0, i64::MAX, 100_000).await.unwrap();
    frames.iter().map(|f| f.ts_ms).collect()
}

#[tokio::test]
async fn frames_are_readable_before_their_index_is_written() {
    let store = FrameStore::open("cam", &temp_db("live"), &Tuning::default()).unwrap();
    let s = store.start_session(None).await.unwrap();
    let t = now_ms();
    for i in 0..5 {
        store.offer(&frame(t + i * 100, 300 + i as usize));
    }
    // No flush: the chunk is not committed (that takes thirty seconds), the frames are in the file.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.shared.frames_written.load(Relaxed) < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(all_frames(&store, s.id).await, (0..5).map(|i| t + i * 100).collect::<Vec<_>>());
    let (ts, jpeg) = store.frame_after(t + 100, i64::MAX).await.unwrap().unwrap();
    assert_eq!((ts, jpeg.len()), (t + 200, 302));
    let (ts, _) = store.frame_before(t + 100, 0).await.unwrap().unwrap();
    assert_eq!(ts, t);
    let (ts, _) = store.frame_near(t + 260, 100).await.unwrap().unwrap();
    assert_eq!(ts, t + 300);
    assert_eq!(store.session(s.id).await.unwrap().frame_count, 5, "counters are current before the index");
    assert_eq!(store.size().await.unwrap().frame_count, 5);
    store.shutdown().await;
}

/// Writes a data file as a killed writer leaves it: `indexed` frames with their chunk, then
/// `more` frames appended without one, then half a record.
fn killed_writer(path: &Path, session: i64, t: i64, indexed: i64, more: i64) {
    let conn = db::open_writer(path, &Tuning::default()).unwrap();
    conn.execute("INSERT INTO sessions (id, start_ms) VALUES (?1, ?2)", [session, t]).unwrap();
    conn.execute("INSERT INTO files (id, session_id, created_ms) VALUES (1, ?1, ?2)", [session, t]).unwrap();
    let dir = data::dir_for(path);
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = OpenOptions::new().create(true).append(true).open(data::file_path(&dir, 1)).unwrap();
    let mut refs = Vec::new();
    let mut offset = 0u64;
    for i in 0..indexed + more {
        let jpeg = vec![i as u8; 1000];
        let rec = record(t + i * 100, session, &jpeg);
        file.write_all(&rec).unwrap();
        refs.push(chunk::FrameRef { ts_ms: t + i * 100, session_id: session, file_id: 1, offset, len: 1000 });
        offset += rec.len() as u64;
    }
    let mut torn = record(t + (indexed + more) * 100, session, &[9; 1000]);
    torn.truncate(600);
    file.write_all(&torn).unwrap();
    if indexed > 0 {
        chunk::insert(&conn, &refs[..indexed as usize]).unwrap(); // slice-ok: test data, indexed <= refs.len()
    }
}

#[tokio::test]
async fn a_killed_writer_s_unindexed_frames_are_indexed_at_the_next_start() {
    let path = temp_db("killed");
    let t = now_ms() - 60_000;
    killed_writer(&path, 4, t, 20, 15);
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    assert_eq!(all_frames(&store, 4).await, (0..35).map(|i| t + i * 100).collect::<Vec<_>>());
    let s = store.session(4).await.unwrap();
    assert_eq!((s.frame_count, s.end_ms), (35, Some(t + 3400)), "counted and closed at its last frame");
    let (_, jpeg) = store.frame_near(t + 3400, 0).await.unwrap().unwrap();
    assert_eq!(jpeg.as_ref(), &[34u8; 1000][..]);
    store.shutdown().await;
    let len = std::fs::metadata(data::file_path(&data::dir_for(&path), 1)).unwrap().len();
    assert_eq!(len, 35 * (1000 + data::HEADER as u64), "the torn record was cut off");
    // A second start finds nothing more to do.
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    assert_eq!(store.session(4).await.unwrap().frame_count, 35);
    store.shutdown().await;
}

#[tokio::test]
async fn index_rows_whose_bytes_a_power_cut_lost_are_dropped() {
    let path = temp_db("powercut");
    let t = now_ms() - 60_000;
    killed_writer(&path, 5, t, 30, 0);
    // The index was durable, the last 10 frames' bytes were not: the file ends early.
    let file = data::file_path(&data::dir_for(&path), 1);
    OpenOptions::new().write(true).open(&file).unwrap().set_len(20 * 1032 + 500).unwrap();
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    let frames = all_frames(&store, 5).await;
    assert_eq!(frames.len(), 20, "the chunk lost its bytes, the frames before it were re-indexed");
    assert_eq!(store.session(5).await.unwrap().frame_count, 20);
    assert!(store.frame_near(t + 2500, 50).await.unwrap().is_none());
    store.shutdown().await;
}

#[tokio::test]
async fn data_files_of_deleted_recordings_are_removed_and_missing_ones_forgotten() {
    let path = temp_db("orphans");
    {
        let conn = db::open_writer(&path, &Tuning::default()).unwrap();
        conn.execute("INSERT INTO sessions (id, start_ms, end_ms) VALUES (1, 1000, 2000)", []).unwrap();
        // A file row whose file was never created (crash right after the insert).
        conn.execute("INSERT INTO files (id, session_id, created_ms) VALUES (3, 1, 1000)", []).unwrap();
    }
    let dir = data::dir_for(&path);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("7.jpgs"), record(1500, 1, &[1; 100])).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not ours").unwrap();
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    assert!(!dir.join("7.jpgs").exists(), "a file without its row belongs to a deleted recording");
    assert!(dir.join("notes.txt").exists(), "other files are left alone");
    store.shutdown().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn frames_of_schema_2_are_still_read_and_deleted() {
    let path = temp_db("legacy");
    let t = now_ms() - 100_000;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE sessions (id INTEGER PRIMARY KEY, start_ms INTEGER NOT NULL, end_ms INTEGER, reason TEXT,
               keep INTEGER NOT NULL DEFAULT 0, frame_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0,
               last_frame_ms INTEGER) STRICT;
             CREATE TABLE frames (ts_ms INTEGER PRIMARY KEY, session_id INTEGER NOT NULL, jpeg BLOB NOT NULL) STRICT;
             CREATE INDEX frames_by_session ON frames (session_id, ts_ms);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
             PRAGMA user_version = 2;",
        )
        .unwrap();
        c.execute("INSERT INTO sessions VALUES (1, ?1, ?2, 'old', 0, 3, 300, ?2)", [t, t + 200]).unwrap();
        for i in 0..3 {
            c.execute("INSERT INTO frames VALUES (?1, 1, zeroblob(100))", [t + i * 100]).unwrap();
        }
    }
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    // New recordings go to data files beside the old rows; both are read.
    let s = store.start_session(None).await.unwrap();
    store.offer(&frame(t + 1000, 50));
    store.flush().await.unwrap();
    store.stop_session().await.unwrap();
    assert_eq!(all_frames(&store, 1).await, vec![t, t + 100, t + 200]);
    let (ts, jpeg) = store.frame_after(t + 100, i64::MAX).await.unwrap().unwrap();
    assert_eq!((ts, jpeg.len()), (t + 200, 100));
    let (ts, _) = store.frame_after(t + 200, i64::MAX).await.unwrap().unwrap();
    assert_eq!(ts, t + 1000, "from the old rows to the new files");
    let report = store.retention(t + 150).await.unwrap();
    assert_eq!(report.frames, 2);
    assert_eq!(all_frames(&store, 1).await, vec![t + 200]);
    assert_eq!(all_frames(&store, s.id).await, vec![t + 1000]);
    store.shutdown().await;
}

#[tokio::test]
async fn hostile_index_rows_read_as_empty_instead_of_crashing() {
    let path = temp_db("hostile");
    {
        let conn = db::open_writer(&path, &Tuning::default()).unwrap();
        conn.execute("INSERT INTO sessions (id, start_ms, end_ms) VALUES (1, 1000, 9000)", []).unwrap();
        conn.execute("INSERT INTO files (id, session_id, created_ms, closed) VALUES (1, 1, 1000, 1)", []).unwrap();
        for (first, idx) in [(1000i64, vec![1u8, 2, 3]), (2000, vec![0xFF; 24]), (i64::MAX - 5, vec![0xFF; 12])] {
            conn.execute(
                "INSERT INTO chunks (session_id, file_id, first_ts, last_ts, offset, end_offset, frames, bytes, idx)
                 VALUES (1, 1, ?1, ?1, -7, 0, 1, 1, ?2)",
                rusqlite::params![first, idx],
            )
            .unwrap();
        }
    }
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    let _ = store.session_frames(1, 0, i64::MAX, 10).await;
    for probe in [0, 1000, 2000, 5000, i64::MAX - 1] {
        let _ = store.frame_near(probe, 10_000).await;
        let _ = store.frame_after(probe, i64::MAX).await;
        let _ = store.frame_before(probe, i64::MIN).await;
    }
    let _ = store.retention(i64::MAX).await;
    store.shutdown().await;
}

/// Mounts a small tmpfs on `dir` (root only; elsewhere the test says so and passes).
fn mount_small_disk(dir: &Path, kib: u32) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root?)");
    }
    ok
}

#[tokio::test]
async fn a_full_disk_drops_frames_keeps_what_was_stored_and_recovers() {
    let dir = std::env::temp_dir().join(format!("panelcam-recovery-full-{}", std::process::id()));
    if !mount_small_disk(&dir, 1024) {
        return;
    }
    let path = dir.join("cam.db");
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    // Something else on the disk that will be deleted later (an operator, the disk guard).
    std::fs::write(dir.join("ballast"), vec![0u8; 400 << 10]).unwrap();
    let s = store.start_session(None).await.unwrap();
    let t = now_ms();
    // 3 MB into what is left of 1 MiB: most of it cannot be stored.
    for i in 0..300 {
        store.offer(&frame(t + i * 10, 10_000));
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let _ = store.flush().await;
    let written = store.shared.frames_written.load(Relaxed);
    let dropped = store.shared.frames_dropped.load(Relaxed);
    assert!(dropped > 0 && written > 10, "written {written}, dropped {dropped}");
    assert_eq!(written + dropped, 300, "every frame is stored or counted");
    // What was stored is readable even while its index cannot be written.
    let stored = all_frames(&store, s.id).await;
    assert_eq!(stored.len() as u64, written);
    let (_, jpeg) = store.frame_near(stored[0], 0).await.unwrap().unwrap();
    assert_eq!(jpeg.len(), 10_000);
    // Space comes back: the pending index is written, recording goes on.
    std::fs::remove_file(dir.join("ballast")).unwrap();
    store.flush().await.unwrap();
    store.offer(&frame(t + 10_000, 10_000));
    store.flush().await.unwrap();
    store.stop_session().await.unwrap();
    store.shutdown().await;
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    let mut expected = stored.clone();
    expected.push(t + 10_000);
    assert_eq!(all_frames(&store, s.id).await, expected, "nothing stored was lost");
    assert_eq!(store.session(s.id).await.unwrap().frame_count, written as i64 + 1);
    store.shutdown().await;
    let _ = std::process::Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
}

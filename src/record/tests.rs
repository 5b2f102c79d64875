use std::time::Instant;

use super::*;
use crate::util::now_ms;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("panelcam-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("cam.db")
}

fn frame(ts: i64, size: usize) -> Frame {
    Frame { jpeg: Bytes::from(vec![(ts % 251) as u8; size]), captured_ms: ts, seq: ts as u64, received: Instant::now() }
}

#[tokio::test]
async fn records_only_during_a_session_and_reads_back() {
    let path = temp_db("basic");
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    let t0 = now_ms();
    store.offer(&frame(t0 - 10_000, 100)); // nothing records yet
    let s = store.start_session(Some("door opened".into())).await.unwrap();
    assert!(s.is_active());
    let conflict = store.start_session(None).await.unwrap_err();
    assert!(matches!(&conflict, StoreError::Conflict(_, Some(running)) if running["session_id"] == s.id));
    for i in 0..20 {
        store.offer(&frame(t0 + i * 100, 1000 + i as usize));
    }
    store.flush().await.unwrap();
    let stopped = store.stop_session().await.unwrap();
    assert_eq!(stopped.frame_count, 20);
    assert_eq!(stopped.reason.as_deref(), Some("door opened"));
    assert!(matches!(store.stop_session().await, Err(StoreError::NotFound(_))));

    let (session, frames, more) = store.session_frames(s.id, 0, i64::MAX, 10).await.unwrap();
    assert_eq!(session.id, s.id);
    assert_eq!((frames.len(), more), (10, true));
    assert_eq!(frames[3], FrameEntry { ts_ms: t0 + 300, size: 1003 });

    let (ts, jpeg) = store.frame_near(t0 + 349, 100).await.unwrap().unwrap();
    assert_eq!((ts, jpeg.len()), (t0 + 300, 1003));
    assert!(store.frame_near(t0 + 50_000, 1000).await.unwrap().is_none(), "outside the tolerance");
    let (next, _) = store.frame_after(t0 + 300, i64::MAX).await.unwrap().unwrap();
    assert_eq!(next, t0 + 400);
    let (prev, _) = store.frame_before(t0 + 300, 0).await.unwrap().unwrap();
    assert_eq!(prev, t0 + 200);

    let listed = store.sessions(t0 - 1, t0 + 1).await.unwrap();
    assert_eq!(listed.len(), 1);
    let size = store.size().await.unwrap();
    assert_eq!(size.frame_count, 20);
    assert!(size.database_bytes > 0);
    store.shutdown().await;
}

#[tokio::test]
async fn same_millisecond_frames_keep_distinct_keys() {
    let store = FrameStore::open("cam", &temp_db("dup"), &Tuning::default()).unwrap();
    let s = store.start_session(None).await.unwrap();
    let t = now_ms();
    for _ in 0..3 {
        store.offer(&frame(t, 10));
    }
    store.flush().await.unwrap();
    let (_, frames, _) = store.session_frames(s.id, 0, i64::MAX, 10).await.unwrap();
    let ts: Vec<i64> = frames.iter().map(|f| f.ts_ms).collect();
    assert_eq!(ts, vec![t, t + 1, t + 2]);
    store.shutdown().await;
}

#[tokio::test]
async fn retention_deletes_old_frames_but_not_kept_or_active_sessions() {
    let store = FrameStore::open("cam", &temp_db("retention"), &Tuning::default()).unwrap();
    // Sessions are stamped with "now"; frames carry their own (old) capture times, which is
    // what retention looks at.
    let base = now_ms() - 10_000_000;
    let mut ids = Vec::new();
    for (n, session_start) in [(0, base), (1, base + 1_000_000), (2, base + 2_000_000)] {
        let s = store.start_session(Some(format!("s{n}"))).await.unwrap();
        for i in 0..50 {
            store.offer(&frame(session_start + i * 100, 500));
        }
        store.flush().await.unwrap();
        if n < 2 {
            store.stop_session().await.unwrap();
        }
        ids.push(s.id);
    }
    store.set_keep(ids[1], true).await.unwrap();
    // Session rows start "now"; move them back to where their frames are.
    store.shutdown().await;
    let conn = rusqlite::Connection::open(temp_db_path("retention")).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let start = base + i as i64 * 1_000_000;
        conn.execute(
            "UPDATE sessions SET start_ms = ?2, end_ms = CASE WHEN end_ms IS NULL THEN NULL ELSE ?3 END WHERE id = ?1",
            rusqlite::params![id, start, start + 4_900],
        )
        .unwrap();
    }
    drop(conn);
    let store = FrameStore::open("cam", &temp_db_path("retention"), &Tuning::default()).unwrap();
    assert_eq!(store.active().map(|s| s.id), Some(ids[2]), "the active session continued after the clean restart");

    let report = store.retention(base + 5_000_000).await.unwrap();
    assert_eq!(report.frames, 50, "only the unprotected session's frames: {report:?}");
    assert_eq!(report.sessions, 1);
    assert!(store.session(ids[0]).await.is_err(), "unprotected session deleted");
    assert_eq!(store.session(ids[1]).await.unwrap().frame_count, 50, "kept session untouched");
    assert_eq!(store.session(ids[2]).await.unwrap().frame_count, 50, "active session untouched");
    assert!(store.frame_near(base + 100, 50).await.unwrap().is_none());
    assert!(store.frame_near(base + 1_000_100, 50).await.unwrap().is_some());

    // Deleting by timestamp cuts through sessions that started before the cutoff.
    store.set_keep(ids[1], false).await.unwrap();
    let report = store.retention(base + 1_002_500).await.unwrap();
    assert_eq!(report.frames, 25, "{report:?}");
    assert_eq!(store.session(ids[1]).await.unwrap().frame_count, 25, "counters follow");
    store.shutdown().await;
}

fn temp_db_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("panelcam-store-{name}-{}", std::process::id())).join("cam.db")
}

#[tokio::test]
async fn deleting_a_session_removes_its_frames_and_refuses_the_active_one() {
    let store = FrameStore::open("cam", &temp_db("delete"), &Tuning::default()).unwrap();
    let s = store.start_session(None).await.unwrap();
    let t = now_ms();
    for i in 0..30 {
        store.offer(&frame(t + i * 10, 2000));
    }
    store.flush().await.unwrap();
    assert!(matches!(store.delete_session(s.id).await, Err(StoreError::Conflict(..))));
    store.stop_session().await.unwrap();
    store.delete_session(s.id).await.unwrap();
    assert!(matches!(store.session(s.id).await, Err(StoreError::NotFound(_))));
    assert!(store.frame_near(t, 1000).await.unwrap().is_none());
    assert!(matches!(store.delete_session(s.id).await, Err(StoreError::NotFound(_))));
    store.shutdown().await;
}

#[tokio::test]
async fn a_clock_step_backwards_deletes_exactly_the_session_s_own_frames() {
    let store = FrameStore::open("cam", &temp_db("clockstep"), &Tuning::default()).unwrap();
    let t = now_ms() - 60_000;
    let a = store.start_session(None).await.unwrap();
    for i in 0..10 {
        store.offer(&frame(t + i * 100, 100));
    }
    store.flush().await.unwrap();
    store.stop_session().await.unwrap();
    // The clock stepped back 10 s: session b's frames carry times inside session a's.
    let b = store.start_session(None).await.unwrap();
    for i in 0..10 {
        store.offer(&frame(t - 10_000 + i * 1000 + 50, 200));
    }
    store.flush().await.unwrap();
    store.stop_session().await.unwrap();
    let deleted = store.delete_session(b.id).await.unwrap();
    assert_eq!(deleted.frame_count, 10);
    let (_, left, _) = store.session_frames(a.id, 0, i64::MAX, 100).await.unwrap();
    assert_eq!(left.len(), 10, "session a keeps every frame");
    let size = store.size().await.unwrap();
    assert_eq!(size.frame_count, 10);
    assert!(store.frame_near(t - 10_000 + 50, 10).await.unwrap().is_none(), "session b's frames are gone");
    // Retention spares protected sessions by id, wherever their frames are in time.
    store.set_keep(a.id, true).await.unwrap();
    let report = store.retention(now_ms()).await.unwrap();
    assert_eq!(report.frames, 0);
    store.shutdown().await;
}

#[tokio::test]
async fn a_crash_closes_the_open_session_at_its_last_frame() {
    let path = temp_db("crash");
    {
        let conn = db::open_writer(&path, &Tuning::default()).unwrap();
        conn.execute("INSERT INTO sessions (id, start_ms, frame_count, last_frame_ms) VALUES (7, 1000, 2, 1500)", [])
            .unwrap();
        conn.execute("INSERT INTO frames VALUES (1200, 7, x'FFD8'), (1500, 7, x'FFD8')", []).unwrap();
    }
    let store = FrameStore::open("cam", &path, &Tuning::default()).unwrap();
    assert!(store.active().is_none());
    let s = store.session(7).await.unwrap();
    assert_eq!(s.end_ms, Some(1500));
    store.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_drops_frames_instead_of_blocking() {
    let store = FrameStore::open("cam", &temp_db("full"), &Tuning::default()).unwrap();
    store.start_session(None).await.unwrap();
    let t = now_ms();
    let started = Instant::now();
    for i in 0..(QUEUE_FRAMES as i64 * 20) {
        store.offer(&frame(t + i, 256 * 1024));
    }
    assert!(started.elapsed() < Duration::from_millis(500), "offer never waits for the disk");
    store.flush().await.unwrap();
    let written = store.shared.frames_written.load(Relaxed);
    let dropped = store.shared.frames_dropped.load(Relaxed);
    assert_eq!(written + dropped, QUEUE_FRAMES as u64 * 20, "every frame is either stored or counted");
    assert!(dropped > 0);
    store.shutdown().await;
}

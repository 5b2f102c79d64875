use super::*;
use crate::store::segment::sha256_hex;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("panelcam-outbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn source(d: &Path, name: &str, bytes: usize) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, vec![7u8; bytes]).unwrap();
    p
}

fn hls(start: i64) -> NewItem {
    NewItem {
        camera: "cam".into(),
        kind: Kind::Hls,
        start_ms: start,
        duration_ms: 6000,
        name: None,
        init_sha256: Some("aa".into()),
        session_id: None,
    }
}

fn session(start: i64, id: i64) -> NewItem {
    NewItem { session_id: Some(id), ..hls(start) }
}

fn status(ob: &Outbox, key: &str) -> u64 {
    ob.status()[key].as_u64().unwrap()
}

#[test]
fn items_are_shipped_init_first_then_in_order_with_live_turns() {
    let d = dir("order");
    let src = source(&d, "seg", 100);
    let ob = Outbox::open(&d.join("box"), 1 << 20).unwrap();
    for start in [3000, 1000, 2000] {
        ob.enqueue(hls(start), &src).unwrap();
    }
    let init = NewItem { kind: Kind::Init, start_ms: 0, duration_ms: 0, ..hls(0) };
    ob.enqueue(init, &src).unwrap();
    let first = ob.next(false, 60_000).unwrap().unwrap();
    assert_eq!(first.kind, Kind::Init);
    assert_eq!(first.sha256, sha256_hex(&[7u8; 100]));
    ob.done(&first).unwrap();
    assert_eq!(ob.next(false, 60_000).unwrap().unwrap().start_ms, 1000, "oldest first");
    assert_eq!(ob.next(true, 60_000).unwrap().unwrap().start_ms, 3000, "the live turn takes the newest");
    let item = ob.next(false, 60_000).unwrap().unwrap();
    assert!(ob.file(item.id).exists());
    ob.done(&item).unwrap();
    assert!(!ob.file(item.id).exists());
    assert_eq!(status(&ob, "uploaded_items"), 2);
    assert_eq!(status(&ob, "pending_items"), 2, "kept in memory, read without the database");
}

#[test]
fn a_full_budget_drops_the_oldest_and_counts_it() {
    let d = dir("budget");
    let src = source(&d, "seg", 400);
    let ob = Outbox::open(&d.join("box"), 1000).unwrap();
    for start in [1, 2, 3, 4] {
        ob.enqueue(hls(start), &src).unwrap();
    }
    assert_eq!(status(&ob, "pending_items"), 2);
    assert_eq!(status(&ob, "dropped_items"), 2);
    assert_eq!(status(&ob, "dropped_bytes"), 800);
    assert_eq!(ob.next(false, 0).unwrap().unwrap().start_ms, 3, "the newest survived");
}

#[test]
fn continuous_recording_goes_first_and_protected_sessions_last() {
    let d = dir("priority");
    let src = source(&d, "seg", 400);
    let ob = Outbox::open(&d.join("box"), 1200).unwrap();
    // Session 7 is protected (kept), session 8 is not.
    ob.set_protection(Box::new(|camera, id| camera == "cam" && id == 7));
    ob.enqueue(session(1, 7), &src).unwrap();
    ob.enqueue(session(2, 8), &src).unwrap();
    ob.enqueue(hls(3), &src).unwrap();
    // Full: a new protected segment pushes out the continuous one, then the unprotected one.
    ob.enqueue(session(4, 7), &src).unwrap();
    let left: Vec<i64> = ob.pending("cam", Kind::Hls, 0, 10).unwrap().iter().map(|i| i.start_ms).collect();
    assert_eq!(left, vec![1, 2, 4], "continuous recording dropped first");
    ob.enqueue(session(5, 7), &src).unwrap();
    let left: Vec<i64> = ob.pending("cam", Kind::Hls, 0, 10).unwrap().iter().map(|i| i.start_ms).collect();
    assert_eq!(left, vec![1, 4, 5], "then the unprotected session");
    assert_eq!(status(&ob, "dropped_protected_items"), 0);
    // Continuous recording never pushes out a protected session: it is the one dropped.
    assert!(ob.enqueue(hls(6), &src).unwrap().is_none());
    assert_eq!(status(&ob, "pending_items"), 3);
    // Only protected segments left: dropping one is counted as such (and logged as an error).
    ob.enqueue(session(7, 7), &src).unwrap();
    assert_eq!(status(&ob, "dropped_protected_items"), 1);
    assert_eq!(status(&ob, "dropped_items"), 4);
}

#[test]
fn ids_are_never_reused() {
    let d = dir("ids");
    let src = source(&d, "seg", 10);
    let ob = Outbox::open(&d.join("box"), 1 << 20).unwrap();
    let a = ob.enqueue(hls(1), &src).unwrap().unwrap();
    ob.done(&a).unwrap();
    let b = ob.enqueue(hls(2), &src).unwrap().unwrap();
    assert!(b.id > a.id, "{} after {}", b.id, a.id);
    drop(ob);
    let ob = Outbox::open(&d.join("box"), 1 << 20).unwrap();
    ob.remove(b.id).unwrap();
    let c = ob.enqueue(hls(3), &src).unwrap().unwrap();
    assert!(c.id > b.id, "not even after a restart and the newest item's delete");
}

#[test]
fn a_restart_repairs_every_half_done_write() {
    let d = dir("restart");
    let src = source(&d, "seg", 10);
    let boxdir = d.join("box");
    let (complete, finished) = {
        let ob = Outbox::open(&boxdir, 1 << 20).unwrap();
        let complete = ob.enqueue(hls(1), &src).unwrap().unwrap();
        let finished = ob.enqueue(hls(2), &src).unwrap().unwrap();
        (complete, finished)
    };
    let db = Connection::open(boxdir.join("outbox.db")).unwrap();
    // Uploaded, crash before its file was removed: the row is gone, the file is not.
    db.execute("DELETE FROM items WHERE id = ?1", [finished.id]).unwrap();
    // Renamed into place, crash before the row said so.
    db.execute("UPDATE items SET state = 'writing', sha256 = '' WHERE id = ?1", [complete.id]).unwrap();
    // Row committed, crash during the copy: the source is still there.
    let src3 = source(&d, "seg3", 33);
    let insert = "INSERT INTO items (camera, kind, start_ms, duration_ms, size, sha256, created_ms, state, source)
                  VALUES ('cam', 'hls', ?1, 6000, 33, '', 0, 'writing', ?2)";
    db.execute(insert, params![3, src3.display().to_string()]).unwrap();
    let requeued = db.last_insert_rowid();
    std::fs::write(boxdir.join(format!("{requeued}.tmp")), b"half").unwrap();
    // Row committed, crash during the copy, and the source is gone too: lost, and said so.
    db.execute(insert, params![4, d.join("gone").display().to_string()]).unwrap();
    drop(db);

    let ob = Outbox::open(&boxdir, 1 << 20).unwrap();
    assert!(!ob.file(finished.id).exists(), "the finished item's file is cleaned up");
    let items = ob.pending("cam", Kind::Hls, 0, 10).unwrap();
    assert_eq!(items.iter().map(|i| i.start_ms).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(items[0].sha256, sha256_hex(&[7u8; 10]), "the completed write was verified");
    assert_eq!(std::fs::read(ob.file(items[1].id)).unwrap(), vec![7u8; 33], "the interrupted copy was redone");
    assert!(!boxdir.join(format!("{requeued}.tmp")).exists());
    assert_eq!(status(&ob, "lost_items"), 1);
    assert_eq!(status(&ob, "pending_items"), 2);
}

#[test]
fn a_version_1_outbox_is_migrated_without_losing_items() {
    let d = dir("v1");
    let boxdir = d.join("box");
    std::fs::create_dir_all(&boxdir).unwrap();
    {
        let c = Connection::open(boxdir.join("outbox.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, camera TEXT NOT NULL, kind TEXT NOT NULL, start_ms INTEGER NOT NULL,
               duration_ms INTEGER NOT NULL, name TEXT, init_sha256 TEXT, session_id INTEGER, size INTEGER NOT NULL,
               sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT) STRICT;
             CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
             INSERT INTO items VALUES (5, 'cam', 'hls', 1, 6000, NULL, 'aa', NULL, 3, 'x', 0, 0, NULL);
             INSERT INTO counters VALUES ('uploaded_items', 41);",
        )
        .unwrap();
    }
    std::fs::write(boxdir.join("5"), b"abc").unwrap();
    let src = source(&d, "seg", 10);
    let ob = Outbox::open(&boxdir, 1 << 20).unwrap();
    assert_eq!(ob.pending("cam", Kind::Hls, 0, 10).unwrap().len(), 1);
    assert_eq!(status(&ob, "uploaded_items"), 41);
    assert!(ob.enqueue(hls(2), &src).unwrap().unwrap().id > 5);
}

#[test]
fn pending_items_are_visible_for_playback_and_removable() {
    let d = dir("pending");
    let src = source(&d, "seg", 10);
    let ob = Outbox::open(&d.join("box"), 1 << 20).unwrap();
    for start in [0, 6000, 12_000] {
        ob.enqueue(hls(start), &src).unwrap();
    }
    assert_eq!(ob.pending("cam", Kind::Hls, 5000, 7000).unwrap().len(), 2);
    assert_eq!(ob.pending("other", Kind::Hls, 0, 99_999).unwrap().len(), 0);
    assert_eq!(ob.remove_starting("cam", Kind::Hls, 0, 7000, &Kept::none()).unwrap(), 2);
    assert_eq!(ob.pending("cam", Kind::Hls, 0, 99_999).unwrap().len(), 1);
}

#[test]
fn cameras_enqueueing_and_deleting_at_once_lose_no_file() {
    let d = dir("concurrent");
    let ob = Outbox::open(&d.join("box"), 1 << 30).unwrap();
    // Four cameras enqueue; two of them also delete their own older items while the others
    // keep enqueueing (the review's lost-file race: a delete and a reused id).
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let ob = ob.clone();
            let src = source(&d, &format!("src{t}"), 2000 + t as usize);
            std::thread::spawn(move || {
                let camera = format!("cam{t}");
                for i in 0..150 {
                    let item = NewItem { camera: camera.clone(), ..hls(i) };
                    ob.enqueue(item, &src).unwrap();
                    if t % 2 == 0 && i % 3 == 2 {
                        ob.remove_starting(&camera, Kind::Hls, i - 2, i, &Kept::none()).unwrap();
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let mut per_camera = std::collections::HashMap::new();
    while let Some(item) = ob.next(false, 0).unwrap() {
        let data = std::fs::read(ob.file(item.id)).unwrap_or_else(|e| panic!("item {} lost its file: {e}", item.id));
        assert_eq!(sha256_hex(&data), item.sha256, "item {} holds its own bytes", item.id);
        *per_camera.entry(item.camera.clone()).or_insert(0) += 1;
        ob.done(&item).unwrap();
    }
    assert_eq!(per_camera.get("cam1"), Some(&150));
    assert_eq!(per_camera.get("cam3"), Some(&150));
    assert_eq!(per_camera.get("cam0"), Some(&50), "every third item survived its camera's deletes");
    let leftovers: Vec<_> = std::fs::read_dir(d.join("box"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<i64>().is_ok())
        .collect();
    assert!(leftovers.is_empty(), "no file without an item: {leftovers:?}");
}

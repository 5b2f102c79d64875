use super::*;

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
    assert_eq!(first.sha256, crate::video::segment::sha256_hex(&[7u8; 100]));
    ob.done(&first).unwrap();
    assert_eq!(ob.next(false, 60_000).unwrap().unwrap().start_ms, 1000, "oldest first");
    assert_eq!(ob.next(true, 60_000).unwrap().unwrap().start_ms, 3000, "the live turn takes the newest");
    let item = ob.next(false, 60_000).unwrap().unwrap();
    assert!(ob.file(item.id).exists());
    ob.done(&item).unwrap();
    assert!(!ob.file(item.id).exists());
    assert_eq!(ob.status()["uploaded_items"], 2);
}

#[test]
fn a_full_budget_drops_the_oldest_and_counts_it() {
    let d = dir("budget");
    let src = source(&d, "seg", 400);
    let ob = Outbox::open(&d.join("box"), 1000).unwrap();
    for start in [1, 2, 3, 4] {
        ob.enqueue(hls(start), &src).unwrap();
    }
    let status = ob.status();
    assert_eq!(status["pending_items"], 2);
    assert_eq!(status["dropped_items"], 2);
    assert_eq!(status["dropped_bytes"], 800);
    assert_eq!(ob.next(false, 0).unwrap().unwrap().start_ms, 3, "the newest survived");
}

#[test]
fn survives_a_restart_and_cleans_up_half_done_work() {
    let d = dir("restart");
    let src = source(&d, "seg", 10);
    let boxdir = d.join("box");
    {
        let ob = Outbox::open(&boxdir, 1 << 20).unwrap();
        ob.enqueue(hls(1), &src).unwrap();
        let gone = ob.enqueue(hls(2), &src).unwrap();
        std::fs::remove_file(ob.file(gone.id)).unwrap(); // row without file
    }
    std::fs::write(boxdir.join("999"), b"x").unwrap(); // file without row
    std::fs::write(boxdir.join("123-456.tmp"), b"x").unwrap(); // interrupted copy
    let ob = Outbox::open(&boxdir, 1 << 20).unwrap();
    let next = ob.next(false, 0).unwrap().unwrap();
    assert_eq!(next.start_ms, 1);
    ob.done(&next).unwrap();
    assert!(ob.next(false, 0).unwrap().is_none());
    assert!(!boxdir.join("999").exists() && !boxdir.join("123-456.tmp").exists());
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
    assert_eq!(ob.remove_starting("cam", Kind::Hls, 0, 7000, &crate::video::segment::Kept::none()).unwrap(), 2);
    assert_eq!(ob.pending("cam", Kind::Hls, 0, 99_999).unwrap().len(), 1);
}

#[test]
fn cameras_enqueueing_at_once_do_not_mix_their_files() {
    let d = dir("concurrent");
    let ob = Outbox::open(&d.join("box"), 1 << 30).unwrap();
    let threads: Vec<_> = (0..2u8)
        .map(|t| {
            let ob = ob.clone();
            let src = source(&d, &format!("src{t}"), 2000 + t as usize);
            std::thread::spawn(move || {
                for i in 0..100 {
                    ob.enqueue(hls(i64::from(t) * 1000 + i), &src).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let mut n = 0;
    while let Some(item) = ob.next(false, 0).unwrap() {
        let data = std::fs::read(ob.file(item.id)).unwrap();
        assert_eq!(crate::video::segment::sha256_hex(&data), item.sha256, "item {} holds its own bytes", item.id);
        ob.done(&item).unwrap();
        n += 1;
    }
    assert_eq!(n, 200);
}

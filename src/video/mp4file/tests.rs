use super::*;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn segment_bytes(t: u64) -> Vec<u8> {
    let mut tfdt = vec![1, 0, 0, 0];
    tfdt.extend_from_slice(&t.to_be_bytes());
    let traf = bx(b"traf", &bx(b"tfdt", &tfdt));
    [bx(b"styp", b"msdh"), bx(b"moof", &traf), bx(b"mdat", &[5; 64])].concat()
}

struct Spool {
    dir: PathBuf,
}

impl Spool {
    fn new(name: &str) -> Spool {
        let dir = std::env::temp_dir().join(format!("panelcam-mp4-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        std::fs::write(dir.join("spool/init_1.mp4"), [bx(b"ftyp", b"iso5"), bx(b"moov", &[0; 16])].concat()).unwrap();
        Spool { dir }
    }

    fn seg(&self, start_ms: i64, duration_ms: i64) -> SpoolSegment {
        let name = format!("seg_{start_ms}.m4s");
        let path = self.dir.join("spool").join(&name);
        std::fs::write(&path, segment_bytes(start_ms as u64 * 90)).unwrap();
        SpoolSegment { name, path, init_path: self.dir.join("spool/init_1.mp4"), start_ms, duration_ms, size: 100 }
    }
}

const T0: i64 = 1_724_076_000_000; // 2024-08-19T14:00:00Z

#[test]
fn files_follow_the_wall_clock_window_and_the_spec_layout() {
    let s = Spool::new("window");
    let mut asm = Mp4Assembler::new("cam1", &s.dir.join("rec/cam1"), 1.0);
    let mut done = Vec::new();
    for i in 0..25 {
        if let Some(f) = asm.add(&s.seg(T0 + i * 6000, 6000), Some(3)).unwrap() {
            done.push(f);
        }
    }
    done.extend(asm.finish().unwrap());
    let names: Vec<&str> = done.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["cam1_20240819_140000.mp4", "cam1_20240819_140100.mp4", "cam1_20240819_140200.mp4"]);
    assert_eq!(done[0].duration_ms, 60_000);
    assert_eq!(done[2].duration_ms, 30_000);
    let path = done[0].path.clone().unwrap();
    assert_eq!(path, s.dir.join("rec/cam1/2024/08/19/cam1_20240819_140000.mp4"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as i64, done[0].size);
    let boxes = fmp4::top_level(&bytes).unwrap();
    assert_eq!(boxes.iter().filter(|b| &b.kind == b"moof").count(), 10);
    assert!(boxes.iter().all(|b| &b.kind != b"styp"));
    assert_eq!(done[0].session_id, Some(3));
}

#[test]
fn gaps_and_session_changes_start_new_files() {
    let s = Spool::new("gaps");
    let mut asm = Mp4Assembler::new("c", &s.dir.join("rec"), 5.0);
    assert!(asm.add(&s.seg(T0, 6000), Some(1)).unwrap().is_none());
    let after_gap = asm.add(&s.seg(T0 + 60_000, 6000), Some(1)).unwrap().expect("a gap closes the file");
    assert_eq!(after_gap.duration_ms, 6000);
    let new_session = asm.add(&s.seg(T0 + 66_000, 6000), Some(2)).unwrap().expect("a new session closes the file");
    assert_eq!(new_session.start_ms, T0 + 60_000);
}

#[test]
fn a_crash_leaves_a_file_that_is_cut_back_to_whole_segments() {
    let s = Spool::new("crash");
    let dir = s.dir.join("rec/cam1");
    let mut asm = Mp4Assembler::new("cam1", &dir, 5.0);
    for i in 0..3 {
        asm.add(&s.seg(T0 + i * 6000, 6000), None).unwrap();
    }
    // Simulate the crash: forget the assembler, append half a segment without journalling it.
    drop(asm);
    let part = dir.join("2024/08/19/cam1_20240819_140000.mp4.part");
    let whole = std::fs::metadata(&part).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&part).unwrap();
    f.write_all(&segment_bytes(99)[..40]).unwrap();
    drop(f);
    let repaired = Mp4Assembler::repair(&dir);
    assert_eq!(repaired.len(), 1);
    let m = repaired.into_iter().next().unwrap().unwrap();
    assert_eq!(m.name, "cam1_20240819_140000.mp4");
    assert_eq!((m.size as u64, m.duration_ms), (whole, 18_000));
    let bytes = std::fs::read(m.path.unwrap()).unwrap();
    assert_eq!(fmp4::repairable_length(&bytes), bytes.len(), "only whole boxes remain");
    assert!(!part.exists() && !journal_path(&part).exists());
}

#[test]
fn a_part_without_segments_is_discarded() {
    let s = Spool::new("empty");
    let dir = s.dir.join("rec");
    let mut asm = Mp4Assembler::new("c", &dir, 5.0);
    asm.add(&s.seg(T0, 6000), None).unwrap();
    drop(asm);
    // Lose the journal's segment line: only the header survived.
    let part = dir.join("2024/08/19/c_20240819_140000.mp4.part");
    std::fs::write(journal_path(&part), format!("{T0} -\n")).unwrap();
    assert!(Mp4Assembler::repair(&dir).is_empty());
    assert!(!part.exists());
}

#[test]
fn a_finished_file_is_found_again_until_it_is_delivered() {
    let s = Spool::new("undelivered");
    let dir = s.dir.join("rec/cam1");
    let mut asm = Mp4Assembler::new("cam1", &dir, 5.0);
    for i in 0..3 {
        asm.add(&s.seg(T0 + i * 6000, 6000), Some(4)).unwrap();
    }
    let done = asm.finish().unwrap().unwrap();
    // Crash before the store had it: the next start finds it by its journal.
    let found: Vec<Mp4Meta> = Mp4Assembler::repair(&dir).into_iter().map(Result::unwrap).collect();
    assert_eq!(found, vec![done.clone()]);
    delivered(done.path.as_ref().unwrap());
    assert!(Mp4Assembler::repair(&dir).is_empty(), "delivered files are left alone");
}

#[test]
fn a_crash_between_the_renames_of_finish_is_repaired() {
    let s = Spool::new("renames");
    let dir = s.dir.join("rec/cam1");
    let mut asm = Mp4Assembler::new("cam1", &dir, 5.0);
    asm.add(&s.seg(T0, 6000), None).unwrap();
    asm.add(&s.seg(T0 + 6000, 6000), None).unwrap();
    drop(asm);
    // The journal already has its final name, the data is still the part file.
    let part = dir.join("2024/08/19/cam1_20240819_140000.mp4.part");
    let file = dir.join("2024/08/19/cam1_20240819_140000.mp4");
    std::fs::rename(journal_path(&part), journal_path(&file)).unwrap();
    let found: Vec<Mp4Meta> = Mp4Assembler::repair(&dir).into_iter().map(Result::unwrap).collect();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].start_ms, found[0].duration_ms), (T0, 12_000));
    assert!(file.exists() && !part.exists());
}

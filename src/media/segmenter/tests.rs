//! The segmenter with made-up pictures: what it writes and lists, checked with the
//! pipeline's own playlist reader. `playback.rs` checks real streams with FFmpeg.

mod playback;

use std::time::Instant;

use super::*;
use crate::video::playlist::{LiveSegment, parse_live};

const SPS_720P: &[u8] = &[
    0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c,
    0x83, 0xc6, 0x0c, 0xa8,
];
const PPS: &[u8] = &[0x68, 0xce, 0x38, 0x80];
/// 2025-01-01T00:00:00Z.
const WALL: i64 = 1_735_689_600_000;

fn params(pps: &[u8]) -> Params {
    Params {
        codec: crate::media::Codec::H264,
        vps: None,
        sps: Bytes::from_static(SPS_720P),
        pps: Bytes::copy_from_slice(pps),
    }
}

/// Picture `i` at 25 fps: a keyframe every `gop`, 100 bytes saying which picture it is.
fn unit(i: i64, gop: i64) -> AccessUnit {
    AccessUnit {
        data: Bytes::from([&96u32.to_be_bytes()[..], &[i as u8; 96]].concat()),
        keyframe: i % gop == 0,
        pts: i * 3600,
        after_loss: false,
        wall_ms: WALL + i * 40,
        arrived: Instant::now(),
    }
}

fn output(name: &str) -> SegmentOutput {
    let dir = std::env::temp_dir().join(format!("panelcam-segmenter-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SegmentOutput { dir, segment_seconds: 2, list_size: 3, encode_fps: 25.0 }
}

fn listed(out: &SegmentOutput) -> (String, Vec<LiveSegment>) {
    let text = std::fs::read_to_string(out.dir.join("live.m3u8")).unwrap();
    let segs = parse_live(&text);
    (text, segs)
}

fn files(out: &SegmentOutput) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(&out.dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn segments_start_at_keyframes_after_segment_seconds() {
    let out = output("cut");
    let mut s = Segmenter::new(&out, "r1");
    let first = s.next_number;
    s.push(&unit(0, 25)).unwrap(); // before the parameter sets: dropped
    s.params(&params(PPS)).unwrap();
    for i in 1..=200 {
        // 1 to 24 come before the first keyframe: dropped.
        s.push(&unit(i, 25)).unwrap();
    }
    let (text, segs) = listed(&out);
    // Keyframes at 25, 50, ...: cuts at 75, 125, 175 (2 s each); 175.. is still pending.
    assert_eq!(segs.len(), 3, "{text}");
    for (k, seg) in segs.iter().enumerate() {
        assert_eq!(seg.uri, format!("seg_{}.m4s", first + k as u64));
        assert_eq!(seg.init.as_deref(), Some("init_r1.mp4"));
        assert_eq!(seg.duration_ms, 2000);
        assert_eq!(seg.start_ms, Some(WALL + (25 + 50 * k as i64) * 40), "wall clock of the first picture");
    }
    assert!(text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n")), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:2\n") && text.contains("#EXTINF:2.000000,\n"), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:01.000+0000\n"), "FFmpeg's form: {text}");
    s.finish().unwrap();
    let (text, segs) = listed(&out);
    assert_eq!(segs.len(), 3, "list size");
    assert_eq!(segs[2].duration_ms, 26 * 40, "the rest: 175..=200");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    assert!(files(&out).iter().all(|f| !f.ends_with(".tmp")), "{:?}", files(&out));
    // The first segment went out of the list but stays for the pipeline to clean up.
    assert!(out.dir.join(format!("seg_{first}.m4s")).exists());
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn segment_files_hold_their_pictures_in_one_fragment() {
    let out = output("content");
    let mut s = Segmenter::new(&out, "r");
    s.params(&params(PPS)).unwrap();
    for i in 0..=50 {
        s.push(&unit(i, 50)).unwrap();
    }
    let (_, segs) = listed(&out);
    let data = std::fs::read(out.dir.join(&segs[0].uri)).unwrap();
    let boxes = crate::video::fmp4::top_level(&data).unwrap();
    assert_eq!(boxes.iter().map(|b| b.kind).collect::<Vec<_>>(), [*b"moof", *b"mdat"]);
    let want: Vec<u8> = (0..50).flat_map(|i| unit(i, 50).data.to_vec()).collect();
    assert_eq!(&data[boxes[1].start + 8..], &want[..]);
    let init = std::fs::read(out.dir.join("init_r.mp4")).unwrap();
    let track = fmp4::track(&params(PPS)).unwrap();
    assert_eq!(init, fmp4::init_segment(&track));
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn new_parameter_sets_cut_and_start_a_new_init_file() {
    let out = output("params");
    let mut s = Segmenter::new(&out, "r");
    s.params(&params(PPS)).unwrap();
    for i in 0..30 {
        s.push(&unit(i, 25)).unwrap();
    }
    s.params(&params(PPS)).unwrap(); // the same again: nothing happens
    assert!(!out.dir.join("live.m3u8").exists());
    s.params(&params(&[0x68, 0xce, 0x3c, 0x80])).unwrap();
    s.push(&unit(30, 25)).unwrap(); // not a keyframe: the new decoder cannot start here
    for i in 50..=100 {
        s.push(&unit(i, 25)).unwrap();
    }
    s.finish().unwrap();
    let (text, segs) = listed(&out);
    let inits: Vec<_> = segs.iter().map(|s| s.init.as_deref().unwrap()).collect();
    assert_eq!(inits, ["init_r.mp4", "init_r-1.mp4", "init_r-1.mp4"], "{text}");
    assert_eq!(segs[0].duration_ms, 30 * 40, "ended by the change, its last picture 40 ms");
    assert_eq!(segs[1].start_ms, Some(WALL + 50 * 40));
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert_eq!(text.matches("#EXT-X-MAP:").count(), 2, "{text}");
    assert!(out.dir.join("init_r-1.mp4").exists());
    // Once the first init's segments slid out, the discontinuity is counted instead.
    for i in 101..=300 {
        s.push(&unit(i, 25)).unwrap();
    }
    let (text, _) = listed(&out);
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n") && !text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn unusable_parameter_sets_stop_recording_until_good_ones_come() {
    let out = output("bad");
    let mut s = Segmenter::new(&out, "r");
    let bad = Params { sps: Bytes::from_static(&[0x67, 0x42]), ..params(PPS) };
    assert!(s.params(&bad).unwrap_err().to_string().contains("H.264 SPS"));
    s.push(&unit(0, 25)).unwrap();
    s.finish().unwrap();
    assert!(!out.dir.exists() || files(&out).is_empty());
    s.params(&params(PPS)).unwrap();
    for i in 0..=50 {
        s.push(&unit(i, 25)).unwrap();
    }
    assert_eq!(listed(&out).1.len(), 1);
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn units_after_loss_and_clock_jumps_are_kept() {
    let out = output("loss");
    let mut s = Segmenter::new(&out, "r");
    s.params(&params(PPS)).unwrap();
    for i in 0..60 {
        let mut u = unit(i, 50);
        u.after_loss = i == 10;
        if i >= 20 {
            u.pts += 1 << 40; // the camera's clock jumps: that picture lasts as long as the one before
        }
        s.push(&u).unwrap();
    }
    s.finish().unwrap();
    let segs = listed(&out).1;
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].duration_ms, 50 * 40, "all 50 pictures, 40 ms each");
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn a_segment_is_cut_early_at_the_memory_cap() {
    let out = output("cap");
    let mut s = Segmenter::new(&out, "r");
    s.max_segment_bytes = 1000; // 10 pictures of 100 bytes
    s.params(&params(PPS)).unwrap();
    for i in 0..25 {
        s.push(&unit(i, 1000)).unwrap();
    }
    s.finish().unwrap();
    let segs = listed(&out).1;
    assert_eq!(segs.iter().map(|s| s.duration_ms).collect::<Vec<_>>(), [400, 400, 200]);
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn numbers_continue_after_the_segments_already_in_the_spool() {
    let out = output("restart");
    std::fs::create_dir_all(&out.dir).unwrap();
    let future = unix_seconds() + 1000;
    std::fs::write(out.dir.join(format!("seg_{future}.m4s")), b"").unwrap();
    let s = Segmenter::new(&out, "r");
    assert_eq!(s.next_number, future + 1);
    let _ = std::fs::remove_dir_all(&out.dir);
    assert!(Segmenter::new(&out, "r").next_number >= future - 1000);
}

//! Real encoders in, real players out: FFmpeg's own H.264/H.265 cut into access units, fed
//! through the segmenter, and the spool read back by FFmpeg (as HLS, and as the MP4 files
//! the pipeline assembles), which must find every picture byte for byte.

use std::path::Path;

use super::super::*;
use crate::media::Codec;
use crate::media::tests::{access_units, annexb, ffmpeg, ffprobe, framehash_packets, split};
use crate::store::segment::sha256_hex;
use crate::video::mp4file::Mp4Assembler;
use crate::video::playlist::parse_live;
use crate::video::segment::SpoolSegment;

const WALL: i64 = 1_735_689_600_000;

/// Two clips, the second of another size (the camera's resolution was changed), 25 fps
/// with a keyframe every second, through a segmenter of 1-second segments.
fn record(codec: Codec, name: &str) -> (SegmentOutput, Vec<Bytes>) {
    let dir = std::env::temp_dir().join(format!("panelcam-playback-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = SegmentOutput { dir, segment_seconds: 1, list_size: 6, encode_fps: 25.0 };
    let fast = &["-preset", "ultrafast"];
    let first = split(codec, &annexb(codec, "640x360", 100, 25, "", fast));
    let second = split(codec, &annexb(codec, "320x240", 50, 25, "", fast));
    let mut s = Segmenter::new(&out, "run");
    let mut sent = Vec::new();
    s.params(&first.params).unwrap();
    for au in access_units(&first, 0, WALL) {
        sent.push(au.data.clone());
        s.push(&au).unwrap();
    }
    s.params(&second.params).unwrap();
    for au in access_units(&second, 100 * 3600, WALL) {
        sent.push(au.data.clone());
        s.push(&au).unwrap();
    }
    s.finish().unwrap();
    (out, sent)
}

fn probe_stream(file: &Path) -> serde_json::Value {
    // -count_frames decodes: the decoder configuration must be right, not only the boxes.
    let entries = "stream=width,height,nb_read_packets,nb_read_frames:format=duration";
    let p = ffprobe(&["-count_packets", "-count_frames", "-show_entries", entries], file);
    let s = &p["streams"][0];
    assert_eq!(s["nb_read_frames"], s["nb_read_packets"], "every picture decodes: {}", file.display());
    serde_json::json!({
        "size": format!("{}x{}", s["width"], s["height"]),
        "packets": s["nb_read_packets"],
        "duration": p["format"]["duration"].as_str().and_then(|d| d.parse::<f64>().ok()).map(|d| (d * 1000.0).round()),
    })
}

fn check(codec: Codec, name: &str) {
    let (out, sent) = record(codec, name);
    let text = std::fs::read_to_string(out.dir.join("live.m3u8")).unwrap();
    let live = parse_live(&text);
    assert_eq!(live.len(), 6, "{text}");
    assert!(live.iter().all(|s| s.duration_ms == 1000), "{text}");
    let inits: Vec<&str> = live.iter().map(|s| s.init.as_deref().unwrap()).collect();
    assert_eq!(inits, ["init_run.mp4"; 4].into_iter().chain(["init_run-1.mp4"; 2]).collect::<Vec<_>>());
    assert_eq!(live[4].start_ms, Some(WALL + 4000));

    // The playlist as a player reads it: every picture, in order, byte for byte, 1/25 s each.
    let playlist = out.dir.join("live.m3u8");
    let hashes = ffmpeg(&["-i", playlist.to_str().unwrap(), "-c", "copy", "-f", "framehash", "-hash", "sha256", "-"]);
    // Decoding through HLS, up to the resolution change: FFmpeg's HLS reader keeps the first
    // init segment's decoder configuration across `#EXT-X-MAP` changes (hls.js does not),
    // so the second part is decoded below from its own init segment.
    let (first_part, _) = text.split_once("#EXT-X-DISCONTINUITY").unwrap();
    let first_list = out.dir.join("first.m3u8");
    std::fs::write(&first_list, format!("{first_part}#EXT-X-ENDLIST\n")).unwrap();
    ffmpeg(&["-xerror", "-i", first_list.to_str().unwrap(), "-f", "null", "-"]);
    let packets = framehash_packets(&hashes);
    assert_eq!(packets.len(), sent.len(), "{}", String::from_utf8_lossy(&hashes));
    for (i, (sent, (duration, size, sha))) in sent.iter().zip(&packets).enumerate() {
        assert_eq!((*duration, *size, sha.as_str()), (3600, sent.len(), sha256_hex(sent).as_str()), "picture {i}");
    }

    // Each part with its own init segment, as the pipeline stores them: the right size.
    for (init, size, count) in [("init_run.mp4", "640x360", 100), ("init_run-1.mp4", "320x240", 50)] {
        let mut part = std::fs::read(out.dir.join(init)).unwrap();
        for seg in live.iter().filter(|s| s.init.as_deref() == Some(init)) {
            part.extend(std::fs::read(out.dir.join(&seg.uri)).unwrap());
        }
        let file = out.dir.join(format!("part-{init}"));
        std::fs::write(&file, part).unwrap();
        let p = probe_stream(&file);
        assert_eq!(
            (p["size"].as_str(), p["packets"].as_str()),
            (Some(size), Some(count.to_string().as_str())),
            "{init}"
        );
    }

    // The pipeline's MP4 files: one per init segment, starting at 0 and playing whole.
    let mp4_dir = out.dir.join("mp4");
    let mut assembler = Mp4Assembler::new("cam", &mp4_dir, 10.0);
    let mut files = Vec::new();
    for seg in &live {
        let path = out.dir.join(&seg.uri);
        let spool = SpoolSegment {
            name: seg.uri.clone(),
            size: std::fs::metadata(&path).unwrap().len(),
            path,
            init_path: out.dir.join(seg.init.as_deref().unwrap()),
            start_ms: seg.start_ms.unwrap(),
            duration_ms: seg.duration_ms,
        };
        files.extend(assembler.add(&spool, None).unwrap());
    }
    files.extend(assembler.finish().unwrap());
    assert_eq!(files.len(), 2);
    let probes: Vec<_> = files.iter().map(|f| probe_stream(f.path.as_ref().unwrap())).collect();
    assert_eq!(probes[0], serde_json::json!({"size": "640x360", "packets": "100", "duration": 4000.0}));
    assert_eq!(probes[1], serde_json::json!({"size": "320x240", "packets": "50", "duration": 2000.0}));
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[test]
fn ffmpeg_plays_recorded_h264_byte_for_byte() {
    check(Codec::H264, "h264");
}

#[test]
fn ffmpeg_plays_recorded_h265_byte_for_byte() {
    check(Codec::H265, "h265");
}

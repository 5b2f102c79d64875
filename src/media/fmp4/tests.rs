use bytes::Bytes;

use super::*;
use crate::media::tests::{annexb, ffmpeg, ffprobe, framehash_packets, split};
use crate::video::fmp4::{BoxRange, append_fragments, boxes_in, top_level};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

const SPS_720P: &str = "6742c01fda014016ec0440000003004000000c83c60ca8";
const PPS: &str = "68ce3880";

fn params_720p() -> Params {
    Params { codec: Codec::H264, vps: None, sps: hex(SPS_720P).into(), pps: hex(PPS).into() }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// The child box of `kind` inside `parent`, whose children start `skip` bytes after its
/// header (full boxes, sample entries).
fn child(data: &[u8], parent: BoxRange, skip: usize, kind: &[u8; 4]) -> BoxRange {
    let kids = boxes_in(data, parent.start + 8 + skip, parent.end).unwrap();
    *kids
        .iter()
        .find(|b| &b.kind == kind)
        .unwrap_or_else(|| panic!("no {} in {:?}", String::from_utf8_lossy(kind), kids))
}

fn path(data: &[u8], steps: &[(&[u8; 4], usize)]) -> BoxRange {
    let mut b = BoxRange { kind: *b"root", start: 0, end: data.len() };
    let mut skip = 0;
    for (kind, after) in steps {
        b = if &b.kind == b"root" {
            *top_level(data).unwrap().iter().find(|t| &t.kind == *kind).unwrap()
        } else {
            child(data, b, skip, kind)
        };
        skip = *after;
    }
    b
}

#[test]
fn track_describes_the_stream() {
    let t = track(&params_720p()).unwrap();
    assert_eq!((t.codec, t.width, t.height), (Codec::H264, 1280, 720));
    assert_eq!(t.codec_string, "avc1.42C01F");
    let sps = hex(SPS_720P);
    let mut want = vec![1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, sps.len() as u8];
    want.extend_from_slice(&sps);
    want.extend_from_slice(&[1, 0, 4]);
    want.extend_from_slice(&hex(PPS));
    assert_eq!(&t.description[..], &want[..], "avcC: one SPS, one PPS, 4-byte lengths");
}

#[test]
fn track_refuses_what_it_cannot_describe() {
    let bad = Params { sps: Bytes::from_static(&[0x67, 0x42]), ..params_720p() };
    assert!(track(&bad).unwrap_err().contains("H.264 SPS"));
    let no_vps = Params { codec: Codec::H265, ..params_720p() };
    assert!(track(&no_vps).unwrap_err().contains("VPS"));
}

#[test]
fn init_segment_has_the_boxes_players_need() {
    let t = track(&params_720p()).unwrap();
    let init = init_segment(&t);
    let kinds: Vec<[u8; 4]> = top_level(&init).unwrap().iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov"]);
    let tkhd = path(&init, &[(b"moov", 0), (b"trak", 0), (b"tkhd", 0)]);
    assert_eq!(be32(&init[tkhd.end - 8..]) >> 16, 1280);
    assert_eq!(be32(&init[tkhd.end - 4..]) >> 16, 720);
    let mdhd = path(&init, &[(b"moov", 0), (b"trak", 0), (b"mdia", 0), (b"mdhd", 0)]);
    assert_eq!(be32(&init[mdhd.start + 20..]), 90_000);
    let hdlr = path(&init, &[(b"moov", 0), (b"trak", 0), (b"mdia", 0), (b"hdlr", 0)]);
    assert_eq!(&init[hdlr.start + 16..hdlr.start + 20], b"vide");
    let stbl = [(b"moov", 0), (b"trak", 0), (b"mdia", 0), (b"minf", 0), (b"stbl", 0)];
    let avcc = path(&init, &[&stbl[..], &[(b"stsd", 8), (b"avc1", 78), (b"avcC", 0)]].concat());
    assert_eq!(&init[avcc.start + 8..avcc.end], &t.description[..]);
    for empty in [b"stts", b"stsc", b"stco"] {
        let b = path(&init, &[&stbl[..], &[(empty, 0)]].concat());
        assert_eq!(b.end - b.start, 16, "{}", String::from_utf8_lossy(empty));
    }
    let trex = path(&init, &[(b"moov", 0), (b"mvex", 0), (b"trex", 0)]);
    assert_eq!(be32(&init[trex.start + 12..]), 1, "track 1");
}

#[test]
fn fragments_hold_their_samples_where_trun_says() {
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    for count in [1, 3] {
        let samples: Vec<Sample> = frames
            .iter()
            .take(count)
            .enumerate()
            .map(|(i, d)| Sample { data: d, duration: 3600, keyframe: i == 0 })
            .collect();
        let v = fragment_vec(7, 1 << 40, &samples);
        assert_eq!(v.capacity(), v.len(), "one allocation of the exact size");
        let boxes = top_level(&v).unwrap();
        let kinds: Vec<[u8; 4]> = boxes.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"moof", *b"mdat"]);
        let (moof, mdat) = (boxes[0], boxes[1]);
        assert_eq!(mdat.end - mdat.start, 8 + frames.iter().take(count).map(Vec::len).sum::<usize>());
        let mfhd = child(&v, moof, 0, b"mfhd");
        assert_eq!(be32(&v[mfhd.start + 12..]), 7);
        let traf = child(&v, moof, 0, b"traf");
        let tfhd = child(&v, traf, 0, b"tfhd");
        assert_eq!(be32(&v[tfhd.start + 8..]), 0x0002_0000, "default-base-is-moof");
        let trun = child(&v, traf, 0, b"trun");
        assert_eq!(be32(&v[trun.start + 12..]) as usize, count);
        let mut at = be32(&v[trun.start + 16..]) as usize; // data offset from the moof
        assert_eq!(at, mdat.start + 8);
        for (i, s) in samples.iter().enumerate() {
            let entry = trun.start + 20 + 12 * i;
            assert_eq!(be32(&v[entry..]), 3600);
            let size = be32(&v[entry + 4..]) as usize;
            assert_eq!(&v[at..at + size], s.data);
            let flags = be32(&v[entry + 8..]);
            assert_eq!(flags & 0x0001_0000 == 0, s.keyframe, "non-sync flag of sample {i}");
            at += size;
        }
        // The existing reader finds the decode time and shifts it.
        let mut base = None;
        let mut out = Vec::new();
        append_fragments(&v, &mut base, &mut out).unwrap();
        assert_eq!(base, Some(1 << 40));
    }
}

#[test]
fn an_empty_fragment_is_well_formed() {
    let v = fragment(1, 0, &[]);
    assert_eq!(top_level(&v).unwrap().len(), 2);
}

/// The live path: one fragment per picture after the init segment, as a browser gets them.
/// FFmpeg must read every picture back, byte for byte, with its duration, and decode it.
#[test]
fn ffmpeg_plays_one_fragment_per_picture() {
    // x264's profile is a ceiling: ultrafast alone would stay Constrained Baseline.
    let high: &[&str] = &["-profile:v", "high"];
    for (codec, extra) in [(Codec::H264, &["-preset", "ultrafast"][..]), (Codec::H264, high), (Codec::H265, &[][..])] {
        let clip = split(codec, &annexb(codec, "320x240", 30, 10, "", extra));
        let t = track(&clip.params).unwrap();
        if extra == high {
            assert_eq!(t.description[t.description.len() - 4..], [0xfd, 0xf8, 0xf8, 0], "avcC's 4:2:0 8-bit tail");
        }
        let mut file = init_segment(&t).to_vec();
        for (i, (data, keyframe)) in clip.units.iter().enumerate() {
            let s = [Sample { data, duration: 3600, keyframe: *keyframe }];
            file.extend_from_slice(&fragment(i as u32 + 1, i as u64 * 3600, &s));
        }
        let path = std::env::temp_dir().join(format!("panelcam-fmp4-live-{}-{codec:?}.mp4", std::process::id()));
        std::fs::write(&path, &file).unwrap();
        let entries = "stream=width,height,nb_read_packets,nb_read_frames,codec_name";
        let probe = ffprobe(&["-count_packets", "-count_frames", "-show_entries", entries], &path);
        let hashes = ffmpeg(&["-i", path.to_str().unwrap(), "-c", "copy", "-f", "framehash", "-hash", "sha256", "-"]);
        let _ = std::fs::remove_file(&path);
        let s = &probe["streams"][0];
        assert_eq!(s["codec_name"], if codec == Codec::H264 { "h264" } else { "hevc" });
        assert_eq!((s["width"].as_u64(), s["height"].as_u64()), (Some(320), Some(240)));
        assert_eq!(
            (s["nb_read_packets"].as_str(), s["nb_read_frames"].as_str()),
            (Some("30"), Some("30")),
            "{codec:?}"
        );
        let got = framehash_packets(&hashes);
        assert_eq!(got.len(), 30);
        for (i, ((data, _), (duration, size, sha))) in clip.units.iter().zip(&got).enumerate() {
            assert_eq!((*duration, *size), (3600, data.len()), "packet {i}");
            assert_eq!(*sha, crate::store::segment::sha256_hex(data), "packet {i} bytes");
        }
    }
}

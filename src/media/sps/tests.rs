use proptest::prelude::*;

use super::bits::{BitReader, rbsp};
use super::*;
use crate::media::Codec;
use crate::media::tests::{annexb, ffprobe, split};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// x264 (preset ultrafast, yuv420p) at 1280x720: no cropping, emulation prevention inside.
const X264_720P: &str = "6742c01fda014016ec0440000003004000000c83c60ca8";
/// The same at 1920x1080: 1088 coded lines cropped to 1080.
const X264_1080P: &str = "6742c028da01e0089f97011000000300100000030320f1832a";
/// x265 (Main, yuv420p) at 1280x720.
const X265_720P: &str = "42010101600000030090000003000003005da00280802d165959a4932bc05a020000030002000003003210";

#[test]
fn emulation_prevention_bytes_are_removed() {
    assert_eq!(rbsp(&[0, 0, 3, 1]), [0, 0, 1]);
    assert_eq!(rbsp(&[0, 0, 3, 0, 0, 3, 0]), [0, 0, 0, 0, 0]);
    assert_eq!(rbsp(&[0, 3, 0, 0, 3]), [0, 3, 0, 0], "a 03 after a single zero stays");
    assert_eq!(rbsp(&[5, 0, 0, 3]), [5, 0, 0]);
}

#[test]
fn exp_golomb_codes_read_as_the_standard_says() {
    // 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3, 4; then se 1 (010), -1 (011).
    let data = [0b1010_0110, 0b0100_0010, 0b1010_0110];
    let mut r = BitReader::new(&data, "test");
    let ue: Vec<u32> = (0..5).map(|_| r.ue("v").unwrap()).collect();
    assert_eq!(ue, [0, 1, 2, 3, 4]);
    assert_eq!(r.se("s").unwrap(), 1);
    assert_eq!(r.se("s").unwrap(), -1);
    let err = r.ue("past the end").unwrap_err();
    assert!(err.contains("past the end") && err.contains("ends"), "{err}");
    let zeros = [0u8; 8];
    assert!(BitReader::new(&zeros, "t").ue("long").unwrap_err().contains("longer than 32 bits"));
}

#[test]
fn x264_vectors_give_size_and_codec_string() {
    let s = parse_h264(&hex(X264_720P)).unwrap();
    assert_eq!((s.width, s.height), (1280, 720));
    assert_eq!(s.codec_string(), "avc1.42C01F");
    let s = parse_h264(&hex(X264_1080P)).unwrap();
    assert_eq!((s.width, s.height), (1920, 1080));
    assert_eq!(s.codec_string(), "avc1.42C028");
    assert_eq!((s.chroma_format_idc, s.bit_depth_luma_minus8), (1, 0));
}

#[test]
fn x265_vector_gives_size_and_codec_string() {
    let s = parse_h265(&hex(X265_720P)).unwrap();
    assert_eq!((s.width, s.height), (1280, 720));
    assert_eq!(s.codec_string(), "hvc1.1.6.L93.90");
    assert_eq!((s.profile_idc(), s.level_idc(), s.high_tier()), (1, 93, false));
}

#[test]
fn broken_parameter_sets_are_errors_that_say_what() {
    assert!(parse_h264(&[]).unwrap_err().contains("empty"));
    assert!(parse_h264(&hex("6842")).unwrap_err().contains("type 8"));
    let sps = hex(X264_720P);
    // The fields read end at byte 9 (the VUI after them is not read).
    for cut in 1..9 {
        let err = parse_h264(&sps[..cut]).unwrap_err();
        assert!(err.starts_with("H.264 SPS: ") && err.contains(" at bit "), "{err}");
    }
    assert!(parse_h265(&[0x40, 0x01, 0x0c]).unwrap_err().contains("type 32"));
    assert!(parse_h265(&[0x42]).is_err());
}

/// Encodes one picture, parses its SPS, and compares with what ffprobe says of the stream.
/// `profile` is what the encoder was asked for; the constraint flags are the encoder's
/// choice and the level is checked against ffprobe's.
fn check_x264(size: &str, encoder: &str, extra: &[&str], want: (u32, u32), profile: u8) {
    let stream = annexb(Codec::H264, size, 1, 1, encoder, extra);
    let clip = split(Codec::H264, &stream);
    let s = parse_h264(&clip.params.sps).unwrap_or_else(|e| panic!("{size} {encoder} {extra:?}: {e}"));
    let dir = std::env::temp_dir().join(format!("panelcam-sps-{}-{size}", std::process::id()));
    std::fs::write(&dir, &stream).unwrap();
    let probe = ffprobe(&["-show_entries", "stream=width,height,level"], &dir);
    let _ = std::fs::remove_file(&dir);
    let stream = &probe["streams"][0];
    assert_eq!((s.width, s.height), want, "{size} {encoder} {extra:?}");
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(want.0.into()), Some(want.1.into())));
    assert_eq!(stream["level"].as_u64(), Some(s.level_idc.into()));
    let codec = format!("avc1.{profile:02X}{:02X}{:02X}", clip.params.sps[2], s.level_idc);
    assert_eq!(s.codec_string(), codec, "{size} {encoder} {extra:?}");
}

#[test]
fn real_x264_streams_give_the_size_ffprobe_sees() {
    let fast: &[&str] = &["-preset", "ultrafast"];
    check_x264("1280x720", "", fast, (1280, 720), 0x42);
    check_x264("640x360", "", fast, (640, 360), 0x42);
    check_x264("1920x1080", "", fast, (1920, 1080), 0x42);
    // High profile with scaling lists (cqm) and interlaced coding (frame_mbs_only 0: crop
    // units of two lines per field).
    check_x264("1920x1080", ":cqm=jvt:interlaced=1", &["-profile:v", "high"], (1920, 1080), 100);
    check_x264("640x360", ":cqm=jvt", &["-profile:v", "high"], (640, 360), 100);
    // Chroma formats other than 4:2:0 change the crop unit; 10 bits change the profile.
    check_x264("640x360", "", &["-pix_fmt", "yuv444p"], (640, 360), 244);
    check_x264("640x360", "", &["-pix_fmt", "yuv422p"], (640, 360), 122);
    check_x264("640x360", "", &["-pix_fmt", "yuv420p10le"], (640, 360), 110);
    check_x264("642x362", "", &["-pix_fmt", "gray"], (642, 362), 100);
}

#[test]
fn real_x265_streams_give_the_size_ffprobe_sees() {
    // (size, keyframe interval, codec string): 1 frame in 25 is Main; all-intra coding makes
    // x265 signal Main Intra, a range-extensions profile with constraint flags.
    for (size, gop, want) in [
        ("1280x720", 25, "hvc1.1.6.L93.90"),
        ("642x362", 25, "hvc1.1.6.L63.90"),
        ("1918x1078", 25, "hvc1.1.6.L120.90"),
        ("1280x720", 1, "hvc1.4.10.L93.9F.A8"),
    ] {
        let stream = annexb(Codec::H265, size, 1, gop, "", &[]);
        let clip = split(Codec::H265, &stream);
        let s = parse_h265(&clip.params.sps).unwrap_or_else(|e| panic!("{size}: {e}"));
        let file = std::env::temp_dir().join(format!("panelcam-sps-{}-{size}.265", std::process::id()));
        std::fs::write(&file, &stream).unwrap();
        let probe = ffprobe(&["-show_entries", "stream=width,height,level"], &file);
        let _ = std::fs::remove_file(&file);
        let p = &probe["streams"][0];
        assert_eq!((Some(u64::from(s.width)), Some(u64::from(s.height))), (p["width"].as_u64(), p["height"].as_u64()));
        assert_eq!(format!("{}x{}", s.width, s.height), size);
        assert_eq!(p["level"].as_u64(), Some(u64::from(s.level_idc())));
        assert_eq!(s.codec_string(), want, "{size}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_bytes_parse_without_panicking(mut data in prop::collection::vec(any::<u8>(), 0..80), h264 in any::<bool>()) {
        if let Some(first) = data.first_mut() {
            // Mostly the right NAL type, so the parsers get past the header.
            *first = if h264 { 0x67 } else { 0x42 };
        }
        let _ = parse_h264(&data);
        let _ = parse_h265(&data);
    }

    #[test]
    fn damaged_real_sps_parse_without_panicking(at in 1usize..60, value in any::<u8>(), cut in 0usize..60) {
        for vector in [hex(X264_720P), hex(X264_1080P), hex(X265_720P)] {
            let mut v = vector.clone();
            let i = at % v.len();
            v[i] = value;
            v.truncate(v.len().min(cut.max(1)) + v.len() / 2);
            if let Ok(s) = parse_h264(&v) {
                prop_assert!(s.width > 0 && s.height > 0);
                prop_assert_eq!(s.codec_string().len(), 11);
            }
            if let Ok(s) = parse_h265(&v) {
                prop_assert!(s.width > 0 && s.height > 0);
                prop_assert!(s.codec_string().starts_with("hvc1."));
            }
        }
    }
}

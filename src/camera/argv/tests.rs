use std::path::Path;

use super::*;
use crate::config::global::TranscodingOverride;
use crate::config::{Transcoding, parse_camera};

fn camera(json: &str) -> CameraConfig {
    parse_camera(Path::new("cameras/cam1.json"), json).map(|(c, _)| c).unwrap_or_else(|p| panic!("{p:#?}"))
}

fn args(json: &str) -> Vec<String> {
    let cam = camera(json);
    let tx = Transcoding::default().with_override(&cam.transcoding);
    ffmpeg_args(&cam, &tx, None).unwrap()
}

/// The value following `flag`, if the flag is present.
fn value<'a>(a: &'a [String], flag: &str) -> Option<&'a str> {
    a.iter().position(|x| x == flag).map(|i| a[i + 1].as_str())
}

#[test]
fn quality_maps_onto_ffmpeg_scale() {
    assert_eq!(jpeg_qscale(100), 2);
    assert_eq!(jpeg_qscale(1), 31);
    assert_eq!(jpeg_qscale(75), 9);
    assert_eq!(jpeg_qscale(50), 17);
    let all: Vec<u8> = (1..=100).map(jpeg_qscale).collect();
    assert!(all.windows(2).all(|w| w[0] >= w[1]), "monotonic: higher quality never gives a worse qscale");
}

#[test]
fn minimal_rtsp_camera_gets_low_latency_defaults() {
    let a = args(r#"{"path": "/cam1", "url": "rtsp://u:p@10.0.0.5:554/s1"}"#);
    assert_eq!(value(&a, "-rtsp_transport"), Some("tcp"));
    assert_eq!(value(&a, "-use_wallclock_as_timestamps"), Some("1"));
    assert_eq!(value(&a, "-fflags"), Some("+nobuffer+discardcorrupt"));
    assert_eq!(value(&a, "-flags"), Some("low_delay"));
    assert_eq!(value(&a, "-i"), Some("rtsp://u:p@10.0.0.5:554/s1"));
    assert_eq!(value(&a, "-c:v"), Some("mjpeg"));
    assert_eq!(value(&a, "-q:v"), Some("9"));
    assert_eq!(value(&a, "-threads"), Some("1"));
    assert_eq!(value(&a, "-fps_mode"), Some("vfr"));
    assert_eq!(value(&a, "-flush_packets"), Some("1"));
    assert_eq!(value(&a, "-vf"), None, "no filter unless a rate or scale is asked for");
    assert_eq!(&a[a.len() - 3..], ["-f", "mjpeg", "pipe:1"]);
}

#[test]
fn every_ffmpeg_option_lands_in_the_right_place() {
    let a = args(
        r#"{"path": "/cam1", "url": "rtsp://h/s", "transport": "udp",
            "ffmpeg": {"use_wallclock_as_timestamps": false, "output_format": "mjpeg", "video_codec": "mjpeg",
              "video_bitrate": "200k", "quality": 100, "output_framerate": 5, "scale": "640:-1", "movflags": "+faststart",
              "rtbufsize": 65536, "fflags": "+genpts", "flags": "+global_header", "avioflags": "direct",
              "fps_mode": "vfr", "flush_packets": "0", "extra_input_args": ["-probesize", "32"],
              "extra_output_args": ["-huffman", "optimal"]}}"#,
    );
    let input_at = a.iter().position(|x| x == "-i").unwrap();
    let before = |flag: &str| a.iter().position(|x| x == flag).unwrap() < input_at;
    assert!(!a.contains(&"-use_wallclock_as_timestamps".to_string()));
    assert_eq!(value(&a, "-rtsp_transport"), Some("udp"));
    for flag in ["-rtsp_transport", "-rtbufsize", "-fflags", "-flags", "-avioflags", "-probesize"] {
        assert!(before(flag), "{flag} is an input option");
    }
    for flag in ["-vf", "-c:v", "-q:v", "-b:v", "-fps_mode", "-flush_packets", "-movflags", "-huffman"] {
        assert!(!before(flag), "{flag} is an output option");
    }
    assert_eq!(value(&a, "-rtbufsize"), Some("65536"));
    assert_eq!(value(&a, "-fflags"), Some("+genpts"));
    assert_eq!(value(&a, "-flags"), Some("+global_header"));
    assert_eq!(value(&a, "-avioflags"), Some("direct"));
    assert_eq!(value(&a, "-probesize"), Some("32"));
    assert_eq!(value(&a, "-q:v"), Some("2"));
    assert_eq!(value(&a, "-b:v"), Some("200k"));
    assert_eq!(value(&a, "-fps_mode"), Some("vfr"));
    assert_eq!(value(&a, "-flush_packets"), Some("0"));
    assert_eq!(value(&a, "-movflags"), Some("+faststart"));
    let vf = value(&a, "-vf").unwrap();
    assert!(vf.starts_with(&format!("{PREVIEW_CLOCK},select='")) && vf.ends_with(",scale=640:-1"), "{vf}");
    assert!(vf.contains("0.2000"), "5 fps = 0.2 s interval: {vf}");
}

#[test]
fn transcoding_settings_apply_when_the_camera_does_not_set_them() {
    let cam = camera(r#"{"path": "/c", "url": "rtsp://h/s", "transcoding_override": {"quality": 50}}"#);
    let global = Transcoding { capture_framerate: 8.0, quality: 90, ..Transcoding::default() };
    let tx = global.with_override(&cam.transcoding);
    let a = ffmpeg_args(&cam, &tx, None).unwrap();
    assert_eq!(value(&a, "-q:v"), Some("17"), "override quality 50");
    assert!(value(&a, "-vf").unwrap().contains("0.1250"), "capture_framerate 8 fps");
    let tx = global.with_override(&TranscodingOverride::default());
    assert_eq!(value(&ffmpeg_args(&cam, &tx, None).unwrap(), "-q:v"), Some("5"), "global quality 90");
}

#[test]
fn ffmpeg_quality_beats_transcoding_quality() {
    let cam = camera(
        r#"{"path": "/c", "url": "rtsp://h/s", "ffmpeg": {"quality": 100}, "transcoding_override": {"quality": 1}}"#,
    );
    let tx = Transcoding::default().with_override(&cam.transcoding);
    assert_eq!(effective_quality(&cam, &tx), 100);
}

#[test]
fn http_and_lavfi_sources() {
    let a = args(r#"{"path": "/c", "url": "http://u:p@10.0.0.7/video.mjpg"}"#);
    assert_eq!(value(&a, "-rtsp_transport"), None);
    assert_eq!(value(&a, "-i"), Some("http://u:p@10.0.0.7/video.mjpg"));
    let a = args(r#"{"path": "/demo", "url": "lavfi:testsrc2=size=1280x720:rate=25"}"#);
    assert_eq!(value(&a, "-f"), Some("lavfi"));
    assert!(a.contains(&"-re".to_string()), "test sources run in real time");
    assert_eq!(value(&a, "-i"), Some("testsrc2=size=1280x720:rate=25"));
}

#[test]
fn custom_command_is_split_and_gets_the_url_without_a_shell() {
    let a = args(
        r#"{"path": "/c", "url": "rtsp://u:p w@h/s",
            "ffmpeg": {"command": "-rtsp_transport tcp -i $url -an -c:v mjpeg -vf 'fps=15, scale=320:-1' -f mjpeg -"}}"#,
    );
    assert_eq!(
        a,
        vec![
            "-rtsp_transport",
            "tcp",
            "-i",
            "rtsp://u:p w@h/s",
            "-an",
            "-c:v",
            "mjpeg",
            "-vf",
            "fps=15, scale=320:-1",
            "-f",
            "mjpeg",
            "-"
        ]
    );
}

#[test]
fn rate_filter_is_stateful_and_self_contained() {
    let f = rate_select_filter(10.0);
    assert!(f.contains("ld(0)") && f.contains("st(0,") && f.contains("st(1,t)"), "{f}");
    assert!(!f.contains(' ') && !f.contains('\\'), "one argument, no stray whitespace: {f}");
    assert!(!f.contains("fps="), "the fps filter holds frames back");
}

fn segments() -> SegmentOutput {
    SegmentOutput { dir: "/run/spool/cam1".into(), segment_seconds: 6, list_size: 6, encode_fps: 5.0 }
}

#[test]
fn rtsp_video_is_copied_into_hls_segments_as_a_second_output() {
    let cam = camera(r#"{"path": "/cam1", "url": "rtsp://h/s"}"#);
    let tx = Transcoding::default();
    let a = ffmpeg_args(&cam, &tx, Some(&segments())).unwrap();
    assert_eq!(a.iter().filter(|x| *x == "-i").count(), 1, "one input: one RTSP session");
    let hls_at = a.iter().position(|x| x == "hls").unwrap();
    let second = &a[a.iter().position(|x| x == "pipe:1").unwrap() + 1..];
    assert_eq!(value(second, "-c:v"), Some("copy"), "no re-encode");
    assert!(hls_at > a.iter().position(|x| x == "pipe:1").unwrap(), "after the MJPEG output");
    assert_eq!(value(second, "-hls_time"), Some("6"));
    assert_eq!(value(second, "-hls_segment_type"), Some("fmp4"));
    assert_eq!(value(second, "-hls_fmp4_init_filename"), Some("init_{run}.mp4"));
    assert!(value(second, "-hls_flags").unwrap().contains("program_date_time"));
    assert_eq!(value(second, "-hls_segment_filename"), Some("/run/spool/cam1/seg_%d.m4s"));
    assert_eq!(a.last().map(String::as_str), Some("/run/spool/cam1/live.m3u8"));
    assert!(!second.contains(&"-vf".to_string()), "the preview's filters do not touch the recording");
    assert!(value(&a, "-vf").unwrap().starts_with(PREVIEW_CLOCK), "the preview runs on arrival time instead");
    assert!(
        !a.contains(&"-use_wallclock_as_timestamps".to_string()),
        "segments are cut on the camera's own timestamps"
    );
    let explicit = camera(r#"{"path": "/cam1", "url": "rtsp://h/s", "ffmpeg": {"use_wallclock_as_timestamps": true}}"#);
    let a = ffmpeg_args(&explicit, &tx, Some(&segments())).unwrap();
    assert_eq!(value(&a, "-use_wallclock_as_timestamps"), Some("1"), "an explicit setting wins");
}

#[test]
fn mjpeg_cameras_are_encoded_at_mp4_framerate_with_aligned_keyframes() {
    let cam = camera(r#"{"path": "/c", "url": "http://10.0.0.7/video.mjpg"}"#);
    let a = ffmpeg_args(&cam, &Transcoding::default(), Some(&segments())).unwrap();
    let second = &a[a.iter().position(|x| x == "pipe:1").unwrap() + 1..];
    assert_eq!(value(second, "-c:v"), Some("libx264"));
    assert_eq!(value(second, "-vf"), Some("fps=5"));
    assert_eq!(value(second, "-g"), Some("30"), "5 fps x 6 s: one keyframe per segment");
}

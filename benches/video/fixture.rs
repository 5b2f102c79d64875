//! Ten minutes of real 1080p video as the HLS fMP4 segments panelcam records: 100 segments of
//! 6 s (the default `hls_segment_seconds`) and their init segment, encoded once with FFmpeg's
//! HLS muxer (the muxer panelcam's FFmpeg uses) and cached in `BENCH_DIR`.
//!
//! The picture is FFmpeg's `testsrc2` at 4 Mbit/s with a keyframe every second, like the
//! test camera: a segment is ~3 MB, as from a 1080p IP camera. Recording the test camera
//! for ten minutes would give the same bytes but take ten minutes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use panelcam::video::playlist::parse_live;

use crate::common::file_len;
use crate::framestore_common::{bench_dir, rebuild_requested};

pub const SEGMENTS: usize = 100;
pub const SEGMENT_MS: i64 = 6_000;

pub struct Segment {
    pub path: PathBuf,
    pub duration_ms: i64,
    pub size: u64,
}

pub struct Fixture {
    pub init: PathBuf,
    pub segments: Vec<Segment>,
}

impl Fixture {
    pub fn duration_ms(&self) -> i64 {
        self.segments.iter().map(|s| s.duration_ms).sum()
    }
}

/// The cached fixture, encoded first if missing (or with `BENCH_REBUILD=1`).
pub async fn ten_minutes_1080p() -> Fixture {
    let dir = bench_dir().join("video-1080p25-4M-600s");
    if rebuild_requested() || !dir.join("live.m3u8").exists() {
        build(&dir).await;
    }
    load(&dir).unwrap_or_else(|e| panic!("{}: {e} (delete the directory to rebuild it)", dir.display()))
}

async fn build(dir: &Path) {
    // Encoded into a temporary directory and renamed: an interrupted build leaves no
    // half-fixture behind that a later run would take for complete.
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    println!("encoding the 10-minute 1080p fixture once into {} (~2 min on 2 cores)", dir.display());
    let t0 = Instant::now();
    let seconds = (SEGMENTS as i64 * SEGMENT_MS / 1000).to_string();
    let hls_time = (SEGMENT_MS / 1000).to_string();
    #[rustfmt::skip]
    let args = [
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-t", &seconds,
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-b:v", "4M", "-maxrate", "4M", "-bufsize", "4M",
        // A keyframe every second exactly, so every segment is exactly 6 s.
        "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        "-f", "hls", "-hls_time", &hls_time, "-hls_list_size", "0", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", "seg_%03d.m4s", "live.m3u8",
    ];
    let out = tokio::process::Command::new("ffmpeg").args(args).current_dir(&tmp).output().await.expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg could not encode the fixture: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).unwrap();
    println!("  encoded in {:.0} s", t0.elapsed().as_secs_f64());
}

fn load(dir: &Path) -> Result<Fixture, String> {
    let text = std::fs::read_to_string(dir.join("live.m3u8")).map_err(|e| e.to_string())?;
    let listed = parse_live(&text);
    let init = listed.first().and_then(|s| s.init.clone()).ok_or("no #EXT-X-MAP in the playlist")?;
    let segments: Vec<Segment> = listed
        .iter()
        .map(|s| {
            let path = dir.join(&s.uri);
            Segment { size: file_len(&path), path, duration_ms: s.duration_ms }
        })
        .collect();
    let fixture = Fixture { init: dir.join(init), segments };
    let whole = fixture.segments.iter().all(|s| s.size > 0 && s.duration_ms == SEGMENT_MS);
    if fixture.segments.len() != SEGMENTS || !whole || file_len(&fixture.init) == 0 {
        return Err(format!("expected {SEGMENTS} non-empty segments of {SEGMENT_MS} ms and an init segment"));
    }
    Ok(fixture)
}

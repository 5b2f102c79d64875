//! Issue 11, the first picture through the media router:
//!
//! - `first-jpeg`: the camera streams with nobody wanting JPEGs, so its transcoder is idle
//!   (`/api/status` `jpeg.transcoding == false`); then a raw WebSocket client opens
//!   `/cam/live` and the time from its connect to the first complete JPEG is taken, and
//!   separately `GET /cam/snapshot` from idle. `transcoding.jpeg_idle_seconds` is 0.5 so the
//!   transcoder is idle again soon after each round. The barcode camera's picture tells a
//!   fresh JPEG from one left over by the previous round (the "age" printed).
//! - `first-h264`: a raw WebSocket client opens `/cam/video`; time to the init message and to
//!   the first fragment (the server's part of the stream page's first picture).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::first_picture::first_message;

pub const FIRST_JPEG_TARGET: Target = Target { p50: None, p99: Some(300.0) };
pub const FIRST_H264_TARGET: Target = Target { p50: None, p99: Some(300.0) };
const JPEG_ROUNDS: usize = 10;
const H264_ATTEMPTS: usize = 100;
/// A first picture older than this is a left-over of the previous round, not a new one.
const STALE_MS: f64 = 500.0;

/// Waits until the camera's transcoder has stopped and nothing wants JPEGs; returns how long
/// that took. Then a little longer: the transcoder clears the last JPEG just after it stops.
async fn wait_idle(server: &Panelcam) -> Duration {
    let start = Instant::now();
    loop {
        let jpeg = &server.camera_status("cam").await["jpeg"];
        if jpeg["transcoding"] == false && jpeg["consumers"] == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the transcoder did not go idle within 20 s: {jpeg}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = start.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    waited
}

/// `age` of a JPEG completed at `done_unix_ms`: ms since its barcode's capture time.
fn age(jpeg: &[u8], done_unix_ms: f64) -> Option<f64> {
    capture_ms(jpeg).map(|c| done_unix_ms - c as f64)
}

pub async fn first_jpeg() {
    let camera = reference_camera(&["--barcode"]).await;
    let file = reference_camera_file("/cam", &camera.url("/cam"));
    let config = json!({"transcoding": {"jpeg_idle_seconds": 0.5}});
    let server = start_panelcam_with(&[("cam", file)], config, None).await;
    let (mut live, mut live_101, mut live_ages) = (Vec::new(), Vec::new(), Vec::new());
    let (mut snapshot, mut snapshot_ages) = (Vec::new(), Vec::new());
    let (mut stale, mut no_barcode, mut idle_waits) = (0, 0, Vec::new());
    let mut count_age = |a: Option<f64>, ages: &mut Vec<f64>| match a {
        Some(a) if a > STALE_MS => {
            stale += 1;
            ages.push(a);
        }
        Some(a) => ages.push(a),
        None => no_barcode += 1,
    };
    for _ in 0..JPEG_ROUNDS {
        idle_waits.push(wait_idle(&server).await.as_secs_f64() * 1000.0);
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            first_message(server.port, "/cam/live", |opcode, _| opcode == 2),
        )
        .await
        .expect("a first JPEG within 10 s")
        .unwrap_or_else(|e| panic!("live WebSocket: {e}"));
        assert!(first.data.starts_with(&[0xFF, 0xD8]), "the first message on /cam/live is not a JPEG");
        live.push(first.after_connect);
        live_101.push(first.after_101);
        count_age(age(&first.data, first.done_unix_ms), &mut live_ages);

        idle_waits.push(wait_idle(&server).await.as_secs_f64() * 1000.0);
        let start = Instant::now();
        let r = server.get("/cam/snapshot").await;
        let (took, done) = (start.elapsed().as_secs_f64() * 1000.0, unix_ms());
        assert_eq!(r.status, 200, "snapshot from idle: {}", r.text());
        snapshot.push(took);
        count_age(age(&r.body, done), &mut snapshot_ages);
    }
    let idle = Summary::of(&idle_waits).map_or(String::new(), |s| format!("{} ms", ms(s.p50)));
    let note = format!("load {}", loadavg());
    print_latency("first-jpeg: idle transcoder, MJPEG WS connect -> first JPEG", &live, Some(FIRST_JPEG_TARGET), &note);
    print_latency("  of which after the 101", &live_101, None, "");
    print_latency("  age of that first JPEG (its barcode -> arrival)", &live_ages, None, "");
    print_latency(
        "first-jpeg: idle transcoder, GET /cam/snapshot -> complete response",
        &snapshot,
        Some(FIRST_JPEG_TARGET),
        &note,
    );
    print_latency("  age of that snapshot (its barcode -> arrival)", &snapshot_ages, None, "");
    println!(
        "  before each round the transcoder went idle (jpeg_idle_seconds 0.5) after p50 {idle}; \
         stale first pictures (older than {STALE_MS} ms): {stale}; without a readable barcode: {no_barcode}{}",
        bench_config_note()
    );
    let restarts = restarts_note(&server, &["cam"]).await;
    if !restarts.is_empty() {
        println!("{}", restarts.trim_start());
    }
}

pub async fn first_h264() {
    let camera = reference_camera(&[]).await;
    let server = reference_server(&camera).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut init, mut fragment, mut fragment_101) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..H264_ATTEMPTS {
        let mut init_ms = None;
        let start = Instant::now();
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            first_message(server.port, "/cam/video", |opcode, data| {
                if opcode == 1 && init_ms.is_none() {
                    init_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
                }
                opcode == 2 && data.get(4..8) == Some(b"moof")
            }),
        )
        .await
        .expect("a first fragment within 10 s")
        .unwrap_or_else(|e| panic!("video WebSocket: {e}"));
        init.push(init_ms.expect("an init message before the first fragment"));
        fragment.push(first.after_connect);
        fragment_101.push(first.after_101);
        // Spread the attempts over the frame interval instead of locking onto one phase.
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    let note = format!("load {}", loadavg());
    print_latency("first-h264: /cam/video connect -> init message", &init, None, "");
    print_latency("first-h264: /cam/video connect -> first fragment", &fragment, Some(FIRST_H264_TARGET), &note);
    print_latency("  of which after the 101", &fragment_101, None, "");
}

//! Scenario 2: what panelcam itself adds between a complete JPEG on FFmpeg's stdout and the
//! WebSocket message at a client, with 50 clients on one camera. FFmpeg is replaced (through
//! `PANELCAM_FFMPEG`, set by `main`) by `scripts/bench/fake-ffmpeg.py`, which stamps the
//! wall-clock time of the write into a COM segment of every JPEG.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::common::*;
use crate::support::harness::{camera_json, next_binary, repo_path, ws_connect};

pub const CLIENTS: usize = 50;
pub const TARGET: Target = Target { p50: None, p99: Some(5.0) };
const WARMUP: Duration = Duration::from_secs(2);

pub fn fake_ffmpeg() -> std::path::PathBuf {
    repo_path("scripts/bench/fake-ffmpeg.py")
}

/// The write time stamped by fake-ffmpeg.py: `FF D8 FF FE 00 0E "PCTS" <u64 LE ns>`, in ms.
fn write_stamp_ms(jpeg: &[u8]) -> Option<f64> {
    if jpeg.len() < 18 || jpeg[2..4] != [0xFF, 0xFE] || &jpeg[6..10] != b"PCTS" {
        return None;
    }
    Some(u64::from_le_bytes(jpeg[10..18].try_into().unwrap()) as f64 / 1e6)
}

pub async fn server_latency() {
    assert!(
        std::env::var_os("PANELCAM_FFMPEG").is_some_and(|p| p == fake_ffmpeg()),
        "main sets PANELCAM_FFMPEG to the fake FFmpeg for this scenario"
    );
    // The URL is never opened: the fake ignores its arguments.
    let camera = camera_json("/cam", "rtsp://127.0.0.1:9/fake", json!({}));
    let server = start_panelcam(&[("cam", camera)]).await;

    let measure = scaled(1.0, 5.0);
    let begin = Instant::now() + WARMUP;
    let end = begin + measure;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let url = server.ws_url("/cam/live");
        clients.push(tokio::spawn(async move {
            let mut ws = ws_connect(&url).await.expect("connect to /cam/live");
            let (mut latencies, mut unstamped) = (Vec::new(), 0usize);
            while Instant::now() < end {
                let Some(jpeg) = next_binary(&mut ws, Duration::from_secs(5)).await else { break };
                let received = unix_ms();
                if Instant::now() < begin {
                    continue;
                }
                match write_stamp_ms(&jpeg) {
                    Some(written) => latencies.push(received - written),
                    None => unstamped += 1,
                }
            }
            (latencies, unstamped)
        }));
    }
    let (mut all, mut fps, mut unstamped) = (Vec::new(), Vec::new(), 0);
    for client in clients {
        let (latencies, bad) = client.await.expect("client task");
        fps.push(latencies.len() as f64 / measure.as_secs_f64());
        all.extend(latencies);
        unstamped += bad;
    }
    let f = Summary::of(&fps).unwrap();
    let mut note = format!("per-client fps min {:.1} median {:.1} max {:.1} (source 10)", fps_min(&fps), f.p50, f.max);
    note.push_str(&bench_config_note());
    if unstamped > 0 {
        note.push_str(&format!(", {unstamped} messages without stamp"));
    }
    print_latency(
        &format!("server-added latency (FFmpeg stdout -> WS message, {CLIENTS} clients)"),
        &all,
        Some(TARGET),
        &note,
    );
}

fn fps_min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

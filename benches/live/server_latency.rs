//! Scenario 2: what panelcam itself adds between a complete JPEG on FFmpeg's stdout and the
//! WebSocket message at a client, with 50 clients on one camera. FFmpeg is replaced (through
//! `PANELCAM_FFMPEG`, set by `main`) by `scripts/bench/fake-ffmpeg.py`, which stamps the
//! wall-clock time of the write into a COM segment of every JPEG. The `tls` scenario measures
//! the same over WSS with [`measure`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;

use crate::common::*;
use crate::support::harness::{Server, camera_json, next_binary, repo_path, ws_connect, wss_connect};

pub const CLIENTS: usize = 50;
pub const TARGET: Target = Target { p50: None, p99: Some(5.0) };
const WARMUP: Duration = Duration::from_secs(2);

pub fn fake_ffmpeg() -> std::path::PathBuf {
    repo_path("scripts/bench/fake-ffmpeg.py")
}

/// The camera file for the fake FFmpeg. The URL is never opened: the fake ignores its arguments.
pub fn fake_camera() -> serde_json::Value {
    camera_json("/cam", "rtsp://127.0.0.1:9/fake", json!({}))
}

/// How the viewers reach panelcam.
#[derive(Clone)]
pub enum Transport {
    Ws,
    /// WSS with this client configuration (it must trust the server's certificate).
    Wss(Arc<rustls::ClientConfig>),
}

impl Transport {
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Ws => "WS",
            Transport::Wss(_) => "WSS",
        }
    }
}

/// What [`measure`] saw over its measuring window.
#[derive(Default)]
pub struct Measured {
    /// Write time -> message received, ms, every stamped message of every client.
    pub latencies: Vec<f64>,
    /// Messages per second, per client.
    pub fps: Vec<f64>,
    pub unstamped: usize,
    /// panelcam's utime + stime over the window, clock ticks.
    pub cpu_ticks: u64,
    pub seconds: f64,
}

impl Measured {
    /// Adds another window's results (a second round of the same transport).
    pub fn extend(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.fps.extend(other.fps);
        self.unstamped += other.unstamped;
        self.cpu_ticks += other.cpu_ticks;
        self.seconds += other.seconds;
    }

    /// panelcam's CPU over the window, in % of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.cpu_ticks as f64 / clock_ticks_per_sec() / self.seconds.max(1e-9) * 100.0
    }

    /// "per-client fps min .. median .. max .. (source 10)", plus the unstamped count if any.
    pub fn fps_note(&self) -> String {
        let Some(f) = Summary::of(&self.fps) else { return "no clients".into() };
        let min = self.fps.iter().copied().fold(f64::INFINITY, f64::min);
        let mut note = format!("per-client fps min {min:.1} median {:.1} max {:.1} (source 10)", f.p50, f.max);
        if self.unstamped > 0 {
            note.push_str(&format!(", {} messages without stamp", self.unstamped));
        }
        note
    }
}

/// The write time stamped by fake-ffmpeg.py: `FF D8 FF FE 00 0E "PCTS" <u64 LE ns>`, in ms.
fn write_stamp_ms(jpeg: &[u8]) -> Option<f64> {
    if jpeg.len() < 18 || jpeg[2..4] != [0xFF, 0xFE] || &jpeg[6..10] != b"PCTS" {
        return None;
    }
    Some(u64::from_le_bytes(jpeg[10..18].try_into().unwrap()) as f64 / 1e6)
}

pub async fn server_latency() {
    let server = start_panelcam(&[("cam", fake_camera())]).await;
    let m = measure(&server, &Transport::Ws, scaled(1.0, 5.0)).await;
    print_latency(
        &format!("server-added latency (FFmpeg stdout -> WS message, {CLIENTS} clients)"),
        &m.latencies,
        Some(TARGET),
        &format!("{}{}", m.fps_note(), bench_config_note()),
    );
}

/// [`CLIENTS`] viewers of `/cam/live` on `server` over `transport`: after a warm-up, every
/// message's server-added latency and panelcam's CPU for `window`. Viewers leave afterwards.
pub async fn measure(server: &Server, transport: &Transport, window: Duration) -> Measured {
    assert!(
        std::env::var_os("PANELCAM_FFMPEG").is_some_and(|p| p == fake_ffmpeg()),
        "main sets PANELCAM_FFMPEG to the fake FFmpeg for this scenario"
    );
    let begin = Instant::now() + WARMUP;
    let end = begin + window;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, port) = (server.ws_url("/cam/live"), server.port);
        let transport = transport.clone();
        clients.push(tokio::spawn(async move {
            match transport {
                Transport::Ws => {
                    let ws = ws_connect(&url).await.expect("connect to /cam/live");
                    stamped_latencies(ws, begin, end).await
                }
                Transport::Wss(tls) => {
                    let ws = wss_connect(&tls, port, "/cam/live").await.expect("connect to /cam/live over WSS");
                    stamped_latencies(ws, begin, end).await
                }
            }
        }));
    }
    tokio::time::sleep_until(begin).await;
    let ticks = cpu_ticks(server.pid());
    tokio::time::sleep_until(end).await;
    let mut m =
        Measured { cpu_ticks: cpu_ticks(server.pid()) - ticks, seconds: window.as_secs_f64(), ..Measured::default() };
    for client in clients {
        let (latencies, unstamped) = client.await.expect("client task");
        m.fps.push(latencies.len() as f64 / window.as_secs_f64());
        m.latencies.extend(latencies);
        m.unstamped += unstamped;
    }
    m
}

/// One viewer: the latency of every stamped message received between `begin` and `end`, and
/// how many came without a stamp.
async fn stamped_latencies<S>(mut ws: WebSocketStream<S>, begin: Instant, end: Instant) -> (Vec<f64>, usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
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
}

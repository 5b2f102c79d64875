//! Many viewers and bad viewers: memory stays flat, everybody is served.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "1280", "--height", "720", "--fps", "25"]).await;
    // Above the default of 100 viewers per camera: this is about serving many at once.
    let config = json!({"server": {"max_viewers_per_camera": 400}});
    let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

/// Completes a WebSocket handshake on a socket with a tiny receive buffer, then never reads.
async fn stalled_viewer(port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let req = format!(
        "GET /cam/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    s
}

/// Frames a healthy viewer receives in `secs` seconds.
async fn count_frames(ws: &mut Ws, secs: u64) -> usize {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        if next_binary(ws, Duration::from_secs(1)).await.is_some() {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_viewer_that_never_reads_costs_no_memory_and_delays_nobody() {
    let (_cam, server) = setup().await;
    let frame_size = server.get("/cam/snapshot").await.body.len() as u64;
    let mut healthy = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    count_frames(&mut healthy, 3).await; // warm up allocator and buffers
    // The first few stalled viewers pay one-time costs (task and buffer pools, allocator
    // arenas); the cost per viewer is measured over the ones after them.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(stalled_viewer(server.port).await);
    }
    // Long enough for the one-time growth of the recording's segment buffers and the media
    // ring (RSS plateaus about 12 s after the camera starts, measured).
    count_frames(&mut healthy, 10).await;
    let before = rss_kib(server.pid());
    for _ in 0..20 {
        stalled.push(stalled_viewer(server.port).await);
    }
    let frames = count_frames(&mut healthy, 10).await;
    let after = rss_kib(server.pid());
    let per_viewer = after.saturating_sub(before) * 1024 / 20;
    eprintln!(
        "RSS {before} KiB -> {after} KiB with 20 more stalled viewers: {per_viewer} B each; frame {frame_size} B"
    );
    assert!(frames >= 80, "the healthy viewer kept ~10 fps next to 25 stalled ones: {frames} frames in 10 s");
    assert!(
        per_viewer <= 3 * frame_size + 16 * 1024,
        "a stalled viewer costs {per_viewer} B (frame {frame_size} B): frames are queued for it"
    );
    assert_eq!(server.camera_status("cam").await["clients"], 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_300_concurrent_viewers_are_served() {
    let (_cam, server) = setup().await;
    let url = server.ws_url("/cam/live");
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = ws_connect(&url).await?;
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while got < 5 && Instant::now() < deadline {
                if next_binary(&mut ws, Duration::from_secs(5)).await.is_some() {
                    got += 1;
                }
            }
            Ok::<_, String>((ws, got))
        }));
    }
    let mut sockets = Vec::new();
    let mut served = 0;
    for t in tasks {
        if let Ok(Ok((ws, got))) = t.await {
            if got == 5 {
                served += 1;
            }
            sockets.push(ws);
        }
    }
    assert_eq!(served, 300, "every viewer received 5 frames");
    let clients = server.camera_status("cam").await["clients"].as_u64().unwrap();
    assert_eq!(clients, 300);
    drop(sockets);
    let released = eventually(Duration::from_secs(5), async || server.camera_status("cam").await["clients"] == 0).await;
    assert!(released, "viewer count returns to 0 when they leave");
}

//! Live path end to end: RTSP test camera → panelcam's FFmpeg → WebSocket / HTTP clients.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::harness::*;

/// 1280x720 at 25 fps in, 640 px wide at 10 fps out (the reference setup).
async fn setup(extra_camera: serde_json::Value) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "1280", "--height", "720", "--fps", "25"]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), extra_camera);
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_frames_arrive_as_jpegs_at_the_configured_rate_and_scale() {
    let (_cam, server) = setup(json!({})).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    let first = next_binary(&mut ws, Duration::from_secs(2)).await.expect("a picture at once after connecting");
    assert_eq!(jpeg_size(&first), (640, 360));
    // Let the rate settle, then count for 5 s.
    let start = Instant::now();
    let mut frames = Vec::new();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(f) = next_binary(&mut ws, Duration::from_secs(2)).await {
            frames.push(f);
        }
    }
    let fps = frames.len() as f64 / start.elapsed().as_secs_f64();
    assert!((8.0..=12.0).contains(&fps), "configured 10 fps ±20%, measured {fps:.1} fps");
    for f in &frames {
        assert_eq!(jpeg_size(f), (640, 360), "every frame is a valid JPEG at the configured scale");
    }
    let status = server.camera_status("cam").await;
    assert_eq!(status["clients"], 1);
    assert!(status["fps"].as_f64().unwrap() > 7.0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_stream_is_served_on_cam_stream_and_live() {
    let (_cam, server) = setup(json!({})).await;
    for path in ["/cam", "/cam/stream", "/cam/live"] {
        let mut ws = ws_connect(&server.ws_url(path)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let jpeg = next_binary(&mut ws, Duration::from_secs(2)).await.unwrap_or_else(|| panic!("{path}: no frame"));
        assert_eq!(jpeg_size(&jpeg), (640, 360));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_and_accepted_and_never_shown() {
    let token = "tok-3f9a77c1e2";
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    // The test camera asks for no password; FFmpeg still carries it in its argv.
    let url = cam.url("/cam").replace("rtsp://", "rtsp://operator:pw-91d5c2e0@");
    let camera = camera_json("/cam", &url, json!({"token": token, "ffmpeg": {"log_stderr": "both"}}));
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    let refused = ws_connect(&server.ws_url("/cam/live")).await.unwrap_err();
    assert!(refused.contains("401"), "no token: {refused}");
    let refused = ws_connect(&server.ws_url("/cam/live?token=tok-3f9a77c1e3")).await.unwrap_err();
    assert!(refused.contains("401"), "wrong token: {refused}");
    assert_eq!(server.get("/cam/snapshot").await.status, 401);

    let mut ws = ws_connect(&server.ws_url(&format!("/cam/live?token={token}"))).await.unwrap();
    assert!(next_binary(&mut ws, Duration::from_secs(2)).await.is_some(), "token in the query works");
    let bearer = format!("Bearer {token}");
    let snap = server.request("GET", "/cam/snapshot", &[("Authorization", &bearer)], None).await;
    assert_eq!(snap.status, 200, "Authorization: Bearer works");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.ws_url("/cam/live"))
            .unwrap();
    req.headers_mut().insert("Authorization", bearer.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("Bearer header accepted on the WebSocket");
    assert!(next_binary(&mut ws, Duration::from_secs(2)).await.is_some());

    // The camera's pages need the token as well.
    assert_eq!(server.get("/cam/test").await.status, 401);
    let page = server.get(&format!("/cam/test?token={token}")).await;
    assert_eq!(page.status, 200);

    // Secrets stay out of every answer and every log line (also the token sent in URLs).
    let api = server.get("/api/status").await.text() + &server.get("/api/cameras").await.text();
    let pages = page.text() + &server.get("/dashboard").await.text();
    let log = server.log();
    for (what, text) in [("API", &api), ("pages", &pages), ("log", &log)] {
        assert!(!text.contains(token), "token leaked into the {what}");
        assert!(!text.contains("pw-91d5c2e0"), "camera password leaked into the {what}");
    }
    for (what, text) in [("API", &api), ("pages", &pages)] {
        assert!(!text.contains("operator"), "user name shown in the {what}");
    }
    let shown = format!("\"url\":\"rtsp://127.0.0.1:{}/cam\"", cam.port);
    assert!(api.contains(&shown), "the API shows the URL without its user-info: {api}");
    assert!(api.contains("\"token_required\":true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_pages_api_and_errors() {
    let (_cam, server) = setup(json!({})).await;
    let snap = server.get("/cam/snapshot").await;
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    assert_eq!(jpeg_size(&snap.body), (640, 360));
    assert_eq!(snap.header("access-control-allow-origin"), Some("*"));

    for path in ["/dashboard", "/cam", "/cam/test", "/cam/stream"] {
        let page = server.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"), "{path}");
        let html = page.text();
        assert!(html.contains("LivePlayer"), "{path} embeds the player");
        assert!(!html.contains("/*PLAYER*/"), "{path} is fully assembled");
        assert!(!html.contains("src=\"/") && !html.contains("href=\"/"), "{path} uses only relative URLs");
    }
    let root = server.get("/").await;
    assert_eq!((root.status, root.header("location")), (302, Some("dashboard")));

    let cameras = server.get("/api/cameras").await.json();
    assert_eq!(cameras["status"], "success");
    let cam = &cameras["data"][0];
    assert_eq!(
        (cam["id"].as_str(), cam["path"].as_str(), cam["state"].as_str()),
        (Some("cam"), Some("/cam"), Some("streaming"))
    );
    for key in ["fps", "bitrate_kbps", "clients", "last_error", "uptime_secs"] {
        assert!(cam.get(key).is_some(), "/api/cameras has {key}: {cam}");
    }

    let missing = server.get("/nocam/stream").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), json!({"status": "error", "error": "no camera at /nocam", "code": 404}));
    assert_eq!(server.get("/cam/live").await.status, 426, "plain GET on the socket-only URL");
    assert_eq!(server.request("POST", "/api/status", &[], Some(b"{}")).await.status, 405);
    // A browser's preflight names the method and headers it wants (the default origin is "*").
    let asks = [
        ("Origin", "http://wincc"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "authorization"),
    ];
    let preflight = server.request("OPTIONS", "/cam/snapshot", &asks, None).await;
    assert_eq!(preflight.status, 204);
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("Authorization"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_framerate_limits_what_viewers_get() {
    // FFmpeg captures 10 fps; viewers get 5.
    let (_cam, server) = setup(json!({"transcoding_override": {"output_framerate": 5}})).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    next_binary(&mut ws, Duration::from_secs(2)).await.unwrap();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(4) {
        if next_binary(&mut ws, Duration::from_secs(1)).await.is_some() {
            n += 1;
        }
    }
    let fps = n as f64 / start.elapsed().as_secs_f64();
    assert!((4.0..=6.0).contains(&fps), "output_framerate 5, measured {fps:.1}");
    let status = server.camera_status("cam").await;
    assert!(status["fps"].as_f64().unwrap() > 8.0, "capture stays at 10 fps: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_logs_to_a_capped_file_and_debug_switches_log_rates() {
    let (_cam, server) = setup(json!({
        "ffmpeg": {"log_stderr": "file"},
        "transcoding_override": {"debug_capture": true, "debug_duplicate_frames": true}
    }))
    .await;
    // JPEGs (and so FFmpeg, its log and the duplicate count) only while someone watches MJPEG.
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        next_binary(&mut ws, Duration::from_secs(1)).await;
    }
    let log = server.log();
    let capture: Vec<&str> = log.lines().filter(|l| l.contains("CAPTURE:")).collect();
    assert!(capture.len() >= 2, "debug_capture logs the capture rate every second: {log}");
    assert!(capture.iter().all(|l| l.contains("camera=cam") || l.contains("camera=\"cam\"")), "{capture:?}");
    assert!(log.lines().any(|l| l.contains("DUPLICATES:")), "debug_duplicate_frames logs duplicates");
    let file = server.dir.0.join("logs/cam.ffmpeg.log");
    assert!(file.exists(), "log_stderr \"file\" writes {file:?}");
}

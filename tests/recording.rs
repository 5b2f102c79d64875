//! Frame recording end to end: sessions over REST, frames back over REST and the control
//! WebSocket, protection, deletion, disabled storage, restart behaviour.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::harness::*;

async fn setup(extra: Value) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let server = Server::start(json!({}), &[("cam", camera_json("/cam", &cam.url("/cam"), extra))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_a_session_and_read_it_back() {
    let (_cam, server) = setup(json!({})).await;
    let none = server.get("/cam/control/recording/active").await.json();
    assert_eq!(none["data"]["active"], false);

    let id = server.start_recording("cam", "door opened").await;
    let again = server.request("POST", "/cam/control/recording/start", &[], Some(b"{}")).await;
    assert_eq!(again.status, 409);
    let again = again.json();
    assert_eq!(again["status"], "error");
    assert_eq!(again["code"], 409);
    assert_eq!(again["session"]["session_id"], id, "409 names the running session: {again}");
    let active = server.get("/cam/control/recording/active").await.json();
    assert_eq!((active["data"]["active"].as_bool(), active["data"]["session_id"].as_i64()), (Some(true), Some(id)));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopped = server.stop_recording("cam").await;
    let count = stopped["session"]["frame_count"].as_i64().unwrap();
    assert!((24..=36).contains(&count), "3 s at 10 fps: {count} frames");
    assert_eq!(server.request("POST", "/cam/control/recording/stop", &[], None).await.status, 404);

    let session = &stopped["session"];
    let (start, end) = (session["start_time"].as_str().unwrap(), session["end_time"].as_str().unwrap());
    let list = server.get(&format!("/cam/control/recordings?from={}&to={}", enc(start), enc(end))).await.json();
    assert_eq!(list["data"]["sessions"][0]["session_id"], id);
    assert_eq!(list["data"]["sessions"][0]["reason"], "door opened");
    let outside = server.get("/cam/control/recordings?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z").await.json();
    assert_eq!(outside["data"]["count"], 0);

    let frames = server.get(&format!("/cam/control/recordings/{id}/frames")).await.json();
    let frames = frames["data"]["frames"].as_array().unwrap().clone();
    assert_eq!(frames.len() as i64, count);
    let ts: Vec<i64> = frames.iter().map(|f| f["ts_ms"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "ordered by time");

    // The JPEG nearest to a time between two frames.
    let probe = ts[10] + (ts[11] - ts[10]) / 3;
    let frame = server.get(&format!("/cam/control/recordings/frames/{probe}?tolerance=500")).await;
    assert_eq!(frame.status, 200);
    assert_eq!(frame.header("x-frame-time-ms"), Some(ts[10].to_string().as_str()));
    assert_eq!(jpeg_size(&frame.body), (640, 360));
    assert_eq!(frame.body.len() as i64, frames[10]["size"].as_i64().unwrap());

    let size = server.get("/cam/control/recording/size").await.json();
    assert!(size["data"]["total_bytes"].as_u64().unwrap() > 0, "{size}");
    assert_eq!(size["data"]["frame_count"], count);
    let status = server.camera_status("cam").await;
    assert!(status["recording"]["database_bytes"].as_u64().unwrap() > 0, "the dashboard sees the database size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_and_delete_sessions() {
    let (_cam, server) = setup(json!({})).await;
    let id = server.start_recording("cam", "a").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let busy = server.admin("DELETE", &format!("/cam/control/recordings/sessions/{id}"), None).await;
    assert_eq!(busy.status, 409, "an active session cannot be deleted");
    server.stop_recording("cam").await;

    let kept = server.request("PUT", &format!("/cam/control/recordings/{id}/keep"), &[], None).await.json();
    assert_eq!(kept["data"]["keep"], true);
    let unkept = server.admin("PUT", &format!("/cam/control/recordings/{id}/keep"), Some(br#"{"keep": false}"#)).await;
    assert_eq!(unkept.json()["data"]["keep"], false);

    let deleted = server.admin("DELETE", &format!("/cam/control/recordings/sessions/{id}"), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(server.get(&format!("/cam/control/recordings/{id}/frames")).await.status, 404);
    assert_eq!(server.admin("DELETE", &format!("/cam/control/recordings/sessions/{id}"), None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_get_4xx_answers() {
    let (_cam, server) = setup(json!({})).await;
    let id = server.start_recording("cam", "x").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop_recording("cam").await;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/cam/control/recordings?from=yesterday".into(), 400, "`from`"),
        ("GET", "/cam/control/recordings?from=2025-08-15T10:00:00Z&to=2025-08-15T09:00:00Z".into(), 400, "before"),
        ("GET", "/cam/control/recordings/999999/frames".into(), 404, "no recording session 999999"),
        ("GET", "/cam/control/recordings/abc/frames".into(), 400, "session id"),
        (
            "GET",
            format!("/cam/control/recordings/{id}/frames?from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"),
            400,
            "24 h",
        ),
        ("GET", format!("/cam/control/recordings/{id}/frames?limit=0"), 400, "`limit`"),
        ("GET", "/cam/control/recordings/frames/notatime".into(), 400, "timestamp"),
        ("GET", "/cam/control/recordings/frames/2001-01-01T00:00:00Z".into(), 404, "no frame within"),
        ("GET", "/cam/control/recordings/frames/2025-08-15T10:00:00Z?tolerance=-5".into(), 400, "`tolerance`"),
        ("GET", "/cam/control/recording/start".into(), 405, "POST"),
        ("PUT", "/cam/control/recordings/0/keep".into(), 400, "session id"),
        ("PUT", format!("/cam/control/recordings/{id}/keep"), 400, "`keep`"),
        ("POST", "/cam/control/recording/start".into(), 400, "JSON"),
    ];
    for (method, path, status, needle) in cases {
        let body: Option<&[u8]> = match (method, path.ends_with("keep")) {
            ("PUT", true) if !path.contains("/0/") => Some(br#"{"keep": "yes"}"#),
            ("POST", _) => Some(b"{not json"),
            _ => None,
        };
        let r = server.request(method, &path, &[], body).await;
        let text = r.text();
        assert_eq!(r.status, status, "{method} {path}: {text}");
        let json = r.json();
        assert_eq!(json["status"], "error", "{method} {path}");
        assert!(json["error"].as_str().unwrap().contains(needle), "{method} {path}: {text}");
    }
    assert_eq!(server.camera_status("cam").await["state"], "streaming", "the server shrugged it all off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_frame_storage_answers_clearly() {
    let (_cam, server) = setup(json!({"recording": {"frame_storage_enabled": false}})).await;
    let r = server.request("POST", "/cam/control/recording/start", &[], None).await;
    assert_eq!(r.status, 409);
    assert!(r.json()["error"].as_str().unwrap().contains("frame_storage_enabled"), "{}", r.text());
    assert_eq!(server.get("/cam/control/recordings").await.status, 404);
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    let (reply, _) = command(&mut ws, json!({"cmd": "start", "from": "2025-01-01T00:00:00Z"})).await;
    assert_eq!(reply["code"], 404, "{reply}");
    let (reply, _) = command(&mut ws, json!({"cmd": "live"})).await;
    assert_eq!(reply["code"], 200, "live still works without storage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_requires_the_camera_token() {
    let (_cam, server) = setup(json!({"token": "t0k-ab12cd34"})).await;
    assert_eq!(server.request("POST", "/cam/control/recording/start", &[], None).await.status, 401);
    assert_eq!(server.get("/cam/control/recordings").await.status, 401);
    assert!(ws_connect(&server.ws_url("/cam/control")).await.unwrap_err().contains("401"));
    let ok =
        server.request("POST", "/cam/control/recording/start", &[("Authorization", "Bearer t0k-ab12cd34")], None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(server.get("/cam/control/recordings?token=t0k-ab12cd34").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_continues_across_a_clean_restart() {
    let (_cam, mut server) = setup(json!({})).await;
    let id = server.start_recording("cam", "long").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.stop().await, Some(0));
    server.spawn().await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let active = server.get("/cam/control/recording/active").await.json();
    assert_eq!(active["data"]["session_id"], id, "{active}");
    let before = active["data"]["session"]["frame_count"].as_i64().unwrap();
    let grew = eventually(Duration::from_secs(5), async || {
        let now = server.get("/cam/control/recording/active").await.json();
        now["data"]["session"]["frame_count"].as_i64().unwrap() > before + 5
    })
    .await;
    assert!(grew, "the continued session receives frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_frames_but_keeps_protected_and_active_sessions() {
    // 6 s retention, checked every ~1.8 s.
    let (_cam, server) = Server::start_pair(
        json!({"recording": {"cleanup_interval_hours": 0.0005}}),
        json!({"recording": {"frame_storage_retention": "6s"}}),
    )
    .await;
    let old = server.start_recording("cam", "old").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop_recording("cam").await;
    let kept = server.start_recording("cam", "kept").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept_frames = server.stop_recording("cam").await["session"]["frame_count"].as_i64().unwrap();
    server.request("PUT", &format!("/cam/control/recordings/{kept}/keep"), &[], None).await;
    let active = server.start_recording("cam", "active").await;
    let started = Instant::now();

    let gone = eventually(Duration::from_secs(15), async || {
        server.get(&format!("/cam/control/recordings/{old}/frames")).await.status == 404
    })
    .await;
    assert!(gone, "the old session was deleted by retention");
    assert!(started.elapsed() >= Duration::from_secs(3), "not before its frames were 6 s old");
    let kept_now = server.get(&format!("/cam/control/recordings/{kept}/frames")).await.json();
    assert_eq!(kept_now["data"]["count"].as_i64().unwrap(), kept_frames, "kept session untouched");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let active_now = server.get("/cam/control/recording/active").await.json();
    assert_eq!(active_now["data"]["session_id"], active);
    let first = server.get(&format!("/cam/control/recordings/{active}/frames?limit=1")).await.json();
    let first_ts = first["data"]["frames"][0]["ts_ms"].as_i64().unwrap();
    assert!(
        first_ts <= active_now["data"]["session"]["start_ms"].as_i64().unwrap() + 1000,
        "active session keeps its first frames"
    );
    assert!(server.log().contains("retention deleted"), "retention logs what it deleted");
}

impl ServerPair for Server {}
trait ServerPair {
    /// A camera plus a server whose config and camera file get extra settings.
    async fn start_pair(config: Value, camera: Value) -> (TestCamera, Server) {
        let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
        let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), camera))]).await;
        server.wait_streaming("cam", Duration::from_secs(20)).await;
        (cam, server)
    }
}

//! The camera set changes while panelcam runs (SIGHUP rescans `cameras/`; so does the watcher, tests/watch.rs): cameras are
//! added, changed in place, restarted and removed, and the viewers of the cameras that were
//! not touched do not notice.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use support::harness::*;
use tokio_tungstenite::tungstenite::Message;

fn write_camera(server: &Server, id: &str, camera: &Value) {
    // Written to a temp file and renamed, as an editor or the admin API does.
    let tmp = server.dir.0.join(format!("cameras/.{id}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(camera).unwrap()).unwrap();
    std::fs::rename(&tmp, server.dir.0.join(format!("cameras/{id}.json"))).unwrap();
}

fn sighup(server: &Server) {
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGHUP).unwrap();
}

/// Waits until `/api/status` satisfies `f`.
async fn until(server: &Server, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = server.status().await;
        if f(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn camera_ids(status: &Value) -> Vec<String> {
    status["cameras"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

fn cam_field(status: &Value, id: &str, key: &str) -> Value {
    status["cameras"].as_array().unwrap().iter().find(|c| c["id"] == id).map(|c| c[key].clone()).unwrap_or(Value::Null)
}

/// Watches a viewer of the untouched camera: the longest gap between two frames.
fn watch_gaps(mut ws: Ws, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Duration, usize, Duration)> {
    tokio::spawn(async move {
        // Counted from the first frame: the camera's JPEGs start when this viewer asks.
        let mut started = Instant::now();
        let mut last = Instant::now();
        let (mut worst, mut frames) = (Duration::ZERO, 0);
        while !stop.load(Relaxed) {
            if next_binary(&mut ws, Duration::from_secs(2)).await.is_some() {
                let now = Instant::now();
                if frames > 0 {
                    worst = worst.max(now - last);
                } else {
                    started = now;
                }
                last = now;
                frames += 1;
            }
        }
        (worst, frames, started.elapsed())
    })
}

/// The close frame a viewer gets: (code, reason).
async fn closed_with(ws: &mut Ws) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return Some((f.code.into(), f.reason.to_string())),
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_sighup_adds_changes_and_removes_cameras_while_others_stream_on() {
    // The untouched camera has a stream of its own: when a client joins a stream of the
    // GStreamer test camera, that stream's other clients wait 100-150 ms (measured with panelcam's
    // H.264 viewer, /<camera>/video), which is the test camera's doing, not panelcam's.
    let cam =
        TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25", "--path", "/cam", "--path", "/own"])
            .await;
    let url = cam.url("/cam");
    let steady = camera_json("/steady", &cam.url("/own"), json!({}));
    let other = camera_json("/other", &url, json!({}));
    let server = Server::start(json!({}), &[("steady", steady), ("other", other.clone())]).await;
    server.wait_streaming("steady", Duration::from_secs(20)).await;
    server.wait_streaming("other", Duration::from_secs(20)).await;
    let restarts_of = |id: &'static str| {
        let server = &server;
        async move { server.camera_status(id).await["restarts"].clone() }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_gaps(ws_connect(&server.ws_url("/steady/live")).await.unwrap(), stop.clone());
    let mut other_viewer = ws_connect(&server.ws_url("/other/live")).await.unwrap();
    assert!(next_binary(&mut other_viewer, Duration::from_secs(3)).await.is_some());
    let steady_restarts = restarts_of("steady").await;

    // Add a camera.
    write_camera(&server, "added", &camera_json("/added", &url, json!({})));
    sighup(&server);
    until(&server, "the new camera streams", |s| cam_field(s, "added", "state") == "streaming").await;

    // Change only the token of `other`: applied in place, its viewer and FFmpeg carry on.
    let mut with_token = other.clone();
    merge(&mut with_token, json!({"token": "tok-new-123456"}));
    write_camera(&server, "other", &with_token);
    sighup(&server);
    until(&server, "the token applies", |s| cam_field(s, "other", "token_required") == true).await;
    assert!(next_binary(&mut other_viewer, Duration::from_secs(2)).await.is_some(), "the viewer kept streaming");
    assert_eq!(server.get("/other/snapshot").await.status, 401, "the new token is required");
    assert_eq!(server.get("/other/snapshot?token=tok-new-123456").await.status, 200);

    // Change its stream: it restarts, and its viewer is told why.
    let mut rescaled = with_token.clone();
    merge(&mut rescaled, json!({"ffmpeg": {"scale": "320:-1"}}));
    write_camera(&server, "other", &rescaled);
    sighup(&server);
    let (code, reason) = closed_with(&mut other_viewer).await.expect("the viewer got a close frame");
    assert_eq!(code, 1012, "service restart: {reason}");
    assert!(reason.contains("configuration changed"), "{reason}");
    server.wait_streaming("other", Duration::from_secs(20)).await;
    let snap = server.get("/other/snapshot?token=tok-new-123456").await;
    assert_eq!(jpeg_size(&snap.body).0, 320, "the new settings apply");

    // A broken file leaves the camera running as it was, and says so.
    std::fs::write(server.dir.0.join("cameras/other.json"), "{ broken").unwrap();
    sighup(&server);
    let s =
        until(&server, "the broken file is reported", |s| !s["invalid_cameras"].as_array().unwrap().is_empty()).await;
    assert_eq!(s["invalid_cameras"][0]["id"], "other");
    assert_eq!(s["invalid_cameras"][0]["running_previous_version"], true);
    assert_eq!(cam_field(&s, "other", "state"), "streaming");

    // Remove a camera: its viewer is told, its URL is gone.
    let mut added_viewer = ws_connect(&server.ws_url("/added/live")).await.unwrap();
    assert!(next_binary(&mut added_viewer, Duration::from_secs(3)).await.is_some());
    std::fs::remove_file(server.dir.0.join("cameras/added.json")).unwrap();
    sighup(&server);
    let (code, reason) = closed_with(&mut added_viewer).await.expect("the viewer got a close frame");
    assert_eq!((code, reason.as_str()), (1001, "camera removed"));
    let s = until(&server, "the camera is gone", |s| !camera_ids(s).contains(&"added".to_string())).await;
    assert_eq!(camera_ids(&s), vec!["other", "steady"]);
    assert_eq!(server.get("/added/snapshot").await.status, 404);

    // Changes apply within a second or so; watch long enough for a frame rate to mean something.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Relaxed);
    let (worst, frames, watched) = watcher.await.unwrap();
    let fps = frames as f64 / watched.as_secs_f64();
    assert!(fps >= 8.0, "the steady viewer kept its 10 fps: {frames} frames in {watched:?}");
    // 10 fps: one missed frame at most means no gap beyond two frame intervals.
    assert!(worst <= Duration::from_millis(250), "the steady camera's viewer waited {worst:?} for a frame");
    assert_eq!(restarts_of("steady").await, steady_restarts, "the steady camera's FFmpeg was never restarted");
}

//! A plant network misbehaves: cameras restart, FFmpeg dies or hangs, cameras vanish. Each
//! test uses the real test camera, the real panelcam and a real WebSocket viewer that stays
//! connected through the trouble.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use support::harness::*;

async fn one_camera(data_timeout: u64) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    // These tests are about supervising an FFmpeg that reads the camera (the input of every
    // camera panelcam cannot depayload); tests/media_router.rs covers the transcoder.
    let camera = camera_json(
        "/cam",
        &cam.url("/cam"),
        json!({"reconnect_interval": 1, "data_timeout": data_timeout, "rtsp_client": "ffmpeg"}),
    );
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

/// Waits for the next frame that arrives after `since`, returning when it came.
async fn frame_after(ws: &mut Ws, since: Instant, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if next_binary(ws, Duration::from_millis(200)).await.is_some() && Instant::now() > since {
            return Some(Instant::now());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_resume_after_the_camera_restarts() {
    let (mut cam, server) = one_camera(5).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    assert!(next_binary(&mut ws, Duration::from_secs(2)).await.is_some());

    cam.stop().await;
    let down =
        eventually(Duration::from_secs(8), async || server.camera_status("cam").await["state"] != "streaming").await;
    assert!(down, "panelcam noticed the camera going away");
    // Drain what was in flight, then bring the camera back.
    while next_binary(&mut ws, Duration::from_millis(300)).await.is_some() {}
    cam.restart().await;
    let back = Instant::now();
    let resumed = frame_after(&mut ws, back, Duration::from_secs(10)).await.expect("frames resume");
    let took = resumed - back;
    assert!(took <= Duration::from_secs(4), "reconnect_interval 1 s + 3 s allowed, took {took:?}");
    let status = server.camera_status("cam").await;
    assert_eq!(status["state"], "streaming");
    assert!(status["restarts"].as_u64().unwrap() >= 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ffmpeg_is_restarted() {
    let (cam, server) = one_camera(5).await;
    let pids = ffmpeg_pids_for(cam.port);
    assert_eq!(pids.len(), 1, "one FFmpeg per camera: {pids:?}");
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    kill(Pid::from_raw(pids[0] as i32), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    assert!(frame_after(&mut ws, killed + Duration::from_millis(500), Duration::from_secs(10)).await.is_some());
    let new = ffmpeg_pids_for(cam.port);
    assert_eq!(new.len(), 1, "exactly one FFmpeg again: {new:?}");
    assert_ne!(new, pids);
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[0])).exists(), "the killed FFmpeg was reaped");
    let status = server.camera_status("cam").await;
    assert!(status["last_error"].as_str().unwrap().contains("SIGKILL"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_ffmpeg_hits_the_data_timeout() {
    let (cam, server) = one_camera(3).await;
    let pids = ffmpeg_pids_for(cam.port);
    assert_eq!(pids.len(), 1);
    kill(Pid::from_raw(pids[0] as i32), Signal::SIGSTOP).unwrap();
    let stopped = Instant::now();
    let restarted = eventually(Duration::from_secs(15), async || {
        let now = ffmpeg_pids_for(cam.port);
        now.len() == 1 && now != pids
    })
    .await;
    assert!(restarted, "a new FFmpeg replaced the stopped one");
    assert!(stopped.elapsed() >= Duration::from_millis(2500), "not before the 3 s data timeout");
    server.wait_streaming("cam", Duration::from_secs(10)).await;
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[0])).exists(), "the stopped FFmpeg was killed and reaped");
    let status = server.camera_status("cam").await;
    assert!(status["last_error"].as_str().unwrap().contains("data timeout"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cameras_do_not_affect_the_others() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    // A port nobody listens on (refused at once) and a "camera" that accepts the TCP
    // connection and then never answers (the hanging kind).
    let refused = free_port();
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hanging.accept().await {
            held.push(s);
        }
    });
    let cameras = [
        ("good", camera_json("/good", &cam.url("/cam"), json!({}))),
        ("refused", camera_json("/refused", &format!("rtsp://127.0.0.1:{refused}/x"), json!({}))),
        ("hanging", camera_json("/hanging", &format!("rtsp://127.0.0.1:{hanging_port}/x"), json!({"data_timeout": 2}))),
    ];
    let server = Server::start(json!({}), &cameras).await;
    server.wait_streaming("good", Duration::from_secs(20)).await;
    let mut ws = ws_connect(&server.ws_url("/good/live")).await.unwrap();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(6) {
        if next_binary(&mut ws, Duration::from_secs(1)).await.is_some() {
            n += 1;
        }
    }
    let fps = n as f64 / start.elapsed().as_secs_f64();
    assert!(fps >= 8.0, "the good camera keeps its 10 fps while the others fail: {fps:.1}");
    for id in ["refused", "hanging"] {
        let s = server.camera_status(id).await;
        assert_ne!(s["state"], "streaming", "{id}: {s}");
        assert!(s["last_error"].is_string(), "{id} explains itself: {s}");
    }
    let hanging_status = server.camera_status("hanging").await;
    assert!(hanging_status["last_error"].as_str().unwrap().contains("data timeout"), "{hanging_status}");
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_stalls_do_not_restart_ffmpeg() {
    // A loaded panel pauses FFmpeg for tens of milliseconds; the backlog that follows must not
    // make FFmpeg give up (it once did: two frames with one timestamp, "Invalid pts").
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25"]).await;
    let camera =
        camera_json("/cam", &cam.url("/cam"), json!({"ffmpeg": {"log_stderr": "console"}, "rtsp_client": "ffmpeg"}));
    let server =
        Server::start(json!({"recording": {"hls_storage_enabled": true, "continuous": true}}), &[("cam", camera)])
            .await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let pids = ffmpeg_pids_for(cam.port);
    assert_eq!(pids.len(), 1);
    let pid = Pid::from_raw(pids[0] as i32);
    for _ in 0..20 {
        kill(pid, Signal::SIGSTOP).unwrap();
        tokio::time::sleep(Duration::from_millis(90)).await;
        kill(pid, Signal::SIGCONT).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let status = server.camera_status("cam").await;
    assert_eq!(status["restarts"], 0, "FFmpeg survived 20 stalls: {status}");
    assert_eq!(ffmpeg_pids_for(cam.port), pids);
    assert_eq!(status["state"], "streaming");
}

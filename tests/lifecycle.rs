//! Process lifecycle: no FFmpeg may outlive panelcam, however panelcam ends.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::*;

async fn two_cameras() -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360", "--path", "/a", "--path", "/b"]).await;
    let cameras =
        // FFmpeg reads these cameras: the tests are about its process control.
        [("a", camera_json("/a", &cam.url("/a"), json!({"rtsp_client": "ffmpeg"}))), ("b", camera_json("/b", &cam.url("/b"), json!({"rtsp_client": "ffmpeg"})))];
    let server = Server::start(json!({}), &cameras).await;
    server.wait_streaming("a", Duration::from_secs(20)).await;
    server.wait_streaming("b", Duration::from_secs(20)).await;
    assert_eq!(ffmpeg_pids_for(cam.port).len(), 2, "one FFmpeg per camera");
    (cam, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_panelcam_leaves_no_ffmpeg() {
    let (cam, mut server) = two_cameras().await;
    let ffmpegs = ffmpeg_pids_for(cam.port);
    server.kill9();
    assert_eq!(server.wait_exit(Duration::from_secs(5)).await, None, "killed by a signal");
    let gone = eventually(Duration::from_secs(3), async || ffmpeg_pids_for(cam.port).is_empty()).await;
    assert!(gone, "FFmpeg outlived panelcam: {:?} (were {ffmpegs:?})", ffmpeg_pids_for(cam.port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_reaps_ffmpeg() {
    let (cam, mut server) = two_cameras().await;
    let ffmpegs = ffmpeg_pids_for(cam.port);
    assert_eq!(server.stop().await, Some(0), "clean exit code");
    for pid in ffmpegs {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "FFmpeg {pid} stopped and reaped");
    }
    let log = server.log();
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_about_a_camera_names_it() {
    let (_cam, mut server) = two_cameras().await;
    server.stop().await;
    let log = server.log();
    let about_cameras: Vec<&str> = log.lines().filter(|l| l.contains("FFmpeg") || l.contains("first frame")).collect();
    assert!(about_cameras.len() >= 4, "{log}");
    for line in about_cameras {
        assert!(line.contains("camera=a") || line.contains("camera=b"), "no camera id in: {line}");
    }
}

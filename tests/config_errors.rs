//! Bad configuration gets a clear error naming the file, the field and what was expected,
//! and loses nothing: a broken config.json stops startup (exit 2), a broken camera file
//! disables only that camera.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::*;

#[tokio::test]
async fn broken_config_json_stops_startup_with_exit_code_2() {
    let dir = TempDir::new("badcfg");
    dir.write("config.json", r#"{"server": {"port": "eighty"}, "recording": {"frame_storage_retention": "a week"}}"#);
    let (code, _, stderr) = run_panelcam(&dir.0, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("config.json: field `server.port`: expected a whole number from 1 to 65535, found \"eighty\""),
        "{stderr}"
    );
    assert!(stderr.contains("recording.frame_storage_retention"), "every problem listed: {stderr}");

    dir.write("config.json", "{\"server\": {\n  \"port\": 8080,\n}}");
    let (code, _, stderr) = run_panelcam(&dir.0, &[]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not valid JSON") && stderr.contains("line 3"), "{stderr}");
}

#[tokio::test]
async fn check_lists_every_problem_and_fails() {
    let dir = TempDir::new("check");
    dir.write("config.json", r#"{"server": {"port": 8080, "colour": "blue"}}"#);
    dir.write("cameras/good.json", r#"{"path": "/good", "url": "rtsp://u:secretpw@10.0.0.1/s"}"#);
    dir.write(
        "cameras/bad.json",
        r#"{"path": "/bad", "url": "rtsp://h/s", "transport": "quic", "ffmpeg": {"quality": 150}}"#,
    );
    dir.write("cameras/broken.json", r#"{"path": "/broken""#);
    let (code, stdout, stderr) = run_panelcam(&dir.0, &["check"]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    for expected in [
        "warning: config.json: field `server.colour`: unknown field, ignored",
        "cameras/bad.json: field `transport`: expected one of \"tcp\", \"udp\", found \"quic\"",
        "cameras/bad.json: field `ffmpeg.quality`: expected a whole number from 1 to 100, found 150",
        "cameras/broken.json: not valid JSON",
        "3 error(s)",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in:\n{stderr}");
    }
    assert!(stdout.contains("cameras/good.json: ok: /good from rtsp://u:***@10.0.0.1/s"), "{stdout}");
    assert!(!stdout.contains("secretpw") && !stderr.contains("secretpw"));

    dir.write("cameras/bad.json", r#"{"path": "/bad", "url": "rtsp://h/s"}"#);
    std::fs::remove_file(dir.0.join("cameras/broken.json")).unwrap();
    let (code, stdout, _) = run_panelcam(&dir.0, &["check"]).await;
    assert_eq!(code, Some(0), "warnings alone pass: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_camera_file_disables_only_that_camera() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let good = camera_json("/good", &cam.url("/cam"), json!({"colour": "red"}));
    let bad = json!({"path": "/bad", "url": "rtsp://h/s", "reconnect_interval": "soon"});
    let server = Server::start(json!({}), &[("good", good), ("bad", bad)]).await;
    server.wait_streaming("good", Duration::from_secs(20)).await;
    let status = server.status().await;
    let invalid = &status["invalid_cameras"];
    assert_eq!(invalid[0]["id"], "bad", "{status}");
    let problem = invalid[0]["problems"][0].as_str().unwrap();
    assert!(problem.contains("bad.json") && problem.contains("`reconnect_interval`"), "{problem}");
    assert!(server.camera_status("bad").await.is_null(), "the broken camera is not running");
    assert_eq!(server.get("/bad/stream").await.status, 404);
    let log = server.log();
    assert!(log.contains("unknown field, ignored") && log.contains("colour"), "unknown fields warn: {log}");
}

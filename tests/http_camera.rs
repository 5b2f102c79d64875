//! An HTTP MJPEG camera (multipart JPEGs, as many plant cameras serve them): live view works,
//! and its video is recorded as the one encoded exception (H.264 at `mp4_framerate`), stored
//! in the panel's SQLite database.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::*;
use tokio::process::Command;

/// FFmpeg serving a 640x360 MJPEG stream over HTTP (one client, as a camera would).
fn http_camera(port: u16) -> tokio::process::Child {
    Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=10",
            "-c:v",
            "mjpeg",
            "-q:v",
            "5",
        ])
        .args(["-f", "mpjpeg", "-listen", "1", &format!("http://127.0.0.1:{port}/video.mjpg")])
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg as an HTTP camera")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_mjpeg_camera_is_viewed_and_recorded_by_encoding() {
    let port = free_port();
    let _camera = http_camera(port);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let config = json!({"recording": {"hls_storage_enabled": true, "mp4_storage_type": "database", "hls_segment_seconds": 2,
        "mp4_segment_minutes": 0.1, "mp4_framerate": 5, "pre_event_seconds": 0}});
    let cam = camera_json(
        "/http",
        &format!("http://user:pw-5bd1@127.0.0.1:{port}/video.mjpg"),
        json!({"ffmpeg": {"output_framerate": 5}}),
    );
    let server = Server::start(config, &[("http", cam)]).await;
    server.wait_streaming("http", Duration::from_secs(20)).await;

    let mut ws = ws_connect(&server.ws_url("/http/live")).await.unwrap();
    let jpeg = next_binary(&mut ws, Duration::from_secs(3)).await.expect("live frames from the HTTP camera");
    assert_eq!(jpeg_size(&jpeg), (640, 360));

    server.start_recording("http", "http camera").await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    server.stop_recording("http").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = server.get("/http/control/recordings/mp4/segments").await.json();
    let seg = &list["data"]["segments"][0];
    let name = seg["filename"].as_str().unwrap_or_else(|| panic!("no MP4 segment: {list}"));
    assert!(
        list["data"]["segments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["url"].as_str().unwrap().starts_with("segments/"))
    );
    // Held by the store (mp4_storage_type "database"): the files live in the store's
    // own day directories beside segments.db, none in the camera directory itself.
    let store = server.dir.0.join("recordings/http/segments");
    let files: Vec<_> = walk(&server.dir.0.join("recordings/http"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    assert!(!files.is_empty(), "no store-held MP4 file");
    assert!(files.iter().all(|p| p.starts_with(&store)), "{files:?}");
    let body = server.get(&format!("/http/control/recordings/mp4/segments/{name}")).await;
    assert_eq!(body.status, 200);
    let path = server.dir.0.join("from-sqlite.mp4");
    std::fs::write(&path, &body.body).unwrap();
    let probe = ffprobe(&path.to_string_lossy()).await;
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "MJPEG cameras are the one case that is encoded");
    assert_eq!(stream["avg_frame_rate"], "5/1", "at mp4_framerate: {stream}");
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(640), Some(360)));
    let log = server.log();
    assert!(!log.contains("pw-5bd1"), "the camera password stays out of the log");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

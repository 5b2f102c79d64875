//! The camera directory is watched (inotify): files created, edited, saved the way editors do,
//! broken, deleted, and the directory itself removed and recreated, are applied without a
//! signal, while the viewer of an untouched camera streams on.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::harness::*;

/// Waits until `/api/status` satisfies `f`; returns it and how long that took.
async fn until(server: &Server, what: &str, f: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        let status = server.status().await;
        if f(&status) {
            return (status, started.elapsed());
        }
        assert!(Instant::now() < deadline, "{what}: {status}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state(status: &Value, id: &str) -> Value {
    status["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["state"].clone())
        .unwrap_or(Value::Null)
}

fn has(status: &Value, id: &str) -> bool {
    status["cameras"].as_array().unwrap().iter().any(|c| c["id"] == id)
}

/// Milliseconds until a new viewer of `path` gets its first JPEG.
async fn first_frame(server: &Server, path: &str, since: Instant) -> Duration {
    loop {
        if let Ok(mut ws) = ws_connect(&server.ws_url(&format!("{path}/live"))).await
            && next_binary(&mut ws, Duration::from_secs(5)).await.is_some()
        {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(20), "no frame from {path}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_files_apply_as_they_change_without_a_signal() {
    // The untouched camera has a stream of its own: when a client joins a stream of the
    // GStreamer test camera, that stream's other clients wait 100-150 ms (measured with panelcam's
    // H.264 viewer, /<camera>/video), which is the test camera's doing, not panelcam's.
    let cam =
        TestCamera::start(&["--width", "640", "--height", "360", "--fps", "25", "--path", "/cam", "--path", "/own"])
            .await;
    let url = cam.url("/cam");
    let server = Server::start(json!({}), &[("steady", camera_json("/steady", &cam.url("/own"), json!({})))]).await;
    server.wait_streaming("steady", Duration::from_secs(20)).await;
    let steady_restarts = server.camera_status("steady").await["restarts"].clone();
    // The untouched camera's viewer, watched for its longest gap between two frames.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = Instant::now();
    let gaps = {
        let mut ws = ws_connect(&server.ws_url("/steady/live")).await.unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut worst, mut last, mut frames) = (Duration::ZERO, Instant::now(), 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if next_binary(&mut ws, Duration::from_secs(2)).await.is_some() {
                    if frames > 0 {
                        worst = worst.max(last.elapsed());
                    }
                    last = Instant::now();
                    frames += 1;
                }
            }
            (worst, frames)
        })
    };
    let dir = server.dir.0.join("cameras");
    let text = |v: &Value| serde_json::to_string_pretty(v).unwrap();

    // Created in place (open, write, close): added. The time to its first frame is the
    // hot-reload time of the closing note.
    let written = Instant::now();
    std::fs::write(dir.join("new.json"), text(&camera_json("/new", &url, json!({})))).unwrap();
    let took = first_frame(&server, "/new", written).await;
    println!("hot reload: camera file written -> first frame of the new camera: {} ms", took.as_millis());

    // An editor's save: swap and backup files come and go, then a rename into place.
    // One change, applied once: the camera restarts with the new scale.
    std::fs::write(dir.join(".new.json.swp"), "not a camera").unwrap();
    std::fs::write(dir.join("new.json~"), "{ not json").unwrap();
    let tmp = dir.join(".new.json.tmp");
    std::fs::write(&tmp, text(&camera_json("/new", &url, json!({"ffmpeg": {"scale": "320:-1"}})))).unwrap();
    std::fs::rename(&tmp, dir.join("new.json")).unwrap();
    std::fs::remove_file(dir.join(".new.json.swp")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snap = server.get("/new/snapshot").await;
        if snap.status == 200 && jpeg_size(&snap.body).0 == 320 {
            break;
        }
        assert!(Instant::now() < deadline, "the new scale never applied\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.log();
    let restarts = log.matches("camera restarted with its new configuration").count();
    assert_eq!(restarts, 1, "one save, one restart:\n{log}");
    assert!(!log.contains("new.json~") && !log.contains(".swp"), "editor files are not cameras:\n{log}");

    // Broken JSON: reported, and the camera runs on as it was.
    std::fs::write(dir.join("new.json"), "{ broken").unwrap();
    let (s, _) = until(&server, "the broken file is reported", |s| {
        s["invalid_cameras"].as_array().is_some_and(|a| a.iter().any(|c| c["id"] == "new"))
    })
    .await;
    assert_eq!(state(&s, "new"), "streaming");

    // Deleted: removed.
    std::fs::remove_file(dir.join("new.json")).unwrap();
    until(&server, "the deleted camera is gone", |s| !has(s, "new")).await;
    assert_eq!(server.get("/new/snapshot").await.status, 404);

    // The directory removed: reported, the remaining camera keeps streaming.
    let aside = server.dir.0.join("cameras-aside");
    std::fs::rename(&dir, &aside).unwrap();
    let (s, _) = until(&server, "the lost directory is reported", |s| s["camera_directory"]["watched"] == false).await;
    assert!(s["camera_directory"]["problem"].as_str().unwrap().contains("cameras"), "{s}");
    assert_eq!(state(&s, "steady"), "streaming", "cameras keep running without their directory");
    // ... and recreated with a new camera in it: watched again, and applied.
    std::fs::create_dir(&dir).unwrap();
    std::fs::rename(aside.join("steady.json"), dir.join("steady.json")).unwrap();
    std::fs::write(dir.join("back.json"), text(&camera_json("/back", &url, json!({})))).unwrap();
    let (s, _) = until(&server, "the recreated directory is watched and applied", |s| {
        s["camera_directory"]["watched"] == true && state(s, "back") == "streaming"
    })
    .await;
    assert!(has(&s, "steady"));

    // The untouched camera never restarted, and its viewer missed at most one frame (10 fps:
    // no gap beyond two frame intervals) through all of it. Cameras start within a fraction of
    // a second, so the changes above may take less than the 8 s watched here.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(watching.elapsed())).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, frames) = gaps.await.unwrap();
    assert!(frames > 50, "the steady viewer got {frames} frames");
    assert!(worst <= Duration::from_millis(250), "the steady camera's viewer waited {worst:?} for a frame");
    assert_eq!(server.camera_status("steady").await["restarts"], steady_restarts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_json_is_reported_as_needing_a_restart() {
    let server = Server::start(json!({}), &[]).await;
    let path = server.dir.0.join("config.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["server"]["max_viewers_per_camera"] = json!(7);
    std::fs::write(&path, doc.to_string()).unwrap();
    let (s, _) = until(&server, "the change is reported", |s| !s["config_file"].is_null()).await;
    assert_eq!(s["config_file"]["restart_required"], json!(["server"]), "{s}");
    std::fs::write(&path, "{ broken").unwrap();
    let (s, _) = until(&server, "the broken file is reported", |s| s["config_file"]["problem"].is_string()).await;
    assert!(s["config_file"]["problem"].as_str().unwrap().contains("config.json"), "{s}");
    assert_eq!(server.get("/api/status").await.status, 200, "the running configuration carries on");
}

//! Limits that keep a flood from taking the gateway down: connections bounded by the
//! open-file limit (WebSockets included, for their whole life), viewers bounded per camera.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::harness::*;

/// Raises this test process's own open-file limit: it holds 1,500 sockets.
fn raise_own_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_400_viewers_and_1100_idle_connections_with_1024_open_files() {
    raise_own_limit();
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let cameras: Vec<(String, serde_json::Value)> = (0..4)
        .map(|i| {
            (
                format!("cam{i}"),
                camera_json(&format!("/cam{i}"), &cam.url("/cam"), json!({"ffmpeg": {"output_framerate": 5}})),
            )
        })
        .collect();
    let refs: Vec<(&str, serde_json::Value)> = cameras.iter().map(|(id, c)| (id.as_str(), c.clone())).collect();
    let launch = Launch { nofile: Some(1024), ..Launch::default() };
    let server = Server::start_with(json!({}), &refs, launch).await;
    for i in 0..4 {
        server.wait_streaming(&format!("cam{i}"), Duration::from_secs(30)).await;
    }
    let status = server.status().await;
    let max = status["max_connections"].as_u64().unwrap();
    assert!((400..1024).contains(&max), "the connection limit comes from the open-file limit: {max}");
    // panelcam's RTSP client reads the cameras: no session may restart under the flood. (The
    // test camera itself sometimes drops sessions that four clients set up at the same
    // instant, before any of this begins: counted from here.)
    let restarts_before: Vec<serde_json::Value> =
        status["cameras"].as_array().unwrap().iter().map(|c| c["restarts"].clone()).collect();

    // 400 live viewers, 100 per camera (the default per-camera limit).
    let mut viewers = Vec::new();
    for i in 0..400 {
        let ws = ws_connect(&server.ws_url(&format!("/cam{}/live", i % 4))).await;
        viewers.push(ws.unwrap_or_else(|e| panic!("viewer {i}: {e}")));
    }
    // One more on a full camera is refused clearly.
    let refused = ws_connect(&server.ws_url("/cam0/live")).await.unwrap_err();
    assert!(refused.contains("503"), "{refused}");

    // 1,100 connections that say nothing.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(("127.0.0.1", server.port)))
                .await
        {
            idle.push(s);
        }
    }
    // While the flood lasts: the gateway stays up, keeps its descriptors in bounds, and
    // its viewers still get frames.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(std::path::Path::new(&format!("/proc/{}", server.pid())).exists(), "the gateway is alive");
    let fds = open_fds(server.pid());
    assert!(fds < 1024, "{fds} open files");
    let mut fed = 0;
    for ws in viewers.iter_mut().step_by(20) {
        // Drain what queued up, then one fresh frame.
        while next_binary(ws, Duration::from_millis(20)).await.is_some() {}
        if next_binary(ws, Duration::from_secs(3)).await.is_some() {
            fed += 1;
        }
    }
    assert_eq!(fed, 20, "sampled viewers keep receiving frames during the flood");

    // The flood ends: a normal client is served at once.
    drop(idle);
    let back = Instant::now();
    let served = eventually(
        Duration::from_secs(10),
        async || matches!(server.try_request("GET", "/api/status", &[], None).await, Ok(r) if r.status == 200),
    )
    .await;
    assert!(served, "a normal client was served after the flood\n{}", server.log());
    eprintln!("served {:?} after the flood ended", back.elapsed());
    let status = server.status().await;
    for (c, before) in status["cameras"].as_array().unwrap().iter().zip(&restarts_before) {
        assert_eq!(&c["restarts"], before, "{c}");
    }
    assert!(!server.log().contains("Too many open files"), "no descriptor ran out");
    drop(viewers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_holds_its_connection_slot_until_it_closes() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), json!({}));
    let server = Server::start(json!({"server": {"max_connections": 16}}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let mut sockets = Vec::new();
    for _ in 0..15 {
        sockets.push(ws_connect(&server.ws_url("/cam/live")).await.unwrap());
    }
    let status = server.status().await;
    assert_eq!(status["max_connections"], 16);
    // 15 sockets plus the status request itself.
    assert_eq!(status["connections"], 16, "{status}");
    sockets.push(ws_connect(&server.ws_url("/cam/live")).await.unwrap());
    // The limit is full: a seventeenth socket waits (in the accept queue) until one closes.
    let waiting = tokio::spawn({
        let url = server.ws_url("/cam/live");
        async move { ws_connect(&url).await.is_ok() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "accepted beyond the connection limit");
    sockets.pop();
    assert!(tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap(), "served once a slot freed");
}

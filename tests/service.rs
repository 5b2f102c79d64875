//! panelcam under a service manager, without one: a fake `$NOTIFY_SOCKET` receives READY,
//! STATUS, WATCHDOG and STOPPING; a hung runtime or supervisor stops the watchdog pings; a
//! stop ends FFmpeg and exits 0 in time; a second stop signal exits at once, orphaning nothing.

mod support;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use support::harness::*;

/// A datagram socket standing in for systemd's notify socket, collecting what arrives.
struct FakeSystemd {
    path: std::path::PathBuf,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl FakeSystemd {
    fn start(dir: &TempDir) -> FakeSystemd {
        let path = dir.0.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let got: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        });
        FakeSystemd { path, got }
    }

    fn env(&self, watchdog: Duration) -> Vec<(String, String)> {
        vec![
            ("NOTIFY_SOCKET".into(), self.path.display().to_string()),
            ("WATCHDOG_USEC".into(), watchdog.as_micros().to_string()),
        ]
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    fn count(&self, what: &str, since: Instant) -> usize {
        self.messages().iter().filter(|(t, m)| *t >= since && m.lines().any(|l| l == what)).count()
    }
}

async fn start(extra: Vec<(String, String)>, fake: &FakeSystemd) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let mut env = fake.env(Duration::from_secs(1));
    env.extend(extra);
    let launch = Launch { env, ..Launch::default() };
    let server =
        // FFmpeg reads the camera: stopping must reap it (the transcoder: tests/media_router.rs).
        Server::start_with(json!({}), &[("cam", camera_json("/cam", &cam.url("/cam"), json!({"rtsp_client": "ffmpeg"})))], launch).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_status_watchdog_and_stopping_reach_the_service_manager() {
    let dir = TempDir::new("notify");
    let fake = FakeSystemd::start(&dir);
    let (cam, mut server) = start(Vec::new(), &fake).await;
    let ready = fake.messages().iter().find(|(_, m)| m.lines().any(|l| l == "READY=1")).cloned();
    let (_, ready) = ready.expect("READY=1 was sent");
    assert!(ready.contains("STATUS=1 camera"), "{ready}");
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pings = fake.count("WATCHDOG=1", since);
    assert!((4..=8).contains(&pings), "every half interval (0.5 s): {pings} pings in 3 s");
    let status = fake.messages().iter().rev().find_map(|(_, m)| m.strip_prefix("STATUS=").map(str::to_string));
    assert_eq!(status.as_deref(), Some("1 camera: 1 streaming"));

    let pids = ffmpeg_pids_for(cam.port);
    assert_eq!(pids.len(), 1);
    let stopping = Instant::now();
    let code = server.stop().await;
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "a clean stop exits 0\n{}", server.log());
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert!(fake.messages().iter().any(|(_, m)| m.starts_with("STOPPING=1")));
    assert!(ffmpeg_pids_for(cam.port).is_empty(), "no FFmpeg left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_runtime_stops_the_watchdog_pings() {
    let dir = TempDir::new("notify-rt");
    let fake = FakeSystemd::start(&dir);
    let (_cam, mut server) = start(vec![("PANELCAM_FAULT".into(), "runtime.stall".into())], &fake).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(fake.count("WATCHDOG=1", Instant::now() - Duration::from_secs(2)) >= 2);
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGUSR1).unwrap();
    // The watchdog stops feeding 2 s after the runtime's last beat.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.count("WATCHDOG=1", since), 0, "no pings while the runtime hangs");
    let answer =
        tokio::time::timeout(Duration::from_secs(2), server.try_request("GET", "/api/status", &[], None)).await;
    assert!(!matches!(answer, Ok(Ok(_))), "the runtime really hangs");
    assert!(server.log().contains("the async runtime has not run"), "and says why\n{}", server.log());
    server.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_camera_supervisor_stops_the_watchdog_pings() {
    let dir = TempDir::new("notify-sup");
    let fake = FakeSystemd::start(&dir);
    let (_cam, mut server) = start(vec![("PANELCAM_FAULT".into(), "supervisor.stall".into())], &fake).await;
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGUSR1).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.count("WATCHDOG=1", since), 0, "no pings while a supervisor is stuck");
    assert_eq!(server.get("/api/status").await.status, 200, "while the rest of panelcam answers");
    assert!(server.log().contains("the supervisor of camera cam has not run"), "{}", server.log());
    server.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_signal_exits_at_once_and_leaves_no_ffmpeg() {
    // An "FFmpeg" that ignores SIGTERM (and sends no frames): the first stop has to wait
    // for its grace period; its command line still names the camera.
    let dir = TempDir::new("stubborn");
    let script = dir.0.join("ffmpeg");
    let ready = dir.0.join("stubborn-ready");
    let python = format!(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open(\"{}\", \"w\").close(); time.sleep(600)",
        ready.display()
    );
    std::fs::write(&script, format!("#!/bin/sh\nexec /usr/bin/python3 -c '{python}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let launch = Launch { env: vec![("PANELCAM_FFMPEG".into(), script.display().to_string())], ..Launch::default() };
    let camera = camera_json("/cam", &cam.url("/cam"), json!({"rtsp_client": "ffmpeg"}));
    let mut server = Server::start_with(json!({}), &[("cam", camera)], launch).await;
    let url = format!("127.0.0.1:{}", cam.port);
    let started = eventually(Duration::from_secs(10), async || ready.exists()).await;
    assert!(started, "the stubborn FFmpeg runs");
    assert_eq!(pids_with_arg(&url).len(), 1);
    let pid = Pid::from_raw(server.pid() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(pid, Signal::SIGTERM).unwrap();
    let second = Instant::now();
    let code = server.wait_exit(Duration::from_secs(5)).await;
    assert!(second.elapsed() < Duration::from_secs(2), "the second signal ended it at once");
    assert_eq!(code, Some(1));
    let gone = eventually(Duration::from_secs(3), async || pids_with_arg(&url).is_empty()).await;
    assert!(gone, "no FFmpeg orphaned: {:?}", pids_with_arg(&url));
    // The frame database is consistent after such an exit.
    let db = rusqlite::Connection::open(server.dir.0.join("recordings/cam.db")).unwrap();
    let ok: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
}

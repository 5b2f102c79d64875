//! Cold start: how long a freshly started panelcam (empty data directory, one RTSP test camera
//! already running) takes from exec to the first JPEG at a live WebSocket client, and where
//! that time goes. Each start is timed at four points from the moment before `spawn`:
//! the listener accepting TCP, READY=1 on a fake `$NOTIFY_SOCKET` (what systemd waits for),
//! the camera's FFmpeg exec'd (its `comm` turns `ffmpeg`), and the first JPEG at the client.
//! Then FFmpeg alone, with the argv panelcam gave it, from spawn to its first JPEG on stdout:
//! the part of the cold start that is FFmpeg connecting to RTSP and decoding, not panelcam.
//!
//! `PANELCAM_BIN` / `PANELCAM_RUNNER` (common.rs) pick the binary, e.g. the aarch64 musl build
//! under `qemu-aarch64-static`; FFmpeg is always the host's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpStream, UnixDatagram};
use tokio::process::Command;

use crate::common::*;
use crate::first_picture;
use crate::latency::split_jpegs;
use crate::support::harness::{TempDir, comm, free_port};

const STARTS: usize = 10;
/// Gives up on one start after this long (qemu-user included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Milliseconds from exec to each point of one start.
#[derive(Default)]
struct Start {
    listening: f64,
    ready: Option<f64>,
    ffmpeg_exec: Option<f64>,
    first_jpeg: f64,
}

pub async fn cold_start() {
    let camera = reference_camera(&[]).await;
    let url = camera.url("/cam");
    let mut starts = Vec::new();
    let mut ffmpeg_args = None;
    for _ in 0..STARTS {
        let (start, args) = tokio::time::timeout(START_TIMEOUT * 2, one_start(&url))
            .await
            .expect("a cold start within 60 s")
            .unwrap_or_else(|e| panic!("cold start: {e}"));
        starts.push(start);
        ffmpeg_args = ffmpeg_args.or(args);
        // Let the camera's RTSP session of the previous start close.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let note = format!("{}  load {}", bench_config_note().trim_start(), loadavg());
    let col = |f: fn(&Start) -> Option<f64>| starts.iter().filter_map(f).collect::<Vec<f64>>();
    print_latency("cold start: exec -> listener accepts TCP", &col(|s| Some(s.listening)), None, "");
    print_latency("cold start: exec -> READY=1 (NOTIFY_SOCKET)", &col(|s| s.ready), None, "");
    print_latency("cold start: exec -> camera's FFmpeg exec'd", &col(|s| s.ffmpeg_exec), None, "");
    print_latency(
        "cold start: FFmpeg exec'd -> first JPEG at the WS client",
        &col(|s| s.ffmpeg_exec.map(|f| s.first_jpeg - f)),
        None,
        "",
    );
    print_latency("cold start: exec -> first JPEG at the WS client", &col(|s| Some(s.first_jpeg)), None, &note);
    let Some(args) = ffmpeg_args else {
        println!("FFmpeg alone: no argv read (FFmpeg never seen)");
        return;
    };
    let mut alone = Vec::new();
    for _ in 0..STARTS {
        let (args, old_spool) = &args;
        let spool = ScratchDir::new("cold-ffmpeg");
        let args = move_spool(args, old_spool, &spool.0);
        match tokio::task::spawn_blocking(move || ffmpeg_first_jpeg(&args)).await.unwrap() {
            Ok(ms) => alone.push(ms),
            Err(e) => println!("FFmpeg alone: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    print_latency("FFmpeg alone (same argv): spawn -> first JPEG on stdout", &alone, None, "");
}

/// The argv panelcam gave FFmpeg and the spool directory it names.
type FfmpegArgs = (Vec<String>, PathBuf);

/// One start in a fresh directory; returns its times and the FFmpeg argv it ran.
async fn one_start(url: &str) -> Result<(Start, Option<FfmpegArgs>), String> {
    let dir = TempDir::new("cold");
    let port = free_port();
    let spool = dir.0.join("spool");
    let config = json!({"server": {"host": "127.0.0.1", "port": port},
                        "recording": {"database_path": "recordings", "spool_path": spool}});
    dir.write("config.json", &config.to_string());
    dir.write("cameras/cam.json", &reference_camera_file("/cam", url).to_string());
    let notify_path = dir.0.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).map_err(|e| format!("bind the fake NOTIFY_SOCKET: {e}"))?;
    let log = std::fs::File::create(dir.0.join("panelcam.log")).map_err(|e| e.to_string())?;

    let program = launch().program;
    let mut cmd = match program.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_panelcam")),
    };
    cmd.args(["--config", "config.json"])
        .current_dir(&dir.0)
        .env("PANELCAM_LOG", "info")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("start panelcam: {e}"))?;
    let pid = child.id().ok_or("panelcam has no pid")?;
    let ms = move |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;

    let ready = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let n = notify.recv(&mut buf).await.ok()?;
            if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                return Some(Instant::now());
            }
        }
    });
    let ffmpeg = tokio::task::spawn_blocking(move || watch_for_ffmpeg(pid, t0 + START_TIMEOUT));

    let deadline = t0 + START_TIMEOUT;
    let listening = loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break Instant::now();
        }
        if Instant::now() > deadline {
            return Err(format!("no listener after {START_TIMEOUT:?}; log:\n{}", read_log(&dir.0)));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let first_jpeg = loop {
        let connect = Instant::now();
        match first_picture::one(port).await {
            Ok((_, after_connect)) => break connect + Duration::from_secs_f64(after_connect / 1000.0),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("no picture after {START_TIMEOUT:?}: {e}; log:\n{}", read_log(&dir.0)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    };
    let ffmpeg = ffmpeg.await.map_err(|e| e.to_string())?;
    let args = ffmpeg.map(|(_, f)| (process_args(f), spool.clone()));
    let start = Start {
        listening: ms(listening),
        ready: tokio::time::timeout(Duration::from_millis(100), ready)
            .await
            .ok()
            .and_then(|r| r.ok().flatten())
            .map(ms),
        ffmpeg_exec: ffmpeg.map(|(t, _)| ms(t)),
        first_jpeg: ms(first_jpeg),
    };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
        let _ = child.start_kill();
    }
    Ok((start, args))
}

/// Polls panelcam's children (`/proc/<pid>/task/*/children`, every thread's) until one of them
/// is FFmpeg; the time it was first seen and its pid. Blocking.
fn watch_for_ffmpeg(pid: u32, deadline: Instant) -> Option<(Instant, u32)> {
    while Instant::now() < deadline {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                if comm(child) == "ffmpeg" {
                    return Some((Instant::now(), child));
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

/// A process's arguments without the program.
fn process_args(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    cmdline.split(|b| *b == 0).skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("panelcam.log")).unwrap_or_default()
}

/// Runs `ffmpeg <args>` and returns ms from spawn to its first complete JPEG on stdout. Blocking.
fn ffmpeg_first_jpeg(args: &[String]) -> Result<f64, String> {
    use std::os::unix::process::CommandExt;
    let t0 = Instant::now();
    let mut child = std::process::Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let frames = split_jpegs(child.stdout.take().unwrap());
    let result = frames
        .recv_timeout(Duration::from_secs(20))
        .map(|_| t0.elapsed().as_secs_f64() * 1000.0)
        .map_err(|_| "FFmpeg alone gave no JPEG within 20 s".to_string());
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    result
}

//! Stop under load: what `systemctl stop` meets on a busy panel. 4 cameras, each with a
//! recording session active (frames into the frame store, HLS and MP4 video into the local
//! store), 50 live viewers spread over them; then SIGTERM. Measured: SIGTERM to exit, the exit
//! code, FFmpeg children still alive afterwards (by pid), and whether the next start finds the
//! stores clean (no repair, no session closed as left open by a crash; every session resumes).
//! The unit gives panelcam TimeoutStopSec=20 s before it kills everything.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::resources::Viewers;
use crate::support::harness::{Server, comm, is_zombie};

const IDS: [&str; 4] = ["a", "b", "c", "d"];
const VIEWERS: usize = 50;
const ROUNDS: usize = 5;
/// systemd/panelcam.service.
const TIMEOUT_STOP_SEC: f64 = 20.0;
/// Log lines of a start that found something left behind by an unclean stop.
const UNCLEAN_MARKS: &[&str] = &[
    "repaired after an unclean stop",
    "left open by a crash",
    "left unfinished by a crash",
    "cannot repair",
    "write was interrupted",
    "copy was interrupted",
];

pub async fn stop_under_load() {
    let paths: Vec<String> = IDS.iter().flat_map(|id| ["--path".to_string(), format!("/{id}")]).collect();
    let camera = reference_camera(&paths.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let files: Vec<(&str, serde_json::Value)> =
        IDS.iter().map(|id| (*id, reference_camera_file(&format!("/{id}"), &camera.url(&format!("/{id}"))))).collect();
    let load_for = scaled(1.0 / 3.0, 10.0);
    let (mut stops, mut problems) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let spool = ScratchDir::new("stop-spool");
        // Local store (SQLite frame store + files), 2 s HLS segments and 6 s MP4 segments so a
        // few of each are written and one of each is open at the stop.
        let mut config = json!({"recording": {"spool_path": spool.0, "hls_storage_enabled": true,
                                              "mp4_storage_type": "filesystem", "hls_segment_seconds": 2,
                                              "mp4_segment_minutes": 0.1}});
        if let Ok(text) = std::env::var("BENCH_CONFIG")
            && !text.trim().is_empty()
        {
            crate::support::harness::merge(&mut config, serde_json::from_str(&text).expect("BENCH_CONFIG"));
        }
        let mut server = Server::start_with(config, &files, launch()).await;
        for id in IDS {
            server.wait_streaming(id, Duration::from_secs(40)).await;
            server.start_recording(id, "stop-under-load").await;
        }
        let mut viewers = Viewers::new();
        for i in 0..VIEWERS {
            viewers.add(&server.ws_url(&format!("/{}/live", IDS[i % IDS.len()]))).await;
        }
        tokio::time::sleep(load_for).await;
        let pid = server.pid();
        let ffmpegs = children_named(pid, "ffmpeg");
        let frames_before = viewers.counts().0;

        let t0 = Instant::now();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        let code = server.wait_exit(Duration::from_secs(60)).await;
        let secs = t0.elapsed().as_secs_f64();
        let left: Vec<u32> = ffmpegs
            .iter()
            .copied()
            .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p) && comm(*p) == "ffmpeg")
            .collect();
        drop(viewers);

        // The next start on the same directory: it must find nothing to repair.
        let log_len = server.log().len();
        server.spawn().await;
        for id in IDS {
            server.wait_streaming(id, Duration::from_secs(40)).await;
        }
        let log = server.log();
        let next_start = &log[log_len.min(log.len())..];
        let unclean: Vec<&str> =
            next_start.lines().filter(|l| UNCLEAN_MARKS.iter().any(|m| l.contains(m))).take(3).collect();
        let resumed = next_start.matches("continuing the recording that was active before the restart").count();
        let _ = server.stop().await;

        let ok = code == Some(0) && left.is_empty() && unclean.is_empty() && resumed == IDS.len();
        println!(
            "  round {round}: SIGTERM -> exit {:.0} ms, exit code {code:?}, {} FFmpeg before, {} left after{}, \
             next start: {} unclean-stop lines, {resumed}/{} sessions resumed; viewers had {} frames; load {}  {}",
            secs * 1000.0,
            ffmpegs.len(),
            left.len(),
            if left.is_empty() { String::new() } else { format!(" {left:?}") },
            unclean.len(),
            IDS.len(),
            frames_before,
            loadavg(),
            verdict(ok)
        );
        for line in &unclean {
            println!("    {line}");
        }
        if !ok {
            problems.push(round);
        }
        stops.push(secs * 1000.0);
        for p in left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let target = Target { p50: None, p99: Some(TIMEOUT_STOP_SEC * 1000.0) };
    let note = format!(
        "{} of {ROUNDS} rounds clean (exit 0, no FFmpeg left, next start repairs nothing){}",
        ROUNDS - problems.len(),
        bench_config_note()
    );
    let label = format!(
        "stop under load (4 cameras recording, {VIEWERS} WS viewers, {:.0} s): SIGTERM -> exit",
        load_for.as_secs_f64()
    );
    print_latency(&label, &stops, Some(target), &note);
}

/// Pids of `pid`'s children (of all its threads) whose `comm` is `name`.
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|c| comm(*c) == name)
        .collect()
}

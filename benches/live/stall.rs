//! `ffmpeg-stall` (by name only; not one of the numbers, a robustness check of the
//! FFmpeg argv): FFmpeg is paused with SIGSTOP for 90 ms every 0.6 s, as a busy panel CPU
//! does to it. Afterwards the frames of the backlog reach the filters with arrival times a
//! millisecond apart; the preview must survive that without FFmpeg exiting. Counts the FFmpeg
//! restarts panelcam had to make and the frames a viewer got.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::*;
use crate::support::harness::{ffmpeg_pids_for, next_binary, ws_connect};

const STALL: Duration = Duration::from_millis(90);
const EVERY: Duration = Duration::from_millis(600);

pub async fn ffmpeg_stall() {
    let camera = reference_camera(&[]).await;
    // FFmpeg reading RTSP (`"rtsp_client": "ffmpeg"`), found by the camera's port below.
    let server = ffmpeg_reference_server(&camera).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.expect("connect to /cam/live");
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    let viewer = tokio::spawn(async move {
        while next_binary(&mut ws, Duration::from_secs(30)).await.is_some() {
            counter.fetch_add(1, Relaxed);
        }
    });
    let stalls = (scaled(1.0, 5.0).as_secs_f64() / (STALL + EVERY).as_secs_f64()).ceil() as u32;
    let start = Instant::now();
    for _ in 0..stalls {
        // The current FFmpeg: after a restart it is a new process.
        let pids: Vec<Pid> = ffmpeg_pids_for(camera.port).into_iter().map(|p| Pid::from_raw(p as i32)).collect();
        pids.iter().for_each(|p| _ = kill(*p, Signal::SIGSTOP));
        std::thread::sleep(STALL); // blocking on purpose: nothing may delay the SIGCONT
        pids.iter().for_each(|p| _ = kill(*p, Signal::SIGCONT));
        tokio::time::sleep(EVERY).await;
    }
    let secs = start.elapsed().as_secs_f64();
    viewer.abort();
    let status = server.camera_status("cam").await;
    let restarts = status["restarts"].as_u64().unwrap_or(0);
    println!(
        "FFmpeg paused {stalls}x for {} ms: panelcam restarted FFmpeg {restarts}x, the viewer got {:.1} fps  \
         (target 0 restarts)  {}{}",
        STALL.as_millis(),
        frames.load(Relaxed) as f64 / secs,
        verdict(restarts == 0),
        bench_config_note()
    );
    if restarts > 0 {
        println!("  last error: {}", status["last_error"].as_str().unwrap_or("?"));
    }
}

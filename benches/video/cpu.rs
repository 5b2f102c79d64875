//! Scenario `recording-cpu`: what recording a 1920x1080 25 fps H.264 camera costs beyond the
//! live preview, next to what the re-encoding recorder of the system we replace costs.
//!
//! Three real panelcams run side by side on one test camera (its RTSP media is shared, so all
//! three FFmpegs decode the very same packets), each with the camera file (640 px
//! MJPEG preview at 10 fps) and one live viewer:
//!
//! - preview:     recording enabled, no video storage, `hls_live: false`: FFmpeg has one output.
//! - recording:   plus HLS storage (SQLite) and 5-minute MP4 files, continuous: FFmpeg's second
//!   output is `-c:v copy` and panelcam stores every segment.
//! - re-encoding: the preview panelcam plus what the old system did to record ("Video
//!   segmenter → Buffer → FFmpeg (MP4)", reference README): its MJPEG frames fed to an FFmpeg
//!   that encodes them with libx264 (`-preset veryfast`, a cheap preset: the ratio is
//!   conservative). The frames come from panelcam's live WebSocket through a pipe — the
//!   faithful variant: the old recorder took the preview's JPEGs, it did not open a second
//!   RTSP session and decode 1080p again.
//!
//! CPU is utime+stime from /proc of panelcam (all threads) and its FFmpeg, plus the
//! re-encoding FFmpeg; the camera and this benchmark process are excluded. Measuring all
//! three over the same window cancels what the camera and a busy machine do to the numbers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::common::{camera_1080p, camera_note, ffmpeg_child, process_args};
use crate::framestore_common::{bench_seconds, clock_ticks_per_sec, loadavg, result, scaled};
use crate::live_common::{ScratchDir, cpu_ticks};
use crate::support::client::{next_binary, ws_connect};
use crate::support::harness::{Server, camera_json, merge, run_panelcam};
use crate::support::video::{ffprobe, probe_duration};

pub const TARGET_PERCENT: f64 = 2.0;

/// One panelcam of the comparison with its live viewer (and, for the old approach, the
/// re-encoding FFmpeg the viewer feeds).
struct Setup {
    label: &'static str,
    server: Server,
    _spool: ScratchDir,
    ffmpeg: u32,
    encoder: Option<Child>,
    viewer: JoinHandle<u64>,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Setup {
    async fn start(label: &'static str, recording: Value, camera: &Value, camera_port: u16, reencode: bool) -> Setup {
        // The spool in RAM like on the panel (the harness default is a directory on disk).
        let spool = ScratchDir::new("video-spool");
        let mut config = json!({"recording": {"spool_path": spool.0}});
        merge(&mut config, json!({ "recording": recording }));
        let server = Server::start(config, &[("cam", camera.clone())]).await;
        server.wait_streaming("cam", Duration::from_secs(40)).await;
        let ffmpeg = ffmpeg_child(server.pid(), camera_port);
        let mut encoder = reencode.then(|| start_encoder(&server.dir.0.join("reencoded.mp4")));
        let stdin = encoder.as_mut().and_then(|e| e.stdin.take());
        let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut ws = ws_connect(&server.ws_url("/cam/live")).await.expect("live WebSocket");
        let counter = frames.clone();
        let viewer = tokio::spawn(async move {
            let mut stdin = stdin;
            let mut n = 0;
            while let Some(jpeg) = next_binary(&mut ws, Duration::from_secs(10)).await {
                if let Some(pipe) = stdin.as_mut()
                    && pipe.write_all(&jpeg).await.is_err()
                {
                    break;
                }
                n += 1;
                counter.store(n, std::sync::atomic::Ordering::Relaxed);
            }
            // Closing the pipe lets the encoder finish its file.
            drop(stdin);
            n
        });
        Setup { label, server, _spool: spool, ffmpeg, encoder, viewer, frames }
    }

    /// (panelcam, its FFmpeg, the re-encoder) in clock ticks.
    fn ticks(&self) -> [u64; 3] {
        let encoder = self.encoder.as_ref().and_then(Child::id).map_or(0, cpu_ticks);
        [cpu_ticks(self.server.pid()), cpu_ticks(self.ffmpeg), encoder]
    }

    fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The old system's recorder: JPEGs on stdin, H.264 in MP4 out.
fn start_encoder(out: &std::path::Path) -> Child {
    #[rustfmt::skip]
    let args = [
        "-hide_banner", "-nostats", "-loglevel", "error",
        "-f", "mjpeg", "-framerate", "10", "-i", "pipe:0",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "mp4", "-y",
    ];
    Command::new("ffmpeg")
        .args(args)
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the re-encoding ffmpeg")
}

/// Checks what FFmpeg really runs with (its /proc cmdline) and what `panelcam ffmpeg-args`
/// claims; returns a one-line description of the second output.
async fn check_outputs(s: &Setup, want_copy: bool) -> String {
    let args = process_args(s.ffmpeg);
    let second = args.iter().position(|a| a == "pipe:1").map(|i| args[i + 1..].to_vec()).unwrap_or_default();
    let copies = second.windows(2).any(|w| w[0] == "-c:v" && w[1] == "copy");
    if want_copy {
        assert!(copies && second.contains(&"hls".to_string()), "{}: no `-c:v copy` HLS output in {args:?}", s.label);
    } else {
        assert!(second.is_empty(), "{}: FFmpeg has a second output: {second:?}", s.label);
    }
    let (code, stdout, stderr) =
        run_panelcam(&s.server.dir.0, &["ffmpeg-args", "cameras/cam.json", "--config", "config.json"]).await;
    assert_eq!(code, Some(0), "panelcam ffmpeg-args: {stderr}");
    let printed: Vec<&str> = stdout.lines().collect();
    let printed_second = printed.iter().position(|a| *a == "pipe:1").is_some_and(|i| i + 1 < printed.len());
    let running = if second.is_empty() {
        "FFmpeg runs with one output (MJPEG on stdout)".to_string()
    } else {
        format!("FFmpeg's second output: {}", second.join(" "))
    };
    let cli = match (printed_second, !second.is_empty()) {
        (a, b) if a == b => "`panelcam ffmpeg-args` agrees".to_string(),
        (false, true) => "`panelcam ffmpeg-args` does NOT show the second output".to_string(),
        _ => "`panelcam ffmpeg-args` shows a second output that does not run".to_string(),
    };
    format!("{running}; {cli}")
}

pub async fn recording_cpu() {
    let camera = camera_1080p().await;
    let camera_file = camera_json("/cam", &camera.url("/cam"), json!({}));
    let preview_only = json!({"enabled": true, "hls_live": false});
    let recording =
        json!({"enabled": true, "hls_storage_enabled": true, "mp4_storage_type": "filesystem", "continuous": true});
    let setups = [
        Setup::start("preview", preview_only.clone(), &camera_file, camera.port, false).await,
        Setup::start("recording", recording, &camera_file, camera.port, false).await,
        Setup::start("re-encoding", preview_only, &camera_file, camera.port, true).await,
    ];
    println!("{}; 3 panelcams on it, each 640 px MJPEG preview at 10 fps with 1 viewer", camera_note());
    for (s, copy) in setups.iter().zip([false, true, false]) {
        println!("  {}: {}", s.label, check_outputs(s, copy).await);
    }

    // Let the first segments appear and x264's lookahead fill before measuring.
    tokio::time::sleep(scaled(0.2, 6.0)).await;
    let kept0 = kept_segments(&setups[1].server).await;
    let frames0: Vec<u64> = setups.iter().map(Setup::frames).collect();
    // The window (BENCH_SECONDS) is cut into up to 5 parts so that the spread of the
    // difference shows how much of it is noise; segments are stored in bursts every 6 s, so
    // a part should span about one.
    let parts = ((bench_seconds() / 6.0).round() as usize).clamp(1, 5);
    let part = scaled(1.0 / parts as f64, 5.0);
    let mut samples: Vec<(Instant, Vec<[u64; 3]>)> = vec![(Instant::now(), setups.iter().map(Setup::ticks).collect())];
    for _ in 0..parts {
        tokio::time::sleep(part).await;
        samples.push((Instant::now(), setups.iter().map(Setup::ticks).collect()));
    }
    for s in &setups {
        assert_eq!(
            ffmpeg_child(s.server.pid(), camera.port),
            s.ffmpeg,
            "{}: FFmpeg restarted while measuring",
            s.label
        );
    }
    let kept = kept_segments(&setups[1].server).await - kept0;
    let frames: Vec<u64> = setups.iter().zip(&frames0).map(|(s, f0)| s.frames() - f0).collect();

    let hz = clock_ticks_per_sec();
    // Percent of one core of setup `i` between samples `a` and `b`, split into its parts.
    let percent = |i: usize, a: usize, b: usize| -> [f64; 3] {
        let secs = samples[b].0.duration_since(samples[a].0).as_secs_f64();
        let (t0, t1) = (samples[a].1[i], samples[b].1[i]);
        [0, 1, 2].map(|k| (t1[k] - t0[k]) as f64 / hz / secs * 100.0)
    };
    let total = |p: [f64; 3]| p.iter().sum::<f64>();
    let secs = samples[parts].0.duration_since(samples[0].0).as_secs_f64();
    for (i, s) in setups.iter().enumerate() {
        let p = percent(i, 0, parts);
        let encoder = if s.encoder.is_some() { format!(" + re-encoder {:.2} %", p[2]) } else { String::new() };
        println!(
            "  {:<12} {:6.2} % of one core = panelcam {:.2} % + its FFmpeg {:.2} %{encoder}; viewer got {:.1} fps",
            s.label,
            total(p),
            p[0],
            p[1],
            frames[i] as f64 / secs
        );
    }
    let cost = |i: usize, a: usize, b: usize| total(percent(i, a, b)) - total(percent(0, a, b));
    let spread = |i: usize| {
        let v: Vec<f64> = (0..parts).map(|k| cost(i, k, k + 1)).collect();
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{:.1} s parts: {lo:+.2} .. {hi:+.2} %", part.as_secs_f64())
    };
    let (rec, [rec_pc, rec_ff, _]) = (cost(1, 0, parts), sub(percent(1, 0, parts), percent(0, 0, parts)));
    let reenc = cost(2, 0, parts);
    let note = format!("over {secs:.0} s; {kept} segments stored meanwhile; {}; load {}", spread(1), loadavg());
    result(
        "recording (stream copy) beyond the live preview",
        format!("{rec:+.2} % of one core (panelcam {rec_pc:+.2}, FFmpeg {rec_ff:+.2})"),
        &format!("<= {TARGET_PERCENT} %"),
        Some(rec <= TARGET_PERCENT),
        &note,
    );
    result(
        "re-encoding (MJPEG -> libx264 veryfast) beyond the live preview",
        format!("{reenc:+.2} % of one core"),
        "",
        None,
        &format!("{}; {} frames encoded", spread(2), frames[2]),
    );
    // A ratio over a difference near zero says nothing; show it only when recording costs
    // measurably more than the preview (the tick resolution over the window).
    let resolution = 100.0 / hz / secs * 2.0;
    let (ratio, note) = if rec > resolution {
        (format!("{:.1}x", reenc / rec), String::new())
    } else {
        ("n/a".to_string(), format!("(recording's cost is below the {resolution:.2} % resolution of the counters)"))
    };
    result("re-encoding / recording cost ratio", ratio, "", None, &note);

    let encoder_out = setups[2].server.dir.0.join("reencoded.mp4");
    for mut s in setups {
        s.viewer.abort();
        if let Some(mut encoder) = s.encoder.take() {
            // Let the encoder finish its file (the pipe closed with the viewer), to show it
            // produced real video.
            let _ = tokio::time::timeout(Duration::from_secs(10), encoder.wait()).await;
            let probe = ffprobe(&encoder_out.to_string_lossy()).await;
            let v = &probe["streams"][0];
            println!(
                "  the re-encoder's file: {} {}x{}, {:.1} s",
                v["codec_name"].as_str().unwrap_or("?"),
                v["width"],
                v["height"],
                probe_duration(&probe)
            );
        }
        drop(s.server);
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

async fn kept_segments(server: &Server) -> u64 {
    server.camera_status("cam").await["video"]["segments_kept"].as_u64().unwrap_or(0)
}

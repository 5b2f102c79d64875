//! Scenario 1: glass-to-glass latency. The test camera stamps the wall-clock time into every
//! frame (a barcode); a client decodes it from each JPEG it receives. Measured through the
//! media router (panelcam's RTSP client, the on-demand transcoder fed a delimiter after each
//! access unit; issue 11), through panelcam with FFmpeg reading RTSP (`"rtsp_client":
//! "ffmpeg"`, as before issue 11) and for FFmpeg alone with that panelcam's exact argv (the
//! floor of the FFmpeg path). One WebSocket client on `/cam/live` each.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::harness::{Server, next_binary, ws_connect};

/// Issue 1's target, for panelcam with FFmpeg reading RTSP.
pub const TARGET: Target = Target { p50: Some(70.0), p99: Some(120.0) };
/// Issue 11's target for the MJPEG path through the media router.
pub const ROUTER_TARGET: Target = Target { p50: Some(15.0), p99: None };
/// Frames of the first seconds are not counted: FFmpeg drains what it buffered while probing.
pub const WARMUP: Duration = Duration::from_secs(2);

/// Latencies of one measurement.
pub struct Run {
    pub latencies: Vec<f64>,
    pub frames: usize,
    pub no_barcode: usize,
    pub seconds: f64,
    /// Printed after the numbers.
    pub note: String,
}

impl Run {
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds.max(1e-9)
    }

    fn new(measure: Duration) -> Run {
        Run { latencies: Vec::new(), frames: 0, no_barcode: 0, seconds: measure.as_secs_f64(), note: String::new() }
    }

    pub fn note(&self) -> String {
        let mut note = format!("{:.1} fps", self.fps());
        if self.no_barcode > 0 {
            note.push_str(&format!(", {} frames without a readable barcode", self.no_barcode));
        }
        note + &self.note
    }

    fn add(&mut self, received_ms: f64, jpeg: &[u8]) {
        self.frames += 1;
        match capture_ms(jpeg) {
            Some(captured) => self.latencies.push(received_ms - captured as f64),
            None => self.no_barcode += 1,
        }
    }
}

/// `latency`: the router, then panelcam with FFmpeg reading RTSP, then FFmpeg alone, one
/// after the other on the same camera.
pub async fn glass_to_glass() {
    let measure = scaled(0.5, 5.0);
    let camera = reference_camera(&["--barcode"]).await;

    let mut server = reference_server(&camera).await;
    let mut router = measure_panelcam(&server, measure).await;
    router.note.push_str(&restarts_note(&server, &["cam"]).await);
    server.stop().await;
    drop(server);

    let mut server = ffmpeg_reference_server(&camera).await;
    let server_spool = server.spool.0.clone();
    let args = running_ffmpeg_args(camera.port);
    println!("  FFmpeg argv (rtsp_client \"ffmpeg\", also run alone): {}{}", args.join(" "), bench_config_note());
    let mut panelcam = measure_panelcam(&server, measure).await;
    panelcam.note.push_str(&restarts_note(&server, &["cam"]).await);
    server.stop().await;
    drop(server);
    // FFmpeg alone writes its HLS segments (if any) to a spool of its own.
    let floor_spool = ScratchDir::new("floor");
    let args = move_spool(&args, &server_spool, &floor_spool.0);
    let floor = tokio::task::spawn_blocking(move || measure_ffmpeg(&args, measure)).await.unwrap();

    let r = print_latency(
        "glass-to-glass latency (media router, MJPEG WS client)",
        &router.latencies,
        Some(ROUTER_TARGET),
        &router.note(),
    );
    let a = print_latency(
        "glass-to-glass latency (rtsp_client \"ffmpeg\", MJPEG WS client)",
        &panelcam.latencies,
        Some(TARGET),
        &panelcam.note(),
    );
    if let (Some(r), Some(a)) = (r, a) {
        println!(
            "media router against FFmpeg reading RTSP: p50 {:+.1} ms  p99 {:+.1} ms  (load {})",
            r.p50 - a.p50,
            r.p99 - a.p99,
            loadavg()
        );
    }
    match floor {
        Ok(floor) => {
            let b = print_latency(
                "glass-to-glass latency (FFmpeg alone, same argv)",
                &floor.latencies,
                None,
                &floor.note(),
            );
            if let (Some(a), Some(b)) = (a, b) {
                println!(
                    "panelcam (rtsp_client \"ffmpeg\") adds to FFmpeg: p50 {:+.1} ms  p99 {:+.1} ms  (load {})",
                    a.p50 - b.p50,
                    a.p99 - b.p99,
                    loadavg()
                );
            }
        }
        Err(e) => println!("glass-to-glass latency (FFmpeg alone, same argv): FAILED: {e}"),
    }
}

/// One WebSocket client on `/cam/live` for `WARMUP + measure`.
pub async fn measure_panelcam(server: &Server, measure: Duration) -> Run {
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.expect("connect to /cam/live");
    let mut run = Run::new(measure);
    let start = Instant::now();
    while start.elapsed() < WARMUP + measure {
        let Some(jpeg) = next_binary(&mut ws, Duration::from_secs(5)).await else {
            println!("  (panelcam: no frame for 5 s)");
            break;
        };
        let received = unix_ms();
        if start.elapsed() >= WARMUP {
            run.add(received, &jpeg);
        }
    }
    run
}

/// Runs `ffmpeg <args>` (MJPEG on stdout), stamps each complete JPEG the moment its last byte
/// is read, and measures for `WARMUP + measure` from the first frame. Blocking.
pub fn measure_ffmpeg(args: &[String], measure: Duration) -> Result<Run, String> {
    let mut child = Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let pid = child.id();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let frames = split_jpegs(child.stdout.take().unwrap());

    let mut run = Run::new(measure);
    let mut first: Option<Instant> = None;
    let result = loop {
        let (received, jpeg) = match frames.recv_timeout(Duration::from_secs(10)) {
            Ok(frame) => frame,
            Err(mpsc::RecvTimeoutError::Timeout) => break Err("no frame for 10 s".to_string()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(format!("FFmpeg ended (after {} measured frames)", run.frames));
            }
        };
        let since_first = first.get_or_insert_with(Instant::now).elapsed();
        if since_first >= WARMUP {
            run.add(received, &jpeg);
        }
        if since_first >= WARMUP + measure {
            break Ok(());
        }
    };
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let stderr = stderr_reader.join().unwrap_or_default();
    match result {
        Ok(()) => Ok(run),
        Err(e) => {
            // The first few distinct lines: FFmpeg repeats its complaint for every packet.
            let mut said: Vec<&str> = Vec::new();
            for line in stderr.lines() {
                if !said.contains(&line) && said.len() < 3 {
                    said.push(line);
                }
            }
            Err(format!("{e}; ffmpeg said: {}", said.join(" | ")))
        }
    }
}

/// Cuts FFmpeg's stdout into JPEGs on a thread; each comes with the wall-clock ms at which
/// the read that completed it returned.
pub fn split_jpegs(mut out: impl Read + Send + 'static) -> mpsc::Receiver<(f64, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut buf, mut chunk) = (Vec::<u8>::new(), vec![0u8; 1 << 16]);
        loop {
            let n = match out.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let received = unix_ms();
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match memchr::memmem::find(&buf, &[0xFF, 0xD8]) {
                    Some(soi) => drop(buf.drain(..soi)),
                    None => {
                        buf.drain(..buf.len().saturating_sub(1));
                        break;
                    }
                }
                let Some(len) = jpeg_len(&buf) else { break };
                let jpeg: Vec<u8> = buf.drain(..len).collect();
                if tx.send((received, jpeg)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

//! `h264-latency`: glass-to-glass of the H.264 passthrough (issue 11), without a browser. A
//! client reads `/cam/video` from the barcode camera and stamps each fragment when its
//! message is complete; its sample goes, as Annex B with an access unit delimiter after it,
//! into an FFmpeg H.264 decoder writing gray frames, and the barcode is read from those.
//!
//! Two numbers: fragment arrival − barcode time (the server's part of the WebCodecs target:
//! what is left of 40 ms is the page's decode and paint), and decoded frame − barcode time
//! (FFmpeg's decoder standing in for the browser's). The k-th decoded frame belongs to the
//! k-th fed sample (Baseline: no reordering; `-fps_mode passthrough`: no frame dropped or
//! repeated); that is checked by the RTP time of each sample, which must keep a constant
//! distance to its barcode.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::common::*;
use crate::latency::WARMUP;
use crate::support::barcode::decode_barcode;
use crate::support::h264::{VideoMsg, next_video};
use crate::support::harness::ws_connect;

/// The whole path's target in Chromium (WebCodecs); the server's part must leave room for it.
pub const TARGET: Target = Target { p50: Some(40.0), p99: None };
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// nal_unit_type 9 (access unit delimiter), primary_pic_type 7 (any slice type).
const AUD: [u8; 2] = [0x09, 0xF0];

/// One fed sample: when its message was complete, its RTP time, and whether it is measured.
struct Fed {
    arrival_ms: f64,
    decode_time: u64,
    counted: bool,
}

/// One frame out of FFmpeg: when its last byte was read, and its barcode.
struct Decoded {
    done_ms: f64,
    barcode: Option<u64>,
}

/// The SPS and PPS NAL units of an `avcC` box payload (ISO/IEC 14496-15 5.3.3.1).
fn avcc_parameter_sets(avcc: &[u8]) -> Option<Vec<&[u8]>> {
    let mut at = 5;
    let mut sets = Vec::new();
    for mask in [0x1F, 0xFF] {
        let count = avcc.get(at)? & mask;
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
            sets.push(avcc.get(at + 2..at + 2 + len)?);
            at += 2 + len;
        }
    }
    Some(sets)
}

/// An FFmpeg H.264 decoder: Annex B in on stdin (written by a thread of its own, so the
/// WebSocket reader never blocks), gray frames out on stdout (read by another).
struct Decoder {
    input: Option<mpsc::Sender<Vec<u8>>>,
    frames: mpsc::Receiver<Decoded>,
    /// FFmpeg's stderr, read to the end on a thread (it complains once about the lone
    /// delimiter at the end of the input).
    stderr: thread::JoinHandle<String>,
    pid: u32,
    child: std::process::Child,
}

impl Decoder {
    fn start(width: usize, height: usize) -> Decoder {
        // The transcoder's input options (src/camera/argv.rs), and no conversion but to gray.
        // Output `-threads 1`: FFmpeg's rawvideo encoder is frame-threaded and otherwise holds
        // each frame until the next one comes (measured: decode p50 41.8 ms, 1.8 ms with it).
        let args = "-hide_banner -nostdin -loglevel error -probesize 32 -analyzeduration 0 -flags low_delay \
                    -f h264 -i pipe:0 -fps_mode passthrough -threads 1 -f rawvideo -pix_fmt gray pipe:1";
        let mut child = Command::new("ffmpeg")
            .args(args.split_whitespace())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start ffmpeg (the H.264 decoder)");
        let pid = child.id();
        let mut errors = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = errors.read_to_string(&mut text);
            text
        });
        let (input, samples) = mpsc::channel::<Vec<u8>>();
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            while let Ok(bytes) = samples.recv() {
                if stdin.write_all(&bytes).is_err() {
                    return;
                }
            }
        });
        let (tx, frames) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut frame = vec![0u8; width * height];
            while stdout.read_exact(&mut frame).is_ok() {
                let done_ms = unix_ms();
                let barcode = decode_barcode(&frame, width, height);
                if tx.send(Decoded { done_ms, barcode }).is_err() {
                    return;
                }
            }
        });
        Decoder { input: Some(input), frames, stderr, pid, child }
    }

    fn feed(&self, bytes: Vec<u8>) {
        if let Some(input) = &self.input {
            let _ = input.send(bytes);
        }
    }

    /// Closes FFmpeg's input and collects every frame it still writes (at most `wait`);
    /// returns the frames and what FFmpeg said on stderr.
    fn finish(mut self, wait: Duration) -> (Vec<Decoded>, String) {
        self.input = None;
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Ok(d) = self.frames.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            out.push(d);
        }
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        (out, self.stderr.join().unwrap_or_default())
    }
}

pub async fn h264_latency() {
    let measure = scaled(2.0 / 3.0, 5.0);
    let camera = reference_camera(&["--barcode"]).await;
    let server = reference_server(&camera).await;
    let mut ws = ws_connect(&server.ws_url("/cam/video")).await.expect("connect to /cam/video");
    let (info, _) = match next_video(&mut ws, Duration::from_secs(10)).await {
        Some(VideoMsg::Init { info, segment }) => (info, segment),
        other => panic!("expected the init message first, got {other:?}"),
    };
    let codec = info["codec"].as_str().unwrap_or_default().to_string();
    assert!(codec.starts_with("avc1"), "the barcode camera sends H.264, got {info}");
    let (width, height) = (info["width"].as_u64().unwrap() as usize, info["height"].as_u64().unwrap() as usize);
    let description = base64::engine::general_purpose::STANDARD
        .decode(info["description"].as_str().unwrap_or_default())
        .expect("description is base64");
    let params: Vec<Vec<u8>> =
        avcc_parameter_sets(&description).expect("description is an avcC").into_iter().map(<[u8]>::to_vec).collect();

    let decoder = Decoder::start(width, height);
    let mut fed: VecDeque<Fed> = VecDeque::new();
    let (mut first_sample, mut inits) = (true, 1);
    let start = Instant::now();
    while start.elapsed() < WARMUP + measure {
        let Some(msg) = next_video(&mut ws, Duration::from_secs(5)).await else {
            println!("  (no fragment for 5 s, or the socket closed)");
            break;
        };
        let arrival_ms = unix_ms();
        let fragment = match msg {
            VideoMsg::Fragment(f) => f,
            VideoMsg::Init { .. } => {
                inits += 1; // the test camera never changes its parameters; counted below
                continue;
            }
            VideoMsg::Unavailable { reason, .. } => panic!("no passthrough: {reason}"),
        };
        let mut annex_b = Vec::with_capacity(fragment.sample.len() + 64);
        if first_sample {
            for set in &params {
                annex_b.extend_from_slice(&START_CODE);
                annex_b.extend_from_slice(set);
            }
            first_sample = false;
        }
        for nal in crate::support::h264::nal_units(&fragment.sample) {
            annex_b.extend_from_slice(&START_CODE);
            annex_b.extend_from_slice(nal);
        }
        annex_b.extend_from_slice(&START_CODE);
        annex_b.extend_from_slice(&AUD);
        fed.push_back(Fed { arrival_ms, decode_time: fragment.decode_time, counted: start.elapsed() >= WARMUP });
        decoder.feed(annex_b);
    }
    drop(ws);
    let (decoded, stderr) = tokio::task::spawn_blocking(|| decoder.finish(Duration::from_secs(2))).await.unwrap();

    let (mut arrival, mut full, mut decode, mut offsets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut no_barcode = 0;
    for (f, d) in fed.iter().zip(&decoded) {
        let Some(barcode) = d.barcode else {
            no_barcode += usize::from(f.counted);
            continue;
        };
        let barcode = barcode as f64;
        // Barcode time minus RTP time: constant (plus the camera's jitter) while aligned.
        offsets.push(barcode - f.decode_time as f64 / 90.0);
        if f.counted {
            arrival.push(f.arrival_ms - barcode);
            full.push(d.done_ms - barcode);
            decode.push(d.done_ms - f.arrival_ms);
        }
    }
    // Spread of the offset: a frame interval (40 ms) would mean frames and samples slipped.
    let spread = offsets.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - offsets.iter().copied().fold(f64::INFINITY, f64::min);
    let note = format!(
        "{} samples fed, {} frames decoded, barcode-RTP spread {:.1} ms{}{}; load {}",
        fed.len(),
        decoded.len(),
        spread,
        if no_barcode > 0 { format!(", {no_barcode} without a readable barcode") } else { String::new() },
        if inits > 1 { format!(", {} init messages", inits) } else { String::new() },
        loadavg()
    );
    print_latency("h264-latency: barcode -> fragment at the /video client", &arrival, Some(TARGET), &note);
    print_latency("h264-latency: barcode -> frame decoded by FFmpeg at the client", &full, Some(TARGET), "");
    print_latency("  of which FFmpeg's decode (fragment -> decoded frame)", &decode, None, "");
    if spread > 20.0 || decoded.len() + 2 < fed.len() {
        println!("  [SAMPLES AND FRAMES MAY BE MISALIGNED: the numbers above are not trustworthy]");
        let said: Vec<&str> = stderr.lines().take(3).collect();
        println!("  FFmpeg said: {}", said.join(" | "));
    }
    let restarts = restarts_note(&server, &["cam"]).await;
    if !restarts.is_empty() {
        println!("{}", restarts.trim_start());
    }
}

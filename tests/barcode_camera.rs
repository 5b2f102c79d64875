//! End-to-end check of the test tooling itself: the RTSP test camera
//! (`scripts/test-camera.py --barcode`) stamps wall-clock time into frames and
//! `support/barcode.rs` reads it back after H.264 -> RTSP -> ffmpeg -> scale
//! -> JPEG. If this test fails, latency tests built on the pair are void.
#[path = "support/barcode.rs"]
mod barcode;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(30);
const FRAMES: usize = 5;
const MAX_SKEW_MS: u64 = 2000;

/// Kills the child when dropped, so a failing assertion never leaks a camera
/// or ffmpeg process (they would keep the port busy and burn CPU).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Asks the OS for a free port. Racy in theory (another process could grab
/// it before the camera binds), but the camera then exits instead of hanging.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the camera and waits for its `READY <url>` line.
fn start_camera(port: u16) -> (KillOnDrop, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-camera.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([script, "--barcode", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit()) // camera diagnostics show up on failure
        .spawn()
        .expect("spawn /usr/bin/python3 scripts/test-camera.py");
    let stdout = child.stdout.take().unwrap();
    let guard = KillOnDrop(child);
    // A thread reads stdout so the wait can time out; it keeps draining
    // until EOF so the camera never blocks on a full pipe.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("READY ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(READY_TIMEOUT).expect("camera did not print READY within 20 s");
    (guard, url)
}

/// Reads ffmpeg's MJPEG stream and sends each complete JPEG together with the
/// wall-clock time (ms) at which its last byte arrived. Splitting on SOI/EOI
/// markers is safe for ffmpeg's output: entropy-coded data byte-stuffs 0xFF,
/// and ffmpeg writes no embedded thumbnails.
fn split_jpegs(mut out: ChildStdout) -> Receiver<(u64, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 64 * 1024]);
        loop {
            let n = match out.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let arrived = now_ms();
            buf.extend_from_slice(&chunk[..n]);
            while let Some(start) = buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
                let Some(end) = buf[start + 2..].windows(2).position(|w| w == [0xFF, 0xD9]) else {
                    break;
                };
                let end = start + 2 + end + 2;
                let jpeg = buf[start..end].to_vec();
                buf.drain(..end);
                if tx.send((arrived, jpeg)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Decodes a JPEG to a luma plane, returning (luma, width, height).
fn jpeg_luma(jpeg: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    let pixels = dec.decode().expect("decode JPEG");
    let info = dec.info().unwrap();
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let luma = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels,
        // jpeg-decoder converts YCbCr to RGB; BT.601 luma back from it.
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8)
            .collect(),
        other => panic!("unexpected JPEG pixel format {other:?}"),
    };
    (luma, w, h)
}

#[test]
fn camera_barcode_survives_rtsp_h264_and_jpeg() {
    let (_camera, url) = start_camera(free_port());
    // Plain ffmpeg defaults on purpose (no -fflags nobuffer etc.): while it
    // probes the stream it buffers ~1 s of frames, so the first frames out
    // are ~1.1 s old. That is the worst case the 2 s bound must cover.
    let out_args = format!("-frames:v {FRAMES} -vf scale=640:-1 -q:v 5 -f image2pipe -c:v mjpeg -");
    let mut ffmpeg = Command::new("ffmpeg")
        .args("-nostdin -v error -rtsp_transport tcp -i".split(' '))
        .arg(&url)
        .args(out_args.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ffmpeg");
    let frames_rx = split_jpegs(ffmpeg.stdout.take().unwrap());
    let _ffmpeg = KillOnDrop(ffmpeg);

    let deadline = Instant::now() + CAPTURE_TIMEOUT;
    let mut stamps: Vec<u64> = Vec::new();
    while stamps.len() < FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        let (arrived, jpeg) = frames_rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("got {} of {FRAMES} frames from {url}: {e}", stamps.len()));
        let (luma, w, h) = jpeg_luma(&jpeg);
        assert_eq!((w, h), (640, 360), "ffmpeg scale=640:-1 of the 1280x720 camera");
        let ts = barcode::decode_barcode(&luma, w, h)
            .unwrap_or_else(|| panic!("frame {} has no valid barcode", stamps.len()));
        // Camera and test share the host clock, so this is the glass-to-glass
        // latency of camera encode + RTSP + ffmpeg decode/scale/JPEG.
        eprintln!("frame {}: ts {ts}, arrived +{} ms", stamps.len(), arrived as i64 - ts as i64);
        assert!(
            arrived.abs_diff(ts) <= MAX_SKEW_MS,
            "barcode {ts} is {} ms away from arrival time {arrived}",
            arrived as i64 - ts as i64
        );
        if let Some(&prev) = stamps.last() {
            assert!(ts > prev, "timestamps not increasing: {prev} then {ts}");
        }
        stamps.push(ts);
    }
}

/// Unit tests of the barcode codec; here rather than in support/ so they run once, not in
/// every test binary that includes the harness.
mod barcode_unit {
    use super::barcode::*;

    const TS: u64 = 1_763_717_000_123; // a 2025 timestamp in ms

    /// A WxH grey frame with the band drawn in its top rows.
    fn frame(ts: u64, w: usize, h: usize) -> Vec<u8> {
        let mut img = vec![128u8; w * h];
        let row = encode_barcode_row(ts, w);
        for y in 0..band_rows(h) {
            img[y * w..(y + 1) * w].copy_from_slice(&row);
        }
        img
    }

    /// 2:1 box downscale, 3x3 box blur, then +-12 of deterministic noise:
    /// roughly what ffmpeg's scaler plus JPEG at q 5 do to the band.
    fn degrade(img: &[u8], w: usize, h: usize) -> (Vec<u8>, usize, usize) {
        let (w2, h2) = (w / 2, h / 2);
        let px = |x: usize, y: usize| u32::from(img[y * w + x]);
        let small: Vec<u8> = (0..w2 * h2)
            .map(|i| {
                let (x, y) = (2 * (i % w2), 2 * (i / w2));
                ((px(x, y) + px(x + 1, y) + px(x, y + 1) + px(x + 1, y + 1)) / 4) as u8
            })
            .collect();
        let mut seed = 0x2545_F491_u32;
        let out = (0..w2 * h2)
            .map(|i| {
                let (x, y) = (i % w2, i / w2);
                let mut sum = 0u32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let xx = (x + dx).saturating_sub(1).min(w2 - 1);
                        let yy = (y + dy).saturating_sub(1).min(h2 - 1);
                        sum += u32::from(small[yy * w2 + xx]);
                    }
                }
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 24) as i32 % 25 - 12;
                (sum as i32 / 9 + noise).clamp(0, 255) as u8
            })
            .collect();
        (out, w2, h2)
    }

    #[test]
    fn round_trip_full_size() {
        for (w, h) in [(1280, 720), (1920, 1080), (640, 360), (1000, 562), (64, 36)] {
            assert_eq!(decode_barcode(&frame(TS, w, h), w, h), Some(TS), "{w}x{h}");
        }
    }

    #[test]
    fn round_trip_downscaled_blurred_noisy() {
        for ts in [TS, 0, (1 << 48) - 1, 0x5555_AAAA_5555, TS + 40] {
            let (img, w, h) = degrade(&frame(ts, 1280, 720), 1280, 720);
            assert_eq!((w, h), (640, 360));
            assert_eq!(decode_barcode(&img, w, h), Some(ts), "ts {ts:#x}");
        }
    }

    #[test]
    fn check_word_rejects_garbage() {
        let (w, h) = (640, 360);
        assert_eq!(decode_barcode(&vec![16; w * h], w, h), None);
        assert_eq!(decode_barcode(&vec![235; w * h], w, h), None);
        assert_eq!(decode_barcode(&vec![128; w * h], w, h), None);
        // Flip one timestamp cell: the check word must catch it.
        let mut img = frame(TS, w, h);
        let (x0, x1) = cell_span(40, w);
        for y in 0..band_rows(h) {
            for v in &mut img[y * w + x0..y * w + x1] {
                *v = if *v > 128 { Y_BLACK } else { Y_WHITE };
            }
        }
        assert_eq!(decode_barcode(&img, w, h), None);
    }

    #[test]
    fn rejects_bad_dimensions() {
        assert_eq!(decode_barcode(&[0; 100], 640, 360), None);
        assert_eq!(decode_barcode(&[0; 63 * 10], 63, 10), None);
        assert_eq!(decode_barcode(&[], 0, 0), None);
    }

    #[test]
    fn row_layout() {
        let row = encode_barcode_row(TS, 1280);
        assert_eq!(row.len(), 1280);
        // 1280/64 = 20 px per cell; cell 0 is bit 47 of a 2025 timestamp = 0.
        assert!(row[..20].iter().all(|&v| v == Y_BLACK));
        assert!(row.iter().all(|&v| v == Y_BLACK || v == Y_WHITE));
    }
}

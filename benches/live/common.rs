//! Shared pieces of the live benchmarks: durations, statistics, result lines, reading the
//! barcode out of a JPEG, process counters and the reference setup.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::barcode;
use crate::support::harness::{Launch, Server, TestCamera, camera_json, ffmpeg_pids_for, merge};

/// `BENCH_SECONDS` (default 30): the main measuring time. Every duration scales with it.
pub fn bench_seconds() -> f64 {
    std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(30.0)
}

/// `fraction` of `BENCH_SECONDS`, at least `min` seconds.
pub fn scaled(fraction: f64, min: f64) -> Duration {
    Duration::from_secs_f64((bench_seconds() * fraction).max(min))
}

/// Wall-clock time in milliseconds since the Unix epoch, with sub-millisecond resolution.
/// The test camera's barcode and the fake FFmpeg's stamps use the same clock.
pub fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as f64 / 1e6
}

/// The test camera of the issue: 1280x720 H.264 at 25 fps, plus `extra` (e.g. `--barcode`),
/// plus `BENCH_CAMERA_ARGS` for experiments (e.g. `--fps 50`; later arguments win).
pub async fn reference_camera(extra: &[&str]) -> TestCamera {
    let mut args = vec!["--width", "1280", "--height", "720", "--fps", "25"];
    args.extend_from_slice(extra);
    let env = std::env::var("BENCH_CAMERA_ARGS").unwrap_or_default();
    args.extend(env.split_whitespace());
    TestCamera::start(&args).await
}

/// The camera file (640 px wide MJPEG at 10 fps, `reconnect_interval` 1), with
/// `BENCH_CAMERA_FFMPEG` (a JSON object) merged into its `ffmpeg` section: that is how a run
/// tries FFmpeg options end to end without changing panelcam's defaults.
pub fn reference_camera_file(path: &str, url: &str) -> Value {
    let mut extra = match std::env::var("BENCH_CAMERA_FFMPEG") {
        Ok(text) if !text.trim().is_empty() => {
            let ffmpeg: Value = serde_json::from_str(&text).expect("BENCH_CAMERA_FFMPEG must be a JSON object");
            json!({ "ffmpeg": ffmpeg })
        }
        _ => json!({}),
    };
    // BENCH_CAMERA_EXTRA: more of the camera file, e.g. `{"mqtt": {"publish_interval": 0}}`.
    if let Ok(text) = std::env::var("BENCH_CAMERA_EXTRA")
        && !text.trim().is_empty()
    {
        merge(&mut extra, serde_json::from_str(&text).expect("BENCH_CAMERA_EXTRA must be a JSON object"));
    }
    camera_json(path, url, extra)
}

/// A directory removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    /// A fresh directory in RAM (`/dev/shm`, like the panel's spool) or else the temp dir.
    pub fn new(tag: &str) -> ScratchDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        let n = N.fetch_add(1, Relaxed);
        let dir = base.join(format!("panelcam-bench-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// panelcam as shipped (config.json `{}`), except for a private HLS spool (the default
/// `/dev/shm/panelcam` is shared by every panelcam on the machine), plus `BENCH_CONFIG` (a JSON
/// object) merged into config.json, e.g. `{"recording": {"enabled": false}}`.
pub struct Panelcam {
    pub server: Server,
    pub spool: ScratchDir,
}

impl std::ops::Deref for Panelcam {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for Panelcam {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

/// How panelcam is started: `PANELCAM_BIN=<path>` runs a prebuilt binary (e.g. the x86_64 musl
/// release build) instead of this bench build's, `PANELCAM_RUNNER` (e.g. `qemu-aarch64-static`,
/// split at whitespace) goes in front of it. Neither set: cargo's bench-profile binary.
pub fn launch() -> Launch {
    let bin = std::env::var("PANELCAM_BIN").ok().filter(|b| !b.trim().is_empty());
    let runner = std::env::var("PANELCAM_RUNNER").unwrap_or_default();
    let mut program: Vec<String> = runner.split_whitespace().map(String::from).collect();
    match bin {
        Some(bin) => {
            let path = std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("PANELCAM_BIN={bin}: {e}"));
            program.push(path.to_string_lossy().into_owned());
        }
        None if !program.is_empty() => program.push(env!("CARGO_BIN_EXE_panelcam").to_string()),
        None => {}
    }
    Launch { program, ..Launch::default() }
}

/// The experiment knobs that change what runs, printed next to results ("" when none is set).
pub fn bench_config_note() -> String {
    [
        "BENCH_CONFIG",
        "BENCH_CAMERA_FFMPEG",
        "BENCH_CAMERA_EXTRA",
        "BENCH_CAMERA_ARGS",
        "PANELCAM_BIN",
        "PANELCAM_RUNNER",
        "BENCH_TLS_SUITE",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()).map(|v| format!("  {k}={v}")))
    .collect()
}

pub async fn start_panelcam(cameras: &[(&str, Value)]) -> Panelcam {
    start_panelcam_with(cameras, json!({}), None).await
}

/// [`start_panelcam`] with `config` merged into config.json before `BENCH_CONFIG`, reached over
/// TLS with `client_tls` if given (then `config` must switch `server.tls` on).
pub async fn start_panelcam_with(
    cameras: &[(&str, Value)],
    config: Value,
    client_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Panelcam {
    let spool = ScratchDir::new("spool");
    let mut merged = json!({"recording": {"spool_path": spool.0}});
    merge(&mut merged, config);
    if let Ok(text) = std::env::var("BENCH_CONFIG")
        && !text.trim().is_empty()
    {
        merge(&mut merged, serde_json::from_str(&text).expect("BENCH_CONFIG must be a JSON object"));
    }
    let server = Server::start_with(merged, cameras, Launch { client_tls, ..launch() }).await;
    for (id, _) in cameras {
        server.wait_streaming(id, Duration::from_secs(40)).await;
    }
    Panelcam { server, spool }
}

/// "" if panelcam never had to restart the cameras' FFmpeg, else how often and why: a
/// restart costs seconds of video and shows up in every number measured across it.
pub async fn restarts_note(server: &Server, ids: &[&str]) -> String {
    let mut notes = Vec::new();
    for id in ids {
        let status = server.camera_status(id).await;
        let restarts = status["restarts"].as_u64().unwrap_or(0);
        if restarts > 0 {
            notes.push(format!("{id}: {restarts}x, last error: {}", status["last_error"].as_str().unwrap_or("?")));
        }
    }
    if notes.is_empty() { String::new() } else { format!("  FFMPEG RESTARTED ({})", notes.join("; ")) }
}

/// panelcam with one camera `cam` on the reference camera, streaming. Since issue 11 that is
/// panelcam's own RTSP client (H.264 passthrough, JPEGs from the on-demand transcoder).
pub async fn reference_server(camera: &TestCamera) -> Panelcam {
    start_panelcam(&[("cam", reference_camera_file("/cam", &camera.url("/cam")))]).await
}

/// [`reference_camera_file`] read by FFmpeg as before issue 11 (`"rtsp_client": "ffmpeg"`:
/// FFmpeg reads RTSP and makes JPEGs all the time).
pub fn ffmpeg_camera_file(path: &str, url: &str) -> Value {
    let mut file = reference_camera_file(path, url);
    merge(&mut file, json!({"rtsp_client": "ffmpeg"}));
    file
}

/// [`reference_server`] with FFmpeg reading the camera ([`ffmpeg_camera_file`]): for the
/// scenarios about FFmpeg's RTSP input and for the "before" numbers of issue 11.
pub async fn ffmpeg_reference_server(camera: &TestCamera) -> Panelcam {
    start_panelcam(&[("cam", ffmpeg_camera_file("/cam", &camera.url("/cam")))]).await
}

/// The arguments (without the program) of the FFmpeg that panelcam runs for the camera on
/// `camera_port`, read from `/proc`: exactly what runs, whatever `panelcam ffmpeg-args` says.
pub fn running_ffmpeg_args(camera_port: u16) -> Vec<String> {
    let pids = ffmpeg_pids_for(camera_port);
    assert_eq!(pids.len(), 1, "expected one FFmpeg on camera port {camera_port}, found {pids:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[0])).expect("read FFmpeg's cmdline");
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    cmdline.split(|b| *b == 0).skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// `args` with the spool directory `from` replaced by `to` (so FFmpeg alone writes its HLS
/// segments elsewhere); creates the directories the replaced paths need.
pub fn move_spool(args: &[String], from: &Path, to: &Path) -> Vec<String> {
    let (from, to) = (from.to_string_lossy(), to.to_string_lossy());
    args.iter()
        .map(|a| {
            let moved = a.replace(from.as_ref(), to.as_ref());
            if moved != *a
                && let Some(parent) = Path::new(&moved).parent()
            {
                let _ = std::fs::create_dir_all(parent);
            }
            moved
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics and result lines.

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Summary { n: v.len(), p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: v[v.len() - 1] })
    }
}

/// A latency target: p50 and/or p99 upper bounds in ms.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl Target {
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.p50 {
            parts.push(format!("p50 <= {p}"));
        }
        if let Some(p) = self.p99 {
            parts.push(format!("p99 <= {p}"));
        }
        format!("target {} ms", parts.join(", "))
    }

    pub fn met(&self, s: &Summary) -> bool {
        self.p50.is_none_or(|t| s.p50 <= t) && self.p99.is_none_or(|t| s.p99 <= t)
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "[ok]" } else { "[MISSED]" }
}

/// One result line: `label: p50 .. p90 .. p99 .. max ..  (target ..)  n=..  [ok]`.
pub fn print_latency(label: &str, samples: &[f64], target: Option<Target>, note: &str) -> Option<Summary> {
    let Some(s) = Summary::of(samples) else {
        println!("{label}: NO SAMPLES {note}");
        return None;
    };
    let target_text = target.map(|t| format!("  ({})", t.text())).unwrap_or_default();
    let mark = target.map(|t| format!("  {}", verdict(t.met(&s)))).unwrap_or_default();
    println!(
        "{label}: p50 {} ms  p90 {} ms  p99 {} ms  max {} ms{target_text}  n={}{}{mark}",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max),
        s.n,
        if note.is_empty() { String::new() } else { format!("  {note}") },
    );
    Some(s)
}

/// Milliseconds with two decimals below 10 ms, one above.
pub fn ms(v: f64) -> String {
    if v.abs() < 10.0 { format!("{v:.2}") } else { format!("{v:.1}") }
}

/// The 1-minute load average, printed with results: the machine is shared, and a busy
/// neighbour shows up in every latency number.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// JPEGs and barcodes.

/// The capture time (Unix ms) stamped by `test-camera.py --barcode`, or `None` if the JPEG
/// does not decode or carries no valid barcode.
pub fn capture_ms(jpeg: &[u8]) -> Option<u64> {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let pixels = d.decode().ok()?;
    let info = d.info()?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let luma: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels,
        // jpeg-decoder converts YCbCr to RGB (its "no conversion" mode is broken for
        // subsampled chroma); BT.601 luma back from it.
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8)
            .collect(),
        _ => return None,
    };
    barcode::decode_barcode(&luma, w, h)
}

/// Length of the complete JPEG at the start of `buf` (which begins with SOI), or `None` if
/// more bytes are needed. Walks the header segments by their lengths, then scans the
/// entropy-coded data for a marker other than stuffing (`FF 00`) and restarts (`FF D0-D7`).
pub fn jpeg_len(buf: &[u8]) -> Option<usize> {
    let mut p = 2;
    loop {
        while buf.get(p)? == &0xFF && buf.get(p + 1)? == &0xFF {
            p += 1; // fill bytes
        }
        let (ff, marker) = (*buf.get(p)?, *buf.get(p + 1)?);
        if ff != 0xFF {
            return Some(p); // broken stream: cut here, the decoder will reject it
        }
        if marker == 0xD9 {
            return Some(p + 2);
        }
        let len = usize::from(u16::from_be_bytes([*buf.get(p + 2)?, *buf.get(p + 3)?]));
        p += 2 + len;
        if marker == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                let i = p + memchr::memchr(0xFF, buf.get(p..)?)?;
                match *buf.get(i + 1)? {
                    0x00 | 0xD0..=0xD7 => p = i + 2,
                    _ => {
                        p = i;
                        break;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// utime + stime of a process in clock ticks (all its threads; children are not included).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// CPU of a process tree in clock ticks: the process itself, and everything below it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeTicks {
    pub own: u64,
    pub children: u64,
}

/// [`TreeTicks`] of `pid`: its utime + stime, and for its children the live descendants'
/// utime + stime plus what the ended ones left in their parents' cutime + cstime. So a child
/// that starts and ends between two readings (an on-demand FFmpeg) is counted, once.
pub fn tree_ticks(pid: u32) -> TreeTicks {
    let own = stat_times(pid);
    let children = descendants(pid).into_iter().map(|p| stat_times(p).iter().sum::<u64>()).sum::<u64>();
    TreeTicks { own: own[0] + own[1], children: children + own[2] + own[3] }
}

/// utime, stime, cutime, cstime of a process (zeros if it is gone).
fn stat_times(pid: u32) -> [u64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else { return [0; 4] };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    [field(14), field(15), field(16), field(17)]
}

/// Every process below `pid` (children, their children, ...).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|f| f.parse::<u32>().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        at += 1;
    }
    found.remove(0);
    found
}

/// Clock ticks per second (`getconf CLK_TCK`, practically always 100 on Linux).
pub fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

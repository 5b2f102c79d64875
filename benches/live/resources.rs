//! Scenarios 3 and 4: panelcam's own CPU with one camera and 50 viewers, and its resident
//! memory (and CPU, the allocator's heaviest load) with 4 cameras and 50 or 200 viewers.
//! Viewers read every frame they are sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::common::*;
use crate::support::harness::{comm, next_binary, rss_kib, ws_connect};

pub const CPU_TARGET_PERCENT: f64 = 3.0;
pub const RSS_TARGET_MIB: f64 = 15.0;

/// WebSocket viewers that read and count every frame until dropped.
pub struct Viewers {
    frames: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Viewers {
    pub fn new() -> Viewers {
        Viewers { frames: Arc::default(), bytes: Arc::default(), tasks: Vec::new() }
    }

    /// Connects one more viewer to `url` (connected when this returns).
    pub async fn add(&mut self, url: &str) {
        let mut ws = ws_connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let (frames, bytes) = (self.frames.clone(), self.bytes.clone());
        self.tasks.push(tokio::spawn(async move {
            while let Some(jpeg) = next_binary(&mut ws, Duration::from_secs(10)).await {
                frames.fetch_add(1, Relaxed);
                bytes.fetch_add(jpeg.len() as u64, Relaxed);
            }
        }));
    }

    pub fn counts(&self) -> (u64, u64) {
        (self.frames.load(Relaxed), self.bytes.load(Relaxed))
    }
}

impl Drop for Viewers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

pub async fn cpu() {
    const CLIENTS: usize = 50;
    // SMPTE bars rather than the barcode picture: realistic JPEG sizes (~20 KB) to send.
    let camera = reference_camera(&[]).await;
    let server = reference_server(&camera).await;
    let mut viewers = Viewers::new();
    for _ in 0..CLIENTS {
        viewers.add(&server.ws_url("/cam/live")).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let pid = server.pid();
    // The FFmpeg under panelcam: since issue 11 the on-demand transcoder, fed over a pipe.
    let ffmpeg: Vec<u32> = descendants(pid).into_iter().filter(|p| comm(*p) == "ffmpeg").collect();
    let ticks = |pids: &[u32]| pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>();
    let (pc0, ff0, (f0, b0), t0) = (cpu_ticks(pid), ticks(&ffmpeg), viewers.counts(), Instant::now());
    tokio::time::sleep(scaled(1.0, 5.0)).await;
    let (pc1, ff1, (f1, b1), secs) = (cpu_ticks(pid), ticks(&ffmpeg), viewers.counts(), t0.elapsed().as_secs_f64());

    let hz = clock_ticks_per_sec();
    let percent = |d: u64| d as f64 / hz / secs * 100.0;
    let panelcam = percent(pc1 - pc0);
    let frames = (f1 - f0) as f64;
    println!(
        "panelcam CPU (1 camera, {CLIENTS} WS clients, FFmpeg excluded): {panelcam:.2} % of one core  \
         (target <= {CPU_TARGET_PERCENT} %)  over {secs:.0} s  {}{}",
        verdict(panelcam <= CPU_TARGET_PERCENT),
        bench_config_note()
    );
    print!("{}", restarts_line(&server, &["cam"]).await);
    println!(
        "  clients got {:.1} fps each on average, {:.1} KB per JPEG, {:.2} MB/s in total; \
         FFmpeg (for reference) {:.1} % of one core; load {}",
        frames / secs / CLIENTS as f64,
        (b1 - b0) as f64 / frames.max(1.0) / 1000.0,
        (b1 - b0) as f64 / secs / 1e6,
        percent(ff1 - ff0),
        loadavg()
    );
}

pub async fn rss() {
    const IDS: [&str; 4] = ["a", "b", "c", "d"];
    let camera = reference_camera(&["--path", "/a", "--path", "/b", "--path", "/c", "--path", "/d"]).await;
    let files: Vec<(&str, serde_json::Value)> =
        IDS.iter().map(|id| (*id, reference_camera_file(&format!("/{id}"), &camera.url(&format!("/{id}"))))).collect();
    let server = start_panelcam(&files).await;
    let settle = scaled(2.0 / 3.0, 5.0);
    let mut viewers = Viewers::new();
    for (clients, label) in [(50, "50 WS clients spread over them"), (200, "50 WS clients on each (200)")] {
        while viewers.tasks.len() < clients {
            let id = IDS[viewers.tasks.len() % IDS.len()];
            viewers.add(&server.ws_url(&format!("/{id}/live"))).await;
        }
        let (f0, c0, t0) = (viewers.counts().0, cpu_ticks(server.pid()), Instant::now());
        tokio::time::sleep(settle).await;
        let secs = t0.elapsed().as_secs_f64();
        let fps = (viewers.counts().0 - f0) as f64 / secs / clients as f64;
        let cpu = (cpu_ticks(server.pid()) - c0) as f64 / clock_ticks_per_sec() / secs * 100.0;
        let mib = rss_kib(server.pid()) as f64 / 1024.0;
        println!(
            "panelcam RSS (4 cameras, {label}, after {:.0} s): {mib:.1} MiB  (target <= {RSS_TARGET_MIB} MiB)  {}{}",
            settle.as_secs_f64(),
            verdict(mib <= RSS_TARGET_MIB),
            bench_config_note()
        );
        println!(
            "  peak (VmHWM) so far {:.1} MiB; clients got {fps:.1} fps each on average; \
             panelcam CPU meanwhile {cpu:.2} % of one core (FFmpeg excluded); load {}",
            hwm_kib(server.pid()) as f64 / 1024.0,
            loadavg()
        );
        print!("{}", restarts_line(&server, &IDS).await);
    }
}

/// `restarts_note` on a line of its own, or nothing.
async fn restarts_line(server: &crate::support::harness::Server, ids: &[&str]) -> String {
    let note = restarts_note(server, ids).await;
    if note.is_empty() { note } else { format!("{}\n", note.trim_start()) }
}

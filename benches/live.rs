//! Live-path benchmarks: the performance numbers, each printed next to its target.
//!
//!     cargo bench --bench live                   # every scenario except ffmpeg-options
//!     cargo bench --bench live -- latency        # one scenario (or a comma-separated list)
//!     BENCH_SECONDS=10 scripts/bench.sh cpu      # shorter measuring times
//!
//! Everything runs the real `panelcam` binary (config.json `{}`: the shipped defaults, with a
//! private HLS spool) against the RTSP test camera (1280x720 H.264 at 25 fps) with the issue's
//! camera file (640 px wide MJPEG at 10 fps); see each module for what exactly is measured.
//! The camera file leaves `rtsp_client` at its default since issue 11 (panelcam's RTSP client,
//! the media router: H.264 passed through, JPEGs from an on-demand transcoder); the scenarios
//! about FFmpeg's RTSP input and the "before" numbers set `"rtsp_client": "ffmpeg"`.
//! `PANELCAM_BIN=<path>` runs a prebuilt binary instead of cargo's (e.g. a musl release build),
//! `PANELCAM_RUNNER=qemu-aarch64-static` runs it under an emulator; FFmpeg is the host's.
//! `BENCH_SECONDS` (default 30) scales every measuring time; `BENCH_CONFIG='{...}'` merges
//! JSON into config.json (e.g. `{"recording": {"enabled": false}}` to attribute a cost).
//! The numbers are wall-clock measurements: on a shared 2-core machine a neighbour's build
//! shows up in every p99, so the load average is printed next to them.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "live/browser.rs"]
mod browser;
#[path = "live/cold_start.rs"]
mod cold_start;
#[path = "live/common.rs"]
mod common;
#[path = "live/ffmpeg_options.rs"]
mod ffmpeg_options;
#[path = "live/first_picture.rs"]
mod first_picture;
#[path = "live/h264_latency.rs"]
mod h264_latency;
#[path = "live/latency.rs"]
mod latency;
#[path = "live/resources.rs"]
mod resources;
#[path = "live/router_cpu.rs"]
mod router_cpu;
#[path = "live/router_first.rs"]
mod router_first;
#[path = "live/server_latency.rs"]
mod server_latency;
#[path = "live/stall.rs"]
mod stall;
#[path = "live/stop_under_load.rs"]
mod stop_under_load;
#[path = "live/tls.rs"]
mod tls;

use std::process::ExitCode;

/// (name, what it measures, part of the default run)
const SCENARIOS: &[(&str, &str, bool)] = &[
    ("latency", "MJPEG glass-to-glass: media router, FFmpeg reading RTSP, FFmpeg alone (the floor)", true),
    ("server-latency", "FFmpeg stdout -> WebSocket message with 50 clients (fake FFmpeg)", true),
    ("cpu", "panelcam's own CPU, 1 camera, 50 clients", true),
    ("rss", "panelcam's resident memory, 4 cameras, 50 and 200 clients", true),
    ("first-picture", "time to the first picture on a new live WebSocket", true),
    ("ffmpeg-options", "latency floor for variants of FFmpeg's options (investigation, ~8 min)", false),
    ("ffmpeg-stall", "FFmpeg paused 90 ms every 0.6 s: does the preview survive? (robustness)", false),
    ("cold-start", "exec of a fresh panelcam -> first JPEG at a live WebSocket, 10 starts", true),
    ("stop-under-load", "SIGTERM with 4 cameras recording and 50 viewers -> exit, 5 rounds (~2 min)", false),
    ("tls", "WSS vs WS: new-viewer handshake time and CPU; 50 viewers' latency and CPU (~2 min)", false),
    ("router-cpu", "process-tree CPU, 4 cameras recording, H.264 viewers only; before: rtsp_client ffmpeg", true),
    ("idle-camera-cpu", "process-tree CPU of a camera nobody watches as MJPEG", true),
    ("h264-latency", "glass-to-glass of the H.264 passthrough (/video, FFmpeg decoding at the client)", true),
    ("first-jpeg", "idle transcoder -> first JPEG on a new MJPEG WebSocket, and a snapshot", true),
    ("first-h264", "time to the first fragment on a new /video WebSocket", true),
    ("browser-webcodecs", "glass-to-glass latency in headless Chromium through WebCodecs (~30 s)", true),
    ("browser-mse", "glass-to-glass latency and its drift in Chromium through Media Source (~70 s)", true),
    ("browser-first-picture", "Chromium: navigation -> first H.264 picture drawn, 10 rounds (~30 s)", true),
];

async fn run(name: &str) {
    match name {
        "latency" => latency::glass_to_glass().await,
        "server-latency" => server_latency::server_latency().await,
        "cpu" => resources::cpu().await,
        "rss" => resources::rss().await,
        "first-picture" => first_picture::first_picture().await,
        "ffmpeg-options" => ffmpeg_options::ffmpeg_options().await,
        "ffmpeg-stall" => stall::ffmpeg_stall().await,
        "cold-start" => cold_start::cold_start().await,
        "stop-under-load" => stop_under_load::stop_under_load().await,
        "tls" => tls::tls().await,
        "router-cpu" => router_cpu::router_cpu().await,
        "idle-camera-cpu" => router_cpu::idle_camera_cpu().await,
        "h264-latency" => h264_latency::h264_latency().await,
        "first-jpeg" => router_first::first_jpeg().await,
        "first-h264" => router_first::first_h264().await,
        "browser-webcodecs" => browser::webcodecs().await,
        "browser-mse" => browser::mse().await,
        "browser-first-picture" => browser::first_picture().await,
        _ => unreachable!("checked against SCENARIOS"),
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; the first other argument selects scenarios.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let selected: Vec<&str> = match &filter {
        None => SCENARIOS.iter().filter(|s| s.2).map(|s| s.0).collect(),
        Some(f) if f == "all" => SCENARIOS.iter().map(|s| s.0).collect(),
        Some(f) => f.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
    };
    if let Some(unknown) = selected.iter().find(|n| !SCENARIOS.iter().any(|s| s.0 == **n)) {
        eprintln!("unknown scenario {unknown:?}; one of (comma-separated, or `all`):");
        for (name, what, default) in SCENARIOS {
            eprintln!("  {name:<16} {what}{}", if *default { "" } else { " [only by name]" });
        }
        return ExitCode::from(2);
    }
    let mut failed = Vec::new();
    for name in selected {
        let what = SCENARIOS.iter().find(|s| s.0 == name).unwrap().1;
        println!(
            "== {name}: {what}  (BENCH_SECONDS={}, {} cores, load {})",
            common::bench_seconds(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            common::loadavg()
        );
        let fake_ffmpeg = matches!(name, "server-latency" | "tls");
        if fake_ffmpeg {
            // SAFETY: no other thread exists here (each scenario's runtime is dropped before
            // the next starts); panelcam inherits the variable when the scenario spawns it.
            unsafe { std::env::set_var("PANELCAM_FFMPEG", server_latency::fake_ffmpeg()) };
        }
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(run(name))));
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        if fake_ffmpeg {
            // SAFETY: as above, the runtime and its threads are gone.
            unsafe { std::env::remove_var("PANELCAM_FFMPEG") };
        }
        if outcome.is_err() {
            println!("{name}: FAILED (see the panic above)");
            failed.push(name);
        }
        println!();
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed scenarios: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

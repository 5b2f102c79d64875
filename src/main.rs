//! Command line and wiring: `panelcam [run]` serves, `panelcam check` validates the config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use panelcam::config::{self, Problem, Severity};
use panelcam::registry::Registry;
use panelcam::{service, telemetry};
use tracing::{Instrument, error, info, warn};

/// `--features mimalloc`: mimalloc instead of the libc allocator (musl's mallocng in the shipped
/// build). docs/benchmarks.md ("Allocator") has the measurements behind the choice.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: panelcam [run|check] [--config config.json] [--cameras <dir>]

  run     start the gateway (default)
  check   validate config.json and every camera file, list every problem, exit 1 on errors
  ffmpeg-args <camera.json>
          print the FFmpeg arguments panelcam would use for a camera, one per line
          (passwords are printed: the output is for debugging on the panel itself)

  --config   main configuration file (default: config.json)
  --cameras  camera directory (default: cameras/ next to the config file)
  PANELCAM_LOG=debug|info|warn|error sets the log level; PANELCAM_FFMPEG the FFmpeg binary.
  Changes to the camera directory are applied as they happen (inotify); SIGHUP re-reads it too,
  and the HTTPS certificate (also picked up by itself when its files change).";

struct Cli {
    command: String,
    /// The camera file of `ffmpeg-args`.
    camera_file: Option<PathBuf>,
    config: PathBuf,
    cameras: Option<PathBuf>,
}

fn parse_cli() -> Result<Cli, String> {
    let mut cli = Cli { command: "run".into(), camera_file: None, config: PathBuf::from("config.json"), cameras: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "run" | "check" => cli.command = arg,
            "ffmpeg-args" => {
                cli.command = arg;
                cli.camera_file = Some(args.next().ok_or("ffmpeg-args needs a camera file")?.into());
            }
            "--config" => cli.config = args.next().ok_or("--config needs a file")?.into(),
            "--cameras" => cli.cameras = Some(args.next().ok_or("--cameras needs a directory")?.into()),
            "-h" | "--help" | "help" => cli.command = "help".into(),
            "-V" | "--version" => cli.command = "version".into(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(cli)
}

impl Cli {
    fn camera_dir(&self) -> PathBuf {
        self.cameras.clone().unwrap_or_else(|| self.config.parent().unwrap_or(Path::new(".")).join("cameras"))
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("panelcam: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cli.command.as_str() {
        "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        "version" => {
            println!("panelcam {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "check" => check(&cli),
        "ffmpeg-args" => print_ffmpeg_args(&cli),
        _ => run(&cli),
    }
}

fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
}

/// `panelcam check`: every problem of every file, exit 1 if any is an error.
fn check(cli: &Cli) -> ExitCode {
    let mut errors = 0;
    match config::load_config(&cli.config) {
        Ok((_, warnings)) => {
            print_problems(&warnings);
            println!("{}: ok", cli.config.display());
        }
        Err(problems) => {
            print_problems(&problems);
            errors += problems.iter().filter(|p| p.severity == Severity::Error).count();
        }
    }
    let set = config::load_cameras(&cli.camera_dir());
    print_problems(&set.warnings);
    for cam in &set.cameras {
        let state = if cam.enabled { "ok" } else { "ok (disabled)" };
        println!("{}: {state}: /{} from {}", cam.file.display(), cam.path, cam.url);
    }
    for rejected in &set.rejected {
        print_problems(&rejected.problems);
    }
    errors += set.errors().count();
    if errors > 0 {
        eprintln!("{errors} error(s)");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_ffmpeg_args(cli: &Cli) -> ExitCode {
    let global = match config::load_config(&cli.config) {
        Ok((c, _)) => c,
        Err(problems) => {
            print_problems(&problems);
            return ExitCode::from(2);
        }
    };
    let file = cli.camera_file.as_deref().unwrap_or(Path::new(""));
    let camera = match config::load_camera_file(file) {
        Ok((c, _)) => c,
        Err(problems) => {
            print_problems(&problems);
            return ExitCode::from(1);
        }
    };
    let transcoding = global.transcoding.with_override(&camera.transcoding);
    // The same decision as at startup: the segment output is part of what FFmpeg runs.
    let rec = global.recording.for_camera(&camera);
    let segments = panelcam::video::camera::segment_output(&camera, &rec);
    match panelcam::camera::argv::ffmpeg_args(&camera, &transcoding, segments.as_ref()) {
        Ok(args) => {
            args.iter().for_each(|a| println!("{a}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: cannot build the FFmpeg command: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> ExitCode {
    panelcam::telemetry::init();
    // Before any TLS configuration exists: ring is the process's one provider.
    panelcam::tls::install();
    let code = run_logged(cli);
    panelcam::telemetry::flush();
    code
}

fn run_logged(cli: &Cli) -> ExitCode {
    let (config, warnings) = match config::load_config(&cli.config) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                error!("{p}");
            }
            error!("cannot start: {} is broken (run `panelcam check` for details)", cli.config.display());
            return ExitCode::from(2);
        }
    };
    for w in &warnings {
        warn!("{w}");
    }
    let open_files = panelcam::http::limits::raise_open_file_limit();
    // Two workers match the panel's cores. They live as long as the runtime, which matters:
    // FFmpeg's parent-death signal is tied to the thread that spawned it.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let warnings = warnings.iter().map(|w| w.to_string()).collect();
    runtime.block_on(serve(config, cli.config.clone(), cli.camera_dir(), warnings, open_files))
}

async fn serve(
    config: config::Config,
    config_path: PathBuf,
    camera_dir: PathBuf,
    warnings: Vec<String>,
    open_files: u64,
) -> ExitCode {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            error!("cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let video = match video_env(&config) {
        Ok(v) => v,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shipper = match (&video.outbox, &video.central) {
        (Some(outbox), Some(central)) => Some(tokio::spawn(
            panelcam::store::shipper::run(outbox.clone(), central.clone(), shutdown_rx.clone())
                .instrument(telemetry::component("shipper")),
        )),
        _ => None,
    };
    let dir = camera_dir.clone();
    let cameras = match tokio::task::spawn_blocking(move || config::load_cameras(&dir)).await {
        Ok(set) => set,
        Err(e) => {
            error!("cannot read the camera directory: {e}");
            return ExitCode::from(1);
        }
    };
    let max_connections = config
        .server
        .max_connections
        .unwrap_or_else(|| panelcam::http::limits::max_connections(open_files, cameras.cameras.len()));
    let registry: Arc<Registry> = Registry::new(config, Some(config_path), camera_dir, video, warnings);
    // Before any camera starts: a certificate that became unusable since the config was read
    // stops startup cleanly.
    let tls = match https(&registry.config, shutdown_rx.clone()).await {
        Ok(t) => t,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    // In the registry's span like a rescan, so the cameras' first lines carry COMPONENT too.
    registry.apply(cameras).instrument(telemetry::component("registry")).await;
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(
        "listening on {scheme}://{addr}/dashboard ({} cameras, at most {max_connections} connections with {open_files} open files)",
        registry.cameras().len()
    );
    let server = tokio::spawn(
        panelcam::http::serve(registry.clone(), listener, max_connections, tls.clone(), shutdown_rx.clone())
            .instrument(telemetry::component("http")),
    );
    let watcher = tokio::spawn(
        panelcam::registry::watcher::run(registry.clone(), shutdown_rx.clone())
            .instrument(telemetry::component("registry")),
    );
    let config_watcher = tokio::spawn(
        panelcam::registry::watcher::run_config(registry.clone(), shutdown_rx.clone())
            .instrument(telemetry::component("registry")),
    );
    let housekeeping = tokio::spawn(
        panelcam::registry::housekeeping::run(registry.clone(), shutdown_rx.clone())
            .instrument(telemetry::component("housekeeping")),
    );
    // Returns at once unless mqtt.enabled; on shutdown it says "offline" (retained) first.
    let mqtt =
        tokio::spawn(panelcam::mqtt::run(registry.clone(), shutdown_rx).instrument(telemetry::component("mqtt")));
    // Ready: the listener is bound and the cameras are set up.
    let notifier = service::Notifier::from_env().map(Arc::new);
    tokio::spawn(service::runtime_heartbeat());
    if let Some(n) = &notifier {
        n.notify(&format!("READY=1\nSTATUS={}", service::status_line(&registry)));
        service::start_watchdog(n.clone(), registry.clone(), service::watchdog_interval());
    }
    wait_for_signals(&registry, tls.as_deref()).await;
    info!("shutting down");
    if let Some(n) = &notifier {
        n.notify("STOPPING=1\nSTATUS=stopping: closing viewers, FFmpeg and recordings");
    }
    // A second SIGTERM (or SIGINT) while stopping means "now": FFmpeg dies with us (its
    // parent-death signal) and the databases are consistent at every commit.
    tokio::spawn(async {
        second_signal().await;
        tracing::warn!("second stop signal: exiting at once");
        telemetry::flush();
        std::process::exit(1);
    });
    let _ = shutdown_tx.send(true);
    // No camera may be started by a change to the directory once stopping has begun.
    watcher.abort();
    let _ = watcher.await;
    config_watcher.abort();
    registry.stop_all().await;
    let _ = server.await;
    let _ = housekeeping.await;
    let _ = mqtt.await;
    if let Some(shipper) = shipper {
        let _ = shipper.await;
    }
    info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves on the next SIGTERM or SIGINT.
async fn second_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// PostgreSQL target and outbox when `database_type` is "postgresql".
fn video_env(config: &config::Config) -> Result<panelcam::video::camera::VideoEnv, String> {
    use panelcam::store::{outbox::Outbox, pg::Central};
    let rec = &config.recording;
    let (config::DatabaseType::Postgresql, Some(url)) = (rec.database_type, &rec.database_url) else {
        return Ok(Default::default());
    };
    let central = Central::new(url.expose(), &config.server.panel_id)?;
    let outbox_dir = rec.database_path.join("outbox");
    let outbox = Outbox::open(&outbox_dir, rec.outbox_max_bytes).map_err(|e| format!("cannot open the outbox: {e}"))?;
    info!(database = %central.display, panel = %central.panel, "recordings are shipped to PostgreSQL through the outbox in {}", outbox_dir.display());
    Ok(panelcam::video::camera::VideoEnv { central: Some(Arc::new(central)), outbox: Some(outbox) })
}

/// With `server.tls.enabled`: the certificate (checked once already by the config reader), a
/// task that picks up renewed files, and the HTTP-to-HTTPS redirect listener if configured.
async fn https(
    config: &config::Config,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Arc<panelcam::tls::server::ServerTls>>, String> {
    use panelcam::tls::server::{ServerTls, log_loaded, watch};
    let tls = &config.server.tls;
    if !tls.enabled {
        return Ok(None);
    }
    let (server_tls, loaded) =
        ServerTls::load(&tls.cert_path, &tls.key_path, "server.tls").map_err(|p| p.to_string())?;
    log_loaded(&loaded, &tls.cert_path, "HTTPS with");
    let server_tls = Arc::new(server_tls);
    tokio::spawn(
        watch(server_tls.clone(), "server.tls".into(), shutdown.clone()).instrument(telemetry::component("http")),
    );
    if let Some(port) = tls.redirect_http_port {
        let addr = format!("{}:{port}", config.server.host);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("server.tls.redirect_http_port: cannot listen on {addr}: {e}"))?;
        info!("redirecting http://{addr}/ to HTTPS on port {}", config.server.port);
        let redirect = panelcam::http::redirect::serve(listener, config::hostname(), config.server.port, shutdown);
        tokio::spawn(redirect.instrument(telemetry::component("http")));
    }
    Ok(Some(server_tls))
}

/// Runs until SIGTERM or SIGINT; SIGHUP rescans the camera directory and reloads the HTTPS
/// certificate.
async fn wait_for_signals(registry: &Registry, tls: Option<&panelcam::tls::server::ServerTls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        // Without signal handlers we can only run until killed.
        std::future::pending::<()>().await;
        return;
    };
    // Test hooks (src/fault.rs): SIGUSR1 starts the armed hang; otherwise SIGUSR1 keeps its
    // default meaning.
    let mut usr1 = if panelcam::fault::is_armed() { signal(SignalKind::user_defined1()).ok() } else { None };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                info!("SIGHUP: reading the camera directory again");
                registry.rescan().instrument(telemetry::component("registry")).await;
                if let Some(tls) = tls {
                    tls.reload_now("server.tls");
                }
            }
            Some(_) = async { match usr1.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                panelcam::fault::trigger();
                if panelcam::fault::active("runtime.stall") {
                    // More blocking tasks than workers: every worker that takes one hangs.
                    for _ in 0..8 {
                        tokio::spawn(async { std::thread::sleep(std::time::Duration::from_secs(3600)) });
                    }
                }
            }
        }
    }
}

//! One camera: its config, its FrameBus, its stats and the supervisor task that owns its
//! FFmpeg. Each camera can be started, stopped and replaced alone (hot reload later).

pub mod argv;
pub mod process;
pub mod stats;
pub mod stderr;
pub mod supervisor;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::bus::FrameBus;
use crate::config::{CameraConfig, Config, Transcoding};
use crate::redact::{Redactor, redact_url};
use stats::{CameraState, CameraStats};
use stderr::StderrLog;
use supervisor::Supervisor;

pub struct Camera {
    pub config: Arc<CameraConfig>,
    pub transcoding: Transcoding,
    pub bus: Arc<FrameBus>,
    pub stats: Arc<CameraStats>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The FFmpeg binary; `PANELCAM_FFMPEG` overrides it (a board may ship its own build).
pub fn ffmpeg_program() -> String {
    std::env::var("PANELCAM_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

impl Camera {
    /// Creates the camera and, when enabled, starts its supervisor.
    pub fn start(config: CameraConfig, global: &Config) -> Arc<Camera> {
        let transcoding = global.transcoding.with_override(&config.transcoding);
        let bus = Arc::new(FrameBus::new(transcoding.channel_buffer_size));
        let initial = if config.enabled { CameraState::Starting } else { CameraState::Disabled };
        let stats = Arc::new(CameraStats::new(initial));
        let (stop, stop_rx) = watch::channel(false);
        let config = Arc::new(config);
        let camera = Arc::new(Camera {
            config: config.clone(),
            transcoding: transcoding.clone(),
            bus: bus.clone(),
            stats: stats.clone(),
            stop,
            task: Mutex::new(None),
        });
        if !config.enabled {
            info!(camera = %config.id, "disabled in {}", config.file.display());
            return camera;
        }
        let args = match argv::ffmpeg_args(&config, &transcoding) {
            Ok(args) => args,
            Err(e) => {
                stats.set_error(format!("cannot build the FFmpeg command: {e}"));
                stats.set_state(CameraState::Failed);
                return camera;
            }
        };
        let redactor = Redactor::new(config.secrets());
        info!(camera = %config.id, path = %format!("/{}", config.path), url = %config.url, "starting: {} {}", ffmpeg_program(), redactor.apply(&redact_url(&args.join(" "))));
        let stderr = StderrLog {
            camera: config.id.clone(),
            mode: config.ffmpeg.log_stderr,
            file: global.server.log_dir.join(format!("{}.ffmpeg.log", config.id)),
            max_bytes: global.server.log_file_max_bytes,
            redactor,
        };
        let supervisor = Supervisor {
            camera: config.clone(),
            transcoding,
            program: ffmpeg_program(),
            args,
            bus,
            stats,
            stderr,
            max_frame_size: global.recording.max_frame_size,
        };
        let task = tokio::spawn(supervisor.run(stop_rx));
        *camera.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        camera
    }

    /// Stops FFmpeg (SIGTERM, then SIGKILL) and waits until it is reaped.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }
}

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
use crate::config::{CameraConfig, Config, RecordingConfig, Transcoding};
use crate::record::FrameStore;
use crate::record::db::Tuning;
use crate::redact::{Redactor, redact_url};
use crate::video::camera::{VideoCamera, VideoEnv};
use stats::{CameraState, CameraStats};
use stderr::StderrLog;
use supervisor::Supervisor;

pub struct Camera {
    pub config: Arc<CameraConfig>,
    pub transcoding: Transcoding,
    /// The effective recording settings (global + camera overrides).
    pub recording: RecordingConfig,
    /// Frame storage; `None` when disabled or when the database could not be opened, with
    /// the reason in `frames_unavailable`.
    pub frames: Option<Arc<FrameStore>>,
    pub frames_unavailable: Option<String>,
    /// HLS segments, live HLS and video recording; `None` when this camera has none.
    pub video: Option<Arc<VideoCamera>>,
    pub bus: Arc<FrameBus>,
    pub stats: Arc<CameraStats>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Opens the camera's recording database (sessions, and frames when frame storage is on)
/// when recording wants it. The second value says why frames are not stored, if they are not.
fn open_frame_store(config: &CameraConfig, recording: &RecordingConfig) -> (Option<Arc<FrameStore>>, Option<String>) {
    if let Some(why) = recording.sessions_unavailable() {
        return (None, Some(why.to_string()));
    }
    let frames_off = recording.frames_unavailable();
    let path = recording.database_path.join(format!("{}.db", config.id));
    match FrameStore::open_with(&config.id, &path, &Tuning::default(), frames_off.is_none()) {
        Ok(store) => (Some(store), frames_off.map(str::to_string)),
        Err(e) => {
            tracing::error!(camera = %config.id, "frame storage unavailable: {e}");
            (None, Some(format!("frame storage could not be opened: {e}")))
        }
    }
}

/// The FFmpeg binary; `PANELCAM_FFMPEG` overrides it (a board may ship its own build).
pub fn ffmpeg_program() -> String {
    std::env::var("PANELCAM_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

impl Camera {
    /// Creates the camera and, when enabled, starts its supervisor.
    pub fn start(config: CameraConfig, global: &Config, env: &VideoEnv) -> Arc<Camera> {
        let transcoding = global.transcoding.with_override(&config.transcoding);
        let bus = Arc::new(FrameBus::new(transcoding.channel_buffer_size));
        let initial = if config.enabled { CameraState::Starting } else { CameraState::Disabled };
        let stats = Arc::new(CameraStats::new(initial));
        let (stop, stop_rx) = watch::channel(false);
        let recording = global.recording.for_camera(&config);
        let (frames, frames_unavailable) = open_frame_store(&config, &recording);
        let video = if config.enabled {
            match VideoCamera::setup(&config, &recording, env) {
                Ok(v) => v.map(Arc::new),
                Err(e) => {
                    tracing::error!(camera = %config.id, "video recording unavailable: {e}");
                    None
                }
            }
        } else {
            None
        };
        let config = Arc::new(config);
        let camera = Arc::new(Camera {
            config: config.clone(),
            transcoding: transcoding.clone(),
            recording,
            frames: frames.clone(),
            frames_unavailable,
            video: video.clone(),
            bus: bus.clone(),
            stats: stats.clone(),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        if !config.enabled {
            info!(camera = %config.id, "disabled in {}", config.file.display());
            return camera;
        }
        if let Some(store) = frames.clone() {
            let recorder = tokio::spawn(crate::record::recorder::run(bus.clone(), store, stop_rx.clone()));
            camera.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(recorder);
        }
        if let Some(v) = &video
            && let Err(e) = v.start(frames.clone())
        {
            tracing::error!(camera = %config.id, "cannot start the video pipeline: {e}");
        }
        let args = match argv::ffmpeg_args(&config, &transcoding, video.as_ref().map(|v| &v.output)) {
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
            spool: video.as_ref().map(|v| v.spool.clone()),
        };
        let task = tokio::spawn(supervisor.run(stop_rx));
        camera.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        camera
    }

    /// Stops FFmpeg (SIGTERM, then SIGKILL) and waits until it is reaped, then closes the
    /// frame database cleanly (an active recording continues after a restart).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
        if let Some(video) = &self.video {
            video.stop().await;
        }
        if let Some(store) = &self.frames {
            store.shutdown().await;
        }
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }
}

//! One camera: its config, its FrameBus, its stats and the supervisor task that owns its
//! FFmpeg. Each camera is started, stopped and replaced alone (see `registry`).

pub mod argv;
pub mod process;
pub mod stats;
pub mod stderr;
pub mod supervisor;

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, info};

use crate::bus::FrameBus;
use crate::config::{CameraConfig, Config, RecordingConfig, Transcoding, ffmpeg_program};
use crate::record::FrameStore;
use crate::record::db::Tuning;
use crate::redact::{Redactor, redact_url};
use crate::video::camera::{VideoCamera, VideoEnv};
use stats::{CameraState, CameraStats};
use stderr::StderrLog;
use supervisor::Supervisor;

pub struct Camera {
    /// The camera file as last applied. Only fields that do not touch the stream (token,
    /// URL path, PTZ, MQTT) change while the camera runs; see [`Camera::same_stream`].
    settings: RwLock<Arc<CameraConfig>>,
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
    /// Most viewers at once (`server.max_viewers_per_camera`).
    pub max_viewers: u32,
    /// PTZ over ONVIF; reads the `ptz` settings anew on every call, so they change live.
    pub ptz: crate::ptz::Ptz,
    stop: watch::Sender<bool>,
    /// Why the camera stopped, for the viewers whose sockets are closed.
    stop_reason: Mutex<String>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A camera whose storage is open and whose spool is ready, not yet running. Preparing
/// blocks (SQLite, files): it runs on the blocking pool, never on the async workers.
pub struct Prepared {
    config: CameraConfig,
    transcoding: Transcoding,
    recording: RecordingConfig,
    frames: Option<Arc<FrameStore>>,
    frames_unavailable: Option<String>,
    video: Option<Arc<VideoCamera>>,
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

impl Camera {
    /// Opens the camera's storage and prepares its spool. Blocking.
    pub fn prepare(config: CameraConfig, global: &Config, env: &VideoEnv) -> Prepared {
        let transcoding = global.transcoding.with_override(&config.transcoding);
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
        Prepared { config, transcoding, recording, frames, frames_unavailable, video }
    }

    /// Starts a prepared camera's tasks (recorder, video pipeline, FFmpeg supervisor).
    pub fn launch(p: Prepared, global: &Config) -> Arc<Camera> {
        let Prepared { config, transcoding, recording, frames, frames_unavailable, video } = p;
        let bus = Arc::new(FrameBus::new(transcoding.channel_buffer_size));
        let initial = if config.enabled { CameraState::Starting } else { CameraState::Disabled };
        let stats = Arc::new(CameraStats::new(initial));
        let (stop, stop_rx) = watch::channel(false);
        let config = Arc::new(config);
        let camera = Arc::new(Camera {
            settings: RwLock::new(config.clone()),
            transcoding: transcoding.clone(),
            recording,
            frames: frames.clone(),
            frames_unavailable,
            video: video.clone(),
            bus: bus.clone(),
            stats: stats.clone(),
            max_viewers: global.server.max_viewers_per_camera,
            ptz: crate::ptz::Ptz::new(&config.id),
            stop,
            stop_reason: Mutex::new(String::new()),
            tasks: Mutex::new(Vec::new()),
        });
        if !config.enabled {
            info!(camera = %config.id, "disabled in {}", config.file.display());
            return camera;
        }
        if let Some(store) = frames.clone() {
            let recorder = tokio::spawn(
                crate::record::recorder::run(bus.clone(), store, stop_rx.clone())
                    .instrument(crate::telemetry::component("record")),
            );
            camera.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(recorder);
        }
        if let Some(v) = &video
            && let Err(e) = v.start(frames.clone().map(|f| f as Arc<dyn crate::video::pipeline::Sessions>))
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
        let task = tokio::spawn(supervisor.run(stop_rx).instrument(crate::telemetry::component("camera")));
        camera.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        camera
    }

    /// The camera file as currently applied.
    pub fn config(&self) -> Arc<CameraConfig> {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True when `a` and `b` run the same stream (same FFmpeg, recording and storage), so a
    /// change from one to the other can be applied without touching FFmpeg or the viewers.
    pub fn same_stream(a: &CameraConfig, b: &CameraConfig) -> bool {
        let stream_only = |c: &CameraConfig| {
            let mut c = c.clone();
            c.file = Default::default();
            c.path = String::new();
            c.token = None;
            c.ptz = Default::default();
            c.mqtt = Default::default();
            c
        };
        stream_only(a) == stream_only(b)
    }

    /// Applies a change that [`Camera::same_stream`] allows, without a restart.
    pub fn update_settings(&self, config: CameraConfig) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    /// Stops FFmpeg (SIGTERM, then SIGKILL) and waits until it is reaped, then closes the
    /// frame database cleanly (an active recording continues after a restart). Viewers'
    /// sockets are closed with `reason`.
    pub async fn stop(&self, reason: &str) {
        *self.stop_reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.to_string();
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

    /// Changes to `true` when the camera stops; viewers select on it.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn stop_reason(&self) -> String {
        self.stop_reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn id(&self) -> String {
        self.config().id.clone()
    }
}

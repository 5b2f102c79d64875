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

use crate::media::hub::Hub;
use crate::media::router::{Outcome, Router};
use crate::media::transcoder::Transcoder;

/// Whether a camera's own stream reaches viewers as it is (`crate::media`).
#[derive(Clone)]
pub enum Passthrough {
    Hub(Arc<Hub>),
    /// Why not (FFmpeg reads this camera); said to pages that ask for H.264.
    Unavailable(String),
}

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
    /// The camera's own H.264/H.265 for passthrough, or why there is none.
    passthrough: RwLock<Passthrough>,
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
        let ffmpeg_reason = config.ffmpeg_input_reason();
        let passthrough = match &ffmpeg_reason {
            None => Passthrough::Hub(Arc::new(Hub::new(&config.id))),
            Some(why) => Passthrough::Unavailable(format!("FFmpeg reads this camera: {why}")),
        };
        let camera = Arc::new(Camera {
            settings: RwLock::new(config.clone()),
            transcoding: transcoding.clone(),
            recording,
            frames: frames.clone(),
            frames_unavailable,
            video: video.clone(),
            bus: bus.clone(),
            passthrough: RwLock::new(passthrough.clone()),
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
        let redactor = Redactor::new(config.secrets());
        let stderr = StderrLog {
            camera: config.id.clone(),
            mode: config.ffmpeg.log_stderr,
            file: global.server.log_dir.join(format!("{}.ffmpeg.log", config.id)),
            max_bytes: global.server.log_file_max_bytes,
            redactor: redactor.clone(),
        };
        let ffmpeg = FfmpegInput {
            camera: config.clone(),
            transcoding: transcoding.clone(),
            bus: bus.clone(),
            stats: stats.clone(),
            stderr: stderr.clone(),
            redactor,
            max_frame_size: global.recording.max_frame_size,
            video: video.clone(),
        };
        let task = match passthrough {
            Passthrough::Hub(hub) => {
                info!(camera = %config.id, path = %format!("/{}", config.path), url = %config.url, transport = config.transport.as_str(), "starting: panelcam's RTSP client (H.264 passthrough, JPEGs on demand)");
                let transcoder = Transcoder {
                    camera: config.clone(),
                    transcoding,
                    program: ffmpeg_program(),
                    hub: hub.clone(),
                    bus,
                    stats: stats.clone(),
                    stderr,
                    max_frame_size: global.recording.max_frame_size,
                };
                let debug_capture = transcoder.transcoding.debug_capture;
                let router = Router { camera: config.clone(), hub, stats, debug_capture };
                tokio::spawn(
                    run_router(camera.clone(), router, transcoder, ffmpeg, stop_rx)
                        .instrument(crate::telemetry::component("camera")),
                )
            }
            Passthrough::Unavailable(_) => {
                let Some(supervisor) = ffmpeg.supervisor() else { return camera };
                tokio::spawn(supervisor.run(stop_rx).instrument(crate::telemetry::component("camera")))
            }
        };
        camera.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        camera
    }

    /// The camera's own stream for H.264 viewers; `None` when FFmpeg reads the camera.
    pub fn hub(&self) -> Option<Arc<Hub>> {
        match &*self.passthrough.read().unwrap_or_else(|e| e.into_inner()) {
            Passthrough::Hub(hub) => Some(hub.clone()),
            Passthrough::Unavailable(_) => None,
        }
    }

    /// Why this camera has no passthrough stream (empty when it has one).
    pub fn passthrough_unavailable(&self) -> String {
        match &*self.passthrough.read().unwrap_or_else(|e| e.into_inner()) {
            Passthrough::Hub(_) => String::new(),
            Passthrough::Unavailable(why) => why.clone(),
        }
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

/// What it takes to read a camera with FFmpeg (the input for everything panelcam cannot
/// depayload, and the fallback when a camera turns out to offer no H.264/H.265).
struct FfmpegInput {
    camera: Arc<CameraConfig>,
    transcoding: Transcoding,
    bus: Arc<FrameBus>,
    stats: Arc<CameraStats>,
    stderr: StderrLog,
    redactor: Redactor,
    max_frame_size: usize,
    video: Option<Arc<VideoCamera>>,
}

impl FfmpegInput {
    /// The FFmpeg supervisor; `None` (the camera marked failed) when its command cannot be built.
    fn supervisor(self) -> Option<Supervisor> {
        let config = &self.camera;
        let args = match argv::ffmpeg_args(config, &self.transcoding, self.video.as_ref().map(|v| &v.output)) {
            Ok(args) => args,
            Err(e) => {
                self.stats.set_error(format!("cannot build the FFmpeg command: {e}"));
                self.stats.set_state(CameraState::Failed);
                return None;
            }
        };
        info!(camera = %config.id, path = %format!("/{}", config.path), url = %config.url, "starting: {} {}", ffmpeg_program(), self.redactor.apply(&redact_url(&args.join(" "))));
        Some(Supervisor {
            camera: config.clone(),
            transcoding: self.transcoding,
            program: ffmpeg_program(),
            args,
            bus: self.bus,
            stats: self.stats,
            stderr: self.stderr,
            max_frame_size: self.max_frame_size,
            spool: self.video.as_ref().map(|v| v.spool.clone()),
        })
    }
}

/// A camera read by panelcam's RTSP client: recording thread, on-demand transcoder and the
/// RTSP session. If the camera offers nothing panelcam can depayload, FFmpeg takes over.
async fn run_router(
    camera: Arc<Camera>,
    router: Router,
    transcoder: Transcoder,
    ffmpeg: FfmpegInput,
    mut stop: watch::Receiver<bool>,
) {
    let id = router.camera.id.clone();
    let hub = router.hub.clone();
    let recording = match &ffmpeg.video {
        Some(v) => match crate::media::recording::spawn(&hub, v.output.clone(), id.clone()) {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!(camera = %id, "cannot start the recording thread: {e}");
                None
            }
        },
        None => None,
    };
    let transcoding = tokio::spawn(transcoder.run(stop.clone()).in_current_span());
    let outcome = router.run(&mut stop).await;
    hub.stop_recording();
    if let Some(thread) = recording {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    match outcome {
        Outcome::Stopped => {
            let _ = transcoding.await;
            router.stats.set_state(CameraState::Stopped);
            router.stats.unsupervised();
            info!(camera = %id, "stopped");
        }
        Outcome::Unsupported(what) => {
            transcoding.abort();
            let why = format!("panelcam cannot depayload this camera's stream ({what}); FFmpeg reads it");
            tracing::warn!(camera = %id, "{why}");
            *camera.passthrough.write().unwrap_or_else(|e| e.into_inner()) = Passthrough::Unavailable(why);
            if let Some(supervisor) = ffmpeg.supervisor() {
                supervisor.run(stop).await;
            }
        }
    }
}

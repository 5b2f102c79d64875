//! The video-recording side of one camera: its spool, stores and pipeline thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use tracing::{info, warn};

use super::mp4file::Mp4Assembler;
use super::pipeline::{Pipeline, Sessions, Stores, VideoStats, deliver_mp4};
use crate::config::{CameraConfig, DatabaseType, Mp4Storage, RecordingConfig};
use crate::store::local::LocalIndex;
use crate::store::outbox::Outbox;
use crate::store::pg::Central;
use crate::store::video::VideoStore;

/// Shared by all cameras: the PostgreSQL target and its outbox, when configured.
#[derive(Clone, Default)]
pub struct VideoEnv {
    pub central: Option<Arc<Central>>,
    pub outbox: Option<Arc<Outbox>>,
}

/// Replaced by a new id each time FFmpeg starts: every run writes its own init segment, so
/// segments of an earlier run keep the init segment they were encoded against.
pub const RUN_PLACEHOLDER: &str = "{run}";

/// The second FFmpeg output: the camera's video as HLS fMP4 segments in the spool.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentOutput {
    /// `<spool>/<camera>`: FFmpeg writes `live.m3u8`, `init_<run>.mp4` and `seg_<n>.m4s` here.
    pub dir: PathBuf,
    pub segment_seconds: u64,
    /// Segments listed in the live playlist.
    pub list_size: u32,
    /// Frame rate for sources that must be encoded (MJPEG and test sources).
    pub encode_fps: f64,
}

/// The HLS segment output FFmpeg gets for this camera, if any: for live HLS when its H.264
/// can be copied, or when any video storage is configured; never with a custom FFmpeg
/// command (the user owns the command line then).
pub fn segment_output(config: &CameraConfig, rec: &RecordingConfig) -> Option<SegmentOutput> {
    let copies = config.source_kind().copies_video();
    let wanted = config.ffmpeg.command.is_none() && (rec.video_enabled() || (rec.enabled && rec.hls_live && copies));
    wanted.then(|| SegmentOutput {
        dir: rec.spool_path.join(&config.id),
        segment_seconds: rec.hls_segment_seconds,
        list_size: 6,
        encode_fps: rec.mp4_framerate,
    })
}

pub struct VideoCamera {
    pub camera: String,
    pub spool: PathBuf,
    pub rec: RecordingConfig,
    /// `<database_path>/<camera>`: MP4 files and `segments.db`.
    pub dir: PathBuf,
    /// Where this camera's recordings are stored, and how to read and delete them.
    pub store: Arc<VideoStore>,
    pub stats: Arc<VideoStats>,
    pub output: SegmentOutput,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl VideoCamera {
    /// Sets up the spool and stores when this camera produces HLS segments (live HLS for
    /// cameras whose H.264 can be copied, or any video storage); `Ok(None)` otherwise.
    /// Blocking (files, SQLite): call from the blocking pool.
    pub fn setup(config: &CameraConfig, rec: &RecordingConfig, env: &VideoEnv) -> Result<Option<VideoCamera>, String> {
        let Some(output) = segment_output(config, rec) else { return Ok(None) };
        let spool = output.dir.clone();
        Pipeline::prepare_spool(&spool).map_err(|e| format!("cannot prepare the spool {}: {e}", spool.display()))?;
        let dir = rec.database_path.join(&config.id);
        let central = rec.database_type == DatabaseType::Postgresql;
        let needs_local = rec.video_enabled()
            && ((rec.hls_storage_enabled && !central)
                || rec.mp4_storage_type == Mp4Storage::Filesystem
                || (rec.mp4_storage_type == Mp4Storage::Database && !central));
        let local = if needs_local {
            Some(LocalIndex::open(&dir.join("segments.db")).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let central = match (central, &env.central, &env.outbox) {
            (true, Some(c), Some(o)) => Some((c.clone(), o.clone())),
            (true, _, _) if rec.video_enabled() => {
                return Err("database_type is postgresql but the outbox could not be opened".into());
            }
            _ => None,
        };
        let store = VideoStore {
            camera: config.id.clone(),
            local,
            central,
            mp4_in_database: rec.mp4_storage_type == Mp4Storage::Database,
        };
        let cam = VideoCamera {
            camera: config.id.clone(),
            spool,
            rec: rec.clone(),
            dir,
            store: Arc::new(store),
            stats: Arc::new(VideoStats::default()),
            output,
            stop: Arc::new(AtomicBool::new(false)),
            thread: Mutex::new(None),
        };
        cam.repair();
        Ok(Some(cam))
    }

    pub fn stores(&self) -> Stores {
        Stores { local: self.store.local.clone(), outbox: self.store.central.as_ref().map(|(_, o)| o.clone()) }
    }

    /// MP4 files left half written by a crash are cut back to whole segments, and finished
    /// files whose delivery a crash interrupted are delivered now.
    fn repair(&self) {
        if self.rec.mp4_storage_type == Mp4Storage::Disabled {
            return;
        }
        for repaired in Mp4Assembler::repair(&self.dir) {
            match repaired.and_then(|m| {
                let name = m.name.clone();
                deliver_mp4(&self.camera, &self.rec, &self.stores(), m).map(|_| name)
            }) {
                Ok(name) => {
                    info!(camera = %self.camera, file = %name, "repaired an MP4 segment left unfinished by a crash")
                }
                Err(e) => warn!(camera = %self.camera, "cannot repair an unfinished MP4 segment: {e}"),
            }
        }
    }

    pub fn start(&self, sessions: Option<Arc<dyn Sessions>>) -> Result<(), String> {
        let pipeline = Pipeline {
            camera: self.camera.clone(),
            spool: self.spool.clone(),
            rec: self.rec.clone(),
            sessions,
            stores: self.stores(),
            mp4_dir: self.dir.clone(),
            stats: self.stats.clone(),
        };
        let stop = self.stop.clone();
        let name: String = format!("vid-{}", self.camera).chars().take(15).collect();
        let span = crate::telemetry::component("video");
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || span.in_scope(|| pipeline.run(stop)))
            .map_err(|e| e.to_string())?;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok(())
    }

    /// Stops the pipeline after FFmpeg has stopped: the last segments are taken and the MP4
    /// being assembled is closed.
    pub async fn stop(&self) {
        self.stop.store(true, Relaxed);
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            t.thread().unpark();
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    pub fn status(&self) -> Value {
        let s = &self.stats;
        let last = s.last_segment_ms.load(Relaxed);
        json!({
            "hls_live": true,
            "hls_storage": self.rec.hls_storage_enabled,
            "mp4_storage": format!("{:?}", self.rec.mp4_storage_type).to_lowercase(),
            "keeping": s.keeping.load(Relaxed),
            "segments_seen": s.segments_seen.load(Relaxed),
            "segments_kept": s.segments_kept.load(Relaxed),
            "bytes_kept": s.bytes_kept.load(Relaxed),
            "mp4_files": s.mp4_files.load(Relaxed),
            "errors": s.errors.load(Relaxed),
            "last_segment": (last > 0).then(|| crate::util::iso_ms(last)),
        })
    }
}

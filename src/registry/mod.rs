//! The running gateway's cameras, keyed by id, and what changes them while it runs: add,
//! replace and remove, one change at a time. `SIGHUP` and the directory watcher
//! ([`watcher`]) rescan `cameras/` and apply the differences through [`Registry::apply`].
//!
//! - A new camera is prepared (storage opened, spool made) on the blocking pool, then started.
//! - A changed camera whose stream is the same (only its token, URL path, PTZ or MQTT
//!   settings changed) is updated in place: its FFmpeg, recordings and viewers carry on.
//! - Any other change replaces it: the old camera is stopped completely (FFmpeg reaped,
//!   video pipeline and frame database closed, viewers told why) before the new one touches
//!   the spool or the database.
//! - A camera file that is now broken leaves its camera running as it was; the problem is
//!   shown in `/api/status`.

pub mod housekeeping;
pub mod report;
pub mod status;
pub mod watcher;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tracing::{info, warn};

use crate::camera::Camera;
use crate::config::{CameraConfig, CameraSet, Config, RejectedCamera};
use crate::video::camera::VideoEnv;
use crate::video::export::Exports;
use status::Status;

pub struct Registry {
    pub config: Config,
    /// Where camera files are read from (`cameras/` next to the config by default).
    pub camera_dir: PathBuf,
    /// The `config.json` it was started with (the admin API edits it).
    pub config_path: Option<PathBuf>,
    /// PostgreSQL and the outbox, shared by all cameras (database_type "postgresql").
    pub video: VideoEnv,
    pub exports: Arc<Exports>,
    /// Global counters and states (the per-camera ones live with each camera).
    pub status: Status,
    cameras: RwLock<BTreeMap<String, Arc<Camera>>>,
    rejected: RwLock<Vec<RejectedCamera>>,
    /// Changes are applied one at a time.
    changes: tokio::sync::Mutex<()>,
    pub started: Instant,
}

/// What [`Registry::apply`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    /// Changed without a restart (token, URL path, PTZ or MQTT settings only).
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Camera files that are broken now; their cameras (if any) run on as they were.
    pub rejected: Vec<String>,
}

impl Registry {
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        camera_dir: PathBuf,
        video: VideoEnv,
        warnings: Vec<String>,
    ) -> Arc<Registry> {
        let exports = Exports::new(&config.recording.database_path.join("exports"), config.recording.export_retention);
        let registry = Arc::new(Registry {
            config,
            camera_dir,
            config_path,
            video,
            exports,
            status: Status::new(warnings),
            cameras: RwLock::default(),
            rejected: RwLock::default(),
            changes: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        });
        if let Some(outbox) = &registry.video.outbox {
            // The outbox drops unprotected recordings first when it is full; it asks the
            // cameras' frame stores which sessions are protected.
            let weak = Arc::downgrade(&registry);
            outbox.set_protection(Box::new(move |camera, session| {
                let Some(registry) = weak.upgrade() else { return true };
                let Some(cam) = registry.camera(camera) else { return false };
                cam.frames.as_ref().is_none_or(|f| f.shared.is_protected(session))
            }));
        }
        registry
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Camera>>> {
        self.cameras.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Option<Arc<Camera>> {
        self.map().get(id).cloned()
    }

    /// The camera served under this URL segment.
    pub fn camera_by_path(&self, path: &str) -> Option<Arc<Camera>> {
        self.map().values().find(|c| c.config().path == path).cloned()
    }

    /// All cameras, ordered by id.
    pub fn cameras(&self) -> Vec<Arc<Camera>> {
        self.map().values().cloned().collect()
    }

    pub fn rejected(&self) -> Vec<RejectedCamera> {
        self.rejected.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Prepares (blocking pool) and starts a camera; `None` if the preparing task was lost.
    async fn start(&self, config: CameraConfig) -> Option<Arc<Camera>> {
        let (global, env, id) = (self.config.clone(), self.video.clone(), config.id.clone());
        match tokio::task::spawn_blocking(move || Camera::prepare(config, &global, &env)).await {
            Ok(prepared) => Some(Camera::launch(prepared, &self.config)),
            Err(e) => {
                tracing::error!(camera = %id, "cannot prepare the camera: {e}");
                None
            }
        }
    }

    /// Applies a complete camera set: adds, replaces, updates and removes so that the running
    /// cameras match it. A broken file leaves its camera (if any) as it was.
    pub async fn apply(&self, set: CameraSet) -> Applied {
        let _one_at_a_time = self.changes.lock().await;
        let mut applied = Applied::default();
        let broken: Vec<String> = set.rejected.iter().map(|r| r.id.clone()).collect();
        let wanted: BTreeMap<String, CameraConfig> = set.cameras.into_iter().map(|c| (c.id.clone(), c)).collect();
        let running: Vec<Arc<Camera>> = self.cameras();
        // Removed first (they free their URL paths), then changed, then new.
        for cam in &running {
            let id = cam.id();
            if !wanted.contains_key(&id) && !broken.contains(&id) {
                self.map_remove(&id);
                cam.stop("camera removed").await;
                info!(camera = %id, "camera removed");
                applied.removed.push(id);
            }
        }
        for (id, config) in wanted {
            match self.camera(&id) {
                Some(old) if *old.config() == config => {}
                Some(old) if Camera::same_stream(&old.config(), &config) => {
                    old.update_settings(config);
                    info!(camera = %id, "camera settings changed (stream untouched)");
                    applied.updated.push(id);
                }
                Some(old) => {
                    self.map_remove(&id);
                    old.stop("camera configuration changed; reconnect").await;
                    if let Some(new) = self.start(config).await {
                        self.map_insert(new);
                        info!(camera = %id, "camera restarted with its new configuration");
                        applied.replaced.push(id);
                    }
                }
                None => {
                    if let Some(new) = self.start(config).await {
                        self.map_insert(new);
                        info!(camera = %id, "camera added");
                        applied.added.push(id);
                    }
                }
            }
        }
        for r in &set.rejected {
            let what =
                if self.camera(&r.id).is_some() { "camera keeps running as it was" } else { "camera not started" };
            for p in &r.problems {
                warn!(camera = %r.id, "{p}");
            }
            warn!(camera = %r.id, "{} is broken; {what}", r.file.display());
        }
        for w in &set.warnings {
            warn!("{w}");
        }
        applied.rejected = broken;
        *self.rejected.write().unwrap_or_else(|e| e.into_inner()) = set.rejected;
        self.status.set_camera_warnings(set.warnings.iter().map(|w| w.to_string()).collect());
        applied
    }

    /// Reads `cameras/` again (off the async workers) and applies it. A directory that cannot
    /// be read changes nothing: it is reported, and every camera runs on as it was.
    pub async fn rescan(&self) -> Applied {
        let dir = self.camera_dir.clone();
        let read = tokio::task::spawn_blocking(move || match std::fs::read_dir(&dir) {
            Ok(_) => Ok(crate::config::load_cameras(&dir)),
            Err(e) => Err(format!("cannot read the camera directory {} ({e})", dir.display())),
        });
        match read.await {
            Ok(Err(problem)) => {
                warn!("{problem}; cameras keep running as they were");
                Applied::default()
            }
            Ok(Ok(set)) => {
                let applied = self.apply(set).await;
                info!(
                    added = applied.added.len(),
                    replaced = applied.replaced.len(),
                    updated = applied.updated.len(),
                    removed = applied.removed.len(),
                    broken = applied.rejected.len(),
                    "camera directory {} applied",
                    self.camera_dir.display()
                );
                applied
            }
            Err(e) => {
                warn!("cannot read the camera directory: {e}");
                Applied::default()
            }
        }
    }

    fn map_insert(&self, camera: Arc<Camera>) {
        self.cameras.write().unwrap_or_else(|e| e.into_inner()).insert(camera.id(), camera);
    }

    fn map_remove(&self, id: &str) {
        self.cameras.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Stops every camera and waits until each FFmpeg is reaped.
    pub async fn stop_all(&self) {
        let _one_at_a_time = self.changes.lock().await;
        let mut stops = tokio::task::JoinSet::new();
        for camera in self.cameras() {
            stops.spawn(async move { camera.stop("panelcam is shutting down").await });
        }
        while stops.join_next().await.is_some() {}
    }
}

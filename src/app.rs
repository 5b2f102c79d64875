//! The running gateway's shared state: configuration, cameras by URL segment, and the camera
//! files that were rejected (reported in `/api/status`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::camera::Camera;
use crate::config::{CameraConfig, Config, RejectedCamera};
use crate::video::camera::VideoEnv;
use crate::video::export::Exports;

pub struct App {
    pub config: Config,
    /// PostgreSQL and the outbox, shared by all cameras (database_type "postgresql").
    pub video: VideoEnv,
    pub exports: Arc<Exports>,
    cameras: RwLock<BTreeMap<String, Arc<Camera>>>,
    rejected: RwLock<Vec<RejectedCamera>>,
    pub started: Instant,
}

impl App {
    pub fn new(config: Config, video: VideoEnv) -> Arc<App> {
        let exports = Exports::new(&config.recording.database_path.join("exports"), config.recording.export_retention);
        Arc::new(App {
            config,
            video,
            exports,
            cameras: RwLock::default(),
            rejected: RwLock::default(),
            started: Instant::now(),
        })
    }

    /// Starts a camera (its FFmpeg, if enabled) and makes it reachable under its path.
    pub fn add_camera(&self, config: CameraConfig) -> Arc<Camera> {
        let camera = Camera::start(config, &self.config, &self.video);
        let mut map = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        map.insert(camera.config.path.clone(), camera.clone());
        camera
    }

    pub fn set_rejected(&self, rejected: Vec<RejectedCamera>) {
        *self.rejected.write().unwrap_or_else(|e| e.into_inner()) = rejected;
    }

    pub fn rejected(&self) -> Vec<RejectedCamera> {
        self.rejected.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn camera(&self, path: &str) -> Option<Arc<Camera>> {
        self.cameras.read().unwrap_or_else(|e| e.into_inner()).get(path).cloned()
    }

    /// All cameras, ordered by path.
    pub fn cameras(&self) -> Vec<Arc<Camera>> {
        self.cameras.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Stops every camera and waits until each FFmpeg is reaped.
    pub async fn stop_all(&self) {
        let mut stops = tokio::task::JoinSet::new();
        for camera in self.cameras() {
            stops.spawn(async move { camera.stop().await });
        }
        while stops.join_next().await.is_some() {}
    }
}

//! The gateway-wide part of the one status registry: counters and states that `/api/status`
//! reads now and MQTT and metrics will read later. Per-camera figures live with each camera
//! (`CameraStats`, the frame store's and the video pipeline's counters); the outbox keeps its
//! own. Everything here is read without I/O and without waiting for anything slow.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::{Value, json};

/// The disk guard's last verdict.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskState {
    pub used_percent: Option<f64>,
    pub limit_percent: f64,
    /// True while the disk is over the limit and nothing local could be freed.
    pub stuck: bool,
    pub message: Option<String>,
}

#[derive(Default)]
pub struct Status {
    /// Requests refused for a missing or wrong credential.
    pub auth_failures: AtomicU64,
    /// Requests refused because their address failed too often (429).
    pub auth_lockouts: AtomicU64,
    pub disk: Mutex<DiskState>,
    /// Settings that are accepted but have no effect yet, and other configuration warnings.
    config_warnings: Vec<String>,
    camera_warnings: Mutex<Vec<String>>,
    /// Why the camera directory is not being watched (missing, watch lost), if it is not.
    camera_dir_problem: Mutex<Option<String>>,
    /// `config.json` changed on disk since the start: what a restart would change, or why the
    /// file is not valid (see `registry::watcher::run_config`).
    config_file: Mutex<Option<Value>>,
    /// Live connections (HTTP and WebSocket) and the most allowed.
    pub connections: AtomicU64,
    pub max_connections: AtomicU64,
}

impl Status {
    pub fn new(config_warnings: Vec<String>) -> Status {
        Status { config_warnings, ..Status::default() }
    }

    pub fn set_camera_warnings(&self, w: Vec<String>) {
        *self.camera_warnings.lock().unwrap_or_else(|e| e.into_inner()) = w;
    }

    /// Sets or clears the camera directory's problem; true when that changed it.
    pub fn set_camera_dir_problem(&self, problem: Option<String>) -> bool {
        let mut current = self.camera_dir_problem.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *current != problem;
        *current = problem;
        changed
    }

    pub fn set_config_file(&self, report: Option<Value>) {
        *self.config_file.lock().unwrap_or_else(|e| e.into_inner()) = report;
    }

    pub fn camera_dir_problem(&self) -> Option<String> {
        self.camera_dir_problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_disk(&self, d: DiskState) {
        *self.disk.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    pub fn disk(&self) -> DiskState {
        self.disk.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.config_warnings.clone();
        w.extend(self.camera_warnings.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
        w.extend(self.camera_dir_problem());
        w
    }

    pub fn to_json(&self) -> Value {
        let d = self.disk();
        json!({
            "warnings": self.warnings(),
            "auth_failures": self.auth_failures.load(Relaxed),
            "auth_lockouts": self.auth_lockouts.load(Relaxed),
            "connections": self.connections.load(Relaxed),
            "max_connections": self.max_connections.load(Relaxed),
            "config_file": self.config_file.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "camera_directory": {
                "watched": self.camera_dir_problem().is_none(),
                "problem": self.camera_dir_problem(),
            },
            "disk": {
                "used_percent": d.used_percent.map(|p| (p * 10.0).round() / 10.0),
                "limit_percent": d.limit_percent,
                "over_limit_and_nothing_to_free": d.stuck,
                "message": d.message,
            },
        })
    }
}

//! Per-camera status and counters, written by the supervisor and the viewers, read by the
//! API (and later MQTT and metrics). Atomics only on the frame path; the error text is behind
//! a mutex because it changes rarely.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use serde_json::{Value, json};

use crate::util::now_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CameraState {
    /// FFmpeg started, no frame yet.
    Starting = 0,
    /// Frames are arriving.
    Streaming = 1,
    /// FFmpeg ended or stalled; waiting `reconnect_interval` (with backoff) to restart.
    Reconnecting = 2,
    Stopped = 3,
    /// `enabled: false` in the camera file.
    Disabled = 4,
    /// The camera cannot run at all (e.g. its FFmpeg command cannot be built).
    Failed = 5,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Starting => "starting",
            CameraState::Streaming => "streaming",
            CameraState::Reconnecting => "reconnecting",
            CameraState::Stopped => "stopped",
            CameraState::Disabled => "disabled",
            CameraState::Failed => "failed",
        }
    }

    fn from_u8(v: u8) -> CameraState {
        match v {
            0 => CameraState::Starting,
            1 => CameraState::Streaming,
            2 => CameraState::Reconnecting,
            3 => CameraState::Stopped,
            4 => CameraState::Disabled,
            _ => CameraState::Failed,
        }
    }
}

#[derive(Default)]
pub struct CameraStats {
    state: AtomicU8,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub clients: AtomicU32,
    /// FFmpeg starts after the first one.
    pub restarts: AtomicU64,
    /// Frames per second × 1000 over the last second.
    fps_milli: AtomicU32,
    bitrate_kbps: AtomicU32,
    last_frame_ms: AtomicI64,
    streaming_since_ms: AtomicI64,
    pub ffmpeg_pid: AtomicU32,
    /// Last time the supervisor task ran (for the service watchdog); 0 = not supervised.
    heartbeat_ms: AtomicI64,
    /// Bytes the MJPEG splitter discarded plus frames it dropped (oversize, corrupt).
    pub dropped_frames: AtomicU64,
    last_error: Mutex<Option<(i64, String)>>,
}

impl CameraStats {
    pub fn new(state: CameraState) -> CameraStats {
        let s = CameraStats::default();
        s.set_state(state);
        s
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_state(&self, state: CameraState) {
        let old = self.state.swap(state as u8, Relaxed);
        if state == CameraState::Streaming && old != CameraState::Streaming as u8 {
            self.streaming_since_ms.store(now_ms(), Relaxed);
        }
        if state != CameraState::Streaming {
            self.streaming_since_ms.store(0, Relaxed);
            self.fps_milli.store(0, Relaxed);
            self.bitrate_kbps.store(0, Relaxed);
        }
    }

    /// The supervisor is alive (called at least every second while it runs).
    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms().max(1), Relaxed);
    }

    /// The supervisor has ended: nothing to watch any more.
    pub fn unsupervised(&self) {
        self.heartbeat_ms.store(0, Relaxed);
    }

    pub fn supervised(&self) -> bool {
        self.heartbeat_ms.load(Relaxed) != 0
    }

    pub fn heartbeat_ms(&self) -> i64 {
        self.heartbeat_ms.load(Relaxed)
    }

    pub fn record_frame(&self, len: usize, captured_ms: i64) {
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(len as u64, Relaxed);
        self.last_frame_ms.store(captured_ms, Relaxed);
    }

    pub fn set_rates(&self, fps: f64, kbps: f64) {
        self.fps_milli.store((fps * 1000.0) as u32, Relaxed);
        self.bitrate_kbps.store(kbps as u32, Relaxed);
    }

    pub fn fps(&self) -> f64 {
        // A camera that stopped delivering has no rate, whatever the last window said.
        if now_ms() - self.last_frame_ms.load(Relaxed) > 2000 {
            return 0.0;
        }
        f64::from(self.fps_milli.load(Relaxed)) / 1000.0
    }

    pub fn set_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((now_ms(), message));
    }

    pub fn last_error(&self) -> Option<(i64, String)> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The status object of `/api/status` and `/api/cameras`. Contains no secrets: the
    /// error text was redacted when it was recorded.
    pub fn to_json(&self) -> Value {
        let since = self.streaming_since_ms.load(Relaxed);
        let uptime = if since > 0 { (now_ms() - since).max(0) / 1000 } else { 0 };
        let fps = self.fps();
        let last_frame = self.last_frame_ms.load(Relaxed);
        let (error_at, error) = match self.last_error() {
            Some((at, text)) => (Some(crate::util::iso_ms(at)), Some(text)),
            None => (None, None),
        };
        json!({
            "state": self.state().as_str(),
            "fps": (fps * 10.0).round() / 10.0,
            "bitrate_kbps": if fps > 0.0 { self.bitrate_kbps.load(Relaxed) } else { 0 },
            "frames": self.frames.load(Relaxed),
            "clients": self.clients.load(Relaxed),
            "uptime_secs": uptime,
            "restarts": self.restarts.load(Relaxed),
            "dropped_frames": self.dropped_frames.load(Relaxed),
            "last_frame": (last_frame > 0).then(|| crate::util::iso_ms(last_frame)),
            "last_error": error,
            "last_error_at": error_at,
        })
    }
}

/// Counts a viewer while alive; obtained with [`ClientGuard::try_new`] within the camera's
/// viewer limit.
pub struct ClientGuard(std::sync::Arc<CameraStats>);

impl ClientGuard {
    /// A viewer slot, or `None` when the camera already has `max` viewers.
    pub fn try_new(stats: &std::sync::Arc<CameraStats>, max: u32) -> Option<ClientGuard> {
        stats
            .clients
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| ClientGuard(stats.clone()))
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_are_counted_within_the_limit() {
        let stats = std::sync::Arc::new(CameraStats::new(CameraState::Streaming));
        let a = ClientGuard::try_new(&stats, 2).unwrap();
        let _b = ClientGuard::try_new(&stats, 2).unwrap();
        assert!(ClientGuard::try_new(&stats, 2).is_none());
        drop(a);
        assert!(ClientGuard::try_new(&stats, 2).is_some());
        assert_eq!(stats.clients.load(Relaxed), 1);
    }
}

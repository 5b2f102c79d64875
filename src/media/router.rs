//! The input side of a camera whose H.264/H.265 panelcam depayloads itself: its one RTSP
//! session (shared by live passthrough, recording and the JPEG transcoder), restarted with
//! the same backoff as an FFmpeg input, and the camera's status kept as for FFmpeg.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::Event;
use super::hub::Hub;
use crate::camera::stats::{CameraState, CameraStats};
use crate::camera::supervisor::restart_delay;
use crate::config::CameraConfig;
use crate::rtsp;

const HEARTBEAT: Duration = Duration::from_secs(1);

/// How the router ended.
pub enum Outcome {
    Stopped,
    /// The camera offers nothing panelcam can depayload: it goes through FFmpeg instead.
    Unsupported(String),
}

pub struct Router {
    pub camera: Arc<CameraConfig>,
    pub hub: Arc<Hub>,
    pub stats: Arc<CameraStats>,
}

/// Frame and bit rate of the camera's own stream over one-second windows.
struct Rates {
    since: Instant,
    units: u32,
    bytes: u64,
}

impl Router {
    pub async fn run(&self, stop: &mut watch::Receiver<bool>) -> Outcome {
        let options = rtsp::Options {
            url: self.camera.url.expose().to_string(),
            transport: self.camera.transport,
            data_timeout: self.camera.data_timeout,
        };
        let mut failures = 0u32;
        let mut first = true;
        while !*stop.borrow() {
            if !first {
                self.stats.restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            first = false;
            self.stats.set_state(CameraState::Starting);
            self.hub.session_started();
            let mut units = 0u64;
            let mut rates = Rates { since: Instant::now(), units: 0, bytes: 0 };
            let stats = self.stats.clone();
            let hub = self.hub.clone();
            let camera = self.camera.id.clone();
            let mut on_event = |event: Event| {
                if let Event::Unit(au) = &event {
                    units += 1;
                    if units == 1 {
                        stats.set_state(CameraState::Streaming);
                        info!(camera = %camera, bytes = au.data.len(), "first picture (panelcam's RTSP client)");
                    }
                    stats.record_frame(au.data.len(), au.wall_ms);
                    rates.units += 1;
                    rates.bytes += au.data.len() as u64;
                    let elapsed = au.arrived.duration_since(rates.since).as_secs_f64();
                    if elapsed >= 1.0 {
                        stats.set_rates(f64::from(rates.units) / elapsed, rates.bytes as f64 * 8.0 / 1000.0 / elapsed);
                        rates = Rates { since: au.arrived, units: 0, bytes: 0 };
                    }
                }
                hub.publish(event);
            };
            let session = rtsp::run(&options, &mut on_event, stop);
            let beat = async {
                loop {
                    if crate::fault::active("supervisor.stall") {
                        // Test hook: this camera's task hangs (the runtime does not).
                        std::future::pending::<()>().await;
                    }
                    self.stats.beat();
                    tokio::time::sleep(HEARTBEAT).await;
                }
            };
            let result = tokio::select! {
                r = session => r,
                _ = beat => Ok(()),
            };
            self.hub.session_ended();
            match result {
                Ok(()) => break,
                Err(rtsp::Error::Unsupported(what)) => return Outcome::Unsupported(what),
                Err(rtsp::Error::Failed(reason)) => {
                    failures = if units > 0 { 0 } else { failures + 1 };
                    let delay = restart_delay(self.camera.reconnect_interval, failures.max(1));
                    warn!(camera = %self.camera.id, "{reason}; connecting again in {:.1}s", delay.as_secs_f64());
                    self.stats.set_error(reason);
                    self.stats.set_state(CameraState::Reconnecting);
                    self.stats.set_rates(0.0, 0.0);
                    if !wait(delay, stop, &self.stats).await {
                        break;
                    }
                }
            }
        }
        Outcome::Stopped
    }
}

/// Waits `delay`, beating every second; `false` when told to stop meanwhile.
async fn wait(delay: Duration, stop: &mut watch::Receiver<bool>, stats: &CameraStats) -> bool {
    let until = tokio::time::Instant::now() + delay;
    loop {
        stats.beat();
        let next = until.min(tokio::time::Instant::now() + HEARTBEAT);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
        if tokio::time::Instant::now() >= until {
            return true;
        }
    }
}

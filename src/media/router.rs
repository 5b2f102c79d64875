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
    /// `transcoding.debug_capture`: log the camera's picture rate every second.
    pub debug_capture: bool,
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
            // Milliseconds since the session started at which the last picture arrived.
            let last_unit_ms = std::sync::atomic::AtomicU64::new(0);
            let started = Instant::now();
            let mut rates = Rates { since: Instant::now(), units: 0, bytes: 0 };
            let stats = self.stats.clone();
            let hub = self.hub.clone();
            let camera = self.camera.id.clone();
            let debug_capture = self.debug_capture;
            let mut on_event = |event: Event| {
                if let Event::Unit(au) = &event {
                    units += 1;
                    last_unit_ms.store(started.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
                    if units == 1 {
                        stats.set_state(CameraState::Streaming);
                        info!(camera = %camera, bytes = au.data.len(), "first picture (panelcam's RTSP client)");
                    }
                    stats.record_frame(au.data.len(), au.wall_ms);
                    rates.units += 1;
                    rates.bytes += au.data.len() as u64;
                    let elapsed = au.arrived.duration_since(rates.since).as_secs_f64();
                    if elapsed >= 1.0 {
                        let fps = f64::from(rates.units) / elapsed;
                        stats.set_rates(fps, rates.bytes as f64 * 8.0 / 1000.0 / elapsed);
                        if debug_capture {
                            info!(camera = %camera, "CAPTURE: {fps:.1}/s target: camera rate (panelcam's RTSP client)");
                        }
                        rates = Rates { since: au.arrived, units: 0, bytes: 0 };
                    }
                }
                hub.publish(event);
            };
            let session = rtsp::run(&options, &mut on_event, stop);
            // The camera's data timeout covers the whole session, its setup included (as it
            // did for FFmpeg): a camera that accepts the connection and then says nothing
            // is restarted like one that stops sending.
            let data_timeout = self.camera.data_timeout;
            let watchdog = async {
                loop {
                    if crate::fault::active("supervisor.stall") {
                        // Test hook: this camera's task hangs (the runtime does not).
                        std::future::pending::<()>().await;
                    }
                    self.stats.beat();
                    tokio::time::sleep(HEARTBEAT).await;
                    let last = Duration::from_millis(last_unit_ms.load(std::sync::atomic::Ordering::Relaxed));
                    if started.elapsed().saturating_sub(last) >= data_timeout {
                        let what = if last.is_zero() { "no first picture" } else { "no picture" };
                        let secs = data_timeout.as_secs_f64();
                        return Err(rtsp::Error::Failed(format!("{what} for {secs:.0}s (data timeout)")));
                    }
                }
            };
            let result = tokio::select! {
                r = session => r,
                r = watchdog => r,
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

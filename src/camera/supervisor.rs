//! The per-camera loop: start FFmpeg, cut its stdout into frames, publish them, and restart
//! FFmpeg when it exits or stalls, with `reconnect_interval` and a capped backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, warn};

use super::process::{FfmpegProcess, describe_exit};
use super::stats::{CameraState, CameraStats};
use super::stderr::{StderrLog, StderrTail, pump};
use crate::bus::{Frame, FrameBus, RatePacer};
use crate::config::{CameraConfig, Transcoding};
use crate::mjpeg::MjpegSplitter;
use crate::util::now_ms;

/// Time FFmpeg gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often the supervisor proves it is alive (the service watchdog looks at it).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The backoff never waits longer than this (or `reconnect_interval`, if that is longer):
/// a camera that comes back after an hour must be live again within a minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Supervisor {
    pub camera: Arc<CameraConfig>,
    pub transcoding: Transcoding,
    pub program: String,
    pub args: Vec<String>,
    pub bus: Arc<FrameBus>,
    pub stats: Arc<CameraStats>,
    pub stderr: StderrLog,
    pub max_frame_size: usize,
    /// The HLS spool FFmpeg writes into, re-created before each start: a missing directory
    /// would make FFmpeg fail as a whole, live preview included.
    pub spool: Option<std::path::PathBuf>,
}

/// Why one FFmpeg run ended.
enum Ended {
    Stopped,
    Failed { reason: String, had_frames: bool },
}

/// Delay before restart number `failures` (consecutive runs without a frame): the configured
/// interval for the first three, then doubling up to [`MAX_BACKOFF`].
pub fn restart_delay(interval: Duration, failures: u32) -> Duration {
    if failures <= 3 {
        return interval;
    }
    let factor = 1u32 << (failures - 3).min(10);
    (interval * factor).min(MAX_BACKOFF.max(interval))
}

impl Supervisor {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        self.stats.beat();
        let mut failures = 0u32;
        let mut first = true;
        while !*stop.borrow() {
            if !first {
                self.stats.restarts.fetch_add(1, Relaxed);
            }
            first = false;
            self.stats.set_state(CameraState::Starting);
            match self.run_once(&mut stop).await {
                Ended::Stopped => break,
                Ended::Failed { reason, had_frames } => {
                    failures = if had_frames { 0 } else { failures + 1 };
                    let delay = restart_delay(self.camera.reconnect_interval, failures.max(1));
                    warn!(camera = %self.camera.id, "{reason}; restarting FFmpeg in {:.1}s", delay.as_secs_f64());
                    self.stats.set_error(reason);
                    self.stats.set_state(CameraState::Reconnecting);
                    if !self.wait(delay, &mut stop).await {
                        break;
                    }
                }
            }
        }
        self.stats.set_state(CameraState::Stopped);
        self.stats.unsupervised();
        info!(camera = %self.camera.id, "stopped");
    }

    /// Waits `delay`, beating every second; `false` when told to stop meanwhile.
    async fn wait(&self, delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            self.stats.beat();
            let next = until.min(tokio::time::Instant::now() + HEARTBEAT);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = stop.changed() => return false,
            }
            if tokio::time::Instant::now() >= until {
                return true;
            }
        }
    }

    async fn run_once(&self, stop: &mut watch::Receiver<bool>) -> Ended {
        if let Some(dir) = &self.spool
            && let Err(e) = tokio::fs::create_dir_all(dir).await
        {
            warn!(camera = %self.camera.id, "cannot create the spool {}: {e}", dir.display());
        }
        // Each run writes its own HLS init segment (see video::camera::RUN_PLACEHOLDER).
        let run = crate::util::now_ms().to_string();
        let args: Vec<String> =
            self.args.iter().map(|a| a.replace(crate::video::camera::RUN_PLACEHOLDER, &run)).collect();
        let spawned = match FfmpegProcess::spawn(&self.program, &args) {
            Ok(s) => s,
            Err(e) => {
                return Ended::Failed { reason: format!("cannot start {}: {e}", self.program), had_frames: false };
            }
        };
        let pid = spawned.process.pid();
        self.stats.ffmpeg_pid.store(pid, Relaxed);
        info!(camera = %self.camera.id, pid, "FFmpeg started");
        let tail = StderrTail::default();
        // A spawned task starts outside every span: keep the camera's COMPONENT on FFmpeg's lines.
        let stderr_task = tokio::spawn(pump(spawned.stderr, self.stderr.clone(), tail.clone()).in_current_span());

        let (reason, frames) = self.read_frames(spawned.stdout, stop).await;
        let status = spawned.process.stop(STOP_GRACE).await;
        self.stats.ffmpeg_pid.store(0, Relaxed);
        // Let the stderr pump drain FFmpeg's last words (the reason it failed).
        let _ = tokio::time::timeout(Duration::from_millis(500), stderr_task).await;
        match reason {
            None => Ended::Stopped,
            Some(reason) => {
                let mut text = format!("{reason} ({})", describe_exit(status));
                if let Some(line) = tail.best_error() {
                    text.push_str(": ");
                    text.push_str(&line);
                }
                Ended::Failed { reason: text, had_frames: frames > 0 }
            }
        }
    }

    /// Reads until FFmpeg ends, stalls or we are told to stop. Returns the failure reason
    /// (`None` = stop requested) and how many frames arrived.
    async fn read_frames(&self, mut stdout: ChildStdout, stop: &mut watch::Receiver<bool>) -> (Option<String>, u64) {
        let cam = &self.camera;
        let mut buf = vec![0u8; cam.chunk_read_size];
        let mut splitter = MjpegSplitter::new(self.max_frame_size);
        let mut pacer = RatePacer::new(self.transcoding.output_framerate);
        let mut meter = RateMeter::new(self.transcoding.clone());
        let mut frames = 0u64;
        let timeout = tokio::time::sleep(cam.data_timeout);
        tokio::pin!(timeout);
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if crate::fault::active("supervisor.stall") {
                // Test hook: this supervisor hangs (the runtime does not).
                std::future::pending::<()>().await;
            }
            tokio::select! {
                _ = beat.tick() => {
                    self.stats.beat();
                    continue;
                }
                read = stdout.read(&mut buf) => match read {
                    Ok(0) => return (Some("FFmpeg exited".into()), frames),
                    Ok(n) => splitter.push(buf.get(..n).unwrap_or_default()),
                    Err(e) => return (Some(format!("reading FFmpeg output failed: {e}")), frames),
                },
                _ = &mut timeout => {
                    let what = if frames == 0 { "no first frame" } else { "no frame" };
                    return (Some(format!("{what} for {:.0}s (data timeout)", cam.data_timeout.as_secs_f64())), frames);
                }
                _ = stop.changed() => return (None, frames),
            }
            let mut got_frame = false;
            while let Some(jpeg) = splitter.next_frame() {
                let received = Instant::now();
                let captured_ms = now_ms();
                frames += 1;
                got_frame = true;
                if frames == 1 {
                    self.stats.set_state(CameraState::Streaming);
                    info!(camera = %cam.id, bytes = jpeg.len(), "first frame");
                }
                self.stats.record_frame(jpeg.len(), captured_ms);
                meter.record(&jpeg, received, &self.stats, &cam.id);
                let seq = self.stats.frames.load(Relaxed);
                let live = pacer.admit(received);
                self.bus.publish(Frame { jpeg, captured_ms, seq, received }, live);
            }
            if got_frame {
                timeout.as_mut().reset(tokio::time::Instant::now() + cam.data_timeout);
                let d = splitter.drops();
                self.stats.dropped_frames.store(d.oversize_frames + d.corrupt_frames, Relaxed);
            }
        }
    }
}

/// Frame and bit rate over one-second windows, plus the two debug switches.
struct RateMeter {
    transcoding: Transcoding,
    window_start: Instant,
    frames: u32,
    bytes: u64,
    duplicates: u32,
    previous: Option<bytes::Bytes>,
}

impl RateMeter {
    fn new(transcoding: Transcoding) -> RateMeter {
        RateMeter { transcoding, window_start: Instant::now(), frames: 0, bytes: 0, duplicates: 0, previous: None }
    }

    fn record(&mut self, jpeg: &bytes::Bytes, now: Instant, stats: &CameraStats, camera: &str) {
        self.frames += 1;
        self.bytes += jpeg.len() as u64;
        if self.transcoding.debug_duplicate_frames {
            if self.previous.as_ref() == Some(jpeg) {
                self.duplicates += 1;
            }
            self.previous = Some(jpeg.clone());
        }
        let elapsed = now.duration_since(self.window_start).as_secs_f64();
        if elapsed < 1.0 {
            return;
        }
        let fps = f64::from(self.frames) / elapsed;
        let kbps = self.bytes as f64 * 8.0 / 1000.0 / elapsed;
        stats.set_rates(fps, kbps);
        if self.transcoding.debug_capture {
            let target = self.transcoding.capture_framerate;
            info!(
                camera,
                "CAPTURE: {fps:.1}/s target: {}",
                if target > 0.0 { format!("{target}/s") } else { "camera rate".into() }
            );
        }
        if self.transcoding.debug_duplicate_frames {
            info!(camera, "DUPLICATES: {} of {} frames in {elapsed:.1}s", self.duplicates, self.frames);
        }
        debug!(camera, fps, kbps, "rates");
        self.window_start = now;
        self.frames = 0;
        self.bytes = 0;
        self.duplicates = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_the_interval_and_is_capped() {
        let i = Duration::from_secs(5);
        assert_eq!(restart_delay(i, 1), i);
        assert_eq!(restart_delay(i, 3), i);
        assert_eq!(restart_delay(i, 4), Duration::from_secs(10));
        assert_eq!(restart_delay(i, 50), Duration::from_secs(60));
        assert_eq!(restart_delay(Duration::from_secs(120), 50), Duration::from_secs(120));
    }
}

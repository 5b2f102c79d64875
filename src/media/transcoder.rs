//! The on-demand JPEG transcoder of a camera whose H.264/H.265 panelcam depayloads: an
//! FFmpeg process that decodes and encodes JPEGs only while someone wants them
//! ([`crate::bus::JpegDemand`]), and stops a grace period after the last one leaves. A
//! camera nobody watches as MJPEG decodes nothing.
//!
//! Its first JPEG comes quickly: FFmpeg is fed the current GOP first (decoded, not encoded,
//! up to the current picture), so it need not wait for the camera's next keyframe. Each
//! access unit is written the moment the hub has it, followed by an access unit delimiter:
//! FFmpeg's parser then knows the picture is complete without waiting for the next one.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{Instrument, info, warn};

use super::hub::{Hub, Unit};
use super::{Codec, Params, nal_units};
use crate::bus::{Frame, FrameBus, RatePacer};
use crate::camera::argv::transcoder_args;
use crate::camera::process::FfmpegProcess;
use crate::camera::stats::CameraStats;
use crate::camera::stderr::{StderrLog, StderrTail, pump};
use crate::config::{CameraConfig, Transcoding};
use crate::mjpeg::MjpegSplitter;
use crate::util::now_ms;

/// Wait before starting again after FFmpeg failed while JPEGs were wanted.
const RETRY: Duration = Duration::from_secs(1);
const STOP_GRACE: Duration = Duration::from_secs(2);
/// No JPEG for this long while FFmpeg is fed is a failure (a stuck decoder).
const NO_JPEG: Duration = Duration::from_secs(10);

pub struct Transcoder {
    pub camera: Arc<CameraConfig>,
    pub transcoding: Transcoding,
    pub program: String,
    pub hub: Arc<Hub>,
    pub bus: Arc<FrameBus>,
    pub stats: Arc<CameraStats>,
    pub stderr: StderrLog,
    pub max_frame_size: usize,
}

/// Why one FFmpeg run ended.
enum Ended {
    /// Nobody wanted JPEGs for the grace period.
    Idle,
    /// The stream's parameters changed (a new resolution): a new FFmpeg starts at once, as
    /// FFmpeg's JPEG encoder cannot change its picture size midway.
    NewParameters,
    Stopped,
    Failed(String),
}

impl Transcoder {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut demand = self.bus.jpeg_demand();
        loop {
            tokio::select! {
                wanted = demand.wait_for(|n| *n > 0) => if wanted.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.run_once(&mut demand, &mut stop).await {
                Ended::Idle => {
                    info!(camera = %self.camera.id, "JPEG transcoder stopped: no JPEG consumer for {}s", self.grace().as_secs_f64())
                }
                Ended::Stopped => return,
                Ended::NewParameters => {
                    info!(camera = %self.camera.id, "JPEG transcoder restarts for the camera's new stream parameters");
                    continue;
                }
                Ended::Failed(reason) => {
                    warn!(camera = %self.camera.id, "JPEG transcoder: {reason}; starting again in {}s", RETRY.as_secs());
                    self.stats.set_error(format!("JPEG transcoder: {reason}"));
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            self.bus.clear_latest();
        }
    }

    async fn run_once(&self, demand: &mut watch::Receiver<usize>, stop: &mut watch::Receiver<bool>) -> Ended {
        let mut sub = self.hub.subscribe();
        // Without a GOP (the camera is connecting), start at the next keyframe.
        let mut backlog = std::mem::take(&mut sub.gop);
        if backlog.is_empty() {
            loop {
                tokio::select! {
                    unit = sub.units.recv() => match unit {
                        Ok(u) if u.au.keyframe => { backlog.push(u); break }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return Ended::Stopped,
                    },
                    _ = stop.wait_for(|s| *s) => return Ended::Stopped,
                    _ = demand.wait_for(|n| *n == 0) => return Ended::Idle,
                }
            }
        }
        let Some(codec) = backlog.first().map(|u| u.track.params.codec) else { return Ended::Idle };
        let args = transcoder_args(&self.camera, &self.transcoding, codec, backlog.len());
        let mut spawned = match FfmpegProcess::spawn_fed(&self.program, &args) {
            Ok(s) => s,
            Err(e) => return Ended::Failed(format!("cannot start {}: {e}", self.program)),
        };
        let pid = spawned.process.pid();
        self.stats.ffmpeg_pid.store(pid, Relaxed);
        info!(camera = %self.camera.id, pid, backlog = backlog.len(), "JPEG transcoder started");
        let tail = StderrTail::default();
        let stderr_task = tokio::spawn(pump(spawned.stderr, self.stderr.clone(), tail.clone()).in_current_span());
        let Some(stdin) = spawned.stdin.take() else { return Ended::Failed("no pipe to FFmpeg's input".into()) };
        let mut feeder = tokio::spawn(feed(stdin, backlog, sub.units).in_current_span());
        let ended = self.read_jpegs(spawned.stdout, demand, stop, &mut feeder).await;
        feeder.abort();
        let status = spawned.process.stop(STOP_GRACE).await;
        self.stats.ffmpeg_pid.store(0, Relaxed);
        let _ = tokio::time::timeout(Duration::from_millis(500), stderr_task).await;
        match ended {
            Ended::Failed(reason) => {
                let mut text = format!("{reason} ({})", crate::camera::process::describe_exit(status));
                if let Some(line) = tail.best_error() {
                    text.push_str(": ");
                    text.push_str(&line);
                }
                Ended::Failed(text)
            }
            other => other,
        }
    }

    /// The transcoder keeps running this long after the last JPEG consumer left
    /// (`transcoding.jpeg_idle_seconds`): a page reload or a viewer switching cameras back
    /// and forth must not restart FFmpeg each time.
    fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.transcoding.jpeg_idle_seconds)
    }

    /// Publishes FFmpeg's JPEGs until it ends, nobody wants them for [`Self::grace`], or stop.
    async fn read_jpegs(
        &self,
        mut stdout: ChildStdout,
        demand: &mut watch::Receiver<usize>,
        stop: &mut watch::Receiver<bool>,
        feeder: &mut tokio::task::JoinHandle<Fed>,
    ) -> Ended {
        let mut feeding = true;
        let mut buf = vec![0u8; self.camera.chunk_read_size.max(4096)];
        let mut splitter = MjpegSplitter::new(self.max_frame_size);
        let mut pacer = RatePacer::new(self.transcoding.output_framerate);
        let mut seq = 0u64;
        let mut idle_since: Option<Instant> = None;
        let mut last_jpeg = Instant::now();
        let mut units_then = self.hub.stats.units.load(Relaxed);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut duplicates = Duplicates::default();
        loop {
            tokio::select! {
                read = stdout.read(&mut buf) => match read {
                    Ok(0) => return Ended::Failed("FFmpeg exited".into()),
                    Ok(n) => splitter.push(buf.get(..n).unwrap_or_default()),
                    Err(e) => return Ended::Failed(format!("reading FFmpeg output failed: {e}")),
                },
                _ = tick.tick() => {
                    if *demand.borrow() > 0 {
                        idle_since = None;
                    } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= self.grace() {
                        return Ended::Idle;
                    }
                    // Stuck only if FFmpeg was fed meanwhile: a camera that is down is not
                    // the transcoder's failure.
                    let fed = self.hub.stats.units.load(Relaxed).saturating_sub(units_then);
                    if last_jpeg.elapsed() >= NO_JPEG && fed > 25 {
                        return Ended::Failed(format!("no JPEG for {}s", NO_JPEG.as_secs()));
                    }
                    continue;
                }
                fed = &mut *feeder, if feeding => {
                    feeding = false;
                    // Anything else ends with FFmpeg's exit, seen on its output.
                    if let Ok(Fed::NewParameters) = fed {
                        return Ended::NewParameters;
                    }
                    continue;
                }
                _ = stop.wait_for(|s| *s) => return Ended::Stopped,
            }
            while let Some(jpeg) = splitter.next_frame() {
                let received = Instant::now();
                last_jpeg = received;
                units_then = self.hub.stats.units.load(Relaxed);
                seq += 1;
                if self.transcoding.debug_duplicate_frames {
                    duplicates.count(&jpeg, &self.camera.id);
                }
                let live = pacer.admit(received);
                self.bus.publish(Frame { jpeg, captured_ms: now_ms(), seq, received }, live);
            }
        }
    }
}

/// `transcoding.debug_duplicate_frames`: how many JPEGs equal their predecessor, logged
/// every second.
#[derive(Default)]
struct Duplicates {
    since: Option<Instant>,
    frames: u32,
    same: u32,
    previous: Option<bytes::Bytes>,
}

impl Duplicates {
    fn count(&mut self, jpeg: &bytes::Bytes, camera: &str) {
        self.frames += 1;
        if self.previous.as_ref() == Some(jpeg) {
            self.same += 1;
        }
        self.previous = Some(jpeg.clone());
        let since = *self.since.get_or_insert_with(Instant::now);
        let elapsed = since.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            info!(camera, "DUPLICATES: {} of {} frames in {elapsed:.1}s", self.same, self.frames);
            *self = Duplicates { previous: self.previous.take(), ..Duplicates::default() };
        }
    }
}

/// Why the feed ended.
enum Fed {
    /// FFmpeg's input closed or the hub went away.
    Closed,
    /// A unit of new stream parameters came: this FFmpeg cannot take it.
    NewParameters,
}

/// Writes the backlog, then every new unit, to FFmpeg's stdin. A feed that falls behind
/// (FFmpeg slower than the camera) resumes at the next keyframe.
async fn feed(
    mut stdin: ChildStdin,
    backlog: Vec<Arc<Unit>>,
    mut units: tokio::sync::broadcast::Receiver<Arc<Unit>>,
) -> Fed {
    let mut buf = BytesMut::with_capacity(256 << 10);
    let mut generation = None;
    let started_with = backlog.first().map(|u| u.track.generation);
    for unit in &backlog {
        annex_b(unit, &mut generation, &mut buf);
    }
    if stdin.write_all(&buf).await.is_err() {
        return Fed::Closed;
    }
    let mut need_keyframe = false;
    loop {
        let unit = match units.recv().await {
            Ok(u) => u,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "the JPEG transcoder's feed fell behind; it resumes at the next keyframe");
                need_keyframe = true;
                continue;
            }
            Err(RecvError::Closed) => return Fed::Closed,
        };
        if started_with.is_some_and(|g| g != unit.track.generation) {
            return Fed::NewParameters;
        }
        if need_keyframe && !unit.au.keyframe {
            continue;
        }
        need_keyframe = false;
        buf.clear();
        annex_b(&unit, &mut generation, &mut buf);
        if stdin.write_all(&buf).await.is_err() {
            return Fed::Closed;
        }
    }
}

/// A unit as an Annex B byte stream, preceded by the parameter sets whenever they are new
/// to FFmpeg (a camera may send them only in its SDP) and followed by an access unit
/// delimiter that ends the picture for FFmpeg's parser.
pub fn annex_b(unit: &Unit, generation: &mut Option<u64>, out: &mut BytesMut) {
    const START: [u8; 4] = [0, 0, 0, 1];
    let params = &unit.track.params;
    if *generation != Some(unit.track.generation) && unit.au.keyframe {
        *generation = Some(unit.track.generation);
        for nal in parameter_sets(params) {
            out.put_slice(&START);
            out.put_slice(nal);
        }
    }
    for nal in nal_units(&unit.au.data) {
        out.put_slice(&START);
        out.put_slice(nal);
    }
    out.put_slice(&START);
    out.put_slice(match params.codec {
        // nal_unit_type 9, primary_pic_type 7 (any slice type).
        Codec::H264 => &[0x09, 0xf0],
        // nal_unit_type 35 (AUD_NUT), layer 0, tid 1; pic_type 2 (any).
        Codec::H265 => &[0x46, 0x01, 0x50],
    });
}

fn parameter_sets(p: &Params) -> impl Iterator<Item = &[u8]> {
    p.vps.iter().map(|v| v.as_ref()).chain([p.sps.as_ref(), p.pps.as_ref()])
}

//! One camera's access units, from its RTSP session to every consumer, without copies and
//! without anybody waiting for anybody.
//!
//! - The **current GOP** (the last keyframe and every unit since) is kept, so a new viewer
//!   starts with a picture at once instead of waiting up to a GOP for the next keyframe.
//! - Units go out on a bounded broadcast ring. A consumer that falls behind by more than the
//!   ring is told how many it lost and resumes at the next keyframe: it jumps to the live
//!   edge instead of drifting, and it never grows memory or slows the others.
//! - Each unit's fMP4 fragment is built once, by the first viewer that needs it, and shared.
//! - The timeline (90 kHz decode times) keeps running across camera reconnects, so a browser
//!   never sees time go backwards within one connection.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::fmp4;
use super::{AccessUnit, Event, Params};

/// Units the broadcast ring holds: 1.3 s at 25 fps. A viewer further behind skips ahead to
/// the next keyframe. The ring keeps its units alive, so it is memory: 32 units of a 2 Mbit/s
/// camera are about 320 KiB (128 made a stalled-viewer test see 2.5 MiB more RSS).
const RING: usize = 32;
/// A GOP longer than this is not kept (new viewers then wait for the next keyframe): a camera
/// with a 60 s GOP must not hold a minute of video in the panel's memory.
const GOP_MAX_UNITS: usize = 600;
const GOP_MAX_BYTES: usize = 16 << 20;
/// The recording thread is woken once per GOP, not once per picture: it only writes when a
/// segment is complete, which is at a keyframe, and each wakeup costs a futex round trip
/// (docs/benchmarks.md, "Media router"). A longer GOP is handed over in pieces of this many.
const RECORD_BATCH: usize = 250;
/// Frame duration assumed before two units have been seen (25 fps).
const DEFAULT_DURATION: u32 = 3600;

/// The stream's current parameters and what a viewer needs to start decoding them.
pub struct LiveTrack {
    pub params: Params,
    pub track: fmp4::Track,
    /// `ftyp` + `moov`.
    pub init: Bytes,
    /// Counts parameter changes; a viewer re-initialises when it changes.
    pub generation: u64,
}

/// An access unit on the hub's timeline.
pub struct Unit {
    pub au: AccessUnit,
    pub track: Arc<LiveTrack>,
    /// Counts RTSP sessions: a new one starts a new recording run.
    pub session: u64,
    /// 90 kHz, never decreasing for the life of the hub.
    pub decode_time: u64,
    /// The interval before this unit, the best guess of its own duration.
    pub duration: u32,
    pub sequence: u32,
    fragment: OnceLock<Bytes>,
}

impl Unit {
    /// This unit as one `moof` + `mdat`, built once however many viewers send it.
    pub fn fragment(&self) -> &Bytes {
        self.fragment.get_or_init(|| {
            let sample = fmp4::Sample { data: &self.au.data, duration: self.duration, keyframe: self.au.keyframe };
            fmp4::fragment(self.sequence, self.decode_time, &[sample])
        })
    }
}

/// What a new consumer starts from: the GOP so far, then the ring. Taken under the hub's
/// lock, so nothing is missed or seen twice between the two.
pub struct Subscription {
    pub track: Option<Arc<LiveTrack>>,
    pub gop: Vec<Arc<Unit>>,
    pub units: broadcast::Receiver<Arc<Unit>>,
}

#[derive(Default)]
pub struct HubStats {
    pub units: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframes: AtomicU64,
    /// Units that arrived after lost packets.
    pub after_loss: AtomicU64,
    /// Units the recording thread could not take in time (its queue was full).
    pub recorder_dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    track: Option<Arc<LiveTrack>>,
    gop: Vec<Arc<Unit>>,
    gop_bytes: usize,
    session: u64,
    /// Added to the session's pts to get the decode time; set by the session's first unit.
    offset: Option<i64>,
    previous_pts: Option<i64>,
    last_time: Option<u64>,
    last_duration: u32,
    sequence: u32,
    generation: u64,
    /// The recording's feed: every unit, in order, in batches that end at a keyframe (a
    /// bounded queue to its own thread).
    recorder: Option<std::sync::mpsc::SyncSender<Vec<Arc<Unit>>>>,
    record_batch: Vec<Arc<Unit>>,
}

pub struct Hub {
    camera: String,
    state: Mutex<State>,
    units: broadcast::Sender<Arc<Unit>>,
    pub stats: HubStats,
}

impl Hub {
    pub fn new(camera: &str) -> Hub {
        let (units, _) = broadcast::channel(RING);
        Hub { camera: camera.to_string(), state: Mutex::default(), units, stats: HubStats::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new RTSP session begins: its pts start again at 0, its first unit is a keyframe.
    pub fn session_started(&self) {
        let mut st = self.state();
        st.session += 1;
        st.offset = None;
        st.previous_pts = None;
        st.gop.clear();
        st.gop_bytes = 0;
    }

    /// The session ended: what is buffered is no longer live.
    pub fn session_ended(&self) {
        let mut st = self.state();
        st.gop.clear();
        st.gop_bytes = 0;
    }

    pub fn publish(&self, event: Event) {
        match event {
            Event::Params(params) => self.set_params(params),
            Event::Unit(au) => self.publish_unit(au),
        }
    }

    fn set_params(&self, params: Params) {
        let mut st = self.state();
        if st.track.as_ref().is_some_and(|t| t.params == params) {
            return;
        }
        match fmp4::track(&params) {
            Ok(track) => {
                st.generation += 1;
                let init = fmp4::init_segment(&track);
                tracing::info!(camera = %self.camera, codec = %track.codec_string, width = track.width, height = track.height, "stream parameters");
                st.track = Some(Arc::new(LiveTrack { params, track, init, generation: st.generation }));
                // Units of the old parameters cannot start a viewer on the new ones.
                st.gop.clear();
                st.gop_bytes = 0;
            }
            Err(e) => tracing::warn!(camera = %self.camera, "unusable parameter sets from the camera: {e}"),
        }
    }

    fn publish_unit(&self, au: AccessUnit) {
        let mut st = self.state();
        let Some(track) = st.track.clone() else { return };
        let next = st.last_time.map_or(0, |t| t as i64 + i64::from(st.last_duration.max(1)));
        let offset = *st.offset.get_or_insert(next - au.pts);
        let duration = match st.previous_pts {
            Some(p) if au.pts > p => u32::try_from(au.pts - p).unwrap_or(u32::MAX).min(10 * 90_000),
            _ if st.last_duration > 0 => st.last_duration,
            _ => DEFAULT_DURATION,
        };
        let floor = st.last_time.map_or(0, |t| t + 1);
        let decode_time = u64::try_from(au.pts + offset).unwrap_or(0).max(floor);
        st.previous_pts = Some(au.pts);
        st.last_time = Some(decode_time);
        st.last_duration = duration;
        st.sequence = st.sequence.wrapping_add(1);
        self.stats.units.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(au.data.len() as u64, Relaxed);
        if au.keyframe {
            self.stats.keyframes.fetch_add(1, Relaxed);
        }
        if au.after_loss {
            self.stats.after_loss.fetch_add(1, Relaxed);
        }
        let unit = Arc::new(Unit {
            session: st.session,
            decode_time,
            duration,
            sequence: st.sequence,
            track,
            fragment: OnceLock::new(),
            au,
        });
        if unit.au.keyframe {
            st.gop.clear();
            st.gop_bytes = 0;
        }
        let fits = st.gop.len() < GOP_MAX_UNITS && st.gop_bytes + unit.au.data.len() <= GOP_MAX_BYTES;
        if fits && (unit.au.keyframe || !st.gop.is_empty()) {
            st.gop_bytes += unit.au.data.len();
            st.gop.push(unit.clone());
        } else if !fits {
            st.gop.clear();
            st.gop_bytes = 0;
        }
        if st.recorder.is_some() {
            st.record_batch.push(unit.clone());
            if unit.au.keyframe || st.record_batch.len() >= RECORD_BATCH {
                self.hand_to_recorder(&mut st);
            }
        }
        if self.units.receiver_count() > 0 {
            let _ = self.units.send(unit);
        }
    }

    fn hand_to_recorder(&self, st: &mut State) {
        let batch = std::mem::take(&mut st.record_batch);
        if let Some(tx) = &st.recorder
            && !batch.is_empty()
            && let Err(std::sync::mpsc::TrySendError::Full(lost)) = tx.try_send(batch)
        {
            self.stats.recorder_dropped.fetch_add(lost.len() as u64, Relaxed);
        }
    }

    /// Ends the recording feed: its thread gets what is pending, writes it and exits.
    pub fn stop_recording(&self) {
        let mut st = self.state();
        self.hand_to_recorder(&mut st);
        st.recorder = None;
    }

    /// Every unit from now on also goes to `tx` (the recording thread), until it hangs up.
    pub fn record_to(&self, tx: std::sync::mpsc::SyncSender<Vec<Arc<Unit>>>) {
        self.state().recorder = Some(tx);
    }

    pub fn subscribe(&self) -> Subscription {
        let st = self.state();
        Subscription { track: st.track.clone(), gop: st.gop.clone(), units: self.units.subscribe() }
    }

    pub fn track(&self) -> Option<Arc<LiveTrack>> {
        self.state().track.clone()
    }

    /// Consumers of units right now (viewers, transcoder, recorder).
    pub fn consumers(&self) -> usize {
        self.units.receiver_count()
    }
}

#[cfg(test)]
mod tests;

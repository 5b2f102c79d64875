//! FrameBus: how one camera's frames reach every consumer.
//!
//! Two views of the same frames, both zero-copy (a `Frame` clone is a reference-count bump of
//! its `Bytes`):
//! - `latest`: a watch slot with the newest live frame. Live viewers wait on it and always
//!   take the newest; a slow viewer skips frames instead of queueing them, so it can neither
//!   grow memory nor delay anybody else.
//! - `every`: a bounded broadcast ring (`channel_buffer_size`) for consumers that want every
//!   captured frame (the recorder); a consumer that falls behind by more than the ring learns
//!   how many frames it lost.
//!
//! JPEGs cost a decode and an encode. Where panelcam depayloads the camera's H.264 itself
//! (`crate::media`), JPEGs are made only while someone holds a [`JpegDemand`]: MJPEG viewers,
//! the control page's live view, frame storage while it records, MQTT pictures, snapshots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

#[derive(Clone, Debug)]
pub struct Frame {
    pub jpeg: Bytes,
    /// Wall-clock capture time, milliseconds since the Unix epoch.
    pub captured_ms: i64,
    /// Per-camera sequence number, counting from 1 at panelcam start.
    pub seq: u64,
    /// Monotonic time the frame was complete on FFmpeg's stdout.
    pub received: Instant,
}

pub struct FrameBus {
    latest: watch::Sender<Option<Frame>>,
    every: broadcast::Sender<Frame>,
    /// How many [`JpegDemand`]s are held now.
    demand: Arc<watch::Sender<usize>>,
}

/// Someone wants this camera's JPEGs while this is alive (see the module doc).
pub struct JpegDemand(Arc<watch::Sender<usize>>);

impl Drop for JpegDemand {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl FrameBus {
    pub fn new(buffer: usize) -> FrameBus {
        let (latest, _) = watch::channel(None);
        let (every, _) = broadcast::channel(buffer.max(1));
        let (demand, _) = watch::channel(0);
        FrameBus { latest, every, demand: Arc::new(demand) }
    }

    /// Registers a consumer of JPEGs until the returned guard is dropped.
    pub fn want_jpegs(&self) -> JpegDemand {
        self.demand.send_modify(|n| *n += 1);
        JpegDemand(self.demand.clone())
    }

    /// The number of JPEG consumers; the transcoder runs while it is above zero.
    pub fn jpeg_demand(&self) -> watch::Receiver<usize> {
        self.demand.subscribe()
    }

    /// Forgets the newest frame (the transcoder stopped): a viewer that arrives later must
    /// not be shown a stale picture as if it were live.
    pub fn clear_latest(&self) {
        self.latest.send_replace(None);
    }

    /// Hands a captured frame to the every-frame consumers and, when `live`, to viewers.
    pub fn publish(&self, frame: Frame, live: bool) {
        if self.every.receiver_count() > 0 {
            let _ = self.every.send(frame.clone());
        }
        if live {
            self.latest.send_replace(Some(frame));
        }
    }

    pub fn latest(&self) -> Option<Frame> {
        self.latest.borrow().clone()
    }

    /// A viewer's handle; `changed()` wakes it for each newer frame.
    pub fn watch(&self) -> watch::Receiver<Option<Frame>> {
        self.latest.subscribe()
    }

    pub fn subscribe_every(&self) -> broadcast::Receiver<Frame> {
        self.every.subscribe()
    }
}

/// Admits frames at a target rate without delaying any: a frame passes when it is due
/// (within a quarter interval of early), and the schedule advances by whole intervals so
/// that e.g. 25 fps in, 10 fps out alternates gaps of 2 and 3 frames and averages exactly 10.
#[derive(Debug)]
pub struct RatePacer {
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl RatePacer {
    /// `fps <= 0` admits everything.
    pub fn new(fps: f64) -> RatePacer {
        let interval = (fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
        RatePacer { interval, next: None }
    }

    pub fn admit(&mut self, now: Instant) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let slack = interval / 4;
        match self.next {
            Some(next) if now + slack < next => false,
            Some(next) => {
                // Fell behind by more than one interval (a stall): restart the schedule.
                self.next = Some(if now > next + interval { now + interval } else { next + interval });
                true
            }
            None => {
                self.next = Some(now + interval);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        Frame { jpeg: Bytes::from(vec![seq as u8; 4]), captured_ms: seq as i64, seq, received: Instant::now() }
    }

    #[test]
    fn viewers_see_only_the_newest_frame() {
        let bus = FrameBus::new(4);
        let mut rx = bus.watch();
        for i in 1..=10 {
            bus.publish(frame(i), true);
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().as_ref().unwrap().seq, 10);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn frames_share_one_allocation() {
        let bus = FrameBus::new(4);
        let mut every = bus.subscribe_every();
        bus.publish(frame(1), true);
        let a = bus.latest().unwrap().jpeg;
        let b = every.try_recv().unwrap().jpeg;
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn every_frame_consumers_learn_how_many_they_lost() {
        let bus = FrameBus::new(2);
        let mut every = bus.subscribe_every();
        for i in 1..=5 {
            bus.publish(frame(i), false);
        }
        assert!(matches!(every.try_recv(), Err(broadcast::error::TryRecvError::Lagged(3))));
        assert_eq!(every.try_recv().unwrap().seq, 4);
        assert!(bus.latest().is_none(), "non-live frames stay out of the viewer slot");
    }

    #[test]
    fn jpeg_demand_counts_live_guards() {
        let bus = FrameBus::new(2);
        let demand = bus.jpeg_demand();
        let a = bus.want_jpegs();
        let b = bus.want_jpegs();
        assert_eq!(*demand.borrow(), 2);
        drop(a);
        drop(b);
        assert_eq!(*demand.borrow(), 0);
    }

    #[test]
    fn pacer_turns_25_into_10_fps() {
        let mut p = RatePacer::new(10.0);
        let t0 = Instant::now();
        let admitted = (0..250).filter(|i| p.admit(t0 + Duration::from_millis(i * 40))).count();
        assert!((99..=101).contains(&admitted), "{admitted} of 250 frames in 10 s");
    }

    #[test]
    fn pacer_off_and_faster_targets_admit_everything() {
        let t0 = Instant::now();
        let mut off = RatePacer::new(0.0);
        assert!((0..10).all(|i| off.admit(t0 + Duration::from_millis(i))));
        let mut fast = RatePacer::new(50.0);
        assert!((0..50).all(|i| fast.admit(t0 + Duration::from_millis(i * 40))));
    }
}

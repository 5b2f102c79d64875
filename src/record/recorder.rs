//! Feeds a camera's captured frames into its frame store: the every-frame consumer of the
//! camera's FrameBus. Costs one atomic load per frame while nothing records.

use std::sync::Arc;

use tokio::sync::{broadcast::error::RecvError, watch};

use super::FrameStore;
use crate::bus::FrameBus;

pub async fn run(bus: Arc<FrameBus>, store: Arc<FrameStore>, mut stop: watch::Receiver<bool>) {
    let mut frames = bus.subscribe_every();
    // JPEGs are made on demand: wanted while a session stores frames. Looked at every frame
    // and every half second (a session starts without a frame arriving here).
    let mut demand = None;
    let mut recheck = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        let wanted = store.wants_frames();
        if wanted != demand.is_some() {
            demand = wanted.then(|| bus.want_jpegs());
        }
        tokio::select! {
            _ = recheck.tick() => {}
            _ = store.shared.session_changed.notified() => {}
            frame = frames.recv() => match frame {
                Ok(frame) => store.offer(&frame),
                Err(RecvError::Lagged(n)) => store.count_missed(n),
                Err(RecvError::Closed) => break,
            },
            _ = stop.changed() => break,
        }
    }
}

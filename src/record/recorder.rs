//! Feeds a camera's captured frames into its frame store: the every-frame consumer of the
//! camera's FrameBus. Costs one atomic load per frame while nothing records.

use std::sync::Arc;

use tokio::sync::{broadcast::error::RecvError, watch};

use super::FrameStore;
use crate::bus::FrameBus;

pub async fn run(bus: Arc<FrameBus>, store: Arc<FrameStore>, mut stop: watch::Receiver<bool>) {
    let mut frames = bus.subscribe_every();
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Ok(frame) => store.offer(&frame),
                Err(RecvError::Lagged(n)) => store.count_missed(n),
                Err(RecvError::Closed) => break,
            },
            _ = stop.changed() => break,
        }
    }
}

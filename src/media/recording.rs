//! Feeds the camera's access units to the HLS segmenter on a thread of its own: segment
//! files are written to the spool (tmpfs) there, never on the async workers, and a slow
//! write never holds back live viewers. Each RTSP session is a new run with its own init
//! segment, as each FFmpeg run was.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use tracing::warn;

use super::hub::{Hub, Unit};
use super::segmenter::Segmenter;
use crate::util::now_ms;
use crate::video::camera::SegmentOutput;

/// Batches (about one GOP each) queued for the thread: far more than a tmpfs write takes.
const QUEUE: usize = 64;

/// Starts the recording thread; it ends (writing the last partial segment) when the hub
/// stops feeding it ([`Hub::stop_recording`]).
pub fn spawn(hub: &Hub, output: SegmentOutput, camera: String) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = sync_channel(QUEUE);
    hub.record_to(tx);
    std::thread::Builder::new().name(format!("segments-{camera}")).spawn(move || run(rx, output, camera))
}

fn run(batches: Receiver<Vec<Arc<Unit>>>, output: SegmentOutput, camera: String) {
    let mut current: Option<(u64, u64, Segmenter)> = None;
    let mut errors = 0u64;
    let mut report = |what: &str, e: std::io::Error| {
        errors += 1;
        if errors == 1 || errors.is_multiple_of(100) {
            warn!(camera = %camera, errors, "recording to the spool {}: {what}: {e}", output.dir.display());
        }
    };
    for unit in batches.iter().flatten() {
        let same_session = current.as_ref().is_some_and(|(session, _, _)| *session == unit.session);
        if !same_session {
            if let Some((_, _, mut old)) = current.take()
                && let Err(e) = old.finish()
            {
                report("closing the last segment", e);
            }
            let _ = std::fs::create_dir_all(&output.dir);
            current = Some((unit.session, 0, Segmenter::new(&output, &now_ms().to_string())));
        }
        let Some((_, generation, segmenter)) = current.as_mut() else { continue };
        if *generation != unit.track.generation {
            *generation = unit.track.generation;
            if let Err(e) = segmenter.params(&unit.track.params) {
                report("writing an init segment", e);
            }
        }
        if let Err(e) = segmenter.push(&unit.au) {
            report("writing a segment", e);
        }
    }
    if let Some((_, _, mut last)) = current
        && let Err(e) = last.finish()
    {
        report("closing the last segment", e);
    }
}

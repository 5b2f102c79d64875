//! Frame retention: at startup and every `cleanup_interval_hours`, each camera's frames older
//! than its `frame_storage_retention` are deleted (in small batches inside the writer thread,
//! see writer.rs), except those of kept and active sessions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::app::App;
use crate::util::now_ms;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let hours = app.config.recording.cleanup_interval_hours;
    let interval = Duration::from_secs_f64((hours * 3600.0).max(1.0));
    loop {
        run_once(&app).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One pass over all cameras (frames, then video, then the disk guard and expired exports);
/// returns how many frames were deleted.
pub async fn run_once(app: &App) -> u64 {
    let mut deleted = 0;
    for camera in app.cameras() {
        crate::video::retention::by_age(&camera).await;
        let (Some(store), Some(keep_for)) = (camera.frames.as_ref(), camera.recording.frame_retention()) else {
            continue;
        };
        let cutoff = now_ms() - keep_for.as_millis() as i64;
        match store.retention(cutoff).await {
            Ok(report) => {
                debug!(camera = %camera.id(), frames = report.frames, sessions = report.sessions, "retention pass done");
                deleted += report.frames;
            }
            Err(e) => warn!(camera = %camera.id(), "retention failed: {e}"),
        }
    }
    crate::video::retention::disk_guard(app).await;
    app.exports.expire();
    deleted
}

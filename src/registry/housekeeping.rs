//! Keeping the panel's storage in bounds, for every camera:
//!
//! - Retention, at start and every `cleanup_interval_hours`: frames older than
//!   `frame_storage_retention`, HLS and MP4 segments older than their retention, expired
//!   exports; kept and active sessions excepted. Retention deletes wherever the recording is
//!   (the panel, the outbox, PostgreSQL): that is what the retention settings mean.
//! - The disk guard, every few seconds: while the recordings filesystem is fuller than
//!   `disk_max_percent` it frees *local* data only, cheapest first: finished exports, then
//!   the oldest ten minutes of local video and frames of the camera with the oldest ones.
//!   It never touches the outbox (it has its own budget, `outbox_max_mb`) or PostgreSQL:
//!   the central archive is not the panel's disk to manage. When everything left is
//!   protected, it says so in the log and in `/api/status` and waits.
//! - Returning space freed in the local video indexes to the filesystem, a step at a time,
//!   off the recording path.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Registry;
use super::status::DiskState;
use crate::camera::Camera;
use crate::store::segment::Kept;
use crate::util::{iso_ms, now_ms};

/// How often the disk guard looks at the filesystem: a write burst is caught within seconds.
pub const DISK_CHECK: Duration = Duration::from_secs(5);
/// How much of the oldest recordings one disk-guard step deletes.
const GUARD_STEP_MS: i64 = 10 * 60_000;
const GUARD_MAX_STEPS: usize = 500;
/// Pages a vacuum step returns; the local index is locked for one step only.
const VACUUM_STEP_PAGES: i64 = 64;

pub async fn run(registry: Arc<Registry>, mut stop: watch::Receiver<bool>) {
    let hours = registry.config.recording.cleanup_interval_hours;
    let retention_every = Duration::from_secs_f64((hours * 3600.0).max(1.0));
    let mut next_retention = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_retention {
            retention(&registry).await;
            next_retention = tokio::time::Instant::now() + retention_every;
        }
        disk_guard(&registry).await;
        vacuum(&registry).await;
        tokio::select! {
            _ = tokio::time::sleep(DISK_CHECK.min(retention_every)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The sessions whose recordings must stay: kept ones and the active one.
pub async fn kept(camera: &Camera) -> Kept {
    match &camera.frames {
        Some(store) => match store.protected_session_ids().await {
            Ok(ids) => Kept::Sessions(ids),
            Err(e) => {
                warn!(camera = %camera.id(), "cannot read protected sessions, deleting no video: {e}");
                Kept::Everything
            }
        },
        None => Kept::none(),
    }
}

/// One retention pass over all cameras; returns how many frames were deleted.
pub async fn retention(registry: &Registry) -> u64 {
    let mut deleted = 0;
    for camera in registry.cameras() {
        video_by_age(&camera).await;
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
    registry.exports.expire().await;
    deleted
}

/// Age-based video retention for one camera; returns (HLS segments, MP4 segments) deleted.
pub async fn video_by_age(camera: &Camera) -> (u64, u64) {
    let Some(video) = &camera.video else { return (0, 0) };
    let rec = &video.rec;
    let keep = kept(camera).await;
    let mut deleted = (0, 0);
    if let Some(age) = rec.hls_storage_retention.filter(|_| rec.hls_storage_enabled) {
        match video.store.delete_hls(i64::MIN, now_ms() - age.as_millis() as i64, keep.clone()).await {
            Ok(n) => deleted.0 = n,
            Err(e) => warn!(camera = %camera.id(), "HLS retention failed: {e}"),
        }
    }
    if let Some(age) = rec.mp4_storage_retention.filter(|_| rec.mp4_storage_type != crate::config::Mp4Storage::Disabled)
    {
        match video.store.delete_mp4(i64::MIN, now_ms() - age.as_millis() as i64, keep).await {
            Ok(n) => deleted.1 = n,
            Err(e) => warn!(camera = %camera.id(), "MP4 retention failed: {e}"),
        }
    }
    if deleted != (0, 0) {
        info!(camera = %camera.id(), hls_segments = deleted.0, mp4_segments = deleted.1, "video retention deleted old segments");
    }
    deleted
}

/// Percent of the filesystem holding `path` that is in use.
pub fn used_percent(path: &Path) -> Option<f64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let total = s.blocks() as f64 * s.fragment_size() as f64;
    let free = s.blocks_available() as f64 * s.fragment_size() as f64;
    (total > 0.0).then(|| 100.0 * (total - free) / total)
}

async fn used_percent_async(path: &Path) -> Option<f64> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || used_percent(&path)).await.ok().flatten()
}

/// The oldest local recording of a camera that the guard may delete.
async fn oldest_local(camera: &Camera, keep: &Kept) -> Option<i64> {
    let mut t: Option<i64> = None;
    if let Some(video) = &camera.video
        && let Ok(Some(o)) = video.store.oldest_local(keep.clone()).await
    {
        t = Some(o);
    }
    if let Some(store) = &camera.frames
        && let Ok(Some(o)) = store.oldest_unprotected_frame().await
    {
        t = Some(t.map_or(o, |t| t.min(o)));
    }
    t
}

/// Frees local data while the disk is fuller than `disk_max_percent` (see the module docs).
pub async fn disk_guard(registry: &Registry) {
    let limit = registry.config.recording.disk_max_percent;
    if limit <= 0.0 {
        return;
    }
    let path = &registry.config.recording.database_path;
    let mut state = DiskState { limit_percent: limit, ..DiskState::default() };
    for _ in 0..GUARD_MAX_STEPS {
        let Some(used) = used_percent_async(path).await else { break };
        state.used_percent = Some(used);
        if used <= limit {
            state.stuck = false;
            state.message = None;
            break;
        }
        // Cheapest first: a finished export is a copy of recordings that still exist.
        if let Some(bytes) = registry.exports.evict_oldest().await {
            state.message = Some(format!("deleted a finished export ({bytes} bytes)"));
            continue;
        }
        // Then the camera with the oldest local recording loses its oldest ten minutes.
        let mut oldest: Option<(i64, Arc<Camera>, Kept)> = None;
        for camera in registry.cameras() {
            let keep = kept(&camera).await;
            if let Some(t) = oldest_local(&camera, &keep).await
                && oldest.as_ref().is_none_or(|o| t < o.0)
            {
                oldest = Some((t, camera, keep));
            }
        }
        let Some((t, camera, keep)) = oldest else {
            let message = format!(
                "the recordings disk is {used:.1} % full (limit {limit} %) and every local recording is protected \
                 (kept or recording); nothing was deleted"
            );
            if !registry.status.disk().stuck {
                warn!("disk guard: {message}");
            }
            state.stuck = true;
            state.message = Some(message);
            break;
        };
        let cutoff = t.saturating_add(GUARD_STEP_MS);
        warn!(camera = %camera.id(), used_percent = format!("{used:.1}"), limit,
              "disk guard: deleting local recordings older than {}", iso_ms(cutoff));
        if let Some(video) = &camera.video {
            let _ = video.store.delete_local_mp4(i64::MIN, cutoff, keep.clone()).await;
            let _ = video.store.delete_local_hls(i64::MIN, cutoff, keep).await;
            vacuum_camera(&camera, i64::MAX).await;
        }
        if let Some(store) = &camera.frames {
            let _ = store.retention(cutoff).await;
        }
        state.stuck = false;
        state.message = Some(format!("deleted local recordings of {} older than {}", camera.id(), iso_ms(cutoff)));
    }
    registry.status.set_disk(state);
}

/// Returns space freed in the local video indexes to the filesystem, a few steps per camera.
async fn vacuum(registry: &Registry) {
    for camera in registry.cameras() {
        vacuum_camera(&camera, 16).await;
    }
}

/// Up to `steps` vacuum steps of one camera's local index, the lock released between steps;
/// then day directories of segment files older than anything indexed go.
async fn vacuum_camera(camera: &Camera, steps: i64) {
    let Some(local) = camera.video.as_ref().and_then(|v| v.store.local.clone()) else { return };
    if let Err(e) = local.run(|l| l.prune_days()).await {
        warn!(camera = %camera.id(), "cannot remove old segment directories: {e}");
    }
    for _ in 0..steps {
        match local.run(|l| l.vacuum_step(VACUUM_STEP_PAGES)).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                warn!(camera = %camera.id(), "cannot return freed space: {e}");
                return;
            }
        }
    }
}

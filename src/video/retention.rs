//! Video retention: HLS and MP4 segments older than `hls_storage_retention` /
//! `mp4_storage_retention` are deleted in every store (SQLite, files, outbox, PostgreSQL),
//! kept and active sessions excepted. The disk guard deletes the oldest local recordings
//! while the recordings filesystem is fuller than `disk_max_percent`.

use std::path::Path;

use tracing::{info, warn};

use crate::app::App;
use crate::camera::Camera;
use crate::util::now_ms;
use crate::video::segment::Kept;

/// How much of the oldest recordings one disk-guard step deletes.
const GUARD_STEP_MS: i64 = 10 * 60_000;
const GUARD_MAX_STEPS: usize = 200;

/// The sessions whose video must stay: kept ones and the active one.
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

/// Age-based retention for one camera; returns (HLS segments, MP4 segments) deleted.
pub async fn by_age(camera: &Camera) -> (u64, u64) {
    let Some(video) = &camera.video else { return (0, 0) };
    let rec = &video.rec;
    let keep = kept(camera).await;
    let mut deleted = (0, 0);
    if let Some(age) = rec.hls_storage_retention.filter(|_| rec.hls_storage_enabled) {
        match video.delete_hls(i64::MIN, now_ms() - age.as_millis() as i64, keep.clone()).await {
            Ok(n) => deleted.0 = n,
            Err(e) => warn!(camera = %camera.id(), "HLS retention failed: {e}"),
        }
    }
    if let Some(age) = rec.mp4_storage_retention.filter(|_| rec.mp4_storage_type != crate::config::Mp4Storage::Disabled)
    {
        match video.delete_mp4(i64::MIN, now_ms() - age.as_millis() as i64, keep).await {
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

/// Deletes the oldest local recordings (video and frames, protected sessions excepted) while
/// the disk is fuller than `disk_max_percent`.
pub async fn disk_guard(app: &App) {
    let limit = app.config.recording.disk_max_percent;
    let path = &app.config.recording.database_path;
    if limit <= 0.0 {
        return;
    }
    for _ in 0..GUARD_MAX_STEPS {
        let Some(used) = used_percent(path) else { return };
        if used <= limit {
            return;
        }
        // The camera with the oldest local recording loses its oldest ten minutes.
        let mut oldest: Option<(i64, std::sync::Arc<Camera>)> = None;
        for camera in app.cameras() {
            let mut t = i64::MAX;
            if let Some(local) = camera.video.as_ref().and_then(|v| v.local.clone())
                && let Ok(Some(o)) = local.run(|l| l.oldest()).await
            {
                t = t.min(o);
            }
            if let Some(store) = &camera.frames
                && let Ok(size) = store.size().await
            {
                t = t.min(size.oldest_frame_ms.unwrap_or(i64::MAX));
            }
            if t < oldest.as_ref().map_or(i64::MAX, |o| o.0) {
                oldest = Some((t, camera));
            }
        }
        let Some((t, camera)) = oldest else { return };
        let cutoff = t + GUARD_STEP_MS;
        warn!(camera = %camera.id(), used_percent = format!("{used:.1}"), limit, "disk guard: deleting recordings older than {}", crate::util::iso_ms(cutoff));
        let keep = kept(&camera).await;
        if let Some(video) = &camera.video {
            let _ = video.delete_mp4(i64::MIN, cutoff, keep.clone()).await;
            if video.local.is_some() {
                let _ = video.delete_hls(i64::MIN, cutoff, keep).await;
            }
        }
        if let Some(store) = &camera.frames {
            let _ = store.retention(cutoff).await;
        }
    }
}

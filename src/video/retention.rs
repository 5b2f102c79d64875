//! Video retention: HLS and MP4 segments older than `hls_storage_retention` /
//! `mp4_storage_retention` are deleted in every store (SQLite, files, outbox, PostgreSQL),
//! kept and active sessions excepted. The disk guard deletes the oldest local recordings
//! while the recordings filesystem is fuller than `disk_max_percent`.

use std::path::Path;

use tracing::{info, warn};

use crate::app::App;
use crate::camera::Camera;
use crate::util::now_ms;

/// How much of the oldest recordings one disk-guard step deletes.
const GUARD_STEP_MS: i64 = 10 * 60_000;
const GUARD_MAX_STEPS: usize = 200;

/// Kept and active sessions as ranges of segment *start* times. Deletes go by start time, so
/// each range reaches back by the pre-event buffer kept with the session plus the longest
/// segment (an MP4 file may start minutes before the session it contains).
pub async fn protected(camera: &Camera) -> Vec<(i64, i64)> {
    let rec = &camera.recording;
    let longest = if rec.mp4_storage_type == crate::config::Mp4Storage::Disabled {
        rec.hls_segment_seconds as i64 * 1000
    } else {
        ((rec.mp4_segment_minutes * 60_000.0) as i64).max(rec.hls_segment_seconds as i64 * 1000)
    };
    let reach_back = rec.pre_event_seconds as i64 * 1000 + longest;
    match &camera.frames {
        Some(store) => match store.protected_ranges().await {
            Ok(ranges) => ranges.into_iter().map(|(s, e)| (s - reach_back, e)).collect(),
            Err(e) => {
                warn!(camera = %camera.id(), "cannot read protected sessions, deleting no video: {e}");
                vec![(i64::MIN, i64::MAX)]
            }
        },
        None => Vec::new(),
    }
}

/// Age-based retention for one camera; returns (HLS segments, MP4 segments) deleted.
pub async fn by_age(camera: &Camera) -> (u64, u64) {
    let Some(video) = &camera.video else { return (0, 0) };
    let rec = &video.rec;
    let keep = protected(camera).await;
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
        let keep = protected(&camera).await;
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

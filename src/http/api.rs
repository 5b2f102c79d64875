//! `/api/status` and `/api/cameras`: state, rates, clients, errors and uptime per camera.
//! Nothing secret: URLs are redacted, tokens appear only as `token_required`.

use serde_json::{Value, json};

use crate::app::App;
use crate::camera::Camera;
use crate::config::Severity;

fn camera_json(camera: &Camera) -> Value {
    let c = &camera.config;
    let mut v = camera.stats.to_json();
    let extra = json!({
        "id": c.id,
        "path": format!("/{}", c.path),
        "enabled": c.enabled,
        "url": c.url.to_string(),
        "transport": c.transport.as_str(),
        "token_required": c.token.is_some(),
        "file": c.file.display().to_string(),
        "output_framerate": camera.transcoding.output_framerate,
        "capture_framerate": crate::camera::argv::ffmpeg_framerate(c, &camera.transcoding),
        "quality": crate::camera::argv::effective_quality(c, &camera.transcoding),
        "recording": recording_json(camera),
        "video": camera.video.as_ref().map(|v| v.status()),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut v, extra) {
        map.extend(more);
    }
    v
}

/// Frame-storage state for dashboards: whether it records, and how much disk it uses.
fn recording_json(camera: &Camera) -> Value {
    let Some(store) = &camera.frames else {
        return json!({"available": false, "active": false, "reason": camera.frames_unavailable});
    };
    let shared = &store.shared;
    let active = store.active();
    json!({
        "available": true,
        "active": active.is_some(),
        "session_id": active.as_ref().map(|s| s.id),
        "started": active.as_ref().map(|s| crate::util::iso_ms(s.start_ms)),
        "reason": active.as_ref().and_then(|s| s.reason.clone()),
        "database_bytes": store.disk_bytes(),
        "frames_written": shared.frames_written.load(std::sync::atomic::Ordering::Relaxed),
        "frames_dropped": shared.frames_dropped.load(std::sync::atomic::Ordering::Relaxed),
        "retention": camera.recording.frame_retention().map(crate::config::duration::format_duration),
    })
}

/// Camera files that could not be used: each with its problems, so an engineer sees why a
/// camera is missing without reading the logs.
fn rejected_json(app: &App) -> Value {
    let rejected: Vec<Value> = app
        .rejected()
        .iter()
        .map(|r| {
            let problems: Vec<String> =
                r.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.to_string()).collect();
            json!({"id": r.id, "file": r.file.display().to_string(), "state": "invalid", "problems": problems})
        })
        .collect();
    Value::Array(rejected)
}

pub fn cameras(app: &App) -> Value {
    Value::Array(app.cameras().iter().map(|c| camera_json(c)).collect())
}

pub fn status(app: &App) -> Value {
    let cameras = app.cameras();
    let streaming = cameras.iter().filter(|c| c.stats.state() == crate::camera::stats::CameraState::Streaming).count();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": crate::config::hostname(),
        "uptime_secs": app.started.elapsed().as_secs(),
        "cameras_total": cameras.len(),
        "cameras_streaming": streaming,
        "cameras": cameras.iter().map(|c| camera_json(c)).collect::<Vec<_>>(),
        "invalid_cameras": rejected_json(app),
        // Store-and-forward to PostgreSQL: what waits, what was dropped for lack of space.
        "outbox": app.video.outbox.as_ref().map(|o| o.status()),
    })
}

//! The status documents: `/api/status`, `/api/cameras`, `/metrics` and the MQTT status topics
//! all read them from here, so every consumer says the same thing and none depends on another
//! (MQTT does not import the web layer). State, rates, clients, errors and uptime per camera,
//! read from counters kept up to date by their owners (no database, no file system, no lock
//! held by anything slow). Nothing secret: camera URLs are shown without their user-info,
//! tokens only as `token_required`.

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{Value, json};

use super::Registry;
use crate::camera::Camera;
use crate::camera::stats::CameraState;
use crate::config::secret::CameraUrl;
use crate::config::{PtzConfig, Severity};

/// One camera's status: the `cameras` entries of `/api/status` and MQTT's `cameras/<id>/status`.
pub fn camera_json(camera: &Camera) -> Value {
    let c = camera.config();
    let mut v = camera.stats.to_json();
    let extra = json!({
        "id": c.id,
        "path": format!("/{}", c.path),
        "enabled": c.enabled,
        "url": c.url.public(),
        "transport": c.transport.as_str(),
        "token_required": c.token.is_some(),
        "file": c.file.display().to_string(),
        "output_framerate": camera.transcoding.output_framerate,
        "capture_framerate": crate::camera::argv::ffmpeg_framerate(&c, &camera.transcoding),
        "quality": crate::camera::argv::effective_quality(&c, &camera.transcoding),
        "max_viewers": camera.max_viewers,
        "recording": recording_json(camera),
        "video": camera.video.as_ref().map(|v| v.status()),
        "ptz": ptz_json(camera, &c.ptz),
        "passthrough": passthrough_json(camera),
        "jpeg": {
            "consumers": *camera.bus.jpeg_demand().borrow(),
            "transcoding": camera.stats.ffmpeg_pid.load(Relaxed) != 0,
        },
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut v, extra) {
        map.extend(more);
    }
    v
}

/// The camera's own stream as H.264 viewers get it (`/<camera>/video`), or why there is none.
fn passthrough_json(camera: &Camera) -> Value {
    let Some(hub) = camera.hub() else {
        return json!({"available": false, "reason": camera.passthrough_unavailable()});
    };
    let track = hub.track();
    let stats = &hub.stats;
    json!({
        "available": true,
        "codec": track.as_ref().map(|t| t.track.codec_string.clone()),
        "width": track.as_ref().map(|t| t.track.width),
        "height": track.as_ref().map(|t| t.track.height),
        "units": stats.units.load(Relaxed),
        "keyframes": stats.keyframes.load(Relaxed),
        "units_after_loss": stats.after_loss.load(Relaxed),
        "recording_dropped": stats.recorder_dropped.load(Relaxed),
    })
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
        "frames_written": shared.frames_written.load(Relaxed),
        "frame_bytes_written": shared.bytes_written.load(Relaxed),
        "frames_dropped": shared.frames_dropped.load(Relaxed),
        "retention": camera.recording.frame_retention().map(crate::config::duration::format_duration),
    })
}

/// Whether the camera has PTZ and how its last requests went. The ONVIF address is shown like
/// camera URLs, without user-info; the ONVIF user name and password never.
fn ptz_json(camera: &Camera, settings: &PtzConfig) -> Value {
    let mut v = json!({
        "enabled": settings.enabled,
        "protocol": settings.protocol,
        "profile_token": settings.profile_token,
        "onvif_url": settings.onvif_url.as_ref().map(|u| CameraUrl::new(u.clone()).public()),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut v, camera.ptz.status().to_json()) {
        map.extend(more);
    }
    v
}

/// Camera files that could not be used: each with its problems, so an engineer sees why a
/// camera is missing (or running on an older file) without reading the logs.
fn rejected_json(registry: &Registry) -> Value {
    let rejected: Vec<Value> = registry
        .rejected()
        .iter()
        .map(|r| {
            let problems: Vec<String> =
                r.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.to_string()).collect();
            let running = registry.camera(&r.id).is_some();
            json!({"id": r.id, "file": r.file.display().to_string(), "state": "invalid", "problems": problems,
                   "running_previous_version": running})
        })
        .collect();
    Value::Array(rejected)
}

pub fn cameras(registry: &Registry) -> Value {
    Value::Array(registry.cameras().iter().map(|c| camera_json(c)).collect())
}

pub fn status(registry: &Registry) -> Value {
    let cameras = registry.cameras();
    let streaming = cameras.iter().filter(|c| c.stats.state() == CameraState::Streaming).count();
    let mut v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": crate::config::hostname(),
        "panel_id": registry.config.server.panel_id,
        "uptime_secs": registry.started.elapsed().as_secs(),
        "cameras_total": cameras.len(),
        "cameras_streaming": streaming,
        "cameras": cameras.iter().map(|c| camera_json(c)).collect::<Vec<_>>(),
        "invalid_cameras": rejected_json(registry),
        // Store-and-forward to PostgreSQL: what waits, what was dropped for lack of space.
        "outbox": registry.video.outbox.as_ref().map(|o| o.status()),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut v, registry.status.to_json()) {
        map.extend(more);
    }
    v
}

/// The server in brief, for MQTT's `<base>/status`: what the old system published there
/// (version, uptime, cameras), with the camera details left to the per-camera topics.
pub fn summary(registry: &Registry) -> Value {
    let cameras = registry.cameras();
    let streaming = cameras.iter().filter(|c| c.stats.state() == CameraState::Streaming).count();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": crate::config::hostname(),
        "panel_id": registry.config.server.panel_id,
        "uptime_secs": registry.started.elapsed().as_secs(),
        "cameras_total": cameras.len(),
        "cameras_streaming": streaming,
        "cameras": cameras.iter().map(|c| c.id()).collect::<Vec<_>>(),
        "outbox": registry.video.outbox.as_ref().map(|o| o.status()),
        "disk": registry.status.disk_json(),
    })
}

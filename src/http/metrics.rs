//! `/metrics`: the status registry in Prometheus' text format (version 0.0.4). It is rendered
//! from the same document as `/api/status`, so the two can never disagree, and like it holds
//! nothing secret (no URLs, no tokens). Readable with `server.metrics_token` or the admin
//! token as a bearer token.

use std::fmt::Write;

use serde_json::Value;

use crate::registry::Registry;

/// One metric family: its samples are appended under one `# HELP` / `# TYPE` header.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// (labels, value)
    samples: Vec<(String, f64)>,
}

/// `{camera="cam1"}` with the value escaped as the format asks.
fn camera_label(id: &str) -> String {
    let mut v = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            '\\' => v.push_str("\\\\"),
            '"' => v.push_str("\\\""),
            '\n' => v.push_str("\\n"),
            c => v.push(c),
        }
    }
    format!("{{camera=\"{v}\"}}")
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        v => v.as_f64(),
    }
}

/// Per-camera families: (metric, type, help, JSON pointer into the camera's status).
const CAMERA: &[(&str, &str, &str, &str)] = &[
    ("panelcam_camera_streaming", "gauge", "1 while the camera delivers frames", "/streaming"),
    ("panelcam_camera_fps", "gauge", "Frames per second from the camera's input", "/fps"),
    ("panelcam_camera_bitrate_kbps", "gauge", "Data rate of the camera's input in kbit/s", "/bitrate_kbps"),
    ("panelcam_camera_frames_total", "counter", "Frames received from the camera's input", "/frames"),
    ("panelcam_camera_dropped_frames_total", "counter", "Frames dropped before viewers", "/dropped_frames"),
    ("panelcam_camera_restarts_total", "counter", "Input restarts (RTSP session or FFmpeg)", "/restarts"),
    (
        "panelcam_camera_passthrough",
        "gauge",
        "1 when the camera's own H.264/H.265 reaches viewers",
        "/passthrough/available",
    ),
    (
        "panelcam_camera_units_after_loss_total",
        "counter",
        "Pictures that followed lost RTP packets",
        "/passthrough/units_after_loss",
    ),
    ("panelcam_camera_jpeg_consumers", "gauge", "Consumers that want this camera's JPEGs", "/jpeg/consumers"),
    ("panelcam_camera_transcoding", "gauge", "1 while FFmpeg makes JPEGs for this camera", "/jpeg/transcoding"),
    ("panelcam_camera_viewers", "gauge", "Live viewers (MJPEG and control sockets)", "/clients"),
    ("panelcam_recording_active", "gauge", "1 while a recording session runs", "/recording/active"),
    (
        "panelcam_recording_frames_written_total",
        "counter",
        "Frames written to the frame store",
        "/recording/frames_written",
    ),
    (
        "panelcam_recording_frame_bytes_written_total",
        "counter",
        "JPEG bytes written to the frame store",
        "/recording/frame_bytes_written",
    ),
    (
        "panelcam_recording_frames_dropped_total",
        "counter",
        "Frames the frame store could not take",
        "/recording/frames_dropped",
    ),
    ("panelcam_recording_disk_bytes", "gauge", "Bytes the frame store uses on disk", "/recording/database_bytes"),
    ("panelcam_video_segments_kept_total", "counter", "Video segments kept", "/video/segments_kept"),
    ("panelcam_video_bytes_kept_total", "counter", "Video bytes kept", "/video/bytes_kept"),
    ("panelcam_video_errors_total", "counter", "Video recording errors", "/video/errors"),
    ("panelcam_ptz_requests_total", "counter", "PTZ requests sent to the camera", "/ptz/requests"),
    ("panelcam_ptz_errors_total", "counter", "PTZ requests that failed", "/ptz/errors"),
];

/// Gateway-wide families: (metric, type, help, JSON pointer into `/api/status`).
const GLOBAL: &[(&str, &str, &str, &str)] = &[
    ("panelcam_uptime_seconds", "gauge", "Seconds since panelcam started", "/uptime_secs"),
    ("panelcam_cameras", "gauge", "Cameras configured and running", "/cameras_total"),
    ("panelcam_cameras_streaming", "gauge", "Cameras delivering frames", "/cameras_streaming"),
    ("panelcam_connections", "gauge", "Open HTTP and WebSocket connections", "/connections"),
    ("panelcam_connections_max", "gauge", "Connections allowed at most", "/max_connections"),
    ("panelcam_auth_failures_total", "counter", "Requests refused for a missing or wrong credential", "/auth_failures"),
    (
        "panelcam_auth_lockouts_total",
        "counter",
        "Requests refused while their address was locked out",
        "/auth_lockouts",
    ),
    ("panelcam_disk_used_percent", "gauge", "Use of the recordings filesystem in percent", "/disk/used_percent"),
    ("panelcam_outbox_pending_items", "gauge", "Items waiting to be shipped to PostgreSQL", "/outbox/pending_items"),
    ("panelcam_outbox_pending_bytes", "gauge", "Bytes waiting to be shipped to PostgreSQL", "/outbox/pending_bytes"),
    ("panelcam_outbox_budget_bytes", "gauge", "Bytes the outbox may hold", "/outbox/budget_bytes"),
    (
        "panelcam_outbox_dropped_items_total",
        "counter",
        "Items dropped for lack of outbox space",
        "/outbox/dropped_items",
    ),
    (
        "panelcam_outbox_dropped_bytes_total",
        "counter",
        "Bytes dropped for lack of outbox space",
        "/outbox/dropped_bytes",
    ),
    ("panelcam_outbox_uploaded_items_total", "counter", "Items shipped to PostgreSQL", "/outbox/uploaded_items"),
    ("panelcam_outbox_uploaded_bytes_total", "counter", "Bytes shipped to PostgreSQL", "/outbox/uploaded_bytes"),
    ("panelcam_outbox_lost_items_total", "counter", "Items found damaged and lost", "/outbox/lost_items"),
    ("panelcam_postgresql_reachable", "gauge", "1 while the central database answers", "/outbox/postgresql_reachable"),
    ("panelcam_mqtt_connected", "gauge", "1 while connected to the MQTT broker", "/mqtt/connected"),
    ("panelcam_mqtt_published_total", "counter", "MQTT messages published", "/mqtt/published"),
    ("panelcam_mqtt_dropped_total", "counter", "MQTT messages dropped (queue full, broker away)", "/mqtt/dropped"),
    ("panelcam_mqtt_reconnects_total", "counter", "Reconnections to the MQTT broker", "/mqtt/reconnects"),
];

/// Renders the status document (as `/api/status` builds it) plus process figures.
pub fn render_status(status: &Value, process: &Process) -> String {
    let mut families: Vec<Family> = Vec::new();
    let cameras = status["cameras"].as_array().cloned().unwrap_or_default();
    for (name, kind, help, pointer) in CAMERA {
        let samples = cameras
            .iter()
            .filter_map(|c| {
                let mut c = c.clone();
                c["streaming"] = Value::Bool(c["state"] == "streaming");
                let id = c["id"].as_str()?.to_string();
                num(c.pointer(pointer)?).map(|v| (camera_label(&id), v))
            })
            .collect();
        families.push(Family { name, kind, help, samples });
    }
    for (name, kind, help, pointer) in GLOBAL {
        let samples = status.pointer(pointer).and_then(num).map(|v| (String::new(), v)).into_iter().collect();
        families.push(Family { name, kind, help, samples });
    }
    let invalid = status["invalid_cameras"].as_array().map_or(0, Vec::len);
    families.push(Family {
        name: "panelcam_cameras_invalid",
        kind: "gauge",
        help: "Camera files that could not be used",
        samples: vec![(String::new(), invalid as f64)],
    });
    let process_samples = |v: Option<u64>| v.map(|v| (String::new(), v as f64)).into_iter().collect();
    families.push(Family {
        name: "panelcam_process_resident_bytes",
        kind: "gauge",
        help: "Resident memory of the panelcam process",
        samples: process_samples(process.resident_bytes),
    });
    families.push(Family {
        name: "panelcam_process_open_fds",
        kind: "gauge",
        help: "Open file descriptors of the panelcam process",
        samples: process_samples(process.open_fds),
    });
    let version = status["version"].as_str().unwrap_or("unknown");
    families.push(Family {
        name: "panelcam_build_info",
        kind: "gauge",
        help: "Always 1; the version is its label",
        samples: vec![(format!("{{version=\"{}\"}}", version.replace(['\\', '"', '\n'], "_")), 1.0)],
    });

    let mut out = String::with_capacity(8192);
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in &f.samples {
            let _ = writeln!(out, "{}{labels} {value}", f.name);
        }
    }
    out
}

/// Figures about the process itself, from `/proc/self` (procfs, no disk I/O).
#[derive(Debug, Default)]
pub struct Process {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl Process {
    pub fn read() -> Process {
        let resident_bytes = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        });
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        Process { resident_bytes, open_fds }
    }
}

pub fn render(registry: &Registry) -> String {
    render_status(&crate::registry::report::status(registry), &Process::read())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn cameras_and_the_gateway_become_labelled_samples() {
        let status = json!({
            "version": "0.1.0", "uptime_secs": 12, "cameras_total": 1, "cameras_streaming": 1,
            "cameras": [{"id": "cam1", "state": "streaming", "fps": 9.9, "frames": 120, "clients": 2,
                         "recording": {"active": true, "frames_written": 50}}],
            "invalid_cameras": [], "outbox": null, "disk": {"used_percent": null},
        });
        let text = render_status(&status, &Process { resident_bytes: Some(4096), open_fds: Some(9) });
        for line in [
            "# TYPE panelcam_camera_frames_total counter",
            "panelcam_camera_streaming{camera=\"cam1\"} 1",
            "panelcam_camera_fps{camera=\"cam1\"} 9.9",
            "panelcam_camera_viewers{camera=\"cam1\"} 2",
            "panelcam_recording_active{camera=\"cam1\"} 1",
            "panelcam_uptime_seconds 12",
            "panelcam_process_resident_bytes 4096",
            "panelcam_build_info{version=\"0.1.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Absent figures (no outbox, unknown disk use) are left out, not reported as 0.
        assert!(!text.contains("panelcam_outbox_pending_items"), "{text}");
        assert!(!text.contains("panelcam_disk_used_percent "), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(camera_label("a\"b\\c\nd"), "{camera=\"a\\\"b\\\\c\\nd\"}");
    }

    proptest! {
        #[test]
        fn any_status_document_renders_without_panicking(id in ".{0,40}", fps in any::<f64>(), n in any::<i64>()) {
            let status = json!({"cameras": [{"id": id, "fps": fps, "frames": n, "recording": n}], "version": id,
                                "outbox": {"pending_items": n}, "invalid_cameras": n});
            let text = render_status(&status, &Process::default());
            for line in text.lines() {
                prop_assert!(line.starts_with('#') || line.starts_with("panelcam_"), "{line}");
            }
        }
    }
}

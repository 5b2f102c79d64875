//! The WinCC Unified Custom Web Control (`cwc/`) in a browser, for `tests/cwc.rs` and
//! `tests/cwc_package.rs`: the control opened with properties in its query string, as a plant
//! engineer commissions it without WinCC, and read and driven through the page's
//! `window.panelcamSetProperty` and `window.panelcamStatus`.

use std::time::Duration;

use serde_json::{Value, json};

use super::chromium::{Browser, Page};
use super::harness::{Server, merge, repo_path};
use super::static_files::StaticFiles;

pub const TOKEN: &str = "cam-s3cret-token";
pub const BEARER: &str = "Bearer cam-s3cret-token";

/// Every property of issue 10 and the spec, and issue 11's `live_stream_mode`.
pub const PROPERTIES: [&str; 24] = [
    "camera_stream_url",
    "camera_auth_token",
    "enable_connection",
    "show_version",
    "enable_debug",
    "use_control_stream",
    "enable_livestream",
    "use_hls_streaming",
    "live_stream_mode",
    "enable_recording",
    "recording_reason",
    "enable_playback",
    "playback_start_time",
    "playback_end_time",
    "playback_speed",
    "seek_to_time",
    "ptz_move",
    "ptz_stop",
    "ptz_goto_preset",
    "ptz_set_preset",
    "status_connected",
    "status_fps",
    "status_bitrate_kbps",
    "status_timestamp",
];

/// The names sorted, as serde_json keeps an object's keys.
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// FFmpeg's test source: no RTSP camera process needed.
pub fn lavfi_camera(extra: Value) -> Value {
    let mut camera = json!({"path": "/cam", "url": "lavfi:testsrc2=size=320x240:rate=10", "reconnect_interval": 1});
    merge(&mut camera, extra);
    camera
}

pub async fn server_with(config: Value, camera: Value) -> Server {
    let server = Server::start(config, &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    server
}

/// `cwc/control` as WinCC would host it: with panelcam's H.264 player from `web/` next to it,
/// where `scripts/build-cwc.sh` packs it.
pub async fn serve_control() -> StaticFiles {
    let shared = ["fmp4.js", "h264-sinks.js", "h264.js"];
    let extra = shared.iter().map(|name| (format!("/{name}"), repo_path(&format!("web/{name}")))).collect();
    StaticFiles::serve_with(repo_path("cwc/control"), extra).await
}

/// `name=value&...`, percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// The control in a browser, as a plant engineer would commission it without WinCC.
pub struct Control {
    pub page: Page,
}

impl Control {
    pub async fn open(browser: &Browser, files: &StaticFiles, properties: &[(&str, &str)]) -> Control {
        let url = files.url(&format!("/index.html?{}", query(properties)));
        let page = browser.new_page(&url).await.unwrap();
        page.wait_for("window.panelcamPlayer && window.panelcamSetProperty", Duration::from_secs(10)).await.unwrap();
        Control { page }
    }

    /// Sets a property as WinCC would (a JSON value: a string, number or boolean).
    pub async fn set(&self, name: &str, value: Value) {
        self.page.eval(&format!("window.panelcamSetProperty({}, {value})", Value::from(name))).await.unwrap();
    }

    pub async fn status(&self) -> Value {
        self.page.eval("window.panelcamStatus").await.unwrap()
    }

    pub async fn property(&self, name: &str) -> Value {
        self.page.eval(&format!("window.panelcamPlayer.props[{}]", Value::from(name))).await.unwrap()
    }

    /// Waits until `condition` (JS, with `s` the status written back) holds.
    pub async fn wait_status(&self, condition: &str, timeout: Duration) -> Value {
        let js = format!("(s => ({condition}) ? s : null)(window.panelcamStatus)");
        match self.page.wait_for(&js, timeout).await {
            Ok(v) => v,
            Err(e) => panic!("{e}\nstatus: {}\nshown: {}", self.status().await, self.shown().await),
        }
    }

    /// What the control shows over the picture and in its debug overlay.
    pub async fn shown(&self) -> Value {
        let js = "[document.getElementById('message').textContent, document.getElementById('debug').textContent]";
        self.page.eval(js).await.unwrap_or(Value::Null)
    }

    /// The capture time of the JPEG on screen (ms), read as often as the test likes; the
    /// status property carries the same once a second.
    pub async fn frame_time(&self) -> Option<i64> {
        self.page.eval("window.panelcamPlayer.frameTime").await.unwrap().as_f64().map(|t| t as i64)
    }

    /// Waits for a JPEG on screen, then for a different one.
    pub async fn assert_picture_changes(&self) {
        let hash = "(() => { const img = document.querySelector('#picture img'); if (!img || !img.naturalWidth) return null;
            const c = document.createElement('canvas'); c.width = 32; c.height = 24; const g = c.getContext('2d');
            g.drawImage(img, 0, 0, 32, 24); let h = 7; for (const v of g.getImageData(0, 0, 32, 24).data) h = (h * 33 + v) >>> 0;
            return h; })()";
        let first = self.page.wait_for(hash, Duration::from_secs(15)).await.unwrap();
        let changed = format!("(h => h !== null && h !== {first})({hash})");
        let r = self.page.wait_for(&changed, Duration::from_secs(10)).await;
        assert!(r.is_ok(), "the picture does not change: {r:?}; shown: {}", self.shown().await);
    }
}

pub fn ms_of(iso: &Value) -> i64 {
    let text = iso.as_str().unwrap_or_else(|| panic!("not a time: {iso}"));
    panelcam::util::parse_time(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

//! The WinCC Unified Custom Web Control (`cwc/`) in headless Chromium against the real
//! panelcam, driven through its properties as WinCC would drive it.
//!
//! The control is served by a static file server of its own (`serve_control`), never by
//! panelcam: in the plant WinCC's runtime hosts it, so it is cross-origin to panelcam and its
//! requests must pass CORS like there. Without WebCC it reads its properties from the query
//! string; `window.panelcamSetProperty` changes them and `window.panelcamStatus` holds what it
//! wrote back. The built package, with WebCC, is `tests/cwc_package.rs`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::chromium::Browser;
use support::cwc::*;
use support::harness::*;
use support::onvif::{self, Device};
use support::prefix_proxy::PrefixProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_shows_live_video_and_writes_its_status() {
    let server = server_with(json!({}), lavfi_camera(json!({"token": TOKEN}))).await;
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    // The server's base URL: its only camera is found through /api/cameras.
    let base = server.http_url("");
    let control = Control::open(
        &browser,
        &files,
        &[("camera_stream_url", &base), ("camera_auth_token", TOKEN), ("show_version", "true"), ("enable_debug", "1")],
    )
    .await;
    let s = control
        .wait_status("s.status_connected && s.status_fps > 3 && s.status_bitrate_kbps > 0", Duration::from_secs(15))
        .await;
    control.assert_picture_changes().await;
    let age = panelcam::util::now_ms() - ms_of(&s["status_timestamp"]);
    assert!((0..5000).contains(&age), "live: the time shown is the arrival time ({age} ms ago)");
    let attribute = control.page.eval("document.documentElement.dataset.statusConnected").await.unwrap();
    assert_eq!(attribute, "true", "the status is on <html> too");
    assert_eq!(control.page.eval("window.panelcamPlayer.transport").await.unwrap(), "live");
    let version = format!(
        "document.getElementById('version').textContent === 'VideoPlayer dev · panelcam {}'",
        env!("CARGO_PKG_VERSION")
    );
    control.page.wait_for(&version, Duration::from_secs(5)).await.unwrap();
    assert_eq!(server.camera_status("cam").await["clients"], 1);

    // The control socket carries the live picture too, with the camera's capture times.
    control.set("use_control_stream", json!(true)).await;
    control.page.wait_for("window.panelcamPlayer.transport === 'control'", Duration::from_secs(5)).await.unwrap();
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    control.assert_picture_changes().await;

    // Live view off: the socket stays (it carries PTZ and playback), the picture goes.
    control.set("enable_livestream", json!(false)).await;
    control.wait_status("s.status_connected && s.status_fps === 0", Duration::from_secs(10)).await;
    control.page.wait_for("document.querySelector('#picture img') === null", Duration::from_secs(5)).await.unwrap();

    // No connection at all, and back.
    control.set("enable_connection", json!(false)).await;
    control
        .wait_status("!s.status_connected && s.status_fps === 0 && s.status_bitrate_kbps === 0", Duration::from_secs(5))
        .await;
    let closed = eventually(Duration::from_secs(5), async || server.camera_status("cam").await["clients"] == 0).await;
    assert!(closed, "the viewer's socket is closed");
    control.set("enable_livestream", json!(true)).await;
    control.set("use_control_stream", json!(false)).await;
    control.set("enable_connection", json!(true)).await;
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;

    // Another form of URL: a WebSocket URL with the token in it (camera_auth_token empty).
    control.set("camera_stream_url", json!(format!("{}?token={TOKEN}", server.ws_url("/cam/stream")))).await;
    control.set("camera_auth_token", json!("")).await;
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    control.assert_picture_changes().await;
    control.page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_works_behind_wincc_s_reverse_proxy_prefix() {
    let server = server_with(json!({}), lavfi_camera(json!({"token": TOKEN}))).await;
    // WinCC's IIS maps /video/<x> to panelcam's /<x>; the old control's documented base URL.
    let proxy = PrefixProxy::start(server.port).await;
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    let control = Control::open(
        &browser,
        &files,
        &[("camera_stream_url", &proxy.url("/video")), ("camera_auth_token", TOKEN), ("enable_debug", "true")],
    )
    .await;
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    control.assert_picture_changes().await;
    let found = format!(
        "document.getElementById('debug').textContent.includes('camera: {} (with token)')",
        proxy.url("/video/cam")
    );
    control.page.wait_for(&found, Duration::from_secs(5)).await.unwrap();
    let active = async || {
        let r = server.request("GET", "/cam/control/recording/active", &[("Authorization", BEARER)], None).await;
        r.json()["data"]["active"].clone()
    };
    control.set("enable_recording", json!(true)).await;
    assert!(
        eventually(Duration::from_secs(10), async || active().await == true).await,
        "recording started through the prefix"
    );
    control.set("enable_recording", json!(false)).await;
    assert!(eventually(Duration::from_secs(10), async || active().await == false).await, "and stopped");
    control.set("use_control_stream", json!(true)).await;
    control.page.wait_for("window.panelcamPlayer.transport === 'control'", Duration::from_secs(5)).await.unwrap();
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    control.page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_reads_every_camera_url_form_and_matches_its_manifest() {
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    // No camera URL: nothing connects, and the control says why.
    let control = Control::open(&browser, &files, &[]).await;
    control
        .page
        .wait_for(
            "document.getElementById('message').textContent === 'camera_stream_url is empty'",
            Duration::from_secs(5),
        )
        .await
        .unwrap();

    // How each URL a plant engineer may be given is read: [base, camera, certain].
    let page = "https://wincc.plant/WebRH/cwc/index.html";
    let cases = [
        ("http://panel:8080/cam1/stream", json!(["http://panel:8080", "cam1", true])),
        ("ws://panel:8080/cam1/stream?token=x", json!(["http://panel:8080", "cam1", true])),
        ("wss://panel/video/cam1/live", json!(["https://panel/video", "cam1", true])),
        ("https://wincc/video/cam1/stream/", json!(["https://wincc/video", "cam1", true])),
        ("https://wincc/video/cam1/control", json!(["https://wincc/video", "cam1", true])),
        ("http://panel:8080/cam1/hls/live.m3u8", json!(["http://panel:8080", "cam1", true])),
        ("http://panel:8080/cam1/control/recordings", json!(["http://panel:8080", "cam1", true])),
        ("/video/cam1/stream", json!(["https://wincc.plant/video", "cam1", true])),
        ("panel:8080/cam1/test", json!(["http://panel:8080", "cam1", true])),
        ("http://panel:8080/dashboard", json!(["http://panel:8080", null, true])),
        ("http://panel:8080", json!(["http://panel:8080", null, true])),
        // Either the camera "cam1" or a prefix: the server is asked.
        ("http://panel:8080/cam1", json!(["http://panel:8080", "cam1", false])),
        ("https://wincc/video", json!(["https://wincc", "video", false])),
    ];
    for (url, want) in cases {
        let js = format!(
            "(p => [p.base, p.camera, p.certain])(PanelcamCwc.parseStreamUrl({}, {}))",
            Value::from(url),
            Value::from(page)
        );
        assert_eq!(control.page.eval(&js).await.unwrap(), want, "{url}");
    }
    let token = control.page.eval("PanelcamCwc.parseStreamUrl('ws://p/cam/stream?token=a%20b', location.href).token");
    assert_eq!(token.await.unwrap(), "a b");
    for bad in ["", "   ", "ftp://panel/cam1/stream"] {
        let js = format!(
            "(() => {{ try {{ PanelcamCwc.parseStreamUrl({}, location.href); return null; }} catch (e) {{ return e.message; }} }})()",
            Value::from(bad)
        );
        let message = control.page.eval(&js).await.unwrap();
        assert!(message.as_str().is_some_and(|m| m.contains("camera_stream_url")), "{bad:?}: {message}");
    }

    // The control's property table is the manifest's, and both are the spec's list.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("cwc/manifest.json")).unwrap()).unwrap();
    let declared = manifest["control"]["contracts"]["api"]["properties"].as_object().unwrap();
    assert_eq!(declared.keys().cloned().collect::<Vec<_>>(), sorted(&PROPERTIES));
    let table = control.page.eval("PanelcamCwc.PROPERTIES").await.unwrap();
    for (name, spec) in declared {
        assert_eq!(table[name], json!([spec["type"], spec["default"]]), "{name}: control vs. manifest.json");
    }
    assert_eq!(table.as_object().unwrap().len(), declared.len());
    // Query strings are text; the control sees typed values.
    let typed = "[PanelcamCwc.coerce('playback_speed', '2.5'), PanelcamCwc.coerce('enable_connection', 'false'),
                  PanelcamCwc.coerce('enable_debug', 'TRUE'), PanelcamCwc.coerce('playback_speed', ''),
                  PanelcamCwc.coerce('ptz_move', 5)]";
    assert_eq!(control.page.eval(typed).await.unwrap(), json!([2.5, false, true, 1, "5"]));
    let unknown = control
        .page
        .eval("(() => { try { panelcamSetProperty('enable_livestrem', true); } catch (e) { return e.message; } })()");
    assert_eq!(unknown.await.unwrap(), "VideoPlayer has no property enable_livestrem");
    control.page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_records_and_plays_back_with_speed_and_seek() {
    let server = server_with(json!({}), lavfi_camera(json!({"token": TOKEN}))).await;
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    let control = Control::open(
        &browser,
        &files,
        &[
            ("camera_stream_url", &server.http_url("/cam/stream")),
            ("camera_auth_token", TOKEN),
            ("recording_reason", "cwc test"),
            ("enable_debug", "true"),
        ],
    )
    .await;
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    let active = async || {
        let r = server.request("GET", "/cam/control/recording/active", &[("Authorization", BEARER)], None).await;
        r.json()["data"].clone()
    };

    // Recording: on, with the reason, and off again (REST with the token as a Bearer header,
    // cross-origin: CORS preflight included).
    control.set("enable_recording", json!(true)).await;
    assert!(eventually(Duration::from_secs(10), async || active().await["active"] == true).await, "recording started");
    assert_eq!(active().await["session"]["reason"], "cwc test");
    tokio::time::sleep(Duration::from_secs(10)).await;
    control.set("enable_recording", json!(false)).await;
    assert!(eventually(Duration::from_secs(10), async || active().await["active"] == false).await, "recording stopped");
    let sessions = server.request("GET", "/cam/control/recordings", &[("Authorization", BEARER)], None).await.json();
    let session = sessions["data"]["sessions"][0].clone();
    let (start, end) = (session["start_ms"].as_i64().unwrap(), session["end_ms"].as_i64().unwrap());
    assert!(end - start > 8000, "{session}");

    // Playback from the session's start at real speed: recorded times, advancing with the clock.
    control.set("playback_start_time", json!(panelcam::util::iso_ms(start))).await;
    control.set("enable_playback", json!(true)).await;
    let in_recording = format!(
        "s.status_connected && Date.parse(s.status_timestamp) >= {start} && Date.parse(s.status_timestamp) < {start} + 4000"
    );
    let s = control.wait_status(&in_recording, Duration::from_secs(10)).await;
    assert_eq!(control.page.eval("window.panelcamPlayer.transport").await.unwrap(), "control");
    let first = ms_of(&s["status_timestamp"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = control.frame_time().await.unwrap();
    assert!((1000..4500).contains(&(later - first)), "real speed: {} ms of recording in 2.5 s", later - first);

    // Four times faster, and back to near the start: the rest of the recording plays in about
    // a quarter of its length.
    let before_seek = control.frame_time().await.unwrap();
    control.set("playback_speed", json!(4)).await;
    control.set("seek_to_time", json!(panelcam::util::iso_ms(start + 500))).await;
    let seeked = control
        .page
        .wait_for(
            &format!("(t => t !== null && t < {before_seek} - 1000 ? t : null)(window.panelcamPlayer.frameTime)"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|e| panic!("seek_to_time did not go back: {e}"));
    let (from, wall) = (seeked.as_f64().unwrap() as i64, Instant::now());
    assert!((start..start + 2500).contains(&from), "the seek went to {from}, asked {}", start + 500);
    assert_eq!(control.property("seek_to_time").await, "", "a command is set back once sent");
    let near_end = format!("(t => t !== null && t >= {end} - 600 ? t : null)(window.panelcamPlayer.frameTime)");
    let to = control.page.wait_for(&near_end, Duration::from_secs(15)).await.unwrap().as_f64().unwrap() as i64;
    let rate = (to - from) as f64 / wall.elapsed().as_millis().max(1) as f64;
    assert!((2.5..6.0).contains(&rate), "played {} ms of recording at {rate:.2}x, asked 4x", to - from);
    let ended = "document.getElementById('message').textContent === 'end of the recording'";
    let ended = control.page.wait_for(ended, Duration::from_secs(5)).await;
    assert!(
        ended.is_ok(),
        "{ended:?}; shown {}; frame {:?}, end {end}",
        control.shown().await,
        control.frame_time().await
    );
    let s =
        control.wait_status(&format!("Date.parse(s.status_timestamp) >= {end} - 600"), Duration::from_secs(3)).await;
    assert!(ms_of(&s["status_timestamp"]) <= end, "{s}");

    // Playback off: live again.
    control.set("enable_playback", json!(false)).await;
    control.page.wait_for("window.panelcamPlayer.transport === 'live'", Duration::from_secs(5)).await.unwrap();
    let s = control
        .wait_status(
            &format!(
                "s.status_connected && s.status_fps > 3 && Date.parse(s.status_timestamp) > {}",
                panelcam::util::now_ms()
            ),
            Duration::from_secs(15),
        )
        .await;
    assert!(ms_of(&s["status_timestamp"]) > end);
    control.page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_plays_live_hls() {
    let config = json!({"server": {"hls_js_path": repo_path("web/vendor/hls.min.js")},
                        "recording": {"hls_storage_enabled": true, "hls_segment_seconds": 2}});
    let server = server_with(config, lavfi_camera(json!({}))).await;
    // A few segments first, so the live window holds more than one.
    let ready = eventually(Duration::from_secs(30), async || {
        server.get("/cam/hls/live.m3u8").await.text().matches(".m4s").count() >= 2
    })
    .await;
    assert!(ready, "live playlist: {}", server.get("/cam/hls/live.m3u8").await.text());
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    let control = Control::open(
        &browser,
        &files,
        &[("camera_stream_url", &server.http_url("/cam/stream")), ("use_hls_streaming", "true")],
    )
    .await;
    let playing = "(v => v.currentTime > 1 && !v.paused ? v.currentTime : null)(document.getElementById('video'))";
    if let Err(e) = control.page.wait_for(playing, Duration::from_secs(30)).await {
        panic!(
            "HLS does not play: {e}; shown: {}; console: {:?}",
            control.shown().await,
            control.page.console_messages().await
        );
    }
    assert_eq!(control.page.eval("document.body.classList.contains('hls') && !!window.Hls").await.unwrap(), true);
    let size = control.page.eval("(v => [v.videoWidth, v.videoHeight])(document.getElementById('video'))").await;
    assert_eq!(size.unwrap(), json!([320, 240]));
    let s = control
        .wait_status(
            "s.status_connected && s.status_fps > 1 && s.status_bitrate_kbps > 0 && s.status_timestamp",
            Duration::from_secs(10),
        )
        .await;
    // HLS trails live by a few segments; the time shown is the camera's (program date-time).
    let behind = panelcam::util::now_ms() - ms_of(&s["status_timestamp"]);
    assert!((0..30_000).contains(&behind), "{behind} ms behind");

    // Back to MJPEG.
    control.set("use_hls_streaming", json!(false)).await;
    control.wait_status("s.status_connected && s.status_fps > 3", Duration::from_secs(15)).await;
    control.assert_picture_changes().await;
    assert_eq!(control.page.eval("document.body.classList.contains('hls')").await.unwrap(), false);
    control.page.assert_no_console_errors().await;
}

/// Waits until `device` has received `n` calls of `action`; returns the last one's body.
async fn nth_call(device: &Device, action: &str, n: usize) -> String {
    let arrived = eventually(Duration::from_secs(10), async || device.calls(action).len() >= n).await;
    let calls = device.calls(action);
    assert!(arrived && calls.len() == n, "{} {action} call(s), expected {n}", calls.len());
    calls[n - 1].body.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_cwc_moves_the_camera_over_onvif() {
    let device = Device::start(false).await;
    let server = server_with(json!({}), lavfi_camera(onvif::ptz_section(&device.url(), onvif::PASSWORD))).await;
    let files = serve_control().await;
    let browser = Browser::launch().await.unwrap();
    let control = Control::open(
        &browser,
        &files,
        &[("camera_stream_url", &server.http_url("/cam/stream")), ("enable_debug", "true")],
    )
    .await;
    control.wait_status("s.status_connected", Duration::from_secs(15)).await;

    // Over the REST API (POST /cam/control/ptz/...): a move, and empty again stops it.
    control.set("ptz_move", json!(r#"{"pan": 0.5, "tilt": 0}"#)).await;
    let moved = nth_call(&device, "ContinuousMove", 1).await;
    assert!(moved.contains(r#"<tt:PanTilt x="0.5" y="0"/>"#), "{moved}");
    control.set("ptz_move", json!("")).await;
    nth_call(&device, "Stop", 1).await;
    // A move with zoom and its own timeout, stopped by ptz_stop, which is set back to false.
    control.set("ptz_move", json!(r#"{"pan": 0, "tilt": -1, "zoom": 0.5, "timeout_secs": 3}"#)).await;
    let moved = nth_call(&device, "ContinuousMove", 2).await;
    assert!(moved.contains(r#"<tt:PanTilt x="0" y="-1"/>"#) && moved.contains(r#"<tt:Zoom x="0.5"/>"#), "{moved}");
    assert!(moved.contains("<tptz:Timeout>PT3S</tptz:Timeout>"), "{moved}");
    control.set("ptz_stop", json!(true)).await;
    nth_call(&device, "Stop", 2).await;
    assert_eq!(control.property("ptz_stop").await, false);
    // Presets: by number (the old control's {"preset": n}: the camera's second), by token, and
    // the position saved under a name.
    control.set("ptz_goto_preset", json!(r#"{"preset": 2}"#)).await;
    let goto = nth_call(&device, "GotoPreset", 1).await;
    assert!(goto.contains("<tptz:PresetToken>Preset_B</tptz:PresetToken>"), "{goto}");
    assert_eq!(control.property("ptz_goto_preset").await, "");
    control.set("ptz_goto_preset", json!("Preset_A")).await;
    let goto = nth_call(&device, "GotoPreset", 2).await;
    assert!(goto.contains("<tptz:PresetToken>Preset_A</tptz:PresetToken>"), "{goto}");
    control.set("ptz_set_preset", json!(r#"{"name": "North gate"}"#)).await;
    let set = nth_call(&device, "SetPreset", 1).await;
    assert!(set.contains("<tptz:PresetName>North gate</tptz:PresetName>"), "{set}");
    assert_eq!(control.property("ptz_set_preset").await, "");
    control
        .page
        .wait_for("document.getElementById('debug').textContent.includes('PTZ set_preset: ok')", Duration::from_secs(5))
        .await
        .unwrap();

    // Over the control socket when it is open: the same commands, the camera's answer on it.
    control.set("use_control_stream", json!(true)).await;
    control
        .page
        .wait_for(
            "window.panelcamPlayer.transport === 'control' && window.panelcamPlayer.player.connected",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    control.set("ptz_goto_preset", json!("1")).await;
    let goto = nth_call(&device, "GotoPreset", 3).await;
    assert!(goto.contains("<tptz:PresetToken>Preset_A</tptz:PresetToken>"), "{goto}");
    let debug = "(t => t.includes('PTZ goto_preset sent on the control socket') && t.includes('reply: Moving to preset (ptz_goto_preset)'))(document.getElementById('debug').textContent)";
    control.page.wait_for(debug, Duration::from_secs(5)).await.unwrap();
    control.set("ptz_stop", json!(true)).await;
    nth_call(&device, "Stop", 3).await;
    assert_eq!(device.calls("ContinuousMove").len(), 2);
    control.page.assert_no_console_errors().await;
}

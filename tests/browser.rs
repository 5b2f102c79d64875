//! Real headless Chromium opens panelcam's pages and must see a moving picture.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::chromium::{self, Browser, Page};
use support::harness::*;
use support::onvif::{self, Device};
use support::picture::{assert_picture_changes, picture_hash_js};

async fn setup() -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let server = Server::start(json!({}), &[("cam", camera_json("/cam", &cam.url("/cam"), json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_stream_and_test_pages_show_a_moving_picture() {
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let (_cam, server) = setup().await;
    let browser = Browser::launch().await.unwrap();

    let stream = browser.new_page(&server.http_url("/cam/stream")).await.unwrap();
    assert_picture_changes(&stream, "#video").await;
    let frames = stream.eval("window.panelcamPlayer.frames").await.unwrap();
    assert!(frames.as_u64().unwrap() >= 2, "{frames}");

    let test = browser.new_page(&server.http_url("/cam/test")).await.unwrap();
    assert_picture_changes(&test, "#video").await;
    test.wait_for("document.getElementById('state').textContent === 'connected'", Duration::from_secs(5))
        .await
        .unwrap();
    test.wait_for("parseFloat(document.getElementById('fps').textContent) > 5", Duration::from_secs(5)).await.unwrap();
    let resolution = test.eval("document.getElementById('resolution').textContent").await.unwrap();
    assert_eq!(resolution, "640×360");
    assert_eq!(server.camera_status("cam").await["clients"], 2, "both pages are viewers");
    stream.assert_no_console_errors().await;
    test.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_dashboard_shows_a_tile_with_a_moving_picture() {
    let (_cam, server) = setup().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/dashboard")).await.unwrap();
    let tile = "[data-camera=\"cam\"]";
    page.wait_for(
        &format!("document.querySelector('{tile} .badge').textContent === 'streaming'"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_picture_changes(&page, &format!("{tile} .video")).await;
    let line = page.eval("document.getElementById('server').textContent").await.unwrap();
    assert!(line.as_str().unwrap().contains(&format!("panelcam {}", env!("CARGO_PKG_VERSION"))), "{line}");
    // Record from the tile, and stop again.
    page.click(&format!("{tile} .rec-button")).await.unwrap();
    page.wait_for(
        &format!("document.querySelector('{tile} .rec').textContent.includes('REC')"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(server.get("/cam/control/recording/active").await.json()["data"]["active"], true);
    page.click(&format!("{tile} .rec-button")).await.unwrap();
    page.wait_for(&format!("document.querySelector('{tile} .rec').textContent === ''"), Duration::from_secs(10))
        .await
        .unwrap();
    // The media icons are drawn, not font glyphs.
    let icons = page.eval(&format!("document.querySelectorAll('{tile} .rec-button svg path').length")).await.unwrap();
    assert_eq!(icons, 1);
    // A camera removed while the page is open loses its tile.
    std::fs::remove_file(server.dir.0.join("cameras/cam.json")).unwrap();
    page.wait_for(&format!("document.querySelector('{tile}') === null"), Duration::from_secs(10)).await.unwrap();
    page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_the_stream_page_explains_a_camera_without_hls() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), json!({}));
    let server = Server::start(json!({"recording": {"hls_live": false}}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/cam/stream?hls=1")).await.unwrap();
    page.wait_for(
        "document.getElementById('status').textContent.includes('This camera has no HLS')",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_pages_work_behind_a_reverse_proxy_prefix() {
    // WinCC's IIS maps /video/<x> to panelcam's /<x>; a tiny proxy does the same here.
    let (_cam, server) = setup().await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let upstream = server.port;
    tokio::spawn(async move {
        while let Ok((client, _)) = proxy.accept().await {
            tokio::spawn(strip_prefix_proxy(client, upstream));
        }
    });
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&format!("http://127.0.0.1:{proxy_port}/video/cam/stream")).await.unwrap();
    assert_picture_changes(&page, "#video").await;
    page.assert_no_console_errors().await;
}

/// Forwards one connection, rewriting `/video/` out of the request line (like IIS's rule).
async fn strip_prefix_proxy(mut client: tokio::net::TcpStream, upstream: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).replacen(" /video/", " /", 1);
    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
    if server.write_all(text.as_bytes()).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_control_page_records_and_plays_back() {
    let (_cam, server) = setup().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/cam/control")).await.unwrap();
    let wait = |js: &'static str| page.wait_for(js, Duration::from_secs(10));
    wait("document.getElementById('conn').textContent === 'connected'").await.unwrap();
    assert_picture_changes(&page, "#video").await; // live view first

    page.eval("document.getElementById('reason').value = 'browser test'").await.unwrap();
    page.click("#rec-start").await.unwrap();
    wait("document.getElementById('rec-state').textContent.includes('REC')").await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    page.click("#rec-stop").await.unwrap();
    wait("document.getElementById('rec-state').textContent === 'not recording'").await.unwrap();

    page.click("#load").await.unwrap();
    wait("document.querySelector('#sessions li[data-session]')").await.unwrap();
    let listed = page.eval("document.querySelector('#sessions li[data-session]').textContent").await.unwrap();
    assert!(listed.as_str().unwrap().contains("browser test"), "{listed}");

    let clicked = panelcam::util::now_ms();
    page.click("#sessions li[data-session]").await.unwrap();
    wait("document.getElementById('mode').textContent === 'replay'").await.unwrap();
    // The timestamp advances and the picture changes while the recording plays (one check for
    // both, so a loaded machine cannot let the short replay end between two separate waits).
    // The first replayed frame: older than the click (until then the last live frame shows).
    let first = page
        .wait_for(&format!("(() => {{ const t = Date.parse(document.getElementById('ts').textContent); return t < {clicked} - 1000 ? t : null; }})()"), Duration::from_secs(10))
        .await
        .unwrap();
    let hash = picture_hash_js("#video");
    let first_hash = page.wait_for(&hash, Duration::from_secs(10)).await.unwrap();
    let later = page
        .wait_for(
            &format!(
                "(() => {{ const t = Date.parse(document.getElementById('ts').textContent); const h = {hash};
                    return t > {first} && h !== null && h !== {first_hash} ? t : null; }})()"
            ),
            Duration::from_secs(10),
        )
        .await;
    let later = match later {
        Ok(v) => v,
        Err(e) => {
            let ui = page.eval("[document.getElementById('ts').textContent, document.getElementById('mode').textContent, document.getElementById('message').textContent]").await;
            panic!("replay did not advance: {e}; page shows {ui:?}");
        }
    };
    let recorded = server.get("/cam/control/recordings").await.json();
    let session = &recorded["data"]["sessions"][0];
    let (start, end) = (session["start_ms"].as_i64().unwrap(), session["end_ms"].as_i64().unwrap());
    let shown = later.as_f64().unwrap() as i64;
    assert!((start..=end).contains(&shown), "the timestamp shown ({shown}) lies in the recording [{start}, {end}]");
    // Playback is of the past: the shown time trails the wall clock.
    assert!(panelcam::util::now_ms() - shown > 500);
    page.assert_no_console_errors().await;
}

/// Waits until `device` has received `n` calls of `action`, and returns the last one's body.
async fn nth_call(device: &Device, action: &str, n: usize) -> String {
    let arrived = eventually(Duration::from_secs(10), async || device.calls(action).len() >= n).await;
    let calls = device.calls(action);
    assert!(arrived && calls.len() == n, "{} {action} call(s), expected {n}", calls.len());
    calls[n - 1].body.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_control_page_moves_the_camera_while_pressed_and_goes_to_presets() {
    let device = Device::start(false).await;
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), onvif::ptz_section(&device.url(), onvif::PASSWORD));
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/cam/control")).await.unwrap();
    let wait = |js: &'static str| page.wait_for(js, Duration::from_secs(10));

    // The pad shows, drawn with inline SVG, and the camera's presets are listed by name.
    wait("document.querySelectorAll('#presets li[data-token]').length === 2").await.unwrap();
    let shown = page.eval("[document.getElementById('ptz').hidden, document.getElementById('ptz-off').hidden]").await;
    assert_eq!(shown.unwrap(), json!([false, true]));
    let names =
        page.eval("[...document.querySelectorAll('#presets li[data-token] span')].map(s => s.textContent)").await;
    assert_eq!(names.unwrap(), json!(["Gate", "Yard & dock"]));
    let icons = page.eval("document.querySelectorAll('.pad button svg path').length").await.unwrap();
    assert_eq!(icons, 5, "four arrows and stop");

    // Mouse down on "pan right": ContinuousMove at the default speed (50 %), and no Stop while held.
    page.mouse("mousePressed", "[data-pan='1']").await.unwrap();
    let moved = nth_call(&device, "ContinuousMove", 1).await;
    assert!(moved.contains(r#"<tt:PanTilt x="0.5" y="0"/>"#) && !moved.contains("Zoom x="), "{moved}");
    assert!(moved.contains("<tptz:Timeout>PT5S</tptz:Timeout>"), "each move is bounded: {moved}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(device.calls("Stop").is_empty(), "stopped while still held");
    // Release: Stop, after the move.
    page.mouse("mouseReleased", "[data-pan='1']").await.unwrap();
    nth_call(&device, "Stop", 1).await;
    assert!(device.calls("Stop")[0].at > device.calls("ContinuousMove")[0].at);
    wait("document.getElementById('ptz-message').textContent === 'stopped'").await.unwrap();

    // Leaving the button stops too; at full speed, tilting down.
    page.eval("document.getElementById('ptz-speed').value = '1'").await.unwrap();
    page.mouse("mousePressed", "[data-tilt='-1']").await.unwrap();
    let moved = nth_call(&device, "ContinuousMove", 2).await;
    assert!(moved.contains(r#"<tt:PanTilt x="0" y="-1"/>"#), "{moved}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(device.calls("Stop").len(), 1, "pressing a second button (and so blurring the first) is no stop");
    page.mouse("mouseMoved", "#title").await.unwrap();
    nth_call(&device, "Stop", 2).await;
    page.mouse("mouseReleased", "#title").await.unwrap();

    // The keyboard: Enter held on "zoom in" zooms, its release stops.
    page.eval("document.querySelector('[data-zoom=\"1\"]').focus()").await.unwrap();
    page.key("Enter", "Enter", 13, true).await.unwrap();
    let moved = nth_call(&device, "ContinuousMove", 3).await;
    assert!(moved.contains(r#"<tt:PanTilt x="0" y="0"/>"#) && moved.contains(r#"<tt:Zoom x="1"/>"#), "{moved}");
    page.key("Enter", "Enter", 13, false).await.unwrap();
    nth_call(&device, "Stop", 3).await;
    // The focus leaving a held button stops as well.
    page.eval("document.querySelector('[data-zoom=\"-1\"]').focus()").await.unwrap();
    page.key("Enter", "Enter", 13, true).await.unwrap();
    let moved = nth_call(&device, "ContinuousMove", 4).await;
    assert!(moved.contains(r#"<tt:Zoom x="-1"/>"#), "{moved}");
    page.eval("document.getElementById('preset-name').focus()").await.unwrap();
    nth_call(&device, "Stop", 4).await;
    page.key("Enter", "Enter", 13, false).await.unwrap();

    // A long press renews its move before the move's own timeout would stop the camera.
    page.mouse("mousePressed", "[data-pan='-1']").await.unwrap();
    nth_call(&device, "ContinuousMove", 5).await;
    let renewed = nth_call(&device, "ContinuousMove", 6).await;
    assert!(renewed.contains(r#"<tt:PanTilt x="-1" y="0"/>"#), "{renewed}");
    let moves = device.calls("ContinuousMove");
    let gap = moves[5].at.duration_since(moves[4].at);
    assert!(gap < Duration::from_secs(5), "renewed after {gap:?}, past the 5 s timeout");
    assert_eq!(device.calls("Stop").len(), 4, "no Stop while held");
    page.mouse("mouseReleased", "[data-pan='-1']").await.unwrap();
    nth_call(&device, "Stop", 5).await;

    // A preset's button goes to that preset, by its token.
    page.click("#presets li[data-token='Preset_B'] button").await.unwrap();
    let goto = nth_call(&device, "GotoPreset", 1).await;
    assert!(goto.contains("<tptz:PresetToken>Preset_B</tptz:PresetToken>"), "{goto}");
    wait("document.getElementById('ptz-message').textContent === 'moving to Yard & dock'").await.unwrap();

    // Save the position under a name: SetPreset with it, the new token shown, the list read again.
    let listed = device.calls("GetPresets").len();
    page.eval("document.getElementById('preset-name').value = 'North gate'").await.unwrap();
    page.click("#preset-save").await.unwrap();
    let set = nth_call(&device, "SetPreset", 1).await;
    assert!(set.contains("<tptz:PresetName>North gate</tptz:PresetName>"), "{set}");
    wait("document.getElementById('ptz-message').textContent.includes('tok-42')").await.unwrap();
    nth_call(&device, "GetPresets", listed + 1).await;

    // The stop button.
    page.click("#ptz-stop").await.unwrap();
    nth_call(&device, "Stop", 6).await;
    wait("document.getElementById('ptz-message').textContent === 'stopped'").await.unwrap();
    assert_eq!(device.calls("ContinuousMove").len(), 6, "short presses are not renewed");
    page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_control_page_hides_the_pad_without_ptz_and_shows_the_cameras_refusal() {
    let device = Device::start(false).await;
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let plain = camera_json("/plain", &cam.url("/cam"), json!({}));
    let bad = camera_json("/bad", &cam.url("/cam"), onvif::ptz_section(&device.url(), "wrong-password"));
    let server = Server::start(json!({}), &[("plain", plain), ("bad", bad)]).await;
    server.wait_streaming("plain", Duration::from_secs(20)).await;
    let browser = Browser::launch().await.unwrap();

    // No PTZ: no pad, a short note instead, and nothing asked of the PTZ API.
    let page = browser.new_page(&server.http_url("/plain/control")).await.unwrap();
    page.wait_for("!document.getElementById('ptz-off').hidden", Duration::from_secs(10)).await.unwrap();
    let pad = page.eval("[document.getElementById('ptz').hidden, document.querySelector('.pad').offsetParent]").await;
    assert_eq!(pad.unwrap(), json!([true, null]), "the pad is not displayed");
    let note = page.eval("document.getElementById('ptz-off').textContent").await.unwrap();
    assert!(note.as_str().unwrap().contains("no PTZ"), "{note}");
    page.assert_no_console_errors().await;
    drop(page);

    // A camera that refuses our credentials: its fault is on the page, for the list and a press.
    let page = browser.new_page(&server.http_url("/bad/control")).await.unwrap();
    let wait = |js: &'static str| page.wait_for(js, Duration::from_secs(10));
    wait("document.getElementById('ptz-message').textContent.includes('Sender not Authorized')").await.unwrap();
    page.eval("document.getElementById('ptz-message').textContent = ''").await.unwrap();
    page.mouse("mousePressed", "[data-pan='-1']").await.unwrap();
    page.mouse("mouseReleased", "[data-pan='-1']").await.unwrap();
    let shown = wait("(t => t.startsWith('502: ') && t.includes('Sender not Authorized') ? t : null)(document.getElementById('ptz-message').textContent)").await;
    let shown = shown.unwrap();
    assert!(shown.as_str().unwrap().contains("ter:NotAuthorized"), "{shown}");
    assert_eq!(page.eval("document.getElementById('ptz-message').className").await.unwrap(), "error");
    // Chromium logs each failed request; those 502s are the only errors.
    let errors = page.console_errors().await;
    let unexpected: Vec<_> =
        errors.iter().filter(|e| !(e.contains("status of 502") && e.contains("/bad/control/ptz/"))).collect();
    assert!(unexpected.is_empty(), "{errors:?}");
    assert!(!errors.is_empty(), "the refusals reached the browser as 502s");
}

/// Waits until a `<video>` plays: time advances past `beyond` seconds.
async fn assert_video_plays(page: &Page, beyond: f64) -> f64 {
    let js = format!(
        "(() => {{ const v = window.panelcamHls && window.panelcamHls.video; return v && v.currentTime > {beyond} && !v.paused ? v.currentTime : null; }})()"
    );
    let t = page.wait_for(&js, Duration::from_secs(30)).await;
    match t {
        Ok(v) => v.as_f64().unwrap(),
        Err(e) => {
            let state = page
                .eval("(() => { const v = window.panelcamHls.video; const b = []; for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]); return {t: v.currentTime, paused: v.paused, ready: v.readyState, net: v.networkState, err: v.error && v.error.message, buffered: b, status: document.getElementById('status').textContent}; })()")
                .await;
            panic!("video does not play: {e}; state {state:?}; console: {:?}", page.console_messages().await)
        }
    }
}

async fn hls_setup(camera: serde_json::Value) -> (TestCamera, Server) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let config = json!({"server": {"hls_js_path": repo_path("web/vendor/hls.min.js")},
                        "recording": {"hls_storage_enabled": true, "hls_segment_seconds": 2}});
    let server = Server::start(config, &[("cam", camera_json("/cam", &cam.url("/cam"), camera))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    (cam, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_live_hls_plays_in_chromium_with_hls_js() {
    assert!(repo_path("web/vendor/hls.min.js").exists(), "hls.js missing: run scripts/deps.sh");
    let (_cam, server) = hls_setup(json!({})).await;
    // A few segments first, so the live window holds more than one.
    let ready = eventually(Duration::from_secs(20), async || {
        server.get("/cam/hls/live.m3u8").await.text().matches(".m4s").count() >= 2
    })
    .await;
    assert!(ready, "live playlist: {}", server.get("/cam/hls/live.m3u8").await.text());
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/cam/stream?hls=1")).await.unwrap();
    let t = assert_video_plays(&page, 1.0).await;
    let hlsjs = page.eval("!!(window.panelcamHls && window.panelcamHls.hls)").await.unwrap();
    assert_eq!(hlsjs, true, "played through hls.js (Chromium has no native HLS)");
    let size = page.eval("[window.panelcamHls.video.videoWidth, window.panelcamHls.video.videoHeight]").await.unwrap();
    assert_eq!(size, json!([640, 360]), "the camera's own resolution");
    assert!(t > 1.0);
    page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_recorded_range_over_two_sessions_plays_and_seeks() {
    let (_cam, server) = hls_setup(json!({"recording": {"pre_event_seconds": 0}})).await;
    let first = server.start_recording("cam", "one").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let one = server.stop_recording("cam").await["session"].clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.start_recording("cam", "two").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let two = server.stop_recording("cam").await["session"].clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(one["session_id"], two["session_id"]);
    let (t1, t2) = (one["start_time"].as_str().unwrap(), two["end_time"].as_str().unwrap());
    let playlist = server.get(&format!("/cam/control/recordings/hls/timerange?t1={t1}&t2={t2}")).await.text();
    assert!(playlist.contains("#EXT-X-DISCONTINUITY"), "the gap between the sessions is marked:\n{playlist}");
    let total: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();

    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url(&format!("/cam/stream?hls=1&t1={t1}&t2={t2}"))).await.unwrap();
    assert_video_plays(&page, 0.5).await;
    let duration = page
        .wait_for("window.panelcamHls.video.duration || null", Duration::from_secs(10))
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((duration - total).abs() < 1.5, "the player sees both sessions: {duration} s vs {total} s in the playlist");
    // Seek into the second session and keep playing from there.
    let target = total - 4.0;
    page.eval(&format!("window.panelcamHls.video.currentTime = {target}")).await.unwrap();
    let after = assert_video_plays(&page, target + 0.5).await;
    assert!(after < total + 0.5, "{after}");
    let _ = first;
    page.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_the_admin_page_adds_edits_and_deletes_a_camera() {
    let (cam, server) = setup().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page(&server.http_url("/admin")).await.unwrap();
    let wait = |js: String| {
        let page = &page;
        async move { page.wait_for(&js, Duration::from_secs(15)).await.unwrap_or_else(|e| panic!("{js}: {e}")) }
    };
    // Sign in once; the token stays in this tab's session only.
    page.eval(&format!("document.getElementById('token').value = {}", Value::from(ADMIN_TOKEN))).await.unwrap();
    page.click("#login button").await.unwrap();
    wait("document.querySelector('#cameras li[data-camera=\"cam\"]')".into()).await;
    let stored =
        page.eval("sessionStorage.getItem('panelcam-admin') !== null && localStorage.length === 0").await.unwrap();
    assert_eq!(stored, true);

    // Add a camera.
    page.click("#add").await.unwrap();
    let set = |name: &str, value: &str| {
        format!("document.querySelector('#editor [name=\"{name}\"]').value = {}", Value::from(value))
    };
    page.eval(&set("camera_id", "door")).await.unwrap();
    page.eval(&set("path", "/door")).await.unwrap();
    page.eval(&set("url", &cam.url("/cam"))).await.unwrap();
    page.click("#editor button[type=submit]").await.unwrap();
    wait("document.getElementById('message').textContent === 'saved'".into()).await;
    server.wait_streaming("door", Duration::from_secs(20)).await;

    // An invalid value: the problem shows next to its field, nothing is written.
    page.eval(&set("ffmpeg.scale", "huge")).await.unwrap();
    page.click("#editor button[type=submit]").await.unwrap();
    wait("document.querySelector('label[data-field=\"ffmpeg.scale\"] .problem')".into()).await;
    let on_disk = std::fs::read_to_string(server.dir.0.join("cameras/door.json")).unwrap();
    assert!(!on_disk.contains("huge"), "{on_disk}");

    // A valid edit applies: the camera restarts with the new scale.
    page.eval(&set("ffmpeg.scale", "320:-1")).await.unwrap();
    page.click("#editor button[type=submit]").await.unwrap();
    wait("document.getElementById('message').textContent === 'saved'".into()).await;
    let scaled = eventually(Duration::from_secs(20), async || {
        let snap = server.get("/door/snapshot").await;
        snap.status == 200 && jpeg_size(&snap.body).0 == 320
    })
    .await;
    assert!(scaled, "the edit applied");

    // Delete it.
    page.click("#delete").await.unwrap();
    wait("!document.querySelector('#cameras li[data-camera=\"door\"]') && document.querySelector('#cameras li') !== null".into())
        .await;
    assert!(!server.dir.0.join("cameras/door.json").exists());
    // The one failed request is the refused edit (Chromium logs every 4xx answer).
    let errors = page.console_errors().await;
    let unexpected: Vec<_> =
        errors.iter().filter(|e| !(e.contains("status of 400") && e.contains("/api/admin/cameras/door"))).collect();
    assert!(unexpected.is_empty(), "{errors:?}");
}

//! PTZ against a real (tiny) ONVIF endpoint in this test process (`support::onvif`): each
//! request's envelope, action, profile token, velocities and WS-Security digest are checked
//! by the device as a camera would; the answers and `/api/status` are checked here.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::harness::*;
use support::onvif::*;
use support::pki::{Ca, fingerprint, self_signed};

async fn post(server: &Server, path: &str, body: Value) -> HttpResponse {
    let text = body.to_string();
    server.request("POST", path, &[("Content-Type", "application/json")], Some(text.as_bytes())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_moves_stops_and_keeps_presets_over_onvif() {
    let device = Device::start(false).await;
    let cam = TestCamera::start(&[]).await;
    let good = camera_json("/cam", &cam.url("/cam"), ptz_section(&device.url(), PASSWORD));
    let bad = camera_json("/bad", &cam.url("/cam"), ptz_section(&device.url(), "wrong-password"));
    let server = Server::start(json!({}), &[("cam", good), ("bad", bad)]).await;

    // Move: ContinuousMove with our velocities, to the PTZ service's path.
    let r = post(&server, "/cam/control/ptz/move", json!({"pan": 0.5, "tilt": -0.25, "zoom": 0.1})).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.log());
    assert_eq!(r.json()["status"], "success");
    let moves = device.calls("ContinuousMove");
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].path, "/onvif/ptz_service", "the PTZ address of GetCapabilities, on the configured host");
    assert!(moves[0].body.contains(r#"<tt:PanTilt x="0.5" y="-0.25"/>"#), "{}", moves[0].body);
    assert!(moves[0].body.contains(r#"<tt:Zoom x="0.1"/>"#), "{}", moves[0].body);
    assert_eq!(device.calls("GetSystemDateAndTime").len(), 1, "the clock is measured once");

    // Stop.
    let r = post(&server, "/cam/control/ptz/stop", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(device.calls("Stop").len(), 1);

    // Dead-man: a 1 s move and no stop from us; the Stop comes by itself.
    let r = post(&server, "/cam/control/ptz/move", json!({"pan": 0, "tilt": 1, "timeout_secs": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let moved = device.calls("ContinuousMove").last().unwrap().clone();
    assert!(moved.body.contains("<tptz:Timeout>PT1S</tptz:Timeout>"), "{}", moved.body);
    assert!(!moved.body.contains("Zoom x="), "zoom left alone when not given: {}", moved.body);
    let stopped = eventually(Duration::from_secs(3), async || device.calls("Stop").len() == 2).await;
    assert!(stopped, "no dead-man Stop");
    let after = device.calls("Stop")[1].at.duration_since(moved.at);
    assert!(after >= Duration::from_millis(900) && after <= Duration::from_secs(2), "Stop after {after:?}");
    // An explicit stop disarms it: no third Stop from the first move's timer.
    let r = post(&server, "/cam/control/ptz/move", json!({"pan": 0.2, "tilt": 0, "timeout_secs": 1})).await;
    assert_eq!(r.status, 200);
    post(&server, "/cam/control/ptz/stop", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(device.calls("Stop").len(), 3, "a stopped move is not stopped again");

    // Presets: set returns the device's token, the list has names and tokens, goto by number.
    let r = post(&server, "/cam/control/ptz/set_preset", json!({"name": "Gate <north>"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["preset_token"], "tok-42");
    assert!(device.calls("SetPreset")[0].body.contains("<tptz:PresetName>Gate &lt;north&gt;</tptz:PresetName>"));
    let r = server.get("/cam/control/ptz/presets").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"]["presets"],
        json!([{"token": "Preset_A", "name": "Gate"}, {"token": "Preset_B", "name": "Yard & dock"}])
    );
    let r = post(&server, "/cam/control/ptz/goto_preset", json!({"preset": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(device.calls("GotoPreset")[0].body.contains("<tptz:PresetToken>Preset_B</tptz:PresetToken>"));
    let r = post(&server, "/cam/control/ptz/goto_preset", json!({"token": "Preset_A"})).await;
    assert_eq!(r.status, 200);
    assert!(device.calls("GotoPreset")[1].body.contains("<tptz:PresetToken>Preset_A</tptz:PresetToken>"));
    let r = post(&server, "/cam/control/ptz/goto_preset", json!({"preset": 9})).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Bodies are checked before anything is sent, naming the field.
    let calls_before = device.calls.lock().unwrap().len();
    for (body, field) in [
        (json!({"pan": 1.5, "tilt": 0}), "`pan`"),
        (json!({"pan": 0, "tilt": "up"}), "`tilt`"),
        (json!({"pan": 0}), "`tilt`"),
        (json!({"pan": 0, "tilt": 0, "timeout_secs": 0}), "`timeout_secs`"),
        (json!({"pan": 0, "tilt": 0, "timeout_secs": 61}), "`timeout_secs`"),
        (json!({"pan": 0, "tilt": 0, "speed": 1}), "speed"),
    ] {
        let r = post(&server, "/cam/control/ptz/move", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains(field), "{body}: {}", r.text());
    }
    assert_eq!(device.calls.lock().unwrap().len(), calls_before, "nothing sent for a refused body");

    // The control WebSocket takes the same commands and answers when the camera has.
    let mut ws = ws_connect(&server.ws_url("/cam/control")).await.unwrap();
    let (reply, _) = command(&mut ws, json!({"cmd": "ptz_move", "pan": -1, "tilt": 0})).await;
    assert_eq!(reply["code"], 200, "{reply}");
    assert!(device.calls("ContinuousMove").last().unwrap().body.contains(r#"<tt:PanTilt x="-1" y="0"/>"#));
    let (reply, _) = command(&mut ws, json!({"cmd": "ptz_stop"})).await;
    assert_eq!((reply["code"].clone(), reply["data"]["cmd"].clone()), (json!(200), json!("ptz_stop")), "{reply}");
    let (reply, _) = command(&mut ws, json!({"cmd": "ptz_move", "pan": 2, "tilt": 0})).await;
    assert_eq!(reply["code"], 400, "{reply}");

    // A wrong password: the device's fault, as 502 with its reason.
    let r = post(&server, "/bad/control/ptz/move", json!({"pan": 0.1, "tilt": 0})).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("Sender not Authorized") && error.contains("ter:NotAuthorized"), "{error}");

    // The ONVIF password is in no answer, status or log line.
    let status = server.get("/api/status").await.text();
    let admin = server.admin("GET", "/api/admin/cameras/cam", None).await.text();
    for text in [status, admin, error, server.log()] {
        assert!(!text.contains(PASSWORD) && !text.contains("wrong-password"), "password leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_camera_is_a_504_and_the_stream_goes_on() {
    let device = Device::start(true).await;
    let cam = TestCamera::start(&[]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), ptz_section(&device.url(), PASSWORD));
    let server = Server::start(json!({}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let mut ws = ws_connect(&server.ws_url("/cam/live")).await.unwrap();
    assert!(next_binary(&mut ws, Duration::from_secs(5)).await.is_some());

    let started = Instant::now();
    let request = post(&server, "/cam/control/ptz/move", json!({"pan": 0.5, "tilt": 0}));
    // Frames keep coming while the PTZ request waits for the camera.
    let frames = async {
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(4) {
            if next_binary(&mut ws, Duration::from_secs(2)).await.is_some() {
                n += 1;
            }
        }
        n
    };
    let (r, frames) = tokio::join!(request, frames);
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("did not answer"), "{}", r.text());
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(8), "answered after {took:?}");
    assert!(frames >= 10, "only {frames} frames while the PTZ request waited");
    assert!(device.calls.lock().unwrap().is_empty());
}

/// `cameras[].ptz` of `/api/status` for camera `id`.
async fn ptz_status(server: &Server, id: &str) -> Value {
    server.camera_status(id).await["ptz"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ptz_state_shows_in_status_and_metrics_without_secrets() {
    const URL_PASSWORD: &str = "url-Secret-9917";
    let device = Device::start(false).await;
    let cam = TestCamera::start(&[]).await;
    let good = camera_json("/cam", &cam.url("/cam"), ptz_section(&device.url(), PASSWORD));
    let bad = camera_json("/bad", &cam.url("/cam"), ptz_section(&device.url(), "wrong-password"));
    // Credentials in the ONVIF URL: refused on use (ptz.username/password are the place) and never shown.
    let in_url = device.url().replace("http://", &format!("http://{USER}:{URL_PASSWORD}@"));
    let creds = camera_json("/creds", &cam.url("/cam"), ptz_section(&in_url, PASSWORD));
    let plain = camera_json("/plain", &cam.url("/cam"), json!({"enabled": false}));
    let server = Server::start(json!({}), &[("cam", good), ("bad", bad), ("creds", creds), ("plain", plain)]).await;

    // Before any request: the settings, and nothing happened yet.
    assert_eq!(
        ptz_status(&server, "cam").await,
        json!({"enabled": true, "protocol": "onvif", "profile_token": PROFILE, "onvif_url": device.url(),
               "last_command": null, "last_error": null, "requests": 0, "errors": 0})
    );
    let plain = ptz_status(&server, "plain").await;
    assert_eq!((plain["enabled"].clone(), plain["onvif_url"].clone()), (json!(false), Value::Null), "{plain}");

    // A move: the last command, when, and that it went well.
    let before = panelcam::util::now_ms();
    let r = post(&server, "/cam/control/ptz/move", json!({"pan": 0.5, "tilt": 0})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = panelcam::util::now_ms();
    let s = ptz_status(&server, "cam").await;
    assert_eq!((s["last_command"]["command"].as_str(), s["last_command"]["ok"].as_bool()), (Some("move"), Some(true)));
    let at = panelcam::util::parse_time(s["last_command"]["at"].as_str().unwrap()).unwrap();
    assert!((before..=after).contains(&at), "{at} not in [{before}, {after}]");
    // A refused body never reached the camera: not a command, not an error of the camera.
    let r = post(&server, "/cam/control/ptz/move", json!({"pan": 2, "tilt": 0})).await;
    assert_eq!(r.status, 400);
    // The dead-man Stop is the camera's last command once the move's second is up.
    post(&server, "/cam/control/ptz/move", json!({"pan": 0, "tilt": 1, "timeout_secs": 1})).await;
    let by_deadman = eventually(Duration::from_secs(4), async || {
        ptz_status(&server, "cam").await["last_command"]["command"] == "deadman_stop"
    })
    .await;
    assert!(by_deadman, "{}", ptz_status(&server, "cam").await);
    let s = ptz_status(&server, "cam").await;
    assert_eq!(
        (s["requests"].as_u64(), s["errors"].as_u64(), s["last_error"].clone()),
        (Some(3), Some(0), Value::Null)
    );

    // A refusal by the camera: the last error with the fault's reason, counted.
    let r = post(&server, "/bad/control/ptz/move", json!({"pan": 0.1, "tilt": 0})).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let s = ptz_status(&server, "bad").await;
    assert_eq!((s["last_command"]["command"].as_str(), s["last_command"]["ok"].as_bool()), (Some("move"), Some(false)));
    assert_eq!(s["last_error"]["command"], "move");
    let message = s["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("Sender not Authorized") && message.contains("ter:NotAuthorized"), "{s}");
    assert_eq!(s["errors"], 1);
    // A listing that fails is an error too, though not a command.
    assert_eq!(server.get("/bad/control/ptz/presets").await.status, 502);
    let s = ptz_status(&server, "bad").await;
    assert_eq!(
        (s["last_error"]["command"].as_str(), s["last_command"]["command"].as_str()),
        (Some("presets"), Some("move"))
    );

    // The ONVIF URL with credentials: shown without them, and the request refused naming the setting.
    let r = post(&server, "/creds/control/ptz/stop", json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let s = ptz_status(&server, "creds").await;
    assert_eq!(s["onvif_url"], device.url(), "{s}");
    assert!(s["last_error"]["message"].as_str().unwrap().contains("ptz.onvif_url"), "{s}");

    // /metrics counts the same requests and errors.
    let metrics = server.admin("GET", "/metrics", None).await.text();
    for line in [
        "panelcam_ptz_requests_total{camera=\"cam\"} 3",
        "panelcam_ptz_errors_total{camera=\"cam\"} 0",
        "panelcam_ptz_errors_total{camera=\"bad\"} 2",
        "panelcam_ptz_errors_total{camera=\"creds\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in\n{metrics}");
    }

    // Neither password nor the ONVIF user name is in any status document, metric or log line.
    let status = server.get("/api/status").await.text();
    let cameras = server.get("/api/cameras").await.text();
    for text in [&status, &cameras, &metrics] {
        for secret in [PASSWORD, "wrong-password", URL_PASSWORD, USER] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
    }
    let log = server.log();
    for secret in [PASSWORD, "wrong-password", URL_PASSWORD] {
        assert!(!log.contains(secret), "{secret} logged: {log}");
    }
}

/// A camera file for `device` with these TLS settings in its `ptz` section.
fn https_camera(path: &str, stream: &str, device: &Device, tls: Value) -> Value {
    let mut ptz = ptz_section(&device.url(), PASSWORD);
    merge(&mut ptz["ptz"], tls);
    camera_json(path, stream, ptz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_over_https_checks_the_cameras_certificate() {
    let pki = TempDir::new("onvif-pki");
    let plant = Ca::new(&pki.0, "plant");
    let stranger = Ca::new(&pki.0, "stranger");
    let trusted = Device::start_tls(&plant.issue(&pki.0, "trusted", &["127.0.0.1"])).await;
    // A camera's own certificate names the camera, not the address panelcam uses: a pin ignores names.
    let own = self_signed(&pki.0, "own", &["camera-7.plant"]);
    let pinned = Device::start_tls(&own).await;
    let impostor = Device::start_tls(&self_signed(&pki.0, "impostor", &["127.0.0.1"])).await;
    let untrusted = Device::start_tls(&stranger.issue(&pki.0, "untrusted", &["127.0.0.1"])).await;
    let misnamed = Device::start_tls(&plant.issue(&pki.0, "misnamed", &["camera-7.plant"])).await;
    let pin = fingerprint(&own.cert_path);
    let with_ca = json!({"ca_path": plant.cert_path});
    let cam = TestCamera::start(&[]).await;
    let stream = cam.url("/cam");
    let cameras = [
        ("ca", https_camera("/ca", &stream, &trusted, with_ca.clone())),
        ("pinned", https_camera("/pinned", &stream, &pinned, json!({"cert_sha256": pin.to_lowercase()}))),
        ("impostor", https_camera("/impostor", &stream, &impostor, json!({"cert_sha256": pin}))),
        ("untrusted", https_camera("/untrusted", &stream, &untrusted, with_ca.clone())),
        ("misnamed", https_camera("/misnamed", &stream, &misnamed, with_ca)),
        ("badpin", https_camera("/badpin", &stream, &pinned, json!({"cert_sha256": "9F:86:D0:81"}))),
    ];
    let server = Server::start(json!({}), &cameras).await;

    // Verified by the plant CA: the move arrives with our velocities and a digest the device accepts.
    let r = post(&server, "/ca/control/ptz/move", json!({"pan": 0.5, "tilt": -0.25, "zoom": 0.1})).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.log());
    let moves = trusted.calls("ContinuousMove");
    assert_eq!(moves.len(), 1, "{:?}", trusted.calls.lock().unwrap());
    assert!(moves[0].authorized, "the device refused the digest");
    assert_eq!(moves[0].path, "/onvif/ptz_service");
    assert!(moves[0].body.contains(r#"<tt:PanTilt x="0.5" y="-0.25"/>"#), "{}", moves[0].body);
    assert!(moves[0].body.contains(r#"<tt:Zoom x="0.1"/>"#), "{}", moves[0].body);
    assert_eq!(post(&server, "/ca/control/ptz/stop", json!({})).await.status, 200);
    assert_eq!(trusted.calls("Stop").len(), 1);

    // A self-signed certificate pinned by its fingerprint, though it names another host.
    let r = post(&server, "/pinned/control/ptz/move", json!({"pan": -1, "tilt": 1})).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.log());
    let moves = pinned.calls("ContinuousMove");
    assert_eq!(moves.len(), 1);
    assert!(moves[0].authorized && moves[0].body.contains(r#"<tt:PanTilt x="-1" y="1"/>"#), "{:?}", moves[0]);

    // Refused certificates: 502 naming the check that failed; the device got a handshake and
    // an alert, never a request (so never our digest).
    for (id, device, reason) in [
        ("impostor", &impostor, "fingerprint mismatch"),
        ("untrusted", &untrusted, "unknown issuer"),
        ("misnamed", &misnamed, "name mismatch"),
    ] {
        let r = post(&server, &format!("/{id}/control/ptz/move"), json!({"pan": 0.1, "tilt": 0})).await;
        assert_eq!(r.status, 502, "{id}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains("certificate") && error.contains(reason), "{id}: {error}");
        assert!(device.calls.lock().unwrap().is_empty(), "{id}: the device saw a request");
        // The device reads panelcam's alert after panelcam has given up: wait for it.
        let alerted = eventually(Duration::from_secs(2), async || !device.refused.lock().unwrap().is_empty()).await;
        assert!(alerted, "{id}: no TLS handshake reached the device");
        // The same reason is the camera's last PTZ error.
        let s = ptz_status(&server, id).await;
        assert_eq!(s["last_error"]["command"], "move", "{id}: {s}");
        assert!(s["last_error"]["message"].as_str().unwrap().contains(reason), "{id}: {s}");
    }
    let error = post(&server, "/impostor/control/ptz/stop", json!({})).await.json()["error"].clone();
    let error = error.as_str().unwrap();
    assert!(error.contains(&pin) && error.contains("ptz.cert_sha256"), "both fingerprints are shown: {error}");
    assert!(error.contains(&fingerprint(&pki.0.join("impostor.pem"))), "{error}");
    let error = post(&server, "/untrusted/control/ptz/stop", json!({})).await.json()["error"].clone();
    assert!(error.as_str().unwrap().contains("ptz.ca_path"), "the setting to look at: {error}");

    // A malformed fingerprint keeps the camera file from loading, naming the field.
    let status = server.status().await;
    let invalid = status["invalid_cameras"].as_array().unwrap();
    let badpin = invalid.iter().find(|c| c["id"] == "badpin").unwrap_or_else(|| panic!("{status}"));
    let problem = badpin["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("badpin.json") && problem.contains("`ptz.cert_sha256`: expected 64 hex digits"),
        "{problem}"
    );
    assert_eq!(invalid.len(), 1, "only the malformed file is refused: {status}");
    assert_eq!(server.get("/badpin/control/ptz/presets").await.status, 404);

    // The ONVIF password is in no answer, status or log line.
    let status = server.get("/api/status").await.text();
    assert!(!status.contains(PASSWORD) && !server.log().contains(PASSWORD), "password leaked");
}

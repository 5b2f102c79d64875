//! Secrets never leak (issue 10 §2): one panelcam with every kind of secret set (admin and
//! metrics tokens, a camera token, credentials in a camera URL, the ONVIF password, the MQTT
//! password, the PostgreSQL password) and every place a secret could surface read back: the
//! status API, the camera list, the admin API, metrics, every page's source, MQTT payloads and
//! the log.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::*;
use support::mqtt::{Subscriber, base};

const METRICS_TOKEN: &str = "metrics-token-s3cr3t-5b1e0a";
const CAMERA_TOKEN: &str = "camera-token-s3cr3t-77ad20";
const URL_PASSWORD: &str = "url-pw-s3cr3t-c4f1";
const ONVIF_PASSWORD: &str = "onvif-pw-s3cr3t-9d2e";
const MQTT_PASSWORD: &str = "mqtt-pw-s3cr3t-13b7";
const PG_PASSWORD: &str = "pg-pw-s3cr3t-e01f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_answer_page_payload_or_log() {
    let db = TestDb::create("secrets").await;
    let base = base("secrets");
    let mut sub = Subscriber::connect(1883, &format!("{base}/#")).await;
    let pg_url = db.url.replace("postgres://postgres@", &format!("postgres://postgres:{PG_PASSWORD}@"));
    let config = json!({
        "server": {"metrics_token": METRICS_TOKEN},
        "mqtt": {"enabled": true, "broker_url": "mqtt://127.0.0.1:1883", "base_topic": base, "username": "panel",
                 "password": MQTT_PASSWORD, "publish_interval_secs": 1, "client_id": format!("secrets-{}", std::process::id())},
        "recording": {"database_type": "postgresql", "database_url": pg_url, "hls_storage_enabled": true},
    });
    let live = json!({"path": "/cam", "url": "lavfi:testsrc2=size=320x240:rate=10", "token": CAMERA_TOKEN,
                      "mqtt": {"publish_interval": 1},
                      "ptz": {"enabled": true, "protocol": "onvif", "onvif_url": "http://127.0.0.1:9/onvif/device_service",
                              "username": "operator", "password": ONVIF_PASSWORD}});
    // A camera that cannot connect: its URL (with credentials) ends up in errors and logs.
    let unreachable = json!({"path": "/door", "url": format!("rtsp://viewer:{URL_PASSWORD}@127.0.0.1:9/stream"),
                             "reconnect_interval": 1});
    let server = Server::start(config, &[("cam", live), ("door", unreachable)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    // Give errors, retries and MQTT a few rounds.
    let ptz = server
        .request("POST", &format!("/cam/control/ptz/move?token={CAMERA_TOKEN}"), &[], Some(br#"{"pan":0.5,"tilt":0}"#))
        .await;
    assert!(ptz.status >= 400, "the ONVIF endpoint does not exist: {}", ptz.status);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut seen: Vec<(String, String)> = Vec::new();
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let with_admin = [("Authorization", admin.as_str())];
    let metrics = format!("Bearer {METRICS_TOKEN}");
    for (path, headers) in [
        ("/api/status".to_string(), &[][..]),
        ("/api/cameras".to_string(), &[][..]),
        (format!("/cam/control/recordings?token={CAMERA_TOKEN}"), &[][..]),
        ("/metrics".to_string(), &[("Authorization", metrics.as_str())][..]),
        ("/api/admin/config".to_string(), &with_admin[..]),
        ("/api/admin/cameras".to_string(), &with_admin[..]),
        ("/api/admin/cameras/cam".to_string(), &with_admin[..]),
        ("/api/admin/cameras/door".to_string(), &with_admin[..]),
        ("/dashboard".to_string(), &[][..]),
        ("/admin".to_string(), &[][..]),
        (format!("/cam/control?token={CAMERA_TOKEN}"), &[][..]),
        (format!("/cam/stream?token={CAMERA_TOKEN}"), &[][..]),
        (format!("/cam/test?token={CAMERA_TOKEN}"), &[][..]),
    ] {
        let r = server.request("GET", &path, headers, None).await;
        assert!(r.status < 500, "{path}: {}", r.status);
        seen.push((path, r.text()));
    }
    for m in sub.collect(Duration::from_secs(3)).await {
        seen.push((m.topic.clone(), String::from_utf8_lossy(&m.payload).into_owned()));
    }
    assert!(seen.iter().any(|(t, _)| t.ends_with("/cameras/cam/status")), "MQTT payloads were read");
    let log = server.log();
    // The places were exercised: the door camera's URL is logged (masked), PTZ failed.
    assert!(log.contains("127.0.0.1:9/stream"), "the unreachable camera's URL is in the log, masked");
    seen.push(("the log".into(), log));

    // The camera token is part of the URLs a viewer is given; every other secret must never
    // come back, and the camera token only where the request carried it.
    for secret in [ADMIN_TOKEN, METRICS_TOKEN, URL_PASSWORD, ONVIF_PASSWORD, MQTT_PASSWORD, PG_PASSWORD] {
        for (place, text) in &seen {
            assert!(!text.contains(secret), "{secret} appears in {place}:\n{}", excerpt(text, secret));
        }
    }
    for (place, text) in &seen {
        if !place.contains(CAMERA_TOKEN) && place != "the log" {
            assert!(
                !text.contains(CAMERA_TOKEN),
                "the camera token appears in {place}:\n{}",
                excerpt(text, CAMERA_TOKEN)
            );
        }
    }
}

fn excerpt(text: &str, secret: &str) -> String {
    let at = text.find(secret).unwrap_or(0);
    text.chars().skip(at.saturating_sub(120)).take(300).collect()
}

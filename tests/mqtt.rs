//! MQTT against the real binary and a real Mosquitto: the shared broker on 127.0.0.1:1883
//! (scripts/services.sh) with a unique base topic per test, or a private `mosquitto -p <port>`
//! when the broker itself is stopped and started. The subscriber is rumqttc, as in panelcam.
//! TLS to the broker (`mqtts://`): tests/mqtt_tls.rs.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;
use support::mqtt::{Broker, Message, Subscriber, base, lavfi_camera};

const SHARED_BROKER: u16 = 1883;
const MQTT_PASSWORD: &str = "mqtt-pw-never-shown-6d1f";

fn mqtt_config(port: u16, base: &str, extra: Value) -> Value {
    let mut m = json!({"enabled": true, "broker_url": format!("mqtt://127.0.0.1:{port}"), "base_topic": base,
                       "client_id": format!("panelcam-{}", base.replace('/', "-")), "publish_interval_secs": 1,
                       "username": "panel", "password": MQTT_PASSWORD});
    merge(&mut m, extra);
    json!({"mqtt": m})
}

fn json_of(m: &Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{} is not JSON: {e}", m.topic))
}

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 4 && b.starts_with(&[0xFF, 0xD8]) && b.ends_with(&[0xFF, 0xD9])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pictures_and_availability_arrive() {
    let base = base("pub");
    let mut sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/#")).await;
    let camera = lavfi_camera(json!({"publish_interval": 0.5}));
    let mut server = Server::start(mqtt_config(SHARED_BROKER, &base, json!({})), &[("cam", camera)]).await;

    let online = sub.next_on(&format!("{base}/availability"), Duration::from_secs(10)).await.expect("availability");
    assert_eq!(&online.payload[..], b"online");
    let status = json_of(&sub.next_on(&format!("{base}/status"), Duration::from_secs(10)).await.expect("status"));
    assert_eq!(status["cameras"], json!(["cam"]));
    assert!(status["version"].is_string() && status["uptime_secs"].is_u64(), "{status}");
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    // Per-camera status says what /api/status says; arrivals are {t, d, s}.
    let cam_topic = format!("{base}/cameras/cam/status");
    let cam = loop {
        let m = sub.next_on(&cam_topic, Duration::from_secs(5)).await.expect("camera status");
        let v = json_of(&m);
        if v["state"] == "streaming" && v["fps"].as_f64() > Some(0.0) {
            break v;
        }
    };
    assert_eq!(cam["id"], "cam");
    assert!(cam["fps"].as_f64().unwrap() > 0.0, "{cam}");
    assert!(cam["recording"].is_object() && cam["clients"].is_u64(), "{cam}");
    assert_eq!((cam["ptz"]["enabled"].as_bool(), cam["ptz"]["errors"].as_u64()), (Some(false), Some(0)), "{cam}");
    let arrival =
        json_of(&sub.next_on(&format!("{base}/cameras/cam/capturing"), Duration::from_secs(5)).await.expect("arrival"));
    assert!(arrival["t"].as_i64().unwrap() > 1_600_000_000_000, "{arrival}");
    assert!(arrival["s"].as_u64().unwrap() > 100 && arrival["d"].is_i64(), "{arrival}");

    // Pictures: valid JPEGs, at most two a second (publish_interval 0.5), and an arrival for
    // every frame the camera delivered meanwhile (counted by panelcam itself, so a loaded CI
    // machine that delivers fewer frames does not fail the test).
    let frames_before = server.camera_status("cam").await["frames"].as_u64().unwrap();
    let all = sub.collect(Duration::from_secs(4)).await;
    let frames = server.camera_status("cam").await["frames"].as_u64().unwrap() - frames_before;
    let jpg = format!("{base}/cameras/cam/jpg");
    let pictures: Vec<&Message> = all.iter().filter(|m| m.topic == jpg).collect();
    assert!((3..=11).contains(&pictures.len()), "{} pictures in 4 s", pictures.len());
    assert!(pictures.iter().all(|m| is_jpeg(&m.payload)), "every picture is a whole JPEG");
    let gaps: Vec<u128> = pictures.windows(2).map(|w| w[1].at.duration_since(w[0].at).as_millis()).collect();
    assert!(gaps.iter().all(|g| *g >= 150), "publish_interval 0.5 is kept: gaps {gaps:?} ms");
    let arrivals = all.iter().filter(|m| m.topic.ends_with("/capturing")).count() as u64;
    assert!(frames >= 10, "the camera delivered {frames} frames in 4 s");
    // The two status reads and the collection window do not line up to the frame.
    assert!(arrivals + 3 >= frames, "{arrivals} arrivals for {frames} frames");

    // /api/status: connected, counting, and no secret anywhere.
    let s = server.status().await;
    assert_eq!(s["mqtt"]["enabled"], true);
    assert_eq!(s["mqtt"]["connected"], true, "{}", s["mqtt"]);
    assert!(s["mqtt"]["published"].as_u64().unwrap() > 20, "{}", s["mqtt"]);
    assert!(!s.to_string().contains(MQTT_PASSWORD));
    assert!(!server.log().contains(MQTT_PASSWORD), "{}", server.log());
    assert!(all.iter().all(|m| !String::from_utf8_lossy(&m.payload).contains(MQTT_PASSWORD)));

    // A clean stop says "offline" (retained) itself.
    assert_eq!(server.stop().await, Some(0));
    let offline = sub.next_on(&format!("{base}/availability"), Duration::from_secs(5)).await.expect("offline");
    assert_eq!(&offline.payload[..], b"offline");
    let mut late_sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/availability")).await;
    let late = late_sub.next_on(&format!("{base}/availability"), Duration::from_secs(5)).await;
    let late = late.expect("retained availability");
    assert!(late.retain && &late.payload[..] == b"offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_above_max_packet_size_are_skipped_and_counted() {
    let base = base("small");
    let mut sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/#")).await;
    let camera = lavfi_camera(json!({"publish_interval": 0}));
    // 2 KiB: statuses and arrivals fit, 320x240 test pictures (~6 KB) do not.
    let config = mqtt_config(SHARED_BROKER, &base, json!({"max_packet_size": 2048}));
    let server = Server::start(config, &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let all = sub.collect(Duration::from_secs(3)).await;
    assert!(all.iter().any(|m| m.topic.ends_with("/capturing")), "arrivals still go");
    assert!(all.iter().all(|m| !m.topic.ends_with("/jpg")), "no picture above max_packet_size");
    assert!(all.iter().all(|m| m.payload.len() <= 2048));
    let mqtt = server.status().await["mqtt"].clone();
    assert!(mqtt["too_large"].as_u64().unwrap() >= 10, "{mqtt}");
    assert_eq!(mqtt["connected"], true, "skipping is not a reason to drop the connection: {mqtt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_panel_shows_offline_through_its_will() {
    let base = base("will");
    let mut sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/availability")).await;
    let mut server = Server::start(mqtt_config(SHARED_BROKER, &base, json!({})), &[]).await;
    let online = sub.next_on(&format!("{base}/availability"), Duration::from_secs(10)).await.expect("online");
    assert_eq!(&online.payload[..], b"online");
    server.kill9();
    let _ = server.wait_exit(Duration::from_secs(5)).await;
    let will = sub.next_on(&format!("{base}/availability"), Duration::from_secs(10)).await.expect("the will");
    assert_eq!(&will.payload[..], b"offline");
}

async fn recording_active(server: &Server) -> bool {
    let r = server.get("/cam/control/recording/active").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["active"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_start_and_stop_recordings_and_are_answered() {
    let base = base("cmd");
    let mut sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/cameras/cam/command/reply")).await;
    let config = mqtt_config(SHARED_BROKER, &base, json!({"commands_enabled": true}));
    let server = Server::start(config, &[("cam", lavfi_camera(json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    assert!(eventually(Duration::from_secs(10), async || server.status().await["mqtt"]["connected"] == true).await);
    // The subscription is made right after connecting; give the broker a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let command = format!("{base}/cameras/cam/command");
    let reply_topic = format!("{command}/reply");

    sub.publish(&command, r#"{"action":"start_recording","reason":"mqtt test","id":"r1"}"#).await;
    let reply = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!((reply["status"].as_str(), reply["id"].as_str()), (Some("ok"), Some("r1")), "{reply}");
    assert!(reply["session_id"].is_i64(), "{reply}");
    assert!(recording_active(&server).await);
    let active = server.get("/cam/control/recording/active").await.json();
    assert_eq!(active["data"]["session"]["reason"], "mqtt test", "{active}");

    sub.publish(&command, r#"{"action":"start_recording"}"#).await;
    let again = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(again["status"], "error", "already recording: {again}");

    sub.publish(&command, r#"{"action":"zoom_in"}"#).await;
    let unknown = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(unknown["status"], "unknown_action", "{unknown}");
    // PTZ commands are checked as the REST bodies are, and run through the camera's PTZ
    // (tests/ptz.rs drives it against an ONVIF device): here the field and the setting.
    sub.publish(&command, r#"{"action":"ptz_move","x":1}"#).await;
    let bad_field = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(bad_field["status"], "error", "{bad_field}");
    assert!(bad_field["error"].as_str().unwrap().contains('x'), "{bad_field}");
    sub.publish(&command, r#"{"action":"ptz_stop","id":5}"#).await;
    let no_ptz = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(
        (no_ptz["status"].as_str(), no_ptz["action"].as_str(), no_ptz["id"].as_i64()),
        (Some("error"), Some("ptz_stop"), Some(5))
    );
    assert!(no_ptz["error"].as_str().unwrap().contains("ptz.enabled"), "{no_ptz}");
    sub.publish(&command, "not json").await;
    let bad = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(bad["status"], "error", "{bad}");

    sub.publish(&command, r#"{"action":"stop_recording"}"#).await;
    let stopped = json_of(&sub.next_on(&reply_topic, Duration::from_secs(10)).await.expect("reply"));
    assert_eq!(stopped["status"], "ok", "{stopped}");
    assert!(!recording_active(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_ignored_unless_enabled() {
    let base = base("nocmd");
    let mut sub = Subscriber::connect(SHARED_BROKER, &format!("{base}/cameras/cam/command/reply")).await;
    let server = Server::start(mqtt_config(SHARED_BROKER, &base, json!({})), &[("cam", lavfi_camera(json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    assert!(eventually(Duration::from_secs(10), async || server.status().await["mqtt"]["connected"] == true).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    sub.publish(&format!("{base}/cameras/cam/command"), r#"{"action":"start_recording"}"#).await;
    assert!(sub.next_on(&format!("{base}/cameras/cam/command/reply"), Duration::from_secs(3)).await.is_none());
    assert!(!recording_active(&server).await);
    assert_eq!(server.status().await["mqtt"]["commands"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panelcam_streams_on_while_the_broker_restarts_and_reconnects() {
    let port = free_port();
    let mut broker = Broker::start(port).await;
    let base = base("reconnect");
    let camera = lavfi_camera(json!({"publish_interval": 0.5}));
    let server = Server::start(mqtt_config(port, &base, json!({})), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    assert!(eventually(Duration::from_secs(10), async || server.status().await["mqtt"]["connected"] == true).await);

    broker.stop().await;
    assert!(
        eventually(Duration::from_secs(10), async || server.status().await["mqtt"]["connected"] == false).await,
        "the lost broker is noticed"
    );
    let frames = server.camera_status("cam").await["frames"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cam = server.camera_status("cam").await;
    assert_eq!(cam["state"], "streaming", "streaming goes on without the broker: {cam}");
    assert!(cam["frames"].as_u64().unwrap() > frames + 5, "{cam}");
    let mqtt = server.status().await["mqtt"].clone();
    assert!(mqtt["last_error"].is_string(), "{mqtt}");
    assert!(mqtt["dropped"].as_u64().unwrap() > 0, "pictures are dropped, not queued: {mqtt}");

    broker.spawn().await;
    let mut sub = Subscriber::connect(port, &format!("{base}/#")).await;
    let picture = sub.next_on(&format!("{base}/cameras/cam/jpg"), Duration::from_secs(40)).await;
    assert!(picture.is_some_and(|m| is_jpeg(&m.payload)), "pictures again after the broker is back");
    let mqtt = server.status().await["mqtt"].clone();
    assert_eq!(mqtt["connected"], true, "{mqtt}");
    assert_eq!(mqtt["last_error"], Value::Null, "{mqtt}");
    assert!(mqtt["reconnects"].as_u64().unwrap() >= 1, "{mqtt}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_camera_clears_its_retained_topics() {
    let base = base("removed");
    let config = mqtt_config(SHARED_BROKER, &base, json!({"retain": true}));
    let server = Server::start(config, &[("cam", lavfi_camera(json!({"publish_interval": 1})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let status_topic = format!("{base}/cameras/cam/status");
    let mut sub = Subscriber::connect(SHARED_BROKER, &status_topic).await;
    let retained = sub.next_on(&status_topic, Duration::from_secs(10)).await.expect("retained status");
    assert!(retained.retain && !retained.payload.is_empty());

    std::fs::remove_file(server.dir.0.join("cameras/cam.json")).unwrap();
    let cleared = eventually(Duration::from_secs(15), async || {
        matches!(sub.next_on(&status_topic, Duration::from_millis(500)).await, Some(m) if m.payload.is_empty())
    })
    .await;
    assert!(cleared, "an empty retained payload clears the removed camera's status");
    let mut late = Subscriber::connect(SHARED_BROKER, &status_topic).await;
    assert!(late.next_on(&status_topic, Duration::from_secs(2)).await.is_none(), "nothing retained any more");
}

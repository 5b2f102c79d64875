//! `mqtts://` against a real Mosquitto with a TLS listener and a throw-away CA: panelcam
//! verifies the broker's certificate (and shows its own when the broker asks), and a broker it
//! cannot verify gets no connection at all, never a plain-TCP one. Test subscribers read the
//! same broker on its plain listener.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;
use support::mqtt::{Broker, Subscriber, base, lavfi_camera};
use support::pki::Ca;

const MQTT_PASSWORD: &str = "mqtt-tls-pw-never-shown-91ce";

fn mqtts_config(tls_port: u16, base: &str, tls: Value) -> Value {
    json!({"mqtt": {"enabled": true, "broker_url": format!("mqtts://panel:{MQTT_PASSWORD}@127.0.0.1:{tls_port}"),
                    "base_topic": base, "client_id": format!("panelcam-{}", base.replace('/', "-")),
                    "publish_interval_secs": 1, "tls": tls}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_publishes_over_verified_tls_with_a_client_certificate() {
    let pki = TempDir::new("mqtts-pki");
    let ca = Ca::new(&pki.0, "plant");
    let broker_cert = ca.issue(&pki.0, "broker", &["localhost", "127.0.0.1"]);
    let panel_cert = ca.issue(&pki.0, "panel", &["panel-1"]);
    let (port, tls_port) = (free_port(), free_port());
    let mut broker =
        Broker::start_tls(&pki.0, port, tls_port, &ca.cert_path, &broker_cert.cert_path, &broker_cert.key_path, true)
            .await;
    let base = base("tls");
    let mut sub = Subscriber::connect(port, &format!("{base}/#")).await;
    let tls = json!({"ca_path": ca.cert_path, "client_cert_path": panel_cert.cert_path,
                     "client_key_path": panel_cert.key_path});
    let server = Server::start(mqtts_config(tls_port, &base, tls), &[("cam", lavfi_camera(json!({})))]).await;

    let online = sub.next_on(&format!("{base}/availability"), Duration::from_secs(20)).await;
    assert!(online.is_some_and(|m| &m.payload[..] == b"online"), "availability over TLS");
    let status = sub.next_on(&format!("{base}/cameras/cam/status"), Duration::from_secs(20)).await.expect("status");
    let status: Value = serde_json::from_slice(&status.payload).unwrap();
    assert!(status.is_object(), "{status}");
    let mqtt = server.status().await["mqtt"].clone();
    assert_eq!(mqtt["connected"], true, "{mqtt}");
    assert!(!mqtt.to_string().contains(MQTT_PASSWORD), "{mqtt}");
    assert!(!server.log().contains(MQTT_PASSWORD));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_it_cannot_verify_gets_no_connection_not_a_plain_one() {
    let pki = TempDir::new("mqtts-untrusted");
    let plant = Ca::new(&pki.0, "plant");
    let stranger = Ca::new(&pki.0, "stranger");
    let broker_cert = stranger.issue(&pki.0, "broker", &["127.0.0.1"]);
    let (port, tls_port) = (free_port(), free_port());
    let mut broker = Broker::start_tls(
        &pki.0,
        port,
        tls_port,
        &stranger.cert_path,
        &broker_cert.cert_path,
        &broker_cert.key_path,
        false,
    )
    .await;
    let base = base("untrusted");
    let mut sub = Subscriber::connect(port, &format!("{base}/#")).await;
    let config = mqtts_config(tls_port, &base, json!({"ca_path": plant.cert_path}));
    let server = Server::start(config, &[("cam", lavfi_camera(json!({})))]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    let refused = eventually(Duration::from_secs(15), async || {
        let mqtt = server.status().await["mqtt"].clone();
        mqtt["connected"] == false && mqtt["last_error"].as_str().is_some_and(|e| e.contains("certificate"))
    })
    .await;
    let mqtt = server.status().await["mqtt"].clone();
    assert!(refused, "the certificate problem is shown: {mqtt}");
    assert!(sub.collect(Duration::from_secs(2)).await.is_empty(), "nothing reached the broker");
    assert_eq!(server.camera_status("cam").await["state"], "streaming", "cameras are not affected");
    assert!(!mqtt.to_string().contains(MQTT_PASSWORD), "{mqtt}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_stop_startup_naming_the_field() {
    let dir = TempDir::new("mqtts-files");
    let broken_key = dir.0.join("broken.key");
    std::fs::write(&broken_key, "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n").unwrap();
    let ca = Ca::new(&dir.0, "plant");
    let panel = ca.issue(&dir.0, "panel", &["panel-1"]);
    let cases = [
        (json!({"ca_path": "/nonexistent/plant-ca.pem"}), "mqtt.tls.ca_path", "/nonexistent/plant-ca.pem: cannot read"),
        (
            json!({"ca_path": ca.cert_path, "client_cert_path": panel.cert_path, "client_key_path": broken_key}),
            "mqtt.tls.client_key_path",
            "broken.key: the private key is not valid PEM",
        ),
        (json!({"ca_path": ca.cert_path, "client_cert_path": panel.cert_path}), "mqtt.tls.client_key_path", "expected"),
    ];
    for (tls, field, says) in cases {
        dir.write("config.json", &mqtts_config(8883, "t", tls).to_string());
        let (code, stdout, stderr) = run_panelcam(&dir.0, &["run", "--config", "config.json"]).await;
        let output = format!("{stdout}{stderr}");
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains(field) && output.contains(says), "{field}, {says}: {output}");
        assert!(!output.contains(MQTT_PASSWORD), "{output}");
    }
}

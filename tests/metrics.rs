//! `/metrics` against the real binary: who may read it, that an independent parser of
//! Prometheus' text format reads it, that it says what `/api/status` says, and that no
//! secret is in it.

mod support;

use std::time::Duration;

use serde_json::json;
use support::harness::*;

const METRICS_TOKEN: &str = "metrics-scraper-token-77f1";
const VIEWER: &str = "viewer-token-9a2c";

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, camera: Option<&str>) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == name && camera.is_none_or(|c| s.labels.get("camera") == Some(c))).map(
        |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_their_token_parse_and_match_the_status() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let url = format!("rtsp://scraper:s3cret-camera-pw@127.0.0.1:{}/cam", cam.port);
    let camera = camera_json("/cam", &url, json!({"token": VIEWER}));
    let server = Server::start(json!({"server": {"metrics_token": METRICS_TOKEN}}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;

    // Who may read it: the metrics token or the admin token, as a bearer header only.
    let get = |headers: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.request("GET", "/metrics", &h, None).await
        }
    };
    assert_eq!(get(vec![]).await.status, 401, "no credential");
    assert_eq!(get(vec![("Authorization", format!("Bearer {VIEWER}"))]).await.status, 403, "a viewer token");
    let in_query = server.get(&format!("/metrics?token={METRICS_TOKEN}")).await;
    assert_eq!(in_query.status, 401, "tokens in a query string are not taken here");
    assert_eq!(get(vec![("Authorization", format!("Bearer {ADMIN_TOKEN}"))]).await.status, 200, "the admin token");
    let r = get(vec![("Authorization", format!("Bearer {METRICS_TOKEN}"))]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or_default().starts_with("text/plain; version=0.0.4"));

    // It parses, and says what the status says.
    let text = r.text();
    let scrape = parse(&text);
    let status = server.status().await;
    assert_eq!(value(&scrape, "panelcam_camera_streaming", Some("cam")), Some(1.0), "{text}");
    assert_eq!(value(&scrape, "panelcam_cameras", None), status["cameras_total"].as_f64());
    let frames = value(&scrape, "panelcam_camera_frames_total", Some("cam")).unwrap();
    assert!(frames > 0.0, "{text}");
    assert!(value(&scrape, "panelcam_process_resident_bytes", None).unwrap() > 1e6);
    assert!(value(&scrape, "panelcam_process_open_fds", None).unwrap() > 3.0);
    // Counters count: a second scrape a second later has more frames.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = parse(&get(vec![("Authorization", format!("Bearer {METRICS_TOKEN}"))]).await.text());
    assert!(value(&later, "panelcam_camera_frames_total", Some("cam")).unwrap() > frames);

    // No secret: not the camera's password or user, nor any token.
    for secret in ["s3cret-camera-pw", "scraper", VIEWER, METRICS_TOKEN, ADMIN_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
    // Failed attempts do not log the token either.
    assert!(!server.log().contains(VIEWER), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_token_metrics_are_refused_naming_the_settings() {
    let server = Server::start(json!({"server": {"admin_token": null}}), &[]).await;
    let r = server.request("GET", "/metrics", &[("Authorization", "Bearer anything-at-all")], None).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("server.metrics_token"), "{}", r.text());
}

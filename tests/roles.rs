//! Who may do what, against the real binary: viewers watch and record, only the admin token
//! deletes, nothing is learned before authorization, guessing is slowed down, and a page of
//! another origin cannot delete even with the token.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::chromium::{self, Browser};
use support::harness::*;

const VIEWER: &str = "viewer-token-5d1e";

/// A camera with a viewer token, frames and video (HLS and MP4 files) and one finished
/// session, so that every destructive route has something to destroy.
async fn setup(config: Value) -> (TestCamera, Server, i64) {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let mut c = json!({"recording": {"hls_storage_enabled": true, "mp4_storage_type": "filesystem",
                                     "hls_segment_seconds": 1, "mp4_segment_minutes": 0.05},
                       "server": {"auth_max_failures": 1000}});
    merge(&mut c, config);
    let camera = camera_json("/cam", &cam.url("/cam"), json!({"token": VIEWER}));
    let server = Server::start(c, &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let bearer = format!("Bearer {VIEWER}");
    let r = server.request("POST", "/cam/control/recording/start", &[("Authorization", &bearer)], None).await;
    assert_eq!(r.status, 200, "a viewer records: {}", r.text());
    let id = r.json()["data"]["session_id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = server.request("POST", "/cam/control/recording/stop", &[("Authorization", &bearer)], None).await;
    assert_eq!(r.status, 200);
    (cam, server, id)
}

/// Every destructive request panelcam knows, for one session.
fn destructive(id: i64) -> Vec<(&'static str, String, Option<&'static [u8]>)> {
    let range = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    vec![
        ("PUT", format!("/cam/control/recordings/{id}/keep"), Some(br#"{"keep": false}"#)),
        ("DELETE", format!("/cam/control/recordings/hls/sessions/{id}"), None),
        (
            "DELETE",
            "/cam/control/recordings/hls/timerange?t1=2000-01-01T00:00:00Z&t2=2100-01-01T00:00:00Z".into(),
            None,
        ),
        ("DELETE", "/cam/control/recordings/mp4/segments/cam_20000101_000000.mp4".into(), None),
        ("DELETE", format!("/cam/control/recordings/mp4/segments?{range}"), None),
        ("DELETE", "/cam/control/recordings/mp4/export/jobs/1".into(), None),
        ("DELETE", format!("/cam/control/recordings/sessions/{id}"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_destructive_route_needs_the_admin_token() {
    let (_cam, server, id) = setup(json!({})).await;
    let viewer = format!("Bearer {VIEWER}");
    let frames = |s: &Server| {
        let path = format!("/cam/control/recordings/{id}/frames?token={VIEWER}");
        let port = s.port;
        async move { http_request(port, "GET", &path, &[], None).await.unwrap().json()["data"]["count"].clone() }
    };
    let before = frames(&server).await;
    assert!(before.as_u64().unwrap() > 0, "{before}");
    for (method, path, body) in destructive(id) {
        let none = server.request(method, &path, &[], body).await;
        assert_eq!(none.status, 401, "{method} {path} without credentials: {}", none.text());
        let as_viewer = server.request(method, &path, &[("Authorization", &viewer)], body).await;
        assert_eq!(as_viewer.status, 403, "{method} {path} with the viewer token: {}", as_viewer.text());
        let sep = if path.contains('?') { '&' } else { '?' };
        let in_url = server.request(method, &format!("{path}{sep}token={ADMIN_TOKEN}"), &[], body).await;
        // Protecting is a viewer's action (the admin token in a URL opens it), un-protecting is not.
        let want = if path.ends_with("/keep") { 403 } else { 401 };
        assert_eq!(in_url.status, want, "{method} {path}: the admin token is not taken from URLs");
    }
    assert_eq!(frames(&server).await, before, "nothing was deleted by the refused requests");
    let s = server.request("GET", &format!("/cam/control/recordings?token={VIEWER}"), &[], None).await.json();
    assert_eq!(s["data"]["count"], 1);

    // Viewers may protect; the admin may do all of it.
    let keep =
        server.request("PUT", &format!("/cam/control/recordings/{id}/keep"), &[("Authorization", &viewer)], None).await;
    assert_eq!(keep.status, 200, "{}", keep.text());
    for (method, path, body) in destructive(id) {
        let r = server.admin(method, &path, body).await;
        assert!(matches!(r.status, 200 | 404), "{method} {path} as admin: {} {}", r.status, r.text());
    }
    let s = server.request("GET", &format!("/cam/control/recordings?token={VIEWER}"), &[], None).await.json();
    assert_eq!(s["data"]["count"], 0, "the admin deleted the session: {s}");
    assert_eq!(server.camera_status("cam").await["restarts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_requests_learn_nothing_about_what_exists() {
    let (_cam, server, id) = setup(json!({})).await;
    // A session that exists and one that does not look the same without a token.
    for path in [format!("/cam/control/recordings/{id}/frames"), "/cam/control/recordings/99999/frames".into()] {
        let r = server.get(&path).await;
        assert_eq!(r.status, 401, "{path}");
    }
    // Admin routes refuse before looking for the camera.
    for path in ["/cam/control/recordings/sessions/99999", "/nocam/control/recordings/sessions/1"] {
        assert_eq!(server.request("DELETE", path, &[], None).await.status, 401, "{path}");
    }
    assert_eq!(server.admin("DELETE", "/nocam/control/recordings/sessions/1", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_admin_actions_are_refused_naming_the_setting() {
    let (_cam, server, id) = setup(json!({"server": {"admin_token": null}})).await;
    let r = server.admin("DELETE", &format!("/cam/control/recordings/sessions/{id}"), None).await;
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("server.admin_token"), "{}", r.text());
    let unkeep = server
        .request("PUT", &format!("/cam/control/recordings/{id}/keep?token={VIEWER}"), &[], Some(br#"{"keep": false}"#))
        .await;
    assert_eq!(unkeep.status, 403, "{}", unkeep.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_locks_the_address_out_and_the_log_names_it_never_the_token() {
    let cam = TestCamera::start(&["--width", "640", "--height", "360"]).await;
    let camera = camera_json("/cam", &cam.url("/cam"), json!({"token": VIEWER}));
    let server =
        Server::start(json!({"server": {"auth_max_failures": 3, "auth_lockout_secs": 2}}), &[("cam", camera)]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    // A page that keeps reconnecting with one stale token is not guessing.
    for _ in 0..6 {
        assert_eq!(server.get("/cam/snapshot?token=guess-aaaa-1111").await.status, 401);
    }
    assert_eq!(server.get(&format!("/cam/snapshot?token={VIEWER}")).await.status, 200, "not locked out by retries");
    for guess in ["guess-bbbb-2222", "guess-cccc-3333"] {
        assert_eq!(server.get(&format!("/cam/snapshot?token={guess}")).await.status, 401);
    }
    let locked = server.get(&format!("/cam/snapshot?token={VIEWER}")).await;
    assert_eq!(locked.status, 429, "even the right token waits: {}", locked.text());
    assert!(locked.header("retry-after").is_some());
    assert_eq!(server.get("/api/status").await.status, 200, "public pages stay open");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.get(&format!("/cam/snapshot?token={VIEWER}")).await.status, 200, "and only for a while");
    let status = server.status().await;
    assert!(status["auth_failures"].as_u64().unwrap() >= 3 && status["auth_lockouts"].as_u64().unwrap() >= 1);

    let log = server.log();
    assert!(log.contains("client=127.0.0.1"), "failures are logged with the client address");
    for secret in ["guess-aaaa-1111", "guess-cccc-3333", VIEWER] {
        assert!(!log.contains(secret), "a token reached the log: {secret}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_offers_deleting_only_to_a_configured_origin() {
    let (_cam, server, _) = setup(json!({})).await;
    let preflight = async |method: &str| {
        let h = [("Origin", "http://evil.example"), ("Access-Control-Request-Method", method)];
        server.request("OPTIONS", "/cam/control/recordings/sessions/1", &h, None).await
    };
    let delete = preflight("DELETE").await;
    assert_eq!(delete.status, 403, "{}", delete.text());
    assert_eq!(delete.header("access-control-allow-methods"), None);
    let post = preflight("POST").await;
    let methods = post.header("access-control-allow-methods").unwrap_or("");
    assert!(!methods.contains("DELETE") && methods.contains("GET") && methods.contains("POST"), "{methods}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_page_of_another_origin_cannot_delete_even_with_the_token() {
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let (_cam, server, id) = setup(json!({})).await;
    // Another origin: a page served by this test on another port.
    let page = format!(
        "<!doctype html><html><body><script>
         window.result = 'pending';
         fetch('http://127.0.0.1:{port}/cam/control/recordings/sessions/{id}',
               {{method: 'DELETE', headers: {{'Authorization': 'Bearer {ADMIN_TOKEN}'}}}})
           .then(r => {{ window.result = 'status ' + r.status; }})
           .catch(e => {{ window.result = 'blocked: ' + e.name; }});
         </script></body></html>",
        port = server.port
    );
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = other.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    page.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(page.as_bytes()).await;
            });
        }
    });
    let browser = Browser::launch().await.unwrap();
    let tab = browser.new_page(&format!("http://127.0.0.1:{other_port}/")).await.unwrap();
    let result = tab.wait_for("window.result !== 'pending' ? window.result : null", Duration::from_secs(10)).await;
    let result = result.unwrap_or_else(|e| panic!("the page did not finish: {e}"));
    assert_eq!(result, "blocked: TypeError", "the browser refused the cross-origin delete");
    let s = server.request("GET", &format!("/cam/control/recordings?token={VIEWER}"), &[], None).await.json();
    assert_eq!(s["data"]["count"], 1, "the session is still there");
}

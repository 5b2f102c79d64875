//! What browsers are told (issue 10 §2): `nosniff` and `no-referrer` on every answer, a
//! Content-Security-Policy on every page that allows exactly its inline blocks, framing as
//! `server.frame_ancestors` says (checked in Chromium), and CORS exactly as
//! `server.cors_allow_origin` says: a configured origin, another origin, `*`, and none.

mod support;

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::chromium::{self, Browser};
use support::harness::*;

/// A camera that never connects: its pages are served all the same, and no FFmpeg works hard.
fn idle_camera() -> Value {
    json!({"path": "/cam", "url": "rtsp://127.0.0.1:9/none", "reconnect_interval": 30})
}

const PAGES: &[&str] = &["/dashboard", "/admin", "/cam", "/cam/test", "/cam/stream", "/cam/control"];

/// `'sha256-…'` of every inline `<tag>` block of a page, as a browser computes it.
fn inline_hashes(html: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    html.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(body, _)| body))
        .map(|body| {
            let digest = Sha256::digest(body.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect()
}

/// The directive `name` of a policy, without its name.
fn directive<'a>(csp: &'a str, name: &str) -> &'a str {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name} in {csp}"))
}

fn assert_common(r: &HttpResponse, what: &str) {
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_a_policy_its_inline_code_satisfies_and_every_answer_nosniff() {
    let server = Server::start(json!({}), &[("cam", idle_camera())]).await;
    for page in PAGES {
        let r = server.get(page).await;
        assert_eq!(r.status, 200, "{page}");
        assert_common(&r, page);
        let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{page} has no CSP"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{page}: {csp}");
        let html = r.text();
        for (tag, name) in [("script", "script-src"), ("style", "style-src")] {
            let allowed = directive(csp, name);
            let hashes = inline_hashes(&html, tag);
            assert!(!hashes.is_empty(), "{page} has inline <{tag}> blocks");
            for h in hashes {
                assert!(allowed.split(' ').any(|s| s == h), "{page}: {h} of an inline <{tag}> not in {csp}");
            }
        }
        assert_eq!(directive(csp, "frame-ancestors"), "'self' *", "{page}: WinCC embeds from its own origin");
        assert_eq!(directive(csp, "object-src"), "'none'");
        assert!(directive(csp, "worker-src").contains("blob:"), "hls.js runs its worker from a blob: URL");
    }
    // Not pages, same promise about types.
    for (path, status) in [("/api/status", 200), ("/", 302), ("/nowhere", 404), ("/cam/snapshot", 503)] {
        let r = server.get(path).await;
        assert_eq!(r.status, status, "{path}");
        assert_common(&r, path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_ancestors_are_as_configured_and_checked_at_load() {
    for (list, expected) in [
        (json!([]), "'self'"),
        (
            json!(["https://wincc.plant.example", "https://*.hmi.example:8443"]),
            "'self' https://wincc.plant.example https://*.hmi.example:8443",
        ),
    ] {
        let server = Server::start(json!({"server": {"frame_ancestors": list}}), &[]).await;
        let csp = server.get("/dashboard").await.header("content-security-policy").unwrap().to_string();
        assert_eq!(directive(&csp, "frame-ancestors"), expected, "{list}");
    }
    let dir = TempDir::new("frame-ancestors");
    for (config, field) in [
        (json!({"server": {"frame_ancestors": ["*", "https://wincc.example/"]}}), "server.frame_ancestors[1]"),
        (json!({"server": {"frame_ancestors": ["https://a.example; script-src *"]}}), "server.frame_ancestors[0]"),
        (json!({"server": {"frame_ancestors": "*"}}), "server.frame_ancestors"),
        (json!({"server": {"cors_allow_origin": "https://wincc.example/hmi"}}), "server.cors_allow_origin"),
        (json!({"server": {"cors_allow_origin": "null"}}), "server.cors_allow_origin"),
    ] {
        dir.write("config.json", &config.to_string());
        let (code, stdout, stderr) = run_panelcam(&dir.0, &["check", "--config", "config.json"]).await;
        let output = format!("{stdout}{stderr}");
        assert_eq!(code, Some(1), "{config}: {output}");
        assert!(output.contains(field), "{config}: names {field}: {output}");
    }
}

/// A page of another origin (another port) that embeds `url` in an iframe.
async fn embedding_page(url: String) -> u16 {
    let page = format!(
        "<!doctype html><html><body><iframe src=\"{url}\" width=\"640\" height=\"360\"></iframe></body></html>"
    );
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = other.local_addr().unwrap().port();
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
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_chromium_lets_another_origin_frame_the_pages_only_as_configured() {
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let browser = Browser::launch().await.unwrap();
    for (list, framed) in [(json!(["*"]), true), (json!([]), false)] {
        let server = Server::start(json!({"server": {"frame_ancestors": list}}), &[("cam", idle_camera())]).await;
        let port = embedding_page(format!("http://127.0.0.1:{}/cam/stream", server.port)).await;
        let tab = browser.new_page(&format!("http://127.0.0.1:{port}/")).await.unwrap();
        // The stream page opens its WebSocket once it runs: the camera counts a client.
        let viewed = eventually(Duration::from_secs(if framed { 10 } else { 3 }), async || {
            server.camera_status("cam").await["clients"].as_u64() > Some(0)
        })
        .await;
        let console = tab.console_messages().await;
        assert_eq!(viewed, framed, "{list}: the framed stream page ran: {viewed}; console: {console:?}");
        if framed {
            tab.assert_no_console_errors().await;
        } else {
            assert!(console.iter().any(|m| m.contains("frame-ancestors")), "the refusal is reported: {console:?}");
        }
    }
}

/// An `OPTIONS` preflight from `origin` for `method` with `headers`.
async fn preflight(server: &Server, origin: &str, method: &str, headers: &str) -> HttpResponse {
    let mut h = vec![("Origin", origin), ("Access-Control-Request-Method", method)];
    if !headers.is_empty() {
        h.push(("Access-Control-Request-Headers", headers));
    }
    server.request("OPTIONS", "/cam/control/recordings/sessions/1", &h, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_exactly_as_configured_preflight_included() {
    const WINCC: &str = "https://wincc.plant.example";
    const EVIL: &str = "https://evil.example";

    // One configured origin: trusted with everything; any other origin learns nothing.
    let server = Server::start(json!({"server": {"cors_allow_origin": WINCC}}), &[("cam", idle_camera())]).await;
    let ok = preflight(&server, WINCC, "DELETE", "authorization, content-type").await;
    assert_eq!(ok.status, 204, "{}", ok.text());
    assert_eq!(ok.header("access-control-allow-origin"), Some(WINCC));
    assert!(ok.header("access-control-allow-methods").unwrap().contains("DELETE"));
    assert!(ok.header("access-control-allow-headers").unwrap().to_ascii_lowercase().contains("authorization"));
    for (origin, method, headers) in
        [(EVIL, "GET", ""), (EVIL, "DELETE", "authorization"), ("https://wincc.plant.example.evil.example", "GET", "")]
    {
        let r = preflight(&server, origin, method, headers).await;
        assert_eq!(r.status, 403, "{origin} {method}");
        assert!(
            r.header("access-control-allow-origin").is_none() && r.header("access-control-allow-methods").is_none()
        );
    }
    assert_eq!(preflight(&server, WINCC, "PATCH", "").await.status, 403, "a method the API does not have");
    assert_eq!(preflight(&server, WINCC, "GET", "x-custom").await.status, 403, "a header it does not take");
    let get = server.request("GET", "/api/status", &[("Origin", WINCC)], None).await;
    assert_eq!((get.header("access-control-allow-origin"), get.header("vary")), (Some(WINCC), Some("Origin")));
    let get = server.request("GET", "/api/status", &[("Origin", EVIL)], None).await;
    assert_eq!(get.status, 200, "CORS is the browser's check; the answer itself is public");
    assert_eq!(get.header("access-control-allow-origin"), None);
    drop(server);

    // "*": any origin may use the viewer API, none may delete.
    let server = Server::start(json!({"server": {"cors_allow_origin": "*"}}), &[("cam", idle_camera())]).await;
    let r = preflight(&server, EVIL, "POST", "authorization, content-type").await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (204, Some("*")));
    assert!(!r.header("access-control-allow-methods").unwrap().contains("DELETE"));
    let r = preflight(&server, EVIL, "DELETE", "authorization").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("server.cors_allow_origin"));
    assert_eq!(r.header("access-control-allow-methods"), None);
    let get = server.request("GET", "/api/status", &[("Origin", EVIL)], None).await;
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
    drop(server);

    // "": no CORS at all.
    let server = Server::start(json!({"server": {"cors_allow_origin": ""}}), &[("cam", idle_camera())]).await;
    for origin in [WINCC, EVIL] {
        let r = preflight(&server, origin, "GET", "").await;
        assert_eq!((r.status, r.header("access-control-allow-origin")), (403, None), "{origin}");
        let get = server.request("GET", "/api/status", &[("Origin", origin)], None).await;
        assert_eq!(get.header("access-control-allow-origin"), None);
    }
    // An OPTIONS that is no preflight is answered plainly.
    assert_eq!(server.request("OPTIONS", "/api/status", &[], None).await.status, 204);
}

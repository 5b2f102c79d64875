//! Behind WinCC's reverse proxy: the IIS rule of the spec maps `/video/<path>` to panelcam's
//! `/<path>`. Here a real nginx (Debian's) is configured the same way, with TLS terminated at the
//! proxy (plain HTTP to panelcam) and end to end (HTTPS to panelcam, verified), and headless
//! Chromium, trusting the test CA, uses the pages through it.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::chromium::{self, Browser};
use support::harness::*;
use support::pki::{Ca, Pair};

fn lavfi_camera() -> Value {
    json!({"path": "/cam", "url": "lavfi:testsrc2=size=320x240:rate=10", "reconnect_interval": 1})
}

/// nginx in the foreground with its own prefix directory, killed with the test.
struct Nginx {
    port: u16,
    _child: tokio::process::Child,
}

impl Nginx {
    /// `/video/` over HTTPS on a free port, proxied to `upstream` (`http://…` or `https://…`).
    async fn start(dir: &Path, cert: &Pair, ca: &Path, upstream: &str) -> Nginx {
        let port = free_port();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        # The IIS rule: /video/<path> -> panelcam /<path>, WebSockets included.
        location /video/ {{
            proxy_pass {upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_name 127.0.0.1;
        }}
    }}
}}
"#,
            prefix = prefix.display(),
            cert = cert.cert_path.display(),
            key = cert.key_path.display(),
            ca = ca.display(),
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = tokio::process::Command::new("nginx")
            .args(["-p", &prefix.display().to_string(), "-c", &conf_path.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx (scripts/deps.sh test installs nginx-light)");
        let up = eventually(Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        let log = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
        assert!(up, "nginx did not listen on {port}: {log}");
        Nginx { port, _child: child }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/video{path}", self.port)
    }
}

/// Pages, the live WebSocket and the API through the proxy, as a browser at the plant sees them.
async fn pages_work_through(proxy: &Nginx, ca: &Ca, server: &Server) {
    let status = https_request(&ca.client(), proxy.port, "GET", "/video/api/status", &[], None).await.unwrap();
    assert_eq!(status.status, 200, "{}", status.text());
    let browser = Browser::launch_trusting(&ca.cert_path).await.unwrap();
    let stream = browser.new_page(&proxy.url("/cam/stream")).await.unwrap();
    stream
        .wait_for("window.panelcamPlayer && window.panelcamPlayer.frames >= 5", Duration::from_secs(15))
        .await
        .unwrap();
    stream.assert_no_console_errors().await;
    let dashboard = browser.new_page(&proxy.url("/dashboard")).await.unwrap();
    dashboard
        .wait_for(
            "document.querySelector('[data-camera=\"cam\"] .badge')?.textContent === 'streaming'",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    dashboard.assert_no_console_errors().await;
    let control = browser.new_page(&proxy.url("/cam/control")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    control.assert_no_console_errors().await;
    assert!(server.camera_status("cam").await["clients"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_pages_work_behind_nginx_with_tls_at_the_proxy() {
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let pki = TempDir::new("proxy-edge");
    let ca = Ca::new(&pki.0, "plant");
    let edge = ca.issue(&pki.0, "edge", &["127.0.0.1"]);
    let server = Server::start(json!({}), &[("cam", lavfi_camera())]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let proxy = Nginx::start(&pki.0, &edge, &ca.cert_path, &format!("http://127.0.0.1:{}", server.port)).await;
    pages_work_through(&proxy, &ca, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_pages_work_behind_nginx_with_tls_end_to_end() {
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let pki = TempDir::new("proxy-e2e");
    let ca = Ca::new(&pki.0, "plant");
    let edge = ca.issue(&pki.0, "edge", &["127.0.0.1"]);
    let panel = ca.issue(&pki.0, "panel", &["127.0.0.1"]);
    let tls = json!({"server": {"tls": {"enabled": true, "cert_path": panel.cert_path, "key_path": panel.key_path}}});
    let launch = Launch { client_tls: Some(ca.client()), ..Default::default() };
    let server = Server::start_with(tls, &[("cam", lavfi_camera())], launch).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let proxy = Nginx::start(&pki.0, &edge, &ca.cert_path, &format!("https://127.0.0.1:{}", server.port)).await;
    pages_work_through(&proxy, &ca, &server).await;
}

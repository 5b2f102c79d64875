//! HTTPS and WSS (issue 10 §1) against the real binary with a throw-away CA: versions, live
//! frames over WSS, a certificate renewed on disk while a viewer streams, certificates that
//! cannot be used, stalled handshakes, and the HTTP-to-HTTPS redirect port.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::harness::*;
use support::pki::{Ca, Pair};
use tokio::io::AsyncWriteExt;

fn lavfi_camera() -> Value {
    json!({"path": "/cam", "url": "lavfi:testsrc2=size=320x240:rate=10", "reconnect_interval": 1})
}

fn tls_config(pair: &Pair, extra: Value) -> Value {
    let mut tls = json!({"enabled": true, "cert_path": pair.cert_path, "key_path": pair.key_path});
    merge(&mut tls, extra);
    json!({"server": {"tls": tls}})
}

/// panelcam with HTTPS, its certificate for 127.0.0.1 from `ca`, files in `pki`.
async fn https_server(ca: &Ca, pki: &Path, extra: Value, cameras: &[(&str, Value)]) -> (Server, Pair) {
    let pair = ca.issue(pki, "server", &["127.0.0.1", "localhost"]);
    let launch = Launch { client_tls: Some(ca.client()), ..Default::default() };
    let server = Server::start_with(tls_config(&pair, extra), cameras, launch).await;
    (server, pair)
}

/// The DER of the certificate a new TLS connection is shown.
async fn served_certificate(ca: &Ca, port: u16) -> Vec<u8> {
    let tls = tls_connect(&ca.client(), port).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem_path: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(pem_path).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_serve_status_and_live_frames() {
    let pki = TempDir::new("https-pki");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[("cam", lavfi_camera())]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let page = server.get("/dashboard").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    let mut ws = wss_connect(&ca.client(), server.port, "/cam/live").await.unwrap();
    for _ in 0..3 {
        let frame = next_binary(&mut ws, Duration::from_secs(10)).await.expect("a frame over WSS");
        assert_eq!(jpeg_size(&frame), (320, 240));
    }
    assert!(server.log().contains("listening on https://"), "{}", server.log());
    // Plain HTTP on the HTTPS port gets no page.
    assert!(http_request(server.port, "GET", "/api/status", &[], None).await.is_err_or_not_200());
}

trait NotServed {
    fn is_err_or_not_200(&self) -> bool;
}

impl NotServed for Result<HttpResponse, String> {
    fn is_err_or_not_200(&self) -> bool {
        self.as_ref().map_or(true, |r| r.status != 200)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_and_1_2_are_negotiated_and_1_1_is_refused() {
    let pki = TempDir::new("https-versions");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[]).await;
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let tls = tls_connect(&ca.client_with(&[version]), server.port).await.unwrap();
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        let r = https_request(&ca.client_with(&[version]), server.port, "GET", "/api/status", &[], None).await;
        assert_eq!(r.unwrap().status, 200, "{expected:?}");
    }
    // OpenSSL can still speak TLS 1.1 when told to (security level 0); the server must refuse.
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", server.port),
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl (scripts/deps.sh test)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // rustls answers a ClientHello without TLS 1.2 or 1.3 with a fatal alert and nothing else.
    let alert = text.contains("alert handshake failure") || text.contains("alert protocol version");
    assert!(alert, "the server answers TLS 1.1 with an alert: {text}");
    assert!(text.contains("Cipher is (NONE)"), "no session: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_new_connections_while_a_wss_viewer_streams_on() {
    let pki = TempDir::new("https-renew");
    let ca = Ca::new(&pki.0, "panel");
    let (server, pair) = https_server(&ca, &pki.0, json!({}), &[("cam", lavfi_camera())]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let first = served_certificate(&ca, server.port).await;
    assert_eq!(first, der_of(&pair.cert_path));
    let mut ws = wss_connect(&ca.client(), server.port, "/cam/live").await.unwrap();
    assert!(next_binary(&mut ws, Duration::from_secs(10)).await.is_some());

    // A renewal as certbot or a deployment script does it: new files renamed into place.
    let renewed = ca.issue(&pki.0, "renewed", &["127.0.0.1", "panel.renewed"]);
    std::fs::rename(&renewed.key_path, &pair.key_path).unwrap();
    std::fs::rename(&renewed.cert_path, &pair.cert_path).unwrap();
    let expected = der_of(&pair.cert_path);
    let swapped =
        eventually(Duration::from_secs(10), async || served_certificate(&ca, server.port).await == expected).await;
    assert!(swapped, "new connections get the renewed certificate; log:\n{}", server.log());
    for _ in 0..5 {
        assert!(next_binary(&mut ws, Duration::from_secs(5)).await.is_some(), "the open WSS viewer streams on");
    }
    assert!(server.log().contains("HTTPS certificate changed on disk"), "{}", server.log());
    // `systemctl reload` (SIGHUP) loads the files at once, changed or not.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    let reloaded =
        eventually(Duration::from_secs(5), async || server.log().contains("SIGHUP: HTTPS now serving")).await;
    assert!(reloaded, "{}", server.log());

    // A broken renewal keeps the certificate in use.
    std::fs::write(&pair.cert_path, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let reported =
        eventually(Duration::from_secs(10), async || server.log().contains("cannot be used, keeping the old one"))
            .await;
    assert!(reported, "{}", server.log());
    assert_eq!(served_certificate(&ca, server.port).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_certificates_stop_startup_naming_the_file_and_expired_ones_warn() {
    let dir = TempDir::new("https-files");
    let ca = Ca::new(&dir.0, "panel");
    let good = ca.issue(&dir.0, "good", &["127.0.0.1"]);
    let other = ca.issue(&dir.0, "other", &["127.0.0.1"]);
    let missing = Pair { cert_path: dir.0.join("nope.pem"), key_path: good.key_path.clone() };
    let mismatched = Pair { cert_path: good.cert_path.clone(), key_path: other.key_path.clone() };
    for (pair, field, says) in [
        (&missing, "server.tls.cert_path", "nope.pem: cannot read the server certificate"),
        (&mismatched, "server.tls.key_path", "other.key: is not the key of the certificate in"),
    ] {
        dir.write("config.json", &tls_config(pair, json!({})).to_string());
        let (code, stdout, stderr) = run_panelcam(&dir.0, &["check", "--config", "config.json"]).await;
        let output = format!("{stdout}{stderr}");
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains(field) && output.contains(says), "{field} / {says}: {output}");
    }
    // An expired certificate starts with a loud warning (the panel must stay reachable to be
    // given a new one); clients refuse it, so the harness cannot wait for /api/status here.
    let expired = ca.issue_expired(&dir.0, "expired", &["127.0.0.1"]);
    let port = free_port();
    let mut config = tls_config(&expired, json!({}));
    merge(&mut config, json!({"server": {"host": "127.0.0.1", "port": port}}));
    dir.write("config.json", &config.to_string());
    let log = std::fs::File::create(dir.0.join("expired.log")).unwrap();
    let _panelcam = tokio::process::Command::new(env!("CARGO_BIN_EXE_panelcam"))
        .args(["--config", "config.json"])
        .current_dir(&dir.0)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.0.join("expired.log")).unwrap_or_default();
    assert!(eventually(Duration::from_secs(10), async || log().contains("listening on https://")).await, "{}", log());
    assert!(log().contains("EXPIRED on 2021-01-01"), "{}", log());
    let r = https_request(&ca.client(), port, "GET", "/api/status", &[], None).await;
    assert!(r.as_ref().is_err_and(|e| e.contains("Expired") || e.contains("expired")), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_stalled_handshakes_do_not_starve_a_client() {
    let pki = TempDir::new("https-stall");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[]).await;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap());
    }
    // Half a TLS record header: the server waits for the rest of a ClientHello that never comes.
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        held.push(s);
    }
    let started = std::time::Instant::now();
    let r = https_request(&ca.client(), server.port, "GET", "/api/status", &[], None).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "served while 400 connections stall: {:?}", started.elapsed());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_port_sends_plain_http_to_https() {
    let pki = TempDir::new("https-redirect");
    let ca = Ca::new(&pki.0, "panel");
    let redirect_port = free_port();
    let (server, _) = https_server(&ca, &pki.0, json!({"redirect_http_port": redirect_port}), &[]).await;
    let r = http_request(redirect_port, "GET", "/cam1?token=x", &[], None).await.unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some(format!("https://127.0.0.1:{}/cam1?token=x", server.port).as_str()));
    // Without HTTPS a redirect port would do nothing: refused.
    let dir = TempDir::new("https-redirect-off");
    dir.write("config.json", &json!({"server": {"tls": {"redirect_http_port": 8081}}}).to_string());
    let (code, stdout, stderr) = run_panelcam(&dir.0, &["check", "--config", "config.json"]).await;
    assert_eq!(code, Some(1));
    assert!(format!("{stdout}{stderr}").contains("server.tls.redirect_http_port"), "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_the_stream_page_plays_over_wss_in_chromium_trusting_a_test_ca() {
    use support::chromium::{self, Browser};
    assert!(chromium::available(), "Debian chromium is required (scripts/deps.sh test installs it)");
    let pki = TempDir::new("https-chromium");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[("cam", lavfi_camera())]).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let browser = Browser::launch_trusting(&ca.cert_path).await.unwrap();
    let page = browser.new_page(&format!("https://127.0.0.1:{}/cam/stream", server.port)).await.unwrap();
    page.wait_for("window.panelcamPlayer && window.panelcamPlayer.frames >= 5", Duration::from_secs(15)).await.unwrap();
    let secure = page.eval("window.isSecureContext && location.protocol").await.unwrap();
    assert_eq!(secure, "https:", "a secure context (WebCodecs needs one)");
    assert_eq!(server.camera_status("cam").await["clients"], 1, "the page is a WSS viewer");
    page.assert_no_console_errors().await;
    // The same browser without the CA would refuse the page: the trust is the test CA's.
    let stranger = Browser::launch().await.unwrap();
    let refused = stranger.new_page(&format!("https://127.0.0.1:{}/cam/stream", server.port)).await;
    let error = refused.err().unwrap_or_default();
    assert!(error.contains("ERR_CERT_AUTHORITY_INVALID"), "without the CA: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_script_makes_what_panelcam_serves_and_clients_trust() {
    let dir = TempDir::new("https-make-cert");
    let certs = dir.0.join("certs");
    let out = tokio::process::Command::new("bash")
        .arg(repo_path("scripts/make-cert.sh"))
        .args(["--dir", &certs.display().to_string(), "--name", "panel-7.plant"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("DNS:panel-7.plant") && said.contains("IP:127.0.0.1"), "{said}");
    // An EC key in SEC1 form ("EC PRIVATE KEY"), as openssl writes it.
    let key = std::fs::read_to_string(certs.join("server.key")).unwrap();
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{key}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(certs.join("server.key")).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    let pair = Pair { cert_path: certs.join("server.crt"), key_path: certs.join("server.key") };
    let client = support::pki::client_trusting(&certs.join("ca.crt"));
    let launch = Launch { client_tls: Some(client.clone()), ..Default::default() };
    let server = Server::start_with(tls_config(&pair, json!({})), &[], launch).await;
    let r = https_request(&client, server.port, "GET", "/api/status", &[], None).await.unwrap();
    assert_eq!(r.status, 200);
}

/// Whether the server has closed `tls` (EOF, a reset, or a TLS alert), reading what it sent.
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(tls: &mut S, answer: &mut Vec<u8>) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_millis(10), tls.read(&mut buf)).await {
        Err(_) => false,
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => {
            answer.extend_from_slice(&buf[..n]);
            false
        }
    }
}

/// Sends `prefix` at once, then `slow` a byte every 300 ms (each read makes progress, so only
/// a deadline for the whole, not an idle timeout per read, can end it), until the server
/// closes the connection; returns when that happened and what the server said.
async fn trickle(ca: &Ca, port: u16, prefix: &[u8], slow: &[u8]) -> (Option<Duration>, String) {
    let mut tls = tls_connect(&ca.client(), port).await.unwrap();
    let started = std::time::Instant::now();
    tls.write_all(prefix).await.unwrap();
    let mut answer = Vec::new();
    for byte in slow {
        if tls.write_all(&[*byte]).await.is_err() || tls.flush().await.is_err() {
            return (Some(started.elapsed()), String::from_utf8_lossy(&answer).into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if closed_by_server(&mut tls, &mut answer).await {
            return (Some(started.elapsed()), String::from_utf8_lossy(&answer).into());
        }
    }
    (None, String::from_utf8_lossy(&answer).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sending_headers_or_a_body_byte_by_byte_over_tls_are_cut_off() {
    let pki = TempDir::new("https-slowloris");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[]).await;
    // Headers that would take five minutes at this pace.
    let head = format!("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n{}", "X-Slow: a\r\n".repeat(100));
    let slow_head = trickle(&ca, server.port, b"", head.as_bytes());
    // Whole headers at once, then a body that would take five minutes.
    let body_head = format!(
        "PUT /api/admin/config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    );
    let slow_body = trickle(&ca, server.port, body_head.as_bytes(), &[b' '; 1000]);
    let others = async {
        // Meanwhile other clients are served at once.
        for _ in 0..5 {
            let started = std::time::Instant::now();
            assert_eq!(server.get("/api/status").await.status, 200);
            assert!(started.elapsed() < Duration::from_secs(2));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let ((head_cut, head_answer), (body_cut, body_answer), ()) = tokio::join!(slow_head, slow_body, others);
    // 15 s each: HEADER_READ_TIMEOUT and BODY_READ_TIMEOUT in src/http/mod.rs.
    for (what, cut) in [("headers", head_cut), ("body", body_cut)] {
        let cut = cut.unwrap_or_else(|| panic!("slow {what}: still connected after the whole request"));
        assert!(cut >= Duration::from_secs(14) && cut < Duration::from_secs(20), "slow {what}: cut off after {cut:?}");
    }
    assert!(!head_answer.contains("200 OK"), "the slow request was never served: {head_answer}");
    assert!(body_answer.starts_with("HTTP/1.1 408"), "a slow body is answered 408: {body_answer}");
    assert!(body_answer.contains("did not arrive within 15 s"), "{body_answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_over_tls_get_413_per_endpoint() {
    let pki = TempDir::new("https-bodies");
    let ca = Ca::new(&pki.0, "panel");
    let (server, _) = https_server(&ca, &pki.0, json!({}), &[("cam", lavfi_camera())]).await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let admin = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
    // JSON padded with spaces to exactly `len` bytes.
    let padded = |json: &str, len: usize| format!("{json}{}", " ".repeat(len - json.len())).into_bytes();
    for (method, path, json, limit, within) in [
        ("PUT", "/api/admin/config", "{}", 64 << 10, 200),
        ("POST", "/api/admin/cameras", "{}", 64 << 10, 400),
        ("POST", "/cam/control/recording/start", "{}", 64 << 10, 200),
        ("POST", "/cam/control/ptz/move", r#"{"pan": 0.5, "tilt": 0}"#, 4 << 10, 409),
    ] {
        let over = server.request(method, path, &admin, Some(&padded(json, limit + 1))).await;
        assert_eq!(over.status, 413, "{method} {path} with {} bytes: {}", limit + 1, over.text());
        assert!(over.json()["error"].as_str().unwrap().contains(&format!("{limit} bytes")), "{}", over.text());
        let huge = server.request(method, path, &admin, Some(&padded(json, 4 << 20))).await;
        assert_eq!(huge.status, 413, "{method} {path} with 4 MiB");
        // At the limit the body is read and judged on what it says.
        let at = server.request(method, path, &admin, Some(&padded(json, limit))).await;
        assert_eq!(at.status, within, "{method} {path} with {limit} bytes: {}", at.text());
        if path.ends_with("start") {
            server.request("POST", "/cam/control/recording/stop", &admin, None).await;
        }
    }
    // A chunked body declares no length: it is cut off once it passes the limit.
    let mut tls = tls_connect(&ca.client(), server.port).await.unwrap();
    let chunk = vec![b' '; 3000];
    let mut raw = b"POST /cam/control/ptz/move HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    tls.write_all(&raw).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut answer))
        .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(server.status().await["cameras"][0]["restarts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_keys_in_pkcs1_form_are_read() {
    // `openssl genrsa -traditional` writes "RSA PRIVATE KEY" (PKCS#1), as older tools and many
    // plant CAs hand them out.
    let dir = TempDir::new("https-pkcs1");
    let (key, cert) = (dir.0.join("rsa.key"), dir.0.join("rsa.crt"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["genrsa", "-traditional", "-out", key.to_str().unwrap(), "2048"]);
    run(&[
        "req",
        "-new",
        "-x509",
        "-key",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "30",
        "-subj",
        "/CN=panel",
    ]);
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let pair = Pair { cert_path: cert, key_path: key };
    dir.write("config.json", &tls_config(&pair, json!({})).to_string());
    let (code, stdout, stderr) = run_panelcam(&dir.0, &["check", "--config", "config.json"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_cap_holds_over_wss() {
    let pki = TempDir::new("https-viewers");
    let ca = Ca::new(&pki.0, "panel");
    let pair = ca.issue(&pki.0, "server", &["127.0.0.1"]);
    let mut config = tls_config(&pair, json!({}));
    merge(&mut config, json!({"server": {"max_viewers_per_camera": 2}}));
    let launch = Launch { client_tls: Some(ca.client()), ..Default::default() };
    let server = Server::start_with(config, &[("cam", lavfi_camera())], launch).await;
    server.wait_streaming("cam", Duration::from_secs(20)).await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        viewers.push(wss_connect(&ca.client(), server.port, "/cam/live").await.unwrap());
    }
    let refused = wss_connect(&ca.client(), server.port, "/cam/live").await.err().unwrap_or_default();
    assert!(refused.contains("503"), "a third WSS viewer is refused clearly: {refused}");
    for ws in &mut viewers {
        assert!(next_binary(ws, Duration::from_secs(10)).await.is_some(), "the two admitted viewers stream");
    }
}

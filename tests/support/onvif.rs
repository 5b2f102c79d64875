//! A fake ONVIF PTZ device in the test process: it checks each request's SOAP envelope,
//! action and profile token, verifies the WS-Security digest against [`PASSWORD`] on its own
//! clock (two hours ahead of ours, so panelcam must have corrected the skew), answers faults
//! like a camera, and records every call. Used by `tests/ptz.rs` (the API) and
//! `tests/browser.rs` (the control page's pad).
//!
//! [`Device::start_tls`] serves the same over TLS (tokio-rustls) with a certificate from
//! `support::pki`, and records the handshakes it saw fail, so a test can tell "refused by
//! panelcam's certificate check" from "never reached".

use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::pki::Pair;

pub const USER: &str = "ptz-operator";
pub const PASSWORD: &str = "onvif-S3cret-pw-5521";
pub const PROFILE: &str = "Profile_A";
/// The device's clock runs this far ahead of ours.
const SKEW_SECS: i64 = 7200;

#[derive(Clone, Debug)]
pub struct Call {
    pub action: String,
    pub path: String,
    pub body: String,
    pub at: Instant,
    /// The WS-Security digest matched [`PASSWORD`] on the device's clock.
    pub authorized: bool,
}

/// A fake ONVIF device. `hang`: accept connections and never answer.
pub struct Device {
    pub port: u16,
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// TLS handshakes that failed, with the server side's error (the client's alert).
    pub refused: Arc<Mutex<Vec<String>>>,
    tls: bool,
}

impl Device {
    pub async fn start(hang: bool) -> Device {
        Device::listen(hang, None).await
    }

    /// An `https://` device presenting `pair`'s certificate.
    pub async fn start_tls(pair: &Pair) -> Device {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&pair.cert_path).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(&pair.key_path).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Device::listen(false, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn listen(hang: bool, tls: Option<TlsAcceptor>) -> Device {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (recorded, refusals, is_tls) = (calls.clone(), refused.clone(), tls.is_some());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                if hang {
                    held.push(sock); // never read, never answered, never closed
                    continue;
                }
                let (recorded, refusals, tls) = (recorded.clone(), refusals.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(sock, recorded).await,
                        Some(acceptor) => match acceptor.accept(sock).await {
                            Ok(stream) => serve(stream, recorded).await,
                            Err(e) => refusals.lock().unwrap().push(e.to_string()),
                        },
                    }
                });
            }
        });
        Device { port, calls, refused, tls: is_tls }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/onvif/device_service", self.port)
    }

    pub fn calls(&self, action: &str) -> Vec<Call> {
        self.calls.lock().unwrap().iter().filter(|c| c.action == action).cloned().collect()
    }
}

async fn serve(mut sock: impl AsyncRead + AsyncWrite + Unpin, calls: Arc<Mutex<Vec<Call>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if rest.len() >= len {
                break (head.to_string(), rest.to_string());
            }
        }
    };
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let content_type = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-type:")).unwrap_or("");
    assert!(content_type.contains("application/soap+xml"), "{head}");
    let action = between(content_type, "action=\"", "\"").rsplit('/').next().unwrap().to_string();
    // The action in the header is the element in the body.
    let body_start = between(&body, "<s:Body>", "</s:Body>");
    let element = between(body_start, "<", ">").split(['/', ' ']).next().unwrap().to_string();
    assert!(element.ends_with(&action), "action {action} but body {body_start}");
    let authorized = authorized(&body);
    calls.lock().unwrap().push(Call {
        action: action.clone(),
        path,
        body: body.clone(),
        at: Instant::now(),
        authorized,
    });
    let (status, answer) = answer(&action, &body);
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:ter="http://www.onvif.org/ver10/error"><SOAP-ENV:Body>{answer}</SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    );
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/soap+xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{envelope}",
        envelope.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    // A TLS close_notify, so the client sees a clean end rather than a truncated stream.
    let _ = sock.shutdown().await;
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let Some((_, rest)) = s.split_once(start) else { return "" };
    rest.split_once(end).map_or(rest, |(v, _)| v)
}

fn device_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + SKEW_SECS
}

fn fault(code: &str, reason: &str) -> (u16, String) {
    (
        400,
        format!(
            "<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>{code}</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang=\"en\">{reason}</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>"
        ),
    )
}

/// `2025-08-15T10:00:00Z` → Unix seconds (days from civil, as in panelcam's util, re-derived).
fn unix(created: &str) -> Option<i64> {
    let n = |a: usize, b: usize| created.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (h, mi, s) = (n(11, 13)?, n(14, 16)?, n(17, 19)?);
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Checks the UsernameToken as a camera does: the user, the digest over the configured
/// password, and `Created` within 30 s of the device's own clock.
fn authorized(body: &str) -> bool {
    let user = between(body, "<wsse:Username>", "</");
    let digest = between(body, "#PasswordDigest\">", "</");
    let nonce = B64.decode(between(body, "#Base64Binary\">", "</")).unwrap_or_default();
    let created = between(body, "<wsu:Created>", "</");
    let mut h = Sha1::new();
    h.update(&nonce);
    h.update(created.as_bytes());
    h.update(PASSWORD.as_bytes());
    let fresh = unix(created).is_some_and(|t| (t - device_now()).abs() <= 30);
    user == USER && nonce.len() == 16 && fresh && digest == B64.encode(h.finalize())
}

fn answer(action: &str, body: &str) -> (u16, String) {
    if action == "GetSystemDateAndTime" {
        let t = device_now();
        let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        // civil_from_days
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        return (
            200,
            format!(
                "<tds:GetSystemDateAndTimeResponse xmlns:tds=\"d\"><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{y}</tt:Year><tt:Month>{m}</tt:Month><tt:Day>{d}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            ),
        );
    }
    if !authorized(body) {
        return fault("ter:NotAuthorized", "Sender not Authorized");
    }
    if action == "GetCapabilities" {
        // The reported host is unreachable on purpose: only the path may be used.
        return (
            200,
            "<tds:GetCapabilitiesResponse xmlns:tds=\"d\"><tds:Capabilities><tt:PTZ><tt:XAddr>http://10.255.0.1/onvif/ptz_service</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>".into(),
        );
    }
    if between(body, "<tptz:ProfileToken>", "</") != PROFILE {
        return fault("ter:NoProfile", "no such profile");
    }
    match action {
        "ContinuousMove" | "Stop" | "GotoPreset" => (200, format!("<tptz:{action}Response/>")),
        "SetPreset" => (200, "<tptz:SetPresetResponse><tptz:PresetToken>tok-42</tptz:PresetToken></tptz:SetPresetResponse>".into()),
        "GetPresets" => (
            200,
            "<tptz:GetPresetsResponse><tptz:Preset token=\"Preset_A\"><tt:Name>Gate</tt:Name></tptz:Preset><tptz:Preset token=\"Preset_B\"><tt:Name>Yard &amp; dock</tt:Name></tptz:Preset></tptz:GetPresetsResponse>".into(),
        ),
        _ => fault("ter:ActionNotSupported", "unknown action"),
    }
}

pub fn ptz_section(url: &str, password: &str) -> Value {
    json!({"ptz": {"enabled": true, "protocol": "onvif", "onvif_url": url, "username": USER,
                   "password": password, "profile_token": PROFILE}})
}

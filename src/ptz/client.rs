//! One SOAP POST over a fresh HTTP/1.1 connection (hyper's client connection on a tokio
//! socket). ONVIF calls are rare (an operator pressing a button), so no pool: a connection
//! per call costs a handshake on the LAN and leaves nothing to go stale on a camera that
//! reboots. Only `http://` for now; TLS would cost a TLS stack in the binary.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::PtzError;
use super::soap::SOAP_CONTENT_TYPE;
use super::xml::MAX_XML;

/// An `http://host[:port]/path` URL, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` as given (a bracketed IPv6 address stays bracketed), with the port.
    pub authority: String,
    pub path: String,
}

impl HttpUrl {
    /// Parses `url`; the error names the setting `field` (e.g. `ptz.onvif_url`).
    pub fn parse(url: &str, field: &str) -> Result<HttpUrl, PtzError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(PtzError::Config(format!(
                "{field}: https:// is not supported yet; use the camera's http:// ONVIF address, got \"{}\"",
                shown(url)
            )));
        }
        let Some(rest) = url.get(..7).filter(|s| s.eq_ignore_ascii_case("http://")).and_then(|_| url.get(7..)) else {
            return Err(PtzError::Config(format!(
                "{field}: expected http://<ip>:<port>/onvif/device_service, got \"{}\"",
                shown(url)
            )));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        // User info in the URL would put a password where we do not treat it as one.
        if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
            return Err(PtzError::Config(format!(
                "{field}: expected http://<ip>:<port>/... without user or password (use ptz.username and ptz.password), got \"{}\"",
                shown(url)
            )));
        }
        let has_port = match authority.rsplit_once(']') {
            Some((_, after)) => after.starts_with(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port { authority.to_string() } else { format!("{authority}:80") };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        Ok(HttpUrl { authority, path })
    }
}

/// The start of a URL for messages, without any user info.
fn shown(url: &str) -> String {
    let url = match url.split_once('@') {
        Some((_, host)) => host,
        None => url,
    };
    url.chars().take(120).collect()
}

/// POSTs `envelope` with the SOAP `action`, and returns the HTTP status and body. The whole
/// exchange (connect, send, read) is bounded by `timeout`.
pub async fn post(url: &HttpUrl, action: &str, envelope: String, timeout: Duration) -> Result<(u16, Bytes), PtzError> {
    match tokio::time::timeout(timeout, exchange(url, action, envelope)).await {
        Ok(r) => r,
        Err(_) => Err(PtzError::Timeout(format!(
            "the camera's ONVIF service at {} did not answer within {} s",
            url.authority,
            timeout.as_secs_f64()
        ))),
    }
}

async fn exchange(url: &HttpUrl, action: &str, envelope: String) -> Result<(u16, Bytes), PtzError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        PtzError::Unreachable(format!("the camera's ONVIF service at {}: {e}", url.authority))
    };
    let stream = TcpStream::connect(url.authority.as_str()).await.map_err(|e| unreachable(&e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(&e))?;
    // The connection task ends when the exchange is done or the caller's timeout drops us.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let _abort = AbortOnDrop(driver);
    let req = Request::post(url.path.as_str())
        .header(HOST, url.authority.as_str())
        // SOAP 1.2 carries the action in the content type.
        .header(CONTENT_TYPE, format!("{SOAP_CONTENT_TYPE}; action=\"{action}\""))
        .body(Full::new(Bytes::from(envelope)))
        .map_err(|e| unreachable(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| unreachable(&e))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_XML)
        .collect()
        .await
        .map_err(|e| PtzError::Protocol(format!("reading the answer of {}: {e}", url.authority)))?
        .to_bytes();
    Ok((status, body))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_onvif_urls() {
        let u = HttpUrl::parse("http://192.168.1.20/onvif/device_service", "ptz.onvif_url").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("192.168.1.20:80", "/onvif/device_service"));
        let u = HttpUrl::parse("HTTP://[fe80::1]:8080", "f").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("[fe80::1]:8080", "/"));
        let e = HttpUrl::parse("https://cam/onvif", "ptz.onvif_url").unwrap_err().to_string();
        assert!(e.contains("ptz.onvif_url") && e.contains("https"), "{e}");
        let e = HttpUrl::parse("http://admin:pw@cam/onvif", "ptz.onvif_url").unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
        assert!(HttpUrl::parse("rtsp://cam", "f").is_err());
        assert!(HttpUrl::parse("http://é", "f").is_ok());
        assert!(HttpUrl::parse("httpé://x", "f").is_err());
    }
}

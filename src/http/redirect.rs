//! `server.tls.redirect_http_port`: a plain-HTTP listener that sends every request to the same
//! path over HTTPS (308 keeps the method), so a bookmark or a screen typed as `http://` still
//! lands on the panel. It serves nothing else.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Redirects are cheap and nobody needs many at once; more connections wait in the kernel.
const MAX_CONNECTIONS: usize = 256;

/// The host of a `Host` header without its port, only if it is a plausible name or address:
/// anything else must not be echoed into a `Location`.
fn host_of(header: &str) -> Option<String> {
    if let Some(v6) = header.strip_prefix('[') {
        let (addr, _) = v6.split_once(']')?;
        let ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return ok.then(|| format!("[{addr}]"));
    }
    let host = header.split(':').next()?;
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| host.to_string())
}

/// The `Location` for a request: same host (or `fallback_host` when the request names none
/// usable), the HTTPS port, the same path and query.
pub fn location(host_header: Option<&str>, fallback_host: &str, https_port: u16, path_and_query: &str) -> String {
    let host = host_header.and_then(host_of).unwrap_or_else(|| fallback_host.to_string());
    let path = if path_and_query.starts_with('/') { path_and_query } else { "/" };
    if https_port == 443 { format!("https://{host}{path}") } else { format!("https://{host}:{https_port}{path}") }
}

fn redirect(req: &Request<Incoming>, fallback_host: &str, https_port: u16) -> Response<Full<Bytes>> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let to = location(host, fallback_host, https_port, pq);
    let mut resp = Response::new(Full::new(Bytes::from_static(b"HTTPS only; see Location\n")));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let headers = resp.headers_mut();
    if let Ok(v) = to.parse() {
        headers.insert(LOCATION, v);
    }
    headers.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    super::security::apply_common(headers);
    resp
}

pub async fn serve(listener: TcpListener, fallback_host: String, https_port: u16, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let fallback_host: Arc<str> = fallback_host.into();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue; }
            },
            _ = shutdown.changed() => return,
        };
        let fallback_host = fallback_host.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let resp = redirect(&req, &fallback_host, https_port);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_host_and_path_and_changes_the_port() {
        assert_eq!(location(Some("panel:8081"), "p", 8443, "/cam1?x=1"), "https://panel:8443/cam1?x=1");
        assert_eq!(location(Some("[fe80::1]:80"), "p", 443, "/"), "https://[fe80::1]/");
        assert_eq!(location(None, "panel-7", 8443, "/a"), "https://panel-7:8443/a");
        // A hostile Host header is not echoed.
        assert_eq!(location(Some("evil.com/@x"), "panel", 8443, "/"), "https://panel:8443/");
        assert_eq!(location(Some("a\r\nSet-Cookie: x"), "panel", 8443, "/"), "https://panel:8443/");
        assert_eq!(location(Some("[zz]"), "panel", 8443, "*"), "https://panel:8443/");
    }

    proptest! {
        #[test]
        fn any_host_header_gives_a_valid_header_value(host in ".{0,80}", pq in ".{0,80}") {
            let l = location(Some(&host), "panel", 8443, &pq);
            prop_assert!(l.starts_with("https://"));
            prop_assert!(!l.contains(['\r', '\n']) || pq.contains(['\r', '\n']));
        }
    }
}

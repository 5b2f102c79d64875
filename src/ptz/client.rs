//! One SOAP POST over a fresh HTTP/1.1 connection (hyper's client connection on a tokio
//! socket, inside TLS for `https://`: the same exchange either way). ONVIF calls are rare (an
//! operator pressing a button), so no pool: a connection per call costs a handshake on the LAN
//! (a TLS one too, a few milliseconds) and leaves nothing to go stale on a camera that reboots.
//! TLS is rustls with the ring provider, the binary's one TLS stack (`src/tls`); what the
//! camera's certificate is checked against is `ptz::tls`'s business.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::error::PtzError;
use super::soap::SOAP_CONTENT_TYPE;
use super::tls::CameraTls;
use super::url::OnvifUrl;
use super::xml::MAX_XML;

/// POSTs `envelope` with the SOAP `action`, and returns the HTTP status and body. `tls` is the
/// check of the camera's certificate, required for an `https://` URL. The whole exchange
/// (connect, handshake, send, read) is bounded by `timeout`.
pub async fn post(
    url: &OnvifUrl,
    tls: Option<&CameraTls>,
    action: &str,
    envelope: String,
    timeout: Duration,
) -> Result<(u16, Bytes), PtzError> {
    match tokio::time::timeout(timeout, connect_and_exchange(url, tls, action, envelope)).await {
        Ok(r) => r,
        Err(_) => Err(PtzError::Timeout(format!(
            "the camera's ONVIF service at {} did not answer within {} s",
            url.authority,
            timeout.as_secs_f64()
        ))),
    }
}

fn unreachable(url: &OnvifUrl, e: &dyn std::fmt::Display) -> PtzError {
    PtzError::Unreachable(format!("the camera's ONVIF service at {}: {e}", url.authority))
}

async fn connect_and_exchange(
    url: &OnvifUrl,
    tls: Option<&CameraTls>,
    action: &str,
    envelope: String,
) -> Result<(u16, Bytes), PtzError> {
    let stream = TcpStream::connect(url.authority.as_str()).await.map_err(|e| unreachable(url, &e))?;
    let _ = stream.set_nodelay(true);
    match (url.tls, tls) {
        (false, _) => exchange(stream, url, action, envelope).await,
        (true, Some(tls)) => exchange(tls.connect(url, stream).await?, url, action, envelope).await,
        // Never plain HTTP to an https:// address: the session always brings its CameraTls.
        (true, None) => Err(PtzError::Config(format!(
            "ptz.onvif_url: {} is https:// but no TLS settings were prepared for it",
            url.authority
        ))),
    }
}

/// The HTTP/1.1 exchange over `io`, plain TCP or TLS.
async fn exchange<S>(io: S, url: &OnvifUrl, action: &str, envelope: String) -> Result<(u16, Bytes), PtzError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let unreachable = |e: &dyn std::fmt::Display| unreachable(url, e);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| unreachable(&e))?;
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

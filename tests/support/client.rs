//! Small real clients for the end-to-end tests: HTTP/1.1 over a raw socket, WebSocket via
//! tungstenite, and the control WebSocket's message format.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A one-shot HTTP/1.1 request over a fresh connection (`Connection: close`).
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    exchange(s, port, method, path, headers, body).await
}

/// The same over TLS, trusting what `tls` trusts; the server is named "127.0.0.1".
pub async fn https_request(
    tls: &std::sync::Arc<rustls::ClientConfig>,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let s = tls_connect(tls, port).await?;
    exchange(s, port, method, path, headers, body).await
}

/// A TLS connection to 127.0.0.1:`port`.
pub async fn tls_connect(
    tls: &std::sync::Arc<rustls::ClientConfig>,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS: {e}"))
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    // A server may answer before the body is all sent (413) and close: like browsers and
    // curl, read what it said before calling the write failure an error.
    let written = s.write_all(&bytes).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .map_err(|_| "response timed out".to_string())?;
    // A TLS peer that closes without close_notify still delivered the whole response.
    if let Err(e) = read
        && (raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof)
    {
        return Err(written.err().map_or(e.to_string(), |w| format!("{w} (then reading: {e})")));
    }
    parse_response(&raw).map_err(|e| written.err().map_or(e.clone(), |w| format!("{w} ({e})")))
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).map_err(|e| e.to_string())?.trim(), 16)
            .map_err(|e| e.to_string())?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub async fn ws_connect(url: &str) -> Result<Ws, String> {
    tokio_tungstenite::connect_async(url).await.map(|(ws, _)| ws).map_err(|e| e.to_string())
}

pub type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A WebSocket over TLS (`wss://127.0.0.1:<port><path>`).
pub async fn wss_connect(tls: &std::sync::Arc<rustls::ClientConfig>, port: u16, path: &str) -> Result<Wss, String> {
    let stream = tls_connect(tls, port).await?;
    let url = format!("wss://127.0.0.1:{port}{path}");
    tokio_tungstenite::client_async(url, stream).await.map(|(ws, _)| ws).map_err(|e| e.to_string())
}

/// The next binary message, skipping anything else; `None` on close or timeout.
pub async fn next_binary<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, timeout: Duration) -> Option<Bytes>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return Some(b),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Width and height of a JPEG; panics if it is not a decodable JPEG.
pub fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    d.decode().unwrap_or_else(|e| panic!("not a valid JPEG ({} bytes): {e}", jpeg.len()));
    let info = d.info().unwrap();
    (info.width, info.height)
}

/// One message of the control WebSocket.
#[derive(Debug)]
pub enum ControlMsg {
    Frame { ts: i64, jpeg: Bytes },
    Reply(Value),
}

/// Parses `[0x00][i64 LE][JPEG]` or `[0x01][JSON]`; panics on anything else.
pub fn parse_control(b: &[u8]) -> ControlMsg {
    match b.first() {
        Some(0x00) if b.len() > 9 => ControlMsg::Frame {
            ts: i64::from_le_bytes(b[1..9].try_into().unwrap()),
            jpeg: Bytes::copy_from_slice(&b[9..]),
        },
        Some(0x01) => ControlMsg::Reply(serde_json::from_slice(&b[1..]).expect("reply is JSON")),
        _ => panic!("unexpected control message {:?}", &b[..b.len().min(16)]),
    }
}

pub async fn next_control(ws: &mut Ws, timeout: Duration) -> Option<ControlMsg> {
    next_binary(ws, timeout).await.map(|b| parse_control(&b))
}

/// Sends a command and returns its reply, collecting the frames that arrive meanwhile.
pub async fn command(ws: &mut Ws, cmd: Value) -> (Value, Vec<(i64, Bytes)>) {
    use futures_util::SinkExt;
    ws.send(Message::Text(cmd.to_string().into())).await.unwrap();
    let mut frames = Vec::new();
    loop {
        match next_control(ws, Duration::from_secs(10)).await {
            Some(ControlMsg::Reply(r)) => return (r, frames),
            Some(ControlMsg::Frame { ts, jpeg }) => frames.push((ts, jpeg)),
            None => panic!("no reply to {cmd}"),
        }
    }
}

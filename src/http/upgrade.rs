//! The WebSocket handshake on a hyper request: answer `101 Switching Protocols` and hand the
//! upgraded connection to a task. The task keeps the connection's slot (see `http::serve`),
//! so a WebSocket counts against the connection limit for its whole life.

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::ConnSlot;
use super::response::{self, Resp};
use crate::live::Socket;

pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token))))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// Per-connection buffers sized for a panel: clients only send small JSON commands, and each
/// outgoing JPEG is written straight through (no write-behind buffer to grow per client).
fn socket_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 4096;
    c.write_buffer_size = 0;
    c.max_write_buffer_size = 16 << 20;
    c.max_message_size = Some(64 << 10);
    c.max_frame_size = Some(64 << 10);
    c
}

/// Validates the handshake and returns the 101 response; `serve` gets the socket once the
/// client has received it.
pub fn accept<F, Fut>(req: &mut Request<Incoming>, serve: F) -> Resp
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let key = match req.headers().get(SEC_WEBSOCKET_KEY) {
        Some(k) if req.headers().get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13") => {
            derive_accept_key(k.as_bytes())
        }
        _ => {
            return response::error(
                StatusCode::BAD_REQUEST,
                "WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            );
        }
    };
    let slot = req.extensions_mut().remove::<std::sync::Arc<ConnSlot>>();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(socket_config())).await;
                serve(socket).await;
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(super::body::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

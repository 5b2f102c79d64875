//! Live viewing over WebSocket: the MJPEG stream and the control channel (replay). The
//! handshake is `http`'s; this module only speaks the protocols on an upgraded connection.

pub mod command;
pub mod control;
pub mod stream;
pub mod video;

/// An accepted WebSocket.
pub type Socket = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// Close code for "this camera is gone or restarting": 1001 (going away) when removed,
/// 1012 (service restart) otherwise; the reason text says which.
pub fn close_code(reason: &str) -> u16 {
    if reason.contains("removed") { 1001 } else { 1012 }
}

/// Resolves once the camera has stopped (or is gone).
pub async fn until_stopped(stopped: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

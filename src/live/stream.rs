//! The live MJPEG WebSocket: one binary message per JPEG, starting with the latest frame at
//! once so a page shows a picture immediately, then every newer frame the client can take.
//!
//! A client that reads slowly is never queued for: while a send is pending, newer frames
//! replace each other in the bus's watch slot and the client gets the newest one next. So a
//! client that never reads costs one frame in its socket buffer, and nobody else waits.
//! When the camera stops (removed, or replaced by a changed camera file) the socket is
//! closed with the reason, so the page reconnects instead of waiting for frames that never
//! come.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::{Socket, close_code};
use crate::camera::Camera;
use crate::camera::stats::ClientGuard;

/// A client that has not taken a single frame for this long is disconnected: its TCP
/// window has been full for that whole time, it is gone or hopelessly slow.
const STUCK_CLIENT: Duration = Duration::from_secs(30);

pub async fn serve_live(camera: Arc<Camera>, _viewer: ClientGuard, mut socket: Socket) {
    let id = camera.id();
    tracing::debug!(camera = %id, clients = camera.stats.clients.load(std::sync::atomic::Ordering::Relaxed), "live viewer connected");
    // While this viewer is here, the camera makes JPEGs (it may not for H.264 viewers only).
    let _jpegs = camera.bus.want_jpegs();
    let mut frames = camera.bus.watch();
    let mut stopped = camera.stopped();
    let first = frames.borrow_and_update().clone();
    if let Some(frame) = first
        && send(&mut socket, frame.jpeg).await.is_err()
    {
        return;
    }
    let mut close = None;
    loop {
        tokio::select! {
            changed = frames.changed() => {
                if changed.is_err() {
                    break;
                }
                let Some(frame) = frames.borrow_and_update().clone() else { continue };
                if send(&mut socket, frame.jpeg).await.is_err() {
                    break;
                }
            }
            _ = super::until_stopped(&mut stopped) => {
                close = Some(camera.stop_reason());
                break;
            }
            incoming = socket.next() => match incoming {
                // Pings are answered by tungstenite on the next send/flush; text is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let frame = close.map(|reason| CloseFrame { code: close_code(&reason).into(), reason: reason.into() });
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(frame)).await;
    tracing::debug!(camera = %id, "live viewer disconnected");
}

async fn send(socket: &mut Socket, jpeg: bytes::Bytes) -> Result<(), ()> {
    match tokio::time::timeout(STUCK_CLIENT, socket.send(Message::Binary(jpeg))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

//! The live H.264/H.265 WebSocket (`/<camera>/video`): the camera's own coded pictures as
//! fMP4, for Media Source Extensions or WebCodecs in the page. Nothing is decoded here.
//!
//! Protocol (server → page):
//! - text `{"type":"init","codec","width","height","description"}` (description: the
//!   avcC/hvcC payload in base64, what WebCodecs wants), then one binary init segment
//!   (`ftyp`+`moov`). Again whenever the stream's parameters change.
//! - binary `moof`+`mdat`, one access unit each, 90 kHz decode times that never go back.
//!   A new viewer gets the current GOP at once (a picture without waiting for a keyframe).
//! - text `{"type":"unavailable","reason"}` and close code 4415 when this camera has no
//!   stream panelcam can pass through; the page falls back to MJPEG.
//!
//! A viewer that falls behind (its socket is slow, the ring overtook it) skips to the next
//! keyframe: it sees a jump, never a growing delay, and nobody else waits for it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::{Socket, close_code};
use crate::camera::Camera;
use crate::camera::stats::ClientGuard;
use crate::media::hub::{LiveTrack, Unit};

/// Close code when the camera has no passthrough stream (like HTTP 415).
pub const UNAVAILABLE: u16 = 4415;
/// A client that has not taken a message for this long is gone or hopelessly slow.
const STUCK_CLIENT: Duration = Duration::from_secs(30);

pub fn init_message(track: &LiveTrack) -> String {
    let t = &track.track;
    serde_json::json!({
        "type": "init",
        "codec": t.codec_string,
        "width": t.width,
        "height": t.height,
        "description": base64::engine::general_purpose::STANDARD.encode(&t.description),
    })
    .to_string()
}

/// Where a viewer is: which parameters it was given, and whether it waits for a keyframe.
struct Viewer {
    generation: Option<u64>,
    need_keyframe: bool,
}

impl Viewer {
    /// The messages this unit becomes for this viewer (none while it waits for a keyframe).
    fn messages(&mut self, unit: &Unit, out: &mut Vec<Message>) {
        let fresh_track = self.generation != Some(unit.track.generation);
        if fresh_track || self.need_keyframe {
            if !unit.au.keyframe {
                return;
            }
            self.need_keyframe = false;
        }
        if fresh_track {
            out.push(Message::Text(init_message(&unit.track).into()));
            out.push(Message::Binary(unit.track.init.clone()));
            self.generation = Some(unit.track.generation);
        }
        out.push(Message::Binary(unit.fragment().clone()));
    }
}

pub async fn serve_video(camera: Arc<Camera>, _viewer: ClientGuard, mut socket: Socket) {
    let id = camera.id();
    let Some(hub) = camera.hub() else {
        let reason = camera.passthrough_unavailable();
        let text = serde_json::json!({"type": "unavailable", "reason": reason}).to_string();
        let _ = socket.send(Message::Text(text.into())).await;
        let frame = CloseFrame { code: UNAVAILABLE.into(), reason: reason.into() };
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(Some(frame))).await;
        return;
    };
    tracing::debug!(camera = %id, "H.264 viewer connected");
    let mut sub = hub.subscribe();
    let mut stopped = camera.stopped();
    let mut viewer = Viewer { generation: None, need_keyframe: true };
    let mut out = Vec::new();
    for unit in &sub.gop {
        viewer.messages(unit, &mut out);
    }
    let mut close = None;
    loop {
        if !out.is_empty() && send_all(&mut socket, &mut out).await.is_err() {
            break;
        }
        tokio::select! {
            unit = sub.units.recv() => match unit {
                Ok(unit) => viewer.messages(&unit, &mut out),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(camera = %id, missed, "H.264 viewer fell behind; skipping to the next keyframe");
                    viewer.need_keyframe = true;
                }
                Err(RecvError::Closed) => break,
            },
            _ = super::until_stopped(&mut stopped) => {
                close = Some(camera.stop_reason());
                break;
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let frame = close.map(|reason| CloseFrame { code: close_code(&reason).into(), reason: reason.into() });
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(frame)).await;
    tracing::debug!(camera = %id, "H.264 viewer disconnected");
}

/// Sends (and empties) `out` with one flush at the end.
async fn send_all(socket: &mut Socket, out: &mut Vec<Message>) -> Result<(), ()> {
    let send = async {
        for m in out.drain(..) {
            socket.feed(m).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(STUCK_CLIENT, send).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

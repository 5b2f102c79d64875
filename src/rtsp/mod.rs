//! panelcam's own RTSP/RTP client (issue 11): DESCRIBE, SETUP, PLAY over TCP (interleaved)
//! or UDP, Basic and Digest authentication, and RFC 6184 / RFC 7798 depayloading that hands
//! out each picture as soon as its last packet (the marker bit) arrives. Why not retina:
//! docs/media-router.md.
//!
//! Interface (filled in by the RTSP work): [`run`] drives one session until it fails or
//! `stop` turns true, reporting [`crate::media::Event`]s in order.

use std::time::Duration;

use crate::config::Transport;
use crate::media::Event;

/// One session's settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// `rtsp://[user:pass@]host[:port]/path`. Holds credentials: never log it.
    pub url: String,
    pub transport: Transport,
    /// No media for this long ends the session with [`Error::Timeout`].
    pub data_timeout: Duration,
}

/// Why a session ended.
#[derive(Debug)]
pub enum Error {
    /// The camera offers nothing panelcam can depayload (no H.264/H.265 video track):
    /// the camera goes through FFmpeg instead. The text says what was offered.
    Unsupported(String),
    /// Everything else (connection, authentication, protocol, timeout); the text names the
    /// step and never holds credentials.
    Failed(String),
}

/// Runs one RTSP session; returns when it ends or when `stop` changes to `true` (`Ok`).
pub async fn run(
    _options: &Options,
    _on_event: &mut (dyn FnMut(Event) + Send),
    _stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    Err(Error::Unsupported("not implemented yet".into()))
}

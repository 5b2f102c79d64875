//! panelcam's own RTSP/RTP client (issue 11): DESCRIBE, SETUP, PLAY over TCP (interleaved)
//! or UDP, Basic and Digest authentication, and RFC 6184 / RFC 7798 depayloading that hands
//! out each picture as soon as its last packet (the marker bit) arrives. Why not retina:
//! docs/media-router.md.
//!
//! [`run`] drives one session until it fails or `stop` turns true, reporting
//! [`crate::media::Event`]s in order. The parts, each pure and tested alone except the two
//! that do I/O:
//!
//! - `url`: the camera URL, credentials split off; `auth`: Basic and Digest answers.
//! - `message`: RTSP requests out; responses and interleaved RTP in, from one byte stream.
//! - `sdp`: the H.264/H.265 track of a DESCRIBE answer.
//! - `rtp`, `depay`, `stream`: RTP packets to pictures to [`crate::media::Event`]s.
//! - `conn` (the control connection) and `session` (the RTSP exchange and receive loop): I/O.

pub mod auth;
pub mod conn;
pub mod depay;
pub mod message;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod url;

use std::fmt;
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Runs one RTSP session; returns when it ends or when `stop` changes to `true` (`Ok`), also
/// when the sender of `stop` is dropped: nobody is left to stop it then. Stopping sends
/// TEARDOWN and waits at most a second for its answer.
pub async fn run(
    options: &Options,
    on_event: &mut (dyn FnMut(Event) + Send),
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    session::run(options, on_event, stop).await
}

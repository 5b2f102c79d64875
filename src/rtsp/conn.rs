//! The RTSP control connection: requests with CSeq, Session and Authorization filled in, a
//! 401 answered once with the credentials, and every step bounded in time. Interleaved
//! RTP that arrives while a request waits for its answer is kept for the stream (cameras may
//! start sending before PLAY's answer).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Error;
use super::auth::{self, Challenge};
use super::message::{Demuxer, Frame, Message, request, shown};
use super::url::{Credentials, RtspUrl};

/// Connecting, and each request's answer: a camera that takes longer is not going to work.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of interleaved packets kept while waiting for an answer; more are dropped. A
/// second of a 8 Mbit/s stream: more than any camera sends before PLAY's answer.
const MAX_EARLY_BYTES: usize = 1 << 20;

pub struct Conn {
    stream: TcpStream,
    demux: Demuxer,
    cseq: u32,
    credentials: Option<Credentials>,
    auth: Option<Challenge>,
    /// Requests sent with the current Digest nonce (RFC 2617 `nc`).
    nonce_count: u32,
    cnonce: String,
    /// `host:port` for messages.
    pub authority: String,
    pub peer: SocketAddr,
    /// The `Session` id once SETUP gave one.
    pub session: Option<String>,
    /// Interleaved packets that came while a request waited for its answer.
    early: Vec<(u8, Bytes)>,
    early_bytes: usize,
}

impl Conn {
    pub async fn connect(url: &RtspUrl) -> Result<Conn, Error> {
        let authority = if url.host.contains(':') {
            format!("[{}]:{}", url.host, url.port)
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let fail = |e: &dyn std::fmt::Display| Error::Failed(format!("connecting to {authority}: {e}"));
        let stream = match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(fail(&e)),
            Err(_) => return Err(fail(&format!("no answer within {} s", STEP_TIMEOUT.as_secs()))),
        };
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().map_err(|e| fail(&e))?;
        let mut cnonce = [0u8; 8];
        let _ = getrandom::fill(&mut cnonce);
        Ok(Conn {
            stream,
            demux: Demuxer::default(),
            cseq: 0,
            credentials: url.credentials.clone(),
            auth: None,
            nonce_count: 0,
            cnonce: crate::store::segment::hex(&cnonce),
            authority,
            peer,
            session: None,
            early: Vec::new(),
            early_bytes: 0,
        })
    }

    /// The interleaved packets that came before PLAY's answer; later ones are not kept.
    pub fn take_early(&mut self) -> Vec<(u8, Bytes)> {
        self.early_bytes = MAX_EARLY_BYTES;
        std::mem::take(&mut self.early)
    }

    /// Sends a request without waiting for its answer (keep-alives, TEARDOWN); returns its CSeq.
    pub async fn send(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Result<u32, Error> {
        self.cseq += 1;
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        let authorization = match (&self.auth, &self.credentials) {
            (Some(ch), Some(c)) => {
                self.nonce_count += 1;
                Some(auth::authorization(ch, c, method, url, self.nonce_count, &self.cnonce))
            }
            _ => None,
        };
        if let Some(a) = &authorization {
            all.push(("Authorization", a));
        }
        if let Some(s) = &self.session {
            all.push(("Session", s));
        }
        let bytes = request(method, url, self.cseq, &all);
        match tokio::time::timeout(STEP_TIMEOUT, self.stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(self.cseq),
            Ok(Err(e)) => Err(Error::Failed(format!("sending {method} to {}: {e}", self.authority))),
            Err(_) => Err(Error::Failed(format!("sending {method} to {}: blocked for 10 s", self.authority))),
        }
    }

    /// Sends a request and waits for its answer, answering a 401 once with the credentials.
    /// Any status comes back; [`ok`] turns the unwanted ones into errors.
    pub async fn request(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Message, Error> {
        let mut retried = false;
        loop {
            let cseq = self.send(method, url, headers).await?;
            let answer = self.answer(method, cseq).await?;
            if answer.status != Some(401) || retried {
                if answer.status == Some(401) {
                    return Err(Error::Failed(format!(
                        "{method} answered 401 Unauthorized: the camera refused the user name or password"
                    )));
                }
                return Ok(answer);
            }
            if self.credentials.is_none() {
                return Err(Error::Failed(format!(
                    "{method} answered 401 Unauthorized: the camera needs a user name and password in its URL"
                )));
            }
            let challenge = auth::choose(answer.headers_named("WWW-Authenticate")).map_err(|offered| {
                Error::Failed(format!("{method} answered 401 and asks for authentication panelcam lacks: {offered}"))
            })?;
            self.auth = Some(challenge);
            self.nonce_count = 0;
            retried = true;
        }
    }

    /// Waits for the answer with `cseq`; other answers (late keep-alives) are skipped.
    async fn answer(&mut self, method: &str, cseq: u32) -> Result<Message, Error> {
        let waited = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                match self.read_frame().await? {
                    Frame::Interleaved { channel, payload } => {
                        if self.early_bytes + payload.len() <= MAX_EARLY_BYTES {
                            self.early_bytes += payload.len();
                            self.early.push((channel, payload));
                        }
                    }
                    // An answer without CSeq is taken as ours: only one request waits at a time.
                    Frame::Message(m) if m.status.is_some() && m.cseq().is_none_or(|c| c == cseq) => return Ok(m),
                    Frame::Message(_) => {}
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            Err(Error::Failed(format!(
                "{method}: no answer from {} within {} s",
                self.authority,
                STEP_TIMEOUT.as_secs()
            )))
        })
    }

    /// The next frame from the camera. Cancel-safe: what was read stays in the demuxer.
    pub async fn read_frame(&mut self) -> Result<Frame, Error> {
        loop {
            match self.demux.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(Error::Failed(format!("{} sent {e}", self.authority))),
            }
            let buf = self.demux.buffer();
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(32 << 10);
            }
            match self.stream.read_buf(buf).await {
                Ok(0) => return Err(Error::Failed(format!("{} closed the RTSP connection", self.authority))),
                Ok(_) => {}
                Err(e) => return Err(Error::Failed(format!("reading from {}: {e}", self.authority))),
            }
        }
    }
}

/// `Ok` for a 2xx answer, else an error naming the step and what came.
pub fn ok(method: &str, answer: Message) -> Result<Message, Error> {
    match answer.status {
        Some(200..=299) => Ok(answer),
        Some(code) => Err(Error::Failed(format!("{method} answered {code} {}", shown(&answer.reason)))),
        None => Err(Error::Failed(format!("{method}: the camera sent a request instead of an answer"))),
    }
}

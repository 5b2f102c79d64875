//! RTSP/1.0 framing, pure: requests out, and in the other direction one byte stream that
//! carries both RTSP messages and, over TCP, `$`-framed RTP/RTCP (RFC 2326 §10.12). The
//! [`Demuxer`] takes bytes as they come and hands out whole [`Frame`]s; it never needs more
//! than [`MAX_HEAD`] + [`MAX_BODY`] bytes, so a hostile camera cannot grow it unbounded.

use bytes::{Buf, Bytes, BytesMut};

/// The longest status line plus headers we accept. Real answers are a few hundred bytes.
pub const MAX_HEAD: usize = 64 << 10;
/// The longest body (an SDP, a GET_PARAMETER answer). Real SDPs are 1-2 KB.
pub const MAX_BODY: usize = 64 << 10;

/// An RTSP message from the camera: a response, or (rarely) a request of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `None` for a request from the camera (`ANNOUNCE`, `GET_PARAMETER`...): we ignore those.
    pub status: Option<u16>,
    /// The reason phrase of a response, or the method of a request.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Message {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }
}

/// One unit of the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Message),
    /// `$`, channel, 16-bit length, payload: RTP on even channels, RTCP on odd ones.
    Interleaved {
        channel: u8,
        payload: Bytes,
    },
}

/// Incremental splitter of the camera's byte stream into [`Frame`]s.
#[derive(Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    /// Where the next read should put its bytes.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed. An error leaves the stream
    /// unusable: framing is lost and the connection has to go.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let Some(&first) = self.buf.first() else { return Ok(None) };
        if first == b'$' {
            let Some((&[_, channel, hi, lo], rest)) = self.buf.split_first_chunk::<4>() else { return Ok(None) };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if rest.len() < len {
                return Ok(None);
            }
            self.buf.advance(4);
            let payload = self.buf.split_to(len).freeze();
            return Ok(Some(Frame::Interleaved { channel, payload }));
        }
        let Some((head_len, sep_len)) = head_end(&self.buf) else {
            if self.buf.len() > MAX_HEAD {
                return Err(format!("an RTSP message head longer than {} KiB", MAX_HEAD >> 10));
            }
            return Ok(None);
        };
        if head_len > MAX_HEAD {
            return Err(format!("an RTSP message head longer than {} KiB", MAX_HEAD >> 10));
        }
        let head = self.buf.get(..head_len).unwrap_or_default();
        let (status, reason, headers) = parse_head(head)?;
        let body_len = match headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Content-Length")) {
            Some((_, v)) => v.trim().parse::<usize>().map_err(|_| format!("Content-Length \"{}\"", shown(v)))?,
            None => 0,
        };
        if body_len > MAX_BODY {
            return Err(format!("a body of {body_len} bytes (at most {MAX_BODY} accepted)"));
        }
        let total = head_len + sep_len + body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(head_len + sep_len);
        let body = self.buf.split_to(body_len).freeze();
        Ok(Some(Frame::Message(Message { status, reason, headers, body })))
    }
}

/// The length of the head and of the blank line after it (`\r\n\r\n`, or `\n\n` from a
/// sloppy camera), whichever comes first.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let window = buf.get(..MAX_HEAD + 4).unwrap_or(buf);
    let crlf = memchr::memmem::find(window, b"\r\n\r\n").map(|i| (i, 4));
    let lf = memchr::memmem::find(window, b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

type Head = (Option<u16>, String, Vec<(String, String)>);

fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "an RTSP message head that is not UTF-8".to_string())?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    let (status, reason) = if let Some(rest) = start.strip_prefix("RTSP/") {
        // `RTSP/1.0 200 OK`
        let mut parts = rest.splitn(3, ' ');
        let _version = parts.next();
        let code = parts.next().and_then(|c| c.parse::<u16>().ok()).filter(|c| (100..1000).contains(c));
        let Some(code) = code else {
            return Err(format!("a status line \"{}\"", shown(start)));
        };
        (Some(code), parts.next().unwrap_or_default().to_string())
    } else {
        // A request from the camera: `METHOD url RTSP/1.0`.
        match start.split(' ').collect::<Vec<_>>().as_slice() {
            [method, _, version] if version.starts_with("RTSP/") && !method.is_empty() => (None, method.to_string()),
            _ => return Err(format!("\"{}\" where an RTSP message should start", shown(start))),
        }
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a header line \"{}\"", shown(line)));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok((status, reason, headers))
}

/// Text from the camera in an error message: short and printable.
pub fn shown(s: &str) -> String {
    s.chars().take(80).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A request as bytes. `headers` must not contain CR or LF (callers pass our own values and
/// URLs the URL parser checked).
pub fn request(method: &str, url: &str, cseq: u32, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: panelcam\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(chunks: &[&[u8]]) -> Result<Vec<Frame>, String> {
        let mut d = Demuxer::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        Ok(out)
    }

    const SAMPLE: &[u8] =
        b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n\
        $\x00\x00\x03abc$\x01\x00\x00RTSP/1.0 401 Unauthorized\r\ncseq:3\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n\
        GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n";

    #[test]
    fn splits_messages_and_interleaved_data() {
        let frames = all(&[SAMPLE]).unwrap();
        assert_eq!(frames.len(), 5);
        let Frame::Message(m) = &frames[0] else { panic!() };
        assert_eq!((m.status, m.reason.as_str(), m.cseq()), (Some(200), "OK", Some(2)));
        assert_eq!(m.header("content-type"), Some("application/sdp"));
        assert_eq!(&m.body[..], b"v=0\r\n");
        assert_eq!(frames[1], Frame::Interleaved { channel: 0, payload: Bytes::from_static(b"abc") });
        assert_eq!(frames[2], Frame::Interleaved { channel: 1, payload: Bytes::new() });
        let Frame::Message(m) = &frames[3] else { panic!() };
        assert_eq!((m.status, m.cseq()), (Some(401), Some(3)));
        assert_eq!(m.headers_named("www-authenticate").collect::<Vec<_>>(), ["Basic realm=\"x\""]);
        let Frame::Message(m) = &frames[4] else { panic!() };
        assert_eq!((m.status, m.reason.as_str()), (None, "GET_PARAMETER"));
    }

    #[test]
    fn accepts_bare_newlines() {
        let frames = all(&[b"RTSP/1.0 200 OK\nCSeq: 1\nContent-Length: 2\n\nhi"]).unwrap();
        let Frame::Message(m) = &frames[0] else { panic!() };
        assert_eq!((m.cseq(), &m.body[..]), (Some(1), &b"hi"[..]));
    }

    #[test]
    fn refuses_hostile_input() {
        assert!(all(&[b"HTTP/1.1 200 OK\r\n\r\n"]).is_err());
        assert!(all(&[b"RTSP/1.0 abc OK\r\n\r\n"]).is_err());
        assert!(all(&[b"RTSP/1.0 200 OK\r\nno colon\r\n\r\n"]).is_err());
        assert!(all(&[b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n"]).is_err());
        assert!(all(&[b"RTSP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"]).is_err());
        assert!(all(&[b"RTSP/1.0 200 OK\r\nContent-Length: 70000\r\n\r\n"]).is_err());
        // A head that never ends: refused once past the cap, not buffered forever.
        let endless = vec![b'a'; MAX_HEAD + 10];
        let mut d = Demuxer::default();
        d.push(b"RTSP/1.0 200 OK\r\nX: ");
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&endless);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn writes_requests() {
        let r = request("SETUP", "rtsp://h/cam/stream=0", 3, &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")]);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "SETUP rtsp://h/cam/stream=0 RTSP/1.0\r\nCSeq: 3\r\nUser-Agent: panelcam\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = all(&[&data]);
        }

        #[test]
        fn splitting_changes_nothing(cuts in proptest::collection::vec(0..SAMPLE.len(), 0..8), prefix in "[$R]?") {
            let mut input = prefix.into_bytes();
            input.extend_from_slice(SAMPLE);
            let whole = all(&[&input]);
            let mut cuts = cuts;
            cuts.sort();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&input[at..c.max(at)]);
                at = c.max(at);
            }
            chunks.push(&input[at..]);
            // Errors may be found at a different point, but only if the whole input has one.
            match (whole, all(&chunks)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }

        #[test]
        fn random_frames_round_trip(frames in proptest::collection::vec(
            prop_oneof![
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(c, p)| (Some(c), p)),
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(|p| (None, p)),
            ], 0..10), cut in any::<prop::sample::Index>()) {
            let mut input = Vec::new();
            for (channel, payload) in &frames {
                match channel {
                    Some(c) => {
                        input.extend_from_slice(&[b'$', *c]);
                        input.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                        input.extend_from_slice(payload);
                    }
                    None => {
                        input.extend_from_slice(format!("RTSP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", payload.len()).as_bytes());
                        input.extend_from_slice(payload);
                    }
                }
            }
            let at = if input.is_empty() { 0 } else { cut.index(input.len()) };
            let got = all(&[&input[..at], &input[at..]]).unwrap();
            prop_assert_eq!(got.len(), frames.len());
            for (f, (channel, payload)) in got.iter().zip(&frames) {
                match (f, channel) {
                    (Frame::Interleaved { channel: c, payload: p }, Some(want)) => {
                        prop_assert_eq!(c, want);
                        prop_assert_eq!(&p[..], &payload[..]);
                    }
                    (Frame::Message(m), None) => prop_assert_eq!(&m.body[..], &payload[..]),
                    _ => prop_assert!(false, "wrong frame kind"),
                }
            }
        }
    }
}

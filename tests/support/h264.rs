//! The client side of `/<camera>/video` (live H.264 as fMP4): what a page's player reads,
//! parsed independently of panelcam's writer.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::client::Ws;

#[derive(Debug)]
pub enum VideoMsg {
    /// The text message and the init segment that follows it.
    Init {
        info: Value,
        segment: Bytes,
    },
    Fragment(Fragment),
    /// `{"type":"unavailable"}` then a close: (reason, close code).
    Unavailable {
        reason: String,
        code: Option<u16>,
    },
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub decode_time: u64,
    pub duration: u32,
    pub keyframe: bool,
    /// The mdat payload: the sample in MP4 form.
    pub sample: Bytes,
}

/// The boxes directly inside `data`: (type, payload).
pub fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        assert!(size >= 8 && at + size <= data.len(), "box {:?} of {size} bytes at {at} overruns", kind);
        out.push((kind, &data[at + 8..at + size]));
        at += size;
    }
    assert_eq!(at, data.len(), "trailing bytes after the boxes");
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
    boxes(data).into_iter().find(|(k, _)| k == kind).unwrap_or_else(|| panic!("no {:?} box", kind)).1
}

/// Parses one `moof`+`mdat` with one sample.
pub fn parse_fragment(data: &[u8]) -> Fragment {
    let top = boxes(data);
    assert_eq!(top.len(), 2, "moof + mdat");
    assert_eq!(&top[0].0, b"moof");
    assert_eq!(&top[1].0, b"mdat");
    let traf = child(top[0].1, b"traf");
    let tfdt = child(traf, b"tfdt");
    let decode_time = if tfdt[0] == 1 {
        u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap()))
    };
    let trun = child(traf, b"trun");
    let flags = u32::from_be_bytes([0, trun[1], trun[2], trun[3]]);
    let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
    assert_eq!(count, 1, "one sample per fragment");
    let mut at = 8;
    if flags & 0x1 != 0 {
        at += 4; // data offset
    }
    let mut first_flags = None;
    if flags & 0x4 != 0 {
        first_flags = Some(u32::from_be_bytes(trun[at..at + 4].try_into().unwrap()));
        at += 4;
    }
    let mut duration = 0;
    if flags & 0x100 != 0 {
        duration = u32::from_be_bytes(trun[at..at + 4].try_into().unwrap());
        at += 4;
    }
    if flags & 0x200 != 0 {
        at += 4;
    }
    let sample_flags =
        if flags & 0x400 != 0 { Some(u32::from_be_bytes(trun[at..at + 4].try_into().unwrap())) } else { first_flags };
    let keyframe = sample_flags.map(|f| f & 0x0001_0000 == 0).expect("sample flags");
    Fragment { decode_time, duration, keyframe, sample: Bytes::copy_from_slice(top[1].1) }
}

/// The next message of the video socket, `None` on timeout or an unexpected close.
pub async fn next_video(ws: &mut Ws, timeout: Duration) -> Option<VideoMsg> {
    let deadline = tokio::time::Instant::now() + timeout;
    async fn next(
        ws: &mut Ws,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Result<Message, tokio_tungstenite::tungstenite::Error>>, tokio::time::error::Elapsed> {
        tokio::time::timeout_at(deadline, ws.next()).await
    }
    match next(ws, deadline).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            let info: Value = serde_json::from_str(&t).expect("JSON text message");
            match info["type"].as_str() {
                Some("init") => match next(ws, deadline).await {
                    Ok(Some(Ok(Message::Binary(segment)))) => Some(VideoMsg::Init { info, segment }),
                    other => panic!("an init segment must follow the init message, got {other:?}"),
                },
                Some("unavailable") => {
                    let reason = info["reason"].as_str().unwrap_or_default().to_string();
                    let code = match next(ws, deadline).await {
                        Ok(Some(Ok(Message::Close(Some(f))))) => Some(u16::from(f.code)),
                        _ => None,
                    };
                    Some(VideoMsg::Unavailable { reason, code })
                }
                _ => panic!("unexpected text message {info}"),
            }
        }
        Ok(Some(Ok(Message::Binary(b)))) => Some(VideoMsg::Fragment(parse_fragment(&b))),
        Ok(Some(Ok(_))) => {
            Box::pin(next_video(ws, deadline.saturating_duration_since(tokio::time::Instant::now()))).await
        }
        _ => None,
    }
}

/// The NAL units of an MP4-form sample.
pub fn nal_units(sample: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = sample;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(rest.len() >= 4 + len, "NAL length {len} overruns the sample");
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty());
    out
}

/// Processes whose parent is `parent` and whose name is `name`.
pub fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let ppid: u32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && super::harness::comm(pid) == name {
            out.push(pid);
        }
    }
    out
}

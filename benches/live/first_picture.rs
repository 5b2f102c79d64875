//! Scenario 5: how soon a new live WebSocket shows a picture. A raw client (so nothing of a
//! WebSocket library's own buffering is measured) opens TCP, sends the upgrade request and
//! times the first complete binary message from the end of the `101` response and from the
//! start of the connect.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

pub const TARGET: Target = Target { p50: None, p99: Some(50.0) };
const ATTEMPTS: usize = 100;

pub async fn first_picture() {
    let camera = reference_camera(&[]).await;
    let server = reference_server(&camera).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut after_101, mut after_connect) = (Vec::new(), Vec::new());
    for _ in 0..ATTEMPTS {
        let (a, b) = tokio::time::timeout(Duration::from_secs(10), one(server.port))
            .await
            .expect("first picture within 10 s")
            .unwrap_or_else(|e| panic!("live WebSocket: {e}"));
        after_101.push(a);
        after_connect.push(b);
        // Spread the attempts over the frame interval instead of locking onto one phase.
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    print_latency("first picture on a new WebSocket, after the 101", &after_101, Some(TARGET), "");
    print_latency("first picture on a new WebSocket, after connect start", &after_connect, Some(TARGET), "");
}

/// One connection: (ms from the complete 101 to the first binary message, ms from the
/// connect start to it).
pub async fn one(port: u16) -> Result<(f64, f64), String> {
    let first = first_message(port, "/cam/live", |opcode, _| opcode == 2).await?;
    if !first.data.starts_with(&[0xFF, 0xD8]) {
        return Err("first message is not a JPEG".into());
    }
    Ok((first.after_101, first.after_connect))
}

/// The first message a raw WebSocket client was waiting for.
pub struct FirstMessage {
    /// ms from the complete `101` response to the message's last byte.
    pub after_101: f64,
    /// ms from the start of the TCP connect to it.
    pub after_connect: f64,
    /// Wall-clock ms (`unix_ms`) when it was complete.
    pub done_unix_ms: f64,
    pub data: Vec<u8>,
}

/// Opens a WebSocket on `path` and reads messages until `wanted(opcode, payload)` says this is
/// the one (text is opcode 1, binary 2). The socket closes when this returns.
pub async fn first_message(
    port: u16,
    path: &str,
    mut wanted: impl FnMut(u8, &[u8]) -> bool,
) -> Result<FirstMessage, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1 << 17);
    let mut chunk = vec![0u8; 1 << 16];
    let (head_end, upgraded) = loop {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the 101".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break (i + 4, Instant::now());
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(format!("no upgrade: {}", String::from_utf8_lossy(&buf[..head_end])));
    }
    buf.drain(..head_end);
    let (mut message, mut message_opcode) = (Vec::new(), 0);
    loop {
        match parse_frame(&buf) {
            Some((fin, opcode, header, len)) => {
                if opcode < 8 {
                    if opcode != 0 {
                        message_opcode = opcode;
                    }
                    message.extend_from_slice(&buf[header..header + len]);
                }
                buf.drain(..header + len);
                if opcode == 8 {
                    return Err(format!("closed before the wanted message ({path})"));
                }
                if fin && opcode < 8 {
                    let done = Instant::now();
                    if wanted(message_opcode, &message) {
                        let ms = |t: Instant| done.duration_since(t).as_secs_f64() * 1000.0;
                        let (after_101, after_connect) = (ms(upgraded), ms(start));
                        return Ok(FirstMessage { after_101, after_connect, done_unix_ms: unix_ms(), data: message });
                    }
                    message.clear();
                }
            }
            None => {
                let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed before the wanted message".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// A complete server frame (unmasked) at the start of `b`: (FIN, opcode, header length,
/// payload length), or `None` if more bytes are needed.
fn parse_frame(b: &[u8]) -> Option<(bool, u8, usize, usize)> {
    let (b0, b1) = (*b.first()?, *b.get(1)?);
    let (header, len) = match b1 & 0x7F {
        126 => (4, usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
        127 => (10, u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize),
        n => (2, usize::from(n)),
    };
    let header = header + if b1 & 0x80 != 0 { 4 } else { 0 };
    (b.len() >= header + len).then_some((b0 & 0x80 != 0, b0 & 0x0F, header, len))
}

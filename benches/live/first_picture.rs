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
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /cam/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
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
    let mut message = Vec::new();
    loop {
        match parse_frame(&buf) {
            Some((fin, opcode, header, len)) => {
                if opcode < 8 {
                    message.extend_from_slice(&buf[header..header + len]);
                }
                buf.drain(..header + len);
                if fin && (opcode == 2 || (opcode == 0 && !message.is_empty())) {
                    let done = Instant::now();
                    if !message.starts_with(&[0xFF, 0xD8]) {
                        return Err("first message is not a JPEG".into());
                    }
                    let ms = |t: Instant| done.duration_since(t).as_secs_f64() * 1000.0;
                    return Ok((ms(upgraded), ms(start)));
                }
            }
            None => {
                let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed before the first picture".into());
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

//! A minimal reverse proxy that does what WinCC's IIS rule does: `/video/<path>` is forwarded
//! to panelcam as `/<path>` (WebSocket upgrades included, the connection is spliced after the
//! request head). Other paths are forwarded unchanged.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct PrefixProxy {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl PrefixProxy {
    pub async fn start(upstream: u16) -> PrefixProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream));
            }
        });
        PrefixProxy { port, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PrefixProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards one connection. Each request on it is rewritten, so keep-alive works too.
async fn forward(client: TcpStream, upstream: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
    // Request heads are rewritten until one upgrades the connection; then bytes pass as they are.
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&pending[..end + 4]).to_string();
        let rest = pending.split_off(end + 4);
        let body_len = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0usize);
        let rewritten = head.replacen(" /video/", " /", 1);
        if server_write.write_all(rewritten.as_bytes()).await.is_err() {
            break;
        }
        pending = rest;
        while pending.len() < body_len {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        let after = pending.split_off(body_len);
        if server_write.write_all(&pending).await.is_err() {
            break;
        }
        pending = after;
        if head.to_ascii_lowercase().contains("upgrade: websocket") {
            let _ = server_write.write_all(&pending).await;
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            break;
        }
    }
    let _ = server_write.shutdown().await;
    let _ = answers.await;
}

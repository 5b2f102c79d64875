//! A tiny static file server on a loopback port of its own, standing in for the web server
//! that hosts a page outside panelcam (WinCC's runtime hosting the Custom Web Control): a page
//! served here is cross-origin to panelcam, as it is on a panel.

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct StaticFiles {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl StaticFiles {
    /// Serves the files under `root` (GET only; no listings, nothing outside `root`).
    pub async fn serve(root: PathBuf) -> StaticFiles {
        StaticFiles::serve_with(root, Vec::new()).await
    }

    /// Serves `root` and, over it, single files at given URL paths (`("/h264.js", file)`): what
    /// a build script would have copied in.
    pub async fn serve_with(root: PathBuf, extra: Vec<(String, PathBuf)>) -> StaticFiles {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let extra = std::sync::Arc::new(extra);
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(answer(sock, root.clone(), extra.clone()));
            }
        });
        StaticFiles { port, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut sock: TcpStream, root: PathBuf, extra: std::sync::Arc<Vec<(String, PathBuf)>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 << 10 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let file = match extra.iter().find(|(at, _)| at == path) {
        Some((_, file)) => Some(file.clone()),
        None => resolve(&root, path),
    };
    let (status, kind, body) = match (method, file.and_then(|f| std::fs::read(&f).ok().map(|b| (f, b)))) {
        ("GET", Some((f, body))) => ("200 OK", content_type(&f), body),
        ("GET", None) => ("404 Not Found", "text/plain", b"not found".to_vec()),
        _ => ("405 Method Not Allowed", "text/plain", b"GET only".to_vec()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(header.as_bytes()).await;
    let _ = sock.write_all(&body).await;
    let _ = sock.shutdown().await;
}

/// The file a URL path names under `root`, if it stays there.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let file = root.join(relative);
    file.is_file().then_some(file)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

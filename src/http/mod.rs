//! HTTP/1.1 on hyper with keep-alive and WebSocket upgrades. The accept loop is generic over
//! nothing but a `TcpStream` today; TLS wraps the stream before `serve_connection` later.

pub mod api;
pub mod auth;
pub mod body;
pub mod control;
pub mod export;
pub mod files;
pub mod handler;
pub mod pages;
pub mod query;
pub mod range;
pub mod response;
pub mod route;
pub mod video;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::app::App;

/// Connections beyond this wait in the kernel's accept queue instead of exhausting file
/// descriptors or memory on the panel.
const MAX_CONNECTIONS: usize = 2048;

pub async fn serve(app: Arc<App>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // Frames are written in one go; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handler::handle(app.clone(), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
}

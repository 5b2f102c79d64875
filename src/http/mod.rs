//! HTTP/1.1 on hyper with keep-alive and WebSocket upgrades, and every response panelcam
//! sends. The accept loop is generic over nothing but a `TcpStream` today; TLS wraps the
//! stream before `serve_connection` later.

pub mod admin;
pub mod auth;
pub mod body;
pub mod control;
pub mod cors;
pub mod errors;
pub mod export;
pub mod files;
pub mod handler;
pub mod limits;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod ptz;
pub mod query;
pub mod range;
pub mod response;
pub mod route;
pub mod upgrade;
pub mod video;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;
use tracing::{debug, warn};

use crate::registry::Registry;

/// A client gets this long to send a request's headers (also the first one on a new
/// connection), so idle and slow connections cannot hold a slot for long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// One connection's share of the connection limit. The connection task holds it, and a
/// WebSocket's task takes a reference along, so an upgraded connection keeps counting
/// until the socket closes.
pub struct ConnSlot {
    _permit: OwnedSemaphorePermit,
    registry: Arc<Registry>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.registry.status.connections.fetch_sub(1, Relaxed);
    }
}

/// The client's address, for the lockout of repeated authentication failures and logs.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    registry.status.max_connections.store(max_connections as u64, Relaxed);
    let lockouts =
        Arc::new(auth::Lockouts::new(registry.config.server.auth_max_failures, registry.config.server.auth_lockout));
    loop {
        // At the limit, new connections wait in the kernel's accept queue instead of
        // exhausting file descriptors (FFmpeg's pipes and the databases need theirs).
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
        registry.status.connections.fetch_add(1, Relaxed);
        let slot = Arc::new(ConnSlot { _permit: permit, registry: registry.clone() });
        // Frames are written in one go; Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let (registry, lockouts) = (registry.clone(), lockouts.clone());
        tokio::spawn(
            async move {
                let conn_slot = slot.clone();
                let service = service_fn(move |mut req| {
                    req.extensions_mut().insert(slot.clone());
                    req.extensions_mut().insert(Peer(peer));
                    handler::handle(registry.clone(), lockouts.clone(), req)
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    debug!(%peer, "connection ended: {e}");
                }
                drop(conn_slot);
            }
            // journald's COMPONENT=http for what requests log.
            .instrument(crate::telemetry::component("http")),
        );
    }
}

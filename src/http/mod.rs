//! HTTP/1.1 on hyper with keep-alive and WebSocket upgrades, and every response panelcam
//! sends, over plain TCP or, with `server.tls.enabled`, over TLS (HTTPS and WSS on the same
//! port; the handshake happens on the connection's own task, bounded in time, so stalled
//! handshakes cannot hold up the accept loop or keep a connection slot for long).

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
pub mod redirect;
pub mod response;
pub mod route;
pub mod security;
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
use crate::tls::server::ServerTls;

/// A client gets this long to send a request's headers (also the first one on a new
/// connection), so idle and slow connections cannot hold a slot for long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A request body (a few KiB of JSON at most) must have arrived this long after its headers,
/// so a client cannot hold a connection by sending its body slowly either.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A TLS client gets this long for its handshake; a real one needs a few milliseconds.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    tls: Option<Arc<ServerTls>>,
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
        let (registry, lockouts, tls) = (registry.clone(), lockouts.clone(), tls.clone());
        tokio::spawn(
            async move {
                let conn = Conn { registry, lockouts, slot, peer };
                match tls {
                    None => conn.serve(stream).await,
                    Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                        Ok(Ok(stream)) => conn.serve(stream).await,
                        Ok(Err(e)) => debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => debug!(%peer, "TLS handshake not done within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                    },
                }
            }
            // journald's COMPONENT=http for what requests log.
            .instrument(crate::telemetry::component("http")),
        );
    }
}

/// One accepted connection, before or after its TLS handshake.
struct Conn {
    registry: Arc<Registry>,
    lockouts: Arc<auth::Lockouts>,
    slot: Arc<ConnSlot>,
    peer: SocketAddr,
}

impl Conn {
    async fn serve<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn { registry, lockouts, slot, peer } = self;
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
}

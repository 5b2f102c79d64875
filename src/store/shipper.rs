//! SegmentShipper: empties the outbox into PostgreSQL, one item at a time, oldest first with
//! every other turn given to the newest live segment. While PostgreSQL is unreachable it
//! waits (1 s doubling to 30 s) and the items stay on disk.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::outbox::Outbox;
use super::pg::{Central, PgError, upload};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Items younger than this count as "live" for the alternating pick.
const LIVE_WINDOW_MS: i64 = 30_000;

pub async fn run(outbox: Arc<Outbox>, central: Arc<Central>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    let mut live_turn = false;
    loop {
        if *stop.borrow() {
            return;
        }
        live_turn = !live_turn;
        let ob = outbox.clone();
        let next = tokio::task::spawn_blocking(move || ob.next(live_turn, LIVE_WINDOW_MS)).await;
        let item = match next {
            Ok(Ok(Some(item))) => item,
            Ok(Ok(None)) => {
                tokio::select! {
                    _ = outbox.arrived.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            Ok(Err(e)) => {
                warn!("outbox unreadable: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            Err(_) => return,
        };
        let file = outbox.file(item.id);
        let upload = async {
            let mut client = central.client(&item.camera, true).await?;
            let client = client.as_mut().ok_or_else(|| PgError::Unreachable("no connection".into()))?;
            upload(client, &central.panel, &item, &file).await
        };
        // At shutdown an upload in flight is abandoned: the item stays in the outbox and is
        // uploaded again (idempotently) after the restart, instead of holding up the stop.
        let result = tokio::select! {
            r = upload => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(()) => {
                if !outbox.reachable.swap(true, Relaxed) {
                    info!(database = %central.display, "PostgreSQL reachable again; shipping the backlog");
                }
                backoff = Duration::from_secs(1);
                let ob = outbox.clone();
                let done = tokio::task::spawn_blocking(move || ob.done(&item)).await;
                if let Ok(Err(e)) = done {
                    warn!("outbox: cannot mark an upload done: {e}");
                }
            }
            Err(e) => {
                let text = crate::redact::redact_url(&e.to_string());
                *outbox.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                // An unreachable server is nobody's fault: only real refusals count as attempts.
                if !matches!(e, PgError::Unreachable(_)) {
                    let (ob, it, t) = (outbox.clone(), item.clone(), text.clone());
                    let _ = tokio::task::spawn_blocking(move || ob.failed(&it, &t)).await;
                }
                match e {
                    PgError::Unreachable(_) => {
                        if outbox.reachable.swap(false, Relaxed) {
                            warn!(database = %central.display, "{text}; segments wait in the outbox");
                        }
                    }
                    _ => warn!(camera = %item.camera, kind = item.kind.as_str(), "upload failed, will retry: {text}"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

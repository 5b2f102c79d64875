//! Reading and deleting a camera's stored video wherever it lives: the panel's SQLite and
//! files, the outbox (not shipped yet) and PostgreSQL. Playback merges outbox and PostgreSQL,
//! so a segment can be played before, during and after its upload.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::camera::VideoCamera;
use super::outbox::{Item, Kind};
use super::pg::{self, PgError};
use super::segment::{HlsMeta, Kept, Mp4Meta};
use crate::http::files::{serve_bytes, serve_file};
use crate::http::response::{self, Resp};
use crate::record::model::StoreError;

fn pg_err(e: PgError) -> StoreError {
    match e {
        PgError::Unreachable(m) => {
            StoreError::Unavailable(crate::redact::redact_url(&format!("PostgreSQL unreachable: {m}")))
        }
        other => StoreError::Database(crate::redact::redact_url(&other.to_string())),
    }
}

fn item_hls(i: &Item) -> HlsMeta {
    HlsMeta {
        start_ms: i.start_ms,
        duration_ms: i.duration_ms,
        init_sha256: i.init_sha256.clone().unwrap_or_default(),
        session_id: i.session_id,
        size: i.size,
    }
}

fn item_mp4(i: &Item) -> Mp4Meta {
    Mp4Meta {
        name: i.name.clone().unwrap_or_default(),
        start_ms: i.start_ms,
        duration_ms: i.duration_ms,
        size: i.size,
        session_id: i.session_id,
        path: None,
    }
}

impl VideoCamera {
    fn central(&self) -> Option<(&std::sync::Arc<pg::Central>, &std::sync::Arc<super::outbox::Outbox>)> {
        self.env.central.as_ref().zip(self.env.outbox.as_ref())
    }

    async fn pending(&self, kind: Kind, from: i64, to: i64) -> Result<Vec<Item>, StoreError> {
        let Some((_, outbox)) = self.central() else { return Ok(Vec::new()) };
        let (ob, camera) = (outbox.clone(), self.camera.clone());
        tokio::task::spawn_blocking(move || ob.pending(&camera, kind, from, to))
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?
    }

    /// Stored HLS segments overlapping `[from, to]`, oldest first.
    pub async fn list_hls(&self, from: i64, to: i64) -> Result<Vec<HlsMeta>, StoreError> {
        if let Some((central, _)) = self.central() {
            let mut merged: BTreeMap<i64, HlsMeta> = BTreeMap::new();
            let remote = match central.client(&self.camera, false).await {
                Ok(guard) => match guard.as_ref() {
                    Some(c) => pg::list_hls(c, &self.camera, from, to).await.map_err(pg_err),
                    None => Err(StoreError::Unavailable("no PostgreSQL connection".into())),
                },
                Err(e) => Err(pg_err(e)),
            };
            let pending = self.pending(Kind::Hls, from, to).await?;
            if remote.is_err() && pending.is_empty() {
                return remote;
            }
            merged.extend(remote.unwrap_or_default().into_iter().map(|m| (m.start_ms, m)));
            merged.extend(pending.iter().map(|i| (i.start_ms, item_hls(i))));
            return Ok(merged.into_values().collect());
        }
        match &self.local {
            Some(local) => local.run(move |l| l.list_hls(from, to)).await,
            None => Ok(Vec::new()),
        }
    }

    pub async fn hls_bytes(&self, start_ms: i64) -> Result<Option<Bytes>, StoreError> {
        if let Some((central, outbox)) = self.central() {
            let pending = self.pending(Kind::Hls, start_ms, start_ms).await?;
            if let Some(item) = pending.into_iter().find(|i| i.start_ms == start_ms)
                && let Ok(data) = tokio::fs::read(outbox.file(item.id)).await
            {
                return Ok(Some(Bytes::from(data)));
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
            return pg::hls(c, &self.camera, start_ms).await.map_err(pg_err);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.hls(start_ms)).await,
            None => Ok(None),
        }
    }

    pub async fn init_bytes(&self, sha: &str) -> Result<Option<Bytes>, StoreError> {
        let sha = sha.to_string();
        if let Some((central, outbox)) = self.central() {
            let (ob, camera, s) = (outbox.clone(), self.camera.clone(), sha.clone());
            let pending = tokio::task::spawn_blocking(move || ob.pending_init(&camera, &s))
                .await
                .map_err(|e| StoreError::Database(e.to_string()))??;
            if let Some(item) = pending
                && let Ok(data) = tokio::fs::read(outbox.file(item.id)).await
            {
                return Ok(Some(Bytes::from(data)));
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
            return pg::init(c, &self.camera, &sha).await.map_err(pg_err);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.init(&sha)).await,
            None => Ok(None),
        }
    }

    /// MP4 segments overlapping `[from, to]`, oldest first.
    pub async fn list_mp4(&self, from: i64, to: i64) -> Result<Vec<Mp4Meta>, StoreError> {
        let mut merged: BTreeMap<i64, Mp4Meta> = BTreeMap::new();
        if let Some(local) = &self.local {
            merged.extend(local.run(move |l| l.list_mp4(from, to)).await?.into_iter().map(|m| (m.start_ms, m)));
        }
        if let Some((central, _)) = self.central()
            && self.rec.mp4_storage_type == crate::config::Mp4Storage::Database
        {
            let pending = self.pending(Kind::Mp4, from, to).await?;
            match central.client(&self.camera, false).await {
                Ok(guard) => {
                    if let Some(c) = guard.as_ref() {
                        match pg::list_mp4(c, &self.camera, from, to).await {
                            Ok(remote) => merged.extend(remote.into_iter().map(|m| (m.start_ms, m))),
                            Err(e) if pending.is_empty() => return Err(pg_err(e)),
                            Err(_) => {}
                        }
                    }
                }
                Err(e) if pending.is_empty() && merged.is_empty() => return Err(pg_err(e)),
                Err(_) => {}
            }
            merged.extend(pending.iter().map(|i| (i.start_ms, item_mp4(i))));
        }
        Ok(merged.into_values().collect())
    }

    /// Serves one MP4 segment with byte ranges from wherever it is stored.
    pub async fn serve_mp4(&self, name: &str, range: Option<&str>, download: bool) -> Resp {
        let as_download = download.then_some(name);
        if let Some(local) = &self.local {
            let n = name.to_string();
            match local.run(move |l| l.mp4(&n)).await {
                Ok(Some(meta)) => {
                    return match &meta.path {
                        Some(path) => serve_file(path, "video/mp4", range, as_download).await,
                        None => self.serve_local_blob(meta, range, as_download).await,
                    };
                }
                Ok(None) => {}
                Err(e) => return crate::http::control::store_error(e),
            }
        }
        if let Some((central, outbox)) = self.central() {
            let pending = self.pending(Kind::Mp4, i64::MIN, i64::MAX).await.unwrap_or_default();
            if let Some(item) = pending.iter().find(|i| i.name.as_deref() == Some(name)) {
                return serve_file(&outbox.file(item.id), "video/mp4", range, as_download).await;
            }
            let guard = match central.client(&self.camera, false).await {
                Ok(g) => g,
                Err(e) => return crate::http::control::store_error(pg_err(e)),
            };
            let Some(c) = guard.as_ref() else {
                return response::error(hyper::StatusCode::SERVICE_UNAVAILABLE, "no PostgreSQL connection");
            };
            let meta = match pg::mp4(c, &self.camera, name).await {
                Ok(Some(meta)) => meta,
                Ok(None) => return response::not_found(&format!("no MP4 segment {name}")),
                Err(e) => return crate::http::control::store_error(pg_err(e)),
            };
            drop(guard);
            let (central, camera, start_ms) = (central.clone(), self.camera.clone(), meta.start_ms);
            return chunked(meta.size as u64, range, as_download, move |offset, len| {
                let (central, camera) = (central.clone(), camera.clone());
                async move {
                    let guard = central.client(&camera, false).await.map_err(pg_err)?;
                    let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
                    pg::mp4_range(c, &camera, start_ms, offset, len).await.map_err(pg_err)
                }
            });
        }
        response::not_found(&format!("no MP4 segment {name}"))
    }

    async fn serve_local_blob(&self, meta: Mp4Meta, range: Option<&str>, download: Option<&str>) -> Resp {
        let Some(local) = self.local.clone() else { return response::not_found("no MP4 store") };
        let start_ms = meta.start_ms;
        chunked(meta.size as u64, range, download, move |offset, len| {
            let local = local.clone();
            async move { local.run(move |l| l.mp4_blob_range(start_ms, offset, len as usize)).await }
        })
    }

    /// Deletes MP4 segments (files, blobs, outbox items, PostgreSQL rows) starting in
    /// `[from, to)` except those of kept sessions; returns how many.
    pub async fn delete_mp4(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        let mut n = 0;
        if let Some(local) = &self.local {
            let k = kept.clone();
            let removed = local.run(move |l| l.delete_mp4(from, to, &k)).await?;
            for m in &removed {
                if let Some(path) = &m.path {
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
            n += removed.len() as u64;
        }
        if let Some((central, outbox)) = self.central() {
            n += remove_pending(outbox, &self.camera, Kind::Mp4, from, to, &kept).await?;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_range(c, "mp4", &self.camera, from, to, &kept).await.map_err(pg_err)?;
            }
        }
        Ok(n)
    }

    pub async fn delete_mp4_named(&self, name: &str) -> Result<bool, StoreError> {
        if let Some(local) = &self.local {
            let n = name.to_string();
            if let Some(m) = local.run(move |l| l.delete_mp4_named(&n)).await? {
                if let Some(path) = &m.path {
                    let _ = tokio::fs::remove_file(path).await;
                }
                return Ok(true);
            }
        }
        if let Some((central, outbox)) = self.central() {
            if let Some(item) =
                self.pending(Kind::Mp4, i64::MIN, i64::MAX).await?.into_iter().find(|i| i.name.as_deref() == Some(name))
            {
                remove_pending(outbox, &self.camera, Kind::Mp4, item.start_ms, item.start_ms + 1, &Kept::none())
                    .await?;
                return Ok(true);
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                return Ok(pg::delete_mp4_named(c, &self.camera, name).await.map_err(pg_err)? > 0);
            }
        }
        Ok(false)
    }

    /// Deletes the HLS segments kept for a session, wherever they are; returns how many.
    pub async fn delete_hls_session(&self, session_id: i64) -> Result<u64, StoreError> {
        if let Some((central, outbox)) = self.central() {
            let (ob, camera) = (outbox.clone(), self.camera.clone());
            let mut n = tokio::task::spawn_blocking(move || ob.remove_session(&camera, Kind::Hls, session_id))
                .await
                .map_err(|e| StoreError::Database(e.to_string()))??;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_hls_session(c, &self.camera, session_id).await.map_err(pg_err)?;
            }
            return Ok(n);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.delete_hls_session(session_id)).await,
            None => Ok(0),
        }
    }

    /// Deletes HLS segments starting in `[from, to)` except those of kept sessions; returns
    /// how many.
    pub async fn delete_hls(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        if let Some((central, outbox)) = self.central() {
            let mut n = remove_pending(outbox, &self.camera, Kind::Hls, from, to, &kept).await?;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_range(c, "hls", &self.camera, from, to, &kept).await.map_err(pg_err)?;
            }
            return Ok(n);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.delete_hls(from, to, &kept).map(|(n, _)| n)).await,
            None => Ok(0),
        }
    }
}

async fn remove_pending(
    outbox: &std::sync::Arc<super::outbox::Outbox>,
    camera: &str,
    kind: Kind,
    from: i64,
    to: i64,
    kept: &Kept,
) -> Result<u64, StoreError> {
    let (ob, cam, kept) = (outbox.clone(), camera.to_string(), kept.clone());
    tokio::task::spawn_blocking(move || ob.remove_starting(&cam, kind, from, to, &kept))
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?
}

/// Bytes per chunk when streaming a recording out of a database.
const DB_CHUNK: u64 = 1 << 20;

/// Streams `[start, start+len)` of a database-held recording in chunks (200 or 206 with the
/// right headers), so a large file never sits in memory whole.
fn chunked<F, Fut>(total: u64, range: Option<&str>, download: Option<&str>, fetch: F) -> Resp
where
    F: Fn(u64, u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Bytes, StoreError>> + Send,
{
    use crate::http::range::{ByteRange, parse_range};
    let (status, start, len) = match parse_range(range, total) {
        ByteRange::Whole => (hyper::StatusCode::OK, 0, total),
        ByteRange::Part { start, end } => (hyper::StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return serve_bytes(Bytes::new(), "video/mp4", range, download),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut offset = start;
        while offset < start + len {
            let n = DB_CHUNK.min(start + len - offset);
            let chunk = fetch(offset, n).await.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
            offset += n;
        }
    });
    let mut b = hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "video/mp4")
        .header(hyper::header::ACCEPT_RANGES, "bytes")
        .header(hyper::header::CONTENT_LENGTH, len);
    if status == hyper::StatusCode::PARTIAL_CONTENT {
        b = b.header(hyper::header::CONTENT_RANGE, format!("bytes {start}-{}/{total}", start + len - 1));
    }
    if let Some(name) = download {
        b = b.header(hyper::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""));
    }
    b.body(crate::http::body::Body::Channel(rx))
        .unwrap_or_else(|_| response::error(hyper::StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

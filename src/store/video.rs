//! A camera's stored video wherever it lives: the panel's SQLite and files, the outbox (not
//! shipped yet) and PostgreSQL. Playback merges outbox and PostgreSQL, so a segment can be
//! played before, during and after its upload. Everything here returns data, sources and
//! [`StoreError`]s; `http` turns them into responses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::error::StoreError;
use super::local::LocalIndex;
use super::outbox::{Item, Kind, Outbox};
use super::pg::{self, Central, Key, PgError};
use super::segment::{HlsMeta, Kept, Mp4Meta};

fn pg_err(e: PgError) -> StoreError {
    match e {
        PgError::Unreachable(m) => {
            StoreError::Unavailable(crate::redact::redact_url(&format!("PostgreSQL unreachable: {m}")))
        }
        other => StoreError::Database(crate::redact::redact_url(&other.to_string())),
    }
}

/// An outbox item's bytes, only from inside the outbox (see `store::confine`).
async fn read_item(outbox: &Arc<Outbox>, id: i64) -> std::io::Result<Vec<u8>> {
    let (dir, file) = (outbox.dir().to_path_buf(), outbox.file(id));
    tokio::task::spawn_blocking(move || super::confine::read_within(&dir, &file))
        .await
        .map_err(std::io::Error::other)?
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

/// Where the bytes of one MP4 segment are.
pub enum Mp4Source {
    /// A file on the panel (filesystem storage, or waiting in the outbox), which must resolve
    /// inside `dir` (see `store::confine`).
    File { path: PathBuf, dir: PathBuf },
    /// A blob in the camera's `segments.db`.
    LocalBlob { local: Arc<LocalIndex>, start_ms: i64, size: u64 },
    /// A row in the central PostgreSQL.
    Central { central: Arc<Central>, camera: String, start_ms: i64, size: u64 },
}

impl Mp4Source {
    /// `len` bytes from `offset` of a database-held segment (files are streamed by `http`).
    pub async fn read(&self, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        match self {
            Mp4Source::File { .. } => Err(StoreError::Invalid("files are streamed, not read in ranges".into())),
            Mp4Source::LocalBlob { local, start_ms, .. } => {
                let start_ms = *start_ms;
                local.run(move |l| l.mp4_blob_range(start_ms, offset, len as usize)).await
            }
            Mp4Source::Central { central, camera, start_ms, .. } => {
                let guard = central.client(camera, false).await.map_err(pg_err)?;
                let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
                let key = Key { panel: &central.panel, camera };
                pg::mp4_range(c, key, *start_ms, offset, len).await.map_err(pg_err)
            }
        }
    }
}

/// One camera's stored video.
pub struct VideoStore {
    pub camera: String,
    /// `<database_path>/<camera>/segments.db`: local HLS (sqlite) and the MP4 index.
    pub local: Option<Arc<LocalIndex>>,
    /// The outbox and PostgreSQL, when recordings go to PostgreSQL.
    pub central: Option<(Arc<Central>, Arc<Outbox>)>,
    /// MP4 segments in a database (PostgreSQL when `central` is set).
    pub mp4_in_database: bool,
}

impl VideoStore {
    fn key<'a>(&'a self, central: &'a Central) -> Key<'a> {
        Key { panel: &central.panel, camera: &self.camera }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some((_, outbox)) = &self.central else { return Err(StoreError::Invalid("no outbox".into())) };
        let (ob, camera) = (outbox.clone(), self.camera.clone());
        tokio::task::spawn_blocking(move || f(&ob, &camera)).await.map_err(|e| StoreError::Database(e.to_string()))?
    }

    async fn pending(&self, kind: Kind, from: i64, to: i64) -> Result<Vec<Item>, StoreError> {
        if self.central.is_none() {
            return Ok(Vec::new());
        }
        self.blocking(move |ob, camera| ob.pending(camera, kind, from, to)).await
    }

    /// Stored HLS segments overlapping `[from, to]`, oldest first.
    pub async fn list_hls(&self, from: i64, to: i64) -> Result<Vec<HlsMeta>, StoreError> {
        if let Some((central, _)) = &self.central {
            let mut merged: BTreeMap<i64, HlsMeta> = BTreeMap::new();
            let remote = match central.client(&self.camera, false).await {
                Ok(guard) => match guard.as_ref() {
                    Some(c) => pg::list_hls(c, self.key(central), from, to).await.map_err(pg_err),
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
        if let Some((central, outbox)) = &self.central {
            let pending = self.pending(Kind::Hls, start_ms, start_ms).await?;
            if let Some(item) = pending.into_iter().find(|i| i.start_ms == start_ms)
                && let Ok(data) = read_item(outbox, item.id).await
            {
                return Ok(Some(Bytes::from(data)));
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
            return pg::hls(c, self.key(central), start_ms).await.map_err(pg_err);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.hls(start_ms)).await,
            None => Ok(None),
        }
    }

    pub async fn init_bytes(&self, sha: &str) -> Result<Option<Bytes>, StoreError> {
        let sha = sha.to_string();
        if let Some((central, outbox)) = &self.central {
            let s = sha.clone();
            let pending = self.blocking(move |ob, camera| ob.pending_init(camera, &s)).await?;
            if let Some(item) = pending
                && let Ok(data) = read_item(outbox, item.id).await
            {
                return Ok(Some(Bytes::from(data)));
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
            return pg::init(c, self.key(central), &sha).await.map_err(pg_err);
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
        if let Some((central, _)) = &self.central
            && self.mp4_in_database
        {
            let pending = self.pending(Kind::Mp4, from, to).await?;
            match central.client(&self.camera, false).await {
                Ok(guard) => {
                    if let Some(c) = guard.as_ref() {
                        match pg::list_mp4(c, self.key(central), from, to).await {
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

    /// Where one MP4 segment's bytes are, and its size; `None` when there is no such segment.
    pub async fn mp4_source(&self, name: &str) -> Result<Option<Mp4Source>, StoreError> {
        if let Some(local) = &self.local {
            let n = name.to_string();
            if let Some(meta) = local.run(move |l| l.mp4(&n)).await? {
                return Ok(Some(match meta.path {
                    Some(path) => Mp4Source::File { path, dir: local.dir().to_path_buf() },
                    None => {
                        Mp4Source::LocalBlob { local: local.clone(), start_ms: meta.start_ms, size: meta.size as u64 }
                    }
                }));
            }
        }
        if let Some((central, outbox)) = &self.central {
            let n = name.to_string();
            if let Some(item) = self.blocking(move |ob, camera| ob.pending_named(camera, &n)).await? {
                return Ok(Some(Mp4Source::File { path: outbox.file(item.id), dir: outbox.dir().to_path_buf() }));
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            let c = guard.as_ref().ok_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into()))?;
            return Ok(pg::mp4(c, self.key(central), name).await.map_err(pg_err)?.map(|meta| Mp4Source::Central {
                central: central.clone(),
                camera: self.camera.clone(),
                start_ms: meta.start_ms,
                size: meta.size as u64,
            }));
        }
        Ok(None)
    }

    /// Deletes MP4 segments (files, blobs, outbox items, PostgreSQL rows) starting in
    /// `[from, to)` except those of kept sessions; returns how many.
    pub async fn delete_mp4(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        let mut n = self.delete_local_mp4(from, to, kept.clone()).await?;
        if let Some((central, _)) = &self.central {
            let k = kept.clone();
            n += self.blocking(move |ob, camera| ob.remove_starting(camera, Kind::Mp4, from, to, &k)).await?;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_range(c, "mp4", self.key(central), from, to, &kept).await.map_err(pg_err)?;
            }
        }
        Ok(n)
    }

    /// Deletes the MP4 segments kept on the panel itself (files and local blobs) starting in
    /// `[from, to)`, kept sessions excepted. Never touches the outbox or PostgreSQL: this is
    /// what the disk guard frees.
    pub async fn delete_local_mp4(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        let Some(local) = &self.local else { return Ok(0) };
        let removed = local.run(move |l| l.delete_mp4(from, to, &kept)).await?;
        for m in &removed {
            if let Some(path) = &m.path {
                let _ = tokio::fs::remove_file(path).await;
            }
        }
        Ok(removed.len() as u64)
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
        if let Some((central, _)) = &self.central {
            let n = name.to_string();
            if let Some(item) = self.blocking(move |ob, camera| ob.pending_named(camera, &n)).await? {
                self.blocking(move |ob, _| ob.remove(item.id)).await?;
                return Ok(true);
            }
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                return Ok(pg::delete_mp4_named(c, self.key(central), name).await.map_err(pg_err)? > 0);
            }
        }
        Ok(false)
    }

    /// Deletes the HLS segments kept for a session, wherever they are; returns how many.
    pub async fn delete_hls_session(&self, session_id: i64) -> Result<u64, StoreError> {
        if let Some((central, _)) = &self.central {
            let mut n = self.blocking(move |ob, camera| ob.remove_session(camera, Kind::Hls, session_id)).await?;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_hls_session(c, self.key(central), session_id).await.map_err(pg_err)?;
            }
            return Ok(n);
        }
        match &self.local {
            Some(local) => local.run(move |l| l.delete_hls_session(session_id)).await,
            None => Ok(0),
        }
    }

    /// Deletes HLS segments starting in `[from, to)` except those of kept sessions, wherever
    /// they are; returns how many.
    pub async fn delete_hls(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        if let Some((central, _)) = &self.central {
            let k = kept.clone();
            let mut n = self.blocking(move |ob, camera| ob.remove_starting(camera, Kind::Hls, from, to, &k)).await?;
            let guard = central.client(&self.camera, false).await.map_err(pg_err)?;
            if let Some(c) = guard.as_ref() {
                n += pg::delete_range(c, "hls", self.key(central), from, to, &kept).await.map_err(pg_err)?;
            }
            return Ok(n);
        }
        self.delete_local_hls(from, to, kept).await
    }

    /// Deletes HLS segments kept on the panel itself; never the outbox or PostgreSQL.
    pub async fn delete_local_hls(&self, from: i64, to: i64, kept: Kept) -> Result<u64, StoreError> {
        match &self.local {
            Some(local) => local.run(move |l| l.delete_hls(from, to, &kept).map(|(n, _)| n)).await,
            None => Ok(0),
        }
    }

    /// The start of the oldest recording kept on the panel that may be deleted.
    pub async fn oldest_local(&self, kept: Kept) -> Result<Option<i64>, StoreError> {
        match &self.local {
            Some(local) => local.run(move |l| l.oldest(&kept)).await,
            None => Ok(None),
        }
    }
}

//! The central PostgreSQL: connections (creating per-camera databases on demand), the
//! schema, idempotent verified uploads streamed with `COPY … (FORMAT binary)` (a segment is
//! never held whole in the panel's RAM), and the reads and deletes of playback and retention.
//!
//! `database_url` ending in a database name: one shared database with panel and camera
//! columns. Without one: a database `rtsp_<camera>` per camera, created automatically (also
//! keyed by panel, since several panels may have a camera of that name).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use tracing::{info, warn};

use super::outbox::{Item, Kind};
use super::segment::{HlsMeta, Kept, Mp4Meta};
use crate::tls::postgres::{RustlsConnect, split_url};

const SCHEMA: &str = include_str!("pg_schema.sql");
const MIGRATE_1_2: &str = include_str!("pg_migrate_1_2.sql");
const SCHEMA_VERSION: i32 = 2;
/// PostgreSQL's limit for one `bytea` value: an MP4 segment must stay below it.
pub const MAX_BYTEA: u64 = (1 << 30) - 1;
/// Streamed uploads read files in chunks of this size.
const UPLOAD_CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq)]
pub enum PgError {
    /// Cannot reach or log into the server: retry later, keep the data.
    Unreachable(String),
    /// The server answered with an error for this operation.
    Failed(String),
    /// The row in PostgreSQL does not match what we uploaded (size or checksum).
    Mismatch(String),
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Unreachable(m) => write!(f, "PostgreSQL unreachable: {m}"),
            PgError::Failed(m) => write!(f, "PostgreSQL error: {m}"),
            PgError::Mismatch(m) => write!(f, "upload verification failed: {m}"),
        }
    }
}

fn failed(e: tokio_postgres::Error) -> PgError {
    use std::error::Error;
    let io = e.source().is_some_and(|s| s.is::<std::io::Error>());
    // tokio-postgres names only the step ("error performing TLS handshake"); the reason (an
    // unknown issuer, a refused password) is in the sources.
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    if e.is_closed() || io || message.contains("timed out") {
        PgError::Unreachable(message)
    } else {
        PgError::Failed(message)
    }
}

type Slot = Arc<Mutex<Option<Client>>>;

pub struct Central {
    base: Config,
    /// `sslmode` other than disable: every connection is TLS, verified.
    tls: Option<RustlsConnect>,
    shared: Option<String>,
    /// `server.panel_id`: the first part of every row's key.
    pub panel: String,
    /// The URL with its password masked, for logs and status.
    pub display: String,
    /// Per database: one connection for uploads (COPY needs it alone), one for queries.
    slots: std::sync::Mutex<HashMap<(String, bool), Slot>>,
}

/// `rtsp_<camera>` with everything but `[a-z0-9_]` replaced, as PostgreSQL identifiers like.
pub fn camera_db_name(camera: &str) -> String {
    let clean: String =
        camera.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("rtsp_{clean}")
}

impl Central {
    pub fn new(url: &str, panel: &str) -> Result<Central, String> {
        let pg_url = split_url(url).map_err(|e| format!("recording.database_url: {e}"))?;
        let tls = pg_url.connector().map_err(|p| p.to_string())?;
        let mut base: Config = pg_url.url.parse().map_err(|e| format!("database_url is not a PostgreSQL URL: {e}"))?;
        base.ssl_mode(if tls.is_some() { SslMode::Require } else { SslMode::Disable });
        base.connect_timeout(Duration::from_secs(5))
            .application_name("panelcam")
            .keepalives_idle(Duration::from_secs(30));
        let shared = base.get_dbname().filter(|d| !d.is_empty()).map(str::to_string);
        Ok(Central {
            base,
            tls,
            shared,
            panel: panel.to_string(),
            display: crate::redact::redact_url(url),
            slots: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn database_for(&self, camera: &str) -> String {
        self.shared.clone().unwrap_or_else(|| camera_db_name(camera))
    }

    /// A connected client for `camera`'s database (`upload` = the connection reserved for
    /// uploads), reconnecting when the previous one broke.
    pub async fn client(&self, camera: &str, upload: bool) -> Result<OwnedMutexGuard<Option<Client>>, PgError> {
        let db = self.database_for(camera);
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry((db.clone(), upload)).or_default().clone()
        };
        let mut guard = slot.lock_owned().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connect(&db).await?);
        }
        Ok(guard)
    }

    async fn connect(&self, db: &str) -> Result<Client, PgError> {
        let mut cfg = self.base.clone();
        cfg.dbname(db);
        let client = match self.open(&cfg).await {
            Ok(client) => client,
            Err(e) if self.shared.is_none() && e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
                self.create_database(db).await?;
                self.open(&cfg).await.map_err(failed)?
            }
            Err(e) => return Err(failed(e)),
        };
        ensure_schema(&client, &self.panel).await?;
        Ok(client)
    }

    /// A connection in plain TCP or TLS, as the URL asked; its driver runs on its own task.
    async fn open(&self, cfg: &Config) -> Result<Client, tokio_postgres::Error> {
        match &self.tls {
            None => {
                let (client, conn) = cfg.connect(NoTls).await?;
                tokio::spawn(conn);
                Ok(client)
            }
            Some(tls) => {
                let (client, conn) = cfg.connect(tls.clone()).await?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }

    async fn create_database(&self, db: &str) -> Result<(), PgError> {
        let mut cfg = self.base.clone();
        cfg.dbname("postgres");
        let admin = self.open(&cfg).await.map_err(failed)?;
        // `db` is built from [a-z0-9_] only (camera_db_name), so quoting it is safe.
        match admin.batch_execute(&format!("CREATE DATABASE \"{db}\"")).await {
            Ok(()) => {
                info!(database = db, "created PostgreSQL database for camera recordings");
                Ok(())
            }
            // Another panel (or our other connection) created it meanwhile.
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_DATABASE) || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
            {
                Ok(())
            }
            Err(e) => Err(PgError::Failed(format!("cannot create database {db}: {e}"))),
        }
    }
}

/// Creates or migrates the schema under an advisory lock (panels start together), then
/// the session's upload staging table.
async fn ensure_schema(client: &Client, panel: &str) -> Result<(), PgError> {
    client
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7272001); CREATE TABLE IF NOT EXISTS panelcam_schema (version integer NOT NULL);")
        .await
        .map_err(failed)?;
    let result = async {
        let version: Option<i32> =
            client.query_one("SELECT max(version) FROM panelcam_schema", &[]).await.map_err(failed)?.get(0);
        // Tables without a version row: a version 1 database whose row was never written.
        let tables: bool =
            client.query_one("SELECT to_regclass('hls_segments') IS NOT NULL", &[]).await.map_err(failed)?.get(0);
        match version.or(tables.then_some(1)) {
            None => client.batch_execute(SCHEMA).await.map_err(failed)?,
            Some(1) => {
                // `panel` was checked to be [A-Za-z0-9_.-] (config), so it is safe in the text.
                client.batch_execute(&MIGRATE_1_2.replace("$PANEL", panel)).await.map_err(failed)?;
                client.batch_execute(SCHEMA).await.map_err(failed)?;
                info!(panel, "PostgreSQL recordings schema migrated to version 2 (rows keyed by panel)");
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(PgError::Failed(format!(
                    "schema version {v} was written by a newer panelcam; not touching it"
                )));
            }
        }
        if version != Some(SCHEMA_VERSION) {
            client
                .batch_execute(&format!(
                    "DELETE FROM panelcam_schema; INSERT INTO panelcam_schema VALUES ({SCHEMA_VERSION});"
                ))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.map_err(failed)?;
    result?;
    client
        .batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS panelcam_upload (panel text, camera text, start_ms bigint, duration_ms bigint,
             name text, init_sha256 text, session_id bigint, size bigint, sha256 text, data bytea) ON COMMIT DELETE ROWS;
             -- Without this PostgreSQL tries to compress every segment on its way through (~50 ms
             -- per 3 MB, 70 % of a backlog drain; benches/video.rs backlog-drain).
             ALTER TABLE panelcam_upload ALTER COLUMN data SET STORAGE EXTERNAL",
        )
        .await
        .map_err(failed)
}

/// A field of a binary COPY tuple (everything but the streamed `data`).
pub enum CopyField<'a> {
    Text(&'a str),
    Int8(i64),
    Null,
}

/// The binary COPY header and the first part of one tuple: every field before `data`, then
/// `data`'s length. The caller streams the data bytes and then [`COPY_TRAILER`].
pub fn copy_prefix(fields: &[CopyField], data_len: u64) -> Vec<u8> {
    let mut b = b"PGCOPY\n\xff\r\n\0".to_vec();
    b.extend_from_slice(&0i32.to_be_bytes()); // flags
    b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    b.extend_from_slice(&((fields.len() + 1) as i16).to_be_bytes());
    for f in fields {
        match f {
            CopyField::Text(s) => {
                b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                b.extend_from_slice(s.as_bytes());
            }
            CopyField::Int8(n) => {
                b.extend_from_slice(&8i32.to_be_bytes());
                b.extend_from_slice(&n.to_be_bytes());
            }
            CopyField::Null => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&(data_len as i32).to_be_bytes());
    b
}

pub const COPY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// Uploads one outbox item from its file, idempotently (a row with the same key is left as
/// it is) and verified (the stored size and SHA-256 must equal ours).
pub async fn upload(client: &mut Client, panel: &str, item: &Item, file: &Path) -> Result<(), PgError> {
    if item.size as u64 > MAX_BYTEA {
        return Err(PgError::Failed(format!(
            "{} is {} bytes, more than PostgreSQL stores in one value (1 GiB)",
            file.display(),
            item.size
        )));
    }
    let tx = client.transaction().await.map_err(failed)?;
    let fields = [
        CopyField::Text(panel),
        CopyField::Text(&item.camera),
        CopyField::Int8(item.start_ms),
        CopyField::Int8(item.duration_ms),
        item.name.as_deref().map_or(CopyField::Null, CopyField::Text),
        item.init_sha256.as_deref().map_or(CopyField::Null, CopyField::Text),
        item.session_id.map_or(CopyField::Null, CopyField::Int8),
        CopyField::Int8(item.size),
        CopyField::Text(&item.sha256),
    ];
    let sink = tx
        .copy_in("COPY panelcam_upload (panel, camera, start_ms, duration_ms, name, init_sha256, session_id, size, sha256, data) FROM STDIN (FORMAT binary)")
        .await
        .map_err(failed)?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(copy_prefix(&fields, item.size as u64))).await.map_err(failed)?;
    let mut f = tokio::fs::File::open(file)
        .await
        .map_err(|e| PgError::Failed(format!("cannot read {}: {e}", file.display())))?;
    let mut sent = 0u64;
    loop {
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let n = f.read(&mut buf).await.map_err(|e| PgError::Failed(format!("cannot read {}: {e}", file.display())))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        sent += n as u64;
        sink.send(Bytes::from(buf)).await.map_err(failed)?;
    }
    if sent != item.size as u64 {
        return Err(PgError::Failed(format!("{} has {sent} bytes, expected {}", file.display(), item.size)));
    }
    sink.send(Bytes::from_static(&COPY_TRAILER)).await.map_err(failed)?;
    sink.finish().await.map_err(failed)?;
    let (insert, verify) = match item.kind {
        Kind::Init => (
            "INSERT INTO init_segments (panel, camera, sha256, data) SELECT panel, camera, sha256, data FROM panelcam_upload ON CONFLICT DO NOTHING",
            "SELECT octet_length(data)::bigint, encode(sha256(data), 'hex') FROM init_segments WHERE panel = $4 AND camera = $1 AND sha256 = $3 AND $2::bigint IS NOT NULL",
        ),
        Kind::Hls => (
            "INSERT INTO hls_segments (panel, camera, start_ms, duration_ms, init_sha256, session_id, size, sha256, data)
             SELECT panel, camera, start_ms, duration_ms::integer, init_sha256, session_id, size, sha256, data FROM panelcam_upload
             ON CONFLICT (panel, camera, start_ms) DO NOTHING",
            "SELECT octet_length(data)::bigint, encode(sha256(data), 'hex') FROM hls_segments WHERE panel = $4 AND camera = $1 AND start_ms = $2 AND $3 <> ''",
        ),
        Kind::Mp4 => (
            "INSERT INTO mp4_segments (panel, camera, start_ms, duration_ms, name, session_id, size, sha256, data)
             SELECT panel, camera, start_ms, duration_ms, name, session_id, size, sha256, data FROM panelcam_upload
             ON CONFLICT (panel, camera, start_ms) DO NOTHING",
            "SELECT octet_length(data)::bigint, encode(sha256(data), 'hex') FROM mp4_segments WHERE panel = $4 AND camera = $1 AND start_ms = $2 AND $3 <> ''",
        ),
    };
    tx.execute(insert, &[]).await.map_err(failed)?;
    let row = tx.query_opt(verify, &[&item.camera, &item.start_ms, &item.sha256, &panel]).await.map_err(failed)?;
    let Some(row) = row else {
        return Err(PgError::Mismatch(format!(
            "{} {} is not in the database after the upload",
            item.kind.as_str(),
            item.start_ms
        )));
    };
    let (size, sha): (i64, String) = (row.get(0), row.get(1));
    if size != item.size || sha != item.sha256 {
        return Err(PgError::Mismatch(format!(
            "{} of {} at {}: database holds {size} bytes sha256 {sha}, panel has {} bytes sha256 {}",
            item.kind.as_str(),
            item.camera,
            crate::util::iso_ms(item.start_ms),
            item.size,
            item.sha256
        )));
    }
    tx.commit().await.map_err(failed)
}

/// Which rows a query is about: one panel's camera.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    pub panel: &'a str,
    pub camera: &'a str,
}

pub async fn list_hls(c: &Client, k: Key<'_>, from: i64, to: i64) -> Result<Vec<HlsMeta>, PgError> {
    let rows = c
        .query(
            "SELECT start_ms, duration_ms, init_sha256, session_id, size FROM hls_segments
             WHERE panel = $4 AND camera = $1 AND start_ms >= $2::bigint - 600000 AND start_ms < $3::bigint
             AND start_ms + duration_ms > $2::bigint ORDER BY start_ms",
            &[&k.camera, &from, &to, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(rows
        .iter()
        .map(|r| HlsMeta {
            start_ms: r.get(0),
            duration_ms: i64::from(r.get::<_, i32>(1)),
            init_sha256: r.get(2),
            session_id: r.get(3),
            size: r.get(4),
        })
        .collect())
}

pub async fn hls(c: &Client, k: Key<'_>, start_ms: i64) -> Result<Option<Bytes>, PgError> {
    let row = c
        .query_opt(
            "SELECT data FROM hls_segments WHERE panel = $3 AND camera = $1 AND start_ms = $2",
            &[&k.camera, &start_ms, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(row.map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
}

pub async fn init(c: &Client, k: Key<'_>, sha: &str) -> Result<Option<Bytes>, PgError> {
    let row = c
        .query_opt(
            "SELECT data FROM init_segments WHERE panel = $3 AND camera = $1 AND sha256 = $2",
            &[&k.camera, &sha, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(row.map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
}

fn mp4_row(r: &tokio_postgres::Row) -> Mp4Meta {
    Mp4Meta {
        name: r.get(0),
        start_ms: r.get(1),
        duration_ms: r.get(2),
        size: r.get(3),
        session_id: r.get(4),
        path: None,
    }
}

pub async fn list_mp4(c: &Client, k: Key<'_>, from: i64, to: i64) -> Result<Vec<Mp4Meta>, PgError> {
    let rows = c
        .query(
            "SELECT name, start_ms, duration_ms, size, session_id FROM mp4_segments
             WHERE panel = $4 AND camera = $1 AND start_ms <= $3::bigint AND start_ms + duration_ms >= $2::bigint
             ORDER BY start_ms",
            &[&k.camera, &from, &to, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(rows.iter().map(mp4_row).collect())
}

pub async fn mp4(c: &Client, k: Key<'_>, name: &str) -> Result<Option<Mp4Meta>, PgError> {
    let row = c
        .query_opt(
            "SELECT name, start_ms, duration_ms, size, session_id FROM mp4_segments
             WHERE panel = $3 AND camera = $1 AND name = $2",
            &[&k.camera, &name, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(row.as_ref().map(mp4_row))
}

/// `len` bytes from `offset` of a stored MP4 (substring on an uncompressed, out-of-line
/// value reads only the chunks it needs).
pub async fn mp4_range(c: &Client, k: Key<'_>, start_ms: i64, offset: u64, len: u64) -> Result<Bytes, PgError> {
    // bytea values are at most 1 GiB, so positions fit substring()'s integer arguments.
    let (from, count) = (offset.min(MAX_BYTEA) as i32 + 1, len.min(MAX_BYTEA) as i32);
    let row = c
        .query_one(
            "SELECT substring(data from $3::integer for $4::integer) FROM mp4_segments
             WHERE panel = $5 AND camera = $1 AND start_ms = $2",
            &[&k.camera, &start_ms, &from, &count, &k.panel],
        )
        .await
        .map_err(failed)?;
    Ok(Bytes::from(row.get::<_, Vec<u8>>(0)))
}

/// Deletes rows of `table` starting in `[from, to)` except those of kept sessions; returns
/// the count.
pub async fn delete_range(
    c: &Client,
    table: &str,
    k: Key<'_>,
    from: i64,
    to: i64,
    kept: &Kept,
) -> Result<u64, PgError> {
    let table = match table {
        "hls" => "hls_segments",
        _ => "mp4_segments",
    };
    let sql = format!(
        "DELETE FROM {table} WHERE panel = $4 AND camera = $1 AND start_ms >= $2::bigint AND start_ms < $3::bigint{}",
        kept.sql()
    );
    let n = c.execute(&sql, &[&k.camera, &from, &to, &k.panel]).await.map_err(failed)?;
    if table == "hls_segments" && n > 0 {
        let orphans = "DELETE FROM init_segments i WHERE panel = $2 AND camera = $1 AND NOT EXISTS
                       (SELECT 1 FROM hls_segments h WHERE h.panel = i.panel AND h.camera = i.camera AND h.init_sha256 = i.sha256)";
        if let Err(e) = c.execute(orphans, &[&k.camera, &k.panel]).await {
            warn!(camera = k.camera, "cannot remove unused init segments: {e}");
        }
    }
    Ok(n)
}

pub async fn delete_hls_session(c: &Client, k: Key<'_>, session_id: i64) -> Result<u64, PgError> {
    c.execute(
        "DELETE FROM hls_segments WHERE panel = $3 AND camera = $1 AND session_id = $2::bigint",
        &[&k.camera, &session_id, &k.panel],
    )
    .await
    .map_err(failed)
}

pub async fn delete_mp4_named(c: &Client, k: Key<'_>, name: &str) -> Result<u64, PgError> {
    c.execute("DELETE FROM mp4_segments WHERE panel = $3 AND camera = $1 AND name = $2", &[&k.camera, &name, &k.panel])
        .await
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_safe_identifiers() {
        assert_eq!(camera_db_name("cam1"), "rtsp_cam1");
        assert_eq!(camera_db_name("Front-Door.2"), "rtsp_front_door_2");
        assert_eq!(camera_db_name("x\"; DROP"), "rtsp_x___drop");
    }

    #[test]
    fn copy_prefix_is_pg_binary_format() {
        let p = copy_prefix(&[CopyField::Text("ab"), CopyField::Int8(7), CopyField::Null], 3);
        assert_eq!(&p[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&p[19..21], &4i16.to_be_bytes(), "three fields plus data");
        assert_eq!(&p[21..27], &[0, 0, 0, 2, b'a', b'b']);
        assert_eq!(&p[27..39], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(&p[39..43], &(-1i32).to_be_bytes());
        assert_eq!(&p[43..], &3i32.to_be_bytes());
    }

    #[test]
    fn shared_or_per_camera_databases() {
        let shared = Central::new("postgres://u:secret@127.0.0.1:5432/surveillance", "panel1").unwrap();
        assert_eq!(shared.database_for("cam1"), "surveillance");
        assert!(!shared.display.contains("secret"));
        let per = Central::new("postgres://u@127.0.0.1:5432/", "panel1").unwrap();
        assert_eq!(per.database_for("cam1"), "rtsp_cam1");
        assert!(Central::new("not a url", "panel1").is_err());
    }
}

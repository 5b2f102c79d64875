//! Serving recordings with byte ranges (206 / 416, `Accept-Ranges`), from files (streamed)
//! or from bytes already in memory. A file from a data directory is served only if it
//! resolves inside that directory (`store::confine`).

use std::path::Path;

use bytes::Bytes;
use hyper::header::{ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use tokio::io::AsyncSeekExt;

use super::body::Body;
use super::range::{ByteRange, parse_range};
use super::response::{self, Resp};
use crate::store::confine::open_within;

pub fn range_header(headers: &HeaderMap) -> Option<String> {
    headers.get(hyper::header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn head(
    status: StatusCode,
    content_type: &'static str,
    len: u64,
    download: Option<&str>,
) -> hyper::http::response::Builder {
    let mut b = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT_RANGES, "bytes")
        .header(CONTENT_LENGTH, len);
    if let Some(name) = download
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        b = b.header(CONTENT_DISPOSITION, v);
    }
    b
}

fn unsatisfiable(len: u64) -> Resp {
    let mut r = response::error(StatusCode::RANGE_NOT_SATISFIABLE, "requested range lies outside the file");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        r.headers_mut().insert(CONTENT_RANGE, v);
    }
    r
}

/// Streams a file of data directory `dir`, whole or the requested range; a file that is not
/// inside `dir` once symlinks are resolved is not found.
pub async fn serve_file(
    dir: &Path,
    path: &Path,
    content_type: &'static str,
    range: Option<&str>,
    download: Option<&str>,
) -> Resp {
    let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
    let opened = tokio::task::spawn_blocking(move || open_within(&dir, &path)).await.map_err(std::io::Error::other);
    match opened.and_then(|r| r) {
        Ok(f) => serve_open_file(tokio::fs::File::from_std(f), content_type, range, download).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => response::not_found("recording file not found"),
        Err(e) => response::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot open recording: {e}")),
    }
}

/// Streams a file already opened (one the configuration names, like hls.js).
pub async fn serve_open_file(
    mut file: tokio::fs::File,
    content_type: &'static str,
    range: Option<&str>,
    download: Option<&str>,
) -> Resp {
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return response::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot read recording: {e}")),
    };
    let (status, start, count) = match parse_range(range, len) {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return unsatisfiable(len),
    };
    if start > 0
        && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        return response::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot seek: {e}"));
    }
    let mut b = head(status, content_type, count, download);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(CONTENT_RANGE, format!("bytes {start}-{}/{len}", start + count - 1));
    }
    b.body(Body::File { file, remaining: count })
        .unwrap_or_else(|_| response::error(StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

/// Bytes per chunk when streaming a recording out of a database.
const DB_CHUNK: u64 = 1 << 20;

/// Streams `[start, start+len)` of a database-held recording in chunks fetched by `fetch`
/// (200 or 206 with the right headers), so a large file never sits in memory whole.
pub fn serve_chunked<F, Fut>(
    total: u64,
    content_type: &'static str,
    range: Option<&str>,
    download: Option<&str>,
    fetch: F,
) -> Resp
where
    F: Fn(u64, u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<Bytes>> + Send,
{
    let (status, start, len) = match parse_range(range, total) {
        ByteRange::Whole => (StatusCode::OK, 0, total),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return unsatisfiable(total),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut offset = start;
        while offset < start + len {
            let n = DB_CHUNK.min(start + len - offset);
            let chunk = fetch(offset, n).await;
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
            offset += n;
        }
    });
    let mut b = head(status, content_type, len, download);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(CONTENT_RANGE, format!("bytes {start}-{}/{total}", start + len - 1));
    }
    b.body(Body::Channel(rx)).unwrap_or_else(|_| response::error(StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

/// Serves bytes held in memory, whole or the requested range.
pub fn serve_bytes(data: Bytes, content_type: &'static str, range: Option<&str>, download: Option<&str>) -> Resp {
    let len = data.len() as u64;
    let (status, body, content_range) = match parse_range(range, len) {
        ByteRange::Whole => (StatusCode::OK, data, None),
        // `parse_range` guarantees start <= end < len.
        ByteRange::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            data.slice(start as usize..=end as usize), // slice-ok: range checked against len
            Some(format!("bytes {start}-{end}/{len}")),
        ),
        ByteRange::Unsatisfiable => return unsatisfiable(len),
    };
    let mut b = head(status, content_type, body.len() as u64, download);
    if let Some(cr) = content_range {
        b = b.header(CONTENT_RANGE, cr);
    }
    b.body(Body::full(body)).unwrap_or_else(|_| response::error(StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

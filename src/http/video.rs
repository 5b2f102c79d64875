//! Video playback and management under `/<cam>/control/recordings/{hls,mp4,spans}` and
//! live HLS under `/<cam>/hls/`. Stored segments are served as they are: no transcoding.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::files::{range_header, serve_bytes, serve_chunked, serve_file};
use super::params::{TimeRange, parse_id, shown};
use super::query::query_param;
use super::response::{self, Resp};
use crate::camera::Camera;
use crate::registry::housekeeping::kept;
use crate::store::StoreError;
use crate::store::confine::read_within;
use crate::store::segment::is_safe_name;
use crate::store::video::Mp4Source;
use crate::util::iso_ms;
use crate::video::camera::VideoCamera;
use crate::video::playlist::{VodEntry, vod_playlist};

/// A timerange playlist covers at most this much.
const MAX_PLAYLIST_MS: i64 = 24 * 3_600_000;
/// Segments closer than this count as one continuous span.
const SPAN_GAP_MS: i64 = 1_500;

fn no_video(camera: &Camera) -> StoreError {
    StoreError::NotFound(format!(
        "camera {} keeps no video (set recording.hls_storage_enabled or recording.mp4_storage_type)",
        camera.id()
    ))
}

fn token_suffix(query: &str) -> String {
    query_param(query, "token").map(|t| format!("?token={}", encode(&t))).unwrap_or_default()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The camera's video, when it keeps any.
pub fn video_of(camera: &Camera) -> Result<Arc<VideoCamera>, StoreError> {
    camera.video.clone().filter(|v| v.rec.video_enabled()).ok_or_else(|| no_video(camera))
}

pub async fn delete_hls_range(camera: &Camera, query: &str) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    let r = TimeRange::required(query, &["t1", "from"], &["t2", "to"])?;
    let n = video.store.delete_hls(r.from, r.to.saturating_add(1), kept(camera).await).await?;
    Ok(response::success(
        json!({"deleted_segments": n, "message": format!("deleted {n} HLS segments (kept and active sessions were left alone)")}),
    ))
}

pub async fn delete_mp4_range(camera: &Camera, query: &str) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    let r = TimeRange::required(query, &["from", "t1"], &["to", "t2"])
        .map_err(|e| StoreError::Invalid(format!("bulk delete needs `from` and `to`: {e}")))?;
    let n = video.store.delete_mp4(r.from, r.to.saturating_add(1), kept(camera).await).await?;
    Ok(response::success(
        json!({"deleted_segments": n, "message": format!("deleted {n} MP4 segments (kept and active sessions were left alone)")}),
    ))
}

pub async fn download_mp4(camera: &Camera, name: &str, req: &Request<Incoming>) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    check_mp4_name(name)?;
    let download = query_param(req.uri().query().unwrap_or(""), "download").is_some();
    serve_mp4(&video, name, range_header(req.headers()).as_deref(), download).await
}

pub async fn delete_mp4(camera: &Camera, name: &str) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    check_mp4_name(name)?;
    match video.store.delete_mp4_named(name).await? {
        true => Ok(response::success(json!({"filename": name, "message": "MP4 segment deleted"}))),
        false => Err(StoreError::NotFound(format!("no MP4 segment {name}"))),
    }
}

fn check_mp4_name(name: &str) -> Result<(), StoreError> {
    if is_safe_name(name) && name.ends_with(".mp4") {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "\"{}\" is not an MP4 segment name like cam1_20240819_140000.mp4",
            shown(name)
        )))
    }
}

pub async fn playlist(camera: &Camera, query: &str) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    let store = &video.store;
    let r = TimeRange::required(query, &["t1", "from"], &["t2", "to"])?.at_most(MAX_PLAYLIST_MS)?;
    let segments = store.list_hls(r.from, r.to).await?;
    if segments.is_empty() {
        return Err(StoreError::NotFound(format!("no recorded video between {} and {}", iso_ms(r.from), iso_ms(r.to))));
    }
    // hls.js fetches segment URLs without the page's query: carry the token along.
    let token = token_suffix(query);
    let entries: Vec<VodEntry> = segments
        .iter()
        .map(|s| VodEntry {
            start_ms: s.start_ms,
            duration_ms: s.duration_ms,
            init_uri: format!("init/{}.mp4{token}", s.init_sha256),
            uri: format!("segments/{}.m4s{token}", s.start_ms),
        })
        .collect();
    let mut resp =
        response::with_type(StatusCode::OK, "application/vnd.apple.mpegurl", vod_playlist(&entries, SPAN_GAP_MS));
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

pub async fn hls_segment(camera: &Camera, name: &str) -> Result<Resp, StoreError> {
    let store = video_of(camera)?.store.clone();
    let start = name.strip_suffix(".m4s").and_then(|n| n.parse::<i64>().ok()).ok_or_else(|| {
        StoreError::Invalid(format!("\"{}\" is not a segment name like 1724076000000.m4s", shown(name)))
    })?;
    let data = store
        .hls_bytes(start)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no HLS segment starting at {}", iso_ms(start))))?;
    Ok(segment_response(data, "video/iso.segment"))
}

pub async fn hls_init(camera: &Camera, name: &str) -> Result<Resp, StoreError> {
    let store = video_of(camera)?.store.clone();
    let sha = name.strip_suffix(".mp4").filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    let sha = sha.ok_or_else(|| StoreError::Invalid(format!("\"{}\" is not an init segment name", shown(name))))?;
    let data = store.init_bytes(sha).await?.ok_or_else(|| StoreError::NotFound("no such init segment".into()))?;
    Ok(segment_response(data, "video/mp4"))
}

/// Stored segments never change: let browsers cache them.
fn segment_response(data: Bytes, content_type: &'static str) -> Resp {
    let mut r = serve_bytes(data, content_type, None, None);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("max-age=86400, immutable"));
    r
}

pub async fn delete_hls_session(camera: &Camera, id: &str) -> Result<Resp, StoreError> {
    let store = video_of(camera)?.store.clone();
    let id = parse_id(id)?;
    let frames =
        camera.frames.as_ref().ok_or_else(|| StoreError::NotFound("this camera has no recording sessions".into()))?;
    let s = frames.session(id).await?;
    if s.is_active() {
        return Err(StoreError::Conflict(format!("session {id} is recording; stop it first"), Some(s.to_json())));
    }
    // Segments remember the session they were kept for (pre-event buffer included).
    let n = store.delete_hls_session(id).await?;
    Ok(response::success(
        json!({"session_id": id, "deleted_segments": n, "message": "HLS segments of the session deleted"}),
    ))
}

pub async fn list_mp4(camera: &Camera, query: &str) -> Result<Resp, StoreError> {
    let store = video_of(camera)?.store.clone();
    let r = TimeRange::optional(query, ("from", "to"), (0, i64::MAX))?;
    let token = token_suffix(query);
    let files = store.list_mp4(r.from, r.to).await?;
    let list: Vec<Value> = files.iter().map(|m| m.to_json(&format!("segments/{}{token}", m.name))).collect();
    Ok(response::success(json!({"count": list.len(), "segments": list})))
}

/// Serves one MP4 segment with byte ranges from wherever it is stored.
async fn serve_mp4(video: &VideoCamera, name: &str, range: Option<&str>, download: bool) -> Result<Resp, StoreError> {
    let as_download = download.then_some(name);
    let source =
        video.store.mp4_source(name).await?.ok_or_else(|| StoreError::NotFound(format!("no MP4 segment {name}")))?;
    Ok(match source {
        Mp4Source::File { path, dir } => serve_file(&dir, &path, "video/mp4", range, as_download).await,
        Mp4Source::LocalBlob { size, .. } | Mp4Source::Central { size, .. } => {
            let source = Arc::new(source);
            serve_chunked(size, "video/mp4", range, as_download, move |offset, len| {
                let source = source.clone();
                async move { source.read(offset, len).await.map_err(|e| std::io::Error::other(e.to_string())) }
            })
        }
    })
}

/// Continuous recorded spans, like the reference media server's `/list`: where the video
/// is, and by omission where it is not.
pub async fn spans(camera: &Camera, query: &str) -> Result<Resp, StoreError> {
    let r = TimeRange::optional(query, ("from", "to"), (0, i64::MAX))?;
    // A camera that records no video has recorded no spans: an empty timeline, not an error
    // (the control page asks for every camera, and a 404 shows as a console error).
    let Ok(video) = video_of(camera) else {
        return Ok(response::success(json!({"spans": [], "video_storage": false})));
    };
    let store = video.store.clone();
    let mut pieces: Vec<(i64, i64)> =
        store.list_hls(r.from, r.to).await?.iter().map(|s| (s.start_ms, s.start_ms + s.duration_ms)).collect();
    if pieces.is_empty() {
        pieces = store.list_mp4(r.from, r.to).await?.iter().map(|m| (m.start_ms, m.start_ms + m.duration_ms)).collect();
    }
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (s, e) in pieces {
        match merged.last_mut() {
            Some(last) if s - last.1 <= SPAN_GAP_MS => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let list: Vec<Value> = merged
        .iter()
        .map(|(s, e)| json!({"start": iso_ms(*s), "end": iso_ms(*e), "start_ms": s, "end_ms": e, "duration": (e - s) as f64 / 1000.0}))
        .collect();
    Ok(response::success(json!({"spans": list})))
}

/// The playlist FFmpeg keeps rewriting in the spool (`camera::argv`).
const LIVE_PLAYLIST: &str = "live.m3u8";

/// Live HLS from the spool: FFmpeg's rolling playlist and its files.
pub async fn live_hls(camera: &Camera, file: &str) -> Resp {
    let Some(video) = &camera.video else {
        return response::not_found(&format!(
            "camera {} has no live HLS (its video cannot be copied, or a custom FFmpeg command is set)",
            camera.id()
        ));
    };
    if !is_safe_name(file) {
        return response::error(StatusCode::BAD_REQUEST, "invalid file name");
    }
    let content_type = match file.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        _ => return response::not_found("not an HLS file"),
    };
    let path = video.spool.join(file);
    if content_type.starts_with("application") {
        // FFmpeg rewrites the playlist in place; an empty read is a rewrite in progress.
        for _ in 0..5 {
            let (spool, path) = (video.spool.clone(), path.clone());
            let read = tokio::task::spawn_blocking(move || read_within(&spool, &path)).await;
            match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
                Ok(data) if !data.is_empty() => {
                    let mut r = response::with_type(StatusCode::OK, content_type, data);
                    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    return r;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                // Only FFmpeg's own playlist is worth waiting for.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file != LIVE_PLAYLIST => {
                    return response::not_found("no such HLS playlist");
                }
                Err(_) => break,
            }
        }
        return response::error(StatusCode::SERVICE_UNAVAILABLE, "live HLS is starting; no segment yet");
    }
    serve_file(&video.spool, &path, content_type, None, None).await
}

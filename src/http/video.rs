//! Video playback and management under `/<cam>/control/recordings/{hls,mp4,spans}` and
//! live HLS under `/<cam>/hls/`. Stored segments are served as they are: no transcoding.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::control::{parse_id, store_error, time_param};
use super::files::{range_header, serve_bytes, serve_file};
use super::query::query_param;
use super::response::{self, Resp};
use super::route::ControlRoute;
use crate::app::App;
use crate::camera::Camera;
use crate::record::model::StoreError;
use crate::util::iso_ms;
use crate::video::camera::VideoCamera;
use crate::video::playlist::{VodEntry, vod_playlist};
use crate::video::segment::is_safe_name;

/// A timerange playlist covers at most this much.
const MAX_PLAYLIST_MS: i64 = 24 * 3_600_000;
/// Segments closer than this count as one continuous span.
const SPAN_GAP_MS: i64 = 1_500;

pub fn methods(route: ControlRoute) -> &'static [Method] {
    match route {
        ControlRoute::HlsTimerange | ControlRoute::Mp4Segments | ControlRoute::Mp4Segment(_) => {
            &[Method::GET, Method::HEAD, Method::DELETE]
        }
        ControlRoute::HlsSession(_) => &[Method::DELETE],
        ControlRoute::Export => &[Method::POST],
        _ => &[Method::GET, Method::HEAD],
    }
}

fn no_video(camera: &Camera) -> Resp {
    response::not_found(&format!(
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

pub async fn handle(
    app: &Arc<App>,
    camera: &Arc<Camera>,
    route: ControlRoute<'_>,
    req: &mut Request<Incoming>,
) -> Resp {
    let Some(video) = camera.video.clone().filter(|v| v.rec.video_enabled()) else {
        return no_video(camera);
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let delete = req.method() == Method::DELETE;
    let result: Result<Resp, StoreError> = match route {
        ControlRoute::HlsTimerange if delete => delete_hls_range(camera, &video, &query).await,
        ControlRoute::HlsTimerange => playlist(&video, &query).await,
        ControlRoute::HlsSegment(name) => hls_segment(&video, name).await,
        ControlRoute::HlsInit(name) => hls_init(&video, name).await,
        ControlRoute::HlsSession(id) => delete_hls_session(camera, &video, id).await,
        ControlRoute::Spans => spans(&video, &query).await,
        ControlRoute::Mp4Segments if delete => delete_mp4_range(camera, &video, &query).await,
        ControlRoute::Mp4Segments => list_mp4(&video, &query).await,
        ControlRoute::Mp4Segment(name) if !is_safe_name(name) || !name.ends_with(".mp4") => {
            Err(StoreError::BadRequest(format!("\"{name}\" is not an MP4 segment name like cam1_20240819_140000.mp4")))
        }
        ControlRoute::Mp4Segment(name) if delete => match video.delete_mp4_named(name).await {
            Ok(true) => Ok(response::success(json!({"filename": name, "message": "MP4 segment deleted"}))),
            Ok(false) => Err(StoreError::NotFound(format!("no MP4 segment {name}"))),
            Err(e) => Err(e),
        },
        ControlRoute::Mp4Segment(name) => {
            let download = query_param(&query, "download").is_some();
            Ok(video.serve_mp4(name, range_header(req.headers()).as_deref(), download).await)
        }
        other => super::export::handle(app, &video, other, req).await,
    };
    result.unwrap_or_else(store_error)
}

/// `t1`/`t2` (or `from`/`to`), required, ordered and not absurdly far apart.
fn range(query: &str, max_ms: i64) -> Result<(i64, i64), StoreError> {
    let t1 = time_param(query, "t1")?.or(time_param(query, "from")?);
    let t2 = time_param(query, "t2")?.or(time_param(query, "to")?);
    let (Some(t1), Some(t2)) = (t1, t2) else {
        return Err(StoreError::BadRequest("`t1` and `t2` (start and end time) are required".into()));
    };
    if t2 < t1 {
        return Err(StoreError::BadRequest(format!("`t2` ({}) is before `t1` ({})", iso_ms(t2), iso_ms(t1))));
    }
    if t2 - t1 > max_ms {
        return Err(StoreError::BadRequest(format!(
            "the range covers {} h; at most {} h per request",
            (t2 - t1) / 3_600_000,
            max_ms / 3_600_000
        )));
    }
    Ok((t1, t2))
}

async fn playlist(video: &VideoCamera, query: &str) -> Result<Resp, StoreError> {
    let (t1, t2) = range(query, MAX_PLAYLIST_MS)?;
    let segments = video.list_hls(t1, t2).await?;
    if segments.is_empty() {
        return Err(StoreError::NotFound(format!("no recorded video between {} and {}", iso_ms(t1), iso_ms(t2))));
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
    let mut r =
        response::with_type(StatusCode::OK, "application/vnd.apple.mpegurl", vod_playlist(&entries, SPAN_GAP_MS));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

async fn hls_segment(video: &VideoCamera, name: &str) -> Result<Resp, StoreError> {
    let start = name
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| StoreError::BadRequest(format!("\"{name}\" is not a segment name like 1724076000000.m4s")))?;
    let data = video
        .hls_bytes(start)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no HLS segment starting at {}", iso_ms(start))))?;
    Ok(segment_response(data, "video/iso.segment"))
}

async fn hls_init(video: &VideoCamera, name: &str) -> Result<Resp, StoreError> {
    let sha = name.strip_suffix(".mp4").filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    let sha = sha.ok_or_else(|| StoreError::BadRequest(format!("\"{name}\" is not an init segment name")))?;
    let data = video.init_bytes(sha).await?.ok_or_else(|| StoreError::NotFound("no such init segment".into()))?;
    Ok(segment_response(data, "video/mp4"))
}

/// Stored segments never change: let browsers cache them.
fn segment_response(data: Bytes, content_type: &'static str) -> Resp {
    let mut r = serve_bytes(data, content_type, None, None);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("max-age=86400, immutable"));
    r
}

async fn protected(camera: &Camera) -> Result<crate::video::segment::Kept, StoreError> {
    Ok(crate::video::retention::kept(camera).await)
}

async fn delete_hls_range(camera: &Camera, video: &VideoCamera, query: &str) -> Result<Resp, StoreError> {
    let (t1, t2) = range(query, i64::MAX)?;
    let n = video.delete_hls(t1, t2.saturating_add(1), protected(camera).await?).await?;
    Ok(response::success(
        json!({"deleted_segments": n, "message": format!("deleted {n} HLS segments (kept and active sessions were left alone)")}),
    ))
}

async fn delete_hls_session(camera: &Camera, video: &VideoCamera, id: &str) -> Result<Resp, StoreError> {
    let id = parse_id(id)?;
    let store =
        camera.frames.as_ref().ok_or_else(|| StoreError::NotFound("this camera has no recording sessions".into()))?;
    let s = store.session(id).await?;
    if s.is_active() {
        return Err(StoreError::Conflict(format!("session {id} is recording; stop it first"), Some(s)));
    }
    // Segments remember the session they were kept for (pre-event buffer included).
    let n = video.delete_hls_session(id).await?;
    Ok(response::success(
        json!({"session_id": id, "deleted_segments": n, "message": "HLS segments of the session deleted"}),
    ))
}

async fn list_mp4(video: &VideoCamera, query: &str) -> Result<Resp, StoreError> {
    let from = time_param(query, "from")?.unwrap_or(0);
    let to = time_param(query, "to")?.unwrap_or(i64::MAX);
    if to < from {
        return Err(StoreError::BadRequest("`to` is before `from`".into()));
    }
    let token = token_suffix(query);
    let files = video.list_mp4(from, to).await?;
    let list: Vec<Value> = files.iter().map(|m| m.to_json(&format!("segments/{}{token}", m.name))).collect();
    Ok(response::success(json!({"count": list.len(), "segments": list})))
}

async fn delete_mp4_range(camera: &Camera, video: &VideoCamera, query: &str) -> Result<Resp, StoreError> {
    let (from, to) = match (time_param(query, "from")?, time_param(query, "to")?) {
        (Some(f), Some(t)) if t >= f => (f, t),
        (Some(_), Some(_)) => return Err(StoreError::BadRequest("`to` is before `from`".into())),
        _ => return Err(StoreError::BadRequest("bulk delete needs `from` and `to`".into())),
    };
    let n = video.delete_mp4(from, to.saturating_add(1), protected(camera).await?).await?;
    Ok(response::success(
        json!({"deleted_segments": n, "message": format!("deleted {n} MP4 segments (kept and active sessions were left alone)")}),
    ))
}

/// Continuous recorded spans, like the reference media server's `/list`: where the video
/// is, and by omission where it is not.
async fn spans(video: &VideoCamera, query: &str) -> Result<Resp, StoreError> {
    let from = time_param(query, "from")?.unwrap_or(0);
    let to = time_param(query, "to")?.unwrap_or(i64::MAX);
    let mut pieces: Vec<(i64, i64)> =
        video.list_hls(from, to).await?.iter().map(|s| (s.start_ms, s.start_ms + s.duration_ms)).collect();
    if pieces.is_empty() {
        pieces = video.list_mp4(from, to).await?.iter().map(|m| (m.start_ms, m.start_ms + m.duration_ms)).collect();
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
            match tokio::fs::read(&path).await {
                Ok(data) if !data.is_empty() => {
                    let mut r = response::with_type(StatusCode::OK, content_type, data);
                    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    return r;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(_) => break,
            }
        }
        return response::error(StatusCode::SERVICE_UNAVAILABLE, "live HLS is starting; no segment yet");
    }
    serve_file(&path, content_type, None, None).await
}

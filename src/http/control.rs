//! The recording REST API under `/<cam>/control/`: sessions, frames, keep, delete, size;
//! video and exports are in `video.rs` and `export.rs`, PTZ in `ptz.rs`. Answers in the spec's envelopes;
//! every malformed parameter gets a 4xx that names it. The match over routes is exhaustive:
//! a new route does not compile until it is handled here.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::auth::Grant;
use super::errors::store_error;
use super::params::{TimeRange, parse_id, read_json, shown};
use super::query::{percent_decode, query_param};
use super::response::{self, Resp};
use super::route::ControlRoute;
use super::{export, ptz, video};
use crate::camera::Camera;
use crate::record::FrameStore;
use crate::registry::Registry;
use crate::store::StoreError;
use crate::util::{iso_ms, now_ms, parse_time};

/// Frame listings may cover at most this much time per request (a day of 10 fps is 864 000
/// frames; clients page through longer spans).
const MAX_FRAME_LIST_SPAN_MS: i64 = 24 * 3_600_000;
const DEFAULT_FRAME_LIST_LIMIT: usize = 10_000;
const MAX_FRAME_LIST_LIMIT: usize = 100_000;
/// Default and maximum distance of the frame returned for a timestamp.
const DEFAULT_TOLERANCE_MS: i64 = 5_000;
const MAX_TOLERANCE_MS: i64 = 24 * 3_600_000;
/// Request bodies here are small JSON objects.
pub const MAX_BODY: usize = 64 << 10;

pub async fn handle(
    registry: &Arc<Registry>,
    camera: &Arc<Camera>,
    route: ControlRoute<'_>,
    grant: Grant,
    req: &mut Request<Incoming>,
) -> Resp {
    use ControlRoute::*;
    let query = req.uri().query().unwrap_or("").to_string();
    let result: Result<Resp, StoreError> = match route {
        RecordingStart => match frames(camera, true) {
            Ok(store) => start(&store, req).await.map(response::success),
            Err(e) => Err(e),
        },
        RecordingStop => {
            with_frames(camera, |s| async move {
                let s = s.stop_session().await?;
                Ok(json!({"session_id": s.id, "message": "Recording stopped", "session": s.to_json()}))
            })
            .await
        }
        RecordingActive => {
            with_frames(camera, |s| async move {
                Ok(match s.active() {
                    Some(a) => json!({"active": true, "session_id": a.id, "session": a.to_json()}),
                    None => json!({"active": false, "session_id": null, "session": null}),
                })
            })
            .await
        }
        RecordingSize => with_frames(camera, |s| async move { Ok(s.size().await?.to_json()) }).await,
        Sessions => with_frames(camera, |s| async move { sessions(&s, &query).await }).await,
        SessionFrames(id) => with_frames(camera, |s| async move { session_frames(&s, id, &query).await }).await,
        FrameAt(ts) => match frames(camera, false) {
            Ok(store) => frame_at(&store, ts, &query).await,
            Err(e) => Err(e),
        },
        DeleteSession(id) => {
            with_frames(camera, |s| async move {
                let s = s.delete_session(parse_id(id)?).await?;
                Ok(json!({"session_id": s.id, "message": "Session deleted", "frames_deleted": s.frame_count}))
            })
            .await
        }
        Keep(id) => match frames(camera, false) {
            Ok(store) => keep(&store, id, grant, req).await,
            Err(e) => Err(e),
        },
        Spans => video::spans(camera, &query).await,
        HlsPlaylist => video::playlist(camera, &query).await,
        DeleteHlsRange => video::delete_hls_range(camera, &query).await,
        HlsSegment(name) => video::hls_segment(camera, name).await,
        HlsInit(name) => video::hls_init(camera, name).await,
        DeleteHlsSession(id) => video::delete_hls_session(camera, id).await,
        Mp4List => video::list_mp4(camera, &query).await,
        DeleteMp4Range => video::delete_mp4_range(camera, &query).await,
        Mp4Download(name) => video::download_mp4(camera, name, req).await,
        DeleteMp4(name) => video::delete_mp4(camera, name).await,
        Export => export::start(registry, camera, req).await,
        ExportJobs => export::jobs(registry, camera).await,
        ExportJob(id) => export::job(registry, camera, id),
        ExportDownload(id) => export::download(registry, camera, id, req).await,
        DeleteExport(id) => export::delete(registry, camera, id).await,
        PtzMove | PtzStop | PtzGotoPreset | PtzSetPreset | PtzPresets => return ptz::handle(camera, route, req).await,
    };
    result.unwrap_or_else(store_error)
}

/// The camera's frame store, or why it has none (409 for starting a recording: the request
/// is fine, the camera's configuration is not).
fn frames(camera: &Camera, starting: bool) -> Result<Arc<FrameStore>, StoreError> {
    camera.frames.clone().ok_or_else(|| {
        let why = camera.frames_unavailable.clone().unwrap_or_else(|| "frame storage is not available".into());
        let message = format!("camera {}: {why}", camera.id());
        if starting { StoreError::Conflict(message, None) } else { StoreError::NotFound(message) }
    })
}

async fn with_frames<F, Fut>(camera: &Camera, f: F) -> Result<Resp, StoreError>
where
    F: FnOnce(Arc<FrameStore>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, StoreError>>,
{
    f(frames(camera, false)?).await.map(response::success)
}

async fn start(store: &FrameStore, req: &mut Request<Incoming>) -> Result<Value, StoreError> {
    let reason = match read_json(req, MAX_BODY).await? {
        None => None,
        Some(Value::Object(map)) => match map.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= 1000 => Some(s.clone()),
            Some(_) => return Err(StoreError::Invalid("`reason` must be a string of at most 1000 characters".into())),
        },
        Some(_) => return Err(StoreError::Invalid("body must be a JSON object like {\"reason\": \"...\"}".into())),
    };
    let s = store.start_session(reason).await?;
    Ok(json!({"session_id": s.id, "message": "Recording started", "session": s.to_json()}))
}

/// Protecting a session is a viewer's action; removing the protection is an admin's (it
/// exposes the recording to retention and the disk guard).
async fn keep(store: &FrameStore, id: &str, grant: Grant, req: &mut Request<Incoming>) -> Result<Resp, StoreError> {
    let id = parse_id(id)?;
    let keep = match read_json(req, MAX_BODY).await? {
        None => true,
        Some(v) => match v.get("keep") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(StoreError::Invalid("`keep` must be true or false".into())),
        },
    };
    if !keep && !grant.admin {
        return Ok(response::error(
            StatusCode::FORBIDDEN,
            "removing a session's protection needs the admin token (server.admin_token) as Authorization: Bearer",
        ));
    }
    let s = store.set_keep(id, keep).await?;
    let message = if keep { "Session protected from retention" } else { "Session no longer protected" };
    Ok(response::success(json!({"session_id": s.id, "keep": s.keep, "message": message, "session": s.to_json()})))
}

async fn sessions(store: &FrameStore, query: &str) -> Result<Value, StoreError> {
    let r = TimeRange::optional(query, ("from", "to"), (0, i64::MAX))?;
    let list = store.sessions(r.from, r.to).await?;
    Ok(json!({"count": list.len(), "sessions": list.iter().map(|s| s.to_json()).collect::<Vec<_>>()}))
}

async fn session_frames(store: &FrameStore, id: &str, query: &str) -> Result<Value, StoreError> {
    let id = parse_id(id)?;
    let session = store.session(id).await?;
    let end = session.end_ms.unwrap_or_else(now_ms).max(session.last_frame_ms.unwrap_or(0));
    // Without an explicit end, a listing covers at most the first 24 h from `from`.
    let start = super::params::time_param(query, "from")?.unwrap_or(session.start_ms);
    let r = TimeRange::optional(
        query,
        ("from", "to"),
        (session.start_ms, end.min(start.saturating_add(MAX_FRAME_LIST_SPAN_MS))),
    )?;
    // The span asked for (or, without from/to, the session's own length) is what counts:
    // a client asking for years must learn to page, not get a silently clipped answer.
    if r.span_ms() > MAX_FRAME_LIST_SPAN_MS {
        return Err(StoreError::Invalid(format!(
            "the range covers {} h; list at most 24 h of frames per request (page with `from`/`to`)",
            r.span_ms() / 3_600_000
        )));
    }
    let limit = match query_param(query, "limit") {
        None => DEFAULT_FRAME_LIST_LIMIT,
        Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=MAX_FRAME_LIST_LIMIT).contains(n)).ok_or_else(|| {
            StoreError::Invalid(format!(
                "`limit` must be a number from 1 to {MAX_FRAME_LIST_LIMIT}, got \"{}\"",
                shown(&raw)
            ))
        })?,
    };
    let (session, frames, more) = store.session_frames(id, r.from, r.to, limit).await?;
    let list: Vec<Value> =
        frames.iter().map(|f| json!({"timestamp": iso_ms(f.ts_ms), "ts_ms": f.ts_ms, "size": f.size})).collect();
    Ok(json!({
        "session_id": session.id,
        "count": list.len(),
        "truncated": more,
        "next_from": if more { frames.last().map(|f| iso_ms(f.ts_ms + 1)) } else { None },
        "frames": list,
    }))
}

async fn frame_at(store: &FrameStore, raw_ts: &str, query: &str) -> Result<Resp, StoreError> {
    let decoded = percent_decode(raw_ts).unwrap_or_default();
    let ts = parse_time(&decoded)
        .map_err(|e| StoreError::Invalid(format!("timestamp: {e}, got \"{}\"", shown(&decoded))))?;
    let tolerance = match query_param(query, "tolerance") {
        None => DEFAULT_TOLERANCE_MS,
        Some(raw) => raw.parse::<i64>().ok().filter(|t| (0..=MAX_TOLERANCE_MS).contains(t)).ok_or_else(|| {
            StoreError::Invalid(format!(
                "`tolerance` must be milliseconds from 0 to {MAX_TOLERANCE_MS}, got \"{}\"",
                shown(&raw)
            ))
        })?,
    };
    match store.frame_near(ts, tolerance).await? {
        Some((found, jpeg)) => Ok(frame_response(found, jpeg)),
        None => Err(StoreError::NotFound(format!("no frame within {tolerance} ms of {}", iso_ms(ts)))),
    }
}

fn frame_response(ts: i64, jpeg: Bytes) -> Resp {
    let mut r = response::jpeg(jpeg);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&iso_ms(ts)) {
        h.insert("x-frame-timestamp", v);
    }
    h.insert("x-frame-time-ms", HeaderValue::from(ts));
    r
}

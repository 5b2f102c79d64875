//! The recording REST API under `/<cam>/control/`: sessions, frames, keep, delete, size.
//! Answers in the spec's envelopes; every malformed parameter gets a 4xx that names it.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::auth::authorized;
use super::query::query_param;
use super::response::{self, Resp};
use super::route::ControlRoute;
use crate::app::App;
use crate::record::FrameStore;
use crate::record::model::StoreError;
use crate::util::{iso_ms, parse_time};

/// Frame listings may cover at most this much time per request (a day of 10 fps is 864 000
/// frames; clients page through longer spans).
const MAX_FRAME_LIST_SPAN_MS: i64 = 24 * 3_600_000;
const DEFAULT_FRAME_LIST_LIMIT: usize = 10_000;
const MAX_FRAME_LIST_LIMIT: usize = 100_000;
/// Default and maximum distance of the frame returned for a timestamp.
const DEFAULT_TOLERANCE_MS: i64 = 5_000;
const MAX_TOLERANCE_MS: i64 = 24 * 3_600_000;
const MAX_BODY: usize = 64 << 10;

pub async fn handle(app: &Arc<App>, name: &str, route: ControlRoute<'_>, req: &mut Request<Incoming>) -> Resp {
    let Some(camera) = app.camera(name) else {
        return response::not_found(&format!("no camera at /{name}"));
    };
    if !authorized(camera.config.token.as_ref(), req.headers(), req.uri().query()) {
        return response::error(
            StatusCode::UNAUTHORIZED,
            "this camera requires a token (?token= or Authorization: Bearer)",
        );
    }
    let allowed = allowed_methods(route);
    if !allowed.contains(req.method()) {
        let list = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let mut r = response::error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {list} here"));
        if let Ok(v) = HeaderValue::from_str(&list) {
            r.headers_mut().insert(hyper::header::ALLOW, v);
        }
        return r;
    }
    if is_video_route(route) {
        return super::video::handle(app, &camera, route, req).await;
    }
    let Some(store) = camera.frames.clone() else {
        let why = camera.frames_unavailable.clone().unwrap_or_else(|| "frame storage is not available".into());
        let status =
            if matches!(route, ControlRoute::RecordingStart) { StatusCode::CONFLICT } else { StatusCode::NOT_FOUND };
        return response::error(status, &format!("camera {}: {why}", camera.id()));
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let result = match route {
        ControlRoute::RecordingStart => start(&store, req).await,
        ControlRoute::RecordingStop => store
            .stop_session()
            .await
            .map(|s| json!({"session_id": s.id, "message": "Recording stopped", "session": s.to_json()})),
        ControlRoute::RecordingActive => Ok(match store.active() {
            Some(s) => json!({"active": true, "session_id": s.id, "session": s.to_json()}),
            None => json!({"active": false, "session_id": null, "session": null}),
        }),
        ControlRoute::RecordingSize => store.size().await.map(|s| s.to_json()),
        ControlRoute::Sessions => sessions(&store, &query).await,
        ControlRoute::SessionFrames(id) => session_frames(&store, id, &query).await,
        ControlRoute::FrameAt(ts) => return frame_at(&store, ts, &query).await,
        ControlRoute::Session(id) => match parse_id(id) {
            Ok(id) => store
                .delete_session(id)
                .await
                .map(|s| json!({"session_id": s.id, "message": "Session deleted", "frames_deleted": s.frame_count})),
            Err(e) => Err(e),
        },
        ControlRoute::Keep(id) => keep(&store, id, req).await,
        ControlRoute::Page => unreachable!("the page is served by the camera route"),
        _ => unreachable!("video routes are handled above"),
    };
    match result {
        Ok(data) => response::success(data),
        Err(e) => store_error(e),
    }
}

fn allowed_methods(route: ControlRoute) -> &'static [Method] {
    match route {
        ControlRoute::RecordingStart | ControlRoute::RecordingStop => &[Method::POST],
        ControlRoute::Session(_) => &[Method::DELETE],
        ControlRoute::Keep(_) => &[Method::PUT],
        r if is_video_route(r) => super::video::methods(r),
        _ => &[Method::GET, Method::HEAD],
    }
}

fn is_video_route(route: ControlRoute) -> bool {
    matches!(
        route,
        ControlRoute::Spans
            | ControlRoute::HlsTimerange
            | ControlRoute::HlsSegment(_)
            | ControlRoute::HlsInit(_)
            | ControlRoute::HlsSession(_)
            | ControlRoute::Mp4Segments
            | ControlRoute::Mp4Segment(_)
            | ControlRoute::Export
            | ControlRoute::ExportJobs
            | ControlRoute::ExportJob(_)
            | ControlRoute::ExportDownload(_)
    )
}

/// An error envelope; a 409 also carries the session that is in the way.
pub fn store_error(e: StoreError) -> Resp {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({"status": "error", "error": e.message(), "code": status.as_u16()});
    if let StoreError::Conflict(_, Some(s)) = &e {
        body["session"] = s.to_json();
    }
    response::json(status, &body)
}

async fn read_json(req: &mut Request<Incoming>) -> Result<Option<Value>, StoreError> {
    let body = Limited::new(req.body_mut(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| StoreError::BadRequest(format!("request body larger than {MAX_BODY} bytes")))?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| StoreError::BadRequest(format!("request body is not JSON: {e}")))
}

async fn start(store: &FrameStore, req: &mut Request<Incoming>) -> Result<Value, StoreError> {
    let reason = match read_json(req).await? {
        None => None,
        Some(Value::Object(map)) => match map.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= 1000 => Some(s.clone()),
            Some(_) => {
                return Err(StoreError::BadRequest("`reason` must be a string of at most 1000 characters".into()));
            }
        },
        Some(_) => return Err(StoreError::BadRequest("body must be a JSON object like {\"reason\": \"...\"}".into())),
    };
    let s = store.start_session(reason).await?;
    Ok(json!({"session_id": s.id, "message": "Recording started", "session": s.to_json()}))
}

async fn keep(store: &FrameStore, id: &str, req: &mut Request<Incoming>) -> Result<Value, StoreError> {
    let id = parse_id(id)?;
    let keep = match read_json(req).await? {
        None => true,
        Some(v) => match v.get("keep") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(StoreError::BadRequest("`keep` must be true or false".into())),
        },
    };
    let s = store.set_keep(id, keep).await?;
    let message = if keep { "Session protected from retention" } else { "Session no longer protected" };
    Ok(json!({"session_id": s.id, "keep": s.keep, "message": message, "session": s.to_json()}))
}

pub fn parse_id(raw: &str) -> Result<i64, StoreError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| StoreError::BadRequest(format!("session id must be a positive whole number, got \"{raw}\"")))
}

/// A time parameter: ISO-8601 or Unix milliseconds.
pub fn time_param(query: &str, key: &str) -> Result<Option<i64>, StoreError> {
    match query_param(query, key) {
        None => Ok(None),
        Some(raw) => parse_time(&raw).map(Some).ok_or_else(|| {
            StoreError::BadRequest(format!(
                "`{key}` must be a time like 2025-08-15T10:00:00.000Z or Unix milliseconds, got \"{raw}\""
            ))
        }),
    }
}

/// `from`/`to` with defaults, checked for order.
fn range(query: &str, default_from: i64, default_to: i64) -> Result<(i64, i64), StoreError> {
    let from = time_param(query, "from")?.unwrap_or(default_from);
    let to = time_param(query, "to")?.unwrap_or(default_to);
    if to < from {
        return Err(StoreError::BadRequest(format!("`to` ({}) is before `from` ({})", iso_ms(to), iso_ms(from))));
    }
    Ok((from, to))
}

async fn sessions(store: &FrameStore, query: &str) -> Result<Value, StoreError> {
    let (from, to) = range(query, 0, i64::MAX)?;
    let list = store.sessions(from, to).await?;
    Ok(json!({"count": list.len(), "sessions": list.iter().map(|s| s.to_json()).collect::<Vec<_>>()}))
}

async fn session_frames(store: &FrameStore, id: &str, query: &str) -> Result<Value, StoreError> {
    let id = parse_id(id)?;
    let session = store.session(id).await?;
    let end = session.end_ms.unwrap_or_else(crate::util::now_ms).max(session.last_frame_ms.unwrap_or(0));
    // Without an explicit end, a listing covers at most the first 24 h from `from`.
    let default_from = time_param(query, "from")?.unwrap_or(session.start_ms);
    let (from, to) = range(query, session.start_ms, end.min(default_from.saturating_add(MAX_FRAME_LIST_SPAN_MS)))?;
    // The span asked for (or, without from/to, the session's own length) is what counts:
    // a client asking for years must learn to page, not get a silently clipped answer.
    let span = to.saturating_sub(from);
    if span > MAX_FRAME_LIST_SPAN_MS {
        return Err(StoreError::BadRequest(format!(
            "the range covers {} h; list at most 24 h of frames per request (page with `from`/`to`)",
            span / 3_600_000
        )));
    }
    let limit = match query_param(query, "limit") {
        None => DEFAULT_FRAME_LIST_LIMIT,
        Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=MAX_FRAME_LIST_LIMIT).contains(n)).ok_or_else(|| {
            StoreError::BadRequest(format!("`limit` must be a number from 1 to {MAX_FRAME_LIST_LIMIT}, got \"{raw}\""))
        })?,
    };
    let (session, frames, more) = store.session_frames(id, from, to, limit).await?;
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

async fn frame_at(store: &FrameStore, raw_ts: &str, query: &str) -> Resp {
    let decoded = super::query::percent_decode(raw_ts).unwrap_or_default();
    let Some(ts) = parse_time(&decoded) else {
        return store_error(StoreError::BadRequest(format!(
            "timestamp must be like 2025-08-15T10:00:00.000Z or Unix milliseconds, got \"{decoded}\""
        )));
    };
    let tolerance = match query_param(query, "tolerance") {
        None => DEFAULT_TOLERANCE_MS,
        Some(raw) => match raw.parse::<i64>() {
            Ok(t) if (0..=MAX_TOLERANCE_MS).contains(&t) => t,
            _ => {
                return store_error(StoreError::BadRequest(format!(
                    "`tolerance` must be milliseconds from 0 to {MAX_TOLERANCE_MS}, got \"{raw}\""
                )));
            }
        },
    };
    match store.frame_near(ts, tolerance).await {
        Ok(Some((found, jpeg))) => frame_response(found, jpeg),
        Ok(None) => store_error(StoreError::NotFound(format!("no frame within {tolerance} ms of {}", iso_ms(ts)))),
        Err(e) => store_error(e),
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

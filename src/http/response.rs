//! Response builders, including the spec's JSON envelopes:
//! `{"status":"success","data":...}` and `{"status":"error","error":...,"code":...}`.

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

pub use super::body::Body;
pub type Resp = Response<Body>;

pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn json(status: StatusCode, value: &Value) -> Resp {
    let mut r = with_type(status, "application/json", value.to_string());
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn success(data: Value) -> Resp {
    json(StatusCode::OK, &json!({"status": "success", "data": data}))
}

pub fn error(status: StatusCode, message: &str) -> Resp {
    json(status, &json!({"status": "error", "error": message, "code": status.as_u16()}))
}

pub fn html(page: Bytes) -> Resp {
    let mut r = with_type(StatusCode::OK, "text/html; charset=utf-8", page);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Prometheus' text exposition format.
pub fn prometheus(text: String) -> Resp {
    let mut r = with_type(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", Bytes::from(text));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn jpeg(frame: Bytes) -> Resp {
    let mut r = with_type(StatusCode::OK, "image/jpeg", frame);
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A relative redirect, so it also works behind a reverse-proxy prefix.
pub fn redirect(location: &'static str) -> Resp {
    let mut r = with_type(StatusCode::FOUND, "text/plain", "");
    r.headers_mut().insert(LOCATION, HeaderValue::from_static(location));
    r
}

pub fn not_found(what: &str) -> Resp {
    error(StatusCode::NOT_FOUND, what)
}

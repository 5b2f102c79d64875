//! Cross-origin access exactly as configured (`server.cors_allow_origin`).
//!
//! - `"*"` (the spec's default) lets any page read and use the viewer API: watch, list,
//!   download, record. Deleting is not offered to other origins: the preflight for DELETE is
//!   answered without it, so a browser refuses a cross-origin delete before it is sent.
//! - An explicit origin (`"https://wincc.plant.example"`) is trusted with everything,
//!   deletes included (with the admin token, as always).
//! - `null` (absent from the config, or `"cors_allow_origin": null`) sends no CORS headers.

use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    HeaderValue, VARY,
};
use hyper::{HeaderMap, StatusCode};

use super::response::{self, Resp};

const ANY_ORIGIN_METHODS: &str = "GET, HEAD, POST, PUT, OPTIONS";
const TRUSTED_ORIGIN_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// The answer to a preflight (`OPTIONS`) request.
pub fn preflight(allow_origin: Option<&str>) -> Resp {
    let mut r = response::with_type(StatusCode::NO_CONTENT, "text/plain", "");
    let Some(origin) = allow_origin else { return r };
    let h = r.headers_mut();
    let methods = if origin == "*" { ANY_ORIGIN_METHODS } else { TRUSTED_ORIGIN_METHODS };
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, Range"));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// Adds the allow-origin header every response carries.
pub fn apply(allow_origin: Option<&str>, headers: &mut HeaderMap) {
    let Some(origin) = allow_origin.and_then(|o| HeaderValue::from_str(o).ok()) else { return };
    let explicit = origin != "*";
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if explicit {
        headers.insert(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_origin_may_not_delete_a_trusted_one_may() {
        let any = preflight(Some("*"));
        let methods = any.headers().get(ACCESS_CONTROL_ALLOW_METHODS).unwrap().to_str().unwrap();
        assert!(!methods.contains("DELETE"), "{methods}");
        let trusted = preflight(Some("https://wincc.example"));
        assert!(trusted.headers().get(ACCESS_CONTROL_ALLOW_METHODS).unwrap().to_str().unwrap().contains("DELETE"));
        assert!(preflight(None).headers().get(ACCESS_CONTROL_ALLOW_METHODS).is_none());
        let mut h = HeaderMap::new();
        apply(Some("https://wincc.example"), &mut h);
        assert_eq!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://wincc.example");
        assert_eq!(h.get(VARY).unwrap(), "Origin");
    }
}

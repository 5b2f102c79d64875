//! Cross-origin access exactly as configured (`server.cors_allow_origin`).
//!
//! - `"*"` (the spec's default, also when the field is absent or `null`) lets any page read
//!   and use the viewer API: watch, list, download, record. Deleting is not offered to other
//!   origins: a preflight for DELETE is refused, so a browser refuses a cross-origin delete
//!   before it is sent.
//! - One origin (`"https://wincc.plant.example"`) is trusted with everything, deletes included
//!   (with the admin token, as always); pages of any other origin get no CORS headers.
//! - `""` sends no CORS headers at all.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) gets CORS headers
//! only when its origin, its method and every header it asks for are allowed; otherwise a 403
//! saying which, and the browser does not send the request.

use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderValue, ORIGIN, VARY,
};
use hyper::{HeaderMap, StatusCode};

use super::response::{self, Resp};

/// What a page of any origin may do (with `"*"`): everything but deleting.
const ANY_ORIGIN: Policy =
    Policy { methods: "GET, HEAD, POST, PUT, OPTIONS", headers: "Authorization, Content-Type, Range" };
/// What the one configured origin may do: everything the API offers.
const TRUSTED_ORIGIN: Policy = Policy {
    methods: "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    headers: "Authorization, Content-Type, Range, If-Match",
};

/// The `Access-Control-Allow-Methods` and `-Headers` values, which are also what is checked.
struct Policy {
    methods: &'static str,
    headers: &'static str,
}

impl Policy {
    fn allows_method(&self, method: &str) -> bool {
        self.methods.split(", ").any(|m| m == method)
    }

    fn allows_header(&self, name: &str) -> bool {
        self.headers.split(", ").any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Which policy applies to a request from `origin`; `None` when it gets no CORS headers.
fn policy(allow_origin: Option<&str>, origin: Option<&str>) -> Option<&'static Policy> {
    match allow_origin? {
        "*" => Some(&ANY_ORIGIN),
        // Browsers send scheme and host in lower case; the configuration may not be.
        configured => origin.filter(|o| o.eq_ignore_ascii_case(configured)).map(|_| &TRUSTED_ORIGIN),
    }
}

fn header(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer to an `OPTIONS` request: a preflight is allowed (204 with the CORS headers) or
/// refused (403); an `OPTIONS` that is not a preflight gets a bare 204.
pub fn preflight(allow_origin: Option<&str>, request: &HeaderMap) -> Resp {
    let (Some(origin), Some(method)) = (header(request, ORIGIN), header(request, ACCESS_CONTROL_REQUEST_METHOD)) else {
        return response::with_type(StatusCode::NO_CONTENT, "text/plain", "");
    };
    let refused = |why: &str| response::error(StatusCode::FORBIDDEN, &format!("{why} (server.cors_allow_origin)"));
    let Some(policy) = policy(allow_origin, Some(origin)) else {
        return refused("cross-origin requests from this origin are not allowed");
    };
    if !policy.allows_method(method) {
        return refused(&format!(
            "cross-origin {} requests are not allowed from this origin",
            super::params::shown(method)
        ));
    }
    let asked = header(request, ACCESS_CONTROL_REQUEST_HEADERS).unwrap_or("");
    let unknown = asked.split(',').map(str::trim).find(|h| !h.is_empty() && !policy.allows_header(h));
    if let Some(h) = unknown {
        return refused(&format!("the request header {} is not allowed cross-origin", super::params::shown(h)));
    }
    let mut r = response::with_type(StatusCode::NO_CONTENT, "text/plain", "");
    let h = r.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(policy.methods));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(policy.headers));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// Adds the allow-origin header a response carries for the request's origin, if any.
pub fn apply(allow_origin: Option<&str>, request: &HeaderMap, headers: &mut HeaderMap) {
    let Some(configured) = allow_origin else { return };
    if configured == "*" {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        return;
    }
    // The answer depends on the request's origin: caches must keep them apart.
    headers.insert(VARY, HeaderValue::from_static("Origin"));
    let origin = header(request, ORIGIN);
    if policy(allow_origin, origin).is_some()
        && let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok())
    {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: &str, method: &str, headers: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_str(method).unwrap());
        if !headers.is_empty() {
            h.insert(ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_str(headers).unwrap());
        }
        h
    }

    fn allowed_methods(r: &Resp) -> Option<&str> {
        r.headers().get(ACCESS_CONTROL_ALLOW_METHODS).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn any_origin_may_not_delete_a_trusted_one_may() {
        let get = preflight(Some("*"), &request("http://evil.example", "GET", "authorization"));
        assert_eq!(get.status(), StatusCode::NO_CONTENT);
        assert!(!allowed_methods(&get).unwrap().contains("DELETE"));
        let delete = preflight(Some("*"), &request("http://evil.example", "DELETE", ""));
        assert_eq!((delete.status(), allowed_methods(&delete)), (StatusCode::FORBIDDEN, None));
        let trusted = preflight(Some("https://wincc.example"), &request("https://WinCC.example", "DELETE", ""));
        assert!(allowed_methods(&trusted).unwrap().contains("DELETE"));
    }

    #[test]
    fn other_origins_unknown_headers_and_no_cors_get_nothing() {
        for (config, req) in [
            (Some("https://wincc.example"), request("https://evil.example", "GET", "")),
            (Some("https://wincc.example"), request("https://wincc.example.evil.example", "GET", "")),
            (Some("*"), request("https://evil.example", "GET", "x-secret")),
            (Some("*"), request("https://evil.example", "PATCH", "")),
            (None, request("https://wincc.example", "GET", "")),
        ] {
            let r = preflight(config, &req);
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{config:?} {req:?}");
            assert!(r.headers().get(ACCESS_CONTROL_ALLOW_METHODS).is_none());
            let mut h = HeaderMap::new();
            apply(config, &req, &mut h);
            assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none_or(|v| v == "*"), "{config:?}: {h:?}");
        }
        // Not a preflight at all.
        assert_eq!(preflight(Some("*"), &HeaderMap::new()).status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn a_trusted_origin_is_named_back_to_itself_only() {
        let mut h = HeaderMap::new();
        apply(Some("https://wincc.example"), &request("https://wincc.example", "GET", ""), &mut h);
        assert_eq!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://wincc.example");
        assert_eq!(h.get(VARY).unwrap(), "Origin");
        let mut h = HeaderMap::new();
        apply(Some("*"), &HeaderMap::new(), &mut h);
        assert_eq!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "*");
        let mut h = HeaderMap::new();
        apply(None, &request("https://wincc.example", "GET", ""), &mut h);
        assert!(h.is_empty());
    }
}

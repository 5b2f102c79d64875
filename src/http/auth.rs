//! Camera tokens: accepted as `?token=` (browsers cannot set headers on a WebSocket) or as
//! `Authorization: Bearer`, compared in constant time.

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::query::query_param;
use crate::config::secret::Secret;

/// Compares without an early exit, so the time taken does not reveal how many leading
/// characters of a guess were right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// The token a request presents, if any.
pub fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(token) = query.and_then(|q| query_param(q, "token")) {
        return Some(token);
    }
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// True when the camera needs no token or the request presents the right one.
pub fn authorized(required: Option<&Secret>, headers: &HeaderMap, query: Option<&str>) -> bool {
    match required {
        None => true,
        Some(secret) => {
            presented_token(headers, query).is_some_and(|t| constant_time_eq(t.as_bytes(), secret.expose().as_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn query_or_bearer() {
        let secret = Secret::new("s3cret".into());
        let mut h = HeaderMap::new();
        assert!(!authorized(Some(&secret), &h, None));
        assert!(authorized(Some(&secret), &h, Some("a=1&token=s3cret")));
        assert!(!authorized(Some(&secret), &h, Some("token=s3cre")));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert!(authorized(Some(&secret), &h, None));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic s3cret"));
        assert!(!authorized(Some(&secret), &h, None));
        assert!(authorized(None, &HeaderMap::new(), None));
    }
}

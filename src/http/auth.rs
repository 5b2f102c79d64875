//! Who is asking: the credential a request presents, what it may do, and a per-address
//! brake on guessing.
//!
//! - Viewer routes take the camera's token as `?token=` (browsers cannot set headers on a
//!   WebSocket) or `Authorization: Bearer`; the admin token works there too.
//! - Admin routes take `server.admin_token` as `Authorization: Bearer` only: a token in a
//!   URL ends up in histories and proxy logs, and a cross-site form cannot set the header.
//! - Tokens are compared in constant time and never logged (the request path is logged
//!   without its query).
//! - An address that makes [`Lockouts::max_failures`] different wrong guesses within a
//!   minute gets 429 for the lockout time, whatever it presents. Only *different* credentials
//!   count: a page that keeps reconnecting with one stale token is not guessing, and must not
//!   lock out every other camera on the same client.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::query::query_param;
use super::route::Role;
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

/// The credentials a request carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presented {
    pub bearer: Option<String>,
    pub query: Option<String>,
}

impl Presented {
    pub fn of(headers: &HeaderMap, query: Option<&str>) -> Presented {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string());
        Presented { bearer, query: query.and_then(|q| query_param(q, "token")) }
    }

    fn any(&self) -> bool {
        self.bearer.is_some() || self.query.is_some()
    }

    /// What tells one guess from another, without keeping the guess itself.
    pub fn fingerprint(&self, keys: &RandomState) -> u64 {
        keys.hash_one((&self.bearer, &self.query))
    }

    fn matches(&self, secret: &Secret, query_allowed: bool) -> bool {
        let eq = |t: &String| constant_time_eq(t.as_bytes(), secret.expose().as_bytes());
        self.bearer.as_ref().is_some_and(eq) || (query_allowed && self.query.as_ref().is_some_and(eq))
    }
}

/// What an authorized request may do beyond its route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The admin token was presented (needed e.g. for `{"keep": false}`).
    pub admin: bool,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// 401: no usable credential.
    Unauthorized(&'static str),
    /// 403: the credential does not allow this (or admin actions are switched off).
    Forbidden(&'static str),
}

impl Denied {
    /// Whether this refusal counts towards the address's lockout (a guess, not a setting).
    pub fn is_attempt(&self) -> bool {
        !matches!(self, Denied::Forbidden(NO_ADMIN_TOKEN | NO_METRICS_TOKEN))
    }
}

pub const NO_ADMIN_TOKEN: &str = "admin actions are disabled: no server.admin_token is set in config.json";
pub const NO_METRICS_TOKEN: &str =
    "metrics are disabled: set server.metrics_token (or server.admin_token) in config.json";
const METRICS_NEEDED: &str = "this needs server.metrics_token or server.admin_token as Authorization: Bearer";
const ADMIN_NEEDED: &str = "this needs the admin token (server.admin_token) as Authorization: Bearer";
const TOKEN_NEEDED: &str = "this camera requires a token (?token= or Authorization: Bearer)";
const TOKEN_WRONG: &str = "the token is not valid for this camera";

/// Decides a request: `role` of its route, the route's own token (the camera's for viewer
/// routes, `server.metrics_token` for `/metrics`), the admin token (if configured) and what
/// the request presents. Pure, so it is tested alone.
pub fn authorize(
    role: Role,
    camera_token: Option<&Secret>,
    admin_token: Option<&Secret>,
    presented: &Presented,
) -> Result<Grant, Denied> {
    let admin = admin_token.is_some_and(|t| presented.matches(t, false));
    match role {
        Role::Public => Ok(Grant { admin }),
        // Header only: a scraper is configured once, and a query string ends up in logs.
        Role::Metrics => match (camera_token, admin_token) {
            (None, None) => Err(Denied::Forbidden(NO_METRICS_TOKEN)),
            _ if admin || camera_token.is_some_and(|t| presented.matches(t, false)) => Ok(Grant { admin }),
            _ if presented.bearer.is_some() => Err(Denied::Forbidden(METRICS_NEEDED)),
            _ => Err(Denied::Unauthorized(METRICS_NEEDED)),
        },
        Role::Admin => match admin_token {
            None => Err(Denied::Forbidden(NO_ADMIN_TOKEN)),
            Some(_) if admin => Ok(Grant { admin: true }),
            Some(_) if presented.bearer.is_some() => Err(Denied::Forbidden(ADMIN_NEEDED)),
            Some(_) => Err(Denied::Unauthorized(ADMIN_NEEDED)),
        },
        Role::Viewer => {
            // The admin token opens every camera, in the query too (browsers' sockets).
            let admin_anywhere = admin || admin_token.is_some_and(|t| presented.matches(t, true));
            match camera_token {
                None => Ok(Grant { admin }),
                Some(_) if admin_anywhere => Ok(Grant { admin }),
                Some(t) if presented.matches(t, true) => Ok(Grant { admin: false }),
                Some(_) if presented.any() => Err(Denied::Unauthorized(TOKEN_WRONG)),
                Some(_) => Err(Denied::Unauthorized(TOKEN_NEEDED)),
            }
        }
    }
}

/// Addresses kept at most; beyond this the stalest entries are forgotten, so a flood of
/// addresses cannot grow memory.
const MAX_TRACKED: usize = 4096;
const WINDOW: Duration = Duration::from_secs(60);

struct Entry {
    window_start: Instant,
    /// Fingerprints of the different wrong credentials in this window.
    guesses: Vec<u64>,
    locked_until: Option<Instant>,
}

/// Failed authentications per client address.
pub struct Lockouts {
    pub max_failures: u32,
    pub lockout: Duration,
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// Per-process keys for credential fingerprints.
    pub keys: RandomState,
}

impl Lockouts {
    pub fn new(max_failures: u32, lockout: Duration) -> Lockouts {
        Lockouts { max_failures, lockout, entries: Mutex::default(), keys: RandomState::new() }
    }

    /// `Err(retry_after)` while the address is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&ip).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt with the credential of fingerprint `guess`; `true` when this
    /// one locked the address out. Repeating a guess is not a new one.
    pub fn failed(&self, ip: IpAddr, guess: u64, now: Instant) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&ip) {
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now) || now.saturating_duration_since(e.window_start) < WINDOW
            });
            if entries.len() >= MAX_TRACKED
                && let Some(stalest) = entries.iter().min_by_key(|(_, e)| e.window_start).map(|(ip, _)| *ip)
            {
                entries.remove(&stalest);
            }
        }
        let fresh = || Entry { window_start: now, guesses: Vec::new(), locked_until: None };
        let e = entries.entry(ip).or_insert_with(fresh);
        if now.saturating_duration_since(e.window_start) >= WINDOW {
            *e = fresh();
        }
        if e.guesses.contains(&guess) {
            return false;
        }
        e.guesses.push(guess);
        if e.guesses.len() >= self.max_failures as usize && e.locked_until.is_none_or(|u| u <= now) {
            e.locked_until = Some(now + self.lockout);
            e.window_start = now + self.lockout;
            e.guesses.clear();
            return true;
        }
        false
    }

    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn secret(s: &str) -> Secret {
        Secret::new(s.into())
    }

    fn bearer(t: &str) -> Presented {
        Presented { bearer: Some(t.into()), query: None }
    }

    fn query(t: &str) -> Presented {
        Presented { bearer: None, query: Some(t.into()) }
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn credentials_come_from_the_query_or_a_bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(Presented::of(&h, Some("a=1&token=s3cret")).query.as_deref(), Some("s3cret"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(Presented::of(&h, None).bearer.as_deref(), Some("s3cret"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic s3cret"));
        assert_eq!(Presented::of(&h, None), Presented::default());
    }

    #[test]
    fn viewers_need_the_camera_token_or_the_admin_token() {
        let (cam, admin) = (secret("cam-token"), secret("admin-token-0123456"));
        let v = |p: &Presented| authorize(Role::Viewer, Some(&cam), Some(&admin), p);
        assert_eq!(v(&Presented::default()), Err(Denied::Unauthorized(TOKEN_NEEDED)));
        assert_eq!(v(&query("nope")), Err(Denied::Unauthorized(TOKEN_WRONG)));
        assert_eq!(v(&query("cam-token")), Ok(Grant { admin: false }));
        assert_eq!(v(&bearer("cam-token")), Ok(Grant { admin: false }));
        assert_eq!(v(&bearer("admin-token-0123456")), Ok(Grant { admin: true }));
        assert_eq!(v(&query("admin-token-0123456")), Ok(Grant { admin: false }), "opens, but grants no admin action");
        assert_eq!(authorize(Role::Viewer, None, None, &Presented::default()), Ok(Grant { admin: false }));
    }

    #[test]
    fn admin_routes_need_the_admin_token_as_a_header() {
        let (cam, admin) = (secret("cam-token"), secret("admin-token-0123456"));
        let a = |p: &Presented| authorize(Role::Admin, Some(&cam), Some(&admin), p);
        assert_eq!(a(&Presented::default()), Err(Denied::Unauthorized(ADMIN_NEEDED)));
        assert_eq!(a(&bearer("cam-token")), Err(Denied::Forbidden(ADMIN_NEEDED)), "a viewer token");
        assert_eq!(a(&query("admin-token-0123456")), Err(Denied::Unauthorized(ADMIN_NEEDED)), "not in URLs");
        assert_eq!(a(&bearer("admin-token-0123456")), Ok(Grant { admin: true }));
        let off = authorize(Role::Admin, None, None, &bearer("anything"));
        assert_eq!(off, Err(Denied::Forbidden(NO_ADMIN_TOKEN)));
        assert!(!off.unwrap_err().is_attempt(), "a missing setting is not a guess");
    }

    #[test]
    fn metrics_need_the_metrics_or_the_admin_token_as_a_header() {
        let (metrics, admin) = (secret("metrics-token-0123"), secret("admin-token-0123456"));
        let m = |p: &Presented| authorize(Role::Metrics, Some(&metrics), Some(&admin), p);
        assert_eq!(m(&Presented::default()), Err(Denied::Unauthorized(METRICS_NEEDED)));
        assert_eq!(m(&bearer("metrics-token-0123")), Ok(Grant { admin: false }));
        assert_eq!(m(&bearer("admin-token-0123456")), Ok(Grant { admin: true }));
        assert_eq!(m(&bearer("cam-token")), Err(Denied::Forbidden(METRICS_NEEDED)));
        assert_eq!(m(&query("metrics-token-0123")), Err(Denied::Unauthorized(METRICS_NEEDED)), "not in URLs");
        let only_admin = |p: &Presented| authorize(Role::Metrics, None, Some(&admin), p);
        assert_eq!(only_admin(&bearer("admin-token-0123456")), Ok(Grant { admin: true }));
        let off = authorize(Role::Metrics, None, None, &bearer("anything"));
        assert_eq!(off, Err(Denied::Forbidden(NO_METRICS_TOKEN)));
        assert!(!off.unwrap_err().is_attempt());
    }

    #[test]
    fn repeated_failures_lock_an_address_out_for_a_while() {
        let l = Lockouts::new(3, Duration::from_secs(60));
        let (ip, other) = ("10.0.0.7".parse().unwrap(), "10.0.0.8".parse().unwrap());
        let t0 = Instant::now();
        assert!(!l.failed(ip, 1, t0));
        assert!(!l.failed(ip, 2, t0));
        assert!(!l.failed(ip, 2, t0), "the same wrong token again is no new guess");
        assert!(l.check(ip, t0).is_ok());
        assert!(l.failed(ip, 3, t0), "the third different guess locks");
        assert_eq!(l.check(ip, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(l.check(other, t0).is_ok(), "per address");
        assert!(l.check(ip, t0 + Duration::from_secs(61)).is_ok(), "and only for a while");
    }

    #[test]
    fn failures_spread_over_time_do_not_lock() {
        let l = Lockouts::new(3, Duration::from_secs(60));
        let ip = "10.0.0.7".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(!l.failed(ip, i, t0 + Duration::from_secs(40 * i)), "failure {i}");
        }
    }

    #[test]
    fn a_flood_of_addresses_is_bounded() {
        let l = Lockouts::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            l.failed(IpAddr::from(i.to_be_bytes()), 1, t0);
        }
        assert!(l.tracked() <= MAX_TRACKED);
    }
}

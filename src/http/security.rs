//! The browser's half of security: headers on every response, and each page's
//! Content-Security-Policy.
//!
//! The pages keep their script and CSS inline (one request per page, no relative-URL trap
//! behind a reverse-proxy prefix), so their policy allows exactly those blocks by SHA-256
//! instead of `'unsafe-inline'`: an injected `<script>` or `onclick=` does not run. What else
//! they need, and why:
//! - `img-src data: blob:`: the inline favicon, and live JPEGs shown from `blob:` URLs;
//! - `media-src blob:`, `worker-src blob:`: hls.js and the live H.264 player (`web/h264.js`)
//!   play through Media Source (a `blob:` URL); hls.js runs its demuxer in a worker made from a
//!   `blob:` URL;
//! - `connect-src 'self' ws: wss:`: API calls, playlists, and the WebSockets (`'self'` covers
//!   same-origin `ws:`/`wss:` only since CSP 3, which older panel browsers lack);
//! - `frame-ancestors`: WinCC embeds the pages in an iframe, so which origins may embed them
//!   is `server.frame_ancestors` (our own origin always may).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::HeaderMap;
use hyper::header::{CONTENT_SECURITY_POLICY, HeaderValue, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use sha2::{Digest, Sha256};

/// Headers for every response: browsers take the declared type as it is (a JSON error or a
/// recording is never run as a script or shown as a page), and no page sends a `Referer`
/// (camera tokens travel in query strings).
pub fn apply_common(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// The policy of a page (without `frame-ancestors`, which comes from the configuration):
/// its inline `<script>` and `<style>` blocks by hash, everything else from our own origin.
pub fn page_policy(html: &str) -> String {
    let scripts = inline_hashes(html, "script").join(" ");
    let styles = inline_hashes(html, "style").join(" ");
    format!(
        "default-src 'self'; script-src 'self' {scripts}; style-src 'self' {styles}; img-src 'self' data: blob:; \
         media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; \
         base-uri 'none'; form-action 'self'"
    )
}

/// `'sha256-…'` of the text of every `<tag>` element written without attributes (ours are;
/// a `<script src=…>` is covered by `'self'`).
fn inline_hashes(html: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some((_, after)) = rest.split_once(open.as_str()) {
        let Some((body, tail)) = after.split_once(close.as_str()) else { break };
        out.push(format!("'sha256-{}'", B64.encode(Sha256::digest(body.as_bytes()))));
        rest = tail;
    }
    out
}

/// A page's `Content-Security-Policy` value with the configured `frame-ancestors`.
pub fn page_csp(policy: &str, frame_ancestors: &[String]) -> Option<HeaderValue> {
    let ancestors: Vec<&str> = std::iter::once("'self'").chain(frame_ancestors.iter().map(String::as_str)).collect();
    // Sources were checked at config load (`config::origin`); a value that still cannot be a
    // header leaves the page without a policy rather than without an answer.
    HeaderValue::from_str(&format!("{policy}; frame-ancestors {}", ancestors.join(" "))).ok()
}

/// Puts a page's policy on its response.
pub fn apply_page(headers: &mut HeaderMap, policy: &str, frame_ancestors: &[String]) {
    if let Some(csp) = page_csp(policy, frame_ancestors) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::pages::pages;

    #[test]
    fn inline_blocks_are_allowed_by_their_hash() {
        let html = "<style>a{}</style><script>x()</script><p>no</p><script>y()</script><script src=\"/a.js\"></script>";
        let policy = page_policy(html);
        let hash = |s: &str| format!("'sha256-{}'", B64.encode(Sha256::digest(s.as_bytes())));
        assert!(policy.contains(&format!("script-src 'self' {} {};", hash("x()"), hash("y()"))), "{policy}");
        assert!(policy.contains(&format!("style-src 'self' {};", hash("a{}"))), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }

    #[test]
    fn frame_ancestors_follow_the_configuration() {
        let csp = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            page_csp("default-src 'self'", &list).unwrap().to_str().unwrap().to_string()
        };
        assert!(csp(&["*"]).ends_with("; frame-ancestors 'self' *"));
        assert!(csp(&[]).ends_with("; frame-ancestors 'self'"));
        assert!(
            csp(&["https://wincc.example", "https://*.plant.example"])
                .ends_with("; frame-ancestors 'self' https://wincc.example https://*.plant.example")
        );
    }

    /// What the policy cannot allow by hash must not be in a page at all: inline event
    /// handlers, `style` attributes, `javascript:` URLs, scripts or styles with attributes
    /// other than `src`. (The Chromium tests then load every page and fail on any console
    /// error, which is where a CSP violation is reported.)
    #[test]
    fn every_page_satisfies_its_own_policy() {
        let p = pages();
        for (name, page) in [
            ("dashboard", &p.dashboard),
            ("admin", &p.admin),
            ("test", &p.test),
            ("stream", &p.stream),
            ("control", &p.control),
        ] {
            let html = std::str::from_utf8(&page.html).unwrap();
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains(" style=") && !lower.contains("javascript:"), "{name}");
            let handler = lower.split(['<', ' ', '\n']).any(|w| {
                w.strip_prefix("on").is_some_and(|rest| {
                    rest.split_once('=')
                        .is_some_and(|(ev, _)| !ev.is_empty() && ev.bytes().all(|b| b.is_ascii_lowercase()))
                })
            });
            assert!(!handler, "{name} has an inline event handler attribute");
            for tag in ["script", "style"] {
                let opened = lower.matches(&format!("<{tag}")).count();
                let with_src = lower.matches(&format!("<{tag} src=")).count();
                assert_eq!(opened, inline_hashes(html, tag).len() + with_src, "{name}: every <{tag}> is hashed");
            }
            assert!(!html.contains('\r'), "{name}: browsers hash scripts after turning CRLF into LF");
        }
    }
}

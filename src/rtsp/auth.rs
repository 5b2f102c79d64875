//! RTSP authentication (RFC 2617 as cameras use it): Basic, and Digest with MD5, `qop=auth`
//! or no qop. Digest is preferred when a camera offers both: it never sends the password.
//! Other Digest variants (MD5-sess, SHA-256, auth-int) are rare on cameras and refused by
//! name, so the error tells the installer what the camera wanted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};

use super::url::Credentials;
use crate::store::segment::hex;

/// What a camera's `WWW-Authenticate` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Digest { realm: String, nonce: String, opaque: Option<String>, qop_auth: bool, algorithm: Option<String> },
}

/// The challenge to answer among all `WWW-Authenticate` values: Digest first, then Basic.
/// `Err` names what was offered when nothing is usable.
pub fn choose<'a>(offers: impl Iterator<Item = &'a str>) -> Result<Challenge, String> {
    let mut basic = false;
    let mut seen = Vec::new();
    for offer in offers {
        let (scheme, params) = offer.trim().split_once(' ').unwrap_or((offer.trim(), ""));
        if scheme.eq_ignore_ascii_case("Basic") {
            basic = true;
        } else if scheme.eq_ignore_ascii_case("Digest") {
            let get = |name: &str| param(params, name);
            let algorithm = get("algorithm");
            let md5 = algorithm.as_deref().is_none_or(|a| a.eq_ignore_ascii_case("MD5"));
            let qop = get("qop");
            let qop_auth = qop.as_deref().is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
            if let (true, true, Some(realm), Some(nonce)) = (md5, qop.is_none() || qop_auth, get("realm"), get("nonce"))
            {
                return Ok(Challenge::Digest { realm, nonce, opaque: get("opaque"), qop_auth, algorithm });
            }
            seen.push(format!("Digest {}", algorithm.unwrap_or_default()).trim().to_string());
        } else {
            seen.push(super::message::shown(scheme));
        }
    }
    if basic {
        return Ok(Challenge::Basic);
    }
    Err(if seen.is_empty() { "no WWW-Authenticate".into() } else { seen.join(", ") })
}

/// One `name=value` or `name="value"` of a challenge's comma-separated list.
fn param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            // Backslash escapes are allowed in quoted strings; cameras do not use them.
            let end = quoted.find('"')?;
            quoted.split_at_checked(end).map(|(v, n)| (v, n.get(1..).unwrap_or_default()))?
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value.trim().to_string());
        }
        rest = next;
    }
}

/// The `Authorization` value for one request. `nc` counts the requests answered with this
/// nonce (from 1); `cnonce` is the client's random nonce.
pub fn authorization(ch: &Challenge, c: &Credentials, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
    match ch {
        Challenge::Basic => format!("Basic {}", B64.encode(format!("{}:{}", c.user, c.password))),
        Challenge::Digest { realm, nonce, opaque, qop_auth, algorithm } => {
            let md5 = |s: String| hex(&Md5::digest(s.as_bytes()));
            let ha1 = md5(format!("{}:{realm}:{}", c.user, c.password));
            let ha2 = md5(format!("{method}:{uri}"));
            let mut out =
                format!("Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\"", c.user);
            if *qop_auth {
                let response = md5(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
                out.push_str(&format!(", response=\"{response}\", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""));
            } else {
                out.push_str(&format!(", response=\"{}\"", md5(format!("{ha1}:{nonce}:{ha2}"))));
            }
            if let Some(o) = opaque {
                out.push_str(&format!(", opaque=\"{o}\""));
            }
            if let Some(a) = algorithm {
                out.push_str(&format!(", algorithm={a}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    #[test]
    fn digest_matches_rfc_2617() {
        // RFC 2617 §3.5 (with its errata: the response for method GET).
        let ch = choose(
            [r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#]
                .into_iter(),
        )
        .unwrap();
        let a = authorization(&ch, &creds("Mufasa", "Circle Of Life"), "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(a.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{a}");
        assert!(a.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""), "{a}");
        assert!(a.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{a}");
    }

    #[test]
    fn digest_without_qop() {
        // RFC 2069 style, as many cameras answer: MD5(HA1:nonce:HA2).
        let ch = choose([r#"Digest realm="IP Camera", nonce="abc""#].into_iter()).unwrap();
        let a = authorization(&ch, &creds("admin", "pw"), "DESCRIBE", "rtsp://h/cam", 1, "x");
        let ha1 = hex(&Md5::digest(b"admin:IP Camera:pw"));
        let ha2 = hex(&Md5::digest(b"DESCRIBE:rtsp://h/cam"));
        let want = hex(&Md5::digest(format!("{ha1}:abc:{ha2}").as_bytes()));
        assert!(a.ends_with(&format!("response=\"{want}\"")), "{a}");
        assert!(!a.contains("qop") && !a.contains("pw"));
    }

    #[test]
    fn prefers_digest_and_refuses_what_it_cannot_do() {
        let both = ["Basic realm=\"c\"", "Digest realm=\"c\", nonce=\"n\""];
        assert!(matches!(choose(both.into_iter()), Ok(Challenge::Digest { .. })));
        assert_eq!(choose(["Basic realm=\"c\""].into_iter()), Ok(Challenge::Basic));
        assert_eq!(
            choose(["Digest realm=\"c\", nonce=\"n\", algorithm=SHA-256"].into_iter()),
            Err("Digest SHA-256".into())
        );
        assert!(choose(["Digest realm=\"c\", nonce=\"n\", qop=\"auth-int\""].into_iter()).is_err());
        assert!(choose(["Negotiate"].into_iter()).is_err());
        assert_eq!(authorization(&Challenge::Basic, &creds("a", "b"), "X", "u", 1, ""), "Basic YTpi");
    }

    proptest! {
        #[test]
        fn arbitrary_challenges_never_panic(s in "(?s).{0,200}") {
            if let Ok(ch) = choose([s.as_str()].into_iter()) {
                let _ = authorization(&ch, &creds("u", "p"), "DESCRIBE", "rtsp://h/", 1, "c");
            }
        }
    }
}

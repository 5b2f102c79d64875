//! `rtsp://[user:pass@]host[:port]/path?query`, split into where to connect, what to put in
//! request lines (the URL without its user info: a password never goes on the wire in clear
//! text) and the credentials. Camera passwords are often not percent-encoded ('#', '/', even
//! '@' occur), so, like `crate::redact`, the user info runs up to the URL's last '@'.

use std::fmt;

/// A parsed camera URL. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    /// Host name or address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// `rtsp://host[:port]/path?query`, exactly as given minus the user info.
    pub request_url: String,
    pub credentials: Option<Credentials>,
}

/// Percent-decoded user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.credentials.as_ref().map(|c| c.user.as_str());
        write!(f, "RtspUrl({}, user {:?})", self.request_url, user)
    }
}

impl RtspUrl {
    /// Parses a camera URL; the error quotes the URL without its user info.
    pub fn parse(url: &str) -> Result<RtspUrl, String> {
        let url = url.trim();
        let bad = |why: &str| format!("the camera URL \"{}\" {why}", without_userinfo(url));
        let rest = match url.get(..7) {
            Some(s) if s.eq_ignore_ascii_case("rtsp://") => url.get(7..).unwrap_or_default(),
            _ => return Err(bad("does not start with rtsp://")),
        };
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("contains spaces or control characters"));
        }
        let (userinfo, hostpath) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (authority, path) = match hostpath.find(['/', '?']) {
            Some(i) => hostpath.split_at_checked(i).unwrap_or((hostpath, "")),
            None => (hostpath, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else { return Err(bad("has an unclosed '[' in its host")) };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(bad("has something after the ']' of its host")),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(['[', ']', '@']) || (host.contains(':') && !authority.starts_with('[')) {
            return Err(bad("has no usable host"));
        }
        let port = match port {
            None | Some("") => 554,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("has an invalid port")),
            },
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or_else(|| bad("has a user name that is not UTF-8"))?;
                let password = percent_decode(password).ok_or_else(|| bad("has a password that is not UTF-8"))?;
                Some(Credentials { user, password })
            }
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        let path = if path.is_empty() { "/".to_string() } else { path };
        let scheme = url.get(..7).unwrap_or("rtsp://");
        Ok(RtspUrl { request_url: format!("{scheme}{authority}{path}"), host: host.to_string(), port, credentials })
    }
}

/// `%XX` decoded; a '%' not followed by two hex digits stays as it is (a password with a bare
/// '%' is more likely than a broken escape). `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.as_bytes();
    while let Some((&b, rest)) = bytes.split_first() {
        let hex = |c: u8| (c as char).to_digit(16);
        match rest {
            [h, l, tail @ ..] if b == b'%' && hex(*h).is_some() && hex(*l).is_some() => {
                out.push((hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0)) as u8);
                bytes = tail;
            }
            _ => {
                out.push(b);
                bytes = rest;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A URL for messages: everything up to the last '@' after the scheme removed.
pub fn without_userinfo(url: &str) -> String {
    let shown = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_string(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => host.to_string(),
            None => url.to_string(),
        },
    };
    super::message::shown(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(url: &str) -> (String, u16, String, Option<(String, String)>) {
        let u = RtspUrl::parse(url).unwrap();
        (u.host, u.port, u.request_url, u.credentials.map(|c| (c.user, c.password)))
    }

    #[test]
    fn parses_camera_urls() {
        let s = String::from;
        assert_eq!(ok("rtsp://10.0.0.5/cam"), (s("10.0.0.5"), 554, s("rtsp://10.0.0.5/cam"), None));
        assert_eq!(
            ok("RTSP://admin:p%40ss%2Fw@cam.plant:8554/live?ch=1&sub=0"),
            (s("cam.plant"), 8554, s("RTSP://cam.plant:8554/live?ch=1&sub=0"), Some((s("admin"), s("p@ss/w"))))
        );
        // Unencoded '@' and '/' in the password: the last '@' ends the user info.
        assert_eq!(
            ok("rtsp://u:a@b/c@[::1]:554?x"),
            (s("::1"), 554, s("rtsp://[::1]:554/?x"), Some((s("u"), s("a@b/c"))))
        );
        assert_eq!(ok("rtsp://[fe80::1]"), (s("fe80::1"), 554, s("rtsp://[fe80::1]/"), None));
        assert_eq!(ok("rtsp://user@h/"), (s("h"), 554, s("rtsp://h/"), Some((s("user"), s("")))));
        assert_eq!(ok("rtsp://u:100%@h/").3, Some((s("u"), s("100%"))));
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "http://u:secret@h/",
            "rtsp://u:secret@h:0/",
            "rtsp://u:secret@h:99999/",
            "rtsp://u:secret@[::1/",
            "rtsp://u:secret@/x",
            "rtsp://u:secret@h/a b",
            "rtsp://u:%ff%fesecret@h/",
            "rtsp://u:secret@fe80::1/",
        ] {
            let e = RtspUrl::parse(url).unwrap_err();
            assert!(!e.contains("secret") && e.contains("h"), "{url}: {e}");
        }
        let u = RtspUrl::parse("rtsp://u:secret@h/").unwrap();
        assert!(!format!("{u:?}").contains("secret"));
    }

    proptest! {
        #[test]
        fn hostile_urls_never_panic(s in "(?s).{0,60}", p in "[rRtTsSpP:/@\\[\\]%0-9a-f.?]{0,40}") {
            let _ = RtspUrl::parse(&s);
            let _ = RtspUrl::parse(&format!("rtsp://{p}"));
        }

        #[test]
        fn passwords_round_trip(pw in "[^\\s\\p{Cc}]{0,20}", host in "[a-z0-9.]{1,20}") {
            let url = format!("rtsp://u:{pw}@{host}/p");
            let parsed = RtspUrl::parse(&url);
            // A password ending in a valid escape is decoded; anything else comes back verbatim.
            if !pw.contains('%') {
                let u = parsed.unwrap();
                prop_assert_eq!(u.credentials.unwrap().password, pw);
                prop_assert_eq!(u.request_url, format!("rtsp://{host}/p"));
            } else if let Err(e) = parsed {
                prop_assert!(!e.contains(&pw) || pw.len() < 2);
            }
        }
    }
}

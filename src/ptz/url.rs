//! ONVIF service addresses: `http://` or `https://`, host, port and path, and nothing else (no
//! user info: the credentials belong in `ptz.username` and `ptz.password`, where they are
//! treated as secrets).

use super::error::PtzError;

/// An `http(s)://host[:port]/path` URL, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnvifUrl {
    /// `https://`: the camera's certificate is checked (see `ptz::tls`).
    pub tls: bool,
    /// The host as the certificate must name it: a bracketed IPv6 address without brackets.
    pub host: String,
    /// `host:port` as given (a bracketed IPv6 address stays bracketed), with the port.
    pub authority: String,
    pub path: String,
}

impl OnvifUrl {
    /// Parses `url`; the error names the setting `field` (e.g. `ptz.onvif_url`).
    pub fn parse(url: &str, field: &str) -> Result<OnvifUrl, PtzError> {
        let url = url.trim();
        let scheme = |s: &str| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s));
        let (tls, rest) = if scheme("https://") {
            (true, url.get(8..))
        } else if scheme("http://") {
            (false, url.get(7..))
        } else {
            (false, None)
        };
        let Some(rest) = rest else {
            return Err(PtzError::Config(format!(
                "{field}: expected http(s)://<ip>:<port>/onvif/device_service, got \"{}\"",
                shown(url)
            )));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        // User info in the URL would put a password where we do not treat it as one.
        if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
            return Err(PtzError::Config(format!(
                "{field}: expected http(s)://<ip>:<port>/... without user or password (use ptz.username and ptz.password), got \"{}\"",
                shown(url)
            )));
        }
        let (host, port) = match authority.rsplit_once(']') {
            Some((bracketed, after)) => (bracketed.trim_start_matches('['), after.strip_prefix(':')),
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let authority = match port {
            Some(_) => authority.to_string(),
            None => format!("{authority}:{}", if tls { 443 } else { 80 }),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        Ok(OnvifUrl { tls, host: host.to_string(), authority, path })
    }
}

/// The start of a URL for messages, without any user info.
fn shown(url: &str) -> String {
    let url = match url.split_once('@') {
        Some((_, host)) => host,
        None => url,
    };
    url.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (bool, String, String, String) {
        let u = OnvifUrl::parse(url, "ptz.onvif_url").unwrap();
        (u.tls, u.host, u.authority, u.path)
    }

    #[test]
    fn parses_onvif_urls() {
        let s = String::from;
        assert_eq!(
            parts("http://192.168.1.20/onvif/device_service"),
            (false, s("192.168.1.20"), s("192.168.1.20:80"), s("/onvif/device_service"))
        );
        assert_eq!(parts("HTTP://[fe80::1]:8080"), (false, s("fe80::1"), s("[fe80::1]:8080"), s("/")));
        assert_eq!(parts("https://cam.plant/onvif"), (true, s("cam.plant"), s("cam.plant:443"), s("/onvif")));
        assert_eq!(parts("HTTPS://[::1]?x"), (true, s("::1"), s("[::1]:443"), s("/?x")));
        assert_eq!(parts("https://10.0.0.5:8443/o"), (true, s("10.0.0.5"), s("10.0.0.5:8443"), s("/o")));
        let e = OnvifUrl::parse("http://admin:pw@cam/onvif", "ptz.onvif_url").unwrap_err().to_string();
        assert!(e.starts_with("ptz.onvif_url: ") && !e.contains("pw"), "{e}");
        let e = OnvifUrl::parse("https://admin:pw@cam/onvif", "ptz.onvif_url").unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
        assert!(OnvifUrl::parse("rtsp://cam", "f").is_err());
        assert!(OnvifUrl::parse("https://", "f").is_err());
        assert!(OnvifUrl::parse("http://é", "f").is_ok());
        assert!(OnvifUrl::parse("httpé://x", "f").is_err());
        assert!(OnvifUrl::parse("httpsé://x", "f").is_err());
    }
}

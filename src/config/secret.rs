//! Secrets (tokens, passwords, camera URLs with credentials) in types that cannot be printed
//! by accident: `Debug` and `Display` show a redacted form, the real value needs `expose()`.

use std::fmt;

use crate::redact::redact_url;

/// A password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A camera URL. It usually carries `user:password@`; only the argv of FFmpeg sees it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl(String);

impl CameraUrl {
    pub fn new(s: String) -> CameraUrl {
        CameraUrl(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map(|(s, _)| s).unwrap_or("")
    }

    /// The URL as status pages show it: without the whole user-info (user names are half a
    /// credential) and with secret query parameters masked.
    pub fn public(&self) -> String {
        let stripped = match self.0.split_once("://") {
            // Up to the last '@', as in `password`: unencoded '/', '?' or '#' in passwords occur.
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}"),
                None => self.0.clone(),
            },
            None => self.0.clone(),
        };
        redact_url(&stripped)
    }

    /// The password part of `scheme://user:password@host`, for exact-match redaction of FFmpeg
    /// output that may echo it in another form.
    pub fn password(&self) -> Option<&str> {
        // Up to the last '@', as in `redact_url`: unencoded '/', '?' or '#' in passwords occur.
        let rest = self.0.split_once("://")?.1;
        let rest = rest.split(char::is_whitespace).next()?;
        let userinfo = rest.rsplit_once('@')?.0;
        let pass = userinfo.split_once(':')?.1;
        (!pass.is_empty()).then_some(pass)
    }
}

impl fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_secret() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let u = CameraUrl::new("rtsp://admin:hunter2@10.0.0.5:554/s1".into());
        assert!(!format!("{u} {u:?}").contains("hunter2"));
        assert_eq!(u.password(), Some("hunter2"));
        assert_eq!(u.scheme(), "rtsp");
        assert_eq!(CameraUrl::new("rtsp://10.0.0.5/s".into()).password(), None);
        assert_eq!(u.public(), "rtsp://10.0.0.5:554/s1");
        assert_eq!(CameraUrl::new("rtsp://operator@h/s".into()).public(), "rtsp://h/s");
        assert_eq!(CameraUrl::new("http://h/x?password=p&a=1".into()).public(), "http://h/x?password=***&a=1");
        assert_eq!(CameraUrl::new("lavfi:testsrc".into()).public(), "lavfi:testsrc");
    }
}

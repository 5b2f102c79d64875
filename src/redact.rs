//! Keeps secrets out of logs and API answers. FFmpeg echoes its input URL (with the camera
//! password) in banners and errors; the system we replace logged whole command lines. Every
//! line of FFmpeg output and every URL we print passes through here.

/// Masks the password of every `scheme://user:password@host` and the value of every
/// `token=` / `password=` query parameter in free text.
pub fn redact_url(text: &str) -> String {
    let masked = mask_userinfo(text);
    mask_query_secrets(&masked)
}

fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The URL ends at whitespace or a quote. Passwords are supposed to be percent-encoded
        // but often are not ('#', '/', '?', even '@' occur), so the userinfo runs up to the
        // *last* '@' of the URL: over-masking a path is harmless, leaking a password is not.
        let end = tail.find(|c: char| matches!(c, '\'' | '"' | '<' | '>') || c.is_whitespace());
        // Every index below comes from `find`/`rfind` or is the length of a prefix:
        // slice-ok: character boundaries by construction.
        let authority = &tail[..end.unwrap_or(tail.len())];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at]; // slice-ok: from rfind
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]); // slice-ok: from rfind
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority.len()..]; // slice-ok: a prefix of tail
    }
    out.push_str(rest);
    out
}

fn mask_query_secrets(text: &str) -> String {
    let mut out = text.to_string();
    for key in ["token=", "password=", "pass="] {
        let mut from = 0;
        // `from`, `pos`, `start`, `end` come from `find` or add the length of ASCII text to one:
        // slice-ok: character boundaries by construction.
        while let Some(pos) = out[from..].find(key) {
            let start = from + pos + key.len();
            // Only a query parameter: preceded by ? or &.
            let before = out[..from + pos].chars().last(); // slice-ok: from find
            if !matches!(before, Some('?') | Some('&')) {
                from = start;
                continue;
            }
            let end = out[start..].find(|c: char| c == '&' || c == '#' || c == '\'' || c == '"' || c.is_whitespace()); // slice-ok: from find
            let end = end.map(|e| start + e).unwrap_or(out.len());
            out.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    out
}

/// Redacts known secret values (a camera's password and token) wherever they appear, plus
/// everything [`redact_url`] catches.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        // Very short secrets would mask ordinary words; they are still caught in URLs.
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = redact_url(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords_in_text() {
        assert_eq!(
            redact_url("Input #0, rtsp, from 'rtsp://admin:s3cr#t@10.1.1.5:554/stream1':"),
            "Input #0, rtsp, from 'rtsp://admin:***@10.1.1.5:554/stream1':"
        );
        assert_eq!(redact_url("http://u:p@h/x and rtsp://h2/y"), "http://u:***@h/x and rtsp://h2/y");
        assert_eq!(redact_url("rtsp://user@h/"), "rtsp://user@h/");
        // A password containing '@' must not leak its tail.
        assert_eq!(redact_url("rtsp://a:b@c@h/s"), "rtsp://a:***@h/s");
        assert_eq!(redact_url("rtsp://a:p/w?x@h/s"), "rtsp://a:***@h/s");
    }

    #[test]
    fn masks_query_tokens() {
        assert_eq!(redact_url("GET /cam1?token=abc&x=1"), "GET /cam1?token=***&x=1");
        assert_eq!(redact_url("/cam1?a=1&password=p"), "/cam1?a=1&password=***");
        assert_eq!(redact_url("mytoken=abc"), "mytoken=abc");
    }

    #[test]
    fn masks_known_secrets_anywhere() {
        let r = Redactor::new(["hunter22".to_string(), "tok".to_string()]);
        assert_eq!(r.apply("auth failed for hunter22"), "auth failed for ***");
        assert_eq!(r.apply("tok stays (too short to mask blindly)"), "tok stays (too short to mask blindly)");
    }
}

//! Query strings: `a=1&b=x%20y` → values, percent- and `+`-decoded.

/// The decoded value of the first `key` parameter. A value that is not valid percent-encoded
/// UTF-8 is still returned (malformed escapes kept as they are, invalid bytes as U+FFFD), so
/// that the parameter's own parser refuses it by name instead of it counting as absent.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k).as_deref() == Some(key)).then(|| percent_decode_lossy(v))
    })
}

/// Like [`percent_decode`], but never fails: see [`query_param`].
pub fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `%XX` and `+`; `None` for malformed escapes or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn any_query_decodes_without_panicking(q in "\\PC{0,100}|([a-z%+0-9]{0,6}=[%0-9A-Fa-fz+€]{0,12}&?){0,6}", key in "[a-z]{1,6}") {
            let _ = query_param(&q, &key);
            let _ = percent_decode(&q);
            prop_assert!(percent_decode_lossy(&q).len() <= q.len() * 3);
        }
    }

    #[test]
    fn decodes() {
        assert_eq!(query_param("token=a%2Bb&x=1", "token").as_deref(), Some("a+b"));
        assert_eq!(query_param("x=1&from=2025-08-15T10%3A00%3A00Z", "from").as_deref(), Some("2025-08-15T10:00:00Z"));
        assert_eq!(query_param("q=a+b", "q").as_deref(), Some("a b"));
        assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "token"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(
            query_param("from=%FF%FE", "from").as_deref(),
            Some("\u{FFFD}\u{FFFD}"),
            "present, and refused later"
        );
        assert_eq!(query_param("t=%zz%4", "t").as_deref(), Some("%zz%4"));
    }
}

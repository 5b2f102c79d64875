//! HTTP byte ranges (`Range: bytes=…`) for recordings and exports: players seek with them.
//! One range per request; a multi-range request gets the whole file, which RFC 9110 allows.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) Range header: send everything with 200.
    Whole,
    /// Send `start..=end` with 206.
    Part { start: u64, end: u64 },
    /// Send 416 with `Content-Range: bytes */<len>`.
    Unsatisfiable,
}

/// Resolves a `Range` header value against a resource of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return ByteRange::Whole };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-500: the last 500 bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return ByteRange::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), len.saturating_sub(1))),
            Err(_) => None,
        },
        (false, true) => a.parse::<u64>().ok().map(|s| (s, len.saturating_sub(1))),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if e >= s => Some((s, e.min(len.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => ByteRange::Whole, // malformed: ignore the header
        Some((start, _)) if len == 0 || start >= len => ByteRange::Unsatisfiable,
        Some((start, end)) => ByteRange::Part { start, end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever a client sends, a partial answer lies inside the resource.
        #[test]
        fn any_header_gives_a_range_inside_the_resource(
            header in "\\PC{0,40}|bytes=[0-9]{0,22}-[0-9]{0,22}|bytes= *-?[0-9]{0,22} *- *[0-9-]{0,22}(,[0-9-]{0,8})?",
            len in prop_oneof![Just(0u64), 0u64..10_000, Just(u64::MAX)],
        ) {
            match parse_range(Some(&header), len) {
                ByteRange::Part { start, end } => prop_assert!(start <= end && end < len),
                ByteRange::Whole | ByteRange::Unsatisfiable => {}
            }
        }
    }

    #[test]
    fn ranges() {
        let p = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), ByteRange::Whole);
        assert_eq!(p("bytes=0-99"), ByteRange::Part { start: 0, end: 99 });
        assert_eq!(p("bytes=500-"), ByteRange::Part { start: 500, end: 999 });
        assert_eq!(p("bytes=-100"), ByteRange::Part { start: 900, end: 999 });
        assert_eq!(p("bytes=900-5000"), ByteRange::Part { start: 900, end: 999 });
        assert_eq!(p("bytes=-5000"), ByteRange::Part { start: 0, end: 999 });
        assert_eq!(p("bytes=1000-"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=-0"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=5-1"), ByteRange::Whole);
        assert_eq!(p("bytes=0-1,5-6"), ByteRange::Whole);
        assert_eq!(p("items=0-1"), ByteRange::Whole);
        assert_eq!(p("bytes=abc"), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
    }
}

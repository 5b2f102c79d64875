//! Durations as the spec writes them: `"30s"`, `"10m"`, `"5h"`, `"7d"`.

use std::time::Duration;

/// Parses `<number><unit>` with unit `s`, `m`, `h` or `d`. A bare number is rejected on
/// purpose: `"7"` could mean seven days or seven seconds, and a retention off by a factor of
/// 86400 deletes a plant's evidence.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let expected = "expected a duration such as \"30s\", \"10m\", \"5h\" or \"7d\"";
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("{expected} (unit missing)"))?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| expected.to_string())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(expected.to_string()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| format!("{expected} (too large)"))
}

/// The inverse of [`parse_duration`] in the largest exact unit, for status output.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("5h"), Ok(Duration::from_secs(18_000)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 24h "), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn rejects_ambiguous_or_broken() {
        for bad in ["7", "d", "7w", "-1d", "1.5h", "", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_back() {
        for t in ["7d", "5h", "10m", "30s", "90m"] {
            assert_eq!(format_duration(parse_duration(t).unwrap()), t);
        }
    }
}

//! Wall-clock time in milliseconds and its ISO-8601 form, without a date-time crate: the
//! spec's API speaks `2025-08-15T10:00:00.000Z`, and two small functions beat ~200 KiB.
//!
//! [`parse_time`] reads text from outside (query strings, JSON bodies, control commands,
//! FFmpeg's playlists). It never slices text at a byte index it has not checked to be ASCII,
//! and it only returns times between [`MIN_TIME_MS`] and [`MAX_TIME_MS`], so the difference
//! of any two parsed times fits an `i64` with room to spare.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// 1970-01-01T00:00:00.000Z: nothing a panel recorded is older.
pub const MIN_TIME_MS: i64 = 0;
/// 9999-12-31T23:59:59.999Z: the last time the API's four-digit years can write.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Longer input is not a time; refusing it early bounds the work per parameter.
const MAX_TIME_LEN: usize = 64;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2025-08-15T10:00:00.000Z`
pub fn iso_ms(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Why a text is not a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// Not of the form `2025-08-15T10:00:00[.mmm][Z|±hh:mm]` or a number of milliseconds.
    Format,
    /// A field out of its range (month 13, February 30th, offset +25:00).
    Field,
    /// Before 1970 or after 9999.
    OutOfRange,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeError::Format => "expected a time like 2025-08-15T10:00:00.000Z or Unix milliseconds",
            TimeError::Field => "not a real date and time (a field is out of range)",
            TimeError::OutOfRange => "outside the supported times 1970-01-01 to 9999-12-31",
        })
    }
}

/// Checks that `ms` is a time panelcam accepts (a number of milliseconds from outside).
pub fn check_time(ms: i64) -> Result<i64, TimeError> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) { Ok(ms) } else { Err(TimeError::OutOfRange) }
}

/// Reads `len` ASCII digits at `at`; `None` for anything else (including text too short).
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let field = b.get(at..at + len)?;
    field.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

/// Parses an ISO-8601 / RFC 3339 timestamp (`2025-08-15T10:00:00Z`, fractional seconds and
/// `+02:00` offsets allowed; a space may replace the `T`; no zone means UTC) or a plain number
/// of milliseconds since the epoch. Returns milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if t.len() > MAX_TIME_LEN {
        return Err(TimeError::Format);
    }
    let b = t.as_bytes();
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        return t.parse::<i64>().map_err(|_| TimeError::OutOfRange).and_then(check_time);
    }
    // Everything up to the seconds is ASCII by construction (digits and separators), so the
    // byte positions below are character boundaries.
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(TimeError::Format);
    }
    let field = |at, len| digits(b, at, len).ok_or(TimeError::Format);
    let (y, mo, d) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (h, mi, s) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    let y = i64::from(y);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return Err(TimeError::Field);
    }
    let mut rest = b.get(19..).unwrap_or_default();
    let mut millis = 0i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(TimeError::Format);
        }
        // Milliseconds are the first three digits; more precision is cut, not rounded.
        millis = frac.iter().take(n.min(3)).chain(b"000").take(3).fold(0, |m, &c| m * 10 + i64::from(c - b'0'));
        rest = frac.get(n..).unwrap_or_default();
    }
    let offset_min: i64 = match rest {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hm @ ..] => {
            let (oh, om) = match hm {
                [_, _, b':', _, _] => (digits(hm, 0, 2), digits(hm, 3, 2)),
                [_, _, _, _] => (digits(hm, 0, 2), digits(hm, 2, 2)),
                _ => (None, None),
            };
            let (Some(oh), Some(om)) = (oh, om) else { return Err(TimeError::Format) };
            if oh > 23 || om > 59 {
                return Err(TimeError::Field);
            }
            let minutes = i64::from(oh * 60 + om);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return Err(TimeError::Format),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s) - offset_min * 60;
    check_time(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iso_round_trip() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_755_252_000_123), "2025-08-15T10:00:00.123Z");
        assert_eq!(parse_time("2025-08-15T10:00:00.123Z"), Ok(1_755_252_000_123));
        assert_eq!(parse_time("2025-08-15T12:00:00+02:00"), Ok(1_755_252_000_000));
        assert_eq!(parse_time("2025-08-15T08:30:00-0130"), Ok(1_755_252_000_000));
        assert_eq!(parse_time("2025-08-15 10:00:00"), Ok(1_755_252_000_000));
        assert_eq!(parse_time("2025-08-15T10:00:00.5Z"), Ok(1_755_252_000_500));
        assert_eq!(parse_time("2025-08-15T10:00:00.123999Z"), Ok(1_755_252_000_123));
        assert_eq!(parse_time("1755252000123"), Ok(1_755_252_000_123));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        for ms in [0, 951_782_400_000i64, 4_102_444_799_999, 1_709_164_800_000, MAX_TIME_MS] {
            assert_eq!(parse_time(&iso_ms(ms)), Ok(ms));
        }
    }

    #[test]
    fn rejects_garbage() {
        let format = [
            "",
            "yesterday",
            "2025-08-15",
            "2025-08-15T10:00:00.Z",
            "2025-08-15T10:00:00+2",
            "2025-08-15T10:00:00+0a:00",
            "+1755252000123",
            "2025-08-15T10:00:00Zjunk",
        ];
        for bad in format {
            assert_eq!(parse_time(bad), Err(TimeError::Format), "{bad}");
        }
        for bad in ["2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-08-15T24:00:00Z", "2025-08-15T10:00:00+24:00"]
        {
            assert_eq!(parse_time(bad), Err(TimeError::Field), "{bad}");
        }
        for bad in ["0000-01-01T00:00:00Z", "9223372036854775807", "99999999999999999999", "1969-12-31T23:59:59Z"] {
            assert_eq!(parse_time(bad), Err(TimeError::OutOfRange), "{bad}");
        }
    }

    #[test]
    fn multibyte_text_is_refused_not_sliced() {
        // The review's crash input (`from=2025-08-15T10:00:00%2Ba%E2%82%AC`, decoded): an
        // offset whose bytes end inside a three-byte character.
        for bad in ["2025-08-15T10:00:00+a€", "2025-08-15T10:00:00.1€", "2025-08-15T10:00:0€", "€€€€-08-15T10:00:00Z"]
        {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,80}") {
            let _ = parse_time(&s);
        }

        #[test]
        fn never_panics_near_valid_times(
            prefix in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}",
            tail in "(\\.[0-9]{0,8})?([Zz]|[+-][0-9€a:]{0,6}|\\PC{0,4})?",
        ) {
            if let Ok(ms) = parse_time(&format!("{prefix}{tail}")) {
                prop_assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&ms));
            }
        }

        #[test]
        fn every_accepted_time_round_trips(ms in MIN_TIME_MS..=MAX_TIME_MS) {
            prop_assert_eq!(parse_time(&iso_ms(ms)), Ok(ms));
            prop_assert_eq!(parse_time(&ms.to_string()), Ok(ms));
        }

        #[test]
        fn differences_of_parsed_times_never_overflow(a in "\\PC{0,30}|[0-9]{1,25}", b in "\\PC{0,30}|[0-9]{1,25}") {
            if let (Ok(x), Ok(y)) = (parse_time(&a), parse_time(&b)) {
                prop_assert!(x.checked_sub(y).is_some());
            }
        }
    }
}

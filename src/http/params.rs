//! Typed request parameters: ids, times and time ranges from query strings, each a pure
//! function returning what was wrong (named after the parameter) instead of panicking.

use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, EXPECT};
use serde_json::Value;

use crate::store::StoreError;
use crate::util::{MAX_TIME_MS, MIN_TIME_MS, iso_ms, parse_time};

use super::BODY_READ_TIMEOUT;
use super::query::query_param;

pub fn parse_id(raw: &str) -> Result<i64, StoreError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        StoreError::Invalid(format!("session id must be a positive whole number, got \"{}\"", shown(raw)))
    })
}

/// What a client sent, cut to a readable length for an error message.
pub fn shown(raw: &str) -> String {
    let mut s: String = raw.chars().take(64).collect();
    if s.len() < raw.len() {
        s.push('…');
    }
    s
}

/// A time parameter: ISO-8601 or Unix milliseconds.
pub fn time_param(query: &str, key: &str) -> Result<Option<i64>, StoreError> {
    match query_param(query, key) {
        None => Ok(None),
        Some(raw) => parse_time(&raw)
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("`{key}`: {e}, got \"{}\"", shown(&raw)))),
    }
}

/// After refusing a body as too large, up to this much more of it is read and thrown away
/// (for at most [`DRAIN_TIME`]), so a client still sending it reads the 413 instead of a reset
/// connection; a body declared larger than this is not read at all.
const DRAIN_MAX: u64 = 1 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads a small JSON body of at most `max` bytes (the endpoint's limit); `None` when there
/// is none. A larger body is 413: refused by its declared length before it is read, or once
/// a chunked body passes the limit. A body that takes longer than `BODY_READ_TIMEOUT` is 408
/// (slowloris with the body instead of the headers).
pub async fn read_json(req: &mut Request<Incoming>, max: usize) -> Result<Option<Value>, StoreError> {
    let too_large =
        || StoreError::TooLarge(format!("request body larger than {max} bytes, the most this endpoint takes"));
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|n| *n > max as u64) {
        // A client waiting for `100 Continue` has sent nothing yet, and reading would ask it to.
        let waits = req.headers().get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if declared <= DRAIN_MAX && !waits {
            drain(req.body_mut()).await;
        }
        return Err(too_large());
    }
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(req.body_mut(), max).collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            drain(req.body_mut()).await;
            return Err(too_large());
        }
        Ok(Err(e)) => return Err(StoreError::Invalid(format!("the request body could not be read: {e}"))),
        Err(_) => {
            let secs = BODY_READ_TIMEOUT.as_secs();
            return Err(StoreError::TimedOut(format!("the request body did not arrive within {secs} s")));
        }
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| StoreError::Invalid(format!("request body is not JSON: {e}")))
}

/// Reads and discards what arrives of a refused body, up to [`DRAIN_MAX`] bytes and
/// [`DRAIN_TIME`] (nginx's lingering close, in small).
async fn drain(body: &mut Incoming) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut left = DRAIN_MAX;
    while left > 0 {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => left = left.saturating_sub(frame.data_ref().map_or(0, |d| d.len() as u64)),
            _ => return,
        }
    }
}

/// A time range `[from, to]` with `from <= to`, both between 1970 and 9999 (so its length
/// never overflows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

impl TimeRange {
    /// `from`/`to` (or the names given), each optional with a default, checked for order.
    pub fn optional(query: &str, keys: (&str, &str), default: (i64, i64)) -> Result<TimeRange, StoreError> {
        let from = time_param(query, keys.0)?.unwrap_or(default.0);
        let to = time_param(query, keys.1)?.unwrap_or(default.1);
        TimeRange::new(from, to, keys)
    }

    /// Both ends required; the first of each pair of names that is present counts
    /// (`t1`/`t2` with `from`/`to` as aliases).
    pub fn required(query: &str, starts: &[&str], ends: &[&str]) -> Result<TimeRange, StoreError> {
        let first = |keys: &[&str]| -> Result<Option<i64>, StoreError> {
            for k in keys {
                if let Some(t) = time_param(query, k)? {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        };
        let (Some(from), Some(to)) = (first(starts)?, first(ends)?) else {
            return Err(StoreError::Invalid(format!(
                "`{}` and `{}` (start and end time) are required",
                starts.first().copied().unwrap_or("from"),
                ends.first().copied().unwrap_or("to")
            )));
        };
        TimeRange::new(from, to, (starts.first().copied().unwrap_or("from"), ends.first().copied().unwrap_or("to")))
    }

    fn new(from: i64, to: i64, keys: (&str, &str)) -> Result<TimeRange, StoreError> {
        let (from, to) = (from.clamp(MIN_TIME_MS, MAX_TIME_MS), to.clamp(MIN_TIME_MS, MAX_TIME_MS));
        if to < from {
            return Err(StoreError::Invalid(format!(
                "`{}` ({}) is before `{}` ({})",
                keys.1,
                iso_ms(to),
                keys.0,
                iso_ms(from)
            )));
        }
        Ok(TimeRange { from, to })
    }

    pub fn span_ms(&self) -> i64 {
        self.to - self.from
    }

    /// Refuses ranges longer than `max_ms`, saying how long they were.
    pub fn at_most(self, max_ms: i64) -> Result<TimeRange, StoreError> {
        if self.span_ms() > max_ms {
            return Err(StoreError::Invalid(format!(
                "the range covers {} h; at most {} h per request",
                self.span_ms() / 3_600_000,
                max_ms / 3_600_000
            )));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_are_ordered_and_bounded() {
        let r = TimeRange::required("t1=2025-08-15T10:00:00Z&t2=2025-08-15T11:00:00Z", &["t1", "from"], &["t2", "to"]);
        assert_eq!(r.unwrap().span_ms(), 3_600_000);
        let alias = TimeRange::required("from=1000&to=2000", &["t1", "from"], &["t2", "to"]).unwrap();
        assert_eq!((alias.from, alias.to), (1000, 2000));
        assert!(TimeRange::required("t1=2000&t2=1000", &["t1"], &["t2"]).is_err());
        assert!(TimeRange::required("t1=2000", &["t1"], &["t2"]).is_err());
        // The review's overflow: year 0 to i64::MAX. Both ends are refused as times.
        let e = TimeRange::required("t1=0000-01-01T00:00:00Z&t2=9223372036854775807", &["t1"], &["t2"]);
        assert!(matches!(e, Err(StoreError::Invalid(m)) if m.contains("1970")));
        let long = TimeRange::required("t1=0&t2=253402300799999", &["t1"], &["t2"]).unwrap();
        assert!(long.at_most(24 * 3_600_000).is_err(), "the 24 h limit holds for the longest range");
        let open = TimeRange::optional("", ("from", "to"), (0, i64::MAX)).unwrap();
        assert_eq!(open.to, MAX_TIME_MS);
    }

    #[test]
    fn errors_name_the_parameter_and_stay_short() {
        let long = "x".repeat(10_000);
        let e = time_param(&format!("from={long}"), "from").unwrap_err();
        assert!(e.message().starts_with("`from`:"), "{e}");
        assert!(e.message().len() < 300, "{}", e.message().len());
        assert!(parse_id("0").is_err() && parse_id("-4").is_err() && parse_id("99999999999999999999").is_err());
        assert_eq!(parse_id("12"), Ok(12));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn any_query_gives_a_range_or_an_error(query in "\\PC{0,120}|(t1|t2|from|to)=[0-9T:+.Z%-]{0,30}(&(t1|t2|from|to)=[0-9€T:+.Z%-]{0,30}){0,3}") {
            if let Ok(r) = TimeRange::required(&query, &["t1", "from"], &["t2", "to"]) {
                prop_assert!(r.span_ms() >= 0);
                prop_assert!(r.at_most(24 * 3_600_000).is_ok() == (r.span_ms() <= 24 * 3_600_000));
            }
            let _ = parse_id(&query);
        }
    }
}

//! When a certificate expires: `notAfter` read from its DER, with a bounds-checked walk over
//! the few fields in front of it (no X.509 library for one date). Anything malformed is
//! `None`: rustls judges the certificate itself, this only feeds warnings and the log.

use crate::util::days_from_civil;

/// One DER element at the start of `b`: (tag, contents, what follows).
fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (digits, rest) = b.split_at_checked(n)?;
        (digits.iter().fold(0usize, |len, &d| (len << 8) | usize::from(d)), rest)
    };
    let (contents, rest) = b.split_at_checked(len)?;
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const EXPLICIT_VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `notAfter` of an X.509 certificate, in seconds since 1970 (UTC).
pub fn not_after(cert_der: &[u8]) -> Option<i64> {
    let (SEQUENCE, cert, _) = element(cert_der)? else { return None };
    let (SEQUENCE, tbs, _) = element(cert)? else { return None };
    let (tag, _, mut rest) = element(tbs)?;
    if tag == EXPLICIT_VERSION {
        rest = element(rest)?.2; // the serial number follows the version
    }
    // Then the signature algorithm, the issuer and the validity.
    let (_, _, rest) = element(rest)?;
    let (_, _, rest) = element(rest)?;
    let (SEQUENCE, validity, _) = element(rest)? else { return None };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

/// `YYMMDDHHMMSSZ` (UTCTime, 1950-2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |from: usize, to: usize| text.get(from..to)?.parse::<i64>().ok();
    let (year, rest_at) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy = number(0, 2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0, 4)?, 4),
        _ => return None,
    };
    let field = |i: usize| number(rest_at + 2 * i, rest_at + 2 * i + 2);
    let (month, day, hour, minute, second) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_both_time_forms() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(GENERALIZED_TIME, b"20500101000000Z"), Some(2_524_608_000));
        for bad in [&b"7001010000Z"[..], b"700101000000", b"70010100000aZ", b"701301000000Z", b""] {
            assert_eq!(parse_time(UTC_TIME, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["panel".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expected = days_from_civil(2031, 3, 4) * 86_400;
        assert_eq!(not_after(cert.der()), Some(expected));
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = not_after(&bytes);
        }

        #[test]
        fn damaged_certificates_are_read_without_panicking(cut in 0usize..400, flip in 0usize..400, bit in 0u8..8) {
            let params = rcgen::CertificateParams::new(vec!["panel".to_string()]).unwrap();
            let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
            let mut der = cert.der().to_vec();
            if let Some(b) = der.get_mut(flip) { *b ^= 1 << bit; }
            der.truncate(cut);
            let _ = not_after(&der);
        }
    }
}

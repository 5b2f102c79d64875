//! Web origins in the configuration: `server.cors_allow_origin` and `server.frame_ancestors`.
//! Checked when the file is read, so a value a browser would never match (a trailing slash, a
//! path, a missing scheme) is named at start instead of silently failing in the panel's browser,
//! and nothing that could end a header or a CSP directive (`;`, `,`, spaces, quotes) gets into one.

use std::net::Ipv6Addr;

const ORIGIN_EXAMPLE: &str = "\"https://wincc.plant.example\" or \"http://10.0.0.5:8080\"";

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, nothing after.
pub fn check_origin(s: &str) -> Result<(), String> {
    parse(s, false).map_err(|why| {
        format!("expected an origin like {ORIGIN_EXAMPLE} (scheme, host, optional port; no path): {why}, found \"{s}\"")
    })
}

/// One source of the CSP `frame-ancestors` directive: `*` (any page may embed), `'self'`, or
/// an origin whose host may start with `*.` and whose port may be `*`.
pub fn check_frame_ancestor(s: &str) -> Result<(), String> {
    if s == "*" || s == "'self'" {
        return Ok(());
    }
    parse(s, true).map_err(|why| {
        format!(
            "expected \"*\", \"'self'\" or an origin like {ORIGIN_EXAMPLE} or \"https://*.plant.example\": {why}, found \"{s}\""
        )
    })
}

fn parse(s: &str, wildcards: bool) -> Result<(), &'static str> {
    let (scheme, rest) = s.split_once("://").ok_or("no scheme:// at the start")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("the scheme is not letters (http or https)");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or fragment (not even a trailing /)");
    }
    if rest.contains('@') {
        return Err("an origin has no user name or password");
    }
    let (host, port) = split_port(rest)?;
    if let Some(port) = port {
        let numeric = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        let ok = (numeric && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))) || (wildcards && port == "*");
        if !ok {
            return Err("the port is not a number from 1 to 65535");
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().map(|_| ()).map_err(|_| "the host in [...] is not an IPv6 address");
    }
    let name = match host.strip_prefix("*.") {
        Some(name) if wildcards => name,
        _ => host,
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("the host is not a name or an IP address");
    }
    Ok(())
}

/// `host[:port]`, where an IPv6 host is in brackets.
fn split_port(rest: &str) -> Result<(&str, Option<&str>), &'static str> {
    if rest.starts_with('[') {
        let close = rest.find(']').ok_or("an IPv6 host lacks its ]")?;
        let (host, after) = rest.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after.strip_prefix(':').map(|p| (host, Some(p))).ok_or("something follows the IPv6 host"),
        };
    }
    Ok(match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_browsers_send_are_accepted() {
        for ok in ["https://wincc.plant.example", "http://10.0.0.5:8080", "http://[fe80::1]:80", "http://localhost"] {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
            assert_eq!(check_frame_ancestor(ok), Ok(()), "{ok}");
        }
        for ok in ["*", "'self'", "https://*.plant.example", "https://wincc:*"] {
            assert_eq!(check_frame_ancestor(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_would_never_match_or_break_a_header_is_refused_saying_why() {
        for (bad, why) in [
            ("https://wincc.example/", "no path"),
            ("wincc.example", "no scheme"),
            ("https://wincc.example:99999", "port"),
            ("https://user:pw@wincc.example", "user name"),
            ("https://a b.example", "host"),
            ("https://a.example; script-src *", "host"),
            ("https://a.example,https://b.example", "host"),
            ("'unsafe-inline'", "no scheme"),
            ("https://", "host"),
            ("https://[::1", "]"),
            ("https://*.plant.example", "host"),
            ("*", "no scheme"),
            ("null", "no scheme"),
        ] {
            let e = check_origin(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(&format!("found \"{bad}\"")), "{bad}: {e}");
        }
        for bad in ["'none'", "https://wincc.example/", "https://*", "https://a.*.example", "data:", "*.example"] {
            assert!(check_frame_ancestor(bad).is_err(), "{bad}");
        }
    }
}

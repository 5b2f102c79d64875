//! SOAP 1.2 envelopes with a WS-Security UsernameToken, and what comes back (body or fault).
//!
//! ONVIF devices authenticate with `PasswordDigest = Base64(SHA-1(nonce + created + password))`
//! (ONVIF Core §5.12, WS-Security UsernameToken Profile 1.0). `created` must be within the
//! device's tolerance of *its* clock, which on panels' cameras is often minutes off, hence
//! the skew measured once per camera (see `onvif::Session`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};

use super::xml::{self, Element};
use crate::util::iso_ms;

pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

/// `PasswordDigest` for one request.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    B64.encode(h.finalize())
}

/// Credentials of one request: who, and the device's idea of now.
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Milliseconds since the epoch on the device's clock.
    pub device_now_ms: i64,
}

/// The `<Security>` header. The nonce is 16 random bytes from the OS; without randomness a
/// replayed digest would be accepted, so a failing RNG is an error, not a fallback.
fn security_header(c: &Credentials) -> Result<String, getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    // Second precision: some devices refuse fractional seconds in `Created`.
    let created = iso_ms(c.device_now_ms.div_euclid(1000) * 1000).replace(".000Z", "Z");
    let digest = password_digest(&nonce, &created, c.password);
    Ok(format!(
        concat!(
            r#"<s:Header><wsse:Security s:mustUnderstand="1" "#,
            r#"xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" "#,
            r#"xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">"#,
            "<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>",
            r#"<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password>"#,
            r#"<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{nonce}</wsse:Nonce>"#,
            "<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"
        ),
        user = escape(c.username),
        digest = digest,
        nonce = B64.encode(nonce),
        created = created,
    ))
}

/// A complete envelope around `body` (already XML, using the `tptz`, `tt` and `tds` prefixes).
pub fn envelope(body: &str, credentials: Option<&Credentials>) -> Result<String, getrandom::Error> {
    let header = match credentials {
        Some(c) => security_header(c)?,
        None => String::new(),
    };
    Ok(format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
            r#"xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" "#,
            r#"xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{header}<s:Body>{body}</s:Body></s:Envelope>"#
        ),
        header = header,
        body = body
    ))
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What a device answered, read.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The first element inside `<Body>`.
    Body(Element),
    Fault(Fault),
}

/// A SOAP fault: SOAP 1.2 (`Code/Subcode/Value`, `Reason/Text`) or 1.1 (`faultcode`,
/// `faultstring`), which some cameras still send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The most specific code: `ter:NotAuthorized` rather than `env:Sender`.
    pub code: String,
    pub reason: String,
}

/// Reads a response body (any HTTP status: faults come with 400 or 500).
pub fn read_answer(bytes: &[u8]) -> Result<Answer, String> {
    let root = xml::parse(bytes).map_err(|e| e.to_string())?;
    let body = root.find("Body").ok_or("no SOAP Body in the answer")?;
    if let Some(fault) = body.child("Fault") {
        return Ok(Answer::Fault(read_fault(fault)));
    }
    body.children.first().cloned().map(Answer::Body).ok_or_else(|| "empty SOAP Body in the answer".to_string())
}

fn read_fault(fault: &Element) -> Fault {
    // The innermost Subcode names the ONVIF error (ter:NotAuthorized, ter:NoProfile, ...).
    let mut code = fault.find("Code").and_then(|c| c.child("Value")).map(|v| v.text.clone()).unwrap_or_default();
    let mut sub = fault.find("Subcode");
    while let Some(s) = sub {
        if let Some(v) = s.child("Value").filter(|v| !v.text.is_empty()) {
            code = v.text.clone();
        }
        sub = s.child("Subcode");
    }
    if code.is_empty() {
        code = fault.find("faultcode").map(|c| c.text.clone()).unwrap_or_default();
    }
    let reason = fault
        .find("Reason")
        .and_then(|r| r.find("Text"))
        .or_else(|| fault.find("faultstring"))
        .map(|t| t.text.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "(no reason given)".to_string());
    // Device text goes into answers and logs: keep it short and printable.
    let clean = |s: String| -> String { s.chars().filter(|c| !c.is_control()).take(300).collect() };
    Fault { code: clean(code), reason: clean(reason) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of the ONVIF Application Programmer's Guide (§6.1.1.3).
    #[test]
    fn digest_matches_the_onvif_example() {
        let nonce = B64.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        assert_eq!(password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"), "tuOSpGlFlIXsozq4HFNeeGeFLEI=");
    }

    #[test]
    fn envelope_carries_a_fresh_token() {
        let c = Credentials { username: "op<1>", password: "pw", device_now_ms: 1_755_252_000_999 };
        let a = envelope("<tptz:Stop/>", Some(&c)).unwrap();
        let b = envelope("<tptz:Stop/>", Some(&c)).unwrap();
        assert_ne!(a, b, "each request has its own nonce");
        assert!(a.contains("<wsse:Username>op&lt;1&gt;</wsse:Username>"), "{a}");
        assert!(a.contains("<wsu:Created>2025-08-15T10:00:00Z</wsu:Created>"), "{a}");
        assert!(!a.contains(">pw<"), "the password itself is never sent");
        let root = xml::parse(a.as_bytes()).unwrap();
        assert_eq!(root.find("Body").unwrap().children[0].name, "Stop");
        assert!(!envelope("<x/>", None).unwrap().contains("Security"));
    }

    #[test]
    fn reads_soap_12_and_11_faults() {
        let f12 = br#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
            <env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code>
            <env:Reason><env:Text xml:lang="en">Sender not Authorized</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#;
        assert_eq!(
            read_answer(f12).unwrap(),
            Answer::Fault(Fault { code: "ter:NotAuthorized".into(), reason: "Sender not Authorized".into() })
        );
        let f11 = br#"<S:Envelope><S:Body><S:Fault><faultcode>S:Client</faultcode><faultstring>bad
            token</faultstring></S:Fault></S:Body></S:Envelope>"#;
        let Answer::Fault(f) = read_answer(f11).unwrap() else { panic!() };
        assert_eq!(f.code, "S:Client");
        assert!(f.reason.starts_with("bad"), "{f:?}");
        let ok = br#"<s:Envelope><s:Body><tptz:StopResponse/></s:Body></s:Envelope>"#;
        assert!(matches!(read_answer(ok).unwrap(), Answer::Body(e) if e.name == "StopResponse"));
        assert!(read_answer(b"<a/>").unwrap_err().contains("no SOAP Body"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn answers_of_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = read_answer(&bytes);
        }

        #[test]
        fn escaped_text_reads_back(s in "\\PC{0,40}") {
            let doc = format!("<a x=\"{}\">{}</a>", escape(&s), escape(&s));
            let e = xml::parse(doc.as_bytes()).unwrap();
            prop_assert_eq!(e.attr("x"), Some(s.as_str()));
            prop_assert_eq!(e.text, s.trim());
        }
    }
}

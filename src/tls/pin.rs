//! Certificate pinning: trusting one server certificate by its SHA-256 fingerprint instead of a
//! CA. Cameras on a plant network mostly present self-signed certificates that no CA vouches for;
//! pinning the exact certificate is then stronger than any chain check, so in this mode neither
//! the issuer nor the host name nor the validity dates are looked at. The handshake signature
//! still is, with the provider's algorithms: a pin proves which certificate was shown, the
//! signature proves the peer holds its key.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::client::Problem;

/// The SHA-256 of a certificate's DER encoding, as `openssl x509 -noout -fingerprint -sha256`
/// prints it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

const EXPECTED: &str = "expected 64 hex digits, with or without a colon between each pair (the SHA-256 \
     fingerprint of the certificate, as `openssl x509 -noout -fingerprint -sha256` prints it)";

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Reads `AB:CD:…` or `abcd…`. Colons are all or nothing, so a digit lost in copying is
    /// reported rather than absorbed by a lenient split.
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let text = text.trim();
        let shown: String = text.chars().take(100).collect();
        if let Some(c) = text.chars().find(|c| !c.is_ascii_hexdigit() && *c != ':') {
            return Err(format!("{EXPECTED}; found {c:?} in \"{shown}\""));
        }
        let digits = text.chars().filter(char::is_ascii_hexdigit).count();
        if digits != 64 {
            return Err(format!("{EXPECTED}; found {digits} hex digits in \"{shown}\""));
        }
        // ASCII from here on: byte offsets are character offsets.
        let pairs: Vec<&str> = if text.contains(':') {
            text.split(':').collect()
        } else {
            (0..32).map(|i| text.get(2 * i..2 * i + 2).unwrap_or("")).collect()
        };
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return Err(format!("{EXPECTED}; found colons that do not separate pairs in \"{shown}\""));
        }
        let mut bytes = [0u8; 32];
        for (b, pair) in bytes.iter_mut().zip(pairs) {
            *b = u8::from_str_radix(pair, 16).map_err(|_| format!("{EXPECTED}; found \"{shown}\""))?;
        }
        Ok(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A client configuration that accepts exactly the certificate with fingerprint `want`.
/// `setting` names where the pin came from (`ptz.cert_sha256`), for errors and for the
/// refusal message a mismatching server gets.
pub fn config(want: Fingerprint, setting: &str) -> Result<ClientConfig, Problem> {
    let provider = super::provider();
    let verifier =
        PinnedCert { want, setting: setting.to_string(), algorithms: provider.signature_verification_algorithms };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(super::VERSIONS)
        .map_err(|e| Problem { field: setting.to_string(), message: format!("TLS cannot be set up: {e}") })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

#[derive(Debug)]
struct PinnedCert {
    want: Fingerprint,
    setting: String,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The server showed another certificate than the pinned one; shown as the handshake's error.
#[derive(Debug)]
pub struct Mismatch {
    pub setting: String,
    pub want: Fingerprint,
    pub got: Fingerprint,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fingerprint mismatch: the certificate's SHA-256 is {}, but {} pins {}",
            self.got, self.setting, self.want
        )
    }
}

impl std::error::Error for Mismatch {}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if got == self.want {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = Mismatch { setting: self.setting.clone(), want: self.want, got };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(mismatch)))))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn reads_fingerprints_with_and_without_colons() {
        let plain = Fingerprint::parse(HEX).unwrap();
        let colons = Fingerprint::parse(&format!(" {} \n", plain)).unwrap();
        assert_eq!(plain, colons);
        assert_eq!(Fingerprint::parse(&HEX.to_uppercase()).unwrap(), plain);
        assert_eq!(plain, Fingerprint::of(b"test"), "SHA-256 of \"test\"");
        assert!(plain.to_string().starts_with("9F:86:D0:81:"), "{plain}");
    }

    #[test]
    fn malformed_fingerprints_say_what_was_expected_and_found() {
        let e = Fingerprint::parse(&HEX[..62]).unwrap_err();
        assert!(e.starts_with("expected 64 hex digits") && e.contains("found 62 hex digits"), "{e}");
        let e = Fingerprint::parse(&HEX.replace('9', "g")).unwrap_err();
        assert!(e.contains("found 'g'"), "{e}");
        let e = Fingerprint::parse(&format!("{}:{}", &HEX[..1], &HEX[1..])).unwrap_err();
        assert!(e.contains("colons that do not separate pairs"), "{e}");
        let e = Fingerprint::parse("").unwrap_err();
        assert!(e.contains("found 0 hex digits"), "{e}");
        let e = Fingerprint::parse("SHA256 Fingerprint=9F:86").unwrap_err();
        assert!(e.contains("found 'S'"), "{e}");
    }

    fn der(name: &str) -> CertificateDer<'static> {
        rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap().cert.der().clone()
    }

    #[test]
    fn only_the_pinned_certificate_is_accepted_whatever_its_name() {
        let cert = der("camera-7.plant");
        let verifier = PinnedCert {
            want: Fingerprint::of(&cert),
            setting: "ptz.cert_sha256".into(),
            algorithms: crate::tls::provider().signature_verification_algorithms,
        };
        let other_name = ServerName::try_from("127.0.0.1").unwrap();
        assert!(verifier.verify_server_cert(&cert, &[], &other_name, &[], UnixTime::now()).is_ok());
        let stranger = der("camera-7.plant");
        let e = verifier.verify_server_cert(&stranger, &[], &other_name, &[], UnixTime::now()).unwrap_err();
        let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = e else { panic!("{e:?}") };
        let text = inner.to_string();
        assert!(text.contains("fingerprint mismatch") && text.contains("ptz.cert_sha256"), "{text}");
        assert!(text.contains(&Fingerprint::of(&stranger).to_string()), "{text}");
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,100}", hexish in "[0-9a-fA-F: ]{0,100}") {
            let _ = Fingerprint::parse(&text);
            let _ = Fingerprint::parse(&hexish);
        }

        #[test]
        fn every_fingerprint_reads_back_from_either_form(bytes in any::<[u8; 32]>()) {
            let f = Fingerprint(bytes);
            prop_assert_eq!(Fingerprint::parse(&f.to_string()), Ok(f));
            prop_assert_eq!(Fingerprint::parse(&f.to_string().replace(':', "")), Ok(f));
        }
    }
}

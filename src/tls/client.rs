//! TLS client configurations (MQTT broker, ONVIF cameras): which servers to trust and, when a
//! broker wants one, the client certificate to present.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};

use super::pem;

/// Where Debian-like systems (and the panel's rootfs) keep the trusted CA bundle; the first
/// that exists is used when no CA file is configured. `SSL_CERT_FILE` wins, as for OpenSSL.
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

/// What a TLS client trusts and shows. Paths are as configured (relative to the working
/// directory, like every other path in config.json).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientTls {
    /// CA certificates (PEM) the server's chain must lead to; the system bundle when `None`.
    pub ca_path: Option<PathBuf>,
    /// Client certificate chain and key, for servers that ask for one (mutual TLS).
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

/// A TLS setting that cannot be used: the config field (`mqtt.tls.ca_path`) and what is wrong
/// with the file it names.
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl ClientTls {
    /// The rustls configuration: reads the files now. `section` is the config prefix the paths
    /// came from (e.g. `mqtt.tls`), so a problem names the field to fix.
    pub fn config(&self, section: &str) -> Result<ClientConfig, Problem> {
        let problem = |key: &str, message: String| Problem { field: format!("{section}.{key}"), message };
        let roots = self.roots(section)?;
        let builder = ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(super::VERSIONS)
            .map_err(|e| problem("ca_path", format!("TLS cannot be set up: {e}")))?
            .with_root_certificates(roots);
        match (&self.cert_path, &self.key_path) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain =
                    pem::certificates(cert, "client certificate").map_err(|e| problem("client_cert_path", e))?;
                let key = pem::private_key(key).map_err(|e| problem("client_key_path", e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    problem(
                        "client_key_path",
                        format!(
                            "does not belong to the certificate in client_cert_path, or is of an unsupported kind: {e}"
                        ),
                    )
                })
            }
            (Some(_), None) => Err(problem(
                "client_key_path",
                "expected the client certificate's key (client_cert_path is set)".into(),
            )),
            (None, Some(_)) => {
                Err(problem("client_cert_path", "expected the client certificate (client_key_path is set)".into()))
            }
        }
    }

    /// Like [`ClientTls::config`] (no client certificate), but any host name is accepted once
    /// the chain verifies: libpq's `verify-ca`, for servers known by their CA rather than their
    /// name.
    pub fn config_any_name(&self, section: &str) -> Result<ClientConfig, Problem> {
        let problem = |message: String| Problem { field: format!("{section}.ca_path"), message };
        let roots = Arc::new(self.roots(section)?);
        let chain = WebPkiServerVerifier::builder_with_provider(roots, super::provider())
            .build()
            .map_err(|e| problem(format!("TLS cannot be set up: {e}")))?;
        let config = ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(super::VERSIONS)
            .map_err(|e| problem(format!("TLS cannot be set up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(chain)))
            .with_no_client_auth();
        Ok(config)
    }

    fn roots(&self, section: &str) -> Result<RootCertStore, Problem> {
        let field = format!("{section}.ca_path");
        let problem = |message: String| Problem { field: field.clone(), message };
        let path = match &self.ca_path {
            Some(p) => p.clone(),
            None => system_bundle().ok_or_else(|| {
                problem(format!(
                    "not set and no system CA bundle was found ({}); name the CA that signed the server's certificate",
                    SYSTEM_BUNDLES.join(", ")
                ))
            })?,
        };
        let certs = pem::certificates(&path, "CA certificate").map_err(problem)?;
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(problem(format!("{}: holds no usable CA certificate", path.display())));
        }
        Ok(roots)
    }
}

/// A verified chain is enough; the name in the certificate is not compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (issuer, dates, usage) before the name, so a name error
        // means everything else passed.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn system_bundle() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from) {
        return Some(p);
    }
    SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_client_certificate_is_an_error() {
        let ca = std::env::temp_dir().join(format!("panelcam-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, "not a certificate").unwrap();
        let t = ClientTls { ca_path: Some(ca), cert_path: Some("c.pem".into()), key_path: None };
        let e = t.config("mqtt.tls").unwrap_err();
        // The CA is read first and is broken here: that is named before the client half.
        assert_eq!(e.field, "mqtt.tls.ca_path", "{e}");
    }

    #[test]
    fn a_missing_ca_file_names_the_field_and_the_file() {
        let t = ClientTls { ca_path: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let e = t.config("mqtt.tls").unwrap_err();
        assert_eq!(e.field, "mqtt.tls.ca_path");
        assert!(e.message.starts_with("/nonexistent/ca.pem: cannot read"), "{e}");
    }
}

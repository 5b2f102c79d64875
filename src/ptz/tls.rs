//! TLS to a camera's `https://` ONVIF service: its certificate is checked against `ptz.ca_path`
//! (the system bundle when unset) with the host name, or pinned by `ptz.cert_sha256` (see
//! `tls::pin`). There is deliberately no setting that skips the check: a camera that cannot be
//! verified gets no request, and so never sees the WS-Security digest.
//!
//! A refusal becomes a [`PtzError::Tls`] that says which check failed and which setting to look
//! at, since "invalid peer certificate: UnknownIssuer" leaves an engineer guessing.

use std::fmt;
use std::sync::Arc;

use rustls::CertificateError;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::PtzError;
use super::url::OnvifUrl;
use crate::config::PtzConfig;

/// How one camera's certificate is checked. Built with its session (so a renewed CA file is read
/// again when the session is, see `Ptz::run`).
#[derive(Clone)]
pub struct CameraTls {
    connector: TlsConnector,
    /// What the certificate was checked against, for messages: `ptz.ca_path (ca.pem)`.
    trust: String,
}

impl fmt::Debug for CameraTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraTls").field("trust", &self.trust).finish_non_exhaustive()
    }
}

impl CameraTls {
    /// Reads the CA file now; a file that became unusable since the camera was loaded is a
    /// settings problem naming the field.
    pub fn new(config: &PtzConfig) -> Result<CameraTls, PtzError> {
        let rustls = config.tls().map_err(|p| PtzError::Config(p.to_string()))?;
        let trust = match (&config.cert_sha256, &config.ca_path) {
            (Some(_), _) => "ptz.cert_sha256".to_string(),
            (None, Some(path)) => format!("ptz.ca_path ({})", path.display()),
            (None, None) => "the system CA bundle (ptz.ca_path is not set)".to_string(),
        };
        Ok(CameraTls { connector: TlsConnector::from(Arc::new(rustls)), trust })
    }

    /// The TLS handshake over `tcp`, checking the certificate for `url`'s host.
    pub async fn connect(&self, url: &OnvifUrl, tcp: TcpStream) -> Result<TlsStream<TcpStream>, PtzError> {
        let name = ServerName::try_from(url.host.clone()).map_err(|_| {
            PtzError::Config(format!(
                "ptz.onvif_url: expected a host name or IP address a certificate can name, got \"{}\"",
                url.host.chars().take(80).collect::<String>()
            ))
        })?;
        self.connector.connect(name, tcp).await.map_err(|e| self.refusal(url, &e))
    }

    fn refusal(&self, url: &OnvifUrl, e: &std::io::Error) -> PtzError {
        let at = &url.authority;
        let rustls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let Some(rustls::Error::InvalidCertificate(problem)) = rustls else {
            return PtzError::Tls(format!("TLS with the camera's ONVIF service at {at} failed: {e}"));
        };
        let reason = match problem {
            CertificateError::UnknownIssuer => format!(
                "it is not signed by a CA in {} (unknown issuer); for a self-signed certificate, set ptz.cert_sha256 \
                 to its SHA-256 fingerprint",
                self.trust
            ),
            // The pin's mismatch (`tls::pin::Mismatch`) says both fingerprints and the setting.
            CertificateError::Other(other) => other.0.to_string(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "name mismatch: {problem}; use the name the certificate gives in ptz.onvif_url, or pin it with \
                 ptz.cert_sha256"
            ),
            other => other.to_string(),
        };
        PtzError::Tls(format!("the camera's TLS certificate at {at} was refused: {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_gone_since_load_is_a_settings_error_naming_the_field() {
        let config = PtzConfig { ca_path: Some("/nonexistent/ca.pem".into()), ..PtzConfig::default() };
        let e = CameraTls::new(&config).unwrap_err();
        let PtzError::Config(message) = &e else { panic!("{e:?}") };
        assert!(message.starts_with("ptz.ca_path: /nonexistent/ca.pem: cannot read"), "{message}");
    }
}

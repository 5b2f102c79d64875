//! A throw-away certificate authority for TLS tests: a CA, server certificates for
//! `localhost` and 127.0.0.1 signed by it, and client certificates, written as PEM files; and
//! self-signed certificates as cameras make for themselves, with their fingerprints.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate as PEM, for `ca_path` settings and TLS clients.
    pub cert_path: PathBuf,
}

/// A certificate and its key as PEM files.
pub struct Pair {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Ca {
    /// A new CA whose files go into `dir` as `<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("panelcam test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cert_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_path, issuer.pem()).unwrap();
        Ca { issuer, cert_path }
    }

    /// A leaf certificate for `names` (host names or IP addresses), written as
    /// `<file>.pem` and `<file>.key` (PKCS#8) into `dir`.
    pub fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> Pair {
        self.issue_with_key(dir, file, names, KeyPair::generate().unwrap())
    }

    /// [`Ca::issue`] for a given key, e.g. an RSA key made by `openssl genpkey` (ring, rcgen's
    /// backend here, cannot generate RSA keys, only sign with them).
    pub fn issue_with_key(&self, dir: &Path, file: &str, names: &[&str], key: KeyPair) -> Pair {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair { cert_path: dir.join(format!("{file}.pem")), key_path: dir.join(format!("{file}.key")) };
        std::fs::write(&pair.cert_path, cert.pem()).unwrap();
        std::fs::write(&pair.key_path, key.serialize_pem()).unwrap();
        pair
    }
}

impl Ca {
    /// A TLS client (ring provider) that trusts this CA, limited to `versions`.
    pub fn client_with(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A TLS 1.2/1.3 client that trusts this CA.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        self.client_with(rustls::ALL_VERSIONS)
    }

    /// A leaf certificate like [`Ca::issue`] that expired yesterday.
    pub fn issue_expired(&self, dir: &Path, file: &str, names: &[&str]) -> Pair {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair { cert_path: dir.join(format!("{file}.pem")), key_path: dir.join(format!("{file}.key")) };
        std::fs::write(&pair.cert_path, cert.pem()).unwrap();
        std::fs::write(&pair.key_path, key.serialize_pem()).unwrap();
        pair
    }
}

/// A self-signed certificate for `names`, as a camera makes for itself (no CA vouches for it),
/// written as `<file>.pem` and `<file>.key` into `dir`.
pub fn self_signed(dir: &Path, file: &str, names: &[&str]) -> Pair {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pair = Pair { cert_path: dir.join(format!("{file}.pem")), key_path: dir.join(format!("{file}.key")) };
    std::fs::write(&pair.cert_path, cert.pem()).unwrap();
    std::fs::write(&pair.key_path, key.serialize_pem()).unwrap();
    pair
}

/// The SHA-256 fingerprint of the (first) certificate in a PEM file, as
/// `openssl x509 -noout -fingerprint -sha256` prints it: `AB:CD:…`.
pub fn fingerprint(cert_path: &Path) -> String {
    let der = CertificateDer::from_pem_file(cert_path).unwrap();
    Sha256::digest(&der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A TLS 1.2/1.3 client that trusts the CA certificate(s) in a PEM file made elsewhere (a
/// script, openssl).
pub fn client_trusting(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

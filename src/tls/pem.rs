//! Certificates and private keys from PEM files, with errors that name the file and say what
//! was wrong with it. A private key's bytes never appear in an error or a log line.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain or key file is small; a bigger one is a wrong path (a video, a disk image).
const MAX_FILE: u64 = 1 << 20;

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: cannot read the {what}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: expected a PEM file with the {what}, found a directory or device"));
    }
    if meta.len() > MAX_FILE {
        return Err(format!("{shown}: expected a PEM file with the {what}, found {} bytes", meta.len()));
    }
    std::fs::read(path).map_err(|e| format!("{shown}: cannot read the {what}: {e}"))
}

/// Every certificate in a PEM file, leaf first as written: a server's chain or a list of CAs.
pub fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read(path, what)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&text) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => return Err(format!("{}: the {what} is not valid PEM: {}", path.display(), describe(&e))),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{}: expected the {what} as PEM (\"-----BEGIN CERTIFICATE-----\"), found none",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key in a PEM file: PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or
/// SEC1 ("EC PRIVATE KEY").
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let text = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "{}: expected a private key as PEM (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"), found none (an encrypted key must be decrypted first)",
            path.display()
        ),
        other => format!("{}: the private key is not valid PEM: {}", path.display(), describe(&other)),
    })
}

/// The PEM error without echoing file contents (a broken key file's lines are the key).
fn describe(e: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error::*;
    match e {
        MissingSectionEnd { .. } => "a section has no END line",
        IllegalSectionStart { .. } => "a BEGIN line is malformed",
        Base64Decode(_) => "a section is not valid Base64",
        Io(_) => "it could not be read",
        NoItemsFound => "it holds nothing usable",
        SectionTooLarge => "a section is too large",
        _ => "it is malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write(name: &str, text: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("panelcam-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let e = certificates(Path::new("/nonexistent/ca.pem"), "CA certificate").unwrap_err();
        assert!(e.starts_with("/nonexistent/ca.pem: cannot read the CA certificate"), "{e}");
        let p = write("empty.pem", b"hello\n");
        let e = certificates(&p, "certificate").unwrap_err();
        assert!(e.contains("empty.pem: expected the certificate as PEM"), "{e}");
        let e = private_key(&p).unwrap_err();
        assert!(e.contains("expected a private key as PEM"), "{e}");
        let e = private_key(Path::new("/")).unwrap_err();
        assert!(e.contains("found a directory"), "{e}");
    }

    #[test]
    fn a_broken_key_is_described_without_its_contents() {
        let p = write("broken.key", b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0!!!\n-----END PRIVATE KEY-----\n");
        let e = private_key(&p).unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        assert!(e.contains("broken.key"), "{e}");
    }

    proptest! {
        #[test]
        fn any_file_contents_are_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048), pem in "(-----BEGIN [A-Z ]{0,20}-----\n[A-Za-z0-9+/=\n]{0,200}(-----END [A-Z ]{0,20}-----\n)?){0,3}") {
            let p = write("any.pem", &bytes);
            let _ = certificates(&p, "certificate");
            let _ = private_key(&p);
            let p = write("anypem.pem", pem.as_bytes());
            let _ = certificates(&p, "certificate");
            let _ = private_key(&p);
        }
    }
}

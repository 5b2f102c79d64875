//! HTTPS/WSS: the server certificate and key, loaded with errors that name the file and the
//! problem, and swapped while running (a renewed certificate is picked up on SIGHUP or when
//! the files change on disk) without touching connections that are already open: each new
//! connection takes the configuration current at its handshake.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::client::Problem;
use super::{pem, validity};

/// What the log says about a loaded certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// Certificates in the chain (leaf first).
    pub chain: usize,
    /// The leaf's `notAfter`, seconds since 1970; `None` if it could not be read.
    pub not_after: Option<i64>,
}

impl Loaded {
    /// True when the leaf expired before `now` (seconds since 1970).
    pub fn expired(&self, now: i64) -> bool {
        self.not_after.is_some_and(|t| t < now)
    }
}

/// Identity of a file's current contents as far as `stat` tells: a renewal that replaces the
/// file (rename) changes the inode, one that rewrites it changes mtime or size.
type Stamp = Option<(u64, i64, i64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

pub struct ServerTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<(Stamp, Stamp)>,
}

impl ServerTls {
    /// Loads the certificate chain and key; `section` names the config fields in errors.
    pub fn load(cert_path: &Path, key_path: &Path, section: &str) -> Result<(ServerTls, Loaded), Problem> {
        let stamps = (stamp(cert_path), stamp(key_path));
        let (config, loaded) = build(cert_path, key_path, section)?;
        let tls = ServerTls {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        };
        Ok((tls, loaded))
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        TlsAcceptor::from(config)
    }

    /// Loads the files again. On an error the certificate in use stays (a half-copied renewal
    /// must not take HTTPS down).
    pub fn reload(&self, section: &str) -> Result<Loaded, Problem> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        // Remember what was tried even if it fails, so a broken file is reported once, not on
        // every poll; the next change is tried again.
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        let (config, loaded) = build(&self.cert_path, &self.key_path, section)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        Ok(loaded)
    }

    /// Reloads when either file changed since the last load; `None` when neither did.
    pub fn reload_if_changed(&self, section: &str) -> Option<Result<Loaded, Problem>> {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        if *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return None;
        }
        Some(self.reload(section))
    }
}

fn build(cert_path: &Path, key_path: &Path, section: &str) -> Result<(ServerConfig, Loaded), Problem> {
    let problem = |key: &str, message: String| Problem { field: format!("{section}.{key}"), message };
    let chain = pem::certificates(cert_path, "server certificate").map_err(|e| problem("cert_path", e))?;
    let key = pem::private_key(key_path).map_err(|e| problem("key_path", e))?;
    let loaded = Loaded { chain: chain.len(), not_after: chain.first().and_then(|c| validity::not_after(c)) };
    let config = ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(super::VERSIONS)
        .map_err(|e| problem("cert_path", format!("TLS cannot be set up: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => problem(
                "key_path",
                format!("{}: is not the key of the certificate in {}", key_path.display(), cert_path.display()),
            ),
            other => problem("key_path", format!("{}: cannot be used: {other}", key_path.display())),
        })?;
    Ok((config, loaded))
}

/// How often the certificate files are checked for a renewal (two `stat` calls).
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Logs what was loaded: chain length and expiry, loudly when expired.
pub fn log_loaded(loaded: &Loaded, cert_path: &Path, what: &str) {
    let until = loaded.not_after.map(|t| crate::util::iso_ms(t.saturating_mul(1000)));
    let until = until.as_deref().unwrap_or("unknown");
    if loaded.expired(crate::util::now_ms() / 1000) {
        tracing::error!(
            "{what} {}: the certificate EXPIRED on {until}; browsers refuse it until it is renewed",
            cert_path.display()
        );
    } else {
        tracing::info!("{what} {}: chain of {}, valid until {until}", cert_path.display(), loaded.chain);
    }
}

/// Picks up renewed certificate files until shutdown. A file that cannot be used is reported
/// and the certificate in use stays.
pub async fn watch(tls: Arc<ServerTls>, section: String, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match tls.reload_if_changed(&section) {
            None => {}
            Some(Ok(loaded)) => log_loaded(&loaded, &tls.cert_path, "HTTPS certificate changed on disk, now serving"),
            Some(Err(p)) => {
                tracing::error!("HTTPS certificate changed on disk but cannot be used, keeping the old one: {p}")
            }
        }
    }
}

impl ServerTls {
    /// SIGHUP: load the files again whether or not they look changed.
    pub fn reload_now(&self, section: &str) {
        match self.reload(section) {
            Ok(loaded) => log_loaded(&loaded, &self.cert_path, "SIGHUP: HTTPS now serving"),
            Err(p) => tracing::error!("SIGHUP: the HTTPS certificate cannot be used, keeping the old one: {p}"),
        }
    }
}

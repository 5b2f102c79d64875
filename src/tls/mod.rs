//! TLS with rustls and its ring provider, the only crypto provider in the binary: the system we
//! replace pulled in two providers and panicked at start as soon as TLS was switched on, because
//! rustls could not tell which one to use. Every TLS configuration here is built from
//! [`provider`] explicitly, and [`install`] makes ring the process default for any library that
//! asks rustls for one (CI checks that aws-lc is not in the dependency tree: scripts/tls-check.sh).

pub mod client;
pub mod pem;
pub mod pin;
pub mod postgres;
pub mod server;
pub mod validity;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// TLS 1.2 and 1.3; rustls has no older versions at all.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring provider with rustls' default cipher suites and key exchange groups.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide default provider. Idempotent: a second call (tests start many
/// servers in one process) finds it installed.
pub fn install() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

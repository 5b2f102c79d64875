//! TLS to the central PostgreSQL on the binary's one TLS stack (rustls, ring), configured by the
//! libpq parameters of `recording.database_url`: `sslmode` and `sslrootcert`.
//!
//! | `sslmode` | here |
//! |---|---|
//! | absent, `disable` | plain TCP (as before TLS existed) |
//! | `require`, `verify-ca` | TLS; the server's certificate must chain to `sslrootcert` (or the system's CA bundle); the host name is not checked. Stricter than libpq's `require`, which checks nothing |
//! | `verify-full` | TLS; the chain as above and the certificate must name the host of the URL |
//! | `prefer`, `allow` | refused: either may end in plain text without anyone noticing |
//!
//! tokio-postgres itself knows only disable/prefer/require, so both parameters are taken out of
//! the URL here and TLS is required through its `Config`.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::client::{ClientTls, Problem};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// `require` and `verify-ca`: a verified chain, any host name.
    VerifyChain,
    VerifyFull,
}

/// `database_url` without `sslmode` and `sslrootcert`, and what they asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct PgUrl {
    pub url: String,
    pub mode: SslMode,
    pub root: Option<PathBuf>,
}

/// Splits the TLS parameters off a `postgres://` URL's query. Errors never repeat the URL (it
/// holds a password).
pub fn split_url(url: &str) -> Result<PgUrl, String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let (mut mode, mut root, mut kept) = (SslMode::Disable, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => SslMode::Disable,
                    "require" | "verify-ca" => SslMode::VerifyChain,
                    "verify-full" => SslMode::VerifyFull,
                    "prefer" | "allow" => {
                        return Err(format!(
                            "sslmode={value} may end in plain text without anyone noticing; use disable, require, verify-ca or verify-full"
                        ));
                    }
                    _ => return Err("expected sslmode to be disable, require, verify-ca or verify-full".into()),
                }
            }
            "sslrootcert" if !value.is_empty() => root = Some(PathBuf::from(percent_decode(value))),
            "sslrootcert" => return Err("expected a file after sslrootcert=".into()),
            _ => kept.push(pair),
        }
    }
    if root.is_some() && mode == SslMode::Disable {
        return Err("sslrootcert is set but sslmode is disable (or absent): add sslmode=verify-full".into());
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok(PgUrl { url, mode, root })
}

/// `%2F` and friends in a path given in a URL.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PgUrl {
    /// The connector for this URL; `None` for plain TCP. Reads `sslrootcert` now.
    pub fn connector(&self) -> Result<Option<RustlsConnect>, Problem> {
        let tls = ClientTls { ca_path: self.root.clone(), ..Default::default() };
        let config = match self.mode {
            SslMode::Disable => return Ok(None),
            SslMode::VerifyChain => tls.config_any_name("sslrootcert"),
            SslMode::VerifyFull => tls.config("sslrootcert"),
        };
        let config = config.map_err(|p| Problem {
            field: "recording.database_url".into(),
            message: format!("sslrootcert: {}", p.message),
        })?;
        Ok(Some(RustlsConnect { config: Arc::new(config) }))
    }
}

/// tokio-postgres' TLS hook over tokio-rustls.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTls<S>;
    type TlsConnect = ConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<ConnectOne, io::Error> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the database host is not a valid TLS name"))?;
        Ok(ConnectOne { config: self.config.clone(), name })
    }
}

pub struct ConnectOne {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for ConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<PgTls<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { connector.connect(self.name, stream).await.map(PgTls) })
    }
}

/// The encrypted connection. No channel binding: SCRAM over TLS works without it, and a
/// binding computed with the wrong hash would fail logins that work.
pub struct PgTls<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTls<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTls<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTls<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn takes_the_tls_parameters_out_of_the_url() {
        let u =
            split_url("postgres://u:pw@db:5432/rec?sslmode=verify-full&sslrootcert=/etc/ca%20x.pem&connect_timeout=3")
                .unwrap();
        assert_eq!(u.url, "postgres://u:pw@db:5432/rec?connect_timeout=3");
        assert_eq!((u.mode, u.root.as_deref()), (SslMode::VerifyFull, Some(std::path::Path::new("/etc/ca x.pem"))));
        assert_eq!(split_url("postgres://u@h/").unwrap().mode, SslMode::Disable);
        assert_eq!(split_url("postgres://u@h/?sslmode=require").unwrap().url, "postgres://u@h/");
        assert_eq!(split_url("postgres://u@h/?sslmode=verify-ca").unwrap().mode, SslMode::VerifyChain);
        for bad in [
            "postgres://u:secret@h/?sslmode=prefer",
            "postgres://u:secret@h/?sslmode=x",
            "postgres://u:secret@h/?sslrootcert=/ca.pem",
        ] {
            let e = split_url(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn any_url_splits_without_panicking(url in ".{0,120}", query in "(sslmode=[a-z-]{0,12}|sslrootcert=[%0-9A-Fa-f/]{0,12}|[a-z]{1,5}=[a-z]{0,5})(&(sslmode=[a-z-]{0,12}|[a-z]{1,5}=[a-z0-9%]{0,5})){0,4}") {
            let _ = split_url(&url);
            let _ = split_url(&format!("postgres://u@h/db?{query}"));
        }
    }
}

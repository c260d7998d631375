//! TLS to PostgreSQL on rustls, with libpq's `sslmode`s (the table is on
//! [`PostgresTls`]), and TLS failures turned into errors that say what was refused.
//! `sslrootcert=system` is libpq 16's spelling of the system's roots; it makes
//! `verify-full` the default and refuses a weaker mode, as libpq does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::BACKEND;
use crate::StoreError;

/// How a connection uses TLS: libpq's `sslmode` (see the table in
/// [`PostgresTls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it; plaintext only when it does not. The server's
    /// certificate is not checked unless a root certificate is given.
    #[default]
    Prefer,
    /// Always TLS; a server that does not offer it is refused. The certificate is
    /// checked as under [`SslMode::Prefer`].
    Require,
    /// Always TLS, with a server certificate signed by a trusted CA.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The `sslmode` value as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn from_driver(mode: tokio_postgres::config::SslMode) -> SslMode {
        match mode {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Prefer => SslMode::Prefer,
            // `Require`, and any stricter mode a later driver adds.
            _ => SslMode::Require,
        }
    }

    /// What the driver is told: it only knows whether TLS is off, optional or required.
    fn to_driver(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = StoreError;

    /// Parses libpq's spelling (`disable`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`). libpq's `allow` is refused: it would try plaintext first.
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Config(format!(
                    "postgres sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootCerts {
    /// The operating system's trust store (`sslrootcert=system`).
    System,
    /// The PEM certificates in a file (`sslrootcert=PATH`).
    File(PathBuf),
}

/// The TLS settings of a [`PostgresStore`](super::PostgresStore), as libpq spells them
/// in a URL: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`.
///
/// | `sslmode` | TLS | server certificate |
/// | --- | --- | --- |
/// | `disable` | never | - |
/// | `prefer` (default) | when the server offers it; plaintext only when it does not | not checked, unless `root_certs` is set (then as `verify-ca`) |
/// | `require` | always; a server without TLS is refused | as `prefer` |
/// | `verify-ca` | always | signed by a trusted CA (`root_certs`, else the system's roots) |
/// | `verify-full` | always | as `verify-ca`, and issued for the host connected to |
///
/// A refused certificate is an error in every mode: nothing falls back to plaintext
/// after a failed handshake. Files are read when the store connects; a file that
/// cannot be read or holds no certificate is a [`StoreError::Config`].
///
/// # Examples
///
/// ```
/// use bot_sessions::store::postgres::{PostgresConfig, SslMode};
///
/// let config = PostgresConfig::default()
///     .ssl_mode(SslMode::VerifyFull)
///     .ssl_root_cert("/etc/ssl/certs/db-ca.pem")
///     .ssl_client_cert("/run/secrets/bot.crt", "/run/secrets/bot.key");
/// assert_eq!(config.tls.mode, Some(SslMode::VerifyFull));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresTls {
    /// The mode; `None` takes the driver configuration's (`sslmode` of a URL, or
    /// [`tokio_postgres::Config::ssl_mode`]; `prefer` when neither says).
    pub mode: Option<SslMode>,
    /// Trusted CAs (`sslrootcert`). `None`: the system's roots for `verify-ca` and
    /// `verify-full`, and no check under `prefer` and `require`.
    pub root_certs: Option<RootCerts>,
    /// A client certificate chain, PEM (`sslcert`), for `cert` authentication.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key, PEM: PKCS#8, PKCS#1 or SEC1 (`sslkey`).
    pub client_key: Option<PathBuf>,
}

/// A connector for every connection of one store, and the mode it enforces.
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) connector: MakeRustlsConnect,
    pub(super) mode: SslMode,
}

/// The effective mode for `tls` on top of the driver's `ssl_mode`, which is set to
/// what the driver must enforce; and the connector that checks certificates.
pub(super) fn configure(tls: &PostgresTls, pg: &mut tokio_postgres::Config) -> Result<Tls, StoreError> {
    let mode = match (tls.mode, &tls.root_certs) {
        (Some(mode), _) => mode,
        // libpq 16: `sslrootcert=system` makes verify-full the default.
        (None, Some(RootCerts::System)) => SslMode::VerifyFull,
        (None, _) => SslMode::from_driver(pg.get_ssl_mode()),
    };
    if tls.root_certs == Some(RootCerts::System) && mode != SslMode::VerifyFull && mode != SslMode::Disable {
        return Err(StoreError::Config(format!(
            "postgres sslmode={mode} is too weak for sslrootcert=system (use verify-full, as libpq requires)"
        )));
    }
    pg.ssl_mode(mode.to_driver());
    let provider = Arc::new(crate::store::ring_provider::ring_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("postgres TLS: {e}")))?
        .dangerous();
    let roots = || match &tls.root_certs {
        Some(RootCerts::File(path)) => roots_from_file(path),
        Some(RootCerts::System) | None => system_roots(),
    };
    let builder = match (mode, &tls.root_certs) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => {
            builder.with_custom_certificate_verifier(Arc::new(CertCheck { roots: None, provider }))
        }
        // libpq: with a root certificate at hand, prefer and require check the chain.
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, _) => {
            builder.with_custom_certificate_verifier(Arc::new(CertCheck { roots: Some(roots()?), provider }))
        }
        (SslMode::VerifyFull, _) => {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots()?), provider)
                .build()
                .map_err(|e| StoreError::Config(format!("postgres TLS: {e}")))?;
            builder.with_custom_certificate_verifier(verifier)
        }
    };
    let config = match (&tls.client_cert, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates_in(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err("sslkey", key, e))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                StoreError::Config(format!("postgres sslcert/sslkey do not make a client certificate: {e}"))
            })?
        }
        _ => {
            return Err(StoreError::Config("postgres sslcert and sslkey go together: give both or neither".into()));
        }
    };
    Ok(Tls { connector: MakeRustlsConnect::new(config), mode })
}

fn file_err(option: &str, path: &Path, e: impl fmt::Display) -> StoreError {
    StoreError::Config(format!("postgres {option} `{}`: {e}", path.display()))
}

fn certificates_in(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(option, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(option, path, e))?;
    if certs.is_empty() {
        return Err(file_err(option, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates_in(path, "sslrootcert")?);
    if added == 0 {
        return Err(file_err("sslrootcert", path, "holds no certificate that parses"));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(StoreError::Config(format!(
            "postgres TLS: no system root certificates found{why}; install the CA certificates or give sslrootcert=PATH"
        )));
    }
    Ok(roots)
}

/// The certificate check of every mode but `verify-full` (which is rustls' own
/// WebPKI verifier). `roots: None` is `prefer` and `require` without a root
/// certificate: encryption against passive eavesdropping, no check of who the server
/// is (libpq's semantics). `roots: Some` is `verify-ca` (and `prefer`/`require` given a
/// root certificate): the chain must lead to a trusted root; the host name is not
/// checked. Either way the handshake signatures are verified, so the server holds the
/// certificate's key.
#[derive(Debug)]
struct CertCheck {
    roots: Option<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection attempt that failed over TLS, said plainly: which mode refused what.
#[derive(Debug, thiserror::Error)]
#[error("TLS to the PostgreSQL server failed under sslmode={mode}: {what}")]
pub(super) struct TlsRefused {
    mode: SslMode,
    what: String,
    #[source]
    source: tokio_postgres::Error,
}

/// `e` as a [`TlsRefused`] backend error when it is a TLS failure; `e` back otherwise.
///
/// A refused certificate, a server without TLS under a mode that requires it, and
/// settings the server cannot agree to are not retryable: the same settings meet the
/// same server. A handshake that broke (bytes that are not TLS, a connection cut
/// half-way, a server restarting) is retryable: the next attempt may meet a healthy
/// server.
pub(super) fn refused(e: tokio_postgres::Error, mode: SslMode) -> Result<StoreError, tokio_postgres::Error> {
    let mut retryable = false;
    let what = match rustls_error(&e) {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let hint = match cert {
                rustls::CertificateError::UnknownIssuer => {
                    " (the server's certificate is not signed by a CA in sslrootcert, or in the system's roots without it)"
                }
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => {
                    " (the host connected to is not a name in the server's certificate; verify-ca does not check it)"
                }
                _ => "",
            };
            format!("the server's certificate was refused: {cert:?}{hint}")
        }
        Some(other) => {
            retryable = handshake_broke(other);
            other.to_string()
        }
        // tokio-postgres reports a server that answers the TLS request with "no" in
        // this message only (its error kinds are private).
        None if says(&e, "server does not support TLS") => {
            format!("the server does not offer TLS, and sslmode={mode} never falls back to plaintext")
        }
        None => return Err(e),
    };
    Ok(StoreError::backend(BACKEND, None, retryable, TlsRefused { mode, what, source: e }))
}

/// Whether a TLS failure other than a refused certificate says the handshake broke
/// (what a garbled or cut connection gives), not that the two sides disagree.
fn handshake_broke(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::DecryptError
            | rustls::Error::FailedToGetCurrentTime
            | rustls::Error::FailedToGetRandomBytes
    )
}

/// Whether `e` or one of its sources says `text`.
fn says(e: &tokio_postgres::Error, text: &str) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.to_string().contains(text) {
            return true;
        }
        next = err.source();
    }
    false
}

/// The rustls error somewhere in `e`'s sources (tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips it, so each `io::Error` is opened too).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if let Some(tls) = inner.and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_spells_them() {
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
        }
        for bad in ["allow", "verify_full", "REQUIRE", ""] {
            assert!(matches!(bad.parse::<SslMode>(), Err(StoreError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn the_driver_is_told_whether_tls_is_required() {
        use tokio_postgres::config::SslMode as Driver;
        let cases = [
            (Some(SslMode::Disable), Driver::Disable),
            (Some(SslMode::Prefer), Driver::Prefer),
            (Some(SslMode::Require), Driver::Require),
            (Some(SslMode::VerifyCa), Driver::Require),
            (Some(SslMode::VerifyFull), Driver::Require),
            (None, Driver::Prefer),
        ];
        for (mode, want) in cases {
            let mut pg = tokio_postgres::Config::new();
            let tls = PostgresTls { mode, ..PostgresTls::default() };
            let made = configure(&tls, &mut pg).unwrap();
            assert_eq!(pg.get_ssl_mode(), want, "{mode:?}");
            assert_eq!(made.mode, mode.unwrap_or(SslMode::Prefer));
        }
        // No mode of our own: the driver configuration's stays.
        let mut pg = tokio_postgres::Config::new();
        pg.ssl_mode(Driver::Require);
        assert_eq!(configure(&PostgresTls::default(), &mut pg).unwrap().mode, SslMode::Require);
        assert_eq!(pg.get_ssl_mode(), Driver::Require);
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let system = PostgresTls { root_certs: Some(RootCerts::System), ..PostgresTls::default() };
        let mut pg = tokio_postgres::Config::new();
        // Without system roots on this machine, `configure` says so; either way the mode
        // was settled first.
        match configure(&system, &mut pg) {
            Ok(tls) => assert_eq!(tls.mode, SslMode::VerifyFull),
            Err(e) => assert!(e.to_string().contains("system root"), "{e}"),
        }
        for weak in [SslMode::Prefer, SslMode::Require, SslMode::VerifyCa] {
            let tls = PostgresTls { mode: Some(weak), ..system.clone() };
            let err = configure(&tls, &mut tokio_postgres::Config::new()).err().unwrap();
            assert!(err.to_string().contains("too weak"), "{weak}: {err}");
        }
    }

    #[test]
    fn unreadable_files_are_config_errors_naming_them() {
        let missing = PathBuf::from("/nonexistent/bot-sessions/ca.pem");
        let cases = [
            PostgresTls {
                mode: Some(SslMode::VerifyFull),
                root_certs: Some(RootCerts::File(missing.clone())),
                ..PostgresTls::default()
            },
            PostgresTls {
                client_cert: Some(missing.clone()),
                client_key: Some(missing.clone()),
                ..PostgresTls::default()
            },
            PostgresTls { client_cert: Some(missing.clone()), ..PostgresTls::default() },
        ];
        for tls in cases {
            match configure(&tls, &mut tokio_postgres::Config::new()) {
                Err(StoreError::Config(msg)) => assert!(msg.contains("ssl"), "{msg}"),
                other => panic!("{tls:?}: expected a config error, got {:?}", other.err()),
            }
        }
    }
}

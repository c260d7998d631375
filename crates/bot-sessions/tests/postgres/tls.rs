//! TLS against a PostgreSQL of the test's own, with certificates the test generates
//! (rcgen): a CA, a server certificate for `localhost` and `127.0.0.1`, a client
//! certificate, and a second CA nobody trusts. Every `sslmode`, as libpq means it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore, SslMode, tokio_postgres};
use bot_sessions::{Namespace, Scope, SessionKey, Store, StoreError, Timestamp};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::redis_postgres_common::free_port;
use super::server::Server;
use super::{admin_at, unique_app};

/// The role that logs in with a client certificate only.
pub const CERT_USER: &str = "bot_cert";
/// The role that logs in with a password (SCRAM), over TLS or not.
pub const PASSWORD_USER: &str = "bot_pw";
/// Its password.
pub const PASSWORD: &str = "pw-5ecret-Tls";

/// A certificate and its key, PEM.
struct Issued {
    cert: String,
    key: String,
}

/// A CA that can issue certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-signed CA").pem();
        Ca { issuer: Issuer::new(params, key), cert }
    }

    fn issue(&self, common_name: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).expect("signed").pem();
        Issued { cert, key: key.serialize_pem() }
    }
}

/// A directory the test writes client-side files into, removed when dropped.
pub struct Files(PathBuf);

impl Files {
    fn new(port: u16) -> Files {
        let dir = std::env::temp_dir().join(format!("bot-sessions-tls-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("client files directory");
        Files(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a client file");
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server of the test's own with `ssl=on` (or off), the two roles, and the client's
/// files: `ca` (trusted), `other_ca` (not), and `client_cert`/`client_key` for
/// [`CERT_USER`].
pub struct TlsServer {
    pub server: Server,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    _files: Files,
}

impl TlsServer {
    pub async fn start(ssl: bool) -> TlsServer {
        let mut server = Server::init(free_port());
        let files = Files::new(server.port());
        let ca = Ca::new("bot-sessions test CA");
        let other = Ca::new("a CA nobody trusts");
        let server_cert = ca.issue("bot-sessions test server", &["localhost", "127.0.0.1"]);
        let client = ca.issue(CERT_USER, &[]);
        server.install("server.crt", server_cert.cert.as_bytes());
        server.install("server.key", server_cert.key.as_bytes());
        server.install("root.crt", ca.cert.as_bytes());
        server.install(
            "pg_hba.conf",
            format!(
                "hostssl all {CERT_USER} 127.0.0.1/32 cert\n\
                 host    all {CERT_USER} 127.0.0.1/32 reject\n\
                 host    all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n\
                 host    all all 127.0.0.1/32 trust\n"
            )
            .as_bytes(),
        );
        server.set("ssl", if ssl { "on" } else { "off" });
        server.set("ssl_cert_file", "server.crt");
        server.set("ssl_key_file", "server.key");
        server.set("ssl_ca_file", "root.crt");
        server.start();
        server.wait_ready().await;
        let admin = admin_at(&server.url()).await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {CERT_USER} LOGIN SUPERUSER;
                 CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}';"
            ))
            .await
            .expect("create the test roles");
        TlsServer {
            ca: files.write("ca.pem", &ca.cert),
            other_ca: files.write("other-ca.pem", &other.cert),
            client_cert: files.write("client.crt", &client.cert),
            client_key: files.write("client.key", &client.key),
            server,
            _files: files,
        }
    }

    /// `postgres://USER@HOST:PORT/postgres?application_name=APP&OPTIONS`.
    pub fn url(&self, user: &str, host: &str, app: &str, options: &str) -> String {
        let port = self.server.port();
        format!("postgres://{user}@{host}:{port}/postgres?application_name={app}&{options}")
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

async fn open(url: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::connect_with(url, PostgresConfig::default().connect_timeout(Duration::from_secs(10))).await
}

/// Opens a store at `url`, uses it, and returns whether the server saw its
/// connections encrypted (every one of them, from `pg_stat_ssl`).
async fn used_tls(tls: &TlsServer, url: &str, app: &str) -> bool {
    let store = open(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let k = SessionKey::new(Namespace::new("tls").unwrap(), Scope::Chat(1));
    assert_eq!(store.load(&k, Timestamp::now()).await.unwrap(), None, "{url}");
    let admin = admin_at(&tls.server.url()).await;
    let seen: Vec<bool> = admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(!seen.is_empty(), "{url}: the store's connections are on the server");
    assert!(seen.iter().all(|s| *s == seen[0]), "{url}: all or none encrypted: {seen:?}");
    seen[0]
}

/// A refusal: not retryable (the same settings meet the same certificate), and its
/// message says what was refused.
fn assert_refused(r: Result<PostgresStore, StoreError>, says: &str, what: &str) {
    match r {
        Err(e) => {
            assert!(!e.is_retryable(), "{what}: a refusal is not retryable: {e:?}");
            assert!(e.to_string().contains(says), "{what}: the error says {says:?}: {e}");
        }
        Ok(_) => panic!("{what}: connected, but must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_against_a_server_that_offers_tls() {
    let tls = TlsServer::start(true).await;
    let (ca, other) = (path(&tls.ca), path(&tls.other_ca));

    // A good certificate connects, by host name and by IP address; verify-ca does not
    // look at the name.
    for (host, options) in [
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        ("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")),
        ("wrong.invalid", format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}")),
        // libpq: require with a root certificate checks the chain.
        ("127.0.0.1", format!("sslmode=require&sslrootcert={ca}")),
        // require and prefer without one: encrypted, nothing checked.
        ("wrong.invalid", "hostaddr=127.0.0.1&sslmode=require".to_owned()),
        ("127.0.0.1", "sslmode=prefer".to_owned()),
        ("127.0.0.1", String::new()),
    ] {
        let app = unique_app("tls");
        let url = tls.url("postgres", host, &app, &options);
        assert!(used_tls(&tls, &url, &app).await, "{url}: encrypted");
    }
    let app = unique_app("tls");
    let url = tls.url("postgres", "127.0.0.1", &app, "sslmode=disable");
    assert!(!used_tls(&tls, &url, &app).await, "{url}: plaintext");

    // A wrong host name, an unknown CA: refused, in every mode that checks.
    let name = "is not a name in the server's certificate";
    let url =
        tls.url("postgres", "wrong.invalid", "x", &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"));
    assert_refused(open(&url).await, name, "verify-full, wrong host name");
    let unknown = "not signed by a CA in sslrootcert";
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let url = tls.url("postgres", "localhost", "x", &format!("sslmode={mode}&sslrootcert={other}"));
        assert_refused(open(&url).await, unknown, &format!("{mode}, unknown CA"));
    }
    // Without sslrootcert, verify-* trust the system's roots, which do not hold the
    // test's CA (or, on a machine without any, say so).
    let url = tls.url("postgres", "localhost", "x", "sslmode=verify-full");
    match open(&url).await {
        Err(e @ StoreError::Config(_)) => assert!(e.to_string().contains("system root"), "{e}"),
        r => assert_refused(r, unknown, "verify-full with the system's roots"),
    }

    // A client certificate logs in where the server asks for one.
    let cert = format!("sslcert={}&sslkey={}", path(&tls.client_cert), path(&tls.client_key));
    let app = unique_app("tls_cert");
    let url = tls.url(CERT_USER, "localhost", &app, &format!("sslmode=verify-full&sslrootcert={ca}&{cert}"));
    assert!(used_tls(&tls, &url, &app).await, "client certificate");
    let url = tls.url(CERT_USER, "localhost", "x", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let err = open(&url).await.expect_err("no client certificate");
    assert!(err.to_string().contains("certificate"), "{err}");

    // SCRAM with channel binding (tls-server-end-point) over verified TLS.
    let app = unique_app("tls_scram");
    let url = format!(
        "postgres://{PASSWORD_USER}:{PASSWORD}@localhost:{}/postgres?application_name={app}&sslmode=verify-full&sslrootcert={ca}&channel_binding=require",
        tls.server.port()
    );
    assert!(used_tls(&tls, &url, &app).await, "channel binding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_never_falls_back_to_plaintext() {
    let tls = TlsServer::start(false).await;
    let ca = path(&tls.ca);
    let plain = "does not offer TLS";
    for options in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        format!("sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let url = tls.url("postgres", "localhost", "x", &options);
        assert_refused(open(&url).await, plain, &options);
    }
    // The same refusal through the builder API.
    let mut pg = tokio_postgres::Config::new();
    pg.host("127.0.0.1").port(tls.server.port()).user("postgres").dbname("postgres");
    let r = PostgresStore::connect_pg_config(pg.clone(), PostgresConfig::default().ssl_mode(SslMode::Require)).await;
    assert_refused(r, plain, "connect_pg_config, require");
    pg.ssl_mode(tokio_postgres::config::SslMode::Require);
    let r = PostgresStore::connect_pg_config(pg, PostgresConfig::default()).await;
    assert_refused(r, plain, "connect_pg_config, the driver config's require");
    // prefer (the default) may, and only because the server does not offer TLS.
    for options in ["sslmode=prefer", "", "sslmode=disable"] {
        let app = unique_app("plain");
        let url = tls.url("postgres", "127.0.0.1", &app, options);
        assert!(!used_tls(&tls, &url, &app).await, "{url}: plaintext");
    }
}

/// A server that says yes to TLS and then sends bytes that are not TLS (a garbled
/// connection, a middlebox, a server being replaced): the handshake broke, which the
/// next attempt may not meet, so the error is retryable, unlike a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_broken_by_garbage_is_retryable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = served.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if conn.read_exact(&mut request).await.is_ok() {
                    // "yes, TLS", then a TLS record header of an unknown content type.
                    let _ = conn.write_all(b"S\x63\x03\x03\x00\x05hello").await;
                    let mut rest = Vec::new();
                    let _ = conn.read_to_end(&mut rest).await;
                }
            });
        }
    });
    for mode in ["require", "prefer"] {
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode={mode}&connect_timeout=5");
        let e = match open(&url).await {
            Err(e) => e,
            Ok(_) => panic!("sslmode={mode}: a store opened against a server that speaks no TLS"),
        };
        assert!(e.is_retryable(), "sslmode={mode}: a broken handshake is retryable: {e:?}");
        assert!(e.to_string().contains("TLS"), "sslmode={mode}: the error says TLS: {e}");
    }
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) >= 2, "both modes reached the server");
    server.abort();
}

//! The Redis store over TLS (`rediss://`), against a `redis-server` the test starts with
//! `--tls-port` and certificates the test makes (rcgen): a good certificate connects, a
//! wrong host name or an unknown CA is refused with a clear, non-retryable error, a
//! client certificate is presented when the server asks for one, and a plaintext URL
//! never talks to the TLS port as if it were plain.
#![cfg(feature = "redis")]

mod redis_postgres_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::redis::{RedisConfig, RedisStore};
use bot_sessions::testing::{Counter, unique_namespace};
use bot_sessions::{
    DynStore, Precondition, Scope, SessionError, SessionKey, Sessions, Store, StoreError, Timestamp, Write,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use redis_postgres_common::{free_port, temp_dir, wait_until};

/// A CA, a server certificate for `localhost` only, a client certificate, and a second
/// CA that signed nothing the server shows.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = temp_dir("redis-tls");
        let (ca_params, ca_key, ca_pem) = ca("bot-sessions test CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&server_key, &issuer).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "bot");
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        let (_, _, other_pem) = ca("somebody else's CA");
        for (name, pem) in [
            ("ca.pem", ca_pem),
            ("server.pem", server.pem()),
            ("server.key", server_key.serialize_pem()),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
            ("other-ca.pem", other_pem),
        ] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

/// `redis-server` serving TLS only, on a free port.
struct TlsServer {
    port: u16,
    child: Child,
}

impl TlsServer {
    /// `client_certs`: `yes` (required), `optional` or `no`.
    async fn start(pki: &Pki, dir: &Path, client_certs: &str) -> TlsServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(["--tls-cert-file", &pki.path("server.pem"), "--tls-key-file", &pki.path("server.key")])
            .args(["--tls-ca-cert-file", &pki.path("ca.pem"), "--tls-auth-clients", client_certs])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server (built with TLS) must be installed");
        let server = TlsServer { port, child };
        let good = server.url(
            "localhost",
            &format!(
                "sslrootcert={}&sslcert={}&sslkey={}",
                pki.path("ca.pem"),
                pki.path("client.pem"),
                pki.path("client.key")
            ),
        );
        wait_until("the TLS redis-server to answer", Duration::from_secs(30), || {
            let good = good.clone();
            async move { RedisStore::connect(&good).await.is_ok() }
        })
        .await;
        server
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!("rediss://{host}:{}/0?{query}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn round_trip(store: RedisStore) {
    let ns = unique_namespace("tls");
    let k = SessionKey::new(ns.clone(), Scope::Chat(1));
    let now = Timestamp::now();
    let w = Write::new(b"over tls", 1, None);
    store.write(&k, w, Precondition::Absent, now).await.unwrap();
    assert_eq!(store.load(&k, now).await.unwrap().map(|r| r.value), Some(b"over tls".to_vec()));
    let sessions = Sessions::<Counter>::builder(Arc::new(store) as DynStore).namespace(ns.as_str()).build().unwrap();
    let key = SessionKey::new(ns, Scope::Chat(2));
    for _ in 0..3 {
        sessions
            .update(&key, |c| {
                c.n += 1;
                Ok::<_, SessionError>(())
            })
            .await
            .unwrap();
    }
    assert_eq!(sessions.get(&key).await.unwrap().map(|c| c.n), Some(3));
}

/// The error of a connection that must be refused, with the words that must explain it.
async fn refused(url: &str, config: RedisConfig, words: &str) -> StoreError {
    let err = match RedisStore::connect_with(url, config).await {
        Ok(_) => panic!("{url}: connected, but must be refused"),
        Err(e) => e,
    };
    assert!(!err.is_retryable(), "{url}: a refused certificate does not pass by retrying: {err:?}");
    assert!(err.to_string().contains(words), "{url}: the error must say `{words}`: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_ca_connects_and_anything_else_is_refused() {
    let pki = Pki::new();
    let dir = temp_dir("redis-tls-server");
    let server = TlsServer::start(&pki, &dir, "optional").await;
    let ca = format!("sslrootcert={}", pki.path("ca.pem"));

    // The CA from the URL, the host name the certificate covers: connects and works.
    round_trip(RedisStore::connect(&server.url("localhost", &ca)).await.expect("good certificate")).await;
    // The same through the builder.
    let files = bot_sessions::store::redis::TlsFiles::default().root_cert(pki.path("ca.pem"));
    let store =
        RedisStore::connect_with(&server.url("localhost", ""), RedisConfig::default().tls(files)).await.unwrap();
    round_trip(store).await;

    // A host name the certificate does not cover.
    refused(&server.url("127.0.0.1", &ca), RedisConfig::default(), "host name").await;
    // A CA that did not sign it, and the system roots (which know nothing of it).
    let other = format!("sslrootcert={}", pki.path("other-ca.pem"));
    refused(&server.url("localhost", &other), RedisConfig::default(), "trusted CA").await;
    refused(&server.url("localhost", ""), RedisConfig::default(), "trusted CA").await;

    // A CA file that is not there is a configuration error naming it.
    match RedisStore::connect(&server.url("localhost", "sslrootcert=/nonexistent/ca.pem")).await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("/nonexistent/ca.pem"), "{msg}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
    // TLS files on a plaintext URL are refused rather than ignored.
    let plain = format!("redis://localhost:{}?{ca}", server.port);
    assert!(matches!(RedisStore::connect(&plain).await, Err(StoreError::Config(_))));
    // Plaintext to the TLS port never works (and never hangs).
    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    assert!(RedisStore::connect_with(&format!("redis://localhost:{}", server.port), config).await.is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_wants_a_client_certificate_gets_the_one_in_the_url() {
    let pki = Pki::new();
    let dir = temp_dir("redis-mtls-server");
    let server = TlsServer::start(&pki, &dir, "yes").await;
    let ca = format!("sslrootcert={}", pki.path("ca.pem"));
    let with_cert = format!("{ca}&sslcert={}&sslkey={}", pki.path("client.pem"), pki.path("client.key"));
    round_trip(RedisStore::connect(&server.url("localhost", &with_cert)).await.expect("client certificate")).await;

    let config = RedisConfig::default().op_timeout(Duration::from_secs(2));
    let err = RedisStore::connect_with(&server.url("localhost", &ca), config).await.expect_err("no client certificate");
    assert!(!err.is_retryable() && err.to_string().contains("client certificate"), "{err}");
    // A certificate without its key is a configuration error.
    let half = format!("{ca}&sslcert={}", pki.path("client.pem"));
    assert!(matches!(RedisStore::connect(&server.url("localhost", &half)).await, Err(StoreError::Config(_))));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

//! A password in a store URL never shows: every way opening a store can fail, on every
//! backend, is driven with a URL that carries one, and the error's `Display` and `Debug`
//! are searched for it (and the `Debug` of a store that opened).

use std::time::Duration;

use bot_sessions::store::postgres::{PostgresConfig, PostgresStore};

use super::redis_postgres_common::free_port;
use super::tls::{PASSWORD, PASSWORD_USER, TlsServer};

/// The password the URLs carry (the real one of [`PASSWORD_USER`] where it matters).
const PW: &str = "hunter2-Red4cted";

fn assert_hidden(what: &str, shown: &str, secret: &str) {
    assert!(!shown.contains(secret), "{what}: the password shows in: {shown}");
}

async fn open_fails(url: &str, secret: &str) {
    let r = tokio::time::timeout(Duration::from_secs(60), bot_sessions::store::open(url)).await;
    let r = r.unwrap_or_else(|_| panic!("opening did not end in time"));
    match r {
        Err(e) => {
            assert_hidden("an error of opening a store", &format!("{e}\n{e:?}"), secret);
            eprintln!("refused, password hidden: {e}");
        }
        Ok(_) => panic!("opened, but must fail: {}", url.replace(secret, "***")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_of_opening_a_store_shows_its_password() {
    let tls = TlsServer::start(true).await;
    let (tls_port, down) = (tls.server.port(), free_port());
    let ca = tls.ca.display().to_string();
    let other_ca = tls.other_ca.display().to_string();
    let mut urls = vec![
        // Not a URL, or not one we know.
        format!("bot:{PW}@127.0.0.1:5432/test"),
        format!("bot:{PW}@h://x"),
        format!("ftp://bot:{PW}@127.0.0.1/x"),
        format!("postgress://bot:{PW}@127.0.0.1/test"),
        format!("memory://bot:{PW}@x?purge_interval=soon"),
        // Bad options and values.
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?pool_size=0"),
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?table=Bad-Name"),
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?no_such_option=1"),
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?connect_timeout=99999999"),
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?sslmode=sometimes"),
        format!("postgres://bot:{PW}@127.0.0.1:5432/test?purge_interval=-1"),
        format!("postgres://bot@127.0.0.1:5432/test?password={PW}&pool_size=0"),
        format!("postgres://bot@127.0.0.1:5432/test?password={PW}&no_such_option=1"),
        // Bad port, unreachable host, unknown host.
        format!("postgres://bot:{PW}@127.0.0.1:notaport/test"),
        format!("postgres://bot:{PW}@127.0.0.1:99999/test"),
        format!("postgres://bot:{PW}@127.0.0.1:{down}/test?connect_timeout=2"),
        format!("postgres://bot@127.0.0.1:{down}/test?password={PW}&connect_timeout=2"),
        format!("postgres://bot:{PW}@no-such-host.invalid/test?connect_timeout=2"),
        // TLS files that are not there or not certificates, TLS refused.
        format!(
            "postgres://bot:{PW}@127.0.0.1:{tls_port}/postgres?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
        ),
        format!("postgres://bot:{PW}@127.0.0.1:{tls_port}/postgres?sslmode=verify-full&sslrootcert=/etc/hostname"),
        format!("postgres://bot:{PW}@127.0.0.1:{tls_port}/postgres?sslcert={ca}"),
        format!("postgres://bot:{PW}@127.0.0.1:{tls_port}/postgres?sslcert={ca}&sslkey={ca}"),
        format!("postgres://bot:{PW}@localhost:{tls_port}/postgres?sslmode=verify-full&sslrootcert={other_ca}"),
        // Authentication refused: a wrong password, over TLS and not.
        format!("postgres://{PASSWORD_USER}:{PW}@127.0.0.1:{tls_port}/postgres?sslmode=disable"),
        format!("postgres://{PASSWORD_USER}:{PW}@localhost:{tls_port}/postgres?sslmode=verify-full&sslrootcert={ca}"),
        format!("postgres://{PASSWORD_USER}@127.0.0.1:{tls_port}/postgres?password={PW}"),
        // SQLite takes no password, but a URL can carry one anyway.
        format!("sqlite:///nonexistent/dir/bot.db?password={PW}"),
        format!("sqlite:///tmp/bot.db?password={PW}&no_such_option=1"),
    ];
    if cfg!(feature = "redis") {
        urls.extend([
            format!("redis://:{PW}@127.0.0.1:{down}/0"),
            format!("redis://bot:{PW}@no-such-host.invalid:6379/0"),
            format!("redis://:{PW}@127.0.0.1:6379/0?prefix=bad%20prefix"),
        ]);
    }
    for url in &urls {
        open_fails(url, PW).await;
    }

    // The right password: it opens, and the store's Debug does not show it either.
    let url = format!(
        "postgres://{PASSWORD_USER}:{PASSWORD}@localhost:{tls_port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    );
    let store = PostgresStore::connect_with(&url, PostgresConfig::default()).await.expect("the right password");
    assert_hidden("a store's Debug", &format!("{store:?}"), PASSWORD);
    bot_sessions::store::open(&url).await.expect("the right password, through store::open");
}

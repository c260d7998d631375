//! The demo's start banners name the store without its password: console (on a
//! terminal) and Discord, through the binary, with a PostgreSQL URL whose password
//! holds URL delimiters and a `password=` option (the local server trusts any).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

/// RFC 8032 test vector 1's public key: any valid key will do for starting.
const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// A PostgreSQL URL with secrets, on a table of its own; and that table's name.
fn store_url() -> (String, String) {
    let base =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let table = format!("demo_banner_{:016x}", rand::random::<u64>());
    let url = base.replacen("://postgres@", "://postgres:my/s3cret@", 1);
    assert_ne!(url, base, "the test URL names user postgres: {base}");
    let sep = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{sep}table={table}&password=s3cret2"), table)
}

fn drop_table(table: &str) {
    let base =
        std::env::var("BOT_SESSIONS_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let sql = format!("DROP TABLE IF EXISTS public.\"{table}\", public.\"{table}_schema\"");
    let _ = std::process::Command::new("psql").args([&base, "-q", "-c", &sql]).output();
}

#[tokio::test]
async fn the_discord_banner_shows_no_password() {
    let (url, table) = store_url();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["discord", "--listen", "127.0.0.1:0", "--public-key", PUBLIC_KEY])
        .env("BOT_SESSIONS_STORE", &url)
        .env_remove("DISCORD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
            if line.starts_with("listening on ") {
                break;
            }
        }
    })
    .await;
    child.kill().await.unwrap();
    drop_table(&table);
    assert!(read.is_ok(), "no `listening on` within 60 s: {said}");
    assert!(said.contains("sessions in postgres://postgres:***@127.0.0.1"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}

#[test]
fn the_console_banner_on_a_terminal_shows_no_password() {
    let (url, table) = store_url();
    // `script` gives the demo a terminal for stdin (the banner is for people); its
    // own stdin is empty, so the demo sees the end of input and quits.
    let command = format!("{} --store '{url}'", env!("CARGO_BIN_EXE_bot-sessions-demo"));
    let out = std::process::Command::new("timeout")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    drop_table(&table);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("sessions in postgres://postgres:***@127.0.0.1"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}

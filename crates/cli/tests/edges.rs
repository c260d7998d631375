//! The edges of issue 20 through the binary: passwords never printed by `copy`, dates
//! past the year 9999 shown instead of a panic, import lines whose times make no sense
//! or that are too long refused by number, a newer live session never replaced.

mod support;

use std::io::Write as _;
use std::process::{Command as StdCommand, Stdio};

use support::{Backend, Env, export, key, ok, record, run, seed};

/// The PostgreSQL target of `env` (a private table) with `userinfo` (`user:password`)
/// instead of its user.
fn with_password(env: &Env, userinfo: &str) -> String {
    let url = env.url.replacen("://postgres@", &format!("://{userinfo}@"), 1);
    assert_ne!(url, env.url, "the test URL names user postgres: {}", env.url);
    url
}

#[test]
fn copy_never_prints_a_password_on_success_or_on_error() {
    let src = Env::new(Backend::Sqlite);
    ok(src.cmd().args(["set", "c/chat:1", r#"{"n":1}"#]));
    // The server trusts local connections: any password gets in, so these succeed.
    let dst = Env::new(Backend::Postgres);
    for (to, secret) in [
        (with_password(&dst, "postgres:my/secret"), "my/secret"),
        (with_password(&dst, "postgres:p%40ss%3Fw%23rd"), "p%40ss%3Fw%23rd"),
        (format!("{}&password=s3cret", dst.url), "s3cret"),
    ] {
        let (code, out, err) = run(src.cmd().args(["copy", "--to", &to]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("copied") && out.contains("127.0.0.1"), "{out}");
        for shown in [&out, &err] {
            assert!(!shown.contains(secret), "{secret} shows: {shown}");
        }
    }
    // The same target from BOT_SESSIONS_COPY_TO (not in `ps`).
    let (code, out, err) =
        run(src.cmd().env("BOT_SESSIONS_COPY_TO", format!("{}&password=s3cret", dst.url)).arg("copy"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "{out}{err}");
    // Errors: a bad option, an unreachable server.
    for to in [
        format!("{}&password=s3cret&pool_size=0", dst.url),
        "postgres://postgres@127.0.0.1:1/test?password=s3cret".to_owned(),
        "postgres://postgres:my/s3cret@127.0.0.1:1/test".to_owned(),
        "redis://:pa?s3cret@127.0.0.1:1".to_owned(),
        "redis://:p@s3cret@127.0.0.1:1".to_owned(),
        // Delimiters not percent-encoded: the driver cannot read it, and its message
        // (which quotes what it could not read) is not shown.
        with_password(&dst, "postgres:p@ss?w#s3cret"),
        // An option the driver does not know (options are case-sensitive), masked all the same.
        format!("{}&PASSWORD=s3cret", dst.url),
    ] {
        let (code, out, err) = run(src.cmd().args(["copy", "--to", &to]));
        assert!(code == 2 || code == 3, "{to}: {code} {out}{err}");
        assert!(!out.contains("s3cret") && !err.contains("s3cret"), "{to}: {out}{err}");
    }
}

#[test]
fn help_says_where_secrets_come_from() {
    let out = ok(assert_cmd::Command::cargo_bin("bot-sessions").unwrap().arg("--help"));
    assert!(out.contains("--keys-file") && out.contains("BOT_SESSIONS_KEYS") && out.contains("`ps`"), "{out}");
    assert!(!out.contains("--keys <"), "no --keys flag is offered: {out}");
}

fn a_date_after_9999_is_shown_and_hides_nothing(backend: Backend) {
    let env = Env::new(backend);
    ok(env.cmd().args(["set", "counter/chat:1", "{}"]));
    ok(env.cmd().args(["set", "counter/chat:2", "{}", "--ttl", "400000000000"]));
    let out = ok(env.cmd().arg("list"));
    assert!(out.contains("counter/chat:1") && out.contains("counter/chat:2"), "{out}");
    assert!(out.contains("(not a date)"), "{out}");
    let out = ok(env.cmd().args(["get", "counter/chat:2"]));
    assert!(out.contains("expires:  @") && out.contains("(not a date)"), "{out}");
    let out = ok(env.cmd().args(["--json", "list"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    ok(env.cmd().arg("stats"));
    ok(env.cmd().arg("export"));
}

/// An export line for `key` with these times (Unix ms) and a fresh version.
fn line(key: &str, value: &str, created_at: i64, updated_at: i64, expires_at: Option<i64>) -> String {
    use base64::Engine as _;
    serde_json::json!({
        "key": key, "value": base64::engine::general_purpose::STANDARD.encode(value), "version": bot_sessions::new_version(),
        "schema_version": 1, "created_at": created_at, "updated_at": updated_at, "expires_at": expires_at, "user_id": null,
    })
    .to_string()
}

fn import_with_times_that_make_no_sense_keeps_the_live_session(backend: Backend) {
    let env = Env::new(backend);
    let k = key("c/chat:1");
    // A live session, written a minute ago, expiring in an hour.
    let live = record(br#"{"n":"live"}"#, 60_000, 60_000, Some(3_600_000));
    seed(&env.store(), &k, &live);
    let now = bot_sessions::Timestamp::now().as_millis();
    let day = 86_400_000;
    let lines = [
        // The review's line: created tomorrow, updated yesterday.
        line("c/chat:1", r#"{"n":"old"}"#, now + day, now - day, None),
        // Created and updated tomorrow: past the live session's expiry as a store sees it.
        line("c/chat:1", r#"{"n":"future"}"#, now + day, now + day, Some(now + 2 * day)),
        // Created after updated, both in the past.
        line("c/chat:1", r#"{"n":"swapped"}"#, now - 1000, now - day, None),
        line("c/chat:1", r#"{"n":"negative"}"#, -5, 10, None),
    ];
    let (code, out, err) = run(env.cmd().arg("import").write_stdin(lines.join("\n")));
    assert_eq!(code, 2, "{out}{err}");
    for n in 1..=4 {
        assert!(err.contains(&format!("stdin: line {n}: ")), "line {n} is reported: {err}");
    }
    assert!(err.contains("in the future") && err.contains("is after its updated_at"), "{err}");
    let there = support::rt().block_on(env.store().load(&k, bot_sessions::Timestamp::now())).unwrap().unwrap();
    assert_eq!((there.version, there.value), (live.version, live.value), "the live session is untouched");
}

#[test]
fn a_line_longer_than_the_limit_is_refused_by_number_with_bounded_memory() {
    let env = Env::new(Backend::Sqlite);
    let now = bot_sessions::Timestamp::now().as_millis();
    let first = line("c/chat:1", r#"{"n":1}"#, now - 10, now - 10, None);
    let third = line("c/chat:3", r#"{"n":3}"#, now - 10, now - 10, None);
    let bin = assert_cmd::cargo::cargo_bin("bot-sessions");
    let mut child = StdCommand::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M"])
        .arg(bin)
        .arg("import")
        .env("BOT_SESSIONS_STORE", &env.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(first.as_bytes())?;
        stdin.write_all(b"\n{\"key\": \"c/chat:2\", \"value\": \"")?;
        let block = vec![b'A'; 1 << 20];
        for _ in 0..100 {
            stdin.write_all(&block)?;
        }
        stdin.write_all(b"\"}\n")?;
        stdin.write_all(third.as_bytes())?;
        stdin.write_all(b"\n")
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stdin: line 2: longer than 16777216 bytes"), "{err}");
    let exported = export(&env);
    assert!(exported.contains("c/chat:1") && exported.contains("c/chat:3") && !exported.contains("c/chat:2"));
    let rss: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"));
    eprintln!("import of a 100 MiB line: peak RSS {} MiB", rss / 1024);
    assert!(rss < 80 * 1024, "the 100 MiB line was held in memory: peak RSS {rss} KiB");
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $test() { super::$test(super::Backend::Sqlite) } )* }
        mod redis { $( #[test] fn $test() { super::$test(super::Backend::Redis) } )* }
        mod postgres { $( #[test] fn $test() { super::$test(super::Backend::Postgres) } )* }
    };
}

on_every_backend!(
    a_date_after_9999_is_shown_and_hides_nothing,
    import_with_times_that_make_no_sense_keeps_the_live_session
);

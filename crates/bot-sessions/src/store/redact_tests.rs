//! `redact_url` and `redact_url_in`: examples, then properties over random passwords
//! holding every URL delimiter and percent-encoding, in the user info and in query
//! options.

use proptest::prelude::*;

use super::{redact_url, redact_url_in};

#[test]
fn passwords_are_masked() {
    let cases = [
        ("postgres://bot:s3cret@h:5432/db?sslmode=x", "postgres://bot:***@h:5432/db?sslmode=x"),
        ("postgres://h/db?password=s3cret&x=1", "postgres://h/db?password=***&x=1"),
        ("postgres://h/db?x=1&PassWord=s3cret", "postgres://h/db?x=1&PassWord=***"),
        ("postgres://h/db?x=1&pass%77ord=s3cret", "postgres://h/db?x=1&pass%77ord=***"),
        ("postgres://bot@h/db", "postgres://bot@h/db"),
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:s3cret@h:6380?prefix=a:", "rediss://user:***@h:6380?prefix=a:"),
        ("redis://h:6379", "redis://h:6379"),
        ("memory://", "memory://"),
        // Unescaped delimiters in the password: still masked whole.
        ("postgres://bot:s3c@r/e:t@h/db", "postgres://bot:***@h/db"),
        ("postgres://postgres:my/secret@127.0.0.1:5432/test", "postgres://postgres:***@127.0.0.1:5432/test"),
        ("redis://:pa?ss@127.0.0.1:1", "redis://:***@127.0.0.1:1"),
        ("redis://:pa#ss@127.0.0.1:1", "redis://:***@127.0.0.1:1"),
        ("redis://:p%40ss%2F@127.0.0.1:1", "redis://:***@127.0.0.1:1"),
        ("ftp://u:s3cret@h", "ftp://u:***@h"),
        ("postgres://h/db?sslpassword=s3cret", "postgres://h/db?sslpassword=***"),
        ("postgres://h/db?sslkey=/k.pem&sslpassword=s3cret", "postgres://h/db?sslkey=/k.pem&sslpassword=***"),
        // A password option whose value holds `@`, `?` or `#`.
        ("postgres://h/db?password=a@b?c#d&x=1", "postgres://h/db?password=***&x=1"),
        // Both at once.
        ("postgres://u:p@w@h/db?password=q@r", "postgres://u:***"),
    ];
    for (url, want) in cases {
        assert_eq!(redact_url(url), want, "{url}");
    }
    for not_url in ["host=h password=s3cret", "s3cret", "", "u:s3cret@h://x", "://s3cret"] {
        assert!(!redact_url(not_url).contains("s3cret"), "{not_url}");
    }
}

#[test]
fn secrets_echoed_by_a_driver_are_masked_in_messages() {
    let url = "postgres://postgres:my@secret@127.0.0.1:1/test?password=other";
    let said = format!("cannot open {url}: host `secret@127.0.0.1` not found; password `other` refused");
    let shown = redact_url_in(&said, url);
    assert!(!shown.contains("secret") && !shown.contains("other"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    let said = "cannot open host=h password=s3cret";
    assert_eq!(redact_url_in(said, "host=h password=s3cret"), "cannot open ***");
}

/// One piece of a password: a delimiter, a percent-encoding or a plain run.
fn piece(in_query: bool) -> impl Strategy<Value = String> {
    let delimiters: &[&str] = if in_query {
        // A raw `&` ends an option in every driver; in a query it is written `%26`.
        &["/", "?", "@", "#", ":", "%", "=", "+", ";", " ", "!", "$"]
    } else {
        &["/", "?", "@", "#", ":", "%", "=", "+", ";", " ", "!", "$", "&"]
    };
    const ENCODINGS: [&str; 11] = ["%2F", "%3F", "%40", "%23", "%3A", "%25", "%26", "%3D", "%20", "%2f", "%zz"];
    prop_oneof![
        proptest::sample::select(delimiters).prop_map(str::to_owned),
        proptest::sample::select(&ENCODINGS[..]).prop_map(str::to_owned),
        "[A-Za-z0-9._~-]{1,6}",
    ]
}

/// A password: pieces around a marker (`Zq9`) at a random place, so a leak of any part
/// holding it shows.
fn password(in_query: bool) -> impl Strategy<Value = String> {
    (proptest::collection::vec(piece(in_query), 0..8), proptest::collection::vec(piece(in_query), 0..8))
        .prop_map(|(before, after)| format!("{}Zq9{}", before.concat(), after.concat()))
}

/// Options that are not secrets, some with delimiters in their values.
fn other_options() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::sample::select(&["sslmode=require", "table=t", "prefix=a:b", "x=@y", "sslkey=/k@x.pem", "s=%40"][..])
            .prop_map(str::to_owned),
        0..3,
    )
}

fn scheme() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&["postgres", "postgresql", "redis", "rediss", "sqlite"][..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_password_in_the_user_info_never_shows(
        scheme in scheme(),
        user in "[a-z]{0,5}",
        pw in password(false),
        host in proptest::sample::select(&["127.0.0.1:5432", "db", "h:1", "[::1]:6379"][..]),
        path in proptest::sample::select(&["", "/", "/db", "/0"][..]),
        options in other_options(),
    ) {
        let query = if options.is_empty() { String::new() } else { format!("?{}", options.join("&")) };
        let url = format!("{scheme}://{user}:{pw}@{host}{path}{query}");
        let shown = redact_url(&url);
        prop_assert!(!shown.contains(&pw) && !shown.contains("Zq9"), "{url} -> {shown}");
        prop_assert!(shown.starts_with(&format!("{scheme}://{user}:***@")), "{url} -> {shown}");
        let said = format!("error at {url}: {pw} / {}", &pw[pw.find('@').map_or(0, |i| i + 1)..]);
        let shown = redact_url_in(&said, &url);
        prop_assert!(!shown.contains("Zq9"), "{said} -> {shown}");
    }

    #[test]
    fn a_password_option_never_shows(
        scheme in scheme(),
        userinfo in proptest::sample::select(&["", "bot@", "bot:@", ":Zq9@"][..]),
        name in proptest::sample::select(&["password", "PASSWORD", "sslpassword", "SslPassword", "pass%77ord", "token", "passwd"][..]),
        pw in password(true),
        before in other_options(),
        after in other_options(),
    ) {
        let mut options = before;
        options.push(format!("{name}={pw}"));
        options.extend(after);
        let url = format!("{scheme}://{userinfo}127.0.0.1:5432/db?{}", options.join("&"));
        let shown = redact_url(&url);
        prop_assert!(!shown.contains(&pw) && !shown.contains("Zq9"), "{url} -> {shown}");
        let shown = redact_url_in(&format!("bad {url}; password {pw}"), &url);
        prop_assert!(!shown.contains("Zq9"), "{url} -> {shown}");
    }

    #[test]
    fn anything_at_all_keeps_a_marked_password_out(
        head in "[a-z+.-]{0,6}",
        pw in password(false),
        pieces in proptest::collection::vec(piece(false), 0..6),
    ) {
        // Not always a URL: whatever it is, a password after `:` in front of an `@`
        // does not show.
        let url = format!("{head}://u:{pw}@{}", pieces.concat());
        prop_assert!(!redact_url(&url).contains("Zq9"), "{url}");
    }
}

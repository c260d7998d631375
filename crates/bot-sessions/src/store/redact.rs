//! Store URLs with their secrets masked, for every place a URL is printed: errors,
//! `Debug` output, logs. One function for every backend, so a new backend cannot forget
//! a case.

/// Query options whose values are secrets (compared without case).
const SECRET_OPTIONS: [&str; 5] = ["password", "sslpassword", "pass", "passwd", "token"];

/// `url` with every secret masked as `***`: the password of the user info
/// (`scheme://user:PASSWORD@host`, also Redis's `redis://:PASSWORD@host`) and the value
/// of a `password=` (or `sslpassword=`, `pass=`, `passwd=`, `token=`) query option.
///
/// The user info runs to the *last* `@` before the query, so a password with an
/// unescaped `@` or `/` is masked whole. A string that is not a URL (a libpq
/// `host=... password=...` connection string, or anything without `://`) is not echoed
/// at all.
///
/// Public so a bot can print the store URL it was given (`cannot open {url}`) without
/// its password.
///
/// # Examples
///
/// ```
/// use bot_sessions::store::redact_url;
///
/// assert_eq!(redact_url("postgres://bot:s3cret@db/bot?sslmode=require"), "postgres://bot:***@db/bot?sslmode=require");
/// assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
/// ```
pub fn redact_url(url: &str) -> String {
    let scheme_end = match url.find("://") {
        Some(i) if is_scheme(&url[..i]) => i,
        _ => return "(not a URL; not shown)".to_owned(),
    };
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    let authority_start = scheme_end + 3;
    match before_query.get(authority_start..).and_then(|rest| rest.rfind('@').map(|at| authority_start + at)) {
        Some(at) => {
            let userinfo = &before_query[authority_start..at];
            out.push_str(&before_query[..authority_start]);
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(k)) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A URL scheme as RFC 3986 spells it: a letter, then letters, digits, `+`, `-`, `.`.
pub(crate) fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked() {
        let cases = [
            ("postgres://bot:s3cret@h:5432/db?sslmode=x", "postgres://bot:***@h:5432/db?sslmode=x"),
            ("postgres://h/db?password=s3cret&x=1", "postgres://h/db?password=***&x=1"),
            ("postgres://h/db?x=1&PassWord=s3cret", "postgres://h/db?x=1&PassWord=***"),
            ("postgres://bot@h/db", "postgres://bot@h/db"),
            ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
            ("rediss://user:s3cret@h:6380?prefix=a:", "rediss://user:***@h:6380?prefix=a:"),
            ("redis://h:6379", "redis://h:6379"),
            ("memory://", "memory://"),
            // Unescaped `@`, `/` and `:` in the password: still masked whole.
            ("postgres://bot:s3c@r/e:t@h/db", "postgres://bot:***@h/db"),
            ("ftp://u:s3cret@h", "ftp://u:***@h"),
            ("postgres://h/db?sslpassword=s3cret", "postgres://h/db?sslpassword=***"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
        for not_url in ["host=h password=s3cret", "s3cret", "", "u:s3cret@h://x", "://s3cret"] {
            assert!(!redact_url(not_url).contains("s3cret"), "{not_url}");
        }
    }
}

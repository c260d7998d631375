//! Store URLs with their secrets masked, for every place a URL is printed: errors,
//! `Debug` output, logs, the operator tool and the demo's banners. One function for
//! every backend and every binary, so a new caller cannot forget a case.
//!
//! A password may hold any URL delimiter unescaped (`/ ? @ # : %`), and the drivers do
//! not agree on where one ends (tokio-postgres takes the user info to the *first* `@`,
//! the `url` crate to the last `@` of the authority), so the masking is conservative:
//! everything that some reading could take for a secret is masked, and a URL that only
//! looks odd may show less than it could.

use std::ops::Range;

/// Query options whose values are secrets (compared without case, after decoding
/// `%XX`). `sslkey` and the other TLS options are file paths, not secrets.
const SECRET_OPTIONS: [&str; 5] = ["password", "sslpassword", "pass", "passwd", "token"];

/// What a masked stretch becomes.
const MASK: &str = "***";

/// `url` with every secret masked as `***`: the password of the user info
/// (`scheme://user:PASSWORD@host`, also Redis's `redis://:PASSWORD@host`) and the value
/// of a `password=` (or `sslpassword=`, `pass=`, `passwd=`, `token=`) query option.
///
/// - The user info runs to the *last* `@` of the URL, so a password with unescaped
///   `@`, `/`, `?`, `#` or `:` is masked whole (a query value holding an `@` is then
///   masked with it: better too much than too little).
/// - A secret option is found after any `?` or `&`, its name compared without case and
///   with `%XX` decoded; its value is masked to the next `&` (an `&` in a password must
///   be written `%26`, as every driver reads a raw one as the next option).
/// - A string that is not a URL (a libpq `host=... password=...` connection string,
///   which no store accepts, or anything without `scheme://`) is not echoed at all.
///
/// Public so a bot or a tool can print the store URL it was given (`cannot open
/// {url}`, `sessions in {url}`) without its password.
///
/// # Examples
///
/// ```
/// use bot_sessions::store::redact_url;
///
/// assert_eq!(redact_url("postgres://bot:s3cret@db/bot?sslmode=require"), "postgres://bot:***@db/bot?sslmode=require");
/// assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact_url("redis://:pa?ss@127.0.0.1:1"), "redis://:***@127.0.0.1:1");
/// assert_eq!(redact_url("postgres://bot@db/bot?password=s3cret&table=t"), "postgres://bot@db/bot?password=***&table=t");
/// assert_eq!(redact_url("host=db password=s3cret"), "(not a URL; not shown)");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(ranges) = secret_ranges(url) else {
        return "(not a URL; not shown)".to_owned();
    };
    let masked = merged(ranges);
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for range in masked {
        out.push_str(&url[at..range.start]);
        out.push_str(MASK);
        at = range.end;
    }
    out.push_str(&url[at..]);
    out
}

/// `text` (an error message, a log line) with every secret of `url` masked: the URL
/// itself wherever it appears (replaced by [`redact_url`]'s form), then each secret of
/// it, as written and `%XX`-decoded, wherever a driver may have echoed a piece of it (a
/// host name read out of a password holding `@`, say). For a `url` that is not a URL,
/// the whole `url` is masked wherever it appears.
///
/// # Examples
///
/// ```
/// use bot_sessions::store::redact_url_in;
///
/// let url = "postgres://bot:my@secret@127.0.0.1/db";
/// let said = "cannot resolve host secret@127.0.0.1 of postgres://bot:my@secret@127.0.0.1/db";
/// let shown = redact_url_in(said, url);
/// assert!(!shown.contains("secret"), "{shown}");
/// ```
pub fn redact_url_in(text: &str, url: &str) -> String {
    let Some(ranges) = secret_ranges(url) else {
        return if url.is_empty() { text.to_owned() } else { text.replace(url, MASK) };
    };
    let mut out = if url.is_empty() { text.to_owned() } else { text.replace(url, &redact_url(url)) };
    let mut secrets: Vec<String> = Vec::new();
    for range in ranges {
        let raw = &url[range];
        secrets.push(raw.to_owned());
        let decoded = percent_decoded(raw);
        if decoded != raw {
            secrets.push(decoded);
        }
        // A driver that read the user info to the first `@` takes the piece before it
        // for the password and echoes what follows as a host: each `@`-separated piece
        // of a secret is a secret too.
        if raw.contains('@') {
            secrets.extend(raw.split('@').filter(|piece| piece.len() >= 3).map(str::to_owned));
        }
    }
    // Longest first, so a secret holding another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), MASK);
    }
    out
}

/// The byte ranges of `url` that are secrets, each on its own (they may overlap);
/// `None` when `url` is not `scheme://...`.
fn secret_ranges(url: &str) -> Option<Vec<Range<usize>>> {
    let scheme_end = url.find("://").filter(|&i| is_scheme(&url[..i]))?;
    let start = scheme_end + 3;
    let rest = &url[start..];
    let mut ranges = Vec::new();
    // The user info's password: from the first `:` to the last `@`.
    if let Some(at) = rest.rfind('@')
        && let Some(colon) = rest[..at].find(':')
    {
        ranges.push(start + colon + 1..start + at);
    }
    // Secret options: `?name=value` or `&name=value`, the value to the next `&`.
    for (i, c) in rest.char_indices() {
        if c != '?' && c != '&' {
            continue;
        }
        let option = &rest[i + 1..];
        let Some(eq) = option.find('=') else { continue };
        let name = &option[..eq];
        if name.contains(['&', '?']) || !SECRET_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(&percent_decoded(name))) {
            continue;
        }
        let value = &option[eq + 1..];
        let len = value.find('&').unwrap_or(value.len());
        let from = start + i + 1 + eq + 1;
        ranges.push(from..from + len);
    }
    Some(ranges)
}

/// `ranges` sorted, overlapping or touching ones joined, empty ones dropped.
fn merged(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `s` with its `%XX` escapes decoded (a malformed one is kept as it is; bytes that
/// are not UTF-8 become U+FFFD).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL scheme as RFC 3986 spells it: a letter, then letters, digits, `+`, `-`, `.`.
pub(crate) fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;

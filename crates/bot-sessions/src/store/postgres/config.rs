//! The settings of a [`PostgresStore`](super::PostgresStore): defaults, the options
//! taken out of a URL, and the checks that turn every out-of-range value into a
//! [`StoreError::Config`] at connect time.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use crate::StoreError;

/// Connections a store may hold.
pub(super) const POOL_SIZES: RangeInclusive<usize> = 1..=1024;

/// Settings of a [`PostgresStore`](super::PostgresStore) beyond the connection URL.
///
/// Every value is checked when the store connects; one out of range is a
/// [`StoreError::Config`], never a panic later.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The schema of the table (default `public`); created if missing.
    pub schema: String,
    /// The table (default `bot_sessions`); created if missing.
    pub table: String,
    /// Connections held open, each shared by many tasks (default 16; 1 to 1024).
    pub pool_size: usize,
    /// Longest time one store operation may take, waiting for a connection included
    /// (default 5 s; 1 ms to 1 h). A read that runs out of time is a retryable error; a
    /// write or delete that was already sent is [`StoreError::Ambiguous`]. The server
    /// cancels a statement still running after twice this time, so a statement whose
    /// caller gave up does not wait for ever.
    pub op_timeout: Duration,
    /// Timeout of one connection attempt (default 2 s; 1 ms to 1 h). A
    /// `connect_timeout` in the URL (whole seconds) wins over this.
    pub connect_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: "public".into(),
            table: "bot_sessions".into(),
            pool_size: 16,
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl PostgresConfig {
    /// Sets [`PostgresConfig::schema`].
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`PostgresConfig::table`].
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets [`PostgresConfig::pool_size`].
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets [`PostgresConfig::op_timeout`].
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Sets [`PostgresConfig::connect_timeout`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Checks every value; the first one out of range is the error.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        validate_identifier("schema", &self.schema, 63)?;
        // Room for the index name suffixes within PostgreSQL's 63-byte identifiers.
        validate_identifier("table", &self.table, 40)?;
        if !POOL_SIZES.contains(&self.pool_size) {
            return Err(StoreError::Config(format!(
                "postgres pool_size {} is out of range ({} to {})",
                self.pool_size,
                POOL_SIZES.start(),
                POOL_SIZES.end()
            )));
        }
        check_timeout("op_timeout", self.op_timeout)?;
        check_timeout("connect_timeout", self.connect_timeout)
    }

    /// The server-side `statement_timeout`, in milliseconds: twice the operation
    /// timeout (within range after [`PostgresConfig::check`]).
    pub(super) fn statement_timeout_ms(&self) -> u64 {
        u64::try_from(self.op_timeout.as_millis()).unwrap_or(u64::MAX).max(1).saturating_mul(2)
    }
}

fn check_timeout(what: &str, d: Duration) -> Result<(), StoreError> {
    crate::store::check_timeout("postgres", what, d)
}

/// A schema or table name that is safe to quote into SQL: lowercase ASCII letters,
/// digits and `_`, not starting with a digit, at most `max` bytes.
pub(super) fn validate_identifier(what: &str, name: &str, max: usize) -> Result<(), StoreError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= max {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "postgres {what} name {name:?} must be 1 to {max} characters from a-z, 0-9 and `_`, not starting with a digit"
        )))
    }
}

/// Splits `schema`, `table` and `pool_size` off a URL's query into `config`; the rest
/// stays for the driver (`sslmode`, `application_name`, ...).
pub(super) fn split_url(url: &str, config: &mut PostgresConfig) -> Result<String, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => config.schema = v.to_owned(),
            Some(("table", v)) => config.table = v.to_owned(),
            Some(("pool_size", v)) => {
                config.pool_size = v.parse().ok().filter(|n| POOL_SIZES.contains(n)).ok_or_else(|| {
                    StoreError::Config(format!(
                        "postgres pool_size `{v}` is not an integer from {} to {}",
                        POOL_SIZES.start(),
                        POOL_SIZES.end()
                    ))
                })?;
            }
            _ => rest.push(pair),
        }
    }
    Ok(if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) })
}

/// The driver's settings for `url` (already split), with `config`'s timeouts applied.
pub(super) fn driver_config(url: &str, config: &mut PostgresConfig) -> Result<tokio_postgres::Config, StoreError> {
    let mut pg = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Config(format!("postgres URL `{}` is not valid: {e}", redact(url))))?;
    match pg.get_connect_timeout() {
        Some(from_url) => {
            check_timeout("connect_timeout", *from_url)?;
            config.connect_timeout = *from_url;
        }
        None => {
            pg.connect_timeout(config.connect_timeout);
        }
    }
    // Notice a peer that vanished without closing the connection.
    pg.keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("bot-sessions");
    }
    Ok(pg)
}

/// `url` with its password (in the user info or a `password=` option) masked, for
/// error messages.
/// A connection string that is not a URL (`host=... password=...`) is not echoed at
/// all.
pub(super) fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    let Some(scheme_end) = out.find("://") else {
        return "(a key=value connection string, not shown)".to_owned();
    };
    {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..].find(['/', '?']).map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = authority_start..authority_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, "***");
            }
        }
    }
    let mut parts = Vec::new();
    let (base, query) = match out.split_once('?') {
        Some((b, q)) => (b.to_owned(), Some(q.to_owned())),
        None => (out.clone(), None),
    };
    let Some(query) = query else { return base };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("password", _)) => parts.push("password=***".to_owned()),
            _ => parts.push(pair.to_owned()),
        }
    }
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated() {
        assert!(validate_identifier("table", "bot_sessions", 40).is_ok());
        assert!(validate_identifier("table", "_t2", 40).is_ok());
        for bad in ["", "1abc", "Bot", "a-b", "a\"b", "a;drop table x", "ä", &"x".repeat(41)] {
            assert!(matches!(validate_identifier("table", bad, 40), Err(StoreError::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn options_are_split_off_the_url() {
        let mut c = PostgresConfig::default();
        let url = split_url("postgres://u@h:1/db?schema=s1&sslmode=disable&table=t1&pool_size=4", &mut c).unwrap();
        assert_eq!(url, "postgres://u@h:1/db?sslmode=disable");
        assert_eq!((c.schema.as_str(), c.table.as_str(), c.pool_size), ("s1", "t1", 4));
        for bad in ["0", "-1", "1025", "18446744073709551615", "99999999999999999999999", "x"] {
            let r = split_url(&format!("postgres://h/db?pool_size={bad}"), &mut c);
            assert!(matches!(r, Err(StoreError::Config(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn out_of_range_settings_are_config_errors() {
        let ok = PostgresConfig::default();
        assert!(ok.check().is_ok());
        let bad = [
            ok.clone().pool_size(0),
            ok.clone().pool_size(usize::MAX),
            ok.clone().op_timeout(Duration::ZERO),
            ok.clone().op_timeout(Duration::MAX),
            ok.clone().op_timeout(Duration::from_secs(3601)),
            ok.clone().connect_timeout(Duration::ZERO),
            ok.clone().connect_timeout(Duration::MAX),
        ];
        for c in bad {
            assert!(matches!(c.check(), Err(StoreError::Config(_))), "{c:?}");
        }
        assert_eq!(ok.clone().op_timeout(Duration::from_secs(3600)).statement_timeout_ms(), 7_200_000);
        assert_eq!(ok.op_timeout(Duration::from_micros(1500)).statement_timeout_ms(), 2);
    }

    #[test]
    fn url_timeouts_are_checked() {
        let mut c = PostgresConfig::default();
        assert!(driver_config("postgres://h/db?connect_timeout=99999999", &mut c).is_err());
        let pg = driver_config("postgres://h/db?connect_timeout=3", &mut c).unwrap();
        assert_eq!(
            (pg.get_connect_timeout().copied(), c.connect_timeout),
            (Some(Duration::from_secs(3)), Duration::from_secs(3))
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://bot:s3cret@h:5432/db?sslmode=x"), "postgres://bot:***@h:5432/db?sslmode=x");
        assert_eq!(redact("postgres://h/db?password=s3cret&x=1"), "postgres://h/db?password=***&x=1");
        assert_eq!(redact("postgres://bot@h/db"), "postgres://bot@h/db");
        assert!(!redact("host=h password=s3cret").contains("s3cret"));
        let err = driver_config("postgres://bot:s3cret@h:notaport/db", &mut PostgresConfig::default()).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}

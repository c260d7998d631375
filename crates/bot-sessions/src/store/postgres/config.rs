//! The settings of a [`PostgresStore`](super::PostgresStore): defaults, the options
//! taken out of a URL, and the checks that turn every out-of-range value into a
//! [`StoreError::Config`] at connect time.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::with_causes;
use super::tls::{PostgresTls, RootCerts, SslMode};
use crate::StoreError;
use crate::store::redact_url;

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
    /// `connect_timeout` in the URL (whole seconds), or one set on a
    /// [`tokio_postgres::Config`], wins over this.
    pub connect_timeout: Duration,
    /// The server's `statement_timeout` for the store's connections: a safety net
    /// that ends a statement still running after this long (default `None`: twice
    /// [`op_timeout`](Self::op_timeout); 1 ms to 1 h). A statement that outlives
    /// `op_timeout` is cancelled at once anyway (a cancel request), so this only acts
    /// when the cancel request itself is lost.
    pub statement_timeout: Option<Duration>,
    /// The wait after the first failed connection attempt (default 100 ms; 1 ms to
    /// 1 h). While attempts keep failing, the wait doubles up to
    /// [`reconnect_delay_max`](Self::reconnect_delay_max), each wait shortened by a
    /// random part of up to half; until it is over, an operation that finds no live
    /// connection fails at once (retryable) instead of connecting again.
    pub reconnect_delay: Duration,
    /// The longest wait between failed connection attempts (default 5 s; 1 ms to 1 h;
    /// not below [`reconnect_delay`](Self::reconnect_delay)).
    pub reconnect_delay_max: Duration,
    /// TLS: mode, trusted roots, client certificate (`sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey` in a URL; those win over this).
    pub tls: PostgresTls,
    /// Whether compare-and-set writes that wait at the same moment (more than
    /// [`pool_size`](Self::pool_size) in flight) share one statement, and so one
    /// commit (default `true`). Each stays its own compare-and-set; off, every write
    /// is a statement of its own (for comparing the two).
    pub batch_writes: bool,
    /// With [`batch_writes`](Self::batch_writes), how many shared statements may be in
    /// flight at once (default 2; 1 to 1024, at most [`pool_size`](Self::pool_size)
    /// take effect). Few make each one carry many writes, so there are fewer commits:
    /// on the 2-core test machine, 64 tasks updating through the near cache ran more
    /// than 2x the raw two-step baseline with 2 to 4, and 1.0x to 1.6x when every one
    /// of the pool's 16 statements could carry a batch (`bench --bin cache`). Writes
    /// below `pool_size` at once never wait for a batch. A server with many cores and
    /// fast WAL storage may want more.
    pub batch_in_flight: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: "public".into(),
            table: "bot_sessions".into(),
            pool_size: 16,
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: None,
            reconnect_delay: Duration::from_millis(100),
            reconnect_delay_max: Duration::from_secs(5),
            tls: PostgresTls::default(),
            batch_writes: true,
            batch_in_flight: 2,
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

    /// Sets [`PostgresConfig::batch_writes`].
    pub fn batch_writes(mut self, on: bool) -> Self {
        self.batch_writes = on;
        self
    }

    /// Sets [`PostgresConfig::batch_in_flight`].
    pub fn batch_in_flight(mut self, n: usize) -> Self {
        self.batch_in_flight = n;
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

    /// Sets [`PostgresConfig::statement_timeout`].
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.statement_timeout = Some(d);
        self
    }

    /// Sets [`PostgresConfig::reconnect_delay`] and
    /// [`PostgresConfig::reconnect_delay_max`].
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Self {
        self.reconnect_delay = first;
        self.reconnect_delay_max = max;
        self
    }

    /// Sets the TLS mode ([`PostgresTls::mode`]).
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.tls.mode = Some(mode);
        self
    }

    /// Trusts the CA certificates in a PEM file ([`PostgresTls::root_certs`]).
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_certs = Some(RootCerts::File(path.into()));
        self
    }

    /// Presents a client certificate ([`PostgresTls::client_cert`] and
    /// [`PostgresTls::client_key`]), PEM files.
    pub fn ssl_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(cert.into());
        self.tls.client_key = Some(key.into());
        self
    }

    /// Checks every value; the first one out of range is the error.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        validate_identifier("schema", &self.schema, 63)?;
        // Room for the index name suffixes within PostgreSQL's 63-byte identifiers.
        validate_identifier("table", &self.table, 40)?;
        check_count("pool_size", self.pool_size)?;
        check_count("batch_in_flight", self.batch_in_flight)?;
        check_timeout("op_timeout", self.op_timeout)?;
        check_timeout("connect_timeout", self.connect_timeout)?;
        if let Some(d) = self.statement_timeout {
            check_timeout("statement_timeout", d)?;
        }
        check_timeout("reconnect_delay", self.reconnect_delay)?;
        check_timeout("reconnect_delay_max", self.reconnect_delay_max)?;
        if self.reconnect_delay_max < self.reconnect_delay {
            return Err(StoreError::Config(format!(
                "postgres reconnect_delay_max {:?} is below reconnect_delay {:?}",
                self.reconnect_delay_max, self.reconnect_delay
            )));
        }
        Ok(())
    }

    /// The server-side `statement_timeout`, in milliseconds: as set, or twice the
    /// operation timeout (within range after [`PostgresConfig::check`]).
    pub(super) fn statement_timeout_ms(&self) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        match self.statement_timeout {
            Some(d) => ms(d),
            None => ms(self.op_timeout).saturating_mul(2),
        }
    }
}

/// Refuses a connection or statement count outside [`POOL_SIZES`], naming the setting.
fn check_count(what: &str, n: usize) -> Result<(), StoreError> {
    if POOL_SIZES.contains(&n) {
        return Ok(());
    }
    let (lo, hi) = (POOL_SIZES.start(), POOL_SIZES.end());
    Err(StoreError::Config(format!("postgres {what} {n} is out of range ({lo} to {hi})")))
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

/// Splits this store's options off a URL's query into `config`: `schema`, `table`,
/// `pool_size`, and the TLS options the driver does not know (`sslmode` with libpq's
/// five values, `sslrootcert`, `sslcert`, `sslkey`). The rest stays for the driver
/// (`application_name`, `connect_timeout`, ...).
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
            Some(("sslmode", v)) => config.tls.mode = Some(percent_decoded("sslmode", v)?.parse()?),
            Some(("sslrootcert", v)) => {
                let v = percent_decoded("sslrootcert", v)?;
                config.tls.root_certs =
                    Some(if v == "system" { RootCerts::System } else { RootCerts::File(non_empty("sslrootcert", v)?) });
            }
            Some(("sslcert", v)) => {
                config.tls.client_cert = Some(non_empty("sslcert", percent_decoded("sslcert", v)?)?)
            }
            Some(("sslkey", v)) => config.tls.client_key = Some(non_empty("sslkey", percent_decoded("sslkey", v)?)?),
            _ => rest.push(pair),
        }
    }
    Ok(if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) })
}

fn non_empty(option: &str, v: String) -> Result<PathBuf, StoreError> {
    if v.is_empty() {
        return Err(StoreError::Config(format!("postgres {option} is empty: give a file path")));
    }
    Ok(PathBuf::from(v))
}

/// A URL query value with its `%XX` escapes decoded (as the driver decodes its own).
fn percent_decoded(option: &str, v: &str) -> Result<String, StoreError> {
    let bad = || StoreError::Config(format!("postgres {option} `{v}` has a malformed %-escape or is not UTF-8"));
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The driver's settings for `url` (already split).
pub(super) fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    tokio_postgres::Config::from_str(url).map_err(|e| {
        let shown = redact_url(url);
        // The driver's message quotes the part of the URL it could not read, which may
        // be a piece of a password holding a delimiter (`p@ss?w#rd`): a URL with a
        // secret gets no quote.
        let why = if shown == url {
            with_causes(&e)
        } else {
            "the driver cannot read it (its message would quote the password; percent-encode delimiters in a password)"
                .to_owned()
        };
        StoreError::Config(format!("postgres URL `{shown}` is not valid: {why}"))
    })
}

/// Applies `config` to the driver's settings: its connect timeout (unless the
/// driver's own is set, which then wins and is checked), keepalives, an
/// `application_name` if none is set.
pub(super) fn apply(pg: &mut tokio_postgres::Config, config: &mut PostgresConfig) -> Result<(), StoreError> {
    match pg.get_connect_timeout() {
        Some(from_driver) => {
            check_timeout("connect_timeout", *from_driver)?;
            config.connect_timeout = *from_driver;
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
    Ok(())
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
        let url = split_url("postgres://u@h:1/db?schema=s1&keepalives=0&table=t1&pool_size=4", &mut c).unwrap();
        assert_eq!(url, "postgres://u@h:1/db?keepalives=0");
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
            ok.clone().statement_timeout(Duration::ZERO),
            ok.clone().statement_timeout(Duration::from_secs(3601)),
            ok.clone().reconnect_delay(Duration::ZERO, Duration::from_secs(1)),
            ok.clone().reconnect_delay(Duration::from_secs(2), Duration::from_secs(1)),
            ok.clone().reconnect_delay(Duration::from_secs(1), Duration::MAX),
        ];
        for c in bad {
            assert!(matches!(c.check(), Err(StoreError::Config(_))), "{c:?}");
        }
        assert_eq!(ok.clone().op_timeout(Duration::from_secs(3600)).statement_timeout_ms(), 7_200_000);
        assert_eq!(ok.clone().op_timeout(Duration::from_micros(1500)).statement_timeout_ms(), 2);
        assert_eq!(ok.statement_timeout(Duration::from_secs(3600)).statement_timeout_ms(), 3_600_000);
    }

    fn driver_config(url: &str, c: &mut PostgresConfig) -> Result<tokio_postgres::Config, StoreError> {
        let mut pg = parse_url(url)?;
        apply(&mut pg, c)?;
        Ok(pg)
    }

    #[test]
    fn tls_options_are_split_off_the_url() {
        let mut c = PostgresConfig::default();
        let url = split_url(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/a%20b/ca.pem&application_name=x&sslcert=c.pem&sslkey=k.pem",
            &mut c,
        )
        .unwrap();
        assert_eq!(url, "postgres://h/db?application_name=x");
        assert_eq!(c.tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(c.tls.root_certs, Some(RootCerts::File("/a b/ca.pem".into())));
        assert_eq!((c.tls.client_cert.unwrap(), c.tls.client_key.unwrap()), ("c.pem".into(), "k.pem".into()));
        let mut c = PostgresConfig::default();
        split_url("postgres://h/db?sslrootcert=system", &mut c).unwrap();
        assert_eq!(c.tls.root_certs, Some(RootCerts::System));
        for bad in ["sslmode=allow", "sslmode=verify_full", "sslrootcert=", "sslcert=%zz", "sslkey=%C3"] {
            let r = split_url(&format!("postgres://h/db?{bad}"), &mut PostgresConfig::default());
            assert!(matches!(r, Err(StoreError::Config(_))), "{bad}: {r:?}");
        }
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
    fn a_url_that_does_not_parse_is_not_echoed_with_its_password() {
        let err = parse_url("postgres://bot:s3cret@h:notaport/db").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err}");
    }
}

//! How the redis client's errors become [`StoreError`]s.

use std::time::Duration;

use redis::RedisError;

use super::BACKEND;
use crate::StoreError;

/// An error of a command that does not change anything (or may safely run again).
pub(super) fn backend_err(key: Option<&str>, e: RedisError) -> StoreError {
    if let Some(reason) = tls_refusal(&e) {
        return StoreError::backend(BACKEND, key, false, reason);
    }
    let retryable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            redis::RetryMethod::Reconnect
                | redis::RetryMethod::RetryImmediately
                | redis::RetryMethod::WaitAndRetry
                | redis::RetryMethod::ReconnectFromInitialConnections
                // A cluster mid-failover or mid-resharding (MOVED, ASK, a write to a
                // demoted master) after the client's own redirections ran out: the
                // command did not run, and the slot map settles.
                | redis::RetryMethod::MovedRedirect
                | redis::RetryMethod::AskRedirect
                | redis::RetryMethod::RefreshSlotsAndRetry
        );
    StoreError::backend(BACKEND, key, retryable, e)
}

/// An error of a write or delete of `key`: when the command may have reached the server
/// and no reply says what became of it (a timeout, a connection lost or a reply garbled
/// while waiting), the outcome is unknown. A refused connection sent nothing, and a
/// server's error reply is an outcome.
///
/// `resent`: the client may have sent the command more than once before it gave up
/// (Redis Cluster's client retries through a failover: reconnects, MOVED, CLUSTERDOWN).
/// Then the error says only what became of the last try, and an earlier one may have
/// landed: every error but a refused TLS handshake is an unknown outcome.
pub(super) fn sent_err(key: &str, e: RedisError, resent: bool) -> StoreError {
    let unknown = tls_refusal(&e).is_none()
        && (resent
            || (!e.is_connection_refusal()
                && (e.is_io_error() || e.is_timeout() || e.kind() == redis::ErrorKind::Parse)));
    if unknown { StoreError::ambiguous(BACKEND, key, e) } else { backend_err(Some(key), e) }
}

pub(super) fn timeout_err(key: Option<&str>, after: Duration) -> StoreError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from redis within {after:?}"));
    StoreError::backend(BACKEND, key, true, e)
}

pub(super) fn config_err(msg: String) -> StoreError {
    StoreError::Config(msg)
}

/// Whether Redis refused a command because the key holds another type than it needs.
pub(super) fn is_wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

/// When the TLS handshake failed because a certificate was refused (an unknown CA, a
/// name the certificate does not cover, an expired certificate): a clear reason. Such a
/// failure does not pass by retrying, so it is never retryable.
pub(super) fn tls_refusal(e: &RedisError) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(describe_tls(tls));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(describe_tls(tls));
        }
        source = err.source();
    }
    // The connection manager shares one connection attempt among its callers, which
    // clones the error and keeps only its text: recognise rustls' wording then.
    let text = e.to_string();
    let reason = if text.contains("invalid peer certificate: UnknownIssuer") {
        "the server's certificate is not signed by a trusted CA (give the CA file with ?sslrootcert=PATH)"
    } else if text.contains("invalid peer certificate: certificate not valid for name") {
        "the server's certificate does not cover the host name in the URL"
    } else if text.contains("invalid peer certificate: certificate expired") {
        "the server's certificate expired"
    } else if text.contains("invalid peer certificate") {
        "the server's certificate was refused"
    } else if text.contains("received fatal alert") {
        "the server refused the TLS handshake (does it want a client certificate? ?sslcert=&sslkey=)"
    } else {
        return None;
    };
    Some(format!("TLS to redis refused: {reason}: {text}"))
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let what = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA (give the CA file with ?sslrootcert=PATH)"
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate does not cover the host name in the URL"
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "the server's certificate expired",
        rustls::Error::InvalidCertificate(_) => "the server's certificate was refused",
        rustls::Error::AlertReceived(_) => {
            "the server refused the TLS handshake (does it want a client certificate? ?sslcert=&sslkey=)"
        }
        _ => "the TLS handshake failed",
    };
    format!("TLS to redis refused: {what}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_replies_of_writes_are_ambiguous_and_refusals_are_not() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "test"));
        for kind in
            [std::io::ErrorKind::TimedOut, std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::UnexpectedEof]
        {
            let e = sent_err("k", io(kind), false);
            assert!(e.is_ambiguous() && !e.is_retryable(), "{kind:?}: {e:?}");
            assert!(backend_err(Some("k"), io(kind)).is_retryable(), "{kind:?}: a read just fails");
        }
        let refused = sent_err("k", io(std::io::ErrorKind::ConnectionRefused), false);
        assert!(refused.is_retryable() && !refused.is_ambiguous(), "{refused:?}");
        let moved = sent_err(
            "k",
            RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::Moved), "MOVED", "1 h:1".into())),
            false,
        );
        assert!(moved.is_retryable() && !moved.is_ambiguous(), "a redirection ran nothing: {moved:?}");
        let script_error = sent_err("k", RedisError::from((redis::ErrorKind::Client, "bad arguments")), false);
        assert!(!script_error.is_ambiguous(), "{script_error:?}");
    }

    #[test]
    fn on_a_cluster_every_failed_write_may_have_landed() {
        // The cluster client retried: a refusal or a redirection says only what became of
        // its last try.
        for e in [
            RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "test")),
            RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::Moved), "MOVED", "1 h:1".into())),
            RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown), "CLUSTERDOWN")),
        ] {
            let err = sent_err("k", e, true);
            assert!(err.is_ambiguous() && !err.is_retryable(), "{err:?}");
        }
    }
}

//! Test support for Discord bots (features `testing` and `discord`): a test key pair
//! that signs requests as Discord does, and a fake Discord REST API on 127.0.0.1 that
//! records every request.
//!
//! ```no_run
//! use bot_sessions::testing::discord::{FakeRest, TestKey};
//!
//! # async fn run() {
//! let key = TestKey::rfc8032();
//! let (signature, timestamp) = key.sign(br#"{"type":1}"#);
//! // POST the body with `X-Signature-Ed25519: signature` and `X-Signature-Timestamp: timestamp`
//! // to an endpoint configured with `key.public_hex()`.
//! let mut rest = FakeRest::start().await; // Rest::builder().base_url(&rest.base)
//! let call = rest.next().await; // the next request the bot sent
//! assert_eq!(call.method, "PATCH");
//! # let _ = (signature, timestamp); }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::discord::PublicKey;

/// RFC 8032 §7.1 test 1: the secret key of the signature vectors in the fixtures.
pub const RFC8032_SECRET_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// Its public key.
pub const RFC8032_PUBLIC_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key pair that signs interaction requests as Discord signs them.
#[derive(Clone)]
pub struct TestKey {
    key: SigningKey,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("public", &self.public_hex()).finish()
    }
}

impl TestKey {
    /// The key of RFC 8032 §7.1 test 1 (public key [`RFC8032_PUBLIC_HEX`]).
    pub fn rfc8032() -> Self {
        let mut secret = [0u8; 32];
        for (i, byte) in secret.iter_mut().enumerate() {
            // Two hex digits of a constant: always valid.
            *byte = u8::from_str_radix(&RFC8032_SECRET_HEX[2 * i..2 * i + 2], 16).unwrap_or_default();
        }
        TestKey::from_secret(secret)
    }

    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        TestKey { key: SigningKey::from_bytes(&secret) }
    }

    /// The public key in hex, as the developer portal shows it.
    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// The public key, for an endpoint in process.
    ///
    /// # Panics
    ///
    /// Never for a key made here (it is a valid Ed25519 point).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(self.key.verifying_key().as_bytes()).unwrap_or_else(|e| panic!("test key: {e}"))
    }

    /// Signs `body` with the timestamp `timestamp`: the hex signature for
    /// `X-Signature-Ed25519`.
    pub fn sign_at(&self, timestamp: &str, body: &[u8]) -> String {
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        hex(&self.key.sign(&message).to_bytes())
    }

    /// Signs `body` with the current Unix time: (signature, timestamp), the values of
    /// `X-Signature-Ed25519` and `X-Signature-Timestamp`.
    pub fn sign(&self, body: &[u8]) -> (String, String) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let timestamp = now.as_secs().to_string();
        (self.sign_at(&timestamp, body), timestamp)
    }
}

/// One request the [`FakeRest`] server got.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Call {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, with the base URL's path (`/api/v10/webhooks/...`).
    pub path: String,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The JSON body (`null` when none or not JSON).
    pub body: Value,
}

type Script = Arc<Mutex<VecDeque<(u16, Value)>>>;

/// A fake Discord REST API on 127.0.0.1: records every request in order and answers
/// from a script of (status, body), then `200 {}`. It stops when dropped.
#[derive(Debug)]
pub struct FakeRest {
    /// The base URL to configure the bot with (`http://127.0.0.1:PORT/api/v10`).
    pub base: String,
    calls: mpsc::UnboundedReceiver<Call>,
    script: Script,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRest {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeRest {
    /// Starts the server on a free port.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound (tests only).
    pub async fn start() -> Self {
        let (tx, calls) = mpsc::unbounded_channel();
        let script: Script = Arc::default();
        let answers = script.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (tx, answers) = (tx.clone(), answers.clone());
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
                let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let _ = tx.send(Call {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    authorization,
                    body,
                });
                let next = answers.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                let (status, answer) = next.unwrap_or((200, json!({})));
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, [("content-type", "application/json")], answer.to_string())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the fake Discord REST server: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("fake Discord REST server address: {e}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRest { base: format!("http://{addr}/api/v10"), calls, script, server }
    }

    /// Queues an answer for the next request that finds the script empty.
    pub fn answer(&self, status: u16, body: Value) {
        self.script.lock().unwrap_or_else(PoisonError::into_inner).push_back((status, body));
    }

    /// The next request (waits up to 10 s).
    ///
    /// # Panics
    ///
    /// When none comes within 10 s.
    pub async fn next(&mut self) -> Call {
        match tokio::time::timeout(Duration::from_secs(10), self.calls.recv()).await {
            Ok(Some(call)) => call,
            Ok(None) | Err(_) => panic!("the fake Discord REST server got no request within 10 s"),
        }
    }

    /// The requests received so far and not yet taken by [`next`](Self::next).
    pub fn received(&mut self) -> Vec<Call> {
        let mut out = Vec::new();
        while let Ok(call) = self.calls.try_recv() {
            out.push(call);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc8032_key_signs_what_the_endpoint_verifies() {
        let key = TestKey::rfc8032();
        assert_eq!(key.public_hex(), RFC8032_PUBLIC_HEX);
        let (signature, timestamp) = key.sign(b"{\"type\":1}");
        let public = PublicKey::from_hex(RFC8032_PUBLIC_HEX).unwrap();
        assert!(public.verify(Some(&signature), Some(&timestamp), b"{\"type\":1}").is_ok());
        assert!(public.verify(Some(&signature), Some(&timestamp), b"{\"type\":2}").is_err());
    }
}

//! Request signatures: the fixture vectors (RFC 8032 test 1 key) through
//! `PublicKey::verify` and through the endpoint, and every kind of bad signature
//! answered 401 with nothing routed.
#![cfg(feature = "discord")]

mod discord_common;

use axum::http::StatusCode;
use bot_sessions::discord::{PublicKey, SignatureError};
use discord_common::*;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_slice(&fixture("ed25519_interaction_signature_vectors__GENERATED_from_rfc8032_key.json")).unwrap()
}

#[test]
fn the_rfc_8032_vectors_verify() {
    for v in vectors()["rfc8032_raw_vectors"].as_array().unwrap() {
        let key = PublicKey::from_hex(v["public_key"].as_str().unwrap()).unwrap();
        let message = unhex(v["message_hex"].as_str().unwrap());
        // The message is the "timestamp" and the body is empty: the same bytes.
        let message = String::from_utf8(message).unwrap();
        assert_eq!(key.verify(v["signature"].as_str(), Some(&message), b""), Ok(()), "{}", v["test"]);
    }
    let derived = signing_key().verifying_key();
    assert_eq!(hex(derived.as_bytes()), PUBLIC_HEX, "the test key pair is RFC 8032 test 1");
}

#[test]
fn every_case_verifies_as_expected() {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let key = PublicKey::from_hex(case["public_key_hex"].as_str().unwrap()).unwrap();
        let headers = &case["headers"];
        let result = key.verify(
            headers["X-Signature-Ed25519"].as_str(),
            headers["X-Signature-Timestamp"].as_str(),
            case["body"].as_str().unwrap().as_bytes(),
        );
        let expected = if case["expected_valid"].as_bool().unwrap() { Ok(()) } else { Err(SignatureError::Invalid) };
        assert_eq!(result, expected, "{}", case["name"]);
    }
}

/// Each vector as a real request: valid ones are answered (PING: PONG; the button
/// click and the modal submit reach the handler), invalid ones get 401.
#[tokio::test]
async fn the_vectors_through_the_endpoint() {
    // The vectors are signed at 1700000000: the endpoint's clock stands there, so their
    // timestamps are inside the replay window.
    let mut options = BotOptions::new(no_rest());
    options.endpoint_clock = Some(bot_sessions::ManualClock::new(1_700_000_000_000));
    let bot = TestBot::new(options);
    let mut valid = 0;
    for case in vectors()["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let headers = &case["headers"];
        let req = request(
            "/interactions",
            case["body"].as_str().unwrap().as_bytes(),
            headers["X-Signature-Ed25519"].as_str(),
            headers["X-Signature-Timestamp"].as_str(),
        );
        let (status, body) = send(&bot.router, req).await;
        if case["expected_valid"].as_bool().unwrap() {
            valid += 1;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            let expected_type = if name.starts_with("ping") { 1 } else { 4 };
            assert_eq!(body["type"], expected_type, "{name}: {body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        }
    }
    assert_eq!(valid, 3);
    assert_eq!(bot.handler_calls(), 2, "the button click and the modal submit");
    let stats = bot.endpoint.stats();
    assert_eq!((stats.unauthorized, stats.pings, stats.handled, stats.routed), (6, 1, 2, 0));
}

/// Missing, malformed (bad hex, wrong length), wrong and tampered signatures, on a
/// component click of a live session: 401, and neither the session nor the handler
/// sees anything.
#[tokio::test]
async fn bad_signatures_get_401_and_nothing_is_routed() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let opened = interact(&bot.router, &command("menu", OWNER, "tok-open")).await;
    let plus = custom_ids(&opened)[1].clone();
    assert_eq!(bot.handler_calls(), 1);

    let body = serde_json::to_vec(&click(&plus, OWNER, 900, "tok-click")).unwrap();
    let good = signed(&body);
    let signature = good.headers()["x-signature-ed25519"].to_str().unwrap().to_owned();
    let timestamp = "1700000000";
    let mut flipped = unhex(&signature);
    flipped[0] ^= 1;
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(&body);
    let by_other_key = hex(&ed25519_dalek::Signer::sign(&other_key, &message).to_bytes());
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'9').unwrap();
    tampered[at] = b'8';

    let bad: Vec<(&str, axum::http::Request<axum::body::Body>)> = vec![
        ("no signature", request("/interactions", &body, None, Some(timestamp))),
        ("no timestamp", request("/interactions", &body, Some(&signature), None)),
        ("neither header", request("/interactions", &body, None, None)),
        ("not hex", request("/interactions", &body, Some(&"zz".repeat(64)), Some(timestamp))),
        ("too short", request("/interactions", &body, Some(&signature[..126]), Some(timestamp))),
        ("too long", request("/interactions", &body, Some(&format!("{signature}00")), Some(timestamp))),
        ("empty", request("/interactions", &body, Some(""), Some(timestamp))),
        ("bit flipped", request("/interactions", &body, Some(&hex(&flipped)), Some(timestamp))),
        ("other key", request("/interactions", &body, Some(&by_other_key), Some(timestamp))),
        ("other timestamp", request("/interactions", &body, Some(&signature), Some("1700000001"))),
        ("tampered body", request("/interactions", &tampered, Some(&signature), Some(timestamp))),
        ("all zero", request("/interactions", &body, Some(&"0".repeat(128)), Some(timestamp))),
    ];
    let n = bad.len() as u64;
    for (what, req) in bad {
        let (status, text) = send(&bot.router, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(text, "invalid request signature", "{what}");
    }
    let stats = bot.endpoint.stats();
    assert_eq!((stats.unauthorized, stats.routed, stats.handled), (n, 0, 1));
    assert_eq!(bot.handler_calls(), 1);

    // The session saw none of them: the first real click makes the value 1.
    let response = interact(&bot.router, &click(&plus, OWNER, 900, "tok-click")).await;
    assert_eq!(response["data"]["content"], "value: 1");
}

#[tokio::test]
async fn oversized_bodies_get_413_before_anything_else() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    let big = vec![b' '; (1 << 20) + 1];
    let (status, _) = send(&bot.router, signed(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Only POST at the path.
    let get = axum::http::Request::get("/interactions").body(axum::body::Body::empty()).unwrap();
    assert_eq!(send(&bot.router, get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(send(&bot.router, request("/other", b"{}", None, None)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bot.handler_calls(), 0);
}

#[tokio::test]
async fn signed_junk_is_a_bad_request() {
    let bot = TestBot::new(BotOptions::new(no_rest()));
    for body in
        [&b"not json"[..], b"[]", b"{}", br#"{"type":2}"#, br#"{"type":99,"id":"1","application_id":"2","token":"t"}"#]
    {
        assert_eq!(send(&bot.router, signed(body)).await.0, StatusCode::BAD_REQUEST);
    }
    assert_eq!(bot.handler_calls(), 0);
}

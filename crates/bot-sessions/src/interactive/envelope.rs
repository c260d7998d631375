//! The stored form of one interactive session.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{EndReason, Origin};
use crate::{Timestamp, Ttl};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Takes clicks.
    Live,
    /// A manager claimed its end and is running `end` (until `lease`).
    Ending,
    /// Over; kept for the linger period with its reason and result.
    Ended,
}

/// One session as stored (JSON). Generic so that writes serialize borrowed parts
/// (`Envelope<&str, &S, &R>`) and reads own them (`Envelope<String, S, R>`).
///
/// `state` and `result` tell "no field" (`None`) from a field whose value is JSON `null`
/// (`Some(())`, or `Some(None)` for an `Option` state): a state of `()` is stored as
/// `"state":null` and must read back as present.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "N: Deserialize<'de>, S: Deserialize<'de>, R: Deserialize<'de>"))]
pub(crate) struct Envelope<N, S, R> {
    /// The registered name of the session's kind.
    pub kind: N,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
    /// Present while live; dropped once the session ends.
    #[serde(default = "none", skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub state: Option<S>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub result: Option<R>,
    /// The session's own expiry (the record outlives it by the grace period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// Until when an `ending` claim holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Timestamp>,
    pub origin: Origin,
    /// The manager instance whose process holds the starter's handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiter: Option<u64>,
    /// This session's own time to live, when `start` set one instead of the kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<TtlOverride>,
    /// While the session asks for its opener's next message: the awaiting record it
    /// wrote (see `text.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextWait>,
}

/// The awaiting record a session that asks for text wrote: its version (deleted only
/// if still this one) and its expiry (rewritten when the session outlives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TextWait {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// A per-session time to live, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TtlOverride {
    Never,
    IdleMs(u64),
    AbsoluteMs(u64),
}

impl TtlOverride {
    pub(crate) fn of(ttl: Ttl) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match ttl {
            Ttl::Idle { idle, .. } => TtlOverride::IdleMs(ms(idle)),
            Ttl::Absolute(d) => TtlOverride::AbsoluteMs(ms(d)),
            _ => TtlOverride::Never,
        }
    }

    pub(crate) fn ttl(self) -> Ttl {
        use std::time::Duration;
        match self {
            TtlOverride::Never => Ttl::None,
            TtlOverride::IdleMs(ms) => Ttl::idle(Duration::from_millis(ms)),
            TtlOverride::AbsoluteMs(ms) => Ttl::absolute(Duration::from_millis(ms)),
        }
    }
}

impl<'a, S, R> Envelope<&'a str, &'a S, &'a R> {
    /// A live session holding `state`, no result yet.
    pub(crate) fn live(
        kind: &'a str,
        state: &'a S,
        deadline: Option<Timestamp>,
        origin: Origin,
        waiter: Option<u64>,
        ttl: Option<TtlOverride>,
    ) -> Self {
        Envelope {
            kind,
            phase: Phase::Live,
            reason: None,
            state: Some(state),
            result: None,
            deadline,
            lease: None,
            origin,
            waiter,
            ttl,
            text: None,
        }
    }

    /// The same session, asking for text with the awaiting record `text`.
    pub(crate) fn asking(mut self, text: Option<TextWait>) -> Self {
        self.text = text;
        self
    }
}

impl<'a, S, R> Envelope<&'a str, &'a S, &'a R> {
    /// A session whose end is claimed until `lease` (`end` is running somewhere).
    pub(crate) fn ending(
        kind: &'a str,
        reason: EndReason,
        result: Option<&'a R>,
        lease: Timestamp,
        origin: Origin,
        waiter: Option<u64>,
    ) -> Self {
        Self::over(kind, Phase::Ending, reason, result, Some(lease), origin, waiter)
    }

    /// A session that is over, kept for late clicks and handles in other processes.
    pub(crate) fn ended(
        kind: &'a str,
        reason: EndReason,
        result: Option<&'a R>,
        origin: Origin,
        waiter: Option<u64>,
    ) -> Self {
        Self::over(kind, Phase::Ended, reason, result, None, origin, waiter)
    }

    fn over(
        kind: &'a str,
        phase: Phase,
        reason: EndReason,
        result: Option<&'a R>,
        lease: Option<Timestamp>,
        origin: Origin,
        waiter: Option<u64>,
    ) -> Self {
        Envelope {
            kind,
            phase,
            reason: Some(reason),
            state: None,
            result,
            deadline: None,
            lease,
            origin,
            waiter,
            ttl: None,
            text: None,
        }
    }
}

impl<N: AsRef<str>, S: Serialize, R: Serialize> Envelope<N, S, R> {
    /// Appends the envelope's JSON to `out`: the same bytes as its `Serialize` (the
    /// derive, which the tests compare it with), without escaping the field names,
    /// which is most of what a click's encode costs besides the state. Returns where
    /// the state and the origin begin, for a [`Frame`](super::frame::Frame).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> serde_json::Result<Parts> {
        // Every field named: a field added to either type breaks the build here.
        let Envelope { kind, phase, reason, state, result, deadline, lease, origin, waiter, ttl, text } = self;
        let Origin { bot, chat, topic, user, message, inline_message, business_connection, at } = origin;
        out.extend_from_slice(b"{\"kind\":");
        serde_json::to_writer(&mut *out, kind.as_ref())?;
        out.extend_from_slice(match phase {
            Phase::Live => b",\"phase\":\"live\"".as_slice(),
            Phase::Ending => b",\"phase\":\"ending\"",
            Phase::Ended => b",\"phase\":\"ended\"",
        });
        if let Some(reason) = reason {
            out.extend_from_slice(b",\"reason\":\"");
            out.extend_from_slice(reason.name().as_bytes());
            out.push(b'"');
        }
        let state_at = out.len();
        if let Some(state) = state {
            out.extend_from_slice(b",\"state\":");
            serde_json::to_writer(&mut *out, state)?;
        }
        if let Some(result) = result {
            out.extend_from_slice(b",\"result\":");
            serde_json::to_writer(&mut *out, result)?;
        }
        number(out, ",\"deadline\":", deadline.map(|t| t.0));
        number(out, ",\"lease\":", lease.map(|t| t.0));
        let origin_at = out.len();
        out.extend_from_slice(b",\"origin\":{");
        // `at` is always there: the optional fields before it each end with a comma.
        for (name, value) in [
            ("\"bot\":", bot),
            ("\"chat\":", chat),
            ("\"topic\":", topic),
            ("\"user\":", user),
            ("\"message\":", message),
        ] {
            if let Some(v) = value {
                number(out, name, Some(*v));
                out.push(b',');
            }
        }
        for (name, value) in
            [("\"inline_message\":", inline_message), ("\"business_connection\":", business_connection)]
        {
            if let Some(v) = value {
                out.extend_from_slice(name.as_bytes());
                serde_json::to_writer(&mut *out, v)?;
                out.push(b',');
            }
        }
        number(out, "\"at\":", Some(at.0));
        out.push(b'}');
        number(out, ",\"waiter\":", *waiter);
        match ttl {
            None => {}
            Some(TtlOverride::Never) => out.extend_from_slice(b",\"ttl\":\"never\""),
            Some(TtlOverride::IdleMs(ms)) => {
                number(out, ",\"ttl\":{\"idle_ms\":", Some(*ms));
                out.push(b'}');
            }
            Some(TtlOverride::AbsoluteMs(ms)) => {
                number(out, ",\"ttl\":{\"absolute_ms\":", Some(*ms));
                out.push(b'}');
            }
        }
        if let Some(TextWait { version, until }) = text {
            number(out, ",\"text\":{\"version\":", Some(*version));
            number(out, ",\"until\":", until.map(|t| t.0));
            out.push(b'}');
        }
        out.push(b'}');
        Ok(Parts { state: state_at, origin: origin_at })
    }
}

/// Where [`Envelope::encode_into`] wrote the parts of an envelope, as offsets into its
/// output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    /// Where the state (and the result, the deadline and the lease after it) begin.
    pub state: usize,
    /// Where the origin (and every field after it) begins.
    pub origin: usize,
}

/// `name` then `value`, when there is one.
pub(super) fn number(out: &mut Vec<u8>, name: &str, value: Option<impl Serialize>) {
    if let Some(v) = value {
        out.extend_from_slice(name.as_bytes());
        // An integer to a Vec: cannot fail (and `serde_json` writes it faster than `fmt`).
        let _ = serde_json::to_writer(&mut *out, &v);
    }
}

fn none<T>() -> Option<T> {
    None
}

/// A field that is there, whatever its value (even `null`): `Some`. An absent field
/// takes the `default` (`None`) instead and never reaches this.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The fields routing and scanning need, read without decoding the state.
#[derive(Debug, Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    pub phase: Phase,
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    #[serde(default)]
    pub lease: Option<Timestamp>,
    #[serde(default)]
    pub waiter: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header() {
        let origin = Origin::of(&crate::Context::new().chat(1).user(2), Timestamp(5));
        let env: Envelope<&str, &u32, &String> = Envelope {
            kind: "k",
            phase: Phase::Live,
            reason: None,
            state: Some(&7),
            result: None,
            deadline: Some(Timestamp(10)),
            lease: None,
            origin: origin.clone(),
            waiter: Some(3),
            ttl: Some(TtlOverride::IdleMs(500)),
            text: Some(TextWait { version: 9, until: None }),
        };
        let bytes = serde_json::to_vec(&env).unwrap();
        let back: Envelope<String, u32, String> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((back.kind.as_str(), back.state, back.result, back.origin), ("k", Some(7), None, origin));
        assert_eq!(back.text, Some(TextWait { version: 9, until: None }));
        assert_eq!(back.ttl.map(TtlOverride::ttl), Some(Ttl::idle(std::time::Duration::from_millis(500))));
        let h: Header<'_> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((h.phase, h.deadline, h.waiter), (Phase::Live, Some(Timestamp(10)), Some(3)));
    }

    /// `encode_into` writes the very bytes the derive does, for every field present
    /// or not.
    #[test]
    fn encode_into_is_the_derive() {
        let ctx = crate::Context::new().chat(-100).user(2).bot(9).topic(4);
        let mut full = Origin::of(&ctx, Timestamp(-5));
        full.message = Some(77);
        full.inline_message = Some("in\"line\\é\n".into());
        full.business_connection = Some("biz".into());
        let bare = Origin::of(&crate::Context::new(), Timestamp(0));
        let state = vec!["a\"b".to_owned(), "ü".into()];
        let mut all = Vec::new();
        for origin in [full, bare] {
            for ttl in
                [None, Some(TtlOverride::Never), Some(TtlOverride::IdleMs(5)), Some(TtlOverride::AbsoluteMs(u64::MAX))]
            {
                for text in [
                    None,
                    Some(TextWait { version: 3, until: None }),
                    Some(TextWait { version: 4, until: Some(Timestamp(i64::MIN)) }),
                ] {
                    let live = Envelope::<&str, _, &u8>::live(
                        "k.ind-1",
                        &state,
                        Some(Timestamp(i64::MAX)),
                        origin.clone(),
                        Some(u64::MAX),
                        ttl,
                    )
                    .asking(text);
                    all.push(live);
                }
            }
            let mut over = Envelope::<&str, &Vec<String>, &u8>::ending(
                "k",
                EndReason::Cancelled,
                Some(&7),
                Timestamp(3),
                origin.clone(),
                None,
            );
            all.push(Envelope { deadline: None, ..over });
            over = Envelope::<&str, &Vec<String>, &u8>::ended("k", EndReason::Finished, None, origin.clone(), Some(1));
            all.push(over);
        }
        for env in &all {
            let mut mine = Vec::new();
            env.encode_into(&mut mine).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), serde_json::to_string(env).unwrap());
        }
        let owned: Envelope<String, Vec<String>, u8> =
            serde_json::from_slice(&serde_json::to_vec(&all[5]).unwrap()).unwrap();
        let mut mine = Vec::new();
        owned.encode_into(&mut mine).unwrap();
        assert_eq!(mine, serde_json::to_vec(&all[5]).unwrap());
    }

    /// A state (or result) that is JSON `null` is there; only a missing field is not.
    #[test]
    fn null_state_is_present() {
        let origin = Origin::of(&crate::Context::new().chat(1).user(2), Timestamp(5));
        let live = Envelope::<&str, &(), &()>::live("k", &(), None, origin.clone(), None, None);
        let bytes = serde_json::to_vec(&live).unwrap();
        let back: Envelope<String, (), ()> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((back.state, back.result), (Some(()), None));
        let none: Option<u8> = None;
        let live = Envelope::<&str, &Option<u8>, &()>::live("k", &none, None, origin.clone(), None, None);
        let back: Envelope<String, Option<u8>, ()> =
            serde_json::from_slice(&serde_json::to_vec(&live).unwrap()).unwrap();
        assert_eq!(back.state, Some(None));
        let ended = Envelope::<&str, &(), &()>::ended("k", EndReason::Finished, Some(&()), origin, None);
        let back: Envelope<String, (), ()> = serde_json::from_slice(&serde_json::to_vec(&ended).unwrap()).unwrap();
        assert_eq!((back.state, back.result), (None, Some(())));
    }
}

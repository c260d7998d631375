//! A live session's encoded envelope without its state and deadline: what a click
//! that changes neither writes again unchanged.
//!
//! A click rewrites the whole envelope, but most of it (the kind, the origin, the
//! handle's manager, the session's own time to live, the text wait) is what the
//! previous click wrote. In-process stores keep the session's envelope typed beside its
//! bytes (see `Kept` in `core.rs`); they keep its frame there too, and the next click
//! of the session in this process copies the frame's bytes instead of encoding those
//! fields again, when they are still what the frame was made from ([`Framed`]).

use serde::Serialize;

use super::Origin;
use super::envelope::{Envelope, Parts, Phase, TextWait, TtlOverride, number};
use crate::Timestamp;

/// The bytes of a live envelope before its state and from its origin on.
#[derive(Debug)]
pub(crate) struct Frame {
    bytes: Box<[u8]>,
    /// Where the part from the origin on begins in `bytes`.
    split: usize,
}

/// The fields a [`Frame`] holds encoded, besides the kind: compared before and after a
/// click's `update`, they tell whether the session's frame still holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Framed {
    origin: Origin,
    waiter: Option<u64>,
    ttl: Option<TtlOverride>,
    text: Option<TextWait>,
}

impl Framed {
    /// The framed fields of `env`.
    pub(crate) fn of<N, S, R>(env: &Envelope<N, S, R>) -> Self {
        Framed { origin: env.origin.clone(), waiter: env.waiter, ttl: env.ttl, text: env.text }
    }

    /// Whether `env`'s framed fields are these.
    pub(crate) fn still<N, S, R>(&self, env: &Envelope<N, S, R>) -> bool {
        self.origin == env.origin && self.waiter == env.waiter && self.ttl == env.ttl && self.text == env.text
    }
}

impl Frame {
    /// The frame of a live envelope with neither result nor lease, from its bytes
    /// `encoded` as [`Envelope::encode_into`] wrote them and the `parts` it returned;
    /// `None` for any other envelope, whose frame would not be its own.
    pub(crate) fn of<N, S, R>(env: &Envelope<N, S, R>, encoded: &[u8], parts: Parts) -> Option<Self> {
        let live = env.phase == Phase::Live && env.reason.is_none() && env.state.is_some();
        if !live || env.result.is_some() || env.lease.is_some() {
            return None;
        }
        let (head, tail) = (encoded.get(..parts.state)?, encoded.get(parts.origin..)?);
        let mut bytes = Vec::with_capacity(head.len() + tail.len());
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(tail);
        Some(Frame { bytes: bytes.into_boxed_slice(), split: head.len() })
    }

    /// Appends the envelope this frame was made from, with `state` and `deadline`: the
    /// bytes [`Envelope::encode_into`] writes for it.
    pub(crate) fn encode_into<S: Serialize>(
        &self,
        out: &mut Vec<u8>,
        state: &S,
        deadline: Option<Timestamp>,
    ) -> serde_json::Result<()> {
        let (head, tail) = self.bytes.split_at(self.split);
        out.extend_from_slice(head);
        out.extend_from_slice(b",\"state\":");
        serde_json::to_writer(&mut *out, state)?;
        number(out, ",\"deadline\":", deadline.map(|t| t.0));
        out.extend_from_slice(tail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::interactive::EndReason;

    fn origin(message: Option<i64>, inline: Option<String>, at: i64) -> Origin {
        let mut o = Origin::of(&crate::Context::new().chat(-7).user(3).topic(2), Timestamp(at));
        o.message = message;
        o.inline_message = inline;
        o
    }

    fn ttl(pick: u8, ms: u64) -> Option<TtlOverride> {
        match pick % 4 {
            0 => None,
            1 => Some(TtlOverride::Never),
            2 => Some(TtlOverride::IdleMs(ms)),
            _ => Some(TtlOverride::AbsoluteMs(ms)),
        }
    }

    proptest! {
        /// A frame made from one live envelope, given another state and deadline,
        /// writes the very bytes the full encode writes for the envelope with them.
        #[test]
        fn frame_writes_the_full_encode(
            kind in "[a-z\"é\\\\]{0,8}",
            states in (any::<Vec<String>>(), any::<Vec<String>>()),
            deadlines in (any::<Option<i64>>(), any::<Option<i64>>()),
            message in any::<Option<i64>>(),
            inline in any::<Option<String>>(),
            at in any::<i64>(),
            waiter in any::<Option<u64>>(),
            (pick, ms) in (any::<u8>(), any::<u64>()),
            text in any::<Option<(u64, Option<i64>)>>(),
        ) {
            let text = text.map(|(version, until)| TextWait { version, until: until.map(Timestamp) });
            let o = origin(message, inline, at);
            let first = Envelope::<&str, _, &u8>::live(&kind, &states.0, deadlines.0.map(Timestamp), o.clone(), waiter, ttl(pick, ms))
                .asking(text);
            let mut bytes = Vec::new();
            let parts = first.encode_into(&mut bytes).unwrap();
            prop_assert_eq!(&bytes, &serde_json::to_vec(&first).unwrap());
            let frame = Frame::of(&first, &bytes, parts).unwrap();
            let next = Envelope::<&str, _, &u8>::live(&kind, &states.1, deadlines.1.map(Timestamp), o, waiter, ttl(pick, ms))
                .asking(text);
            prop_assert!(Framed::of(&first).still(&next));
            let mut framed = Vec::new();
            frame.encode_into(&mut framed, &states.1, deadlines.1.map(Timestamp)).unwrap();
            prop_assert_eq!(String::from_utf8(framed).unwrap(), serde_json::to_string(&next).unwrap());
        }
    }

    /// Every framed field, changed, is seen as changed.
    #[test]
    fn a_changed_field_is_seen() {
        let base = Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None);
        let was = Framed::of(&base);
        let changes = [
            Envelope {
                origin: origin(Some(9), None, 5),
                ..Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None)
            },
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, Some("i".into()), 5), Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(2), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), Some(TtlOverride::Never)),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None)
                .asking(Some(TextWait { version: 1, until: None })),
        ];
        for changed in &changes {
            assert!(!was.still(changed), "{changed:?}");
        }
        // The state and the deadline are not framed.
        assert!(was.still(&Envelope::<&str, &u8, &u8>::live(
            "k",
            &2,
            Some(Timestamp(3)),
            origin(None, None, 5),
            Some(1),
            None
        )));
    }

    /// An envelope that is not live, or has a result or a lease, has no frame.
    #[test]
    fn only_live_envelopes_have_frames() {
        let o = origin(None, None, 1);
        let ended = Envelope::<&str, &u8, &u8>::ended("k", EndReason::Finished, Some(&1), o.clone(), None);
        let ending = Envelope::<&str, &u8, &u8>::ending("k", EndReason::Cancelled, None, Timestamp(2), o.clone(), None);
        let leased =
            Envelope { lease: Some(Timestamp(1)), ..Envelope::<&str, &u8, &u8>::live("k", &1, None, o, None, None) };
        for env in [ended, ending, leased] {
            let mut bytes = Vec::new();
            let parts = env.encode_into(&mut bytes).unwrap();
            assert!(Frame::of(&env, &bytes, parts).is_none(), "{env:?}");
        }
    }
}

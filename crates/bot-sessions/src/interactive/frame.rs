//! A live session's encoded envelope without its state and deadline: what a click
//! that changes neither writes again unchanged.
//!
//! A click rewrites the whole envelope, but most of it (the kind, the origin, the
//! handle's manager, the session's own time to live, the text wait) is what the
//! previous click wrote. In-process stores keep the session's envelope typed beside its
//! bytes (see `Kept` in `core.rs`); they keep its frame there too, and the next click
//! of the session in this process copies the frame's bytes instead of encoding those
//! fields again, when [`Frame::fits`] the envelope it is about to write: the frame
//! keeps the fields it was made from, so whatever happened in between (an update, a
//! retry on a reloaded envelope) it is only used for an envelope it describes.

use serde::Serialize;

use super::Origin;
use super::envelope::{Envelope, Parts, Phase, TextWait, TtlOverride, number};
use crate::Timestamp;

/// The bytes of a live envelope before its state and from its origin on, with the
/// fields they encode.
#[derive(Debug)]
pub(crate) struct Frame {
    bytes: Box<[u8]>,
    /// Where the part from the origin on begins in `bytes`.
    split: usize,
    /// What `bytes` encode besides the kind.
    of: Framed,
}

/// The fields a [`Frame`] holds encoded, besides the kind (which only an envelope of
/// the same kind is ever written with: the engine checks it when it decodes or takes
/// one back) and the fields only a live envelope without result or lease has.
#[derive(Debug)]
struct Framed {
    origin: Origin,
    waiter: Option<u64>,
    ttl: Option<TtlOverride>,
    text: Option<TextWait>,
}

impl Framed {
    fn of<N, S, R>(env: &Envelope<N, S, R>) -> Self {
        Framed { origin: env.origin.clone(), waiter: env.waiter, ttl: env.ttl, text: env.text }
    }

    fn still<N, S, R>(&self, env: &Envelope<N, S, R>) -> bool {
        self.origin == env.origin && self.waiter == env.waiter && self.ttl == env.ttl && self.text == env.text
    }
}

/// Whether `env` is live with a state and neither result nor lease: the only
/// envelopes a frame is made from or written for.
fn framable<N, S, R>(env: &Envelope<N, S, R>) -> bool {
    env.phase == Phase::Live
        && env.reason.is_none()
        && env.state.is_some()
        && env.result.is_none()
        && env.lease.is_none()
}

impl Frame {
    /// The frame of a live envelope with neither result nor lease, from its bytes
    /// `encoded` as [`Envelope::encode_into`] wrote them and the `parts` it returned;
    /// `None` for any other envelope, whose frame would not be its own.
    pub(crate) fn of<N, S, R>(env: &Envelope<N, S, R>, encoded: &[u8], parts: Parts) -> Option<Self> {
        if !framable(env) {
            return None;
        }
        let (head, tail) = (encoded.get(..parts.state)?, encoded.get(parts.origin..)?);
        let mut bytes = Vec::with_capacity(head.len() + tail.len());
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(tail);
        Some(Frame { bytes: bytes.into_boxed_slice(), split: head.len(), of: Framed::of(env) })
    }

    /// Whether this frame describes `env` (of the kind it was made for): live, and
    /// with the origin, waiter, time to live and text wait it was made from.
    pub(crate) fn fits<N, S, R>(&self, env: &Envelope<N, S, R>) -> bool {
        framable(env) && self.of.still(env)
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
        /// A frame made from one live envelope fits another exactly when the framed
        /// fields are the same, and then, given the other's state and deadline, writes
        /// the very bytes the full encode writes for it.
        #[test]
        fn frame_writes_the_full_encode(
            kind in "[a-z\"é\\\\]{0,8}",
            states in (any::<Vec<String>>(), any::<Vec<String>>()),
            deadlines in (any::<Option<i64>>(), any::<Option<i64>>()),
            fields in (fields(), fields()),
            same in any::<bool>(),
        ) {
            let (a, b) = fields;
            let b = if same { a.clone() } else { b };
            let first = live(&kind, &states.0, deadlines.0, &a);
            let mut bytes = Vec::new();
            let parts = first.encode_into(&mut bytes).unwrap();
            prop_assert_eq!(&bytes, &serde_json::to_vec(&first).unwrap());
            let frame = Frame::of(&first, &bytes, parts).unwrap();
            let next = live(&kind, &states.1, deadlines.1, &b);
            prop_assert_eq!(frame.fits(&next), a == b);
            if frame.fits(&next) {
                let mut framed = Vec::new();
                frame.encode_into(&mut framed, &states.1, deadlines.1.map(Timestamp)).unwrap();
                prop_assert_eq!(String::from_utf8(framed).unwrap(), serde_json::to_string(&next).unwrap());
            }
        }
    }

    /// The framed fields: the origin, the waiter, the time to live and the text wait.
    type Fields = (Origin, Option<u64>, Option<TtlOverride>, Option<TextWait>);

    fn fields() -> impl Strategy<Value = Fields> {
        let origin = (any::<[Option<i64>; 5]>(), any::<Option<String>>(), prop::option::of("[a-z]{0,3}"), any::<i64>())
            .prop_map(|([bot, chat, topic, user, message], inline_message, business_connection, at)| {
                let mut o = Origin::of(&crate::Context::new(), Timestamp(at));
                (o.bot, o.chat, o.topic, o.user, o.message) = (bot, chat, topic, user, message);
                (o.inline_message, o.business_connection) = (inline_message, business_connection);
                o
            });
        (
            origin,
            prop::option::of(0..3u64),
            (any::<u8>(), 0..3u64).prop_map(|(pick, ms)| ttl(pick, ms)),
            prop::option::of((0..3u64, prop::option::of(0..3i64))),
        )
            .prop_map(|(o, waiter, ttl, text)| {
                (o, waiter, ttl, text.map(|(version, until)| TextWait { version, until: until.map(Timestamp) }))
            })
    }

    fn live<'a>(
        kind: &'a str,
        state: &'a Vec<String>,
        deadline: Option<i64>,
        f: &Fields,
    ) -> Envelope<&'a str, &'a Vec<String>, &'a u8> {
        Envelope::live(kind, state, deadline.map(Timestamp), f.0.clone(), f.1, f.2).asking(f.3)
    }

    /// Every framed field, changed, is seen as changed; the state and the deadline
    /// are not framed.
    #[test]
    fn a_changed_field_is_seen() {
        let base = Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None);
        let mut bytes = Vec::new();
        let parts = base.encode_into(&mut bytes).unwrap();
        let frame = Frame::of(&base, &bytes, parts).unwrap();
        let mut bot = origin(None, None, 5);
        bot.bot = Some(1);
        let mut biz = origin(None, None, 5);
        biz.business_connection = Some("b".into());
        let changes = [
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(Some(9), None, 5), Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, Some("i".into()), 5), Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 6), Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, bot, Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, biz, Some(1), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(2), None),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), Some(TtlOverride::Never)),
            Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None)
                .asking(Some(TextWait { version: 1, until: None })),
            Envelope {
                lease: Some(Timestamp(1)),
                ..Envelope::<&str, &u8, &u8>::live("k", &1, None, origin(None, None, 5), Some(1), None)
            },
        ];
        for changed in &changes {
            assert!(!frame.fits(changed), "{changed:?}");
        }
        let o = origin(None, None, 5);
        assert!(frame.fits(&Envelope::<&str, &u8, &u8>::live("k", &2, Some(Timestamp(3)), o.clone(), Some(1), None)));
        let ended = Envelope::<&str, &u8, &u8>::ended("k", EndReason::Finished, None, o, Some(1));
        assert!(!frame.fits(&ended));
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

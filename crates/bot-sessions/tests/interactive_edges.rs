//! Interactive sessions at their edges: states that are JSON `null`, the state size
//! limit, and custom ids bound to one bot.
#![cfg(feature = "interactive")]

mod interactive_support;

use bot_sessions::interactive::{EndReason, Interactive, Manager, RouteOutcome, StartCx, Step, UpdateCx};
use bot_sessions::store::BoxError;
use bot_sessions::{Clock, DynStore, ManualClock, Ttl};
use interactive_support::*;

/// A session with no state at all (`()`): `done` finishes, anything else continues.
struct Unit;

impl Interactive for Unit {
    type State = ();
    type Args = ();
    type Output = ();

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, _: &mut ()) -> Result<Step<()>, BoxError> {
        Ok(if cx.component() == "done" { Step::Finish(()) } else { Step::refresh() })
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }
}

/// A session whose state starts `None` (the README's `Order`): `pick` sets it, `done`
/// finishes with it.
struct Pick;

impl Interactive for Pick {
    type State = Option<String>;
    type Args = ();
    type Output = Option<String>;

    async fn start(&self, _: &mut StartCx<'_>, _: ()) -> Result<Option<String>, BoxError> {
        Ok(None)
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut Option<String>) -> Result<Step<Option<String>>, BoxError> {
        match cx.component() {
            "peek" => Ok(Step::keep()),
            "pick" => {
                *s = Some(cx.token(0).ok_or("no choice")?.to_owned());
                Ok(Step::refresh())
            }
            _ => Ok(Step::Finish(s.clone())),
        }
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }
}

fn both(m: &Manager) -> (bot_sessions::interactive::Kind<Unit>, bot_sessions::interactive::Kind<Pick>) {
    (m.register("unit", Unit).unwrap(), m.register("pick", Pick).unwrap())
}

fn handled(id: bot_sessions::interactive::SessionId, ended: Option<EndReason>) -> RouteOutcome {
    RouteOutcome::Handled { session: id, ended }
}

/// `()` and `None` states take clicks, in the manager that started them and in a
/// second one on the same store (a restarted process), and end with their result.
/// On the old envelope the first click failed: "a live session without state".
#[tokio::test]
async fn null_states_take_clicks_across_a_restart() {
    let store: DynStore = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let m1 = manager_in(&store, &clock, "edges-null");
    let (unit, pick) = both(&m1);
    let u = m1.start(&unit, &opener(), ()).await.unwrap();
    let p = m1.start(&pick, &opener(), ()).await.unwrap();
    assert_eq!(m1.route(&click(&m1, u.id, "again")).await.unwrap(), handled(u.id, None));
    assert_eq!(m1.route(&click(&m1, p.id, "peek")).await.unwrap(), handled(p.id, None));

    let m2 = manager_in(&store, &clock, "edges-null");
    both(&m2);
    assert_eq!(m2.route(&click(&m2, u.id, "again")).await.unwrap(), handled(u.id, None));
    assert_eq!(m2.route(&click(&m2, u.id, "done")).await.unwrap(), handled(u.id, Some(EndReason::Finished)));
    assert_eq!(m2.route(&click(&m2, p.id, "peek")).await.unwrap(), handled(p.id, None));
    let id = bot_sessions::interactive::CustomId::new(p.id, "pick").push("tea");
    let pick_it = opener().custom_id(m2.codec().encode(&id).unwrap());
    assert_eq!(m2.route(&pick_it).await.unwrap(), handled(p.id, None));
    assert_eq!(m1.route(&click(&m1, p.id, "done")).await.unwrap(), handled(p.id, Some(EndReason::Finished)));

    let ended = resolved(p.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(Some("tea".to_owned()))));
    // The unit session ended in m2 while its handle waits in m1: m1 reads the stored
    // end, whose `()` result is there too.
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(m1.expire_due(clock.now()).await.errors, 0);
    let ended = resolved(u.handle).await.unwrap();
    assert_eq!((ended.reason, ended.result), (EndReason::Finished, Some(())));
}

/// A state of `n` bytes: `grow:<n>` appends `n` bytes, `done` finishes with the state,
/// `huge:<n>` finishes with a result of `n` bytes.
struct Blob;

impl Interactive for Blob {
    type State = String;
    type Args = usize;
    type Output = String;

    async fn start(&self, _: &mut StartCx<'_>, n: usize) -> Result<String, BoxError> {
        Ok("x".repeat(n))
    }

    async fn update(&self, cx: &mut UpdateCx<'_>, s: &mut String) -> Result<Step<String>, BoxError> {
        let n = || cx.token(0).unwrap_or("0").parse::<usize>();
        match cx.component() {
            "grow" => {
                s.push_str(&"y".repeat(n()?));
                Ok(Step::refresh())
            }
            "huge" => Ok(Step::Finish("z".repeat(n()?))),
            _ => Ok(Step::Finish(s.clone())),
        }
    }

    fn ttl(&self) -> Ttl {
        idle(60)
    }
}

fn blob_manager(store: &DynStore, clock: &ManualClock, ns: &str, limit: usize) -> Manager {
    Manager::builder(store.clone(), codec()).namespace(ns).clock(clock.clone()).max_size(limit).build().unwrap()
}

fn with_token(
    m: &Manager,
    id: bot_sessions::interactive::SessionId,
    component: &str,
    n: usize,
) -> bot_sessions::Context {
    let id = bot_sessions::interactive::CustomId::new(id, component).push(n.to_string());
    opener().custom_id(m.codec().encode(&id).unwrap())
}

/// Interactive state has the data sessions' size limit, configurable per manager: a
/// start, a click or a result over it is `TooLarge` naming the session, and nothing is
/// written (the session goes on with its last stored state). On the old code the
/// builder had no limit and a state of any size was stored.
#[tokio::test]
async fn state_over_the_size_limit_is_refused_before_any_write() {
    use bot_sessions::interactive::InteractiveError;
    let store: DynStore = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let ns = "edges-size";
    let m = blob_manager(&store, &clock, ns, 2048);
    let blob = m.register("blob", Blob).unwrap();
    let namespace = bot_sessions::Namespace::new(ns).unwrap();
    let count = || async { store.count(Some(&namespace), clock.now()).await.unwrap() };

    match m.start(&blob, &opener(), 4096).await {
        Err(InteractiveError::TooLarge { size, limit: 2048, .. }) => assert!(size > 4096),
        other => panic!("a 4 KiB state was not refused: {other:?}"),
    }
    assert_eq!(count().await, 0, "a refused start stores nothing");

    let s = m.start(&blob, &opener(), 100).await.unwrap();
    assert_eq!(count().await, 1);
    match m.route(&with_token(&m, s.id, "grow", 4000)).await {
        Err(e @ InteractiveError::TooLarge { session, limit: 2048, .. }) => {
            assert_eq!(session, s.id);
            assert!(e.to_string().contains(s.id.as_str()), "the error names the session: {e}");
        }
        other => panic!("a click growing the state over the limit was not refused: {other:?}"),
    }
    match m.route(&with_token(&m, s.id, "huge", 4000)).await {
        Err(InteractiveError::TooLarge { session, .. }) => assert_eq!(session, s.id),
        other => panic!("a result over the limit was not refused: {other:?}"),
    }
    // Nothing was written: the session still holds its 100 bytes and takes clicks.
    assert_eq!(m.route(&with_token(&m, s.id, "grow", 10)).await.unwrap(), handled(s.id, None));
    assert_eq!(m.route(&click(&m, s.id, "done")).await.unwrap(), handled(s.id, Some(EndReason::Finished)));
    let ended = resolved(s.handle).await.unwrap();
    assert_eq!(ended.result.map(|r| r.len()), Some(110));

    // The default limit is the data sessions' (1 MiB); zero is a configuration error.
    let big = manager_in(&store, &clock, "edges-size-default");
    let blob = big.register("blob", Blob).unwrap();
    assert!(big.start(&blob, &opener(), 512 * 1024).await.is_ok());
    assert!(matches!(
        big.start(&blob, &opener(), bot_sessions::session::DEFAULT_MAX_SIZE).await,
        Err(InteractiveError::TooLarge { .. })
    ));
    let zero = Manager::builder(store.clone(), codec()).max_size(0).build();
    assert!(matches!(zero, Err(InteractiveError::Config(_))));
}

/// Two bots share a store, a namespace and a signing key: a click carrying an id that
/// bot A signed is `Forged` on bot B and touches nothing; A takes it. On the old code
/// the signature left the bot out and B handled A's click.
#[tokio::test]
async fn an_id_signed_for_one_bot_is_forged_on_another() {
    use bot_sessions::interactive::{CustomIdCodec, SigningKeys, Target};
    let store: DynStore = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let keys = || SigningKeys::new([b"one key two bots, 32 bytes long.."]).unwrap();
    let bot = |id: i64| {
        let codec = CustomIdCodec::new("t", Target::Telegram).unwrap().bot(id).signed(keys());
        let m = Manager::builder(store.clone(), codec).namespace("edges-bots").clock(clock.clone()).build().unwrap();
        let unit = m.register("unit", Unit).unwrap();
        (m, unit)
    };
    let ((a, unit), (b, _)) = (bot(111), bot(222));
    let s = a.start(&unit, &opener(), ()).await.unwrap();
    let from_a = click(&a, s.id, "again");
    assert!(matches!(b.route(&from_a).await.unwrap(), RouteOutcome::Forged { .. }));
    assert_eq!(a.route(&from_a).await.unwrap(), handled(s.id, None));
    // B's own id for A's session is refused by A the same way.
    assert!(matches!(a.route(&click(&b, s.id, "done")).await.unwrap(), RouteOutcome::Forged { .. }));
    assert_eq!(a.route(&click(&a, s.id, "done")).await.unwrap(), handled(s.id, Some(EndReason::Finished)));
}

/// Key rotation, the newest key last (as `KeyRing`): a bot that appended a new key
/// signs with it and still takes ids signed with the old one; a bot that then dropped
/// the old key refuses them.
#[tokio::test]
async fn signing_key_rotation_appends_the_newest_last() {
    use bot_sessions::interactive::{CustomId, CustomIdCodec, DecodeError, SessionId, SigningKeys, Target};
    const OLD: &[u8] = b"the old key, 32 bytes long......";
    const NEW: &[u8] = b"the new key, 32 bytes long......";
    let codec = |keys: &[&[u8]]| {
        CustomIdCodec::new("t", Target::Discord).unwrap().bot(7).signed(SigningKeys::new(keys.iter().copied()).unwrap())
    };
    let (before, rotating, after) = (codec(&[OLD]), codec(&[OLD, NEW]), codec(&[NEW]));
    let id = CustomId::new(SessionId::random(), "go");
    let old_id = before.encode(&id).unwrap();
    let new_id = rotating.encode(&id).unwrap();
    assert_ne!(old_id, new_id, "the rotating codec signs with the key given last");
    assert_eq!(after.encode(&id).unwrap(), new_id);
    assert_eq!(rotating.decode(&old_id), Ok(id.clone()));
    assert_eq!(rotating.decode(&new_id), Ok(id.clone()));
    assert_eq!(after.decode(&new_id), Ok(id.clone()));
    assert!(matches!(after.decode(&old_id), Err(DecodeError::Forged { .. })));
    assert!(matches!(before.decode(&new_id), Err(DecodeError::Forged { .. })));
}

/// On the memory store a click starts from the state the last click in this process
/// left (kept typed beside the bytes): a click refused for its size, a kind of the same
/// Rust type under another name, and a write by another manager are all seen as the
/// store holds them, never as a state that was not stored.
#[tokio::test]
async fn kept_states_are_what_was_stored() {
    use bot_sessions::interactive::InteractiveError;
    let store: DynStore = bot_sessions::store::open("memory://").await.unwrap();
    let clock = ManualClock::starting_now();
    let m = blob_manager(&store, &clock, "edges-kept", 2048);
    let a = m.register("a", Blob).unwrap();
    let b = m.register("b", Blob).unwrap();
    let sa = m.start(&a, &opener(), 100).await.unwrap();
    let sb = m.start(&b, &opener(), 200).await.unwrap();
    for _ in 0..2 {
        assert_eq!(m.route(&with_token(&m, sa.id, "grow", 10)).await.unwrap(), handled(sa.id, None));
        assert_eq!(m.route(&with_token(&m, sb.id, "grow", 1)).await.unwrap(), handled(sb.id, None));
    }
    let refused = m.route(&with_token(&m, sa.id, "grow", 4000)).await;
    assert!(matches!(refused, Err(InteractiveError::TooLarge { .. })), "{refused:?}");
    assert_eq!(m.route(&with_token(&m, sa.id, "grow", 10)).await.unwrap(), handled(sa.id, None));
    // Another manager on the store writes `sb`: the next click here starts from that.
    let m2 = blob_manager(&store, &clock, "edges-kept", 2048);
    m2.register("a", Blob).unwrap();
    m2.register("b", Blob).unwrap();
    assert_eq!(m2.route(&with_token(&m2, sb.id, "grow", 5)).await.unwrap(), handled(sb.id, None));
    assert_eq!(m.route(&with_token(&m, sb.id, "grow", 1)).await.unwrap(), handled(sb.id, None));
    assert_eq!(m.route(&click(&m, sa.id, "done")).await.unwrap(), handled(sa.id, Some(EndReason::Finished)));
    assert_eq!(m.route(&click(&m, sb.id, "done")).await.unwrap(), handled(sb.id, Some(EndReason::Finished)));
    assert_eq!(resolved(sa.handle).await.unwrap().result.map(|r| r.len()), Some(130));
    assert_eq!(resolved(sb.handle).await.unwrap().result.map(|r| r.len()), Some(208));
}

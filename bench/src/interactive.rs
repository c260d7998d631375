//! Interactive clicks: one click = `Manager::route` (decode and verify the signed
//! custom id, take the session's key lock, load, decode, `update` (+1), encode,
//! compare-and-set save) over live sessions, on every backend; beside it, as the
//! baseline, `Sessions::update` doing the same +1 on a data session of the same shape
//! on the same store (what the interactive layer adds), and on memory the same clicks
//! with unsigned ids (what the signature costs). No peer has interactive sessions.

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::interactive::{
    CustomId, CustomIdCodec, Interactive, Kind, Manager, RouteOutcome, SigningKeys, StartCx, Step, Target, UpdateCx,
};
use bot_sessions::store::BoxError;
use bot_sessions::{Context, DynStore, Sessions, Ttl};

use crate::Bench;
use crate::subject::{Role, Subject, op, total};

/// A click counter whose state has the shape of the data-session benchmarks' value.
pub struct Clicks;

impl Interactive for Clicks {
    type State = Bench;
    type Args = ();
    type Output = u64;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<Bench, BoxError> {
        cx.set_message(1);
        Ok(Bench::seeded())
    }

    async fn update(&self, _: &mut UpdateCx<'_>, s: &mut Bench) -> Result<Step<u64>, BoxError> {
        s.count += 1;
        Ok(Step::refresh())
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(3600))
    }
}

/// The context of the user who opens (and clicks) every session.
pub fn opener() -> Context {
    Context::new().chat(1).user(42)
}

/// A manager over `store` with the `clicks` kind registered.
pub fn manager(store: DynStore, signed: bool) -> anyhow::Result<(Manager, Kind<Clicks>)> {
    let codec = CustomIdCodec::new("b", Target::Telegram)?;
    let codec = if signed { codec.signed(SigningKeys::new([b"bench key, 32 bytes of secret!!!"])?) } else { codec };
    let manager = Manager::builder(store, codec).build()?;
    let kind = manager.register("clicks", Clicks)?;
    Ok((manager, kind))
}

/// `sessions` live click sessions on `store`, started 16 at a time; the subject clicks
/// them (key index modulo `sessions`).
pub async fn clicks(
    name: &str,
    backend: &'static str,
    store: DynStore,
    signed: bool,
    sessions: usize,
) -> anyhow::Result<Subject> {
    let (manager, kind) = manager(store, signed)?;
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..16 {
        let (manager, kind) = (manager.clone(), kind.clone());
        set.spawn(async move {
            let mut ids = Vec::new();
            for _ in (lane..sessions).step_by(16) {
                let started = manager.start(&kind, &opener(), ()).await?;
                ids.push(manager.codec().encode(&CustomId::new(started.id, "inc"))?);
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = Vec::with_capacity(sessions);
    while let Some(r) = set.join_next().await {
        ids.extend(r??);
    }
    let ids = Arc::new(ids);
    Ok(Subject {
        name: name.into(),
        backend,
        role: Role::Ours,
        op: op(move |_, k| {
            let (manager, ids) = (manager.clone(), ids.clone());
            async move {
                let ctx = opener().custom_id(ids[k % ids.len()].clone());
                match manager.route(&ctx).await? {
                    RouteOutcome::Handled { .. } => Ok(()),
                    other => anyhow::bail!("click not handled: {other:?}"),
                }
            }
        }),
        total: total(0, |_| async { Ok(0) }),
    })
}

/// The baseline: `Sessions::update` of the same value on the same store.
pub fn data_sessions(backend: &'static str, store: DynStore) -> anyhow::Result<Subject> {
    let sessions = Sessions::<Bench>::builder_with_initial(store, Bench::seeded)
        .namespace("bench-data")
        .ttl(Ttl::idle(Duration::from_secs(3600)))
        .build()?;
    let mut s = crate::backends::ours("baseline/Sessions::update", backend, sessions);
    s.role = Role::Raw;
    Ok(s)
}

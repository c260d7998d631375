//! A session type's TTL changed between two runs of the bot: what happens to the
//! sessions already stored (the rule the guide's TTL chapter states). A stored session
//! expires at the earlier of what the current TTL gives from its creation and last
//! write, and the expiry stored with it: a shorter TTL applies at once, a longer one from
//! each session's next write. Checked on the memory store and on SQLite (where the
//! stored expiry is also what the store purges by).

use std::sync::Arc;
use std::time::Duration;

use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Context, DynStore, KeyStrategy, ManualClock, SessionError, Sessions, Ttl};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Form {
    step: u32,
}

fn forms(store: &DynStore, clock: &ManualClock, ttl: Ttl) -> Sessions<Form> {
    Sessions::<Form>::builder(store.clone())
        .namespace("ttl_change")
        .key(KeyStrategy::ChatUser)
        .ttl(ttl)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

async fn bump(sessions: &Sessions<Form>, ctx: &Context) -> u32 {
    let key = sessions.key(ctx).unwrap();
    sessions
        .update(&key, |f| {
            f.step += 1;
            Ok::<_, SessionError>(f.step)
        })
        .await
        .unwrap()
}

async fn changed_ttl_applies_to_stored_sessions(store: DynStore) {
    let clock = ManualClock::new(1_000_000);
    let ada = Context::new().chat(1).user(42);
    let bob = Context::new().chat(1).user(7);
    let hour = forms(&store, &clock, Ttl::idle(60 * MINUTE));
    bump(&hour, &ada).await;
    bump(&hour, &bob).await;
    let key = hour.key(&ada).unwrap();

    // 20 minutes later the bot restarts with a 15-minute idle TTL: Ada's session,
    // idle for 20 minutes, is gone at once.
    clock.advance(20 * MINUTE);
    let quarter = forms(&store, &clock, Ttl::idle(15 * MINUTE));
    assert_eq!(quarter.get(&key).await.unwrap(), None, "a shorter TTL applies at once");
    // Expired is final: going back to the hour does not bring it back.
    assert_eq!(hour.get(&key).await.unwrap(), None, "an expired session stays expired");

    // A longer TTL does not extend a stored session before its next write: at 61
    // minutes Bob's session expired under the hour it was written with.
    let day = forms(&store, &clock, Ttl::idle(24 * 60 * MINUTE));
    clock.advance(41 * MINUTE);
    let bob_key = day.key(&bob).unwrap();
    assert_eq!(day.get(&bob_key).await.unwrap(), None, "a longer TTL waits for the next write");

    // Written under the longer TTL, a session lives by it.
    assert_eq!(bump(&day, &bob).await, 1, "an expired session starts again");
    clock.advance(23 * 60 * MINUTE);
    assert_eq!(day.get(&bob_key).await.unwrap(), Some(Form { step: 1 }));
    clock.advance(2 * 60 * MINUTE);
    assert_eq!(day.get(&bob_key).await.unwrap(), None);

    // Idle to absolute: the earlier of the two.
    let carol = Context::new().chat(1).user(9);
    let idle = forms(&store, &clock, Ttl::idle(60 * MINUTE));
    bump(&idle, &carol).await;
    clock.advance(10 * MINUTE);
    bump(&idle, &carol).await; // created 10 minutes ago, written now
    let absolute = forms(&store, &clock, Ttl::absolute(15 * MINUTE));
    let carol_key = absolute.key(&carol).unwrap();
    assert_eq!(absolute.get(&carol_key).await.unwrap(), Some(Form { step: 2 }));
    clock.advance(6 * MINUTE); // 16 minutes after creation, 6 after the last write
    assert_eq!(absolute.get(&carol_key).await.unwrap(), None, "absolute from creation");
    assert_eq!(idle.get(&carol_key).await.unwrap(), None, "removed once found expired");
}

#[tokio::test]
async fn changed_ttl_applies_to_stored_sessions_on_memory() {
    changed_ttl_applies_to_stored_sessions(Arc::new(MemoryStore::without_sweeper())).await;
}

#[tokio::test]
async fn changed_ttl_applies_to_stored_sessions_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("bs-ttl-change-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?purge_interval=off", dir.join("s.db").display());
    let store = bot_sessions::store::open(&url).await.unwrap();
    changed_ttl_applies_to_stored_sessions(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

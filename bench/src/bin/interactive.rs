//! Interactive sessions benchmarks (issue 5), one run:
//!
//! 1. One click = `Manager::route`: decode and verify the custom id (signed, HMAC),
//!    take the session's key lock, load, decode, `update` (+1), encode, compare-and-set
//!    save. 64 tasks over 10,000 live sessions, on the memory store and on SQLite,
//!    side by side with `Sessions::update` doing the same +1 on a data session of the
//!    same shape (what the interactive layer adds on top of a typed update), and with
//!    unsigned ids (what the signature costs).
//! 2. Memory held per live session (memory store + the starting manager's handle and
//!    index), measured with a counting global allocator.
//!
//! Run from `bench/`: `cargo run --release --bin interactive`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

use bot_sessions::interactive::{
    CustomId, CustomIdCodec, Interactive, Manager, RouteOutcome, SigningKeys, StartCx, Started, Step, Target, UpdateCx,
    async_trait,
};
use bot_sessions::store::BoxError;
use bot_sessions::store::memory::MemoryStore;
use bot_sessions::{Context, DynStore, KeyStrategy, SessionError, Sessions, Ttl};
use bot_sessions_bench::{Bench, Op, compare, op};

const TASKS: usize = 64;
const OPS: usize = 1_000;
const SESSIONS: usize = 10_000;
const ROUNDS: usize = 5;

/// Counts live heap bytes while `COUNTING` is on (off during the throughput runs, so
/// the shared counter does not skew them).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A click counter whose state has the shape of the data-session benchmarks' value.
struct Clicks;

#[async_trait]
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

fn opener() -> Context {
    Context::new().chat(1).user(42)
}

fn codec(signed: bool) -> anyhow::Result<CustomIdCodec> {
    let codec = CustomIdCodec::new("b", Target::Telegram)?;
    Ok(if signed { codec.signed(SigningKeys::new([b"bench key, 32 bytes of secret!!!"])?) } else { codec })
}

/// A manager over `store` with `SESSIONS` live sessions; returns it, the sessions'
/// click ids and the handles.
async fn populated(store: DynStore, signed: bool) -> anyhow::Result<(Manager, Arc<Vec<String>>, Vec<Started<u64>>)> {
    let manager = Manager::builder(store, codec(signed)?).build()?;
    let kind = manager.register("clicks", Clicks)?;
    let mut ids = Vec::with_capacity(SESSIONS);
    let mut handles = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let started = manager.start(&kind, &opener(), ()).await?;
        ids.push(manager.codec().encode(&CustomId::new(started.id, "inc"))?);
        handles.push(started);
    }
    Ok((manager, Arc::new(ids), handles))
}

fn pick(t: usize, i: usize) -> usize {
    (t * 7919 + i * 31) % SESSIONS
}

fn click_op(manager: Manager, ids: Arc<Vec<String>>) -> Op {
    op(move |t, i| {
        let (manager, ids) = (manager.clone(), ids.clone());
        async move {
            let ctx = opener().custom_id(ids[pick(t, i)].clone());
            match manager.route(&ctx).await? {
                RouteOutcome::Handled { .. } => Ok(()),
                other => anyhow::bail!("click not handled: {other:?}"),
            }
        }
    })
}

async fn data_session_op(store: DynStore) -> anyhow::Result<Op> {
    let sessions = Sessions::<Bench>::builder_with_initial(store, Bench::seeded)
        .namespace("bench-data")
        .key(KeyStrategy::Chat)
        .ttl(Ttl::idle(Duration::from_secs(3600)))
        .build()?;
    // The same number of live values as there are interactive sessions.
    for k in 0..SESSIONS {
        let key = sessions.key(&Context::new().chat(k as i64))?;
        sessions.update(&key, |b| Ok::<_, SessionError>(b.count += 1)).await?;
    }
    Ok(op(move |t, i| {
        let sessions = sessions.clone();
        async move {
            let key = sessions.key(&Context::new().chat(pick(t, i) as i64))?;
            sessions.update(&key, |b| Ok::<_, SessionError>(b.count += 1)).await?;
            Ok(())
        }
    }))
}

async fn sqlite_store(name: &str) -> anyhow::Result<DynStore> {
    let dir = std::env::temp_dir().join("bot-sessions-bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("interactive-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    Ok(bot_sessions::store::open(&format!("sqlite://{}", path.display())).await?)
}

async fn memory_per_session() -> anyhow::Result<()> {
    // Warm up allocator-visible statics (tracing, rand's thread rng) before counting.
    let _ = populated(Arc::new(MemoryStore::new()), true).await?;
    let store: DynStore = Arc::new(MemoryStore::new());
    let manager = Manager::builder(store.clone(), codec(true)?).build()?;
    let kind = manager.register("clicks", Clicks)?;

    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let mut handles = Vec::with_capacity(SESSIONS);
    let reserved = LIVE.load(Ordering::SeqCst);
    for _ in 0..SESSIONS {
        handles.push(manager.start(&kind, &opener(), ()).await?);
    }
    let with_handles = LIVE.load(Ordering::SeqCst) - reserved;

    // A second manager that routed one click of every session (adopting it into its
    // own expiry index): what a process that did not start the sessions keeps.
    let other = Manager::builder(store.clone(), codec(true)?).build()?;
    other.register("clicks", Clicks)?;
    let before_other = LIVE.load(Ordering::SeqCst);
    let texts: Vec<String> =
        handles.iter().map(|s| manager.codec().encode(&CustomId::new(s.id, "inc"))).collect::<Result<_, _>>()?;
    let texts_bytes = LIVE.load(Ordering::SeqCst) - before_other;
    for text in &texts {
        other.route(&opener().custom_id(text.clone())).await?;
    }
    let adopted = LIVE.load(Ordering::SeqCst) - before_other - texts_bytes;
    COUNTING.store(false, Ordering::SeqCst);

    let n = SESSIONS as f64;
    println!("\n## Memory per live interactive session ({SESSIONS} sessions, memory store, signed ids)\n");
    println!("| what | bytes per session |\n| --- | ---: |");
    println!(
        "| started: memory-store record + starter's index entry + handle (`Started`, kept in a Vec) | {:.0} |",
        with_handles as f64 / n
    );
    println!("| adopted by a second manager (its index entry after routing one click) | {:.0} |", adopted as f64 / n);
    println!(
        "\n(store: {} records, state = the `Bench` value, JSON)",
        store.count(None, bot_sessions::Timestamp::now()).await?
    );
    drop((handles, texts));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    memory_per_session().await?;

    let (memory, memory_ids, _memory_handles) = populated(Arc::new(MemoryStore::new()), true).await?;
    let (unsigned, unsigned_ids, _unsigned_handles) = populated(Arc::new(MemoryStore::new()), false).await?;
    let (sqlite, sqlite_ids, _sqlite_handles) = populated(sqlite_store("clicks").await?, true).await?;
    let contenders: Vec<(&str, Op)> = vec![
        ("memory: route + update + save (signed ids)", click_op(memory, memory_ids)),
        ("memory: route + update + save (unsigned ids)", click_op(unsigned, unsigned_ids)),
        (
            "memory: Sessions::update, same value (no interactive layer)",
            data_session_op(Arc::new(MemoryStore::new())).await?,
        ),
        ("sqlite: route + update + save (signed ids)", click_op(sqlite, sqlite_ids)),
        (
            "sqlite: Sessions::update, same value (no interactive layer)",
            data_session_op(sqlite_store("data").await?).await?,
        ),
    ];
    compare(
        &format!("One click, {SESSIONS} live sessions, {TASKS} tasks"),
        &contenders,
        "memory: route + update + save (signed ids)",
        TASKS,
        OPS,
        ROUNDS,
    )
    .await?;
    Ok(())
}

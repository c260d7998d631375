//! Overload: 10,000 updates queued at once on one key (all waiting behind a handler
//! that holds the key) finish with the exact count, and the memory they take while
//! queued stays bounded: the peak of live heap bytes (counted by this test binary's
//! allocator) and the growth of the resident set stay under [`MEMORY_BOUND`]. A size,
//! not a time.
#![cfg(feature = "testing")]

mod reliability_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bot_sessions::testing::{Counter, unique_namespace};
use bot_sessions::{DynStore, Scope, SessionError, SessionKey, Sessions};
use reliability_support::wait_until;

/// Updates queued on the key.
const UPDATES: u64 = 10_000;
/// The memory all of them may take together (a generous bound: about 20 KB each).
const MEMORY_BOUND: usize = 200 << 20;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counters are
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The resident set size of this process, from `/proc/self/status` (Linux), in bytes.
fn rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Queues [`UPDATES`] updates on one key of `store` behind a held session, releases
/// them, and checks the count and the memory they took.
async fn ten_thousand_updates_queued_on_one_key(store: DynStore, backend: &str) {
    let sessions = Sessions::<Counter>::builder(store).namespace(unique_namespace("overload").as_str()).build();
    let sessions = sessions.expect("sessions");
    let key = SessionKey::new(sessions.namespace().clone(), Scope::Chat(1));
    let rss_before = rss();
    let heap_before = LIVE.load(Ordering::SeqCst);
    PEAK.store(heap_before, Ordering::SeqCst);

    // A handler holds the key, so every update below queues behind it.
    let held = sessions.open(&key).await.expect("open the session");
    let queued = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..UPDATES)
        .map(|_| {
            let (sessions, key, queued) = (sessions.clone(), key.clone(), queued.clone());
            tokio::spawn(async move {
                // Counted in the same poll that reaches the key's lock: once all are
                // counted, all are waiting on it.
                queued.fetch_add(1, Ordering::SeqCst);
                sessions
                    .update(&key, |c| {
                        c.n += 1;
                        Ok::<_, SessionError>(())
                    })
                    .await
            })
        })
        .collect();
    wait_until("every update to queue on the key", Duration::from_secs(300), || async {
        queued.load(Ordering::SeqCst) == UPDATES as usize
    })
    .await;
    let queued_heap = LIVE.load(Ordering::SeqCst).saturating_sub(heap_before);
    let queued_rss = rss().zip(rss_before).map(|(a, b)| a.saturating_sub(b));
    drop(held);

    let mut failed = 0;
    for t in tasks {
        if let Err(e) = t.await.expect("update task") {
            eprintln!("{backend}: update failed: {e}");
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "{backend}: every queued update succeeds");
    let n = sessions.get(&key).await.expect("read back").map_or(0, |c| c.n);
    assert_eq!(n, UPDATES, "{backend}: every queued update counted once");
    sessions.delete(&key).await.expect("clean up");

    let peak_heap = PEAK.load(Ordering::SeqCst).saturating_sub(heap_before);
    let rss_growth = rss().zip(rss_before).map(|(a, b)| a.saturating_sub(b));
    eprintln!(
        "{backend}: {UPDATES} updates queued on one key: {} KB of heap while queued ({} B each), \
         peak heap growth {} KB, RSS growth while queued {:?} KB, after {:?} KB",
        queued_heap >> 10,
        queued_heap / UPDATES as usize,
        peak_heap >> 10,
        queued_rss.map(|b| b >> 10),
        rss_growth.map(|b| b >> 10),
    );
    assert!(peak_heap < MEMORY_BOUND, "{backend}: the queued updates took {peak_heap} bytes of heap at the peak");
    if let Some(growth) = rss_growth.into_iter().chain(queued_rss).max() {
        assert!(growth < MEMORY_BOUND, "{backend}: the resident set grew by {growth} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_ten_thousand_updates_queued_on_one_key_count_exactly_in_bounded_memory() {
    let store: DynStore = Arc::new(bot_sessions::store::memory::MemoryStore::without_sweeper());
    ten_thousand_updates_queued_on_one_key(store, "memory").await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ten_thousand_updates_queued_on_one_key_count_exactly_in_bounded_memory() {
    let dir = reliability_support::temp_dir("overload");
    let url = format!("sqlite://{}?purge_interval=off", dir.join("overload.db").display());
    let store = bot_sessions::store::open(&url).await.expect("open sqlite");
    ten_thousand_updates_queued_on_one_key(store, "sqlite").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_ten_thousand_updates_queued_on_one_key_count_exactly_in_bounded_memory() {
    let url = reliability_support::with_param(&reliability_support::redis_url(), "purge_interval", "off");
    let store = bot_sessions::store::open(&url).await.expect("the shared Redis server");
    ten_thousand_updates_queued_on_one_key(store, "redis").await;
}

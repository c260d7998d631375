#![cfg(all(feature = "sqlite", feature = "testing"))]
use bot_sessions::testing::Counter;
use bot_sessions::{Namespace, Scope, SessionError, SessionKey, Sessions};

#[test]
fn startup_counts() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut bad = 0;
    for round in 0..300 {
        let path = std::env::temp_dir().join(format!("scratch-{}-{round}.db", std::process::id()));
        let r: Vec<(u64, u64)> = rt.block_on(async {
            let url = format!("sqlite://{}?durability=normal", path.display());
            let store = bot_sessions::store::open(&url).await.unwrap();
            let ns = Namespace::new("k").unwrap();
            let sessions = Sessions::<Counter>::builder(store).namespace(ns.as_str()).build().unwrap();
            let keys: Vec<SessionKey> = (0..4).map(|i| SessionKey::new(ns.clone(), Scope::Chat(i))).collect();
            let mut tasks = Vec::new();
            for t in 0..8 {
                let (s, key) = (sessions.clone(), keys[t % 4].clone());
                tasks.push(tokio::spawn(async move {
                    let mut acks = 0u64;
                    for _ in 0..3 {
                        s.update(&key, |c| {
                            c.n += 1;
                            Ok::<_, SessionError>(c.n)
                        })
                        .await
                        .unwrap();
                        acks += 1;
                    }
                    acks
                }));
            }
            let mut acks = [0u64; 4];
            for (t, h) in tasks.into_iter().enumerate() {
                acks[t % 4] += h.await.unwrap();
            }
            let mut out = Vec::new();
            for (k, key) in keys.iter().enumerate() {
                out.push((acks[k], sessions.get(key).await.unwrap().map_or(0, |c| c.n)));
            }
            out
        });
        if r.iter().any(|(a, n)| a != n) {
            bad += 1;
            eprintln!("round {round}: {r:?}");
        }
        let _ = std::fs::remove_file(&path);
    }
    assert_eq!(bad, 0);
}

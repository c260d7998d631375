//! Rows an operator (or a bug) left with metadata out of range, and keys that do not
//! parse: a typed error naming the key on load, skipped by scan and count, overwritten
//! or deleted with `Precondition::Any`, and never in the way of forget-user or purge.

use std::collections::BTreeSet;
use std::time::Duration;

use bot_sessions::store::postgres::PostgresConfig;
use bot_sessions::testing::{unique_namespace, unique_user};
use bot_sessions::{Precondition, Scope, SessionKey, Store, StoreError, Timestamp, Write};

use super::{admin, connect, drop_schema, unique_schema, url};

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>, k: &SessionKey) {
    match r {
        Err(StoreError::Corrupt { key, reason }) => assert_eq!(key, k.as_str(), "{reason}"),
        other => panic!("{k}: expected a corrupt-record error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_reported_and_never_blocks_other_records() {
    let schema = unique_schema();
    let store = connect(&url(), PostgresConfig::default().schema(schema.clone())).await;
    let table = format!("{schema}.bot_sessions");
    let admin = admin().await;
    let ns = unique_namespace("badmeta");
    let user = unique_user();
    let now = Timestamp::now();
    let keys: Vec<SessionKey> =
        (0..8).map(|chat| SessionKey::new(ns.clone(), Scope::ChatUser { chat, user })).collect();
    for k in &keys {
        store.write(k, Write::new(b"{}", 1, None), Precondition::Absent, now).await.unwrap();
    }
    let spoil = |sql: &'static str, k: &SessionKey| {
        let (admin, table, k) = (&admin, table.clone(), k.as_str().to_owned());
        async move {
            let n = admin.execute(&format!("UPDATE {table} SET {sql} WHERE key = $1"), &[&k]).await.unwrap();
            assert_eq!(n, 1);
        }
    };
    spoil("version = -5", &keys[1]).await;
    spoil("version = 0", &keys[2]).await;
    spoil("schema_version = 99999999999", &keys[4]).await;
    spoil("schema_version = -1", &keys[5]).await;
    // A key that does not parse, in the same namespace.
    admin
        .execute(
            &format!(
                "INSERT INTO {table} (key, namespace, user_id, value, version, schema_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, '\\x00', 7, 1, 0, 0)"
            ),
            &[&format!("{}:not a key", ns.as_str()), &ns.as_str(), &user],
        )
        .await
        .unwrap();
    let bad = [1, 2, 4, 5];
    let good: BTreeSet<String> =
        keys.iter().enumerate().filter(|(i, _)| !bad.contains(i)).map(|(_, k)| k.to_string()).collect();

    for i in bad {
        assert_corrupt(store.load(&keys[i], now).await, &keys[i]);
    }
    // Scan pages past the bad rows, with small pages so some are all bad.
    for limit in [1, 2, 3, 100] {
        let mut seen = BTreeSet::new();
        let mut cursor = None;
        loop {
            let page = store.scan(&ns, cursor.as_deref(), limit, now).await.expect("scan skips bad rows");
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|(k, _)| k.to_string()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, good, "page size {limit}");
    }
    // Count skips bad metadata; it does not parse keys, so the row under a key that
    // does not parse (whose metadata is fine) is counted.
    assert_eq!(store.count(Some(&ns), now).await.unwrap(), good.len() as u64 + 1, "count skips bad rows");
    assert_eq!(store.count(None, now).await.unwrap(), good.len() as u64 + 1);

    // Precondition::Any overwrites or deletes a bad row; the others keep to their rules.
    let fixed = Write::new(b"fixed", 1, None);
    assert!(
        store.write(&keys[1], Write::new(b"x", 1, None), Precondition::Absent, now).await.unwrap_err().is_conflict()
    );
    assert!(
        store
            .write(&keys[1], Write::new(b"x", 1, None), Precondition::Version(1), now)
            .await
            .unwrap_err()
            .is_conflict()
    );
    store.write(&keys[1], fixed, Precondition::Any, now).await.expect("overwrite a bad row");
    let r = store.load(&keys[1], now).await.unwrap().expect("readable again");
    assert_eq!((r.value.as_slice(), r.version, r.user_id), (&b"fixed"[..], fixed.version, Some(user)));
    assert!(store.delete(&keys[2], Precondition::Any, now).await.expect("delete a bad row"));

    // Purge removes expired rows whatever their metadata.
    admin
        .execute(&format!("UPDATE {table} SET expires_at = $2 WHERE key = $1"), &[&keys[5].as_str(), &now.as_millis()])
        .await
        .unwrap();
    let later = now.saturating_add(Duration::from_secs(1));
    assert_eq!(store.purge_expired(later).await.unwrap(), 1);

    // Forget-user erases every row of the user, bad ones included.
    let left: i64 =
        admin.query_one(&format!("SELECT count(*) FROM {table} WHERE user_id = $1"), &[&user]).await.unwrap().get(0);
    assert_eq!(store.forget_user(user, later).await.unwrap(), left as u64);
    let left: i64 = admin.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "nothing of the user is left");
    drop_schema(&schema).await;
}

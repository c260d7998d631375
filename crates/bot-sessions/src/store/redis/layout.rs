//! Where each thing lives: the Redis key names of records and indexes, on one server
//! and on a cluster.
//!
//! On one server there is one *shard*: every name starts with the prefix (`bs:`). On a
//! cluster there are [`CLUSTER_SHARDS`] shards, each a complete single-server layout
//! under `<prefix>{b:NNN}`, so the shard's hash tag decides the slot of every key in it.
//! A record goes to the shard of its key's user (so the user's sessions in every
//! namespace and their user index share a slot), or, for a key without a user, to the
//! shard of its key text; the namespace indexes, the owner hash, the owner's user-index
//! entry and the namespace list it touches are the ones of that same shard. Every
//! single-key operation is then one script on one slot; scans, counts and purges visit
//! every shard.

use crate::SessionKey;

/// Shards of the cluster layout. Part of the layout: changing it moves every key. 256
/// tags land on ~256 distinct slots, about evenly spread over up to a few dozen masters,
/// while a namespace scan or count stays 256 cheap reads (pipelined per shard).
pub const CLUSTER_SHARDS: u16 = 256;

/// The key names of one store.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The configured prefix.
    prefix: String,
    /// One entry per shard: the prefix of every key of that shard.
    shards: Vec<String>,
}

impl Layout {
    /// One shard: the single-server layout under `prefix`.
    pub(super) fn single(prefix: &str) -> Layout {
        Layout { prefix: prefix.to_owned(), shards: vec![prefix.to_owned()] }
    }

    /// [`CLUSTER_SHARDS`] shards under `prefix{b:NNN}`.
    pub(super) fn cluster(prefix: &str) -> Layout {
        let shards = (0..CLUSTER_SHARDS).map(|b| format!("{prefix}{{b:{b:03}}}")).collect();
        Layout { prefix: prefix.to_owned(), shards }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn is_cluster(&self) -> bool {
        self.shards.len() > 1
    }

    /// Every shard's key prefix.
    pub(super) fn shards(&self) -> &[String] {
        &self.shards
    }

    /// The prefix of the shard that holds `key`'s record and all its index entries.
    pub(super) fn shard_of(&self, key: &SessionKey) -> &str {
        if self.shards.len() == 1 {
            return &self.shards[0];
        }
        let h = match key.user_id() {
            Some(u) => fnv1a(&u.to_le_bytes()),
            None => fnv1a(key.as_str().as_bytes()),
        };
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    /// The shard of the sessions whose key names `user`.
    pub(super) fn shard_of_user(&self, user: i64) -> &str {
        if self.shards.len() == 1 {
            return &self.shards[0];
        }
        &self.shards[(fnv1a(&user.to_le_bytes()) % self.shards.len() as u64) as usize]
    }

    /// The Redis key of the hash that holds `key`'s record.
    pub(super) fn record_key(&self, key: &SessionKey) -> String {
        // Built by hand rather than with `format!`: this runs twice per update, and the
        // formatting machinery showed up in profiles.
        let (p, text) = (self.shard_of(key), key.as_str());
        let mut s = String::with_capacity(p.len() + text.len() + 24);
        s.push_str(p);
        match key.user_id() {
            Some(u) => {
                s.push_str("{u:");
                push_int(&mut s, u);
                s.push('}');
                s.push_str(text);
            }
            None => {
                s.push('{');
                s.push_str(text);
                s.push('}');
            }
        }
        s
    }

    /// The set of key texts indexed under `user` in the shard `shard`.
    pub(super) fn user_index(shard: &str, user: i64) -> String {
        let mut s = String::with_capacity(shard.len() + 30);
        s.push_str(shard);
        s.push_str("{u:");
        push_int(&mut s, user);
        s.push_str("}:keys");
        s
    }

    fn namespace_key(shard: &str, ns: &str, suffix: &str) -> String {
        let mut s = String::with_capacity(shard.len() + ns.len() + 5 + suffix.len());
        s.push_str(shard);
        s.push_str("{ns:");
        s.push_str(ns);
        s.push('}');
        s.push_str(suffix);
        s
    }

    /// A namespace's key texts in `shard` (sorted set, score 0).
    pub(super) fn namespace_index(shard: &str, ns: &str) -> String {
        Self::namespace_key(shard, ns, ":keys")
    }

    /// A namespace's expiring key texts in `shard`, scored by `expires_at`.
    pub(super) fn expiry_index(shard: &str, ns: &str) -> String {
        Self::namespace_key(shard, ns, ":exp")
    }

    /// Key text -> owner of a namespace's records without a user in their key, in `shard`.
    pub(super) fn owners_index(shard: &str, ns: &str) -> String {
        Self::namespace_key(shard, ns, ":own")
    }

    /// The set of namespaces with records in `shard`.
    pub(super) fn namespaces(shard: &str) -> String {
        format!("{shard}namespaces")
    }

    /// The background purger's lease.
    pub(super) fn purger(&self) -> String {
        format!("{}purger", self.prefix)
    }
}

/// FNV-1a, 64 bits: stable forever (it places keys), fast on short input.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Appends the decimal form of `n`.
pub(super) fn push_int(s: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        s.push('-');
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}

/// A member of an index as a session key, or `None` (reported) when it is not one.
pub(super) fn member_key(raw: &[u8], index: &str) -> Option<SessionKey> {
    let parsed = std::str::from_utf8(raw)
        .map_err(|e| e.to_string())
        .and_then(|t| t.parse::<SessionKey>().map_err(|e| e.to_string()));
    match parsed {
        Ok(key) => Some(key),
        Err(reason) => {
            tracing::warn!(index, member = %String::from_utf8_lossy(raw), %reason, "skipping an index member that is not a session key");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Namespace, Scope};

    #[test]
    fn integers_are_written_like_display() {
        for n in [0, 7, -7, 42, 1_000_000_000_000, i64::MAX, i64::MIN] {
            let mut s = String::from("x");
            push_int(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn one_server_keeps_the_historical_names() {
        let l = Layout::single("bs:");
        let ns = Namespace::new("n").unwrap();
        let k = SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user: 42 });
        assert_eq!(l.record_key(&k), "bs:{u:42}n/chat:1/user:42");
        assert_eq!(Layout::user_index(l.shard_of(&k), 42), "bs:{u:42}:keys");
        assert_eq!(Layout::namespace_index(l.shard_of(&k), "n"), "bs:{ns:n}:keys");
        assert_eq!(l.record_key(&SessionKey::new(ns, Scope::Chat(5))), "bs:{n/chat:5}");
    }

    /// The slot Redis Cluster gives a key: CRC16 (XMODEM) of its hash tag, mod 16384.
    fn slot(key: &str) -> u16 {
        let tag = match key.find('{') {
            Some(open) => match key[open + 1..].find('}') {
                Some(len) if len > 0 => &key[open + 1..open + 1 + len],
                _ => key,
            },
            None => key,
        };
        let mut crc: u16 = 0;
        for b in tag.bytes() {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc % 16384
    }

    #[test]
    fn on_a_cluster_a_record_and_every_index_it_touches_share_a_slot() {
        let l = Layout::cluster("bs:");
        let ns = Namespace::new("n").unwrap();
        let mut slots = std::collections::HashSet::new();
        for i in 0..2000i64 {
            for k in [
                SessionKey::new(ns.clone(), Scope::ChatUser { chat: 1, user: i }),
                SessionKey::new(ns.clone(), Scope::Chat(i)),
            ] {
                let shard = l.shard_of(&k);
                let s = slot(&l.record_key(&k));
                slots.insert(s);
                for other in [
                    Layout::namespace_index(shard, "n"),
                    Layout::expiry_index(shard, "n"),
                    Layout::owners_index(shard, "n"),
                    Layout::namespaces(shard),
                    Layout::user_index(shard, 7),
                ] {
                    assert_eq!(slot(&other), s, "{other} and {}", l.record_key(&k));
                }
                if let Some(u) = k.user_id() {
                    assert_eq!(l.shard_of_user(u), shard);
                }
            }
        }
        assert!(slots.len() > 200, "spread over the shards: {}", slots.len());
    }
}

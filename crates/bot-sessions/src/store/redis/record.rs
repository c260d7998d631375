//! A record hash as the scripts write it, read back; what a script's reply means.

use crate::{Precondition, Record, SessionKey, StoreError, Timestamp, Write};

pub(super) fn mode(p: Precondition) -> (&'static str, u64) {
    match p {
        Precondition::Any => ("a", 0),
        Precondition::Absent => ("n", 0),
        Precondition::Version(v) => ("v", v),
    }
}

/// The `meta` field of the record `write` makes of a live record created at `created`
/// and owned by `owner` (see [`FIELDS`]).
pub(super) fn meta(write: &Write<'_>, created: Timestamp, now: Timestamp, owner: Option<i64>) -> String {
    use std::fmt::Write as _;
    let mut meta = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = write!(meta, "{} {} {} {} ", write.version, write.schema_version, created.as_millis(), now.as_millis());
    let _ = match write.expires_at {
        Some(at) => write!(meta, "{}", at.as_millis()),
        None => write!(meta, "-"),
    };
    let _ = match owner {
        Some(user) => write!(meta, " {user}"),
        None => write!(meta, " -"),
    };
    meta
}

/// How many of a record's last versions [`history`] reports (the scripts keep at least
/// these, cut by length: see `next_history` in `meta.lua`).
pub(super) const HISTORY: usize = 16;

/// The last [`HISTORY`] versions a record's `hist` field lists, when it parses and ends
/// with `current` (the record it was read with); otherwise nothing is known.
pub(super) fn history(hist: &str, current: u64) -> Option<Vec<u64>> {
    let mut versions: Vec<u64> = hist.split(' ').map(str::parse).collect::<Result<_, _>>().ok()?;
    if versions.last() != Some(&current) {
        return None;
    }
    versions.drain(..versions.len().saturating_sub(HISTORY));
    Some(versions)
}

/// What a `meta` field of `version` begins with (the version and its separator).
pub(super) fn version_prefix(version: u64) -> String {
    format!("{version} ")
}

/// Parses the `value` and `meta` fields of `key`'s record hash (see [`FIELDS`]).
pub(crate) fn parse_record(key: &SessionKey, fields: Fields) -> Result<Option<Record>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: key.to_string(), reason };
    let (value, meta) = match fields {
        (Some(value), Some(meta)) => (value, meta),
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(corrupt("the hash has no `value` field".into())),
        (Some(_), None) => return Err(corrupt("the hash has no `meta` field".into())),
    };
    let text = std::str::from_utf8(&meta).map_err(|_| corrupt("the `meta` field is not UTF-8".into()))?;
    let bad = || corrupt(format!("the `meta` field {text:?} is not `version schema created updated expires owner`"));
    let mut parts = text.split(' ');
    let mut next = || parts.next().ok_or_else(bad);
    let version = next()?.parse().map_err(|_| bad())?;
    let schema_version = next()?.parse().map_err(|_| bad())?;
    let created_at = Timestamp(next()?.parse().map_err(|_| bad())?);
    let updated_at = Timestamp(next()?.parse().map_err(|_| bad())?);
    let expires_at = match next()? {
        "-" => None,
        ms => Some(Timestamp(ms.parse().map_err(|_| bad())?)),
    };
    let user_id = match parts.next() {
        // Written before owners were stored: indexed under the key's user.
        None => key.user_id(),
        Some("-") => None,
        Some(user) => Some(user.parse().map_err(|_| bad())?),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Some(Record { value, version, schema_version, created_at, updated_at, expires_at, user_id }))
}

/// The fields of a record hash: the codec's bytes, and the metadata as six
/// space-separated fields `version schema created updated expires owner` (unix ms; `-`:
/// never / none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42`. Two
/// fields rather than seven: a load is one HMGET whose reply the client parses in a
/// third less time (measured).
pub(super) const FIELDS: [&str; 2] = ["value", "meta"];

/// The reply to `HMGET key value meta`.
pub(crate) type Fields = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What a write or delete script's reply means.
pub(super) fn script_outcome(key: &SessionKey, reply: i64) -> Result<i64, StoreError> {
    script_outcome_of(key.as_str(), reply)
}

/// [`script_outcome`] for the key whose text is `key`.
pub(super) fn script_outcome_of(key: &str, reply: i64) -> Result<i64, StoreError> {
    match reply {
        -1 => Err(StoreError::Conflict { key: key.to_owned() }),
        -2 => Err(StoreError::Corrupt {
            key: key.to_owned(),
            reason: "the record's metadata does not parse; only a write or delete with Precondition::Any replaces it"
                .into(),
        }),
        n if n >= 0 => Ok(n),
        n => Err(StoreError::Corrupt { key: key.to_owned(), reason: format!("the script answered {n}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Namespace, Scope};

    #[test]
    fn history_reports_the_last_sixteen_versions_ending_with_the_current_one() {
        let hist: Vec<String> = (1..=18u64).map(|v| v.to_string()).collect();
        let want: Vec<u64> = (3..=18).collect();
        assert_eq!(history(&hist.join(" "), 18), Some(want));
        assert_eq!(history("4 5", 5), Some(vec![4, 5]));
        assert_eq!(history("4 5", 4), None, "a list that does not end with the record's version");
        assert_eq!(history("4 x 5", 5), None, "a garbled list: nothing known");
        assert_eq!(history("", 5), None);
    }

    #[test]
    fn the_meta_of_a_write_parses_as_the_record_it_makes() {
        let ns = Namespace::new("n").unwrap();
        for (key, owner) in [
            (SessionKey::new(ns.clone(), Scope::User(42)), Some(42)),
            (SessionKey::new(ns.clone(), Scope::Chat(-1)), Some(-7)),
            (SessionKey::new(ns.clone(), Scope::Chat(1)), None),
        ] {
            for expires_at in [None, Some(Timestamp(-3)), Some(Timestamp(1_715_000_000_000))] {
                let previous = Record {
                    value: b"old".to_vec(),
                    version: 9,
                    schema_version: 1,
                    created_at: Timestamp(-5),
                    updated_at: Timestamp(0),
                    expires_at: None,
                    user_id: owner,
                };
                let write = Write { owner: Some(1), ..Write::new(b"new", u32::MAX, expires_at) };
                let now = Timestamp(1_715_000_000_001);
                let meta = meta(&write, previous.created_at, now, previous.user_id);
                assert!(meta.starts_with(&version_prefix(write.version)));
                let parsed = parse_record(&key, (Some(b"new".to_vec()), Some(meta.into_bytes()))).unwrap();
                assert_eq!(parsed, Some(Record::next(Some(&previous), &key, &write, now)));
            }
        }
    }

    #[test]
    fn records_parse_and_corruption_is_named() {
        let ns = Namespace::new("n").unwrap();
        let k = SessionKey::new(ns.clone(), Scope::User(42));
        let userless = SessionKey::new(ns, Scope::Chat(1));
        let f = |v: &str| Some(v.as_bytes().to_vec());
        let r = parse_record(&k, (f("x"), f("3 1 10 20 - 42"))).unwrap().unwrap();
        assert_eq!((r.version, r.schema_version, r.created_at, r.updated_at), (3, 1, Timestamp(10), Timestamp(20)));
        assert_eq!((r.expires_at, r.user_id), (None, Some(42)));
        let r = parse_record(&userless, (f(""), f("18446744073709551615 2 -5 7 99 -7"))).unwrap().unwrap();
        assert_eq!((r.version, r.created_at, r.expires_at), (u64::MAX, Timestamp(-5), Some(Timestamp(99))));
        assert_eq!(r.user_id, Some(-7), "an owner of a key without user");
        let r = parse_record(&userless, (f(""), f("1 2 3 4 5 -"))).unwrap().unwrap();
        assert_eq!(r.user_id, None);
        // The five-field form of records written before owners: the key's user.
        assert_eq!(parse_record(&k, (f("x"), f("3 1 10 20 -"))).unwrap().unwrap().user_id, Some(42));
        assert_eq!(parse_record(&userless, (f("x"), f("3 1 10 20 -"))).unwrap().unwrap().user_id, None);
        assert_eq!(parse_record(&k, (None, None)).unwrap(), None);
        let bads = [
            "three 1 10 20 - 1",
            "3 1 10 20",
            "3 1 10 20 - 1 x",
            "",
            "3  1 10 20 -",
            "3 1 10 20 soon",
            "3 1 10 20 - me",
        ];
        for bad in bads {
            let r = parse_record(&k, (f("x"), f(bad)));
            assert!(matches!(r, Err(StoreError::Corrupt { ref key, .. }) if key == k.as_str()), "{bad:?}: {r:?}");
        }
        assert!(parse_record(&k, (f("x"), None)).is_err());
        assert!(parse_record(&k, (None, f("1 1 1 1 - -"))).is_err());
    }
}

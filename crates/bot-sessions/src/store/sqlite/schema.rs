//! The store's own schema: a validated table name, the statements that use it, and
//! versioned upgrades recorded in a schema-version table.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::StoreError;

/// The table that records each sessions table's schema version. Several sessions
/// tables (different names) can share one file, so the version is per table, not
/// `PRAGMA user_version`.
const VERSION_TABLE: &str = "bot_sessions_schema";

/// Upgrade steps: `STEPS[i]` takes a table from version `i` to `i + 1`. Append only;
/// never edit a released step.
pub(super) const STEPS: &[&str] = &[include_str!("schema_v1.sql"), include_str!("schema_v2.sql")];

/// What the purge lease table's name adds to the sessions table's.
const LEASE_SUFFIX: &str = "_purger";

/// A table name that is safe to splice into SQL: 1 to 64 characters from
/// `[A-Za-z0-9_]`, not starting with a digit, not SQLite's reserved `sqlite_` prefix
/// and not the store's own version table, and not ending in `_purger` (the suffix of
/// each sessions table's purge-lease table). It is also double-quoted where used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableName(String);

impl TableName {
    pub(super) fn new(name: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::Config(format!("invalid sqlite table name {name:?}: {why}"));
        if name.is_empty() || name.len() > 64 {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad("only A-Z, a-z, 0-9 and `_` are allowed"));
        }
        if name.as_bytes()[0].is_ascii_digit() {
            return Err(bad("must not start with a digit"));
        }
        if name.to_ascii_lowercase().starts_with("sqlite_") {
            return Err(bad("the `sqlite_` prefix is reserved by SQLite"));
        }
        if name.eq_ignore_ascii_case(VERSION_TABLE) {
            return Err(bad("that is the store's schema-version table"));
        }
        if name.to_ascii_lowercase().ends_with(LEASE_SUFFIX) {
            return Err(bad("the `_purger` suffix names a sessions table's purge-lease table"));
        }
        Ok(TableName(name.to_owned()))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// `template` with `{table}` replaced by the name.
    pub(super) fn splice(&self, template: &str) -> String {
        template.replace("{table}", &self.0)
    }
}

/// Every statement the store runs, with the table name spliced in once.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) load: String,
    pub(super) head: String,
    pub(super) upsert: String,
    pub(super) delete: String,
    pub(super) forget_user: String,
    pub(super) purge: String,
    pub(super) lease_take: String,
    pub(super) lease_release: String,
    pub(super) scan: String,
    pub(super) count: String,
    pub(super) count_namespace: String,
    pub(super) namespaces: String,
}

impl Sql {
    pub(super) fn new(table: &TableName) -> Self {
        Sql {
            load: table.splice(include_str!("load.sql")),
            head: table.splice(include_str!("head.sql")),
            upsert: table.splice(include_str!("upsert.sql")),
            delete: table.splice(include_str!("delete.sql")),
            forget_user: table.splice(include_str!("forget_user.sql")),
            purge: table.splice(include_str!("purge.sql")),
            lease_take: table.splice(include_str!("lease_take.sql")),
            lease_release: table.splice(include_str!("lease_release.sql")),
            scan: table.splice(include_str!("scan.sql")),
            count: wellformed(&table.splice(include_str!("count.sql"))),
            count_namespace: wellformed(&table.splice(include_str!("count_namespace.sql"))),
            namespaces: table.splice(include_str!("namespaces.sql")),
        }
    }
}

/// `template` with `{wellformed}` replaced by the test that a row's metadata parses
/// (the same rules as the store's row decoding).
fn wellformed(template: &str) -> String {
    template.replace("{wellformed}", include_str!("wellformed.sql").trim())
}

/// Creates, if it is missing, the trigger that gives a row edited by hand a new
/// version (see `edit_trigger.sql`): the compare-and-sets of this and other processes
/// (and their near caches) rest on a changed record never keeping its version.
pub(super) fn ensure_edit_trigger(conn: &Connection, table: &TableName) -> rusqlite::Result<()> {
    conn.execute_batch(&table.splice(include_str!("edit_trigger.sql")))
}

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(super) enum UpgradeError {
    /// The table was created by newer code; it is left untouched.
    Newer {
        found: i64,
        known: usize,
    },
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for UpgradeError {
    fn from(e: rusqlite::Error) -> Self {
        UpgradeError::Sqlite(e)
    }
}

/// Brings `table` up to the newest of `steps`, in order, in one `BEGIN IMMEDIATE`
/// transaction (so two processes starting at once do not both create it). Returns the
/// version found before upgrading.
pub(super) fn upgrade(conn: &mut Connection, table: &TableName, steps: &[&str]) -> Result<i64, UpgradeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"{VERSION_TABLE}\" (table_name TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)"
    ))?;
    let found: i64 = tx
        .query_row(&format!("SELECT version FROM \"{VERSION_TABLE}\" WHERE table_name = ?1"), [table.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let known = steps.len();
    let start = usize::try_from(found).map_err(|_| UpgradeError::Newer { found, known })?;
    if start > known {
        return Err(UpgradeError::Newer { found, known });
    }
    for (i, step) in steps.iter().enumerate().skip(start) {
        tx.execute_batch(&table.splice(step))?;
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        tx.execute(
            &format!(
                "INSERT INTO \"{VERSION_TABLE}\" (table_name, version) VALUES (?1, ?2)
                 ON CONFLICT (table_name) DO UPDATE SET version = excluded.version"
            ),
            params![table.as_str(), version],
        )?;
    }
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_validated() {
        for good in ["sessions", "bot_sessions", "_x", "T1"] {
            assert!(TableName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "x\"; DROP TABLE y; --",
            "sqlite_master",
            "SQLITE_x",
            "bot_sessions_schema",
            "sessions_purger",
            "X_PURGER",
            "é",
            &"x".repeat(65),
        ] {
            assert!(matches!(TableName::new(bad), Err(StoreError::Config(_))), "{bad:?}");
        }
    }

    fn version(conn: &Connection, table: &str) -> i64 {
        conn.query_row("SELECT version FROM bot_sessions_schema WHERE table_name = ?1", [table], |r| r.get(0)).unwrap()
    }

    #[test]
    fn upgrades_run_in_order_once_and_refuse_newer_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        let t = TableName::new("t").unwrap();
        let steps = [
            "CREATE TABLE \"{table}\" (a INTEGER)",
            "ALTER TABLE \"{table}\" ADD COLUMN b INTEGER",
            "INSERT INTO \"{table}\" (a, b) VALUES (1, 2)",
        ];
        // A table at version 1 goes through steps 2 and 3 only, in order.
        assert_eq!(upgrade(&mut conn, &t, &steps[..1]).unwrap(), 0);
        assert_eq!(version(&conn, "t"), 1);
        assert_eq!(upgrade(&mut conn, &t, &steps).unwrap(), 1);
        assert_eq!(version(&conn, "t"), 3);
        // Up to date: nothing runs again (step 3 would insert a second row).
        assert_eq!(upgrade(&mut conn, &t, &steps).unwrap(), 3);
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1);
        // Code that knows fewer steps than the table has refuses it.
        assert!(matches!(upgrade(&mut conn, &t, &steps[..2]), Err(UpgradeError::Newer { found: 3, known: 2 })));
    }

    #[test]
    fn a_failing_step_leaves_the_version_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        let t = TableName::new("t").unwrap();
        let steps = ["CREATE TABLE \"{table}\" (a INTEGER)", "THIS IS NOT SQL"];
        assert!(matches!(upgrade(&mut conn, &t, &steps), Err(UpgradeError::Sqlite(_))));
        let exists: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 't'", [], |r| r.get(0)).unwrap();
        assert_eq!(exists, 0, "the whole upgrade rolled back");
    }

    #[test]
    fn the_real_schema_applies() {
        let mut conn = Connection::open_in_memory().unwrap();
        let t = TableName::new("sessions").unwrap();
        upgrade(&mut conn, &t, STEPS).unwrap();
        let sql = Sql::new(&t);
        for stmt in [
            &sql.load,
            &sql.head,
            &sql.upsert,
            &sql.delete,
            &sql.forget_user,
            &sql.purge,
            &sql.lease_take,
            &sql.lease_release,
            &sql.scan,
            &sql.count,
            &sql.count_namespace,
            &sql.namespaces,
        ] {
            conn.prepare(stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 3);
    }
}

//! Creating or upgrading the schema and the table when the store opens.

use super::BACKEND;
use super::conn::{Connections, Single};
use super::error::{pg_err, timeout_err};
use super::sql::{MIGRATIONS, SCHEMA_VERSION};
use crate::StoreError;

/// Creates the schema and table, or upgrades them, in one transaction under an
/// advisory lock on the table's name, within `limit` (a migration still running then,
/// say waiting for another process's lock, is cancelled on the server). `schema` and
/// `name` are validated identifiers.
pub(super) async fn migrate(
    conns: &Connections,
    schema: &str,
    name: &str,
    limit: std::time::Duration,
) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + limit;
    let Single { mut client, driver } = match tokio::time::timeout_at(deadline, conns.open_single()).await {
        Ok(opened) => opened?,
        Err(_) => return Err(timeout_err(None, limit)),
    };
    let cancel = client.cancel_token();
    let result = match tokio::time::timeout_at(deadline, migrate_on(&mut client, schema, name)).await {
        Ok(result) => result,
        Err(_) => {
            conns.cancel(cancel);
            Err(timeout_err(None, limit))
        }
    };
    drop(client);
    if result.is_err() {
        driver.abort();
    }
    result
}

async fn migrate_on(client: &mut tokio_postgres::Client, schema: &str, name: &str) -> Result<(), StoreError> {
    let table = format!("\"{schema}\".\"{name}\"");
    let meta = format!("\"{schema}\".\"{name}_schema\"");
    {
        let tx = client.transaction().await.map_err(|e| pg_err(None, e))?;
        let lock_name = format!("bot-sessions:{schema}.{name}");
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock_name])
            .await
            .map_err(|e| pg_err(None, e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS {meta} (
                 singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                 version integer NOT NULL
             );"
        ))
        .await
        .map_err(|e| pg_err(None, e))?;
        let found: Option<i32> = tx
            .query_opt(&format!("SELECT version FROM {meta}"), &[])
            .await
            .map_err(|e| pg_err(None, e))?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(|e| pg_err(None, e))?;
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(StoreError::backend(
                BACKEND,
                None,
                false,
                format!("table {table} is at schema version {found}, newer than this code ({SCHEMA_VERSION})"),
            ));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            tracing::info!(table = %table, from = i, "migrating the session table");
            tx.batch_execute(&step.replace("{table}", &table).replace("{name}", name))
                .await
                .map_err(|e| pg_err(None, e))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {meta} (singleton, version) VALUES (true, $1)
                 ON CONFLICT (singleton) DO UPDATE SET version = excluded.version"
            ),
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(|e| pg_err(None, e))?;
        tx.commit().await.map_err(|e| pg_err(None, e))
    }
}

-- The statements of the PostgreSQL store, one per `-- name:` section. `{table}` is the
-- schema-qualified, quoted, validated table name. A row is live when
-- `expires_at IS NULL OR expires_at > now`; an expired row is treated as absent.

-- name: load
SELECT value, version, schema_version, created_at, updated_at, expires_at
FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: create
-- Absent precondition: insert, or replace an expired row; no row back = conflict.
INSERT INTO {table} AS s (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at)
VALUES ($1, $2, $3, $4, 1, $5, $6, $6, $7)
ON CONFLICT (key) DO UPDATE
SET value = excluded.value, version = 1, schema_version = excluded.schema_version,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
WHERE s.expires_at IS NOT NULL AND s.expires_at <= $6
RETURNING version;

-- name: upsert
-- Any precondition: bump a live row, start over on an absent or expired one.
INSERT INTO {table} AS s (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at)
VALUES ($1, $2, $3, $4, 1, $5, $6, $6, $7)
ON CONFLICT (key) DO UPDATE
SET value = excluded.value,
    version = CASE WHEN s.expires_at IS NULL OR s.expires_at > $6 THEN s.version + 1 ELSE 1 END,
    created_at = CASE WHEN s.expires_at IS NULL OR s.expires_at > $6 THEN s.created_at ELSE excluded.created_at END,
    schema_version = excluded.schema_version, updated_at = excluded.updated_at, expires_at = excluded.expires_at
RETURNING version;

-- name: compare_and_set
UPDATE {table}
SET value = $2, version = version + 1, schema_version = $3, updated_at = $4, expires_at = $5
WHERE key = $1 AND version = $6 AND (expires_at IS NULL OR expires_at > $4)
RETURNING version;

-- name: delete_any
DELETE FROM {table} WHERE key = $1 RETURNING (expires_at IS NULL OR expires_at > $2);

-- name: delete_version
DELETE FROM {table} WHERE key = $1 AND version = $2 AND (expires_at IS NULL OR expires_at > $3)
RETURNING 1;

-- name: delete_absent
-- Removes an expired leftover; answers whether a live row is in the way.
WITH leftover AS (DELETE FROM {table} WHERE key = $1 AND expires_at <= $2 RETURNING 1)
SELECT EXISTS (SELECT 1 FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2));

-- name: forget_user
WITH gone AS (DELETE FROM {table} WHERE user_id = $1 RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > $2) FROM gone;

-- name: scan
SELECT key, value, version, schema_version, created_at, updated_at, expires_at
FROM {table}
WHERE namespace = $1 AND key > $2 AND (expires_at IS NULL OR expires_at > $3)
ORDER BY key LIMIT $4;

-- name: purge
-- One batch; SKIP LOCKED lets several purging processes share the work.
WITH gone AS (
    DELETE FROM {table} WHERE key IN (
        SELECT key FROM {table} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: count_namespace
SELECT count(*) FROM {table} WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: count_all
SELECT count(*) FROM {table} WHERE expires_at IS NULL OR expires_at > $1;

-- The statements of the PostgreSQL store, one per `-- name:` section. `{table}` is the
-- schema-qualified, quoted, validated table name. A row is live when
-- `expires_at IS NULL OR expires_at > now`; an expired row is treated as absent.
--
-- Versions are the writer's: every write stores the version it was given ($8 or $7)
-- and never derives one from the row it replaces. `user_id` is set when a row is
-- created (an insert, or the take-over of an expired row) and kept by every later write
-- to the live row. `recent` is the row's last 16 versions (see `v2.sql`): a write to the
-- live row appends its version, one that creates the row starts it anew.

-- name: load
SELECT value, version, schema_version, created_at, updated_at, expires_at, user_id
FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: create
-- Absent precondition: insert, or take over an expired row; no row back = conflict.
INSERT INTO {table} AS s (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at, recent)
VALUES ($1, $2, $3, $4, $8, $5, $6, $6, $7, ARRAY[$8::bigint])
ON CONFLICT (key) DO UPDATE
SET namespace = excluded.namespace, user_id = excluded.user_id, value = excluded.value,
    version = excluded.version, schema_version = excluded.schema_version, recent = excluded.recent,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
WHERE s.expires_at IS NOT NULL AND s.expires_at <= $6
RETURNING true;

-- name: upsert
-- Any precondition: overwrite a live row (keeping its creation time and user), start
-- over on an absent or expired one.
INSERT INTO {table} AS s (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at, recent)
VALUES ($1, $2, $3, $4, $8, $5, $6, $6, $7, ARRAY[$8::bigint])
ON CONFLICT (key) DO UPDATE
SET value = excluded.value, version = excluded.version,
    recent = CASE WHEN s.expires_at IS NULL OR s.expires_at > $6
        THEN (coalesce(s.recent, ARRAY[s.version]) || excluded.version)[cardinality(coalesce(s.recent, ARRAY[s.version])) - 14:]
        ELSE excluded.recent END,
    user_id = CASE WHEN s.expires_at IS NULL OR s.expires_at > $6 THEN s.user_id ELSE excluded.user_id END,
    created_at = CASE WHEN s.expires_at IS NULL OR s.expires_at > $6 THEN s.created_at ELSE excluded.created_at END,
    namespace = excluded.namespace, schema_version = excluded.schema_version,
    updated_at = excluded.updated_at, expires_at = excluded.expires_at
RETURNING true;

-- name: compare_and_set
UPDATE {table}
SET value = $2, version = $7, schema_version = $3, updated_at = $4, expires_at = $5,
    recent = (coalesce(recent, ARRAY[version]) || $7::bigint)[cardinality(coalesce(recent, ARRAY[version])) - 14:]
WHERE key = $1 AND version = $6 AND (expires_at IS NULL OR expires_at > $4)
RETURNING true;

-- name: compare_and_set_many
-- Several compare-and-sets in one statement, so one commit (one WAL flush) serves them
-- all: element i of the arrays is one write ($1 keys, no key twice). Rows another
-- transaction holds are skipped, never waited for, so two batches cannot deadlock. The
-- answer names each key locked here and whether it was written (false: its version or
-- liveness did not match, a conflict); a key not named was skipped or is absent, and
-- the caller sends it alone with `compare_and_set`.
WITH v AS (
    SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
        AS v(key, value, schema_version, now, expires_at, expected, version)
), mine AS MATERIALIZED (
    SELECT key FROM {table} WHERE key = ANY($1::text[]) FOR UPDATE SKIP LOCKED
), written AS (
    UPDATE {table} AS s
    SET value = v.value, version = v.version, schema_version = v.schema_version, updated_at = v.now,
        expires_at = v.expires_at,
        recent = (coalesce(s.recent, ARRAY[s.version]) || v.version)[cardinality(coalesce(s.recent, ARRAY[s.version])) - 14:]
    FROM v
    WHERE s.key = v.key AND s.key IN (SELECT key FROM mine) AND s.version = v.expected
      AND (s.expires_at IS NULL OR s.expires_at > v.now)
    RETURNING s.key
)
SELECT key, key IN (SELECT key FROM written) FROM mine;

-- name: recent_versions
SELECT version, recent FROM {table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2);

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
-- Every row of the user goes, whatever its metadata; live ones are counted.
WITH gone AS (DELETE FROM {table} WHERE user_id = $1 RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > $2) FROM gone;

-- name: scan
SELECT key, value, version, schema_version, created_at, updated_at, expires_at, user_id
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

-- name: purge_exclusive
-- One batch of the background purge, only while this statement holds the purge lock
-- ($3, a name hashed to an advisory lock key): answers (lock held, rows deleted). The
-- lock is transaction-scoped, so it goes with the statement.
WITH lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(hashtextextended($3, 0)) AS held),
gone AS (
    DELETE FROM {table} WHERE key IN (
        SELECT key FROM {table} WHERE (SELECT held FROM lock) AND expires_at <= $1
        ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT (SELECT held FROM lock), count(*) FROM gone;

-- name: count_namespace
-- Answers (readable rows, rows whose metadata is out of range).
SELECT count(*) FILTER (WHERE version >= 1 AND schema_version BETWEEN 0 AND 4294967295),
       count(*) FILTER (WHERE NOT (version >= 1 AND schema_version BETWEEN 0 AND 4294967295))
FROM {table} WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2);

-- name: count_all
SELECT count(*) FILTER (WHERE version >= 1 AND schema_version BETWEEN 0 AND 4294967295),
       count(*) FILTER (WHERE NOT (version >= 1 AND schema_version BETWEEN 0 AND 4294967295))
FROM {table} WHERE expires_at IS NULL OR expires_at > $1;

-- name: namespaces
SELECT DISTINCT namespace COLLATE "C" AS namespace FROM {table}
WHERE expires_at IS NULL OR expires_at > $1
ORDER BY 1;

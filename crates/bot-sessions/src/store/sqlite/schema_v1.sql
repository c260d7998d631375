-- Version 1 of a sessions table. `{table}` is the validated table name.
CREATE TABLE "{table}" (
    key            TEXT PRIMARY KEY NOT NULL,  -- SessionKey's stable textual form
    namespace      TEXT NOT NULL,
    user_id        INTEGER,                    -- NULL for keys that belong to no user
    value          BLOB NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,           -- unix milliseconds
    updated_at     INTEGER NOT NULL,
    expires_at     INTEGER                     -- NULL never expires
) WITHOUT ROWID;
-- forget_user: every session of one user, without a scan.
CREATE INDEX "{table}_by_user" ON "{table}" (user_id) WHERE user_id IS NOT NULL;
-- purge_expired: only what is due.
CREATE INDEX "{table}_by_expiry" ON "{table}" (expires_at) WHERE expires_at IS NOT NULL;
-- scan and count of one namespace, in key order.
CREATE INDEX "{table}_by_namespace" ON "{table}" (namespace, key);

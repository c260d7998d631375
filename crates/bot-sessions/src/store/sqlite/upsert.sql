INSERT INTO "{table}" (key, namespace, user_id, value, version, schema_version, created_at, updated_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (key) DO UPDATE SET
    value = excluded.value,
    version = excluded.version,
    schema_version = excluded.schema_version,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    expires_at = excluded.expires_at,
    user_id = excluded.user_id

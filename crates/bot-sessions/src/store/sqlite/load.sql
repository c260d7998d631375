SELECT value, version, schema_version, created_at, updated_at, expires_at, user_id
FROM "{table}"
WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)

SELECT key, value, version, schema_version, created_at, updated_at, expires_at, user_id
FROM "{table}"
WHERE namespace = ?1 AND key > ?2 AND (expires_at IS NULL OR expires_at > ?3)
ORDER BY key
LIMIT ?4

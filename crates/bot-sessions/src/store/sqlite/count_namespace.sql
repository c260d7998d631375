-- As count.sql, in namespace ?2.
SELECT COUNT(*) FILTER (WHERE {wellformed}), COUNT(*) FILTER (WHERE NOT ({wellformed}))
FROM "{table}" WHERE namespace = ?2 AND (expires_at IS NULL OR expires_at > ?1)

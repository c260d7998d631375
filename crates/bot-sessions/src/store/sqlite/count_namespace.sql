SELECT COUNT(*) FROM "{table}" WHERE namespace = ?2 AND (expires_at IS NULL OR expires_at > ?1)

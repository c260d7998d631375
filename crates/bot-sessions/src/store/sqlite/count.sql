SELECT COUNT(*) FROM "{table}" WHERE expires_at IS NULL OR expires_at > ?1

DELETE FROM "{table}" WHERE expires_at <= ?1

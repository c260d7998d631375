DELETE FROM "{table}" WHERE key = ?1

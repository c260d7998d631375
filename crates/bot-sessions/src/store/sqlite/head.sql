-- What a write or delete checks its precondition against (expired rows included: the
-- caller decides whether the row is live).
SELECT version, created_at, expires_at, user_id FROM "{table}" WHERE key = ?1

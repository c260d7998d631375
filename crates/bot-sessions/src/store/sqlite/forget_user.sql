-- Every record indexed under user ?1, corrupt ones included (an erasure leaves nothing
-- behind). Returns each deleted key and its expiry, so the caller counts the live ones
-- and reports rows whose expiry does not parse.
DELETE FROM "{table}" WHERE user_id = ?1
RETURNING key, expires_at

-- Live well-formed records, and live-looking rows whose metadata does not parse
-- (skipped, reported). The filter is wellformed.sql, spliced in by schema.rs.
SELECT COUNT(*) FILTER (WHERE {wellformed}), COUNT(*) FILTER (WHERE NOT ({wellformed}))
FROM "{table}" WHERE expires_at IS NULL OR expires_at > ?1

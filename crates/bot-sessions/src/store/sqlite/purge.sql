-- One bounded chunk of a purge: at most ?2 records expired at ?1 (through the expiry
-- index). A row whose expiry is not a number never matches (it is corrupt; see load).
DELETE FROM "{table}" WHERE key IN (
    SELECT key FROM "{table}" WHERE expires_at <= ?1 LIMIT ?2
)

-- Gives the purge lease back (if ?1 still holds it), so the next round anywhere may
-- take it at once.
UPDATE "{table}_purger" SET lease_until = -9223372036854775808 WHERE id = 1 AND holder = ?1

-- Not a versioned step: created (if missing) at every open, so that older code, which
-- does not know it, still opens the table and is merely helped by it.
-- A row changed by hand (an operator's UPDATE that leaves `version` as it was) gets a
-- new random version, as every write of the store does: a compare-and-set prepared
-- against what was there before, such as a near cache's copy, then fails instead of
-- writing over the edit. The store's own writes always bring a new version, and a
-- rewrite of identical content keeps its version, so neither fires it.
CREATE TRIGGER IF NOT EXISTS "{table}_edits_new_version" AFTER UPDATE ON "{table}"
FOR EACH ROW
WHEN NEW.version = OLD.version
    AND (NEW.value IS NOT OLD.value
        OR NEW.schema_version IS NOT OLD.schema_version
        OR NEW.created_at IS NOT OLD.created_at
        OR NEW.expires_at IS NOT OLD.expires_at)
BEGIN
    UPDATE "{table}" SET version = (random() & 9223372036854775807) | 1 WHERE key = NEW.key;
END;

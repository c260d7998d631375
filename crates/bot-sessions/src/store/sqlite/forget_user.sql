-- Returns one row per deleted record: 1 when it was still live at ?2.
DELETE FROM "{table}" WHERE user_id = ?1
RETURNING (expires_at IS NULL OR expires_at > ?2)

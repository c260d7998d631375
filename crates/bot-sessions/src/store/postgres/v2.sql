-- Schema version 2: `recent`, the last 16 versions a row held (oldest first, its
-- current version last), appended by every write to the live row and started anew by a
-- write that creates it. A writer whose answer was lost reads it to learn whether its
-- write landed, even after another writer moved the row on. Rows written before have
-- none (null): their history starts with their current version.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS recent bigint[];

-- Version 2: the background purger's lease, so only one process purges at a time.
-- One row (id 1) once somebody purged: who holds the lease and until when (unix
-- milliseconds, the purging caller's clock). Taken with a conditional upsert
-- (lease_take.sql) inside each purge transaction; released when the round ends.
CREATE TABLE "{table}_purger" (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    holder      INTEGER NOT NULL,              -- the holding store's random id
    lease_until INTEGER NOT NULL
);

-- Takes or renews the purge lease for holder ?1 until ?2, if it is free, expired at
-- ?3, unreadable, or already ours. One row changed: we hold it.
INSERT INTO "{table}_purger" (id, holder, lease_until) VALUES (1, ?1, ?2)
ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
WHERE holder IS excluded.holder OR typeof(lease_until) <> 'integer' OR lease_until <= ?3

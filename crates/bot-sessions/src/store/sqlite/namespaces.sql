-- Namespaces with a live record, in byte order.
SELECT DISTINCT namespace FROM "{table}"
WHERE expires_at IS NULL OR expires_at > ?1
ORDER BY namespace

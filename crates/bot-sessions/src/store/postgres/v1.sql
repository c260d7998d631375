-- Schema version 1 of the session table. `{table}` is the schema-qualified, quoted
-- table name and `{name}` the bare table name, both validated before substitution.
-- Keys sort by byte (COLLATE "C") so scans page in the same order on every backend.
CREATE TABLE IF NOT EXISTS {table} (
    key            text COLLATE "C" PRIMARY KEY,
    namespace      text COLLATE "C" NOT NULL,
    user_id        bigint,
    value          bytea NOT NULL,
    version        bigint NOT NULL,
    schema_version bigint NOT NULL,
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    expires_at     bigint
);
CREATE INDEX IF NOT EXISTS "{name}_namespace_key" ON {table} (namespace, key);
CREATE INDEX IF NOT EXISTS "{name}_expires_at" ON {table} (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS "{name}_user_id" ON {table} (user_id) WHERE user_id IS NOT NULL;

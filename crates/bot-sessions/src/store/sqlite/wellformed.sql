typeof(value) IN ('blob', 'text') AND typeof(version) = 'integer' AND version >= 0
AND typeof(schema_version) = 'integer' AND schema_version BETWEEN 0 AND 4294967295
AND typeof(created_at) = 'integer' AND typeof(updated_at) = 'integer'
AND typeof(expires_at) IN ('integer', 'null') AND typeof(user_id) IN ('integer', 'null')

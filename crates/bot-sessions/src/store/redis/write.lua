-- Write one session record with a precondition, and keep every index in step, in one
-- atomic step.
--
-- A record is a hash of two fields: `value` (the codec's bytes) and `meta`, five
-- space-separated fields: version, schema version, created_at, updated_at, expires_at
-- (unix ms; `-`: never), e.g. `3 1 1715000000000 1715000042000 -`.
--
-- KEYS[1] record hash          KEYS[2] namespace key index (zset, score 0, member = key text)
-- KEYS[3] namespace expiry index (zset, score = expires_at)
-- KEYS[4] user index (set of key texts), or KEYS[1] again when the key has no user
-- KEYS[5] the set of namespace names
-- ARGV[1] key text   ARGV[2] namespace   ARGV[3] precondition: 'a' any, 'n' absent, 'v' version
-- ARGV[4] expected version   ARGV[5] value   ARGV[6] schema version   ARGV[7] now (unix ms)
-- ARGV[8] expires_at or ''   ARGV[9] native expiry (PEXPIREAT) or ''   ARGV[10] '1' if KEYS[4] is a user index
--
-- Returns the new version, or -1 when the precondition fails (nothing written).
local now = tonumber(ARGV[7])
local meta = redis.call('HGET', KEYS[1], 'meta')
local exists, live, version, created, expires = false, false, nil, nil, nil
if meta then
  exists = true
  version, created, expires = string.match(meta, '^(%d+) %d+ (%-?%d+) %-?%d+ (%S+)$')
  if not version then return redis.error_reply('corrupt meta field in ' .. KEYS[1]) end
  live = expires == '-' or tonumber(expires) > now
end
local mode = ARGV[3]
if mode == 'n' and live then return -1 end
if mode == 'v' and ((not live) or version ~= ARGV[4]) then return -1 end

local new_expires = ARGV[8]
if new_expires == '' then new_expires = '-' end
local new_version
if live then
  new_version = string.format('%d', tonumber(version) + 1)
else
  new_version = '1'
  created = ARGV[7]
  if exists then
    -- An expired leftover: the new record starts clean.
    redis.call('DEL', KEYS[1])
  end
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  if ARGV[10] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
  redis.call('SADD', KEYS[5], ARGV[2])
end
redis.call('HSET', KEYS[1], 'value', ARGV[5],
  'meta', new_version .. ' ' .. ARGV[6] .. ' ' .. created .. ' ' .. ARGV[7] .. ' ' .. new_expires)

if new_expires ~= '-' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[9])
  redis.call('ZADD', KEYS[3], new_expires, ARGV[1])
elseif (not exists) or expires ~= '-' then
  -- The previous record had an expiry (or natively expired and left its index entry).
  if live then redis.call('PERSIST', KEYS[1]) end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return tonumber(new_version)

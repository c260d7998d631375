-- Write one session record with a precondition, and keep every index in step, in one
-- atomic step.
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
local cur = redis.call('HMGET', KEYS[1], 'version', 'expires')
local live = false
if cur[1] then
  live = (not cur[2]) or tonumber(cur[2]) > now
end
local mode = ARGV[3]
if mode == 'n' and live then return -1 end
if mode == 'v' and ((not live) or cur[1] ~= ARGV[4]) then return -1 end

local version
if live then
  version = tonumber(cur[1]) + 1
  redis.call('HSET', KEYS[1], 'value', ARGV[5], 'version', string.format('%d', version),
    'schema', ARGV[6], 'updated', ARGV[7])
else
  version = 1
  if cur[1] then
    -- An expired leftover: the new record starts clean.
    redis.call('DEL', KEYS[1])
  end
  redis.call('HSET', KEYS[1], 'value', ARGV[5], 'version', '1', 'schema', ARGV[6],
    'created', ARGV[7], 'updated', ARGV[7])
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  if ARGV[10] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
  redis.call('SADD', KEYS[5], ARGV[2])
end

if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'expires', ARGV[8])
  redis.call('PEXPIREAT', KEYS[1], ARGV[9])
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
elseif (not cur[1]) or cur[2] then
  -- The previous record had an expiry (or natively expired and left its index entry).
  if live then
    redis.call('HDEL', KEYS[1], 'expires')
    redis.call('PERSIST', KEYS[1])
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return version

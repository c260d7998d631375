-- Delete one session record with a precondition, and its index entries, atomically.
-- (The record layout is described in write.lua.)
--
-- KEYS[1] record hash   KEYS[2] namespace key index   KEYS[3] namespace expiry index
-- KEYS[4] user index, or KEYS[1] again when the key has no user
-- ARGV[1] key text   ARGV[2] precondition: 'a' any, 'n' absent, 'v' version
-- ARGV[3] expected version   ARGV[4] now (unix ms)   ARGV[5] '1' if KEYS[4] is a user index
--
-- Returns 1 when a live record was deleted, 0 when none was, -1 when the precondition
-- fails (nothing deleted). An expired leftover is always cleaned up.
local now = tonumber(ARGV[4])
local meta = redis.call('HGET', KEYS[1], 'meta')
local live, version = false, nil
if meta then
  local expires
  version, expires = string.match(meta, '^(%d+) %d+ %-?%d+ %-?%d+ (%S+)$')
  live = version ~= nil and (expires == '-' or tonumber(expires) > now)
end
local mode = ARGV[2]
if mode == 'n' and live then return -1 end
if mode == 'v' and ((not live) or version ~= ARGV[3]) then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[5] == '1' then redis.call('SREM', KEYS[4], ARGV[1]) end
if live then return 1 end
return 0

-- Delete one session record with a precondition, and its index entries, atomically.
-- (meta.lua, prepended, describes the record hash.)
--
-- KEYS[1] record hash   KEYS[2] namespace key index   KEYS[3] namespace expiry index
-- KEYS[4] the key's user index, or KEYS[1] again when the key has no user
-- KEYS[5] namespace owners (hash: key text -> owner of a record whose key names no user)
-- ARGV[1] key text   ARGV[2] precondition: 'a' any, 'n' absent, 'v' version
-- ARGV[3] expected version   ARGV[4] now (unix ms)   ARGV[5] '1' if KEYS[4] is a user index
-- ARGV[6] the key prefix
--
-- Returns 1 when a live record was deleted, 0 when none was, -1 when the precondition
-- fails, -2 when a record is there that does not parse and the precondition is not
-- 'any' (nothing deleted either way). An expired leftover is always cleaned up; with
-- 'any', so is an unreadable record (counted as live unless its expiry index entry says
-- it expired).
local now = tonumber(ARGV[4])
local text, mode = ARGV[1], ARGV[2]
local state, version, _, expires, owner = read_record(KEYS[1])
if state == 'bad' and mode ~= 'a' then return -2 end
local live
if state == 'bad' then
  live = bad_is_live(KEYS[3], text, now)
else
  live = state == 'ok' and is_live(expires, now)
end
if mode == 'n' and live then return -1 end
if mode == 'v' and ((not live) or version ~= ARGV[3]) then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], text)
redis.call('ZREM', KEYS[3], text)
if ARGV[5] == '1' then
  redis.call('SREM', KEYS[4], text)
else
  local old = redis.call('HGET', KEYS[5], text)
  if old then
    redis.call('SREM', user_index(ARGV[6], old), text)
    redis.call('HDEL', KEYS[5], text)
  end
  if owner and owner ~= '-' and owner ~= old then redis.call('SREM', user_index(ARGV[6], owner), text) end
end
if live then return 1 end
return 0

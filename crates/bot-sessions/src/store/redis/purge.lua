-- Remove the given records of one namespace if they are expired (or already gone from
-- Redis' own expiry), with their index entries, atomically. Forgets the namespace when
-- it is left empty. (meta.lua, prepended, describes the record hash.)
--
-- KEYS[1] namespace key index   KEYS[2] namespace expiry index   KEYS[3] the set of namespaces
-- KEYS[4] namespace owners (hash: key text -> owner of a record whose key names no user)
-- per record i (from 0): KEYS[5+2i] record hash, KEYS[6+2i] the key's user index or the record again
-- ARGV[1] now (unix ms)   ARGV[2] namespace   ARGV[3] the key prefix
-- per record i: ARGV[4+2i] key text, ARGV[5+2i] '1' if KEYS[6+2i] is a user index
--
-- A live record whose expiry index entry was out of step gets its entry repaired. An
-- unreadable record is left alone (the caller reports it).
-- Returns { records removed, { key texts of the unreadable records skipped } }.
local now = tonumber(ARGV[1])
local prefix = ARGV[3]
local n = 0
local skipped = {}
local i = 0
while 4 + 2 * i <= #ARGV do
  local rec, user_keys = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local text = ARGV[4 + 2 * i]
  local state, _, _, expires, owner = read_record(rec)
  if state == 'bad' then
    skipped[#skipped + 1] = text
  elseif state == 'ok' and is_live(expires, now) then
    if expires == '-' then
      redis.call('ZREM', KEYS[2], text)
    else
      redis.call('ZADD', KEYS[2], expires, text)
    end
  else
    redis.call('DEL', rec)
    redis.call('ZREM', KEYS[1], text)
    redis.call('ZREM', KEYS[2], text)
    -- A user's index of the wrong type must not block the namespace's purge.
    if ARGV[5 + 2 * i] == '1' then
      redis.pcall('SREM', user_keys, text)
    else
      local old = redis.pcall('HGET', KEYS[4], text)
      if type(old) ~= 'string' then old = nil end
      if old then
        redis.pcall('SREM', user_index(prefix, old), text)
        redis.pcall('HDEL', KEYS[4], text)
      end
      if owner and owner ~= '-' and owner ~= old then redis.pcall('SREM', user_index(prefix, owner), text) end
    end
    n = n + 1
  end
  i = i + 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return { n, skipped }

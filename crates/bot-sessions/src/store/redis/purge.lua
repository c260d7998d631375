-- Remove the given records of one namespace if they are expired (or already gone from
-- native expiry), with their index entries, atomically. Forgets the namespace when it
-- is left empty. (The record layout is described in write.lua.)
--
-- KEYS[1] namespace key index   KEYS[2] namespace expiry index   KEYS[3] the set of namespaces
-- per record i (from 0): KEYS[4+2i] record hash, KEYS[5+2i] user index or the record again
-- ARGV[1] now (unix ms)   ARGV[2] namespace
-- per record i: ARGV[3+2i] key text, ARGV[4+2i] '1' if KEYS[5+2i] is a user index
--
-- Returns how many records were removed.
local now = tonumber(ARGV[1])
local n = 0
local i = 0
while 3 + 2 * i <= #ARGV do
  local rec = KEYS[4 + 2 * i]
  local text = ARGV[3 + 2 * i]
  local meta = redis.call('HGET', rec, 'meta')
  local expired = true
  if meta then
    local expires = string.match(meta, '^%d+ %d+ %-?%d+ %-?%d+ (%S+)$')
    expired = expires ~= nil and expires ~= '-' and tonumber(expires) <= now
  end
  if expired then
    redis.call('DEL', rec)
    redis.call('ZREM', KEYS[1], text)
    redis.call('ZREM', KEYS[2], text)
    if ARGV[4 + 2 * i] == '1' then redis.call('SREM', KEYS[5 + 2 * i], text) end
    n = n + 1
  end
  i = i + 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return n

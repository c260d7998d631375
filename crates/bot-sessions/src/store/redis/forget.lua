-- Delete the given records of one user and their index entries, atomically.
-- (The record layout is described in write.lua.)
--
-- KEYS[1] the user index; then per record i (from 0): KEYS[2+3i] record hash,
-- KEYS[3+3i] its namespace key index, KEYS[4+3i] its namespace expiry index
-- ARGV[1] now (unix ms); ARGV[2+i] the key text of record i
--
-- Returns how many of them were live.
local now = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local base = 2 + 3 * (i - 2)
  local rec = KEYS[base]
  local meta = redis.call('HGET', rec, 'meta')
  if meta then
    local expires = string.match(meta, '^%d+ %d+ %-?%d+ %-?%d+ (%S+)$')
    if expires == '-' or (expires and tonumber(expires) > now) then n = n + 1 end
  end
  redis.call('DEL', rec)
  redis.call('ZREM', KEYS[base + 1], ARGV[i])
  redis.call('ZREM', KEYS[base + 2], ARGV[i])
  redis.call('SREM', KEYS[1], ARGV[i])
end
return n

-- Compare-and-set over a record the caller knows: the single-round-trip write of a
-- session whose last record this process read or wrote (the near cache). Versions
-- never repeat, so a record with the expected version is exactly the record the caller
-- knows, live (the caller checked its expiry) with its creation time and owner: only
-- its version needs reading, and the caller hands over the new `meta` ready-made. The
-- indexes change only when the expiry does. (meta.lua, prepended, reads a record.)
--
-- KEYS[1] record hash   KEYS[2] namespace expiry index, or KEYS[1] again when the expiry stays
-- ARGV[1] expected version followed by a space   ARGV[2] value   ARGV[3] new meta
-- ARGV[4] expiry change: '' none, 's' set (ARGV[5] native PEXPIREAT, ARGV[6] expires_at),
--         'p' persist   ARGV[7] key text   ARGV[8] '1' if the client may re-send a
--         script whose first try landed (a cluster)
--
-- Returns 1 when written (or, with ARGV[8], when this very write landed before: a
-- client's re-send),
-- -1 when the record is not the expected one (another version,
-- none), -2 when something unreadable is there (nothing written either way), as
-- write.lua does.
local got = redis.pcall('HMGET', KEYS[1], 'meta', 'hist')
local meta = got[1] -- nil when the key is not a hash (an error reply has no [1])
if type(meta) == 'string' and string.sub(meta, 1, #ARGV[1]) == ARGV[1] then
  redis.call('HSET', KEYS[1], 'value', ARGV[2], 'meta', ARGV[3],
    'hist', next_history(got[2], string.match(ARGV[3], '^%d+')))
  local change = ARGV[4]
  if change == 's' then
    redis.call('PEXPIREAT', KEYS[1], ARGV[5])
    redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
  elseif change == 'p' then
    redis.call('PERSIST', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[7])
  end
  return 1
end
local state = read_record(KEYS[1])
if state == 'bad' then return -2 end
-- A re-sent try of a write that landed finds its own version: report it written.
if ARGV[8] == '1' and state == 'ok' and landed(KEYS[1], string.match(ARGV[3], '^%d+')) then return 1 end
return -1

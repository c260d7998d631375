-- cas(rec, idx, expect, value, meta, change, native, at, text, resends): the
-- compare-and-set over a record the caller knows, for cas.lua (one write) and
-- cas_many.lua (several in one run); its arguments are cas.lua's KEYS[1], KEYS[2] and
-- ARGV[1..8] in order, and it returns what cas.lua does. (meta.lua, prepended before
-- this, reads a record.)
local function cas(rec, idx, expect, value, meta, change, native, at, text, resends)
  local got = redis.pcall('HMGET', rec, 'meta', 'hist')
  local held = got[1] -- nil when the key is not a hash (an error reply has no [1])
  if type(held) == 'string' and string.sub(held, 1, #expect) == expect then
    redis.call('HSET', rec, 'value', value, 'meta', meta,
      'hist', next_history(got[2], string.match(meta, '^%d+')))
    if change == 's' then
      redis.call('PEXPIREAT', rec, native)
      redis.call('ZADD', idx, at, text)
    elseif change == 'p' then
      redis.call('PERSIST', rec)
      redis.call('ZREM', idx, text)
    end
    return 1
  end
  local state = read_record(rec)
  if state == 'bad' then return -2 end
  -- A re-sent try of a write that landed finds its own version: report it written.
  if resends == '1' and state == 'ok' and landed(rec, string.match(meta, '^%d+')) then return 1 end
  return -1
end

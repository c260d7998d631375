-- Write one session record with a precondition, and keep every index in step, in one
-- atomic step. (meta.lua, prepended, describes the record hash.)
--
-- KEYS[1] record hash          KEYS[2] namespace key index (zset, score 0, member = key text)
-- KEYS[3] namespace expiry index (zset, score = expires_at)
-- KEYS[4] the indexed user's index (set of key texts), or KEYS[1] again when there is none
-- KEYS[5] the set of namespace names
-- KEYS[6] namespace owners (hash: key text -> owner) of records whose key names no user,
--         or KEYS[1] again when the key names its user (then it is not touched)
-- ARGV[1] key text   ARGV[2] namespace   ARGV[3] precondition: 'a' any, 'n' absent, 'v' version
-- ARGV[4] expected version   ARGV[5] value   ARGV[6] schema version   ARGV[7] now (unix ms)
-- ARGV[8] expires_at or ''   ARGV[9] native expiry (PEXPIREAT) or ''   ARGV[10] '1' if KEYS[4] is a user index
-- ARGV[11] the version to store (the writer's, stored as given)
-- ARGV[12] the user to index the record under if this write creates it, or '-'
-- ARGV[13] '1' if the key names its user (then ARGV[12] is that user)   ARGV[14] the key prefix
-- ARGV[15] '1' if the client may re-send a script whose first try landed (a cluster)
--
-- Returns 1 when written (or, with ARGV[15], when an update finds the record holds or
-- held ARGV[11]: this very write landed before, and this is a client's re-send), -1
-- when the precondition fails, -2 when a record is there
-- that does not parse and the precondition is not 'any' (nothing written either way).
-- A write with precondition 'any' replaces an unreadable record.
local now = tonumber(ARGV[7])
local text, mode = ARGV[1], ARGV[3]
local state, version, created, expires, owner, hist = read_record(KEYS[1])
if state == 'bad' and mode ~= 'a' then return -2 end
local live = state == 'ok' and is_live(expires, now)
if (mode == 'n' and live) or (mode == 'v' and ((not live) or version ~= ARGV[4])) then
  -- A re-sent try of a write that landed finds its own version: report it written.
  -- Only where the client re-sends (ARGV[15] '1': a cluster) and only for an update:
  -- a copy (the operator tool's import) writes versions it did not draw, and its
  -- "already there" must stay a conflict.
  if ARGV[15] == '1' and mode == 'v' and state == 'ok' and (version == ARGV[11] or landed(KEYS[1], ARGV[11])) then
    return 1
  end
  return -1
end

local new_owner
if live then
  -- The owner is fixed at creation; a five-field record's owner is its key's user.
  new_owner = owner or ((ARGV[13] == '1') and ARGV[12] or '-')
else
  -- A new incarnation: drop any leftover (expired, or unreadable) and its owner's entry.
  new_owner = ARGV[12]
  created = ARGV[7]
  if state ~= 'none' then redis.call('DEL', KEYS[1]) end
  if ARGV[13] ~= '1' then
    local old = redis.call('HGET', KEYS[6], text)
    if old and old ~= new_owner then redis.call('SREM', user_index(ARGV[14], old), text) end
    if owner and owner ~= '-' and owner ~= old and owner ~= new_owner then
      redis.call('SREM', user_index(ARGV[14], owner), text)
    end
    if new_owner ~= '-' then
      redis.call('HSET', KEYS[6], text, new_owner)
    elseif old then
      redis.call('HDEL', KEYS[6], text)
    end
  end
  redis.call('ZADD', KEYS[2], 0, text)
  if ARGV[10] == '1' then redis.call('SADD', KEYS[4], text) end
  redis.call('SADD', KEYS[5], ARGV[2])
end

local new_expires = ARGV[8]
if new_expires == '' then new_expires = '-' end
redis.call('HSET', KEYS[1], 'value', ARGV[5],
  'meta', ARGV[11] .. ' ' .. ARGV[6] .. ' ' .. created .. ' ' .. ARGV[7] .. ' ' .. new_expires .. ' ' .. new_owner,
  'hist', next_history(live and hist, ARGV[11]))

if new_expires ~= '-' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[9])
  redis.call('ZADD', KEYS[3], new_expires, text)
elseif not (live and expires == '-') then
  -- The previous record had an expiry, or there was none (an entry left by Redis' own expiry).
  if live then redis.call('PERSIST', KEYS[1]) end
  redis.call('ZREM', KEYS[3], text)
end
return 1

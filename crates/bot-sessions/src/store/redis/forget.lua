-- Forget some members of one user's index, atomically: delete each record the user
-- owns, with its index entries, and drop every given member from the user's index.
-- (meta.lua, prepended, describes the record hash.)
--
-- KEYS[1] the user index; then per member i (from 0): KEYS[2+4i] record hash,
-- KEYS[3+4i] its namespace key index, KEYS[4+4i] its namespace expiry index,
-- KEYS[5+4i] its namespace owners hash
-- ARGV[1] now (unix ms)   ARGV[2] the user id
-- per member i: ARGV[3+2i] key text, ARGV[4+2i] the key's user, or '-' when it names none
--
-- A member is the user's when the record's owner is the user (the `meta` owner; for a
-- five-field record, the key's user). A member whose record is gone, or was created
-- again by someone else since, is stale: it only leaves the index, the record stays.
-- An unreadable record is deleted when its key names the user, or when the namespace's
-- owners hash says it is the user's or names nobody (the index says it is the user's,
-- and nobody can read it): erasure wins.
--
-- Returns { live records deleted, { key texts of the unreadable records deleted } }.
local now = tonumber(ARGV[1])
local user = ARGV[2]
local n = 0
local bad = {}
-- Index upkeep never raises (a namespace index of the wrong type must not block an
-- erasure); the record itself and the user's index entry always go.
local function tidy(...) redis.pcall(...) end
local i = 0
while 3 + 2 * i <= #ARGV do
  local rec, keys, exp, owners = KEYS[2 + 4 * i], KEYS[3 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i]
  local text, key_user = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local state, _, _, expires, owner = read_record(rec)
  local mine, live = false, false
  if state == 'ok' then
    if owner == nil then owner = key_user end
    mine = owner == user
    live = is_live(expires, now)
  elseif state == 'bad' then
    local claimed = key_user
    if claimed == '-' then
      claimed = redis.pcall('HGET', owners, text)
      if type(claimed) ~= 'string' then claimed = user end
    end
    mine = claimed == user
    live = bad_is_live(exp, text, now)
    if mine then bad[#bad + 1] = text end
  else
    -- Gone (Redis' own expiry): its namespace entries are leftovers too.
    tidy('ZREM', keys, text)
    tidy('ZREM', exp, text)
    if key_user == '-' and redis.pcall('HGET', owners, text) == user then tidy('HDEL', owners, text) end
  end
  if mine then
    redis.call('DEL', rec)
    tidy('ZREM', keys, text)
    tidy('ZREM', exp, text)
    if key_user == '-' then tidy('HDEL', owners, text) end
    if live then n = n + 1 end
  end
  redis.call('SREM', KEYS[1], text)
  i = i + 1
end
return { n, bad }

-- Shared by every script (prepended to each): reading a record hash's metadata.
--
-- A record is a hash of two fields: `value` (the codec's bytes) and `meta`, six
-- space-separated fields: version, schema version, created_at, updated_at, expires_at
-- (unix ms; `-`: never) and owner (the user id the record is indexed under for
-- forget-user; `-`: none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42`.
-- Records written before owners were stored have five fields; their owner is the
-- key's own user.
--
-- read_record(key) returns one of
--   'none'                                    no record (never written, deleted, or dropped by Redis' expiry)
--   'bad'                                     something is there that is not a readable record: a hash
--                                             without `meta`, a `meta` that does not parse, a key of another type
--   'ok', version, created, expires, owner    the fields as text; owner is nil for the five-field form
-- Nothing here raises: bad stored data is the caller's decision, never a script error.
local function read_record(rec)
  local meta = redis.pcall('HGET', rec, 'meta')
  if type(meta) == 'table' then return 'bad' end -- WRONGTYPE: not a hash
  if not meta then
    if redis.call('EXISTS', rec) == 1 then return 'bad' end
    return 'none'
  end
  local version, created, expires, owner = string.match(meta, '^(%d+) %d+ (%-?%d+) %-?%d+ (%S+) (%S+)$')
  if version then
    if owner ~= '-' and not string.match(owner, '^%-?%d+$') then return 'bad' end
  else
    version, created, expires = string.match(meta, '^(%d+) %d+ (%-?%d+) %-?%d+ (%S+)$')
    if not version then return 'bad' end
  end
  if expires ~= '-' and not string.match(expires, '^%-?%d+$') then return 'bad' end
  return 'ok', version, created, expires, owner
end

-- Whether a record read as 'ok' with this `expires` field is live at `now`.
local function is_live(expires, now)
  return expires == '-' or tonumber(expires) > now
end

-- Whether an unreadable record counts as live: the expiry index is all that is left to
-- say when it expires (no entry, or an index that cannot be read: live).
local function bad_is_live(exp_index, text, now)
  local score = redis.pcall('ZSCORE', exp_index, text)
  if type(score) ~= 'string' then return true end
  return tonumber(score) > now
end

-- The user index (set of key texts) of user `user` under key prefix `prefix`.
-- On a single server a script may touch any key; on Redis Cluster an owner's index is
-- in another slot than a record without a user, so this is one of the places the
-- scripts would have to change (see the module documentation).
local function user_index(prefix, user)
  return prefix .. '{u:' .. user .. '}:keys'
end

-- push_history(rec, version, fresh) appends `version` to the record's field `hist`: the
-- last 16 versions the record held, oldest first, space-separated (a new incarnation,
-- `fresh`, starts it anew). A writer whose reply was lost reads it to learn whether its
-- write landed, even after another writer moved the key on.
local function push_history(rec, version, fresh)
  local hist = ''
  if not fresh then
    local found = redis.call('HGET', rec, 'hist')
    if type(found) == 'string' then hist = found end
  end
  local kept = {}
  for v in string.gmatch(hist, '%d+') do kept[#kept + 1] = v end
  kept[#kept + 1] = version
  redis.call('HSET', rec, 'hist', table.concat(kept, ' ', math.max(1, #kept - 15), #kept))
end

-- landed(rec, version): whether `version` is one the record has held (its current one
-- or one in `hist`). Versions never repeat, so a writer that finds its own proposed
-- version there sees its own earlier try, which landed: a client that re-sends a
-- script after a lost connection (Redis Cluster's client does on a failover) must not
-- read that as a conflict, or the caller would run its update a second time.
local function landed(rec, version)
  local hist = redis.pcall('HGET', rec, 'hist')
  if type(hist) ~= 'string' then return false end
  for v in string.gmatch(hist, '%d+') do
    if v == version then return true end
  end
  return false
end

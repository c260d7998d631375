-- Shared by every script (prepended to each): reading a record hash's metadata.
--
-- A record is a hash of two fields: `value` (the codec's bytes) and `meta`, six
-- space-separated fields: version, schema version, created_at, updated_at, expires_at
-- (unix ms; `-`: never) and owner (the user id the record is indexed under for
-- forget-user; `-`: none), e.g. `8071441546817530881 1 1715000000000 1715000042000 - 42`.
-- Records written before owners were stored have five fields; their owner is the
-- key's own user.
--
-- read_record(key) returns one of (reading `meta` and `hist` in one HMGET)
--   'none'                                    no record (never written, deleted, or dropped by Redis' expiry)
--   'bad'                                     something is there that is not a readable record: a hash
--                                             without `meta`, a `meta` that does not parse, a key of another type
--   'ok', version, created, expires, owner, hist
--                                             the fields as text; owner is nil for the five-field form;
--                                             hist is the `hist` field (false when there is none)
-- Nothing here raises: bad stored data is the caller's decision, never a script error.
local function read_record(rec)
  local got = redis.pcall('HMGET', rec, 'meta', 'hist')
  if got.err then return 'bad' end -- WRONGTYPE: not a hash
  local meta, hist = got[1], got[2]
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
  return 'ok', version, created, expires, owner, hist
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

-- next_history(hist, version): the record's field `hist` (the versions it held, oldest
-- first, space-separated; `hist` as read, false or '' for a new incarnation) with
-- `version` appended, cut from the front to at most 335 characters. That keeps the last
-- 16 versions at least (a u64 has at most 20 digits: 16 of them and their 15 spaces fit
-- in 335), sometimes one or two more; the client reads the last 16. A writer whose reply
-- was lost reads it to learn whether its write landed, even after another writer moved
-- the key on. String work only, no parse: on the hot path of every write, splitting the
-- list into a table and joining it again cost more than the rest of the script. A field
-- that something else garbled reads as "nothing known" (the client parses it) and is
-- cut away by the writes that follow; one far too long, or with no space, starts anew.
local function next_history(hist, version)
  if type(hist) ~= 'string' or hist == '' or #hist > 1024 then return version end
  hist = hist .. ' ' .. version
  while #hist > 335 do
    local cut = string.find(hist, ' ', 1, true)
    if not cut then return version end
    hist = string.sub(hist, cut + 1)
  end
  return hist
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

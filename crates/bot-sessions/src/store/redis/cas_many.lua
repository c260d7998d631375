-- Several compare-and-sets over records the caller knows, in one run: the near cache's
-- writes that wait at the same moment (see `batch.rs`). Each is cas.lua's, decided on
-- its own; one that fails changes nothing for the others. On one server only (on a
-- cluster the keys of a run must share a slot). (meta.lua and cas_fn.lua, prepended,
-- hold the work: see `cas` there.)
--
-- KEYS[2i-1], KEYS[2i]   the i-th write's cas.lua KEYS[1] and KEYS[2]
-- ARGV[7i-6] .. ARGV[7i] the i-th write's cas.lua ARGV[1] .. ARGV[7]
--
-- Returns an array: the i-th write's answer as cas.lua gives it (1, -1 or -2).
local out = {}
for i = 1, #KEYS / 2 do
  local a = 7 * (i - 1)
  out[i] = cas(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    ARGV[a + 6], ARGV[a + 7], '0')
end
return out

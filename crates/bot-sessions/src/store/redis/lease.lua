-- Extend or release the background purger's lease, only while this process holds it.
-- (Taking it is `SET KEYS[1] ARGV[1] NX PX <ms>`.)
--
-- KEYS[1] the lease key   ARGV[1] this process's lease id
-- ARGV[2] the new lease length in ms, or '0' to release it
--
-- Returns 1 when this process held the lease (extended or released), 0 when it did not.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1

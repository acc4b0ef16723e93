-- Claim one occurrence (`claim`, in claim_fn.lua).
-- KEYS: claim key, the job's claim index. ARGV: "<call token> <node>", ttl s, scheduled_for
-- us, forget-before us.
return claim(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])

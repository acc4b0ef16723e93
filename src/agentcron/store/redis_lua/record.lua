-- Insert or update a run (`record_run`, in record_fn.lua).
-- KEYS: run, runs, job runs, leases, runjobs. ARGV: id, data, fence, status, node, lease iso,
-- lease us, score, job, bound, run key prefix.
return record_run(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3],
                  ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])

#!/usr/bin/env bash
# The background worker's pass is steps, each in a transaction of its own:
# a step that raises an ERROR (here the planning step, made to fail by a
# trigger on tinytemp.jobs) is logged and rolled back, the background
# worker survives it, and the other steps still run: a lost lease is
# expired while planning fails, and planning resumes once it can.
source "$(dirname "$0")/common.bash"
reset_db

scheduler_pid() {
	q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'"
}
pid_before=$(scheduler_pid)
tap $([ -n "$pid_before" ]; echo $?) "the background worker runs (pid $pid_before)"
# What the server logs from here on.
log_from=$(q -c "SELECT size FROM pg_stat_file('server.log')")
new_log="pg_read_file('server.log', $log_from, (SELECT size FROM pg_stat_file('server.log')) - $log_from)"

q >/dev/null <<'SQL'
CREATE FUNCTION public.tt_step_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'tt_step_failure injected into the planning step';
END $$;
CREATE TRIGGER tt_step_failure BEFORE UPDATE ON tinytemp.jobs FOR EACH ROW
	WHEN (NEW.state = 'assigned') EXECUTE FUNCTION public.tt_step_failure();
SQL
tap $? "a trigger makes every gang assignment fail"

# A gang the planner will try, and fail, to assign at every pass.
q -c "SET client_min_messages = error" \
	-c "SELECT tinytemp_register_worker('steps-' || i, 2, 2048) FROM generate_series(1, 2) i" >/dev/null
gang=$(q -c "SELECT tinytemp_enqueue('training', cpus => 2, memory_mb => 1024, gang_size => 2)")
# A job whose worker dies: its lease of one second runs out.
lost_worker=$(q -c "SET client_min_messages = error" -c "SELECT tinytemp_register_worker('steps-lost', 1, 1024)" | tail -1)
job=$(q -c "SELECT tinytemp_enqueue('eval', priority => 100, memory_mb => 512)")
claimed=$(PGOPTIONS='-c tinytemp.lease_timeout=1s' q -c "SELECT id FROM tinytemp_claim($lost_worker, 1)")
is "$claimed" "$job" "the lost worker claimed a job with a 1 s lease"

wait_sql "SELECT EXISTS (SELECT FROM tinytemp.jobs_history WHERE job_id = $job AND event = 'lease_expired')" 20
tap $? "the lease expired while every planning step failed"
is "$(scheduler_pid)" "$pid_before" "the background worker survived the failing steps"
errors=$(q -c "SELECT count(*) FROM regexp_matches($new_log,
	'tt_step_failure injected into the planning step', 'g')")
tap $([ "$errors" -ge 2 ]; echo $?) "each failure was logged ($errors so far), pass after pass"
tap $(q -c "SELECT $new_log" | grep -q 'tinytemp: planning failed; the pass goes on'; echo $?) \
	"with the step that failed"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE gang_id = $gang AND state = 'pending'")" 2 \
	"the gang is still pending, nothing half-assigned"

q -c "DROP TRIGGER tt_step_failure ON tinytemp.jobs" -c "DROP FUNCTION public.tt_step_failure()" >/dev/null
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE gang_id = $gang AND state = 'assigned'" 20
tap $? "once the step can succeed, the next pass assigns the gang"
is "$(scheduler_pid)" "$pid_before" "still the same background worker"
done_testing

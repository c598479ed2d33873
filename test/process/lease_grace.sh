#!/usr/bin/env bash
# After a restart or a promotion, the background worker gives the jobs that
# ran across it one lease from its own start before handing them to other
# workers: their leases ran out while no server could take a heartbeat.
# A worker that comes back within that lease keeps its job (run once); one
# that does not loses it a lease after the background worker started.
# The restart here is the background worker's own (terminated, restarted
# by the postmaster), with a lease of 4 s.
source "$(dirname "$0")/common.bash"
reset_db
restore_lease() {
	q -c "ALTER SYSTEM RESET tinytemp.lease_timeout" -c "SELECT pg_reload_conf()" >/dev/null
}
trap 'restore_lease; cleanup' EXIT
q -c "ALTER SYSTEM SET tinytemp.lease_timeout = '4s'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1

scheduler_pid() {
	q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'"
}
w=$(q -c "SET client_min_messages = error" -c "SELECT tinytemp_register_worker('grace-w', 4, 4096)" | tail -1)
back=$(q -c "SELECT tinytemp_enqueue('eval', priority => 2)")
gone=$(q -c "SELECT tinytemp_enqueue('eval', priority => 1)")
is "$(q -c "SELECT count(*) FROM tinytemp_claim($w, 2)")" 2 "the worker claims two jobs with a 4 s lease"

old_pid=$(scheduler_pid)
q -c "SELECT pg_terminate_backend($old_pid)" >/dev/null
wait_sql "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler' AND pid <> $old_pid" 20
tap $? "the background worker is restarted by the postmaster"
started=$(q -c "SELECT backend_start FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'")
is "$(q -c "SELECT bool_and(heartbeat_at + interval '4 s' < '$started') FROM tinytemp.jobs WHERE id IN ($back, $gone)")" t \
	"both leases ran out while it was down"
sleep 1.5
is "$(q -c "SELECT string_agg(state, ',' ORDER BY id) FROM tinytemp.jobs WHERE id IN ($back, $gone)")" \
	"running,running" "its passes leave both jobs running"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE id IN ($back, $gone)
            AND lease_until BETWEEN '$started'::timestamptz + interval '4 s'
                                AND '$started'::timestamptz + interval '5 s'")" 2 \
	"with one lease from its start"

is "$(q -c "SELECT tinytemp_heartbeat($back, $w)")" continue "the worker comes back and heartbeats one job"
q -c "SELECT tinytemp_ack($back, $w)" >/dev/null
tap $? "and acks it"
is "$(q -c "SELECT string_agg(event, ' ' ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = $back")" \
	"enqueued claimed acked" "that job ran once, never requeued"
wait_sql "SELECT EXISTS (SELECT FROM tinytemp.jobs_history WHERE job_id = $gone AND event = 'lease_expired')" 15
tap $? "the job never heartbeated again expires"
is "$(q -c "SELECT (SELECT at FROM tinytemp.jobs_history WHERE job_id = $gone AND event = 'lease_expired')
            >= '$started'::timestamptz + interval '4 s'")" t "a lease after the background worker started"
done_testing

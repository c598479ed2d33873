#!/usr/bin/env bash
# Connection loss: the worker reconnects with backoff while its job keeps
# running, goes on heartbeating and reports; LISTEN is back after the
# reconnection.  A multi-host conninfo skips a host that is down.
source "$(dirname "$0")/common.bash"
reset_db

# A 3 s lease, so heartbeats (every second) must resume after the reconnection.
PGOPTIONS='-c tinytemp.lease_timeout=3s' start_worker w --name rc-w --handler 'sim=simulate' \
	--poll-interval 30
w=$LAST_PID
wait_log w " ready " 10
tap $? "the worker is ready"
job=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 5}')")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $job" 10
tap $? "its job runs"

killed=0
for i in 1 2 3; do
	n=$(q -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	          WHERE application_name = 'tinytemp-worker rc-w'")
	killed=$((killed + n))
	sleep 0.6
done
[ "$killed" -ge 2 ]
tap $? "its connection was terminated repeatedly ($killed times)"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 20
tap $? "the job still succeeded"
is "$(q -c "SELECT attempts || ' ' || count(h.*) FILTER (WHERE h.event = 'lease_expired')
            FROM tinytemp.jobs j LEFT JOIN tinytemp.jobs_history h ON h.job_id = j.id
            WHERE j.id = $job GROUP BY j.attempts")" "1 0" "in its first attempt, its lease never lost"
[ "$(grep -c ' disconnected ' "$TMP/w.log")" -ge 2 ] && [ "$(grep -c ' connected ' "$TMP/w.log")" -ge 3 ]
tap $? "the worker logged the disconnections and reconnections"
grep -q ' reconnect next attempt in ' "$TMP/w.log"
tap $? "with a delay before each attempt"

# After reconnecting it listens again: with a 30 s poll only NOTIFY explains a quick claim.
sleep 1
start=$(date +%s.%N)
job=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 10
tap $? "a job enqueued after the reconnection succeeded"
is "$(echo "$(date +%s.%N) - $start < 5" | bc)" 1 "woken by NOTIFY, not by the 30 s poll"

kill -TERM "$w"
wait_exit "$w" 10
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

# Multi-host: the first host does not exist, the second is the primary.
start_worker multi --name rc-multi --handler 'sim=simulate' \
	--conninfo "host=$TMP/no-such-dir,$PGHOST port=$PGPORT,$PGPORT dbname=$PGDATABASE user=$PGUSER target_session_attrs=read-write"
m=$LAST_PID
job=$(q -c "SELECT tinytemp_enqueue('sim')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 10
tap $? "a multi-host conninfo with target_session_attrs=read-write reaches the primary"
kill -TERM "$m"
wait_exit "$m" 10
is "$EXIT_STATUS" 0 "that worker exits 0 on SIGTERM"

done_testing

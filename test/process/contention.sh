#!/usr/bin/env bash
# Many claims after the same best jobs at once: 16 one-slot workers (the
# shape of a GPU cluster) drain 1,500 jobs of 20 tenants, so that every
# claim's last job comes from the first-free-in-order statement, under
# contention, and the tenants are past the number a claim reads all of.
# Every job runs exactly once, and no server process dies on the way.
source "$(dirname "$0")/common.bash"
reset_db

log_from=$(q -c "SELECT size FROM pg_stat_file('server.log')")
new_log="pg_read_file('server.log', $log_from, (SELECT size FROM pg_stat_file('server.log')) - $log_from)"

JOBS=1500
q -c "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object(
        'job_type', 'sim', 'params', '{\"runtime_s\": 0}'::jsonb,
        'tenant', 'contention-' || (g % 20), 'priority', g % 2))
      FROM generate_series(1, $JOBS) g))" >/dev/null
tap $? "$JOBS jobs of 20 tenants enqueued in one call"

for i in $(seq 16); do
	start_worker "w$i" --name "contention-$i" --slots 1 --handler sim=simulate \
		--cpus 4 --memory-mb 16384 --poll-interval 0.5
done
wait_sql "SELECT count(*) = $JOBS FROM tinytemp.jobs WHERE state = 'succeeded'" 90
tap $? "16 one-slot workers run all $JOBS jobs"

is "$(q -c "SELECT count(*) FROM (SELECT job_id FROM tinytemp.jobs_history WHERE event = 'claimed'
                                  GROUP BY job_id HAVING count(*) > 1) twice")" 0 \
	"no job was claimed twice"
is "$(q -c "SELECT count(*) FILTER (WHERE event = 'claimed') || ' ' || count(*) FILTER (WHERE event = 'acked')
            FROM tinytemp.jobs_history")" "$JOBS $JOBS" "$JOBS claims and $JOBS acks in the history"
is "$(q -c "SELECT count(DISTINCT worker_id) FROM tinytemp.jobs")" 16 "every worker ran jobs"
is "$(q -c "SELECT count(*) FROM regexp_matches($new_log, 'terminated by signal', 'g')")" 0 \
	"no server process was terminated by a signal"
is "$(cat "$TMP"/w*.log | grep -c ' disconnected ')" 0 "no worker lost its connection"
is "$(cat "$TMP"/w*.log | grep -c 'report-discarded\|refused')" 0 "no report was refused"

for pid in "${WORKER_PIDS[@]}"; do kill -TERM "$pid"; done
for pid in "${WORKER_PIDS[@]}"; do wait_exit "$pid" 20; done
done_testing

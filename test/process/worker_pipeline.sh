#!/usr/bin/env bash
# The hot path of 0.5 with real processes: tinytemp_enqueue_many wakes the
# workers once per queue; tinytemp-worker acks the jobs that ended and claims
# the next ones in one call (tinytemp_ack_and_claim); a handler that cannot
# be executed (no such file, no such workdir) fails its attempt as retryable;
# and with a real handler, a slot that frees up early starts its next job
# while the other slots still run theirs.
source "$(dirname "$0")/common.bash"
NOBG_DB=tinytemp_pipeline_nobg
trap 'q -d postgres -c "DROP DATABASE IF EXISTS $NOBG_DB" >/dev/null 2>&1; cleanup' EXIT
reset_db

# 1. enqueue_many wakes the workers once it commits.  Where the background
# worker serves the database, it relays one NOTIFY for the whole call.
scheduler=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'
                  AND datname = current_database()")
[ -n "$scheduler" ]
tap $? "a tinytemp scheduler serves this database"
got=$(q -c 'LISTEN tinytemp_jobs' \
	-c "SELECT count(*) FROM tinytemp_enqueue_many('[{\"job_type\": \"n\", \"queue\": \"q1\"},
	    {\"job_type\": \"n\", \"queue\": \"q2\"}, {\"job_type\": \"n\", \"queue\": \"q1\"}]')" \
	-c 'SELECT pg_sleep(3)' -c 'SELECT 1' 2>&1)
is "$(grep -c 'notification "tinytemp_jobs"' <<<"$got")" 1 "a committed enqueue_many wakes the listeners once"
grep -q "notification \"tinytemp_jobs\" received from server process with PID $scheduler\.\$" <<<"$got"
tap $? "relayed by the scheduler, with an empty payload"
# Without a background worker for the database, the call notifies itself:
# once per queue, with the queue's name as payload.
PGOPTIONS='-c client_min_messages=warning' q -d postgres -c "DROP DATABASE IF EXISTS $NOBG_DB" \
	-c "CREATE DATABASE $NOBG_DB" >/dev/null
q -d "$NOBG_DB" -c 'CREATE EXTENSION tinytemp' >/dev/null
is "$(q -d "$NOBG_DB" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'
                          AND datname = current_database()")" 0 "no scheduler serves database $NOBG_DB"
got=$(q -d "$NOBG_DB" -c 'LISTEN tinytemp_jobs' \
	-c "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object('job_type', 'n',
	    'queue', CASE WHEN g % 3 = 0 THEN 'q2' ELSE 'q1' END)) FROM generate_series(1, 50) g))" \
	-c 'SELECT 1' 2>&1)
is "$(grep 'notification "tinytemp_jobs"' <<<"$got" | sed -E 's/.* with payload "([^"]*)".*/\1/' | sort | paste -sd ' ')" \
	"q1 q2" "without a scheduler, 50 jobs in two queues notify once per queue, the queue as payload"
got=$(q -d "$NOBG_DB" -c 'LISTEN tinytemp_jobs' -c 'BEGIN' \
	-c "SELECT count(*) FROM tinytemp_enqueue_many('[{\"job_type\": \"n\", \"queue\": \"q3\"}]')" \
	-c 'ROLLBACK' -c 'SELECT 1' 2>&1)
is "$(grep -c 'notification' <<<"$got")" 0 "an enqueue_many that rolled back wakes nobody"
q -d postgres -c "DROP DATABASE $NOBG_DB" >/dev/null
reset_db

# 2. 200 simulated jobs through 4 slots: the acks of the jobs that ended and
# the claim of the next ones go in one call, and so in one transaction.
q -c "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object('job_type', 'sim',
      'params', jsonb_build_object('runtime_s', (g % 4) * 0.005, 'n', g))) FROM generate_series(1, 200) g))" >/dev/null
start_worker sim -v --name pl-sim --handler 'sim=simulate' --slots 4 --cpus 64 --memory-mb 1000000 --poll-interval 1
sim=$LAST_PID
wait_sql "SELECT count(*) = 200 FROM tinytemp.jobs WHERE state = 'succeeded'" 60
tap $? "all 200 simulated jobs succeeded"
bail_out
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE attempts <> 1")" 0 "each in one attempt"
is "$(q -c "SELECT count(*) FROM (SELECT job_id FROM tinytemp.jobs_history WHERE event IN ('claimed', 'acked')
            GROUP BY job_id HAVING count(*) FILTER (WHERE event = 'claimed') <> 1
                                OR count(*) FILTER (WHERE event = 'acked') <> 1) x")" 0 \
	"every job was claimed once and acked once"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event NOT IN ('enqueued', 'claimed', 'acked')")" 0 \
	"no failure, expiry or requeue in the history"
lines=$(grep -cE " job=- claim acked [0-9]+ and asked for [0-9]+, got [0-9]+\$" "$TMP/sim.log")
[ "$lines" -gt 0 ]
tap $? "the log shows acks and claims sent together ($lines lines \"claim acked N and asked for M\")"
bad=$(sed -nE 's/.* job=- claim acked ([0-9]+) and asked for ([0-9]+), got ([0-9]+)$/\1 \2 \3/p' "$TMP/sim.log" |
	awk '!($1 >= 1 && $1 <= $2 && $2 <= 4 && $3 <= $2)' | wc -l)
is "$bad" 0 "each acked N >= 1 jobs and asked for M jobs, N <= M <= 4 slots, and got at most M"
# A history row carries its transaction's start: acks and claims of one worker
# under one timestamp were made by one transaction.
both=$(q -c "SELECT count(*) FROM (SELECT 1 FROM tinytemp.jobs_history WHERE event IN ('acked', 'claimed')
             GROUP BY worker_id, at HAVING count(*) FILTER (WHERE event = 'acked') > 0
                                       AND count(*) FILTER (WHERE event = 'claimed') > 0) x")
[ "$both" -gt 0 ]
tap $? "the history has transactions that both acked and claimed ($both)"
kill -TERM "$sim"
wait_exit "$sim" 15
is "$EXIT_STATUS" 0 "the simulate worker drains and exits 0"
reset_db

# 3. A handler that cannot be executed: a path that does not exist in a
# directory that does, or a working directory that does not exist.  The
# attempt fails as retryable: back to pending, then dead-lettered after
# max_attempts (2).
cat > "$TMP/handlers.conf" <<CONF
[nowd]
command = /bin/true
workdir = $TMP/no-such-dir
CONF
PGOPTIONS='-c tinytemp.retry_backoff_base=200ms' start_worker bad --name pl-bad --config "$TMP/handlers.conf" \
	--handler "nofile=$TMP/no-such-handler" --slots 2 --poll-interval 0.3
bad=$LAST_PID
wait_log bad " ready " 10
tap $? "the worker starts with both handlers"
nofile=$(q -c "SELECT tinytemp_enqueue('nofile', max_attempts => 2)")
nowd=$(q -c "SELECT tinytemp_enqueue('nowd', max_attempts => 2)")
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE state = 'failed'" 20
tap $? "both jobs end in the dead-letter queue"
is "$(q -c "SELECT string_agg(id || ': ' || attempts || ' ' || last_error, ' | ' ORDER BY id) FROM tinytemp.jobs")" \
	"$nofile: 2 cannot execute handler $TMP/no-such-handler: No such file or directory | $nowd: 2 cannot execute handler /bin/true in $TMP/no-such-dir: No such file or directory" \
	"after two attempts each, with \"cannot execute handler\", the path (and workdir) and the reason"
for job in "$nofile" "$nowd"; do
	is "$(q -c "SELECT string_agg(event || coalesce(' retryable=' || (detail->>'retryable'), ''), ' ' ORDER BY id)
	            FROM tinytemp.jobs_history WHERE job_id = $job")" \
		"enqueued claimed failed retryable=true retried claimed failed retryable=true dead_lettered" \
		"job $job: each failure was retryable; the first sent it back to pending, the second to the dead-letter queue"
done
grep -qE " job=$nofile failed new_state=pending retryable=yes error=cannot execute handler $TMP/no-such-handler: " \
	"$TMP/bad.log"
tap $? "the worker logs the first failure as retryable, back to pending"
kill -0 "$bad"
tap $? "the worker itself carries on"
kill -TERM "$bad"
wait_exit "$bad" 15
is "$EXIT_STATUS" 0 "the worker drains and exits 0"
reset_db

# 4. A real handler (/bin/true) through 8 slots, while 4 of them hold a slow
# job (a script that sleeps 3 s): the slots that free up start their next
# jobs at once, long before the slow jobs claimed earlier have finished.
cat > "$TMP/slow.sh" <<'SH'
#!/bin/sh
sleep 3
SH
chmod +x "$TMP/slow.sh"
q -c "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object('job_type', 'slow', 'priority', 1))
                                                  FROM generate_series(1, 4)))" >/dev/null
q -c "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object('job_type', 'true',
      'params', jsonb_build_object('n', g))) FROM generate_series(1, 300) g))" >/dev/null
start_worker real --name pl-real --handler 'true=/bin/true' --handler "slow=$TMP/slow.sh" --slots 8 \
	--cpus 64 --memory-mb 1000000 --poll-interval 1
real=$LAST_PID
wait_sql "SELECT count(*) = 304 FROM tinytemp.jobs WHERE state = 'succeeded'" 90
tap $? "all 300 /bin/true jobs and the 4 slow ones succeeded"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE attempts <> 1")" 0 "each in one attempt"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event NOT IN ('enqueued', 'claimed', 'acked')")" 0 \
	"no failure, expiry or requeue in the history"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE job_type = 'slow'
            AND started_at = (SELECT min(started_at) FROM tinytemp.jobs)")" 4 "the slow jobs were claimed first"
during=$(q -c "SELECT count(*) FROM tinytemp.jobs t WHERE t.job_type = 'true'
               AND t.started_at > (SELECT max(started_at) FROM tinytemp.jobs WHERE job_type = 'slow')
               AND t.started_at < (SELECT min(finished_at) FROM tinytemp.jobs WHERE job_type = 'slow')")
[ "$during" -ge 8 ]
tap $? "jobs claimed after the slow ones started before any slow one finished ($during of them)"
# At each start, the jobs started and not yet finished: never more than the slots.
is "$(q -c "SELECT max((SELECT count(*) FROM tinytemp.jobs o WHERE o.started_at <= s.started_at
                                                           AND o.finished_at > s.started_at))
            FROM tinytemp.jobs s")" 8 "the 8 slots ran 8 jobs at once, never more"
kill -TERM "$real"
wait_exit "$real" 15
is "$EXIT_STATUS" 0 "the worker drains and exits 0"

done_testing

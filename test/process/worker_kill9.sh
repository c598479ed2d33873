#!/usr/bin/env bash
# kill -9 of a worker while its job runs: the job is retried by another
# worker once the lease expires, and succeeds.  Restarting the killed worker
# under the same name releases its jobs at once, without waiting for the
# lease.  The handler of a killed worker does not outlive it.
source "$(dirname "$0")/common.bash"
reset_db

# Part 1: lease expiry.  The victim's claims get a 2 s lease.
PGOPTIONS='-c tinytemp.lease_timeout=2s' start_worker victim --name k9-victim \
	--handler 'sim=simulate' --poll-interval 1
victim=$LAST_PID
job=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 4}')")
wait_sql "SELECT state = 'running' AND worker_id = (SELECT id FROM tinytemp.workers WHERE name = 'k9-victim')
          FROM tinytemp.jobs WHERE id = $job" 15
tap $? "the victim claimed the job"
victim_id=$(worker_id k9-victim)
kill9 "$victim"
killed_at=$(q -c "SELECT clock_timestamp()")

start_worker rescuer --name k9-rescuer --handler 'sim=simulate' --poll-interval 0.5
rescuer=$LAST_PID
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 30
tap $? "the job succeeded after the victim was killed"
rescuer_id=$(worker_id k9-rescuer)
is "$(q -c "SELECT string_agg(event || ':' || coalesce(worker_id::text, '-'), ' ' ORDER BY id)
            FROM tinytemp.jobs_history WHERE job_id = $job")" \
	"enqueued:- claimed:$victim_id lease_expired:$victim_id requeued:$victim_id claimed:$rescuer_id acked:$rescuer_id" \
	"history: claimed by the victim, lease expired, retried by the rescuer"
is "$(q -c "SELECT attempts FROM tinytemp.jobs WHERE id = $job")" 2 "the job took two attempts"
is "$(q -c "SELECT at >= '$killed_at'::timestamptz + interval '1 second' FROM tinytemp.jobs_history
            WHERE job_id = $job AND event = 'lease_expired'")" t "the retry waited for the lease to expire"

kill -TERM "$rescuer"
wait_exit "$rescuer" 15
is "$EXIT_STATUS" 0 "the rescuer drains and exits 0"

# Part 2: a restart under the same name.  The default 30 s lease would keep
# the job for half a minute; the new registration must release it at once.
cat > "$TMP/sleeper.sh" <<'SH'
#!/bin/sh
exec sleep 3
SH
chmod +x "$TMP/sleeper.sh"
start_worker victim2 --name k9-victim --handler "nap=$TMP/sleeper.sh" --poll-interval 1
victim=$LAST_PID
job=$(q -c "SELECT tinytemp_enqueue('nap')")
wait_log victim2 " job=$job started pid=" 15
tap $? "the restarted victim started a handler for a new job"
victim_id=$(worker_id k9-victim)
child=$(handler_pid victim2 "$job")
kill9 "$victim"
wait_gone "$child" 5
tap $? "the handler dies with its worker"

restart_at=$(date +%s.%N)
start_worker victim3 --name k9-victim --handler "nap=$TMP/sleeper.sh" --poll-interval 1
wait_sql "SELECT EXISTS (SELECT FROM tinytemp.jobs_history WHERE job_id = $job AND event = 'worker_restarted')" 10
tap $? "re-registering the name released the job"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 20
tap $? "the released job succeeded"
elapsed=$(echo "$(date +%s.%N) - $restart_at" | bc)
is "$(echo "$elapsed < 15" | bc)" 1 "well before the 30 s lease would have expired (${elapsed}s)"
new_id=$(worker_id k9-victim)
is "$(q -c "SELECT string_agg(event || ':' || coalesce(worker_id::text, '-'), ' ' ORDER BY id)
            FROM tinytemp.jobs_history WHERE job_id = $job")" \
	"enqueued:- claimed:$victim_id worker_restarted:$victim_id requeued:$victim_id claimed:$new_id acked:$new_id" \
	"history: released by the restart, then run by the new incarnation"

done_testing

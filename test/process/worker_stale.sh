#!/usr/bin/env bash
# A worker that stalls past its lease (SIGSTOP) while another worker takes
# the job over: when it wakes up, its report or heartbeat is refused with
# TT003; it logs that, discards the report (never retried), stops its
# handler, and carries on with new work.
source "$(dirname "$0")/common.bash"
reset_db

PGOPTIONS='-c tinytemp.lease_timeout=2s' start_worker stale --name st-stale \
	--handler 'short=/bin/sleep 1' --handler 'long=/bin/sleep 30' --handler 'sim=simulate' \
	--poll-interval 0.5
stale=$LAST_PID
wait_log stale " ready " 10

# 1. The handler ends while the worker is stopped: its ack is refused.
job=$(q -c "SELECT tinytemp_enqueue('short', params => '{\"runtime_s\": 0.5}')")
wait_log stale " job=$job started pid=" 10
tap $? "the stale worker started the first job"
bail_out
stale_id=$(worker_id st-stale)
kill -STOP "$stale"
start_worker fresh1 --name st-fresh --handler 'short=simulate' --handler 'long=simulate' --poll-interval 0.5
fresh=$LAST_PID
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 15
tap $? "another worker took the job over after the lease expired and finished it"
kill -TERM "$fresh"
wait_exit "$fresh" 10
kill -CONT "$stale"
wait_log stale " job=$job report-discarded .*does not hold job" 10
tap $? "the stale worker's ack was refused (TT003) and discarded"
fresh_id=$(q -c "SELECT id FROM tinytemp.workers WHERE name = 'st-fresh'")
is "$(q -c "SELECT string_agg(event || ':' || coalesce(worker_id::text, '-'), ' ' ORDER BY id)
            FROM tinytemp.jobs_history WHERE job_id = $job")" \
	"enqueued:- claimed:$stale_id lease_expired:$stale_id requeued:$stale_id claimed:$fresh_id acked:$fresh_id" \
	"the history holds nothing from the stale worker after its lease expired"
sleep 1
is "$(grep -c " job=$job \(acked\|failed\|report-discarded\)" "$TMP/stale.log")" 1 "the refused report was not retried"

# 2. The handler still runs when the worker wakes up: its heartbeat is refused
# and the handler stopped.
job=$(q -c "SELECT tinytemp_enqueue('long', params => '{\"runtime_s\": 0.5}')")
wait_log stale " job=$job started pid=" 10
tap $? "the stale worker started the second job"
bail_out
child=$(handler_pid stale "$job")
kill -STOP "$stale"
start_worker fresh2 --name st-fresh --handler 'short=simulate' --handler 'long=simulate' --poll-interval 0.5
fresh=$LAST_PID
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 15
tap $? "another worker finished the second job"
kill -CONT "$stale"
wait_log stale " job=$job lease-lost " 10
tap $? "the stale worker's heartbeat was refused (TT003)"
wait_gone "$child" 5
tap $? "and it stopped its handler"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $job AND event IN ('failed', 'acked')
            AND worker_id = $stale_id")" 0 "nothing was reported for the abandoned attempt"

# 3. The stale worker carries on.
kill -TERM "$fresh"
wait_exit "$fresh" 10
job=$(q -c "SELECT tinytemp_enqueue('sim')")
wait_sql "SELECT state = 'succeeded' AND worker_id = $stale_id FROM tinytemp.jobs WHERE id = $job" 10
tap $? "the once-stale worker goes on with new jobs"
kill -TERM "$stale"
wait_exit "$stale" 10
is "$EXIT_STATUS" 0 "and exits 0 on SIGTERM"

# 4. A second worker under the same name replaces the first: the first one's
# handler is stopped (its job was released) and it exits 1 at its next claim.
start_worker first --name st-twin --handler 'long=/bin/sleep 30' --poll-interval 0.5
first=$LAST_PID
job=$(q -c "SELECT tinytemp_enqueue('long')")
wait_log first " job=$job started pid=" 10
child=$(handler_pid first "$job")
start_worker second --name st-twin --handler 'long=simulate' --poll-interval 0.5
wait_exit "$first" 10
is "$EXIT_STATUS" 1 "a worker replaced by a newer one of its name exits 1"
grep -q " replaced " "$TMP/first.log"
tap $? "and says why"
wait_gone "$child" 5
tap $? "its handler is gone"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 10
tap $? "the newer worker ran the released job"

done_testing

#!/usr/bin/env bash
# kill -9 of the whole server under load.  Three tinytemp-worker processes
# run 1,500 short jobs through a real handler (test/process/handlers/
# short_job.sh) while a client enqueues them in batches; mid-run the
# postmaster and every one of its processes are killed with -9 at once, and
# the server is restarted a few seconds later.  The workers, still running,
# reconnect; the enqueuer sends again only the batch whose commit it never
# heard of.  In the end every job has succeeded with exactly one 'acked'
# event, nothing is left pending or running, and a job's handler never ran
# more often than the job was claimed.  How many handler runs were repeated
# (at-least-once delivery) is reported, not asserted.
#
# The test kills the server, so it runs its own throwaway cluster ("crash",
# port 54341), never the shared test cluster whose PGHOST/PGPORT the runner
# exports, and always stops it.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$(dirname "$0")/common.bash"

CLUSTER=crash
PORT=${TINYTEMP_CRASH_PORT:-54341}
DB=tinytemp_crash
JOBS=1500
BATCH=100
DOWN_S=3			# how long the server stays down
HANDLER=$TT_REPO/test/process/handlers/short_job.sh
export TT_RUNLOG=$TMP/runs.txt TT_JOB_SECONDS=0.1
: >"$TT_RUNLOG"

trap 'cleanup; tt_cluster_stop $CLUSTER' EXIT
t0=$(date +%s)
tt_cluster_start "$CLUSTER" "$PORT" "tinytemp.database = '$DB'
tinytemp.lease_timeout = '5s'
tinytemp.naptime = '500ms'" >/dev/null || { echo "not ok 1 - start the crash cluster"; exit 1; }
export PGDATABASE=$DB
$TT_PGBIN/createdb "$DB" && tt_cluster_restart "$CLUSTER" && q -c 'CREATE EXTENSION tinytemp'
tap $? "a cluster of its own on port $PORT, tinytemp preloaded, serving $DB"
bail_out

for w in 1 2 3; do
	start_worker "w$w" --name "crash-w$w" --slots 4 --cpus 64 --memory-mb 1000000 \
		--poll-interval 2 --handler "crash=$HANDLER"
	workers[w]=$LAST_PID
done
wait_sql "SELECT count(*) = 3 FROM tinytemp.workers WHERE state = 'active'" 15
tap $? "three workers registered"
bail_out

start_command enqueuer enqueue_batches crash $((JOBS / BATCH)) $BATCH 0.5
enqueuer=$LAST_PID

# Mid-run: a third of the jobs done, and handlers running.
wait_sql "SELECT count(*) >= $((JOBS / 3)) FROM tinytemp.jobs WHERE state = 'succeeded'" 90
tap $? "a third of the jobs succeeded before the crash"
bail_out
before=$(job_states "true")
kill9_cluster "$CLUSTER"
tap $? "kill -9 of the postmaster and all $((KILLED - 1)) of its processes"
echo "# at the crash: $before"
[[ "$before" =~ \ ([1-9][0-9]*)\ running ]]
tap $? "jobs were running at the crash"
bail_out

sleep "$DOWN_S"
dir=$(tt_datadir "$CLUSTER")
restarted_at=$(date +%s.%N)
tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 start >"$TMP/pg_ctl.log" 2>&1
tap $? "the server restarts"
bail_out
grep -q 'database system was not properly shut down; automatic recovery in progress' "$dir/server.log"
tap $? "after crash recovery"
wait_sql "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'" 15
tap $? "the tinytemp scheduler runs again"

wait_sql "SELECT count(*) = 3 FROM pg_stat_activity WHERE application_name LIKE 'tinytemp-worker crash-w%'" 60
tap $? "the three workers reconnected"
echo "# reconnected $(echo "$(date +%s.%N) - $restarted_at" | bc) s after the restart"

wait_exit "$enqueuer" 60
is "$EXIT_STATUS" 0 "the enqueuer finished every batch"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs")" "$JOBS" "exactly $JOBS jobs: no batch lost or enqueued twice"
wait_sql "SELECT count(*) FILTER (WHERE state <> 'succeeded') = 0 FROM tinytemp.jobs" 90
tap $? "every job succeeded"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE state IN ('pending', 'assigned', 'running')")" 0 \
	"no job is left pending or running"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs j
            WHERE (SELECT count(*) FROM tinytemp.jobs_history h
                   WHERE h.job_id = j.id AND h.event = 'acked') <> 1")" 0 \
	"each job has exactly one 'acked' event"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'acked'")" "$JOBS" \
	"$JOBS 'acked' events in all"

# The handlers' own record of their runs, against the claims in the history.
check_runs true
expired=$(q -c "SELECT round(extract(epoch FROM min(at) - to_timestamp($restarted_at))::numeric, 1) || ' to '
                   || round(extract(epoch FROM max(at) - to_timestamp($restarted_at))::numeric, 1)
                FROM tinytemp.jobs_history WHERE event = 'lease_expired'")
[ -z "$expired" ] || echo "# the leases expired from $expired s after the restart"
echo "# enqueue batches sent again: $(grep -c 'failed; 0 of' "$TMP/enqueuer.log"), found committed: $(grep -c "failed; $BATCH of" "$TMP/enqueuer.log")"

ok=0
for w in 1 2 3; do
	kill -0 "${workers[w]}" 2>/dev/null && grep -q ' disconnected ' "$TMP/w$w.log" || ok=1
done
tap $ok "the workers lived through the crash, and logged the disconnection"
drain_workers "${workers[1]}" "${workers[2]}" "${workers[3]}"
echo "# run time $(($(date +%s) - t0)) s"

done_testing

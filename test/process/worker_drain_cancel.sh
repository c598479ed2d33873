#!/usr/bin/env bash
# SIGTERM drains: no more claims, running jobs finish, exit 0.  Past the
# drain timeout, or at a second signal, running jobs are stopped and failed
# as retryable.  A cancelled job's handler is killed at the next heartbeat.
source "$(dirname "$0")/common.bash"
reset_db
sim=(--handler 'sim=simulate' --cpus 8 --memory-mb 100000 --poll-interval 0.5)

# 1. A clean drain.
start_worker drain --name dc-drain "${sim[@]}" --slots 2
w=$LAST_PID
a=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 2}')")
b=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 2}')")
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE id IN ($a, $b) AND state = 'running'" 10
tap $? "two jobs running"
kill -TERM "$w"
sleep 0.3
late=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')")
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 after draining"
is "$(q -c "SELECT string_agg(state, ' ' ORDER BY id) FROM tinytemp.jobs WHERE id IN ($a, $b)")" \
	"succeeded succeeded" "the running jobs finished and were acked"
is "$(q -c "SELECT state || ' ' || attempts FROM tinytemp.jobs WHERE id = $late")" "pending 0" \
	"a job enqueued during the drain was not claimed"
grep -q " draining " "$TMP/drain.log"
tap $? "the drain was logged"
q -c "DELETE FROM tinytemp.jobs WHERE id = $late"

# 2. Past the drain timeout the running job is failed as retryable.
start_worker timeout --name dc-timeout "${sim[@]}" --drain-timeout 1
w=$LAST_PID
j=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 30}')")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $j" 10
kill -TERM "$w"
start=$(date +%s.%N)
wait_exit "$w" 10
is "$EXIT_STATUS" 0 "past the drain timeout the worker still exits 0"
is "$(echo "$(date +%s.%N) - $start < 5" | bc)" 1 "soon after the drain timeout"
is "$(q -c "SELECT state || ' ' || attempts || ' ' || last_error FROM tinytemp.jobs WHERE id = $j")" \
	"pending 1 worker shutting down" "the unfinished job was failed as retryable"
q -c "DELETE FROM tinytemp.jobs WHERE id = $j"

# 3. A second signal hurries the drain.
start_worker hurry --name dc-hurry "${sim[@]}" --drain-timeout 60
w=$LAST_PID
j=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 30}')")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $j" 10
kill -TERM "$w"
sleep 0.5
kill -0 "$w" 2>/dev/null
tap $? "after one SIGTERM the worker waits for its job"
kill -INT "$w"
wait_exit "$w" 5
is "$EXIT_STATUS" 0 "a second signal makes it exit at once, with status 0"
is "$(q -c "SELECT state || ' ' || last_error FROM tinytemp.jobs WHERE id = $j")" \
	"pending worker shutting down" "the job it held is back in the queue"
q -c "DELETE FROM tinytemp.jobs WHERE id = $j"

# 4. Cancel kills the handler.  A 3 s lease means a heartbeat every second.
cat > "$TMP/deaf.sh" <<'SH'
#!/bin/sh
trap '' TERM
sleep 1000
SH
chmod +x "$TMP/deaf.sh"
PGOPTIONS='-c tinytemp.lease_timeout=3s' start_worker cancel --name dc-cancel "${sim[@]}" \
	--handler 'sleepy=/bin/sleep 1000' --handler "deaf=$TMP/deaf.sh" --kill-grace 1 --slots 2
w=$LAST_PID
j=$(q -c "SELECT tinytemp_enqueue('sleepy')")
d=$(q -c "SELECT tinytemp_enqueue('deaf')")
wait_log cancel " job=$j started pid=" 10 && wait_log cancel " job=$d started pid=" 10
tap $? "both handlers started"
pid=$(handler_pid cancel "$j")
dpid=$(handler_pid cancel "$d")
is "$(q -c "SELECT tinytemp_cancel($j) AND tinytemp_cancel($d)")" t "both jobs cancelled"
wait_gone "$pid" 5
tap $? "the handler was killed within a heartbeat"
wait_gone "$dpid" 6
tap $? "a handler that ignores SIGTERM was killed after the grace period"
grep -qE " job=$d killing " "$TMP/cancel.log"
tap $? "with SIGKILL"
is "$(q -c "SELECT string_agg(state, ' ' ORDER BY id) FROM tinytemp.jobs WHERE id IN ($j, $d)")" \
	"cancelled cancelled" "the jobs stay cancelled"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id IN ($j, $d) AND event IN ('failed', 'acked')")" 0 \
	"nothing was reported for them"
n=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $n" 10
tap $? "the worker goes on with the next job"
kill -TERM "$w"
wait_exit "$w" 10
is "$EXIT_STATUS" 0 "and exits 0 on SIGTERM"

done_testing

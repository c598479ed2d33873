#!/usr/bin/env bash
# Experiment tracking from handler output: stdout lines
# {"metrics": {...}, "step": N} reach tinytemp.job_metrics (per attempt,
# while the job runs and all of them before its ack or fail) and are neither
# progress nor the result; every stdout and stderr line reaches
# tinytemp.job_logs, within --log-max-lines and --log-max-bytes per attempt,
# past which one "(N more lines not kept)" line says what was dropped (0:
# no log); tinytemp.runs shows each metric's final, lowest and highest value.
# Against a server without tracking (tinytemp 0.5) the worker says so once
# and runs its jobs as before.
source "$(dirname "$0")/common.bash"
OLD_DB=tinytemp_tracking_old
trap 'q -d postgres -c "DROP DATABASE IF EXISTS $OLD_DB" >/dev/null 2>&1; cleanup' EXIT
reset_db

if [ -z "$(q -c "SELECT to_regprocedure('tinytemp_report_logs(bigint, bigint, jsonb)')")" ]; then
	echo "not ok 1 - the server has tinytemp_report_logs (tinytemp 0.6: run ALTER EXTENSION tinytemp UPDATE)"
	exit 1
fi

cat > "$TMP/track.sh" <<'SH'
#!/bin/sh
# track.sh MODE: what each kind of test job prints.
cat >/dev/null
case $1 in
track)
	echo '{"epoch": 1}'
	echo "warming up" >&2
	echo '{"metrics": {"loss": 0.9, "accuracy": 0.5}, "step": 1}'
	echo '{"metrics": {"loss": 0.5}, "step": 2}'
	sleep 2.5
	echo "almost done" >&2
	echo '{"metrics": {"lr": 0.01}}'
	echo '{"done": true}'
	echo '{"metrics": {"loss": 0.7, "accuracy": 0.8}, "step": 3}'
	;;
retry)
	if [ "$TINYTEMP_ATTEMPT" = 1 ]; then
		echo '{"metrics": {"loss": 0.9}, "step": 1}'
		echo '{"metrics": {"loss": 0.8}, "step": 2}'
		echo "diverged" >&2
		exit 3
	fi
	echo '{"metrics": {"loss": 0.6}, "step": 1}'
	echo '{"metrics": {"loss": 0.4}, "step": 2}'
	echo '{"metrics": {"loss": 0.45}, "step": 3}'
	;;
odd)
	echo '{"metrics": {"loss": "high"}, "step": 1}'
	;;
chatty)
	for i in $(seq 1 20); do echo "line $i"; done
	;;
wide)
	for c in a b c; do printf '%060d\n' 0 | tr 0 "$c"; done
	;;
esac
SH
chmod +x "$TMP/track.sh"
cat > "$TMP/handlers.conf" <<CONF
[track]
command = ./track.sh track

[retry]
command = ./track.sh retry

[odd]
command = ./track.sh odd

[chatty]
command = ./track.sh chatty

[wide]
command = ./track.sh wide

[training]
command = $TT_REPO/worker_client/handlers/train.py
CONF

"$WORKER" --handler x=simulate --log-max-lines 100001 >"$TMP/bad.out" 2>&1
is "$?" 2 "--log-max-lines past 100000 is refused"

OPTS='-c tinytemp.lease_timeout=1500ms -c tinytemp.retry_backoff_base=100ms'
PGOPTIONS=$OPTS start_worker w --name track-w --config "$TMP/handlers.conf" --slots 2 --poll-interval 0.5
w=$LAST_PID

# 1. Metrics and logs of a job that succeeds.
job=$(q -c "SELECT tinytemp_enqueue('track')")
wait_sql "SELECT (SELECT state FROM tinytemp.jobs WHERE id = $job) = 'running'
          AND (SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $job) = 3
          AND (SELECT count(*) FROM tinytemp.job_logs WHERE job_id = $job) = 4" 10
tap $? "the metrics and lines printed so far reach the tables with a heartbeat, while the job runs"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $job" 15
tap $? "the job succeeded"
bail_out
is "$(q -c "SELECT string_agg(attempt || '/' || coalesce(step::text, '-') || '/' || key || '=' || value, ' '
                              ORDER BY step NULLS LAST, key)
            FROM tinytemp.job_metrics WHERE job_id = $job")" \
	"1/1/accuracy=0.5 1/1/loss=0.9 1/2/loss=0.5 1/3/accuracy=0.8 1/3/loss=0.7 1/-/lr=0.01" \
	"every metric of every metrics line, with its step (none for a line without)"
is "$(q -c "SELECT result::text || ' ' || progress::text FROM tinytemp.jobs WHERE id = $job")" \
	'{"done": true} {"epoch": 1}' "metrics lines are neither the result nor progress"
is "$(q -c "SELECT string_agg(line, '|' ORDER BY line_no) FROM tinytemp.job_logs WHERE job_id = $job AND stream = 'stdout'")" \
	'{"epoch": 1}|{"metrics": {"loss": 0.9, "accuracy": 0.5}, "step": 1}|{"metrics": {"loss": 0.5}, "step": 2}|{"metrics": {"lr": 0.01}}|{"done": true}|{"metrics": {"loss": 0.7, "accuracy": 0.8}, "step": 3}' \
	"every stdout line is in the log, in order"
is "$(q -c "SELECT string_agg(line, '|' ORDER BY line_no) FROM tinytemp.job_logs WHERE job_id = $job AND stream = 'stderr'")" \
	'warming up|almost done' "and every stderr line"
is "$(q -c "SELECT count(*) || ' ' || min(line_no) || ' ' || max(line_no) || ' ' || bool_and(attempt = 1)
            FROM tinytemp.job_logs WHERE job_id = $job")" "8 1 8 true" "8 lines numbered 1 to 8, all of attempt 1"
is "$(q -c "SELECT bool_and(l.at BETWEEN j.started_at AND j.finished_at)
            FROM tinytemp.job_logs l JOIN tinytemp.jobs j ON j.id = l.job_id WHERE l.job_id = $job")" t \
	"each line's time is when it was read, within the run"
is "$(q -c "SELECT (SELECT max(at) FROM tinytemp.job_metrics WHERE job_id = $job AND step = 3)
                   - (SELECT min(at) FROM tinytemp.job_metrics WHERE job_id = $job) >= interval '1 s'")" t \
	"metrics carry the time they were printed, not the time they were sent"
# Each row's transaction began before the ack's: they were written before the job finished.
is "$(q -c "SELECT max(x.xmin::text::bigint) < (SELECT h.xmin::text::bigint FROM tinytemp.jobs_history h
                                               WHERE h.job_id = $job AND h.event = 'acked')
            FROM (SELECT xmin FROM tinytemp.job_metrics WHERE job_id = $job
                  UNION ALL SELECT xmin FROM tinytemp.job_logs WHERE job_id = $job) x")" t \
	"all of them were written before the ack"
is "$(q -c "SELECT metrics_final::text || ' ' || metrics_min::text || ' ' || metrics_max::text
            FROM tinytemp.runs WHERE id = $job")" \
	'{"lr": 0.01, "loss": 0.7, "accuracy": 0.8} {"lr": 0.01, "loss": 0.5, "accuracy": 0.5} {"lr": 0.01, "loss": 0.9, "accuracy": 0.8}' \
	"tinytemp.runs shows each metric's final, lowest and highest value"

# 2. A job that fails once and succeeds at its second attempt.
retry=$(q -c "SELECT tinytemp_enqueue('retry', max_attempts => 3)")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $retry" 20
tap $? "the retried job succeeded"
is "$(q -c "SELECT string_agg(attempt || '/' || step || '=' || value, ' ' ORDER BY attempt, step)
            FROM tinytemp.job_metrics WHERE job_id = $retry AND key = 'loss'")" \
	"1/1=0.9 1/2=0.8 2/1=0.6 2/2=0.4 2/3=0.45" "each attempt's metrics under its attempt number"
is "$(q -c "SELECT max(x.xmin::text::bigint) < (SELECT h.xmin::text::bigint FROM tinytemp.jobs_history h
                                               WHERE h.job_id = $retry AND h.event = 'failed')
            FROM (SELECT xmin FROM tinytemp.job_metrics WHERE job_id = $retry AND attempt = 1
                  UNION ALL SELECT xmin FROM tinytemp.job_logs WHERE job_id = $retry AND attempt = 1) x")" t \
	"the failed attempt's metrics and lines were written before its failure"
is "$(q -c "SELECT string_agg(attempt || ':' || line_no || ':' || stream || ':' || left(line, 11), ' ' ORDER BY attempt, line_no)
            FROM tinytemp.job_logs WHERE job_id = $retry AND (attempt = 2 OR stream = 'stderr')")" \
	'1:3:stderr:diverged 2:1:stdout:{"metrics": 2:2:stdout:{"metrics": 2:3:stdout:{"metrics":' \
	"each attempt's log is numbered from 1"
is "$(q -c "SELECT (metrics_final->>'loss') || ' ' || (metrics_min->>'loss') || ' ' || (metrics_max->>'loss')
            FROM tinytemp.runs WHERE id = $retry")" "0.45 0.4 0.9" \
	"tinytemp.runs: final of the last attempt's last step, lowest and highest of all"
is "$(q -c "SELECT result FROM tinytemp.jobs WHERE id = $retry")" "" "a job that printed only metrics lines has no result"

# 3. A line with a "metrics" key that is not a metrics object is an ordinary line.
odd=$(q -c "SELECT tinytemp_enqueue('odd')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $odd" 15
tap $? "a job printing a malformed metrics line succeeded"
is "$(q -c "SELECT (SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $odd) || ' ' || result::text
            FROM tinytemp.jobs WHERE id = $odd")" '0 {"step": 1, "metrics": {"loss": "high"}}' \
	"it sends no metric and is the result"
grep -qE " job=$odd metrics-ignored " "$TMP/w.log"
tap $? "the worker says why it was not taken as metrics"

# 4. The demo training handler reports loss and accuracy per epoch.
train=$(q -c "SELECT tinytemp_enqueue('training', epochs => 3, dataset_size => 300)")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $train" 60
tap $? "a training job succeeded"
is "$(q -c "SELECT string_agg(step || ':' || key, ' ' ORDER BY step, key) FROM tinytemp.job_metrics WHERE job_id = $train")" \
	"1:accuracy 1:loss 2:accuracy 2:loss 3:accuracy 3:loss" "it reported loss and accuracy after each of its 3 epochs"
is "$(q -c "SELECT (r.metrics_final->'accuracy' = j.result->'accuracy' AND r.metrics_final->'loss' = j.result->'loss')
                   || ' ' || (j.result ? 'samples') || ' ' || r.last_step
            FROM tinytemp.runs r JOIN tinytemp.jobs j USING (id) WHERE id = $train")" "true true 3" \
	"its final metrics are those of its result, which is the result line"

kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

# 5. The bounds of a job's log: 5 lines and 100 bytes per attempt.
PGOPTIONS=$OPTS start_worker w2 --name track-w2 --config "$TMP/handlers.conf" --poll-interval 0.5 \
	--log-max-lines 5 --log-max-bytes 100
w2=$LAST_PID
chatty=$(q -c "SELECT tinytemp_enqueue('chatty')")
wide=$(q -c "SELECT tinytemp_enqueue('wide')")
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE id IN ($chatty, $wide) AND state = 'succeeded'" 15
tap $? "a chatty job and one with wide lines succeeded"
is "$(q -c "SELECT string_agg(line_no || ':' || stream || ':' || line, '|' ORDER BY line_no) FROM tinytemp.job_logs WHERE job_id = $chatty")" \
	"1:stdout:line 1|2:stdout:line 2|3:stdout:line 3|4:stdout:line 4|5:stdout:line 5|6:stderr:(15 more lines not kept)" \
	"--log-max-lines 5: 5 lines, then one line counting the 15 not kept"
is "$(q -c "SELECT string_agg(line_no || ':' || stream || ':' || length(line) || ':' || left(line, 3), '|' ORDER BY line_no)
            FROM tinytemp.job_logs WHERE job_id = $wide")" \
	"1:stdout:60:aaa|2:stderr:23:(2 " "--log-max-bytes 100: one line of 60 bytes, then the count of the 2 not kept"
is "$(q -c "SELECT line FROM tinytemp.job_logs WHERE job_id = $wide AND line_no = 2")" "(2 more lines not kept)" \
	"which says so"
kill -TERM "$w2"
wait_exit "$w2" 15
is "$EXIT_STATUS" 0 "the second worker exits 0 on SIGTERM"

# --log-max-lines 0: no log at all (not even the count of lines not kept); metrics still go.
PGOPTIONS=$OPTS start_worker w4 --name track-w4 --config "$TMP/handlers.conf" --poll-interval 0.5 --log-max-lines 0
w4=$LAST_PID
nolog=$(q -c "SELECT tinytemp_enqueue('retry', max_attempts => 3)")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $nolog" 15
tap $? "a job of a worker with --log-max-lines 0 succeeded"
is "$(q -c "SELECT (SELECT count(*) FROM tinytemp.job_logs WHERE job_id = $nolog) || ' '
                   || (SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $nolog)")" "0 5" \
	"no line of its log was sent, and its 5 metrics were"
kill -TERM "$w4"
wait_exit "$w4" 15
is "$EXIT_STATUS" 0 "that worker exits 0 on SIGTERM"

# 6. A server without experiment tracking: said once, and jobs run as before.
PGOPTIONS='-c client_min_messages=warning' q -d postgres -c "DROP DATABASE IF EXISTS $OLD_DB" \
	-c "CREATE DATABASE $OLD_DB" >/dev/null
q -d "$OLD_DB" -c "CREATE EXTENSION tinytemp VERSION '0.5'" >/dev/null
is "$(q -d "$OLD_DB" -c "SELECT to_regprocedure('tinytemp_report_metrics(bigint, bigint, jsonb)') IS NULL")" t \
	"database $OLD_DB has tinytemp 0.5, without tracking"
PGOPTIONS=$OPTS start_worker w3 --conninfo "dbname=$OLD_DB" --name track-w3 --config "$TMP/handlers.conf" \
	--poll-interval 0.5
w3=$LAST_PID
old1=$(q -d "$OLD_DB" -c "SELECT tinytemp_enqueue('track')")
old2=$(q -d "$OLD_DB" -c "SELECT tinytemp_enqueue('retry', max_attempts => 3)")
for ((i = 0; i < 100; i++)); do
	[ "$(q -d "$OLD_DB" -c "SELECT count(*) FROM tinytemp.jobs WHERE state IN ('succeeded', 'failed')")" = 2 ] && break
	sleep 0.2
done
is "$(q -d "$OLD_DB" -c "SELECT string_agg(state || ' ' || coalesce(result::text, '-'), ', ' ORDER BY id)
                         FROM tinytemp.jobs WHERE id IN ($old1, $old2)")" 'succeeded {"done": true}, succeeded -' \
	"both jobs ran as before, metrics lines still not the result"
is "$(grep -c 'the server lacks experiment tracking' "$TMP/w3.log")" 1 "the worker said once that the server lacks tracking"
kill -TERM "$w3"
wait_exit "$w3" 15
is "$EXIT_STATUS" 0 "that worker exits 0 on SIGTERM"
q -d postgres -c "DROP DATABASE $OLD_DB" >/dev/null

done_testing

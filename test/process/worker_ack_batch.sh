#!/usr/bin/env bash
# Batched acks: jobs that have ended by the time the worker sends its
# reports are acked together with tinytemp_ack_many, in one transaction;
# each result stays paired with its own job; and a batch refused with TT003
# (one job moved on) falls back to acking one by one, so that the jobs
# still held are acked and the stale one is dropped.
source "$(dirname "$0")/common.bash"
reset_db

# 1. Zero-runtime simulate jobs through 8 slots end together.
start_worker sim --name ab-sim --handler 'sim=simulate' --slots 8 --cpus 64 --memory-mb 1000000 --poll-interval 1
sim=$LAST_PID
wait_log sim " ready " 10
tap $? "the worker is ready"
bail_out
q -c "SELECT count(tinytemp_enqueue('sim', params => jsonb_build_object('runtime_s', 0, 'n', g)))
      FROM generate_series(1, 200) g" >/dev/null
wait_sql "SELECT count(*) = 200 FROM tinytemp.jobs WHERE state = 'succeeded'" 30
tap $? "all 200 jobs succeeded"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE attempts <> 1 OR state <> 'succeeded'
            OR result IS DISTINCT FROM '{\"simulated\": true, \"runtime_s\": 0}'")" 0 \
	"every job ran one attempt and has its result"
is "$(q -c "SELECT count(*) FROM (SELECT job_id FROM tinytemp.jobs_history WHERE event = 'acked'
            GROUP BY job_id HAVING count(*) <> 1) x")" 0 "every job was acked exactly once"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event NOT IN ('enqueued', 'claimed', 'acked')")" 0 \
	"no failure, expiry or requeue in the history"
# An ack's history row carries its transaction's start time: several jobs
# under one timestamp were acked by one statement.
batched=$(q -c "SELECT count(*) FILTER (WHERE n > 1) FROM (SELECT count(*) AS n FROM tinytemp.jobs_history
                WHERE event = 'acked' GROUP BY worker_id, at) x")
[ "$batched" -gt 0 ]
tap $? "some jobs were acked in the same transaction ($batched batches)"
grep -qE " acked after [0-9.]+s with a result batch=[0-9]+" "$TMP/sim.log"
tap $? "the log names the batched acks"
# Workers claim any job_type: this one must be gone before the next part.
kill -TERM "$sim"
wait_exit "$sim" 10
is "$EXIT_STATUS" 0 "the simulate worker drains and exits 0"

# 2. Results of real handlers, released together, stay paired with their jobs:
# an object full of quotes, commas, braces and backslashes, the JSON null, and no result.
cat > "$TMP/pair.sh" <<'SH'
#!/bin/sh
while [ ! -e "$1" ]; do sleep 0.02; done
case $((TINYTEMP_JOB_ID % 3)) in
0) printf '{"job": %s, "s": "q\\"u,o{t}e\\\\ \303\251 \\u00e8"}\n' "$TINYTEMP_JOB_ID" ;;
1) echo null ;;
*) echo 'not json' ;;
esac
SH
chmod +x "$TMP/pair.sh"
start_worker pair --name ab-pair --handler "pair=$TMP/pair.sh $TMP/go" --slots 8 --cpus 64 --memory-mb 1000000 --poll-interval 0.5
pair=$LAST_PID
wait_log pair " ready " 10
q -c "SELECT count(tinytemp_enqueue('pair')) FROM generate_series(1, 24)" >/dev/null
wait_sql "SELECT count(*) = 8 FROM tinytemp.jobs WHERE job_type = 'pair' AND state = 'running'" 15
tap $? "eight handlers wait for the signal"
touch "$TMP/go"
wait_sql "SELECT count(*) = 24 FROM tinytemp.jobs WHERE job_type = 'pair' AND state = 'succeeded'" 30
tap $? "all 24 jobs succeeded"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE job_type = 'pair' AND result IS DISTINCT FROM
            CASE id % 3 WHEN 0 THEN jsonb_build_object('job', id, 's', 'q\"u,o{t}e\\ é è')
                        WHEN 1 THEN 'null'::jsonb END")" 0 \
	"each job got its own result, JSON null and none included"
batched=$(q -c "SELECT count(*) FILTER (WHERE n > 1) FROM (SELECT count(*) AS n FROM tinytemp.jobs_history h
                JOIN tinytemp.jobs j ON j.id = h.job_id AND j.job_type = 'pair'
                WHERE event = 'acked' GROUP BY h.worker_id, h.at) x")
[ "$batched" -gt 0 ]
tap $? "handlers that ended together were acked together ($batched batches)"
kill -TERM "$pair"
wait_exit "$pair" 10
is "$EXIT_STATUS" 0 "the handler worker drains and exits 0"

# 3. A batch with one stale job: the worker stalls past its lease (SIGSTOP)
# while one job's lease is kept alive for it and the other's expires.
rm -f "$TMP/go2"
PGOPTIONS='-c tinytemp.lease_timeout=2s' start_worker stale --name ab-stale --log-max-lines 0 \
	--handler "hold=$TMP/pair.sh $TMP/go2" --slots 2 --poll-interval 0.5
stale=$LAST_PID
wait_log stale " ready " 10
q -c "SELECT count(tinytemp_enqueue('hold')) FROM generate_series(1, 2)" >/dev/null
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE job_type = 'hold' AND state = 'running'" 15
tap $? "the worker runs both jobs"
bail_out
held=$(q -c "SELECT min(id) FROM tinytemp.jobs WHERE job_type = 'hold'")
lost=$(q -c "SELECT max(id) FROM tinytemp.jobs WHERE job_type = 'hold'")
stale_id=$(worker_id ab-stale)
kill -STOP "$stale"
touch "$TMP/keep"
( while [ -e "$TMP/keep" ]; do
	q -c "SELECT tinytemp_heartbeat($held, $stale_id)" >/dev/null 2>&1
	sleep 0.3
  done ) &
keeper=$!
wait_sql "SELECT state <> 'running' FROM tinytemp.jobs WHERE id = $lost" 15
tap $? "the other job's lease expired"
touch "$TMP/go2"
sleep 0.5
rm -f "$TMP/keep"
wait "$keeper"
kill -CONT "$stale"
wait_log stale " batch-ack-refused .*does not hold job $lost" 10
tap $? "the batch was refused with TT003"
wait_log stale " job=$lost report-discarded .*does not hold job" 10
tap $? "the stale job's report was discarded"
wait_sql "SELECT state = 'succeeded' AND attempts = 1 FROM tinytemp.jobs WHERE id = $held" 10
tap $? "the job still held was acked one by one"
is "$(q -c "SELECT string_agg(event || ':' || coalesce(worker_id::text, '-'), ' ' ORDER BY id)
            FROM (SELECT * FROM tinytemp.jobs_history WHERE job_id = $lost ORDER BY id LIMIT 4) x")" \
	"enqueued:- claimed:$stale_id lease_expired:$stale_id requeued:$stale_id" \
	"nothing was acked for the stale job's lost attempt"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history h WHERE job_id = $lost AND event = 'acked'
            AND NOT EXISTS (SELECT FROM tinytemp.jobs_history c WHERE c.job_id = h.job_id
                            AND c.event = 'claimed' AND c.id < h.id AND c.id > (SELECT min(id)
                            FROM tinytemp.jobs_history WHERE job_id = $lost AND event = 'claimed'))")" 0 \
	"the stale job is acked only after a new claim, if at all"
kill -TERM "$stale"
wait_exit "$stale" 15
is "$EXIT_STATUS" 0 "the worker drains and exits 0"

done_testing

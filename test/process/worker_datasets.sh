#!/usr/bin/env bash
# Output datasets from handler output: stdout lines {"dataset": {...}} are
# neither progress nor the result; the worker registers them with
# tinytemp_register_dataset, all of a job's together and in the transaction
# of its ack, only when the handler exits 0.  A failed, timed-out or
# refused attempt registers none of them; a refused dataset fails the job
# for good with the server's reason.  At most 100 per attempt.  A job's
# resolved inputs reach its handler in TINYTEMP_INPUTS and on stdin, and a
# job that waits for a dataset runs once a handler has registered it.
# Against a server without datasets (tinytemp 0.6) the worker says so once
# and acks the jobs as before.
source "$(dirname "$0")/common.bash"
OLD_DB=tinytemp_datasets_old
trap 'q -d postgres -c "DROP DATABASE IF EXISTS $OLD_DB" >/dev/null 2>&1; cleanup' EXIT
reset_db
OUT=$TMP/out
mkdir -p "$OUT"

if [ -z "$(q -c "SELECT to_regprocedure('tinytemp_register_dataset(bigint, bigint, jsonb)')")" ]; then
	echo "not ok 1 - the server has tinytemp_register_dataset (tinytemp 0.7: run ALTER EXTENSION tinytemp UPDATE)"
	exit 1
fi
q -c 'TRUNCATE tinytemp.datasets' >/dev/null

cat > "$TMP/ds.sh" <<'SH'
#!/bin/sh
# ds.sh MODE: what each kind of test job prints; uris are made unique by the job's id.
cat > "$OUT/stdin.$TINYTEMP_JOB_ID.json"
j=$TINYTEMP_JOB_ID
case $1 in
two)
	echo '{"epoch": 1}'
	sleep 1	# a heartbeat sends it as progress
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/'"$j"'", "rows": 1234, "bytes": 56789}}'
	echo '{"done": true}'
	echo '{"dataset": {"name": "clicks_clean", "layer": "processed", "uri": "/data/processed/clicks/'"$j"'",'\
' "format": "csv", "schema": {"user": "bigint"}, "rows": 1200, "checksum": "sha256:ab", "meta": {"by": "ds.sh"}}}'
	;;
fail)
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/fail-'"$j"'"}}'
	echo "broken" >&2
	exit 1
	;;
slow)
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/slow-'"$j"'"}}'
	sleep 30
	;;
bad)
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/bad-'"$j"'"}}'
	echo '{"dataset": {"name": "clicks_gold", "layer": "gold", "uri": "/data/gold/'"$j"'"}}'
	echo '{"done": true}'
	;;
dup)
	echo '{"dataset": {"name": "clicks_copy", "layer": "raw", "uri": "/data/raw/clicks/copy-'"$j"'"}}'
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "'"$2"'"}}'
	;;
bigresult)
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/big-'"$j"'"}}'
	echo '{"x": 1e1000000}'
	;;
cancelled)
	echo '{"dataset": {"name": "clicks", "layer": "raw", "uri": "/data/raw/clicks/cancelled-'"$j"'"}}'
	psql -qXAt -c "SELECT tinytemp_cancel($j)" >/dev/null
	;;
notobj)
	echo '{"dataset": "clicks", "rows": 3}'
	;;
many)
	i=0
	while [ $i -le 100 ]; do
		echo '{"dataset": {"name": "part", "layer": "raw", "uri": "/data/raw/part/'"$j-$i"'"}}'
		i=$((i + 1))
	done
	;;
inputs)
	printf '%s' "${TINYTEMP_INPUTS-unset}" > "$OUT/inputs.$j.txt"
	echo '{"dataset": {"name": "report", "layer": "curated", "uri": "/data/curated/report/'"$j"'"}}'
	;;
esac
SH
chmod +x "$TMP/ds.sh"
# handlers_conf DIR: the handlers, writing what they got under DIR.
handlers_conf() {
	local t
	for t in two fail bad bigresult cancelled notobj many inputs; do
		printf '[%s]\ncommand = ./ds.sh %s\nenv = OUT=%s\n\n' "$t" "$t" "$1"
	done
	printf '[slow]\ncommand = ./ds.sh slow\nenv = OUT=%s\ntimeout = 1\nkill_grace = 0.5\n\n' "$1"
	printf '[dup]\ncommand = ./ds.sh dup /data/raw/clicks/source\nenv = OUT=%s\n' "$1"
}
handlers_conf "$OUT" > "$TMP/handlers.conf"
mkdir -p "$OUT/old"
handlers_conf "$OUT/old" > "$TMP/handlers_old.conf"

OPTS='-c tinytemp.lease_timeout=1500ms -c tinytemp.retry_backoff_base=100ms'
# No job log, so that a job no longer held meets TT003 at the registration itself.
PGOPTIONS=$OPTS start_worker w --name ds-w --config "$TMP/handlers.conf" --slots 2 --poll-interval 0.5 \
	--log-max-lines 0
w=$LAST_PID

# 1. Two datasets of a job that succeeds, twice: versions 1 then 2 of each name.
first=$(q -c "SELECT tinytemp_enqueue('two')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $first" 15
tap $? "a job printing two dataset lines succeeded"
bail_out
second=$(q -c "SELECT tinytemp_enqueue('two')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $second" 15
tap $? "a second one too"
is "$(q -c "SELECT string_agg(name || ' ' || version || ' ' || layer || ' ' || uri || ' ' || coalesce(rows::text, '-')
                              || ' ' || (created_by_job = CASE version WHEN 1 THEN $first ELSE $second END),
                              ', ' ORDER BY created_by_job, name)
            FROM tinytemp.datasets")" \
	"clicks 1 raw /data/raw/clicks/$first 1234 true, clicks_clean 1 processed /data/processed/clicks/$first 1200 true, clicks 2 raw /data/raw/clicks/$second 1234 true, clicks_clean 2 processed /data/processed/clicks/$second 1200 true" \
	"both datasets of each job are registered, versions numbered per name, with the job that made them"
is "$(q -c "SELECT format || ' ' || schema::text || ' ' || meta::text || ' ' || checksum || ' ' || created_attempt
            FROM tinytemp.datasets WHERE created_by_job = $first AND name = 'clicks_clean'")" \
	'csv {"user": "bigint"} {"by": "ds.sh"} sha256:ab 1' "every field of the dataset line is kept"
is "$(q -c "SELECT format FROM tinytemp.datasets WHERE created_by_job = $first AND name = 'clicks'")" parquet \
	"a dataset without a format is parquet"
is "$(q -c "SELECT result::text || ' ' || progress::text FROM tinytemp.jobs WHERE id = $first")" \
	'{"done": true} {"epoch": 1}' "dataset lines are neither the result nor progress"
# Registered in the ack's own transaction, while the job was still held.
is "$(q -c "SELECT bool_and(d.xmin::text = h.xmin::text) FROM tinytemp.datasets d, tinytemp.jobs_history h
            WHERE d.created_by_job IN ($first, $second) AND h.job_id = d.created_by_job AND h.event = 'acked'")" t \
	"the datasets were registered in the transaction of the job's ack"
grep -qE " job=$first dataset-registered name=clicks\$" "$TMP/w.log" &&
	grep -qE " job=$second dataset-registered name=clicks_clean version=2\$" "$TMP/w.log"
tap $? "the worker logs each registration"

# 2. Attempts that fail register nothing: a non-zero exit, a timeout.
failed=$(q -c "SELECT tinytemp_enqueue('fail', max_attempts => 2)")
slow=$(q -c "SELECT tinytemp_enqueue('slow', max_attempts => 1)")
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE id IN ($failed, $slow) AND state = 'failed'" 20
tap $? "a failing job and one that times out failed"
is "$(q -c "SELECT attempts FROM tinytemp.jobs WHERE id = $failed")" 2 "the failing one was retried"
is "$(q -c "SELECT count(*) FROM tinytemp.datasets WHERE created_by_job IN ($failed, $slow)")" 0 \
	"neither registered the dataset it printed"

# 3. A refused dataset: none of the job's datasets is registered, and the job fails for good.
bad=$(q -c "SELECT tinytemp_enqueue('bad', max_attempts => 3)")
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $bad" 15
tap $? "a job printing a dataset with a bad layer failed"
is "$(q -c "SELECT attempts || ' ' || last_error FROM tinytemp.jobs WHERE id = $bad")" \
	'1 dataset registration refused: "layer" of dataset 2 must be "raw", "processed" or "curated"' \
	"at its first attempt, not retryable, with the server's reason"
is "$(q -c "SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $bad")" 0 \
	"its valid dataset was not registered either"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $bad AND event = 'acked'")" 0 "it was not acked"

# A uri registered already (a source dataset) is refused the same way.
q -c "SELECT tinytemp_register_dataset(NULL, NULL, '{\"name\": \"clicks\", \"layer\": \"raw\", \"uri\": \"/data/raw/clicks/source\"}')" >/dev/null
dup=$(q -c "SELECT tinytemp_enqueue('dup', max_attempts => 3)")
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $dup" 15
tap $? "a job printing a uri registered already failed"
is "$(q -c "SELECT attempts || ' ' || (last_error LIKE 'dataset registration refused: uri \"/data/raw/clicks/source\" is registered already%')
                   || ' ' || (SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $dup)
            FROM tinytemp.jobs WHERE id = $dup")" "1 true 0" "for good, registering neither of its two datasets"

# 4. A result the server refuses (a number jsonb cannot hold) gives way to none; the datasets still go.
big=$(q -c "SELECT tinytemp_enqueue('bigresult')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $big" 15
tap $? "a job whose last line jsonb refuses succeeded"
is "$(q -c "SELECT (result IS NULL) || ' ' || (SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $big)
            FROM tinytemp.jobs WHERE id = $big")" "true 1" "without a result, its dataset registered"
grep -qE " job=$big result-refused .*overflows numeric format.*; acked without a result" "$TMP/w.log"
tap $? "the worker says the result was refused"

# A job that is no longer held when its handler exits 0 (cancelled meanwhile): nothing registered, no report.
cancelled=$(q -c "SELECT tinytemp_enqueue('cancelled')")
wait_log w " job=$cancelled (report-discarded|cancelled) " 15
tap $? "the worker drops the report of a job cancelled before its ack"
is "$(q -c "SELECT state || ' ' || (SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $cancelled)
            FROM tinytemp.jobs WHERE id = $cancelled")" "cancelled 0" "and its dataset was not registered"

# 5. A "dataset" key whose value is not an object: an ordinary line.
notobj=$(q -c "SELECT tinytemp_enqueue('notobj')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $notobj" 15
tap $? "a job printing {\"dataset\": \"clicks\"} succeeded"
is "$(q -c "SELECT result::text FROM tinytemp.jobs WHERE id = $notobj")" '{"rows": 3, "dataset": "clicks"}' \
	"that line is its result"
grep -qE " job=$notobj dataset-ignored " "$TMP/w.log"
tap $? "the worker says why it was not taken as a dataset"

# 6. At most 100 datasets per attempt.
many=$(q -c "SELECT tinytemp_enqueue('many')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $many" 20
tap $? "a job printing 101 dataset lines succeeded"
is "$(q -c "SELECT count(*) || ' ' || min(version) || ' ' || max(version) || ' ' || max(uri)
            FROM tinytemp.datasets WHERE created_by_job = $many")" "100 1 100 /data/raw/part/$many-99" \
	"the first 100 were registered"
is "$(grep -c " job=$many datasets-ignored " "$TMP/w.log")" 2 \
	"the worker said so when the 101st came, and how many it ignored with the registration"

# 7. Inputs: resolved ones reach the handler; a job waiting for a dataset runs once it is registered.
consumer=$(q -c "SELECT tinytemp_enqueue('inputs', inputs => ARRAY['clicks@2', 'clicks_clean'])")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $consumer" 15
tap $? "a job reading two datasets succeeded"
is "$(qv i "$(cat "$OUT/inputs.$consumer.txt")" "SELECT :'i'::jsonb = inputs AND jsonb_array_length(inputs) = 2
                                                FROM tinytemp.jobs WHERE id = $consumer")" t \
	"TINYTEMP_INPUTS is the job's resolved inputs"
is "$(q -c "SELECT string_agg((e->>'name') || '@' || (e->>'version') || ' ' || (e->>'layer') || ' ' || (e ? 'id'), ', ')
            FROM tinytemp.jobs j, jsonb_array_elements(j.inputs) e WHERE j.id = $consumer")" \
	"clicks@2 raw true, clicks_clean@2 processed true" "which name the versions and carry their ids"
is "$(qv s "$(cat "$OUT/stdin.$consumer.json")" "SELECT (:'s'::jsonb)->'inputs' = inputs FROM tinytemp.jobs WHERE id = $consumer")" t \
	"and are in the row on stdin"
is "$(q -c "SELECT string_agg(name || '@' || version || ' ' || depth, ', ' ORDER BY name)
            FROM tinytemp.lineage WHERE job_id = $consumer")" "clicks@2 1, clicks_clean@2 1" "tinytemp.lineage shows what it read"

waiter=$(q -c "SELECT tinytemp_enqueue('inputs', inputs => ARRAY['report@2'])")
sleep 1.5
is "$(q -c "SELECT state || ' ' || array_to_string(awaits_data, ',') FROM tinytemp.jobs WHERE id = $waiter")" \
	"pending report@2" "a job reading a version not yet registered waits"
maker=$(q -c "SELECT tinytemp_enqueue('inputs')")
wait_sql "SELECT count(*) = 2 FROM tinytemp.jobs WHERE id IN ($maker, $waiter) AND state = 'succeeded'" 20
tap $? "once another job registered report@2 (the consumer made report@1), the waiting job ran"
is "$(q -c "SELECT string_agg(version || ' ' || created_by_job, ', ' ORDER BY version)
            FROM tinytemp.datasets WHERE name = 'report'")" "1 $consumer, 2 $maker, 3 $waiter" "report's versions and their makers (the waiting job made the third)"
is "$(qv i "$(cat "$OUT/inputs.$waiter.txt")" "SELECT (:'i'::jsonb)->0->>'uri' FROM tinytemp.jobs WHERE id = $waiter")" \
	"/data/curated/report/$maker" "the waiting job got the version the other one registered"
is "$(cat "$OUT/inputs.$maker.txt")" unset "a job without inputs has no TINYTEMP_INPUTS"
is "$(q -c "SELECT string_agg(name || '@' || version || ' ' || depth, ', ' ORDER BY depth, name, version)
            FROM tinytemp.lineage WHERE job_id = $waiter")" "report@2 1" \
	"its lineage: the report it read (whose maker read nothing)"

kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

# 8. A server without datasets: said once, and jobs acked as before.
PGOPTIONS='-c client_min_messages=warning' q -d postgres -c "DROP DATABASE IF EXISTS $OLD_DB" \
	-c "CREATE DATABASE $OLD_DB" >/dev/null
q -d "$OLD_DB" -c "CREATE EXTENSION tinytemp VERSION '0.6'" >/dev/null
is "$(q -d "$OLD_DB" -c "SELECT to_regprocedure('tinytemp_register_dataset(bigint, bigint, jsonb)') IS NULL")" t \
	"database $OLD_DB has tinytemp 0.6, without datasets"
PGOPTIONS=$OPTS start_worker w2 --conninfo "dbname=$OLD_DB" --name ds-w2 --config "$TMP/handlers_old.conf" \
	--poll-interval 0.5
w2=$LAST_PID
old1=$(q -d "$OLD_DB" -c "SELECT tinytemp_enqueue('two')")
old2=$(q -d "$OLD_DB" -c "SELECT tinytemp_enqueue('bad')")
for ((i = 0; i < 100; i++)); do
	[ "$(q -d "$OLD_DB" -c "SELECT count(*) FROM tinytemp.jobs WHERE state IN ('succeeded', 'failed')")" = 2 ] && break
	sleep 0.2
done
is "$(q -d "$OLD_DB" -c "SELECT string_agg(state || ' ' || coalesce(result::text, '-'), ', ' ORDER BY id)
                         FROM tinytemp.jobs WHERE id IN ($old1, $old2)")" 'succeeded {"done": true}, succeeded {"done": true}' \
	"both jobs were acked as before, dataset lines still not the result"
is "$(grep -c 'the server has no dataset registry (' "$TMP/w2.log")" 1 "the worker said once that the server has no dataset registry"
is "$(grep -cE ' datasets-not-registered 2 datasets' "$TMP/w2.log")" 2 "and, for each job, that its 2 datasets were not registered"
[ -s "$OUT/old/stdin.$old1.json" ] && ! grep -q '"inputs"' "$OUT/old/stdin.$old1.json"
tap $? "a 0.6 row has no inputs"
kill -TERM "$w2"
wait_exit "$w2" 15
is "$EXIT_STATUS" 0 "that worker exits 0 on SIGTERM"
q -d postgres -c "DROP DATABASE $OLD_DB" >/dev/null

done_testing

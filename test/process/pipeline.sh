#!/usr/bin/env bash
# The data pipeline with real workers and the handlers of
# worker_client/handlers/pipeline (Node.js and DuckDB): ingest -> process ->
# curate -> train -> evaluate, enqueued at once and chained by dataset inputs
# (each job waits until the version it reads is registered).  Each layer's
# Parquet is read back with DuckDB and matches the registry (rows, checksum);
# processing removed the sample data's duplicates and bad rows; lineage leads
# from the evaluation to the raw data; a second ingest is a new version that
# leaves the first as it was; training twice on one version reads the same
# bytes; a stream's second ingest reads only the new lines; a handler that
# crashes after writing leaves no version and no registration; and no
# handler opens a socket.
source "$(dirname "$0")/common.bash"
PIPE=$TT_REPO/worker_client/handlers/pipeline
DATA=$TMP/data
reset_db

# The handlers need Node.js and the npm modules: setup.sh installs what is
# missing (quick when all is there; scripts/test.sh has run it already).  A
# set-up that fails fails the test: a skip would hide a missing install step.
if ! "$PIPE/setup.sh" >"$TMP/setup.log" 2>&1; then
	echo "not ok 1 - the pipeline's set-up (Node.js, @duckdb/node-api): $(tail -1 "$TMP/setup.log")"
	echo "1..1"
	exit 1
fi
if [ -z "$(q -c "SELECT to_regclass('tinytemp.lineage')")" ]; then
	echo "not ok 1 - the server has datasets and lineage (tinytemp 0.7: run ALTER EXTENSION tinytemp UPDATE)"
	exit 1
fi
if ! "$WORKER" --help | grep -q tinytemp_register_dataset; then
	echo "not ok 1 - tinytemp-worker registers datasets (rebuild it: make -C worker_client)"
	exit 1
fi
q -c 'TRUNCATE tinytemp.datasets' >/dev/null

# The shipped pipeline.conf, with its commands as absolute paths and
# TINYTEMP_DATA_DIR in every section (the worker passes no TINYTEMP_
# variable of its own environment on).
mkdir -p "$TMP/scratch"
sed -e "s|^command = \./|command = $PIPE/|" -e "/^\[pipeline-/a env = TINYTEMP_DATA_DIR=$DATA\\nenv = TMPDIR=$TMP/scratch" \
	"$PIPE/pipeline.conf" > "$TMP/pipeline.conf"
is "$(grep -c "^env = TINYTEMP_DATA_DIR=$DATA" "$TMP/pipeline.conf") $(grep -c "^command = $PIPE/[a-z]*\.mjs$" "$TMP/pipeline.conf")" \
	"5 5" "pipeline.conf has the five handlers"

# duck SQL: DuckDB (the handlers' own module) runs SQL; one line per row, '|' between values.
cat > "$TMP/duck.cjs" <<'JS'
const { DuckDBInstance } = require(process.env.PIPE + '/node_modules/@duckdb/node-api');
(async () => {
	const db = await DuckDBInstance.create(':memory:', { threads: '1', autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
	const r = await (await db.connect()).runAndReadAll(process.argv[2]);
	for (const row of r.getRowsJS()) console.log(row.map((v) => (v === null ? '' : String(v))).join('|'));
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
duck() { PIPE=$PIPE node "$TMP/duck.cjs" "$1"; }
parquet() { echo "read_parquet('$1/**/*.parquet', hive_partitioning = ${2:-false})"; }
# ds FIELD NAME VERSION: a field of a registered version.
ds() { qv n "$2" "SELECT $1 FROM tinytemp.datasets WHERE name = :'n' AND version = $3"; }
# files_sum DIR: sha256 of DIR's files, concatenated in sorted path order (the
# registry's definition, computed here with coreutils).
files_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs cat | sha256sum | sed 's/^/sha256:/; s/ .*//'); }
enqueue() { qv p "$2" "SELECT tinytemp_enqueue('$1', params => :'p'::jsonb, max_attempts => ${4:-2}${3:-})"; }

TYPES='{"event_id": "BIGINT", "ts": "TIMESTAMP", "user_id": "BIGINT", "position": "INTEGER",
        "dwell_s": "DOUBLE", "price": "DOUBLE", "clicked": "INTEGER"}'
PROCESS="{\"key\": \"event_id\", \"types\": $TYPES,
          \"required\": [\"event_id\", \"ts\", \"user_id\", \"device\", \"position\", \"dwell_s\", \"price\", \"clicked\"]}"
CURATE='{"partition_by": "device", "schema": {"columns": [
          {"name": "event_id", "type": "BIGINT", "nullable": false}, {"name": "ts", "type": "TIMESTAMP"},
          {"name": "device", "type": "VARCHAR"}, {"name": "position", "type": "INTEGER"},
          {"name": "dwell_s", "type": "DOUBLE"}, {"name": "price", "type": "DOUBLE"},
          {"name": "clicked", "type": "INTEGER", "nullable": false}]}}'
TRAIN='{"label": "clicked", "features": ["position", "dwell_s", "price"], "categorical": ["device"], "epochs": 40}'

# 1. The whole pipeline, enqueued before any data exists.
ingest=$(enqueue pipeline-ingest '{"name": "clicks", "source": "clicks.csv", "format": "csv"}')
process=$(enqueue pipeline-process "$PROCESS" ", inputs => ARRAY['clicks-raw@1']")
curate=$(enqueue pipeline-curate "$CURATE" ", inputs => ARRAY['clicks-processed@1']")
train=$(enqueue pipeline-train "$TRAIN" ", inputs => ARRAY['clicks-curated@1']")
evaluate=$(enqueue pipeline-evaluate "{\"model_job\": $train}" ", inputs => ARRAY['clicks-curated@1'], depends_on => ARRAY[$train]::bigint[]")
is "$(q -c "SELECT string_agg(coalesce(array_to_string(awaits_data, ','), '-'), ' ' ORDER BY id)
            FROM tinytemp.jobs WHERE id IN ($ingest, $process, $curate, $train, $evaluate)")" \
	"- clicks-raw@1 clicks-processed@1 clicks-curated@1 clicks-curated@1" \
	"each later stage waits for the version it reads"

OPTS='-c tinytemp.lease_timeout=3s -c tinytemp.retry_backoff_base=100ms'
PGOPTIONS=$OPTS start_worker w1 --name pipe-w1 --config "$TMP/pipeline.conf" --slots 1 --poll-interval 0.3
PGOPTIONS=$OPTS start_worker w2 --name pipe-w2 --config "$TMP/pipeline.conf" --slots 1 --poll-interval 0.3

wait_sql "SELECT count(*) FILTER (WHERE state = 'succeeded') = 5 OR bool_or(state = 'failed')
          FROM tinytemp.jobs WHERE id IN ($ingest, $process, $curate, $train, $evaluate)" 60
is "$(q -c "SELECT string_agg(job_type || '=' || state, ' ' ORDER BY id)
            FROM tinytemp.jobs WHERE id IN ($ingest, $process, $curate, $train, $evaluate)")" \
	"pipeline-ingest=succeeded pipeline-process=succeeded pipeline-curate=succeeded pipeline-train=succeeded pipeline-evaluate=succeeded" \
	"the five stages ran, one after the other, and succeeded"
bail_out
is "$(q -c "SELECT bool_and(a.started_at >= b.finished_at)
            FROM (VALUES ($process, $ingest), ($curate, $process), ($train, $curate), ($evaluate, $train)) v(x, y)
            JOIN tinytemp.jobs a ON a.id = v.x JOIN tinytemp.jobs b ON b.id = v.y")" t \
	"each stage started only once the one before had finished"
is "$(q -c "SELECT string_agg(name || '@' || version || ' ' || layer || ' ' || rows || ' ' || (created_by_job = CASE layer
                WHEN 'raw' THEN $ingest WHEN 'processed' THEN $process ELSE $curate END), ', ' ORDER BY id)
            FROM tinytemp.datasets")" \
	"clicks-raw@1 raw 300 true, clicks-processed@1 processed 274 true, clicks-curated@1 curated 274 true" \
	"three versions registered, one per layer, each by the job that made it"

raw1=$(ds uri clicks-raw 1)
processed1=$(ds uri clicks-processed 1)
curated1=$(ds uri clicks-curated 1)
is "$raw1 $processed1 $curated1" \
	"$DATA/raw/clicks-raw/job-$ingest-a1 $DATA/processed/clicks-processed/job-$process-a1 $DATA/curated/clicks-curated/job-$curate-a1" \
	"each version is a directory of its own, named after the job and attempt"

# 2. Every layer reads back with DuckDB, and matches the registry.
is "$(duck "SELECT (SELECT count(*) FROM $(parquet "$raw1")) || ' ' || (SELECT count(*) FROM $(parquet "$processed1"))
             || ' ' || (SELECT count(*) FROM $(parquet "$curated1" true))")" \
	"$(ds rows clicks-raw 1) $(ds rows clicks-processed 1) $(ds rows clicks-curated 1)" \
	"each layer's Parquet reads back with the registered row count"
is "$(files_sum "$raw1") $(files_sum "$processed1") $(files_sum "$curated1")" \
	"$(ds checksum clicks-raw 1) $(ds checksum clicks-processed 1) $(ds checksum clicks-curated 1)" \
	"each version's files hash to its registered checksum"
is "$(q -c "SELECT bool_and(bytes > 0 AND format = 'parquet') FROM tinytemp.datasets")" t "with their bytes, as Parquet"

# 3. Raw keeps everything; processed has no duplicate or bad row left.
is "$(duck "SELECT count(*) - count(DISTINCT (event_id, ts, user_id, device, position, dwell_s, price, clicked))
                   || ' ' || count(*) FILTER (WHERE event_id IN ('280', '281', '282', '283'))
            FROM $(parquet "$raw1")")" "12 4" \
	"raw keeps the sample's 12 exact duplicates and its unparseable rows, as text"
is "$(duck "SELECT count(*) || ' ' || count(DISTINCT event_id) || ' ' || count(*) FILTER (WHERE user_id IS NULL OR clicked IS NULL
                   OR ts IS NULL OR position IS NULL OR dwell_s IS NULL OR price IS NULL OR device IS NULL)
                   || ' ' || count(*) FILTER (WHERE event_id BETWEEN 275 AND 283)
            FROM $(parquet "$processed1")")" "274 274 0 0" \
	"processed: 274 rows, one per event_id, no missing field, none of the 9 bad rows"
is "$(qv n clicks-processed "SELECT meta->>'rows_in' || ' ' || (meta->>'duplicates_removed') || ' ' || (meta->>'bad_rows_removed')
            || ' ' || (meta->>'bad_missing_required') || ' ' || (meta->>'bad_unparseable') || ' ' || (meta->>'key_duplicates_removed')
            FROM tinytemp.datasets WHERE name = :'n'")" "300 12 9 5 4 5" \
	"its meta counts 12 exact duplicates, 9 bad rows (5 missing a field, 4 unparseable) and 5 resent event_ids"
is "$(ds "(SELECT string_agg(c->>'name' || ':' || (c->>'type'), ' ') FROM jsonb_array_elements(schema->'columns') c)" clicks-processed 1)" \
	"event_id:BIGINT ts:TIMESTAMP user_id:BIGINT device:VARCHAR position:INTEGER dwell_s:DOUBLE price:DOUBLE clicked:INTEGER" \
	"and its registered schema has the declared types"

# 4. Curated: the declared schema, a partition per device, zstd.
is "$(cd "$curated1" && find . -name '*.parquet' | LC_ALL=C sort | tr '\n' ' ')" \
	"./device=desktop/data_0.parquet ./device=mobile/data_0.parquet ./device=tablet/data_0.parquet " \
	"curated: one directory per device"
is "$(duck "SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata('$curated1/**/*.parquet')")" ZSTD \
	"compressed with zstd"
is "$(ds "(SELECT string_agg(c->>'name', ' ') FROM jsonb_array_elements(schema->'columns') c) || ' ' || (meta->>'partitions')" clicks-curated 1) $(
	duck "SELECT count(*) FROM (DESCRIBE SELECT * FROM $(parquet "$curated1" true))")" \
	"event_id ts device position dwell_s price clicked 3 7" \
	"the declared columns (user_id dropped), as registered"

# 5. Training and evaluation: metrics per epoch, the input's checksum verified, a useful model.
is "$(q -c "SELECT count(DISTINCT step) || ' ' || min(step) || ' ' || max(step) || ' ' || count(*) FILTER (WHERE key = 'loss')
            FROM tinytemp.job_metrics WHERE job_id = $train")" "40 1 40 40" "train reported its metrics after each of 40 epochs"
is "$(q -c "SELECT (r.metrics_final->>'loss')::float8 < (SELECT value FROM tinytemp.job_metrics WHERE job_id = $train AND step = 1 AND key = 'loss')
                   AND (r.metrics_final->>'val_accuracy')::float8 > 0.7
            FROM tinytemp.runs r WHERE r.id = $train")" t "its loss fell and its holdout accuracy is over 0.7"
verified="SELECT string_agg(i->>'name' || '@' || (i->>'version') || ' ' || (i->>'checksum_verified'), ', ')
          FROM tinytemp.jobs j, jsonb_array_elements(j.result->'inputs_read') i WHERE j.id ="
is "$(q -c "$verified $train") / $(q -c "$verified $evaluate")" "clicks-curated@1 true / clicks-curated@1 true" \
	"train and evaluate say which version they read, its checksum verified"
is "$(q -c "SELECT (j.result->'inputs_read'->0->>'checksum') = d.checksum FROM tinytemp.jobs j, tinytemp.datasets d
            WHERE j.id = $train AND d.name = 'clicks-curated' AND d.version = 1")" t "against the registered checksum"
is "$(q -c "SELECT (e.result->'model'->>'uri') = (t.result->>'model_uri') AND (e.result->>'same_version_as_training')::bool
                   AND (e.result->'evaluation'->>'accuracy')::float8 > 0.7 AND (e.result->'evaluation'->>'rows')::int = 54
            FROM tinytemp.jobs e, tinytemp.jobs t WHERE e.id = $evaluate AND t.id = $train")" t \
	"evaluate scored the train job's model on the 54 held-out rows of the same version, accuracy over 0.7"
is "$(q -c "SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $evaluate AND key IN ('accuracy', 'loss', 'precision', 'recall', 'f1')")" 5 \
	"and reported accuracy, loss, precision, recall and F1 as metrics"

# 6. Lineage: the evaluation reaches the raw data through every layer.
is "$(q -c "SELECT string_agg(name || '@' || version || ' ' || layer || ' ' || depth, ', ' ORDER BY depth)
            FROM tinytemp.lineage WHERE job_id = $evaluate")" \
	"clicks-curated@1 curated 1, clicks-processed@1 processed 2, clicks-raw@1 raw 3" \
	"tinytemp.lineage leads from the evaluation job to the raw dataset"

# 7. A second ingest of the same source is version 2; version 1 stays as it was.
sum1=$(ds checksum clicks-raw 1)
again=$(enqueue pipeline-ingest '{"name": "clicks", "source": "clicks.csv"}')
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $again" 20
tap $? "a second ingest of clicks.csv succeeded"
raw2=$(ds uri clicks-raw 2)
is "$raw2 $(ds created_by_job clicks-raw 2)" "$DATA/raw/clicks-raw/job-$again-a1 $again" "as version 2, in a directory of its own"
is "$(files_sum "$raw1") $(duck "SELECT count(*) FROM $(parquet "$raw1")") $(ds checksum clicks-raw 1)" "$sum1 300 $sum1" \
	"version 1 is still readable, its files unchanged"
is "$(ds checksum clicks-raw 2)" "$sum1" "the same source gives the same bytes (DuckDB writes deterministically)"

# 8. Training again on the same version reads the same bytes and fits the same model.
train2=$(enqueue pipeline-train "$TRAIN" ", inputs => ARRAY['clicks-curated@1']")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $train2" 30
tap $? "a second training on clicks-curated@1 succeeded"
is "$(q -c "SELECT (a.result->'inputs_read' = b.result->'inputs_read') || ' ' || (a.result->'model'->'weights' = b.result->'model'->'weights')
                   || ' ' || (a.result->>'model_uri' <> b.result->>'model_uri')
            FROM tinytemp.jobs a, tinytemp.jobs b WHERE a.id = $train AND b.id = $train2")" "true true true" \
	"it read identical bytes (same checksums, verified) and fitted the same weights, written to a model of its own"

# 9. A stream: the second ingest reads only the lines added since the first.
STREAM=$PIPE/data/clicks-stream.jsonl
head -n 24 "$STREAM" > "$TMP/stream.jsonl"
sed -n 25p "$STREAM" | head -c 40 >> "$TMP/stream.jsonl"	# a line still being written
first_part=$(head -n 24 "$STREAM" | wc -c)
s1=$(enqueue pipeline-ingest "{\"name\": \"clicks-stream\", \"stream\": \"$TMP/stream.jsonl\"}")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $s1" 20
tap $? "a stream's first ingest succeeded"
is "$(ds "rows || ' ' || (meta->>'stream_offset')" clicks-stream-raw 1)" "24 $first_part" \
	"it read the 24 complete lines and stopped before the unfinished one"
sed -n 25p "$STREAM" | tail -c +41 >> "$TMP/stream.jsonl"
sed -n '26,$p' "$STREAM" >> "$TMP/stream.jsonl"
s2=$(enqueue pipeline-ingest "{\"name\": \"clicks-stream\", \"stream\": \"$TMP/stream.jsonl\"}" ", inputs => ARRAY['clicks-stream-raw@1']")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $s2" 20
tap $? "its second ingest, with the first version as its input, succeeded"
is "$(ds "rows || ' ' || (meta->>'stream_start') || ' ' || (meta->>'stream_offset')" clicks-stream-raw 2)" \
	"16 $first_part $(wc -c < "$STREAM")" "it read only the 16 lines after the first ingest's offset, to the end"
ids() { grep -o '"event_id":[0-9]*' | cut -d: -f2 | paste -sd, -; }
is "$(duck "SELECT string_agg(event_id, ',') FROM $(parquet "$(ds uri clicks-stream-raw 1)")") / $(
	duck "SELECT string_agg(event_id, ',') FROM $(parquet "$(ds uri clicks-stream-raw 2)")")" \
	"$(head -n 24 "$STREAM" | ids) / $(sed -n '25,$p' "$STREAM" | ids)" \
	"the two versions hold the stream's lines in order, each line once"

# 10. A handler that crashes after writing and declaring its output: no version, no registration.
crash=$(enqueue pipeline-process '{"output": "clicks-crash", "fail_after_write": true}' ", inputs => ARRAY['clicks-raw@1']" 1)
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $crash" 20
tap $? "the crashing process job failed"
is "$(q -c "SELECT count(*) FROM tinytemp.job_logs WHERE job_id = $crash AND line LIKE '{\"dataset\":%'") $(
	q -c "SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $crash OR name = 'clicks-crash'")" "1 0" \
	"it printed a dataset line, and nothing was registered"
is "$(cd "$DATA/processed/clicks-crash" && ls -A | sed 's/-[0-9]*$//' | tr '\n' ' ')$(ls "$DATA"/processed/clicks-crash/.tmp-*/)" \
	".tmp-job-$crash-a1 part-0.parquet" "what it wrote stays in a scratch directory, not as a version"

# 11. A version whose files changed after registration is refused by the job reading it.
printf 'x' >> "$raw2/part-0.parquet"
tampered=$(enqueue pipeline-process "$PROCESS" ", inputs => ARRAY['clicks-raw@2']" 1)
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $tampered" 20
tap $? "a process job reading clicks-raw@2 after a byte was appended to it failed"
is "$(q -c "SELECT last_error ~ 'clicks-raw@2 .* not the registered sha256:' FROM tinytemp.jobs WHERE id = $tampered") $(
	q -c "SELECT count(*) FROM tinytemp.datasets WHERE created_by_job = $tampered")" "t 0" \
	"saying that the files no longer hash to the registered checksum, and registered nothing"

kill -TERM "${WORKER_PIDS[@]}"
for pid in "${WORKER_PIDS[@]}"; do wait_exit "$pid" 15; done

# 12. No network: the handlers open no socket (strace sees one for a control).
if command -v strace >/dev/null 2>&1; then
	strace -f -qq -e trace=socket,connect -o "$TMP/control.strace" \
		node -e "require('net').connect(9, '127.0.0.1').on('error', () => {})" 2>/dev/null
	echo "{\"id\": 999999, \"params\": {\"name\": \"offline\", \"source\": \"clicks.json\"}}" |
		TINYTEMP_DATA_DIR=$DATA strace -f -qq -e trace=socket,connect -o "$TMP/ingest.strace" "$PIPE/ingest.mjs" >/dev/null
	qv p "$TRAIN" "SELECT jsonb_build_object('id', 999998, 'params', :'p'::jsonb, 'inputs', inputs) FROM tinytemp.jobs WHERE id = $train" |
		TINYTEMP_DATA_DIR=$DATA strace -f -qq -e trace=socket,connect -o "$TMP/train.strace" "$PIPE/train.mjs" >"$TMP/train.out"
	is "$(grep -q AF_INET "$TMP/control.strace" && echo seen) $(tail -1 "$TMP/train.out" | grep -o '"checksum_verified":true')" \
		'seen "checksum_verified":true' "strace sees a control's socket, and a handler run by hand under it works"
	is "$(cat "$TMP/ingest.strace" "$TMP/train.strace" | wc -l)" 0 \
		"ingest and train (DuckDB's CSV, JSON and Parquet readers and writers) make no socket call at all"
else
	echo "ok $((TAP_N += 1)) # SKIP strace is not installed"
	echo "ok $((TAP_N += 1)) # SKIP strace is not installed"
fi

done_testing

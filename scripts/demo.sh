#!/usr/bin/env bash
# scripts/demo.sh: tinytemp on a throwaway cluster, step by step.
#
# Installs what is missing, builds and installs tinytemp, starts a cluster in
# .tinytemp/demo with the background worker preloaded, and walks through a
# job's life: workers register, ML jobs are enqueued, claimed on hardware
# that fits them, heartbeated, acked, failed and retried with backoff,
# dead-lettered, retried by hand, cancelled, and lost by a worker that died.
# Then the scheduler's policies in SQL: dominant resource fairness, shortest
# predicted runtime first, a gang placed by the planner, a preemption with a
# checkpoint, a pipeline of dependent jobs.  Then three tinytemp-worker
# processes run a mix of ML jobs for real: a CPU-bound training loop,
# simulated evaluation and inference, a job that fails once and is retried,
# one that ends in the dead-letter queue, a gang and a pipeline, and a
# learning-rate sweep whose loss and accuracy per epoch land in the database:
# the best run in one query, the queue's Prometheus metrics from the database
# and from a worker.  Last, the data pipeline on the sample clicks in the
# tree (DuckDB, Parquet): ingest, process, curate, train and evaluate, each
# job waiting for the dataset version it reads, and the trained model's
# lineage down to the raw file.  Then what a job gets: its own GPUs on a
# four-GPU node, and a memory limit that kills a job over it.  The workers
# and the cluster are stopped at the end.
set -eu
source "$(dirname "$0")/lib.sh"
cd "$TT_REPO"

tt_ensure_packages
worker_client/handlers/pipeline/setup.sh
tt_build_install
trap 'tt_cluster_stop demo' EXIT
tt_log "starting a throwaway cluster in .tinytemp/demo"
tt_cluster_start demo "${TINYTEMP_DEMO_PORT:-54329}" "tinytemp.database = 'tinytemp_demo'
tinytemp.naptime = '200ms'
tinytemp.lease_timeout = '2s'
tinytemp.retry_backoff_base = '500ms'
tinytemp.metrics_address = '127.0.0.1:${TINYTEMP_DEMO_METRICS_PORT:-54328}'"
$TT_PGBIN/createdb tinytemp_demo
tt_cluster_restart demo
export PGDATABASE=tinytemp_demo

# step TITLE SQL: show the SQL, then what PostgreSQL answers.
step() {
	printf '\n\033[1m-- %s\033[0m\n%s\n' "$1" "$2"
	printf '%s\n' "$2" | $TT_PGBIN/psql -X -q -v ON_ERROR_STOP=0 -P pager=off -f - 2>&1 | sed 's/^/   /'
}
# wait_finished CONDITION SECONDS: wait until every job matching CONDITION
# has finished (succeeded, dead-lettered or cancelled), at most SECONDS.
wait_finished() {
	local left
	for _ in $(seq 1 $(($2 * 2))); do
		left=$($TT_PGBIN/psql -XAtq -c "SELECT count(*) FROM tinytemp.jobs
			WHERE ($1) AND state NOT IN ('succeeded', 'failed', 'cancelled')")
		[ "$left" = 0 ] && return 0
		sleep 0.5
	done
}
# shell_step TITLE COMMAND: the same for a shell command.
shell_step() {
	printf '\n\033[1m-- %s\033[0m\n$ %s\n' "$1" "$2"
	bash -c "$2" 2>&1 | sed 's/^/   /'
}

step "Install the extension" "CREATE EXTENSION tinytemp;"
step "Two workers register with their hardware" \
"SELECT tinytemp_register_worker('gpu-node-1', cpus => 32, memory_mb => 256000, gpus => 4, gpu_type => 'a100') AS gpu_node,
       tinytemp_register_worker('cpu-node-1', cpus => 8, memory_mb => 32000) AS cpu_node;"
step "Submit ML jobs (any SQL client can; in the same transaction as its own data)" \
"SELECT tinytemp_enqueue('training', 'resnet50', '{\"lr\": 0.1}', priority => 5, dataset_size => 1281167,
                        epochs => 90, batch_size => 256, cpus => 8, memory_mb => 64000, gpus => 2,
                        gpu_type => 'a100', tenant => 'vision') AS training,
       tinytemp_enqueue('evaluation', 'resnet50', dataset_size => 50000, cpus => 4, memory_mb => 8000,
                        tenant => 'vision') AS evaluation,
       tinytemp_enqueue('data-processing', params => '{\"shards\": 16}', cpus => 2, memory_mb => 4000,
                        max_attempts => 2, tenant => 'nlp') AS preprocessing;"
step "The queue, with each job's runtime as the in-database predictor expects it" \
"SELECT id, job_type, model, priority, state, cpus, memory_mb, gpus, gpu_type,
       round(predicted_runtime_s::numeric, 1) AS predicted_s FROM tinytemp.jobs ORDER BY id;"
step "The CPU node claims: it gets the best job that fits it, never the GPU job" \
"SELECT id, job_type, state, attempts, lease_until - now() AS lease FROM tinytemp_claim(2, max_jobs => 5);"
step "The GPU node claims the training job" "SELECT id, job_type, state, gpus, gpu_type FROM tinytemp_claim(1);"
step "What each worker holds and has left" "SELECT name, jobs_held, free_cpus, free_memory_mb, free_gpus FROM tinytemp.worker_status;"
step "Training reports progress; the lease is renewed" "SELECT tinytemp_heartbeat(1, 1, '{\"epoch\": 12, \"loss\": 1.82}');"
step "Training finishes" "SELECT tinytemp_ack(1, 1, '{\"top1\": 0.761}');"
step "Evaluation finishes" "SELECT tinytemp_ack(2, 2, '{\"top1\": 0.758}');"
step "Preprocessing fails: it is retried after a backoff with jitter" \
"SELECT tinytemp_fail(3, 2, 'shard 7: disk full') AS new_state;
SELECT state, attempts, round(extract(epoch FROM run_after - now())::numeric, 2) AS retry_in_s FROM tinytemp.jobs WHERE id = 3;"
sleep 1
step "Second attempt fails too: attempts are spent, so it goes to the dead-letter queue" \
"SELECT id, attempts FROM tinytemp_claim(2);
SELECT tinytemp_fail(3, 2, 'shard 7: disk full');
SELECT id, job_type, attempts, last_error FROM tinytemp.dead_letter;"
step "An operator fixes the disk and retries it by hand" "SELECT tinytemp_retry(3);
SELECT id, attempts FROM tinytemp_claim(2);
SELECT tinytemp_ack(3, 2);"
step "A stale report is refused with SQLSTATE TT003" "SELECT tinytemp_ack(3, 2);
\\echo SQLSTATE :LAST_ERROR_SQLSTATE"
step "Cancel a job before it runs" "SELECT tinytemp_enqueue('inference', 'bert-base') AS job \\gset
SELECT tinytemp_cancel(:job);
SELECT id, state FROM tinytemp.jobs WHERE id = :job;"
step "A worker dies mid-job: the background worker expires its lease and requeues the job" \
"SELECT tinytemp_enqueue('training', 'gpt2-small', cpus => 4) AS job \\gset
SELECT id, state FROM tinytemp_claim(2);
SELECT pg_sleep(3);
SELECT id, state, attempts, last_error FROM tinytemp.jobs WHERE id = :job;"
step "A restarted worker registers again: its earlier incarnation's jobs are released at once" \
"SELECT id, state FROM tinytemp_claim(2);
SELECT tinytemp_register_worker('cpu-node-1', 8, 32000) AS new_id;
SELECT id, state, worker_id FROM tinytemp.jobs WHERE job_type = 'training' AND model = 'gpt2-small';"
step "Every state change is in the history" \
"SELECT job_id, event, worker_id, at::time(0) AS at, detail FROM tinytemp.jobs_history ORDER BY id;"
step "The queue at a glance" "SELECT * FROM tinytemp.queue_summary ORDER BY queue, state;"

tt_log "Part 2: scheduling"
# A database of its own, which the background worker does not serve: here
# the planner runs only when a step calls tinytemp_schedule(), so each step
# shows its effect.
$TT_PGBIN/createdb tinytemp_planning
export PGDATABASE=tinytemp_planning PGOPTIONS='-c client_min_messages=error'
step "Install the extension in a second database" "CREATE EXTENSION tinytemp;"
step "Dominant Resource Fairness: one node with 9 CPUs and 18 GB; tenant A's jobs need <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>" \
"SELECT tinytemp_register_worker('drf-node', 9, 18432) AS node \\gset
SELECT count(tinytemp_enqueue('training', tenant => 'A', cpus => 1, memory_mb => 4096)) AS a_jobs,
       count(tinytemp_enqueue('training', tenant => 'B', cpus => 3, memory_mb => 1024)) AS b_jobs
FROM generate_series(1, 20);
SELECT tenant, count(*) AS jobs, sum(cpus) AS cpus, sum(memory_mb) AS memory_mb
FROM tinytemp_claim(:node, 10) GROUP BY tenant ORDER BY tenant;"
step "Why the other jobs wait" "SELECT reason, tenant, count(*) FROM tinytemp.pending_reasons GROUP BY 1, 2 ORDER BY 1, 2;"
step "Tenants are roles: a submitter of tenant A sees A's jobs only (row-level security), and may not cancel B's" \
"CREATE ROLE \"A\" IN ROLE tinytemp_submitter;
CREATE ROLE alice IN ROLE \"A\";
SELECT min(id) AS b_job FROM tinytemp.jobs WHERE tenant = 'B' \\gset
SET ROLE alice;
SELECT tenant, state, count(*) FROM tinytemp.jobs GROUP BY 1, 2 ORDER BY 1, 2;
SELECT tinytemp_cancel(:b_job);
SELECT tinytemp_enqueue('training', tenant => 'B');
SELECT tinytemp_enqueue('training', tenant => 'A') AS for_a, tinytemp_enqueue('training') AS own \\gset
SELECT id, tenant FROM tinytemp.jobs WHERE id IN (:for_a, :own) ORDER BY id;
RESET ROLE;"
step "Shortest predicted runtime first: a new 2-minute job goes before an hour-long one" \
"TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, tinytemp.reservations;
SELECT tinytemp_register_worker('gpu-a', 16, 128000, 2, 'a100') AS a \\gset
SELECT tinytemp_enqueue('training', 'vit-base', gpus => 2, cpus => 8, runtime_estimate_s => 3600) AS long_job,
       tinytemp_enqueue('evaluation', 'resnet18', gpus => 2, cpus => 8, runtime_estimate_s => 120) AS short_job;
SELECT id, job_type, runtime_estimate_s FROM tinytemp_claim(:a, 2);"
step "A gang of two members starts on two workers at once, placed by the planner" \
"SELECT tinytemp_register_worker('gpu-b', 16, 128000, 2, 'a100') AS b \\gset
SELECT tinytemp_register_worker('gpu-c', 16, 128000, 2, 'a100') AS c \\gset
SELECT tinytemp_enqueue('training', 'gpt2-small', gpus => 2, cpus => 8, gang_size => 2) AS gang \\gset
SELECT tinytemp_schedule()->'gangs_assigned' AS gangs_assigned;
SELECT id, gang_id, gang_rank, state, worker_id FROM tinytemp.jobs WHERE gang_id = :gang ORDER BY gang_rank;"
step "Preemption: an urgent job needs gpu-a's GPUs; the running job is asked to checkpoint and yields" \
"SELECT id AS a FROM tinytemp.workers WHERE name = 'gpu-a' \\gset
SET tinytemp.preempt_grace = '0';
SELECT tinytemp_enqueue('inference', 'bert-base', priority => 10, gpus => 2, cpus => 4, gpu_type => 'a100',
                        runtime_estimate_s => 30) AS urgent \\gset
SELECT id AS running FROM tinytemp.jobs WHERE worker_id = :a AND state = 'running' \\gset
SELECT tinytemp_schedule()->'preemptions_requested' AS preemptions_requested;
RESET tinytemp.preempt_grace;
SELECT tinytemp_heartbeat(:running, :a) AS heartbeat_answer;
SELECT tinytemp_checkpoint(:running, :a, '{\"step\": 4200}');
SELECT id, state, attempts, preemptions, checkpoint FROM tinytemp.jobs WHERE id = :running;
SELECT id, job_type, priority FROM tinytemp_claim(:a);"
step "A pipeline: each step starts only after the one before it succeeded" \
"SELECT tinytemp_enqueue('data-processing', 'ingest') AS ingest \\gset
SELECT tinytemp_enqueue('data-processing', 'tokenize', depends_on => ARRAY[:ingest]::bigint[]) AS prep \\gset
SELECT tinytemp_enqueue('training', 'bert-base', depends_on => ARRAY[:prep]::bigint[]) AS train \\gset
SELECT job_id, reason FROM tinytemp.pending_reasons WHERE job_id IN (:ingest, :prep, :train) ORDER BY job_id;"

export PGDATABASE=tinytemp_demo
unset PGOPTIONS

tt_log "Part 3: real workers run ML jobs"
WORKER=$TT_PGBIN/tinytemp-worker
LOGDIR=$TT_STATE/demo-workers
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
step "Start from an empty queue" "TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;"
# Three workers: two "GPU nodes" (declared, since this machine may have none)
# and a CPU node; jobs run through worker_client/handlers.example.conf: a
# CPU-bound Python training loop, simulated evaluation and inference.
# Each serves its own metrics (--metrics-address), as the database does.
pids=()
port=${TINYTEMP_DEMO_WORKER_METRICS_PORT:-54325}
for spec in "gpu-node-1 --gpus 2 --gpu-type a100" "gpu-node-2 --gpus 1 --gpu-type t4" "cpu-node-1 --gpus 0"; do
	set -- $spec
	name=$1
	shift
	"$WORKER" --name "$name" --slots 2 --cpus 8 --memory-mb 32000 "$@" \
		--config "$TT_REPO/worker_client/handlers.example.conf" --poll-interval 1 \
		--metrics-address "127.0.0.1:$port" 2>"$LOGDIR/$name.log" &
	pids+=($!)
	port=$((port + 1))
done
trap 'kill "${pids[@]}" 2>/dev/null || true; tt_cluster_stop demo' EXIT
sleep 1
step "Workers registered with their hardware" \
"SELECT name, cpus, memory_mb, gpus, gpu_type FROM tinytemp.workers WHERE state = 'active' ORDER BY name;"
step "Submit a mix of ML jobs" \
"SELECT tinytemp_enqueue('training', 'logreg-small', '{\"features\": 16, \"learning_rate\": 0.2}',
                        dataset_size => 4000, epochs => 8, batch_size => 64, cpus => 2, gpus => 1,
                        gpu_type => 'a100', tenant => 'vision') AS training_a100,
       tinytemp_enqueue('training', 'logreg-wide', '{\"features\": 48}', dataset_size => 3000,
                        epochs => 6, cpus => 2, tenant => 'nlp') AS training_cpu,
       tinytemp_enqueue('evaluation', 'logreg-small', '{\"runtime_s\": 1.5}', gpus => 1,
                        gpu_type => 't4', tenant => 'vision') AS evaluation_t4,
       tinytemp_enqueue('inference', 'bert-base', '{\"runtime_s\": 0.5}', priority => 10,
                        tenant => 'nlp') AS urgent_inference,
       tinytemp_enqueue('training', 'flaky-once', '{\"fail_attempts\": 1}', dataset_size => 1000,
                        epochs => 2, max_attempts => 3) AS fails_once_then_succeeds,
       tinytemp_enqueue('training', 'always-broken', '{\"fail_attempts\": 9}', dataset_size => 500,
                        epochs => 1, max_attempts => 2) AS dead_letter,
       tinytemp_enqueue('evaluation', 'allreduce-check', '{\"runtime_s\": 1}', gpus => 1,
                        gang_size => 2) AS gang_on_both_gpu_nodes;"
step "A pipeline that the workers run in order: preprocess, then train, then evaluate" \
"SELECT tinytemp_enqueue('evaluation', 'preprocess', '{\"runtime_s\": 0.5}', cpus => 1) AS prep \\gset
SELECT tinytemp_enqueue('training', 'logreg-small', '{\"features\": 8}', dataset_size => 2000, epochs => 4,
                        cpus => 2, depends_on => ARRAY[:prep]::bigint[]) AS train \\gset
SELECT tinytemp_enqueue('evaluation', 'logreg-small', '{\"runtime_s\": 0.5}',
                        depends_on => ARRAY[:train]::bigint[]) AS evaluate;"
step "A learning-rate sweep: the training handler reports loss and accuracy after each epoch" \
"SELECT tinytemp_enqueue('training', 'logreg-sweep', jsonb_build_object('features', 16, 'learning_rate', lr, 'seed', 7),
                        dataset_size => 3000, epochs => 6, batch_size => 32, cpus => 2) AS job, lr
FROM unnest(ARRAY[0.01, 0.1, 0.5]) lr;"
# Wait for every job to finish (succeeded or dead-lettered), at most 90 s.
wait_finished "true" 90
step "Where each job ran, how often, and what it returned" \
"SELECT j.id, j.job_type, j.model, j.state, j.attempts, w.name AS worker, w.gpu_type,
       round(j.predicted_runtime_s::numeric, 1) AS predicted_s,
       round(extract(epoch FROM j.finished_at - j.started_at)::numeric, 2) AS last_run_s,
       left(coalesce(j.result::text, j.last_error), 60) AS result_or_error
FROM tinytemp.jobs j LEFT JOIN tinytemp.workers w ON w.id = j.worker_id ORDER BY j.id;"
step "The flaky job's history: failed, retried after a backoff, then succeeded" \
"SELECT h.event, w.name AS worker, h.at::time(3) AS at, h.detail
FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
LEFT JOIN tinytemp.workers w ON w.id = h.worker_id
WHERE j.model = 'flaky-once' ORDER BY h.id;"
step "The dead-letter queue" "SELECT id, model, attempts, last_error FROM tinytemp.dead_letter;"
step "The gang's two members started together, one on each GPU node" \
"SELECT j.id, j.gang_rank, w.name AS worker, j.started_at::time(3) AS started, j.state
FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id WHERE j.gang_id IS NOT NULL ORDER BY j.gang_rank;"
step "The pipeline ran in order" \
"SELECT id, job_type, model, depends_on, started_at::time(3) AS started, finished_at::time(3) AS finished, state
FROM tinytemp.jobs WHERE model IN ('preprocess') OR depends_on IS NOT NULL ORDER BY id;"
step "The sweep's runs, epoch by epoch, as the handler reported them (tinytemp.job_metrics)" \
"SELECT j.params->>'learning_rate' AS lr, m.step AS epoch,
       round(max(m.value) FILTER (WHERE m.key = 'loss')::numeric, 4) AS loss,
       round(max(m.value) FILTER (WHERE m.key = 'accuracy')::numeric, 4) AS accuracy
FROM tinytemp.job_metrics m JOIN tinytemp.jobs j ON j.id = m.job_id
WHERE j.model = 'logreg-sweep' GROUP BY 1, 2 ORDER BY 1, 2;"
step "The best run of the sweep, in one query (tinytemp.runs)" \
"SELECT id, params->>'learning_rate' AS lr, metrics_final->>'accuracy' AS final_accuracy,
       metrics_min->>'loss' AS best_loss, round(duration_s::numeric, 2) AS duration_s
FROM tinytemp.runs WHERE model = 'logreg-sweep' AND state = 'succeeded'
ORDER BY (metrics_max->>'accuracy')::float8 DESC LIMIT 1;"
step "What the flaky job's handler printed, kept per attempt (tinytemp.job_logs)" \
"SELECT l.attempt, l.line_no, l.stream, left(l.line, 70) AS line
FROM tinytemp.job_logs l JOIN tinytemp.jobs j ON j.id = l.job_id
WHERE j.model = 'flaky-once' ORDER BY l.attempt, l.line_no LIMIT 8;"
shell_step "The queue's metrics, as Prometheus scrapes them from the database (tinytemp.metrics_address)" \
"curl -s http://127.0.0.1:${TINYTEMP_DEMO_METRICS_PORT:-54328}/metrics | grep -E '^tinytemp_jobs_(enqueued|succeeded|failed|dead_lettered)_total\\{queue=\"default\",job_type=\"training\"|^tinytemp_jobs\\{queue=\"default\"|^tinytemp_prediction_error_ratio_count'"
shell_step "And a worker's own (tinytemp-worker --metrics-address)" \
"curl -s http://127.0.0.1:${TINYTEMP_DEMO_WORKER_METRICS_PORT:-54325}/metrics | grep -E '^tinytemp_worker_(jobs_total|slots|busy_slots|handler_duration_seconds_count)'"
# The data pipeline: the three workers drain (a worker claims any job type,
# and theirs have no pipeline handler), and a worker with the pipeline's
# handlers, writing under .tinytemp/demo-data, takes over; the five stages
# are enqueued at once, chained by the datasets they read.
kill -TERM "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
pids=()
DATA=$TT_STATE/demo-data
rm -rf "$DATA"
mkdir -p "$DATA"
TINYTEMP_DATA_DIR=$DATA "$WORKER" --name data-node-1 --slots 2 --cpus 4 --memory-mb 8000 \
	--config "$TT_REPO/worker_client/handlers/pipeline/pipeline.conf" --poll-interval 1 \
	2>"$LOGDIR/data-node-1.log" &
pids+=($!)
step "The data pipeline, enqueued before any data exists: each stage reads the version the one before makes" \
"SELECT tinytemp_enqueue('pipeline-ingest', params => '{\"name\": \"clicks\", \"source\": \"clicks.csv\", \"format\": \"csv\"}') AS ingest \\gset
SELECT tinytemp_enqueue('pipeline-process', inputs => ARRAY['clicks-raw@1'], params => '{\"key\": \"event_id\",
  \"types\": {\"event_id\": \"BIGINT\", \"ts\": \"TIMESTAMP\", \"user_id\": \"BIGINT\", \"position\": \"INTEGER\",
            \"dwell_s\": \"DOUBLE\", \"price\": \"DOUBLE\", \"clicked\": \"INTEGER\"},
  \"required\": [\"event_id\", \"ts\", \"user_id\", \"device\", \"position\", \"dwell_s\", \"price\", \"clicked\"]}') AS process \\gset
SELECT tinytemp_enqueue('pipeline-curate', inputs => ARRAY['clicks-processed@1'], params => '{\"partition_by\": \"device\",
  \"schema\": {\"columns\": [{\"name\": \"event_id\", \"type\": \"BIGINT\", \"nullable\": false},
    {\"name\": \"ts\", \"type\": \"TIMESTAMP\"}, {\"name\": \"device\", \"type\": \"VARCHAR\"},
    {\"name\": \"position\", \"type\": \"INTEGER\"}, {\"name\": \"dwell_s\", \"type\": \"DOUBLE\"},
    {\"name\": \"price\", \"type\": \"DOUBLE\"}, {\"name\": \"clicked\", \"type\": \"INTEGER\", \"nullable\": false}]}}') AS curate \\gset
SELECT tinytemp_enqueue('pipeline-train', inputs => ARRAY['clicks-curated@1'], params => '{\"label\": \"clicked\",
  \"features\": [\"position\", \"dwell_s\", \"price\"], \"categorical\": [\"device\"], \"epochs\": 30}') AS train \\gset
SELECT tinytemp_enqueue('pipeline-evaluate', inputs => ARRAY['clicks-curated@1'], depends_on => ARRAY[:train]::bigint[],
                        params => jsonb_build_object('model_job', :train)) AS evaluate \\gset
SELECT id, job_type, coalesce(array_to_string(awaits_data, ', '), '-') AS waits_for
FROM tinytemp.jobs WHERE job_type LIKE 'pipeline-%' ORDER BY id;"
wait_finished "job_type LIKE 'pipeline-%'" 60
step "Each stage's output: a new, immutable version in the registry, with its rows and checksum" \
"SELECT name, version, layer, rows, bytes, left(checksum, 19) AS checksum, created_by_job AS job,
       jsonb_strip_nulls(jsonb_build_object('duplicates_removed', meta->'duplicates_removed',
         'bad_rows_removed', meta->'bad_rows_removed', 'partitions', meta->'partitions',
         'compression', meta->'compression')) AS what_the_stage_did
FROM tinytemp.datasets ORDER BY id;"
step "The trained model's lineage, down to the raw file (tinytemp.lineage)" \
"SELECT l.depth, l.name, l.version, l.layer, replace(l.uri, '$DATA', '\$TINYTEMP_DATA_DIR') AS uri
FROM tinytemp.lineage l JOIN tinytemp.jobs j ON j.id = l.job_id
WHERE j.job_type = 'pipeline-train' ORDER BY l.depth;"
step "The model's run, and the evaluation on the same curated version" \
"SELECT id, job_type, state, metrics_final, left(result::text, 90) AS result
FROM tinytemp.runs WHERE job_type IN ('pipeline-train', 'pipeline-evaluate') ORDER BY id;"
kill -TERM "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true

# What a job gets: a node with four GPUs (declared: this machine may have
# none) gives each job its own; a job over its memory is killed at its limit.
pids=()
"$WORKER" --name gpu-node-4 --slots 4 --cpus 2 --memory-mb 8000 --gpus 4 --gpu-type a100 \
	--config "$TT_REPO/worker_client/handlers/limits.example.conf" --poll-interval 1 \
	2>"$LOGDIR/gpu-node-4.log" &
pids+=($!)
sleep 1
step "A node with four GPUs; two one-GPU jobs and a two-GPU job start together, and a job asks for 64 MB but uses 300" \
"SELECT tinytemp_enqueue('gpu-probe', gpus => 1, gpu_type => 'a100', params => '{\"hold_s\": 2}') AS a,
       tinytemp_enqueue('gpu-probe', gpus => 1, gpu_type => 'a100', params => '{\"hold_s\": 2}') AS b,
       tinytemp_enqueue('gpu-probe', gpus => 2, gpu_type => 'a100', params => '{\"hold_s\": 2}') AS c,
       tinytemp_enqueue('memory-hog', memory_mb => 64, max_attempts => 1, params => '{\"mb\": 300}') AS hog;"
wait_finished "job_type IN ('gpu-probe', 'memory-hog')" 30
step "Each job saw its own GPUs (CUDA_VISIBLE_DEVICES), recorded on the job; the memory hog failed at its limit" \
"SELECT id, job_type, gpus, gpu_indices, started_at::time(1) AS started, finished_at::time(1) AS finished, state,
       coalesce(result->>'CUDA_VISIBLE_DEVICES', last_error) AS saw_or_error
FROM tinytemp.jobs WHERE job_type IN ('gpu-probe', 'memory-hog') ORDER BY id;"
kill -TERM "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
step "Ranking under uncertainty: each prediction is a distribution (median, spread); a job that has run past its range costs more than a fresh one (tinytemp.rank_cost, the inverse Gittins index)" \
"SELECT id, job_type, coalesce(model, '-') AS model, round(predicted_runtime_s) AS median_s,
       round(predicted_spread::numeric, 2) AS spread,
       round(tinytemp.rank_cost(predicted_runtime_s, predicted_spread, 0)) AS cost_fresh,
       round(tinytemp.rank_cost(predicted_runtime_s, predicted_spread, predicted_runtime_s)) AS cost_after_1x,
       round(tinytemp.rank_cost(predicted_runtime_s, predicted_spread, 10 * predicted_runtime_s)) AS cost_after_10x
FROM tinytemp.jobs WHERE predicted_spread IS NOT NULL AND model IS NOT NULL ORDER BY id LIMIT 5;"
echo
echo "What one worker logged (one line per event):"

sed 's/^/   /' "$LOGDIR/cpu-node-1.log" | head -20
echo
echo "Demo finished; the workers drained and the cluster in .tinytemp/demo is stopped."

#!/usr/bin/env bash
# pg_dump and pg_restore of a database that uses tinytemp: jobs in every
# state, their history, workers, a reservation and a trained model are
# dumped, restored into a new database without an error, and the restored
# queue carries on: new ids follow the old ones (the sequences were
# dumped), the bootstrap model does not collide with the dumped ones, and
# workers claim, ack and fail as before.
source "$(dirname "$0")/common.bash"

SRC=tt_dump_src
DST=tt_dump_dst
dropdb --if-exists "$DST" 2>/dev/null
dropdb --if-exists "$SRC" 2>/dev/null
createdb "$SRC" && q -d "$SRC" -c 'CREATE EXTENSION tinytemp'
tap $? "a database with tinytemp"

# Jobs in every state, on the virtual clock of a fixed day.
q -d "$SRC" >/dev/null 2>&1 <<'SQL'
SET tinytemp.clock = '2100-01-01 00:00:00+00';
-- dump-gpu is faster, but not so much faster that the others leave it their jobs.
SELECT tinytemp_register_worker('dump-gpu', 8, 32768, 2, 'a100', '{"speed": 1.5}');
SELECT tinytemp_register_worker('dump-cpu', 4, 8192);
SELECT tinytemp_register_worker('dump-idle', 4, 8192);
-- succeeded, failed (dead-lettered), cancelled, running, pending (delayed and ready), a gang assigned
SELECT tinytemp_enqueue('training', 'resnet50', '{"lr": 0.1}', dataset_size => 50000, epochs => 5,
						gpus => 1, gpu_type => 'a100', tenant => 'vision', priority => 9);
SELECT tinytemp_enqueue('eval', max_attempts => 1, priority => 8);
SELECT tinytemp_enqueue('inference', priority => 7);
SELECT tinytemp_enqueue('preprocess', priority => 6, runtime_estimate_s => 30);
SELECT tinytemp_ack(id, worker_id, '{"top1": 0.76}') FROM tinytemp_claim(1, 1);
SELECT tinytemp_fail(id, worker_id, 'OOM', false) FROM tinytemp_claim(2, 1);
SELECT tinytemp_cancel(3);
SELECT count(*) FROM tinytemp_claim(2, 1);
SELECT tinytemp_enqueue('training', run_after => '2100-01-02', tenant => 'nlp');
SELECT tinytemp_enqueue('training', tenant => 'nlp', depends_on => ARRAY[4]::bigint[]);
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 600);
SELECT tinytemp_schedule();
SELECT tinytemp_train_predictor('tinytemp.bootstrap_jobs');
SQL
summary="SELECT string_agg(state || ':' || n, ' ' ORDER BY state) FROM
           (SELECT state, count(*) n FROM tinytemp.jobs GROUP BY state) s"
before=$(q -d "$SRC" -c "$summary")
is "$before" "assigned:2 cancelled:1 failed:1 pending:2 running:1 succeeded:1" \
	"the source holds jobs in every state"
q -d "$SRC" -c "INSERT INTO tinytemp.reservations VALUES (6, 3, '2100-01-01 01:00:00+00', 1, 1024, 0, 'backfill', '2100-01-01')"
snapshot() {
	q -d "$1" -c "SELECT md5(string_agg(j::text, '|' ORDER BY id)) FROM tinytemp.jobs j"
	q -d "$1" -c "SELECT md5(string_agg(h::text, '|' ORDER BY id)) FROM tinytemp.jobs_history h"
	q -d "$1" -c "SELECT md5(string_agg(w::text, '|' ORDER BY id)) FROM tinytemp.workers w"
	q -d "$1" -c "SELECT md5(string_agg(r::text, '|' ORDER BY job_id)) FROM tinytemp.reservations r"
	q -d "$1" -c "SELECT string_agg(version || ':' || source || ':' || md5(model), ' ' ORDER BY version)
	              FROM tinytemp.predictor_models"
}
src_state=$(snapshot "$SRC")

pg_dump -Fc -f "$TMP/dump" "$SRC" 2>"$TMP/dump.log"
tap $? "pg_dump succeeds"
createdb "$DST"
pg_restore --exit-on-error -d "$DST" "$TMP/dump" >"$TMP/restore.log" 2>&1
status=$?
tap $status "pg_restore succeeds, without an error"
[ $status = 0 ] || sed 's/^/# /' "$TMP/restore.log"
bail_out

is "$(snapshot "$DST")" "$src_state" \
	"jobs, history, workers, reservations and models are restored as they were"
is "$(q -d "$DST" -c "SELECT count(*) FROM tinytemp.predictor_models WHERE version = 1")" 1 \
	"one bootstrap model, made by CREATE EXTENSION, not a second from the dump"

# The restored queue carries on.
max_job=$(q -d "$SRC" -c "SELECT max(id) FROM tinytemp.jobs")
max_event=$(q -d "$SRC" -c "SELECT max(id) FROM tinytemp.jobs_history")
max_worker=$(q -d "$SRC" -c "SELECT max(id) FROM tinytemp.workers")
max_model=$(q -d "$SRC" -c "SELECT max(version) FROM tinytemp.predictor_models")
new_job=$(q -d "$DST" -c "SET tinytemp.clock = '2100-01-01 00:00:00+00'" \
	-c "SELECT tinytemp_enqueue('training', priority => 100)")
tap $([ "$new_job" -gt "$max_job" ]; echo $?) "a new job gets a new id ($new_job > $max_job)"
new_worker=$(q -d "$DST" -c "SET client_min_messages = error" \
	-c "SELECT tinytemp_register_worker('dump-new', 8, 16384)" | tail -1)
tap $([ "$new_worker" -gt "$max_worker" ]; echo $?) "a new worker gets a new id ($new_worker > $max_worker)"
claimed=$(q -d "$DST" -c "SET tinytemp.clock = '2100-01-01 00:00:01+00'" \
	-c "SELECT string_agg(id::text, ',') FROM tinytemp_claim($new_worker, 1)")
is "$claimed" "$new_job" "the new worker claims the new job"
q -d "$DST" -c "SET tinytemp.clock = '2100-01-01 00:00:02+00'" -c "SELECT tinytemp_ack($new_job, $new_worker)" >/dev/null
tap $? "and acks it"
tap $([ "$(q -d "$DST" -c "SELECT min(id) FROM tinytemp.jobs_history WHERE job_id = $new_job")" -gt "$max_event" ]; echo $?) \
	"its history follows the restored history"
running=$(q -d "$DST" -c "SELECT id || ':' || worker_id FROM tinytemp.jobs WHERE state = 'running'")
q -d "$DST" -c "SET tinytemp.clock = '2100-01-01 00:00:03+00'" \
	-c "SELECT tinytemp_ack(${running%%:*}, ${running##*:})" >/dev/null
tap $? "a job running at the dump is acked by its worker after the restore"
members=$(q -d "$DST" -c "SET tinytemp.clock = '2100-01-01 00:00:04+00'" \
	-c "SELECT count(*) FROM (SELECT tinytemp_claim(id, 1) FROM tinytemp.workers WHERE name IN ('dump-cpu', 'dump-idle')) c")
is "$members" 2 "the gang's assigned members are claimed by their workers"
version=$(q -d "$DST" -c "SELECT tinytemp_train_predictor('tinytemp.bootstrap_jobs') ->> 'version'")
tap $([ "$version" -gt "$max_model" ]; echo $?) "a new model gets a new version ($version > $max_model)"

dropdb "$DST"
dropdb "$SRC"
done_testing

#!/usr/bin/env bash
# The background worker retrains the runtime predictor from the runtimes
# that jobs really took, once tinytemp.retrain_after jobs have succeeded
# (50 in the test cluster), and the new model becomes current at once.
set -u
n=0 failures=0
check() {	# check DESCRIPTION COMMAND...: one TAP line
	n=$((n + 1))
	if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failures=$((failures + 1)); fi
}
q() { /usr/lib/postgresql/15/bin/psql -XAtq -v ON_ERROR_STOP=1 "$@"; }

check "tinytemp.retrain_after is low enough for this test" test "$(q -c 'SHOW tinytemp.retrain_after')" -le 80
check "and tinytemp.retrain_interval lets it retrain at once" test "$(q -c 'SHOW tinytemp.retrain_interval')" = 0
before=$(q -c "SELECT coalesce(max(version), 0) FROM tinytemp.predictor_models")
q >/dev/null <<'SQL'
SET client_min_messages = error;
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers RESTART IDENTITY;
SELECT tinytemp_register_worker('trainer', 100000, 100000000, 10000, 'h100');
SELECT count(tinytemp_enqueue(s.job_type, s.model, '{}', 0, s.dataset_size, s.epochs, s.batch_size,
                              s.cpus, s.memory_mb, s.gpus, NULL))
FROM tinytemp_synthetic_jobs(80, 99) s;
-- Measured runtimes, committed with the acks: a job's runtime is its id in seconds.
BEGIN;
SELECT count(tinytemp_ack(id, 1)) FROM tinytemp_claim(1, 1000);
UPDATE tinytemp.jobs SET started_at = finished_at - make_interval(secs => id) WHERE state = 'succeeded';
COMMIT;
SQL
for _ in $(seq 1 50); do
	[ "$(q -c "SELECT count(*) FROM tinytemp.predictor_models WHERE version > $before AND source = 'tinytemp history'")" -gt 0 ] && break
	sleep 0.2
done
check "a model learnt from history appeared within 10 s" \
	test "$(q -c "SELECT count(*) FROM tinytemp.predictor_models WHERE version > $before AND source = 'tinytemp history'")" -gt 0
check "it learnt from the 80 jobs that succeeded" \
	test "$(q -c "SELECT rows_used FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1")" = 80
check "it is the current model: a new session predicts with it" \
	test "$(q -c "SELECT tinytemp_predict_runtime('training', 'resnet50', 1000, 1, 32, 1, 0, NULL, 1024) BETWEEN 1 AND 100")" = t
q -c "TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers" >/dev/null
echo "1..$n"
[ $failures = 0 ]

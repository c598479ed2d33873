#!/usr/bin/env bash
# Without shared_preload_libraries the SQL API still works, and registering a
# worker warns that no background worker expires lost leases.
set -u
source "$(dirname "$0")/../../scripts/lib.sh"
n=0 failures=0
check() {	# check DESCRIPTION COMMAND...: one TAP line
	n=$((n + 1))
	if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failures=$((failures + 1)); fi
}

trap 'tt_cluster_stop nopreload' EXIT
tt_cluster_start nopreload "${TINYTEMP_NOPRELOAD_PORT:-54331}" "shared_preload_libraries = ''" || exit 1
export PGDATABASE=postgres
q() { $TT_PGBIN/psql -XAtq -v ON_ERROR_STOP=1 "$@"; }

check "CREATE EXTENSION works without preloading" q -c 'CREATE EXTENSION tinytemp'
check "no tinytemp scheduler runs" \
	test "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'")" = 0
warning=$(q -c "SELECT tinytemp_register_worker('w', 2, 2048)" 2>&1 >/dev/null)
check "registering a worker warns that the background worker is not running" \
	grep -q 'WARNING:  the tinytemp background worker is not running' <<<"$warning"
out=$(q <<'SQL'
SET client_min_messages = error;
SELECT tinytemp_enqueue('training');
SELECT id FROM tinytemp_claim(1);
SELECT tinytemp_ack(1, 1);
SELECT state FROM tinytemp.jobs WHERE id = 1;
SQL
)
check "enqueue, claim and ack work" test "$(tail -n 1 <<<"$out")" = succeeded
out=$(q <<'SQL'
SET client_min_messages = error;
SELECT tinytemp_enqueue('training');
SELECT id FROM tinytemp_claim(1);
UPDATE tinytemp.jobs SET lease_until = now() - interval '1 second' WHERE id = 2;
SELECT tinytemp_expire_leases();
SELECT state FROM tinytemp.jobs WHERE id = 2;
SQL
)
check "tinytemp_expire_leases() by hand requeues a lost job" test "$(tail -n 1 <<<"$out")" = pending
got=$( ( sleep 0.5; q -c "SET client_min_messages = error" -c "SELECT tinytemp_enqueue('training', queue => 'gpu')" >/dev/null ) &
	$TT_PGBIN/psql -XAtq -c 'LISTEN tinytemp_jobs' -c 'SELECT pg_sleep(2)' -c 'SELECT 1' 2>&1; wait)
check "without a background worker, enqueue notifies itself with the queue as payload" \
	grep -q 'notification "tinytemp_jobs" with payload "gpu" received' <<<"$got"

# The upgrade chain: 0.1 then ALTER EXTENSION UPDATE gives what the default version installs.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.1'" >/dev/null 2>&1
check "version 0.1 installs without the predictor" \
	test "$(q -c "SELECT extversion || ' ' || (to_regproc('tinytemp_predict_runtime') IS NULL) FROM pg_extension WHERE extname = 'tinytemp'")" = "0.1 true"
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
check "ALTER EXTENSION tinytemp UPDATE reaches 0.8 with a bootstrap model" \
	test "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'tinytemp'") $(q -c "SELECT source FROM tinytemp.predictor_models")" = "0.8 tinytemp.bootstrap_jobs"
check "the updated extension predicts" \
	test "$(q -c "SELECT tinytemp_predict_runtime('training', 'resnet50', 50000, 5, 64, 8, 1, 'a100', 32000) > 0")" = t
check "the updated extension plans: tinytemp_schedule() runs a pass" \
	test "$(q -c "SELECT tinytemp_schedule()->>'ran'")" = true

# A 0.2 installation with jobs in it keeps them through the update,
# a gang that 0.2 stored as one row becomes its members; until the update,
# the new library refuses the old enqueue clearly instead of misreading it.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.2'" >/dev/null 2>&1
err=$(q -c "SELECT tinytemp_enqueue('early')" 2>&1)
check "before the update, enqueue says to run ALTER EXTENSION UPDATE" \
	grep -q 'HINT:  Run ALTER EXTENSION tinytemp UPDATE' <<<"$err"
q -c "INSERT INTO tinytemp.jobs (job_type) VALUES ('kept')" \
	-c "INSERT INTO tinytemp.jobs (job_type, gang_size) VALUES ('pair', 2)" >/dev/null
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
q -c "SELECT tinytemp_register_worker('upgrader', 2, 2048)" >/dev/null 2>&1
check "0.2 to 0.8 keeps the pending job, and a claim takes it" \
	test "$(q -c "SELECT job_type FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'upgrader'))")" = kept
check "the 0.2 gang of two became two members" \
	test "$(q -c "SELECT count(*) || ' ' || count(DISTINCT gang_id) FROM tinytemp.jobs WHERE job_type = 'pair'")" = "2 1"

# A 0.3 installation with a job running keeps it through the update to 0.8:
# its worker, registered before workers belonged to roles, still reports
# (as the superuser, who acts for every worker), and row-level security is
# on.  Until the update, registering says to run ALTER EXTENSION UPDATE.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.3'" >/dev/null 2>&1
# (The worker row is written as 0.3's registration wrote it: this library registers only on 0.4.)
q -c "INSERT INTO tinytemp.workers (name, cpus, memory_mb) VALUES ('old', 2, 2048)" \
	-c "SELECT tinytemp_enqueue('running')" -c "SELECT tinytemp_enqueue('waiting')" \
	-c "SELECT count(*) FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'old'))" >/dev/null
err=$(q -c "SELECT tinytemp_register_worker('early', 2, 2048)" 2>&1)
check "before the update, registering says to run ALTER EXTENSION UPDATE" \
	grep -q 'HINT:  Run ALTER EXTENSION tinytemp UPDATE' <<<"$err"
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
check "0.3 to 0.8: the extension is at 0.8, with row-level security on tinytemp.jobs" \
	test "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'tinytemp'") $(q -c "SELECT relrowsecurity FROM pg_class WHERE oid = 'tinytemp.jobs'::regclass")" = "0.8 t"
check "the job running before the update is acked by its worker after it" \
	q -o /dev/null -c "SELECT tinytemp_ack((SELECT id FROM tinytemp.jobs WHERE job_type = 'running'), (SELECT id FROM tinytemp.workers WHERE name = 'old'))"
check "and the waiting job is claimed" \
	test "$(q -c "SELECT job_type FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'old'))")" = waiting

# A 0.4 installation: tinytemp-worker, which reports and claims with
# tinytemp_ack_and_claim (0.5), falls back to tinytemp_ack_many and
# tinytemp_claim there, and runs every job; after the update to 0.8 a job
# running since before it is acked, and the next claimed, in one call.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.4'" >/dev/null 2>&1
q -c "SELECT count(tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')) FROM generate_series(1, 12)" >/dev/null
log=$TT_STATE/nopreload-worker.log
"$TT_REPO/worker_client/tinytemp-worker" --name on-0.4 --slots 4 --handler sim=simulate \
	--cpus 8 --memory-mb 65536 --poll-interval 0.2 >/dev/null 2>"$log" &
wpid=$!
for _ in $(seq 100); do
	[ "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE state = 'succeeded'")" = 12 ] && break
	sleep 0.1
done
kill -TERM $wpid; wait $wpid
check "on 0.4, tinytemp-worker runs all 12 jobs without tinytemp_ack_and_claim" \
	test "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE state = 'succeeded'")" = 12
check "and says once that it acks and claims in two calls" \
	test "$(grep -c 'lacks tinytemp_ack_and_claim' "$log")" = 1
q -c "SELECT tinytemp_enqueue('before')" -c "SELECT tinytemp_enqueue('after')" \
	-c "SELECT count(*) FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'on-0.4'))" >/dev/null
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
check "0.4 to 0.8: the job running before the update is acked and the next claimed in one call" \
	test "$(q -c "SELECT job_type FROM tinytemp_ack_and_claim(ARRAY(SELECT id FROM tinytemp.jobs WHERE job_type = 'before'), (SELECT id FROM tinytemp.workers WHERE name = 'on-0.4'))") $(q -c "SELECT state FROM tinytemp.jobs WHERE job_type = 'before'")" = "after succeeded"

# A 0.5 installation with a job running: after the update to 0.8 its worker
# reports the job's metrics and logs.  Without the library preloaded nothing
# is counted, and tinytemp_metrics() says what it needs.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.5'" >/dev/null 2>&1
q -c "SET client_min_messages = error" -c "SELECT tinytemp_register_worker('on-0.5', 2, 2048)" -c "SELECT tinytemp_enqueue('tracked')" \
	-c "SELECT count(*) FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'on-0.5'))" >/dev/null
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
check "0.5 to 0.8: the running job's worker reports its metrics and logs" \
	test "$(q -c "SELECT tinytemp_report_metrics(id, worker_id, '[{\"step\": 1, \"metrics\": {\"loss\": 0.5}}]')
				  + tinytemp_report_logs(id, worker_id, '[{\"stream\": \"stdout\", \"line\": \"hi\"}]')
				  FROM tinytemp.jobs WHERE job_type = 'tracked'") $(q -c "SELECT metrics_final FROM tinytemp.runs WHERE job_type = 'tracked'")" = '2 {"loss": 0.5}'
# A 0.6 installation: enqueue keeps working with its 0.6 signature until the
# update; after it, a job declares the datasets it reads.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.6'" >/dev/null 2>&1
check "on 0.6, tinytemp_enqueue (without inputs) still enqueues" \
	test "$(q -c "SELECT count(tinytemp_enqueue('plain'))")" = 1
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
q -c "SELECT tinytemp_enqueue('reader', inputs => ARRAY['events@1'])" >/dev/null
check "0.6 to 0.8: the job enqueued before the update is kept, and a new one awaits its input" \
	test "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE job_type = 'plain'") $(q -c "SELECT awaits_data FROM tinytemp.jobs WHERE job_type = 'reader'")" = "1 {events@1}"
# A 0.7 installation: until the update the library enqueues, plans and
# requeues as 0.7 did (no attained service, no spread); after it, jobs have
# attained_s and the rank cost function.
q -c 'DROP EXTENSION tinytemp' -c "CREATE EXTENSION tinytemp VERSION '0.7'" >/dev/null 2>&1
q -c "SET client_min_messages = error" -c "SELECT tinytemp_register_worker('on-0.7', 2, 2048)" \
	-c "SELECT tinytemp_enqueue('long', runtime_estimate_s => 3600)" \
	-c "SELECT count(*) FROM tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'on-0.7'))" \
	-c "SELECT count(*) FROM tinytemp_enqueue_many('[{\"job_type\": \"also\", \"cpus\": 4}]')" >/dev/null
check "on 0.7, enqueue, enqueue_many and a planner pass work with this library" \
	test "$(q -c "SELECT count(*) FROM tinytemp.jobs") $(q -c "SELECT tinytemp_schedule()->>'ran'")" = "2 true"
q -c 'ALTER EXTENSION tinytemp UPDATE' >/dev/null 2>&1
check "0.7 to 0.8: the jobs have no attained service yet, and tinytemp.rank_cost exists" \
	test "$(q -c "SELECT sum(attained_s) FROM tinytemp.jobs") $(q -c "SELECT tinytemp.rank_cost(100, NULL, 40)")" = "0 60"
err=$(q -c "SELECT tinytemp_metrics()" 2>&1)
check "without the library preloaded, tinytemp_metrics() says it needs shared_preload_libraries" \
	grep -q "tinytemp's metrics need tinytemp in shared_preload_libraries" <<<"$err"
echo "1..$n"
[ $failures = 0 ]

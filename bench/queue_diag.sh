#!/usr/bin/env bash
# bench/queue_diag.sh: where tinytemp's claim+ack and enqueue spend their
# time, next to the plain-SQL queue of bench/queue_bench.sh.
#
# A ladder of pgbench runs (8 clients, -M prepared, durable settings) that
# takes tinytemp's work apart one layer at a time: the SQL API; the same
# statements sent as plain SQL (no C function layer); without the history
# inserts; the plain queue's statements on tinytemp.jobs; the same on a copy
# of tinytemp.jobs without its CHECK constraints; the plain queue.  Enqueue
# likewise, with and without the NOTIFY.  Each step reports jobs/s and the
# cluster's CPU time per job, then pg_stat_statements (track = all) breaks
# the SQL API's runs down by nested statement.  The diag/ scripts copy the
# statements of src/claim.c and src/jobs.c: refresh them when those change.
#
# Environment: TINYTEMP_SKIP_BUILD=1, BENCH_DURATION (default 5),
# BENCH_ROUNDS (default 2), BENCH_DIAG_PORT (default 54361).
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-2}
PORT=${BENCH_DIAG_PORT:-54361}
SCRIPTS=$BENCH_DIR/queue
DB=bench
NAME=benchdiag
PAYLOAD='{"model": "resnet50", "lr": 0.01, "epochs": 3}'

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi

LOGS=$TT_STATE/diag-logs
trap 'tt_cluster_stop $NAME' EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_cluster_start $NAME "$PORT" "tinytemp.database = '$DB'
checkpoint_timeout = '30min'
max_wal_size = '4GB'
shared_preload_libraries = 'tinytemp, pg_cron, pg_stat_statements'
pg_stat_statements.track = 'all'"
export PGDATABASE=$DB
$TT_PGBIN/createdb "$DB"
tt_cluster_restart $NAME
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
psql_q -c 'CREATE EXTENSION tinytemp' -c 'CREATE EXTENSION pg_stat_statements' \
	-f "$SCRIPTS/plain_schema.sql" \
	-c 'CREATE TABLE jobs_nocheck (LIKE tinytemp.jobs INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING IDENTITY)'
rm -rf "$LOGS"
mkdir -p "$LOGS"
# The plain statements on the copy without CHECK constraints.
sed -E 's/tinytemp\.jobs($|[^_])/jobs_nocheck\1/g' "$SCRIPTS/diag/plain_sql_on_jobs.sql" >"$LOGS/plain_sql_on_nocheck.sql"

cluster_ticks() {
	local pm t p
	pm=$(head -1 "$TT_STATE/$NAME/postmaster.pid")
	t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
	for p in $(cat /proc/"$pm"/task/*/children 2>/dev/null); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
TICKS_PER_S=$(getconf CLK_TCK)

# Ready jobs in every queue table, vacuumed and checkpointed.
prepare() {
	psql_q -v payload="$PAYLOAD" >/dev/null <<'SQL'
SELECT tinytemp_enqueue('train', params => :'payload')
FROM generate_series(1, 30000 - (SELECT count(*) FROM tinytemp.jobs WHERE state = 'pending'));
INSERT INTO plain_jobs (kind, payload) SELECT 'train', :'payload'
FROM generate_series(1, 30000 - (SELECT count(*) FROM plain_jobs WHERE state = 'pending'));
INSERT INTO jobs_nocheck (job_type, params) SELECT 'train', :'payload'
FROM generate_series(1, 30000 - (SELECT count(*) FROM jobs_nocheck WHERE state = 'pending'));
VACUUM ANALYZE;
CHECKPOINT;
SELECT pg_stat_statements_reset();
SQL
	sleep 0.5
}

declare -A TPS CPU
# step KEY SCRIPT: one pgbench run; accumulates jobs/s and CPU us/job.
step() {
	local key=$1 script=$2 log=$LOGS/${1//\//-}.log t0 t1 tps txs
	prepare
	t0=$(cluster_ticks)
	$TT_PGBIN/pgbench -n -M prepared -c 8 -j 2 -T "$DURATION" -D w=0 -f "$script" "$DB" >"$log" 2>&1 \
		|| { echo "   $key FAILED, see $log"; return 0; }
	sleep 0.5
	t1=$(cluster_ticks)
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
	txs=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	TPS[$key]=$(awk -v a="${TPS[$key]:-0}" -v b="$tps" 'BEGIN { print a + b }')
	CPU[$key]=$(awk -v a="${CPU[$key]:-0}" -v t=$((t1 - t0)) -v hz="$TICKS_PER_S" -v n="$txs" \
		'BEGIN { print a + t / hz * 1e6 / n }')
	printf '   %-34s %7.0f jobs/s %6.0f us CPU/job\n' "$key" "$tps" \
		"$(awk -v t=$((t1 - t0)) -v hz="$TICKS_PER_S" -v n="$txs" 'BEGIN { print t / hz * 1e6 / n }')"
}

# Per nested statement: calls, mean time, shared buffers and WAL per call.
statements() {
	psql_q -F ' | ' -c "SELECT to_char(calls, '999999'), to_char(mean_exec_time, '90.999') || ' ms',
			to_char(shared_blks_hit::numeric / calls, '9990.0') || ' buf',
			to_char(wal_bytes / calls, '99990') || ' B WAL',
			left(regexp_replace(query, '\s+', ' ', 'g'), 80)
		FROM pg_stat_statements WHERE calls > 100 ORDER BY total_exec_time DESC LIMIT 8" | sed 's/^/     /'
}

CLAIM_STEPS="api:$SCRIPTS/tinytemp_claim_ack.sql
sql:$SCRIPTS/diag/tt_sql_claim_ack.sql
sql_nohistory:$SCRIPTS/diag/tt_sql_claim_ack_nohist.sql
plain_sql_on_tinytemp_jobs:$SCRIPTS/diag/plain_sql_on_jobs.sql
plain_sql_on_nocheck_copy:$LOGS/plain_sql_on_nocheck.sql
plain_queue:$SCRIPTS/plain_claim_ack.sql"
ENQUEUE_STEPS="api:$SCRIPTS/tinytemp_enqueue.sql
sql:$SCRIPTS/diag/tt_sql_enqueue.sql
sql_nonotify:$SCRIPTS/diag/tt_sql_enqueue_nonotify.sql
plain_queue_notify:$SCRIPTS/plain_enqueue_notify.sql
plain_queue:$SCRIPTS/plain_enqueue.sql"

for round in $(seq 1 "$ROUNDS"); do
	for kind in claim enqueue; do
		tt_log "round $round: $kind"
		if [ $kind = claim ]; then steps=$CLAIM_STEPS; else steps=$ENQUEUE_STEPS; fi
		for s in $steps; do
			step "$kind/${s%%:*}" "${s#*:}"
			if [ "${s%%:*}" = api ] && [ "$round" = 1 ]; then statements; fi
		done
	done
done

tt_log "ladder, mean of $ROUNDS rounds (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-38s %9s %12s\n' step jobs/s "CPU us/job"
for kind in claim enqueue; do
	if [ $kind = claim ]; then steps=$CLAIM_STEPS; else steps=$ENQUEUE_STEPS; fi
	for s in $steps; do
		k="$kind/${s%%:*}"
		awk -v k="$k" -v t="${TPS[$k]:-0}" -v c="${CPU[$k]:-0}" -v r="$ROUNDS" \
			'BEGIN { printf "%-38s %9.0f %12.0f\n", k, t / r, c / r }'
	done
done

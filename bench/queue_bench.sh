#!/usr/bin/env bash
# bench/queue_bench.sh: jobs per second of tinytemp's queue core, side by side
# with a plain-SQL SKIP LOCKED queue and the machine's single-row commit rate.
#
# Every contender runs in the same throwaway cluster, with pgbench and the
# same clients, duration and protocol (-M prepared), from its own script in
# bench/queue/.  The cluster keeps PostgreSQL's durable defaults (fsync,
# synchronous_commit, full_page_writes); CONF below lists the few settings
# changed, the same for every contender, and why.
#
# Besides jobs/s, each run reports the CPU time the cluster's processes spent
# per job (backends, WAL writer, checkpointer, background workers; not
# pgbench).  On a shared machine that figure moves much less than jobs/s.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no make)
#   BENCH_DURATION=N        seconds per pgbench run (default 10)
#   BENCH_ROUNDS=N          claim+ack rounds; the two queues alternate going first (default 2)
#   BENCH_BATCH=0           skip the batch variants (up to 8 jobs per claim)
#   BENCH_PORT=N            port of the throwaway cluster (default 54360)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
BATCH=${BENCH_BATCH:-1}
PORT=${BENCH_PORT:-54360}
CLIENTS=8
THREADS=2
SCRIPTS=$BENCH_DIR/queue
DB=bench

# - tinytemp.database (tt_served_cluster): the background worker serves the benchmark database,
#   as in production (it also expires leases, which costs a little).
# - checkpoint_timeout, max_wal_size: every run starts right after an explicit
#   CHECKPOINT, and no timed or size-triggered checkpoint falls inside one
#   contender's run and not another's.  Durability is unchanged.
CONF="checkpoint_timeout = '30min'
max_wal_size = '4GB'"

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi

LOGS=$TT_STATE/bench-logs
trap 'tt_cluster_stop bench' EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_served_cluster bench "$PORT" "$DB" "$CONF"
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
psql_q -f "$SCRIPTS/plain_schema.sql"
rm -rf "$LOGS"
mkdir -p "$LOGS"

# CPU ticks spent so far by the cluster: the postmaster, its live children,
# and (through the postmaster's cutime and cstime) its children that exited.
cluster_ticks() {
	local pm t p
	pm=$(head -1 "$TT_STATE/bench/postmaster.pid")
	t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
	for p in $(cat /proc/"$pm"/task/*/children 2>/dev/null); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
TICKS_PER_S=$(getconf CLK_TCK)

# Bring both queues to at least $1 ready jobs, same payload on both sides;
# tinytemp's through its own API, so its history is written as in production.
top_up() {
	psql_q -v target="$1" >/dev/null <<'SQL'
SELECT tinytemp_enqueue('train', params => '{"model": "resnet50", "lr": 0.01, "epochs": 3}')
FROM generate_series(1, :target - (SELECT count(*) FROM tinytemp.jobs WHERE state = 'pending'));
INSERT INTO plain_jobs (kind, payload)
SELECT 'train', '{"model": "resnet50", "lr": 0.01, "epochs": 3}'
FROM generate_series(1, :target - (SELECT count(*) FROM plain_jobs WHERE state = 'pending'));
SQL
}

# Each run starts from the same footing: dead rows vacuumed, statistics
# fresh, dirty buffers flushed.
settle() {
	psql_q -c 'VACUUM ANALYZE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, plain_jobs, commit_probe' \
		-c 'CHECKPOINT'
	sleep 0.5					# let the postmaster reap the backends used so far
}

RESULTS=()

# run NAME SCRIPT JOBS_PER_TX COMMITS_PER_JOB CONTENDER OPERATION
# One pgbench run; appends "contender|operation|jobs/s|commits/s|latency|cpu us/job|status".
run() {
	local name=$1 script=$2 per_tx=$3 commits=$4 contender=$5 operation=$6
	local log=$LOGS/$name.log rc=0 tps lat txs t0 t1 status=ok
	settle
	printf '   %-24s ' "$name"
	t0=$(cluster_ticks)
	$TT_PGBIN/pgbench -n -M prepared -c $CLIENTS -j $THREADS -T "$DURATION" -D w=0 \
		-f "$SCRIPTS/$script" "$DB" >"$log" 2>&1 || rc=$?
	sleep 0.5
	t1=$(cluster_ticks)
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
	txs=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	if [ "$rc" != 0 ] || [ -z "$tps" ] || [ -z "$txs" ]; then
		status="FAILED (see $log)"
		grep -m3 -E 'error|ERROR|aborted' "$log" | sed 's/^/      /' || true
	fi
	RESULTS+=("$(awk -v c="$contender" -v o="$operation" -v t="${tps:-0}" -v n="$per_tx" \
		-v k="$commits" -v l="${lat:-0}" -v x="${txs:-0}" -v dt=$((t1 - t0)) -v hz="$TICKS_PER_S" -v s="$status" \
		'BEGIN { printf "%s|%s|%f|%f|%s|%f|%s", c, o, t * n, t * n * k, l, (x ? dt / hz * 1e6 / (x * n) : 0), s }')")
	echo "${RESULTS[-1]}" | awk -F'|' '{ printf "%8.0f jobs/s %8.0f us CPU/job\n", $3, $6 }'
}

# Warn when a claim run found its queue empty.
check_not_dry() {
	local left
	left=$(psql_q -c "SELECT (SELECT count(*) FROM tinytemp.jobs WHERE state = 'pending') || ' ' ||
							 (SELECT count(*) FROM plain_jobs WHERE state = 'pending')")
	case " $left " in
		*" 0 "*) echo "   WARNING: a queue ran dry (ready jobs left, tinytemp plain: $left)" ;;
	esac
}

tt_log "environment"
psql_q -c 'SELECT version()'
echo "CPUs: $(nproc) ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
psql_q -F ' = ' -c "SELECT name, current_setting(name) FROM pg_settings
	WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
				   'shared_buffers', 'commit_delay', 'checkpoint_timeout', 'max_wal_size',
				   'autovacuum', 'shared_preload_libraries')
	ORDER BY name" | sed 's/^/  /'
echo "pgbench: -c $CLIENTS -j $THREADS -M prepared -T $DURATION per run; logs in $LOGS"

tt_log "single-row commit rate"
run commit_rate commit_rate.sql 1 1 "machine" "commit: 1-row INSERT"
COMMIT_TPS=$(echo "${RESULTS[0]}" | cut -d'|' -f3)

tt_log "enqueue"
run tinytemp_enqueue tinytemp_enqueue.sql 1 1 "tinytemp" "enqueue"
run plain_enqueue plain_enqueue.sql 1 1 "plain SKIP LOCKED" "enqueue"
run plain_enqueue_notify plain_enqueue_notify.sql 1 1 "plain (reference)" "enqueue + pg_notify"

# Enough ready jobs that no claim run can empty its queue: a job costs at
# least one commit, so no run claims more than the commit rate allows.
PREFILL=$(awk -v c="$COMMIT_TPS" -v d="$DURATION" 'BEGIN { n = int(c * d * 1.5); print (n < 20000 ? 20000 : n) }')
# The claim runs start from equal queues: what the enqueue runs left goes.
psql_q -c 'TRUNCATE tinytemp.jobs, tinytemp.jobs_history, plain_jobs'

tt_log "claim+ack, one job per claim ($ROUNDS rounds; $PREFILL ready jobs in each queue before each run)"
for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order="tinytemp plain"; else order="plain tinytemp"; fi
	for c in $order; do
		top_up "$PREFILL"
		if [ "$c" = tinytemp ]; then
			run "tinytemp_claim_ack_$round" tinytemp_claim_ack.sql 1 2 "tinytemp" "claim+ack"
		else
			run "plain_claim_ack_$round" plain_claim_ack.sql 1 2 "plain SKIP LOCKED" "claim+ack"
		fi
		check_not_dry
	done
done

if [ "$BATCH" = 1 ]; then
	tt_log "batch variants: claim up to 8 jobs in one transaction, ack each in its own"
	top_up "$PREFILL"
	run tinytemp_claim8_ack tinytemp_claim8_ack.sql 8 1.125 "tinytemp (batch)" "claim 8, 8 acks"
	check_not_dry
	top_up "$PREFILL"
	run plain_claim8_ack plain_claim8_ack.sql 8 1.125 "plain SKIP LOCKED (batch)" "claim 8, 8 acks"
	check_not_dry

	# Batched reports take more jobs per commit than the commit rate suggests.
	tt_log "worker protocol: claim up to 8 jobs, ack them in one call"
	top_up $((PREFILL * 2))
	run tinytemp_claim8_ackmany tinytemp_claim8_ackmany.sql 8 0.25 "tinytemp (worker proto)" "claim 8, ack_many 8"
	check_not_dry
	top_up $((PREFILL * 2))
	run plain_claim8_ackmany plain_claim8_ackmany.sql 8 0.25 "plain (same batching)" "claim 8, ack 8 at once"
	check_not_dry
fi

tt_log "results (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${RESULTS[@]}" | awk -F'|' -v commit="$COMMIT_TPS" '
	{
		c[NR] = $1; o[NR] = $2; j[NR] = $3; cm[NR] = $4; l[NR] = $5; u[NR] = $6; s[NR] = $7
		if ($1 == "tinytemp" && $2 == "claim+ack") { tc += $3; tu += $6; tn++ }
		if ($1 == "plain SKIP LOCKED" && $2 == "claim+ack") { pc += $3; pu += $6; pn++ }
		if ($1 == "tinytemp" && $2 == "enqueue") { te = $3; teu = $6 }
		if ($1 == "plain SKIP LOCKED" && $2 == "enqueue") { pe = $3; peu = $6 }
		if ($1 == "tinytemp (batch)") tb = $3
		if ($1 == "plain SKIP LOCKED (batch)") pb = $3
		if ($1 == "tinytemp (worker proto)") tw = $3
		if ($1 == "plain (same batching)") pw = $3
	}
	END {
		f = "%-26s %-21s %9s %10s %10s %11s %9s  %s\n"
		printf f, "contender", "operation", "jobs/s", "commits/s", "lat ms/tx", "CPU us/job", "x commit", ""
		printf f, "---------", "---------", "------", "---------", "---------", "----------", "--------", ""
		for (i = 1; i <= NR; i++)
			printf "%-26s %-21s %9.0f %10.0f %10.2f %11.0f %9.2f  %s\n", c[i], o[i], j[i], cm[i], l[i], u[i],
				   (commit > 0 ? j[i] / commit : 0), (s[i] == "ok" ? "" : s[i])
		if (tn) { tc /= tn; tu /= tn }
		if (pn) { pc /= pn; pu /= pn }
		print ""
		printf "machine commit rate:               %8.0f tx/s\n", commit
		printf "tinytemp claim+ack (mean of %d):    %8.0f jobs/s = %.2f x commit rate, %4.0f us CPU/job\n", tn, tc, tc / commit, tu
		printf "plain claim+ack (mean of %d):       %8.0f jobs/s = %.2f x commit rate, %4.0f us CPU/job\n", pn, pc, pc / commit, pu
		printf "tinytemp enqueue:                  %8.0f jobs/s = %.2f x commit rate, %4.0f us CPU/job\n", te, te / commit, teu
		printf "plain enqueue:                     %8.0f jobs/s = %.2f x commit rate, %4.0f us CPU/job\n", pe, pe / commit, peu
		print ""
		printf "RATIO tinytemp / plain, claim+ack:   %.2f  (target >= 1.50: %s)\n", (pc ? tc / pc : 0),
			   ((pc && tc / pc >= 1.5) ? "met" : "NOT met")
		printf "RATIO tinytemp / plain, enqueue:     %.2f\n", (pe ? te / pe : 0)
		if (tb && pb)
			printf "RATIO tinytemp / plain, batch of 8:  %.2f\n", tb / pb
		if (tw && pc)
			printf "RATIO tinytemp worker protocol / plain claim+ack:        %.2f  (target >= 1.50: %s)\n",
				   tw / pc, (tw / pc >= 1.5 ? "met" : "NOT met")
		if (tw && pb)
			printf "RATIO tinytemp worker protocol / plain batch of 8:       %.2f\n", tw / pb
		if (tw && pw)
			printf "RATIO tinytemp worker protocol / plain, same batching:   %.2f\n", tw / pw
	}'

#!/usr/bin/env bash
# bench/peers_bench.sh: tinytemp-worker side by side with the job queues people
# would pick instead, graphile-worker and pg-boss (pinned in
# bench/peers/package.json and package-lock.json), in one throwaway cluster.
#
# Every contender gets its own database in the same cluster, and every
# repetition runs all of them one after another (round-robin), so that they
# share the machine's weather.  Medians of BENCH_REPEAT repetitions.
#
# Jobs are no-ops.  "process" is always measured on a pre-filled queue, from
# the start of the first job to the end of the last one:
#   - graphile-worker: first call of the task function to the moment its jobs
#     table is seen empty (it deletes completed jobs; polled every 5 ms once
#     every job has run, so batched completions are counted in);
#   - pg-boss: min(started_on) to max(completed_on) of the queue's jobs;
#   - tinytemp: min(started_at) to max(finished_at) of the jobs, the workers
#     started after the jobs were enqueued.
# "enqueue" is one bulk call of N jobs, timed by the client, commit included:
# graphile-worker's addJobs, pg-boss's insert, and for tinytemp both one
# statement SELECT tinytemp_enqueue(...) FROM generate_series(1, N) and one
# call of tinytemp_enqueue_many with a JSON array of the N jobs, built by the
# server in the timed statement (psql's \timing).
#
# Contenders:
#   graphile-worker, defaults, concurrency 8
#   graphile-worker, batched: localQueue.size 500, completeJobBatchDelay 0
#   pg-boss, one work() with batchSize 100 (burstWhenBatchFull)
#   tinytemp-worker, built-in simulate handler at 0 s: 1 worker x 8 slots,
#     2 workers x 4 slots; one-slot workers 1, 4, 16 x 1 (BENCH_SLOT_JOBS jobs);
#     1 x 8 running /bin/true as the handler (a real process per job).
#
# The cluster keeps PostgreSQL's durable defaults (fsync, synchronous_commit);
# checkpoints are kept out of the runs (checkpoint_timeout, max_wal_size, and a
# CHECKPOINT before each run), the same for every contender.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no top-level make)
#   BENCH_JOBS=N            jobs per run (default 20000)
#   BENCH_SLOT_JOBS=N       jobs per one-slot-worker run (default 4000)
#   BENCH_REPEAT=N          repetitions; medians are printed (default 3)
#   BENCH_PORT=N            port of the throwaway cluster (default 54397)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

JOBS=${BENCH_JOBS:-20000}
SLOT_JOBS=${BENCH_SLOT_JOBS:-4000}
REPEAT=${BENCH_REPEAT:-3}
PORT=${BENCH_PORT:-54397}
CLUSTER=peers
TTDB=tinytemp
PEERS=$BENCH_DIR/peers
WORKER=$TT_REPO/worker_client/tinytemp-worker
BEGAN=$(date +%s)

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
make -s -C "$TT_REPO/worker_client" PG_CONFIG=$TT_PGBIN/pg_config
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || tt_ensure_packages "nodejs npm"
if [ ! -d "$PEERS/node_modules" ]; then
	tt_log "installing graphile-worker and pg-boss (npm ci)"
	(cd "$PEERS" && npm ci --no-audit --no-fund --loglevel=error)
fi
GW_VERSION=$(node -p "require('$PEERS/node_modules/graphile-worker/package.json').version")
BOSS_VERSION=$(node -p "require('$PEERS/node_modules/pg-boss/package.json').version")

LOGS=$TT_STATE/$CLUSTER-logs
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	tt_cluster_stop "$CLUSTER"
}
trap cleanup EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_cluster_start "$CLUSTER" "$PORT" "tinytemp.database = '$TTDB'
checkpoint_timeout = '30min'
max_wal_size = '4GB'"
for db in $TTDB graphile graphile_batched pgboss; do $TT_PGBIN/createdb "$db"; done
tt_cluster_restart "$CLUSTER"		# so the background worker starts in $TTDB
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
psql_q -d $TTDB -c 'CREATE EXTENSION tinytemp'
rm -rf "$LOGS"
mkdir -p "$LOGS"
# The Node scripts read the connection from PGHOST, PGPORT, PGUSER and PGDATABASE.
# The cluster's owner may not be able to read the checkout: they connect as
# postgres over the socket, and run as whoever runs this script.

# One file of figures per measure, one line per repetition.
record() { echo "$2" >> "$LOGS/m.$1"; }
median() {
	sort -n "$LOGS/m.$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A CHECKPOINT in every database's cluster and a VACUUM of DB, before each run.
settle() {
	psql_q -d "$1" -c 'VACUUM' -c 'CHECKPOINT'
}

# node_run KEY DB SCRIPT ARGS...: one repetition of a Node contender, its
# "enqueue R" and "process R" recorded under KEY.enqueue and KEY.process.
node_run() {
	local key=$1 db=$2 out
	shift 2
	settle "$db"
	out=$(cd "$PEERS" && PGDATABASE=$db node "$@" 2>>"$LOGS/$key.log") || {
		echo "$key failed; see $LOGS/$key.log" >&2
		return 1
	}
	record "$key.enqueue" "$(awk '$1 == "enqueue" { print $2 }' <<<"$out")"
	record "$key.process" "$(awk '$1 == "process" { print $2 }' <<<"$out")"
	echo "   $key: $(tr '\n' ' ' <<<"$out")"
}

# tt_timed_enqueue N SQL: run SQL, which enqueues N jobs, on an empty queue; prints jobs/s.
tt_timed_enqueue() {
	local ms
	psql_q -d $TTDB -c 'TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers'
	settle $TTDB
	ms=$(printf '%s\n' '\timing on' "$2" | psql_q -d $TTDB | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	echo "$1 $ms" | awk '{ printf "%.0f\n", $1 / ($2 / 1000) }'
}

# tt_enqueue N: N simulate jobs at 0 s, one tinytemp_enqueue call each, in one statement.
tt_enqueue() {
	tt_timed_enqueue "$1" "SELECT count(tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')) FROM generate_series(1, $1);"
}

# tt_enqueue_many N: the same jobs in one tinytemp_enqueue_many call.
tt_enqueue_many() {
	tt_timed_enqueue "$1" "SELECT count(*) FROM tinytemp_enqueue_many((SELECT jsonb_agg(jsonb_build_object('job_type', 'sim', 'params', jsonb_build_object('runtime_s', 0))) FROM generate_series(1, $1)));"
}

# tt_run KEY N WORKERS SLOTS HANDLER: N pre-filled jobs through WORKERS
# workers of SLOTS slots each; records jobs/s under KEY.
tt_run() {
	local key=$1 n=$2 workers=$3 slots=$4 handler=$5 i t rate
	rate=$(tt_enqueue "$n")
	[ "$key" = tt1x8 ] && record tt.enqueue "$rate"
	PIDS=()
	for ((i = 1; i <= workers; i++)); do
		PGDATABASE=$TTDB "$WORKER" --name "$key-$i" --slots "$slots" --handler "sim=$handler" \
			--cpus 64 --memory-mb 1000000 --poll-interval 5 2>"$LOGS/$key-$i.log" &
		PIDS+=($!)
	done
	for ((t = 0; t < 6000; t++)); do
		[ "$(psql_q -d $TTDB -c "SELECT count(*) FROM tinytemp.jobs WHERE state = 'succeeded'")" = "$n" ] && break
		sleep 0.2
	done
	for i in "${PIDS[@]}"; do kill -TERM "$i"; done
	for i in "${PIDS[@]}"; do wait "$i" || true; done
	PIDS=()
	rate=$(psql_q -d $TTDB -c "SELECT CASE WHEN count(*) FILTER (WHERE state = 'succeeded') = $n
	                             THEN round($n / extract(epoch FROM max(finished_at) - min(started_at))) END
	                           FROM tinytemp.jobs")
	if [ -z "$rate" ]; then
		echo "$key: not every job succeeded; see $LOGS/$key-*.log" >&2
		return 1
	fi
	record "$key" "$rate"
	echo "   $key: $rate jobs/s"
}

for ((rep = 1; rep <= REPEAT; rep++)); do
	tt_log "repetition $rep of $REPEAT ($JOBS jobs; one-slot workers $SLOT_JOBS)"
	node_run gw graphile graphile.mjs "$JOBS" default
	node_run gwb graphile_batched graphile.mjs "$JOBS" batched
	node_run boss pgboss pgboss.mjs "$JOBS"
	record tt.enqueue_many "$(tt_enqueue_many "$JOBS")"
	echo "   tt.enqueue_many: $(tail -1 "$LOGS/m.tt.enqueue_many") jobs/s"
	tt_run tt1x8 "$JOBS" 1 8 simulate
	tt_run tt2x4 "$JOBS" 2 4 simulate
	tt_run tt1x1 "$SLOT_JOBS" 1 1 simulate
	tt_run tt4x1 "$SLOT_JOBS" 4 1 simulate
	tt_run tt16x1 "$SLOT_JOBS" 16 1 simulate
	tt_run tttrue "$JOBS" 1 8 /bin/true
done

# ratio A B: median(A) / median(B), two decimals.
ratio() { echo "$(median "$1") $(median "$2")" | awk '{ printf "%.2f\n", ($2 > 0) ? $1 / $2 : 0 }'; }
fmt() { median "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

echo
echo "PostgreSQL $($TT_PGBIN/postgres --version | awk '{ print $3 }'), fsync on, synchronous_commit on," \
	"$(nproc) CPUs, node $(node --version), $(date -u +%Y-%m-%d);" \
	"N = $JOBS no-op jobs (one-slot workers: $SLOT_JOBS), medians of $REPEAT"
echo
echo "| contender | process jobs/s | enqueue jobs/s |"
echo "|---|---:|---:|"
echo "| graphile-worker $GW_VERSION, defaults, concurrency 8 | $(fmt gw.process) | $(fmt gw.enqueue) (addJobs) |"
echo "| graphile-worker $GW_VERSION, batched (localQueue 500, completeJobBatchDelay 0), concurrency 8 | $(fmt gwb.process) | $(fmt gwb.enqueue) (addJobs) |"
echo "| pg-boss $BOSS_VERSION, one work(), batchSize 100, burstWhenBatchFull | $(fmt boss.process) | $(fmt boss.enqueue) (insert) |"
echo "| tinytemp-worker, 1 worker × 8 slots, simulate at 0 s | $(fmt tt1x8) | $(fmt tt.enqueue) (tinytemp_enqueue over generate_series) |"
echo "| tinytemp-worker, 2 workers × 4 slots | $(fmt tt2x4) | $(fmt tt.enqueue_many) (tinytemp_enqueue_many, one JSON array) |"
echo "| tinytemp-worker, 1 worker × 8 slots, handler /bin/true | $(fmt tttrue) | |"
echo "| tinytemp-worker, 1 worker × 1 slot ($SLOT_JOBS jobs) | $(fmt tt1x1) | |"
echo "| tinytemp-worker, 4 workers × 1 slot ($SLOT_JOBS jobs) | $(fmt tt4x1) | |"
echo "| tinytemp-worker, 16 workers × 1 slot ($SLOT_JOBS jobs) | $(fmt tt16x1) | |"
echo
echo "RATIO tinytemp 1x8 / graphile-worker batched: $(ratio tt1x8 gwb.process) (issue 10 target: >= 1)"
echo "RATIO tinytemp 1x8 / pg-boss: $(ratio tt1x8 boss.process) (target: > 1)"
echo "RATIO tinytemp 16x1 / 1x1: $(ratio tt16x1 tt1x1) (target: >= 4)"
echo "RATIO tinytemp /bin/true / simulate, 1x8: $(ratio tttrue tt1x8) (target: >= 0.5)"
echo "RATIO tinytemp enqueue (one call per job) / graphile-worker addJobs: $(ratio tt.enqueue gw.enqueue)"
echo "RATIO tinytemp enqueue_many / graphile-worker addJobs: $(ratio tt.enqueue_many gw.enqueue) (target: >= 1)"
echo
echo "took $(($(date +%s) - BEGAN)) s"

#!/usr/bin/env bash
# bench/worker_bench.sh: tinytemp-worker end to end, with the built-in
# simulate handler at zero runtime, so that only the queue, the protocol and
# the worker itself are measured.
#
#   1. Throughput: jobs per second through 1, 2 and 4 workers.  The workers
#      are started and idle; then BENCH_JOBS jobs are enqueued in one
#      transaction (one NOTIFY), and the rate is jobs / (last finished_at -
#      created_at).  Each worker runs --slots BENCH_SLOTS, so a claim can take
#      several jobs, and the jobs that have ended when the worker reports are
#      acked together in one tinytemp_ack_many (one commit).
#   2. Enqueue-to-start latency: one idle worker; BENCH_LATENCY_JOBS jobs are
#      enqueued one by one, each in its own transaction, BENCH_GAP_MS apart;
#      latency = started_at - created_at (both from the server's clock), p50
#      and p99, with LISTEN/NOTIFY and then with polling alone (--no-listen,
#      --poll-interval BENCH_POLL_S).
#
# Runs in a throwaway cluster with PostgreSQL's durable defaults (fsync and
# synchronous_commit on), like bench/queue_bench.sh.  Prints a Markdown table.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no top-level make)
#   BENCH_JOBS=N            jobs per throughput run (default 2000)
#   BENCH_SLOTS=N           --slots of each worker in the throughput runs (default 4)
#   BENCH_LATENCY_JOBS=N    jobs per latency run (default 200)
#   BENCH_GAP_MS=N          pause between two enqueues in the latency runs (default 20)
#   BENCH_POLL_S=S          --poll-interval of the polling-only run (default 1)
#   BENCH_PORT=N            port of the throwaway cluster (default 54362)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

JOBS=${BENCH_JOBS:-2000}
SLOTS=${BENCH_SLOTS:-4}
LAT_JOBS=${BENCH_LATENCY_JOBS:-200}
GAP_MS=${BENCH_GAP_MS:-20}
POLL_S=${BENCH_POLL_S:-1}
PORT=${BENCH_PORT:-54362}
DB=bench
CLUSTER=wbench
WORKER=$TT_REPO/worker_client/tinytemp-worker

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
make -s -C "$TT_REPO/worker_client" PG_CONFIG=$TT_PGBIN/pg_config

LOGS=$TT_STATE/$CLUSTER-logs
PIDS=()
# Stop the workers that are left, then the cluster.
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	tt_cluster_stop "$CLUSTER"
}
trap cleanup EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_served_cluster "$CLUSTER" "$PORT" "$DB" "tinytemp.naptime = '200ms'
checkpoint_timeout = '30min'
max_wal_size = '4GB'"
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
rm -rf "$LOGS"
mkdir -p "$LOGS"

# Empty the tables and take a checkpoint, so every run starts alike.
reset() {
	psql_q -c 'TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers' -c 'CHECKPOINT'
}

# start_workers N LABEL [ARGS...]: N idle workers, waited for until each is listening or polling.
start_workers() {
	local n=$1 label=$2 i t
	shift 2
	PIDS=()
	for ((i = 1; i <= n; i++)); do
		"$WORKER" --name "$label-$i" --handler 'sim=simulate' --cpus 64 --memory-mb 1000000 "$@" \
			2>"$LOGS/$label-$i.log" &
		PIDS+=($!)
	done
	for ((i = 1; i <= n; i++)); do
		for ((t = 0; t < 100; t++)); do
			grep -q ' ready ' "$LOGS/$label-$i.log" && break
			sleep 0.1
		done
	done
	sleep 0.5	# past the first claim each worker makes when it is ready
}

# Drain and stop the workers.
stop_workers() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p"; done
	for p in "${PIDS[@]}"; do wait "$p" || true; done
	PIDS=()
}

# Wait until every job has succeeded (at most 300 s).
wait_done() {
	local want=$1 t
	for ((t = 0; t < 3000; t++)); do
		[ "$(psql_q -c "SELECT count(*) FROM tinytemp.jobs WHERE state = 'succeeded'")" = "$want" ] && return 0
		sleep 0.1
	done
	echo "timed out waiting for $want jobs" >&2
	return 1
}

RESULTS=()
for n in 1 2 4; do
	tt_log "throughput: $n worker(s), $JOBS jobs, --slots $SLOTS"
	reset
	start_workers "$n" "tp$n" --slots "$SLOTS" --poll-interval 5
	psql_q -c "SELECT count(tinytemp_enqueue('sim')) FROM generate_series(1, $JOBS)" >/dev/null
	wait_done "$JOBS"
	rate=$(psql_q -c "SELECT round(count(*) / extract(epoch FROM max(finished_at) - min(created_at)))
	                  FROM tinytemp.jobs")
	spread=$(psql_q -c "SELECT string_agg(n::text, '/' ORDER BY n DESC) FROM
	                    (SELECT count(*) AS n FROM tinytemp.jobs GROUP BY worker_id) x")
	stop_workers
	RESULTS+=("| throughput, $n worker(s) | $rate jobs/s | $JOBS jobs, --slots $SLOTS; jobs per worker: $spread |")
done

# latency_run LABEL ARGS...: the latency percentiles of one worker started with ARGS.
latency_run() {
	local label=$1 i
	shift
	reset
	start_workers 1 "$label" --slots 4 "$@"
	for ((i = 0; i < LAT_JOBS; i++)); do
		echo "SELECT tinytemp_enqueue('sim');"
		echo "SELECT pg_sleep($GAP_MS / 1000.0);"
	done | psql_q >/dev/null
	wait_done "$LAT_JOBS"
	stop_workers
	psql_q -c "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))::numeric, 1)
	                  || ' ms, p99 ' ||
	                  round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))::numeric, 1)
	                  || ' ms'
	           FROM tinytemp.jobs"
}

tt_log "latency with LISTEN/NOTIFY ($LAT_JOBS jobs, ${GAP_MS} ms apart)"
RESULTS+=("| enqueue-to-start, LISTEN/NOTIFY | p50 $(latency_run listen --poll-interval 30) | $LAT_JOBS jobs, ${GAP_MS} ms apart; poll every 30 s as the fallback |")
tt_log "latency with polling alone (--poll-interval $POLL_S)"
RESULTS+=("| enqueue-to-start, polling alone | p50 $(latency_run poll --no-listen --poll-interval "$POLL_S") | --no-listen --poll-interval $POLL_S (each poll jittered by ±10%) |")

echo
echo "tinytemp-worker, simulate handler at zero runtime, $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo "| measure | result | notes |"
echo "|---|---|---|"
for r in "${RESULTS[@]}"; do echo "$r"; done

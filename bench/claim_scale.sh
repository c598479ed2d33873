#!/usr/bin/env bash
# bench/claim_scale.sh: does a claim cost the same however many workers,
# tenants and pending jobs there are?
#
# Two clusters' worth of state, one after the other, in one throwaway cluster:
#
#   small   10 registered workers, 1 tenant, 20,000 pending jobs (enough for the run)
#   large   1,000 registered workers, 100 tenants, 100,000 pending jobs
#
# In both, every registered worker already runs one job (so the room and the
# tenants' shares that a claim reads cover that many running jobs), and the
# jobs are spread evenly over the tenants.  Then pgbench, one client
# (BENCH_CLIENTS to change), runs bench/queue/scale_claim_ack.sql for
# BENCH_DURATION seconds: a claim of one job by a random registered worker,
# then its ack, so that the number of running jobs stays the same.  Printed:
# the p50 and p95 of that claim+ack pair (pgbench's per-transaction log), the
# mean latency of the claim statement alone (pgbench -r), and the ratios
# large / small.  The issue's target: claim p50 in the large case at most 2x
# the small one.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no make)
#   BENCH_DURATION=N        seconds per pgbench run (default 10)
#   BENCH_CLIENTS=N         pgbench clients (default 1)
#   BENCH_PORT=N            port of the throwaway cluster (default 54395)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

DURATION=${BENCH_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-1}
PORT=${BENCH_PORT:-54395}
DB=bench
NAME=scale
LOGS=$TT_STATE/$NAME-logs

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi

trap 'tt_cluster_stop $NAME' EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_served_cluster "$NAME" "$PORT" "$DB" "checkpoint_timeout = '30min'
max_wal_size = '4GB'"
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
rm -rf "$LOGS"
mkdir -p "$LOGS"

# fill WORKERS TENANTS JOBS: that state, from an empty queue.
fill() {
	local workers=$1 tenants=$2 jobs=$3
	psql_q <<SQL
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, tinytemp.reservations;
SELECT count(tinytemp_register_worker('scale-' || w, 1000000, 1000000000)) FROM generate_series(1, $workers) w;
SELECT count(*) FROM tinytemp_enqueue_many((
	SELECT jsonb_agg(jsonb_build_object('job_type', 'sim', 'params', '{"runtime_s": 0}'::jsonb,
	                                    'tenant', 't' || lpad((g % $tenants)::text, 3, '0')))
	FROM generate_series(1, $jobs + $workers) g));
-- one running job per worker
SELECT count(c.id) FROM tinytemp.workers w, LATERAL tinytemp_claim(w.id, 1) c;
VACUUM ANALYZE tinytemp.jobs;
VACUUM ANALYZE tinytemp.workers;
CHECKPOINT;
SQL
}

# run KEY: pgbench over the workers registered; records p50, p95 (ms) and the claim's mean.
run() {
	local key=$1 lo hi
	lo=$(psql_q -c "SELECT min(id) FROM tinytemp.workers")
	hi=$(psql_q -c "SELECT max(id) FROM tinytemp.workers")
	(cd "$LOGS" && $TT_PGBIN/pgbench -n -M prepared -c "$CLIENTS" -j 1 -T "$DURATION" -r \
		-D lo="$lo" -D hi="$hi" -l --log-prefix="$key" -f "$BENCH_DIR/queue/scale_claim_ack.sql" \
		> "$key.out" 2>&1) || { cat "$LOGS/$key.out"; exit 1; }
	cat "$LOGS/$key".* | awk '{ print $3 / 1000 }' | sort -n > "$LOGS/$key.lat"
	awk -v k="$key" '{ v[NR] = $1 } END {
		printf "%s.p50 %.3f\n%s.p95 %.3f\n%s.n %d\n", k, v[int(NR * 0.5) + 1], k, v[int(NR * 0.95) + 1], k, NR
	}' "$LOGS/$key.lat" >> "$LOGS/figures"
	awk -v k="$key" '/tinytemp_claim/ { print k ".claim", $1 }' "$LOGS/$key.out" >> "$LOGS/figures"
}
fig() { awk -v k="$1" '$1 == k { print $2 }' "$LOGS/figures"; }

tt_log "small: 10 workers, 1 tenant, 20,000 pending jobs"
fill 10 1 20000
run small
tt_log "large: 1,000 workers, 100 tenants, 100,000 pending jobs"
fill 1000 100 100000
run large

echo
echo "claim+ack of one job, $CLIENTS client(s), ${DURATION} s each, $(date -u +%Y-%m-%d)"
echo
echo "| state | pairs | claim+ack p50 ms | p95 ms | claim statement, mean ms |"
echo "|---|---:|---:|---:|---:|"
echo "| 10 workers, 1 tenant, 20,000 pending | $(fig small.n) | $(fig small.p50) | $(fig small.p95) | $(fig small.claim) |"
echo "| 1,000 workers, 100 tenants, 100,000 pending | $(fig large.n) | $(fig large.p50) | $(fig large.p95) | $(fig large.claim) |"
echo
echo "RATIO claim+ack p50 large / small: $(echo "$(fig large.p50) $(fig small.p50)" | awk '{ printf "%.2f", $1 / $2 }') (target: <= 2)"
echo "RATIO claim statement mean large / small: $(echo "$(fig large.claim) $(fig small.claim)" | awk '{ printf "%.2f", $1 / $2 }')"

#!/usr/bin/env bash
# bench/metrics_scrape.sh: does a scrape stay cheap as the jobs pile up?
#
# One throwaway cluster serving GET /metrics (tinytemp.metrics_address).
# At each size (BENCH_SIZES, finished jobs in tinytemp.jobs, plus 1,000
# pending and 100 running on 20 workers of 5 tenants), it prints the
# shared buffers one tinytemp_metrics() call touches (EXPLAIN BUFFERS, which
# counts the function's own statements), the median and p95 wall time of 50
# scrapes over HTTP (curl), the same for a plain count(*) of the jobs by
# queue and state (what a scrape would cost if it counted the table), and
# the ratio of the two medians.  Also, once: the first scrape after a
# restart, which counts the table once under a SHARE lock.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no make)
#   BENCH_SIZES="a b c"     finished jobs at each step (default "10000 100000 1000000")
#   BENCH_PORT=N            port of the throwaway cluster (default 54393); metrics on N+1
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

SIZES=${BENCH_SIZES:-10000 100000 1000000}
PORT=${BENCH_PORT:-54393}
MPORT=$((PORT + 1))
NAME=scrape
DB=bench

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
trap 'tt_cluster_stop $NAME' EXIT
tt_served_cluster "$NAME" "$PORT" "$DB" "tinytemp.metrics_address = '127.0.0.1:$MPORT'
fsync = off
synchronous_commit = off" >/dev/null
export PGDATABASE=$DB
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

# The live part of the queue: 20 workers, 1,000 pending jobs of 5 tenants, 100 running.
psql_q -c "SELECT tinytemp_register_worker('w' || i, 64, 262144, 4, 'a100') FROM generate_series(1, 20) i" >/dev/null
psql_q -c "SELECT count(tinytemp_enqueue('train', tenant => 't' || (i % 5), queue => 'q' || (i % 3)))
		   FROM generate_series(1, 1100) i" >/dev/null
psql_q -c "SELECT count(*) FROM tinytemp.workers w, LATERAL tinytemp_claim(w.id, 5)" >/dev/null

# stats CMD...: median and p95 in ms of 50 runs of CMD.
stats() {
	local i t0 t1
	for i in $(seq 50); do
		t0=$(date +%s%N)
		"$@" >/dev/null
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000))
	done | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f %.2f", v[int(NR * 0.5)] / 1000, v[int(NR * 0.95)] / 1000 }'
}
scrape() { curl -sf "http://127.0.0.1:$MPORT/metrics"; }
count_all() { psql_q -c "SELECT queue, state, count(*) FROM tinytemp.jobs GROUP BY 1, 2"; }
buffers() {
	psql_q -c "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT tinytemp_metrics()" |
		python3 -c 'import json,sys; p=json.load(sys.stdin)[0]["Plan"]; print(p.get("Shared Hit Blocks",0)+p.get("Shared Read Blocks",0))'
}

printf '\n%-14s %10s %10s %14s %14s %16s %16s %8s\n' "finished jobs" "table MB" "buffers" "scrape p50 ms" "scrape p95 ms" "count(*) p50 ms" "count(*) p95 ms" "ratio"
have=0
for size in $SIZES; do
	add=$((size - have))
	# In batches, through the triggers, as jobs finish in production.
	while [ "$add" -gt 0 ]; do
		n=$((add < 200000 ? add : 200000))
		psql_q -c "INSERT INTO tinytemp.jobs (queue, job_type, tenant, state, finished_at, params)
				   SELECT 'q' || (i % 3), 'train', 't' || (i % 5), 'succeeded', now(),
						  jsonb_build_object('lr', i % 10)
				   FROM generate_series(1, $n) i" >/dev/null
		add=$((add - n))
	done
	have=$size
	psql_q -c "VACUUM ANALYZE tinytemp.jobs" >/dev/null
	mb=$(psql_q -c "SELECT round(pg_total_relation_size('tinytemp.jobs') / 1048576.0)")
	scrape >/dev/null
	read -r s50 s95 <<<"$(stats scrape)"
	read -r c50 c95 <<<"$(stats count_all)"
	printf '%-14s %10s %10s %14s %14s %16s %16s %8s\n' "$size" "$mb" "$(buffers)" "$s50" "$s95" "$c50" "$c95" \
		"$(awk -v a="$s50" -v b="$c50" 'BEGIN { printf "%.3f", a / b }')"
done

# The first scrape after a restart counts the table once.
tt_cluster_restart "$NAME" >/dev/null
for _ in $(seq 50); do psql_q -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
t0=$(date +%s%N)
psql_q -c "SELECT length(tinytemp_metrics())" >/dev/null
t1=$(date +%s%N)
echo
echo "the first scrape after a restart at $have finished jobs (it counts the table once): $(((t1 - t0) / 1000000)) ms"
psql_q -c "SELECT count(*) = $((have + 1100)) FROM tinytemp.jobs" | grep -q t &&
	echo "tinytemp_jobs after the restart: $(scrape | awk '/^tinytemp_jobs\{/ { s += $2 } END { print s }') jobs, as in the table"
echo "ratio = scrape p50 / count(*) p50: below 1, a scrape costs less than counting the table once"

#!/usr/bin/env bash
# The simulator end to end on a small trace: bench/gen_trace.py shapes the
# extension's synthetic jobs into a trace, bench/simulate replays it through
# the real functions under both policies and with --oracle, prints one JSON
# line with every figure, and leaves no scratch database behind.  The
# figures themselves are the benchmark's (bench/sim_bench.sh), not a test's.
source "$(dirname "$0")/common.bash"

make -s -C "$TT_REPO/bench" >&2
tap $? "bench/simulate builds"
"$TT_REPO/bench/gen_trace.py" --jobs 80 --seed 7 --hours 2 >"$TMP/trace.csv" 2>"$TMP/gen.log"
tap $? "gen_trace.py writes a trace"
is "$(head -1 "$TMP/trace.csv")" \
	"submit_s,job_type,model,dataset_size,epochs,batch_size,cpus,memory_mb,gpus,gpu_type,gang_size,priority,tenant,runtime_s" \
	"the trace has the documented columns"
is "$(tail -n +2 "$TMP/trace.csv" | wc -l)" 80 "and one row per job"

for run in "fifo" "tinytemp" "tinytemp --oracle"; do
	# shellcheck disable=SC2086
	out=$("$TT_REPO/bench/simulate" --trace "$TMP/trace.csv" --cluster "$TT_REPO/bench/clusters/hetero.csv" \
		--policy $run 2>"$TMP/sim.log")
	tap $? "simulate --policy $run exits 0"
	printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
keys = ["policy", "jobs", "avg_jct_s", "p95_jct_s", "avg_wait_s", "max_wait_s", "makespan_s", "utilization"]
assert all(k in r for k in keys), r
assert r["jobs"] == 80 and r["failed"] == 0, r
assert 0 <= r["avg_wait_s"] <= r["max_wait_s"] and r["avg_jct_s"] > 0, r
assert r["makespan_s"] > 0 and 0 < r["utilization"] <= 1, r
'
	tap $? "it prints one JSON line with every figure, for all 80 jobs ($run)"
done
is "$(q -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'tinytemp_sim_%'")" 0 \
	"no scratch database is left behind"
echo "1..$TAP_N"
[ "$TAP_FAILED" = 0 ]

#!/usr/bin/env bash
# The simulator end to end on a small trace: bench/gen_trace.py shapes the
# extension's synthetic jobs into a trace, bench/simulate replays it through
# the real functions under both policies and with --oracle, prints one JSON
# line with every figure (also by class of job), and leaves no scratch
# database behind.  The figures themselves are the benchmark's
# (bench/sim_bench.sh), not a test's.  A preempted job redoes
# --restart-cost seconds of work when it resumes, reported as work lost.
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
	printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
classes = {"by_gpus": ["0", "1", "2-8", ">8"], "by_runtime": ["<10m", "10m-2h", ">2h"]}
for key, names in classes.items():
    by = r[key]
    assert sorted(by) == sorted(names), (key, by)
    assert sum(by[c]["jobs"] for c in names) == r["jobs"], (key, by)
    assert sum(by[c]["finished"] for c in names) == r["jobs"] - r["failed"], (key, by)
    for c in names:
        x = by[c]
        if x["finished"] == 0:
            assert x["avg_wait_s"] is None and x["max_wait_s"] is None and x["avg_jct_s"] is None, x
        else:
            assert 0 <= x["avg_wait_s"] <= x["max_wait_s"] <= r["max_wait_s"], (r, x)
            assert x["avg_jct_s"] > 0, x
    assert max(by[c]["max_wait_s"] or 0 for c in names) == r["max_wait_s"], (key, r)
assert r["restart_cost_s"] == 60 and r["preempted_jobs"] <= r["restarts"] <= r["preemptions"], r
assert 0 <= r["work_lost_s"] <= r["restarts"] * 60 + 1e-6, r
'
	tap $? "the waits and JCTs by class of job cover every job ($run)"
done
# Row 2 (priority 1) preempts row 1 at 60 s; row 1 resumes at 660 s from its
# checkpoint of 60 s of work, and redoes the restart cost first.
cat >"$TMP/preempt-cluster.csv" <<'CSV'
name,count,cpus,memory_mb,gpus,gpu_type,speed
cpu,1,4,16384,0,,1.0
CSV
cat >"$TMP/preempt.csv" <<'CSV'
submit_s,job_type,model,dataset_size,epochs,batch_size,cpus,memory_mb,gpus,gpu_type,gang_size,priority,tenant,runtime_s
0,data_processing,,,,,4,4096,0,,1,0,team-a,7200
60,data_processing,,,,,4,4096,0,,1,1,team-a,600
CSV
for cost in 0 600; do
	out=$("$TT_REPO/bench/simulate" --trace "$TMP/preempt.csv" --cluster "$TMP/preempt-cluster.csv" \
		--policy tinytemp --restart-cost $cost --detail "$TMP/preempt-$cost.csv" 2>"$TMP/sim-preempt.log")
	tap $? "a trace with a preemption replays with --restart-cost $cost (exit 0)"
	printf '%s' "$out" | python3 -c '
import json, sys
r, cost = json.load(sys.stdin), float(sys.argv[1])
assert r["preemptions"] == 1 and r["preempted_jobs"] == 1 and r["restarts"] == 1, r
assert r["restart_cost_s"] == cost and r["work_lost_s"] == cost and r["work_lost_gpu_s"] == 0, r
' $cost
	tap $? "one preemption, one restart, $cost s of work lost"
	is "$(awk -F, '$1 == 1 { print $4 "," $5 }' "$TMP/preempt-$cost.csv")" "0.000,$((7800 + cost)).000" \
		"the preempted job ends $cost s later than without a restart cost"
done
out=$("$TT_REPO/bench/simulate" --trace "$TMP/preempt.csv" --cluster "$TMP/preempt-cluster.csv" \
	--policy tinytemp --restart-cost -1 2>&1)
is "$?:$out" "1:simulate: --restart-cost must be a number of seconds >= 0, not \"-1\"" \
	"a negative restart cost is refused"

is "$(q -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'tinytemp_sim_%'")" 0 \
	"no scratch database is left behind"
echo "1..$TAP_N"
[ "$TAP_FAILED" = 0 ]

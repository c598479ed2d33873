#!/usr/bin/env bash
# The simulator on jobs far longer than a lease, and on jobs that can never
# fit the cluster.  A CPU job of 3 days runs 30 virtual days on a worker of
# speed 0.1, while short jobs arrive around it (one 25 days in, so that
# planner passes run while it is running): the simulator's workers must
# heartbeat it, or the pass expires its lease, requeues it, and the replay
# aborts (it did, when the simulator never heartbeated and leased jobs for
# 20 days).  Then jobs that no worker can hold are named, fail as
# unschedulable and are counted, and the replay ends normally; without a
# placement timeout, the simulator cancels them instead of stalling.
source "$(dirname "$0")/common.bash"

SIM=$TT_REPO/bench/simulate
make -s -C "$TT_REPO/bench" >&2
tap $? "bench/simulate builds"

cat >"$TMP/cluster.csv" <<'CSV'
name,count,cpus,memory_mb,gpus,gpu_type,speed
cpu-slow,1,16,65536,0,,0.1
cpu,1,4,16384,0,,1.0
CSV
# Row 1 (8 CPUs, 32 GB) fits only cpu-slow-1: 259200 s / 0.1 = 30 days.
cat >"$TMP/long.csv" <<'CSV'
submit_s,job_type,model,dataset_size,epochs,batch_size,cpus,memory_mb,gpus,gpu_type,gang_size,priority,tenant,runtime_s
0,data_processing,,,,,8,32768,0,,1,0,team-a,259200
60,data_processing,,,,,2,4096,0,,1,0,team-a,600
3600,data_processing,,,,,2,4096,0,,1,0,team-b,1200
864000,data_processing,,,,,2,4096,0,,1,0,team-a,300
2160000,data_processing,,,,,2,4096,0,,1,0,team-b,300
2160060,data_processing,,,,,2,4096,0,,1,0,team-a,600
CSV

for policy in fifo tinytemp; do
	out=$("$SIM" --trace "$TMP/long.csv" --cluster "$TMP/cluster.csv" --policy "$policy" \
		--detail "$TMP/detail-$policy.csv" 2>"$TMP/sim-long-$policy.log")
	tap $? "a job running 30 virtual days replays under --policy $policy (exit 0)"
	printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["jobs"] == 6 and r["failed"] == 0 and r["never_fit"] == 0, r
# The job outlives a lease thousands of times over: the workers heartbeat it.
assert r["lease_s"] * 100 < 2592000 and r["heartbeats"] >= 2592000 / r["lease_s"], r
assert abs(r["makespan_s"] - 2592000) < 1e-3, r
'
	tap $? "all 6 jobs succeed, none failed, the long one heartbeated ($policy)"
	is "$(awk -F, '$1 == 1 { print $4 "," $5 "," $16 "," $17 }' "$TMP/detail-$policy.csv")" \
		"0.000,2592000.000,succeeded,cpu-slow-1" \
		"the long job ran once, on the slow worker, from 0 to 30 days ($policy)"
	is "$(awk -F, 'NR > 1 && $16 == "succeeded"' "$TMP/detail-$policy.csv" | wc -l)" 6 \
		"every job of the trace succeeded ($policy)"
done

# The steps taken only to heartbeat change no decision: a trace of the
# generator on the heterogeneous cluster, loaded enough for jobs to queue
# under fifo, gives the same figures with a lease of 10 minutes (many such
# steps) as with the default hour.  (When those steps moved the order in
# which workers claim, the two differed.)
"$TT_REPO/bench/gen_trace.py" --jobs 300 --seed 5 >"$TMP/gen.csv" 2>"$TMP/gen.log"
tap $? "gen_trace.py writes a trace"
for lease in 3600 600; do
	"$SIM" --trace "$TMP/gen.csv" --cluster "$TT_REPO/bench/clusters/hetero.csv" --policy fifo \
		--lease $lease >"$TMP/gen-$lease.json" 2>"$TMP/sim-gen-$lease.log"
	tap $? "the generated trace replays with --lease $lease (exit 0)"
done
python3 - "$TMP/gen-3600.json" "$TMP/gen-600.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
keys = ["jobs", "failed", "avg_jct_s", "p95_jct_s", "avg_wait_s", "max_wait_s", "makespan_s",
        "utilization", "preemptions", "claims"]
assert all(a[k] == b[k] for k in keys), (a, b)
assert b["lease_steps"] > a["lease_steps"] and b["heartbeats"] > a["heartbeats"], (a, b)
PY
tap $? "the same figures and claims with either lease; more heartbeats and steps with the shorter"

# Row 2 asks for more CPUs than any worker has, row 3 for a GPU type the
# cluster lacks, row 4 for a gang of 3 on 2 workers.
cat >"$TMP/nofit.csv" <<'CSV'
submit_s,job_type,model,dataset_size,epochs,batch_size,cpus,memory_mb,gpus,gpu_type,gang_size,priority,tenant,runtime_s
0,data_processing,,,,,2,4096,0,,1,0,team-a,600
10,data_processing,,,,,32,4096,0,,1,0,team-a,600
20,training,,,,,2,4096,1,a100,1,0,team-a,600
30,data_processing,,,,,2,4096,0,,3,0,team-b,600
40,data_processing,,,,,2,4096,0,,1,0,team-a,600
CSV
for policy in fifo tinytemp; do
	out=$("$SIM" --trace "$TMP/nofit.csv" --cluster "$TMP/cluster.csv" --policy "$policy" \
		--detail "$TMP/nofit-$policy.csv" 2>"$TMP/sim-nofit-$policy.log")
	tap $? "a trace with jobs that can never fit replays under --policy $policy (exit 0)"
	printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["jobs"] == 5 and r["failed"] == 3 and r["never_fit"] == 3, r
'
	tap $? "the 3 jobs that can never fit are counted as failed, the rest succeed ($policy)"
	is "$(grep -cE '^simulate: trace row [0-9]+ can never fit the cluster:' "$TMP/sim-nofit-$policy.log")" 3 \
		"each is named on stderr when the trace is read ($policy)"
	is "$(grep -c 'which can never fit, failed at .*unschedulable' "$TMP/sim-nofit-$policy.log")" 3 \
		"and reported as failed unschedulable ($policy)"
	is "$(awk -F, 'NR > 1 { printf "%s:%s ", $1, $16 }' "$TMP/nofit-$policy.csv")" \
		"1:succeeded 2:failed 3:failed 4:failed 5:succeeded " "the outcome of each job ($policy)"
done

# Without a placement timeout the extension never fails them, and under fifo
# the first blocks every job behind it: once a day passes with nothing
# running, the simulator cancels them and the rest run.
out=$(PGOPTIONS="-c tinytemp.placement_timeout=0" "$SIM" --trace "$TMP/nofit.csv" \
	--cluster "$TMP/cluster.csv" --policy fifo --detail "$TMP/nofit-nt.csv" 2>"$TMP/sim-nofit-nt.log")
tap $? "with tinytemp.placement_timeout 0 the replay still ends (exit 0)"
printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["jobs"] == 5 and r["failed"] == 3 and r["never_fit"] == 3, r
'
tap $? "the 3 jobs that can never fit are counted as failed"
is "$(grep -c 'which can never fit, still waits at .*: cancelled' "$TMP/sim-nofit-nt.log")" 3 \
	"each is reported as cancelled by the simulator"
is "$(awk -F, 'NR > 1 { printf "%s:%s ", $1, $16 }' "$TMP/nofit-nt.csv")" \
	"1:succeeded 2:failed 3:failed 4:failed 5:succeeded " "the job behind them runs"

is "$(q -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'tinytemp_sim_%'")" 0 \
	"no scratch database is left behind"
done_testing

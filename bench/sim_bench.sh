#!/usr/bin/env bash
# bench/sim_bench.sh: the tinytemp placement policy against FIFO, on traces
# replayed by bench/simulate through the real extension on a virtual clock.
#
# In a throwaway cluster: generates SIM_TRACES traces of SIM_JOBS jobs
# (bench/gen_trace.py, seeds 1, 2, ...; the job mix is tinytemp's own
# synthetic generator) into bench/traces/, and replays each on the cluster
# in SIM_CLUSTER three times: policy fifo, policy tinytemp with the
# in-database runtime predictor, and policy tinytemp with the true runtimes
# (--oracle).  Prints each run's JSON line, a table, and the ratios against
# FIFO.
#
# Targets (issue 5): tinytemp's average JCT at most half FIFO's, and its
# longest wait at most twice FIFO's, on every trace.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no top-level make)
#   SIM_JOBS=N              jobs per trace (default 2500)
#   SIM_TRACES=N            traces, with seeds 1..N (default 3)
#   SIM_HOURS=H             span of each trace's arrivals (default: from the offered load, 0.9)
#   SIM_CLUSTER=FILE        cluster CSV (default bench/clusters/hetero.csv)
#   BENCH_PORT=N            port of the throwaway cluster (default 54364)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

JOBS=${SIM_JOBS:-2500}
NTRACES=${SIM_TRACES:-3}
HOURS=${SIM_HOURS:-}
CLUSTER=${SIM_CLUSTER:-$BENCH_DIR/clusters/hetero.csv}
PORT=${BENCH_PORT:-54364}
DB=simbench
TRACES=$BENCH_DIR/traces
PYTHON=/usr/bin/python3

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
tt_log "building bench/simulate"
make -C "$BENCH_DIR" -s PG_CONFIG=$TT_PGBIN/pg_config

trap 'tt_cluster_stop simbench' EXIT
tt_log "starting a throwaway cluster on port $PORT"
tt_cluster_start simbench "$PORT"
export PGDATABASE=$DB
$TT_PGBIN/createdb "$DB"
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
# Where gen_trace.py finds tinytemp_synthetic_jobs; each replay makes its own scratch database.
psql_q -c 'CREATE EXTENSION tinytemp'
export PATH=$TT_PGBIN:$PATH

tt_log "environment"
psql_q -c 'SELECT version()'
echo "CPUs: $(nproc) ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cluster: $CLUSTER ($(tail -n +2 "$CLUSTER" | awk -F, '{ w += $2; g += $2 * $5 } END { print w " workers, " g " GPUs" }'))"

tt_log "generating $NTRACES traces of $JOBS jobs"
mkdir -p "$TRACES"
for seed in $(seq 1 "$NTRACES"); do
	$PYTHON "$BENCH_DIR/gen_trace.py" --jobs "$JOBS" --seed "$seed" --cluster "$CLUSTER" \
		${HOURS:+--hours "$HOURS"} >"$TRACES/trace-$seed.csv"
done

RESULTS=$TT_STATE/sim-results.jsonl
: >"$RESULTS"
tt_log "replaying each trace with fifo, tinytemp and tinytemp --oracle"
for seed in $(seq 1 "$NTRACES"); do
	for variant in fifo tinytemp tinytemp-oracle; do
		policy=${variant%-oracle}
		oracle=
		[ "$variant" = tinytemp-oracle ] && oracle=--oracle
		printf '   trace %s, %-16s ' "$seed" "$variant"
		log=$TT_STATE/sim-trace$seed-$variant.log
		if line=$("$BENCH_DIR/simulate" --trace "$TRACES/trace-$seed.csv" --cluster "$CLUSTER" \
			--policy "$policy" $oracle 2>"$log"); then
			echo "$line"
			echo "{\"trace\":$seed,\"run\":$line}" >>"$RESULTS"
		else
			echo "FAILED (see $log)"
			grep -m1 'simulate: stalled\|simulate: .*error\|^simulate: ' "$log" | tail -1 | sed 's/^/      /' || true
			echo "{\"trace\":$seed,\"failed\":{\"policy\":\"$policy\",\"oracle\":$([ -n "$oracle" ] && echo true || echo false)}}" >>"$RESULTS"
		fi
	done
done

tt_log "results ($JOBS jobs per trace; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
$PYTHON - "$RESULTS" <<'PY'
import json
import sys

runs = [json.loads(line) for line in open(sys.argv[1])]
fmt = "%-5s %-17s %8s %8s %8s %8s %9s %6s %8s %6s %7s %6s"
print(fmt % ("trace", "policy", "avg JCT", "p95 JCT", "avg wait", "max wait", "makespan",
             "util", "util arr", "failed", "preempt", "wall s"))
print(fmt % ("-----", "------", "-------", "-------", "--------", "--------", "--------",
             "----", "--------", "------", "-------", "------"))
by = {}
h = lambda v: "-" if v is None else "%.2fh" % (v / 3600)
for r in runs:
    if "failed" in r:
        x = r["failed"]
        name = x["policy"] + (" --oracle" if x["oracle"] else "")
        by[(r["trace"], name)] = None
        print("%-5s %-17s  FAILED: the replay stopped (see its log)" % (r["trace"], name))
        continue
    x = r["run"]
    name = x["policy"] + (" --oracle" if x["oracle"] else "")
    by[(r["trace"], name)] = x
    print("%-5s %-17s %8s %8s %8s %8s %9s %6.3f %8.3f %6d %7d %6.1f" % (
        r["trace"], name, h(x["avg_jct_s"]), h(x["p95_jct_s"]), h(x["avg_wait_s"]),
        h(x["max_wait_s"]), h(x["makespan_s"]), x["utilization"], x["utilization_arrivals"],
        x["failed"], x["preemptions"], x["wall_s"]))
print()
print("util: busy GPU-seconds / (GPUs x makespan); util arr: the same between the first and")
print("the last submission (the makespan's tail is the few longest jobs finishing).")
print()
traces = sorted({t for t, _ in by})
jct_ok = wait_ok = True
for t in traces:
    f = by.get((t, "fifo"))
    for name in ("tinytemp", "tinytemp --oracle"):
        x = by.get((t, name))
        if not f or not x or f["avg_jct_s"] is None or x["avg_jct_s"] is None:
            print("trace %s: %s: no ratio (a replay failed or finished no job)" % (t, name))
            if name == "tinytemp":
                jct_ok = wait_ok = False
            continue
        rj = x["avg_jct_s"] / f["avg_jct_s"]
        if f["max_wait_s"] > 0:
            rw = x["max_wait_s"] / f["max_wait_s"]
            shown = "%.3f" % rw
        else:
            rw = 0.0 if x["max_wait_s"] == 0 else float("inf")
            shown = "n/a (no job waited under fifo; %.0f s under %s)" % (x["max_wait_s"], name)
        print("trace %s: RATIO %-17s / fifo: avg JCT %.3f, max wait %s" % (t, name, rj, shown))
        if name == "tinytemp":
            jct_ok = jct_ok and rj <= 0.5
            wait_ok = wait_ok and rw <= 2.0
print()
print("tinytemp avg JCT / fifo avg JCT <= 0.5 on every trace: %s" % ("met" if jct_ok else "NOT met"))
print("tinytemp max wait / fifo max wait <= 2 on every trace: %s" % ("met" if wait_ok else "NOT met"))
walls = [r["run"]["wall_s"] for r in runs if "run" in r] or [0.0]
print("replay wall time: %.1f s at most, %.1f s on average" % (max(walls), sum(walls) / len(walls)))
PY

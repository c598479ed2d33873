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
# Then the real GPU-cluster traces of shared/traces (each folder a trace.csv
# and the cluster.csv sized for it; skipped, saying so, where there are
# none), replayed the same three ways.  For each: a table of the average
# and longest wait and the average JCT, the same by class of job (by GPUs
# and by true runtime: starved large jobs show there), and the ratios of
# issue 14: tinytemp's average wait against the one it gets with the true
# runtimes (target <= 1.3: what imperfect prediction costs) and its longest
# wait against FIFO's (target <= 1.5).
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no top-level make)
#   SIM_JOBS=N              jobs per trace (default 2500)
#   SIM_TRACES=N            traces, with seeds 1..N (default 3; 0 for none)
#   SIM_HOURS=H             span of each trace's arrivals (default: from the offered load, 0.9)
#   SIM_CLUSTER=FILE        cluster CSV (default bench/clusters/hetero.csv)
#   SIM_REAL="A B"          the real traces to replay, by folder name (default all; none for none)
#   SIM_VARIANTS="A B"      of fifo, tinytemp, tinytemp-oracle (default all three), for every trace
#   SIM_RESTART_COST=S      simulate --restart-cost (default: the simulator's, 60 s)
#   TINYTEMP_TRACES=DIR     where the real traces are (default ../shared/traces from the repository)
#   BENCH_PORT=N            port of the throwaway cluster (default 54364)
#
# A quick run: SIM_TRACES=0 SIM_REAL=philly-6214e9 SIM_VARIANTS="tinytemp tinytemp-oracle".
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
REAL_DIR=${TINYTEMP_TRACES:-$BENCH_DIR/../../shared/traces}
REAL=${SIM_REAL:-all}
VARIANTS=${SIM_VARIANTS:-fifo tinytemp tinytemp-oracle}
RESTART_COST=${SIM_RESTART_COST:-}

for variant in $VARIANTS; do
	case $variant in
		fifo | tinytemp | tinytemp-oracle) ;;
		*)
			echo "sim_bench: SIM_VARIANTS: unknown \"$variant\" (fifo, tinytemp, tinytemp-oracle)" >&2
			exit 1
			;;
	esac
done

# The real traces to replay: folders of REAL_DIR with a trace.csv and a cluster.csv.
REAL_TRACES=()
if [ "$REAL" != none ]; then
	if [ ! -d "$REAL_DIR" ]; then
		echo "sim_bench: no real traces: $REAL_DIR is not there (set TINYTEMP_TRACES); skipping them"
	elif ! REAL_DIR=$(cd "$REAL_DIR" && pwd); then
		echo "sim_bench: cannot enter $REAL_DIR; skipping the real traces"
	elif [ "$REAL" = all ]; then
		for dir in "$REAL_DIR"/*/; do
			[ -f "$dir/trace.csv" ] && [ -f "$dir/cluster.csv" ] && REAL_TRACES+=("$(basename "$dir")")
		done
		[ ${#REAL_TRACES[@]} -gt 0 ] || echo "sim_bench: no real traces in $REAL_DIR; skipping them"
	else
		for name in ${REAL//,/ }; do
			if [ -f "$REAL_DIR/$name/trace.csv" ] && [ -f "$REAL_DIR/$name/cluster.csv" ]; then
				REAL_TRACES+=("$name")
			else
				echo "sim_bench: no real trace $name in $REAL_DIR (trace.csv and cluster.csv); skipping it"
			fi
		done
	fi
fi

# replay TRACE CLUSTER LABEL VARIANT RESULTS LOG: one replay; its JSON line
# (or a failure) goes to RESULTS as {"trace": LABEL, ...}.
replay() {
	local trace=$1 cluster=$2 label=$3 variant=$4 results=$5 log=$6 policy oracle='' line
	policy=${variant%-oracle}
	[ "$variant" = tinytemp-oracle ] && oracle=--oracle
	if line=$("$BENCH_DIR/simulate" --trace "$trace" --cluster "$cluster" \
		--policy "$policy" $oracle ${RESTART_COST:+--restart-cost "$RESTART_COST"} 2>"$log"); then
		echo "$line"
		echo "{\"trace\":$label,\"run\":$line}" >>"$results"
	else
		echo "FAILED (see $log)"
		grep -m1 'simulate: stalled\|simulate: .*error\|^simulate: ' "$log" | tail -1 | sed 's/^/      /' || true
		echo "{\"trace\":$label,\"failed\":{\"policy\":\"$policy\",\"oracle\":$([ -n "$oracle" ] && echo true || echo false)}}" >>"$results"
	fi
}

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
cluster_size() { tail -n +2 "$1" | awk -F, '{ w += $2; g += $2 * $5 } END { print w " workers, " g " GPUs" }'; }
[ "$NTRACES" -gt 0 ] && echo "cluster of the synthetic traces: $CLUSTER ($(cluster_size "$CLUSTER"))"
echo "variants: $VARIANTS; restart cost: ${RESTART_COST:-60 (the default)} s"

# The report by class of job, and for the real traces the full table and
# the ratios of issue 14: python3 -c "$CLASS_REPORT" classes|real RESULTS.
read -r -d '' CLASS_REPORT <<'PY' || true
import json
import sys

mode, path = sys.argv[1], sys.argv[2]
NAMES = ("fifo", "tinytemp", "tinytemp --oracle")
GPU_CLASSES = (("0", "0 GPUs"), ("1", "1 GPU"), ("2-8", "2-8 GPUs"), (">8", ">8 GPUs"))
RUNTIME_CLASSES = (("<10m", "run < 10 min"), ("10m-2h", "run 10 min-2 h"), (">2h", "run > 2 h"))


def d(v):
    """A duration for the eye: seconds, minutes or hours."""
    if v is None:
        return "-"
    if v < 120:
        return "%.0fs" % v
    if v < 7200:
        return "%.1fm" % (v / 60)
    return "%.2fh" % (v / 3600)


def ratio(a, b):
    """a / b, and how it reads; None where either is missing."""
    if a is None or b is None:
        return None, "n/a (a replay missing, failed or with no job finished)"
    if b > 0:
        return a / b, "%.3f" % (a / b)
    if a == 0:
        return 1.0, "1 (0 s / 0 s)"
    return float("inf"), "inf (%.0f s / 0 s)" % a


traces, by = [], {}
for line in open(path):
    r = json.loads(line)
    x = r.get("run") or r["failed"]
    name = x["policy"] + (" --oracle" if x["oracle"] else "")
    if r["trace"] not in traces:
        traces.append(r["trace"])
    by[(r["trace"], name)] = r.get("run")


def class_table(t):
    names = [n for n in NAMES if (t, n) in by]
    runs = [by[(t, n)] for n in names]
    if not any(runs):
        return
    print(("  %-15s %5s" % ("by class", "jobs") +
           "".join(" | %-26s" % n for n in names)).rstrip())
    print("  %-15s %5s" % ("", "") +
          "".join(" | %8s %8s %8s" % ("avg wait", "max wait", "avg JCT") for _ in names))
    for key, classes in (("by_gpus", GPU_CLASSES), ("by_runtime", RUNTIME_CLASSES)):
        for c, label in classes:
            cells = [x[key][c] if x else None for x in runs]
            jobs = next((x["jobs"] for x in cells if x), 0)
            if jobs == 0:
                continue
            row = "  %-15s %5d" % (label, jobs)
            for x in cells:
                if x is None:
                    row += " | %8s %8s %8s" % ("FAILED", "", "")
                else:
                    row += " | %8s %8s %8s" % (d(x["avg_wait_s"]), d(x["max_wait_s"]),
                                               d(x["avg_jct_s"]))
                    if x["finished"] < x["jobs"]:
                        row += " (%d of %d finished)" % (x["finished"], x["jobs"])
            print(row.rstrip())


if mode == "classes":
    print()
    print("Waits and JCTs by class of job (by all the GPUs a job holds; by its true runtime):")
    for t in traces:
        print("trace %s" % t)
        class_table(t)
    sys.exit(0)

print()
print("Waits and JCTs of the jobs that finished; by class: by all the GPUs a job holds (its")
print("members together), and by its true runtime.  lost GPU-h: the work redone after preemptions.")
targets = []
for t in traces:
    print()
    print("%s" % t)
    fmt = "  %-17s %8s %8s %8s %8s %6s %7s %10s %6s"
    print(fmt % ("policy", "avg wait", "max wait", "avg JCT", "p95 JCT", "failed", "preempt",
                 "lost GPU-h", "wall s"))
    for name in NAMES:
        if (t, name) not in by:
            continue
        x = by[(t, name)]
        if x is None:
            print("  %-17s FAILED: the replay stopped (see its log)" % name)
            continue
        print(fmt % (name, d(x["avg_wait_s"]), d(x["max_wait_s"]), d(x["avg_jct_s"]),
                     d(x["p95_jct_s"]), x["failed"], x["preemptions"],
                     "%.1f" % (x["work_lost_gpu_s"] / 3600), "%.1f" % x["wall_s"]))
    class_table(t)
    get = lambda name, k: (by.get((t, name)) or {}).get(k)
    rw, sw = ratio(get("tinytemp", "avg_wait_s"), get("tinytemp --oracle", "avg_wait_s"))
    rm, sm = ratio(get("tinytemp", "max_wait_s"), get("fifo", "max_wait_s"))
    print("  RATIO avg wait, tinytemp / tinytemp --oracle: %s (target <= 1.3: %s)"
          % (sw, "n/a" if rw is None else "met" if rw <= 1.3 else "NOT met"))
    print("  RATIO max wait, tinytemp / fifo:              %s (target <= 1.5: %s)"
          % (sm, "n/a" if rm is None else "met" if rm <= 1.5 else "NOT met"))
    targets.append((t, rw, sw, rm, sm))

print()
print("%-16s %32s %28s" % ("trace", "avg wait tinytemp/oracle <= 1.3", "max wait tinytemp/fifo <= 1.5"))
for t, rw, sw, rm, sm in targets:
    print("%-16s %32s %28s" % (t, sw.split(" ")[0], sm.split(" ")[0]))
for label, i, limit in (("tinytemp avg wait / oracle avg wait <= 1.3", 1, 1.3),
                        ("tinytemp max wait / fifo max wait <= 1.5", 3, 1.5)):
    got = [x[i] for x in targets]
    if not got or any(v is None for v in got):
        verdict = "not measured on every trace"
    else:
        verdict = "met" if all(v <= limit for v in got) else "NOT met"
    print("%s on every real trace: %s" % (label, verdict))
walls = [x["wall_s"] for x in by.values() if x] or [0.0]
print("replay wall time: %.1f s at most, %.1f s on average, %.1f s in all"
      % (max(walls), sum(walls) / len(walls), sum(walls)))
PY

if [ "$NTRACES" -gt 0 ]; then
tt_log "generating $NTRACES traces of $JOBS jobs"
mkdir -p "$TRACES"
for seed in $(seq 1 "$NTRACES"); do
	$PYTHON "$BENCH_DIR/gen_trace.py" --jobs "$JOBS" --seed "$seed" --cluster "$CLUSTER" \
		${HOURS:+--hours "$HOURS"} >"$TRACES/trace-$seed.csv"
done

RESULTS=$TT_STATE/sim-results.jsonl
: >"$RESULTS"
tt_log "replaying each trace with $VARIANTS"
for seed in $(seq 1 "$NTRACES"); do
	for variant in $VARIANTS; do
		printf '   trace %s, %-16s ' "$seed" "$variant"
		replay "$TRACES/trace-$seed.csv" "$CLUSTER" "$seed" "$variant" "$RESULTS" \
			"$TT_STATE/sim-trace$seed-$variant.log"
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
$PYTHON -c "$CLASS_REPORT" classes "$RESULTS"
fi

if [ ${#REAL_TRACES[@]} -gt 0 ]; then
	REAL_RESULTS=$TT_STATE/sim-real-results.jsonl
	: >"$REAL_RESULTS"
	tt_log "replaying the real traces of $REAL_DIR with $VARIANTS"
	for name in "${REAL_TRACES[@]}"; do
		jobs=$(tail -n +2 "$REAL_DIR/$name/trace.csv" | grep -c .)
		echo "   $name: $jobs jobs; cluster $(cluster_size "$REAL_DIR/$name/cluster.csv")"
		for variant in $VARIANTS; do
			printf '   %s, %-16s ' "$name" "$variant"
			replay "$REAL_DIR/$name/trace.csv" "$REAL_DIR/$name/cluster.csv" "\"$name\"" "$variant" \
				"$REAL_RESULTS" "$TT_STATE/sim-real-$name-$variant.log"
		done
	done
	tt_log "results on the real traces (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
	$PYTHON -c "$CLASS_REPORT" real "$REAL_RESULTS"
fi

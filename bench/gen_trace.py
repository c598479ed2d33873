#!/usr/bin/env python3
"""bench/gen_trace.py --jobs N --seed S [--hours H] > trace.csv: a job trace for bench/simulate.

The job mix is the extension's own synthetic generator
(tinytemp_synthetic_jobs(N, S), read through psql), so that the in-database
runtime predictor's estimates mean something.  This script only shapes it
into a trace for a cluster (bench/clusters/hetero.csv unless --cluster):

- runtime_s becomes the runtime on a worker of speed 1.0: the synthetic
  runtime was measured on its gpu_type, so it is multiplied by that type's
  speed in the cluster file, or in GPU_SPEEDS for a type the cluster lacks
  (CPU jobs are unchanged); then clipped to
  [5 s, 48 h].  The synthetic runtimes are heavy-tailed already (median a
  small fraction of the mean); the summary on stderr shows it.
- about 80% of GPU jobs lose their gpu_type (NULL: any GPU will do): all
  of those that asked for a GPU slower than the cluster's reference (speed
  below 1.0: nobody insists on the slowest cards), and enough of the others
  to make 80%; the 20% that keep a type ask for a fast one.  (Keeping slow
  types made FIFO traces degenerate: a job pinned to a small pool of slow
  nodes waits for all of them to drain, and strict FIFO idles the whole
  cluster behind it for days.);
- about 8% of GPU jobs become gangs of 2 to 4 members with 1 or 2 GPUs
  each (2 to 8 GPUs in all), each member sized like a share of the job;
- every job (every gang member) fits at least one worker of the cluster
  (a job asking for a GPU type the cluster lacks takes any GPU),
  and a gang has at least as many workers able to hold a member as it has
  members: requests are capped, or the gpu_type dropped, to make it so;
- priority 1 for about 10% of jobs, 0 for the rest;
- 4 tenants of unequal appetite (50/25/15/10% of jobs);
- arrivals from a Poisson process whose rate switches between calm periods
  (mean 3 h) and bursts (mean 45 min, 6 times the rate), scaled so that
  the trace spans --hours.  Without --hours, the span is chosen so that
  the offered load (GPU-seconds, or CPU-seconds if those bind, at speed 1.0
  over the cluster's speed-weighted capacity) is --load (default 0.9).

The trace's columns: submit_s, job_type, model, dataset_size, epochs,
batch_size, cpus, memory_mb, gpus, gpu_type, gang_size, priority, tenant,
runtime_s.  An empty field is a NULL.  Python's standard library only.
"""
import argparse
import csv
import io
import os
import random
import statistics
import subprocess
import sys

MIN_RUNTIME_S = 5.0
MAX_RUNTIME_S = 48 * 3600.0
UNTYPED_SHARE = 0.80
GANG_SHARE = 0.08
HIGH_PRIORITY_SHARE = 0.10
TENANTS = [("team-a", 50), ("team-b", 25), ("team-c", 15), ("team-d", 10)]
CALM_MEAN_S = 3 * 3600.0
BURST_MEAN_S = 45 * 60.0
BURST_RATE_FACTOR = 6.0
COLUMNS = ["submit_s", "job_type", "model", "dataset_size", "epochs", "batch_size", "cpus",
           "memory_mb", "gpus", "gpu_type", "gang_size", "priority", "tenant", "runtime_s"]
# Each GPU type's speed relative to an a100, as tinytemp_synthetic_jobs models
# them; the cluster file's speed of a type it has takes precedence.
GPU_SPEEDS = {"h100": 2.0, "a100": 1.0, "v100": 0.47, "l4": 0.4, "t4": 0.2}
SYNTHETIC_COLUMNS = ["job_type", "model", "dataset_size", "epochs", "batch_size", "cpus",
                     "gpus", "gpu_type", "memory_mb", "runtime_s"]


def fail(message):
    print("gen_trace.py: " + message, file=sys.stderr)
    sys.exit(1)


def read_cluster(path):
    """The cluster file's rows, one dict per node kind."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        fail("cannot read cluster file %s: %s" % (path, e.strerror))
    nodes = []
    for i, r in enumerate(rows, start=2):
        try:
            nodes.append({
                "count": int(r["count"]),
                "cpus": int(r["cpus"]),
                "memory_mb": int(r["memory_mb"]),
                "gpus": int(r["gpus"] or 0),
                "gpu_type": r["gpu_type"] or None,
                "speed": float(r["speed"] or 1.0),
            })
        except (KeyError, ValueError, TypeError):
            fail("%s line %d: expected name,count,cpus,memory_mb,gpus,gpu_type,speed" % (path, i))
    if not nodes:
        fail("cluster file %s has no workers" % path)
    return nodes


def read_synthetic(n, seed, dbname):
    """tinytemp_synthetic_jobs(n, seed), through psql."""
    cmd = ["psql", "-XAt", "--csv", "-v", "ON_ERROR_STOP=1",
           "-c", "SELECT * FROM tinytemp_synthetic_jobs(%d, %d)" % (n, seed)]
    if dbname:
        cmd[1:1] = ["-d", dbname]
    try:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    except FileNotFoundError:
        fail("psql not found in PATH")
    except subprocess.CalledProcessError as e:
        fail("psql failed (exit %d): is the tinytemp extension installed in the database "
             "that PG* variables or --dbname name?" % e.returncode)
    jobs = []
    for row in csv.reader(io.StringIO(out)):
        if len(row) != len(SYNTHETIC_COLUMNS):
            fail("unexpected row from tinytemp_synthetic_jobs: %r" % (row,))
        jobs.append(dict(zip(SYNTHETIC_COLUMNS, row)))
    if len(jobs) != n:
        fail("tinytemp_synthetic_jobs returned %d rows, expected %d" % (len(jobs), n))
    return jobs


def fitting_workers(nodes, job):
    """How many workers could hold one member of the job."""
    return sum(nd["count"] for nd in nodes
               if nd["cpus"] >= job["cpus"] and nd["memory_mb"] >= job["memory_mb"]
               and nd["gpus"] >= job["gpus"]
               and (job["gpus"] == 0 or job["gpu_type"] is None or nd["gpu_type"] == job["gpu_type"]))


def fit_to_cluster(job, nodes):
    """Cap the request, or drop its gpu_type, until enough workers can hold its members."""
    def kinds():
        return [nd for nd in nodes
                if nd["gpus"] >= job["gpus"]
                and (job["gpus"] == 0 or job["gpu_type"] is None or nd["gpu_type"] == job["gpu_type"])]

    if job["gpu_type"] is not None and sum(nd["count"] for nd in kinds()) < job["gang_size"]:
        job["gpu_type"] = None
    job["gpus"] = min(job["gpus"], max(nd["gpus"] for nd in nodes))
    if fitting_workers(nodes, job) == 0:
        biggest = max(kinds(), key=lambda nd: (nd["cpus"] * nd["memory_mb"], nd["count"]))
        job["cpus"] = min(job["cpus"], biggest["cpus"])
        job["memory_mb"] = min(job["memory_mb"], biggest["memory_mb"])
    while job["gang_size"] > 1 and fitting_workers(nodes, job) < job["gang_size"]:
        job["gang_size"] -= 1


def arrivals(rng, n):
    """n arrival times (unscaled) of a Poisson process switching between calm and bursts."""
    times = []
    t = 0.0
    burst = False
    period_end = rng.expovariate(1.0 / CALM_MEAN_S)
    rate = 1.0 / 600.0
    while len(times) < n:
        r = rate * (BURST_RATE_FACTOR if burst else 1.0)
        gap = rng.expovariate(r)
        if t + gap > period_end:
            t = period_end
            burst = not burst
            period_end = t + rng.expovariate(1.0 / (BURST_MEAN_S if burst else CALM_MEAN_S))
            continue
        t += gap
        times.append(t)
    return times


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "%.3f" % v
    return str(v)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, required=True, help="number of trace jobs (a gang is one)")
    ap.add_argument("--seed", type=int, required=True, help="seed of the synthetic jobs and of the shaping")
    ap.add_argument("--hours", type=float, help="span of the arrivals (default: from --load)")
    ap.add_argument("--load", type=float, default=0.9,
                    help="offered load that sets the span when --hours is not given (default 0.9)")
    ap.add_argument("--cluster", default=os.path.join(here, "clusters", "hetero.csv"),
                    help="cluster CSV the jobs must fit (default bench/clusters/hetero.csv)")
    ap.add_argument("--dbname", "--conninfo", dest="dbname",
                    help="database (name or connection string) with the tinytemp extension, for psql")
    args = ap.parse_args()
    if args.jobs < 1:
        fail("--jobs must be at least 1")
    if args.hours is not None and args.hours <= 0:
        fail("--hours must be positive")
    if args.load <= 0:
        fail("--load must be positive")

    nodes = read_cluster(args.cluster)
    speed_of = dict(GPU_SPEEDS)
    for nd in nodes:
        if nd["gpu_type"] is not None:
            speed_of[nd["gpu_type"]] = nd["speed"]
    synthetic = read_synthetic(args.jobs, args.seed, args.dbname)
    rng = random.Random(args.seed)
    tenant_names = [t for t, _ in TENANTS]
    tenant_weights = [w for _, w in TENANTS]

    # The share of fast-typed GPU jobs that keep their type, for UNTYPED_SHARE in all.
    gpu_types = [s["gpu_type"] for s in synthetic if int(s["gpus"] or 0) > 0 and s["gpu_type"]]
    fast = sum(1 for t in gpu_types if speed_of.get(t, 0.0) >= 1.0)
    keep_fast_type = min(1.0, (1.0 - UNTYPED_SHARE) * len(gpu_types) / fast) if fast else 0.0

    jobs = []
    for s in synthetic:
        gpus = int(s["gpus"] or 0)
        gpu_type = s["gpu_type"] or None
        runtime = float(s["runtime_s"])
        if gpus > 0 and gpu_type is not None:
            if gpu_type not in speed_of:
                fail("no speed known for gpu_type %s: add it to the cluster file" % gpu_type)
            runtime *= speed_of[gpu_type]
        job = {
            "job_type": s["job_type"],
            "model": s["model"] or None,
            "dataset_size": s["dataset_size"] or None,
            "epochs": s["epochs"] or None,
            "batch_size": s["batch_size"] or None,
            "cpus": int(s["cpus"]),
            "memory_mb": int(s["memory_mb"]),
            "gpus": gpus,
            "gpu_type": gpu_type if gpus > 0 else None,
            "gang_size": 1,
            "priority": 1 if rng.random() < HIGH_PRIORITY_SHARE else 0,
            "tenant": rng.choices(tenant_names, tenant_weights)[0],
            "runtime_s": min(MAX_RUNTIME_S, max(MIN_RUNTIME_S, runtime)),
        }
        if gpus > 0:
            if job["gpu_type"] is not None and (speed_of[job["gpu_type"]] < 1.0
                                                or rng.random() >= keep_fast_type):
                job["gpu_type"] = None
            if rng.random() < GANG_SHARE:
                members = rng.choice([2, 3, 4])
                per_member = rng.choice([1, 2])
                job["cpus"] = max(1, round(job["cpus"] * per_member / gpus))
                job["memory_mb"] = max(1024, round(job["memory_mb"] * per_member / gpus / 1024) * 1024)
                job["gpus"] = per_member
                job["gang_size"] = members
        fit_to_cluster(job, nodes)
        jobs.append(job)

    # The span: as asked, or what makes the offered load args.load.
    gpu_capacity = sum(nd["count"] * nd["gpus"] * nd["speed"] for nd in nodes)
    cpu_capacity = sum(nd["count"] * nd["cpus"] * nd["speed"] for nd in nodes)
    gpu_demand = sum(j["gpus"] * j["gang_size"] * j["runtime_s"] for j in jobs)
    cpu_demand = sum(j["cpus"] * j["gang_size"] * j["runtime_s"] for j in jobs)
    busy_s = max(gpu_demand / gpu_capacity if gpu_capacity else 0.0, cpu_demand / cpu_capacity)
    span_s = args.hours * 3600.0 if args.hours is not None else busy_s / args.load
    times = arrivals(rng, len(jobs))
    scale = span_s / times[-1] if times[-1] > 0 else 0.0

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    for t, j in zip(times, jobs):
        j["submit_s"] = round(t * scale, 3)
        out.writerow([fmt(j[c]) for c in COLUMNS])

    runtimes = [j["runtime_s"] for j in jobs]
    gpu_jobs = [j for j in jobs if j["gpus"] > 0]
    print("gen_trace.py: %d jobs over %.1f h; runtime_s median %.0f, mean %.0f, max %.0f; "
          "%d GPU jobs (%d untyped, %d gangs); offered load %.2f (GPU %.2f, CPU %.2f)"
          % (len(jobs), span_s / 3600.0, statistics.median(runtimes), statistics.mean(runtimes),
             max(runtimes), len(gpu_jobs), sum(1 for j in gpu_jobs if j["gpu_type"] is None),
             sum(1 for j in jobs if j["gang_size"] > 1), busy_s / span_s if span_s else 0.0,
             gpu_demand / gpu_capacity / span_s if gpu_capacity and span_s else 0.0,
             cpu_demand / cpu_capacity / span_s if span_s else 0.0),
          file=sys.stderr)


if __name__ == "__main__":
    main()

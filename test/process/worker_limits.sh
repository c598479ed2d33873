#!/usr/bin/env bash
# CPU and memory limits: each handler runs in a cgroup of its own with a CPU
# quota of the job's cpus and a memory limit of its memory_mb.  A CPU-bound
# handler in a one-CPU job gets one CPU's worth, in a two-CPU job more; a
# handler that allocates past its memory is killed and the attempt fails
# with "out of memory: limit N MB"; what a handler leaves running is killed
# with its cgroup; 100 jobs leave no cgroup behind, and the worker's own
# cgroups go when it exits.  --no-limits, and a worker that may not create
# cgroups (an unprivileged user), run jobs without limits.
source "$(dirname "$0")/common.bash"
reset_db
OUT=$TMP/out
mkdir -p "$OUT"
PY=$(command -v /usr/bin/python3 python3 | head -1)

# Two busy processes for 2 s of wall time; the result is their CPU time and the wall time.
cat > "$TMP/burn.py" <<PY
#!$PY
import json, os, subprocess, sys, time
sys.stdin.read()
start = time.time()
busy = 'import time\nt = time.time()\nwhile time.time() - t < 2: pass'
kids = [subprocess.Popen([sys.executable, '-c', busy]) for _ in range(2)]
for k in kids:
    k.wait()
wall = time.time() - start
t = os.times()
print(json.dumps({"cpu": t.children_user + t.children_system, "wall": wall}))
PY
# 300 MB, every page touched.
cat > "$TMP/hog.py" <<PY
#!$PY
import sys
sys.stdin.read()
b = bytearray(b'x') * (300 << 20)
print('{"allocated_mb": %d}' % (len(b) >> 20))
PY
# Leaves a process behind in a session of its own, out of the handler's process group.
cat > "$TMP/escape.sh" <<'SH'
#!/bin/sh
cat >/dev/null
rm -f "$OUT/escaped.pid"
setsid sh -c 'echo $$ > "$OUT/escaped.pid.tmp" && mv "$OUT/escaped.pid.tmp" "$OUT/escaped.pid" && exec sleep 300' \
	</dev/null >/dev/null 2>&1 &
while [ ! -s "$OUT/escaped.pid" ]; do sleep 0.05; done
SH
chmod 755 "$TMP"/*.py "$TMP"/*.sh
cat > "$TMP/handlers.conf" <<CONF
[burn]
command = ./burn.py

[hog]
command = ./hog.py

[escape]
command = ./escape.sh
env = OUT=$OUT

[short]
command = /bin/true
CONF

# ratio JOB: the handler's CPU time over its wall time, from its result.
ratio() {
	q -c "SELECT round(((result->>'cpu')::float8 / (result->>'wall')::float8)::numeric, 2) FROM tinytemp.jobs WHERE id = $1"
}

# below A B: whether A < B, as decimals.
below() {
	python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2"
}

# parents NAME PID: the worker's parent cgroups, one per hierarchy.
parents() {
	find /sys/fs/cgroup -maxdepth 8 -type d -name "tinytemp-worker-$1-$2" 2>/dev/null
}

# job_cgroups DIRS: how many job cgroups there are under the parents.
job_cgroups() {
	local d n=0
	for d in $1; do
		n=$((n + $(find "$d" -mindepth 1 -maxdepth 1 -type d | wc -l)))
	done
	echo "$n"
}

# run_job TYPE CPUS MEMORY_MB [MAX_ATTEMPTS]: enqueue a job and wait until it has ended; prints its id.
run_job() {
	local id
	id=$(q -c "SELECT tinytemp_enqueue('$1', cpus => $2, memory_mb => $3, max_attempts => ${4:-1})")
	wait_sql "SELECT state IN ('succeeded', 'failed') FROM tinytemp.jobs WHERE id = $id" 60 >/dev/null
	echo "$id"
}

# ---- With limits (as root: cgroup v1 or v2).
PGOPTIONS='-c tinytemp.retry_backoff_base=100ms' start_worker lim --name lim-w --config "$TMP/handlers.conf" \
	--slots 1 --poll-interval 0.5
w=$LAST_PID
wait_log lim " ready " 15
tap $? "the worker is ready"
bail_out
limited=yes
if ! grep -qE " starting .* limits=cgroup-v[12] " "$TMP/lim.log"; then
	limited=
	reason=$(grep -m1 "running jobs without CPU and memory limits" "$TMP/lim.log" | sed 's/.*limits: //')
fi

if [ -n "$limited" ]; then
	tap 0 "the worker limits jobs with cgroups ($(grep -oE 'limits=cgroup-v[12]' "$TMP/lim.log"))"
	dirs=$(parents lim-w "$w")
	[ -n "$dirs" ]
	tap $? "it made its parent cgroups: $(echo $dirs)"

	one=$(run_job burn 1 500)
	r1=$(ratio "$one")
	below "$r1" 1.1
	tap $? "a one-CPU job's two busy processes got at most 1.1 CPUs (got $r1)"
	usage=$(grep -E " job=$one usage cpu=" "$TMP/lim.log" | sed -E 's/.* cpu=([0-9.]+)s.*/\1/')
	runtime=$(grep -E " job=$one exited " "$TMP/lim.log" | sed -E 's/.* after ([0-9.]+)s.*/\1/')
	below "${usage:-9}" "$(python3 -c "print(1.1 * ${runtime:-0})")"
	tap $? "its cgroup's CPU time ($usage s) is at most 1.1 times its run time ($runtime s)"
	two=
	if [ "$(nproc)" -ge 2 ]; then
		two=$(run_job burn 2 500)
		r2=$(ratio "$two")
		below 1.2 "$r2"
		tap $? "a two-CPU job's two busy processes got more than 1.2 CPUs (got $r2)"
	else
		tap 0 "# SKIP a single CPU: no two-CPU job"
	fi
	if grep -q "CPUs pinned with cpuset" "$TMP/lim.log" && [ -n "$two" ]; then
		grep -qE " job=$one started pid=[0-9]+ .*cgroup=job-$one-a1 cpuset=[0-9]+( |$)" "$TMP/lim.log"
		tap $? "the one-CPU job was pinned to one CPU"
		grep -qE " job=$two started pid=[0-9]+ .*cgroup=job-$two-a1 cpuset=[0-9]+,[0-9]+( |$)" "$TMP/lim.log"
		tap $? "the two-CPU job was pinned to two"
	else
		tap 0 "# SKIP no cpuset here, or a single CPU"
	fi

	hog=$(run_job hog 1 100 2)
	is "$(q -c "SELECT state || ' ' || attempts || ' ' || last_error FROM tinytemp.jobs WHERE id = $hog")" \
		"failed 2 out of memory: limit 100 MB" \
		"a handler allocating 300 MB in a 100 MB job is killed: each attempt fails with the limit, until max_attempts"
	is "$(q -c "SELECT string_agg(detail->>'error' || '/' || (detail->>'retryable'), ' ' ORDER BY id)
	            FROM tinytemp.jobs_history WHERE job_id = $hog AND event = 'failed'")" \
		"out of memory: limit 100 MB/true out of memory: limit 100 MB/true" "both failures were retryable"
	grep -qE " job=$hog oom-killed .*memory_mb=100" "$TMP/lim.log"
	tap $? "the worker logged the OOM kill"

	esc=$(run_job escape 1 100)
	is "$(q -c "SELECT state FROM tinytemp.jobs WHERE id = $esc")" succeeded "a handler leaving a process in its own session succeeded"
	left=$(cat "$OUT/escaped.pid" 2>/dev/null)
	[ -n "$left" ] && wait_gone "$left" 5
	tap $? "the process it left (pid $left, out of its process group) was killed with its cgroup"
	[ -n "$left" ] && kill -9 "$left" 2>/dev/null

	q -c "SELECT count(tinytemp_enqueue('short', cpus => 1, memory_mb => 64)) FROM generate_series(1, 100)" >/dev/null
	wait_sql "SELECT count(*) = 100 FROM tinytemp.jobs WHERE job_type = 'short' AND state = 'succeeded'" 90
	tap $? "100 short jobs succeeded"
	is "$(job_cgroups "$dirs")" 0 "they left no job cgroup behind"
	is "$(grep -cE " job=[0-9]+ started pid=[0-9]+ .*cgroup=job-" "$TMP/lim.log")" \
		"$(grep -cE " job=[0-9]+ started pid=" "$TMP/lim.log")" "every handler ran in a job cgroup"
else
	tap 0 "# SKIP cgroups cannot be created here: $reason"
fi

kill -TERM "$w"
wait_exit "$w" 20
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"
if [ -n "$limited" ]; then
	is "$(parents lim-w "$w")" "" "its parent cgroups are gone"
fi

# ---- A worker killed with -9 leaves its cgroups; the next worker of its name removes them.
if [ -n "$limited" ]; then
	start_worker k1 --name lim-k --handler 'long=/bin/sleep 300' --poll-interval 0.5
	w=$LAST_PID
	wait_log k1 " ready " 15
	long=$(q -c "SELECT tinytemp_enqueue('long', cpus => 1, memory_mb => 64, max_attempts => 1)")
	wait_log k1 " job=$long started pid=" 15
	kill9 "$w"
	[ -n "$(parents lim-k "$w")" ]
	tap $? "a worker killed with -9 leaves its cgroups behind"
	start_worker k2 --name lim-k --handler 'long=/bin/sleep 300' --poll-interval 0.5
	w2=$LAST_PID
	wait_log k2 " ready " 15
	is "$(parents lim-k "$w")" "" "the next worker of its name removed them"
	grep -q "removed the cgroup .*tinytemp-worker-lim-k-$w of an earlier worker" "$TMP/k2.log"
	tap $? "and said so"
	q -c "SELECT tinytemp_cancel($long)" >/dev/null
	kill -TERM "$w2"
	wait_exit "$w2" 20
fi

# ---- --no-limits: no cgroup, no limit.
start_worker free --name free-w --config "$TMP/handlers.conf" --slots 1 --poll-interval 0.5 --no-limits
w=$LAST_PID
wait_log free " ready " 15
grep -qE " starting .* limits=off " "$TMP/free.log"
tap $? "--no-limits: the worker says limits=off"
hog=$(run_job hog 1 100)
is "$(q -c "SELECT state || ' ' || result FROM tinytemp.jobs WHERE id = $hog")" 'succeeded {"allocated_mb": 300}' \
	"the 300 MB handler succeeds in a 100 MB job"
if [ "$(nproc)" -ge 2 ]; then
	one=$(run_job burn 1 500)
	r=$(ratio "$one")
	below 1.2 "$r"
	tap $? "a one-CPU job's two busy processes got more than 1.2 CPUs (got $r)"
else
	tap 0 "# SKIP a single CPU: nothing to compare"
fi
esc=$(run_job escape 1 100)
left=$(cat "$OUT/escaped.pid" 2>/dev/null)
sleep 0.5
[ -n "$left" ] && kill -0 "$left" 2>/dev/null
tap $? "what a handler leaves out of its process group outlives it without a cgroup (pid $left)"
[ -n "$left" ] && kill -9 "$left" 2>/dev/null
grep -qE "cgroup=job-" "$TMP/free.log"
tap $((!$?)) "no handler ran in a job cgroup"
kill -TERM "$w"
wait_exit "$w" 20

# ---- A worker that may not create cgroups: an unprivileged user.
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && id -u tinytemp >/dev/null 2>&1; then
	start_command unpriv runuser -u tinytemp -- "$WORKER" --name unpriv-w --handler 'short=/bin/true' \
		--poll-interval 0.5
	w=$LAST_PID
	wait_log unpriv " ready " 15
	tap $? "a worker run as an unprivileged user is ready"
	is "$(grep -c "running jobs without CPU and memory limits" "$TMP/unpriv.log")" 1 \
		"it says once that it runs jobs without limits"
	grep -m1 "running jobs without CPU and memory limits" "$TMP/unpriv.log" | sed 's/^/# /'
	grep -qE " starting .* limits=off " "$TMP/unpriv.log"
	tap $? "its start line says limits=off"
	ids=$(q -c "SELECT tinytemp_enqueue('short', cpus => 1, memory_mb => 64) FROM generate_series(1, 3)" | tr '\n' ',')
	wait_sql "SELECT count(*) = 3 FROM tinytemp.jobs WHERE id IN (${ids%,}) AND state = 'succeeded'" 20
	tap $? "its jobs still run"
	kill -TERM "$w"
	wait_exit "$w" 20
	is "$(grep -c "running jobs without CPU and memory limits" "$TMP/unpriv.log")" 1 "and it said so only once"
else
	tap 0 "# SKIP not root, or no runuser or tinytemp user: the unprivileged worker is not tried"
fi

done_testing

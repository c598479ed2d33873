#!/usr/bin/env bash
# The container handler (worker_client/handlers/container/run-in-podman).
# Part 1, always: through the worker and on its own, with TINYTEMP_PODMAN
# pointing at a stub that records how it is called, the podman command line
# it builds for a job (limits, name, labels, environment, GPUs and their
# devices, nothing of the params in argv), the job row on the container's stdin, its
# output and exit status back to the worker, the stop on SIGTERM, the
# removal of containers left by dead handlers, refused input.
# Part 2, where podman can run a container here: real jobs in the demo image
# built from handlers/container/image (FROM scratch, no registry), in a
# podman store of its own: limits seen from inside, output lines, exit
# status, the memory limit enforced, SIGTERM reaching the job, a leftover
# container removed.  Where podman cannot, "# SKIP" lines say why.
source "$(dirname "$0")/common.bash"
reset_db
# The workers run in a directory of their own, to see that nothing is written there.
mkdir "$TMP/cwd" && cd "$TMP/cwd" || exit 1
CDIR=$TT_REPO/worker_client/handlers/container
WRAPPER=$CDIR/run-in-podman
IMAGE=localhost/tinytemp-container-demo:latest	# build-image.sh's default, as container.conf names it
# job_field ID EXPR: one value of the job.
job_field() {
	q -c "SELECT $2 FROM tinytemp.jobs WHERE id = $1"
}
# like GOT PART DESCRIPTION: GOT contains PART.
like() {
	if grep -qF -- "$2" <<<"$1"; then
		tap 0 "$3"
	else
		tap 1 "$3"
		echo "#   got:  '$1'"
		echo "#   want: '$2' in it"
	fi
}

# ---- Part 1: a stub podman ------------------------------------------------
# Each call is recorded in $STUB_DIR: SUBCOMMAND.args (argv, one per line),
# for run also run.stdin, run.env (the GPU variables) and run.pid; rm.log
# has a line per rm.  run prints
# $STUB_LINES (file), sleeps $STUB_SLEEP seconds (SIGTERM ends it: 143) and
# exits $STUB_STATUS, having made a file "oom" in its working directory
# when $STUB_OOM_FILE is set (as conmon does); stop sends run SIGTERM; inspect prints
# "$STUB_OOM OWNER"; ps prints $STUB_DIR/ps.out.
STUB=$TMP/podman-stub
cat > "$STUB" <<'SH'
#!/bin/bash
sub=
for a in "$@"; do
	case $a in run | stop | inspect | ps | rm) sub=$a; break ;; esac
done
printf '%s\n' "$@" > "$STUB_DIR/$sub.args"
echo "$sub" >> "$STUB_DIR/calls"
case $sub in
run)
	echo $$ > "$STUB_DIR/run.pid"
	cat > "$STUB_DIR/run.stdin"
	printf '%s\n' "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}" \
		"NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-unset}" "TINYTEMP_GPUS=${TINYTEMP_GPUS-unset}" \
		> "$STUB_DIR/run.env"
	[ -f "${STUB_LINES:-/nonexistent}" ] && cat "$STUB_LINES"
	echo "stub: container stderr line" >&2
	[ -n "${STUB_OOM_FILE:-}" ] && : > oom
	trap 'echo terminated > "$STUB_DIR/run.term"; exit 143' TERM
	if [ "${STUB_SLEEP:-0}" != 0 ]; then
		sleep "$STUB_SLEEP" &
		wait $!
	fi
	exit "${STUB_STATUS:-0}"
	;;
stop) kill -TERM "$(cat "$STUB_DIR/run.pid")" ;;
rm) echo "$*" >> "$STUB_DIR/rm.log" ;;
inspect) echo "${STUB_OOM:-false} $(sed -n 's/^tinytemp\.owner=//p' "$STUB_DIR/run.args")" ;;
ps) [ -f "$STUB_DIR/ps.out" ] && cat "$STUB_DIR/ps.out" ;;
esac
exit 0
SH
chmod +x "$STUB"
cat > "$TMP/lines" <<'EOF'
{"metrics": {"loss": 0.5}, "step": 1}
{"checkpoint": {"epoch": 1}}
{"from": "the container"}
EOF
for s in ok fail oom oom_file oom_guess sleep sweep; do mkdir -p "$TMP/stub_$s"; done
# A container left by a process that is gone, and one of a live process (this shell).
printf '%s\n' "tinytemp-gone-1-1 999999999:12345" "tinytemp-live-2-1 $$:$(cut -d ')' -f 2- /proc/$$/stat | cut -d ' ' -f 21)" \
	> "$TMP/stub_sweep/ps.out"

cat > "$TMP/stub.conf" <<CONF
[c_ok]
command = $WRAPPER --global=--runtime=runc --env=EXTRA_VAR some/image:1 /app/run --flag 'two words'
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_ok
env = STUB_LINES=$TMP/lines
env = EXTRA_VAR=extra

[c_fail]
command = $WRAPPER some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_fail
env = STUB_STATUS=3

[c_oom]
command = $WRAPPER some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_oom
env = STUB_STATUS=137
env = STUB_OOM=true

[c_oom_file]
command = $WRAPPER some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_oom_file
env = STUB_STATUS=137
env = STUB_OOM_FILE=1

[c_oom_guess]
command = $WRAPPER some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_oom_guess
env = STUB_STATUS=137

[c_sleep]
command = $WRAPPER --stop-timeout 7 some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_sleep
env = STUB_SLEEP=60
kill_grace = 20

[c_sweep]
command = $WRAPPER some/image:1
env = TINYTEMP_PODMAN=$STUB
env = STUB_DIR=$TMP/stub_sweep
CONF

start_worker stub --name 'stub w' --config "$TMP/stub.conf" --slots 4 --poll-interval 0.5 --cpus 8 --memory-mb 8192
w=$LAST_PID
params='{"cmd": "$(touch /tmp/pwned) ; rm -rf /", "cpus": 99, "memory_mb": 1}'
ok=$(qv p "$params" "SELECT tinytemp_enqueue('c_ok', params => :'p'::jsonb, cpus => 2, memory_mb => 300)")
fail=$(q -c "SELECT tinytemp_enqueue('c_fail', max_attempts => 1)")
oom=$(q -c "SELECT tinytemp_enqueue('c_oom', memory_mb => 48, max_attempts => 1)")
oomf=$(q -c "SELECT tinytemp_enqueue('c_oom_file', memory_mb => 48, max_attempts => 1)")
guess=$(q -c "SELECT tinytemp_enqueue('c_oom_guess', memory_mb => 48, max_attempts => 1)")
wait_sql "SELECT count(*) = 5 FROM tinytemp.jobs WHERE id IN ($ok, $fail, $oom, $oomf, $guess) AND state IN ('succeeded', 'failed')" 20
tap $? "the five stub jobs ended"

args=$(cat "$TMP/stub_ok/run.args")
name="tinytemp-stub_w-$ok-1"
is "$(head -2 <<<"$args" | tr '\n' ' ')" "--runtime=runc run " "--global options come before the subcommand"
is "$(grep -cxE -- "--cpus=2|--memory=300m|--memory-swap=300m|--network=none|--pull=never|--interactive|--init|--log-driver=none|--stop-timeout=5" <<<"$args")" 9 \
	"the job's cpus (2) and memory (300m, no swap beyond) with --network=none, --pull=never, -i, --init, the stop timeout"
is "$(grep -A1 -x -- --name <<<"$args" | tail -1)" "$name" "the container's name is PREFIX-WORKER-JOB-ATTEMPT, the worker name made safe"
is "$(grep -A1 -x -- --label <<<"$args" | grep -v -- '^--' | grep -E '^tinytemp\.(job|attempt|worker)=' | tr '\n' ' ')" \
	"tinytemp.job=$ok tinytemp.attempt=1 tinytemp.worker=stub w " "labels: the job, the attempt, the worker"
is "$(tail -4 <<<"$args" | tr '\n' '|')" "some/image:1|/app/run|--flag|two words|" "the image and the configured command come last, as written"
envs=$(grep -A1 -x -- --env <<<"$args" | grep -v -- '^--' | sort | tr '\n' ' ')
for v in TINYTEMP_JOB_ID TINYTEMP_PARAMS TINYTEMP_ATTEMPT TINYTEMP_WORKER_NAME CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES TINYTEMP_GPUS EXTRA_VAR; do
	[[ " $envs" == *" $v "* ]] || { echo "# missing --env $v in: $envs"; false; } || break
done
tap $? "the job's TINYTEMP_* variables, the GPU variables and --env EXTRA_VAR are passed by name"
! grep -q -e '=' <<<"$(grep -A1 -x -- --env <<<"$args" | grep -v -- '^--')" && ! grep -qF 'pwned' <<<"$args" \
	&& ! grep -q 'TINYTEMP_PODMAN' <<<"$envs"
tap $? "no variable's value and nothing of the params is on the command line; TINYTEMP_PODMAN is not passed in"
is "$(qv s "$(cat "$TMP/stub_ok/run.stdin")" "SELECT (:'s'::jsonb)->>'id' = '$ok' AND (:'s'::jsonb)->'params' = params FROM tinytemp.jobs WHERE id = $ok")" t \
	"the job row arrives on the container's stdin"
is "$(tr '\n' ' ' < "$TMP/stub_ok/run.env")" "CUDA_VISIBLE_DEVICES= NVIDIA_VISIBLE_DEVICES=void TINYTEMP_GPUS= " \
	"no GPUs: CUDA_VISIBLE_DEVICES empty, NVIDIA_VISIBLE_DEVICES=void"
is "$(job_field "$ok" "state || ' ' || result::text || ' ' || checkpoint::text")" 'succeeded {"from": "the container"} {"epoch": 1}' \
	"the container's output reaches the worker: its last line is the result, its checkpoint line is saved"
is "$(q -c "SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $ok AND key = 'loss'")" 1 "and its metrics line is recorded"
is "$(tr '\n' ' ' < "$TMP/stub_ok/calls")" "ps run inspect rm " "podman calls: ps (leftovers), run, inspect, rm"
is "$(cat "$TMP/stub_ok/rm.log")" "--runtime=runc rm -f $name" "the container is removed by name once it has ended"
like "$(job_field "$fail" "state || ' ' || last_error")" "failed handler exited with status 3" \
	"the container's exit status is the handler's: the job failed with status 3"
like "$(job_field "$oom" "state || ' ' || last_error")" "killed for going over its memory limit of 48 MiB" \
	"a container podman saw killed for memory: the error says so"
like "$(job_field "$oomf" "state || ' ' || last_error")" "killed for going over its memory limit of 48 MiB" \
	"one conmon saw (its file \"oom\" in podman run's working directory): the error says so"
[ ! -e "$TMP/cwd/oom" ] && [ -z "$(ls -d /tmp/run-in-podman.tinytemp-stub_w-* 2>/dev/null)" ]
tap $? "podman run ran in a scratch directory, removed after, not in the worker's"
like "$(job_field "$guess" "last_error")" "without a stop: most likely over its memory limit of 48 MiB" \
	"status 137 without a stop: the error says the memory limit is the likely cause"

# The stop: SIGTERM to the handler's process group (a cancel) makes one podman stop.
slp=$(q -c "SELECT tinytemp_enqueue('c_sleep')")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $slp" 10 && wait_log stub "job=$slp started" 5 \
	&& for i in $(seq 50); do [ -s "$TMP/stub_sleep/run.pid" ] && break; sleep 0.1; done
q -c "SELECT tinytemp_cancel($slp)" >/dev/null
wait_log stub "job=$slp cancelled" 10
tap $? "the cancelled job's handler ended within seconds"
is "$(tr '\n' ' ' < "$TMP/stub_sleep/stop.args" 2>/dev/null)" "stop -t 7 tinytemp-stub_w-$slp-1 " \
	"SIGTERM became podman stop -t STOP_TIMEOUT NAME"
is "$(cat "$TMP/stub_sleep/run.term" 2>/dev/null)" terminated "podman run was stopped by it, not by the worker's signal"
is "$(grep -c '^stop$' "$TMP/stub_sleep/calls")" 1 "one stop, though the whole process group got SIGTERM"

# Leftovers: a container whose owner process is gone is removed, a live one's is not.
swp=$(q -c "SELECT tinytemp_enqueue('c_sweep')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $swp" 10
tap $? "the job with leftovers around succeeded"
is "$(tr '\n' '|' < "$TMP/stub_sweep/rm.log")" "rm -f -t 0 tinytemp-gone-1-1|rm -f tinytemp-stub_w-$swp-1|" \
	"the container of a process that is gone was removed (at once), that of a live one was not; then the job's own"
like "$(q -c "SELECT string_agg(line, ' ') FROM tinytemp.job_logs WHERE job_id = $swp")" \
	"removing container tinytemp-gone-1-1, left by process 999999999 that is gone" \
	"the removal is said on stderr, in the job's log"
drain_workers "$w"

# On its own: GPUs, refused input.
stub_run() { # DIR ARGS...: run the wrapper on a job with 2 GPUs, stub podman recording in DIR
	local dir=$1
	shift
	mkdir -p "$dir"
	echo '{"id": 5, "cpus": 1, "memory_mb": 64, "gpus": 2}' |
		TINYTEMP_PODMAN=$STUB STUB_DIR=$dir TINYTEMP_JOB_ID=5 TINYTEMP_ATTEMPT=1 TINYTEMP_WORKER_NAME=g \
			TINYTEMP_CDI_SPEC_DIRS=${CDI_DIRS:-$TMP/no-cdi} "$WRAPPER" "$@" img >/dev/null 2>"$dir/stderr"
}
devices() { grep -A1 -x -- --device "$1/run.args" | grep -v -- '^--' | tr '\n' ' '; }
TINYTEMP_GPUS=3,1 stub_run "$TMP/g_dev" --gpus-via devices
is "$(devices "$TMP/g_dev" | sed -E 's#/dev/nvidia(ctl|-uvm|-uvm-tools|-modeset) ##g')" "/dev/nvidia3 /dev/nvidia1 " \
	"--gpus-via devices: /dev/nvidiaN for the job's GPUs (and only NVIDIA control nodes besides)"
is "$(tr '\n' ' ' < "$TMP/g_dev/run.env")" "CUDA_VISIBLE_DEVICES=0,1 NVIDIA_VISIBLE_DEVICES=3,1 TINYTEMP_GPUS=3,1 " \
	"inside: CUDA numbers the two GPUs 0,1; NVIDIA_VISIBLE_DEVICES and TINYTEMP_GPUS keep the host indices"
TINYTEMP_GPUS=3,1 stub_run "$TMP/g_cdi" --gpus-via cdi
is "$(devices "$TMP/g_cdi")" "nvidia.com/gpu=3 nvidia.com/gpu=1 " "--gpus-via cdi: --device nvidia.com/gpu=I"
mkdir -p "$TMP/cdi" "$TMP/no-cdi"
printf '%s\n' 'cdiVersion: "0.5.0"' 'kind: nvidia.com/gpu' 'devices:' '- name: "0"' > "$TMP/cdi/nvidia.yaml"
TINYTEMP_GPUS=2,0 CDI_DIRS=$TMP/cdi stub_run "$TMP/g_auto_cdi"
is "$(devices "$TMP/g_auto_cdi")" "nvidia.com/gpu=2 nvidia.com/gpu=0 " "--gpus-via auto with an NVIDIA CDI spec: CDI"
TINYTEMP_GPUS=2 stub_run "$TMP/g_auto_dev"
is "$(devices "$TMP/g_auto_dev" | cut -d ' ' -f 1)" "/dev/nvidia2" "--gpus-via auto without one: device nodes"
TINYTEMP_GPUS=3,1 stub_run "$TMP/g_env" --gpus-via env
is "$(devices "$TMP/g_env")|$(sed -n 2p "$TMP/g_env/run.env")" "|NVIDIA_VISIBLE_DEVICES=3,1" \
	"--gpus-via env: no devices, NVIDIA_VISIBLE_DEVICES names the GPUs for an OCI hook"
TINYTEMP_GPUS='1;touch x' stub_run "$TMP/g_bad"
st=$?
is "$st:$(cat "$TMP/g_bad/calls" 2>/dev/null)" "2:" "a TINYTEMP_GPUS that is not indices: exit 2, podman not called"
mkdir -p "$TMP/g_nomem"
echo '{"id": 5, "cpus": 1}' | TINYTEMP_PODMAN=$STUB STUB_DIR=$TMP/g_nomem TINYTEMP_JOB_ID=5 TINYTEMP_ATTEMPT=1 \
	"$WRAPPER" img >/dev/null 2>"$TMP/g_nomem/stderr"
st=$?
is "$st:$(cat "$TMP/g_nomem/calls" 2>/dev/null)" "2:" "a job without memory_mb: exit 2, podman not called"
like "$(cat "$TMP/g_nomem/stderr")" "no positive integer 'memory_mb'" "and it says why"

# ---- Part 2: real containers ------------------------------------------------
skip_real() {
	echo "# SKIP real containers: $1"
	echo "# SKIP (not run: the demo image built from image/ only; a job's result, output lines, exit status,"
	echo "# SKIP  memory limit enforced, cpu quota and SIGTERM seen inside; a leftover container removed)"
	done_testing
	exit
}
command -v podman >/dev/null 2>&1 || skip_real "podman is not installed (apt-get install podman runc catatonit busybox-static)"
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || skip_real "no static /bin/busybox (apt-get install busybox-static)"
# A store and engine directories of the test's own, so that nothing is left
# in the host's podman store.  crun cannot run on a host whose cgroup v2
# hierarchy has controllers beside cgroup v1 ("cgroups in hybrid mode not
# supported"): runc is used when there.  Root's default limits (nofile
# 1048576, nproc 4194304) may be above what this process may set (EPERM
# without CAP_SYS_RESOURCE): lower ones are asked for.
cat > "$TMP/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$TMP/podman/storage"
runroot = "$TMP/podman/run"
EOF
{
	echo '[engine]'
	echo "tmp_dir = \"$TMP/podman/tmp\""
	command -v runc >/dev/null 2>&1 && echo 'runtime = "runc"'
	echo '[containers]'
	echo 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
} > "$TMP/containers.conf"
export CONTAINERS_STORAGE_CONF=$TMP/storage.conf CONTAINERS_CONF=$TMP/containers.conf
podman_cleanup() {
	podman rm -a -f -t 0 >/dev/null 2>&1
	podman rmi -a -f >/dev/null 2>&1
	cleanup
}
trap podman_cleanup EXIT
"$CDIR/build-image.sh" > "$TMP/build.log" 2>&1
tap $? "build-image.sh builds the demo image from the local directory (FROM scratch, no registry)"
probe=$(echo '{"id": 1, "cpus": 1, "memory_mb": 64}' | TINYTEMP_JOB_ID=1 TINYTEMP_ATTEMPT=1 \
	"$WRAPPER" "$IMAGE" /app/job.sh exit 0 2>&1)
probe_status=$?
[ "$probe_status" = 0 ] || skip_real "podman cannot run a container here: $(tail -1 <<<"$probe")"

# The shipped handler config, as it is (alone: a worker claims jobs of any type).
start_worker conf --name conf-w --config "$CDIR/container.conf" --poll-interval 0.5 --cpus 4 --memory-mb 4096
demo=$(q -c "SELECT tinytemp_enqueue('container_demo', cpus => 1, memory_mb => 64)")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $demo" 15
is "$(job_field "$demo" "state || ' ' || (result->>'memory_limit_bytes')")" "succeeded $((64 * 1048576))" \
	"the container_demo job of container.conf runs in the demo image, with its memory limit"
drain_workers "$LAST_PID"

cat > "$TMP/real.conf" <<CONF
[r_report]
command = $WRAPPER $IMAGE

[r_exit]
command = $WRAPPER $IMAGE /app/job.sh exit 3

[r_hog]
command = $WRAPPER $IMAGE /app/job.sh hog 200

[r_sleep]
command = $WRAPPER --stop-timeout 20 $IMAGE /app/job.sh sleep 60
kill_grace = 30
CONF
# A 3 s lease: heartbeats, and so saved checkpoints, every second.
PGOPTIONS='-c tinytemp.lease_timeout=3s' start_worker real --name real-w --config "$TMP/real.conf" --slots 4 --poll-interval 0.5 --cpus 4 --memory-mb 4096 \
	--drain-timeout 1
w=$LAST_PID
rep=$(q -c "SELECT tinytemp_enqueue('r_report', cpus => 2, memory_mb => 96)")
ex=$(q -c "SELECT tinytemp_enqueue('r_exit', max_attempts => 1)")
hog=$(q -c "SELECT tinytemp_enqueue('r_hog', memory_mb => 48, max_attempts => 1)")
wait_sql "SELECT count(*) = 3 FROM tinytemp.jobs WHERE id IN ($rep, $ex, $hog) AND state IN ('succeeded', 'failed')" 30
tap $? "the three container jobs ended"
is "$(job_field "$rep" "state || ' ' || (result->>'job_id' = id::text) || ' ' || (result->>'stdin_has_job')")" "succeeded true true" \
	"a job in a container succeeded: its result (the last line) came back, and it got its row on stdin"
is "$(job_field "$rep" "(result->>'memory_limit_bytes') || ' ' || (result->>'cpu_quota_us')::int / (result->>'cpu_period_us')::int")" \
	"$((96 * 1048576)) 2" "inside, the memory limit is the job's 96 MiB and the cpu quota the job's 2 cpus"
is "$(job_field "$rep" "(result->>'interfaces') || ' ' || (result->>'nvidia_visible_devices') || ' ' || checkpoint::text")" \
	'lo void {"stage": "reported"}' "only a loopback interface (--network=none), no GPUs; the checkpoint line was saved"
is "$(q -c "SELECT count(*) FROM tinytemp.job_metrics WHERE job_id = $rep AND key = 'container_step'")" 1 \
	"the metrics line from the container was recorded"
like "$(job_field "$ex" "state || ' ' || last_error")" "failed handler exited with status 3; stderr: job.sh: exiting with status 3 as asked" \
	"the container's exit status and stderr make the job's error"
like "$(job_field "$hog" "state || ' ' || last_error")" "handler exited with status 137" \
	"a job over its memory (48 MiB) is killed: status 137"
like "$(job_field "$hog" "last_error")" "memory limit of 48 MiB" "and the error names the memory limit"
[ ! -e "$TMP/cwd/oom" ]
tap $? "nothing was written in the worker's working directory"

# SIGTERM reaches the program inside: a cancel ends the container well before the 20 s SIGKILL.
slp=$(q -c "SELECT tinytemp_enqueue('r_sleep')")
wait_sql "SELECT checkpoint IS NOT NULL FROM tinytemp.jobs WHERE id = $slp" 15
start=$(date +%s.%N)
q -c "SELECT tinytemp_cancel($slp)" >/dev/null
wait_log real "job=$slp cancelled" 15
tap $? "the cancelled container job's handler ended"
is "$(echo "$(date +%s.%N) - $start < 8" | bc)" 1 "within seconds: SIGTERM reached the job inside, not the SIGKILL 20 s later"
is "$(podman ps -a --filter "label=tinytemp.job=$slp" --format '{{.Names}}')" "" "its container is gone"

# A worker killed with -9: its container lives on, and is removed by the next handler's start.
left=$(q -c "SELECT tinytemp_enqueue('r_sleep')")
wait_sql "SELECT checkpoint IS NOT NULL FROM tinytemp.jobs WHERE id = $left" 15
kill9 "$w"
is "$(podman ps --filter "label=tinytemp.job=$left" --format '{{.Names}}')" "tinytemp-real-w-$left-1" \
	"after kill -9 of the worker its job's container still runs"
PGOPTIONS='-c tinytemp.lease_timeout=3s' start_worker real2 --name real-w --config "$TMP/real.conf" --slots 4 --poll-interval 0.5 --cpus 4 --memory-mb 4096 \
	--drain-timeout 1
w=$LAST_PID
wait_sql "SELECT attempts = 2 AND state = 'running' FROM tinytemp.jobs WHERE id = $left" 15
for i in $(seq 50); do
	[ "$(podman ps -a --filter "label=tinytemp.job=$left" --format '{{.Names}}')" = "tinytemp-real-w-$left-2" ] && break
	sleep 0.2
done
is "$(podman ps -a --filter "label=tinytemp.job=$left" --format '{{.Names}}')" "tinytemp-real-w-$left-2" \
	"the next attempt's start removed the leftover container; only its own runs"
wait_log real2 "job=$left stderr run-in-podman: removing container tinytemp-real-w-$left-1, left by process [0-9]+ that is gone" 5
tap $? "and said so on stderr"
# The drain (timeout 1 s) stops it with SIGTERM: its last checkpoint line, printed then, is saved.
drain_workers "$w"
like "$(job_field "$left" "checkpoint::text")" '"stopped_at"' \
	"stopped by the drain, the job printed a last checkpoint on SIGTERM and the worker saved it"
is "$(podman ps -a --format '{{.Names}}')" "" "no container is left"

done_testing

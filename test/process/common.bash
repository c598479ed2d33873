# test/process/common.bash: shared by the real-process tests of tinytemp-worker.
# Sourced, not run (the test runner runs test/process/*.sh only).  Expects
# PGHOST, PGPORT, PGUSER and PGDATABASE to reach a database where tinytemp is
# installed and its background worker runs.  Prints TAP.

set -u
TT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKER=$TT_REPO/worker_client/tinytemp-worker
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/tt-$TEST_NAME.XXXXXX")
chmod 755 "$TMP"
TAP_N=0
TAP_FAILED=0
WORKER_PIDS=()

if [ ! -x "$WORKER" ]; then
	make -s -C "$TT_REPO/worker_client" >&2 || { echo "not ok 1 - build tinytemp-worker"; exit 1; }
fi

# psql for one value or a few lines, failing loudly.
q() {
	psql -qXAt -v ON_ERROR_STOP=1 "$@"
}

# qv NAME VALUE SQL: run SQL where :'NAME' is VALUE as a quoted literal,
# so that a test never splices a value into SQL text either.
qv() {
	printf '%s\n' "$3" | q -v "$1=$2"
}

# ok CONDITION_STATUS DESCRIPTION: print a TAP line for the last command's status.
tap() {
	local status=$1
	shift
	TAP_N=$((TAP_N + 1))
	if [ "$status" = 0 ]; then
		echo "ok $TAP_N - $*"
	else
		echo "not ok $TAP_N - $*"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then
		tap 0 "$3"
	else
		tap 1 "$3"
		echo "#   got:  '$1'"
		echo "#   want: '$2'"
	fi
}

# Truncate tinytemp's tables so that each test starts from nothing; stop
# at once when the database cannot be reached.
reset_db() {
	if ! q -c 'TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers'; then
		echo "not ok 1 - reach the database and reset tinytemp's tables"
		exit 1
	fi
}

# start_worker LOGNAME [ARGS...]: start a worker in the background; its pid is in $LAST_PID.
# Extra environment (PGOPTIONS) is passed by the caller as usual: VAR=x start_worker ...
start_worker() {
	local log=$1
	shift
	start_command "$log" "$WORKER" "$@"
}

# start_command LOGNAME COMMAND [ARGS...]: the same for a wrapped worker (valgrind).
start_command() {
	local log=$TMP/$1.log
	shift
	"$@" 2>>"$log" &
	LAST_PID=$!
	WORKER_PIDS+=("$LAST_PID")
}

# bail_out: stop a test whose later steps depend on what just failed.
bail_out() {
	if [ "$TAP_FAILED" != 0 ]; then
		echo "# bailing out: a step that the rest depends on failed"
		done_testing
		exit 1
	fi
}

# wait_sql SQL SECONDS: wait until SQL returns t; returns 1 on time-out.
wait_sql() {
	local sql=$1 limit=$2 i
	for ((i = 0; i < limit * 5; i++)); do
		[ "$(q -c "$sql" 2>/dev/null)" = t ] && return 0
		sleep 0.2
	done
	return 1
}

# wait_exit PID SECONDS: wait for a background worker to exit; sets EXIT_STATUS (124 on time-out).
wait_exit() {
	local pid=$1 limit=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			EXIT_STATUS=$?
			return 0
		fi
		sleep 0.1
	done
	EXIT_STATUS=124
	return 1
}

# wait_gone PID SECONDS: wait until a process (not our child) no longer exists.
wait_gone() {
	local pid=$1 limit=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		# A zombie not yet reaped by its parent is gone for our purposes.
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && return 0
		sleep 0.1
	done
	return 1
}

# kill9 PID: kill -9 a worker and wait until it is gone (disowned first, so
# that bash prints no "Killed" notice in the middle of the TAP output).
kill9() {
	disown "$1" 2>/dev/null
	kill -9 "$1"
	wait_gone "$1" 5
}

# handler_pid LOG JOB_ID: the pid the worker logged for the job's handler.
handler_pid() {
	grep -E " job=$2 started pid=" "$TMP/$1.log" | tail -1 | sed -E 's/.* pid=([0-9]+).*/\1/'
}

# wait_log LOG REGEX SECONDS
wait_log() {
	local log=$TMP/$1.log re=$2 limit=$3 i
	for ((i = 0; i < limit * 10; i++)); do
		grep -qE "$re" "$log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# The active worker id of a name.
worker_id() {
	q -c "SELECT id FROM tinytemp.workers WHERE name = '$1' AND state = 'active'"
}

# Kill whatever workers are left, show the logs of a failed run, remove the scratch files.
cleanup() {
	local pid
	for pid in "${WORKER_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null && kill9 "$pid"
	done
	if [ "$TAP_FAILED" != 0 ]; then
		for f in "$TMP"/*.log; do
			[ -f "$f" ] || continue
			echo "# ---- $(basename "$f") (last 40 lines)"
			tail -40 "$f" | sed 's/^/# /'
		done
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# Print the plan and exit non-zero when a test failed.
done_testing() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" = 0 ]
}

# kill9_cluster NAME: kill -9 the postmaster of cluster NAME (scripts/lib.sh)
# and every process it started (backends, the tinytemp scheduler, the
# auxiliary processes) at the same moment, as a crash would; wait until all
# are gone.  Sets KILLED to how many processes were killed.
kill9_cluster() {
	local pm pids p
	pm=$(head -1 "$(tt_datadir "$1")/postmaster.pid") || return 1
	# Stopped, the postmaster starts no child between the listing and the kill.
	kill -STOP "$pm" || return 1
	pids=$(ps -o pid= --ppid "$pm")
	kill -9 "$pm" $pids
	KILLED=0
	for p in $pm $pids; do
		wait_gone "$p" 10 || return 1
		KILLED=$((KILLED + 1))
	done
}

# enqueue_batches JOB_TYPE BATCHES SIZE PAUSE [PSQL_ARGS...]: enqueue BATCHES
# transactions of SIZE jobs of JOB_TYPE (params {"batch": B, "seq": I}),
# PAUSE seconds apart, through a server that may crash or fail over
# meanwhile.  A batch whose commit met a lost connection has an unknown
# outcome; being one transaction, it is either all there or not at all once
# a server answers again: all there, it is done; absent, it is sent again.
# Returns 1 on a batch found partly there.  Logs each retry on stderr.
enqueue_batches() {
	local type=$1 batches=$2 size=$3 pause=$4 b n
	shift 4
	for ((b = 1; b <= batches; b++)); do
		while ! q "$@" -v type="$type" -v b="$b" -v size="$size" >/dev/null <<'SQL'
SELECT count(tinytemp_enqueue(:'type', params => jsonb_build_object('batch', :b, 'seq', g)))
FROM generate_series(1, :size) g
SQL
		do
			until n=$(q "$@" -v b="$b" 2>/dev/null <<'SQL'
SELECT count(*) FROM tinytemp.jobs WHERE params @> jsonb_build_object('batch', :b)
SQL
			); do
				sleep 0.2
			done
			echo "enqueuer: batch $b failed; $n of its $size jobs are there" >&2
			[ "$n" = "$size" ] && break
			[ "$n" = 0 ] || return 1
		done
		sleep "$pause"
	done
}

# check_runs FILTER: the handlers' own record of their runs ($TT_RUNLOG: job,
# attempt, pid, worker per line) against the claims in the history, for the
# jobs j of tinytemp.jobs that FILTER selects: every job's handler ran, and
# none more often than the job was claimed (at-least-once, never more).
# Prints the repeated runs and the other history events as TAP comments.
check_runs() {
	local filter=$1 runs history jobs never_ran over_ran total_runs repeated repeated_jobs extra_claims
	runs=$(q <<SQL
CREATE TEMP TABLE runs (job_id bigint, attempt int, pid int, worker text);
\\copy runs FROM '$TT_RUNLOG' WITH (FORMAT text, DELIMITER ' ')
CREATE TEMP TABLE per_job AS
  SELECT j.id, j.attempts,
         (SELECT count(*) FROM runs r WHERE r.job_id = j.id) AS runs,
         (SELECT count(*) FROM tinytemp.jobs_history h WHERE h.job_id = j.id AND h.event = 'claimed') AS claims
  FROM tinytemp.jobs j WHERE $filter;
SELECT count(*) || ' ' || count(*) FILTER (WHERE runs = 0) || ' ' || count(*) FILTER (WHERE runs > claims) || ' '
       || sum(runs) || ' ' || sum(runs) - count(*) || ' ' || count(*) FILTER (WHERE runs > 1) || ' '
       || sum(claims) - count(*)
FROM per_job;
SQL
)
	read -r jobs never_ran over_ran total_runs repeated repeated_jobs extra_claims <<<"$runs"
	is "$never_ran" 0 "the handler ran for every job"
	is "$over_ran" 0 "no job's handler ran more often than the job was claimed"
	history=$(q -c "SELECT string_agg(event || '=' || n, ' ' ORDER BY event)
	                FROM (SELECT event, count(*) AS n FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
	                      WHERE $filter AND event NOT IN ('enqueued', 'claimed', 'acked') GROUP BY event) x")
	echo "# $jobs jobs, $total_runs handler runs: $repeated repeated (at-least-once) over $repeated_jobs jobs;"
	echo "# $extra_claims claims beyond one per job; other history events: ${history:-none}"
}

# drain_workers PID...: SIGTERM the workers, and one TAP line: each drains and exits 0.
drain_workers() {
	local pid ok=0
	for pid in "$@"; do kill -TERM "$pid"; done
	for pid in "$@"; do
		wait_exit "$pid" 30
		[ "$EXIT_STATUS" = 0 ] || ok=1
	done
	tap $ok "the $# workers drain and exit 0"
}

# job_states FILTER: "N succeeded, N running, N pending" of the jobs j that FILTER selects.
job_states() {
	q -c "SELECT count(*) FILTER (WHERE state = 'succeeded') || ' succeeded, '
	             || count(*) FILTER (WHERE state = 'running') || ' running, '
	             || count(*) FILTER (WHERE state = 'pending') || ' pending'
	      FROM tinytemp.jobs j WHERE $1"
}

#!/usr/bin/env bash
# bench/soak.sh: a bounded soak of tinytemp and tinytemp-worker (minutes; not
# part of the test suite).
#
# In a throwaway cluster of its own (tinytemp preloaded, its background
# worker serving the database), it runs SOAK_WORKERS tinytemp-worker
# processes with two handlers, the built-in simulate and a real executable
# (a Python script that logs each of its runs), and for SOAK_SECONDS:
#   - enqueues a mix of jobs: ones that succeed, ones that fail once and
#     then succeed, ones that always fail and end in the dead-letter queue
#     (each kind through both handlers), long ones that it cancels (while
#     pending or running), and gangs of 2 on distinct workers;
#   - kill -9s a random worker every 5 to 15 s and restarts it under its
#     name after 0 to 4 s;
#   - restarts the server once, halfway, with pg_ctl restart -m immediate.
# Then it restarts the killed workers, waits for the queue to drain, stops
# the workers (SIGTERM: they must drain and exit 0) and checks that every
# job is accounted for exactly:
#   - every job it enqueued exists, once (a gang: gang_size members), and no
#     other job does; no job is left pending, assigned or running;
#   - each ends in the state of its kind: succeeded with exactly one 'acked'
#     event, failed (dead-lettered) with exactly one 'dead_lettered' event and
#     no 'acked', cancelled with one 'cancelled' event per member and no
#     'acked'; no job anywhere has two 'acked' events;
#   - a job that fails once took at least two attempts; the executable
#     handler's result is the job's own; the handler never ran more often
#     than its job was claimed;
#   - no worker exited by itself, no server process crashed.
# It prints a summary (jobs by kind and final state, worker kills, handler
# re-runs and why, the workers' and the server's errors) and exits non-zero
# on any discrepancy.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no top-level make)
#   SOAK_SECONDS=N          length of the enqueue and kill phase (default 180)
#   SOAK_WORKERS=N          workers (default 4; at least 2 for the gangs)
#   SOAK_SEED=N             seed of the job mix and the kills (default: the pid)
#   SOAK_LEASE=S            the workers' lease, tinytemp.lease_timeout (default 6s)
#   SOAK_DRAIN_SECONDS=N    how long the queue may take to drain at the end (default 120;
#                           no job runs over 3 s, nor waits over a few s to retry)
#   SOAK_GANGS=0            no gangs (their share of the mix succeeds alone instead)
#   SOAK_PORT=N             port of the throwaway cluster (default 54360)
#   SOAK_KEEP=1             keep the scratch directory (logs, the jobs issued)
set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

DURATION=${SOAK_SECONDS:-180}
NWORKERS=${SOAK_WORKERS:-4}
SEED=${SOAK_SEED:-$$}
LEASE=${SOAK_LEASE:-6s}
DRAIN=${SOAK_DRAIN_SECONDS:-120}
PORT=${SOAK_PORT:-54360}
NAME=soak
DB=soak
SLOTS=3
WORKER=$TT_PGBIN/tinytemp-worker
RANDOM=$SEED

if [ "$NWORKERS" -lt 2 ]; then
	echo "soak.sh: SOAK_WORKERS must be at least 2 (gangs of 2 run on distinct workers)" >&2
	exit 2
fi
if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install || exit 1
fi
[ -x "$WORKER" ] || { echo "soak.sh: $WORKER is not installed" >&2; exit 1; }

TMP=$(mktemp -d /tmp/tinytemp-soak.XXXXXX)
chmod 755 "$TMP"
declare -a WPID=() RESTART_AT=()
DISCREPANCIES=()
discrepancy() {
	DISCREPANCIES+=("$*")
	echo "   DISCREPANCY: $*"
}

cleanup() {
	local i
	for i in "${!WPID[@]}"; do
		if [ -n "${WPID[$i]}" ] && kill -0 "${WPID[$i]}" 2>/dev/null; then
			kill -9 "${WPID[$i]}" 2>/dev/null
			wait "${WPID[$i]}" 2>/dev/null
		fi
	done
	tt_cluster_stop "$NAME"
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		echo "scratch directory kept: $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
# Milliseconds since the epoch, without a subprocess.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# rand A B: an integer in [A, B].
rand() { echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }

tt_log "starting a throwaway cluster on port $PORT (seed $SEED)"
tt_cluster_start "$NAME" "$PORT" "tinytemp.database = '$DB'" || exit 1
export PGDATABASE=$DB
DATADIR=$(tt_datadir "$NAME")
$TT_PGBIN/createdb "$DB" || exit 1
tt_cluster_restart "$NAME" || exit 1
psql_q -c 'CREATE EXTENSION tinytemp' || exit 1
scheduler_up() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'" 2>/dev/null)" = 1 ] \
			&& return 0
		sleep 0.2
	done
	return 1
}
scheduler_up || { echo "soak.sh: the background worker did not start" >&2; exit 1; }

# The real executable handler: logs each run, works for params.runtime_s,
# fails while the attempt is at most params.fail_attempts, else prints its
# result (the job and attempt it ran).
cat >"$TMP/handler.py" <<'PY'
#!/usr/bin/python3
import json, os, sys, time
job = int(os.environ["TINYTEMP_JOB_ID"])
attempt = int(os.environ["TINYTEMP_ATTEMPT"])
params = json.loads(os.environ.get("TINYTEMP_PARAMS", "{}"))
with open(os.environ["SOAK_RUNS"], "a") as f:
    f.write("%d %d %s %d\n" % (job, attempt, os.environ.get("TINYTEMP_WORKER_NAME", "?"), os.getpid()))
end = time.monotonic() + float(params.get("runtime_s", 0.5))
n = 0
while time.monotonic() < end:      # a little real work, and sleep
    n += sum(i * i for i in range(2000))
    time.sleep(0.05)
if attempt <= int(params.get("fail_attempts", 0)):
    print("soak: failing attempt %d on purpose" % attempt, file=sys.stderr)
    sys.exit(3)
print(json.dumps({"job": job, "attempt": attempt}))
PY
chmod 755 "$TMP/handler.py"
cat >"$TMP/handlers.conf" <<CONF
[training]
command = $TMP/handler.py
timeout = 120
kill_grace = 2
env = SOAK_RUNS=$TMP/runs.txt

[evaluation]
command = simulate
timeout = 300
CONF
: >"$TMP/runs.txt"

KILLS=0
RESTARTS=0
start_worker() {
	local i=$1
	PGOPTIONS="-c tinytemp.lease_timeout=$LEASE" "$WORKER" --name "soak-w$i" --slots $SLOTS \
		--config "$TMP/handlers.conf" --cpus 4 --memory-mb 8192 --gpus 2 --gpu-type a100 \
		--poll-interval 1 --kill-grace 2 2>>"$TMP/w$i.log" &
	WPID[$i]=$!
	RESTART_AT[$i]=0
}
tt_log "starting $NWORKERS workers ($SLOTS slots each, lease $LEASE)"
for ((i = 1; i <= NWORKERS; i++)); do
	start_worker "$i"
done

# ---------------------------------------------------------------- the jobs
ISSUED=$TMP/issued.txt
: >"$ISSUED"
NEXT_KEY=0
ENQUEUE_RECOVERED=0
declare -a CANCEL_KEY=() CANCEL_AT=()

# enqueue KEY KIND GANG_SIZE SQL: enqueue once, even across a server restart:
# after a failed call, look for the job before trying again (the call may
# have failed after its commit).
enqueue() {
	local key=$1 kind=$2 gang=$3 sql=$4 tries n
	for ((tries = 1; tries <= 240; tries++)); do
		if psql_q -c "$sql" >/dev/null 2>>"$TMP/enqueue.err"; then
			echo "$key $kind $gang" >>"$ISSUED"
			return 0
		fi
		sleep 0.5
		n=$(psql_q -c "SELECT count(*) FROM tinytemp.jobs WHERE params->>'soak_key' = '$key'" 2>/dev/null) || continue
		if [ "$n" -gt 0 ]; then
			ENQUEUE_RECOVERED=$((ENQUEUE_RECOVERED + 1))
			echo "$key $kind $gang" >>"$ISSUED"
			return 0
		fi
	done
	discrepancy "could not enqueue $key ($kind) in 2 minutes"
	return 1
}

enqueue_one() {
	local r key kind gang=1 type=evaluation extra='' params runtime
	NEXT_KEY=$((NEXT_KEY + 1))
	key=k$NEXT_KEY
	r=$(rand 1 100)
	runtime=$(rand 2 30)
	runtime=$((runtime / 10)).$((runtime % 10))
	if [ "$r" -le 30 ]; then kind=ok
	elif [ "$r" -le 40 ]; then kind=flaky
	elif [ "$r" -le 45 ]; then kind=doomed
	elif [ "$r" -le 63 ]; then kind=exec-ok
	elif [ "$r" -le 71 ]; then kind=exec-flaky
	elif [ "$r" -le 75 ]; then kind=exec-doomed
	elif [ "$r" -le 84 ]; then kind=cancel
	elif [ "${SOAK_GANGS:-1}" = 0 ]; then kind=ok
	else kind=gang
	fi
	params="\"soak_key\": \"$key\", \"kind\": \"$kind\", \"runtime_s\": $runtime"
	case $kind in
	exec-*) type=training ;;
	esac
	case $kind in
	flaky | exec-flaky) params+=', "fail_attempts": 1'; extra=', max_attempts => 10' ;;
	doomed | exec-doomed) params+=', "fail_attempts": 1000'; extra=', max_attempts => 2' ;;
	cancel) params="\"soak_key\": \"$key\", \"kind\": \"$kind\", \"runtime_s\": 300"; extra=', max_attempts => 10' ;;
	gang) gang=2; extra=', gang_size => 2, gpus => 1, gpu_type => '"'a100'"', max_attempts => 10' ;;
	*) extra=', max_attempts => 10' ;;
	esac
	enqueue "$key" "$kind" "$gang" \
		"SELECT tinytemp_enqueue('$type', params => '{$params}'::jsonb$extra)" || return
	if [ "$kind" = cancel ]; then
		CANCEL_KEY+=("$key")
		CANCEL_AT+=($(($(now_ms) + $(rand 0 8000))))
	fi
}

# Cancel the jobs whose time has come; a call that fails is tried again later.
CANCELLED_FALSE=0
cancel_due() {
	local now i out keys=() ats=()
	now=$(now_ms)
	for i in "${!CANCEL_KEY[@]}"; do
		if [ "${CANCEL_AT[$i]}" -le "$now" ] || [ "${1:-}" = all ]; then
			if out=$(psql_q -c "SELECT tinytemp_cancel(id) FROM tinytemp.jobs
			                    WHERE params->>'soak_key' = '${CANCEL_KEY[$i]}' ORDER BY id LIMIT 1" 2>/dev/null); then
				[ "$out" = t ] || CANCELLED_FALSE=$((CANCELLED_FALSE + 1))
				continue
			fi
		fi
		keys+=("${CANCEL_KEY[$i]}")
		ats+=("${CANCEL_AT[$i]}")
	done
	CANCEL_KEY=("${keys[@]}")
	CANCEL_AT=("${ats[@]}")
}

# Reap a worker that exited without our kill: a discrepancy; start it again.
check_workers() {
	local i status
	for ((i = 1; i <= NWORKERS; i++)); do
		[ "${RESTART_AT[$i]}" = 0 ] || continue
		if ! kill -0 "${WPID[$i]}" 2>/dev/null; then
			wait "${WPID[$i]}" 2>/dev/null
			status=$?
			discrepancy "worker soak-w$i (pid ${WPID[$i]}) exited by itself with status $status (see its log)"
			start_worker "$i"
		fi
	done
}

restart_due() {
	local i now
	now=$(now_ms)
	for ((i = 1; i <= NWORKERS; i++)); do
		if [ "${RESTART_AT[$i]}" != 0 ] && { [ "${RESTART_AT[$i]}" -le "$now" ] || [ "${1:-}" = all ]; }; then
			start_worker "$i"
			RESTARTS=$((RESTARTS + 1))
		fi
	done
}

kill_one() {
	local alive=() i
	for ((i = 1; i <= NWORKERS; i++)); do
		[ "${RESTART_AT[$i]}" = 0 ] && alive+=("$i")
	done
	[ ${#alive[@]} -gt 0 ] || return
	i=${alive[$((RANDOM % ${#alive[@]}))]}
	kill -9 "${WPID[$i]}" 2>/dev/null
	wait "${WPID[$i]}" 2>/dev/null
	echo "$(date -u +%FT%T.%3NZ) soak: kill -9 of this worker (pid ${WPID[$i]})" >>"$TMP/w$i.log"
	KILLS=$((KILLS + 1))
	RESTART_AT[$i]=$(($(now_ms) + $(rand 0 4000)))
}

SERVER_RESTARTS=0
restart_server() {
	local t0 t1
	t0=$(now_ms)
	tt_as_owner $TT_PGBIN/pg_ctl -D "$DATADIR" -l "$DATADIR/server.log" -w -t 60 restart -m immediate >/dev/null \
		|| discrepancy "pg_ctl restart -m immediate failed"
	scheduler_up || discrepancy "the background worker did not come back after the restart"
	t1=$(now_ms)
	SERVER_RESTARTS=$((SERVER_RESTARTS + 1))
	echo "   server restarted (-m immediate) at $(((t0 - START) / 1000)) s; back with its scheduler in $((t1 - t0)) ms"
}

# ---------------------------------------------------------------- the run
tt_log "soaking for $DURATION s: jobs, kill -9 of workers, one server restart"
START=$(now_ms)
END=$((START + DURATION * 1000))
NEXT_ENQUEUE=$START
NEXT_KILL=$((START + $(rand 5000 15000)))
SERVER_RESTART_AT=$((START + DURATION * 500))
LAST_REPORT=$START
while :; do
	now=$(now_ms)
	[ "$now" -ge "$END" ] && break
	if [ "$now" -ge "$NEXT_ENQUEUE" ]; then
		enqueue_one
		NEXT_ENQUEUE=$((now + $(rand 50 550)))
	fi
	cancel_due
	restart_due
	check_workers
	if [ "$now" -ge "$NEXT_KILL" ]; then
		kill_one
		NEXT_KILL=$((now + $(rand 5000 15000)))
	fi
	if [ "$SERVER_RESTARTS" = 0 ] && [ "$now" -ge "$SERVER_RESTART_AT" ]; then
		restart_server
	fi
	if [ $((now - LAST_REPORT)) -ge 30000 ]; then
		LAST_REPORT=$now
		echo "   $(((now - START) / 1000)) s: $NEXT_KEY jobs enqueued, $KILLS kills; queue:" \
			"$(psql_q -c "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
			              FROM (SELECT state, count(*) n FROM tinytemp.jobs GROUP BY state) s" 2>/dev/null)"
	fi
	sleep 0.05
done

tt_log "enqueued $NEXT_KEY jobs; restarting the killed workers, cancelling what is due, draining (up to $DRAIN s)"
restart_due all
cancel_due all
t0=$(now_ms)
drained=0
while [ $(($(now_ms) - t0)) -lt $((DRAIN * 1000)) ]; do
	check_workers
	[ ${#CANCEL_KEY[@]} -gt 0 ] && cancel_due all
	left=$(psql_q -c "SELECT count(*) FROM tinytemp.jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')" 2>/dev/null)
	if [ "$left" = 0 ] && [ ${#CANCEL_KEY[@]} = 0 ]; then
		drained=1
		break
	fi
	sleep 1
done
echo "   drained in $((($(now_ms) - t0) / 1000)) s"
[ "$drained" = 1 ] || discrepancy "the queue did not drain in $DRAIN s"

tt_log "stopping the workers (SIGTERM: they drain and exit 0)"
for ((i = 1; i <= NWORKERS; i++)); do
	kill -TERM "${WPID[$i]}" 2>/dev/null
done
for ((i = 1; i <= NWORKERS; i++)); do
	for ((k = 0; k < 900 && $(kill -0 "${WPID[$i]}" 2>/dev/null && echo 1 || echo 0); k++)); do
		sleep 0.1
	done
	if kill -0 "${WPID[$i]}" 2>/dev/null; then
		discrepancy "worker soak-w$i did not exit within 90 s of SIGTERM"
		kill -9 "${WPID[$i]}" 2>/dev/null
	fi
	wait "${WPID[$i]}" 2>/dev/null
	status=$?
	[ "$status" = 0 ] || discrepancy "worker soak-w$i exited with status $status after SIGTERM"
	WPID[$i]=
done

# ---------------------------------------------------------------- the checks
tt_log "checking every job"
sort -k2,2n "$TMP/runs.txt" | awk '{ print $1 }' | sort -n | uniq -c | awk '{ print $2 "\t" $1 }' >"$TMP/runs.tsv"
CHECKS=$(psql_q 2>&1 <<SQL
CREATE TEMP TABLE issued (key text PRIMARY KEY, kind text, gang_size int);
\copy issued FROM '$ISSUED' WITH (DELIMITER ' ')
CREATE TEMP TABLE runs (job_id bigint PRIMARY KEY, n int);
\copy runs FROM '$TMP/runs.tsv'
CREATE TEMP TABLE ev AS
  SELECT j.id, j.params->>'soak_key' AS key, j.params->>'kind' AS kind, j.state, j.attempts,
         j.result, j.job_type,
         count(*) FILTER (WHERE h.event = 'acked') AS acked,
         count(*) FILTER (WHERE h.event = 'dead_lettered') AS dead,
         count(*) FILTER (WHERE h.event = 'cancelled') AS cancelled,
         count(*) FILTER (WHERE h.event = 'claimed') AS claimed
  FROM tinytemp.jobs j LEFT JOIN tinytemp.jobs_history h ON h.job_id = j.id
  GROUP BY j.id;
-- Each line is one discrepancy.
SELECT 'lost: ' || i.key || ' (' || i.kind || ') was enqueued and is not in tinytemp.jobs'
  FROM issued i WHERE NOT EXISTS (SELECT FROM ev WHERE ev.key = i.key);
SELECT 'duplicated: ' || i.key || ' (' || i.kind || ') has ' || count(*) || ' rows, not ' || i.gang_size
  FROM issued i JOIN ev ON ev.key = i.key GROUP BY i.key, i.kind, i.gang_size HAVING count(*) <> i.gang_size;
SELECT 'unknown: job ' || id || ' (key ' || coalesce(key, 'none') || ') was never enqueued by the soak'
  FROM ev WHERE key IS NULL OR key NOT IN (SELECT key FROM issued);
SELECT 'stuck: job ' || id || ' (' || kind || ') is ' || state FROM ev
  WHERE state NOT IN ('succeeded', 'failed', 'cancelled');
SELECT 'acked twice: job ' || id || ' (' || kind || ') has ' || acked || ' acked events' FROM ev WHERE acked > 1;
SELECT 'wrong end: job ' || id || ' (' || kind || ') is ' || state || ' with ' || acked || ' acked, '
       || dead || ' dead_lettered, ' || cancelled || ' cancelled events'
  FROM ev WHERE NOT CASE
    WHEN kind IN ('ok', 'flaky', 'exec-ok', 'exec-flaky', 'gang')
      THEN state = 'succeeded' AND acked = 1 AND dead = 0 AND cancelled = 0
    WHEN kind IN ('doomed', 'exec-doomed')
      THEN state = 'failed' AND dead = 1 AND acked = 0 AND cancelled = 0
    WHEN kind = 'cancel'
      THEN state = 'cancelled' AND cancelled = 1 AND acked = 0 AND dead = 0
    ELSE false END;
SELECT 'no failure: job ' || id || ' (' || kind || ') failing its first attempt succeeded in ' || attempts
  FROM ev WHERE kind IN ('flaky', 'exec-flaky') AND state = 'succeeded' AND attempts < 2;
SELECT 'wrong result: job ' || id || ' (' || kind || ') acked with ' || coalesce(result::text, 'NULL')
  FROM ev WHERE kind IN ('exec-ok', 'exec-flaky') AND state = 'succeeded'
    AND (result->>'job')::bigint IS DISTINCT FROM id;
SELECT 'handler ran more than claimed: job ' || ev.id || ' ran ' || r.n || ' times, claimed ' || ev.claimed
  FROM ev JOIN runs r ON r.job_id = ev.id WHERE r.n > ev.claimed;
SELECT 'handler never ran: job ' || id || ' (' || kind || ') ended ' || state
  FROM ev WHERE job_type = 'training' AND state IN ('succeeded', 'failed')
    AND id NOT IN (SELECT job_id FROM runs);
SQL
)
status=$?
[ "$status" = 0 ] || discrepancy "the checks themselves failed: $CHECKS"
if [ "$status" = 0 ] && [ -n "$CHECKS" ]; then
	while IFS= read -r line; do
		discrepancy "$line"
	done <<<"$CHECKS"
fi
# The story of the first few jobs that ended wrong, for the report.
WRONG=$(printf '%s\n' "${DISCREPANCIES[@]}" | sed -nE 's/^(stuck|wrong end|acked twice|duplicated): job ([0-9]+).*/\2/p' | sort -un | head -5)
for id in $WRONG; do
	echo "   history of job $id and its gang:"
	psql_q -F ' ' -c "SELECT h.job_id, h.event, coalesce(h.worker_id::text, '-'), to_char(h.at, 'HH24:MI:SS.MS'),
	                         coalesce(h.detail::text, '')
	                  FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
	                  WHERE j.id = $id OR j.gang_id = (SELECT gang_id FROM tinytemp.jobs WHERE id = $id)
	                  ORDER BY h.id" 2>&1 | sed 's/^/      /'
done
if grep -E "terminated by signal|PANIC" "$DATADIR/server.log" >"$TMP/crashes.txt"; then
	discrepancy "a server process crashed: $(head -1 "$TMP/crashes.txt")"
fi

# ---------------------------------------------------------------- the summary
tt_log "summary (seed $SEED, $DURATION s, $NWORKERS workers)"
psql_q <<SQL
\pset format aligned
\pset footer off
\pset tuples_only off
SELECT params->>'kind' AS kind,
       count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE state = 'failed') AS dead_lettered,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed', 'cancelled')) AS other,
       count(*) AS jobs
FROM tinytemp.jobs GROUP BY ROLLUP (1) ORDER BY 1 NULLS LAST;
SELECT event, count(*) AS events, count(DISTINCT job_id) AS jobs
FROM tinytemp.jobs_history
WHERE event IN ('claimed', 'failed', 'retried', 'lease_expired', 'worker_restarted', 'requeued',
                'assignment_expired', 'assigned', 'acked', 'dead_lettered', 'cancelled')
GROUP BY event ORDER BY event;
SELECT count(*) FILTER (WHERE n > 1) AS jobs_claimed_again, coalesce(sum(n - 1), 0) AS reruns
FROM (SELECT job_id, count(*) n FROM tinytemp.jobs_history WHERE event = 'claimed' GROUP BY job_id) c;
SQL
handler_runs=$(wc -l <"$TMP/runs.txt")
handler_jobs=$(awk '{ print $1 }' "$TMP/runs.txt" | sort -u | wc -l)
echo
echo "jobs enqueued:           $NEXT_KEY ($ENQUEUE_RECOVERED found committed after a failed call)"
echo "worker kills (-9):       $KILLS, restarts $RESTARTS"
echo "server restarts:         $SERVER_RESTARTS (-m immediate)"
echo "executable handler:      $handler_runs runs for $handler_jobs jobs: $((handler_runs - handler_jobs)) re-runs"
echo "cancels of finished jobs: $CANCELLED_FALSE"
echo "worker log events (all workers):"
cat "$TMP"/w*.log | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /=/) { print $i; break } }' |
	grep -E '^(claimed|acked|failed|exited|lease-lost|report-discarded|batch-ack-refused|heartbeat-failed|report-failed|report-retry|claim-failed|poll-failed|disconnected|reconnect|connect-failed|cancel|cancelled|killing|timeout|abandoned|unreported|replaced)$' |
	sort | uniq -c | sort -rn | awk '{ printf "   %-22s %s\n", $2, $1 }'
echo "server log: $(grep -c ' ERROR: ' "$DATADIR/server.log") ERROR lines, $(grep -c ' FATAL: ' "$DATADIR/server.log") FATAL; most frequent:"
grep -hoE ' (ERROR|FATAL): .*' "$DATADIR/server.log" | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -8 |
	sed 's/^/   /'
echo
if [ ${#DISCREPANCIES[@]} -gt 0 ]; then
	echo "soak: ${#DISCREPANCIES[@]} DISCREPANCIES:"
	printf '   %s\n' "${DISCREPANCIES[@]}"
	SOAK_KEEP=1
	exit 1
fi
echo "soak: every job accounted for; no discrepancy"

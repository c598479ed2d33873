#!/usr/bin/env bash
# Failover with PostgreSQL's own streaming replication.  A primary and a
# synchronous standby (pg_basebackup -R), both with tinytemp preloaded; three
# tinytemp-worker processes with a multi-host conninfo (target_session_attrs=
# read-write) run 600 short jobs through a real handler while a client
# enqueues them in batches.  A fourth worker holds a long job; it is killed,
# and at once the primary (postmaster and every backend, kill -9).  The
# standby is promoted.  Then: the workers follow to the new primary; the
# tinytemp scheduler, which never ran on the standby, runs there, expires the
# dead worker's lease (and the job is run again by another worker) and relays
# enqueue notifications; every job succeeded with exactly one 'acked' event.
#
# Its own two clusters ("failover1" on port 54342, "failover2" on 54343),
# never the shared test cluster; both always stopped at exit.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$(dirname "$0")/common.bash"

PRIMARY=failover1
STANDBY=failover2
P_PORT=${TINYTEMP_FAILOVER_PORT:-54342}
S_PORT=$((P_PORT + 1))
DB=tinytemp_failover
JOBS=600
BATCH=60
HANDLER=$TT_REPO/test/process/handlers/short_job.sh
export TT_RUNLOG=$TMP/runs.txt TT_JOB_SECONDS=0.1
: >"$TT_RUNLOG"

trap 'cleanup; tt_cluster_stop $STANDBY; tt_cluster_stop $PRIMARY' EXIT
t0=$(date +%s)

# standby_start NAME PORT: a streaming standby of the primary at $P_SOCK:$P_PORT,
# laid out as tt_cluster_start lays out a cluster (so tt_cluster_stop stops it).
standby_start() {
	local name=$1 port=$2 dir sock
	tt_cluster_dirs "$name"
	dir=$TT_DIR
	sock=$TT_SOCK
	tt_as_owner $TT_PGBIN/pg_basebackup -h "$P_SOCK" -p "$P_PORT" -U postgres -D "$dir" \
		-R -X stream -c fast >"$TMP/basebackup.log" 2>&1 || return 1
	# The primary's settings come with the copy; these lines override its own.
	tt_as_owner tee -a "$dir/postgresql.conf" >/dev/null <<CONF
port = $port
unix_socket_directories = '$sock'
cluster_name = '$name'
CONF
	tt_as_owner $TT_PGBIN/pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null || return 1
	S_SOCK=$sock
}

tt_cluster_start "$PRIMARY" "$P_PORT" "tinytemp.database = '$DB'
tinytemp.lease_timeout = '5s'
tinytemp.naptime = '500ms'" >/dev/null || { echo "not ok 1 - start the primary"; exit 1; }
P_SOCK=$PGHOST
export PGDATABASE=$DB
$TT_PGBIN/createdb "$DB" && tt_cluster_restart "$PRIMARY" && q -c 'CREATE EXTENSION tinytemp'
tap $? "a primary of its own on port $P_PORT, tinytemp preloaded, serving $DB"
bail_out
standby_start "$STANDBY" "$S_PORT"
tap $? "a standby on port $S_PORT from pg_basebackup -R"
bail_out
# Synchronous from now on: a commit returns once the standby has it.  Set on
# the primary alone, after the copy: the promoted standby must not wait for a
# standby of its own that does not exist.
q -c "ALTER SYSTEM SET synchronous_standby_names = '$STANDBY'" -c 'SELECT pg_reload_conf()' >/dev/null
wait_sql "SELECT EXISTS (SELECT FROM pg_stat_replication
                         WHERE application_name = '$STANDBY' AND sync_state = 'sync' AND state = 'streaming')" 30
tap $? "the standby streams synchronously"
bail_out
is "$(q -h "$S_SOCK" -p "$S_PORT" -c "SELECT pg_is_in_recovery()::text || ' ' || count(*)
      FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'")" "true 0" \
	"no tinytemp scheduler runs on the standby"

CONN="host=$P_SOCK,$S_SOCK port=$P_PORT,$S_PORT dbname=$DB user=postgres target_session_attrs=read-write"

# The victim: one slot, held by a long job whose lease will have to expire on the new primary.
start_worker victim --name fo-victim --slots 1 --cpus 64 --memory-mb 1000000 --conninfo "$CONN" \
	--handler "*=$HANDLER" --handler 'longjob=sleep 600'
victim=$LAST_PID
long=$(q -c "SELECT tinytemp_enqueue('longjob')")
wait_sql "SELECT j.state = 'running' AND w.name = 'fo-victim'
          FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id WHERE j.id = $long" 15
tap $? "a fourth worker runs a long job"
victim_id=$(worker_id fo-victim)

for w in 1 2 3; do
	start_worker "w$w" --name "fo-w$w" --slots 4 --cpus 64 --memory-mb 1000000 --poll-interval 30 \
		--conninfo "$CONN" --handler "fo=$HANDLER" --handler "longjob=$HANDLER"
	workers[w]=$LAST_PID
done
wait_sql "SELECT count(*) = 4 FROM tinytemp.workers WHERE state = 'active'" 15
tap $? "three workers registered through the multi-host conninfo"
bail_out

start_command enqueuer enqueue_batches fo $((JOBS / BATCH)) $BATCH 0.5 -d "$CONN"
enqueuer=$LAST_PID
wait_sql "SELECT count(*) >= $((JOBS / 3)) FROM tinytemp.jobs WHERE job_type = 'fo' AND state = 'succeeded'" 90
tap $? "a third of the jobs succeeded on the primary"
bail_out
before=$(job_states "job_type = 'fo'")

kill9 "$victim" && kill9_cluster "$PRIMARY"
tap $? "kill -9 of the victim worker, then of the primary's postmaster and all $((KILLED - 1)) of its processes"
killed_at=$(date +%s.%N)
echo "# at the kill: $before"
[[ "$before" =~ \ ([1-9][0-9]*)\ running ]]
tap $? "jobs were running at the kill"
bail_out
# It stays dead: no pid file left for the stop at exit to signal.
tt_as_owner rm -f "$(tt_datadir "$PRIMARY")/postmaster.pid"

# The standby has what the primary committed: the long job still held, its lease not yet expired.
export PGHOST=$S_SOCK PGPORT=$S_PORT
is "$(q -c "SELECT j.state || ' ' || (j.worker_id = $victim_id) || ' '
                   || (SELECT count(*) FROM tinytemp.jobs_history h
                       WHERE h.job_id = j.id AND h.event = 'lease_expired')
            FROM tinytemp.jobs j WHERE j.id = $long")" "running true 0" \
	"on the standby, the long job is still the dead worker's"

sleep 1
promoted_at=$(date +%s.%N)	# when the promotion was asked for
tt_as_owner $TT_PGBIN/pg_ctl -D "$(tt_datadir "$STANDBY")" -w -t 60 promote >/dev/null
tap $? "the standby is promoted"
bail_out
wait_sql "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'" 15
tap $? "the tinytemp scheduler runs on the new primary"
wait_sql "SELECT count(*) = 3 FROM pg_stat_activity WHERE application_name LIKE 'tinytemp-worker fo-w%'" 60
tap $? "the three workers follow to the new primary"
followed_at=$(date +%s.%N)
echo "# followed $(echo "$followed_at - $promoted_at" | bc) s after the promotion," \
	"$(echo "$followed_at - $killed_at" | bc) s after the kill"
ok=0
for w in 1 2 3; do
	grep -q " connected host=$S_SOCK port=$S_PORT " "$TMP/w$w.log" || ok=1
done
tap $ok "each worker logged its connection to the new primary"

# The dead worker's lease expires on the new primary, by its scheduler: nothing else runs there.
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $long" 30
tap $? "the long job succeeded on another worker"
is "$(q -c "SELECT string_agg(event || ':' || coalesce((worker_id = $victim_id)::text, '-'), ' ' ORDER BY id)
            FROM tinytemp.jobs_history WHERE job_id = $long")" \
	"enqueued:- claimed:true lease_expired:true requeued:true claimed:false acked:false" \
	"its history: the victim's lease expired, another worker ran it"
is "$(q -c "SELECT at >= to_timestamp($promoted_at) FROM tinytemp.jobs_history
            WHERE job_id = $long AND event = 'lease_expired'")" t "the lease expired after the promotion"

wait_exit "$enqueuer" 60
is "$EXIT_STATUS" 0 "the enqueuer finished every batch"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE job_type = 'fo'")" "$JOBS" \
	"exactly $JOBS jobs: no batch lost or enqueued twice"
wait_sql "SELECT count(*) FILTER (WHERE state <> 'succeeded') = 0 FROM tinytemp.jobs" 90
tap $? "every job succeeded"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs j
            WHERE (SELECT count(*) FROM tinytemp.jobs_history h
                   WHERE h.job_id = j.id AND h.event = 'acked') <> 1")" 0 \
	"each job has exactly one 'acked' event"

check_runs "j.job_type = 'fo'"
echo "# enqueue batches sent again: $(grep -c 'failed; 0 of' "$TMP/enqueuer.log"), found committed: $(grep -c "failed; $BATCH of" "$TMP/enqueuer.log")"

# An enqueue on the new primary: its scheduler relays the wake-up (a NOTIFY
# with an empty payload from its own pid), and a worker polling only every
# 30 s starts the job at once.
sched=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler'")
start=$(date +%s.%N)
notes=$(q <<'SQL'
LISTEN tinytemp_jobs;
SELECT tinytemp_enqueue('fo', params => '{"probe": true}');
SELECT pg_sleep(1);
SQL
)
grep -q "^Asynchronous notification \"tinytemp_jobs\" received from server process with PID $sched\.$" <<<"$notes"
tap $? "the new primary's scheduler (pid $sched) relays the enqueue's notification"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE params @> '{\"probe\": true}'" 10
tap $? "the job enqueued after the failover succeeded"
is "$(echo "$(date +%s.%N) - $start < 5" | bc)" 1 "woken by the notification, not by the 30 s poll"

drain_workers "${workers[1]}" "${workers[2]}" "${workers[3]}"
echo "# run time $(($(date +%s) - t0)) s"

done_testing

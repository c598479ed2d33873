#!/usr/bin/env bash
# Enqueue wakes LISTENers on channel tinytemp_jobs once it commits: relayed
# by the background worker that serves this database (empty payload, sent by
# the scheduler's process), never for an enqueue that rolled back.
set -u
n=0 failures=0
check() {	# check DESCRIPTION COMMAND...: one TAP line
	n=$((n + 1))
	if "${@:2}"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failures=$((failures + 1)); fi
}
PSQL=/usr/lib/postgresql/15/bin/psql

# listen_while SQL: LISTEN in one session while another runs SQL; print what
# the listener received within about two seconds.
listen_while() {
	( sleep 0.5; $PSQL -XAtq -c "SET client_min_messages = error" -c "$1" >/dev/null 2>&1 ) &
	$PSQL -XAtq -c 'LISTEN tinytemp_jobs' -c 'SELECT pg_sleep(2)' -c 'SELECT 1' 2>&1
	wait
}

scheduler=$($PSQL -XAtq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tinytemp scheduler' AND datname = current_database()")
check "a tinytemp scheduler serves this database" test -n "$scheduler"

got=$(listen_while "SELECT tinytemp_enqueue('training')")
check "a committed enqueue wakes the listener" grep -q 'notification "tinytemp_jobs"' <<<"$got"
check "the wake-up comes from the scheduler, with an empty payload" \
	grep -q "notification \"tinytemp_jobs\" received from server process with PID $scheduler\.\$" <<<"$got"

got=$(listen_while "BEGIN; SELECT tinytemp_enqueue('training'); ROLLBACK;")
check "an enqueue that rolled back wakes nobody" test -z "$(grep 'notification' <<<"$got")"

got=$(listen_while "BEGIN; SELECT tinytemp_enqueue('training', queue => 'q' || g) FROM generate_series(1, 50) g; COMMIT;")
check "50 enqueues in one transaction wake listeners once" test "$(grep -c 'notification "tinytemp_jobs"' <<<"$got")" = 1

$PSQL -XAtq -c "TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers" >/dev/null
echo "1..$n"
[ $failures = 0 ]

#!/usr/bin/env bash
# A handler that exits non-zero is retried with backoff and dead-lettered
# after max_attempts; an unknown job_type fails at once for good; a handler
# that hangs is killed at its timeout, with SIGKILL when it ignores SIGTERM.
source "$(dirname "$0")/common.bash"
reset_db

cat > "$TMP/boom.sh" <<'SH'
#!/bin/sh
echo "kaboom on attempt $TINYTEMP_ATTEMPT of job $TINYTEMP_JOB_ID" >&2
exit 3
SH
cat > "$TMP/stubborn.sh" <<'SH'
#!/bin/sh
trap '' TERM
while :; do sleep 0.1; done
SH
chmod +x "$TMP/boom.sh" "$TMP/stubborn.sh"
cat > "$TMP/handlers.conf" <<CONF
[boom]
command = $TMP/boom.sh

[hang]
command = /bin/sleep 1000
timeout = 1
kill_grace = 5

[stubborn]
command = ./stubborn.sh
timeout = 1
kill_grace = 1
CONF

PGOPTIONS='-c tinytemp.retry_backoff_base=200ms' start_worker w --name fail-w \
	--config "$TMP/handlers.conf" --slots 3 --poll-interval 0.2
worker=$LAST_PID

boom=$(q -c "SELECT tinytemp_enqueue('boom', max_attempts => 3)")
unknown=$(q -c "SELECT tinytemp_enqueue('no-such-type')")
hang=$(q -c "SELECT tinytemp_enqueue('hang', max_attempts => 1)")
stubborn=$(q -c "SELECT tinytemp_enqueue('stubborn', max_attempts => 1)")

# Exit status: retried with backoff, then dead-lettered.
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $boom" 30
tap $? "a handler exiting 3 ends in the dead-letter queue"
is "$(q -c "SELECT attempts FROM tinytemp.jobs WHERE id = $boom")" 3 "after max_attempts (3) attempts"
is "$(q -c "SELECT string_agg(event, ' ' ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = $boom")" \
	"enqueued claimed failed retried claimed failed retried claimed failed dead_lettered" \
	"history: three failed attempts, two retries, one dead letter"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $boom AND event = 'failed'
            AND (detail->>'retryable')::boolean")" 3 "each failure was reported as retryable"
# Each retry's claim comes no sooner than the run_after its backoff set.
is "$(q -c "WITH r AS (SELECT id, (detail->>'run_after')::timestamptz AS run_after, (detail->>'delay_s')::float8 AS delay
                       FROM tinytemp.jobs_history WHERE job_id = $boom AND event = 'retried')
            SELECT bool_and(delay > 0 AND (SELECT min(at) FROM tinytemp.jobs_history c
                                          WHERE c.job_id = $boom AND c.event = 'claimed' AND c.id > r.id) >= r.run_after)
            FROM r")" t "each retry waited for its backoff"
last_error=$(q -c "SELECT last_error FROM tinytemp.jobs WHERE id = $boom")
case $last_error in
*"exited with status 3"*"kaboom on attempt 3 of job $boom"*) tap 0 "last_error has the exit status and the stderr tail" ;;
*) tap 1 "last_error has the exit status and the stderr tail"; echo "#   got: $last_error" ;;
esac

# Unknown job_type: not retryable.
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $unknown" 10
tap $? "an unknown job_type is dead-lettered"
is "$(q -c "SELECT attempts || ' ' || (last_error LIKE 'no handler for job_type \"no-such-type\"%')
            FROM tinytemp.jobs WHERE id = $unknown")" "1 true" "at the first attempt, with a clear error"

# Timeout: SIGTERM at 1 s.
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $hang" 15
tap $? "a hanging handler is failed"
is "$(q -c "SELECT last_error FROM tinytemp.jobs WHERE id = $hang")" "timed out after 1s" \
	"with a timeout error"
is "$(q -c "SELECT (f.at - c.at) BETWEEN interval '0.9 s' AND interval '4 s'
            FROM tinytemp.jobs_history c, tinytemp.jobs_history f
            WHERE c.job_id = $hang AND c.event = 'claimed' AND f.job_id = $hang AND f.event = 'failed'")" t \
	"killed at its timeout (1 s)"
pid=$(handler_pid w "$hang")
wait_gone "$pid" 2
tap $? "the hanging handler's process is gone"

# A handler that ignores SIGTERM gets SIGKILL after kill_grace.
wait_sql "SELECT state = 'failed' FROM tinytemp.jobs WHERE id = $stubborn" 15
tap $? "a handler ignoring SIGTERM is failed at its timeout"
is "$(q -c "SELECT (f.at - c.at) BETWEEN interval '1.9 s' AND interval '5 s'
            FROM tinytemp.jobs_history c, tinytemp.jobs_history f
            WHERE c.job_id = $stubborn AND c.event = 'claimed' AND f.job_id = $stubborn AND f.event = 'failed'")" t \
	"after the timeout (1 s) and the grace period (1 s)"
grep -qE " job=$stubborn killing " "$TMP/w.log"
tap $? "the worker logged the SIGKILL"
pid=$(handler_pid w "$stubborn")
wait_gone "$pid" 2
tap $? "the stubborn handler's process is gone"

kill -TERM "$worker"
wait_exit "$worker" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

done_testing

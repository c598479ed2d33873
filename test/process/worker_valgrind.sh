#!/usr/bin/env bash
# One end-to-end run of the worker under valgrind: simulated and real
# handlers, a JSON result, checkpoints, a failure with retry, an unknown
# job_type, a timeout, a cancel, lost connections, a config reload and a drain.  No
# invalid access and no leak may show.
source "$(dirname "$0")/common.bash"
reset_db

if ! command -v valgrind >/dev/null; then
	echo "ok 1 - # SKIP valgrind is not installed"
	done_testing
	exit 0
fi

cat > "$TMP/ok.sh" <<'SH'
#!/bin/sh
cat >/dev/null
echo "working on $TINYTEMP_JOB_ID" >&2
echo '{"progress": 0.5}'
echo '{"check\u0070oint": {"step": 1}}'
sleep 1.5
echo '{"answer": 42}'
echo '{"checkpoint": {"step": 2}}'
SH
cat > "$TMP/boom.sh" <<'SH'
#!/bin/sh
echo '{"checkpoint": {"boom": true}}'
echo "boom" >&2
exit 2
SH
chmod +x "$TMP"/*.sh
cat > "$TMP/handlers.conf" <<CONF
[sim]
command = simulate

[ok]
command = ./ok.sh

[boom]
command = ./boom.sh

[hang]
command = /bin/sleep 1000
timeout = 1
kill_grace = 1

[long]
command = /bin/sleep 1000
CONF

PGOPTIONS='-c tinytemp.lease_timeout=3s -c tinytemp.retry_backoff_base=100ms' \
	start_command vg valgrind --leak-check=full --error-exitcode=1 --log-file="$TMP/valgrind.txt" \
	"$WORKER" --name vg-w --config "$TMP/handlers.conf" --slots 3 --poll-interval 0.5 \
	--label 'team=ml "research"' --kill-grace 1
w=$LAST_PID
wait_log vg " ready " 30
tap $? "the worker under valgrind is ready"
bail_out

q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0.2}') FROM generate_series(1, 5)" >/dev/null
ok=$(q -c "SELECT tinytemp_enqueue('ok')")
boom=$(q -c "SELECT tinytemp_enqueue('boom', max_attempts => 2)")
unknown=$(q -c "SELECT tinytemp_enqueue('unknown')")
hang=$(q -c "SELECT tinytemp_enqueue('hang', max_attempts => 1)")
wait_sql "SELECT count(*) = 9 FROM tinytemp.jobs WHERE state IN ('succeeded', 'failed')" 45
tap $? "simulated, real, failing, unknown and hanging jobs all ended"
is "$(q -c "SELECT result FROM tinytemp.jobs WHERE id = $ok")" '{"answer": 42}' "the real handler's result was recorded"
is "$(q -c "SELECT string_agg(checkpoint::text, ' ' ORDER BY id) FROM tinytemp.jobs WHERE id IN ($ok, $boom)")" \
	'{"step": 2} {"boom": true}' "checkpoints were saved before the ack and the fail"
is "$(q -c "SELECT string_agg(state || '/' || attempts, ' ' ORDER BY id) FROM tinytemp.jobs WHERE id IN ($boom, $unknown, $hang)")" \
	"failed/2 failed/1 failed/1" "the failures were dead-lettered as expected"

# Three zero-runtime jobs claimed at once by the idle worker end together:
# their acks go as one batch (tinytemp_ack_many), under valgrind too.
q -c "SELECT count(tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')) FROM generate_series(1, 3)" >/dev/null
wait_sql "SELECT count(*) = 3 FROM tinytemp.jobs WHERE params->>'runtime_s' = '0' AND state = 'succeeded'" 30
tap $? "three zero-runtime jobs succeeded"
grep -qE " acked after [0-9.]+s with a result batch=[0-9]+" "$TMP/vg.log"
tap $? "acks went as a batch under valgrind"

# A cancel while a handler runs.
long=$(q -c "SELECT tinytemp_enqueue('long', max_attempts => 1)")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $long" 15
q -c "SELECT tinytemp_cancel($long)" >/dev/null
wait_log vg " job=$long cancelled " 15
tap $? "a cancelled handler was stopped"

# Lost connections while a job runs, then a reload.
sim=$(q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 3}')")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $sim" 15
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tinytemp-worker vg-w'" >/dev/null
sleep 1
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tinytemp-worker vg-w'" >/dev/null
kill -HUP "$w"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $sim" 30
tap $? "a job survived two lost connections"
wait_log vg " reloaded " 10
tap $? "SIGHUP reloaded the config"
is "$(q -c "SELECT labels->>'team' FROM tinytemp.workers WHERE name = 'vg-w'")" 'ml "research"' \
	"labels were registered"

kill -TERM "$w"
wait_exit "$w" 30
is "$EXIT_STATUS" 0 "valgrind and the worker exit 0 (no error, no leak)"
grep -q "ERROR SUMMARY: 0 errors" "$TMP/valgrind.txt"
tap $? "valgrind: ERROR SUMMARY: 0 errors"
if grep -q "All heap blocks were freed" "$TMP/valgrind.txt"; then
	tap 0 "valgrind: all heap blocks were freed"
else
	grep -qE "definitely lost: 0 bytes" "$TMP/valgrind.txt" && grep -qE "indirectly lost: 0 bytes" "$TMP/valgrind.txt" \
		&& grep -qE "possibly lost: 0 bytes" "$TMP/valgrind.txt"
	tap $? "valgrind: nothing definitely, indirectly or possibly lost"
fi
grep -E "ERROR SUMMARY|lost:|in use at exit|All heap" "$TMP/valgrind.txt" | sed 's/^/# /'
[ "$TAP_FAILED" = 0 ] || sed 's/^/# /' "$TMP/valgrind.txt" | tail -60

done_testing

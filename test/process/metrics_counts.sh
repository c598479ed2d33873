#!/usr/bin/env bash
# The server's metrics count at commit, and only what commits: every counter
# equals the history rows its event wrote, the jobs by state equal the table,
# a rolled-back transaction or subtransaction counts nothing, a TRUNCATE is
# counted again at the next scrape, and a scrape reads a few pages however
# many finished jobs there are.  The HTTP endpoint (tinytemp.metrics_address,
# set by scripts/test.sh to TINYTEMP_METRICS_PORT) serves the same text,
# answers bad requests with a 4xx, and a client that says nothing holds it
# only for its deadline while jobs go on.
source "$(dirname "$0")/common.bash"

PORT=${TINYTEMP_METRICS_PORT:-54339}
URL=http://127.0.0.1:$PORT/metrics
Q=mc-$$		# a queue of this run's own, so that earlier runs do not count

reset_db

# metric NAME LABELS: the value of one sample of tinytemp_metrics(), or "absent".
metric() {
	local v
	v=$(q -c 'SELECT tinytemp_metrics()' | grep -F "$1{$2} " | awk '{print $2}')
	echo "${v:-absent}"
}
L="queue=\"$Q\",job_type=\"t\""
history() {
	q -c "SELECT count(*) FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
		  WHERE j.queue = '$Q' AND h.event = '$1'"
}

is "$(metric tinytemp_jobs_enqueued_total "$L")" absent "nothing counted for a queue with no job"

q -c "SELECT tinytemp_enqueue('t', queue => '$Q', max_attempts => 1) FROM generate_series(1, 5)" >/dev/null
is "$(metric tinytemp_jobs_enqueued_total "$L")" 5 "5 committed enqueues count 5"
q -c "BEGIN" -c "SELECT tinytemp_enqueue('t', queue => '$Q') FROM generate_series(1, 3)" -c "ROLLBACK" >/dev/null
is "$(metric tinytemp_jobs_enqueued_total "$L")" 5 "3 enqueues rolled back count nothing"
q -c "BEGIN" -c "SELECT tinytemp_enqueue('t', queue => '$Q', max_attempts => 1)" -c "SAVEPOINT s" \
	-c "SELECT tinytemp_enqueue('t', queue => '$Q') FROM generate_series(1, 2)" -c "ROLLBACK TO s" \
	-c "SAVEPOINT s2" -c "SELECT tinytemp_enqueue('t', queue => '$Q', max_attempts => 1)" -c "RELEASE s2" \
	-c "COMMIT" >/dev/null
is "$(metric tinytemp_jobs_enqueued_total "$L")" 7 \
	"a subtransaction rolled back counts nothing; one released counts with its parent"
is "$(metric tinytemp_jobs_enqueued_total "$L")" "$(history enqueued)" "enqueued equals the history's enqueued rows"
is "$(metric tinytemp_jobs "queue=\"$Q\",state=\"pending\"")" 7 "7 pending"

# A worker's life: claims, acks, a failure that dead-letters, a cancel, a lost lease.
W=$(q -c "SELECT tinytemp_register_worker('mc-w', 8, 16384, 0)")
q -c "SELECT count(*) FROM tinytemp_claim($W, 4)" >/dev/null
running=($(q -c "SELECT id FROM tinytemp.jobs WHERE queue = '$Q' AND state = 'running' ORDER BY id"))
sleep 0.3
q -c "SELECT tinytemp_ack(${running[0]}, $W, '{}')" -c "SELECT tinytemp_ack(${running[1]}, $W, '{}')" >/dev/null
q -c "SELECT tinytemp_fail(${running[2]}, $W, 'boom', true)" >/dev/null
q -c "BEGIN" -c "SELECT tinytemp_ack(${running[3]}, $W, '{}')" -c "ROLLBACK" >/dev/null
q -c "SELECT tinytemp_cancel(id) FROM tinytemp.jobs WHERE queue = '$Q' AND state = 'pending' ORDER BY id LIMIT 1" >/dev/null
# The last running job's lease runs out: the background worker expires it.
q -c "UPDATE tinytemp.jobs SET lease_until = now() - interval '1 s' WHERE id = ${running[3]}" >/dev/null
wait_sql "SELECT state <> 'running' FROM tinytemp.jobs WHERE id = ${running[3]}" 10
tap $? "the background worker expires the lost lease"

is "$(metric tinytemp_jobs_claimed_total "$L")" 4 "4 claimed"
is "$(metric tinytemp_jobs_succeeded_total "$L")" 2 "2 succeeded (the rolled-back ack counts nothing)"
is "$(metric tinytemp_jobs_failed_total "$L")" 1 "1 failed attempt"
is "$(metric tinytemp_jobs_dead_lettered_total "$L")" 2 "2 dead-lettered: the failed one and the lost lease's (max_attempts 1)"
is "$(metric tinytemp_jobs_cancelled_total "$L")" 1 "1 cancelled"
is "$(metric tinytemp_lease_expirations_total "$L")" 1 "1 lease expiration"
for pair in claimed:claimed succeeded:acked failed:failed retried:retried dead_lettered:dead_lettered \
	cancelled:cancelled; do
	name=${pair%%:*} event=${pair##*:}
	got=$(metric "tinytemp_jobs_${name}_total" "$L")
	[ "$got" = absent ] && got=0
	is "$got" "$(history "$event")" "tinytemp_jobs_${name}_total equals the history's $event rows"
done
is "$(metric tinytemp_lease_expirations_total "$L")" "$(history lease_expired)" \
	"tinytemp_lease_expirations_total equals the history's lease_expired rows"
for s in pending assigned running succeeded failed cancelled; do
	is "$(metric tinytemp_jobs "queue=\"$Q\",state=\"$s\"")" \
		"$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE queue = '$Q' AND state = '$s'")" \
		"tinytemp_jobs{state=\"$s\"} equals the table"
done
is "$(metric tinytemp_job_duration_seconds_count "$L")" 2 "2 durations observed, at the acks"
dur=$(metric tinytemp_job_duration_seconds_sum "$L")
awk -v d="$dur" 'BEGIN { exit !(d >= 0.5 && d < 60) }'
tap $? "the durations add up to the time the two jobs ran (got $dur s, each ran over 0.3 s)"
is "$(metric tinytemp_job_duration_seconds_bucket "$L,le=\"+Inf\"")" 2 "the +Inf bucket holds every observation"
is "$(metric tinytemp_job_wait_seconds_count "$L")" 4 "4 waits observed, at the claims"
is "$(metric tinytemp_prediction_error_ratio_count "$L")" 2 "2 prediction errors observed, at the acks"

# Labels are escaped as the format asks.
q -c "SELECT tinytemp_enqueue('t', queue => E'mc-\"odd\"\\\\q-$$')" >/dev/null
is "$(q -c 'SELECT tinytemp_metrics()' | grep -cF "tinytemp_jobs_enqueued_total{queue=\"mc-\\\"odd\\\"\\\\q-$$\",job_type=\"t\"} 1")" 1 \
	"a queue with a double quote and a backslash is escaped in its label"

# TRUNCATE: the jobs by state are counted again at the next scrape that
# finds no writer on the table (the background worker's passes write to it
# now and then: a scrape during one leaves the jobs by state out, #36).
q -c "TRUNCATE tinytemp.jobs, tinytemp.jobs_history" >/dev/null
for _ in $(seq 20); do
	got=$(metric tinytemp_jobs "queue=\"$Q\",state=\"succeeded\"")
	[ "$got" != absent ] && break
	sleep 0.1
done
is "$got" 0 "after a TRUNCATE the table is counted again: 0 succeeded"
q -c "SELECT tinytemp_enqueue('t', queue => '$Q') FROM generate_series(1, 2)" >/dev/null
is "$(metric tinytemp_jobs "queue=\"$Q\",state=\"pending\"")" 2 "and changes count from there: 2 pending"
is "$(metric tinytemp_jobs_enqueued_total "$L")" 9 "the counters go on (they never go down)"

# The count after a TRUNCATE never waits for a writer, and never makes
# writers wait behind it: while a transaction holds the table, the scrape
# leaves the jobs by state out and counts them at a later scrape.
q -c "TRUNCATE tinytemp.jobs, tinytemp.jobs_history" >/dev/null
q -c "BEGIN" -c "SELECT tinytemp_enqueue('t', queue => '$Q')" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
writer=$!
sleep 0.5
out=$(PGOPTIONS='-c statement_timeout=2s' q -c 'SELECT tinytemp_metrics()' 2>&1)
is "$(grep -c '^tinytemp_jobs{' <<<"$out")" 0 "a scrape while a writer holds the table returns at once, without the jobs by state"
PGOPTIONS='-c lock_timeout=1s' q -c "SELECT tinytemp_enqueue('t', queue => '$Q')" >/dev/null
tap $? "and another enqueue meanwhile does not wait behind the scrape"
wait "$writer"
is "$(metric tinytemp_jobs "queue=\"$Q\",state=\"pending\"")" 2 "once the writer is gone, the next scrape counts them: 2 pending"

# A scrape reads a few pages however many finished jobs there are.
q -c "INSERT INTO tinytemp.jobs (queue, job_type, state, finished_at, params)
	  SELECT '$Q', 't', 'succeeded', now(), jsonb_build_object('pad', repeat('x', 200)) FROM generate_series(1, 50000)" >/dev/null
is "$(metric tinytemp_jobs "queue=\"$Q\",state=\"succeeded\"")" 50000 "50,000 inserted finished jobs are counted by the trigger"
pages=$(q -c "SELECT pg_relation_size('tinytemp.jobs') / current_setting('block_size')::int")
read_pages=$(q -c "SELECT tinytemp_metrics()" -c "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT tinytemp_metrics()" |
	python3 -c 'import json,sys; t=sys.stdin.read(); t=t[t.index("["):]; p=json.loads(t)[0]["Plan"]; print(p.get("Shared Hit Blocks",0)+p.get("Shared Read Blocks",0))')
awk -v r="$read_pages" -v p="$pages" 'BEGIN { exit !(r < 200 && r * 10 < p) }'
tap $? "a scrape reads $read_pages pages of a table of $pages (no count of the table)"

# The HTTP endpoint.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
body=$(curl -s --max-time 5 "$URL")
grep -qF "tinytemp_jobs_enqueued_total{$L} 11" <<<"$body"
tap $? "GET /metrics serves the same counters"
is "$(curl -s -o /dev/null -w '%{content_type}' --max-time 5 "$URL")" "text/plain; version=0.0.4; charset=utf-8" \
	"with the text format's content type"
is "$(code "$URL?x=1")" 200 "a query string is ignored"
is "$(code -X POST "$URL")" 405 "POST: 405"
is "$(code "http://127.0.0.1:$PORT/")" 404 "another path: 404"
is "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL")" 431 "a head over 8 KiB: 431"
is "$(printf 'NONSENSE\r\n\r\n' | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", '"$PORT"'))
s.sendall(sys.stdin.buffer.read())
print(s.recv(64).split(b" ")[1].decode())')" 400 "a request line that is not HTTP: 400"
# answer PORT BYTES: the status code the server answers to raw request bytes (Python escapes).
answer() {
	timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
print(s.recv(64).split(b" ")[1].decode())' "$PORT" "$1"
}
is "$(answer '\x00GET /metrics HTTP/1.1\r\n\r\n')" 400 "a request with a NUL byte: 400"
is "$(answer 'GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n')" 400 "a header with a NUL byte: 400"
is "$(answer "GET http://127.0.0.1:$PORT/metrics HTTP/1.1\\r\\n\\r\\n")" 200 "the absolute form of the target: 200"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <<<"$body" 2>&1)
	is "$?" 0 "promtool check metrics finds no error${out:+ ($(head -1 <<<"$out"))}"
fi

# A client that connects and says nothing holds the server for its deadline
# only, and jobs go on meanwhile.
python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", '"$PORT"'))
time.sleep(6)' &
silent=$!
sleep 0.2
start=$(date +%s.%N)
id=$(q -c "SELECT tinytemp_enqueue('t', queue => '$Q')")
q -c "SELECT count(*) FROM tinytemp_claim($W, 1)" >/dev/null
is "$(q -c "SELECT state FROM tinytemp.jobs WHERE queue = '$Q' AND state = 'running' LIMIT 1")" running \
	"a job is enqueued and claimed while a silent client is connected"
is "$(code "$URL")" 200 "the next scrape is served once the silent client's deadline passes"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { exit !(e - s < 4.5) }'
tap $? "within the 2 s request deadline (took $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }') s)"
kill "$silent" 2>/dev/null
wait "$silent" 2>/dev/null

reset_db
done_testing

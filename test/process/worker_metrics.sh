#!/usr/bin/env bash
# The worker's Prometheus endpoint (--metrics-address): GET /metrics in the
# text format 0.0.4 with the documented names and types; jobs counted by
# outcome as the tables have them; busy slots while a job runs; handler
# durations by job_type, escaped and bounded; heartbeat round trips and
# reconnections.  Bad requests get a 4xx, and neither they nor clients that
# connect and send nothing hold up the jobs.
source "$(dirname "$0")/common.bash"
reset_db

# A free loopback port: the system picks one, then it is let go for the worker.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT

# http.py: requests without curl, raw requests, and silent clients.
cat > "$TMP/http.py" <<'PY'
import select, socket, sys, time

port = int(sys.argv[1])
mode = sys.argv[2]


def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_all(s):
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


if mode == "get":
    # get METHOD PATH HEADER_FILE BODY_FILE: print the status code
    method, path, hfile, bfile = sys.argv[3:7]
    try:
        s = connect()
    except OSError:
        print("000")
        sys.exit(0)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head, _, body = read_all(s).partition(b"\r\n\r\n")
    open(hfile, "wb").write(head + b"\r\n")
    open(bfile, "wb").write(body)
    print(head.split(b" ")[1].decode() if head else "000")
elif mode == "raw":
    # raw BYTES (with \r \n escapes): print the status line of the answer
    # and how many bytes follow its headers
    s = connect()
    s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    head, _, body = read_all(s).partition(b"\r\n\r\n")
    print(head.split(b"\r\n", 1)[0].decode() or "(no answer)", len(body))
elif mode == "silent":
    # silent N: open N connections that send nothing; print how many the
    # worker closed within 10 s and the earliest close, in seconds
    socks = [connect() for _ in range(int(sys.argv[3]))]
    start = time.monotonic()
    open(sys.argv[4], "w").write("connected\n")
    pending = set(socks)
    closed = []
    while pending and time.monotonic() < start + 10:
        ready, _, _ = select.select(list(pending), [], [], 0.1)
        for s in ready:
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            if not data:
                closed.append(time.monotonic() - start)
                pending.discard(s)
    print(len(closed), "%.1f" % min(closed) if closed else "-")
PY

# fetch METHOD PATH: the status code (000: no connection); the headers and
# body in $TMP/headers, $TMP/body.
if command -v curl >/dev/null; then
	fetch() {
		rm -f "$TMP/headers" "$TMP/body"
		curl -s -X "$1" --max-time 5 -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "$BASE$2"
	}
else
	fetch() { python3 "$TMP/http.py" "$PORT" get "$1" "$2" "$TMP/headers" "$TMP/body"; }
fi
# raw BYTES: the status line of the answer to BYTES (with \r and \n escapes).
raw() { python3 "$TMP/http.py" "$PORT" raw "$1" | sed -E 's/ [0-9]+$//'; }
# metric 'NAME{LABELS}': its value in a fresh scrape ("" when absent).
metric() {
	fetch GET /metrics >/dev/null
	# (through the environment: awk -v would undo the escapes of label values)
	M=$1 awk '$1 == ENVIRON["M"] { print $2 }' "$TMP/body"
}
# wait_metric 'NAME{LABELS}' VALUE SECONDS: wait until the metric has the value.
wait_metric() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# A bad address or one in use stops the worker at once, with exit status 2.
"$WORKER" --handler x=simulate --metrics-address '::1:80' >"$TMP/bad.out" 2>&1
is "$?" 2 "a malformed --metrics-address exits 2"
grep -q 'invalid --metrics-address' "$TMP/bad.out"
tap $? "and says why"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(5)' >"$TMP/busy_port" &
holder=$!
for ((i = 0; i < 50; i++)); do [ -s "$TMP/busy_port" ] && break; sleep 0.1; done
"$WORKER" --handler x=simulate --metrics-address "127.0.0.1:$(cat "$TMP/busy_port")" >"$TMP/inuse.out" 2>&1
is "$?" 2 "a --metrics-address in use exits 2"
grep -q 'cannot listen on --metrics-address' "$TMP/inuse.out"
tap $? "and says it cannot listen there"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

cat > "$TMP/handlers.conf" <<'CONF'
[sim]
command = simulate

[bad]
command = /bin/false

[long]
command = /bin/sleep 1000

[*]
command = simulate
CONF

PGOPTIONS='-c tinytemp.lease_timeout=1500ms -c tinytemp.retry_backoff_base=100ms' start_worker w \
	--name metrics-w --config "$TMP/handlers.conf" --slots 2 --poll-interval 0.5 --kill-grace 1 \
	--metrics-address "127.0.0.1:$PORT"
w=$LAST_PID
wait_log w " ready " 15
tap $? "the worker is ready"
grep -qE "metrics serving http://127\.0\.0\.1:$PORT/metrics" "$TMP/w.log"
tap $? "it logs where it serves the metrics"
bail_out

is "$(fetch GET /metrics)" 200 "GET /metrics answers 200"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8'$'\r''$' "$TMP/headers"
tap $? "as text/plain; version=0.0.4; charset=utf-8"
grep -qi '^Connection: close'$'\r''$' "$TMP/headers"
tap $? "with Connection: close"
types=$(grep '^# TYPE ' "$TMP/body" | cut -d' ' -f3,4 | sort | paste -sd ' ')
is "$types" "tinytemp_worker_busy_slots gauge tinytemp_worker_connected gauge\
 tinytemp_worker_handler_duration_seconds histogram tinytemp_worker_heartbeat_rtt_seconds histogram\
 tinytemp_worker_jobs_total counter tinytemp_worker_reconnects_total counter\
 tinytemp_worker_slots gauge tinytemp_worker_up gauge" "the eight families, with their types"
is "$(grep -c '^# HELP tinytemp_worker_[a-z_]* [A-Z]' "$TMP/body")" 8 "each has a HELP line"
is "$(grep '^tinytemp_worker_jobs_total{' "$TMP/body" | paste -sd ' ')" \
	'tinytemp_worker_jobs_total{outcome="succeeded"} 0 tinytemp_worker_jobs_total{outcome="failed"} 0 tinytemp_worker_jobs_total{outcome="cancelled"} 0 tinytemp_worker_jobs_total{outcome="preempted"} 0 tinytemp_worker_jobs_total{outcome="lost"} 0' \
	"every outcome is there from the start, at 0"
is "$(metric tinytemp_worker_up) $(metric tinytemp_worker_slots) $(metric tinytemp_worker_busy_slots)" "1 2 0" \
	"up 1, 2 slots, none busy"
wait_metric tinytemp_worker_connected 1 5
tap $? "connected 1"
is "$(python3 "$TMP/http.py" "$PORT" raw 'HEAD /metrics HTTP/1.0\r\n\r\n')" "HTTP/1.1 200 OK 0" \
	"HEAD /metrics answers 200 without a body"

# A job that runs: one busy slot; its heartbeats are timed.
long=$(q -c "SELECT tinytemp_enqueue('long', max_attempts => 1)")
wait_sql "SELECT state = 'running' FROM tinytemp.jobs WHERE id = $long" 15
tap $? "a long job runs"
wait_metric tinytemp_worker_busy_slots 1 5
tap $? "busy slots: 1 while it runs"

# Bad requests get a 4xx; the worker goes on.
is "$(raw 'garbage\r\n\r\n')" "HTTP/1.1 400 Bad Request" "a garbage request gets 400"
is "$(raw 'GET /metrics\r\n\r\n')" "HTTP/1.1 400 Bad Request" "an HTTP/0.9 request line gets 400"
is "$(raw 'GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n')" "HTTP/1.1 400 Bad Request" "a malformed header gets 400"
is "$(raw "GET /metrics HTTP/1.1\\r\\nX-Pad: $(head -c 9000 /dev/zero | tr '\0' a)\\r\\n\\r\\n")" \
	"HTTP/1.1 431 Request Header Fields Too Large" "a request over 8 KiB gets 431"
is "$(fetch GET /other)" 404 "another path gets 404"
is "$(fetch POST /metrics)" 405 "POST gets 405"
grep -qi '^Allow: GET, HEAD' "$TMP/headers"
tap $? "with Allow: GET, HEAD"
is "$(fetch GET '/metrics?x=1')" 200 "a query string is ignored"

# Clients that connect and say nothing (more than the worker serves at once):
# jobs are claimed and run meanwhile, and each is closed after its deadline.
python3 "$TMP/http.py" "$PORT" silent 20 "$TMP/silent.ready" >"$TMP/silent.out" &
silent=$!
for ((i = 0; i < 50; i++)); do [ -s "$TMP/silent.ready" ] && break; sleep 0.1; done
before=$(date +%s.%N)
q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}') FROM generate_series(1, 5)" >/dev/null
wait_sql "SELECT count(*) = 5 FROM tinytemp.jobs WHERE job_type = 'sim' AND state = 'succeeded'" 5
tap $? "jobs are claimed and acked while 20 silent clients hold connections"
echo "# the 5 jobs took $(echo "$(date +%s.%N) - $before" | bc) s"
wait "$silent"
read -r closed earliest < "$TMP/silent.out"
is "$closed" 20 "the worker closed all 20 silent connections"
[ "$(echo "$earliest >= 1.5" | bc)" = 1 ]
tap $? "none before its deadline (earliest after ${earliest}s)"
is "$(fetch GET /metrics)" 200 "a scrape is served again"

# A cancel, failures and successes, counted as the tables have them.
q -c "SELECT tinytemp_cancel($long)" >/dev/null
wait_log w " job=$long cancelled " 15
tap $? "the long job was cancelled"
wait_metric 'tinytemp_worker_jobs_total{outcome="cancelled"}' 1 5
tap $? "cancelled: 1"
bad=$(q -c "SELECT tinytemp_enqueue('bad', max_attempts => 2)")
q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0.3}') FROM generate_series(1, 3)" >/dev/null
wait_sql "SELECT count(*) = 0 FROM tinytemp.jobs WHERE state IN ('pending', 'running')" 20
tap $? "the failing and succeeding jobs ended"
is "$(q -c "SELECT state || '/' || attempts FROM tinytemp.jobs WHERE id = $bad")" "failed/2" "the failing job failed twice"
acked=$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'acked'")
failed=$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'failed'")
wait_metric 'tinytemp_worker_jobs_total{outcome="succeeded"}' "$acked" 5
tap $? "succeeded equals the acked events in the history ($acked)"
is "$(metric 'tinytemp_worker_jobs_total{outcome="failed"}')" "$failed" "failed equals the failed events in the history ($failed)"
is "$(metric 'tinytemp_worker_jobs_total{outcome="preempted"}') $(metric 'tinytemp_worker_jobs_total{outcome="lost"}')" "0 0" \
	"none preempted, none lost"
is "$(metric 'tinytemp_worker_handler_duration_seconds_count{job_type="sim"}')" 8 "8 sim handler durations"
is "$(metric 'tinytemp_worker_handler_duration_seconds_bucket{job_type="sim",le="0.1"}') $(metric 'tinytemp_worker_handler_duration_seconds_bucket{job_type="sim",le="0.5"}') $(metric 'tinytemp_worker_handler_duration_seconds_bucket{job_type="sim",le="+Inf"}')" \
	"5 8 8" "the five of no runtime under 0.1 s, the three of 0.3 s under 0.5 s, +Inf is the count"
sum=$(metric 'tinytemp_worker_handler_duration_seconds_sum{job_type="sim"}')
[ "$(echo "$sum >= 0.9 && $sum < 3" | bc)" = 1 ]
tap $? "the sum is about 3 x 0.3 s ($sum)"
is "$(metric 'tinytemp_worker_handler_duration_seconds_count{job_type="bad"}')" 2 "2 durations of the failing handler"
rtt=$(metric tinytemp_worker_heartbeat_rtt_seconds_count)
[ "${rtt:-0}" -gt 0 ] && [ "$(metric 'tinytemp_worker_heartbeat_rtt_seconds_bucket{le="+Inf"}')" = "$rtt" ]
tap $? "heartbeat round trips were observed ($rtt)"

# Label values are escaped; job types past 100 share job_type="_other".
q -c "SELECT tinytemp_enqueue(E'we\"ird\\\\type\\nx', params => '{\"runtime_s\": 0}')" >/dev/null
wait_sql "SELECT count(*) = 0 FROM tinytemp.jobs WHERE state IN ('pending', 'running')" 10
is "$(metric 'tinytemp_worker_handler_duration_seconds_count{job_type="we\"ird\\type\nx"}')" 1 \
	'a job_type with ", \ and a newline is escaped'
q -c "SELECT tinytemp_enqueue('type' || g, params => '{\"runtime_s\": 0}') FROM generate_series(1, 105) g" >/dev/null
wait_sql "SELECT count(*) = 0 FROM tinytemp.jobs WHERE state IN ('pending', 'running')" 60
tap $? "105 jobs of 105 more job types ran"
sleep 0.5
fetch GET /metrics >/dev/null
is "$(grep -c '^tinytemp_worker_handler_duration_seconds_count{' "$TMP/body")" 101 "100 job_type series and _other"
is "$(awk '$1 == "tinytemp_worker_handler_duration_seconds_count{job_type=\"_other\"}" { print $2 }' "$TMP/body")" 9 \
	"the 9 job types past the first 100 share _other"
is "$(awk '/^tinytemp_worker_handler_duration_seconds_count\{/ { n += $2 } END { print n }' "$TMP/body")" \
	"$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'claimed'")" \
	"one handler duration per claim"
if command -v promtool >/dev/null; then
	promtool check metrics < "$TMP/body" >"$TMP/promtool.out" 2>&1
	tap $? "promtool check metrics finds nothing to say"
	sed 's/^/#   /' "$TMP/promtool.out"
else
	echo "ok $((TAP_N += 1)) - # SKIP promtool is not installed"
fi

# A lost connection: the worker reconnects and counts it.
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tinytemp-worker metrics-w'" >/dev/null
wait_metric tinytemp_worker_reconnects_total 1 15
tap $? "reconnects_total: 1 after a lost connection"
wait_metric tinytemp_worker_connected 1 10
tap $? "connected 1 again"
q -c "SELECT tinytemp_enqueue('sim', params => '{\"runtime_s\": 0}')" >/dev/null
wait_metric 'tinytemp_worker_jobs_total{outcome="succeeded"}' "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'acked'")" 10
tap $? "jobs still run, and are counted"

kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"
is "$(fetch GET /metrics 2>/dev/null)" 000 "and no longer serves"

done_testing

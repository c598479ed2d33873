#!/usr/bin/env bash
# tinytemp's metrics through a real Prometheus.  A cluster of its own serves
# GET /metrics (tinytemp.metrics_address); two tinytemp-worker processes
# serve theirs (--metrics-address); prometheus-postgres-exporter runs
# metrics/postgres_exporter/queries.yaml; one Prometheus scrapes all four
# every second with metrics/tinytemp.rules.yml loaded.  Jobs succeed, fail
# and are retried, are dead-lettered, cancelled, held pending, and rolled
# back.  Then:
#   - every endpoint passes promtool check metrics with nothing to say:
#     errors and lint warnings alike fail the test;
#   - the counters Prometheus scraped equal the history's events by queue
#     and job_type, tinytemp_jobs equals the jobs table by queue and state,
#     and a rolled-back enqueue (or savepoint) counts nothing;
#   - the exporter's tinytemp_sql_* series equal the tables, its queries
#     read only partial indexes, and it reads through row-level security
#     as the read-only role metrics/README.md describes;
#   - bad requests to the database's endpoint get a 4xx, a client that
#     sends nothing does not stop the next scrape, and jobs keep flowing;
#   - the rules pass promtool check and test, evaluate without error in
#     Prometheus, and the dead-letter alert fires for the dead letters;
#   - every query of every panel of the Grafana dashboard returns data.
#
# Its own cluster ("metrics", port 54347) and ports 54348 (the database's
# metrics), 54349 and 54350 (the workers'), 54351 (Prometheus) and 54352
# (the exporter), all on 127.0.0.1; everything is stopped at exit.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$(dirname "$0")/common.bash"

CLUSTER=metrics
PORT=${TINYTEMP_METRICS_PORT:-54347}
DB=tinytemp_metrics
DB_METRICS=127.0.0.1:$((PORT + 1))
W1_METRICS=127.0.0.1:$((PORT + 2))
W2_METRICS=127.0.0.1:$((PORT + 3))
PROM=127.0.0.1:$((PORT + 4))
EXPORTER=127.0.0.1:$((PORT + 5))
M=$TT_REPO/metrics
t0=$(date +%s)

missing=
for tool in prometheus promtool prometheus-postgres-exporter curl; do
	command -v "$tool" >/dev/null || missing="$missing $tool"
done
python3 -c 'import yaml' 2>/dev/null || missing="$missing python3-yaml"
if [ -n "$missing" ]; then
	echo "ok 1 - # SKIP not installed:$missing"
	done_testing
	exit 0
fi

trap 'cleanup; tt_cluster_stop $CLUSTER' EXIT

# promq.py: Prometheus's HTTP API, the dashboard's queries, a scrape's text.
cat > "$TMP/promq.py" <<'PY'
import json, math, re, sys, urllib.error, urllib.parse, urllib.request

base = "http://" + sys.argv[1]
mode = sys.argv[2]


def get(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def number(v):
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


if mode == "vector":
    # vector EXPR LABEL...: one line "L1/L2=value" per series; exit 1 on an error.
    body = get("/api/v1/query", query=sys.argv[3])
    if body.get("status") != "success":
        print("error: %s" % body.get("error"))
        sys.exit(1)
    for s in body["data"]["result"]:
        print("/".join(s["metric"].get(l, "") for l in sys.argv[4:]) + "=" + number(s["value"][1]))
elif mode == "rules":
    # rules: one line per rule, "NAME HEALTH LAST_ERROR".
    for g in get("/api/v1/rules")["data"]["groups"]:
        for r in g["rules"]:
            print(r["name"], r["health"], r.get("lastError", ""))
elif mode == "alerts":
    # alerts: the firing alerts, "NAME queue/job_type" each.
    for a in get("/api/v1/alerts")["data"]["alerts"]:
        if a["state"] == "firing":
            l = a["labels"]
            print(l["alertname"], l.get("queue", "") + "/" + l.get("job_type", ""))
elif mode == "dashboard":
    # dashboard FILE: one line per panel with queries, "ok TITLE" or
    # "bad TITLE: why"; the template variables are given test values.
    dash = json.load(open(sys.argv[3]))
    subst = [("${__rate_interval}", "1m"), ("$__rate_interval", "1m"), ("${__interval}", "1m"),
             ("$__interval", "1m"), ("${__range}", "5m"), ("$__range", "5m"),
             ("${queue:regex}", ".*"), ("${queue}", ".*"), ("[[queue]]", ".*"), ("$queue", ".*")]

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash["panels"]):
        if p.get("type") == "row":
            continue
        problems = []
        targets = p.get("targets", [])
        if not targets:
            problems.append("no targets")
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append("a target has no expr")
                continue
            for a, b in subst:
                expr = expr.replace(a, b)
            if "$" in expr:
                problems.append("unknown variable in %s" % expr)
                continue
            body = get("/api/v1/query", query=expr)
            if body.get("status") != "success":
                problems.append("%s: %s" % (expr, body.get("error")))
            elif not body["data"]["result"]:
                problems.append("%s: no data" % expr)
            elif not any(math.isfinite(float(s["value"][1])) for s in body["data"]["result"]):
                problems.append("%s: only NaN or Inf" % expr)
        title = p.get("title", "?")
        print(("ok %s (%d queries)" % (title, len(targets))) if not problems else
              "bad %s: %s" % (title, "; ".join(problems)))
elif mode == "sum":
    # sum NAME < scrape: the sum of the samples of metric NAME in a scrape's text.
    name = sys.argv[3]
    total = 0.0
    for line in sys.stdin:
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line.strip())
        if m and m.group(1) == name:
            total += float(m.group(3))
    print(number(total))
PY

# pq EXPR LABEL...: Prometheus's answer to EXPR, one "L1/L2=value" a series, sorted, on one line.
pq() {
	python3 "$TMP/promq.py" "$PROM" vector "$@" | LC_ALL=C sort | paste -sd' '
}
# sqlq SQL: the lines of a query, sorted, on one line.
sqlq() {
	q -c "$1" | LC_ALL=C sort | paste -sd' '
}
# wait_http URL SECONDS: until URL answers 200.
wait_http() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ] && return 0
		sleep 0.2
	done
	return 1
}
# wait_prom EXPR WANT SECONDS: until pq EXPR (no labels) is WANT.
wait_prom() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		[ "$(pq "$1")" = "=$2" ] && return 0
		sleep 0.2
	done
	return 1
}
# scraped_since T: wait until Prometheus has scraped every target after unix time T.
scraped_since() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(pq "count(up) - (count(timestamp(up) > $1) or vector(0))")" = "=0" ] && return 0
		sleep 0.2
	done
	return 1
}

# The cluster: tinytemp preloaded, serving the database and its metrics.
tt_served_cluster "$CLUSTER" "$PORT" "$DB" "tinytemp.metrics_address = '$DB_METRICS'
tinytemp.naptime = '200ms'
tinytemp.lease_timeout = '6s'
tinytemp.retry_backoff_base = '100ms'
tinytemp.retry_backoff_cap = '200ms'" >"$TMP/cluster.log" 2>&1
tap $? "a cluster of its own on port $PORT, serving $DB"
bail_out
wait_http "http://$DB_METRICS/metrics" 20
tap $? "the database's metrics endpoint answers on $DB_METRICS"
bail_out
"$WORKER" --help | grep -q -- '--metrics-address'
tap $? "tinytemp-worker has --metrics-address"
bail_out

# The exporter's role, as metrics/README.md makes it: reads every job through row-level security, writes nothing.
q >/dev/null <<'SQL'
CREATE ROLE tinytemp_exporter LOGIN BYPASSRLS IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA tinytemp TO tinytemp_exporter;
GRANT SELECT ON tinytemp.jobs, tinytemp.workers TO tinytemp_exporter;
SQL
tap $? "a read-only role for the exporter"

DATA_SOURCE_NAME="host=$PGHOST port=$PORT dbname=$DB user=tinytemp_exporter sslmode=disable" \
	start_command exporter prometheus-postgres-exporter --extend.query-path="$M/postgres_exporter/queries.yaml" \
	--web.listen-address="$EXPORTER" --disable-default-metrics --disable-settings-metrics \
	--no-collector.database --no-collector.bgwriter

cat > "$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $M/tinytemp.rules.yml
scrape_configs:
  - job_name: tinytemp
    static_configs:
      - targets: ["$DB_METRICS"]
  - job_name: tinytemp-workers
    static_configs:
      - targets: ["$W1_METRICS", "$W2_METRICS"]
  - job_name: postgres
    static_configs:
      - targets: ["$EXPORTER"]
YML
start_command prometheus prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
	--web.listen-address="$PROM" --log.level=warn
wait_http "http://$PROM/-/ready" 30
tap $? "Prometheus is ready on $PROM"
bail_out

# The work, enqueued before any worker runs, so that Prometheus sees every
# series at 0 first.  default: 30 jobs that succeed, 3 that always fail (2
# attempts, then the dead-letter queue), one long job (1 GPU) still running
# at the checks.  train: 10 of tenant alice, 4 that fail once and then
# succeed.  later: 3 due in an hour, one cancelled.  big: one that no worker
# can hold.  rb: two enqueues rolled back, one kept.
q >/dev/null <<'SQL'
SELECT count(tinytemp_enqueue('sim', params => '{"runtime_s": 0.05}')) FROM generate_series(1, 30);
SELECT count(tinytemp_enqueue('boom', max_attempts => 2)) FROM generate_series(1, 3);
SELECT tinytemp_enqueue('long', params => '{"runtime_s": 300}', gpus => 1);
SELECT count(tinytemp_enqueue('sim', params => '{"runtime_s": 0.05}', queue => 'train', tenant => 'alice'))
FROM generate_series(1, 10);
SELECT count(tinytemp_enqueue('sim', params => '{"runtime_s": 0.05, "fail_attempts": 1}', queue => 'train',
                              max_attempts => 3))
FROM generate_series(1, 4);
SELECT count(tinytemp_enqueue('sim', queue => 'later', run_after => now() + interval '1 hour')) FROM generate_series(1, 3);
SELECT tinytemp_cancel(min(id)) FROM tinytemp.jobs WHERE queue = 'later';
SELECT tinytemp_enqueue('sim', queue => 'big', cpus => 1000);
SQL
tap $? "52 jobs enqueued, one cancelled"
q -c 'BEGIN' -c "SELECT tinytemp_enqueue('rolled_back', queue => 'rb')" -c 'ROLLBACK' >/dev/null
q >/dev/null <<'SQL'
BEGIN;
SAVEPOINT s;
SELECT tinytemp_enqueue('rolled_back_savepoint', queue => 'rb');
ROLLBACK TO SAVEPOINT s;
SELECT tinytemp_enqueue('sim', params => '{"runtime_s": 0.05}', queue => 'rb');
COMMIT;
SQL
tap $? "an enqueue rolled back, another rolled back to a savepoint, a third kept"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE job_type LIKE 'rolled_back%'")" 0 "the rolled-back jobs are not in the table"
wait_prom 'sum(tinytemp_jobs_enqueued_total{job="tinytemp"})' 53 15
tap $? "Prometheus scraped the 53 enqueues before any worker ran"

for w in 1 2; do
	addr=W${w}_METRICS
	start_worker "w$w" --name "metrics-w$w" --slots 3 --cpus 8 --memory-mb 16384 --gpus 1 --gpu-type testgpu \
		--poll-interval 0.5 --metrics-address "${!addr}" \
		--handler 'sim=simulate' --handler 'long=simulate' --handler 'boom=/bin/false'
done
wait_sql "SELECT count(*) = 2 FROM tinytemp.workers WHERE state = 'active'" 15
tap $? "two workers registered"
wait_http "http://$W1_METRICS/metrics" 10 && wait_http "http://$W2_METRICS/metrics" 10
tap $? "both workers serve /metrics"
bail_out

# All done but the long job (running) and the jobs that cannot run yet.
wait_sql "SELECT count(*) FILTER (WHERE state = 'succeeded') = 45
             AND count(*) FILTER (WHERE state = 'failed') = 3
             AND count(*) FILTER (WHERE state = 'running' AND job_type = 'long') = 1
             AND count(*) FILTER (WHERE state IN ('pending', 'assigned', 'running')) = 4
          FROM tinytemp.jobs" 45
tap $? "45 jobs succeeded, 3 dead-lettered, the long one runs, 3 wait"
echo "# jobs: $(sqlq "SELECT queue || '/' || state || '=' || count(*) FROM tinytemp.jobs GROUP BY queue, state")"
bail_out

# Every endpoint in the text format, with nothing for promtool to say.
for ep in "database $DB_METRICS" "worker 1 $W1_METRICS" "worker 2 $W2_METRICS" "exporter $EXPORTER"; do
	addr=${ep##* }
	curl -sf "http://$addr/metrics" >"$TMP/scrape.txt"
	promtool check metrics <"$TMP/scrape.txt" >"$TMP/promtool.out" 2>&1
	rc=$?
	[ $rc = 0 ] && [ ! -s "$TMP/promtool.out" ] && [ -s "$TMP/scrape.txt" ]
	tap $? "promtool check metrics: the ${ep% *} endpoint is clean"
	sed 's/^/#   /' "$TMP/promtool.out" | head -20
done

# The counters against the history, by queue and job_type, once Prometheus has scraped the quiet state.
scraped_since "$(date +%s.%N)"
tap $? "Prometheus scraped every target after the work settled"
for pair in enqueued:tinytemp_jobs_enqueued_total claimed:tinytemp_jobs_claimed_total \
	acked:tinytemp_jobs_succeeded_total failed:tinytemp_jobs_failed_total \
	retried:tinytemp_jobs_retried_total dead_lettered:tinytemp_jobs_dead_lettered_total \
	cancelled:tinytemp_jobs_cancelled_total lease_expired:tinytemp_lease_expirations_total \
	preempted:tinytemp_preemptions_total; do
	event=${pair%%:*}
	metric=${pair#*:}
	want=$(sqlq "SELECT j.queue || '/' || j.job_type || '=' || count(*)
	             FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
	             WHERE h.event = '$event' GROUP BY j.queue, j.job_type")
	is "$(pq "sum by (queue, job_type) ($metric{job=\"tinytemp\"}) > 0" queue job_type)" "$want" \
		"$metric equals the '$event' events by queue and job_type${want:+ ($want)}"
done
is "$(pq 'sum by (queue, state) (tinytemp_jobs{job="tinytemp"}) > 0' queue state)" \
	"$(sqlq "SELECT queue || '/' || state || '=' || count(*) FROM tinytemp.jobs GROUP BY queue, state")" \
	"tinytemp_jobs equals the jobs table by queue and state"
is "$(pq 'sum by (queue, job_type) (tinytemp_job_duration_seconds_count{job="tinytemp"}) > 0' queue job_type)" \
	"$(pq 'sum by (queue, job_type) (tinytemp_jobs_succeeded_total{job="tinytemp"}) > 0' queue job_type)" \
	"one job duration observed per success"
is "$(pq 'sum by (queue, job_type) (tinytemp_job_wait_seconds_count{job="tinytemp"}) > 0' queue job_type)" \
	"$(pq 'sum by (queue, job_type) (tinytemp_jobs_claimed_total{job="tinytemp"}) > 0' queue job_type)" \
	"one wait observed per claim"
is "$(pq 'count(tinytemp_jobs_enqueued_total{job="tinytemp", queue="rb"})')" "=1" \
	"queue rb has one enqueued series: the rolled-back job types have none"
is "$(curl -s "http://$DB_METRICS/metrics" | grep -c 'job_type="rolled_back')" 0 \
	"and the scrape's text names no rolled-back job type"
is "$(pq 'sum(tinytemp_metrics_dropped_total{job="tinytemp"})')" "=0" "no metric update dropped"
is "$(pq 'tinytemp_workers_active{job="tinytemp"}')" "=2" "tinytemp_workers_active is 2"
is "$(pq 'sum(tinytemp_worker_gpus{job="tinytemp"}) - sum(tinytemp_worker_free_gpus{job="tinytemp"})')" "=1" \
	"the long job holds 1 of the workers' GPUs"

# The workers' own count of outcomes against the history.
is "$(pq 'sum by (outcome) (tinytemp_worker_jobs_total{job="tinytemp-workers", outcome=~"succeeded|failed"})' outcome)" \
	"$(sqlq "SELECT CASE event WHEN 'acked' THEN 'succeeded' ELSE 'failed' END || '=' || count(*)
	         FROM tinytemp.jobs_history WHERE event IN ('acked', 'failed') GROUP BY event")" \
	"the workers' succeeded and failed outcomes equal the history's acks and failures"
is "$(pq 'sum(tinytemp_worker_busy_slots{job="tinytemp-workers"})')" "=1" "one busy slot in all: the long job"

# The exporter: its series against the tables, its plans, its role.
is "$(pq 'tinytemp_sql_pending_jobs{job="postgres"}' queue)" \
	"$(sqlq "SELECT queue || '=' || count(*) FROM tinytemp.jobs WHERE state = 'pending' GROUP BY queue")" \
	"tinytemp_sql_pending_jobs equals the pending jobs by queue"
is "$(pq 'tinytemp_sql_pending_due{job="postgres"}' queue)" "big=1 later=0" \
	"tinytemp_sql_pending_due: the job too big is due, the later ones are not"
is "$(pq 'tinytemp_sql_held_jobs{job="postgres"}' queue state)" "default/running=1" \
	"tinytemp_sql_held_jobs: the long job runs"
is "$(pq 'tinytemp_sql_workers_active{job="postgres"}')" "=2" "tinytemp_sql_workers_active is 2"
is "$(pq 'pg_exporter_last_scrape_error{job="postgres"} + on() sum(pg_exporter_user_queries_load_error{job="postgres"})')" "=0" \
	"the exporter loaded the queries file and its last scrape had no error"
python3 -c '
import sys, yaml
for name, q in yaml.safe_load(open(sys.argv[1])).items():
    print("EXPLAIN (FORMAT JSON) " + q["query"].strip().rstrip(";") + ";")
' "$M/postgres_exporter/queries.yaml" >"$TMP/explain.sql"
q -c 'SET enable_seqscan = off' -f "$TMP/explain.sql" >"$TMP/plans.json"
python3 - "$TMP/plans.json" >"$TMP/indexes.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec = json.JSONDecoder()
pos = 0
def walk(n):
    if n["Node Type"] == "Seq Scan":
        print("SEQSCAN " + n["Relation Name"])
    if "Index Name" in n:
        print(n["Index Name"])
    for c in n.get("Plans", []):
        walk(c)
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    plan, pos = dec.raw_decode(text, pos)
    walk(plan[0]["Plan"])
PY
plans_ok=$?
indexes=$(grep -v '^SEQSCAN' "$TMP/indexes.txt" | sort -u | paste -sd' ')
full=$(for i in $indexes; do
	q -c "SELECT indexrelid::regclass FROM pg_index WHERE indexrelid = 'tinytemp.$i'::regclass AND indpred IS NULL"
done)
[ $plans_ok = 0 ] && [ -n "$indexes" ] && ! grep -q '^SEQSCAN' "$TMP/indexes.txt" && [ -z "$full" ]
tap $? "the exporter's queries read partial indexes only (${indexes:-none})"
grep '^SEQSCAN' "$TMP/indexes.txt" | sed 's/^/#   /'
[ -z "$full" ] || echo "#   not partial: $full"
is "$(q -c "SET ROLE tinytemp_exporter" -c "SELECT count(*) FROM tinytemp.jobs")" \
	"$(q -c "SELECT count(*) FROM tinytemp.jobs")" "the exporter's role sees every job through row-level security"
q -c "SET ROLE tinytemp_exporter" -c "UPDATE tinytemp.jobs SET priority = 1" >/dev/null 2>"$TMP/update.err"
[ $? != 0 ] && grep -q 'permission denied' "$TMP/update.err"
tap $? "and may not change one"

# Bad requests to the database's endpoint: each a 4xx, then scrapes and jobs go on.
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$DB_METRICS/metrics")" 405 "POST /metrics: 405"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$DB_METRICS/secrets")" 404 "GET /secrets: 404"
raw() {
	python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode() or "(no answer)")
' "${DB_METRICS##*:}" "$1"
}
is "$(raw 'this is not http\r\n\r\n')" "HTTP/1.1 400 Bad Request" "a line that is not HTTP: 400"
is "$(raw "GET /metrics HTTP/1.1\r\nX-Pad: $(printf '%09000d' 0)\r\n\r\n")" \
	"HTTP/1.1 431 Request Header Fields Too Large" "a 9000-byte header: 431"
# A client that connects and says nothing holds the server for its request deadline only.
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
time.sleep(8)
' "${DB_METRICS##*:}" >"$TMP/silent.out" &
silent=$!
for ((i = 0; i < 50; i++)); do [ -s "$TMP/silent.out" ] && break; sleep 0.1; done
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 6 "http://$DB_METRICS/metrics")" 200 \
	"a scrape behind a silent client is answered"
kill "$silent" 2>/dev/null
wait "$silent" 2>/dev/null
q -c "SELECT count(tinytemp_enqueue('sim', params => '{\"runtime_s\": 0.2}')) FROM generate_series(1, 6)" >/dev/null
wait_sql "SELECT count(*) = 51 FROM tinytemp.jobs WHERE state = 'succeeded'" 20
tap $? "6 more jobs succeed after the bad requests"
acked=$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'acked'")
is "$(curl -s "http://$DB_METRICS/metrics" | python3 "$TMP/promq.py" - sum tinytemp_jobs_succeeded_total)" "$acked" \
	"the endpoint counts them: $acked successes"
wait_prom 'sum(tinytemp_jobs_succeeded_total{job="tinytemp"})' "$acked" 10
tap $? "and Prometheus has them"
is "$(pq 'up' job instance)" \
	"postgres/$EXPORTER=1 tinytemp-workers/$W1_METRICS=1 tinytemp-workers/$W2_METRICS=1 tinytemp/$DB_METRICS=1" \
	"every target is up"

# The rules: valid, tested, evaluated without error, and the dead letters alert.
promtool check rules "$M/tinytemp.rules.yml" >"$TMP/check_rules.out" 2>&1
tap $? "promtool check rules metrics/tinytemp.rules.yml"
promtool test rules "$M/tinytemp.rules.test.yml" >"$TMP/test_rules.out" 2>&1
tap $? "promtool test rules metrics/tinytemp.rules.test.yml"
[ $TAP_FAILED = 0 ] || sed 's/^/#   /' "$TMP/test_rules.out" | head -40
sed "s#/etc/prometheus/tinytemp.rules.yml#$M/tinytemp.rules.yml#" "$M/prometheus.yml.example" >"$TMP/example.yml"
promtool check config "$TMP/example.yml" >"$TMP/check_config.out" 2>&1
tap $? "promtool check config metrics/prometheus.yml.example"
python3 "$TMP/promq.py" "$PROM" rules >"$TMP/rules.txt"
is "$(wc -l <"$TMP/rules.txt") $(awk '$2 != "ok"' "$TMP/rules.txt" | wc -l)" "10 0" \
	"Prometheus evaluates the 10 rules, all healthy"
awk '$2 != "ok"' "$TMP/rules.txt" | sed 's/^/#   /'
for ((i = 0; i < 25; i++)); do
	firing=$(python3 "$TMP/promq.py" "$PROM" alerts | LC_ALL=C sort | paste -sd' ')
	[ -n "$firing" ] && break
	sleep 0.2
done
is "$firing" "TinytempDeadLettersGrowing default/boom" "the dead-letter alert fires, for boom jobs, and no other"

# The dashboard: its form, and data for every query of every panel.
python3 - "$M/grafana/tinytemp-dashboard.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schemaVersion"] >= 36, "schemaVersion"
assert any(i["name"] == "DS_PROMETHEUS" and i["pluginId"] == "prometheus" for i in d["__inputs"]), "__inputs"
names = {v["name"]: v for v in d["templating"]["list"]}
assert names["datasource"]["type"] == "datasource", "datasource variable"
assert names["queue"]["allValue"] == ".*", "queue variable"
PY
tap $? "the dashboard has a schemaVersion, a Prometheus input and its variables"
python3 "$TMP/promq.py" "$PROM" dashboard "$M/grafana/tinytemp-dashboard.json" >"$TMP/panels.txt"
panels=$(wc -l <"$TMP/panels.txt")
[ "$panels" -ge 10 ]
tap $? "the dashboard has $panels panels with queries"
while read -r status rest; do
	[ "$status" = ok ]
	tap $? "dashboard panel: $rest"
done <"$TMP/panels.txt"

echo "# $(($(date +%s) - t0)) s"
done_testing

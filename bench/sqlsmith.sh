#!/usr/bin/env bash
# bench/sqlsmith.sh: random SQL from sqlsmith against tinytemp (not part of
# the test suite).
#
# Starts a throwaway cluster in .tinytemp/smith with the background worker
# preloaded, installs tinytemp in database "smith", puts jobs in every state
# there through the SQL API (succeeded, failed, pending after a failed
# attempt, delayed, waiting on a dependency, running with a checkpoint,
# cancelled, a gang assigned by the planner) and trains a second predictor
# model, then lets sqlsmith run random queries, as a member of tinytemp_admin
# (every API function and table, but not a superuser), with a statement timeout.  At the
# end it prints the statements run, how many failed and the server crashes
# (backends "terminated by signal" in the server log), with the query that
# crashed each time.  Exits non-zero when the server crashed.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1   use the tinytemp already installed (no apt, no make)
#   SMITH_PRIVATE=1         leave the system's PostgreSQL alone: build the committed
#                           HEAD into a private copy of PostgreSQL 15 in /tmp (which
#                           finds its share and lib directories next to its bindir),
#                           for a machine where others install their work in progress
#   SMITH_QUERIES=N         queries to generate (default 20000)
#   SMITH_SECONDS=S         stop sqlsmith after S seconds anyway (default 900)
#   SMITH_SEED=N            sqlsmith's random seed (default 1)
#   SMITH_PORT=N            port of the throwaway cluster (default 54350)
#   SMITH_KEEP=1            leave the cluster running at the end
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

PORT=${SMITH_PORT:-54350}
QUERIES=${SMITH_QUERIES:-20000}
SECONDS_MAX=${SMITH_SECONDS:-900}
SEED=${SMITH_SEED:-1}
DB=smith
CLUSTER=smith

PRIVATE_ROOT=
cleanup() {
	if [ "${SMITH_KEEP:-0}" != 1 ]; then
		tt_cluster_stop $CLUSTER
		[ -z "$PRIVATE_ROOT" ] || rm -rf "$PRIVATE_ROOT"
	fi
}
trap cleanup EXIT

if [ "${SMITH_PRIVATE:-0}" = 1 ]; then
	tt_ensure_packages
	PRIVATE_ROOT=$(mktemp -d /tmp/tinytemp-smith-pg.XXXXXX)
	chmod 755 "$PRIVATE_ROOT"
	tt_log "building HEAD into a private PostgreSQL in $PRIVATE_ROOT"
	mkdir -p "$PRIVATE_ROOT/usr/lib/postgresql" "$PRIVATE_ROOT/usr/share/postgresql" "$PRIVATE_ROOT/src"
	cp -a "$(cd "$TT_PGBIN/.." && pwd)" "$PRIVATE_ROOT/usr/lib/postgresql/"
	cp -a "$($TT_PGBIN/pg_config --sharedir)" "$PRIVATE_ROOT/usr/share/postgresql/"
	git -C "$TT_REPO" archive HEAD | tar -x -C "$PRIVATE_ROOT/src"
	make -C "$PRIVATE_ROOT/src" -s -j2 PG_CONFIG=$TT_PGBIN/pg_config
	make -C "$PRIVATE_ROOT/src" -s install PG_CONFIG=$TT_PGBIN/pg_config DESTDIR="$PRIVATE_ROOT"
	TT_PGBIN=$PRIVATE_ROOT$TT_PGBIN
elif [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
tt_ensure_packages sqlsmith

tt_log "starting a throwaway cluster in .tinytemp/$CLUSTER"
tt_cluster_start "$CLUSTER" "$PORT" "tinytemp.database = '$DB'
tinytemp.naptime = '200ms'
fsync = off
synchronous_commit = off"
$TT_PGBIN/createdb "$DB"
tt_cluster_restart "$CLUSTER"
export PGDATABASE=$DB
LOG=$(tt_datadir "$CLUSTER")/server.log

psql() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

tt_log "installing tinytemp and putting jobs in every state"
psql >/dev/null <<'SQL'
CREATE EXTENSION tinytemp;
SELECT tinytemp_register_worker('gpu-1', 32, 256000, 4, 'a100');
SELECT tinytemp_register_worker('gpu-2', 32, 256000, 4, 'a100');
SELECT tinytemp_register_worker('cpu-1', 8, 32000);

-- succeeded
SELECT tinytemp_enqueue('evaluation', 'resnet50', '{"split": "val"}', dataset_size => 50000,
                        cpus => 4, memory_mb => 8000, tenant => 'vision');
SELECT tinytemp_heartbeat(j.id, 3, '{"done": 0.5}') FROM tinytemp_claim(3) j;
SELECT tinytemp_ack(id, 3, '{"top1": 0.758}') FROM tinytemp.jobs WHERE state = 'running';
-- failed for good: the dead-letter queue
SELECT tinytemp_enqueue('data-processing', params => '{"shards": 16}', cpus => 2, memory_mb => 4000,
                        max_attempts => 1, tenant => 'nlp');
SELECT tinytemp_fail(j.id, 3, 'OOM: killed') FROM tinytemp_claim(3) j;
-- pending again after a failed attempt, waiting out its backoff
SELECT tinytemp_enqueue('training', 'bert-base', '{"lr": 3e-5}', dataset_size => 100000, epochs => 3,
                        batch_size => 32, cpus => 4, memory_mb => 16000, max_attempts => 5);
SELECT tinytemp_fail(j.id, 3, 'CUDA error: an illegal memory access', true) FROM tinytemp_claim(3) j;
-- running, with progress and a checkpoint
SELECT tinytemp_enqueue('training', 'resnet50', '{"lr": 0.1}', priority => 5, dataset_size => 1281167,
                        epochs => 90, batch_size => 256, cpus => 8, memory_mb => 64000, gpus => 2,
                        gpu_type => 'a100', tenant => 'vision');
SELECT tinytemp_checkpoint(j.id, 1, '{"epoch": 3, "path": "/ckpt/3"}') FROM tinytemp_claim(1) j;
-- cancelled: one while pending, one while running
SELECT tinytemp_cancel(tinytemp_enqueue('inference', 'gpt2', dataset_size => 1000, cpus => 1, memory_mb => 2000));
SELECT tinytemp_enqueue('inference', 'vit-b16', dataset_size => 20000, cpus => 2, memory_mb => 4000,
                        gpus => 1, gpu_type => 'a100');
SELECT tinytemp_cancel(j.id) FROM tinytemp_claim(2) j;
-- a gang of two, which the planner assigns to the two GPU nodes
SELECT tinytemp_enqueue('training', 'llama-7b', dataset_size => 10000000, epochs => 1, batch_size => 8,
                        cpus => 16, memory_mb => 128000, gpus => 2, gpu_type => 'a100', gang_size => 2);
SELECT tinytemp_schedule();
-- pending: ready, delayed, and a pipeline waiting on its first step
SELECT tinytemp_enqueue('evaluation', 'bert-base', dataset_size => 5000, cpus => 2, memory_mb => 4000,
                        queue => 'nightly', run_after => now() + interval '1 day');
SELECT tinytemp_enqueue('evaluation', 'bert-base', dataset_size => 5000, cpus => 2, memory_mb => 4000,
                        depends_on => ARRAY[tinytemp_enqueue('data-processing', cpus => 1, memory_mb => 1000,
                                                             runtime_estimate_s => 60)]);
-- one that fits no worker
SELECT tinytemp_enqueue('training', 'huge', gpus => 64, placement_timeout => interval '1 hour');

-- a second predictor model, trained from a table
CREATE TABLE synth AS SELECT * FROM tinytemp_synthetic_jobs(500, 3);
SELECT tinytemp_train_predictor('synth');

-- sqlsmith's role: tinytemp's admin (every API function, every table), not a superuser
CREATE ROLE smith LOGIN IN ROLE tinytemp_admin;
GRANT USAGE ON SCHEMA tinytemp TO smith;
GRANT ALL ON ALL TABLES IN SCHEMA tinytemp TO smith;
GRANT ALL ON ALL SEQUENCES IN SCHEMA tinytemp TO smith;
GRANT ALL ON synth TO smith;
ALTER ROLE smith SET statement_timeout = '2s';
ALTER ROLE smith SET lock_timeout = '1s';
SQL
echo "jobs: $(psql -c "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
                       FROM (SELECT state, count(*) n FROM tinytemp.jobs GROUP BY state) s")"
echo "predictor models: $(psql -c 'SELECT count(*) FROM tinytemp.predictor_models')"

tt_log "sqlsmith: $QUERIES queries (at most ${SECONDS_MAX}s), seed $SEED"
out=$TT_STATE/$CLUSTER-sqlsmith.log
crashes_before=$(grep -c 'terminated by signal' "$LOG" || true)
start=$(date +%s)
set +e
timeout "$SECONDS_MAX" sqlsmith --verbose --seed="$SEED" --max-queries="$QUERIES" \
	--target="host=$PGHOST port=$PGPORT dbname=$DB user=smith" >"$out" 2>&1
rc=$?
set -e
elapsed=$(($(date +%s) - start))

# sqlsmith's last report: "queries: N (...)" and then "COUNT<TAB>message" per kind of error.
report=$(tr '\r' '\n' <"$out" | awk '/^queries: /{buf=""; last=$0; next} {buf = buf $0 "\n"} END{printf "%s\n%s", last, buf}')
statements=$(printf '%s\n' "$report" | sed -nE '1s/^queries: ([0-9]+).*/\1/p')
errors=$(printf '%s\n' "$report" | awk -F'\t' 'NR > 1 && $1 ~ /^[0-9]+$/ {n += $1} END{print n + 0}')
crashes=$(($(grep -c 'terminated by signal' "$LOG" || true) - crashes_before))
closed=$(printf '%s\n' "$report" | awk -F'\t' 'NR > 1 && /server closed the connection/ {n += $1} END{print n + 0}')

tt_log "sqlsmith finished in ${elapsed}s (exit status $rc)"
echo "errors by kind (the most frequent first):"
printf '%s\n' "$report" | awk -F'\t' 'NR > 1 && $1 ~ /^[0-9]+$/' | sort -rn | awk 'NR <= 15 {print "  " $0}'
if [ "$crashes" -gt 0 ]; then
	echo "server crashes, with the query that was running:"
	grep -A1 'terminated by signal' "$LOG" | awk 'NR <= 40 {print "  " $0}'
fi
echo "jobs afterwards: $(psql -c "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
                               FROM (SELECT state, count(*) n FROM tinytemp.jobs GROUP BY state) s")"
echo
echo "statements: ${statements:-0}, errors: $errors, server crashes: $crashes" \
	"(connections closed by the server: $closed)"
[ "$crashes" = 0 ]

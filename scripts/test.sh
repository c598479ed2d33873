#!/usr/bin/env bash
# scripts/test.sh: the whole test suite on a throwaway cluster.
#
# Installs what is missing, builds and installs tinytemp, starts a cluster in
# .tinytemp/test with the background worker preloaded, then runs pg_regress
# (sql/, expected/), the isolation specs (test/isolation), the pgTAP suites
# (test/pgtap) and the real-process tests (test/process).  Prints one line
# "N passed, N failed" and exits non-zero on any failure.  The cluster is
# always stopped.
set -u
source "$(dirname "$0")/lib.sh"
cd "$TT_REPO"

TT_DB=tinytemp_regress
PORT=${TINYTEMP_TEST_PORT:-54330}
CLUSTER=${TINYTEMP_TEST_CLUSTER:-test}
passed=0
failed=0
runner_failed=0

# add_counts LOG OK_REGEX FAIL_REGEX: add a runner's results to the totals.
add_counts() {
	local ok bad
	ok=$(grep -cE "$2" "$1")
	bad=$(grep -cE "$3" "$1")
	passed=$((passed + ok))
	failed=$((failed + bad))
}

if ! tt_ensure_packages || ! worker_client/handlers/pipeline/setup.sh || ! tt_build_install; then
	echo "the set-up failed: nothing was tested"
	echo "0 passed, 1 failed"
	exit 1
fi

trap 'tt_cluster_stop $CLUSTER' EXIT
tt_log "starting a throwaway cluster"
# The metrics server of the suite's cluster (test/process/metrics_counts.sh).
export TINYTEMP_METRICS_PORT=${TINYTEMP_METRICS_PORT:-54339}
tt_cluster_start "$CLUSTER" "$PORT" "tinytemp.database = '$TT_DB'
tinytemp.metrics_address = '127.0.0.1:$TINYTEMP_METRICS_PORT'
tinytemp.naptime = '200ms'
tinytemp.retrain_after = 50
tinytemp.retrain_interval = 0
fsync = off
synchronous_commit = off" || exit 1
$TT_PGBIN/createdb "$TT_DB"
# The background worker connects to its database at start: restart now that it exists.
tt_cluster_restart "$CLUSTER"
export PGDATABASE=$TT_DB
logs=$TT_STATE/$CLUSTER-logs
rm -rf "$logs"
mkdir -p "$logs"

tt_log "pg_regress"
rm -rf results regression.diffs regression.out
make -s installcheck PG_CONFIG=$TT_PGBIN/pg_config 2>&1 | tee "$logs/regress.log"
[ "${PIPESTATUS[0]}" = 0 ] || { runner_failed=1; cat regression.diffs 2>/dev/null; }
add_counts "$logs/regress.log" '\.\.\. ok' '\.\.\. FAILED|\.\.\. failed'

$TT_PGBIN/psql -qX -c 'CREATE EXTENSION IF NOT EXISTS tinytemp' -c 'CREATE EXTENSION IF NOT EXISTS pgtap'

tt_log "isolation specs"
specs=$(cd test/isolation/specs && ls *.spec | sed 's/\.spec$//')
$TT_PGBIN/../lib/pgxs/src/test/isolation/pg_isolation_regress \
	--use-existing --dbname="$TT_DB" --bindir=$TT_PGBIN \
	--inputdir=test/isolation --outputdir="$logs/isolation" $specs 2>&1 | tee "$logs/isolation.log"
[ "${PIPESTATUS[0]}" = 0 ] || { runner_failed=1; cat "$logs/isolation/regression.diffs" 2>/dev/null; }
add_counts "$logs/isolation.log" '\.\.\. ok' '\.\.\. FAILED|\.\.\. failed'

if compgen -G 'test/pgtap/*.sql' >/dev/null; then
	tt_log "pgTAP suites"
	pg_prove --verbose -d "$TT_DB" test/pgtap/*.sql > "$logs/pgtap.log" 2>&1
	rc=$?
	grep -E '^not ok|^# |Failed|Result' "$logs/pgtap.log"
	[ $rc = 0 ] || runner_failed=1
	add_counts "$logs/pgtap.log" '^ok [0-9]+' '^not ok [0-9]+'
fi

if compgen -G 'test/process/*.sh' >/dev/null; then
	tt_log "real-process tests"
	for t in test/process/*.sh; do
		bash "$t" > "$logs/$(basename "$t").log" 2>&1
		rc=$?
		cat "$logs/$(basename "$t").log"
		[ $rc = 0 ] || runner_failed=1
		add_counts "$logs/$(basename "$t").log" '^ok [0-9]+' '^not ok [0-9]+'
	done
fi

# A runner that failed without a failing test (a crash, a bad spec) still fails the run.
if [ $runner_failed = 1 ] && [ $failed = 0 ]; then failed=1; fi
echo
echo "$passed passed, $failed failed"
[ $failed = 0 ]

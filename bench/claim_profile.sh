#!/usr/bin/env bash
# bench/claim_profile.sh: instructions per operation on tinytemp's hot path
# (enqueue, claim+ack, claim 8 + ack_many 8), side by side with the plain
# SKIP LOCKED queue of bench/queue/, counted by valgrind's callgrind.
#
# Instruction counts repeat from run to run on a shared, noisy machine, where
# timings do not: this is the figure to compare before and after a change to
# the hot path.
#
# How: PostgreSQL runs in single-user mode (`postgres --single`, one statement
# per line, each its own transaction, as pgbench sends them) under callgrind.
# A run's count is its total less the inclusive costs of InitPostgres and
# ShutdownXLOG, so the connection's start-up and the shutdown checkpoint are
# not counted (the rest of start-up, about 45 M, is the same in every run and
# cancels out in the differences); callgrind's --toggle-collect cannot be
# used instead, exec_simple_query being static and the binary stripped.
# Every run starts from a copy of the same data directory (extension created, plain schema loaded, one worker
# registered), and each contender runs five scripts:
#
#   E0  prepare the enqueue, 16 enqueues (warm-up: caches, plans)
#   E1  E0 + N enqueues                          enqueue      = (E1 - E0) / N
#   W   from queues of N + 16 jobs (filled outside valgrind): prepare the
#       claim and ack statements, 8 claim+ack, one claim 8 + ack 8
#   C   W + N x (claim 1; ack 1)                 claim+ack    = (C - W) / N
#   D   W + N/8 x (claim 8; ack the 8 at once)   batch, /job  = (D - W) / N
#
# The statements are those of bench/queue/*.sql, prepared and executed as
# pgbench -M prepared runs them, pgbench's variables given as the ids the
# claims return (the queues hand out jobs in id order; a wrong guess would
# fail an ack, and the script checks that every job it acked is done).  The
# top functions of the claim+ack phase are per-function differences C - W of
# callgrind_annotate's inclusive and self costs, divided by N.
#
# Figures are averages over the N jobs: nothing vacuums in single-user mode
# (no autovacuum), so the finished rows stay in the tables, as they do between
# autovacuum's passes in production; a cost that grows with them shows as a
# per-job figure that grows with N.
#
# Other differences from production: no background worker runs in
# single-user mode, so tinytemp_enqueue sends its own NOTIFY (Async_Notify,
# PreCommit_Notify) instead of flagging the background worker; the profile
# shows what that costs (about 2,500 Ir).  The statements come on stdin, not
# over a socket, and are all the superuser's.  The postgres binary is
# stripped: its static functions show as addresses.
#
# Environment:
#   TINYTEMP_SKIP_BUILD=1     use the tinytemp already installed (no apt, no make)
#   BENCH_PROFILE_JOBS=N      jobs per phase (default 2000; rounded up to a multiple of 8)
#   BENCH_PROFILE_TOP=N       functions listed (default 15)
#   BENCH_PORT=N              port of the throwaway cluster used for the set-up (default 54398)
#   BENCH_PROFILE_KEEP=1      keep the callgrind files (in .tinytemp/profile-logs)
set -eu -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

N=${BENCH_PROFILE_JOBS:-2000}
N=$(( (N + 7) / 8 * 8 ))
TOP=${BENCH_PROFILE_TOP:-15}
PORT=${BENCH_PORT:-54398}
KEEP=${BENCH_PROFILE_KEEP:-0}
NAME=profile
DB=bench
SCRIPTS=$BENCH_DIR/queue
LOGS=$TT_STATE/profile-logs
T_START=$(date +%s)

if [ "${TINYTEMP_SKIP_BUILD:-0}" != 1 ]; then
	tt_ensure_packages
	tt_build_install
fi
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null \
	|| { echo "claim_profile: valgrind and callgrind_annotate are needed (apt-get install valgrind)" >&2; exit 1; }

WORK=
cleanup() {
	tt_cluster_stop "$NAME"
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# --- the template data directory ------------------------------------------
tt_log "template cluster (port $PORT): extension, plain schema, one worker"
tt_cluster_start "$NAME" "$PORT"
EMPTY=$TT_DIR
export PGDATABASE=$DB
$TT_PGBIN/createdb "$DB"
psql_q() { $TT_PGBIN/psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
psql_q -c 'CREATE EXTENSION tinytemp' -f "$SCRIPTS/plain_schema.sql"
# The worker of bench/queue/tinytemp_*.sql, registered as the superuser.
W=$(PGOPTIONS='-c client_min_messages=error' psql_q -c "SELECT tinytemp_register_worker('bench-1', 1000000, 1000000000)")
next_id() {
	psql_q -c "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
			   FROM $(psql_q -c "SELECT pg_get_serial_sequence('$1', 'id')")"
}
TT_FIRST=$(next_id tinytemp.jobs)
PLAIN_FIRST=$(next_id plain_jobs)
psql_q -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
VERSION=$(psql_q -c 'SELECT version()')
EXTVER=$(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'tinytemp'")
tt_cluster_stop "$NAME"

WORK=$(mktemp -d /tmp/tinytemp-profile.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown "$TT_OS_USER" "$WORK"
rm -rf "$LOGS"
mkdir -p "$LOGS"

# --- the scripts -------------------------------------------------------------
# oneline FILE: the statements of a pgbench script, one per line: comments,
# \if blocks (the worker is registered already) and \gset dropped.
oneline() {
	awk '
		/^[ \t]*--/ { next }
		/^\\if/ { skip = 1; next }
		/^\\endif/ { skip = 0; next }
		skip { next }
		{
			sub(/[ \t]*--.*$/, "")
			gsub(/^[ \t]+/, " ")
			s = s (s == "" ? "" : " ") $0
			if (s ~ /\\gset[ \t]*$/ || s ~ /;[ \t]*$/) {
				sub(/[ \t]*\\gset[ \t]*$/, "", s); sub(/^ +/, "", s)
				print s; s = ""
			}
		}
		END { if (s != "") print s }' "$1"
}

# emit FILE COUNT FIRST_ID STEP [MODE]: the statements of FILE, COUNT times,
# pgbench's variables filled in: :w the worker, :client_id 1, :id the job
# the claim before took (FIRST_ID, then one more each time), :id1..:id8 and
# :ids the STEP jobs a batch claim took.  MODE prepare: a PREPARE for each
# statement of FILE, the job ids its parameters (what pgbench -M prepared
# does); MODE execute: COUNT times an EXECUTE of each; MODE literal
# (default): the statements themselves.
emit() {
	oneline "$1" | awk -v count="$2" -v first="$3" -v step="$4" -v mode="${5:-literal}" \
		-v tag="$(basename "$1" .sql)" -v w="$W" '
		{ st[++n] = $0 }
		function kind(s) { return s ~ /:ids/ ? "ids" : s ~ /:id1/ ? "id8" : s ~ /:id/ ? "id" : "" }
		END {
			if (mode == "prepare") {
				for (j = 1; j <= n; j++) {
					s = st[j]; k = kind(s); types = ""
					gsub(/:client_id/, "1", s); gsub(/:w/, w, s)
					if (k == "ids") { gsub(/:ids/, "$1", s); types = "(bigint[])" }
					if (k == "id8") {
						for (m = 8; m >= 1; m--) gsub(":id" m, "$" m, s)
						types = "(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint)"
					}
					if (k == "id") { gsub(/:id/, "$1", s); types = "(bigint)" }
					sub(/;[ \t]*$/, "", s)
					print "PREPARE " tag "_" j types " AS " s
				}
				exit
			}
			for (i = 0; i < count; i++) {
				base = first + i * step
				ids = ""
				for (m = 0; m < step; m++) ids = ids (m ? "," : "") (base + m)
				for (j = 1; j <= n; j++) {
					s = st[j]
					if (mode == "execute") {
						k = kind(s); args = ""
						if (k == "ids") args = "('"'"'{" ids "}'"'"')"
						if (k == "id8") args = "(" ids ")"
						if (k == "id") args = "(" base ")"
						print "EXECUTE " tag "_" j args
						continue
					}
					gsub(/:ids/, "'"'"'{" ids "}'"'"'", s)
					for (m = 8; m >= 1; m--) gsub(":id" m, base + m - 1, s)
					gsub(/:id/, base, s)
					gsub(/:client_id/, "1", s)
					gsub(/:w/, w, s)
					print s
				}
			}
		}'
}

# scripts CONTENDER FIRST_ID: writes $WORK/CONTENDER_{E0,E1,W,C,D}.sql.  Each
# run prepares its statements in its warm-up (E0, W), as pgbench -M prepared
# does at a client's first use.
scripts() {
	local c=$1 first=$2 enq claim batch
	enq=$SCRIPTS/${c}_enqueue.sql
	claim=$SCRIPTS/${c}_claim_ack.sql
	batch=$SCRIPTS/${c}_claim8_ackmany.sql
	emit "$enq" $((N + 16)) 0 1 > "$WORK/${c}_fill.sql"
	{ emit "$enq" 0 0 1 prepare; emit "$enq" 16 0 1 execute; } > "$WORK/${c}_E0.sql"
	{ cat "$WORK/${c}_E0.sql"; emit "$enq" "$N" 0 1 execute; } > "$WORK/${c}_E1.sql"
	{
		emit "$claim" 0 0 1 prepare
		emit "$batch" 0 0 8 prepare
		emit "$claim" 8 "$first" 1 execute
		emit "$batch" 1 $((first + 8)) 8 execute
	} > "$WORK/${c}_W.sql"
	{ cat "$WORK/${c}_W.sql"; emit "$claim" "$N" $((first + 16)) 1 execute; } > "$WORK/${c}_C.sql"
	{ cat "$WORK/${c}_W.sql"; emit "$batch" $((N / 8)) $((first + 16)) 8 execute; } > "$WORK/${c}_D.sql"
}
scripts tinytemp "$TT_FIRST"
scripts plain "$PLAIN_FIRST"
chmod 644 "$WORK"/*.sql

# --- the runs --------------------------------------------------------------
single_user() {		# DATADIR [postgres options]: single-user backend, statements on stdin
	local dir=$1
	shift
	tt_as_owner "$@" $TT_PGBIN/postgres --single -D "$dir" -c shared_preload_libraries=tinytemp \
		-c huge_pages=off -c log_min_messages=warning "$DB"
}

FN_AWK='/^ *[0-9,]+ +(\([^)]*\) +)?[^ ]*:/ {
	ir = $1; gsub(",", "", ir)
	sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "")
	print k "|" ir "|" $0
}'
# annotate FILE: "I|inclusive Ir|function" and "S|self Ir|function" for
# every function callgrind_annotate lists, and "summary|total Ir".
annotate() {
	local f=$1
	sed -n 's/^summary: *\([0-9]*\).*/summary|\1/p' "$f"
	callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null \
		| awk -v k=I "$FN_AWK"
	callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null \
		| awk -v k=S "$FN_AWK"
}

# profile CONTENDER PHASE EXPECTED_DONE: one run under callgrind; prints its total Ir.
profile() {
	local c=$1 p=$2 want=$3 run=$WORK/data-$1-$2 out log got errors from=$EMPTY
	out=$WORK/$c-$p.callgrind
	log=$LOGS/$c-$p.log
	case $p in W|C|D) from=$FILLED ;; esac
	tt_as_owner cp -a "$from" "$run"
	single_user "$run" valgrind --tool=callgrind --callgrind-out-file="$out" \
		< "$WORK/${c}_$p.sql" > "$log" 2>&1
	errors=$(grep -c -E '^(ERROR|FATAL|PANIC)|ERROR:' "$log" || true)
	[ "$errors" = 0 ] || { echo "claim_profile: $c $p: errors, see $log:" >&2; grep -m5 ERROR "$log" >&2; exit 1; }
	# The jobs the script acked must all be done, none left running.
	if [ "$c" = tinytemp ]; then
		got=$(echo "SELECT count(*) FILTER (WHERE state = 'succeeded') || '/' || count(*) FILTER (WHERE state = 'running') FROM tinytemp.jobs" \
			| single_user "$run" 2>&1 | sed -n 's/.*?column? = "\([0-9/]*\)".*/\1/p')
	else
		got=$(echo "SELECT count(*) FILTER (WHERE state = 'done') || '/' || count(*) FILTER (WHERE state = 'running') FROM plain_jobs" \
			| single_user "$run" 2>&1 | sed -n 's/.*?column? = "\([0-9/]*\)".*/\1/p')
	fi
	[ "$got" = "$want/0" ] || { echo "claim_profile: $c $p: $got jobs done/running, expected $want/0 (see $log)" >&2; exit 1; }
	rm -rf "$run"
	if [ "$KEEP" = 1 ]; then cp "$out" "$LOGS/"; fi
	annotate "$out" > "$out.fn"
	awk -F'|' '
		/^summary\|/ { total = $2 }
		/^I\|/ && $3 ~ /:(InitPostgres|ShutdownXLOG) / { total -= $2 }
		END { printf "%.0f\n", total }' "$out.fn"
}

# The queues the claim runs start from: N + 16 jobs in each, enqueued by the
# statements of the enqueue runs, one per transaction, outside valgrind.
FILLED=$WORK/filled
tt_as_owner cp -a "$EMPTY" "$FILLED"
cat "$WORK/tinytemp_fill.sql" "$WORK/plain_fill.sql" | single_user "$FILLED" > "$LOGS/fill.log" 2>&1
if grep -q -E 'ERROR|FATAL' "$LOGS/fill.log"; then
	echo "claim_profile: filling the queues failed, see $LOGS/fill.log" >&2
	exit 1
fi

declare -A IR
tt_log "callgrind runs, N = $N jobs per phase"
for c in tinytemp plain; do
	for p in E0 E1 W C D; do
		case $p in
			E0|E1) want=0 ;; W) want=16 ;; C|D) want=$((N + 16)) ;;
		esac
		t0=$(date +%s)
		IR[$c$p]=$(profile $c $p $want)
		printf '   %-9s %-2s  %15s Ir  (%d s)\n' "$c" "$p" "${IR[$c$p]}" $(( $(date +%s) - t0 ))
	done
done

# --- the results -------------------------------------------------------------
tt_log "results: instructions (Ir) per job, $VERSION, tinytemp $EXTVER"
awk -v n="$N" \
	-v te0="${IR[tinytempE0]}" -v te1="${IR[tinytempE1]}" -v tw="${IR[tinytempW]}" -v tc="${IR[tinytempC]}" -v td="${IR[tinytempD]}" \
	-v pe0="${IR[plainE0]}" -v pe1="${IR[plainE1]}" -v pw="${IR[plainW]}" -v pc="${IR[plainC]}" -v pd="${IR[plainD]}" '
	BEGIN {
		te = (te1 - te0) / n; pe = (pe1 - pe0) / n
		tca = (tc - tw) / n; pca = (pc - pw) / n
		tba = (td - tw) / n; pba = (pd - pw) / n
		f = "%-38s %14s %14s %9s\n"
		printf f, "operation", "tinytemp Ir", "plain Ir", "ratio"
		printf f, "---------", "-----------", "--------", "-----"
		printf "%-38s %14.0f %14.0f %9.2f\n", "enqueue (1 per statement)", te, pe, te / pe
		printf "%-38s %14.0f %14.0f %9.2f\n", "claim 1 + ack 1 (2 statements), per job", tca, pca, tca / pca
		printf "%-38s %14.0f %14.0f %9.2f\n", "claim 8 + ack_many 8, per job", tba, pba, tba / pba
		print ""
		printf "totals (Ir), runs E0 E1 W C D: tinytemp %s %s %s %s %s; plain %s %s %s %s %s\n", te0, te1, tw, tc, td, pe0, pe1, pw, pc, pd
		print "ratio = tinytemp / plain: above 1, tinytemp executes more instructions per job"
	}'

# fn_diff CONTENDER FROM TO: per function, (run TO - run FROM) / N:
# "I|inclusive Ir per job|function" and "S|self Ir per job|function".
fn_diff() {
	local c=$1 from=$2 to=$3
	{
		grep -v '^summary' "$WORK/$c-$from.callgrind.fn" | sed 's/^/F|/'
		grep -v '^summary' "$WORK/$c-$to.callgrind.fn" | sed 's/^/T|/'
	} | awk -F'|' -v n="$N" '
		{ key = $2 "|" $4; v[key] += ($1 == "T" ? $3 : -$3) }
		END { for (k in v) { split(k, a, "|"); printf "%s|%.0f|%s\n", a[1], v[k] / n, a[2] } }'
}

notify=$(fn_diff tinytemp E0 E1 | awk -F'|' '$1 == "I" && $3 ~ /:(Async_Notify|PreCommit_Notify|AtCommit_Notify) / { s += $2 } END { printf "%.0f", s }')
echo "of tinytemp's enqueue, its own NOTIFY (Async_Notify, PreCommit_Notify, AtCommit_Notify; sent by the"
echo "background worker instead when one serves the database): $notify Ir"

# What matters on the hot path: tinytemp's own code, SPI, the parser,
# planner and executor entry points, commit and WAL, NOTIFY, locks.
MATTERS='tinytemp\.so|tinytemp_|SPI_|exec_simple_query|pg_parse_query|raw_parser|parse_analyze|pg_analyze|pg_rewrite|pg_plan_quer|planner|GetCachedPlan|BuildCachedPlan|RevalidateCachedQuery|Executor(Start|Run|Finish|End)|ExecModifyTable|ExecInsert|ExecUpdate|ExecLockRows|heap_(insert|update|lock_tuple)|index_insert|index_getnext|CommitTransaction|RecordTransactionCommit|XLogInsert|XLogFlush|Async_Notify|PreCommit_Notify|AtCommit_Notify|LockAcquire|LockRelease|PortalRun|fmgr_security_definer|stringToNode|RelationBuildDesc|AcceptInvalidationMessages|CopyCachedPlan'
for c in tinytemp plain; do
	fn_diff "$c" W C > "$WORK/$c-phase.txt"
	tt_log "$c, claim 1 + ack 1: top $TOP functions by inclusive Ir per job (tinytemp, SPI, parser, planner, executor, commit)"
	# (not the hooks' wrappers, ExecutorRun = standard_ExecutorRun, nor callgrind's
	# recursion levels, name'2)
	grep '^I|' "$WORK/$c-phase.txt" | grep -E "$MATTERS" | grep -v -E ":Executor(Start|Run|Finish|End) |'[0-9]+ " | sort -t'|' -k2,2nr | awk -v top="$TOP" 'NR <= top' \
		| awk -F'|' '{ printf "%12s  %s\n", $2, $3 }' || true
	tt_log "$c, claim 1 + ack 1: top $TOP functions by self Ir per job"
	grep '^S|' "$WORK/$c-phase.txt" | sed "s/'[0-9]* / /" \
		| awk -F'|' '{ v[$3] += $2 } END { for (f in v) printf "S|%d|%s\n", v[f], f }' | sort -t'|' -k2,2nr | awk -v top="$TOP" 'NR <= top' \
		| awk -F'|' '{ printf "%12s  %s\n", $2, $3 }' || true
done
if [ "$KEEP" = 1 ]; then echo "callgrind files: $LOGS"; fi
echo "single-user logs: $LOGS; run time: $(( $(date +%s) - T_START )) s"

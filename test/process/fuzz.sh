#!/usr/bin/env bash
# test/process/fuzz.sh: a short libFuzzer run of each fuzz target (test/fuzz):
# the worker's JSON code, its handler config parser and the predictor's
# model loader, under AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Builds the fuzzers in a scratch directory, then runs each for
# FUZZ_SECONDS (default 20) on a scratch copy of its seed corpus: a crash,
# a leak, a sanitizer report, a failed check or an input slower than 10 s
# fails the test, and the input is kept in .tinytemp/fuzz-crashes/ to
# replay (./fuzz_json CRASH_FILE).  Needs no database (common.bash only
# reaches one when a test asks it to).
source "$(dirname "$0")/common.bash"

SECS=${FUZZ_SECONDS:-20}
FUZZ_DIR=$TT_REPO/test/fuzz
CRASHES=$TT_REPO/.tinytemp/fuzz-crashes
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
[ -x "$PG_CONFIG" ] || PG_CONFIG=pg_config

if ! make -s -C "$FUZZ_DIR" PG_CONFIG="$PG_CONFIG" OUT="$TMP/bin" >"$TMP/build.out" 2>&1; then
	tap 1 "build the fuzzers (clang, libclang-rt-14-dev)"
	sed 's/^/# /' "$TMP/build.out" | tail -30
	done_testing
	exit 1
fi
tap 0 "build the fuzzers (clang -fsanitize=fuzzer,address,undefined)"

for target in json config model; do
	fuzzer=fuzz_$target
	log=$TMP/$fuzzer.out
	mkdir -p "$TMP/corpus-$target" "$TMP/artifacts-$target"
	# New inputs go to the scratch corpus (the first directory); the seeds are only read.
	timeout $((SECS + 120)) "$TMP/bin/$fuzzer" -max_total_time="$SECS" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$TMP/artifacts-$target/" \
		"$TMP/corpus-$target" "$FUZZ_DIR/corpus/$target" >"$log" 2>&1
	rc=$?
	runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
	found=$(find "$TMP/artifacts-$target" -type f | wc -l)
	if [ $rc = 0 ] && [ "$found" = 0 ] && [ -n "$runs" ]; then
		tap 0 "$fuzzer: $runs executions, 0 crashes"
	else
		tap 1 "$fuzzer: ${runs:-?} executions, $found crashes (exit status $rc)"
		mkdir -p "$CRASHES"
		for f in "$TMP/artifacts-$target"/*; do
			[ -f "$f" ] || continue
			cp "$f" "$CRASHES/$fuzzer-$(basename "$f")"
			echo "# kept $CRASHES/$fuzzer-$(basename "$f") ($(wc -c <"$f") bytes)"
		done
		grep -E 'ERROR|SUMMARY|runtime error|fuzz_[a-z]+:|#[0-9]+ 0x' "$log" | head -30 | sed 's/^/# /'
	fi
done

done_testing

#!/bin/sh
# A short real handler for the crash and failover tests (not a test: the
# runner runs test/process/*.sh only).  Each run appends one line
# "JOB_ID ATTEMPT PID WORKER" to $TT_RUNLOG as it starts, so that a test can
# count the runs of each job independently of the database; then it works
# for TT_JOB_SECONDS (default 0.2) and prints its result.
printf '%s %s %s %s\n' "$TINYTEMP_JOB_ID" "$TINYTEMP_ATTEMPT" "$$" "$TINYTEMP_WORKER_NAME" >>"$TT_RUNLOG"
sleep "${TT_JOB_SECONDS:-0.2}"
printf '{"job": %s, "attempt": %s}\n' "$TINYTEMP_JOB_ID" "$TINYTEMP_ATTEMPT"

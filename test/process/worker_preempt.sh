#!/usr/bin/env bash
# Preemption: once the planner has marked a running job (preempt_requested_at),
# its heartbeat answers 'preempt'; the worker stops the handler (SIGTERM, as
# for cancel) and, once the handler has exited, saves its latest checkpoint
# with tinytemp_checkpoint, which puts the job back in the queue without
# using up an attempt.  The worker reports nothing else for that run, and
# the next run resumes from the checkpoint.  The planner's decision is made
# here by hand, with an UPDATE as superuser.
source "$(dirname "$0")/common.bash"
reset_db

# A handler that counts steps, prints a checkpoint line after each, resumes
# from TINYTEMP_CHECKPOINT and, on SIGTERM, prints a last checkpoint (marked
# "on_sigterm", after params.term_delay_s) and exits 143.  With params.wait_for
# it first waits for that file, then prints a checkpoint and the result at
# once, unless it resumes from a checkpoint.
cat > "$TMP/stepper.py" <<'PY'
#!/usr/bin/python3
import json, os, signal, sys, time

params = json.loads(os.environ.get("TINYTEMP_PARAMS") or "{}")
steps = int(params.get("steps", 20))
tick = float(params.get("tick_s", 0.2))
ckpt = json.loads(os.environ.get("TINYTEMP_CHECKPOINT") or "null")
step = ckpt["step"] if isinstance(ckpt, dict) and "step" in ckpt else 0
print("started with checkpoint " + json.dumps(ckpt, sort_keys=True), file=sys.stderr, flush=True)
stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
if params.get("wait_for") and ckpt is None:
    while not os.path.exists(params["wait_for"]):
        time.sleep(0.05)
    print(json.dumps({"checkpoint": {"step": steps}}), flush=True)
    step = steps
while step < steps:
    time.sleep(tick)
    if stop:
        time.sleep(float(params.get("term_delay_s", 0)))
        print(json.dumps({"checkpoint": {"step": step, "on_sigterm": True}}), flush=True)
        print(f"stopped by SIGTERM at step {step}", file=sys.stderr, flush=True)
        sys.exit(143)
    step += 1
    print(json.dumps({"checkpoint": {"step": step}}), flush=True)
print(json.dumps({"steps": steps, "resumed_from": ckpt}), flush=True)
PY
chmod +x "$TMP/stepper.py"

# events J: the job's history events that matter here, in order
events() {
	q -c "SELECT string_agg(event, ' ' ORDER BY id) FROM tinytemp.jobs_history
	      WHERE job_id = $1 AND event IN ('claimed', 'preempted', 'failed', 'acked')"
}

# 1. A job preempted mid-run goes back to the queue with the handler's last
# checkpoint, no attempt used and no failure written; the next run resumes.
# A 1.5 s lease: a heartbeat every 0.5 s.
PGOPTIONS='-c tinytemp.lease_timeout=1500ms' start_worker w --name pre-w \
	--handler "step=$TMP/stepper.py" --slots 1 --poll-interval 0.2 --kill-grace 5
w=$LAST_PID
j=$(q -c "SELECT tinytemp_enqueue('step', params => '{\"steps\": 25}', max_attempts => 3)")
wait_sql "SELECT state = 'running' AND (checkpoint->>'step')::int >= 3 FROM tinytemp.jobs WHERE id = $j" 20
tap $? "the job runs and has saved a checkpoint with a heartbeat"
bail_out
q -c "UPDATE tinytemp.jobs SET preempt_requested_at = tinytemp.now() WHERE id = $j"
wait_sql "SELECT count(*) > 0 FROM tinytemp.jobs_history WHERE job_id = $j AND event = 'preempted'" 15
tap $? "the job was preempted (a 'preempted' event)"
bail_out
wait_log w " job=$j preempted " 5
tap $? "the worker logged that it handed the job back"
grep -qE " job=$j preempt the scheduler preempts" "$TMP/w.log" &&
	grep -qE " job=$j stopping reason=preempt signal=SIGTERM" "$TMP/w.log"
tap $? "the heartbeat answered preempt and the handler got SIGTERM"
step=$(grep -E " job=$j stderr stopped by SIGTERM at step " "$TMP/w.log" | head -1 | sed -E 's/.* step ([0-9]+)$/\1/')
[ -n "$step" ] && [ "$step" -ge 3 ]
tap $? "the handler stopped on SIGTERM, at step ${step:-?}"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $j" 30
tap $? "the job finally succeeded"
is "$(events "$j")" "claimed preempted claimed acked" \
	"its history: claimed, preempted, claimed again, acked; no failure"
is "$(q -c "SELECT string_agg(detail->>'attempt', ' ' ORDER BY id) FROM tinytemp.jobs_history
            WHERE job_id = $j AND event = 'claimed'") $(q -c "SELECT attempts FROM tinytemp.jobs WHERE id = $j")" \
	"1 1 1" "the preemption used up no attempt: both runs were attempt 1"
is "$(qv s "$step" "SELECT result->'resumed_from' = jsonb_build_object('step', :'s'::int, 'on_sigterm', true)
                    FROM tinytemp.jobs WHERE id = $j")" t \
	"the next run resumed from the handler's last checkpoint, printed after SIGTERM"
grep -qE " job=$j stderr started with checkpoint \{\"on_sigterm\": true, \"step\": $step\}" "$TMP/w.log"
tap $? "the handler logged the checkpoint it resumed from"
is "$(q -c "SELECT preemptions || ' ' || (preempt_requested_at IS NULL) FROM tinytemp.jobs WHERE id = $j")" "1 true" \
	"the job counts one preemption, and the request was cleared"
is "$(grep -cE " job=$j (failed|acked|report-discarded|lease-lost|report-failed) " "$TMP/w.log")" 1 \
	"the worker reported once, the second run's ack, and lost nothing"

# 2. A handler that ends by itself just as the job is marked for
# preemption, before a heartbeat has told the worker: the checkpoint saved
# before its ack only saves (the worker never heard 'preempt'), the ack is
# taken, and the run counts as it finished.  A 30 s lease keeps heartbeats
# out of the way.
kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"
PGOPTIONS='-c tinytemp.lease_timeout=30s' start_worker race --name pre-race \
	--handler "step=$TMP/stepper.py" --slots 1 --poll-interval 0.2
w=$LAST_PID
j=$(qv f "$TMP/go" "SELECT tinytemp_enqueue('step', params => jsonb_build_object('steps', 4, 'wait_for', :'f'::text))")
wait_log race " job=$j started pid=" 10
tap $? "the job is running"
q -c "UPDATE tinytemp.jobs SET preempt_requested_at = tinytemp.now() WHERE id = $j"
touch "$TMP/go"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $j" 20
tap $? "the job succeeded"
is "$(events "$j")" "claimed acked" "its history: claimed, acked; a checkpoint before the worker heard 'preempt' does not hand the job back"
! grep -qE " job=$j report-discarded" "$TMP/race.log"
tap $? "no report of the run was refused"
is "$(grep -cE " job=$j (failed|acked) " "$TMP/race.log") $(q -c "SELECT attempts FROM tinytemp.jobs WHERE id = $j")" "1 1" \
	"one ack, from the only run"
is "$(q -c "SELECT checkpoint::text || ' ' || (preempt_requested_at IS NULL) FROM tinytemp.jobs WHERE id = $j")" '{"step": 4} true' \
	"the checkpoint was saved, and the ack cleared the preemption request"

# 3. The planner gives up waiting (tinytemp.preempt_grace) and puts the job
# back itself while the handler is still stopping: the worker's checkpoint
# is then refused (TT003) and it drops that run quietly.  A pass of the
# planner with no grace at all does it here; a 9 s lease puts heartbeats 3 s
# apart, and the handler takes 1.5 s to stop, so the checkpoint comes first.
kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"
PGOPTIONS='-c tinytemp.lease_timeout=9s' start_worker grace --name pre-grace \
	--handler "step=$TMP/stepper.py" --slots 1 --poll-interval 0.2
w=$LAST_PID
j=$(q -c "SELECT tinytemp_enqueue('step', params => '{\"steps\": 200, \"term_delay_s\": 1.5}')")
wait_sql "SELECT state = 'running' AND checkpoint IS NOT NULL FROM tinytemp.jobs WHERE id = $j" 15
tap $? "the job is running and has saved a checkpoint with a heartbeat"
saved=$(q -c "SELECT checkpoint FROM tinytemp.jobs WHERE id = $j")
q -c "UPDATE tinytemp.jobs SET preempt_requested_at = tinytemp.now() WHERE id = $j"
wait_log grace " job=$j stopping reason=preempt" 10
tap $? "the heartbeat answered preempt and the handler is stopping"
forced=
for ((i = 0; i < 40; i++)); do
	# The background worker's pass may hold the planner's lock: then "ran" is false.
	forced=$(q -c "SET tinytemp.preempt_grace = 0" -c "SELECT tinytemp_schedule()->>'preemptions_forced'")
	[ "$forced" = 0 ] || break
	sleep 0.05
done
is "$forced" 1 "a planner pass forced the job back"
wait_log grace " job=$j report-discarded .*does not hold job" 10
tap $? "the worker's checkpoint for the preempted run was refused (TT003) and dropped"
is "$(grep -cE " job=$j (failed|acked|preempted|report-retry|report-failed|lease-lost) " "$TMP/grace.log")" 0 \
	"nothing else was reported for that run"
is "$(q -c "SELECT string_agg(detail->>'forced', ' ') FROM tinytemp.jobs_history WHERE job_id = $j AND event = 'preempted'")" \
	true "one 'preempted' event, the planner's (forced)"
wait_log grace " job=$j stderr started with checkpoint $(printf '%s' "$saved" | sed 's/[{}]/\\&/g')\$" 10
tap $? "the next run got the last checkpoint saved with a heartbeat ($saved), not the refused one"
is "$(q -c "SELECT tinytemp_cancel($j)")" t "that run is cancelled"
wait_log grace " job=$j cancelled " 10
tap $? "and its handler stopped"
k=$(q -c "SELECT tinytemp_enqueue('step', params => '{\"steps\": 1}')")
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $k" 10
tap $? "the worker goes on with other jobs"

kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

done_testing

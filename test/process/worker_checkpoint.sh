#!/usr/bin/env bash
# Checkpoints: a handler's stdout line {"checkpoint": VALUE} makes the worker
# save VALUE with tinytemp_checkpoint (the latest, at most once per
# heartbeat, and always before the ack or the fail), and the next attempt
# gets it back.  The demo training handler fails after epoch 2 of its first
# attempt and the second resumes from there.  Such a line is neither
# progress nor the result.
source "$(dirname "$0")/common.bash"
reset_db

# key spelt with an escape: the worker compares keys as jsonb does
cat > "$TMP/ckio.sh" <<'SH'
#!/bin/sh
echo '{"step": 1}'
echo '{"check\u0070oint": {"n": 1}}'
sleep 2
echo '{"done": true}'
echo '{"checkpoint": {"n": 2}, "step": 2}'
SH
chmod +x "$TMP/ckio.sh"

PGOPTIONS='-c tinytemp.retry_backoff_base=100ms -c tinytemp.lease_timeout=1500ms' start_worker w --name ck-w \
	--config "$TT_REPO/worker_client/handlers.example.conf" --handler "ckio=$TMP/ckio.sh" \
	--slots 2 --poll-interval 0.2
w=$LAST_PID

# The training handler: attempt 1 fails after epoch 2, attempt 2 resumes.
train=$(q -c "SELECT tinytemp_enqueue('training', params => '{\"fail_attempts\": 1, \"fail_after_epoch\": 2}',
                                      epochs => 4, max_attempts => 3)")
wait_sql "SELECT state IN ('succeeded', 'failed') FROM tinytemp.jobs WHERE id = $train" 60
is "$(q -c "SELECT state || ' ' || attempts FROM tinytemp.jobs WHERE id = $train")" "succeeded 2" \
	"the training job succeeded at its second attempt"
bail_out
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $train AND event = 'failed'
            AND detail->>'attempt' = '1'")" 1 "attempt 1 failed"
case $(q -c "SELECT string_agg(detail::text, ' ') FROM tinytemp.jobs_history WHERE job_id = $train AND event = 'failed'") in
*"after epoch 2"*) tap 0 "after epoch 2, as params.fail_after_epoch says" ;;
*) tap 1 "after epoch 2, as params.fail_after_epoch says"
   q -c "SELECT detail FROM tinytemp.jobs_history WHERE job_id = $train AND event = 'failed'" | sed 's/^/#   /' ;;
esac
is "$(q -c "SELECT count(*) > 0 FROM tinytemp.jobs_history WHERE job_id = $train AND event = 'checkpointed'")" t \
	"the job's history has checkpointed events"
is "$(q -c "SELECT max(c.id) < min(f.id) FROM tinytemp.jobs_history c, tinytemp.jobs_history f
            WHERE c.job_id = $train AND c.event = 'checkpointed' AND c.detail->>'attempt' = '1'
              AND f.job_id = $train AND f.event = 'failed'")" t \
	"attempt 1 saved a checkpoint before its failure"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $train AND event = 'acked'
            AND detail->>'attempt' = '2'")" 1 "attempt 2 succeeded"
is "$(q -c "SELECT result->>'resumed_from_epoch' FROM tinytemp.jobs WHERE id = $train")" 2 \
	"its result says resumed_from_epoch 2"
is "$(q -c "SELECT (result->>'epochs') || ' ' || (result ? 'checkpoint') FROM tinytemp.jobs WHERE id = $train")" "4 false" \
	"the result is the result line, not a checkpoint line"
is "$(q -c "SELECT checkpoint->>'epoch' || ' ' || jsonb_array_length(checkpoint->'weights') FROM tinytemp.jobs WHERE id = $train")" \
	"4 17" "the job keeps the latest checkpoint, saved before the ack: epoch 4, 16 weights and the bias"
grep -qE " job=$train stderr resuming after epoch 2" "$TMP/w.log"
tap $? "the handler logged that it resumed after epoch 2"

# The protocol in detail: saved with a heartbeat while the job runs, not progress, not the result.
io=$(q -c "SELECT tinytemp_enqueue('ckio')")
wait_sql "SELECT state = 'running' AND checkpoint IS NOT NULL FROM tinytemp.jobs WHERE id = $io" 10
tap $? "a checkpoint is saved with a heartbeat while the job runs"
is "$(q -c "SELECT checkpoint::text || ' ' || coalesce(progress::text, '-') FROM tinytemp.jobs WHERE id = $io")" \
	'{"n": 1} {"step": 1}' "the checkpoint line's value is saved and the line is not progress"
wait_sql "SELECT state = 'succeeded' FROM tinytemp.jobs WHERE id = $io" 10
tap $? "the job succeeded"
is "$(q -c "SELECT result::text || ' ' || checkpoint::text FROM tinytemp.jobs WHERE id = $io")" \
	'{"done": true} {"n": 2}' "the result is the last line that is not a checkpoint; the last checkpoint is saved before the ack"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = $io AND event = 'checkpointed'")" 2 \
	"each checkpoint was saved once"

kill -TERM "$w"
wait_exit "$w" 15
is "$EXIT_STATUS" 0 "the worker exits 0 on SIGTERM"

done_testing

#!/usr/bin/env bash
# Three workers with the simulate handler share 300 jobs: each job succeeds
# exactly once, no job is ever claimed while another claim of it is open,
# and every worker drains and exits 0 on SIGTERM.
source "$(dirname "$0")/common.bash"
reset_db

for w in 1 2 3; do
	start_worker "w$w" --name "tp-w$w" --handler 'sim=simulate' --slots 4 \
		--cpus 64 --memory-mb 1000000 --poll-interval 1
	pids[w]=$LAST_PID
done
wait_sql "SELECT count(*) = 3 FROM tinytemp.workers WHERE state = 'active'" 15
tap $? "three workers registered"

# Three batches while the workers run, so that claims race with notifications.
for batch in 1 2 3; do
	q -c "SELECT count(tinytemp_enqueue('sim', params => jsonb_build_object('runtime_s', 0.01, 'n', g)))
	      FROM generate_series(1, 100) g" >/dev/null
	sleep 0.3
done

wait_sql "SELECT count(*) = 300 FROM tinytemp.jobs WHERE state = 'succeeded'" 45
tap $? "all 300 jobs succeeded"

is "$(q -c "SELECT count(*) FROM tinytemp.jobs WHERE attempts <> 1 OR state <> 'succeeded'")" 0 \
	"every job ran exactly one attempt"
is "$(q -c "SELECT count(*) FROM (SELECT job_id FROM tinytemp.jobs_history WHERE event = 'claimed'
            GROUP BY job_id HAVING count(*) <> 1) x")" 0 "every job was claimed exactly once"
is "$(q -c "SELECT count(*) FROM (SELECT job_id FROM tinytemp.jobs_history WHERE event = 'acked'
            GROUP BY job_id HAVING count(*) <> 1) x")" 0 "every job was acked exactly once"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs_history WHERE event NOT IN ('enqueued', 'claimed', 'acked')")" 0 \
	"no failure, expiry or requeue in the history"
# A claim must be followed by the end of that attempt by the same worker,
# never by another claim: claims of one job never overlap.
is "$(q -c "WITH e AS (
              SELECT job_id, event, worker_id,
                     lead(event) OVER w AS next_event, lead(worker_id) OVER w AS next_worker,
                     at, lead(at) OVER w AS next_at
              FROM tinytemp.jobs_history WINDOW w AS (PARTITION BY job_id ORDER BY id))
            SELECT count(*) FROM e WHERE event = 'claimed'
              AND (next_event IS DISTINCT FROM 'acked' OR next_worker IS DISTINCT FROM worker_id
                   OR next_at < at)")" 0 "history shows no overlapping claims"
is "$(q -c "SELECT count(DISTINCT worker_id) FROM tinytemp.jobs_history WHERE event = 'acked'")" 3 \
	"all three workers did work"
is "$(q -c "SELECT count(*) FROM tinytemp.jobs j JOIN tinytemp.jobs_history h
            ON h.job_id = j.id AND h.event = 'acked' WHERE h.worker_id IS DISTINCT FROM j.worker_id")" 0 \
	"each job's worker_id is the worker that acked it"

for w in 1 2 3; do kill -TERM "${pids[w]}"; done
all_zero=0
for w in 1 2 3; do
	wait_exit "${pids[w]}" 15
	[ "$EXIT_STATUS" = 0 ] || all_zero=1
done
tap $all_zero "the three workers drain and exit 0 on SIGTERM"

done_testing

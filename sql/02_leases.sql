-- Lease expiry by the running background worker (tinytemp.naptime = 200ms in
-- the test cluster), retry then dead letter, and a stale ack refused.
SET client_min_messages = warning;
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers RESTART IDENTITY;
SET tinytemp.lease_timeout = '1s';
SHOW tinytemp.lease_timeout;

SELECT count(*) AS schedulers FROM pg_stat_activity
WHERE backend_type = 'tinytemp scheduler' AND datname = current_database();

SELECT tinytemp_register_worker('flaky', 4, 4096);
SELECT tinytemp_enqueue('training', 'resnet18', max_attempts => 2);
SELECT id, attempts, lease_until - started_at AS lease FROM tinytemp_claim(1);

-- Wait for the background worker, at most 15 s.
CREATE FUNCTION pg_temp.wait_for_state(job bigint, wanted text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s text;
BEGIN
	FOR i IN 1..150 LOOP
		SELECT state INTO s FROM tinytemp.jobs WHERE id = job;
		EXIT WHEN s = wanted;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN s;
END
$$;

SELECT pg_temp.wait_for_state(1, 'pending');
SELECT state, worker_id, attempts, last_error FROM tinytemp.jobs;

-- The worker that lost the job may not report on it.
SELECT tinytemp_ack(1, 1);
SELECT tinytemp_heartbeat(1, 1);
SELECT tinytemp_fail(1, 1, 'too late');

-- Second and last attempt: its lease runs out too, and the job is dead-lettered.
SELECT id, attempts FROM tinytemp_claim(1);
SELECT pg_temp.wait_for_state(1, 'failed');
SELECT id, attempts, max_attempts, last_error FROM tinytemp.dead_letter;

SELECT event, worker_id, detail FROM tinytemp.jobs_history WHERE job_id = 1 ORDER BY id;

-- A heartbeat keeps the lease alive past its first term.
SET tinytemp.lease_timeout = '3s';
SELECT tinytemp_enqueue('inference');
SELECT id FROM tinytemp_claim(1);
SELECT pg_sleep(2);
SELECT tinytemp_heartbeat(2, 1);
SELECT pg_sleep(2);
SELECT tinytemp_heartbeat(2, 1);
SELECT state FROM tinytemp.jobs WHERE id = 2;
SELECT tinytemp_ack(2, 1);
SELECT state FROM tinytemp.jobs WHERE id = 2;

-- Diagnostic: tt_sql_claim_ack.sql without the two jobs_history inserts.
\set w 1000000 + :client_id
WITH c AS (
	SELECT id FROM tinytemp.jobs
	WHERE state = 'pending' AND run_after <= now() AND gang_size = 1
		AND cpus <= 1000000 AND memory_mb <= 1000000000 AND gpus <= 0
		AND (gpus = 0 OR gpu_type IS NULL OR gpu_type = NULL)
	ORDER BY priority DESC, id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
), u AS (
	UPDATE tinytemp.jobs j SET state = 'running', worker_id = :w,
		attempts = j.attempts + 1, started_at = now(), heartbeat_at = now(),
		lease_until = now() + make_interval(secs => 30.0), updated_at = now()
	FROM c WHERE j.id = c.id
	RETURNING j.*
) SELECT id, params FROM u \gset
UPDATE tinytemp.jobs SET state = 'succeeded', result = NULL, finished_at = now(),
	updated_at = now(), lease_until = NULL
WHERE id = :id AND worker_id = :w AND state = 'running';

-- Diagnostic: tinytemp's claim and ack statements (src/claim.c, src/jobs.c)
-- sent as plain SQL, without the C function layer (no SECURITY DEFINER
-- call, advisory lock, free-resources query, SPI or tuplestore).  The fit
-- test gets the values a worker with plenty free would pass.
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
), h AS (
	INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)
	SELECT id, 'claimed', :w, jsonb_build_object('attempt', attempts) FROM u
) SELECT id, params FROM u \gset
WITH u AS (
	UPDATE tinytemp.jobs SET state = 'succeeded', result = NULL, finished_at = now(),
		updated_at = now(), lease_until = NULL
	WHERE id = :id AND worker_id = :w AND state = 'running'
	RETURNING id, attempts, started_at
), h AS (
	INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)
	SELECT id, 'acked', :w, jsonb_build_object('attempt', attempts,
		'runtime_s', extract(epoch FROM now() - started_at))
	FROM u
) SELECT count(*) FROM u;

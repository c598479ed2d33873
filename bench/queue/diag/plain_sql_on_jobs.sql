-- Diagnostic: the plain queue's claim and ack statements run against
-- tinytemp.jobs (its width, indexes and CHECK constraints), no history.
\set w 1000000 + :client_id
UPDATE tinytemp.jobs
SET state = 'running', attempts = attempts + 1, worker_id = :w, started_at = now(),
	lease_until = now() + interval '30 s'
WHERE id = (
	SELECT id FROM tinytemp.jobs
	WHERE state = 'pending' AND run_after <= now()
	ORDER BY priority DESC, id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
RETURNING id, params \gset
UPDATE tinytemp.jobs SET state = 'succeeded', finished_at = now(), lease_until = NULL WHERE id = :id;

-- Plain-SQL queue claim+ack: claim the next ready job with SKIP LOCKED,
-- then mark it done, as two transactions.
UPDATE plain_jobs
SET state = 'running', attempts = attempts + 1, locked_by = 'bench-' || :client_id::text,
	locked_at = now()
WHERE id = (
	SELECT id FROM plain_jobs
	WHERE state = 'pending' AND run_at <= now()
	ORDER BY priority DESC, id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
RETURNING id, payload \gset
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id;

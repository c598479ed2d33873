-- Plain-SQL queue with the same batching as tinytemp's worker protocol:
-- claim up to 8 ready jobs in one transaction, mark them all done in one
-- UPDATE.  One pgbench transaction is 8 jobs and 2 commits.
WITH c AS (
	SELECT id FROM plain_jobs
	WHERE state = 'pending' AND run_at <= now()
	ORDER BY priority DESC, id
	LIMIT 8
	FOR UPDATE SKIP LOCKED
), u AS (
	UPDATE plain_jobs j
	SET state = 'running', attempts = j.attempts + 1, locked_by = 'bench-' || :client_id::text,
		locked_at = now()
	FROM c WHERE j.id = c.id
	RETURNING j.id, j.payload
)
SELECT array_agg(id) AS ids FROM u \gset
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = ANY (:ids::bigint[]);

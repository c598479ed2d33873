-- Plain-SQL queue batch variant: claim up to 8 ready jobs in one
-- transaction (the CTE form, so the LIMIT runs once), then mark each done
-- in its own transaction.  One pgbench transaction is 8 jobs.
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
SELECT a[1] AS id1, a[2] AS id2, a[3] AS id3, a[4] AS id4,
	   a[5] AS id5, a[6] AS id6, a[7] AS id7, a[8] AS id8
FROM (SELECT array_agg(id) AS a FROM u) c \gset
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id1;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id2;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id3;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id4;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id5;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id6;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id7;
UPDATE plain_jobs SET state = 'done', finished_at = now() WHERE id = :id8;

/* tinytemp--0.4--0.5.sql: the hot path's two new calls, a worker's report
 * and claim in one round trip, and a bulk enqueue */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.5'" to load this file. \quit

-- Ack the jobs that ended and claim the next ones: one call, one commit.
CREATE FUNCTION tinytemp_ack_and_claim(job_ids bigint[], worker_id bigint,
									   results jsonb[] DEFAULT NULL, max_jobs int DEFAULT 1)
RETURNS SETOF tinytemp.jobs
AS 'MODULE_PATHNAME', 'tinytemp_ack_and_claim'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp SET jit = off ROWS 1;

-- Enqueue a JSON array of jobs (keys: tinytemp_enqueue's argument names) in one statement.
CREATE FUNCTION tinytemp_enqueue_many(jobs jsonb)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'tinytemp_enqueue_many'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION tinytemp_ack_and_claim(bigint[], bigint, jsonb[], int),
	tinytemp_enqueue_many(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_ack_and_claim(bigint[], bigint, jsonb[], int)
	TO tinytemp_worker, tinytemp_admin;
GRANT EXECUTE ON FUNCTION tinytemp_enqueue_many(jsonb) TO tinytemp_submitter, tinytemp_admin;

-- Claims keep the cluster's capacity between calls; every change to the
-- workers tells them to read it again.
CREATE FUNCTION tinytemp.workers_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_table_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.workers_changed() FROM PUBLIC;
CREATE TRIGGER workers_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tinytemp.workers
	FOR EACH STATEMENT EXECUTE FUNCTION tinytemp.workers_changed();

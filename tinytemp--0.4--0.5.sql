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

-- The rules every state change keeps, as a row trigger instead of table
-- CHECKs: PostgreSQL reads and plans every CHECK of a table again for each
-- statement that writes it, which cost a claim and its ack a fifth of their
-- instructions; the trigger costs a few thousand a row (src/validate.c).
CREATE FUNCTION tinytemp.jobs_state_check() RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_jobs_state_check'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.jobs_state_check() FROM PUBLIC;
-- Named to fire after jobs_validate (triggers fire in name order), whose
-- errors about a request's own values come first, as they did before the CHECKs.
CREATE TRIGGER jobs_validate_state
	BEFORE INSERT OR UPDATE ON tinytemp.jobs
	FOR EACH ROW EXECUTE FUNCTION tinytemp.jobs_state_check();
ALTER TABLE tinytemp.jobs
	DROP CONSTRAINT jobs_state_check,
	DROP CONSTRAINT jobs_check,
	DROP CONSTRAINT jobs_check1,
	DROP CONSTRAINT jobs_check2,
	DROP CONSTRAINT jobs_check3,
	DROP CONSTRAINT jobs_check4,
	DROP CONSTRAINT jobs_check5,
	DROP CONSTRAINT jobs_runtime_estimate_s_check;

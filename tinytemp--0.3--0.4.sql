/* tinytemp--0.3--0.4.sql: callers' rights, tenants isolated by row-level
 * security, and dumps that restore */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.4'" to load this file. \quit

-- CALLERS' RIGHTS (src/access.c) --

-- The API's functions run as their caller: each checks what the caller may
-- do, and switches to the extension's owner itself, only to read and write
-- tinytemp's tables.  A caller's relation (tinytemp_train_predictor's
-- source) is read with the caller's rights, never the owner's.
ALTER FUNCTION tinytemp_register_worker(text, int, bigint, int, text, jsonb) SECURITY INVOKER;
ALTER FUNCTION tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text,
								int, int, text, text, timestamptz, bigint[], float8, interval)
	SECURITY INVOKER;
ALTER FUNCTION tinytemp_claim(bigint, int) SECURITY INVOKER;
ALTER FUNCTION tinytemp_ack(bigint, bigint, jsonb) SECURITY INVOKER;
ALTER FUNCTION tinytemp_ack_many(bigint[], bigint, jsonb[]) SECURITY INVOKER;
ALTER FUNCTION tinytemp_fail(bigint, bigint, text, boolean) SECURITY INVOKER;
ALTER FUNCTION tinytemp_heartbeat(bigint, bigint, jsonb) SECURITY INVOKER;
ALTER FUNCTION tinytemp_checkpoint(bigint, bigint, jsonb) SECURITY INVOKER;
ALTER FUNCTION tinytemp_cancel(bigint) SECURITY INVOKER;
ALTER FUNCTION tinytemp_retry(bigint) SECURITY INVOKER;
ALTER FUNCTION tinytemp_expire_leases() SECURITY INVOKER;
ALTER FUNCTION tinytemp_schedule() SECURITY INVOKER;
ALTER FUNCTION tinytemp_train_predictor(regclass) SECURITY INVOKER;

-- A worker incarnation belongs to the role that registered it: only a role
-- that acts for it may claim, report or re-register under its name.
-- Incarnations registered before 0.4 belong to no role: only admins act for them.
ALTER TABLE tinytemp.workers ADD COLUMN registered_by text;

-- Whether the current role acts for the tenant (or worker owner) called
-- name: it has the privileges of a role of that name, or it is an admin.
CREATE FUNCTION tinytemp.acts_for(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tinytemp_acts_for'
LANGUAGE C STABLE PARALLEL SAFE;

-- Whether the current role is a superuser or has tinytemp_admin's privileges.
CREATE FUNCTION tinytemp.is_admin()
RETURNS boolean
AS 'MODULE_PATHNAME', 'tinytemp_is_admin'
LANGUAGE C STABLE PARALLEL SAFE;

REVOKE ALL ON FUNCTION tinytemp.acts_for(text), tinytemp.is_admin() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp.acts_for(text), tinytemp.is_admin()
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

-- TENANTS (row-level security) --

-- A submitter reads its tenants' jobs; a worker role, the jobs that ran on
-- its workers; an admin, every job.  The SQL API applies the same rule to
-- what a role may change (enqueue for a tenant, cancel, report for a worker).
ALTER TABLE tinytemp.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_visible ON tinytemp.jobs
	USING (tinytemp.acts_for(tenant)
		   OR EXISTS (SELECT FROM tinytemp.workers w
					  WHERE w.id = worker_id AND tinytemp.acts_for(w.registered_by)));

-- A job's history is visible with the job; an admin also reads the history of deleted jobs.
ALTER TABLE tinytemp.jobs_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_history_visible ON tinytemp.jobs_history
	USING (tinytemp.is_admin() OR EXISTS (SELECT FROM tinytemp.jobs j WHERE j.id = job_id));

-- The views over jobs read them with the reader's rights, so the policies apply.
ALTER VIEW tinytemp.dead_letter SET (security_invoker = true);
ALTER VIEW tinytemp.queue_summary SET (security_invoker = true);

-- Why jobs wait depends on every tenant's jobs (shares, reservations,
-- higher classes): it is computed over all of them, and each reader sees
-- the rows of the jobs it may see.  The whole view is for admins.
ALTER VIEW tinytemp.pending_reasons RENAME TO pending_reasons_all;
REVOKE ALL ON tinytemp.pending_reasons_all FROM tinytemp_submitter;
CREATE VIEW tinytemp.pending_reasons AS
	SELECT * FROM tinytemp.pending_reasons_all WHERE tinytemp.acts_for(tenant);
REVOKE ALL ON tinytemp.pending_reasons FROM PUBLIC;
GRANT SELECT ON tinytemp.pending_reasons TO tinytemp_submitter, tinytemp_admin;

-- PREDICTOR --

-- Whatever changes the models (a training, an admin's statement, a
-- restore), every backend reloads the current one once it commits.
CREATE FUNCTION tinytemp.predictor_models_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_predictor_models_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.predictor_models_changed() FROM PUBLIC;
CREATE TRIGGER predictor_models_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tinytemp.predictor_models
	FOR EACH STATEMENT EXECUTE FUNCTION tinytemp.predictor_models_changed();

-- DUMPS --

-- pg_dump saves the rows of these tables and the state of their sequences;
-- pg_restore runs CREATE EXTENSION first, which trains the bootstrap model
-- (always version 1), so the dump leaves that one out.
SELECT pg_catalog.pg_extension_config_dump('tinytemp.predictor_models', 'WHERE version > 1');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.jobs_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.workers_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.predictor_models_version_seq', '');

-- Reservations name the jobs they hold room for, of every tenant: for admins.
REVOKE SELECT ON tinytemp.reservations FROM tinytemp_submitter;

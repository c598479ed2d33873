-- security.sql: no way from tinytemp's roles to the extension owner's rights.
-- The attack that made a tinytemp_admin superuser on 0.3 (a temp function
-- that runs ALTER ROLE ... SUPERUSER, in a temp view passed to
-- tinytemp_train_predictor), then the audit that keeps the whole class
-- closed: no function of the extension is SECURITY DEFINER, each fixes its
-- search_path, and callers' relations are read with the callers' rights.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(17);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

CREATE ROLE tt_sec_admin NOLOGIN IN ROLE tinytemp_admin;
CREATE ROLE tt_sec_submitter NOLOGIN IN ROLE tinytemp_submitter;
-- Temp objects of the roles below need TEMP on the database.
SELECT format('GRANT TEMP ON DATABASE %I TO tt_sec_admin, tt_sec_submitter', current_database()) \gexec

-- The attack, exactly as reported.
SET LOCAL ROLE tt_sec_admin;
CREATE FUNCTION pg_temp.escalate() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'ALTER ROLE tt_sec_admin SUPERUSER';
	RETURN 'training';
END
$$;
CREATE TEMP VIEW tt_sec_attack AS
	SELECT pg_temp.escalate() AS job_type, 'resnet'::text AS model, 1000::bigint AS dataset_size,
		   1 AS epochs, 32 AS batch_size, 1 AS cpus, 0 AS gpus, NULL::text AS gpu_type,
		   1024::bigint AS memory_mb, (10 + g)::float8 AS runtime_s
	FROM generate_series(1, 50) g;
SELECT throws_ok($$SELECT tinytemp_train_predictor('tt_sec_attack')$$, '42501', NULL,
	'the view''s function runs as the admin who passed it, and ALTER ROLE is refused');
RESET ROLE;
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'tt_sec_admin'),
	'the admin is still not a superuser');
SELECT is((SELECT count(*) FROM tinytemp.predictor_models WHERE source LIKE '%tt_sec_attack%'), 0::bigint,
	'and no model was stored from the failed attempt');

-- The same view, harmless, still trains: only the rights changed.
SET LOCAL ROLE tt_sec_admin;
CREATE FUNCTION pg_temp.harmless() RETURNS text LANGUAGE sql AS $$SELECT 'training'::text$$;
CREATE TEMP VIEW tt_sec_view AS
	SELECT pg_temp.harmless() AS job_type, 'resnet'::text AS model, (1000 * g)::bigint AS dataset_size,
		   1 AS epochs, 32 AS batch_size, 1 AS cpus, 0 AS gpus, NULL::text AS gpu_type,
		   1024::bigint AS memory_mb, (10 + g)::float8 AS runtime_s
	FROM generate_series(1, 50) g;
SELECT is((tinytemp_train_predictor('tt_sec_view') ->> 'rows')::int, 50,
	'an admin trains from its own temp view');
RESET ROLE;
SELECT is((SELECT source FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1),
	'tt_sec_view', 'the model is stored, written as the extension''s owner');

-- A relation the caller may not read is not read for it.
CREATE TABLE public.tt_sec_secret AS SELECT * FROM tinytemp_synthetic_jobs(50, 3);
REVOKE ALL ON public.tt_sec_secret FROM PUBLIC;
SET LOCAL ROLE tt_sec_admin;
SELECT throws_ok($$SELECT tinytemp_train_predictor('public.tt_sec_secret')$$, '42501', NULL,
	'training from a table the admin cannot read: 42501');
RESET ROLE;

-- What the caller supplies is never run with the owner's rights elsewhere either.
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	  WHERE e.extname = 'tinytemp' AND d.deptype = 'e' AND p.prosecdef$$,
	'no function of the extension is SECURITY DEFINER');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	  WHERE e.extname = 'tinytemp' AND d.deptype = 'e' AND p.proname LIKE 'tinytemp\_%'
	    AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
	    AND p.provolatile = 'v' AND p.proname NOT IN ('tinytemp_retry_delay', 'tinytemp_synthetic_jobs')
	    AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')$$,
	'every API function that writes runs with search_path = pg_catalog, pg_temp');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	  WHERE c.relnamespace = 'tinytemp'::regnamespace AND c.relkind = 'v'
	    AND c.relname IN ('dead_letter', 'queue_summary')
	    AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)$$,
	'the views over jobs read them with the reader''s rights');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'tinytemp.jobs'::regclass)
	AND (SELECT relrowsecurity FROM pg_class WHERE oid = 'tinytemp.jobs_history'::regclass),
	'row-level security is on for jobs and jobs_history');

-- A hostile search_path does not reach the functions' own statements: an
-- operator the caller defines in its own schema is never called.
CREATE SCHEMA tt_sec_evil;
CREATE FUNCTION tt_sec_evil.eq(bigint, bigint) RETURNS boolean
LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hostile operator called'; END$$;
CREATE OPERATOR tt_sec_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = tt_sec_evil.eq);
SET LOCAL search_path = tt_sec_evil, public, pg_catalog;
SELECT tinytemp_register_worker('tt-sec-w', 4, 4096) AS w \gset
SELECT tinytemp_enqueue('training', tenant => 'tt_sec_submitter') AS job \gset
SELECT count(*) AS claimed FROM tinytemp_claim(:w, 1) \gset
RESET search_path;
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :job), 'running',
	'enqueue and claim ignore the caller''s search_path');
SELECT is(:claimed::bigint, 1::bigint, 'the claim returned the job');

-- The same from a hostile role with no superuser help: it puts a schema of
-- its own first on its search_path, with functions and an operator that
-- match the API's own statements more closely than pg_catalog's do, and
-- then goes through a job's whole life.  None of them may ever run.
CREATE ROLE tt_sec_hostile NOLOGIN IN ROLE tinytemp_submitter, tinytemp_worker;
SELECT format('GRANT CREATE ON DATABASE %I TO tt_sec_hostile', current_database()) \gexec
SET LOCAL ROLE tt_sec_hostile;
CREATE SCHEMA tt_sec_trap;
CREATE FUNCTION tt_sec_trap.boom() RETURNS boolean
LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'a hostile function ran inside the API'; END$$;
CREATE FUNCTION tt_sec_trap.make_interval(secs double precision) RETURNS interval
LANGUAGE plpgsql AS $$BEGIN PERFORM tt_sec_trap.boom(); RETURN NULL; END$$;
CREATE FUNCTION tt_sec_trap.array_position(bigint[], bigint) RETURNS int
LANGUAGE plpgsql AS $$BEGIN PERFORM tt_sec_trap.boom(); RETURN NULL; END$$;
CREATE FUNCTION tt_sec_trap.unnest(bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$BEGIN PERFORM tt_sec_trap.boom(); END$$;
CREATE FUNCTION tt_sec_trap.jsonb_build_object(text, integer) RETURNS jsonb
LANGUAGE plpgsql AS $$BEGIN PERFORM tt_sec_trap.boom(); RETURN NULL; END$$;
CREATE FUNCTION tt_sec_trap.eq(bigint, bigint) RETURNS boolean
LANGUAGE plpgsql AS $$BEGIN RETURN tt_sec_trap.boom(); END$$;
CREATE OPERATOR tt_sec_trap.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = tt_sec_trap.eq);
SET LOCAL search_path = tt_sec_trap, pg_catalog, public;
SELECT tinytemp_register_worker('tt-sec-hostile', 4, 4096) AS hw \gset
SELECT tinytemp_enqueue('training', priority => 1000) AS hj \gset
SELECT tinytemp_enqueue('training', priority => -1000) AS hj2 \gset
SELECT count(*) AS hclaimed FROM tinytemp_claim(:hw, 1) \gset
SELECT tinytemp_heartbeat(:hj, :hw, '{"step": 1}') AS hbeat \gset
SELECT true AS hsaved FROM (SELECT tinytemp_checkpoint(:hj, :hw, '{"step": 1}')) c \gset
SELECT tinytemp_fail(:hj, :hw, 'transient') AS hfailed \gset
SELECT tinytemp_cancel(:hj2) AS hcancelled \gset
RESET search_path;
RESET ROLE;
SELECT is(:'hclaimed' || ' ' || :'hbeat' || ' ' || :'hsaved' || ' ' || :'hfailed' || ' ' || :'hcancelled',
	'1 continue t pending t',
	'a hostile role''s search_path: register, enqueue, claim, heartbeat, checkpoint, fail and cancel run, and none of its functions does');
SELECT is((SELECT tenant || ' ' || attempts || ' ' || state FROM tinytemp.jobs WHERE id = :hj),
	'tt_sec_hostile 1 pending', 'the job is its own tenant''s, back to pending after one attempt');
SET LOCAL ROLE tt_sec_hostile;
SET LOCAL search_path = tt_sec_trap, pg_catalog, public;
SELECT tinytemp_enqueue('training', priority => 1000) AS hj3 \gset
SELECT tinytemp_ack_many(ARRAY(SELECT id FROM tinytemp_claim(:hw, 1)), :hw) AS hacked \gset
RESET search_path;
RESET ROLE;
SELECT is(:'hacked'::int || ' ' || (SELECT state FROM tinytemp.jobs WHERE id = :hj3), '1 succeeded',
	'and so do claim and ack_many of a new job');

-- The bootstrap-model view is the extension's: an admin cannot redefine it.
SET LOCAL ROLE tt_sec_admin;
SELECT throws_ok($$CREATE OR REPLACE VIEW tinytemp.bootstrap_jobs AS SELECT 1$$, '42501', NULL,
	'an admin cannot replace an extension view');
SELECT throws_ok($$CREATE TRIGGER t BEFORE INSERT ON tinytemp.jobs FOR EACH ROW EXECUTE FUNCTION tinytemp.jobs_validate()$$,
	'42501', NULL, 'nor add a trigger to tinytemp.jobs');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

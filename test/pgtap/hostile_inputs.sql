-- hostile_inputs.sql: the calls of 0.6, 0.7 and 0.8 as a hostile role.  None is
-- SECURITY DEFINER; each checks its caller, then runs tinytemp's own
-- statements as the extension's owner with every value bound as a
-- parameter.  Nothing the caller supplies (a name, a uri, a metric key, a
-- log line, an input) is run as SQL, and a caller's temporary objects
-- named like tinytemp's are never used in their place.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(21);

\ir scheduling_setup.psql
:reset
TRUNCATE tinytemp.datasets, tinytemp.job_metrics, tinytemp.job_logs;
SET LOCAL tinytemp.lease_timeout = '1d';
CREATE ROLE tt_hostile NOLOGIN IN ROLE tinytemp_worker, tinytemp_submitter;
SELECT current_database() AS db \gset
GRANT TEMPORARY ON DATABASE :"db" TO tt_hostile;

SET LOCAL ROLE tt_hostile;
-- Decoys: temporary tables named like tinytemp's, and a temporary function
-- that would make its caller a superuser if anything ran it.
CREATE TEMP TABLE datasets (LIKE tinytemp.datasets);
CREATE TEMP TABLE job_metrics (LIKE tinytemp.job_metrics);
CREATE TEMP TABLE job_logs (LIKE tinytemp.job_logs);
CREATE TEMP TABLE jobs (id bigint);
CREATE FUNCTION pg_temp.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql
	AS $$ ALTER ROLE tt_hostile SUPERUSER; SELECT NULL::anyelement $$;

SELECT tinytemp_register_worker('hostile-w', 4, 4096) AS w \gset
SELECT tinytemp_enqueue('x') AS j \gset
SELECT count(*) FROM tinytemp_claim(:w, 1);
SELECT is(tinytemp_report_metrics(:j, :w,
	$$[{"step": 1, "metrics": {"x'); ALTER ROLE tt_hostile SUPERUSER; --": 1}}]$$), 1,
	'a metric named with SQL is stored');
SELECT is(tinytemp_report_logs(:j, :w,
	$$[{"stream": "stdout", "line": "'); DROP TABLE tinytemp.jobs; --"}]$$), 1,
	'a log line of SQL is stored');
SELECT is(tinytemp_register_dataset(:j, :w,
	$$[{"name": "hostile", "layer": "raw", "uri": "'; ALTER ROLE tt_hostile SUPERUSER; --",
	    "meta": {"q": "$q$; SELECT pg_sleep(10); --"}}]$$), 1,
	'a dataset whose uri and meta hold SQL is registered');
SELECT throws_ok($$SELECT tinytemp_register_dataset(NULL, NULL,
	'{"name": "x\"; ALTER ROLE tt_hostile SUPERUSER; --", "layer": "raw", "uri": "/x"}')$$,
	'22023', NULL, 'a dataset name holding SQL is refused');
SELECT throws_ok($$SELECT tinytemp_enqueue('x', inputs => ARRAY['a''); DROP TABLE tinytemp.jobs; --'])$$,
	'22023', NULL, 'an input holding SQL is refused');
SELECT lives_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{}')$$, :j, :w), 'tinytemp_set_gpus takes only integers');
SELECT throws_ok('SELECT tinytemp_metrics()', '42501', NULL, 'the hostile role may not scrape');
SELECT is((SELECT count(*)::int FROM datasets) + (SELECT count(*)::int FROM job_metrics)
		  + (SELECT count(*)::int FROM job_logs), 0,
	'the decoy tables got nothing: every statement names tinytemp''s own');
RESET ROLE;

SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'tt_hostile'), 'the role is no superuser');
SELECT has_table('tinytemp', 'jobs', 'tinytemp.jobs is still there');
SELECT is((SELECT key FROM tinytemp.job_metrics WHERE job_id = :j),
	$$x'); ALTER ROLE tt_hostile SUPERUSER; --$$, 'the metric name is stored as given');
SELECT is((SELECT line FROM tinytemp.job_logs WHERE job_id = :j),
	$$'); DROP TABLE tinytemp.jobs; --$$, 'the log line is stored as given');
SELECT is((SELECT uri FROM tinytemp.datasets WHERE name = 'hostile'),
	$$'; ALTER ROLE tt_hostile SUPERUSER; --$$, 'the uri is stored as given');
SELECT is((SELECT count(*)::int FROM tinytemp.datasets WHERE created_by_job = :j), 1,
	'the job''s dataset is in tinytemp.datasets');
-- 0.8: a preempted job's checkpoint ranks it again with tinytemp.rank_cost,
-- run as the owner: a decoy of that name in pg_temp is never called.
CREATE FUNCTION pg_temp.rank_cost(float8, float8, float8) RETURNS float8 LANGUAGE sql
	AS $$ ALTER ROLE tt_hostile SUPERUSER; SELECT 0::float8 $$;
RESET ROLE;
UPDATE tinytemp.jobs SET preempt_requested_at = tinytemp.now(), preempt_notified_at = tinytemp.now()
WHERE id = :j;
SET LOCAL ROLE tt_hostile;
SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"x": "'');--"}')$$, :j, :w),
	'the hostile worker answers a preemption with a checkpoint');
SELECT results_eq(format('SELECT state, attained_s >= 0 FROM tinytemp.jobs WHERE id = %s', :j),
	$$VALUES ('pending', true)$$, 'the job is pending again with its attained service');
SELECT throws_ok(format('UPDATE tinytemp.jobs SET attained_s = 1e9, rank_key = 0 WHERE id = %s', :j),
	'42501', NULL, 'the role cannot write a job''s service or rank itself');
SELECT throws_ok($$SELECT tinytemp.rank_cost('NaN', 1, 0)$$, '22023', NULL,
	'tinytemp.rank_cost refuses a NaN median from any caller');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tt_hostile'), false,
	'and the role is still no superuser');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
		   JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tinytemp' WHERE p.prosecdef), 0,
	'no function of the extension is SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
		   JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tinytemp'
		   WHERE p.proname IN ('tinytemp_metrics', 'tinytemp_report_metrics', 'tinytemp_report_logs',
							   'tinytemp_register_dataset', 'tinytemp_set_gpus', 'tinytemp_enqueue',
							   'tinytemp_predict_runtime_interval')
			 AND NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)), 0,
	'each new call fixes its search_path');

SELECT * FROM finish();
ROLLBACK;

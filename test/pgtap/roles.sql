-- roles.sql: what tinytemp_submitter, tinytemp_worker and tinytemp_admin may
-- and may not do, and that nothing is granted to PUBLIC.  Privileges are read
-- from the catalog and then exercised by real calls under SET ROLE, through
-- login-less test roles that are members of the tinytemp roles.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(82);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

SELECT has_role('tinytemp_submitter', 'role tinytemp_submitter exists');
SELECT has_role('tinytemp_worker', 'role tinytemp_worker exists');
SELECT has_role('tinytemp_admin', 'role tinytemp_admin exists');

CREATE ROLE tt_test_nobody NOLOGIN;
CREATE ROLE tt_test_submitter NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_test_worker NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_test_admin NOLOGIN IN ROLE tinytemp_admin;

-- The SQL API, by signature.
CREATE TEMP TABLE tt_api (fn text PRIMARY KEY);
INSERT INTO tt_api VALUES
	('tinytemp_register_worker(text, int, bigint, int, text, jsonb)'),
	('tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text, int, int, text, text, timestamptz, bigint[], float8, interval, text[])'),
	('tinytemp_schedule()'),
	('tinytemp_claim(bigint, int)'),
	('tinytemp_ack(bigint, bigint, jsonb)'),
	('tinytemp_fail(bigint, bigint, text, boolean)'),
	('tinytemp_heartbeat(bigint, bigint, jsonb)'),
	('tinytemp_cancel(bigint)'),
	('tinytemp_retry(bigint)'),
	('tinytemp_expire_leases()'),
	('tinytemp_retry_delay(int)'),
	('tinytemp_ack_many(bigint[], bigint, jsonb[])'),
	('tinytemp_checkpoint(bigint, bigint, jsonb)'),
	('tinytemp_predict_runtime(text, text, bigint, int, int, int, int, text, bigint)'),
	('tinytemp_train_predictor(regclass)'),
	('tinytemp_predictor_check(bytea)'),
	('tinytemp_synthetic_jobs(int, int)');

-- Which API functions a role may execute.
CREATE TEMP VIEW tt_can_execute AS
SELECT r.rolname, split_part(a.fn, '(', 1) AS fn
FROM tt_api a, pg_roles r
WHERE has_function_privilege(r.oid, a.fn::regprocedure, 'EXECUTE');

-- Nothing for PUBLIC.
SELECT is_empty(
	$$SELECT fn FROM tt_api WHERE has_function_privilege('public', fn::regprocedure, 'EXECUTE')$$,
	'PUBLIC may execute no API function');
SELECT cmp_ok(
	(SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	 WHERE e.extname = 'tinytemp' AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass),
	'>=', 9::bigint, 'the extension owns the API functions (the next test is not vacuous)');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid,
	  aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
	  WHERE e.extname = 'tinytemp' AND d.deptype = 'e' AND a.grantee = 0$$,
	'no function of the extension grants anything to PUBLIC');
SELECT is_empty(
	$$SELECT c.relname
	  FROM pg_class c,
	  aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
	  WHERE c.relnamespace = 'tinytemp'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')
	    AND a.grantee = 0$$,
	'no table, view or sequence of schema tinytemp grants anything to PUBLIC');
SELECT ok(NOT has_schema_privilege('public', 'tinytemp', 'USAGE'), 'PUBLIC has no USAGE on schema tinytemp');
SELECT ok(NOT has_table_privilege('public', 'tinytemp.jobs', 'SELECT'), 'PUBLIC may not read tinytemp.jobs');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	  WHERE e.extname = 'tinytemp' AND d.deptype = 'e' AND p.prosecdef
	    AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')$$,
	'every SECURITY DEFINER function of the extension fixes its search_path');

-- What each role may execute, from the catalog.
SELECT is_empty($$SELECT fn FROM tt_can_execute WHERE rolname = 'tt_test_nobody'$$,
	'a role with no grants may execute no API function');
SELECT set_eq($$SELECT fn FROM tt_can_execute WHERE rolname = 'tt_test_submitter'$$,
	ARRAY['tinytemp_enqueue', 'tinytemp_cancel', 'tinytemp_predict_runtime', 'tinytemp_synthetic_jobs'],
	'a submitter may execute enqueue, cancel, predict and the generator, nothing else');
SELECT set_eq($$SELECT fn FROM tt_can_execute WHERE rolname = 'tt_test_worker'$$,
	ARRAY['tinytemp_register_worker', 'tinytemp_claim', 'tinytemp_ack', 'tinytemp_ack_many',
		  'tinytemp_fail', 'tinytemp_heartbeat', 'tinytemp_checkpoint', 'tinytemp_predict_runtime'],
	'a worker may execute register, claim, ack, ack_many, fail, heartbeat, checkpoint and predict, nothing else');
SELECT set_eq($$SELECT fn FROM tt_can_execute WHERE rolname = 'tt_test_admin'$$,
	$$SELECT split_part(fn, '(', 1) FROM tt_api$$,
	'an admin may execute every API function');

-- Tables, from the catalog.
SELECT ok(NOT has_schema_privilege('tt_test_nobody', 'tinytemp', 'USAGE'),
	'a role with no grants has no USAGE on schema tinytemp');
SELECT ok(has_table_privilege('tt_test_submitter', 'tinytemp.jobs', 'SELECT'), 'a submitter may read tinytemp.jobs');
SELECT ok(has_table_privilege('tt_test_submitter', 'tinytemp.jobs_history', 'SELECT'),
	'a submitter may read tinytemp.jobs_history');
SELECT ok(has_table_privilege('tt_test_submitter', 'tinytemp.dead_letter', 'SELECT'),
	'a submitter may read tinytemp.dead_letter');
SELECT is_empty(
	$$SELECT r.rolname || ' ' || p.priv || ' ' || c.relname
	  FROM pg_class c, (VALUES ('tt_test_submitter'), ('tt_test_worker'), ('tt_test_nobody')) r(rolname),
	  (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) p(priv)
	  WHERE c.relnamespace = 'tinytemp'::regnamespace AND c.relkind IN ('r', 'v')
	    AND has_table_privilege(r.rolname, c.oid, p.priv)$$,
	'submitters, workers and roles with no grants may not write any tinytemp table');
SELECT ok(has_table_privilege('tt_test_admin', 'tinytemp.jobs', 'SELECT, INSERT, UPDATE, DELETE'),
	'an admin may read and write tinytemp.jobs');
SELECT ok(has_table_privilege('tt_test_admin', 'tinytemp.workers', 'SELECT, INSERT, UPDATE, DELETE'),
	'an admin may read and write tinytemp.workers');
SELECT ok(has_table_privilege('tt_test_admin', 'tinytemp.jobs_history', 'SELECT'),
	'an admin may read tinytemp.jobs_history');

-- Jobs for the calls below, made by the superuser.
SELECT tinytemp_register_worker('roles-su', 4, 8192) AS wsu \gset
SELECT tinytemp_enqueue('train', priority => 1) AS jsu \gset
SELECT is((SELECT id FROM tinytemp_claim(:wsu)), :jsu::bigint, 'setup: a job running on a worker');
SELECT count(*) AS jobs_before FROM tinytemp.jobs \gset

-- A role with no grants can do nothing.
SET LOCAL ROLE tt_test_nobody;
SELECT throws_ok($$SELECT tinytemp_enqueue('train')$$, '42501', NULL, 'no grants: enqueue is denied');
SELECT throws_ok(format('SELECT tinytemp_cancel(%s)', :jsu), '42501', NULL, 'no grants: cancel is denied');
SELECT throws_ok($$SELECT tinytemp_register_worker('roles-x', 1, 1)$$, '42501', NULL,
	'no grants: register is denied');
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s)', :wsu), '42501', NULL, 'no grants: claim is denied');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jsu, :wsu), '42501', NULL, 'no grants: ack is denied');
SELECT throws_ok(format('SELECT tinytemp_retry(%s)', :jsu), '42501', NULL, 'no grants: retry is denied');
SELECT throws_ok('SELECT count(*) FROM tinytemp.jobs', '42501', NULL, 'no grants: reading tinytemp.jobs is denied');
RESET ROLE;

-- Submitter: enqueue, cancel, read.
SET LOCAL ROLE tt_test_submitter;
SELECT is(current_user, 'tt_test_submitter', 'now acting as a submitter');
SELECT tinytemp_enqueue('train', model => 'bert', priority => 5) AS jsub \gset
SELECT tinytemp_enqueue('train', model => 'gpt', priority => 3) AS jsub2 \gset
SELECT is((SELECT model FROM tinytemp.jobs WHERE id = :jsub), 'bert', 'a submitter enqueues and reads its job');
SELECT is((SELECT array_agg(event) FROM tinytemp.jobs_history WHERE job_id = :jsub), ARRAY['enqueued'],
	'a submitter reads the job''s history');
SELECT is(tinytemp_cancel(:jsub2), true, 'a submitter cancels a job');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter), 0::bigint, 'a submitter reads tinytemp.dead_letter');
SELECT throws_ok($$SELECT tinytemp_register_worker('roles-x', 1, 1)$$, '42501', NULL,
	'a submitter may not register a worker');
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s)', :wsu), '42501', NULL, 'a submitter may not claim');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jsu, :wsu), '42501', NULL, 'a submitter may not ack');
SELECT throws_ok('SELECT tinytemp_schedule()', '42501', NULL, 'a submitter may not run the planner');
SELECT lives_ok('SELECT count(*) FROM tinytemp.pending_reasons', 'a submitter reads why jobs wait');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jsu, :wsu, 'x'), '42501', NULL,
	'a submitter may not fail');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jsu, :wsu), '42501', NULL,
	'a submitter may not heartbeat');
SELECT throws_ok(format('SELECT tinytemp_retry(%s)', :jsu), '42501', NULL, 'a submitter may not retry');
SELECT throws_ok('SELECT tinytemp_expire_leases()', '42501', NULL, 'a submitter may not expire leases');
SELECT throws_ok($$INSERT INTO tinytemp.jobs (job_type) VALUES ('sneaky')$$, '42501', NULL,
	'a submitter may not insert into tinytemp.jobs');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET priority = 1000 WHERE id = %s$$, :jsub), '42501', NULL,
	'a submitter may not update tinytemp.jobs');
SELECT throws_ok('DELETE FROM tinytemp.jobs', '42501', NULL, 'a submitter may not delete from tinytemp.jobs');
SELECT throws_ok('DELETE FROM tinytemp.jobs_history', '42501', NULL,
	'a submitter may not delete from tinytemp.jobs_history');
SELECT throws_ok($$INSERT INTO tinytemp.workers (name, cpus, memory_mb) VALUES ('sneaky', 1, 1)$$, '42501', NULL,
	'a submitter may not insert into tinytemp.workers');
RESET ROLE;
SELECT results_eq(format('SELECT state, priority FROM tinytemp.jobs WHERE id IN (%s, %s) ORDER BY id', :jsub, :jsub2),
	$$VALUES ('pending'::text, 5), ('cancelled'::text, 3)$$,
	'the submitter''s jobs: one pending, one cancelled, priorities untouched');
SELECT is((SELECT count(*) FROM tinytemp.jobs), (:jobs_before + 2)::bigint, 'the submitter added exactly its two jobs');

-- Worker: register, claim, ack, fail, heartbeat.
SET LOCAL ROLE tt_test_worker;
SELECT is(current_user, 'tt_test_worker', 'now acting as a worker');
SELECT tinytemp_register_worker('roles-worker', 4, 8192) AS ww \gset
SELECT is((SELECT id FROM tinytemp_claim(:ww)), :jsub::bigint, 'a worker registers and claims');
SELECT is(tinytemp_heartbeat(:jsub, :ww, '{"epoch": 1}'), 'continue', 'a worker heartbeats');
SELECT is(tinytemp_fail(:jsub, :ww, 'oom'), 'pending', 'a worker fails a job');
SELECT throws_ok($$SELECT tinytemp_enqueue('train')$$, '42501', NULL, 'a worker may not enqueue');
SELECT throws_ok(format('SELECT tinytemp_cancel(%s)', :jsub), '42501', NULL, 'a worker may not cancel');
SELECT throws_ok(format('SELECT tinytemp_retry(%s)', :jsub), '42501', NULL, 'a worker may not retry');
SELECT throws_ok('SELECT tinytemp_expire_leases()', '42501', NULL, 'a worker may not expire leases');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'succeeded' WHERE id = %s$$, :jsub), '42501', NULL,
	'a worker may not update tinytemp.jobs');
SELECT throws_ok($$INSERT INTO tinytemp.jobs_history (job_id, event) VALUES (1, 'acked')$$, '42501', NULL,
	'a worker may not write tinytemp.jobs_history');
SELECT throws_ok('DELETE FROM tinytemp.workers', '42501', NULL, 'a worker may not delete workers');
RESET ROLE;
UPDATE tinytemp.jobs SET run_after = now() WHERE id = :jsub;
SET LOCAL ROLE tt_test_worker;
SELECT is((SELECT id FROM tinytemp_claim(:ww)), :jsub::bigint, 'a worker claims the retried job');
SELECT lives_ok(format($$SELECT tinytemp_ack(%s, %s, '{"loss": 0.2}')$$, :jsub, :ww), 'a worker acks');
RESET ROLE;
SELECT results_eq(format('SELECT state, attempts, result FROM tinytemp.jobs WHERE id = %s', :jsub),
	$$VALUES ('succeeded'::text, 2, '{"loss": 0.2}'::jsonb)$$, 'the worker''s calls took effect');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :jsub),
	ARRAY['enqueued', 'claimed', 'failed', 'retried', 'claimed', 'acked'],
	'the worker''s calls are in the history');

-- Admin: everything.
SET LOCAL ROLE tt_test_admin;
SELECT is(current_user, 'tt_test_admin', 'now acting as an admin');
SELECT tinytemp_enqueue('train', priority => 7) AS ja \gset
SELECT tinytemp_enqueue('train', priority => 0, run_after => now() + interval '1 hour') AS ja2 \gset
SELECT tinytemp_register_worker('roles-admin', 4, 8192) AS wa \gset
SELECT is((SELECT id FROM tinytemp_claim(:wa)), :ja::bigint, 'an admin registers and claims');
SELECT is(tinytemp_heartbeat(:ja, :wa), 'continue', 'an admin heartbeats');
SELECT is(tinytemp_fail(:ja, :wa, 'fatal', false), 'failed', 'an admin fails a job for good');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter WHERE id = :ja), 1::bigint, 'an admin reads the dead-letter queue');
SELECT is(tinytemp_retry(:ja), true, 'an admin retries a dead job');
SELECT is((SELECT id FROM tinytemp_claim(:wa)), :ja::bigint, 'an admin claims it again');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :ja, :wa), 'an admin acks');
SELECT is(tinytemp_cancel(:ja2), true, 'an admin cancels');
SELECT lives_ok('SELECT tinytemp_expire_leases()', 'an admin runs a lease-expiry pass');
SELECT lives_ok('SELECT tinytemp_schedule()', 'an admin runs a planner pass');
SELECT lives_ok('SELECT tinytemp_retry_delay(3)', 'an admin computes a retry delay');
SELECT lives_ok(format('UPDATE tinytemp.jobs SET priority = 99 WHERE id = %s', :jsu), 'an admin updates tinytemp.jobs');
SELECT lives_ok(format($$UPDATE tinytemp.workers SET labels = '{"rack": "r1"}' WHERE id = %s$$, :wa),
	'an admin updates tinytemp.workers');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = :ja), 7::bigint,
	'an admin reads tinytemp.jobs_history');
RESET ROLE;
SELECT results_eq(format('SELECT id, state, priority FROM tinytemp.jobs WHERE id IN (%s, %s, %s) ORDER BY id', :jsu, :ja, :ja2),
	format($$VALUES (%s::bigint, 'running'::text, 99), (%s, 'succeeded', 7), (%s, 'cancelled', 0)$$, :jsu, :ja, :ja2),
	'the admin''s calls took effect');

SELECT * FROM finish();
ROLLBACK;

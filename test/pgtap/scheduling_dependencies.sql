-- scheduling_dependencies.sql: tinytemp_enqueue(..., depends_on => ARRAY[...]):
-- a job is claimable only once every job it depends on has succeeded; when
-- one fails for good or is cancelled, the planner pass fails the job, and
-- the jobs that depend on it, down the pipeline.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(26);

\ir scheduling_setup.psql
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, tinytemp.reservations;
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.retry_backoff_base = 0;

SELECT tinytemp_register_worker('node', 16, 65536) AS w \gset

-- A PIPELINE: ingest -> preprocess -> train -> evaluate.  Each is shorter than
-- the one before, so shortest-first alone would start them in reverse.
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 400) AS ingest \gset
SELECT tinytemp_enqueue('preprocess', runtime_estimate_s => 300, depends_on => ARRAY[:ingest]::bigint[]) AS prep \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 200, depends_on => ARRAY[:prep]::bigint[]) AS train \gset
SELECT tinytemp_enqueue('evaluation', runtime_estimate_s => 100, depends_on => ARRAY[:train]::bigint[]) AS eval \gset
SELECT is((SELECT depends_on FROM tinytemp.jobs WHERE id = :eval), ARRAY[:train]::bigint[], 'depends_on is stored');

SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:ingest::bigint],
	'a claim of 10 takes only the ingest job');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 10)', :w), 'nothing else while it runs');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :ingest, :w), 'ingest succeeds');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:prep::bigint], 'then preprocess starts, alone');
SELECT is(tinytemp_fail(:prep, :w, 'disk full'), 'pending', 'preprocess fails once and will be retried');
SELECT is(tinytemp_schedule()->'dependency_failed', '0'::jsonb, 'a retry pending is not a failure for good');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:prep::bigint], 'preprocess runs again, alone');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :prep, :w), 'preprocess succeeds');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:train::bigint], 'then training');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :train, :w), 'training succeeds');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:eval::bigint], 'then evaluation');

-- Several dependencies: all must succeed.
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 10) AS a \gset
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 10) AS b \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1, depends_on => ARRAY[:a, :b]::bigint[]) AS ab \gset
SELECT set_eq(format('SELECT id FROM tinytemp_claim(%s, 10)', :w), ARRAY[:a, :b]::bigint[],
	'a job that depends on two waits for both');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :a, :w), 'one succeeds');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 10)', :w), 'one of two is not enough');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :b, :w), 'the other succeeds');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:ab::bigint], 'then the job starts');

-- A failure for good fails the rest of the pipeline.
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 400) AS i2 \gset
SELECT tinytemp_enqueue('preprocess', runtime_estimate_s => 300, depends_on => ARRAY[:i2]::bigint[]) AS p2 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 200, depends_on => ARRAY[:p2]::bigint[]) AS t2 \gset
SELECT tinytemp_enqueue('evaluation', runtime_estimate_s => 100, depends_on => ARRAY[:t2]::bigint[]) AS e2 \gset
SELECT tinytemp_enqueue('evaluation', runtime_estimate_s => 100) AS unrelated \gset
SELECT is((SELECT array_agg(id ORDER BY id) FROM tinytemp_claim(:w, 10)), ARRAY[:i2, :unrelated]::bigint[],
	'a second pipeline''s ingest starts, with an unrelated job');
SELECT is(tinytemp_fail(:i2, :w, 'source gone', false), 'failed', 'its ingest fails for good');
SELECT is(tinytemp_schedule()->'dependency_failed', '3'::jsonb, 'the pass fails the three jobs down the pipeline');
SELECT results_eq(format('SELECT id, state, last_error FROM tinytemp.jobs WHERE id IN (%s, %s, %s) ORDER BY id', :p2, :t2, :e2),
	format($$VALUES (%s::bigint, 'failed', 'dependency failed'), (%s, 'failed', 'dependency failed'),
					(%s, 'failed', 'dependency failed')$$, :p2, :t2, :e2),
	'failed, as dependency failed');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE job_id IN (:p2, :t2, :e2)
		   AND event = 'dead_lettered' AND detail->>'reason' = 'dependency failed'), 3::bigint,
	'history: dead_lettered, reason dependency failed');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :unrelated), 'running', 'the unrelated job runs on');

-- A cancelled dependency too.
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 10, run_after => '2026-01-01 01:00:00+00') AS i3 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 10, depends_on => ARRAY[:i3]::bigint[]) AS t3 \gset
SELECT ok(tinytemp_cancel(:i3), 'a pipeline''s first job is cancelled');
SELECT is(tinytemp_schedule()->'dependency_failed', '1'::jsonb, 'the pass fails the job that depends on it');
SELECT results_eq(format('SELECT state, last_error FROM tinytemp.jobs WHERE id = %s', :t3),
	$$VALUES ('failed', 'dependency failed')$$, 'as dependency failed');

SELECT * FROM finish();
ROLLBACK;

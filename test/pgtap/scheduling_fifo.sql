-- scheduling_fifo.sql: policy 'fifo' is strict arrival order within
-- priority classes: no younger job starts while the oldest ready job can
-- start nowhere; a job that another worker can start now does not hold the
-- queue up; a pending gang the planner has not placed does.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(18);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'fifo';
SET LOCAL tinytemp.lease_timeout = '1d';

-- Arrival order, not shortest first; classes still strict.
SELECT tinytemp_register_worker('node', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1000) AS old_long \gset
SELECT tinytemp_enqueue('inference', runtime_estimate_s => 1) AS new_short \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :old_long::bigint, 'the older job goes first, though longer');
SELECT tinytemp_enqueue('inference', priority => 1, runtime_estimate_s => 1000) AS newer_high \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :newer_high::bigint, 'a newer job of a higher class goes before');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :new_short::bigint, 'then the rest in order');

-- The oldest job can start nowhere: nothing younger starts.
:reset
SELECT tinytemp_register_worker('n1', 8, 16384) AS w1 \gset
SELECT tinytemp_register_worker('n2', 8, 16384) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 1000) AS r1 \gset
SELECT id AS claimed FROM tinytemp_claim(:w1) \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 1000) AS r2 \gset
SELECT id AS claimed FROM tinytemp_claim(:w2) \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 100) AS head \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 1) AS younger \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w1),
	'an old 8-CPU job that fits no worker now (4 free on each) blocks a younger 1-CPU job');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w2), 'on every worker');
SELECT is(tinytemp_schedule()->'reservations', '0'::jsonb, 'and the pass reserves nothing for it');
SAVEPOINT other_policy;
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT array_agg(id) AS under_tinytemp FROM tinytemp_claim(:w1, 5) \gset
ROLLBACK TO SAVEPOINT other_policy;
SELECT is(:'under_tinytemp', format('{%s}', :younger), '(under tinytemp the younger job would start)');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :r1, :w1), 'one worker frees up');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w1, 5)), ARRAY[:head::bigint],
	'the head starts there, alone: the younger job fits the other worker');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w2, 5)), ARRAY[:younger::bigint], 'which takes it');

-- A job that another worker can start now does not block.
:reset
SELECT tinytemp_register_worker('small', 4, 16384) AS small \gset
SELECT tinytemp_register_worker('large', 8, 16384) AS large \gset
SELECT tinytemp_enqueue('training', cpus => 6, runtime_estimate_s => 100) AS needs_large \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 100) AS any \gset
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:small, 5)), ARRAY[:any::bigint],
	'a worker skips an older job that fits another worker''s free resources now, and takes a younger one');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:large, 5)), ARRAY[:needs_large::bigint],
	'which the other worker takes');
SELECT tinytemp_enqueue('training', cpus => 1, gpus => 1, gpu_type => 'a100', runtime_estimate_s => 100) AS gpu_job \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 100) AS after_gpu \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :small),
	'an older job that needs a GPU no worker has blocks the younger one');

-- A pending gang at the head blocks until the planner places it.
:reset
SELECT tinytemp_register_worker('n1', 8, 16384) AS w1 \gset
SELECT tinytemp_register_worker('n2', 8, 16384) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 100) AS g \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 1) AS single \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w1), 'a pending unassigned gang at the head blocks claims');
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'the pass assigns it under fifo too');
SELECT is((SELECT array_agg(id ORDER BY id) FROM tinytemp_claim(:w1, 5)),
	ARRAY[(SELECT id FROM tinytemp.jobs WHERE gang_id = :g AND worker_id = :w1), :single]::bigint[],
	'then a claim takes its member and the younger job');

-- The planner pass keeps the order too: a gang behind a head that cannot start waits.
:reset
SELECT tinytemp_register_worker('n1', 8, 16384) AS w1 \gset
SELECT tinytemp_register_worker('n2', 8, 16384) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 1000) AS r1 \gset
SELECT id AS claimed FROM tinytemp_claim(:w1) \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 1000) AS r2 \gset
SELECT id AS claimed FROM tinytemp_claim(:w2) \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 100) AS head \gset
SELECT tinytemp_enqueue('training', cpus => 1, gang_size => 2, runtime_estimate_s => 10) AS g \gset
SAVEPOINT other_policy;
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT tinytemp_schedule()->'gangs_assigned' AS under_tinytemp \gset
ROLLBACK TO SAVEPOINT other_policy;
SELECT is(:'under_tinytemp'::jsonb, '1'::jsonb, '(under tinytemp the pass would assign the gang)');
SELECT is(tinytemp_schedule()->'gangs_assigned', '0'::jsonb,
	'under fifo a gang behind an older job that cannot start is not assigned');

SELECT * FROM finish();
ROLLBACK;

-- review_fixes.sql: what a review of 0.3 found, each shown fixed.
--  1. The claim returns rows of tinytemp.jobs's rowtype, which keeps a slot
--     for every column an upgrade dropped: the rows are matched by name.
--  2. The planner reads a window of PLAN_WINDOW (1000) ready rows; a gang
--     whose members the window cuts is completed, and assigned whole.
--  3. Gang-wide changes lock the members in id order (the deadlock between
--     two failing members): see test/isolation/specs/gang_fail_lock_order.spec.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(8);
\ir scheduling_setup.psql
:reset

-- 1. A column dropped in the middle of the rowtype, as an upgrade may do.
ALTER TABLE tinytemp.jobs ADD COLUMN tt_review_dropped text DEFAULT 'dropped';
ALTER TABLE tinytemp.jobs ADD COLUMN tt_review_kept text DEFAULT 'kept';
ALTER TABLE tinytemp.jobs DROP COLUMN tt_review_dropped;
SELECT tinytemp_register_worker('review-w', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', model => 'resnet50', params => '{"lr": 0.1}', tenant => 'review')
	AS j \gset
CREATE TEMP TABLE tt_claimed AS SELECT * FROM tinytemp_claim(:w, 1);
SELECT is((SELECT id FROM tt_claimed), :j::bigint, 'the claim returns the job');
SELECT is((SELECT tt_review_kept FROM tt_claimed), 'kept',
	'a column after a dropped one holds its own value');
SELECT is((SELECT (model, tenant, params, state, worker_id)::text FROM tt_claimed),
	(SELECT (model, tenant, params, state, worker_id)::text FROM tinytemp.jobs WHERE id = :j),
	'and every other column is the stored one');
SELECT is((SELECT count(*) FROM tinytemp_claim(:w, 1)), 0::bigint, 'nothing else to claim');
ALTER TABLE tinytemp.jobs DROP COLUMN tt_review_kept;
:reset

-- 2. 999 ready jobs of a higher class that no worker can run fill the
-- window but one row: the gang's first member is the window's last row.
SELECT count(tinytemp_register_worker('window-' || i, 4, 8192)) AS workers,
	   (SELECT count(tinytemp_enqueue('training', priority => 10, gpus => 1, gpu_type => 'none-here'))
		FROM generate_series(1, 999)) AS blockers
FROM generate_series(1, 2) i \gset
SELECT tinytemp_enqueue('training', cpus => 2, gang_size => 2, runtime_estimate_s => 60) AS gang \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE state = 'pending'), 1001::bigint,
	'1001 ready rows: the window cuts the gang');
SELECT tinytemp_schedule() ->> 'gangs_assigned' AS assigned \gset
SELECT is(:'assigned'::text, '1', 'the planner assigns the gang');
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :gang AND state = 'assigned'), 2::bigint,
	'both members, though one lay past the window');
SELECT is((SELECT count(DISTINCT worker_id) FROM tinytemp.jobs WHERE gang_id = :gang), 2::bigint,
	'on two workers');

SELECT * FROM finish();
ROLLBACK;

-- review_fixes.sql: what a review of 0.3 found, each shown fixed.
--  1. The claim returns rows of tinytemp.jobs's rowtype, which keeps a slot
--     for every column an upgrade dropped: the rows are matched by name.
--  2. The planner reads a window of PLAN_WINDOW (1000) ready rows; a gang
--     whose members the window cuts is completed, and assigned whole.
--  3. A gang one of whose members succeeded before another's worker was
--     lost (found by bench/soak.sh) is placed again with the member left,
--     instead of waiting for ever.
--  4. Gang-wide changes lock the members in id order (the deadlock between
--     two failing members): see test/isolation/specs/gang_fail_lock_order.spec.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(12);
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

:reset

-- 3. Member 2 succeeds; member 1's worker stops heartbeating and its lease runs out.
SET LOCAL tinytemp.clock = '2100-01-01 00:00:00+00';
SET LOCAL tinytemp.lease_timeout = '6s';
SELECT count(tinytemp_register_worker('half-' || i, 4, 8192, 2, 'a100')) AS workers
FROM generate_series(1, 2) i \gset
SELECT tinytemp_enqueue('evaluation', gang_size => 2, gpus => 1) AS half \gset
SELECT tinytemp_schedule() ->> 'gangs_assigned' AS assigned \gset
SELECT count(*) AS claims FROM tinytemp.jobs j, LATERAL tinytemp_claim(j.worker_id, 1) c WHERE j.gang_id = :half \gset
SET LOCAL tinytemp.clock = '2100-01-01 00:00:03+00';
SELECT tinytemp_ack(id, worker_id) FROM tinytemp.jobs WHERE gang_id = :half AND gang_rank = 1;
SET LOCAL tinytemp.clock = '2100-01-01 00:00:10+00';
SELECT tinytemp_schedule() ->> 'leases_expired' AS expired \gset
SELECT is(:'expired'::text, '1', 'the lost member''s lease expires');
SET LOCAL tinytemp.clock = '2100-01-01 00:01:00+00';
SELECT tinytemp_schedule() ->> 'gangs_assigned' AS assigned \gset
SELECT is(:'assigned'::text, '1', 'the gang is placed again, with the member it has left');
SELECT (SELECT worker_id FROM tinytemp.jobs WHERE gang_id = :half AND gang_rank = 0) AS w \gset
SELECT is((SELECT count(*) FROM tinytemp_claim(:w, 4)), 1::bigint, 'its worker claims it');
SELECT tinytemp_ack(id, worker_id) FROM tinytemp.jobs WHERE gang_id = :half AND gang_rank = 0;
SELECT is((SELECT array_agg(state ORDER BY gang_rank) FROM tinytemp.jobs WHERE gang_id = :half),
	'{succeeded,succeeded}', 'and the whole gang succeeds');

SELECT * FROM finish();
ROLLBACK;

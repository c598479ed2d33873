-- scheduling_backfill.sql: under the 'tinytemp' policy the planner pass
-- reserves, for the highest-ranked ready job that cannot start now, the
-- resources it will get when the running jobs reach their predicted ends;
-- other jobs may use them only if predicted to finish by then, and none may
-- once the reservation is older than tinytemp.reservation_horizon.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(36);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.reservation_horizon = '10min';

-- T0: a 6-CPU job runs on an 8-CPU worker until T0 + 1000 s; an 8-CPU job
-- and a 5000 s 2-CPU job wait.
SELECT tinytemp_register_worker('node', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 6, runtime_estimate_s => 1000) AS r \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :r::bigint, 'the 6-CPU job starts');
SELECT is((SELECT predicted_end_at FROM tinytemp.jobs WHERE id = :r), '2026-01-01 00:16:40+00'::timestamptz,
	'its predicted end is set at claim, from its estimate');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 500) AS big \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 5000) AS long \gset

SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'the pass makes a reservation');
SELECT results_eq('SELECT job_id, worker_id, start_at, cpus, memory_mb, gpus, reason, since FROM tinytemp.reservations',
	format($$VALUES (%s::bigint, %s::bigint, '2026-01-01 00:16:40+00'::timestamptz, 8, 1024::bigint, 0, 'backfill',
					 '2026-01-01 00:00:00+00'::timestamptz)$$, :big, :w),
	'for the 8-CPU job, on the worker, from the running job''s predicted end');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w),
	'the 5000 s job does not take the 2 free CPUs: it would still run when the reservation starts');
SELECT results_eq('SELECT job_id, reason FROM tinytemp.pending_reasons ORDER BY job_id',
	format($$VALUES (%s::bigint, 'holds a reservation'), (%s, 'reserved for a larger job')$$, :big, :long),
	'pending_reasons: the 8-CPU job holds a reservation; the long job waits on it');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 100) AS short \gset
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 5)), ARRAY[:short::bigint],
	'a 100 s job is backfilled into the reserved room: it ends before the reservation starts');

-- T0 + 100 s: the short job is done.  A job of 901 s would end after the
-- reservation starts; one of 900 s ends exactly then.
SET LOCAL tinytemp.clock = '2026-01-01 00:01:40+00';
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :short, :w), 'the backfilled job ends');
SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'a later pass plans the reservation again');
SELECT results_eq('SELECT job_id, start_at, since FROM tinytemp.reservations',
	format($$VALUES (%s::bigint, '2026-01-01 00:16:40+00'::timestamptz, '2026-01-01 00:00:00+00'::timestamptz)$$, :big),
	'with the same start, and the time it was first made');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 901) AS j901 \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w), 'a 901 s job is not backfilled');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 900) AS j900 \gset
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 5)), ARRAY[:j900::bigint],
	'a 900 s job is: now + est <= start_at');

-- T0 + 700 s: the reservation is older than the horizon (10 min): no backfill at all.
SET LOCAL tinytemp.clock = '2026-01-01 00:03:20+00';
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :j900, :w), 'the 900 s job ends early, at T0 + 200 s');
SET LOCAL tinytemp.clock = '2026-01-01 00:11:40+00';
SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'at T0 + 700 s the pass keeps the reservation');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 1) AS tiny \gset
SAVEPOINT long_horizon;
SET LOCAL tinytemp.reservation_horizon = '1h';
SELECT array_agg(id) AS within_horizon FROM tinytemp_claim(:w, 5) \gset
ROLLBACK TO SAVEPOINT long_horizon;
SELECT is(:'within_horizon', format('{%s}', :tiny), '(with a horizon of 1 h, a 1 s job would be backfilled now)');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :w),
	'with a horizon of 10 min, 700 s after the reservation was made, not even a 1 s job is');

-- T0 + 1000 s: the running job ends when predicted; the reserved job starts then.
SET LOCAL tinytemp.clock = '2026-01-01 00:16:40+00';
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :r, :w), 'the 6-CPU job ends at its predicted time');
SELECT is(tinytemp_schedule()->>'ran', 'true', 'a pass runs');
SELECT is_empty(format('SELECT 1 FROM tinytemp.reservations WHERE job_id = %s', :big),
	'the 8-CPU job, which fits now, no longer needs a reservation');
SELECT results_eq(format('SELECT id, started_at FROM tinytemp_claim(%s)', :w),
	format($$VALUES (%s::bigint, '2026-01-01 00:16:40+00'::timestamptz)$$, :big),
	'the next claim starts the reserved job, at the start its reservation predicted');

-- A worker's speed counts: on a worker of speed 2 a 2000 s job runs 1000 s.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('fast', 8, 16384, labels => '{"speed": 2}') AS wf \gset
SELECT tinytemp_enqueue('training', cpus => 6, runtime_estimate_s => 2000) AS r2 \gset
SELECT id AS r2_claimed FROM tinytemp_claim(:wf) \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 10) AS big2 \gset
SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'on a worker of speed 2, a reservation');
SELECT is((SELECT start_at FROM tinytemp.reservations), '2026-01-01 00:16:40+00'::timestamptz,
	'from the running job''s end at T0 + 2000 s / 2');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 2002) AS j2002 \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 5)', :wf), 'a 2002 s job would run 1001 s there: not backfilled');
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 2000) AS j2000 \gset
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:wf, 5)), ARRAY[:j2000::bigint],
	'a 2000 s job runs 1000 s there: backfilled');

-- A reservation binds only the jobs ranked after its job.  A whole-node job
-- goes first in the walk, so the gang ranked after it cannot start and gets
-- the reservation; the whole-node job must still start, even past the
-- reservation's horizon, or neither would ever run.
:reset
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT count(tinytemp_register_worker('l4-' || i, 64, 524288, 4, 'l4')) FROM generate_series(1, 4) i;
SELECT tinytemp_enqueue('training', gpus => 4, cpus => 64, memory_mb => 151552, gpu_type => 'l4',
						runtime_estimate_s => 600) AS node_job \gset
SELECT tinytemp_enqueue('training', gpus => 2, cpus => 8, memory_mb => 18432, gpu_type => 'l4',
						gang_size => 4, runtime_estimate_s => 7200) AS gang \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '0'::jsonb, 'the gang waits for the whole-node job');
SELECT is((SELECT count(DISTINCT worker_id) FROM tinytemp.reservations WHERE job_id = :gang), 4::bigint,
	'and reserves the four nodes');
SET LOCAL tinytemp.clock = '2026-01-03 00:00:00+00';
SELECT tinytemp_schedule() AS pass \gset
SELECT is((SELECT count(*) FROM generate_series(1, 4) k,
		   LATERAL tinytemp_claim((SELECT id FROM tinytemp.workers WHERE name = 'l4-' || k)) c
		   WHERE c.id = :node_job), 1::bigint,
	'the whole-node job, ranked before the gang, starts despite the gang''s old reservation');

-- Several jobs that cannot start get reservations, each on workers of its
-- own, so that they wait for room side by side rather than one by one.
:reset
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT tinytemp_register_worker('n1', 8, 16384) AS n1 \gset
SELECT tinytemp_register_worker('n2', 8, 16384) AS n2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 100) AS s1 \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 200) AS s2 \gset
SELECT count(*) AS started FROM tinytemp_claim(:n1) \gset
SELECT count(*) AS started FROM tinytemp_claim(:n2) \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1000) AS whole1 \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 2000) AS whole2 \gset
SELECT is(tinytemp_schedule()->'reservations', '2'::jsonb, 'two whole-node jobs, two reservations');
SELECT is((SELECT count(DISTINCT worker_id) || ' ' || count(DISTINCT job_id) FROM tinytemp.reservations),
	'2 2', 'on two distinct workers, one each');
SELECT is((SELECT start_at FROM tinytemp.reservations WHERE job_id = :whole1),
	'2026-01-03 00:01:40+00'::timestamptz, 'the first where room frees first (the 100 s job''s end)');

-- On workers of different speeds the reservation goes where the job is
-- expected to end soonest, not where room frees first: a slow worker (speed
-- 0.2) frees in 100 s, a fast one in 1000 s; the 1000 s job would end at
-- 100 + 5000 s on the first and 1000 + 1000 s on the second.
:reset
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT tinytemp_register_worker('slow', 8, 16384, labels => '{"speed": 0.2}') AS slow \gset
SELECT tinytemp_register_worker('fast', 8, 16384) AS fast \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1000) AS on_fast \gset
SELECT is((SELECT id FROM tinytemp_claim(:fast)), :on_fast::bigint, 'the fast worker runs a job until 1000 s on');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 20) AS on_slow \gset
SELECT is((SELECT id FROM tinytemp_claim(:slow)), :on_slow::bigint, 'the slow one a job until 100 s on');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1000) AS waiting \gset
SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'the pass reserves for the waiting job');
SELECT results_eq('SELECT job_id, worker_id, start_at FROM tinytemp.reservations',
	format($$VALUES (%s::bigint, %s::bigint, '2026-01-03 00:16:40+00'::timestamptz)$$, :waiting, :fast),
	'on the fast worker, from its job''s end: 2000 s there against 5100 s on the slow one');

-- Policy 'fifo': no reservations.
:reset
SET LOCAL tinytemp.policy = 'fifo';
SELECT tinytemp_register_worker('node', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 6, runtime_estimate_s => 1000) AS r3 \gset
SELECT id AS r3_claimed FROM tinytemp_claim(:w) \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 500) AS big3 \gset
SELECT is(tinytemp_schedule()->'reservations', '0'::jsonb, 'under fifo the pass reserves nothing');
SELECT is_empty('SELECT job_id FROM tinytemp.reservations', 'and tinytemp.reservations stays empty');

SELECT * FROM finish();
ROLLBACK;

-- scheduling_placement.sql: where and in which order the 'tinytemp' policy
-- places jobs: requests fit the worker's free cpus, memory, GPUs and GPU
-- type; a worker's speed and GPU type change a job's estimate there, and the
-- claim scores candidates with est_w * (est_w / est) - aging_rate * wait;
-- priority classes are strict, shortest estimate first within a class,
-- waiting ages a job up; tenants share a worker by dominant resource fairness.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(53);

\ir scheduling_setup.psql
:reset
\set T0 '2026-01-01 00:00:00+00'
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.aging_rate = 1;
SET LOCAL tinytemp.lease_timeout = '1d';

-- FIT: GPU type, cpus, memory, GPUs.

SELECT tinytemp_register_worker('cpu-4', 4, 8192) AS w_cpu \gset
SELECT tinytemp_register_worker('h100-node', 16, 65536, 2, 'h100') AS w_h100 \gset
SELECT tinytemp_register_worker('a100-node', 16, 65536, 2, 'a100') AS w_a100 \gset
SELECT tinytemp_enqueue('training', gpus => 1, gpu_type => 'a100', runtime_estimate_s => 60) AS j_a100 \gset

SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 10)', :w_h100),
	'a job that asks for an a100 is not claimed by an h100 worker, though it has GPUs free');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 10)', :w_cpu),
	'nor by a worker without GPUs');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w_a100, 10)), ARRAY[:j_a100::bigint],
	'the a100 worker claims it');

SELECT count(tinytemp_enqueue('training', gpus => 1, runtime_estimate_s => 60)) AS n FROM generate_series(1, 3) \gset
SELECT is((SELECT count(*) FROM tinytemp_claim(:w_a100, 10)), 1::bigint,
	'a worker with one GPU left claims one of three one-GPU jobs');
SELECT count(tinytemp_enqueue('preprocess', cpus => 3, runtime_estimate_s => 60)) AS n FROM generate_series(1, 3) \gset
SELECT is((SELECT count(*) FROM tinytemp_claim(:w_cpu, 10)), 1::bigint,
	'a 4-cpu worker claims one of three 3-cpu jobs');
SELECT tinytemp_register_worker('mem-8g', 16, 8192) AS w_mem \gset
SELECT count(tinytemp_enqueue('preprocess', memory_mb => 5000, runtime_estimate_s => 60)) AS n FROM generate_series(1, 3) \gset
SELECT is((SELECT count(*) FILTER (WHERE memory_mb = 5000) FROM tinytemp_claim(:w_mem, 10)), 1::bigint,
	'an 8 GB worker claims one of three 5000 MB jobs');
SELECT is_empty($$SELECT id FROM tinytemp.worker_status
				  WHERE free_cpus < 0 OR free_memory_mb < 0 OR free_gpus < 0$$,
	'no worker holds more than it has');

-- HETEROGENEITY: a worker's speed divides a submitter's runtime estimate.

:reset
SELECT tinytemp_register_worker('fast', 8, 16384, labels => '{"speed": 2.0}') AS w_fast \gset
SELECT tinytemp_register_worker('slow', 8, 16384) AS w_slow \gset
SELECT results_eq(format('SELECT speed FROM tinytemp.workers WHERE id IN (%s, %s) ORDER BY id', :w_fast, :w_slow),
	ARRAY[2.0, 1.0]::float8[], 'a worker''s speed comes from its label "speed", 1.0 without one');
-- Each job takes a whole worker, so that the slow worker claims only once
-- the fast one is full (see SLOW HARDWARE).
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 100) AS j1 \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 100) AS j2 \gset
SELECT is((SELECT extract(epoch FROM predicted_end_at - started_at) FROM tinytemp_claim(:w_fast)), 50::numeric,
	'a 100 s job is predicted to take 50 s on a worker of speed 2');
SELECT is((SELECT extract(epoch FROM predicted_end_at - started_at) FROM tinytemp_claim(:w_slow)), 100::numeric,
	'and 100 s on a worker of speed 1');

-- The score: est_w * (est_w / est) - aging_rate * wait.  A 1000 s job that
-- has waited 500 s and a new 10 s job: on a worker of speed 1 they score
-- 1000 - 500 = 500 and 10, and the new one goes first; on a worker of speed
-- 2, 250 - 500 = -250 and 2.5, and the old one goes first (ordering by
-- rank_key alone would take the new one on both).
:reset
SELECT tinytemp_register_worker('fast', 8, 16384, labels => '{"speed": 2.0}') AS w_fast \gset
SELECT tinytemp_register_worker('slow', 8, 16384) AS w_slow \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1000) AS old1 \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1000) AS old2 \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:08:20+00';	-- T0 + 500 s
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 10) AS new1 \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 10) AS new2 \gset
SELECT is((SELECT id FROM tinytemp_claim(:w_fast)), :old1::bigint,
	'a worker of speed 2 takes the long old job: it gains most there, and its wait counts for more');
SELECT is((SELECT id FROM tinytemp_claim(:w_slow)), :new1::bigint,
	'a worker of speed 1 takes the short new job before the long old one');
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';

-- With the predictor, a job's estimate on a worker is the prediction for the
-- worker's GPU type.  A model where "gainer" jobs run 10x faster on "fast"
-- GPUs than on "slow" ones and "steady" jobs about as fast on both: with no
-- GPU type asked, a gainer is predicted shorter (as on a fast GPU), so
-- shortest-first would hand it to every worker; a slow-GPU worker takes the
-- steady job, where it loses nothing.
CREATE TEMP TABLE tt_hetero AS
SELECT jt AS job_type, jt AS model, NULL::bigint AS dataset_size, NULL::int AS epochs,
	   NULL::int AS batch_size, 4 AS cpus, 1 AS gpus, g AS gpu_type, 8192::bigint AS memory_mb,
	   CASE WHEN jt = 'gainer' THEN CASE g WHEN 'fast' THEN 100 ELSE 1000 END
			ELSE CASE g WHEN 'fast' THEN 190 ELSE 200 END END * (1 + 0.01 * (i % 3))::float8 AS runtime_s
FROM unnest(ARRAY['gainer', 'steady']) jt, unnest(ARRAY['fast', 'slow']) g, generate_series(1, 100) i;
SELECT tinytemp_train_predictor('tt_hetero') AS model_report \gset
:reset
SELECT tinytemp_register_worker('gpu-fast', 8, 16384, 4, 'fast') AS w_gfast \gset
SELECT tinytemp_register_worker('gpu-slow', 8, 16384, 4, 'slow') AS w_gslow \gset
SELECT tinytemp_enqueue('gainer', 'gainer', cpus => 4, memory_mb => 8192, gpus => 1) AS gainer1 \gset
SELECT tinytemp_enqueue('steady', 'steady', cpus => 4, memory_mb => 8192, gpus => 1) AS steady1 \gset
SELECT tinytemp_enqueue('gainer', 'gainer', cpus => 4, memory_mb => 8192, gpus => 1) AS gainer2 \gset
SELECT tinytemp_enqueue('steady', 'steady', cpus => 4, memory_mb => 8192, gpus => 1) AS steady2 \gset
SELECT ok((SELECT predicted_runtime_s FROM tinytemp.jobs WHERE id = :gainer1)
		  < (SELECT predicted_runtime_s FROM tinytemp.jobs WHERE id = :steady1),
	'(the gainer''s estimate without a GPU type is the shorter)');
CREATE TEMP TABLE tt_claimed AS SELECT * FROM tinytemp_claim(:w_gslow);
SELECT is((SELECT id FROM tt_claimed), :steady1::bigint,
	'the slow-GPU worker takes the steady job, not the shorter-estimated gainer');
SELECT is((SELECT round(extract(epoch FROM predicted_end_at - started_at)) FROM tt_claimed),
	round(tinytemp_predict_runtime('steady', 'steady', NULL, NULL, NULL, 4, 1, 'slow', 8192)::numeric),
	'its predicted end comes from the prediction for the worker''s GPU type');
SELECT is((SELECT id FROM tinytemp_claim(:w_gfast)), :gainer1::bigint,
	'the fast-GPU worker takes the gainer');

-- ORDER: priority classes are strict.

:reset
SELECT tinytemp_register_worker('w4', 4, 8192) AS w \gset
SELECT tinytemp_enqueue('eval', runtime_estimate_s => 10) AS low \gset
SELECT tinytemp_enqueue('training', priority => 1, cpus => 4, runtime_estimate_s => 10000) AS high \gset
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w, 10)), ARRAY[:high::bigint],
	'a long priority-1 job is claimed before a short priority-0 job, which then no longer fits');

-- Shortest estimate first within a class.
:reset
SELECT tinytemp_register_worker('w8', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 300) AS j300 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 100) AS j100 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 200) AS j200 \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :j100::bigint, 'the 100 s job goes first');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :j200::bigint, 'then the 200 s job');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :j300::bigint, 'then the 300 s job');

-- Aging: rank_key = est + aging_rate * epoch(ready).
:reset
SELECT tinytemp_register_worker('w8', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1000) AS old \gset
SELECT is((SELECT rank_key FROM tinytemp.jobs WHERE id = :old),
	1000 + extract(epoch FROM :'T0'::timestamptz)::float8, 'rank_key is est + aging_rate * the ready time');
SET LOCAL tinytemp.clock = '2026-01-01 00:08:20+00';	-- T0 + 500 s
SELECT tinytemp_enqueue('training', runtime_estimate_s => 10) AS new_a \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :new_a::bigint,
	'a 10 s job beats a 1000 s job that has waited 500 s');
SET LOCAL tinytemp.clock = '2026-01-01 00:33:20+00';	-- T0 + 2000 s
SELECT tinytemp_enqueue('training', runtime_estimate_s => 10) AS new_b \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :old::bigint,
	'once it has waited 2000 s, the 1000 s job beats a new 10 s job');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :new_b::bigint, 'which goes next');
SET LOCAL tinytemp.aging_rate = 0;
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1000) AS old0 \gset
SET LOCAL tinytemp.clock = '2026-01-02 00:00:00+00';	-- a day later
SELECT tinytemp_enqueue('training', runtime_estimate_s => 10) AS new0 \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :new0::bigint,
	'with tinytemp.aging_rate = 0 waiting counts for nothing: the short job still goes first');
SET LOCAL tinytemp.aging_rate = 1;
SELECT tinytemp_enqueue('training', runtime_estimate_s => 10, run_after => '2026-01-02 01:00:00+00') AS delayed \gset
SELECT is((SELECT rank_key FROM tinytemp.jobs WHERE id = :delayed),
	10 + extract(epoch FROM timestamptz '2026-01-02 01:00:00+00')::float8,
	'a delayed job''s wait counts from its run_after');
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';

-- FAIRNESS: the DRF example.  9 CPUs and 18 GB; tenant A's jobs <1 CPU, 4 GB>,
-- B's <3 CPUs, 1 GB>.  Progressive filling gives A three jobs and B two (A's
-- memory share and B's CPU share both 2/3); shortest-first alone would give
-- A's shorter jobs four and B one.
:reset
SELECT tinytemp_register_worker('drf', 9, 18432) AS w \gset
SELECT count(tinytemp_enqueue('preprocess', tenant => 'A', cpus => 1, memory_mb => 4096, runtime_estimate_s => 10)) AS n
FROM generate_series(1, 10) \gset
SELECT count(tinytemp_enqueue('training', tenant => 'B', cpus => 3, memory_mb => 1024, runtime_estimate_s => 100)) AS n
FROM generate_series(1, 10) \gset
CREATE TEMP TABLE tt_drf AS SELECT * FROM tinytemp_claim(:w, 10);
SELECT is((SELECT count(*) FROM tt_drf WHERE tenant = 'A'), 3::bigint, 'one claim of 10 takes three of A''s jobs');
SELECT is((SELECT count(*) FROM tt_drf WHERE tenant = 'B'), 2::bigint, 'and two of B''s');
SELECT is((SELECT free_cpus FROM tinytemp.worker_status WHERE id = :w), 0::bigint, 'which use every CPU');

-- A tenant that already holds resources waits for the others.
:reset
SELECT tinytemp_register_worker('shared', 8, 16384) AS w \gset
SELECT tinytemp_enqueue('training', tenant => 'A', cpus => 4, runtime_estimate_s => 10) AS a_big \gset
SELECT id AS a_running FROM tinytemp_claim(:w) \gset
SELECT tinytemp_enqueue('training', tenant => 'A', cpus => 1, runtime_estimate_s => 1) AS a_short \gset
SELECT tinytemp_enqueue('training', tenant => 'B', cpus => 1, runtime_estimate_s => 1000) AS b_long \gset
SELECT is((SELECT id FROM tinytemp_claim(:w)), :b_long::bigint,
	'a tenant with nothing running goes before one holding half the cluster, however short its job');

-- SLOW HARDWARE: a worker passes over a job that a worker with room now
-- would run over 1.5 times as fast, or that would end over 1.5 times as soon,
-- counted from when it began to wait, by waiting for the room a faster
-- worker is expected to free; otherwise it takes it.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('slow', 8, 16384, labels => '{"speed": 0.2}') AS slow \gset
SELECT tinytemp_register_worker('fast', 8, 16384, labels => '{"speed": 1.0}') AS fast \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 3600) AS long_job \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :slow),
	'a worker 5x slower leaves the job while a faster worker has room for it');
SELECT is((SELECT id FROM tinytemp_claim(:fast)), :long_job::bigint, 'the fast worker takes it');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 3600) AS next_job \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :slow),
	'with the fast worker full for an hour, the slow worker leaves the next one (2 h there, 5 h here)');
SET LOCAL tinytemp.clock = '2026-01-01 02:00:00+00';
SELECT is((SELECT id FROM tinytemp_claim(:slow)), :next_job::bigint,
	'two hours on, the fast job overran: 2 h waited + 2 h more + 1 h is no longer 1.5 times as soon as 2 h + 5 h, so the slow worker takes it');

-- On a worker twice as fast that frees in 10 minutes: a 4-hour job ends in
-- 2 h 10 min there, over 1.5 times as soon as here, and is left to it; a
-- 1-hour job would end in 40 minutes there, not 1.5 times as soon.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('one', 8, 16384) AS one \gset
SELECT tinytemp_register_worker('two', 8, 16384, labels => '{"speed": 2.0}') AS two \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 1200) AS hold_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:two)), :hold_job::bigint, '(the fast worker is busy for 10 minutes)');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 14400) AS four_h \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :one),
	'a worker leaves a 4-hour job to one twice as fast that frees in 10 minutes');
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 3600) AS one_h \gset
SELECT is((SELECT id FROM tinytemp_claim(:one)), :one_h::bigint,
	'and takes a 1-hour job, which would end in 40 minutes there, not 1.5 times as soon');

-- Room now on a worker 1.6 times as fast is worth leaving a job for; on one
-- 1.4 times as fast, or on faster ones that are full, it is not.
:reset
SELECT tinytemp_register_worker('base', 8, 16384) AS base \gset
SELECT tinytemp_register_worker('quicker', 8, 16384, labels => '{"speed": 1.4}') AS quicker \gset
SELECT tinytemp_enqueue('preprocess', cpus => 8, runtime_estimate_s => 600) AS cpu_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:base)), :cpu_job::bigint,
	'a worker takes a job that an idle worker would run 1.4 times as fast');
SELECT tinytemp_ack(:cpu_job, :base);
SELECT tinytemp_register_worker('quickest', 8, 16384, labels => '{"speed": 1.6}') AS quickest \gset
SELECT tinytemp_enqueue('preprocess', cpus => 8, runtime_estimate_s => 600) AS cpu_job2 \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :base),
	'it leaves the next to an idle worker 1.6 times as fast');
SELECT is((SELECT id FROM tinytemp_claim(:quicker)), :cpu_job2::bigint,
	'a worker 1.4 times as fast takes it: the idle one would run it only 1.14 times as fast as it');
SELECT tinytemp_enqueue('preprocess', cpus => 8, runtime_estimate_s => 600) AS cpu_job3 \gset
SELECT tinytemp_enqueue('preprocess', cpus => 8, runtime_estimate_s => 600) AS cpu_job4 \gset
SELECT is((SELECT id FROM tinytemp_claim(:quickest)), :cpu_job3::bigint, '(the fastest worker takes one)');
SELECT is((SELECT id FROM tinytemp_claim(:base)), :cpu_job4::bigint,
	'with the faster workers full, and not much faster, the worker of speed 1 takes the last');

-- A worker's label "slots" is the most jobs it runs at once: a faster
-- worker that runs as many has no room now, whatever resources it has
-- free, until its first job ends.  A label that is not a whole number is
-- no limit.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('plain', 8, 16384) AS plain \gset
SELECT tinytemp_register_worker('fast-1-slot', 8, 16384, labels => '{"speed": 2.0, "slots": "1"}') AS one_slot \gset
SELECT tinytemp_enqueue('training', cpus => 1, runtime_estimate_s => 7200) AS slot_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:one_slot)), :slot_job::bigint, '(the one-slot worker takes a job of 1 h there)');
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 3600) AS cpu_work \gset
SELECT is((SELECT id FROM tinytemp_claim(:plain)), :cpu_work::bigint,
	'a worker takes a job that a faster worker with cpus free but no slot free would run');
SELECT tinytemp_register_worker('fast-odd-label', 8, 16384, labels => '{"speed": 2.0, "slots": "1; many"}') AS odd \gset
SELECT tinytemp_enqueue('training', cpus => 1, runtime_estimate_s => 7200) AS odd_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:odd)), :odd_job::bigint, '(so does a worker labelled with slots "1; many")');
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 3600) AS cpu_work2 \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :plain),
	'but leaves the next to it: its label is no number of slots');

-- Room a faster worker frees only in 30 hours is not worth waiting for with
-- a job of 5 hours here; nor is a faster worker that can never hold it.
:reset
SELECT tinytemp_register_worker('slow', 8, 16384, labels => '{"speed": 0.2}') AS slow \gset
SELECT tinytemp_register_worker('fast', 8, 16384, labels => '{"speed": 1.0}') AS fast \gset
SELECT tinytemp_register_worker('fast-small', 2, 4096, labels => '{"speed": 1.0}') AS fast_small \gset
SELECT tinytemp_enqueue('training', cpus => 8, runtime_estimate_s => 108000) AS day_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:fast)), :day_job::bigint, 'the fast worker takes a 30-hour job');
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 3600) AS hour_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:slow)), :hour_job::bigint,
	'the slow worker takes a one-hour job rather than leave it for 30 hours to the fast one or to one too small for it');

-- The kinds of worker a claim compares with are kept between claims, and a
-- new worker renews them: alone, a slow worker of GPU type x1 takes a long
-- job for an x1; once a fast x1 worker registers, the slow one leaves the
-- next to it.
:reset
SELECT tinytemp_register_worker('slow-x1', 8, 16384, 1, 'x1', labels => '{"speed": 0.2}') AS slow \gset
SELECT tinytemp_enqueue('training', cpus => 4, gpus => 1, gpu_type => 'x1', runtime_estimate_s => 3600) AS alone_job \gset
SELECT is((SELECT id FROM tinytemp_claim(:slow)), :alone_job::bigint,
	'a slow worker alone takes a long job: no kind of worker runs it faster');
SELECT tinytemp_register_worker('fast-x1', 8, 16384, 1, 'x1', labels => '{"speed": 1.0}') AS fast \gset
SELECT tinytemp_enqueue('training', cpus => 4, gpus => 1, gpu_type => 'x1', runtime_estimate_s => 3600) AS second_job \gset
SELECT tinytemp_ack(:alone_job, :slow);
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :slow),
	'once a fast worker has registered, the slow one leaves the next long job to it');

-- With the predictor: a job that takes any GPU is estimated on a typical
-- GPU, which averages over the slow ones too.  Here "mixed" jobs ran 100 s
-- on fast GPUs, 1000 s on slow ones and 600 s where the type was not
-- recorded: a slow GPU is not twice as slow as typical, but the idle fast
-- GPU would still run the job ten times faster.
CREATE TEMP TABLE tt_mixed AS
SELECT 'mixed' AS job_type, NULL::text AS model, NULL::bigint AS dataset_size, NULL::int AS epochs,
	   NULL::int AS batch_size, 4 AS cpus, 1 AS gpus, g AS gpu_type, 8192::bigint AS memory_mb,
	   CASE g WHEN 'fast' THEN 100 WHEN 'slow' THEN 1000 ELSE 600 END * (1 + 0.01 * (i % 3))::float8 AS runtime_s
FROM unnest(ARRAY['fast', 'slow', NULL]) g, generate_series(1, 100) i;
SELECT tinytemp_train_predictor('tt_mixed') AS model_report \gset
:reset
SELECT tinytemp_register_worker('gpu-slow', 8, 16384, 1, 'slow') AS w_gslow \gset
SELECT tinytemp_register_worker('gpu-fast', 8, 16384, 1, 'fast') AS w_gfast \gset
SELECT tinytemp_enqueue('mixed', cpus => 4, memory_mb => 8192, gpus => 1) AS mixed \gset
SELECT ok((SELECT predicted_runtime_s FROM tinytemp.jobs WHERE id = :mixed)
		  BETWEEN tinytemp_predict_runtime('mixed', NULL, NULL, NULL, NULL, 4, 1, 'slow', 8192) / 2
		  AND tinytemp_predict_runtime('mixed', NULL, NULL, NULL, NULL, 4, 1, 'slow', 8192),
	'(its estimate without a GPU type is over half the slow GPU''s)');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :w_gslow),
	'the slow-GPU worker leaves it to the idle fast GPU, ten times faster');
SELECT is((SELECT id FROM tinytemp_claim(:w_gfast)), :mixed::bigint, 'the fast-GPU worker takes it');

SELECT * FROM finish();
ROLLBACK;

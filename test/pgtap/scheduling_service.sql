-- scheduling_service.sql: ranking under uncertainty (0.8).  A job's rank
-- cost is the inverse Gittins index of its runtime distribution (the
-- predictor's median and the spread of its 10-90% interval, or a given
-- runtime) at the service it has had; a preempted job keeps that service
-- (attained_s) and its rank moves with it.  Within a class the planner
-- preempts a running job that has run tinytemp.preemption_min_run when it
-- now costs over four times a waiting job plus tinytemp.preemption_cost
-- (never a job larger than the waiting one), and a job of more than one
-- GPU (or CPU, for CPU work) that has waited past
-- tinytemp.starvation_limit preempts a job that waited less.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(38);

\ir scheduling_setup.psql

-- The rank cost.
SELECT is(tinytemp.rank_cost(1000, NULL, 400), 600::float8, 'a runtime given: the cost is the runtime left');
SELECT is(tinytemp.rank_cost(1000, NULL, 1500), 0::float8, 'and 0 once past it');
SELECT is(tinytemp.rank_cost(0, 1, 10), 0::float8, 'no estimate at all: 0, as before any model');
SELECT ok(tinytemp.rank_cost(100, 0.05, 0) BETWEEN 99 AND 101,
	'a narrow distribution with no service costs its median');
SELECT ok(tinytemp.rank_cost(100, 1, 0) > tinytemp.rank_cost(100, 0.5, 0),
	'with no service, a wider spread of the same median costs more');
SELECT ok(tinytemp.rank_cost(100, 3, 0) < 100,
	'but a very wide one costs less than its median: most such jobs end early');
SELECT ok(tinytemp.rank_cost(100, 1, 1000) > 2 * tinytemp.rank_cost(100, 1, 0),
	'a job that ran 10 medians costs over twice a fresh one: it is one of the long ones');
SELECT ok(tinytemp.rank_cost(100, 1, 300) < tinytemp.rank_cost(100, 1, 1000)
		  AND tinytemp.rank_cost(100, 1, 1000) < tinytemp.rank_cost(100, 1, 10000),
	'past its range, the more service, the more it costs');
SELECT ok(tinytemp.rank_cost(100, 0.2, 90) < tinytemp.rank_cost(100, 0.2, 0),
	'within a narrow range, a job near its median is close to its end');
SELECT ok(tinytemp.rank_cost(100, 0.2, 1000) > 1000,
	'but a job 10 times past a narrow range is taken as mispredicted, and long');
SELECT is(tinytemp.rank_cost(200, 1, 400), 2 * tinytemp.rank_cost(100, 1, 200),
	'the cost scales with the median');
SELECT ok(tinytemp.rank_cost(NULL, 1, 0) IS NULL AND tinytemp.rank_cost(100, 1, NULL) IS NULL,
	'NULL median or service: NULL');
SELECT throws_ok('SELECT tinytemp.rank_cost(-1, 1, 0)', '22023', 'median must be a finite number of at least 0',
	'a negative median is refused');
SELECT throws_ok($$SELECT tinytemp.rank_cost(100, 'NaN', 0)$$, '22023', 'spread must be a finite number of at least 0',
	'a NaN spread is refused');
SELECT throws_ok($$SELECT tinytemp.rank_cost(100, 1, 'infinity')$$, '22023', 'attained must be a finite number of at least 0',
	'infinite service is refused');

-- Enqueue stores the prediction's spread and ranks by the cost at no service.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.aging_rate = 1;
SELECT tinytemp_enqueue('training', model => 'resnet50', dataset_size => 50000, epochs => 2, gpus => 1) AS pred \gset
SELECT ok(predicted_spread > 0 AND predicted_spread = (SELECT ln(p90 / p10) / (2 * 1.2815515655446004)
			FROM tinytemp_predict_runtime_interval('training', 'resnet50', 50000, 2, NULL, 1, 1, NULL, 1024)),
	'the spread stored is the one the 10-90% interval implies')
	FROM tinytemp.jobs WHERE id = :pred;
SELECT ok(abs(rank_key - tinytemp.rank_cost(predicted_runtime_s, predicted_spread, 0)
			  - extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz)) < 1e-3,
	'its rank key is the rank cost at no service plus the aging term')
	FROM tinytemp.jobs WHERE id = :pred;
SELECT tinytemp_enqueue('training', runtime_estimate_s => 500) AS given \gset
SELECT ok(predicted_spread IS NOT NULL AND rank_key = 500 + extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz),
	'a runtime given ranks by itself, the prediction kept beside it')
	FROM tinytemp.jobs WHERE id = :given;
SELECT array_agg(e) AS many FROM tinytemp_enqueue_many('[{"job_type": "training", "gpus": 1},
	{"job_type": "inference", "runtime_estimate_s": 30}]') e \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE id = ANY (:'many') AND predicted_spread > 0), 2::bigint,
	'tinytemp_enqueue_many stores the spreads too');

-- Service preemption: a long job that has run 400 s makes way for a short one.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.preempt_grace = '30s';
SET LOCAL tinytemp.max_preemptions = 3;
SET LOCAL tinytemp.service_preemption = on;
SET LOCAL tinytemp.preemption_min_run = '300s';
SET LOCAL tinytemp.preemption_cost = '60s';
SET LOCAL tinytemp.starvation_limit = '30min';
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 10000) AS long \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:03:20+00';
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 100) AS short \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'after 200 s, short of tinytemp.preemption_min_run, the long job is not preempted');
SET LOCAL tinytemp.clock = '2026-01-01 00:06:40+00';
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb,
	'after 400 s it is: 9,600 s left cost over 4 x 100 s + 60 s');
SELECT results_eq($$SELECT job_id, detail->>'reason', (detail->>'for_job')::bigint FROM tinytemp.jobs_history
					WHERE event = 'preempt_requested'$$,
	format($$VALUES (%s::bigint, 'service', %s::bigint)$$, :long, :short),
	'the history says why: service, for the short job');
SELECT is(tinytemp_heartbeat(:long, :w), 'preempt', 'its heartbeat answers preempt');
SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"step": 40}')$$, :long, :w), 'it checkpoints');
SELECT results_eq(format('SELECT state, attained_s, rank_key - extract(epoch FROM ''2026-01-01 00:00:00+00''::timestamptz) FROM tinytemp.jobs WHERE id = %s', :long),
	$$VALUES ('pending', 400::float8, 10000::float8)$$,
	'pending with 400 s of service; 400 s less to run, 400 s less aging credit: its rank is unchanged');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :short::bigint, 'the short job takes the room');

-- Not when the gain does not pay for the restart.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 800) AS mid \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:06:40+00';
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 100) AS short \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'400 s left is under 4 x 100 s + 60 s: no preemption');

-- A job that has waited past the starvation limit preempts a job that waited less.
SET LOCAL tinytemp.clock = '2026-01-01 00:36:39+00';
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'after 29 min 59 s of waiting, with the running job past its end, still none');
SET LOCAL tinytemp.clock = '2026-01-01 00:36:41+00';
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb,
	'after 30 min 1 s the waiting job preempts the running one, which waited none');
SELECT results_eq($$SELECT job_id, detail->>'reason', (detail->>'for_job')::bigint FROM tinytemp.jobs_history
					WHERE event = 'preempt_requested'$$,
	format($$VALUES (%s::bigint, 'starvation', %s::bigint)$$, :mid, :short),
	'for starvation');

-- Never a larger job, and no starvation rescue for a job of one unit.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 10000) AS wide \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:06:40+00';
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 100) AS narrow \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'a one-CPU job does not preempt a two-CPU one: that one would wait for a hole of its size again');
SET LOCAL tinytemp.clock = '2026-01-01 00:40:00+00';
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'nor after 33 min of waiting: a job of one CPU takes the next one free, fragmentation cannot starve it');

-- tinytemp.service_preemption off: only priority preempts.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.service_preemption = off;
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 10000) AS long \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 02:00:00+00';
SELECT tinytemp_enqueue('inference', cpus => 2, runtime_estimate_s => 100) AS short \gset
SET LOCAL tinytemp.clock = '2026-01-01 03:00:00+00';
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'with service_preemption off, neither the gain nor an hour of waiting preempts');
SET LOCAL tinytemp.service_preemption = on;

-- A preempted job of uncertain runtime falls behind a fresh one of the same kind.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.starvation_limit = 0;
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, gpus => 0, model => 'bert-base', dataset_size => 100, epochs => 1) AS first \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SELECT predicted_runtime_s AS med, predicted_spread AS sp FROM tinytemp.jobs WHERE id = :first \gset
-- It runs 20 medians, then a second job of the same kind arrives and waits.
SELECT ('2026-01-01 00:00:00+00'::timestamptz + make_interval(secs => 20 * :med))::text AS t1 \gset
SET LOCAL tinytemp.clock = :'t1';
SELECT tinytemp_enqueue('training', cpus => 2, gpus => 0, model => 'bert-base', dataset_size => 100, epochs => 1) AS second \gset
SELECT ok(tinytemp.rank_cost(:med, :sp, 20 * :med) > 4 * tinytemp.rank_cost(:med, :sp, 0) + 60,
	'after 20 medians the running job costs over 4 times a fresh one, plus the restart');
SELECT ('2026-01-01 00:00:00+00'::timestamptz + make_interval(secs => 20 * :med + 300))::text AS t2 \gset
SET LOCAL tinytemp.clock = :'t2';
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb, 'so the planner preempts it for the fresh one');
SELECT is(tinytemp_heartbeat(:first, :w), 'preempt', 'its heartbeat answers preempt');
SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{}')$$, :first, :w), 'it checkpoints');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :second::bigint,
	'and the fresh job, not the one with 20 medians of service, is claimed next');

SELECT * FROM finish();
ROLLBACK;

-- predictor_bare.sql: bare requests (model format 6) and the rank cost of
-- gangs.  A request that names no model and gives no dataset_size, epochs
-- or batch_size describes no work: a model whose training rows held fewer
-- than 30 such requests predicts it by the 10th, 50th and 90th percentiles
-- of the runtimes of its job type, not by trees that never saw one.  A
-- gang, never preempted, ranks by its expected runtime.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(19);
-- No retraining by the background worker may replace the models trained here.
LOCK TABLE tinytemp.predictor_models IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMP TABLE boot_q AS
SELECT job_type,
	   exp(percentile_cont(0.1) WITHIN GROUP (ORDER BY ln(runtime_s))) AS p10,
	   exp(percentile_cont(0.5) WITHIN GROUP (ORDER BY ln(runtime_s))) AS p50,
	   exp(percentile_cont(0.9) WITHIN GROUP (ORDER BY ln(runtime_s))) AS p90
FROM tinytemp.bootstrap_jobs GROUP BY job_type;

SELECT tinytemp_train_predictor('tinytemp.bootstrap_jobs') AS report \gset
SELECT model AS boot_model FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1 \gset
SELECT is(tinytemp_predictor_check(:'boot_model'::bytea) ->> 'format', '7', 'the model is stored in format 7');
SELECT is((tinytemp_predictor_check(:'boot_model'::bytea) ->> 'bare_request_models')::int,
		  (tinytemp_predictor_check(:'boot_model'::bytea) ->> 'job_type_models')::int + 1,
	'the synthetic jobs describe their work: the model and every job type''s know bare requests');

-- A bare request: what a job of its type runs, whatever its resources.
SELECT ok(abs(i.p50 / q.p50 - 1) < 1e-6 AND abs(i.p10 / q.p10 - 1) < 1e-6 AND abs(i.p90 / q.p90 - 1) < 1e-6,
	format('a bare training request is predicted by the percentiles of training jobs: %s s (%s to %s)',
		   round(i.p50), round(i.p10), round(i.p90)))
FROM tinytemp_predict_runtime_interval('training', NULL, NULL, NULL, NULL, 8, 1, NULL, 32768) i,
	 boot_q q WHERE q.job_type = 'training';
SELECT is(tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 64, 8, 'h100', 262144),
		  tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 1, 0, NULL, 1024),
	'its resources do not move it: the trees are not asked');
SELECT ok(abs(tinytemp_predict_runtime('inference', NULL, NULL, NULL, NULL, 4, 1, NULL, 8192) / q.p50 - 1) < 1e-6,
	'each job type has its own')
FROM boot_q q WHERE q.job_type = 'inference';
SELECT ok(tinytemp_predict_runtime('training', 'resnet50', NULL, NULL, NULL, 8, 1, NULL, 32768) <> q.p50
		  AND tinytemp_predict_runtime('training', NULL, 100000, NULL, NULL, 8, 1, NULL, 32768) <> q.p50,
	'a request that names its model, or gives its dataset size, is not bare')
FROM boot_q q WHERE q.job_type = 'training';

-- Enqueue stores it with its spread; a gang ranks by its expected runtime.
\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.aging_rate = 1;
SELECT tinytemp_enqueue('training', gpus => 1) AS single \gset
SELECT tinytemp_enqueue('training', gpus => 8, gang_size => 2) AS gang \gset
SELECT ok(abs(predicted_runtime_s / q.p50 - 1) < 1e-6
		  AND abs(predicted_spread - ln(q.p90 / q.p10) / (2 * 1.2815515655446004)) < 1e-9,
	'enqueue stores a bare request''s median and the spread of its interval')
FROM tinytemp.jobs, boot_q q WHERE id = :single AND q.job_type = 'training';
SELECT ok(abs(rank_key - extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz)
			  - tinytemp.rank_cost(predicted_runtime_s, predicted_spread, 0)) < 1e-3,
	'a single job ranks by its Gittins rank cost')
FROM tinytemp.jobs WHERE id = :single;
CREATE TEMP TABLE gang_cost AS
SELECT predicted_runtime_s * (0.95 * exp(predicted_spread ^ 2 / 2)
		+ 0.05 * exp(greatest(predicted_spread, 2) ^ 2 / 2)) AS mean, rank_key, predicted_runtime_s
FROM tinytemp.jobs WHERE gang_id = :gang;
SELECT is((SELECT count(*) FROM gang_cost WHERE abs(rank_key - extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz)
			  - mean) < 1e-6 * mean), 2::bigint,
	format('each member of a bare gang ranks by the gang''s expected runtime: %s s, against a median of %s s',
		   (SELECT round(mean) FROM gang_cost LIMIT 1), (SELECT round(predicted_runtime_s) FROM gang_cost LIMIT 1)));
SELECT ok((SELECT min(rank_key) FROM tinytemp.jobs WHERE gang_id = :gang)
		  > 100 * (SELECT rank_key - extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz) FROM tinytemp.jobs WHERE id = :single)
		  + extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz),
	'so that a bare gang, whose run nobody can stop, waits behind bare single jobs of the same time');
SELECT tinytemp_enqueue('training', gpus => 8, gang_size => 2, runtime_estimate_s => 700) AS given \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :given
			AND rank_key = 700 + extract(epoch FROM '2026-01-01 00:00:00+00'::timestamptz)), 2::bigint,
	'a gang given its runtime ranks by that runtime, as before');

-- The planner ranks by the same costs: two workers, room for one of the gangs.
SELECT tinytemp_cancel(:single) \g /dev/null
SELECT tinytemp_register_worker('bare-w1', 64, 524288, 8, 'a100') \g /dev/null
SELECT tinytemp_register_worker('bare-w2', 64, 524288, 8, 'a100') \g /dev/null
SET LOCAL tinytemp.clock = '2026-01-01 00:10:00+00';
SELECT tinytemp_schedule() \g /dev/null
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :given AND state = 'assigned'), 2::bigint,
	'the planner places the gang given its runtime on the two workers')
;
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :gang AND state = 'assigned'), 0::bigint,
	'and the bare gang, ranked behind it, waits (by the Gittins cost it would have gone first)');

-- Training on a source with 30 bare requests or more: the trees learn them.
CREATE TEMP TABLE bare_train AS
SELECT job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb, runtime_s
FROM tinytemp_synthetic_jobs(2000, 43);
INSERT INTO bare_train (job_type, cpus, gpus, memory_mb, runtime_s)
SELECT 'training', 4 * g, g, 32768 * g, 600 * g * (1 + (r % 5) / 10.0)
FROM generate_series(1, 400) r, (VALUES (1), (8)) AS s(g);
SELECT tinytemp_train_predictor('bare_train') \g /dev/null
SELECT ok((tinytemp_predictor_check(model) ->> 'bare_request_models')::int
		  < (tinytemp_predictor_check(model) ->> 'job_type_models')::int + 1,
	'a job type trained on bare requests has no percentiles for them')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;
SELECT ok(tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 32, 8, NULL, 262144)
		  > 4 * tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 4, 1, NULL, 32768),
	format('its trees tell bare requests apart by what they ask for: %s s on 8 GPUs, %s s on 1',
		   round(tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 32, 8, NULL, 262144)),
		   round(tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 4, 1, NULL, 32768))));

-- Format 5 is format 7 without the overheads' section (see
-- predictor_overhead.sql) and the bare requests' one: a flag (uint32) for
-- the model and each job type's, and three float8s for each known.
CREATE TEMP TABLE byte_order AS SELECT get_byte(:'boot_model'::bytea, 4) <> 0 AS little_endian;
CREATE TEMP TABLE cut AS
SELECT substring(m FROM 1 FOR length(m) - overheads) AS m,
	   4 * (1 + (c ->> 'job_type_models')::int) + 24 * (c ->> 'bare_request_models')::int AS section
FROM (SELECT :'boot_model'::bytea AS m, tinytemp_predictor_check(:'boot_model'::bytea) AS c,
			 4 * (1 + (tinytemp_predictor_check(:'boot_model'::bytea) ->> 'job_type_models')::int)
			 + 8 * (2 + (tinytemp_predictor_check(:'boot_model'::bytea) ->> 'models')::int)
			 * (tinytemp_predictor_check(:'boot_model'::bytea) ->> 'overhead_models')::int AS overheads) s;
CREATE TEMP TABLE format5 AS
SELECT overlay(substring(m FROM 1 FOR length(m) - section)
			   PLACING CASE WHEN (SELECT little_endian FROM byte_order) THEN '\x05000000'::bytea
							ELSE '\x00000005'::bytea END FROM 5 FOR 4) AS model
FROM cut;
SELECT is(tinytemp_predictor_check(model) - 'format' - 'bare_request_models' - 'overhead_models',
		  tinytemp_predictor_check(:'boot_model'::bytea) - 'format' - 'bare_request_models' - 'overhead_models',
	'cut so, the model still loads: the same model without the sections')
FROM format5;
SELECT is(tinytemp_predictor_check(model) ->> 'format', '5', 'as one of format 5') FROM format5;
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						overlay(m PLACING '\x02'::bytea FROM length(m) - section + 1
								+ CASE WHEN (SELECT little_endian FROM byte_order) THEN 0 ELSE 3 END FOR 1)),
	'XX001', NULL, 'a flag of bare requests that is neither 0 nor 1 is corrupt')
FROM cut;
INSERT INTO tinytemp.predictor_models (source, rows_used, train_seconds, params, model)
SELECT 'format 5', 1, 0, '{}', model FROM format5;
SELECT ok(tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, 8, 1, NULL, 32768) <> q.p50,
	'under a model of format 5, a bare request goes to the trees, as it did')
FROM boot_q q WHERE q.job_type = 'training';

SELECT * FROM finish();
ROLLBACK;

-- predictor_overhead.sql: the predictor's overheads (model format 7).  The
-- linear part of each model (and of each job type's) is the work on top of
-- an overhead of the job's model, a runtime it pays whatever it does, when
-- that fits the training rows better: a short job is mostly overhead, a
-- long one mostly work, which one line in log space cannot both follow.
-- Held-out accuracy on the synthetic jobs, a cost that does not shrink with
-- the work, a source without one, and the stored section.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(16);
-- No retraining by the background worker may replace the models trained here.
LOCK TABLE tinytemp.predictor_models IN SHARE ROW EXCLUSIVE MODE;

-- The synthetic jobs: median APE at most 0.12 on 5,000 held-out jobs, as
-- bench/predictor_bench.sh measures it (20,000 rows of seed 1, seed 2).
CREATE TEMP TABLE oh_train AS SELECT * FROM tinytemp_synthetic_jobs(20000, 1);
CREATE TEMP TABLE oh_test AS SELECT * FROM tinytemp_synthetic_jobs(5000, 2);
SELECT tinytemp_train_predictor('oh_train') AS report \gset
SELECT model AS syn_model FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1 \gset
SELECT is(tinytemp_predictor_check(:'syn_model'::bytea) ->> 'format', '7', 'the model is stored in format 7');
SELECT is((tinytemp_predictor_check(:'syn_model'::bytea) ->> 'overhead_models')::int,
		  (tinytemp_predictor_check(:'syn_model'::bytea) ->> 'job_type_models')::int + 1,
	'the synthetic jobs pay start-up costs: the model and every job type''s have overheads');
CREATE TEMP TABLE oh_ape AS
SELECT abs(tinytemp_predict_runtime(job_type, model, dataset_size, epochs, batch_size, cpus, gpus,
									gpu_type, memory_mb) / runtime_s - 1) AS ape
FROM oh_test;
SELECT ok(mdape <= 0.12, format('held-out median APE at most 0.12: %s', round(mdape::numeric, 4)))
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ape) AS mdape FROM oh_ape) s;
SELECT ok((:'report'::jsonb ->> 'cv_mdape')::float8 <= 0.12,
	'and so does cross-validation on the training rows: ' || (:'report'::jsonb ->> 'cv_mdape'));

-- Format 6 is format 7 without the overheads' section: a uint32 flag for
-- the model and each job type's and, for each with overheads, those of
-- NULL, unseen and each model as float8s.
CREATE TEMP TABLE byte_order AS SELECT get_byte(:'syn_model'::bytea, 4) <> 0 AS little_endian;
CREATE TEMP TABLE cut AS
SELECT m, 4 * (1 + (c ->> 'job_type_models')::int)
		  + 8 * (2 + (c ->> 'models')::int) * (c ->> 'overhead_models')::int AS section
FROM (SELECT :'syn_model'::bytea AS m, tinytemp_predictor_check(:'syn_model'::bytea) AS c) s;
CREATE TEMP TABLE format6 AS
SELECT overlay(substring(m FROM 1 FOR length(m) - section)
			   PLACING CASE WHEN (SELECT little_endian FROM byte_order) THEN '\x06000000'::bytea
							ELSE '\x00000006'::bytea END FROM 5 FOR 4) AS model
FROM cut;
SELECT is(tinytemp_predictor_check(model) - 'format' - 'overhead_models',
		  tinytemp_predictor_check(:'syn_model'::bytea) - 'format' - 'overhead_models',
	'cut so, the model still loads: the same model without the section')
FROM format6;
SELECT is(tinytemp_predictor_check(model) ->> 'format', '6', 'as one of format 6, without overheads')
FROM format6;
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						overlay(m PLACING '\x02'::bytea FROM length(m) - section + 1
								+ CASE WHEN (SELECT little_endian FROM byte_order) THEN 0 ELSE 3 END FOR 1)),
	'XX001', NULL, 'a flag of overheads that is neither 0 nor 1 is corrupt')
FROM cut;
-- The model's own overhead of NULL models, right after its flag.
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						overlay(m PLACING pg_temp_f8 FROM length(m) - section + 5 FOR 8)),
	'XX001', NULL, 'an overhead of a million log seconds is corrupt')
FROM cut, (SELECT CASE WHEN (SELECT little_endian FROM byte_order)
					   THEN (SELECT string_agg(substring(float8send(1e6) FROM i FOR 1), ''::bytea ORDER BY i DESC)
							 FROM generate_series(1, 8) i)
					   ELSE float8send(1e6) END AS pg_temp_f8) f;
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						substring(m FROM 1 FOR length(m) - 8)),
	'XX001', NULL, 'a model cut short in its overheads is corrupt')
FROM cut;

-- A cost that does not shrink with the work: 30 s of start-up, then 10 ms
-- a sample, over 1,000 to 1,000,000 samples (40 s to 2.8 h).  A job of 10
-- samples, smaller than any the model saw, runs 30.1 s; a line in log
-- space through the training rows would go on down towards 0.1 s.
CREATE TEMP TABLE startup AS
SELECT (ARRAY['training', 'evaluation'])[1 + r % 2] AS job_type, 'resnet50'::text AS model,
	   (1000 * 1000 ^ ((r % 997) / 996.0))::bigint AS dataset_size, 1 AS epochs, 32 AS batch_size,
	   8 AS cpus, 1 AS gpus, 'a100'::text AS gpu_type, 65536::bigint AS memory_mb,
	   (30 + 0.01 * (1000 * 1000 ^ ((r % 997) / 996.0))::bigint) * exp(0.05 * sin(r)) AS runtime_s
FROM generate_series(1, 1200) r;
SELECT tinytemp_train_predictor('startup') AS report \gset
SELECT is((tinytemp_predictor_check(model) ->> 'overhead_models')::int, 3,
	'a source with a start-up cost gets overheads')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;
SELECT ok(p BETWEEN 30.1 / 1.25 AND 30.1 * 1.25,
	format('a job smaller than any trained on is predicted by its overhead: %s s (it runs 30.1 s)', round(p::numeric, 1)))
FROM (SELECT tinytemp_predict_runtime('training', 'resnet50', 10, 1, 32, 8, 1, 'a100', 65536) AS p) s;
SELECT ok(p BETWEEN 10030 / 1.25 AND 10030 * 1.25,
	format('a long one by its work: %s s (it runs 10,030 s)', round(p::numeric)))
FROM (SELECT tinytemp_predict_runtime('training', 'resnet50', 1000000, 1, 32, 8, 1, 'a100', 65536) AS p) s;

-- The same far below any log runtime the loader takes for an overhead
-- (e^-40 s): the overheads stay within it, and the model loads.
CREATE TEMP TABLE tiny AS
SELECT job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb,
	   runtime_s * 1e-25 AS runtime_s
FROM startup;
SELECT lives_ok($$SELECT tinytemp_train_predictor('tiny')$$, 'runtimes of 1e-24 s train a model');
SELECT ok(tinytemp_predict_runtime('training', 'resnet50', 1000, 1, 32, 8, 1, 'a100', 65536) < 1e-20,
	'which loads and predicts them')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;

-- Work alone, 10 ms a sample: no overhead fits better than none.
CREATE TEMP TABLE no_startup AS
SELECT job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb,
	   0.01 * dataset_size * exp(0.05 * sin(dataset_size)) AS runtime_s
FROM startup;
SELECT tinytemp_train_predictor('no_startup') AS report \gset
SELECT is((tinytemp_predictor_check(model) ->> 'overhead_models')::int, 0,
	'a source without one gets none, and its model stays a line in log space')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;
SELECT ok(p < 0.5,
	format('so a job of 10 samples is predicted by its work, far below the shortest trained on (10 s): %s s (it runs 0.1 s)',
		   round(p::numeric, 3)))
FROM (SELECT tinytemp_predict_runtime('training', 'resnet50', 10, 1, 32, 8, 1, 'a100', 65536) AS p) s;

SELECT * FROM finish();
ROLLBACK;

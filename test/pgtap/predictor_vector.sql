-- predictor_vector.sql: the trees evaluated eight at a time with vector
-- instructions (tinytemp.predictor_vector, where the processor has AVX2)
-- give the same predictions, to the bit, as one tree at a time: for the
-- bootstrap model (job types' models of 400 trees, the model on all rows of
-- 100, neither a multiple of eight plus the rest), for a model trained here,
-- for every kind of job, the interval's bounds too.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(8);

CREATE TEMP TABLE vector_jobs AS SELECT * FROM tinytemp_synthetic_jobs(4000, 41);
-- Requests of job types no model has, and bare ones, go to the model on all rows.
INSERT INTO vector_jobs (job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb, runtime_s)
SELECT 'unknown-type', NULL, NULL, NULL, NULL, 1 + i % 64, i % 9, CASE WHEN i % 9 > 0 THEN 'a100' END,
	   1024 * (1 + i % 256), 1
FROM generate_series(1, 500) i;
INSERT INTO vector_jobs (job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type, memory_mb, runtime_s)
SELECT 'unknown-type', 'resnet50', 1000 * i, 1 + i % 50, 8 << (i % 6), 1 + i % 32, i % 5, 'h100', 2048 * i, 1
FROM generate_series(1, 500) i;

CREATE FUNCTION pg_temp.vector_predictions(vector boolean)
RETURNS TABLE (n bigint, point float8, p10 float8, p50 float8, p90 float8)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('tinytemp.predictor_vector', vector::text, true);
	RETURN QUERY
	SELECT row_number() OVER (), tinytemp_predict_runtime(j.job_type, j.model, j.dataset_size, j.epochs,
														  j.batch_size, j.cpus, j.gpus, j.gpu_type, j.memory_mb),
		   i.p10, i.p50, i.p90
	FROM vector_jobs j,
		 LATERAL tinytemp_predict_runtime_interval(j.job_type, j.model, j.dataset_size, j.epochs,
												   j.batch_size, j.cpus, j.gpus, j.gpu_type, j.memory_mb) i;
END $$;

SELECT is(current_setting('tinytemp.predictor_vector'), 'on', 'tinytemp.predictor_vector is on by default');

CREATE TEMP TABLE vector_on AS SELECT * FROM pg_temp.vector_predictions(true);
CREATE TEMP TABLE vector_off AS SELECT * FROM pg_temp.vector_predictions(false);
SELECT is((SELECT count(*) FROM vector_on WHERE point > 0), 5000::bigint,
	'the bootstrap model predicts all 5,000 jobs');
SELECT is((SELECT count(*) FROM vector_on a JOIN vector_off b USING (n)
		   WHERE a.point = b.point AND a.p10 = b.p10 AND a.p50 = b.p50 AND a.p90 = b.p90), 5000::bigint,
	'with the bootstrap model, every prediction and bound is the same with and without vectors');

-- A model trained here, reloaded by the next prediction.
CREATE TEMP TABLE vector_train AS SELECT * FROM tinytemp_synthetic_jobs(4000, 42);
SELECT ok((tinytemp_train_predictor('vector_train')->>'job_type_models')::int = 4,
	'a model of 4,000 rows has a model of its own for each of the 4 job types');
DROP TABLE vector_on, vector_off;
CREATE TEMP TABLE vector_on AS SELECT * FROM pg_temp.vector_predictions(true);
CREATE TEMP TABLE vector_off AS SELECT * FROM pg_temp.vector_predictions(false);
SELECT is((SELECT count(*) FROM vector_on a JOIN vector_off b USING (n)
		   WHERE a.point = b.point AND a.p10 = b.p10 AND a.p50 = b.p50 AND a.p90 = b.p90), 5000::bigint,
	'with the new model, every prediction and bound is the same with and without vectors');
SELECT isnt((SELECT count(DISTINCT round(point::numeric, 6)) FROM vector_on), 1::bigint,
	'and the predictions differ from job to job (the comparison compares something)');

-- The setting is a user's: it changes no prediction, only how fast it comes.
SELECT is(set_config('tinytemp.predictor_vector', 'off', true), 'off', 'any user may turn it off');
SELECT throws_ok($$SET tinytemp.predictor_vector = 'sometimes'$$, '22023', NULL,
	'a value that is not a boolean is refused');

SELECT * FROM finish();
ROLLBACK;

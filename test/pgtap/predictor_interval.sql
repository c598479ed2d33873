-- predictor_interval.sql: the predicted runtime as a 10-90% interval
-- (tinytemp_predict_runtime_interval): ordered bounds around the point
-- prediction, the coverage it claims and the one it gets on held-out jobs,
-- bad input, grants, and models stored before intervals.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(16);

CREATE TEMP TABLE interval_train AS SELECT * FROM tinytemp_synthetic_jobs(6000, 31);
CREATE TEMP TABLE interval_test AS SELECT * FROM tinytemp_synthetic_jobs(3000, 32);
SELECT tinytemp_train_predictor('interval_train') AS report \gset

SELECT ok((:'report'::jsonb ->> 'cv_interval_coverage')::float8 BETWEEN 0.75 AND 0.85,
	'the training reports a cross-validated coverage near 80%: ' || (:'report'::jsonb ->> 'cv_interval_coverage'));
SELECT ok((:'report'::jsonb ->> 'interval_bins')::int > 1,
	'6,000 rows give the interval several bins of predicted runtime');

CREATE TEMP TABLE interval_pred AS
SELECT t.runtime_s, i.p10, i.p50, i.p90,
	   tinytemp_predict_runtime(t.job_type, t.model, t.dataset_size, t.epochs, t.batch_size, t.cpus,
								t.gpus, t.gpu_type, t.memory_mb) AS point
FROM interval_test t,
	 LATERAL tinytemp_predict_runtime_interval(t.job_type, t.model, t.dataset_size, t.epochs,
											   t.batch_size, t.cpus, t.gpus, t.gpu_type, t.memory_mb) i;

SELECT is((SELECT count(*) FROM interval_pred WHERE p10 IS NULL OR p50 IS NULL OR p90 IS NULL), 0::bigint,
	'every held-out job gets all three values');
SELECT is((SELECT count(*) FROM interval_pred WHERE NOT (p10 <= p50 AND p50 <= p90)), 0::bigint,
	'p10 <= p50 <= p90 for every held-out job');
SELECT ok((SELECT bool_and(p10 < p90) FROM interval_pred), 'and the interval is never a single point');
SELECT is((SELECT count(*) FROM interval_pred WHERE p50 IS DISTINCT FROM point), 0::bigint,
	'p50 is tinytemp_predict_runtime''s prediction');
SELECT ok(cov BETWEEN 0.72 AND 0.88, format('held-out coverage of the 10-90%% interval: %s', round(cov::numeric, 3)))
FROM (SELECT avg((runtime_s BETWEEN p10 AND p90)::int)::float8 AS cov FROM interval_pred) s;

-- Unseen categories and NULL inputs still get an ordered interval.
SELECT ok(p10 > 0 AND p10 <= p50 AND p50 <= p90, 'unseen categories and NULL inputs: an ordered interval')
FROM tinytemp_predict_runtime_interval('never-seen', 'never-seen', NULL, NULL, NULL, NULL, NULL, 'tpu', NULL);

-- Bad input, as for tinytemp_predict_runtime.
SELECT throws_ok($$SELECT * FROM tinytemp_predict_runtime_interval('training', 'resnet50', -1, 10, 64, 8, 1, 'a100', 32000)$$,
	'22023', 'dataset_size must not be negative', 'a negative dataset_size: 22023');
SELECT throws_ok($$SELECT * FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100, 10, 64, 8, -2, 'a100', 32000)$$,
	'22023', 'gpus must not be negative', 'a negative gpus: 22023');

-- The grants of tinytemp_predict_runtime.
SELECT ok(has_function_privilege('tinytemp_submitter',
	'tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)', 'EXECUTE')
	AND has_function_privilege('tinytemp_worker',
	'tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)', 'EXECUTE')
	AND has_function_privilege('tinytemp_admin',
	'tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)', 'EXECUTE'),
	'submitters, workers and admins may call it');
SELECT ok(NOT has_function_privilege('public',
	'tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)', 'EXECUTE'),
	'PUBLIC may not');

-- A model of format 2, stored before intervals: the same bytes with format 2
-- in the header (native byte order) and without the interval at the end (its
-- bin count, the edges between bins, a low and a high bound per bin).
SELECT model AS new_model, (tinytemp_predictor_check(model) ->> 'interval_bins')::int AS bins
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1 \gset
SELECT set_byte(substring(:'new_model'::bytea FROM 1 FOR length(:'new_model'::bytea) - (4 + 8 * (:bins - 1) + 16 * :bins)),
				CASE WHEN get_byte(:'new_model'::bytea, 4) = 3 THEN 4 ELSE 7 END, 2) AS old_model
\gset
SELECT is(tinytemp_predictor_check(:'old_model') ->> 'interval_bins', '0',
	'a model of format 2 still loads, with no interval');
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						substring(:'new_model'::bytea FROM 1 FOR length(:'new_model'::bytea) - 8)),
	'XX001', NULL, 'a model of format 3 cut short in its interval is corrupt');

INSERT INTO tinytemp.predictor_models (source, rows_used, train_seconds, params, model)
VALUES ('format 2', 6000, 0, '{}', :'old_model');
SELECT ok(p10 IS NULL AND p90 IS NULL, 'under a model of format 2, p10 and p90 are NULL')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);
SELECT is(p50, tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000),
	'and p50 is still the prediction')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);

SELECT * FROM finish();
ROLLBACK;

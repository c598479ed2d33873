-- predictor_interval.sql: the predicted runtime as a 10-90% interval
-- (tinytemp_predict_runtime_interval): ordered bounds around the point
-- prediction, the coverage it claims and the one it gets on held-out jobs,
-- bad input, grants, and models stored by earlier versions.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(21);

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

-- Models stored by earlier versions still load and predict with the features
-- of their time: one tree of depth 1 on feature 3 (log1p of dataset_size)
-- around a base of log(100 s), built field by field in native byte order
-- (that of the current model's header).  Format 3 adds the interval (bin
-- count, no edges for one bin, low and high bound) to format 2.
SELECT model AS new_model FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1 \gset
CREATE TEMP TABLE byte_order AS SELECT get_byte(:'new_model'::bytea, 4) <> 0 AS little_endian;
CREATE FUNCTION pg_temp.native(b bytea) RETURNS bytea LANGUAGE sql AS $$
	SELECT CASE WHEN (SELECT little_endian FROM byte_order) THEN
		(SELECT string_agg(substring(b FROM i FOR 1), ''::bytea ORDER BY i DESC) FROM generate_series(1, length(b)) i)
		ELSE b END
$$;
CREATE FUNCTION pg_temp.u32(v int) RETURNS bytea LANGUAGE sql AS $$ SELECT pg_temp.native(int4send(v)) $$;
CREATE FUNCTION pg_temp.f8(v float8) RETURNS bytea LANGUAGE sql AS $$ SELECT pg_temp.native(float8send(v)) $$;
CREATE FUNCTION pg_temp.f4(v float4) RETURNS bytea LANGUAGE sql AS $$ SELECT pg_temp.native(float4send(v)) $$;
CREATE FUNCTION pg_temp.old_model(format int) RETURNS bytea LANGUAGE sql AS $$
	SELECT pg_temp.u32(1414809410) || pg_temp.u32(format) || pg_temp.u32(13) || pg_temp.u32(1) || pg_temp.u32(1)
		|| pg_temp.f8(ln(100))
		|| pg_temp.u32(0) || pg_temp.f8(0) || pg_temp.u32(0) || pg_temp.f8(0) || pg_temp.u32(0) || pg_temp.f8(0)
		|| pg_temp.u32(3) || pg_temp.f4(10) || pg_temp.f4(0) || pg_temp.f4(1)
		|| CASE WHEN format = 3 THEN pg_temp.u32(1) || pg_temp.f8(-0.5) || pg_temp.f8(0.5) ELSE ''::bytea END
$$;
SELECT is(tinytemp_predictor_check(pg_temp.old_model(2)) ->> 'interval_bins', '0',
	'a model of format 2 still loads, with no interval');
SELECT throws_ok(format('SELECT tinytemp_predictor_check(%L::bytea)',
						substring(:'new_model'::bytea FROM 1 FOR length(:'new_model'::bytea) - 8)),
	'XX001', NULL, 'a model cut short in its last section is corrupt');

-- Format 4 is format 7 without the overheads' section (a uint32 flag for
-- the model and each job type's, and for each with overheads those of NULL,
-- unseen and each model, float8s), the bare requests' section (the same
-- flags, three float8s for each known) and the history of requests: from a
-- source with no tenants, queues or params, 60 bytes (three pairs of
-- float8s, two uint32 row counts, a key count of 0).
SELECT is(tinytemp_predictor_check(:'new_model'::bytea) ->> 'history_keys', '0',
	'a source without tenants, queues or params gives an empty history');
CREATE TEMP TABLE format4 AS
SELECT overlay(substring(m FROM 1 FOR length(m) - 60 - 8 * (1 + (c ->> 'job_type_models')::int)
						 - 24 * (c ->> 'bare_request_models')::int
						 - 8 * (2 + (c ->> 'models')::int) * (c ->> 'overhead_models')::int)
			   PLACING pg_temp.u32(4) FROM 5 FOR 4) AS model
FROM (SELECT :'new_model'::bytea AS m, tinytemp_predictor_check(:'new_model'::bytea) AS c) s;
SELECT is(tinytemp_predictor_check(model) ->> 'format', '4', 'cut so, the model is one of format 4')
FROM format4;
SELECT is(tinytemp_predictor_check(model) - 'format' - 'bare_request_models' - 'overhead_models',
		  tinytemp_predictor_check(:'new_model'::bytea) - 'format' - 'bare_request_models' - 'overhead_models',
	'which still loads: the same model without its history, bare requests and overheads')
FROM format4;

INSERT INTO tinytemp.predictor_models (source, rows_used, train_seconds, params, model)
VALUES ('format 3', 1, 0, '{}', pg_temp.old_model(3));
SELECT ok(abs(p50 / (100 * exp(1)) - 1) < 1e-9 AND abs(p10 / (p50 * exp(-0.5)) - 1) < 1e-9
		  AND abs(p90 / (p50 * exp(0.5)) - 1) < 1e-9,
	'a model of format 3 still predicts with its own features and interval')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);

INSERT INTO tinytemp.predictor_models (source, rows_used, train_seconds, params, model)
VALUES ('format 2', 1, 0, '{}', pg_temp.old_model(2));
SELECT ok(p10 IS NULL AND p90 IS NULL, 'under a model of format 2, p10 and p90 are NULL')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);
SELECT is(p50, tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000),
	'and p50 is still the prediction')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);
SELECT ok(abs(p50 / 100 - 1) < 1e-9, 'which follows its own tree: a small dataset takes the base')
FROM tinytemp_predict_runtime_interval('training', 'resnet50', 1000, 10, 64, 8, 1, 'a100', 32000);

SELECT * FROM finish();
ROLLBACK;

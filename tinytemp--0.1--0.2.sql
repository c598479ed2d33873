/* tinytemp--0.1--0.2.sql: the runtime predictor, and job checkpoints */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.2'" to load this file. \quit

-- Checkpoints: a running job saves where it has got to; its next run resumes from there.
CREATE FUNCTION tinytemp_checkpoint(job_id bigint, worker_id bigint, checkpoint jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'tinytemp_checkpoint'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_checkpoint(bigint, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_checkpoint(bigint, bigint, jsonb) TO tinytemp_worker;

-- SYNTHETIC DATA GENERATOR (src/synthetic.c) --

-- Simulated jobs with their runtimes, the same rows for the same n and seed:
-- the predictor's first training data and the benchmark's.
CREATE FUNCTION tinytemp_synthetic_jobs(n int, seed int DEFAULT 1)
RETURNS TABLE (job_type text, model text, dataset_size bigint, epochs int, batch_size int,
			   cpus int, gpus int, gpu_type text, memory_mb bigint, runtime_s float8)
AS 'MODULE_PATHNAME', 'tinytemp_synthetic_jobs'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

REVOKE ALL ON FUNCTION tinytemp_synthetic_jobs(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_synthetic_jobs(int, int) TO tinytemp_admin, tinytemp_submitter;

-- PREDICTOR (src/predictor.c) --

-- Trained models; the highest version is the current one.
CREATE TABLE tinytemp.predictor_models (
	version			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	trained_at		timestamptz NOT NULL DEFAULT now(),
	source			text NOT NULL,
	rows_used		int NOT NULL CHECK (rows_used > 0),
	cv_mdape		float8,
	cv_r2_log		float8,
	train_seconds	float8 NOT NULL CHECK (train_seconds >= 0),
	params			jsonb NOT NULL,
	model			bytea NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('tinytemp.predictor_models', '');

CREATE FUNCTION tinytemp_predict_runtime(job_type text, model text, dataset_size bigint, epochs int,
										 batch_size int, cpus int, gpus int, gpu_type text,
										 memory_mb bigint)
RETURNS float8
AS 'MODULE_PATHNAME', 'tinytemp_predict_runtime'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION tinytemp_train_predictor(source regclass DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tinytemp_train_predictor'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION tinytemp_predictor_check(model bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tinytemp_predictor_check'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

REVOKE ALL ON tinytemp.predictor_models FROM PUBLIC;
REVOKE ALL ON FUNCTION
	tinytemp_predict_runtime(text, text, bigint, int, int, int, int, text, bigint),
	tinytemp_train_predictor(regclass),
	tinytemp_predictor_check(bytea)
FROM PUBLIC;
GRANT SELECT ON tinytemp.predictor_models TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;
GRANT EXECUTE ON FUNCTION tinytemp_predict_runtime(text, text, bigint, int, int, int, int, text, bigint)
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;
GRANT EXECUTE ON FUNCTION tinytemp_train_predictor(regclass), tinytemp_predictor_check(bytea)
	TO tinytemp_admin;

-- A fresh install predicts sensibly before any job has run: the first model
-- learns from simulated jobs, and the background worker replaces it with
-- models of the runtimes this cluster measures.
CREATE VIEW tinytemp.bootstrap_jobs AS
	SELECT * FROM tinytemp_synthetic_jobs(5000, 20261124);
SELECT tinytemp_train_predictor('tinytemp.bootstrap_jobs');

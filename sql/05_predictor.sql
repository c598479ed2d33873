-- The runtime predictor: the bootstrap model, training from a table and from
-- history, predictions at enqueue, bad input, and corrupt models.
SET client_min_messages = warning;
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers RESTART IDENTITY;

-- A fresh install already has a model, learnt from simulated jobs.
SELECT source, rows_used, cv_mdape < 0.5 AS useful, train_seconds < 10 AS quick
FROM tinytemp.predictor_models ORDER BY version LIMIT 1;

-- Predictions follow the work and the hardware.
SELECT tinytemp_predict_runtime('training', 'resnet50', 100000, 40, 64, 8, 1, 'a100', 32000)
     > tinytemp_predict_runtime('training', 'resnet50', 100000, 5, 64, 8, 1, 'a100', 32000)
       AS more_epochs_take_longer,
       tinytemp_predict_runtime('training', 'resnet50', 1000000, 10, 64, 8, 1, 'a100', 32000)
     > tinytemp_predict_runtime('training', 'resnet50', 10000, 10, 64, 8, 1, 'a100', 32000)
       AS more_data_takes_longer,
       tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 0, NULL, 32000)
     > tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 4, 'a100', 32000)
       AS gpus_are_faster_than_cpus;

-- Unseen categories and NULL features still get a positive prediction.
SELECT tinytemp_predict_runtime('never-seen', 'never-seen', NULL, NULL, NULL, NULL, NULL, 'tpu', NULL) > 0
       AS unseen_and_null;

-- Negative sizes are refused.
SELECT tinytemp_predict_runtime('training', 'resnet50', -1, 10, 64, 8, 1, 'a100', 32000);
SELECT tinytemp_predict_runtime('training', 'resnet50', 100, 10, 64, 8, -2, 'a100', 32000);

-- Training from a table: deterministic, and the newest model is current.
CREATE TABLE sim AS SELECT * FROM tinytemp_synthetic_jobs(3000, 7);
CREATE TEMP TABLE reports AS SELECT tinytemp_train_predictor('sim') AS r;
INSERT INTO reports SELECT tinytemp_train_predictor('sim');
SELECT r->>'source' AS source, r->'rows' AS rows, r->'cv_folds' AS folds, r->'trees' AS trees,
       (r->>'cv_mdape')::float8 < 0.5 AS useful
FROM reports LIMIT 1;
SELECT count(DISTINCT r->>'cv_mdape') = 1 AS same_error_twice,
       count(DISTINCT r->>'version') = 2 AS two_versions
FROM reports;
SELECT version = (SELECT max((r->>'version')::bigint) FROM reports) AS newest_is_current
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;

-- Enqueue stores the prediction for the job's request.
SELECT tinytemp_enqueue('training', 'bert-base', dataset_size => 50000, epochs => 3, batch_size => 32,
                        cpus => 4, gpus => 1, gpu_type => 'v100', memory_mb => 16000);
SELECT predicted_runtime_s = tinytemp_predict_runtime('training', 'bert-base', 50000, 3, 32, 4, 1,
                                                      'v100', 16000) AS stored_at_enqueue
FROM tinytemp.jobs WHERE id = 1;

-- Training from history needs runtimes that really were measured.
SELECT tinytemp_train_predictor();
SELECT tinytemp_register_worker('w', 64, 262144, 8, 'a100');
SELECT count(*) FROM (
  SELECT tinytemp_enqueue(t.job_type, t.model, '{}', 0, t.dataset_size, t.epochs, t.batch_size,
                          1, 1024, 0, NULL)
  FROM sim t LIMIT 40) s;
SELECT count(tinytemp_ack(id, 1)) FROM tinytemp_claim(1, 100);
UPDATE tinytemp.jobs SET started_at = finished_at - make_interval(secs => 10 + id) WHERE state = 'succeeded';
SELECT r->>'source' AS source, r->'rows' AS rows
FROM (SELECT tinytemp_train_predictor() AS r) s;

-- A corrupt model is refused with a clear error, never a crash; as the
-- current model, it only turns predictions off.
SELECT tinytemp_predictor_check(model) ->> 'trees' AS trees FROM tinytemp.predictor_models
ORDER BY version DESC LIMIT 1;
SELECT tinytemp_predictor_check('\x00');
SELECT tinytemp_predictor_check(substring(model FROM 1 FOR length(model) - 3))
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;
SELECT tinytemp_enqueue('training', 'resnet50', dataset_size => 1000, epochs => 1) AS before_damage \gset
UPDATE tinytemp.predictor_models SET model = overlay(model PLACING '\x00000000' FROM 1 FOR 4)
WHERE version = (SELECT max(version) FROM tinytemp.predictor_models);
\c
SET client_min_messages = warning;
SELECT tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000);

-- Claims and enqueues go on without predictions, and the session is warned only once.
SELECT tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000) IS NULL AS no_prediction;
SELECT tinytemp_enqueue('training', 'resnet50', dataset_size => 1000, epochs => 1) AS unpredicted_job \gset
SELECT predicted_runtime_s IS NULL AS unpredicted FROM tinytemp.jobs WHERE id = :unpredicted_job;
SELECT count(*) AS claimed FROM tinytemp_claim(1, 2);   -- one enqueued before the damage, one after

-- Randomized damage: 20,000 mutated models, each refused with XX001 or read
-- whole; the server survives them all.  Half the byte mutations aim at the
-- first 300 bytes, where the header, counts and category names live.
DO $$
DECLARE
	good bytea := (SELECT model FROM tinytemp.predictor_models WHERE cv_mdape IS NOT NULL
				   ORDER BY version LIMIT 1);
	bad bytea;
	refused int := 0;
	accepted int := 0;
	pos int;
BEGIN
	PERFORM setseed(0.42);
	FOR i IN 1..20000 LOOP
		bad := good;
		IF i % 4 = 0 THEN
			bad := substring(bad FROM 1 FOR (random() * length(bad))::int);
		ELSIF i % 4 = 1 THEN
			bad := bad || substring(bad FROM 1 FOR 1 + (random() * 16)::int);
		ELSE
			FOR k IN 1..1 + (random() * 3)::int LOOP
				IF i % 4 = 2 THEN
					pos := (random() * least(299, length(bad) - 1))::int;
				ELSE
					pos := (random() * (length(bad) - 1))::int;
				END IF;
				bad := set_byte(bad, pos, (random() * 255)::int);
			END LOOP;
		END IF;
		BEGIN
			PERFORM tinytemp_predictor_check(bad);
			accepted := accepted + 1;
		EXCEPTION WHEN data_corrupted THEN
			refused := refused + 1;
		END;
	END LOOP;
	RAISE WARNING 'mutated models: % checked, some refused: %, some read whole: %',
		refused + accepted, refused > 1000, accepted > 1000;
END
$$;

-- A new model replaces the corrupt one.
SELECT (tinytemp_train_predictor('sim') ->> 'rows')::int AS rows;
SELECT tinytemp_predict_runtime('training', 'resnet50', 100000, 10, 64, 8, 1, 'a100', 32000) > 0 AS predicts;
DROP TABLE sim;

-- predictor_history.sql: the predictor's history of requests (model format
-- 5).  A source that says who submitted its jobs (tenant, queue, params)
-- teaches the model what it got wrong for a recurring request and for a
-- tenant's jobs of a type and GPU count; enqueue and enqueue_many correct
-- their predictions with it, and only for the same tenant and queue.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(16);

-- 3,000 synthetic jobs of two tenants: the slow team's run 4 times as long
-- as their requests say (their code, which the request does not show).
-- Every job has params of its own, apart from a nightly evaluation that
-- recurs 8 times and always takes 50,000 s, among 192 jobs of the same
-- request (but other params) that take 100 s, all spread over the
-- 3,200 jobs' finishing order.
CREATE TEMP TABLE hist_train AS
SELECT s.job_type, s.model, s.dataset_size, s.epochs, s.batch_size, s.cpus, s.gpus, s.gpu_type,
	   s.memory_mb, s.runtime_s * CASE WHEN s.n % 2 = 0 THEN 4 ELSE 1 END AS runtime_s,
	   CASE WHEN s.n % 2 = 0 THEN 'slow-team' ELSE 'fast-team' END AS tenant,
	   jsonb_build_object('run', s.n) AS params, s.n AS finished_at
FROM (SELECT row_number() OVER () AS n, * FROM tinytemp_synthetic_jobs(3000, 41)) s;
INSERT INTO hist_train (job_type, model, dataset_size, epochs, batch_size, cpus, gpus, gpu_type,
						memory_mb, runtime_s, tenant, params, finished_at)
SELECT 'evaluation', 'resnet50', 1000, 1, 32, 4, 1, 'a100', 16000,
	   CASE WHEN r % 25 = 0 THEN 50000 ELSE 100 + r % 7 END, 'fast-team',
	   CASE WHEN r % 25 = 0 THEN '{"script": "nightly-eval"}' ELSE jsonb_build_object('run', -r) END, 15 * r
FROM generate_series(1, 200) r;

SELECT tinytemp_train_predictor('hist_train') AS report \gset
SELECT ok((:'report'::jsonb ->> 'history_keys')::int > 0,
	'a source with tenants and params gives the model a history: ' || (:'report'::jsonb ->> 'history_keys') || ' keys');
SELECT ok((:'report'::jsonb #>> '{history_rows,tenant_queue}')::int > 2000,
	'most rows had a history of their tenant, queue, job type and GPU count before them');
SELECT ok((:'report'::jsonb ->> 'cv_mdape_history')::float8 < (:'report'::jsonb ->> 'cv_mdape')::float8,
	format('the history lowers the cross-validated MdAPE: %s -> %s',
		   :'report'::jsonb ->> 'cv_mdape', :'report'::jsonb ->> 'cv_mdape_history'));
SELECT is(tinytemp_predictor_check(model) ->> 'format', '7', 'the model is stored in format 7')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;
SELECT is((tinytemp_predictor_check(model) ->> 'history_keys')::int, (:'report'::jsonb ->> 'history_keys')::int,
	'and loads back with the same keys')
FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1;

-- The same request, enqueued by each tenant, by one with no history, and in another queue.
SELECT tinytemp_predict_runtime('training', 'resnet50', 200000, 5, 64, 8, 1, 'a100', 32000) AS plain \gset
CREATE TEMP TABLE hist_jobs (who text, id bigint);
INSERT INTO hist_jobs
SELECT w, tinytemp_enqueue('training', 'resnet50', '{"run": "new"}', 0, 200000, 5, 64, 8, 32000, 1, 'a100',
						   queue => q, tenant => t)
FROM (VALUES ('slow', 'slow-team', 'default'), ('fast', 'fast-team', 'default'),
			 ('new', 'new-team', 'default'), ('slow-other-queue', 'slow-team', 'other')) v(w, t, q);
CREATE TEMP VIEW hist_pred AS
SELECT h.who, j.predicted_runtime_s AS p, j.predicted_spread AS spread
FROM hist_jobs h JOIN tinytemp.jobs j ON j.id = h.id;

SELECT ok(s.p / f.p BETWEEN 2.5 AND 6,
	format('the slow team''s job is predicted about 4 times the fast team''s: %s', round((s.p / f.p)::numeric, 2)))
FROM hist_pred s, hist_pred f WHERE s.who = 'slow' AND f.who = 'fast';
SELECT is(p, :plain::float8, 'a tenant with no history gets the model''s own prediction')
FROM hist_pred WHERE who = 'new';
SELECT is(p, :plain::float8, 'so does the slow team in a queue it never used')
FROM hist_pred WHERE who = 'slow-other-queue';
SELECT ok(bool_and(spread > 0 AND spread < 3), 'every corrected prediction has a spread')
FROM hist_pred;

-- The recurring request: its history, not its sizes.
SELECT tinytemp_predict_runtime('evaluation', 'resnet50', 1000, 1, 32, 4, 1, 'a100', 16000) AS eval_plain \gset
SELECT tinytemp_enqueue('evaluation', 'resnet50', '{"script": "nightly-eval"}', 0, 1000, 1, 32, 4, 16000, 1, 'a100',
						tenant => 'fast-team') AS nightly \gset
SELECT ok(predicted_runtime_s BETWEEN 25000 AND 100000,
	format('the nightly evaluation is predicted from its runs: %s s (its sizes alone say %s s)',
		   round(predicted_runtime_s::numeric), round(:eval_plain::numeric)))
FROM tinytemp.jobs WHERE id = :nightly;
SELECT ok(:eval_plain < 5000, 'where its sizes alone would predict a short job');
SELECT tinytemp_enqueue('evaluation', 'resnet50', '{"script": "weekly-eval"}', 0, 1000, 1, 32, 4, 16000, 1, 'a100',
						tenant => 'fast-team') AS weekly \gset
SELECT ok(predicted_runtime_s < 25000, 'other params are not that request')
FROM tinytemp.jobs WHERE id = :weekly;

-- enqueue_many looks up the same history as tinytemp_enqueue.
SELECT array_agg(id) AS many FROM tinytemp_enqueue_many(jsonb_build_array(
	jsonb_build_object('job_type', 'evaluation', 'model', 'resnet50', 'params', '{"script": "nightly-eval"}'::jsonb,
					   'dataset_size', 1000, 'epochs', 1, 'batch_size', 32, 'cpus', 4, 'gpus', 1,
					   'gpu_type', 'a100', 'memory_mb', 16000, 'tenant', 'fast-team'),
	jsonb_build_object('job_type', 'training', 'model', 'resnet50', 'params', '{"run": "new"}'::jsonb,
					   'dataset_size', 200000, 'epochs', 5, 'batch_size', 64, 'cpus', 8, 'gpus', 1,
					   'gpu_type', 'a100', 'memory_mb', 32000, 'tenant', 'slow-team'))) id \gset
SELECT is(j.predicted_runtime_s, n.predicted_runtime_s, 'enqueue_many: the recurring request, as tinytemp_enqueue')
FROM tinytemp.jobs j, tinytemp.jobs n
WHERE j.id = (:'many'::bigint[])[1] AND n.id = :nightly;
SELECT is(j.predicted_runtime_s, s.p, 'enqueue_many: the slow team''s job, as tinytemp_enqueue')
FROM tinytemp.jobs j, hist_pred s
WHERE j.id = (:'many'::bigint[])[2] AND s.who = 'slow';

-- Training on tinytemp's own history reads the jobs' tenants, queues and params.
DELETE FROM tinytemp.jobs;
SELECT tinytemp_register_worker('hist-w', 64, 262144, 8, 'a100') AS hw \gset
SELECT count(*) FROM (
	SELECT tinytemp_enqueue('training', 'resnet50', jsonb_build_object('run', i % 5), 0, 1000, 1, 32,
							1, 1024, 0, NULL, queue => 'hist', tenant => 'slow-team')
	FROM generate_series(1, 40) i) s;
SELECT count(tinytemp_ack(id, :hw)) FROM tinytemp_claim(:hw, 100);
-- Five recurring requests of the same sizes, each with a runtime of its own: 100 s to 1,000,000 s.
UPDATE tinytemp.jobs
SET started_at = finished_at - make_interval(secs => 100 * 10 ^ (params ->> 'run')::int + id % 7)
WHERE queue = 'hist' AND state = 'succeeded';
SELECT tinytemp_train_predictor() AS hreport \gset
-- As the model is used, a job sees the history of the jobs that finished
-- before the last training: the rows go in blocks of tinytemp.retrain_after
-- (here half of the 40), and the second block's 20 recur from the first.
SELECT is((:'hreport'::jsonb #>> '{history_rows,recurring}')::int, 20,
	'training on the history finds the recurring requests of the second half');
SELECT ok((:'hreport'::jsonb ->> 'history_keys')::int >= 5, 'and keeps their keys');

SELECT * FROM finish();
ROLLBACK;

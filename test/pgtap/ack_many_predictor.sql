-- ack_many_predictor.sql: tinytemp_ack_many (batched acks, all or nothing)
-- and the predictor's functions: who may call them and what bad input gets.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(29);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

SELECT tinytemp_register_worker('many-a', 16, 65536) AS wa \gset
SELECT tinytemp_register_worker('many-b', 16, 65536) AS wb \gset
SELECT count(tinytemp_enqueue('train', priority => 10 - g)) FROM generate_series(1, 6) g;
SELECT array_agg(id ORDER BY id) AS held FROM tinytemp_claim(:wa, 4) \gset
SELECT array_agg(id ORDER BY id) AS other FROM tinytemp_claim(:wb, 2) \gset

-- Bad input.
SELECT throws_ok(format('SELECT tinytemp_ack_many(NULL, %s)', :wa), '22004', NULL, 'NULL job_ids: 22004');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('{1,NULL}', %s)$$, :wa), '22004',
	'job_ids must not contain nulls', 'a NULL id: 22004');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('{1,1}', %s)$$, :wa), '22023',
	'job 1 appears twice in job_ids', 'a duplicate id: 22023');
SELECT throws_ok(format('SELECT tinytemp_ack_many(ARRAY(SELECT generate_series(1, 1001))::bigint[], %s)', :wa),
	'22023', 'at most 1000 jobs can be acked in one call', 'more than 1000 ids: 22023');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('%s', %s, '{"{}"}')$$, :'held', :wa), '22023',
	'results must be a one-dimensional array as long as job_ids', 'results of another length: 22023');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('%s', 9000000000000000002)$$, :'held'), 'TT001',
	NULL, 'an unknown worker: TT001');

-- All or nothing: one job held by another worker refuses the whole call.
SELECT throws_ok(format($$SELECT tinytemp_ack_many('{%s,%s}', %s)$$, (:'held'::bigint[])[1], (:'other'::bigint[])[1], :wa),
	'TT003', format('worker %s does not hold job %s', :wa, (:'other'::bigint[])[1]),
	'a job the worker does not hold: TT003');
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE state = 'succeeded'), 0::bigint,
	'and no job of the refused call was acked');
SELECT is(tinytemp_ack_many('{}', :wa), 0, 'an empty batch acks nothing');

-- A batch with results, paired by position; NULL means no result.
SELECT is(tinytemp_ack_many(:'held', :wa, ARRAY['{"loss": 1}', NULL, '{"loss": 3}', 'null']::jsonb[]), 4,
	'four jobs acked in one call');
SELECT results_eq(format('SELECT state, result FROM tinytemp.jobs WHERE id = ANY (%L) ORDER BY id', :'held'),
	$$VALUES ('succeeded'::text, '{"loss": 1}'::jsonb), ('succeeded', NULL), ('succeeded', '{"loss": 3}'),
	         ('succeeded', 'null'::jsonb)$$,
	'each job got its own result');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'acked' AND job_id = ANY (:'held')), 4::bigint,
	'one acked event per job');
SELECT is((SELECT count(DISTINCT at) FROM tinytemp.jobs_history WHERE event = 'acked' AND job_id = ANY (:'held')),
	1::bigint, 'all in one transaction');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('%s', %s)$$, :'held', :wa), 'TT003', NULL,
	'acking them again: TT003');
SELECT is(tinytemp_ack_many(:'other', :wb), 2, 'the other worker acks its own two');

-- The predictor: bad input.
SELECT throws_ok($$SELECT tinytemp_predict_runtime('training', 'm', -5, 1, 1, 1, 0, NULL, 1)$$, '22023',
	'dataset_size must not be negative', 'negative dataset_size: 22023');
SELECT throws_ok($$SELECT tinytemp_predict_runtime('training', 'm', 5, 1, 1, 1, 0, NULL, -1)$$, '22023',
	'memory_mb must not be negative', 'negative memory_mb: 22023');
SELECT throws_ok($$SELECT tinytemp_train_predictor('tinytemp.workers')$$, '42703', NULL,
	'a source without the columns: 42703');
SELECT throws_ok($$SELECT tinytemp_train_predictor('no_such_table')$$, '42P01', NULL,
	'a source that does not exist: 42P01');
CREATE TEMP TABLE tiny AS SELECT * FROM tinytemp_synthetic_jobs(10, 1);
SELECT throws_ok($$SELECT tinytemp_train_predictor('tiny')$$, '22023', NULL,
	'too few rows to train: 22023');
SELECT throws_ok($$SELECT tinytemp_predictor_check('\x54544742')$$, 'XX001', 'predictor model is corrupt',
	'a truncated model: XX001');
SELECT throws_ok($$SELECT * FROM tinytemp_synthetic_jobs(0)$$, '22023', NULL, 'zero synthetic jobs: 22023');

-- The predictor: privileges.
CREATE ROLE tt_pred_submitter NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_pred_worker NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_pred_nobody NOLOGIN;
GRANT SELECT ON tiny TO tt_pred_submitter, tt_pred_worker;
SET LOCAL ROLE tt_pred_submitter;
SELECT ok(tinytemp_predict_runtime('training', 'resnet50', 1000, 1, 32, 1, 0, NULL, 1024) > 0,
	'a submitter predicts');
SELECT throws_ok($$SELECT tinytemp_train_predictor('tiny')$$, '42501', NULL, 'a submitter may not train');
RESET ROLE;
SET LOCAL ROLE tt_pred_worker;
SELECT ok(tinytemp_predict_runtime('training', 'resnet50', 1000, 1, 32, 1, 0, NULL, 1024) > 0,
	'a worker predicts');
SELECT throws_ok($$SELECT tinytemp_predictor_check('\x00')$$, '42501', NULL, 'a worker may not check models');
SELECT throws_ok(format($$SELECT tinytemp_ack_many('{%s}', tinytemp_register_worker('many-own', 1, 1024))$$,
					   (:'other'::bigint[])[1]), 'TT003', NULL,
	'a worker may call ack_many for its own worker (and is refused for a job it does not hold)');
RESET ROLE;
SET LOCAL ROLE tt_pred_nobody;
SELECT throws_ok($$SELECT tinytemp_predict_runtime('training', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)$$,
	'42501', NULL, 'no grants: predict is denied');
SELECT throws_ok($$SELECT tinytemp_ack_many('{1}', 1)$$, '42501', NULL, 'no grants: ack_many is denied');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

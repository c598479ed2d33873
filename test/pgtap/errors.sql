-- errors.sql: every bad input to the SQL API raises its documented SQLSTATE
-- (TT001 unknown worker, TT002 unknown job, TT003 job not held, 22004 NULL,
-- 22023 bad value, 22P02 malformed JSON) and leaves nothing half-done.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(122);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

-- Ids that no job and no worker has: the identity sequences start at 1.
\set nojob 9000000000000000001
\set noworker 9000000000000000002

-- Everything the API can change, as one value to compare before and after.
CREATE TEMP VIEW tt_state AS
SELECT (SELECT md5(coalesce(string_agg(j::text, '|' ORDER BY j.id), '')) FROM tinytemp.jobs j)
	|| (SELECT md5(coalesce(string_agg(h::text, '|' ORDER BY h.id), '')) FROM tinytemp.jobs_history h)
	|| (SELECT md5(coalesce(string_agg(w::text, '|' ORDER BY w.id), '')) FROM tinytemp.workers w)
	AS digest;

SELECT tinytemp_register_worker('err-a', 4, 8192) AS wa \gset
SELECT tinytemp_register_worker('err-b', 4, 8192) AS wb \gset
SELECT tinytemp_enqueue('train') AS jpending \gset
SELECT tinytemp_enqueue('train', priority => 10) AS jrun \gset
SELECT tinytemp_enqueue('train') AS jcancel \gset
SELECT ok(tinytemp_cancel(:jcancel), 'setup: a pending job is cancelled');

SELECT is((SELECT id FROM tinytemp_claim(:wa)), :jrun::bigint, 'setup: worker a holds the running job');

SELECT digest AS before FROM tt_state \gset
SELECT count(*) AS jobs_before FROM tinytemp.jobs \gset
SELECT count(*) AS history_before FROM tinytemp.jobs_history \gset
SELECT count(*) AS workers_before FROM tinytemp.workers \gset

-- TT001: unknown worker.
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s)', :noworker), 'TT001',
	format('worker %s does not exist', :noworker), 'claim by an unknown worker: TT001');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :noworker), 'TT001',
	format('worker %s does not exist', :noworker), 'ack by an unknown worker: TT001');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jrun, :noworker, 'boom'), 'TT001',
	format('worker %s does not exist', :noworker), 'fail by an unknown worker: TT001');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jrun, :noworker), 'TT001',
	format('worker %s does not exist', :noworker), 'heartbeat by an unknown worker: TT001');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jpending, :noworker), 'TT001',
	format('worker %s does not exist', :noworker), 'ack of a pending job by an unknown worker: TT001');
-- Worker 0 never exists either, whatever state the job is in.
SELECT throws_ok(format('SELECT tinytemp_ack(%s, 0)', :jcancel), 'TT001',
	'worker 0 does not exist', 'ack of a cancelled job by unknown worker 0: TT001');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, 0)', :jcancel), 'TT001',
	'worker 0 does not exist', 'heartbeat of a cancelled job by unknown worker 0: TT001');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, 0, %L)', :jcancel, 'boom'), 'TT001',
	'worker 0 does not exist', 'fail of a cancelled job by unknown worker 0: TT001');

-- TT002: unknown job.
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :nojob, :wa), 'TT002',
	format('job %s does not exist', :nojob), 'ack of an unknown job: TT002');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :nojob, :wa, 'boom'), 'TT002',
	format('job %s does not exist', :nojob), 'fail of an unknown job: TT002');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :nojob, :wa), 'TT002',
	format('job %s does not exist', :nojob), 'heartbeat of an unknown job: TT002');
SELECT throws_ok(format('SELECT tinytemp_cancel(%s)', :nojob), 'TT002',
	format('job %s does not exist', :nojob), 'cancel of an unknown job: TT002');
SELECT throws_ok(format('SELECT tinytemp_retry(%s)', :nojob), 'TT002',
	format('job %s does not exist', :nojob), 'retry of an unknown job: TT002');

-- 22023: zero or negative resources, sizes and attempts.
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 0, 8192)$$, '22023',
	'cpus must be greater than zero', 'register: cpus 0');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', -1, 8192)$$, '22023',
	'cpus must be greater than zero', 'register: cpus -1');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 0)$$, '22023',
	'memory_mb must be greater than zero', 'register: memory_mb 0');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, -1)$$, '22023',
	'memory_mb must be greater than zero', 'register: memory_mb -1');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, -1)$$, '22023',
	'gpus must not be negative', 'register: gpus -1');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', cpus => 0)$$, '22023',
	'cpus must be greater than zero', 'enqueue: cpus 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', cpus => -2)$$, '22023',
	'cpus must be greater than zero', 'enqueue: cpus -2');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', memory_mb => 0)$$, '22023',
	'memory_mb must be greater than zero', 'enqueue: memory_mb 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', memory_mb => -1)$$, '22023',
	'memory_mb must be greater than zero', 'enqueue: memory_mb -1');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', gpus => -1)$$, '22023',
	'gpus must not be negative', 'enqueue: gpus -1');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', epochs => 0)$$, '22023',
	'epochs must be greater than zero', 'enqueue: epochs 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', epochs => -3)$$, '22023',
	'epochs must be greater than zero', 'enqueue: epochs -3');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', batch_size => 0)$$, '22023',
	'batch_size must be greater than zero', 'enqueue: batch_size 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', batch_size => -32)$$, '22023',
	'batch_size must be greater than zero', 'enqueue: batch_size -32');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', max_attempts => 0)$$, '22023',
	'max_attempts must be greater than zero', 'enqueue: max_attempts 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', max_attempts => -1)$$, '22023',
	'max_attempts must be greater than zero', 'enqueue: max_attempts -1');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', gang_size => 0)$$, '22023',
	'gang_size must be greater than zero', 'enqueue: gang_size 0');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', gang_size => -4)$$, '22023',
	'gang_size must be greater than zero', 'enqueue: gang_size -4');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', dataset_size => -1)$$, '22023',
	'dataset_size must not be negative', 'enqueue: dataset_size -1');

-- 22023: max_jobs outside 1..1000.
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s, 0)', :wb), '22023',
	'max_jobs must be greater than zero', 'claim: max_jobs 0');
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s, -1)', :wb), '22023',
	'max_jobs must be greater than zero', 'claim: max_jobs -1');
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s, 1001)', :wb), '22023',
	'max_jobs must be at most 1000', 'claim: max_jobs 1001');

-- 22023: empty names and JSON that is not an object.
SELECT throws_ok($$SELECT tinytemp_enqueue('')$$, '22023',
	'job_type must not be empty', 'enqueue: empty job_type');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', queue => '')$$, '22023',
	'queue must not be empty', 'enqueue: empty queue');
SELECT throws_ok($$SELECT tinytemp_register_worker('', 4, 8192)$$, '22023',
	'name must not be empty', 'register: empty name');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => '[1, 2]')$$, '22023',
	'params must be a JSON object', 'enqueue: params an array');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => '42')$$, '22023',
	'params must be a JSON object', 'enqueue: params a number');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => '"lr=0.1"')$$, '22023',
	'params must be a JSON object', 'enqueue: params a string');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => 'null')$$, '22023',
	'params must be a JSON object', 'enqueue: params JSON null');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, labels => '["gpu"]')$$, '22023',
	'labels must be a JSON object', 'register: labels an array');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, labels => 'true')$$, '22023',
	'labels must be a JSON object', 'register: labels a boolean');

-- 22P02: malformed JSON text.
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => '{"lr": ')$$, '22P02',
	NULL, 'enqueue: malformed params');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => '{lr: 0.1}')$$, '22P02',
	NULL, 'enqueue: params with an unquoted key');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, labels => '{"zone": "a"')$$, '22P02',
	NULL, 'register: malformed labels');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s, %L)', :jrun, :wa, '{"loss": 0.1,}'), '22P02',
	NULL, 'ack: malformed result');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s, %L)', :jrun, :wa, '[1, '), '22P02',
	NULL, 'heartbeat: malformed progress');

-- 22004: NULL where a value is required.
SELECT throws_ok($$SELECT tinytemp_register_worker(NULL, 4, 8192)$$, '22004',
	'name must not be null', 'register: NULL name');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', NULL, 8192)$$, '22004',
	'cpus must not be null', 'register: NULL cpus');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, NULL)$$, '22004',
	'memory_mb must not be null', 'register: NULL memory_mb');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, gpus => NULL)$$, '22004',
	'gpus must not be null', 'register: NULL gpus');
SELECT throws_ok($$SELECT tinytemp_register_worker('err-x', 4, 8192, labels => NULL)$$, '22004',
	'labels must not be null', 'register: NULL labels');
SELECT throws_ok($$SELECT tinytemp_enqueue(NULL)$$, '22004',
	'job_type must not be null', 'enqueue: NULL job_type');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', params => NULL)$$, '22004',
	'params must not be null', 'enqueue: NULL params');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', priority => NULL)$$, '22004',
	'priority must not be null', 'enqueue: NULL priority');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', cpus => NULL)$$, '22004',
	'cpus must not be null', 'enqueue: NULL cpus');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', memory_mb => NULL)$$, '22004',
	'memory_mb must not be null', 'enqueue: NULL memory_mb');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', gpus => NULL)$$, '22004',
	'gpus must not be null', 'enqueue: NULL gpus');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', gang_size => NULL)$$, '22004',
	'gang_size must not be null', 'enqueue: NULL gang_size');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', max_attempts => NULL)$$, '22004',
	'max_attempts must not be null', 'enqueue: NULL max_attempts');
SELECT throws_ok($$SELECT tinytemp_enqueue('train', queue => NULL)$$, '22004',
	'queue must not be null', 'enqueue: NULL queue');
SELECT throws_ok($$SELECT * FROM tinytemp_claim(NULL)$$, '22004',
	'worker_id must not be null', 'claim: NULL worker_id');
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s, NULL)', :wb), '22004',
	'max_jobs must not be null', 'claim: NULL max_jobs');
SELECT throws_ok(format('SELECT tinytemp_ack(NULL, %s)', :wa), '22004',
	'job_id must not be null', 'ack: NULL job_id');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, NULL)', :jrun), '22004',
	'worker_id must not be null', 'ack: NULL worker_id');
SELECT throws_ok(format('SELECT tinytemp_fail(NULL, %s, %L)', :wa, 'boom'), '22004',
	'job_id must not be null', 'fail: NULL job_id');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, NULL, %L)', :jrun, 'boom'), '22004',
	'worker_id must not be null', 'fail: NULL worker_id');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, NULL)', :jrun, :wa), '22004',
	'error must not be null', 'fail: NULL error');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L, NULL)', :jrun, :wa, 'boom'), '22004',
	'retryable must not be null', 'fail: NULL retryable');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(NULL, %s)', :wa), '22004',
	'job_id must not be null', 'heartbeat: NULL job_id');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, NULL)', :jrun), '22004',
	'worker_id must not be null', 'heartbeat: NULL worker_id');
SELECT throws_ok($$SELECT tinytemp_cancel(NULL)$$, '22004',
	'job_id must not be null', 'cancel: NULL job_id');
SELECT throws_ok($$SELECT tinytemp_retry(NULL)$$, '22004',
	'job_id must not be null', 'retry: NULL job_id');

-- TT003: a worker that does not hold the job.
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jpending, :wa), 'TT003',
	format('worker %s does not hold job %s', :wa, :jpending), 'ack of a job never claimed: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jpending, :wa, 'boom'), 'TT003',
	format('worker %s does not hold job %s', :wa, :jpending), 'fail of a job never claimed: TT003');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jpending, :wa), 'TT003',
	format('worker %s does not hold job %s', :wa, :jpending), 'heartbeat of a job never claimed: TT003');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'ack of a job another worker holds: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jrun, :wb, 'boom'), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'fail of a job another worker holds: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L, false)', :jrun, :wb, 'boom'), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'non-retryable fail of a job another worker holds: TT003');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jrun, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'heartbeat of a job another worker holds: TT003');

-- None of the calls above left anything behind.
SELECT is(digest, :'before', 'no failed call changed jobs, history or workers') FROM tt_state;
SELECT is(count(*), :jobs_before::bigint, 'no job was added by a failed call') FROM tinytemp.jobs;
SELECT is(count(*), :history_before::bigint, 'no history event was written by a failed call') FROM tinytemp.jobs_history;
SELECT is(count(*), :workers_before::bigint, 'no worker was registered by a failed call') FROM tinytemp.workers;
SELECT is((SELECT count(*) FROM tinytemp.workers WHERE name = 'err-x'), 0::bigint,
	'no incarnation of a rejected registration exists');
SELECT results_eq(format('SELECT state, worker_id, attempts FROM tinytemp.jobs WHERE id = %s', :jrun),
	format($$VALUES ('running'::text, %s::bigint, 1)$$, :wa),
	'the running job is still held by worker a, with its attempt count');

-- A rejected registration of an active name leaves that incarnation active.
SELECT throws_ok($$SELECT tinytemp_register_worker('err-a', 0, 8192)$$, '22023',
	'cpus must be greater than zero', 're-registration with cpus 0 is refused');
SELECT is((SELECT state FROM tinytemp.workers WHERE id = :wa), 'active',
	'the refused re-registration did not retire the active incarnation');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :jrun), 'running',
	'the refused re-registration did not release its jobs');

-- The bounds themselves are accepted.
SELECT lives_ok($$SELECT tinytemp_enqueue('train', gpus => 0, dataset_size => 0, epochs => 1,
	batch_size => 1, max_attempts => 1, gang_size => 1, cpus => 1, memory_mb => 1)$$,
	'enqueue accepts the smallest valid values');
SELECT lives_ok($$SELECT tinytemp_register_worker('err-min', 1, 1, 0, NULL, '{}')$$,
	'register accepts the smallest valid values');
SELECT lives_ok(format('SELECT * FROM tinytemp_claim(%s, 1000)', (SELECT id FROM tinytemp.workers
	WHERE name = 'err-min' AND state = 'active')), 'claim accepts max_jobs 1000');

-- A retired incarnation may not claim (TT001); its successor may.
SELECT tinytemp_register_worker('err-c', 1, 1) AS wc_old \gset
SELECT tinytemp_register_worker('err-c', 1, 1) AS wc_new \gset
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s)', :wc_old), 'TT001',
	format('worker %s is not an active worker', :wc_old), 'claim by a retired incarnation: TT001');
SELECT lives_ok(format('SELECT * FROM tinytemp_claim(%s)', :wc_new), 'claim by the active incarnation works');

-- Stale reports after the job moved on to another worker.  Re-registering
-- "err-a" releases the running job; worker b then claims it.
SELECT tinytemp_register_worker('err-a', 4, 8192) AS wa2 \gset
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :jrun), 'pending',
	'the re-registration released the running job');
SELECT is((SELECT id FROM tinytemp_claim(:wb)), :jrun::bigint, 'worker b claims the released job');

SELECT digest AS before FROM tt_state \gset
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :wa), 'TT003',
	format('worker %s does not hold job %s', :wa, :jrun), 'stale ack from the old incarnation: TT003');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s, %L)', :jrun, :wa, '{"loss": 0.5}'), 'TT003',
	format('worker %s does not hold job %s', :wa, :jrun), 'stale ack with a result: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jrun, :wa, 'late'), 'TT003',
	format('worker %s does not hold job %s', :wa, :jrun), 'stale fail from the old incarnation: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L, false)', :jrun, :wa, 'late'), 'TT003',
	format('worker %s does not hold job %s', :wa, :jrun), 'stale non-retryable fail: TT003');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jrun, :wa), 'TT003',
	format('worker %s does not hold job %s', :wa, :jrun), 'stale heartbeat from the old incarnation: TT003');
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :wa2), 'TT003',
	format('worker %s does not hold job %s', :wa2, :jrun), 'ack from the new incarnation of the old holder: TT003');
SELECT is(digest, :'before', 'the stale reports changed nothing') FROM tt_state;
SELECT results_eq(format('SELECT state, worker_id, attempts, result FROM tinytemp.jobs WHERE id = %s', :jrun),
	format($$VALUES ('running'::text, %s::bigint, 2, NULL::jsonb)$$, :wb),
	'the job is still running on worker b, its second attempt, with no result');

-- A stale handoff made by hand: the job is given to worker a2 directly.
UPDATE tinytemp.jobs SET worker_id = :wa2 WHERE id = :jrun;
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'ack from the worker the job was taken from: TT003');
UPDATE tinytemp.jobs SET worker_id = :wb WHERE id = :jrun;

-- Once acked, the job is held by nobody: a second ack, a fail or a heartbeat is refused.
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s, %L)', :jrun, :wb, '{"loss": 0.1}'),
	'the holder acks');
SELECT digest AS before FROM tt_state \gset
SELECT throws_ok(format('SELECT tinytemp_ack(%s, %s)', :jrun, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'second ack: TT003');
SELECT throws_ok(format('SELECT tinytemp_fail(%s, %s, %L)', :jrun, :wb, 'late'), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'fail after ack: TT003');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jrun, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :jrun), 'heartbeat after ack: TT003');
SELECT is(digest, :'before', 'the refused reports after the ack changed nothing') FROM tt_state;
SELECT results_eq(format('SELECT state, result FROM tinytemp.jobs WHERE id = %s', :jrun),
	$$VALUES ('succeeded'::text, '{"loss": 0.1}'::jsonb)$$,
	'the job keeps the state and result of the one ack');

-- The rules' triggers find their columns by number once per backend, and
-- again when the table changes under them.
SELECT tinytemp_enqueue('train') AS rules_job \gset
SELECT throws_ok(format('UPDATE tinytemp.jobs SET cpus = 0 WHERE id = %s', :rules_job), '22023',
	'cpus must be greater than zero', 'a direct UPDATE keeps the rules');
ALTER TABLE tinytemp.jobs ADD COLUMN tt_errors_extra int;
SELECT throws_ok(format('UPDATE tinytemp.jobs SET memory_mb = 0 WHERE id = %s', :rules_job), '22023',
	'memory_mb must be greater than zero', 'and so after a column was added to the table');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'bogus' WHERE id = %s$$, :rules_job), '23514',
	NULL, 'the state rules too');
ALTER TABLE tinytemp.jobs DROP COLUMN tt_errors_extra;
SELECT throws_ok(format('UPDATE tinytemp.jobs SET epochs = 0 WHERE id = %s', :rules_job), '22023',
	'epochs must be greater than zero', 'and after it was dropped');
-- predicted_spread dropped and added again, as an upgrade may: a new number.
-- (An INSERT: an UPDATE OF trigger's column list still names the old one.)
ALTER TABLE tinytemp.jobs DROP COLUMN predicted_spread;
ALTER TABLE tinytemp.jobs ADD COLUMN predicted_spread float8;
SELECT throws_ok($$INSERT INTO tinytemp.jobs (job_type, predicted_spread) VALUES ('train', -1)$$, '22023',
	'predicted_spread must not be negative', 'a column dropped and added again is checked where it is now');
SELECT lives_ok(format('UPDATE tinytemp.jobs SET cpus = 2, epochs = 3 WHERE id = %s', :rules_job),
	'a row within the rules is written');
SELECT is((SELECT (cpus, epochs)::text FROM tinytemp.jobs WHERE id = :rules_job), '(2,3)', 'as given');
SELECT tinytemp_cancel(:rules_job) AS rules_cancelled \gset

SELECT * FROM finish();
ROLLBACK;

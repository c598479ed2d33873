-- checkpoint.sql: a running job saves a checkpoint with tinytemp_checkpoint,
-- and the run that follows a failure or a lost lease receives it.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(12);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;
SET LOCAL tinytemp.retry_backoff_base = 0;

SELECT tinytemp_register_worker('ckpt-a', 8, 16384) AS wa \gset
SELECT tinytemp_register_worker('ckpt-b', 8, 16384) AS wb \gset
SELECT tinytemp_enqueue('training', 'resnet50', epochs => 90) AS j \gset
SELECT is((SELECT checkpoint FROM tinytemp_claim(:wa)), NULL, 'the first run starts without a checkpoint');

SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"epoch": 30, "path": "s3://ckpt/30"}')$$, :j, :wa),
	'the running worker saves a checkpoint');
SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"epoch": 45, "path": "s3://ckpt/45"}')$$, :j, :wa),
	'and a later one');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = :j AND event = 'checkpointed'), 2::bigint,
	'each checkpoint is in the history');

-- Another worker may not write it; bad input is refused; none of it changes the checkpoint.
SELECT throws_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"epoch": 99}')$$, :j, :wb), 'TT003', NULL,
	'a worker that does not hold the job: TT003');
SELECT throws_ok(format('SELECT tinytemp_checkpoint(%s, %s, NULL)', :j, :wa), '22004', NULL, 'a NULL checkpoint: 22004');
SELECT throws_ok(format('SELECT tinytemp_checkpoint(9000000000000000001, %s, %L)', :wa, '{}'), 'TT002', NULL,
	'an unknown job: TT002');
SELECT is((SELECT checkpoint->>'epoch' FROM tinytemp.jobs WHERE id = :j), '45', 'the latest checkpoint is kept');

-- The attempt fails; the retry, on another worker, resumes from the checkpoint.
SELECT is(tinytemp_fail(:j, :wa, 'node lost'), 'pending', 'the attempt fails and is retried');
SELECT is((SELECT checkpoint->>'path' FROM tinytemp_claim(:wb)), 's3://ckpt/45',
	'the next run receives the checkpoint in the claimed row');

-- A lost lease keeps it too.
UPDATE tinytemp.jobs SET lease_until = now() - interval '1 second' WHERE id = :j;
SELECT is(tinytemp_expire_leases(), 1, 'the lease expires');
SELECT is((SELECT checkpoint->>'epoch' FROM tinytemp_claim(:wa)), '45', 'and the third run still resumes from epoch 45');

SELECT * FROM finish();
ROLLBACK;

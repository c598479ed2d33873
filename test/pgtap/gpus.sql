-- gpus.sql: tinytemp_set_gpus (0.7) records the GPU indices a worker gave
-- a running job it holds: as many as the job asked for, distinct, from 0.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(14);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.lease_timeout = '1d';
CREATE ROLE tt_gpu_wrk NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_gpu_wrk2 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_gpu_sub NOLOGIN IN ROLE tinytemp_submitter;

SET LOCAL ROLE tt_gpu_wrk;
SELECT tinytemp_register_worker('gpu-node', 16, 65536, 4, 'a100') AS w \gset
RESET ROLE;
SELECT tinytemp_enqueue('train', gpus => 2, gpu_type => 'a100') AS two \gset
SELECT tinytemp_enqueue('train', gpus => 0) AS none \gset
SET LOCAL ROLE tt_gpu_wrk;
SELECT count(*) FROM tinytemp_claim(:w, 2);
RESET ROLE;
SELECT tinytemp_enqueue('train', gpus => 1) AS waiting \gset
SET LOCAL ROLE tt_gpu_wrk;
SELECT lives_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{3,1}')$$, :two, :w), 'the worker records the two GPUs it gave');
SELECT lives_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{}')$$, :none, :w), 'and none for a job without GPUs');
RESET ROLE;
SELECT is((SELECT gpu_indices FROM tinytemp.jobs WHERE id = :two), '{3,1}'::int[], 'recorded in the order given');
SELECT is((SELECT gpu_indices FROM tinytemp.jobs WHERE id = :none), NULL, 'an empty list is NULL');

SET LOCAL ROLE tt_gpu_wrk;
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{0}')$$, :two, :w), '22023',
	format('job %s asked for 2 GPUs, not 1', :two), 'fewer GPUs than asked: 22023');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{0,0}')$$, :two, :w), '22023',
	'GPU 0 is named twice in gpu_indices', 'a GPU twice: 22023');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{-1,2}')$$, :two, :w), '22023', NULL, 'a negative index: 22023');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{1,NULL}')$$, :two, :w), '22023', NULL, 'a null index: 22023');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{{1},{2}}')$$, :two, :w), '22023', NULL, 'a 2-D array: 22023');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, NULL)$$, :two, :w), '22004', 'gpu_indices must not be null', 'NULL: 22004');
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{0}')$$, :waiting, :w), 'TT003', NULL, 'a job the worker does not hold: TT003');
RESET ROLE;
SELECT is((SELECT gpu_indices FROM tinytemp.jobs WHERE id = :two), '{3,1}'::int[], 'the refused calls changed nothing');
SET LOCAL ROLE tt_gpu_wrk2;
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{0,1}')$$, :two, :w), '42501', NULL, 'another worker role: 42501');
RESET ROLE;
SET LOCAL ROLE tt_gpu_sub;
SELECT throws_ok(format($$SELECT tinytemp_set_gpus(%s, %s, '{0,1}')$$, :two, :w), '42501', NULL, 'a submitter: 42501');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

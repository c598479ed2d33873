-- scheduling_unschedulable.sql: a ready job that no active worker could
-- ever fit (or a gang with fewer capable workers than members) is marked
-- unschedulable_since by the planner pass and failed as 'unschedulable'
-- after its placement timeout; tinytemp.pending_reasons says why each
-- pending job waits.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(33);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.placement_timeout = '10min';

-- UNSCHEDULABLE: two 4-CPU workers.
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_register_worker('n2', 4, 8192) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60) AS huge \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60, placement_timeout => '1 min') AS huge_1min \gset
SELECT tinytemp_enqueue('training', cpus => 1, gang_size => 3, runtime_estimate_s => 60) AS gang3 \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60,
						run_after => '2026-01-01 00:05:00+00') AS huge_later \gset
SELECT tinytemp_enqueue('training', cpus => 1, runtime_estimate_s => 60) AS fits \gset

SELECT is(tinytemp_schedule()->'unschedulable', '0'::jsonb, 'the first pass fails nothing');
SELECT set_eq('SELECT id FROM tinytemp.jobs WHERE unschedulable_since = ''2026-01-01 00:00:00+00''',
	format('SELECT id FROM tinytemp.jobs WHERE id IN (%s, %s, %s) OR gang_id = %s', :huge, :huge_1min, :huge_later, :gang3),
	'it marks unschedulable the jobs no worker fits, and the gang of 3 that only 2 workers fit');
SELECT is((SELECT unschedulable_since FROM tinytemp.jobs WHERE id = :fits), NULL, 'not a job that fits');
SELECT results_eq(format('SELECT reason, capable_workers FROM tinytemp.pending_reasons WHERE job_id IN (%s, %s) ORDER BY job_id', :huge, :gang3),
	$$VALUES ('no fitting worker', 0::bigint), ('no fitting worker', 2::bigint)$$,
	'pending_reasons: no fitting worker, with how many could fit it');

SET LOCAL tinytemp.clock = '2026-01-01 00:00:59+00';
SELECT is(tinytemp_schedule()->'unschedulable', '0'::jsonb, 'after 59 s nothing fails');
SET LOCAL tinytemp.clock = '2026-01-01 00:01:00+00';
SELECT is(tinytemp_schedule()->'unschedulable', '1'::jsonb, 'after 60 s the job with placement_timeout => 1 min fails');
SELECT results_eq(format('SELECT state, last_error, finished_at FROM tinytemp.jobs WHERE id = %s', :huge_1min),
	$$VALUES ('failed', 'unschedulable', '2026-01-01 00:01:00+00'::timestamptz)$$, 'failed, as unschedulable');
SELECT results_eq(format($$SELECT detail->>'reason', (detail->>'placement_timeout_s')::float8 FROM tinytemp.jobs_history
						  WHERE job_id = %s AND event = 'dead_lettered'$$, :huge_1min),
	$$VALUES ('unschedulable', 60::float8)$$, 'history: dead_lettered, reason unschedulable');
SET LOCAL tinytemp.clock = '2026-01-01 00:09:59+00';
SELECT is(tinytemp_schedule()->'unschedulable', '0'::jsonb, 'after 9 min 59 s nothing more fails');
SET LOCAL tinytemp.clock = '2026-01-01 00:10:00+00';
SELECT is(tinytemp_schedule()->'unschedulable', '4'::jsonb, 'after tinytemp.placement_timeout (10 min) four jobs fail');
SELECT set_eq('SELECT id FROM tinytemp.dead_letter WHERE last_error = ''unschedulable''',
	format('SELECT id FROM tinytemp.jobs WHERE id IN (%s, %s) OR gang_id = %s', :huge, :huge_1min, :gang3),
	'the 16-CPU job and the gang''s three members: they are in the dead-letter queue');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :huge_later), 'pending',
	'a job ready only at T0 + 5 min has its timeout counted from then');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :fits), 'pending', 'a job that fits never fails');
SET LOCAL tinytemp.clock = '2026-01-01 00:15:00+00';
SELECT is(tinytemp_schedule()->'unschedulable', '1'::jsonb, 'it fails at T0 + 15 min');

-- A capable worker registering clears the mark.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60) AS huge \gset
SELECT tinytemp_schedule()->'ran' AS ran \gset
SELECT is((SELECT unschedulable_since FROM tinytemp.jobs WHERE id = :huge), '2026-01-01 00:00:00+00'::timestamptz,
	'a 16-CPU job is marked');
SET LOCAL tinytemp.clock = '2026-01-01 00:05:00+00';
SELECT tinytemp_register_worker('big', 16, 65536) AS big \gset
SELECT tinytemp_schedule()->'ran' AS ran \gset
SELECT is((SELECT unschedulable_since FROM tinytemp.jobs WHERE id = :huge), NULL,
	'once a 16-CPU worker registers, the pass clears the mark');
SET LOCAL tinytemp.clock = '2026-01-01 00:20:00+00';
SELECT is(tinytemp_schedule()->'unschedulable', '0'::jsonb, 'and the job does not fail');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :huge), 'pending', 'it waits to be claimed');

-- tinytemp.placement_timeout = 0: never.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.placement_timeout = 0;
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60) AS huge \gset
SELECT tinytemp_schedule()->'ran' AS ran \gset
SET LOCAL tinytemp.clock = '2026-01-08 00:00:00+00';
SELECT is(tinytemp_schedule()->'unschedulable', '0'::jsonb, 'with tinytemp.placement_timeout = 0 a job is never failed');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :huge), 'pending', 'even a week later');
SET LOCAL tinytemp.placement_timeout = '10min';

-- PENDING_REASONS, one by one.
SELECT columns_are('tinytemp', 'pending_reasons',
	ARRAY['job_id', 'queue', 'tenant', 'priority', 'gang_size', 'waiting_s', 'reason', 'capable_workers',
		  'free_workers', 'tenant_share'],
	'pending_reasons has the documented columns');
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 60, run_after => '2026-01-01 01:00:00+00') AS delayed \gset
SELECT tinytemp_enqueue('ingest', runtime_estimate_s => 60) AS parent \gset
SELECT tinytemp_enqueue('train', runtime_estimate_s => 60, depends_on => ARRAY[:parent]::bigint[]) AS child \gset
SELECT tinytemp_enqueue('training', cpus => 16, runtime_estimate_s => 60) AS huge \gset
SELECT results_eq('SELECT job_id, reason FROM tinytemp.pending_reasons ORDER BY job_id',
	format($$VALUES (%s::bigint, 'run_after in the future'), (%s, 'ready'), (%s, 'waiting on a dependency'),
					(%s, 'no fitting worker')$$, :delayed, :parent, :child, :huge),
	'run_after in the future; ready; waiting on a dependency; no fitting worker');
SELECT results_eq(format('SELECT queue, tenant, priority, gang_size, waiting_s, capable_workers, free_workers, tenant_share FROM tinytemp.pending_reasons WHERE job_id = %s', :parent),
	$$VALUES ('default', NULL::text, 0, 1, 0::numeric, 1::bigint, 1::bigint, 0.000)$$,
	'with the job''s queue, tenant, class, gang size, wait, capable and free workers and tenant share');
SELECT tinytemp_enqueue('inference', priority => 1, runtime_estimate_s => 60) AS urgent \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:01:00+00';
SELECT results_eq('SELECT job_id, reason, waiting_s FROM tinytemp.pending_reasons ORDER BY job_id',
	format($$VALUES (%s::bigint, 'run_after in the future', 60::numeric), (%s, 'behind higher priority', 60),
					(%s, 'waiting on a dependency', 60), (%s, 'no fitting worker', 60), (%s, 'ready', 60)$$,
		   :delayed, :parent, :child, :huge, :urgent),
	'a ready priority-0 job is behind higher priority; the other reasons come first');

-- Free resources and tenants' shares.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', tenant => 'A', cpus => 4, runtime_estimate_s => 600) AS a_running \gset
SELECT id AS claimed FROM tinytemp_claim(:w1) \gset
SELECT tinytemp_enqueue('training', tenant => 'A', runtime_estimate_s => 60) AS a_waiting \gset
SELECT results_eq(format('SELECT reason, free_workers, tenant_share FROM tinytemp.pending_reasons WHERE job_id = %s', :a_waiting),
	$$VALUES ('waiting for free resources', 0::bigint, 1.000)$$,
	'a job that fits a busy worker waits for free resources');
SELECT tinytemp_enqueue('training', tenant => 'B', runtime_estimate_s => 60) AS b_waiting \gset
SELECT results_eq('SELECT job_id, reason, tenant_share FROM tinytemp.pending_reasons ORDER BY job_id',
	format($$VALUES (%s::bigint, 'tenant over its share', 1.000), (%s, 'waiting for free resources', 0.000)$$,
		   :a_waiting, :b_waiting),
	'once tenant B waits too, tenant A, which holds the whole worker, is over its share');

-- Reserved room: the job that holds it, and the others.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_register_worker('n2', 4, 8192) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 1000) AS r \gset
SELECT id AS claimed FROM tinytemp_claim(:w1) \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 100) AS g \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 5000) AS long \gset
SELECT is(tinytemp_schedule()->'reservations', '1'::jsonb, 'a gang of 2 that cannot start gets a reservation');
SELECT set_eq('SELECT worker_id, start_at FROM tinytemp.reservations',
	format($$VALUES (%s::bigint, '2026-01-01 00:16:40+00'::timestamptz), (%s, '2026-01-01 00:16:40+00')$$, :w1, :w2),
	'on both workers, from the running job''s predicted end');
SELECT is((SELECT reason FROM tinytemp.pending_reasons WHERE job_id = :long), 'reserved for a gang',
	'a long job that fits the free worker: reserved for a gang');
SELECT results_eq(format('SELECT reason FROM tinytemp.pending_reasons p JOIN tinytemp.jobs j ON j.id = p.job_id WHERE j.gang_id = %s ORDER BY j.gang_rank', :g),
	$$VALUES ('holds a reservation'), ('holds a reservation')$$,
	'every member of the gang holds a reservation');

-- A larger single job.
:reset
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS r \gset
SELECT id AS claimed FROM tinytemp_claim(:w1) \gset
SELECT tinytemp_enqueue('training', cpus => 4, runtime_estimate_s => 100) AS big \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 5000) AS long \gset
SELECT tinytemp_schedule()->'ran' AS ran \gset
SELECT results_eq('SELECT job_id, reason FROM tinytemp.pending_reasons ORDER BY job_id',
	format($$VALUES (%s::bigint, 'holds a reservation'), (%s, 'reserved for a larger job')$$, :big, :long),
	'holds a reservation; reserved for a larger job');

-- Reading the view is a submitter's right.
SELECT ok(has_table_privilege('tinytemp_submitter', 'tinytemp.pending_reasons', 'SELECT'),
	'tinytemp_submitter may read pending_reasons');
SELECT ok(NOT has_table_privilege('tinytemp_worker', 'tinytemp.pending_reasons', 'SELECT'),
	'tinytemp_worker may not');

SELECT * FROM finish();
ROLLBACK;

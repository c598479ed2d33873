-- scheduling_gangs.sql: a gang (gang_size k) is k member rows that start
-- together on k distinct workers or not at all.  Claims never take a pending
-- member; the planner pass assigns a whole gang at once; a worker's claim
-- takes its assigned members first; a member that fails (or loses its
-- lease, or is never claimed) takes its gang back to pending, one that fails
-- for good takes it to the dead-letter queue, and a retry brings it back
-- whole; cancelling one member cancels the gang.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(59);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.retry_backoff_base = 0;

-- ENQUEUE: k member rows.

SELECT tinytemp_enqueue('training', 'llama-7b', cpus => 4, gang_size => 3, runtime_estimate_s => 600) AS g \gset
SELECT results_eq('SELECT gang_id, gang_rank, gang_size, state FROM tinytemp.jobs ORDER BY gang_rank',
	format($$VALUES (%1$s::bigint, 0, 3, 'pending'), (%1$s, 1, 3, 'pending'), (%1$s, 2, 3, 'pending')$$, :g),
	'a gang of 3 is three pending rows with gang_id = the returned id and ranks 0, 1, 2');
SELECT is((SELECT min(id) FROM tinytemp.jobs), :g::bigint, 'the returned id is the first member''s');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'enqueued'), 3::bigint,
	'each member is enqueued in the history');
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1) AS single \gset
SELECT is((SELECT gang_id FROM tinytemp.jobs WHERE id = :single), NULL, 'a single job has no gang_id');
SELECT tinytemp_cancel(:single) AS cancelled_single \gset

-- PLACEMENT: two fitting workers are not enough for a gang of 3.

SELECT tinytemp_register_worker('node-1', 8, 32768) AS w1 \gset
SELECT tinytemp_register_worker('node-2', 8, 32768) AS w2 \gset
SELECT tinytemp_register_worker('small', 2, 32768) AS w_small \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s, 10)', :w1), 'a claim never takes a pending gang member');
SELECT is(tinytemp_schedule()->'gangs_assigned', '0'::jsonb, 'with two fitting workers the pass assigns no gang of 3');
SELECT is((SELECT array_agg(DISTINCT state) FROM tinytemp.jobs WHERE gang_id = :g), ARRAY['pending'],
	'and every member stays pending');
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :g AND worker_id IS NOT NULL), 0::bigint,
	'with no worker');

SELECT tinytemp_register_worker('node-3', 8, 32768) AS w3 \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'once a third worker registers the pass assigns the gang');
SELECT results_eq(format('SELECT state, assigned_at FROM tinytemp.jobs WHERE gang_id = %s ORDER BY gang_rank', :g),
	$$VALUES ('assigned', '2026-01-01 00:00:00+00'::timestamptz), ('assigned', '2026-01-01 00:00:00+00'),
			 ('assigned', '2026-01-01 00:00:00+00')$$,
	'every member is assigned, at once');
SELECT set_eq(format('SELECT worker_id FROM tinytemp.jobs WHERE gang_id = %s', :g),
	ARRAY[:w1, :w2, :w3]::bigint[], 'to three distinct workers that fit it');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'assigned'), 3::bigint,
	'the history records each assignment');
SELECT is((SELECT free_cpus FROM tinytemp.worker_status WHERE id = :w1), 4::bigint,
	'an assigned member counts against its worker''s free resources');

-- CLAIM: a worker takes its assigned member first.

SELECT id AS m1 FROM tinytemp.jobs WHERE gang_id = :g AND worker_id = :w1 \gset
SELECT id AS m2 FROM tinytemp.jobs WHERE gang_id = :g AND worker_id = :w2 \gset
SELECT id AS m3 FROM tinytemp.jobs WHERE gang_id = :g AND worker_id = :w3 \gset
SELECT tinytemp_enqueue('inference', priority => 9, cpus => 2, runtime_estimate_s => 1) AS urgent \gset
SELECT results_eq(format('SELECT id, state FROM tinytemp_claim(%s, 1)', :w1),
	format($$VALUES (%s::bigint, 'running')$$, :m1),
	'a worker''s claim takes its assigned member before a ready job of a higher class');
SELECT is((SELECT predicted_end_at - started_at FROM tinytemp.jobs WHERE id = :m1), interval '600 s',
	'a claimed member has its predicted end');
SELECT is((SELECT array_agg(id) FROM tinytemp_claim(:w2, 10)), ARRAY[:m2, :urgent]::bigint[],
	'a claim of several takes the assigned member, then ready jobs that fit what is left');

-- FAILURE: the gang goes back to pending together.

SELECT is(tinytemp_fail(:m1, :w1, 'NCCL timeout'), 'pending', 'a member''s retryable failure');
SELECT results_eq(format('SELECT state, worker_id FROM tinytemp.jobs WHERE gang_id = %s ORDER BY gang_rank', :g),
	$$VALUES ('pending', NULL::bigint), ('pending', NULL), ('pending', NULL)$$,
	'puts every member back to pending, the running and the assigned ones too');
SELECT set_eq($$SELECT job_id, detail->>'reason' AS reason, detail->>'prior_state' AS prior FROM tinytemp.jobs_history WHERE event = 'requeued'$$,
	format($$VALUES (%s::bigint, 'gang member failed', 'running'), (%s, 'gang member failed', 'assigned')$$, :m2, :m3),
	'the others are requeued with the reason ''gang member failed''');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :m2, :w2), 'TT003', NULL,
	'the worker of a requeued member hears TT003 at its next heartbeat');
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'the next pass assigns the gang again');
SELECT is((SELECT count(DISTINCT worker_id) FROM tinytemp.jobs WHERE gang_id = :g AND state = 'assigned'), 3::bigint,
	'all of it, to three workers');

-- CANCEL: one member cancels the gang.

SELECT ok(tinytemp_cancel(:m2), 'cancelling one member');
SELECT is((SELECT array_agg(DISTINCT state) FROM tinytemp.jobs WHERE gang_id = :g), ARRAY['cancelled'],
	'cancels every member');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
		   WHERE j.gang_id = :g AND h.event = 'cancelled'), 3::bigint, 'each in the history');
SELECT is((SELECT free_cpus FROM tinytemp.worker_status WHERE id = :w3), 8::bigint,
	'and the cancelled members no longer hold their workers');

-- A member that fails for good takes its gang to the dead-letter queue.
SELECT tinytemp_enqueue('training', cpus => 2, gang_size => 2, runtime_estimate_s => 60) AS g2 \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'a gang of 2 is assigned');
SELECT id AS g2_m, worker_id AS g2_w FROM tinytemp.jobs WHERE gang_id = :g2 AND gang_rank = 0 \gset
SELECT count(*) AS n FROM tinytemp_claim(:g2_w, 5) \gset
SELECT is(tinytemp_fail(:g2_m, :g2_w, 'bad config', false), 'failed', 'a member fails without retry');
SELECT results_eq(format('SELECT state, last_error FROM tinytemp.jobs WHERE gang_id = %s ORDER BY gang_rank', :g2),
	format($$VALUES ('failed', 'bad config'), ('failed', 'gang member %s failed')$$, :g2_m),
	'the other member fails with it');
SELECT is((SELECT detail->>'reason' FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
		   WHERE j.gang_id = :g2 AND j.gang_rank = 1 AND h.event = 'dead_lettered'), 'gang member failed',
	'dead-lettered with the reason ''gang member failed''');
SELECT ok(tinytemp_retry(:g2_m), 'retrying the dead-lettered gang by one member');
SELECT results_eq(format('SELECT state, attempts FROM tinytemp.jobs WHERE gang_id = %s ORDER BY gang_rank', :g2),
	$$VALUES ('pending', 0), ('pending', 0)$$, 'puts the whole gang back in the queue');
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'and the next pass assigns it');

-- BEST FIT: the planner puts members where they waste least.

:reset
SELECT tinytemp_register_worker('gpu-1', 8, 32768, 2, 'a100') AS gpu1 \gset
SELECT tinytemp_register_worker('big-1', 64, 262144) AS big1 \gset
SELECT tinytemp_register_worker('cpu-1', 8, 32768) AS cpu1 \gset
SELECT tinytemp_register_worker('gpu-2', 8, 32768, 2, 'a100') AS gpu2 \gset
SELECT tinytemp_register_worker('big-2', 64, 262144) AS big2 \gset
SELECT tinytemp_register_worker('cpu-2', 8, 32768) AS cpu2 \gset
SELECT tinytemp_enqueue('preprocess', cpus => 4, memory_mb => 8192, gang_size => 2, runtime_estimate_s => 60) AS g_cpu \gset
SELECT tinytemp_enqueue('training', cpus => 4, memory_mb => 8192, gpus => 1, gpu_type => 'a100',
						gang_size => 2, runtime_estimate_s => 60) AS g_a100 \gset
SELECT tinytemp_enqueue('training', cpus => 4, memory_mb => 8192, gpus => 1, gpu_type => 'h100',
						gang_size => 2, runtime_estimate_s => 60) AS g_h100 \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '2'::jsonb, 'the pass assigns the two gangs that some workers fit');
SELECT set_eq(format('SELECT worker_id FROM tinytemp.jobs WHERE gang_id = %s', :g_cpu), ARRAY[:cpu1, :cpu2]::bigint[],
	'a CPU gang goes to the CPU workers it fits best, neither to GPU workers nor to much larger ones');
SELECT set_eq(format('SELECT worker_id FROM tinytemp.jobs WHERE gang_id = %s', :g_a100), ARRAY[:gpu1, :gpu2]::bigint[],
	'an a100 gang goes to the a100 workers');
SELECT results_eq(format('SELECT state, worker_id FROM tinytemp.jobs WHERE gang_id = %s ORDER BY gang_rank', :g_h100),
	$$VALUES ('pending', NULL::bigint), ('pending', NULL)$$, 'an h100 gang goes nowhere without h100 workers');

-- COMPETITION: two gangs of 2 and three workers: one gang runs whole, the other waits whole.

:reset
SELECT count(tinytemp_register_worker('n' || i, 4, 8192)) AS n FROM generate_series(1, 3) i \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 60) AS ga \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 60) AS gb \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'of two gangs of 2 on three workers the pass assigns one');
SELECT results_eq($$SELECT gang_id, array_agg(state ORDER BY gang_rank), count(DISTINCT worker_id)
					FROM tinytemp.jobs GROUP BY gang_id ORDER BY gang_id$$,
	format($$VALUES (%s::bigint, ARRAY['assigned', 'assigned'], 2::bigint), (%s, ARRAY['pending', 'pending'], 0)$$, :ga, :gb),
	'the first whole, on two workers; the second not at all');
SELECT is(tinytemp_schedule()->'gangs_assigned', '0'::jsonb, 'another pass does not assign part of the second');
SELECT is_empty($$SELECT id FROM tinytemp.worker_status WHERE free_cpus < 0$$, 'no worker holds more than it has');

-- A member's worker that never claims it: the whole gang is planned again.
:reset
SET LOCAL tinytemp.lease_timeout = '1min';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_register_worker('n2', 4, 8192) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 600) AS gs \gset
SELECT tinytemp_schedule()->'gangs_assigned' AS assigned \gset
SELECT id AS gs_m1 FROM tinytemp_claim(:w1) \gset
SELECT is(:gs_m1::bigint, (SELECT id FROM tinytemp.jobs WHERE gang_id = :gs AND worker_id = :w1),
	'one worker claims its member; the other never does');
SET LOCAL tinytemp.clock = '2026-01-01 00:00:50+00';
SELECT is(tinytemp_heartbeat(:gs_m1, :w1), 'continue', 'the running member heartbeats');
SET LOCAL tinytemp.clock = '2026-01-01 00:01:01+00';
SELECT tinytemp_schedule()->'ran' AS ran \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
			WHERE j.gang_id = :gs AND j.gang_rank = 1 AND h.event = 'assignment_expired'), 1::bigint,
	'a lease after the assignment, the pass takes the unclaimed member back (and may plan the gang anew at once)');
SELECT is_empty(format($$SELECT id FROM tinytemp.jobs WHERE gang_id = %s AND state = 'running'$$, :gs),
	'and the member that started: a gang never runs in part');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :gs_m1, :w1), 'TT003', NULL,
	'whose worker hears TT003 at its next heartbeat');

-- A member whose worker dies while it runs (its lease expires): the others come back too.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.lease_timeout = '1min';
SELECT tinytemp_register_worker('n1', 4, 8192) AS w1 \gset
SELECT tinytemp_register_worker('n2', 4, 8192) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 600) AS gl \gset
SELECT tinytemp_schedule()->'gangs_assigned' AS assigned \gset
SELECT id AS gl_m1 FROM tinytemp_claim(:w1) \gset
SELECT id AS gl_m2 FROM tinytemp_claim(:w2) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:50+00';
SELECT is(tinytemp_heartbeat(:gl_m1, :w1), 'continue', 'both members run; only one heartbeats');
SET LOCAL tinytemp.clock = '2026-01-01 00:01:01+00';
SELECT is(tinytemp_schedule()->'leases_expired', '2'::jsonb,
	'the other''s lease expires, which releases both members');
SELECT is((SELECT string_agg(event, ' ' ORDER BY id) FROM tinytemp.jobs_history
		   WHERE job_id = :gl_m2 AND event IN ('lease_expired', 'requeued')), 'lease_expired requeued',
	'the member whose lease ran out is recorded as such');
SELECT is_empty(format($$SELECT id FROM tinytemp.jobs WHERE gang_id = %s AND state = 'running'$$, :gl),
	'and the member that still runs is taken back with it: a gang never runs in part');
SELECT is((SELECT string_agg(event || ':' || coalesce(detail->>'reason', '-'), ' ' ORDER BY id)
		   FROM tinytemp.jobs_history WHERE job_id = :gl_m1 AND event NOT IN ('enqueued', 'assigned', 'claimed')),
	'requeued:gang member released',
	'which is recorded as released with its gang, not as a lease of its own that expired');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :gl_m1, :w1), 'TT003', NULL,
	'its worker hears TT003 at its next heartbeat');

-- A gang goes to the fastest workers that can hold it.
:reset
SELECT tinytemp_register_worker('slow-' || i, 8, 16384, labels => '{"speed": 0.2}') FROM generate_series(1, 2) i;
SELECT tinytemp_register_worker('fast-' || i, 8, 16384, labels => '{"speed": 2.0}') FROM generate_series(1, 2) i;
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 3600) AS gf \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'the gang is assigned');
SELECT is((SELECT array_agg(w.name ORDER BY w.name) FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id
		   WHERE j.gang_id = :gf), ARRAY['fast-1', 'fast-2'], 'to the two fast workers, not the slow ones');

-- SLOTS: a worker whose label "slots" says how many jobs it runs at once
-- (tinytemp-worker's --slots) takes no more once it holds that many,
-- whatever room it has left; the planner places and reserves accordingly.
:reset
SET LOCAL tinytemp.clock = '2026-02-01 00:00:00+00';
SELECT tinytemp_register_worker('one-slot-a', 8, 32768, labels => '{"slots": "1"}') AS sa \gset
SELECT tinytemp_register_worker('one-slot-b', 8, 32768, labels => '{"slots": "1"}') AS sb \gset
SELECT tinytemp_register_worker('unlimited', 8, 32768) AS sc \gset
SELECT tinytemp_enqueue('inference', cpus => 1, runtime_estimate_s => 1000) AS held \gset
SELECT is((SELECT id FROM tinytemp_claim(:sa)), :held::bigint, 'a one-slot worker takes a 1-CPU job, 7 CPUs left');
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 600) AS gs1 \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'a gang of two 4-CPU members is assigned');
SELECT set_eq(format('SELECT worker_id FROM tinytemp.jobs WHERE gang_id = %s', :gs1), ARRAY[:sb, :sc]::bigint[],
	'to the workers with a slot free, not to the full one where it would fit best');
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 600) AS gs2 \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '0'::jsonb,
	'another such gang is not: only one worker has a slot free, though all three have the CPUs');
SELECT results_eq(format('SELECT worker_id, start_at FROM tinytemp.reservations WHERE job_id = %s ORDER BY worker_id', :gs2),
	format($$VALUES (%s::bigint, '2026-02-01 00:10:00+00'::timestamptz), (%s, '2026-02-01 00:10:00+00')$$, :sb, :sc),
	'it holds a reservation from when the first gang''s member frees its slot (600 s), not the 1000 s job''s');

SELECT * FROM finish();
ROLLBACK;

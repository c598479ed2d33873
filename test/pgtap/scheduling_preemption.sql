-- scheduling_preemption.sql: a ready job of a higher priority class that
-- cannot start makes the planner pass ask lower-class running jobs to stop
-- (their heartbeat answers 'preempt') and reserve their room.  The worker
-- saves a checkpoint, which gives the job back without spending an attempt;
-- a worker that does not within tinytemp.preempt_grace is overruled.  Jobs
-- preempted tinytemp.max_preemptions times, and gang members, are never
-- victims; policy 'fifo' never preempts.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(40);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
SET LOCAL tinytemp.preempt_grace = '30s';
SET LOCAL tinytemp.max_preemptions = 3;

-- Two priority-0 jobs fill a 4-CPU worker, started at T0 and T0 + 10 s.
SELECT tinytemp_register_worker('node', 4, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low_a \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:10+00';
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low_b \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset

-- T0 + 20 s: a priority-5 job arrives.
SET LOCAL tinytemp.clock = '2026-01-01 00:00:20+00';
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 100) AS high \gset
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :w), 'the priority-5 job does not fit now');
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb, 'the pass asks one job to stop');
SELECT results_eq('SELECT id, preempt_requested_at FROM tinytemp.jobs WHERE state = ''running'' ORDER BY id',
	format($$VALUES (%s::bigint, NULL::timestamptz), (%s, '2026-01-01 00:00:20+00')$$, :low_a, :low_b),
	'the lower-class job started last, which loses the least work');
SELECT results_eq($$SELECT job_id, event, (detail->>'for_job')::bigint FROM tinytemp.jobs_history
					WHERE event = 'preempt_requested'$$,
	format($$VALUES (%s::bigint, 'preempt_requested', %s::bigint)$$, :low_b, :high),
	'the history records the request, for the priority-5 job');
SELECT results_eq('SELECT job_id, worker_id, start_at, cpus, reason FROM tinytemp.reservations',
	format($$VALUES (%s::bigint, %s::bigint, '2026-01-01 00:00:50+00'::timestamptz, 2, 'preemption')$$, :high, :w),
	'the room is reserved for the priority-5 job, from the end of the grace period');
SELECT is((SELECT reason FROM tinytemp.pending_reasons WHERE job_id = :high), 'holds a reservation',
	'pending_reasons says so');
SELECT is(tinytemp_heartbeat(:low_b, :w), 'preempt', 'the victim''s heartbeat answers preempt');
SELECT is(tinytemp_heartbeat(:low_a, :w), 'continue', 'the other''s answers continue');
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb,
	'another pass does not ask a second job to stop for the same need');

-- The worker saves a checkpoint: the job goes back, without spending an attempt.
SELECT lives_ok(format($$SELECT tinytemp_checkpoint(%s, %s, '{"step": 700}')$$, :low_b, :w),
	'the victim saves a checkpoint');
SELECT results_eq(format('SELECT state, worker_id, attempts, preemptions, preempt_requested_at, checkpoint FROM tinytemp.jobs WHERE id = %s', :low_b),
	$$VALUES ('pending', NULL::bigint, 0, 1, NULL::timestamptz, '{"step": 700}'::jsonb)$$,
	'which puts it back to pending with the checkpoint, attempts as before it ran, preemptions 1');
SELECT results_eq(format($$SELECT detail FROM tinytemp.jobs_history WHERE job_id = %s AND event = 'preempted'$$, :low_b),
	$$VALUES ('{"forced": false, "preemptions": 1, "attained_s": 10}'::jsonb)$$,
	'history: preempted, not forced, after 10 s of service');
SELECT is((SELECT attained_s FROM tinytemp.jobs WHERE id = :low_b), 10::float8,
	'the 10 s it ran count as its attained service');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :high::bigint, 'the priority-5 job takes the room');
SELECT is_empty(format('SELECT id FROM tinytemp_claim(%s)', :w), 'and the preempted job waits');

-- T0 + 120 s: the priority-5 job is done; the preempted job resumes from its checkpoint.
SET LOCAL tinytemp.clock = '2026-01-01 00:02:00+00';
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :high, :w), 'the priority-5 job ends');
SELECT tinytemp_schedule()->'ran' AS ran \gset
SELECT results_eq(format('SELECT id, checkpoint, attempts FROM tinytemp_claim(%s)', :w),
	format($$VALUES (%s::bigint, '{"step": 700}'::jsonb, 1)$$, :low_b),
	'the preempted job is claimed again, with its checkpoint, on its first attempt');

-- A victim that does not checkpoint within the grace period is forced back.
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 100) AS high2 \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb, 'a second priority-5 job: a job is asked to stop');
SELECT is((SELECT preempt_requested_at FROM tinytemp.jobs WHERE id = :low_b), '2026-01-01 00:02:00+00'::timestamptz,
	'the one started last again');
SET LOCAL tinytemp.clock = '2026-01-01 00:02:29+00';
SELECT is(tinytemp_schedule()->'preemptions_forced', '0'::jsonb, '29 s later it is not forced yet');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :low_b), 'running', 'and still runs');
SET LOCAL tinytemp.clock = '2026-01-01 00:02:30+00';
SELECT is(tinytemp_schedule()->'preemptions_forced', '1'::jsonb, '30 s later the pass forces it back');
SELECT results_eq(format('SELECT state, worker_id, attempts, preemptions, preempt_requested_at, checkpoint FROM tinytemp.jobs WHERE id = %s', :low_b),
	$$VALUES ('pending', NULL::bigint, 0, 2, NULL::timestamptz, '{"step": 700}'::jsonb)$$,
	'pending again, the attempt not spent, preemptions 2, the last checkpoint kept');
SELECT results_eq(format($$SELECT detail FROM tinytemp.jobs_history WHERE job_id = %s AND event = 'preempted' ORDER BY id$$, :low_b),
	$$VALUES ('{"forced": false, "preemptions": 1, "attained_s": 10}'::jsonb),
			 ('{"forced": true, "preemptions": 2, "attained_s": 40}')$$,
	'history: preempted, forced, its 30 s second run added to its service');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :low_b, :w), 'TT003', NULL,
	'the overruled worker''s next heartbeat is refused');
SELECT is((SELECT id FROM tinytemp_claim(:w)), :high2::bigint, 'the next claim starts the priority-5 job, not the priority-0 job forced out for it');

-- A job preempted max_preemptions times is not a victim again.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('node', 4, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low_a \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:10+00';
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low_b \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
UPDATE tinytemp.jobs SET preemptions = 2 WHERE id = :low_b;	-- as if preempted twice before
SET LOCAL tinytemp.max_preemptions = 2;
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 100) AS high3 \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb, 'a priority-5 job: a job is asked to stop');
SELECT results_eq('SELECT id FROM tinytemp.jobs WHERE preempt_requested_at IS NOT NULL',
	format('VALUES (%s::bigint)', :low_a),
	'with tinytemp.max_preemptions = 2, the job started first, not the one preempted twice already');
SET LOCAL tinytemp.max_preemptions = 3;

-- Only lower classes are victims.
:reset
SET LOCAL tinytemp.clock = '2026-01-01 00:00:00+00';
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', priority => 5, cpus => 2, runtime_estimate_s => 1000) AS p5 \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 1) AS p5_new \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb, 'a job of the same class is not preempted');
SELECT is(tinytemp_heartbeat(:p5, :w), 'continue', 'its heartbeat answers continue');

-- Gang members are never victims.
:reset
SELECT tinytemp_register_worker('n1', 2, 8192) AS w1 \gset
SELECT tinytemp_register_worker('n2', 2, 8192) AS w2 \gset
SELECT tinytemp_enqueue('training', cpus => 2, gang_size => 2, runtime_estimate_s => 1000) AS g \gset
SELECT tinytemp_schedule()->'gangs_assigned' AS assigned \gset
SELECT count(*) AS n FROM tinytemp_claim(:w1) \gset
SELECT count(*) AS n FROM tinytemp_claim(:w2) \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE gang_id = :g AND state = 'running'), 2::bigint,
	'a priority-0 gang runs on both workers');
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 1) AS urgent \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb, 'a priority-5 job does not preempt a gang member');
SELECT is_empty('SELECT id FROM tinytemp.jobs WHERE preempt_requested_at IS NOT NULL', 'no member is asked to stop');

-- A single job is not started by preemption on hardware much slower than
-- the fastest that could run it: a slow worker (speed 0.2, the first
-- registered) and a fast one each run a priority-0 job; the priority-5 job
-- has the fast one's stopped.
:reset
SET LOCAL tinytemp.policy = 'tinytemp';
SELECT tinytemp_register_worker('slow', 2, 8192, labels => '{"speed": 0.2}') AS slow \gset
SELECT tinytemp_register_worker('fast', 2, 8192) AS fast \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low_fast \gset
SELECT is((SELECT id FROM tinytemp_claim(:fast)), :low_fast::bigint, 'a priority-0 job runs on the fast worker');
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 100) AS low_slow \gset
SELECT is((SELECT id FROM tinytemp_claim(:slow)), :low_slow::bigint, 'and one on the slow worker');
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 600) AS urgent_job \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '1'::jsonb, 'the priority-5 job has one job stopped');
SELECT is((SELECT array_agg(id) FROM tinytemp.jobs WHERE preempt_requested_at IS NOT NULL), ARRAY[:low_fast::bigint],
	'the fast worker''s: 600 s there against 3000 s on the slow one');

-- Policy 'fifo' never preempts.
:reset
SET LOCAL tinytemp.policy = 'fifo';
SELECT tinytemp_register_worker('node', 2, 8192) AS w \gset
SELECT tinytemp_enqueue('training', cpus => 2, runtime_estimate_s => 1000) AS low \gset
SELECT id AS claimed FROM tinytemp_claim(:w) \gset
SELECT tinytemp_enqueue('inference', priority => 5, cpus => 2, runtime_estimate_s => 1) AS high \gset
SELECT is(tinytemp_schedule()->'preemptions_requested', '0'::jsonb, 'under fifo a priority-5 job preempts nothing');
SELECT is(tinytemp_heartbeat(:low, :w), 'continue', 'the running job''s heartbeat answers continue');
SELECT is_empty('SELECT job_id FROM tinytemp.reservations', 'and nothing is reserved');

SELECT * FROM finish();
ROLLBACK;

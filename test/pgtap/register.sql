-- register.sql: worker incarnations (a re-registration gets a new id, retires
-- the old one and releases its jobs at once) and claims that respect the
-- worker's free cpus, memory_mb, gpus and gpu_type across several claims.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(48);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

-- Claims take only what fits what the worker has left.  The jobs carry
-- equal runtime estimates, so that the claim order is the order of arrival.
SELECT tinytemp_register_worker('reg-gpu', 8, 16384, 2, 'a100') AS g \gset
SELECT tinytemp_enqueue('r1', runtime_estimate_s => 60, cpus => 4, memory_mb => 4096, gpus => 1, gpu_type => 'a100') AS r1 \gset
SELECT tinytemp_enqueue('r2', runtime_estimate_s => 60, cpus => 1, memory_mb => 1024, gpus => 1, gpu_type => 'h100') AS r2 \gset
SELECT tinytemp_enqueue('r3', runtime_estimate_s => 60, cpus => 2, memory_mb => 8192) AS r3 \gset
SELECT tinytemp_enqueue('r4', runtime_estimate_s => 60, cpus => 3, memory_mb => 1024) AS r4 \gset
SELECT tinytemp_enqueue('r5', runtime_estimate_s => 60, cpus => 1, memory_mb => 8192) AS r5 \gset
SELECT tinytemp_enqueue('r6', runtime_estimate_s => 60, cpus => 1, memory_mb => 1024, gpus => 2) AS r6 \gset
SELECT tinytemp_enqueue('r7', runtime_estimate_s => 60, cpus => 1, memory_mb => 1024, gpus => 1) AS r7 \gset
SELECT tinytemp_enqueue('r8', runtime_estimate_s => 60, cpus => 1, memory_mb => 1024) AS r8 \gset
SELECT tinytemp_enqueue('r9', runtime_estimate_s => 60, cpus => 9, memory_mb => 1024) AS r9 \gset
SELECT tinytemp_enqueue('r10', runtime_estimate_s => 60, cpus => 1, memory_mb => 1000000) AS r10 \gset

-- Free resources of a worker as the claim must see them.
CREATE TEMP VIEW tt_free AS
SELECT w.id, w.cpus - coalesce(sum(j.cpus), 0) AS cpus, w.memory_mb - coalesce(sum(j.memory_mb), 0) AS memory_mb,
	   w.gpus - coalesce(sum(j.gpus), 0) AS gpus
FROM tinytemp.workers w
LEFT JOIN tinytemp.jobs j ON j.worker_id = w.id AND j.state IN ('assigned', 'running')
GROUP BY w.id;

SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:g, 2)), ARRAY['r1', 'r3'],
	'max_jobs 2: the two oldest jobs that fit, one a100 job and one cpu job');
SELECT results_eq(format('SELECT cpus::bigint, memory_mb::bigint, gpus::bigint FROM tt_free WHERE id = %s', :g),
	'VALUES (2::bigint, 4096::bigint, 1::bigint)', 'worker left with 2 cpus, 4096 MB, 1 gpu');
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:g, 10)), ARRAY['r7', 'r8'],
	'next claim skips the h100 job, the 3-cpu job, the 8192 MB job and the 2-gpu job; takes what fits');
SELECT is((SELECT count(*) FROM tinytemp_claim(:g, 10)), 0::bigint, 'a worker with no free cpu claims nothing');
SELECT results_eq(format('SELECT free_cpus::bigint, free_memory_mb::bigint, free_gpus::bigint, jobs_held FROM tinytemp.worker_status WHERE id = %s', :g),
	'VALUES (0::bigint, 2048::bigint, 0::bigint, 4::bigint)', 'worker_status shows what the worker has left');

SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :r1, :g), 'ack the a100 job: 4 cpus, 4096 MB and a gpu come back');
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:g, 10)), ARRAY['r4'],
	'the freed room takes the 3-cpu job, still not the 8192 MB job (5120 MB left)');
SELECT is(tinytemp_fail(:r3, :g, 'oom'), 'pending', 'the 8192 MB job fails and waits for its retry');
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:g, 10)), ARRAY['r5'],
	'its memory comes back: the other 8192 MB job fits now, the delayed one does not run yet');

SELECT tinytemp_register_worker('reg-cpu', 16, 65536) AS h \gset
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:h, 10)), ARRAY['r9'],
	'a worker without gpus takes the 9-cpu job and no gpu job');
SELECT tinytemp_register_worker('reg-anygpu', 4, 8192, 2) AS n \gset
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:n, 10)), ARRAY['r6'],
	'a worker with untyped gpus takes the untyped 2-gpu job, not the h100 job');
SELECT tinytemp_register_worker('reg-h100', 4, 8192, 1, 'h100') AS k \gset
SELECT is((SELECT array_agg(job_type ORDER BY id) FROM tinytemp_claim(:k, 10)), ARRAY['r2'],
	'an h100 worker takes the h100 job');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :r10), 'pending', 'a job too large for every worker stays pending');
SELECT is_empty(
	$$SELECT id FROM tt_free WHERE cpus < 0 OR memory_mb < 0 OR gpus < 0$$,
	'no worker holds more than it has');
SELECT is_empty(
	$$SELECT j.id FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id
	  WHERE j.state = 'running' AND j.gpus > 0 AND j.gpu_type IS NOT NULL
	    AND j.gpu_type IS DISTINCT FROM w.gpu_type$$,
	'every running job that asked for a gpu type runs on that gpu type');

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

-- Re-registration: a new incarnation, the old one retired, its jobs released.
SELECT tinytemp_register_worker('reg-a', 4, 8192, labels => '{"zone": "a"}') AS a1 \gset
SELECT tinytemp_register_worker('reg-other', 2, 4096) AS o \gset
SELECT results_eq(
	format('SELECT name, cpus, memory_mb, gpus, gpu_type, labels, state, retired_at FROM tinytemp.workers WHERE id = %s', :a1),
	$$VALUES ('reg-a'::text, 4, 8192::bigint, 0, NULL::text, '{"zone": "a"}'::jsonb, 'active'::text, NULL::timestamptz)$$,
	'a registration records the worker''s hardware and is active');

SELECT tinytemp_enqueue('keep', priority => 3, max_attempts => 5) AS jx \gset
SELECT tinytemp_enqueue('last', priority => 2, max_attempts => 1) AS jy \gset
SELECT tinytemp_enqueue('done', priority => 1) AS jz \gset
SELECT is((SELECT array_agg(id ORDER BY id) FROM tinytemp_claim(:a1, 3)), ARRAY[:jx, :jy, :jz]::bigint[],
	'the first incarnation claims three jobs');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :jz, :a1), 'and finishes one of them');
SELECT tinytemp_enqueue('theirs') AS jo \gset
SELECT is((SELECT id FROM tinytemp_claim(:o)), :jo::bigint, 'another worker holds a job');
SELECT count(*) AS history_z FROM tinytemp.jobs_history WHERE job_id = :jz \gset

SELECT tinytemp_register_worker('reg-a', 8, 16384) AS a2 \gset
SELECT isnt(:a2::bigint, :a1::bigint, 're-registering a name returns a new id');
SELECT cmp_ok(:a2::bigint, '>', :a1::bigint, 'the new id is later than the old one');
SELECT results_eq(format('SELECT state, retired_at IS NOT NULL FROM tinytemp.workers WHERE id = %s', :a1),
	$$VALUES ('retired'::text, true)$$, 'the old incarnation is retired, with its retirement time');
SELECT results_eq(format('SELECT state, cpus, memory_mb FROM tinytemp.workers WHERE id = %s', :a2),
	$$VALUES ('active'::text, 8, 16384::bigint)$$, 'the new incarnation is active with its own hardware');
SELECT is((SELECT count(*) FROM tinytemp.workers WHERE name = 'reg-a' AND state = 'active'), 1::bigint,
	'one active incarnation per name');
SELECT is((SELECT state FROM tinytemp.workers WHERE id = :o), 'active', 'a worker of another name stays active');
SELECT results_eq(format('SELECT state, worker_id FROM tinytemp.jobs WHERE id = %s', :jo),
	format($$VALUES ('running'::text, %s::bigint)$$, :o), 'and keeps its job');

-- The job with attempts left is pending again at once.
SELECT results_eq(
	format('SELECT state, worker_id, lease_until, attempts, run_after <= now(), last_error IS NOT NULL FROM tinytemp.jobs WHERE id = %s', :jx),
	$$VALUES ('pending'::text, NULL::bigint, NULL::timestamptz, 1, true, true)$$,
	'the released job is pending now, unleased, attempt count kept, reason recorded');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :jx),
	ARRAY['enqueued', 'claimed', 'worker_restarted', 'requeued'],
	'history of the released job: worker_restarted then requeued');
SELECT is(
	(SELECT array_agg(DISTINCT worker_id) FROM tinytemp.jobs_history
	 WHERE job_id = :jx AND event IN ('worker_restarted', 'requeued')),
	ARRAY[:a1]::bigint[], 'both events name the old incarnation');
-- The job whose attempts are spent is dead-lettered.
SELECT results_eq(format('SELECT state, attempts, finished_at IS NOT NULL FROM tinytemp.jobs WHERE id = %s', :jy),
	$$VALUES ('failed'::text, 1, true)$$, 'the released job with no attempt left is failed');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter WHERE id = :jy), 1::bigint, 'and in the dead-letter queue');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :jy),
	ARRAY['enqueued', 'claimed', 'worker_restarted', 'dead_lettered'],
	'history of the dead-lettered job: worker_restarted then dead_lettered');
-- The finished job is left alone.
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :jz), 'succeeded', 'the finished job stays succeeded');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = :jz), :history_z::bigint,
	'the finished job gets no new event');

-- The old incarnation is done; the new one picks the job up without waiting for a lease.
SELECT throws_ok(format('SELECT * FROM tinytemp_claim(%s)', :a1), 'TT001', NULL,
	'the retired incarnation may not claim');
SELECT throws_ok(format('SELECT tinytemp_heartbeat(%s, %s)', :jx, :a1), 'TT003', NULL,
	'the retired incarnation may not heartbeat the released job');
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :a2),
	format('VALUES (%s::bigint, 2)', :jx), 'the new incarnation claims the released job at once, attempt 2');
SELECT is((SELECT count(*) FROM tinytemp_claim(:a2, 10)), 0::bigint,
	'the dead-lettered and the finished job are not claimed');

-- A third registration releases the second incarnation's job the same way.
SELECT tinytemp_register_worker('reg-a', 8, 16384) AS a3 \gset
SELECT cmp_ok(:a3::bigint, '>', :a2::bigint, 'a third registration gets yet another id');
SELECT is((SELECT array_agg(state ORDER BY id) FROM tinytemp.workers WHERE name = 'reg-a'),
	ARRAY['retired', 'retired', 'active'], 'two retired incarnations and one active');
SELECT results_eq(format('SELECT state, worker_id, attempts FROM tinytemp.jobs WHERE id = %s', :jx),
	$$VALUES ('pending'::text, NULL::bigint, 2)$$, 'the job is released again');
SELECT is(
	(SELECT array_agg(worker_id ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :jx AND event = 'worker_restarted'),
	ARRAY[:a1, :a2]::bigint[], 'each release names the incarnation that held the job');

-- Registering with no jobs held releases nothing.
SELECT count(*) AS history_all FROM tinytemp.jobs_history \gset
SELECT tinytemp_register_worker('reg-idle', 1, 1024) AS i1 \gset
SELECT tinytemp_register_worker('reg-idle', 1, 1024) AS i2 \gset
SELECT is((SELECT count(*) FROM tinytemp.jobs_history), :history_all::bigint,
	'a re-registration that holds no job writes no event');
SELECT is((SELECT state FROM tinytemp.workers WHERE id = :i1), 'retired', 'but still retires the old incarnation');

-- A job held at its last attempt by a worker that re-registers, then retried by hand.
SELECT tinytemp_enqueue('final', priority => 9, max_attempts => 2) AS jf \gset
UPDATE tinytemp.jobs SET attempts = 1 WHERE id = :jf;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :a3),
	format('VALUES (%s::bigint, 2)', :jf), 'claimed as its last attempt');
SELECT tinytemp_register_worker('reg-a', 8, 16384) AS a4 \gset
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :jf), 'failed', 'released at its last attempt: failed');
SELECT is(tinytemp_retry(:jf), true, 'tinytemp_retry brings it back');
SELECT is((SELECT array_agg(job_type ORDER BY priority DESC, id) FROM tinytemp_claim(:a4, 10)), ARRAY['final', 'keep'],
	'the newest incarnation claims it and the other released job');

SELECT * FROM finish();
ROLLBACK;

-- retries.sql: the backoff schedule within its bounds, dead-lettering after
-- max_attempts or a non-retryable failure, tinytemp_retry, and the history
-- event of every transition.
--
-- now() is constant in the transaction, so "time passes" by moving a job's
-- run_after back to now() by hand.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(74);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers;

-- Seconds until a job may run again.
CREATE TEMP VIEW tt_delay AS
SELECT id, extract(epoch FROM run_after - now()) AS delay_s FROM tinytemp.jobs;

-- The documented defaults.
SELECT is(current_setting('tinytemp.retry_backoff_base'), '2s', 'retry_backoff_base defaults to 2s');
SELECT is(current_setting('tinytemp.retry_backoff_cap'), '10min', 'retry_backoff_cap defaults to 10min');

-- tinytemp_retry_delay(n): 200 draws each in [d/2, d], d = min(cap, base * 2^(n-1)),
-- spread over both halves of that range (the jitter is not a constant).
CREATE TEMP TABLE tt_bounds (attempt int, lo float8, hi float8);
INSERT INTO tt_bounds VALUES
	(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16), (5, 16, 32), (8, 128, 256), (9, 256, 512),
	(10, 300, 600), (11, 300, 600), (40, 300, 600), (2147483647, 300, 600);
CREATE TEMP TABLE tt_draws AS
SELECT b.attempt, b.lo, b.hi, extract(epoch FROM tinytemp_retry_delay(b.attempt))::float8 AS s
FROM tt_bounds b, generate_series(1, 200);

SELECT is(
	(SELECT array_agg(DISTINCT attempt) FROM tt_draws WHERE s < lo OR s > hi),
	NULL,
	'every draw of tinytemp_retry_delay(n) lies in [d/2, d], d = min(10min, 2s * 2^(n-1))');
SELECT is(
	(SELECT array_agg(attempt ORDER BY attempt) FROM
		(SELECT attempt FROM tt_draws GROUP BY attempt, lo, hi
		 HAVING min(s) >= (lo + hi) / 2 OR max(s) <= (lo + hi) / 2) x),
	NULL,
	'for every n the draws fall on both sides of 3d/4');
SELECT cmp_ok((SELECT max(s) FROM tt_draws WHERE attempt = 9), '>', 300::float8,
	'attempt 9 (d = 512s) is not yet capped');

-- Other base and cap, as a superuser may set them.
SET LOCAL tinytemp.retry_backoff_base = '100ms';
SET LOCAL tinytemp.retry_backoff_cap = '1s';
SELECT is(
	(SELECT count(*) FROM (SELECT extract(epoch FROM tinytemp_retry_delay(1)) AS s
		FROM generate_series(1, 200)) x WHERE s < 0.05 OR s > 0.1),
	0::bigint, 'base 100ms: attempt 1 waits 50ms..100ms');
SELECT is(
	(SELECT count(*) FROM (SELECT extract(epoch FROM tinytemp_retry_delay(4)) AS s
		FROM generate_series(1, 200)) x WHERE s < 0.4 OR s > 0.8),
	0::bigint, 'base 100ms: attempt 4 waits 400ms..800ms');
SELECT is(
	(SELECT count(*) FROM (SELECT extract(epoch FROM tinytemp_retry_delay(5)) AS s
		FROM generate_series(1, 200)) x WHERE s < 0.5 OR s > 1),
	0::bigint, 'cap 1s: attempt 5 (d = 1.6s) waits 500ms..1s');
SET LOCAL tinytemp.retry_backoff_base = '0';
SELECT is(tinytemp_retry_delay(3), '0'::interval, 'base 0: no delay');
RESET tinytemp.retry_backoff_base;
RESET tinytemp.retry_backoff_cap;
SELECT is(current_setting('tinytemp.retry_backoff_base'), '2s', 'base back to its default');

SELECT throws_ok('SELECT tinytemp_retry_delay(0)', '22023', 'attempt must be greater than zero',
	'tinytemp_retry_delay(0): 22023');
SELECT throws_ok('SELECT tinytemp_retry_delay(-1)', '22023', 'attempt must be greater than zero',
	'tinytemp_retry_delay(-1): 22023');

-- A job with three attempts fails retryably three times.
SELECT tinytemp_register_worker('retry-w', 8, 65536) AS w \gset
SELECT tinytemp_enqueue('train', model => 'resnet', max_attempts => 3) AS j \gset

SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 1)', :j), 'first claim: attempt 1');
SELECT is(tinytemp_fail(:j, :w, 'out of memory'), 'pending', 'retryable fail after attempt 1: pending');
SELECT results_eq(
	format('SELECT state, attempts, worker_id, lease_until, last_error, finished_at FROM tinytemp.jobs WHERE id = %s', :j),
	$$VALUES ('pending'::text, 1, NULL::bigint, NULL::timestamptz, 'out of memory'::text, NULL::timestamptz)$$,
	'after the fail the job is pending, released, lease cleared, error kept, attempts still 1');
SELECT ok(delay_s BETWEEN 1 AND 2, 'after attempt 1, run_after is now + 1s..2s (got ' || delay_s || ')')
FROM tt_delay WHERE id = :j;
SELECT is(
	(SELECT abs((detail->>'delay_s')::numeric - extract(epoch FROM run_after - now())) <= 0.0005
	   AND (detail->>'run_after')::timestamptz = run_after
	 FROM tinytemp.jobs_history h JOIN tinytemp.jobs j ON j.id = h.job_id
	 WHERE h.job_id = :j AND h.event = 'retried'),
	true, 'the retried event records the delay (to the millisecond) and run_after actually set');
SELECT is((SELECT count(*) FROM tinytemp_claim(:w)), 0::bigint,
	'a job waiting for its retry is not claimed before run_after');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter WHERE id = :j), 0::bigint,
	'a job waiting for its retry is not in the dead-letter queue');

UPDATE tinytemp.jobs SET run_after = now() WHERE id = :j;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 2)', :j), 'second claim: attempt 2');
SELECT is(tinytemp_fail(:j, :w, 'nan loss'), 'pending', 'retryable fail after attempt 2: pending');
SELECT ok(delay_s BETWEEN 2 AND 4, 'after attempt 2, run_after is now + 2s..4s (got ' || delay_s || ')')
FROM tt_delay WHERE id = :j;

UPDATE tinytemp.jobs SET run_after = now() WHERE id = :j;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 3)', :j), 'third claim: attempt 3');
SELECT is(tinytemp_fail(:j, :w, 'diverged'), 'failed', 'retryable fail after the last attempt: failed');
SELECT results_eq(
	format('SELECT state, attempts, lease_until, last_error, finished_at IS NOT NULL FROM tinytemp.jobs WHERE id = %s', :j),
	$$VALUES ('failed'::text, 3, NULL::timestamptz, 'diverged'::text, true)$$,
	'the dead job is failed, 3 attempts, no lease, last error kept, finished');
SELECT results_eq(
	format('SELECT id, job_type, model, attempts, max_attempts, last_error FROM tinytemp.dead_letter WHERE id = %s', :j),
	format($$VALUES (%s::bigint, 'train'::text, 'resnet'::text, 3, 3, 'diverged'::text)$$, :j),
	'the dead job shows in tinytemp.dead_letter');
SELECT is((SELECT count(*) FROM tinytemp_claim(:w)), 0::bigint, 'a dead job is never claimed');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :j),
	ARRAY['enqueued', 'claimed', 'failed', 'retried', 'claimed', 'failed', 'retried',
		  'claimed', 'failed', 'dead_lettered'],
	'history: enqueued, then claimed/failed/retried twice, then claimed/failed/dead_lettered');
SELECT is(
	(SELECT array_agg((detail->>'attempt')::int ORDER BY id) FROM tinytemp.jobs_history
	 WHERE job_id = :j AND event IN ('claimed', 'failed')),
	ARRAY[1, 1, 2, 2, 3, 3], 'claimed and failed events carry the attempt number');
SELECT is(
	(SELECT array_agg(detail->>'error' ORDER BY id) FROM tinytemp.jobs_history
	 WHERE job_id = :j AND event = 'failed'),
	ARRAY['out of memory', 'nan loss', 'diverged'], 'failed events carry the error');
SELECT is(
	(SELECT count(*) FROM tinytemp.jobs_history
	 WHERE job_id = :j AND event IN ('claimed', 'failed', 'retried', 'dead_lettered')
	   AND worker_id IS DISTINCT FROM :w),
	0::bigint, 'every claim and fail event names the worker');

-- tinytemp_retry puts the dead job back, attempts reset.
SELECT is(tinytemp_retry(:j), true, 'tinytemp_retry of a dead job returns true');
SELECT results_eq(
	format('SELECT state, attempts, worker_id, finished_at, run_after <= now() FROM tinytemp.jobs WHERE id = %s', :j),
	$$VALUES ('pending'::text, 0, NULL::bigint, NULL::timestamptz, true)$$,
	'the retried job is pending now, attempts 0, no worker, not finished');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter WHERE id = :j), 0::bigint,
	'the retried job left the dead-letter queue');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM
		(SELECT id, event FROM tinytemp.jobs_history WHERE job_id = :j ORDER BY id DESC LIMIT 1) x),
	ARRAY['requeued'], 'tinytemp_retry writes a requeued event');
SELECT is(
	(SELECT (detail->>'previous_attempts')::int FROM tinytemp.jobs_history
	 WHERE job_id = :j AND event = 'requeued'),
	3, 'the requeued event records the attempts spent');
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 1)', :j), 'the retried job is claimed again, as attempt 1');
SELECT is(tinytemp_retry(:j), false, 'tinytemp_retry of a running job returns false');
SELECT is(tinytemp_fail(:j, :w, 'again'), 'pending', 'the retried job again has attempts left');
SELECT is(tinytemp_retry(:j), false, 'tinytemp_retry of a pending job returns false');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = :j AND event = 'requeued'),
	1::bigint, 'a refused tinytemp_retry writes no event');

-- retryable => false dead-letters at once, whatever attempts are left.
SELECT tinytemp_enqueue('train', priority => 5, max_attempts => 5) AS jf \gset
SELECT results_eq(format('SELECT id FROM tinytemp_claim(%s)', :w), format('VALUES (%s::bigint)', :jf),
	'claim the job that will fail for good');
SELECT is(tinytemp_fail(:jf, :w, 'bad config', retryable => false), 'failed',
	'non-retryable fail on attempt 1 of 5: failed');
SELECT results_eq(format('SELECT state, attempts FROM tinytemp.jobs WHERE id = %s', :jf),
	$$VALUES ('failed'::text, 1)$$, 'the job is failed after one attempt');
SELECT is((SELECT last_error FROM tinytemp.dead_letter WHERE id = :jf), 'bad config',
	'the job shows in tinytemp.dead_letter with its error');
SELECT is(
	(SELECT array_agg(event ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = :jf),
	ARRAY['enqueued', 'claimed', 'failed', 'dead_lettered'],
	'history: enqueued, claimed, failed, dead_lettered');
SELECT is(
	(SELECT detail->>'retryable' FROM tinytemp.jobs_history WHERE job_id = :jf AND event = 'failed'),
	'false', 'the failed event records retryable false');
SELECT is(tinytemp_retry(:jf), true, 'tinytemp_retry of a non-retryable failure returns true');
SELECT results_eq(format('SELECT state, attempts FROM tinytemp.jobs WHERE id = %s', :jf),
	$$VALUES ('pending'::text, 0)$$, 'the job is pending again with attempts 0');
SELECT is(tinytemp_retry(:jf), false, 'a second tinytemp_retry returns false');

-- max_attempts 1: the first retryable fail already dead-letters.
SELECT tinytemp_enqueue('train', priority => 9, max_attempts => 1) AS j1 \gset
SELECT results_eq(format('SELECT id FROM tinytemp_claim(%s)', :w), format('VALUES (%s::bigint)', :j1),
	'claim the single-attempt job');
SELECT is(tinytemp_fail(:j1, :w, 'boom'), 'failed', 'retryable fail of a single-attempt job: failed');
SELECT is((SELECT count(*) FROM tinytemp.dead_letter WHERE id = :j1), 1::bigint,
	'the single-attempt job is dead-lettered');

-- tinytemp_retry refuses succeeded and cancelled jobs.
SELECT tinytemp_enqueue('train', priority => 9) AS js \gset
SELECT results_eq(format('SELECT id FROM tinytemp_claim(%s)', :w), format('VALUES (%s::bigint)', :js),
	'claim the job that will succeed');
SELECT lives_ok(format('SELECT tinytemp_ack(%s, %s)', :js, :w), 'ack it');
SELECT is(tinytemp_retry(:js), false, 'tinytemp_retry of a succeeded job returns false');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :js), 'succeeded', 'the succeeded job stays succeeded');
SELECT tinytemp_enqueue('train', run_after => now() + interval '1 hour') AS jc \gset
SELECT is(tinytemp_cancel(:jc), true, 'cancel a delayed job');
SELECT is(tinytemp_retry(:jc), false, 'tinytemp_retry of a cancelled job returns false');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :jc), 'cancelled', 'the cancelled job stays cancelled');

-- Late attempts are capped: attempt 12 waits 5min..10min, not 2s * 2^11.
SELECT tinytemp_enqueue('train', priority => 9, max_attempts => 20) AS jl \gset
UPDATE tinytemp.jobs SET attempts = 11 WHERE id = :jl;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 12)', :jl), 'claim the job as attempt 12');
SELECT is(tinytemp_fail(:jl, :w, 'flaky'), 'pending', 'retryable fail after attempt 12: pending');
SELECT ok(delay_s BETWEEN 300 AND 600, 'after attempt 12, run_after is now + 5min..10min (got ' || delay_s || ')')
FROM tt_delay WHERE id = :jl;

-- tinytemp_fail follows the GUCs: with a 1s cap attempt 1 waits 0.5s..1s, and a
-- 30s base makes attempt 3 wait 60s..120s.
SET LOCAL tinytemp.retry_backoff_cap = '1s';
UPDATE tinytemp.jobs SET run_after = now(), attempts = 0 WHERE id = :jl;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 1)', :jl), 'claim the job as attempt 1');
SELECT is(tinytemp_fail(:jl, :w, 'flaky'), 'pending', 'retryable fail under a 1s cap: pending');
SELECT ok(delay_s BETWEEN 0.5 AND 1, 'cap 1s: run_after is now + 0.5s..1s (got ' || delay_s || ')')
FROM tt_delay WHERE id = :jl;
RESET tinytemp.retry_backoff_cap;
SET LOCAL tinytemp.retry_backoff_base = '30s';
UPDATE tinytemp.jobs SET run_after = now(), attempts = 2 WHERE id = :jl;
SELECT results_eq(format('SELECT id, attempts FROM tinytemp_claim(%s)', :w),
	format('VALUES (%s::bigint, 3)', :jl), 'claim the job as attempt 3');
SELECT is(tinytemp_fail(:jl, :w, 'flaky'), 'pending', 'retryable fail under a 30s base: pending');
SELECT ok(delay_s BETWEEN 60 AND 120, 'base 30s: after attempt 3 run_after is now + 60s..120s (got ' || delay_s || ')')
FROM tt_delay WHERE id = :jl;
RESET tinytemp.retry_backoff_base;

-- Many jobs failing together do not all retry at the same instant.
SELECT tinytemp_register_worker('retry-wide', 64, 1048576) AS ww \gset
SELECT is((SELECT count(tinytemp_enqueue('burst', priority => 100)) FROM generate_series(1, 40)),
	40::bigint, 'enqueue 40 jobs');
SELECT is((SELECT count(*) FROM tinytemp_claim(:ww, 40)), 40::bigint, 'claim 40 jobs at once');
SELECT is(
	(SELECT array_agg(DISTINCT tinytemp_fail(id, :ww, 'node lost')) FROM
		(SELECT id FROM tinytemp.jobs WHERE job_type = 'burst' AND worker_id = :ww ORDER BY id) x),
	ARRAY['pending'], 'all 40 fail retryably');
SELECT cmp_ok((SELECT count(DISTINCT run_after) FROM tinytemp.jobs WHERE job_type = 'burst'), '>', 30::bigint,
	'their retries are spread by jitter');
SELECT is(
	(SELECT count(*) FROM tt_delay d JOIN tinytemp.jobs j USING (id)
	 WHERE j.job_type = 'burst' AND d.delay_s NOT BETWEEN 1 AND 2),
	0::bigint, 'and all of them fall within attempt 1''s bounds');

SELECT * FROM finish();
ROLLBACK;

-- scheduling_errors.sql: the scheduling arguments and settings refuse bad
-- input with their SQLSTATEs, and only tinytemp_admin may run a planner pass.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(32);

\ir scheduling_setup.psql
TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, tinytemp.reservations;

-- ENQUEUE.
SELECT throws_ok($$SELECT tinytemp_enqueue('t', runtime_estimate_s => -1)$$, '22023', NULL,
	'a negative runtime_estimate_s: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', runtime_estimate_s => 'NaN')$$, '22023', NULL,
	'a NaN runtime_estimate_s: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', runtime_estimate_s => 'Infinity')$$, '22023', NULL,
	'an infinite runtime_estimate_s: 22023');
SELECT lives_ok($$SELECT tinytemp_enqueue('t', runtime_estimate_s => 0)$$, 'a runtime_estimate_s of 0 is fine');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', placement_timeout => '-1 min')$$, '22023', NULL,
	'a negative placement_timeout: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', placement_timeout => '-2 days')$$, '22023', NULL,
	'a placement_timeout of -2 days: 22023');
SELECT lives_ok($$SELECT tinytemp_enqueue('t', placement_timeout => '0')$$, 'a placement_timeout of 0 is fine');
SELECT tinytemp_enqueue('t') AS dep \gset
SELECT throws_ok(format('SELECT tinytemp_enqueue(%L, depends_on => ARRAY[[%s, %s], [%s, %s]]::bigint[])', 't', :dep, :dep, :dep, :dep),
	'22023', NULL, 'a two-dimensional depends_on: 22023');
SELECT throws_ok(format('SELECT tinytemp_enqueue(%L, depends_on => ARRAY[%s, NULL]::bigint[])', 't', :dep),
	'22004', NULL, 'a NULL in depends_on: 22004');
SELECT throws_ok(format('SELECT tinytemp_enqueue(%L, depends_on => ARRAY[%s, 9000000000000000001]::bigint[])', 't', :dep),
	'TT002', NULL, 'an unknown job in depends_on: TT002');
SELECT lives_ok(format('SELECT tinytemp_enqueue(%L, depends_on => ARRAY[]::bigint[])', 't'),
	'an empty depends_on is fine');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', gang_size => 1001)$$, '22023', NULL, 'gang_size 1001: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', gang_size => 0)$$, '22023', NULL, 'gang_size 0: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue('t', gang_size => NULL)$$, '22004', NULL, 'gang_size NULL: 22004');
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE job_type = 't'), 4::bigint,
	'none of the refused calls enqueued anything');

-- SETTINGS.
SELECT throws_ok($$SET tinytemp.clock = 'garbage'$$, '22023', NULL, 'tinytemp.clock = ''garbage'': 22023');
SELECT throws_ok($$SET tinytemp.clock = 'infinity'$$, '22023', NULL, 'tinytemp.clock = ''infinity'': 22023');
SELECT lives_ok($$SET LOCAL tinytemp.clock = '2026-01-01 12:00:00+00'$$, 'a timestamp is a clock');
SELECT is(tinytemp.now(), '2026-01-01 12:00:00+00'::timestamptz, 'which tinytemp.now() returns');
SELECT lives_ok($$SET LOCAL tinytemp.clock = ''$$, 'an empty clock');
SELECT is(tinytemp.now(), now(), 'is the transaction''s time');
SELECT throws_ok($$SET tinytemp.policy = 'lottery'$$, '22023', NULL, 'an unknown policy: 22023');
SELECT throws_ok($$SET tinytemp.aging_rate = -1$$, '22023', NULL, 'a negative aging_rate: 22023');
SELECT throws_ok($$SET tinytemp.max_preemptions = -1$$, '22023', NULL, 'a negative max_preemptions: 22023');

-- ROLES.
CREATE ROLE tt_sched_submitter NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_sched_worker NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_sched_admin NOLOGIN IN ROLE tinytemp_admin;
SELECT ok(NOT has_function_privilege('public', 'tinytemp_schedule()', 'EXECUTE'), 'PUBLIC may not run the planner');
SET ROLE tt_sched_submitter;
SELECT throws_ok('SELECT tinytemp_schedule()', '42501', NULL, 'a submitter may not run the planner');
SELECT throws_ok($$SET tinytemp.clock = '2026-01-01'$$, '42501', NULL, 'nor set the clock');
SELECT throws_ok('DELETE FROM tinytemp.reservations', '42501', NULL, 'nor write reservations');
SELECT throws_ok('SELECT count(*) FROM tinytemp.reservations', '42501', NULL,
	'nor read them: they name jobs of every tenant (pending_reasons says why its own jobs wait)');
RESET ROLE;
SET ROLE tt_sched_worker;
SELECT throws_ok('SELECT tinytemp_schedule()', '42501', NULL, 'a worker may not run the planner');
RESET ROLE;
SET ROLE tt_sched_admin;
SELECT is(tinytemp_schedule()->'ran', 'true'::jsonb, 'an admin may');
SELECT lives_ok($$SELECT tinytemp_enqueue('t', gang_size => 2, depends_on => ARRAY[]::bigint[],
										   runtime_estimate_s => 1, placement_timeout => '1h')$$,
	'and may enqueue with the new arguments');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

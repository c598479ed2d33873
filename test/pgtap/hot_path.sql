-- hot_path.sql: the two calls of 0.5.  tinytemp_ack_and_claim acks as
-- tinytemp_ack_many does (all or nothing), then claims as tinytemp_claim
-- does, in one call; tinytemp_enqueue_many enqueues a JSON array of jobs as
-- that many tinytemp_enqueue calls would, in one statement.  What each does,
-- what bad input gets, and who may call them.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(107);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-03-01 12:00:00+00';
SET LOCAL tinytemp.policy = 'tinytemp';
SET LOCAL tinytemp.lease_timeout = '1d';
-- Not the default, so that a bulk enqueue that used another rate would show.
SET LOCAL tinytemp.aging_rate = 2.5;

-- The columns in which two jobs differ, the id aside: '' when none.
CREATE FUNCTION pg_temp.hp_diff(a bigint, b bigint) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN (SELECT count(*) FROM tinytemp.jobs WHERE id IN (a, b)) < 2 THEN 'missing job'
		ELSE (SELECT coalesce(string_agg(key, ',' ORDER BY key), '')
			  FROM jsonb_each((SELECT to_jsonb(j) - 'id' FROM tinytemp.jobs j WHERE j.id = a)) x
			  FULL JOIN jsonb_each((SELECT to_jsonb(j) - 'id' FROM tinytemp.jobs j WHERE j.id = b)) y USING (key)
			  WHERE x.value IS DISTINCT FROM y.value) END
$$;

------------------------------------------------------------------------
-- ENQUEUE_MANY: the jobs tinytemp_enqueue would store.
------------------------------------------------------------------------

SELECT tinytemp_enqueue('ingest') AS dep \gset
-- One job with defaults only, one with every size and resource, one with
-- an estimate and a dependency, one delayed, one whose keys are all
-- present but null (each means that argument's default), and one whose
-- run_after has passed.
SELECT format($$[
	{"job_type": "inference"},
	{"job_type": "training", "model": "resnet50", "params": {"lr": 0.1}, "dataset_size": 1200000,
	 "epochs": 90, "batch_size": 256, "cpus": 8, "memory_mb": 65536, "gpus": 4, "gpu_type": "a100",
	 "max_attempts": 3, "placement_timeout": "2 hours"},
	{"job_type": "evaluation", "model": "bert-base", "dataset_size": 50000, "batch_size": 32,
	 "runtime_estimate_s": 120.5, "priority": 2, "depends_on": [%s], "gang_size": 1},
	{"job_type": "preprocess", "queue": "etl", "tenant": "vision", "run_after": "2026-03-01 12:30:00+00"},
	{"job_type": "inference", "model": null, "params": null, "priority": null, "dataset_size": null,
	 "epochs": null, "batch_size": null, "cpus": null, "memory_mb": null, "gpus": null, "gpu_type": null,
	 "gang_size": null, "max_attempts": null, "queue": null, "tenant": null, "run_after": null,
	 "depends_on": null, "runtime_estimate_s": null, "placement_timeout": null},
	{"job_type": "late", "run_after": "2026-03-01 11:00:00+00"}
]$$, :dep) AS specs \gset

-- Both in one statement: the same model predicts for both.
SELECT (SELECT array_agg(id ORDER BY ord) FROM tinytemp_enqueue_many(:'specs') WITH ORDINALITY t(id, ord)) AS many,
	ARRAY[tinytemp_enqueue('inference'),
		  tinytemp_enqueue('training', model => 'resnet50', params => '{"lr": 0.1}', dataset_size => 1200000,
						   epochs => 90, batch_size => 256, cpus => 8, memory_mb => 65536, gpus => 4,
						   gpu_type => 'a100', max_attempts => 3, placement_timeout => '2 hours'),
		  tinytemp_enqueue('evaluation', model => 'bert-base', dataset_size => 50000, batch_size => 32,
						   runtime_estimate_s => 120.5, priority => 2, depends_on => ARRAY[:dep]::bigint[],
						   gang_size => 1),
		  tinytemp_enqueue('preprocess', queue => 'etl', tenant => 'vision', run_after => '2026-03-01 12:30:00+00'),
		  tinytemp_enqueue('inference'),
		  tinytemp_enqueue('late', run_after => '2026-03-01 11:00:00+00')] AS single \gset

SELECT is(cardinality(:'many'::bigint[]), 6, 'enqueue_many returns one id per job');
SELECT ok((SELECT count(*) = 6 AND bool_and(predicted_runtime_s > 0) FROM tinytemp.jobs WHERE id = ANY (:'single')),
	'tinytemp_enqueue predicted a runtime for each of the same six jobs');
SELECT is((SELECT array_agg(j.predicted_runtime_s ORDER BY u.i)
		   FROM unnest(:'many'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
		  (SELECT array_agg(j.predicted_runtime_s ORDER BY u.i)
		   FROM unnest(:'single'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
	'each job''s predicted_runtime_s is what tinytemp_enqueue stores for it');
SELECT is((SELECT array_agg(j.rank_key ORDER BY u.i)
		   FROM unnest(:'many'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
		  (SELECT array_agg(j.rank_key ORDER BY u.i)
		   FROM unnest(:'single'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
	'each job''s rank_key is what tinytemp_enqueue stores for it (estimate, delay and aging rate included)');
SELECT is((SELECT string_agg(nullif(pg_temp.hp_diff(m, s), ''), '; ')
		   FROM unnest(:'many'::bigint[], :'single'::bigint[]) u(m, s)), NULL,
	'every column but the id is as tinytemp_enqueue stores it: left-out and null keys take the defaults');
SELECT is((SELECT string_agg(coalesce(tenant, '-') || ' ' || queue || ' ' || state || ' '
							 || coalesce(depends_on::text, '-'), ', ' ORDER BY u.i)
		   FROM unnest(:'many'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
	format('- default pending -, - default pending -, - default pending {%s}, vision etl pending -, - default pending -, - default pending -', :dep),
	'the superuser''s jobs have no tenant unless named; queue and dependency as given');
SELECT results_eq(format($$SELECT u.i::int, h.event, h.worker_id, (h.detail->>'run_after')::timestamptz,
							   h.at = '2026-03-01 12:00:00+00'
						   FROM unnest('%s'::bigint[]) WITH ORDINALITY u(id, i)
						   JOIN tinytemp.jobs_history h ON h.job_id = u.id ORDER BY u.i, h.id$$, :'many'),
	$$VALUES (1, 'enqueued', NULL::bigint, NULL::timestamptz, true), (2, 'enqueued', NULL, NULL, true),
			 (3, 'enqueued', NULL, NULL, true), (4, 'enqueued', NULL, '2026-03-01 12:30:00+00', true),
			 (5, 'enqueued', NULL, NULL, true), (6, 'enqueued', NULL, NULL, true)$$,
	'one enqueued event per job, with run_after in its detail when that is in the future');

-- The ids come back in the order of the array (params n numbers the jobs).
SELECT array_agg(id ORDER BY ord) AS ordered FROM tinytemp_enqueue_many(
	'[{"job_type": "c", "queue": "q2", "params": {"n": 1}, "runtime_estimate_s": 500},
	  {"job_type": "a", "params": {"n": 2}, "priority": 9},
	  {"job_type": "b", "queue": "q1", "params": {"n": 3}, "runtime_estimate_s": 1}]')
	WITH ORDINALITY t(id, ord) \gset
SELECT is((SELECT array_agg((j.params->>'n')::int ORDER BY u.i)
		   FROM unnest(:'ordered'::bigint[]) WITH ORDINALITY u(id, i) JOIN tinytemp.jobs j USING (id)),
		  ARRAY[1, 2, 3], 'the ids come back in the order of the array');
SELECT is((SELECT count(*) FROM tinytemp_enqueue_many('[]')), 0::bigint, 'an empty array enqueues nothing');
SELECT lives_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "gang_size": 1, "runtime_estimate_s": 0,
												  "placement_timeout": "0"}]')$$,
	'gang_size 1, runtime_estimate_s 0 and placement_timeout 0 are accepted');

-- ENQUEUE_MANY: bad input.
SELECT throws_ok($$SELECT tinytemp_enqueue_many(NULL)$$, '22004', 'jobs must not be null', 'NULL jobs: 22004');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('{"job_type": "x"}')$$, '22023',
	'jobs must be a JSON array of job objects', 'an object, not an array: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('"x"')$$, '22023',
	'jobs must be a JSON array of job objects', 'a scalar, not an array: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}, 3]')$$, '22023',
	'job 2 of the array is not a JSON object', 'an element that is not an object: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}, [{"job_type": "x"}]]')$$, '22023',
	'job 2 of the array is not a JSON object', 'an element that is an array: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "gpu": 1}]')$$, '22023',
	'job 1 of the array has an unknown key "gpu"', 'an unknown key: 22023, naming the key');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"zeta": 1, "job_type": "x", "alpha": 2}]')$$, '22023',
	'job 1 of the array has an unknown key "alpha"', 'two unknown keys: the least is named');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}, {"job_type": 1, "zz": 1}]')$$, '22023',
	'job 2 of the array has an unknown key "zz"', 'an unknown key before a job_type that is no string');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "y", "tenant": 5, "queue": true}]')$$, '22P02',
	'job 1 of the array: queue must be a JSON string', 'two keys that are no strings: the least is named');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}, {"model": "m"}]')$$, '22004',
	'job 2 of the array has no job_type', 'a missing job_type: 22004');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": null}]')$$, '22004',
	'job 1 of the array has no job_type', 'a null job_type: 22004');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "gang_size": 2}]')$$, '0A000',
	'job 1 of the array is a gang (gang_size 2)', 'a gang: 0A000');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "gang_size": 0}]')$$, '0A000', NULL,
	'gang_size 0: 0A000');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "runtime_estimate_s": -1}]')$$, '22023',
	'job 1 of the array: runtime_estimate_s must be between 0 and 1e9 seconds', 'a negative runtime_estimate_s: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "runtime_estimate_s": 1e9}]')$$, '22023',
	'job 1 of the array: runtime_estimate_s must be between 0 and 1e9 seconds', 'runtime_estimate_s 1e9: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "placement_timeout": "-1 second"}]')$$, '22023',
	'job 1 of the array: placement_timeout must not be negative', 'a negative placement_timeout: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "placement_timeout": "-1 day"}]')$$, '22023',
	'job 1 of the array: placement_timeout must not be negative', 'a negative placement_timeout in days: 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "cpus": "four"}]')$$, '22P02', NULL,
	'cpus that is no number: 22P02');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "priority": 1.5}]')$$, '22P02', NULL,
	'a priority that is no integer: 22P02');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "depends_on": "1"}]')$$, '22P02', NULL,
	'depends_on that is no array: 22P02');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": ["a"]}]')$$, '22P02',
	'job 1 of the array: job_type must be a JSON string', 'a job_type that is a JSON array: 22P02');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}, {"job_type": "y", "model": {"m": 1}}]')$$, '22P02',
	'job 2 of the array: model must be a JSON string', 'a model that is a JSON object: 22P02, naming the job');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "run_after": "soon"}]')$$, '22007', NULL,
	'run_after that is no timestamp: 22007, as for tinytemp_enqueue');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "cpus": 0}]')$$, '22023',
	'cpus must be greater than zero', 'cpus 0: the jobs_validate trigger''s 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": ""}]')$$, '22023',
	'job_type must not be empty', 'an empty job_type: the jobs_validate trigger''s 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "params": [1]}]')$$, '22023',
	'params must be a JSON object', 'params that is no object: the jobs_validate trigger''s 22023');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "depends_on": [9000000000000000001]}]')$$, 'TT002',
	'job 9000000000000000001 in depends_on does not exist', 'an unknown job in depends_on: TT002');
SELECT throws_ok(format($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "depends_on": [%s, null]}]')$$, :dep),
	'22004', 'depends_on must not contain nulls', 'a null in depends_on: 22004');
SELECT throws_ok(format($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "depends_on": [[%s]]}]')$$, :dep),
	'22023', 'depends_on must be a one-dimensional array', 'a two-dimensional depends_on: 22023');

-- All or nothing: a bad job after good ones leaves no job and no history.
SELECT count(*) AS jobs_before, (SELECT count(*) FROM tinytemp.jobs_history) AS history_before FROM tinytemp.jobs \gset
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "ok1"}, {"job_type": "ok2", "queue": "q9"},
												   {"job_type": "bad", "cpus": 0}]')$$,
	'22023', 'cpus must be greater than zero', 'the third job breaks a table rule');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "ok1"}, {"job_type": "ok2"},
												   {"job_type": "bad", "depends_on": [9000000000000000001]}]')$$,
	'TT002', NULL, 'the third job depends on no job');
SELECT is((SELECT count(*) || ' jobs, ' || (SELECT count(*) FROM tinytemp.jobs_history) || ' events' FROM tinytemp.jobs),
	:jobs_before || ' jobs, ' || :history_before || ' events',
	'the refused arrays left no job and no history behind');

------------------------------------------------------------------------
-- ACK_AND_CLAIM
------------------------------------------------------------------------
:reset
SELECT tinytemp_register_worker('hp-small', 2, 65536) AS ws \gset
SELECT tinytemp_register_worker('hp-big', 16, 65536) AS wb \gset
SELECT array_agg(tinytemp_enqueue('train', priority => 10 - g, params => jsonb_build_object('n', g)) ORDER BY g) AS q
FROM generate_series(1, 8) g \gset

-- Nothing to ack: a claim, the same as tinytemp_claim's.
SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS want
FROM tinytemp_claim(:ws, 2) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
SELECT is(jsonb_array_length(:'want'), 2, 'tinytemp_claim would start two jobs on the small worker');
SELECT is((SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality)
		   FROM tinytemp_ack_and_claim('{}', :ws, NULL, 2) WITH ORDINALITY c),
		  :'want'::jsonb, 'with an empty job_ids it just claims: the rows tinytemp_claim returns');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'claimed' AND worker_id = :ws), 2::bigint,
	'with their claimed events');
SELECT is((SELECT count(*) FROM tinytemp_ack_and_claim('{}', :wb)), 1::bigint, 'max_jobs defaults to 1');

-- Acks first, then claims: the acked jobs' room is free for the claim.
SELECT array_agg(id ORDER BY id) AS held FROM tinytemp.jobs WHERE worker_id = :ws AND state = 'running' \gset
SELECT array_agg(id ORDER BY id) AS next
FROM tinytemp_ack_and_claim(:'held', :ws, ARRAY['{"loss": 1}', NULL]::jsonb[], 2) \gset
SELECT is(:'next'::bigint[], (:'q'::bigint[])[4:5],
	'acking its two jobs frees the small worker''s two CPUs for the next two, claimed in the same call');
SELECT is((SELECT array_agg(state || ' ' || coalesce(result::text, '-') ORDER BY id) FROM tinytemp.jobs
		   WHERE id = ANY (:'held')), ARRAY['succeeded {"loss": 1}', 'succeeded -'],
	'the acked jobs succeeded, each with its own result');
SELECT is((SELECT string_agg(event, ' ' ORDER BY id) FROM tinytemp.jobs_history
		   WHERE worker_id = :ws AND (job_id = ANY (:'next') OR event = 'acked')),
	'acked acked claimed claimed', 'the history has the acks, then the claims');
SELECT is((SELECT array_agg(state || ' ' || worker_id ORDER BY id) FROM tinytemp.jobs WHERE id = ANY (:'next')),
	ARRAY['running ' || :ws, 'running ' || :ws], 'the claimed jobs run on the worker');

-- A refused ack raises before anything is claimed.
SELECT (:'q'::bigint[])[3] AS q3, (:'q'::bigint[])[4] AS q4, (:'q'::bigint[])[6] AS q6 \gset
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, NULL, 5)', :q6, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :q6),
	'a pending job in job_ids: TT003 (the acks go first: a job the call would claim is not acked by it)');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s, %s], %s, NULL, 5)', :q3, :q4, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :q4),
	'a batch with a job another worker holds: TT003');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(''%s'', %s, NULL, 2)', :'held', :ws), 'TT003', NULL,
	'acking jobs that already succeeded: TT003');
SELECT is((SELECT string_agg(id || ' ' || state || ' ' || coalesce(worker_id::text, '-'), ', ' ORDER BY id)
		   FROM tinytemp.jobs WHERE id IN (:q3, :q4, :q6)),
	format('%s running %s, %s running %s, %s pending -', :q3, :wb, :q4, :ws, :q6),
	'the refused calls acked nothing and claimed nothing');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'claimed'), 5::bigint,
	'and wrote no claimed event');

-- Workers that cannot claim.
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], 9000000000000000002)', :q3), 'TT001', NULL,
	'an unknown worker with a job to ack: TT001');
SELECT throws_ok($$SELECT * FROM tinytemp_ack_and_claim('{}', 9000000000000000002)$$, 'TT001', NULL,
	'an unknown worker with nothing to ack: TT001');
SELECT tinytemp_register_worker('hp-again', 4, 8192) AS old_incarnation \gset
SELECT tinytemp_register_worker('hp-again', 4, 8192) AS new_incarnation \gset
SELECT throws_ok(format($$SELECT * FROM tinytemp_ack_and_claim('{}', %s)$$, :old_incarnation), 'TT001',
	format('worker %s is not an active worker', :old_incarnation), 'a replaced incarnation: TT001');

-- ACK_AND_CLAIM: bad input, refused before anything is acked.
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(NULL, %s)', :wb), '22004',
	'job_ids must not be null', 'NULL job_ids: 22004');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], NULL)', :q3), '22004',
	'worker_id must not be null', 'NULL worker_id: 22004');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, NULL, NULL)', :q3, :wb), '22004',
	'max_jobs must not be null', 'NULL max_jobs: 22004');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s, NULL], %s)', :q3, :wb), '22004',
	'job_ids must not contain nulls', 'a NULL id: 22004');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s, %s], %s)', :q3, :q3, :wb), '22023',
	format('job %s appears twice in job_ids', :q3), 'a duplicate id: 22023');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY(SELECT generate_series(1, 1001))::bigint[], %s)', :wb),
	'22023', 'at most 1000 jobs can be acked in one call', 'more than 1000 ids: 22023');
SELECT throws_ok(format($$SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, '{"{}", "{}"}')$$, :q3, :wb), '22023',
	'results must be a one-dimensional array as long as job_ids', 'results of another length: 22023');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, NULL, 0)', :q3, :wb), '22023',
	'max_jobs must be greater than zero', 'max_jobs 0: 22023');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, NULL, -1)', :q3, :wb), '22023',
	'max_jobs must be greater than zero', 'a negative max_jobs: 22023');
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s, NULL, 1001)', :q3, :wb), '22023',
	'max_jobs must be at most 1000', 'max_jobs 1001: 22023');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :q3), 'running', 'the refused calls did not ack the job');
SELECT is((SELECT count(*) FROM tinytemp_ack_and_claim(ARRAY[:q3]::bigint[], :wb, NULL, 1000)), 3::bigint,
	'max_jobs 1000 is allowed: it acks the job and claims the three jobs left');

------------------------------------------------------------------------
-- ROLES AND TENANTS
------------------------------------------------------------------------
:reset
CREATE ROLE tt_hp_team NOLOGIN;
CREATE ROLE tt_hp_a NOLOGIN IN ROLE tinytemp_submitter, tt_hp_team;
CREATE ROLE tt_hp_b NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_hp_wrk1 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_hp_wrk2 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_hp_adm NOLOGIN IN ROLE tinytemp_admin;
CREATE ROLE tt_hp_nobody NOLOGIN;

-- A submitter: its own tenant, or a group it belongs to; no other.
SET LOCAL ROLE tt_hp_a;
SELECT array_agg(id ORDER BY ord) AS a_jobs FROM tinytemp_enqueue_many(
	'[{"job_type": "x", "model": "own"}, {"job_type": "x", "model": "team", "tenant": "tt_hp_team"},
	  {"job_type": "x", "model": "self", "tenant": "tt_hp_a"}]') WITH ORDINALITY t(id, ord) \gset
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "model": "x1"},
												   {"job_type": "x", "model": "x2", "tenant": "tt_hp_b"}]')$$,
	'42501', 'permission denied to enqueue for tenant "tt_hp_b"',
	'a submitter naming another tenant, after a job of its own: 42501');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "model": "x3", "tenant": "tt_hp_no_such_role"}]')$$,
	'42501', NULL, 'a submitter naming a tenant that is no role: 42501');
SELECT throws_ok($$SELECT * FROM tinytemp_ack_and_claim('{}', 1)$$, '42501', NULL,
	'a submitter may not call tinytemp_ack_and_claim');
SELECT t.id AS a_dep FROM tinytemp_enqueue_many(jsonb_build_array(jsonb_build_object(
	'job_type', 'x', 'model', 'dep', 'depends_on', jsonb_build_array((:'a_jobs'::bigint[])[2])))) t(id) \gset
RESET ROLE;
SELECT is((SELECT string_agg(model || '=' || tenant, ' ' ORDER BY id) FROM tinytemp.jobs),
	'own=tt_hp_a team=tt_hp_team self=tt_hp_a dep=tt_hp_a',
	'a submitter''s job without a tenant is its own; it may name a group it is in; the refused calls left no job');
SELECT is((SELECT depends_on FROM tinytemp.jobs WHERE id = :a_dep), ARRAY[(:'a_jobs'::bigint[])[2]],
	'it may depend on a job of a tenant it acts for');
SELECT is((SELECT count(*) FROM tinytemp.jobs_history WHERE event = 'enqueued'), 4::bigint,
	'one enqueued event per job it enqueued, none for the refused calls');

SET LOCAL ROLE tt_hp_b;
SELECT throws_ok(format($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "depends_on": [%s]}]')$$,
						(:'a_jobs'::bigint[])[1]),
	'TT002', format('job %s in depends_on does not exist', (:'a_jobs'::bigint[])[1]),
	'another tenant''s job in depends_on does not exist for it: TT002');
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x", "tenant": "tt_hp_team"}]')$$,
	'42501', NULL, 'a submitter naming a group it is not in: 42501');
RESET ROLE;

-- An admin's jobs have no tenant unless named, and it may name any.
SET LOCAL ROLE tt_hp_adm;
SELECT array_agg(id ORDER BY ord) AS adm_jobs FROM tinytemp_enqueue_many(
	'[{"job_type": "x", "model": "adm"}, {"job_type": "x", "model": "adm2", "tenant": "tt_hp_no_such_role"}]')
	WITH ORDINALITY t(id, ord) \gset
RESET ROLE;
SELECT is((SELECT string_agg(coalesce(tenant, '-'), ' ' ORDER BY id) FROM tinytemp.jobs WHERE id = ANY (:'adm_jobs')),
	'- tt_hp_no_such_role', 'an admin''s job has no tenant unless it names one, and it may name any');

SET LOCAL ROLE tt_hp_wrk1;
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}]')$$, '42501', NULL,
	'a worker role may not call tinytemp_enqueue_many');
RESET ROLE;
SET LOCAL ROLE tt_hp_nobody;
SELECT throws_ok($$SELECT tinytemp_enqueue_many('[{"job_type": "x"}]')$$, '42501', NULL,
	'no grants: tinytemp_enqueue_many is denied');
SELECT throws_ok($$SELECT * FROM tinytemp_ack_and_claim('{}', 1)$$, '42501', NULL,
	'no grants: tinytemp_ack_and_claim is denied');
RESET ROLE;

-- A worker role acks and claims only for the workers it registered.
SET LOCAL ROLE tt_hp_wrk1;
SELECT tinytemp_register_worker('hp-r1', 1, 4096) AS r1 \gset
RESET ROLE;
SET LOCAL ROLE tt_hp_wrk2;
SELECT tinytemp_register_worker('hp-r2', 1, 4096) AS r2 \gset
SELECT throws_ok(format($$SELECT * FROM tinytemp_ack_and_claim('{}', %s, NULL, 5)$$, :r1), '42501',
	format('permission denied to report for worker %s', :r1),
	'a worker role may not claim through ack_and_claim for another role''s worker');
RESET ROLE;
SELECT is((SELECT count(*) FROM tinytemp.jobs WHERE worker_id = :r1), 0::bigint, 'the refused call claimed nothing');
SET LOCAL ROLE tt_hp_wrk1;
SELECT id AS r1_job FROM tinytemp_ack_and_claim('{}', :r1) \gset
RESET ROLE;
SELECT is((SELECT state || ' ' || worker_id FROM tinytemp.jobs WHERE id = :r1_job), 'running ' || :r1,
	'a worker role claims for its own worker');
SET LOCAL ROLE tt_hp_wrk2;
SELECT throws_ok(format('SELECT * FROM tinytemp_ack_and_claim(ARRAY[%s], %s)', :r1_job, :r1), '42501',
	format('permission denied to report for worker %s', :r1),
	'a worker role may not ack through ack_and_claim for another role''s worker');
RESET ROLE;
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :r1_job), 'running', 'the refused call acked nothing');
SET LOCAL ROLE tt_hp_wrk1;
SELECT id AS r1_next FROM tinytemp_ack_and_claim(ARRAY[:r1_job]::bigint[], :r1, '{"{\"ok\": true}"}', 1) \gset
RESET ROLE;
SELECT is((SELECT array_agg(state || ' ' || coalesce(result::text, '-') || ' ' || worker_id ORDER BY id)
		   FROM tinytemp.jobs WHERE id IN (:r1_job, :r1_next)),
	ARRAY['succeeded {"ok": true} ' || :r1, 'running - ' || :r1],
	'a worker role acks its own worker''s job and claims the next in one call');
SET LOCAL ROLE tt_hp_adm;
SELECT id AS adm_next FROM tinytemp_ack_and_claim(ARRAY[:r1_next]::bigint[], :r1) \gset
RESET ROLE;
SELECT is((SELECT array_agg(state || ' ' || worker_id ORDER BY id) FROM tinytemp.jobs WHERE id IN (:r1_next, :adm_next)),
	ARRAY['succeeded ' || :r1, 'running ' || :r1], 'an admin acks and claims for any worker');

------------------------------------------------------------------------
-- ACK_AND_CLAIM claims as tinytemp_claim does: policies and gangs.
------------------------------------------------------------------------
:reset
SELECT tinytemp_register_worker('hp-one', 1, 8192) AS w1 \gset
SELECT tinytemp_enqueue('training', runtime_estimate_s => 1000) AS old_long \gset
SELECT tinytemp_enqueue('inference', runtime_estimate_s => 1) AS new_short \gset
-- What each call would do under each policy, rolled back each time.
SET LOCAL tinytemp.policy = 'fifo';
SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS want_fifo
FROM tinytemp_claim(:w1, 1) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS got_fifo
FROM tinytemp_ack_and_claim('{}', :w1) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
RELEASE SAVEPOINT hp_claim;
-- Outside the savepoint: rolling back to it would undo the SET.
SET LOCAL tinytemp.policy = 'tinytemp';
SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS want_tinytemp
FROM tinytemp_claim(:w1, 1) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS got_tinytemp
FROM tinytemp_ack_and_claim('{}', :w1) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
SELECT is((:'want_fifo'::jsonb)->0->>'id', :'old_long', 'under fifo tinytemp_claim would take the older, longer job');
SELECT is(:'got_fifo'::jsonb, :'want_fifo'::jsonb, 'and ack_and_claim returns the same row');
SELECT is((:'want_tinytemp'::jsonb)->0->>'id', :'new_short',
	'under the tinytemp policy tinytemp_claim would take the newer, shorter job');
SELECT is(:'got_tinytemp'::jsonb, :'want_tinytemp'::jsonb, 'and ack_and_claim returns the same row');

:reset
SELECT tinytemp_register_worker('hp-g1', 4, 8192) AS g1 \gset
SELECT tinytemp_register_worker('hp-g2', 4, 8192) AS g2 \gset
SELECT tinytemp_enqueue('training', cpus => 4, gang_size => 2, runtime_estimate_s => 30) AS gang \gset
SELECT is(tinytemp_schedule()->'gangs_assigned', '1'::jsonb, 'the planner assigns the gang to both workers');
SELECT tinytemp_enqueue('inference', runtime_estimate_s => 5) AS small \gset
SAVEPOINT hp_claim;
SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality) AS want
FROM tinytemp_claim(:g1, 2) WITH ORDINALITY c \gset
ROLLBACK TO SAVEPOINT hp_claim;
SELECT is((SELECT string_agg(e->>'gang_id', ' ') FROM jsonb_array_elements(:'want'::jsonb) e), :'gang',
	'tinytemp_claim would start the member assigned to the worker, and nothing else fits');
SELECT is((SELECT jsonb_agg(to_jsonb(c) - 'ordinality' ORDER BY c.ordinality)
		   FROM tinytemp_ack_and_claim('{}', :g1, NULL, 2) WITH ORDINALITY c),
		  :'want'::jsonb, 'ack_and_claim starts the assigned gang member first, as tinytemp_claim does');

-- The rules every state change keeps, a row trigger since 0.5 (table CHECKs
-- before): each broken by a direct write raises 23514 and names the rule.
SELECT tinytemp_enqueue('rules') AS r \gset
SELECT tinytemp_register_worker('hp-rules', 2, 2048) AS rw \gset
SELECT is((SELECT count(*) FROM pg_constraint WHERE conrelid = 'tinytemp.jobs'::regclass AND contype = 'c'),
	0::bigint, 'tinytemp.jobs has no CHECK constraint left to rebuild per statement');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'bogus' WHERE id = %s$$, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule state IN ('pending', 'assigned', 'running', 'succeeded', 'failed', 'cancelled')$$,
	'an unknown state: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET attempts = max_attempts + 1 WHERE id = %s$$, :r), '23514',
	'a row of tinytemp.jobs breaks the rule attempts BETWEEN 0 AND max_attempts', 'attempts past max_attempts: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'running', lease_until = now() WHERE id = %s$$, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule state NOT IN ('assigned', 'running') OR worker_id IS NOT NULL$$,
	'running without a worker: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'running', worker_id = %s WHERE id = %s$$, :rw, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule (state = 'running') = (lease_until IS NOT NULL)$$,
	'running without a lease: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET lease_until = now() WHERE id = %s$$, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule (state = 'running') = (lease_until IS NOT NULL)$$,
	'a lease on a pending job: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'succeeded' WHERE id = %s$$, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule (state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)$$,
	'finished without finished_at: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET state = 'assigned', worker_id = %s WHERE id = %s$$, :rw, :r), '23514',
	$$a row of tinytemp.jobs breaks the rule state <> 'assigned' OR assigned_at IS NOT NULL$$,
	'assigned without assigned_at: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET runtime_estimate_s = -1 WHERE id = %s$$, :r), '23514',
	'a row of tinytemp.jobs breaks the rule runtime_estimate_s >= 0', 'a negative runtime_estimate_s: 23514');
SELECT throws_ok(format($$UPDATE tinytemp.jobs SET gang_id = %s WHERE id = %s$$, :r, :r), '23514',
	'a row of tinytemp.jobs breaks the rule (gang_id IS NULL) = (gang_size = 1)', 'a gang_id on a single job: 23514');
SELECT is((SELECT state FROM tinytemp.jobs WHERE id = :r), 'pending', 'and the job is as it was');

SELECT * FROM finish();
ROLLBACK;

-- tenants.sql: the role matrix of 0.4.  Every kind of role (the submitters of
-- two tenants, one of them also a member of the group tenant tt_team; two
-- worker roles; an admin; a role with no grants) against every API function
-- and every table and view of schema tinytemp: each call either works and
-- does what it should, or is refused with 42501 and changes nothing.
--
-- The scenario is a table of steps (role, statement, expected result) that
-- one DO block runs in order as the superuser: it takes the step's role with
-- SET LOCAL ROLE, runs the statement in a subtransaction, and notes the
-- result as text: 'denied' for SQLSTATE 42501, 'ERROR <sqlstate>' for any
-- other error, 'done' for a statement that returns nothing.  A step without
-- a role is the superuser's check of what the steps before did (it bypasses
-- row-level security).  A step with save_as keeps its result (an id) under
-- that key, and {key} in a later statement stands for it.  The assertions
-- are read from the table afterwards, so pgTAP only ever runs as the
-- superuser: one test per step, except the steps of a group (grp), which
-- pass together as one test that lists the steps that went wrong.
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(156);

TRUNCATE tinytemp.jobs, tinytemp.jobs_history, tinytemp.workers, tinytemp.reservations;

CREATE ROLE tt_nobody NOLOGIN;
CREATE ROLE tt_team NOLOGIN;
CREATE ROLE tt_tenant_a NOLOGIN IN ROLE tinytemp_submitter, tt_team;
CREATE ROLE tt_tenant_b NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_wrk_1 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_wrk_2 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_adm NOLOGIN IN ROLE tinytemp_admin;

-- Training data the admin may read, for tinytemp_train_predictor.
CREATE TEMP TABLE tt_train AS SELECT * FROM tinytemp_synthetic_jobs(200, 7);
GRANT SELECT ON tt_train TO tt_adm;

-- What the steps saved.  Readable by every role: the probes below map the
-- job ids a role sees back to the jobs' keys.
CREATE TEMP TABLE tt_saved (k text PRIMARY KEY, v text, job boolean NOT NULL);
GRANT SELECT ON tt_saved TO PUBLIC;

-- A job as the superuser's checks describe it.
CREATE TEMP VIEW tt_job AS
SELECT j.model, concat_ws(' ', j.model, j.state, 'attempt ' || j.attempts,
						  'on ' || (SELECT w.name FROM tinytemp.workers w WHERE w.id = j.worker_id),
						  'progress ' || j.progress::text, 'checkpoint ' || j.checkpoint::text,
						  'result ' || j.result::text, 'error ' || j.last_error) AS d
FROM tinytemp.jobs j;

-- Everything a call could change, for the checks that nothing did.
CREATE TEMP VIEW tt_state AS
SELECT md5(concat((SELECT string_agg(j::text, ',' ORDER BY id) FROM tinytemp.jobs j), '|',
				  (SELECT string_agg(h::text, ',' ORDER BY id) FROM tinytemp.jobs_history h), '|',
				  (SELECT string_agg(w::text, ',' ORDER BY id) FROM tinytemp.workers w), '|',
				  (SELECT max(version) FROM tinytemp.predictor_models))) AS fingerprint;

CREATE TEMP TABLE tt_steps (
	step	int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	who		text,					-- the role that runs sql; NULL: the superuser, checking
	sql		text NOT NULL,
	expect	text NOT NULL,
	what	text NOT NULL,
	save_as	text,					-- keep the result under this key; got is then 'saved'
	grp		text,					-- the steps of one group pass or fail together
	got		text,
	err		text);

-- The API, with a call of each function on the scenario's jobs and workers,
-- and the groups the extension's scripts grant it to (the admin: all).
CREATE TEMP TABLE tt_api (fn text PRIMARY KEY, call text NOT NULL, granted text[] NOT NULL);
INSERT INTO tt_api VALUES
	('tinytemp_register_worker', $$SELECT tinytemp_register_worker('tt-sneaky', 1, 1)$$, '{worker}'),
	('tinytemp_enqueue', $$SELECT tinytemp_enqueue('train', model => 'sneaky')$$, '{submitter}'),
	('tinytemp_cancel', $$SELECT tinytemp_cancel({b2})$$, '{submitter}'),
	('tinytemp_claim', $$SELECT count(*) FROM tinytemp_claim({w1}, 5)$$, '{worker}'),
	('tinytemp_ack', $$SELECT tinytemp_ack({a1}, {w1}, '{"sneaky": 1}')::text$$, '{worker}'),
	('tinytemp_ack_many', $$SELECT tinytemp_ack_many(ARRAY[{a1}, {t1}], {w1})$$, '{worker}'),
	('tinytemp_fail', $$SELECT tinytemp_fail({a1}, {w1}, 'sneaky', false)$$, '{worker}'),
	('tinytemp_heartbeat', $$SELECT tinytemp_heartbeat({a1}, {w1}, '{"sneaky": 1}')$$, '{worker}'),
	('tinytemp_checkpoint', $$SELECT tinytemp_checkpoint({a1}, {w1}, '{"sneaky": 1}')::text$$, '{worker}'),
	('tinytemp_retry', $$SELECT tinytemp_retry({b1})$$, '{}'),
	('tinytemp_expire_leases', $$SELECT tinytemp_expire_leases()$$, '{}'),
	('tinytemp_schedule', $$SELECT tinytemp_schedule()::text$$, '{}'),
	('tinytemp_retry_delay', $$SELECT tinytemp_retry_delay(1)::text$$, '{}'),
	('tinytemp_predict_runtime',
	 $$SELECT tinytemp_predict_runtime('train', 'bert', 1000, 1, 32, 1, 0, NULL, 1024)::text$$,
	 '{submitter,worker}'),
	('tinytemp_train_predictor', $$SELECT tinytemp_train_predictor('pg_temp.tt_train')::text$$, '{}'),
	('tinytemp_predictor_check', $$SELECT tinytemp_predictor_check('\x00')::text$$, '{}'),
	('tinytemp_synthetic_jobs', $$SELECT count(*) FROM tinytemp_synthetic_jobs(3)$$, '{submitter}'),
	('tinytemp.now', $$SELECT tinytemp.now()::text$$, '{submitter,worker}'),
	('tinytemp.acts_for', $$SELECT tinytemp.acts_for('tt_tenant_a')$$, '{submitter,worker}'),
	('tinytemp.is_admin', $$SELECT tinytemp.is_admin()$$, '{submitter,worker}');

CREATE TEMP TABLE tt_role (who text PRIMARY KEY, grp text);
INSERT INTO tt_role VALUES ('tt_tenant_a', 'submitter'), ('tt_tenant_b', 'submitter'),
	('tt_wrk_1', 'worker'), ('tt_wrk_2', 'worker'), ('tt_nobody', NULL);

-- WORKERS: an incarnation belongs to the role that registered it. --
INSERT INTO tt_steps (who, sql, expect, what, save_as) VALUES
('tt_wrk_1', $$SELECT tinytemp_register_worker('tt-w1', 8, 16384)$$, 'saved',
 'registers worker tt-w1', 'w1old'),
('tt_wrk_1', $$SELECT tinytemp_register_worker('tt-w1', 8, 16384)$$, 'saved',
 're-registers its own worker''s name', 'w1'),
('tt_wrk_2', $$SELECT tinytemp_register_worker('tt-w2', 8, 16384)$$, 'saved',
 'registers worker tt-w2', 'w2'),
('tt_adm', $$SELECT tinytemp_register_worker('tt-wadm', 8, 16384)$$, 'saved',
 'registers worker tt-wadm', 'wadm'),
('tt_wrk_2', $$SELECT tinytemp_register_worker('tt-w1', 1, 1)$$, 'denied',
 'may not re-register the name of tt_wrk_1''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_register_worker('tt-w2', 1, 1)$$, 'denied',
 'may not re-register the name of tt_wrk_2''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_register_worker('tt-wadm', 1, 1)$$, 'denied',
 'may not re-register the name of the admin''s worker', NULL),
(NULL, $$SELECT string_agg(concat_ws(' ', name, state, registered_by, cpus), ', ' ORDER BY id) FROM tinytemp.workers$$,
 'tt-w1 retired tt_wrk_1 8, tt-w1 active tt_wrk_1 8, tt-w2 active tt_wrk_2 8, tt-wadm active tt_adm 8',
 'each incarnation belongs to the role that registered it; the refused re-registrations changed nothing', NULL),

-- ENQUEUE: a submitter's tenant is its own role, or a role it is a member of. --
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'a1')$$, 'saved',
 'enqueues without naming a tenant', 'a1'),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 't1', tenant => 'tt_team')$$, 'saved',
 'enqueues for tt_team, a group it is a member of', 't1'),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'x1', tenant => 'tt_tenant_b')$$, 'denied',
 'may not enqueue for tenant tt_tenant_b', NULL),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'x2', tenant => 'tt_no_such_role')$$, 'denied',
 'may not enqueue for a tenant that is no role', NULL),
('tt_tenant_b', $$SELECT tinytemp_enqueue('train', model => 'x3', tenant => 'tt_tenant_a')$$, 'denied',
 'may not enqueue for tenant tt_tenant_a', NULL),
('tt_tenant_b', $$SELECT tinytemp_enqueue('train', model => 'x4', tenant => 'tt_team')$$, 'denied',
 'may not enqueue for tt_team, a group it is not a member of', NULL),
(NULL, $$SELECT string_agg(model || '=' || tenant, ', ' ORDER BY model) FROM tinytemp.jobs$$,
 'a1=tt_tenant_a, t1=tt_team',
 'a job without a tenant is the submitter''s own; the refused enqueues inserted no job', NULL),
(NULL, $$SELECT count(*) FROM tinytemp.jobs_history$$, '2',
 'and no history', NULL),

-- CLAIMS: only for a worker of a role the caller acts for. --
('tt_wrk_2', $$SELECT count(*) FROM tinytemp_claim({w1}, 2)$$, 'denied',
 'may not claim for tt_wrk_1''s worker', NULL),
('tt_wrk_2', $$SELECT count(*) FROM tinytemp_claim({wadm}, 2)$$, 'denied',
 'may not claim for the admin''s worker', NULL),
(NULL, $$SELECT string_agg(d, '; ' ORDER BY model) FROM tt_job$$,
 'a1 pending attempt 0; t1 pending attempt 0', 'the refused claims took no job', NULL),
('tt_wrk_1', $$SELECT string_agg(model, ',' ORDER BY model) FROM tinytemp_claim({w1}, 2)$$, 'a1,t1',
 'claims both jobs for its own worker', NULL),
('tt_tenant_b', $$SELECT tinytemp_enqueue('train', model => 'b1')$$, 'saved',
 'enqueues without naming a tenant', 'b1'),
('tt_wrk_1', $$SELECT count(*) FROM tinytemp_claim({w2}, 2)$$, 'denied',
 'may not claim for tt_wrk_2''s worker', NULL),
(NULL, $$SELECT d FROM tt_job WHERE model = 'b1'$$, 'b1 pending attempt 0',
 'the refused claim took no job', NULL),
('tt_wrk_2', $$SELECT string_agg(model, ',' ORDER BY model) FROM tinytemp_claim({w2}, 2)$$, 'b1',
 'claims for its own worker', NULL),
('tt_wrk_1', $$SELECT count(*) FROM tinytemp_claim(999999999)$$, 'ERROR TT001',
 'an unknown worker is TT001, not a refusal', NULL),

-- The other jobs wait an hour, so that no claim below takes them.
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'a2', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues a2', 'a2'),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'a3', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues a3', 'a3'),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 't2', tenant => 'tt_team', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues t2 for tt_team', 't2'),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 't3', tenant => 'tt_team', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues t3 for tt_team', 't3'),
('tt_tenant_b', $$SELECT tinytemp_enqueue('train', model => 'b2', tenant => 'tt_tenant_b', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues b2 naming its own tenant', 'b2'),
('tt_tenant_b', $$SELECT tinytemp_enqueue('train', model => 'b3', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues b3', 'b3'),
('tt_adm', $$SELECT tinytemp_enqueue('train', model => 'o1', tenant => 'ops', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues for tenant ''ops'', a text that is no role', 'o1'),
('tt_adm', $$SELECT tinytemp_enqueue('train', model => 'n1', run_after => now() + interval '1 hour')$$,
 'saved', 'enqueues without a tenant', 'n1'),
(NULL, $$SELECT string_agg(model || '=' || coalesce(tenant, 'NULL'), ', ' ORDER BY model) FROM tinytemp.jobs$$,
 'a1=tt_tenant_a, a2=tt_tenant_a, a3=tt_tenant_a, b1=tt_tenant_b, b2=tt_tenant_b, b3=tt_tenant_b, '
 'n1=NULL, o1=ops, t1=tt_team, t2=tt_team, t3=tt_team',
 'each job has its tenant; an admin''s job without one keeps none', NULL),
(NULL, $$SELECT fingerprint FROM tt_state$$, 'saved',
 'the state before the calls of functions the roles were not granted', 'before_noexec');

-- EXECUTE: each role other than the admin is refused every function its
-- group was not granted (one test per role), and those calls changed nothing.
INSERT INTO tt_steps (who, sql, expect, what, grp)
SELECT r.who, a.call, 'denied', a.fn,
	   format('%s: every API function not granted to %s is refused with 42501', r.who,
			  coalesce('tinytemp_' || r.grp, 'it'))
FROM tt_role r, tt_api a
WHERE r.grp IS NULL OR NOT r.grp = ANY (a.granted)
ORDER BY r.who, a.fn;

INSERT INTO tt_steps (who, sql, expect, what, save_as) VALUES
(NULL, $$SELECT fingerprint = '{before_noexec}' FROM tt_state$$, 'true',
 'the refused calls changed no job, history, worker or model', NULL),

-- REPORTS: only for a worker of a role the caller acts for. --
('tt_wrk_2', $$SELECT tinytemp_heartbeat({a1}, {w1}, '{"epoch": 9}')$$, 'denied',
 'may not heartbeat for tt_wrk_1''s worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_checkpoint({a1}, {w1}, '{"step": 9}')::text$$, 'denied',
 'may not checkpoint for tt_wrk_1''s worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_fail({a1}, {w1}, 'sabotage', false)$$, 'denied',
 'may not fail a job for tt_wrk_1''s worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_ack({a1}, {w1}, '{"loss": 9}')::text$$, 'denied',
 'may not ack for tt_wrk_1''s worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_ack_many(ARRAY[{a1}, {t1}], {w1})$$, 'denied',
 'may not ack_many for tt_wrk_1''s worker', NULL),
(NULL, $$SELECT string_agg(d, '; ' ORDER BY model) FROM tt_job WHERE model IN ('a1', 't1')$$,
 'a1 running attempt 1 on tt-w1; t1 running attempt 1 on tt-w1',
 'tt_wrk_1''s jobs are unchanged', NULL),
('tt_wrk_1', $$SELECT tinytemp_heartbeat({b1}, {w2}, '{"epoch": 9}')$$, 'denied',
 'may not heartbeat for tt_wrk_2''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_checkpoint({b1}, {w2}, '{"step": 9}')::text$$, 'denied',
 'may not checkpoint for tt_wrk_2''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_fail({b1}, {w2}, 'sabotage', false)$$, 'denied',
 'may not fail a job for tt_wrk_2''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_ack({b1}, {w2}, '{"loss": 9}')::text$$, 'denied',
 'may not ack for tt_wrk_2''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_ack_many(ARRAY[{b1}], {w2})$$, 'denied',
 'may not ack_many for tt_wrk_2''s worker', NULL),
(NULL, $$SELECT d FROM tt_job WHERE model = 'b1'$$, 'b1 running attempt 1 on tt-w2',
 'tt_wrk_2''s job is unchanged', NULL),

-- Acting for a worker follows role membership, both ways.
(NULL, $$GRANT tt_wrk_1 TO tt_wrk_2$$, 'done', 'tt_wrk_2 is made a member of tt_wrk_1', NULL),
('tt_wrk_2', $$SELECT tinytemp_heartbeat({a1}, {w1}, '{"epoch": 1}')$$, 'continue',
 'as a member of tt_wrk_1, heartbeats for its worker', NULL),
(NULL, $$REVOKE tt_wrk_1 FROM tt_wrk_2$$, 'done', 'tt_wrk_2 is no longer a member of tt_wrk_1', NULL),
('tt_wrk_2', $$SELECT tinytemp_heartbeat({a1}, {w1}, '{"epoch": 99}')$$, 'denied',
 'no longer a member of tt_wrk_1, may not heartbeat for its worker again', NULL),
('tt_wrk_2', $$SELECT tinytemp_checkpoint({a1}, {w1}, '{"step": 99}')::text$$, 'denied',
 'nor checkpoint for it', NULL),

-- Each worker role reports for its own worker; the admin for any.
('tt_wrk_1', $$SELECT tinytemp_heartbeat({a1}, {w1}, '{"epoch": 1}')$$, 'continue',
 'heartbeats for its own worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_checkpoint({a1}, {w1}, '{"step": 1}')::text$$, '',
 'checkpoints for its own worker', NULL),
('tt_adm', $$SELECT tinytemp_heartbeat({t1}, {w1}, '{"epoch": 2}')$$, 'continue',
 'heartbeats for tt_wrk_1''s worker', NULL),
('tt_adm', $$SELECT tinytemp_checkpoint({t1}, {w1}, '{"step": 2}')::text$$, '',
 'checkpoints for tt_wrk_1''s worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_ack({a1}, {w1}, '{"loss": 0.1}')::text$$, '',
 'acks for its own worker', NULL),
('tt_wrk_1', $$SELECT tinytemp_ack_many(ARRAY[{t1}], {w1}, ARRAY['{"loss": 0.2}'::jsonb])$$, '1',
 'acks many for its own worker', NULL),
(NULL, $$SELECT string_agg(d, '; ' ORDER BY model) FROM tt_job WHERE model IN ('a1', 't1')$$,
 'a1 succeeded attempt 1 on tt-w1 progress {"epoch": 1} checkpoint {"step": 1} result {"loss": 0.1}; '
 't1 succeeded attempt 1 on tt-w1 progress {"epoch": 2} checkpoint {"step": 2} result {"loss": 0.2}',
 'the reports of tt_wrk_1 and the admin took effect', NULL),
('tt_wrk_2', $$SELECT tinytemp_heartbeat({b1}, {w2}, '{"epoch": 5}')$$, 'continue',
 'heartbeats for its own worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_checkpoint({b1}, {w2}, '{"step": 5}')::text$$, '',
 'checkpoints for its own worker', NULL),
('tt_wrk_2', $$SELECT tinytemp_fail({b1}, {w2}, 'CUDA out of memory', false)$$, 'failed',
 'fails a job for good for its own worker', NULL),
(NULL, $$SELECT d FROM tt_job WHERE model = 'b1'$$,
 'b1 failed attempt 1 on tt-w2 progress {"epoch": 5} checkpoint {"step": 5} error CUDA out of memory',
 'the reports of tt_wrk_2 took effect', NULL),

-- CANCEL: only a job of a tenant the caller acts for. --
('tt_tenant_a', $$SELECT tinytemp_cancel({b2})$$, 'denied', 'may not cancel tt_tenant_b''s job', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel({o1})$$, 'denied', 'may not cancel a job of tenant ''ops''', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel({n1})$$, 'denied', 'may not cancel a job without a tenant', NULL),
('tt_tenant_b', $$SELECT tinytemp_cancel({a2})$$, 'denied', 'may not cancel tt_tenant_a''s job', NULL),
('tt_tenant_b', $$SELECT tinytemp_cancel({t2})$$, 'denied', 'may not cancel tt_team''s job', NULL),
(NULL, $$SELECT string_agg(d, '; ' ORDER BY model) FROM tt_job WHERE model IN ('a2', 'b2', 'n1', 'o1', 't2')$$,
 'a2 pending attempt 0; b2 pending attempt 0; n1 pending attempt 0; o1 pending attempt 0; t2 pending attempt 0',
 'the refused cancels changed no job', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel({a2})$$, 'true', 'cancels its own job', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel({t3})$$, 'true', 'cancels a job of its group tenant tt_team', NULL),
('tt_tenant_b', $$SELECT tinytemp_cancel({b3})$$, 'true', 'cancels its own job', NULL),
('tt_tenant_b', $$SELECT tinytemp_cancel({b1})$$, 'false', 'cancels its own finished job: nothing to do', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel(999999999)$$, 'ERROR TT002', 'an unknown job is TT002', NULL),
('tt_adm', $$SELECT tinytemp_cancel({a3})$$, 'true', 'cancels tt_tenant_a''s job', NULL),

-- DIRECT WRITES: the admin's only. --
(NULL, $$SELECT count(*) FROM tinytemp.jobs_history$$, 'saved',
 'the history''s length before the direct writes', 'history_before_writes'),
('tt_tenant_a', $$WITH u AS (UPDATE tinytemp.jobs SET priority = 100 WHERE id = {t2} RETURNING 1) SELECT count(*) FROM u$$,
 'denied', 'may not update its own job in tinytemp.jobs', NULL),
('tt_tenant_b', $$WITH d AS (DELETE FROM tinytemp.jobs_history RETURNING 1) SELECT count(*) FROM d$$,
 'denied', 'may not delete from tinytemp.jobs_history', NULL),
('tt_wrk_1', $$WITH u AS (UPDATE tinytemp.jobs SET priority = 100 WHERE worker_id = {w1} RETURNING 1) SELECT count(*) FROM u$$,
 'denied', 'may not update the jobs of its worker', NULL),
('tt_wrk_2', $$WITH u AS (UPDATE tinytemp.workers SET cpus = 99 WHERE id = {w2} RETURNING 1) SELECT count(*) FROM u$$,
 'denied', 'may not update its worker in tinytemp.workers', NULL),
('tt_adm', $$WITH u AS (UPDATE tinytemp.jobs SET priority = 42 WHERE id = {b2} RETURNING 1) SELECT count(*) FROM u$$,
 '1', 'updates tt_tenant_b''s job in tinytemp.jobs', NULL),
('tt_adm', $$WITH u AS (UPDATE tinytemp.workers SET labels = '{"rack": "r9"}' WHERE id = {w2} RETURNING 1) SELECT count(*) FROM u$$,
 '1', 'updates tt_wrk_2''s worker in tinytemp.workers', NULL),
(NULL, $$SELECT concat_ws(' ', (SELECT string_agg(model || ':' || priority, ',' ORDER BY model) FROM tinytemp.jobs WHERE priority <> 0),
							 (SELECT string_agg(name || ':' || cpus || ':' || labels, ',' ORDER BY id) FROM tinytemp.workers WHERE id = {w2}),
							 (SELECT CASE count(*) WHEN {history_before_writes} THEN 'history intact' ELSE count(*) || ' history rows' END
							  FROM tinytemp.jobs_history))$$,
 'b2:42 tt-w2:8:{"rack": "r9"} history intact',
 'only the admin''s writes took effect', NULL),
(NULL, $$SELECT string_agg(model || '=' || state, ', ' ORDER BY model) FROM tinytemp.jobs$$,
 'a1=succeeded, a2=cancelled, a3=cancelled, b1=failed, b2=pending, b3=cancelled, '
 'n1=pending, o1=pending, t1=succeeded, t2=pending, t3=cancelled',
 'the jobs before the reads', NULL);

-- READS: each role reads every relation of schema tinytemp.  Row-level
-- security shows a submitter its tenants' jobs, a worker role the jobs on
-- its workers, an admin all; the other relations have no rows to hide and
-- are only granted or not (one test per role).
INSERT INTO tt_steps (who, sql, expect, what, grp)
SELECT r.who, p.sql, r.expect, p.rel,
	   CASE WHEN NOT p.filtered
		   THEN format('%s reads exactly the unfiltered relations granted to it', r.who) END
FROM (VALUES
	(1, 'tinytemp.jobs', true, $$SELECT string_agg(model, ',' ORDER BY model) FROM tinytemp.jobs$$,
	 ARRAY['a1,a2,a3,t1,t2,t3', 'b1,b2,b3', 'a1,t1', 'b1', 'a1,a2,a3,b1,b2,b3,n1,o1,t1,t2,t3', 'denied']),
	(2, 'tinytemp.jobs_history', true,
	 $$SELECT string_agg(DISTINCT s.k, ',' ORDER BY s.k) FROM tinytemp.jobs_history h JOIN tt_saved s ON s.job AND s.v = h.job_id::text$$,
	 ARRAY['a1,a2,a3,t1,t2,t3', 'b1,b2,b3', 'denied', 'denied', 'a1,a2,a3,b1,b2,b3,n1,o1,t1,t2,t3', 'denied']),
	(3, 'tinytemp.dead_letter', true, $$SELECT string_agg(model, ',' ORDER BY model) FROM tinytemp.dead_letter$$,
	 ARRAY['(none)', 'b1', 'denied', 'denied', 'b1', 'denied']),
	(4, 'tinytemp.queue_summary', true,
	 $$SELECT string_agg(state || '=' || jobs, ',' ORDER BY state) FROM tinytemp.queue_summary$$,
	 ARRAY['cancelled=3,pending=1,succeeded=2', 'cancelled=1,failed=1,pending=1', 'denied', 'denied',
		   'cancelled=4,failed=1,pending=4,succeeded=2', 'denied']),
	(5, 'tinytemp.pending_reasons', true,
	 $$SELECT string_agg(s.k, ',' ORDER BY s.k) FROM tinytemp.pending_reasons p JOIN tt_saved s ON s.job AND s.v = p.job_id::text$$,
	 ARRAY['t2', 'b2', 'denied', 'denied', 'b2,n1,o1,t2', 'denied']),
	(6, 'tinytemp.pending_reasons_all', false, $$SELECT count(*) FROM tinytemp.pending_reasons_all$$,
	 ARRAY['denied', 'denied', 'denied', 'denied', '4', 'denied']),
	(7, 'tinytemp.workers', false, $$SELECT count(*) FROM tinytemp.workers$$,
	 ARRAY['4', '4', '4', '4', '4', 'denied']),
	(8, 'tinytemp.worker_status', false, $$SELECT count(*) FROM tinytemp.worker_status$$,
	 ARRAY['3', '3', 'denied', 'denied', '3', 'denied']),
	-- Reservations name jobs of every tenant: for admins only.
	(9, 'tinytemp.reservations', false, $$SELECT count(*) FROM tinytemp.reservations$$,
	 ARRAY['denied', 'denied', 'denied', 'denied', '0', 'denied']),
	(10, 'tinytemp.predictor_models', false, $$SELECT count(*) > 0 FROM tinytemp.predictor_models$$,
	 ARRAY['true', 'true', 'true', 'true', 'true', 'denied']),
	-- The view the extension trains its first model from, granted to no one.
	(11, 'tinytemp.bootstrap_jobs', false, $$SELECT count(*) FROM (SELECT FROM tinytemp.bootstrap_jobs LIMIT 1) b$$,
	 ARRAY['denied', 'denied', 'denied', 'denied', 'denied', 'denied'])
) p(n, rel, filtered, sql, expects),
unnest(ARRAY['tt_tenant_a', 'tt_tenant_b', 'tt_wrk_1', 'tt_wrk_2', 'tt_adm', 'tt_nobody'], p.expects)
	WITH ORDINALITY r(who, expect, i)
ORDER BY p.n, r.i;

-- THE REST OF THE API, and the membership of a tenant revoked. --
INSERT INTO tt_steps (who, sql, expect, what, save_as) VALUES
('tt_tenant_a', $$SELECT tinytemp.acts_for('tt_tenant_a') AND tinytemp.acts_for('tt_team')
				  AND NOT tinytemp.acts_for('tt_tenant_b') AND NOT tinytemp.acts_for(NULL) AND NOT tinytemp.is_admin()
				  AND NOT tinytemp.acts_for('tinytemp_submitter')$$,
 'true', 'acts for itself and tt_team, not for tt_tenant_b, no tenant, nor tinytemp_submitter (no tenant shared by all submitters); is no admin', NULL),
('tt_wrk_1', $$SELECT tinytemp.acts_for('tt_wrk_1') AND NOT tinytemp.acts_for('tt_wrk_2')
			   AND NOT tinytemp.acts_for('tt_tenant_a') AND NOT tinytemp.is_admin()$$,
 'true', 'acts for itself, not for tt_wrk_2 nor tt_tenant_a; is no admin', NULL),
('tt_adm', $$SELECT tinytemp.acts_for('ops') AND tinytemp.acts_for(NULL) AND tinytemp.is_admin()$$,
 'true', 'acts for every tenant, even none, and is an admin', NULL),
('tt_tenant_a', $$SELECT tinytemp_predict_runtime('train', 'bert', 1000, 1, 32, 1, 0, NULL, 1024) > 0$$,
 'true', 'predicts a runtime', NULL),
('tt_tenant_b', $$SELECT count(*) FROM tinytemp_synthetic_jobs(3)$$, '3', 'generates synthetic jobs', NULL),
('tt_wrk_2', $$SELECT tinytemp_predict_runtime('train', 'bert', 1000, 1, 32, 1, 0, NULL, 1024) > 0$$,
 'true', 'predicts a runtime', NULL),
('tt_adm', $$SELECT tinytemp_retry({b1})$$, 'true', 'retries tt_tenant_b''s dead job', NULL),
('tt_adm', $$SELECT string_agg(model, ',') FROM tinytemp_claim({wadm}, 4)$$, 'b1',
 'claims it on its own worker', NULL),
('tt_adm', $$SELECT tinytemp_ack({b1}, {wadm})::text$$, '', 'acks it', NULL),
(NULL, $$SELECT concat_ws(' ', j.state, 'attempt ' || j.attempts, 'on ' || w.name,
						   (SELECT string_agg(event, ',' ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = j.id))
		  FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id WHERE j.id = {b1}$$,
 'succeeded attempt 1 on tt-wadm enqueued,claimed,checkpointed,failed,dead_lettered,requeued,claimed,acked', 'the admin''s retry, claim and ack took effect', NULL),
('tt_adm', $$SELECT tinytemp_expire_leases()$$, '0', 'runs a lease-expiry pass', NULL),
('tt_adm', $$SELECT jsonb_typeof(tinytemp_schedule())$$, 'object', 'runs a planner pass', NULL),
('tt_adm', $$SELECT tinytemp_retry_delay(1) BETWEEN interval '1 s' AND interval '2 s'$$, 'true',
 'draws a retry delay', NULL),
('tt_adm', $$SELECT tinytemp_train_predictor('pg_temp.tt_train') ->> 'rows'$$, '200',
 'trains a model from a table it may read', NULL),
('tt_adm', $$SELECT jsonb_typeof(tinytemp_predictor_check(model)) FROM tinytemp.predictor_models ORDER BY version DESC LIMIT 1$$,
 'object', 'checks the model it trained', NULL),
('tt_adm', $$SELECT count(*) FROM tinytemp_synthetic_jobs(3)$$, '3', 'generates synthetic jobs', NULL),
('tt_adm', $$SELECT tinytemp_predict_runtime('train', 'bert', 1000, 1, 32, 1, 0, NULL, 1024) > 0$$,
 'true', 'predicts a runtime', NULL),
('tt_adm', $$SELECT tinytemp_register_worker('tt-w2', 8, 16384)$$, 'saved',
 're-registers the name of tt_wrk_2''s worker', 'w2new'),
(NULL, $$SELECT string_agg(concat_ws(' ', state, registered_by), ', ' ORDER BY id) FROM tinytemp.workers WHERE name = 'tt-w2'$$,
 'retired tt_wrk_2, active tt_adm', 'the admin''s incarnation of tt-w2 replaced tt_wrk_2''s', NULL),
('tt_wrk_2', $$SELECT tinytemp_register_worker('tt-w2', 8, 16384)$$, 'denied',
 'may not take its worker''s name back from the admin', NULL),
(NULL, $$REVOKE tt_team FROM tt_tenant_a$$, 'done', 'tt_tenant_a is no longer a member of tt_team', NULL),
('tt_tenant_a', $$SELECT string_agg(model, ',' ORDER BY model) FROM tinytemp.jobs$$, 'a1,a2,a3',
 'no longer sees tt_team''s jobs', NULL),
('tt_tenant_a', $$SELECT count(*) FROM tinytemp.pending_reasons$$, '0',
 'nor why they wait', NULL),
('tt_tenant_a', $$SELECT tinytemp_enqueue('train', model => 'x5', tenant => 'tt_team')$$, 'denied',
 'may no longer enqueue for tt_team', NULL),
('tt_tenant_a', $$SELECT tinytemp_cancel({t2})$$, 'denied', 'nor cancel its jobs', NULL),
(NULL, $$SELECT d FROM tt_job WHERE model = 't2'$$, 't2 pending attempt 0',
 'tt_team''s pending job is unchanged', NULL),
-- The history of a deleted job: the admin's alone.
('tt_adm', $$WITH d AS (DELETE FROM tinytemp.jobs WHERE id = {a2} RETURNING 1) SELECT count(*) FROM d$$, '1',
 'deletes tt_tenant_a''s cancelled job', NULL),
('tt_tenant_a', $$SELECT count(*) FROM tinytemp.jobs_history WHERE job_id = {a2}$$, '0',
 'no longer sees the history of its deleted job', NULL),
('tt_adm', $$SELECT string_agg(event, ',' ORDER BY id) FROM tinytemp.jobs_history WHERE job_id = {a2}$$,
 'enqueued,cancelled', 'still sees the history of the deleted job', NULL);

-- Run the steps.
DO $run$
DECLARE
	s record;
	saved record;
	q text;
	res text;
BEGIN
	FOR s IN SELECT * FROM tt_steps ORDER BY step LOOP
		q := s.sql;
		FOR saved IN SELECT k, v FROM tt_saved LOOP
			q := replace(q, '{' || saved.k || '}', coalesce(saved.v, 'NULL'));
		END LOOP;
		BEGIN
			IF s.who IS NOT NULL THEN
				EXECUTE format('SET LOCAL ROLE %I', s.who);
			END IF;
			IF q ~* '^\s*(SELECT|WITH)' THEN
				EXECUTE q INTO res;
				res := coalesce(res, '(none)');
			ELSE
				EXECUTE q;
				res := 'done';
			END IF;
			RESET ROLE;
			IF s.save_as IS NOT NULL THEN
				INSERT INTO tt_saved VALUES (s.save_as, res, s.sql ~ 'tinytemp_enqueue');
				res := 'saved';
			END IF;
			UPDATE tt_steps SET got = res WHERE step = s.step;
		EXCEPTION WHEN OTHERS THEN
			-- The subtransaction's rollback has reset the role.
			UPDATE tt_steps
			SET got = CASE SQLSTATE WHEN '42501' THEN 'denied' ELSE 'ERROR ' || SQLSTATE END,
				err = SQLERRM
			WHERE step = s.step;
		END;
	END LOOP;
END
$run$;

SELECT is(current_user, session_user, 'the steps ran and left no role set');

-- One test per step...
SELECT is(got, expect, format('%s: %s', coalesce(who, 'check'), what))
FROM tt_steps WHERE grp IS NULL ORDER BY step;

-- ...and one per group, listing the steps that went wrong.
SELECT is_empty(format($$SELECT what, expect, got, err FROM tt_steps
						 WHERE grp = %L AND got IS DISTINCT FROM expect ORDER BY step$$, grp), grp)
FROM (SELECT grp, min(step) AS first FROM tt_steps WHERE grp IS NOT NULL GROUP BY grp) g
ORDER BY first;

-- What the failed steps said.
SELECT diag(format('step %s (%s, %s): %s', step, coalesce(who, 'check'), what, err))
FROM tt_steps WHERE got IS DISTINCT FROM expect AND err IS NOT NULL ORDER BY step;

SELECT * FROM finish();
ROLLBACK;

-- observability.sql: the SQL surface of 0.6.  tinytemp_metrics() renders
-- the Prometheus text format and is for admins and monitoring roles;
-- tinytemp_report_metrics and tinytemp_report_logs store what a running
-- job's handler reported, check every element before storing any, and are
-- for the worker that holds the job; tinytemp.runs compares runs.  (That the
-- counters count at commit, and only then, is a process test: this suite
-- runs in one transaction that it rolls back.)
\set ON_ERROR_STOP 1
BEGIN;
SET client_min_messages = warning;
SELECT plan(86);

\ir scheduling_setup.psql
:reset
SET LOCAL tinytemp.clock = '2026-03-01 12:00:00+00';
SET LOCAL tinytemp.lease_timeout = '1d';

------------------------------------------------------------------------
-- TINYTEMP_METRICS: the format
------------------------------------------------------------------------

SELECT tinytemp_metrics() AS m \gset
SELECT ok(right(:'m', 1) = E'\n', 'the exposition ends with a newline');
SELECT is((SELECT count(*)::int FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE '# TYPE %'
			 AND split_part(l, ' ', 3) IN (
				'tinytemp_jobs_enqueued_total', 'tinytemp_jobs_claimed_total',
				'tinytemp_jobs_succeeded_total', 'tinytemp_jobs_failed_total',
				'tinytemp_jobs_retried_total', 'tinytemp_jobs_dead_lettered_total',
				'tinytemp_jobs_cancelled_total', 'tinytemp_lease_expirations_total',
				'tinytemp_preemptions_total', 'tinytemp_metrics_dropped_total')
			 AND split_part(l, ' ', 4) = 'counter'), 10,
	'the ten counters are typed counter');
SELECT is((SELECT string_agg(split_part(l, ' ', 3), ',' ORDER BY split_part(l, ' ', 3))
		   FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE '# TYPE % histogram'),
	'tinytemp_job_duration_seconds,tinytemp_job_wait_seconds,tinytemp_prediction_error_ratio',
	'three histograms: duration, wait and the prediction error');
SELECT is((SELECT count(*)::int FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE '# TYPE % gauge'
			 AND split_part(l, ' ', 3) IN ('tinytemp_jobs', 'tinytemp_workers_active',
				'tinytemp_worker_free_cpus', 'tinytemp_worker_free_memory_bytes', 'tinytemp_worker_free_gpus',
				'tinytemp_tenant_dominant_share', 'tinytemp_predictor_model_version')), 7,
	'the gauges: jobs by state, active workers, free room, dominant shares, model version');
SELECT is((SELECT count(*)::int FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE '# HELP %'),
		  (SELECT count(*)::int FROM regexp_split_to_table(:'m', E'\n') l WHERE l LIKE '# TYPE %'),
	'every metric has a HELP line');
SELECT is((SELECT count(*)::int FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l <> '' AND l NOT LIKE '#%'
			 AND l !~ '^[a-z_]+(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? [-+0-9.eInf]+$'), 0,
	'every sample line is name{labels} value');
SELECT is((SELECT split_part(l, ' ', 2) FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE 'tinytemp_workers_active %'), '0', 'no active worker yet');

-- Workers, their free room and the tenants' shares are read per scrape,
-- in the scraping transaction.
SELECT tinytemp_register_worker('obs-w1', 8, 16384, 2, 'a100') AS w1 \gset
SELECT tinytemp_register_worker('obs "w2"', 4, 8192, 0) AS w2 \gset
SELECT tinytemp_enqueue('train', tenant => 'obs_ten', cpus => 4, memory_mb => 4096, gpus => 1, gpu_type => 'a100') AS j1 \gset
SELECT tinytemp_enqueue('train', tenant => 'obs_wait', cpus => 64) AS j2 \gset
SELECT count(*) FROM tinytemp_claim(:w1, 1);
SELECT tinytemp_metrics() AS m \gset
SELECT is((SELECT split_part(l, ' ', 2) FROM regexp_split_to_table(:'m', E'\n') l
		   WHERE l LIKE 'tinytemp_workers_active %'), '2', 'two active workers');
SELECT ok(strpos(:'m', 'tinytemp_worker_free_cpus{worker="obs-w1",gpu_type="a100"} 4' || E'\n') > 0,
	'free cpus of the worker that runs a 4-cpu job');
SELECT ok(strpos(:'m', 'tinytemp_worker_free_gpus{worker="obs-w1",gpu_type="a100"} 1' || E'\n') > 0,
	'free GPUs of that worker');
SELECT ok(strpos(:'m', 'tinytemp_worker_free_memory_bytes{worker="obs-w1",gpu_type="a100"} '
				 || (12288::bigint * 1048576)::text || E'\n') > 0,
	'free memory in bytes');
SELECT ok(strpos(:'m', 'tinytemp_worker_cpus{worker="obs \"w2\"",gpu_type=""} 4' || E'\n') > 0,
	'a worker name with double quotes is escaped in its label');
-- 1 of 2 GPUs is the largest share: cpus 4/12, memory 4096/24576.
SELECT ok(strpos(:'m', 'tinytemp_tenant_dominant_share{tenant="obs_ten"} 0.5' || E'\n') > 0,
	'the running tenant''s dominant share is its GPU share');
SELECT ok(strpos(:'m', 'tinytemp_tenant_dominant_share{tenant="obs_wait"} 0' || E'\n') > 0,
	'a tenant that only waits shows a share of 0');
SELECT ok(strpos(:'m', 'tinytemp_predictor_model_version ') > 0, 'the model''s version');

-- Uncommitted changes are not counted: this transaction's enqueues are not in the counters.
SELECT ok(strpos(:'m', 'tinytemp_jobs_enqueued_total{queue="default",job_type="train"} 2') = 0
		  AND strpos(:'m', 'tinytemp_jobs_claimed_total{queue="default",job_type="train"} 1') = 0,
	'an uncommitted enqueue and claim are not counted yet (they count at commit)');

------------------------------------------------------------------------
-- TINYTEMP_METRICS: who may scrape
------------------------------------------------------------------------
CREATE ROLE tt_obs_sub NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_obs_other NOLOGIN IN ROLE tinytemp_submitter;
CREATE ROLE tt_obs_wrk NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_obs_wrk2 NOLOGIN IN ROLE tinytemp_worker;
CREATE ROLE tt_obs_adm NOLOGIN IN ROLE tinytemp_admin;
CREATE ROLE tt_obs_mon NOLOGIN IN ROLE pg_monitor;
CREATE ROLE tt_obs_nobody NOLOGIN;

SET LOCAL ROLE tt_obs_adm;
SELECT lives_ok('SELECT tinytemp_metrics()', 'an admin may scrape');
RESET ROLE;
SET LOCAL ROLE tt_obs_mon;
SELECT ok(tinytemp_metrics() LIKE '%tinytemp_workers_active 2%',
	'a pg_monitor member may scrape, and sees every worker (the scrape reads as the extension''s owner)');
RESET ROLE;
SET LOCAL ROLE tt_obs_sub;
SELECT throws_ok('SELECT tinytemp_metrics()', '42501', NULL, 'a submitter may not scrape');
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk;
SELECT throws_ok('SELECT tinytemp_metrics()', '42501', NULL, 'a worker role may not scrape');
RESET ROLE;
SET LOCAL ROLE tt_obs_nobody;
SELECT throws_ok('SELECT tinytemp_metrics()', '42501', NULL, 'a role with none of tinytemp''s roles may not scrape');
RESET ROLE;

------------------------------------------------------------------------
-- TINYTEMP_REPORT_METRICS
------------------------------------------------------------------------
:reset
SET LOCAL ROLE tt_obs_wrk;
SELECT tinytemp_register_worker('obs-a', 8, 16384, 0) AS wa \gset
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk2;
SELECT tinytemp_register_worker('obs-b', 8, 16384, 0) AS wb \gset
RESET ROLE;
SET LOCAL ROLE tt_obs_sub;
SELECT tinytemp_enqueue('train', params => '{"lr": 0.1}', max_attempts => 3) AS ja \gset
SELECT tinytemp_enqueue('train', params => '{"lr": 0.01}') AS jb \gset
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk;
SELECT count(*) FROM tinytemp_claim(:wa, 2);
RESET ROLE;
SET LOCAL ROLE tt_obs_other;
SELECT tinytemp_enqueue('train', params => '{"lr": 0.5}') AS jc \gset
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk2;
SELECT count(*) FROM tinytemp_claim(:wb, 1);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tinytemp.jobs WHERE worker_id = :wa AND id IN (:ja, :jb)), 2,
	'worker a runs the two jobs of tt_obs_sub');

SET LOCAL ROLE tt_obs_wrk;
SELECT is(tinytemp_report_metrics(:ja, :wa, '[
	{"step": 1, "metrics": {"loss": 0.9, "accuracy": 0.5}},
	{"step": 2, "metrics": {"loss": 0.4, "accuracy": 0.7}, "at": "2026-03-01 12:00:05+00"},
	{"metrics": {"throughput": 120.5}}]'), 5, 'five values stored, the count returned');
SELECT is(tinytemp_report_metrics(:ja, :wa, '[]'), 0, 'an empty report stores nothing');
SELECT is(tinytemp_report_metrics(:jb, :wa, '[{"step": 7, "metrics": {"loss": 1e-3, "big": 12345678901234567890}}]'),
	2, 'numbers of any JSON form are stored as float8');
RESET ROLE;
SELECT results_eq(
	format($$SELECT attempt, step, key, value, at FROM tinytemp.job_metrics WHERE job_id = %s ORDER BY step NULLS LAST, key$$, :ja),
	$$VALUES (1, 1::bigint, 'accuracy', 0.5::float8, '2026-03-01 12:00:00+00'::timestamptz),
			 (1, 1, 'loss', 0.9, '2026-03-01 12:00:00+00'),
			 (1, 2, 'accuracy', 0.7, '2026-03-01 12:00:05+00'),
			 (1, 2, 'loss', 0.4, '2026-03-01 12:00:05+00'),
			 (1, NULL, 'throughput', 120.5, '2026-03-01 12:00:00+00')$$,
	'rows: the attempt, the step (NULL when none), each key and value, the given time or tinytemp.now()');
SELECT is((SELECT value FROM tinytemp.job_metrics WHERE job_id = :jb AND key = 'big'), 12345678901234567890::float8,
	'a large integer is stored as the nearest float8');

-- Bad input: a clear error, and nothing stored.
CREATE TEMP TABLE obs_before AS SELECT count(*) AS n FROM tinytemp.job_metrics;
SET LOCAL ROLE tt_obs_wrk;
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, NULL)$$, :ja, :wa), '22004',
	'metrics must not be null', 'NULL metrics: 22004');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(NULL, %s, '[]')$$, :wa), '22004',
	'job_id must not be null', 'NULL job_id: 22004');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, NULL, '[]')$$, :ja), '22004',
	'worker_id must not be null', 'NULL worker_id: 22004');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '{"loss": 1}')$$, :ja, :wa), '22023',
	'metrics must be a JSON array', 'an object instead of an array: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '3')$$, :ja, :wa), '22023',
	'metrics must be a JSON array', 'a scalar: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"a": 1}}, 5]')$$, :ja, :wa), '22023',
	'element 2 of metrics must be a JSON object', 'an element that is no object, after a good one: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"a": 1}, "epoch": 3}]')$$, :ja, :wa), '22023',
	'element 1 of metrics has an unknown key "epoch"', 'an unknown key: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"step": 1}]')$$, :ja, :wa), '22023',
	'element 1 of metrics must have a "metrics" object', 'no metrics object: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": [1, 2]}]')$$, :ja, :wa), '22023',
	'element 1 of metrics must have a "metrics" object', 'metrics as an array: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"loss": "low"}}]')$$, :ja, :wa), '22023',
	'metric "loss" in element 1 of metrics must be a number', 'a value that is a string: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"loss": null}}]')$$, :ja, :wa), '22023',
	'metric "loss" in element 1 of metrics must be a number', 'a null value: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"": 1}}]')$$, :ja, :wa), '22023',
	'metric names in element 1 of metrics must be 1 to 200 characters long', 'an empty name: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, %L)$$, :ja, :wa,
						jsonb_build_array(jsonb_build_object('metrics', jsonb_build_object(repeat('x', 201), 1)))),
	'22023', 'metric names in element 1 of metrics must be 1 to 200 characters long', 'a 201-character name: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"step": 1.5, "metrics": {"a": 1}}]')$$, :ja, :wa), '22023',
	'"step" of element 1 of metrics must be an integer', 'a fractional step: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"step": "3", "metrics": {"a": 1}}]')$$, :ja, :wa), '22023',
	'"step" of element 1 of metrics must be an integer', 'a step as a string: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"at": "yesterday-ish", "metrics": {"a": 1}}]')$$, :ja, :wa), '22007',
	NULL, 'an "at" that is no timestamp: 22007');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"at": 5, "metrics": {"a": 1}}]')$$, :ja, :wa), '22023',
	'"at" of element 1 of metrics must be a timestamp string', 'an "at" that is a number: 22023');
RESET ROLE;
SELECT is((SELECT count(*) FROM tinytemp.job_metrics), (SELECT n FROM obs_before),
	'the refused reports stored nothing');

-- Who may report, and on what.
SET LOCAL ROLE tt_obs_wrk2;
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"a": 1}}]')$$, :ja, :wa), '42501',
	NULL, 'another worker role reporting for worker a: 42501');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"a": 1}}]')$$, :ja, :wb), 'TT003',
	format('worker %s does not hold job %s', :wb, :ja), 'a worker reporting on a job it does not hold: TT003');
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk;
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(99999999, %s, '[{"metrics": {"a": 1}}]')$$, :wa), 'TT002',
	'job 99999999 does not exist', 'an unknown job: TT002');
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, 99999999, '[{"metrics": {"a": 1}}]')$$, :ja), 'TT001',
	NULL, 'an unknown worker, for a worker role: TT001');
RESET ROLE;
SET LOCAL ROLE tt_obs_adm;
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, 99999999, '[{"metrics": {"a": 1}}]')$$, :ja), 'TT001',
	NULL, 'an unknown worker, for an admin: TT001');
RESET ROLE;
SET LOCAL ROLE tt_obs_sub;
SELECT throws_ok(format($$SELECT tinytemp_report_metrics(%s, %s, '[{"metrics": {"a": 1}}]')$$, :ja, :wa), '42501',
	NULL, 'a submitter may not call tinytemp_report_metrics');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[]')$$, :ja, :wa), '42501',
	NULL, 'nor tinytemp_report_logs');
RESET ROLE;

------------------------------------------------------------------------
-- TINYTEMP_REPORT_LOGS
------------------------------------------------------------------------
SET LOCAL ROLE tt_obs_wrk;
SELECT is(tinytemp_report_logs(:ja, :wa, '[{"stream": "stdout", "line": "epoch 1"},
	{"stream": "stderr", "line": "warning: slow", "at": "2026-03-01 12:00:01+00"}]'), 2, 'two lines kept');
SELECT is(tinytemp_report_logs(:ja, :wa, '[{"stream": "stdout", "line": "epoch 2"}]'), 1, 'one more');
RESET ROLE;
SELECT results_eq(
	format($$SELECT attempt, line_no, stream, line, at FROM tinytemp.job_logs WHERE job_id = %s ORDER BY line_no$$, :ja),
	$$VALUES (1, 1, 'stdout', 'epoch 1', '2026-03-01 12:00:00+00'::timestamptz),
			 (1, 2, 'stderr', 'warning: slow', '2026-03-01 12:00:01+00'),
			 (1, 3, 'stdout', 'epoch 2', '2026-03-01 12:00:00+00')$$,
	'lines numbered in order across reports, with their stream and time');

-- The bounds, per attempt.
SET LOCAL tinytemp.log_max_lines = 5;
SET LOCAL ROLE tt_obs_wrk;
SELECT is(tinytemp_report_logs(:ja, :wa, '[{"stream": "stdout", "line": "a"}, {"stream": "stdout", "line": "b"},
	{"stream": "stdout", "line": "c"}, {"stream": "stdout", "line": "d"}]'), 2,
	'past tinytemp.log_max_lines (5), only the first lines that fit are kept');
SELECT is(tinytemp_report_logs(:ja, :wa, '[{"stream": "stdout", "line": "e"}]'), 0, 'and then none');
RESET ROLE;
SET LOCAL tinytemp.log_max_lines = 1000;
SET LOCAL tinytemp.log_max_bytes = 10;
SET LOCAL ROLE tt_obs_wrk;
SELECT is(tinytemp_report_logs(:jb, :wa, '[{"stream": "stdout", "line": "12345"}, {"stream": "stdout", "line": "6789"},
	{"stream": "stdout", "line": "ab"}]'), 2, 'past tinytemp.log_max_bytes (10), the line that would cross it is not kept');
RESET ROLE;
SET LOCAL tinytemp.log_max_bytes = '1MB';
SELECT is((SELECT string_agg(line, '' ORDER BY line_no) FROM tinytemp.job_logs WHERE job_id = :jb), '123456789',
	'the kept lines of job b');

-- A new attempt starts its own lines and counts.
SET LOCAL ROLE tt_obs_wrk;
SELECT tinytemp_fail(:ja, :wa, 'crashed', true);
RESET ROLE;
UPDATE tinytemp.jobs SET run_after = '2026-03-01 11:00:00+00' WHERE id = :ja;
SET LOCAL ROLE tt_obs_wrk;
SELECT is((SELECT id FROM tinytemp_claim(:wa, 1)), :'ja'::bigint, 'job a claimed again');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout", "line": "x"}]')$$, :jc, :wa), 'TT003',
	NULL, 'logs on a job the worker does not hold: TT003');
SELECT is(tinytemp_report_logs(:ja, :wa, '[{"stream": "stdout", "line": "attempt 2"}]'), 1,
	'the second attempt''s first line is kept though the first attempt was full');
SELECT is(tinytemp_report_metrics(:ja, :wa, '[{"step": 3, "metrics": {"loss": 0.2, "accuracy": 0.8}}]'), 2,
	'the second attempt reports step 3');
RESET ROLE;
SELECT is((SELECT format('%s:%s', attempt, line_no) FROM tinytemp.job_logs WHERE job_id = :ja AND line = 'attempt 2'), '2:1',
	'attempt 2, line 1');

CREATE TEMP TABLE obs_logs_before AS SELECT count(*) AS n FROM tinytemp.job_logs;
SET LOCAL ROLE tt_obs_wrk;
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '{"line": "x"}')$$, :ja, :wa), '22023',
	'lines must be a JSON array', 'logs: an object instead of an array: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout", "line": "ok"}, {"stream": "stdlog", "line": "x"}]')$$, :ja, :wa), '22023',
	'"stream" of element 2 of lines must be "stdout" or "stderr"', 'an unknown stream: 22023, and the good line before it is not kept');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout"}]')$$, :ja, :wa), '22023',
	'"line" of element 1 of lines must be a string', 'no line: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout", "line": 42}]')$$, :ja, :wa), '22023',
	'"line" of element 1 of lines must be a string', 'a line that is a number: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout", "line": "x", "level": "info"}]')$$, :ja, :wa), '22023',
	'element 1 of lines has an unknown key "level"', 'an unknown key: 22023');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, '[{"stream": "stdout", "line": "x", "at": "never"}]')$$, :ja, :wa), '22007',
	NULL, 'a bad time: 22007');
SELECT throws_ok(format($$SELECT tinytemp_report_logs(%s, %s, NULL)$$, :ja, :wa), '22004',
	'lines must not be null', 'NULL lines: 22004');
RESET ROLE;
SELECT is((SELECT count(*) FROM tinytemp.job_logs), (SELECT n FROM obs_logs_before), 'the refused log reports stored nothing');

------------------------------------------------------------------------
-- TINYTEMP.RUNS, and who sees what
------------------------------------------------------------------------
SELECT results_eq(
	format($$SELECT params, metrics_final, metrics_min, metrics_max, last_step FROM tinytemp.runs WHERE id = %s$$, :ja),
	$$VALUES ('{"lr": 0.1}'::jsonb, '{"loss": 0.2, "accuracy": 0.8, "throughput": 120.5}'::jsonb,
			  '{"loss": 0.2, "accuracy": 0.5, "throughput": 120.5}'::jsonb,
			  '{"loss": 0.9, "accuracy": 0.8, "throughput": 120.5}'::jsonb, 3::bigint)$$,
	'runs: the params, each metric''s final value (last step of the last attempt), lowest and highest, the last step');
SELECT is((SELECT metrics_final FROM tinytemp.runs WHERE id = :jc), NULL, 'a job without metrics has none');
SET LOCAL ROLE tt_obs_wrk;
SELECT tinytemp_ack(:ja, :wa, '{"auc": 0.9}');
RESET ROLE;
SELECT is((SELECT duration_s FROM tinytemp.runs WHERE id = :ja), 0::float8,
	'duration_s: finished_at - started_at (0 under a fixed clock)');
SELECT is((SELECT id FROM tinytemp.runs WHERE job_type = 'train' AND metrics_max ? 'accuracy'
		   ORDER BY (metrics_max->>'accuracy')::float8 DESC LIMIT 1), :'ja'::bigint,
	'the best run by accuracy, in one query');

SET LOCAL ROLE tt_obs_other;
SELECT is((SELECT count(*)::int FROM tinytemp.job_metrics), 0, 'another tenant sees none of tt_obs_sub''s metrics');
SELECT is((SELECT count(*)::int FROM tinytemp.job_logs), 0, 'nor its logs');
SELECT is((SELECT count(*)::int FROM tinytemp.runs), 1, 'and only its own run');
RESET ROLE;
SET LOCAL ROLE tt_obs_sub;
SELECT is((SELECT count(DISTINCT job_id)::int FROM tinytemp.job_metrics), 2, 'the submitter sees its jobs'' metrics');
SELECT is((SELECT count(*)::int FROM tinytemp.runs WHERE metrics_final IS NOT NULL), 2, 'and their runs');
SELECT throws_ok('INSERT INTO tinytemp.job_metrics VALUES (1, 1, 1, ''x'', 1, now())', '42501', NULL,
	'it may not write the table directly');
RESET ROLE;
SET LOCAL ROLE tt_obs_wrk2;
SELECT is((SELECT count(*)::int FROM tinytemp.job_logs), 0, 'a worker role sees no logs of jobs its workers did not run');
RESET ROLE;
SET LOCAL ROLE tt_obs_nobody;
SELECT throws_ok('SELECT * FROM tinytemp.runs', '42501', NULL, 'a role with none of tinytemp''s roles may not read runs');
RESET ROLE;

-- The extension's own objects.
SELECT is((SELECT count(*)::int FROM pg_proc
		   WHERE proname IN ('tinytemp_metrics', 'tinytemp_report_metrics', 'tinytemp_report_logs') AND prosecdef), 0,
	'the new functions are not SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM pg_proc p
		   WHERE proname IN ('tinytemp_metrics', 'tinytemp_report_metrics', 'tinytemp_report_logs')
			 AND NOT 'search_path=pg_catalog, pg_temp' = ANY (proconfig)), 0,
	'and they fix search_path');

SELECT * FROM finish();
ROLLBACK;

/* tinytemp--0.5--0.6.sql: observability.  Prometheus metrics counted at
 * commit, and experiment tracking: metrics per step and logs per attempt */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.6'" to load this file. \quit

-- METRICS --

-- The Prometheus text exposition format (0.0.4): counters and histograms
-- kept in shared memory and counted at commit, gauges of jobs by state kept
-- the same way, and the workers' room and the tenants' shares read from the
-- few rows that hold them.  No scrape counts the whole table.
CREATE FUNCTION tinytemp_metrics()
RETURNS text
AS 'MODULE_PATHNAME', 'tinytemp_metrics'
LANGUAGE C VOLATILE STRICT SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_metrics() FROM PUBLIC;
-- pg_monitor is the role a monitoring agent (postgres_exporter) connects as.
GRANT EXECUTE ON FUNCTION tinytemp_metrics() TO tinytemp_admin, pg_monitor;

-- Every job event is counted when it is written to the history: a BEFORE
-- row trigger is the one place every path (enqueue, claim, ack, fail, lease
-- expiry, preemption, cancel) goes through.  The counts reach shared memory
-- when the transaction commits; a rolled-back one counts nothing.
CREATE FUNCTION tinytemp.jobs_history_count()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_jobs_history_count'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.jobs_history_count() FROM PUBLIC;
CREATE TRIGGER jobs_history_count
	BEFORE INSERT ON tinytemp.jobs_history
	FOR EACH ROW EXECUTE FUNCTION tinytemp.jobs_history_count();

-- The jobs by state: jobs_validate_state counts inserts and state changes;
-- deletes and TRUNCATE are counted here (a TRUNCATE makes the next scrape
-- count the table once again).
CREATE FUNCTION tinytemp.jobs_count_removed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_jobs_count_removed'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.jobs_count_removed() FROM PUBLIC;
CREATE TRIGGER jobs_count_deleted
	BEFORE DELETE ON tinytemp.jobs
	FOR EACH ROW EXECUTE FUNCTION tinytemp.jobs_count_removed();
CREATE TRIGGER jobs_count_truncated
	AFTER TRUNCATE ON tinytemp.jobs
	FOR EACH STATEMENT EXECUTE FUNCTION tinytemp.jobs_count_removed();

-- EXPERIMENT TRACKING --

-- What a handler reported per step (its stdout lines {"metrics": {...}, "step": N}).
CREATE TABLE tinytemp.job_metrics (
	job_id		bigint NOT NULL,
	attempt		int NOT NULL,
	step		bigint,
	key			text NOT NULL,
	value		float8 NOT NULL,
	at			timestamptz NOT NULL
);
CREATE INDEX job_metrics_job_idx ON tinytemp.job_metrics (job_id, key, attempt, step);

-- A handler's stdout and stderr lines, per attempt, bounded by
-- tinytemp.log_max_lines and tinytemp.log_max_bytes.
CREATE TABLE tinytemp.job_logs (
	job_id		bigint NOT NULL,
	attempt		int NOT NULL,
	line_no		int NOT NULL,
	stream		text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
	line		text NOT NULL,
	at			timestamptz NOT NULL,
	PRIMARY KEY (job_id, attempt, line_no)
);

SELECT pg_catalog.pg_extension_config_dump('tinytemp.job_metrics', '');
SELECT pg_catalog.pg_extension_config_dump('tinytemp.job_logs', '');

-- A job's metrics and logs are visible with the job.
ALTER TABLE tinytemp.job_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_metrics_visible ON tinytemp.job_metrics
	USING (tinytemp.is_admin() OR EXISTS (SELECT FROM tinytemp.jobs j WHERE j.id = job_id));
ALTER TABLE tinytemp.job_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_logs_visible ON tinytemp.job_logs
	USING (tinytemp.is_admin() OR EXISTS (SELECT FROM tinytemp.jobs j WHERE j.id = job_id));
REVOKE ALL ON tinytemp.job_metrics, tinytemp.job_logs FROM PUBLIC;
GRANT SELECT ON tinytemp.job_metrics, tinytemp.job_logs
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

CREATE FUNCTION tinytemp_report_metrics(job_id bigint, worker_id bigint, metrics jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'tinytemp_report_metrics'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION tinytemp_report_logs(job_id bigint, worker_id bigint, lines jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'tinytemp_report_logs'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_report_metrics(bigint, bigint, jsonb),
	tinytemp_report_logs(bigint, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_report_metrics(bigint, bigint, jsonb),
	tinytemp_report_logs(bigint, bigint, jsonb) TO tinytemp_worker, tinytemp_admin;

-- One row per job, to compare runs: what it was asked (params), how long it
-- ran, each metric's final value (the last step of the last attempt that
-- reported it) and its lowest and highest, and the checkpoint it left.
CREATE VIEW tinytemp.runs WITH (security_invoker = true) AS
	SELECT j.id, j.job_type, j.model, j.tenant, j.queue, j.params, j.state, j.attempts,
		   extract(epoch FROM j.finished_at - j.started_at)::float8 AS duration_s,
		   m.metrics_final, m.metrics_min, m.metrics_max, m.last_step,
		   j.checkpoint, j.result, j.created_at, j.finished_at
	FROM tinytemp.jobs j
	LEFT JOIN LATERAL (
		SELECT jsonb_object_agg(k.key, k.final) AS metrics_final,
			   jsonb_object_agg(k.key, k.low) AS metrics_min,
			   jsonb_object_agg(k.key, k.high) AS metrics_max,
			   max(k.last_step) AS last_step
		FROM (SELECT x.key,
					 (array_agg(x.value ORDER BY x.attempt DESC, x.step DESC NULLS LAST, x.at DESC))[1]
						AS final,
					 min(x.value) AS low, max(x.value) AS high, max(x.step) AS last_step
			  FROM tinytemp.job_metrics x
			  WHERE x.job_id = j.id
			  GROUP BY x.key) k
	) m ON true;
REVOKE ALL ON tinytemp.runs FROM PUBLIC;
GRANT SELECT ON tinytemp.runs TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

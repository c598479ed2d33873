/* tinytemp--0.6--0.7.sql: datasets and lineage, the GPUs a job ran on, and
 * the predicted runtime's 10-90% interval.  A registry of immutable
 * dataset versions, jobs that declare the versions they read (and wait for
 * them to exist), and lineage as a query */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.7'" to load this file. \quit

-- A dataset version: what a job (or an admin, for a source) registered.
-- Versions are numbered per name from 1 and never change: a new ingest is
-- a new version.  The tenant is the producing job's (NULL: shared).
CREATE TABLE tinytemp.datasets (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name			text NOT NULL,
	version			int NOT NULL CHECK (version > 0),
	layer			text NOT NULL CHECK (layer IN ('raw', 'processed', 'curated')),
	uri				text NOT NULL,
	format			text NOT NULL,
	schema			jsonb,
	rows			bigint CHECK (rows >= 0),
	bytes			bigint CHECK (bytes >= 0),
	checksum		text,
	meta			jsonb,
	tenant			text,
	created_by_job	bigint,
	created_attempt	int,
	created_at		timestamptz NOT NULL DEFAULT now(),
	UNIQUE (name, version)
);
-- One version per location: an output is never registered twice.
CREATE UNIQUE INDEX datasets_uri_idx ON tinytemp.datasets (uri);
CREATE INDEX datasets_job_idx ON tinytemp.datasets (created_by_job) WHERE created_by_job IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('tinytemp.datasets', '');
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('tinytemp.datasets', 'id'), '');

-- Versions are immutable: no UPDATE (an admin may DELETE one for retention).
CREATE FUNCTION tinytemp.datasets_immutable() RETURNS trigger
AS 'MODULE_PATHNAME', 'tinytemp_datasets_immutable'
LANGUAGE C;
REVOKE ALL ON FUNCTION tinytemp.datasets_immutable() FROM PUBLIC;
CREATE TRIGGER datasets_immutable
	BEFORE UPDATE ON tinytemp.datasets
	FOR EACH ROW EXECUTE FUNCTION tinytemp.datasets_immutable();

-- A tenant sees its own datasets and the shared ones.
ALTER TABLE tinytemp.datasets ENABLE ROW LEVEL SECURITY;
CREATE POLICY datasets_visible ON tinytemp.datasets FOR SELECT
	USING (tenant IS NULL OR tinytemp.acts_for(tenant));
CREATE POLICY datasets_retention ON tinytemp.datasets FOR DELETE
	USING (tinytemp.is_admin());
REVOKE ALL ON tinytemp.datasets FROM PUBLIC;
GRANT SELECT ON tinytemp.datasets TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;
GRANT DELETE ON tinytemp.datasets TO tinytemp_admin;

-- What a job reads: inputs, the versions it declared, resolved to their
-- rows once they exist ({"id", "name", "version", "layer", "uri", "format",
-- "checksum", "rows", "bytes", "meta"}; until then {"name", "version"});
-- awaits_data, the "name@version" keys not yet registered.  A job that
-- awaits data is not due: its run_after is 'infinity' until the last one
-- exists, then the later of now and run_after_requested.
ALTER TABLE tinytemp.jobs
	ADD COLUMN inputs jsonb,
	ADD COLUMN awaits_data text[],
	ADD COLUMN run_after_requested timestamptz;
CREATE INDEX jobs_awaits_data_idx ON tinytemp.jobs USING gin (awaits_data)
	WHERE awaits_data IS NOT NULL;
CREATE INDEX jobs_inputs_idx ON tinytemp.jobs (id) WHERE inputs IS NOT NULL;

-- tinytemp_enqueue gains inputs: 'name@version', or 'name' for the latest
-- version (version 1 when there is none yet).
DROP FUNCTION tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text, int,
							   int, text, text, timestamptz, bigint[], float8, interval);
CREATE FUNCTION tinytemp_enqueue(job_type text, model text DEFAULT NULL, params jsonb DEFAULT '{}',
								 priority int DEFAULT 0, dataset_size bigint DEFAULT NULL,
								 epochs int DEFAULT NULL, batch_size int DEFAULT NULL,
								 cpus int DEFAULT 1, memory_mb bigint DEFAULT 1024, gpus int DEFAULT 0,
								 gpu_type text DEFAULT NULL, gang_size int DEFAULT 1,
								 max_attempts int DEFAULT 5, queue text DEFAULT 'default',
								 tenant text DEFAULT NULL, run_after timestamptz DEFAULT NULL,
								 depends_on bigint[] DEFAULT NULL,
								 runtime_estimate_s float8 DEFAULT NULL,
								 placement_timeout interval DEFAULT NULL,
								 inputs text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'tinytemp_enqueue'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text,
										int, int, text, text, timestamptz, bigint[], float8, interval,
										text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int,
										   text, int, int, text, text, timestamptz, bigint[], float8,
										   interval, text[]) TO tinytemp_submitter, tinytemp_admin;

-- Register what a job made (a JSON object, or an array of them registered
-- together), or, with job_id and worker_id NULL, a source dataset.
CREATE FUNCTION tinytemp_register_dataset(job_id bigint, worker_id bigint, dataset jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'tinytemp_register_dataset'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_register_dataset(bigint, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_register_dataset(bigint, bigint, jsonb)
	TO tinytemp_worker, tinytemp_submitter, tinytemp_admin;

-- A dataset's versions, newest first.
CREATE VIEW tinytemp.dataset_versions WITH (security_invoker = true) AS
	SELECT d.name, d.version, d.layer, d.uri, d.format, d.rows, d.bytes, d.checksum, d.tenant,
		   d.created_by_job, d.created_at, d.id,
		   d.version = max(d.version) OVER (PARTITION BY d.name) AS latest
	FROM tinytemp.datasets d;

-- Lineage: every dataset a job depends on, through the jobs that made its
-- inputs, at any depth (1: the job read it).  Both ways are a filter:
--   the data a run used:             WHERE job_id = 42
--   the runs that came from a dataset: WHERE dataset_id = 7
CREATE VIEW tinytemp.lineage WITH (security_invoker = true) AS
	WITH RECURSIVE up(job_id, dataset_id, depth, path) AS (
		SELECT j.id, (e.value->>'id')::bigint, 1, ARRAY[j.id]
		FROM tinytemp.jobs j, jsonb_array_elements(j.inputs) e
		WHERE j.inputs IS NOT NULL AND e.value ? 'id'
		UNION ALL
		SELECT up.job_id, (e.value->>'id')::bigint, up.depth + 1, up.path || p.id
		FROM up
		JOIN tinytemp.datasets d ON d.id = up.dataset_id
		JOIN tinytemp.jobs p ON p.id = d.created_by_job,
			 jsonb_array_elements(p.inputs) e
		WHERE p.inputs IS NOT NULL AND e.value ? 'id' AND NOT p.id = ANY (up.path)
	)
	SELECT up.job_id, up.dataset_id, d.name, d.version, d.layer, d.uri, d.checksum, up.depth,
		   d.created_by_job
	FROM up JOIN tinytemp.datasets d ON d.id = up.dataset_id;

-- The same for datasets: every dataset a dataset was made from, at any depth.
CREATE VIEW tinytemp.dataset_lineage WITH (security_invoker = true) AS
	SELECT d.id AS dataset_id, d.name, d.version, l.dataset_id AS source_id, l.name AS source_name,
		   l.version AS source_version, l.layer AS source_layer, l.depth
	FROM tinytemp.datasets d JOIN tinytemp.lineage l ON l.job_id = d.created_by_job;

REVOKE ALL ON tinytemp.dataset_versions, tinytemp.lineage, tinytemp.dataset_lineage FROM PUBLIC;
GRANT SELECT ON tinytemp.dataset_versions, tinytemp.lineage, tinytemp.dataset_lineage
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

-- Why a job waits: a job that awaits a dataset says so.
CREATE OR REPLACE VIEW tinytemp.pending_reasons_all AS
WITH w AS (
	SELECT id, cpus, memory_mb, gpus, gpu_type, free_cpus, free_memory_mb, free_gpus
	FROM tinytemp.worker_status
), total AS (
	SELECT greatest(sum(cpus), 1) AS cpus, greatest(sum(memory_mb), 1) AS memory_mb,
		   greatest(sum(gpus), 1) AS gpus
	FROM w
), share AS (
	SELECT coalesce(j.tenant, '') AS tenant,
		   greatest(sum(j.cpus)::float8 / t.cpus, sum(j.memory_mb)::float8 / t.memory_mb,
					sum(j.gpus)::float8 / t.gpus) AS dominant_share
	FROM tinytemp.jobs j, total t
	WHERE j.state IN ('assigned', 'running')
	GROUP BY 1, t.cpus, t.memory_mb, t.gpus
), waiting_tenants AS (
	SELECT DISTINCT coalesce(tenant, '') AS tenant
	FROM tinytemp.jobs WHERE state = 'pending' AND run_after <= tinytemp.now()
), p AS (
	SELECT j.*,
		   j.run_after > tinytemp.now() AS delayed,
		   EXISTS (SELECT FROM tinytemp.jobs d
				   WHERE d.id = ANY (j.depends_on) AND d.state <> 'succeeded') AS blocked_by_dependency,
		   (SELECT count(*) FROM w
			WHERE w.cpus >= j.cpus AND w.memory_mb >= j.memory_mb AND w.gpus >= j.gpus
			  AND (j.gpus = 0 OR j.gpu_type IS NULL OR j.gpu_type = w.gpu_type)) AS capable_workers,
		   (SELECT count(*) FROM w
			WHERE w.free_cpus >= j.cpus AND w.free_memory_mb >= j.memory_mb AND w.free_gpus >= j.gpus
			  AND (j.gpus = 0 OR j.gpu_type IS NULL OR j.gpu_type = w.gpu_type)) AS free_workers,
		   (SELECT count(*) FROM w
			WHERE w.free_cpus >= j.cpus AND w.free_memory_mb >= j.memory_mb AND w.free_gpus >= j.gpus
			  AND (j.gpus = 0 OR j.gpu_type IS NULL OR j.gpu_type = w.gpu_type)
			  AND NOT EXISTS (SELECT FROM tinytemp.reservations r
							  WHERE r.worker_id = w.id AND r.job_id <> coalesce(j.gang_id, j.id))) AS unreserved_workers,
		   EXISTS (SELECT FROM tinytemp.jobs o
				   WHERE o.state = 'pending' AND o.priority > j.priority
					 AND o.run_after <= tinytemp.now()) AS higher_priority_waiting,
		   EXISTS (SELECT FROM tinytemp.reservations r WHERE r.job_id = coalesce(j.gang_id, j.id))
			   AS holds_reservation,
		   (SELECT bool_or(g.gang_size > 1) FROM tinytemp.reservations r
			JOIN tinytemp.jobs g ON g.id = r.job_id WHERE r.job_id <> coalesce(j.gang_id, j.id))
			   AS reserved_for_gang,
		   (SELECT min(coalesce(s.dominant_share, 0)) FROM waiting_tenants t
			LEFT JOIN share s USING (tenant)) AS lowest_waiting_share,
		   coalesce((SELECT s.dominant_share FROM share s WHERE s.tenant = coalesce(j.tenant, '')), 0)
			   AS tenant_share
	FROM tinytemp.jobs j
	WHERE j.state = 'pending'
)
SELECT p.id AS job_id, p.queue, p.tenant, p.priority, p.gang_size,
	   extract(epoch FROM tinytemp.now() - p.created_at) AS waiting_s,
	   CASE
		   WHEN p.awaits_data IS NOT NULL THEN 'waiting on a dataset'
		   WHEN p.delayed THEN 'run_after in the future'
		   WHEN p.blocked_by_dependency THEN 'waiting on a dependency'
		   WHEN p.capable_workers < p.gang_size THEN 'no fitting worker'
		   WHEN p.holds_reservation THEN 'holds a reservation'
		   WHEN p.free_workers >= p.gang_size AND p.unreserved_workers < p.gang_size
			   THEN CASE WHEN p.reserved_for_gang THEN 'reserved for a gang'
						 ELSE 'reserved for a larger job' END
		   WHEN p.higher_priority_waiting THEN 'behind higher priority'
		   WHEN p.tenant_share > p.lowest_waiting_share THEN 'tenant over its share'
		   WHEN p.free_workers < p.gang_size THEN 'waiting for free resources'
		   ELSE 'ready'
	   END AS reason,
	   p.capable_workers, p.free_workers, round(p.tenant_share::numeric, 3) AS tenant_share
FROM p;

-- GPUS --

-- The GPU indices a job's attempt ran on, as its worker handed them out
-- (CUDA_VISIBLE_DEVICES); NULL for a job without GPUs or before it starts.
ALTER TABLE tinytemp.jobs ADD COLUMN gpu_indices int[];

CREATE FUNCTION tinytemp_set_gpus(job_id bigint, worker_id bigint, gpu_indices int[])
RETURNS void
AS 'MODULE_PATHNAME', 'tinytemp_set_gpus'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION tinytemp_set_gpus(bigint, bigint, int[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp_set_gpus(bigint, bigint, int[]) TO tinytemp_worker, tinytemp_admin;

-- PREDICTOR (src/predictor.c) --

-- The predicted runtime as a distribution: its 10th percentile, median (the
-- same as tinytemp_predict_runtime) and 90th percentile in seconds, from the
-- model's errors, calibrated by cross-validation.  A model stored before 0.7 has no interval:
-- p10 and p90 are then NULL; all three are NULL before any model.
CREATE FUNCTION tinytemp_predict_runtime_interval(job_type text, model text, dataset_size bigint,
												  epochs int, batch_size int, cpus int, gpus int,
												  gpu_type text, memory_mb bigint,
												  OUT p10 float8, OUT p50 float8, OUT p90 float8)
AS 'MODULE_PATHNAME', 'tinytemp_predict_runtime_interval'
LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION
	tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	tinytemp_predict_runtime_interval(text, text, bigint, int, int, int, int, text, bigint)
	TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

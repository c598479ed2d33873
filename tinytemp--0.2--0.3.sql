/* tinytemp--0.2--0.3.sql: scheduling policies, gangs, backfill, preemption,
 * dependencies, placement timeouts and the virtual clock */

\echo Use "ALTER EXTENSION tinytemp UPDATE TO '0.3'" to load this file. \quit

-- THE CLOCK (src/clock.c) --

-- What every tinytemp function takes for "now": the transaction's start, or
-- the virtual time in tinytemp.clock when the simulator sets it.
CREATE FUNCTION tinytemp.now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'tinytemp_clock_now'
LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION tinytemp.now() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tinytemp.now() TO tinytemp_submitter, tinytemp_worker, tinytemp_admin;

ALTER TABLE tinytemp.jobs
	ALTER COLUMN run_after SET DEFAULT tinytemp.now(),
	ALTER COLUMN created_at SET DEFAULT tinytemp.now(),
	ALTER COLUMN updated_at SET DEFAULT tinytemp.now();
ALTER TABLE tinytemp.jobs_history ALTER COLUMN at SET DEFAULT tinytemp.now();
ALTER TABLE tinytemp.workers ALTER COLUMN registered_at SET DEFAULT tinytemp.now();

-- WORKERS --

-- A worker's relative speed, from its label "speed" (1.0 when absent):
-- what a job's runtime_estimate_s is divided by on this worker.
ALTER TABLE tinytemp.workers
	ADD COLUMN speed float8 NOT NULL
		GENERATED ALWAYS AS (coalesce((labels->>'speed')::float8, 1.0)) STORED
		CHECK (speed > 0 AND speed < 'infinity');

-- JOBS --

ALTER TABLE tinytemp.jobs
	-- The jobs that must succeed before this one starts.
	ADD COLUMN depends_on bigint[],
	-- Gang members share gang_id (the first member's id) and have ranks 0..gang_size-1.
	ADD COLUMN gang_id bigint,
	ADD COLUMN gang_rank int,
	-- The submitter's runtime estimate on a worker of speed 1.0; used in place of the predictor.
	ADD COLUMN runtime_estimate_s float8 CHECK (runtime_estimate_s >= 0),
	-- Order within a priority class under the 'tinytemp' policy (see src/policy.c):
	-- estimated runtime plus tinytemp.aging_rate times the time the job became ready.
	ADD COLUMN rank_key float8,
	-- When a running job is expected to finish on its worker: backfill plans with it.
	ADD COLUMN predicted_end_at timestamptz,
	ADD COLUMN assigned_at timestamptz,
	-- The planner wants the job's room; the job's heartbeat has told its worker.
	ADD COLUMN preempt_requested_at timestamptz,
	ADD COLUMN preempt_notified_at timestamptz,
	ADD COLUMN preemptions int NOT NULL DEFAULT 0,
	ADD COLUMN placement_timeout interval,
	ADD COLUMN unschedulable_since timestamptz,
	ADD CHECK (state <> 'assigned' OR assigned_at IS NOT NULL);

-- Jobs enqueued before 0.3: pending ones take their place in the 'tinytemp'
-- order (at the default aging rate); a gang, which 0.2 stored as one row and
-- never started, becomes its members.
UPDATE tinytemp.jobs
SET rank_key = coalesce(predicted_runtime_s, 0) + extract(epoch FROM run_after)::float8;
UPDATE tinytemp.jobs SET gang_id = id, gang_rank = 0 WHERE gang_size > 1;
INSERT INTO tinytemp.jobs (queue, job_type, model, tenant, params, dataset_size, epochs,
						   batch_size, cpus, memory_mb, gpus, gpu_type, gang_size, priority,
						   max_attempts, run_after, predicted_runtime_s, created_at, rank_key,
						   gang_id, gang_rank)
SELECT j.queue, j.job_type, j.model, j.tenant, j.params, j.dataset_size, j.epochs, j.batch_size,
	   j.cpus, j.memory_mb, j.gpus, j.gpu_type, j.gang_size, j.priority, j.max_attempts,
	   j.run_after, j.predicted_runtime_s, j.created_at, j.rank_key, j.id, g
FROM tinytemp.jobs j, generate_series(1, j.gang_size - 1) g
WHERE j.gang_size > 1 AND j.state = 'pending';
ALTER TABLE tinytemp.jobs ADD CHECK ((gang_id IS NULL) = (gang_size = 1));

-- The ready rows in the 'tinytemp' policy's order, tenant by tenant, so that
-- a claim can take the best few jobs of every tenant (dominant resource fairness).
CREATE INDEX jobs_rank_idx ON tinytemp.jobs ((coalesce(tenant, '')), priority DESC, rank_key)
	WHERE state = 'pending';
CREATE INDEX jobs_gang_idx ON tinytemp.jobs (gang_id) WHERE gang_id IS NOT NULL;
-- What the planner checks each pass: pending jobs that wait on dependencies,
-- and those no worker can fit.
CREATE INDEX jobs_waiting_on_idx ON tinytemp.jobs (id)
	WHERE state = 'pending' AND depends_on IS NOT NULL;
CREATE INDEX jobs_unschedulable_idx ON tinytemp.jobs (unschedulable_since)
	WHERE state = 'pending' AND unschedulable_since IS NOT NULL;

-- Resources the planner holds back on a worker for a job that cannot start
-- yet: other jobs may use them only if predicted to finish by start_at.
CREATE TABLE tinytemp.reservations (
	job_id		bigint NOT NULL,
	worker_id	bigint NOT NULL,
	start_at	timestamptz NOT NULL,
	cpus		int NOT NULL,
	memory_mb	bigint NOT NULL,
	gpus		int NOT NULL,
	reason		text NOT NULL CHECK (reason IN ('backfill', 'preemption')),
	since		timestamptz NOT NULL,
	PRIMARY KEY (worker_id, job_id)
);

-- THE SQL API, extended --

DROP FUNCTION tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text,
							   int, int, text, text, timestamptz);
CREATE FUNCTION tinytemp_enqueue(job_type text, model text DEFAULT NULL, params jsonb DEFAULT '{}',
								 priority int DEFAULT 0, dataset_size bigint DEFAULT NULL,
								 epochs int DEFAULT NULL, batch_size int DEFAULT NULL,
								 cpus int DEFAULT 1, memory_mb bigint DEFAULT 1024,
								 gpus int DEFAULT 0, gpu_type text DEFAULT NULL,
								 gang_size int DEFAULT 1, max_attempts int DEFAULT 5,
								 queue text DEFAULT 'default', tenant text DEFAULT NULL,
								 run_after timestamptz DEFAULT NULL,
								 depends_on bigint[] DEFAULT NULL,
								 runtime_estimate_s float8 DEFAULT NULL,
								 placement_timeout interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'tinytemp_enqueue'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- A claim reads its candidates tenant by tenant; the planner cannot count
-- tenants, guesses a hundred, and would JIT-compile a statement that runs
-- in well under a millisecond: JIT costs more than the claim itself.
ALTER FUNCTION tinytemp_claim(bigint, int) SET jit = off;

-- One pass of the planner, as the background worker runs it: see src/planner.c.
CREATE FUNCTION tinytemp_schedule()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tinytemp_schedule'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off;

REVOKE ALL ON tinytemp.reservations FROM PUBLIC;
REVOKE ALL ON FUNCTION
	tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text, int, int,
					 text, text, timestamptz, bigint[], float8, interval),
	tinytemp_schedule()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	tinytemp_enqueue(text, text, jsonb, int, bigint, int, int, int, bigint, int, text, int, int,
					 text, text, timestamptz, bigint[], float8, interval)
TO tinytemp_submitter;
GRANT EXECUTE ON FUNCTION tinytemp_schedule() TO tinytemp_admin;
GRANT SELECT ON tinytemp.reservations TO tinytemp_submitter, tinytemp_admin;
GRANT INSERT, UPDATE, DELETE ON tinytemp.reservations TO tinytemp_admin;

-- VIEWS --

-- Every pending job and the first reason, in this order, that it waits:
-- its run_after is in the future; a job it depends on has not succeeded; no
-- active worker (or fewer than its gang needs) could ever fit it; it holds a
-- reservation and waits for the room to free; the room it fits is reserved
-- for another job; a job of a higher class waits too; its tenant's dominant
-- share is above that of another waiting tenant; no worker has room now.
-- 'ready' means the next claim of a worker with room can take it.
CREATE VIEW tinytemp.pending_reasons AS
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

GRANT SELECT ON tinytemp.pending_reasons TO tinytemp_submitter, tinytemp_admin;

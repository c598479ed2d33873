/*
 * claim.c
 *	  tinytemp_claim: hand a worker the next jobs it can run.
 *
 * The placement policy lives here.  A claim takes the ready job of highest
 * priority, then oldest, among those that fit what the worker has left after
 * the jobs it already holds, and repeats until max_jobs are taken or nothing
 * more fits.  Claims of one worker take turns on a private lock so that two
 * of its sessions cannot both spend the same free resources; claims of
 * different workers never wait on each other, because candidate rows are
 * locked with SKIP LOCKED.
 */
#include "tinytemp.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(tinytemp_claim);

#define MAX_JOBS_PER_CLAIM 1000

/*
 * Raise TT001 for a worker that cannot claim: unknown, or replaced by a
 * newer registration of its name.
 */
static void
require_active_worker(int64 worker_id)
{
	if (!tinytemp_worker_is_active(worker_id))
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_WORKER),
				errmsg("worker " INT64_FORMAT " is not an active worker", worker_id),
				errdetail("A newer registration of the same name replaced it."),
				errhint("Claim with the id returned by the latest tinytemp_register_worker() call."));
}

/* tinytemp_claim(worker_id, max_jobs): claim and return up to max_jobs jobs. */
Datum
tinytemp_claim(PG_FUNCTION_ARGS)
{
	/*
	 * One execution claims a batch.  The worker's free resources are
	 * computed in the statement itself, from what it holds now; they are
	 * scalar subqueries so that the scan stays an ordered walk of the ready
	 * index that stops after $3 rows it could lock, each of which fits on
	 * its own.  Of those, the statement takes the longest prefix, in claim
	 * order, that fits as a whole.  Rows past that prefix stay locked by
	 * this transaction until it ends, and are tried again by the next round
	 * against what is then left.
	 */
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH w AS ("
		"  SELECT w.cpus - coalesce(sum(h.cpus), 0) AS cpus,"
		"    (w.memory_mb - coalesce(sum(h.memory_mb), 0))::bigint AS memory_mb,"
		"    w.gpus - coalesce(sum(h.gpus), 0) AS gpus, w.gpu_type"
		"  FROM tinytemp.workers w"
		"  LEFT JOIN tinytemp.jobs h ON h.worker_id = w.id AND h.state IN ('assigned', 'running')"
		"  WHERE w.id = $1 AND w.state = 'active'"
		"  GROUP BY w.id"
		"), c AS ("
		"  SELECT id, priority, cpus, memory_mb, gpus FROM tinytemp.jobs"
		"  WHERE state = 'pending' AND run_after <= now() AND gang_size = 1"
		"    AND cpus <= (SELECT cpus FROM w) AND memory_mb <= (SELECT memory_mb FROM w)"
		"    AND gpus <= (SELECT gpus FROM w)"
		"    AND (gpus = 0 OR gpu_type IS NULL OR gpu_type = (SELECT gpu_type FROM w))"
		"  ORDER BY priority DESC, id"
		"  LIMIT $3"
		"  FOR UPDATE SKIP LOCKED"
		"), f AS ("
		"  SELECT id FROM ("
		"    SELECT id, sum(cpus) OVER o AS cpus, sum(memory_mb) OVER o AS memory_mb,"
		"      sum(gpus) OVER o AS gpus"
		"    FROM c WINDOW o AS (ORDER BY priority DESC, id)"
		"  ) s"
		"  WHERE cpus <= (SELECT cpus FROM w) AND memory_mb <= (SELECT memory_mb FROM w)"
		"    AND gpus <= (SELECT gpus FROM w)"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'running', worker_id = $1,"
		"    attempts = j.attempts + 1, started_at = now(), heartbeat_at = now(),"
		"    lease_until = now() + make_interval(secs => $2), updated_at = now()"
		"  FROM f WHERE j.id = f.id"
		"  RETURNING j.*"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'claimed', $1, jsonb_build_object('attempt', attempts) FROM u"
		") SELECT * FROM u ORDER BY priority DESC, id";
	Oid			argtypes[3] = {INT8OID, FLOAT8OID, INT4OID};
	Datum		values[3];
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		worker_id;
	int32		max_jobs;
	int			taken;

	tinytemp_require_arg(fcinfo, 0, "worker_id");
	tinytemp_require_arg(fcinfo, 1, "max_jobs");
	worker_id = PG_GETARG_INT64(0);
	max_jobs = PG_GETARG_INT32(1);
	tinytemp_require_positive(max_jobs, "max_jobs");
	if (max_jobs > MAX_JOBS_PER_CLAIM)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("max_jobs must be at most %d", MAX_JOBS_PER_CLAIM));

	InitMaterializedSRF(fcinfo, 0);

	tinytemp_lock(TINYTEMP_LOCK_WORKER, (uint64) worker_id);

	SPI_connect();
	values[0] = Int64GetDatum(worker_id);
	values[1] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	for (taken = 0; taken < max_jobs;)
	{
		values[2] = Int32GetDatum(max_jobs - taken);
		tinytemp_spi_execute(tinytemp_plan(&plan, sql, 3, argtypes), values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
		taken += (int) SPI_processed;
		SPI_freetuptable(SPI_tuptable);
	}
	/* Nothing claimed: tell an empty queue from a worker that may not claim. */
	if (taken == 0)
		require_active_worker(worker_id);
	SPI_finish();

	return (Datum) 0;
}

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

/* What a worker has left; gpu_type is NULL for a worker without GPUs. */
typedef struct FreeResources
{
	int32		cpus;
	int64		memory_mb;
	int32		gpus;
	Datum		gpu_type;
	bool		gpu_type_isnull;
} FreeResources;

/* Read the worker's free resources, raising TT001 unless it is active. */
static void
free_resources(int64 worker_id, FreeResources *free)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(worker_id)};
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT w.state, w.cpus - coalesce(sum(j.cpus), 0)::int,"
									   "  w.memory_mb - coalesce(sum(j.memory_mb), 0)::bigint,"
									   "  w.gpus - coalesce(sum(j.gpus), 0)::int, w.gpu_type"
									   " FROM tinytemp.workers w"
									   " LEFT JOIN tinytemp.jobs j ON j.worker_id = w.id"
									   "  AND j.state IN ('assigned', 'running')"
									   " WHERE w.id = $1 GROUP BY w.id",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		(void) tinytemp_worker_is_active(worker_id);	/* raises TT001 */
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (strcmp(SPI_getvalue(tuple, desc, 1), "active") != 0)
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_WORKER),
				errmsg("worker " INT64_FORMAT " is not an active worker", worker_id),
				errdetail("A newer registration of the same name replaced it."),
				errhint("Claim with the id returned by the latest tinytemp_register_worker() call."));
	free->cpus = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
	free->memory_mb = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
	free->gpus = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	free->gpu_type = SPI_getbinval(tuple, desc, 5, &free->gpu_type_isnull);
	if (!free->gpu_type_isnull)
		free->gpu_type = SPI_datumTransfer(free->gpu_type, false, -1);
}

/* tinytemp_claim(worker_id, max_jobs): claim and return up to max_jobs jobs. */
Datum
tinytemp_claim(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr claim_plan = NULL;
	static const char *sql =
		"WITH c AS ("
		"  SELECT id FROM tinytemp.jobs"
		"  WHERE state = 'pending' AND run_after <= now() AND gang_size = 1"
		"    AND cpus <= $2 AND memory_mb <= $3 AND gpus <= $4"
		"    AND (gpus = 0 OR gpu_type IS NULL OR gpu_type = $5)"
		"  ORDER BY priority DESC, id"
		"  LIMIT 1"
		"  FOR UPDATE SKIP LOCKED"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'running', worker_id = $1,"
		"    attempts = j.attempts + 1, started_at = now(), heartbeat_at = now(),"
		"    lease_until = now() + make_interval(secs => $6), updated_at = now()"
		"  FROM c WHERE j.id = c.id"
		"  RETURNING j.*"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'claimed', $1, jsonb_build_object('attempt', attempts) FROM u"
		") SELECT * FROM u";
	Oid			argtypes[6] = {INT8OID, INT4OID, INT8OID, INT4OID, TEXTOID, FLOAT8OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FreeResources free;
	int64		worker_id;
	int32		max_jobs;

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
	free_resources(worker_id, &free);
	(void) tinytemp_plan(&claim_plan, sql, 6, argtypes);

	for (int taken = 0; taken < max_jobs && free.cpus > 0 && free.memory_mb > 0; taken++)
	{
		HeapTuple	job;
		TupleDesc	desc;
		bool		isnull;

		values[0] = Int64GetDatum(worker_id);
		values[1] = Int32GetDatum(free.cpus);
		values[2] = Int64GetDatum(free.memory_mb);
		values[3] = Int32GetDatum(free.gpus);
		values[4] = free.gpu_type;
		nulls[4] = free.gpu_type_isnull ? 'n' : ' ';
		values[5] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
		tinytemp_spi_execute(claim_plan, values, nulls, SPI_OK_SELECT);
		if (SPI_processed == 0)
			break;

		job = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		tuplestore_puttuple(rsinfo->setResult, job);
		free.cpus -= DatumGetInt32(SPI_getbinval(job, desc, SPI_fnumber(desc, "cpus"), &isnull));
		free.memory_mb -= DatumGetInt64(SPI_getbinval(job, desc, SPI_fnumber(desc, "memory_mb"), &isnull));
		free.gpus -= DatumGetInt32(SPI_getbinval(job, desc, SPI_fnumber(desc, "gpus"), &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_finish();

	return (Datum) 0;
}

/*
 * workers.c
 *	  Worker incarnations and leases: registration, release of a restarted
 *	  worker's jobs, and expiry of leases whose heartbeat stopped.
 */
#include "tinytemp.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(tinytemp_register_worker);
PG_FUNCTION_INFO_V1(tinytemp_expire_leases);

/*
 * Requeue the held jobs that `selection` picks, or dead-letter those whose
 * attempts are spent.  A job the cause (`own`, a condition on x) applies to
 * gets two history events: `$2` with the reason `$1`, then 'requeued' or
 * 'dead_lettered'; another member of its gang, taken back with it, only the
 * second, with the reason 'gang member released'.  A job that was only
 * assigned never started, so it goes back to pending whatever its attempts.
 */
#define REQUEUE_SQL(selection, own, locking) \
	"WITH x AS (" \
	"  SELECT id, state, worker_id, attempts, max_attempts, lease_until, assigned_at" \
	"  FROM tinytemp.jobs" \
	"  WHERE " selection " " locking \
	"), u AS (" \
	"  UPDATE tinytemp.jobs j SET" \
	"    state = CASE WHEN x.state = 'running' AND x.attempts >= x.max_attempts" \
	"            THEN 'failed' ELSE 'pending' END," \
	"    worker_id = CASE WHEN x.state = 'running' AND x.attempts >= x.max_attempts" \
	"                THEN x.worker_id END," \
	"    finished_at = CASE WHEN x.state = 'running' AND x.attempts >= x.max_attempts" \
	"                  THEN tinytemp.now() END," \
	"    lease_until = NULL, run_after = tinytemp.now(), last_error = $1, updated_at = tinytemp.now()," \
	"    preempt_requested_at = NULL, preempt_notified_at = NULL" \
	"  FROM x WHERE j.id = x.id" \
	"  RETURNING j.id, j.state, j.queue, x.worker_id AS old_worker, x.attempts, (" own ") AS own" \
	"), h AS (" \
	"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)" \
	"  SELECT u.id, e.event, u.old_worker, e.detail FROM u, LATERAL (VALUES" \
	"    (CASE WHEN u.own THEN $2 END, jsonb_build_object('reason', $1, 'attempt', u.attempts))," \
	"    (CASE WHEN u.state = 'failed' THEN 'dead_lettered' ELSE 'requeued' END," \
	"     CASE WHEN NOT u.own THEN jsonb_build_object('reason', 'gang member released') END)" \
	"  ) e(event, detail) WHERE e.event IS NOT NULL" \
	") SELECT state, queue FROM u"

/*
 * Run a REQUEUE_SQL plan and wake the workers of every queue that got a job
 * back.  Returns how many jobs were released.
 */
static int
requeue(SPIPlanPtr plan, Datum *values)
{
	uint64		n;

	tinytemp_spi_execute(plan, values, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];

		if (strcmp(SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1), "pending") == 0)
			tinytemp_notify_enqueued(SPI_getvalue(tuple, SPI_tuptable->tupdesc, 2));
	}
	return (int) n;
}

/*
 * Raise TT001 when no worker incarnation has this id; otherwise return
 * whether it is the active incarnation of its name.  SPI must be connected.
 */
bool
tinytemp_worker_is_active(int64 worker_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(worker_id)};

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT state FROM tinytemp.workers WHERE id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_WORKER),
				errmsg("worker " INT64_FORMAT " does not exist", worker_id),
				errhint("Register the worker with tinytemp_register_worker() and use the id it returns."));
	return strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "active") == 0;
}

/*
 * Lost leases are expired only by the background worker: say so when it
 * cannot be serving this database.
 */
static void
warn_without_bgworker(void)
{
	if (!tinytemp_preloaded)
		ereport(WARNING,
				errmsg("the tinytemp background worker is not running"),
				errdetail("Jobs whose worker dies will not be retried until tinytemp_expire_leases() is called."),
				errhint("Add tinytemp to shared_preload_libraries and restart the server."));
	else if (strcmp(tinytemp_database, get_database_name(MyDatabaseId)) != 0)
		ereport(WARNING,
				errmsg("the tinytemp background worker serves database \"%s\", not this one",
					   tinytemp_database),
				errdetail("Jobs whose worker dies will not be retried until tinytemp_expire_leases() is called."),
				errhint("Set tinytemp.database to this database and restart the server."));
}

/*
 * tinytemp_register_worker(name, cpus, memory_mb, gpus, gpu_type, labels):
 * start a new incarnation and return its id.  Earlier incarnations of the
 * same name are retired and their jobs released at once, so a restarted
 * worker does not wait for lease expiry to see its jobs retried.
 */
Datum
tinytemp_register_worker(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr retire_plan = NULL;
	static SPIPlanPtr release_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr owner_plan = NULL;
	Oid			insert_types[7] = {TEXTOID, INT4OID, INT8OID, INT4OID, TEXTOID, JSONBOID, TEXTOID};
	Oid			retire_types[1] = {TEXTOID};
	Oid			release_types[3] = {TEXTOID, TEXTOID, INT8ARRAYOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		release_values[3];
	text	   *name;
	Jsonb	   *labels;
	bool		isnull;
	int64		id;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "name");
	tinytemp_require_arg(fcinfo, 1, "cpus");
	tinytemp_require_arg(fcinfo, 2, "memory_mb");
	tinytemp_require_arg(fcinfo, 3, "gpus");
	tinytemp_require_arg(fcinfo, 5, "labels");
	name = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(name) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("name must not be empty"));
	tinytemp_require_positive(PG_GETARG_INT32(1), "cpus");
	tinytemp_require_positive(PG_GETARG_INT64(2), "memory_mb");
	tinytemp_require_nonnegative(PG_GETARG_INT32(3), "gpus");
	labels = PG_GETARG_JSONB_P(5);
	if (!JB_ROOT_IS_OBJECT(labels) || JB_ROOT_IS_SCALAR(labels))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("labels must be a JSON object"));

	for (int i = 0; i < 6; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}

	warn_without_bgworker();

	/* The library may meet a 0.3 schema before ALTER EXTENSION UPDATE. */
	if (get_attnum(get_relname_relid("workers", get_namespace_oid("tinytemp", false)),
				   "registered_by") == InvalidAttrNumber)
		tinytemp_raise_outdated_schema();

	tinytemp_enter(fcinfo, &caller);
	values[6] = CStringGetTextDatum(tinytemp_caller_name(&caller));

	/* Two registrations of one name take turns. */
	tinytemp_lock(TINYTEMP_LOCK_WORKER_NAME,
				  hash_bytes_extended((unsigned char *) VARDATA_ANY(name),
									  VARSIZE_ANY_EXHDR(name), 0));

	SPI_connect();

	/* Only a role that acts for the running incarnation may replace it. */
	tinytemp_spi_execute(tinytemp_plan(&owner_plan,
									   "SELECT registered_by FROM tinytemp.workers"
									   " WHERE name = $1 AND state = 'active'",
									   1, retire_types),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0 && !caller.admin)
	{
		char	   *owner = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (!tinytemp_caller_acts_for(&caller, owner))
			ereport(ERROR,
					errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("permission denied to replace worker \"%s\"",
						   text_to_cstring(name)),
					errdetail("Its running incarnation was registered by role \"%s\".",
							  owner ? owner : "(unknown)"));
	}

	tinytemp_spi_execute(tinytemp_plan(&retire_plan,
									   "WITH r AS ("
									   "  UPDATE tinytemp.workers SET state = 'retired', retired_at = tinytemp.now()"
									   "  WHERE name = $1 AND state = 'active' RETURNING id"
									   ") SELECT array_agg(id) FROM r",
									   1, retire_types),
						 values, NULL, SPI_OK_SELECT);
	release_values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		release_values[0] = CStringGetTextDatum("worker re-registered");
		release_values[1] = CStringGetTextDatum("worker_restarted");
		(void) requeue(tinytemp_plan(&release_plan,
									 REQUEUE_SQL("id IN (SELECT id FROM tinytemp.jobs"
											 "  WHERE state IN ('assigned', 'running') AND worker_id = ANY ($3)"
											 " UNION SELECT m.id FROM tinytemp.jobs h JOIN tinytemp.jobs m"
											 "  ON m.gang_id = h.gang_id AND m.state IN ('assigned', 'running')"
											 "  WHERE h.state IN ('assigned', 'running') AND h.worker_id = ANY ($3))",
											 "x.worker_id = ANY ($3)",
											 "FOR UPDATE"),
									 3, release_types),
					   release_values);
	}

	tinytemp_spi_execute(tinytemp_plan(&insert_plan,
									   "INSERT INTO tinytemp.workers"
									   " (name, cpus, memory_mb, gpus, gpu_type, labels, registered_by)"
									   " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
									   7, insert_types),
						 values, nulls, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	tinytemp_leave(&caller);

	PG_RETURN_INT64(id);
}

/*
 * Requeue or dead-letter the running jobs whose lease ran out, and the
 * other members of their gangs (a gang never runs in part: their workers
 * hear TT003 at their next report).  Rows that another transaction holds
 * (a heartbeat in flight) are left for the next pass.  SPI must be
 * connected.  Returns how many jobs were handled.
 */
int
tinytemp_expire_leases_internal(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum("lease expired");
	values[1] = CStringGetTextDatum("lease_expired");
	return requeue(tinytemp_plan(&plan,
								 REQUEUE_SQL("id IN (SELECT e.id FROM ("
											 "  SELECT id, gang_id FROM tinytemp.jobs"
											 "  WHERE state = 'running' AND lease_until < tinytemp.now()"
											 "  ORDER BY lease_until LIMIT 1000) e"
											 " UNION SELECT m.id FROM tinytemp.jobs m"
											 "  WHERE m.state IN ('assigned', 'running') AND m.gang_id IN ("
											 "   SELECT gang_id FROM tinytemp.jobs WHERE state = 'running'"
											 "   AND lease_until < tinytemp.now()))",
											 "x.state = 'running' AND x.lease_until < tinytemp.now()",
											 "FOR UPDATE SKIP LOCKED"),
								 2, argtypes),
				   values);
}

/*
 * Renew, until one lease after `since`, the leases of the running jobs
 * last heartbeated before `since`: the background worker's start, after a
 * restart or a promotion.  A job renewed once is not renewed again, and
 * one whose worker never comes back expires a lease after `since`.  SPI
 * must be connected.
 */
void
tinytemp_renew_leases_since(TimestampTz since)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {TIMESTAMPTZOID, FLOAT8OID};
	Datum		values[2];

	values[0] = TimestampTzGetDatum(since);
	values[1] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "UPDATE tinytemp.jobs SET lease_until = $1 + make_interval(secs => $2)"
									   " WHERE state = 'running' AND heartbeat_at < $1"
									   "   AND lease_until < $1 + make_interval(secs => $2)"
									   "   AND $1 + make_interval(secs => $2) > tinytemp.now()",
									   2, argtypes),
						 values, NULL, SPI_OK_UPDATE);
}

/*
 * Put back to pending the gangs of which a member was assigned to a worker
 * that has not claimed it within a lease: the worker is gone or stuck, and
 * the whole gang is planned again.  SPI must be connected.
 */
int
tinytemp_release_stale_assignments(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, FLOAT8OID};
	Datum		values[3];

	values[0] = CStringGetTextDatum("assigned worker did not claim");
	values[1] = CStringGetTextDatum("assignment_expired");
	values[2] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	return requeue(tinytemp_plan(&plan,
								 REQUEUE_SQL("state IN ('assigned', 'running') AND gang_id IN ("
											 "  SELECT gang_id FROM tinytemp.jobs WHERE state = 'assigned'"
											 "  AND assigned_at < tinytemp.now() - make_interval(secs => $3))",
											 "x.state = 'assigned' AND x.assigned_at < tinytemp.now() - make_interval(secs => $3)",
											 "FOR UPDATE SKIP LOCKED"),
								 3, argtypes),
				   values);
}

/* tinytemp_expire_leases(): one lease-expiry pass, as the background worker runs it. */
Datum
tinytemp_expire_leases(PG_FUNCTION_ARGS)
{
	int			n;
	TinytempCaller caller;

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	n = tinytemp_expire_leases_internal();
	SPI_finish();
	tinytemp_leave(&caller);
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(tinytemp_set_gpus);

/*
 * tinytemp_set_gpus(job_id, worker_id, gpu_indices): record the GPU indices
 * the worker gave the running job it holds: as many as the job asked for,
 * distinct, not negative.  TT003 when the worker no longer holds the job.
 */
Datum
tinytemp_set_gpus(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {INT8OID, INT8OID, INT4ARRAYOID};
	Datum		values[3];
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	tinytemp_require_arg(fcinfo, 2, "gpu_indices");
	arr = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("gpu_indices must be a one-dimensional array"));
	deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i] || DatumGetInt32(elems[i]) < 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("gpu_indices must hold GPU indices: integers from 0, not null"));
		for (int k = 0; k < i; k++)
			if (DatumGetInt32(elems[k]) == DatumGetInt32(elems[i]))
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("GPU %d is named twice in gpu_indices", DatumGetInt32(elems[i])));
	}
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PointerGetDatum(arr);

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_require_worker(&caller, PG_GETARG_INT64(1));
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "UPDATE tinytemp.jobs SET gpu_indices = nullif($3, '{}')"
									   " WHERE id = $1 AND worker_id = $2 AND state = 'running'"
									   " RETURNING gpus",
									   3, argtypes),
						 values, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0)
		tinytemp_raise_not_held(PG_GETARG_INT64(0), PG_GETARG_INT64(1));
	if (tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0) != n)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("job " INT64_FORMAT " asked for " INT64_FORMAT " GPUs, not %d",
					   PG_GETARG_INT64(0),
					   tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0), n));
	SPI_finish();
	tinytemp_leave(&caller);
	PG_RETURN_VOID();
}

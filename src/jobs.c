/*
 * jobs.c
 *	  The job lifecycle of the SQL API: enqueue, ack, fail (with retries and
 *	  the dead-letter queue), heartbeat, cancel and retry.
 *
 * Every state change and its jobs_history event are written by one
 * statement, so they commit or roll back together.
 */
#include "tinytemp.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "datatype/timestamp.h"
#include "utils/array.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tinytemp_enqueue);
PG_FUNCTION_INFO_V1(tinytemp_enqueue_many);
PG_FUNCTION_INFO_V1(tinytemp_ack);
PG_FUNCTION_INFO_V1(tinytemp_ack_many);
PG_FUNCTION_INFO_V1(tinytemp_fail);
PG_FUNCTION_INFO_V1(tinytemp_heartbeat);
PG_FUNCTION_INFO_V1(tinytemp_checkpoint);
PG_FUNCTION_INFO_V1(tinytemp_cancel);
PG_FUNCTION_INFO_V1(tinytemp_retry);
PG_FUNCTION_INFO_V1(tinytemp_retry_delay);

#define ENQUEUE_NARGS 19
#define MAX_DEPENDENCIES 1000

/*
 * Positions among tinytemp_enqueue's arguments of job_type, model,
 * dataset_size, epochs, batch_size, cpus, gpus, gpu_type and memory_mb,
 * the inputs of the runtime predictor.
 */
static const int enqueue_predictor_args[9] = {0, 1, 4, 5, 6, 7, 9, 10, 8};

/*
 * Backoff before the retry that follows attempt number `attempt`, in
 * milliseconds: d = min(cap, base * 2^(attempt-1)), then "equal jitter",
 * uniform in [d/2, d], so that workers failing together do not retry together.
 */
static double
retry_delay_ms(int attempt)
{
	double		d = (double) tinytemp_retry_base_ms * pow(2.0, Max(attempt, 1) - 1);

	d = Min(d, (double) tinytemp_retry_cap_ms);
	return d / 2.0 + pg_prng_double(&pg_global_prng_state) * d / 2.0;
}

/*
 * Explain why worker_id may not report on job_id, and raise: the job does
 * not exist (TT002), the worker does not exist (TT001), or the worker no
 * longer holds the job (TT003).  Called with SPI connected.
 */
void
tinytemp_raise_not_held(int64 job_id, int64 worker_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	char	   *state;
	char	   *holder;

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT state, worker_id FROM tinytemp.jobs WHERE id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_JOB),
				errmsg("job " INT64_FORMAT " does not exist", job_id));
	state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	holder = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	(void) tinytemp_worker_is_active(worker_id);
	ereport(ERROR,
			errcode(ERRCODE_TINYTEMP_LEASE_LOST),
			errmsg("worker " INT64_FORMAT " does not hold job " INT64_FORMAT,
				   worker_id, job_id),
			errdetail("The job is %s%s%s.", state,
					  holder ? " and was last held by worker " : "",
					  holder ? holder : ""),
			errhint("The lease may have expired, or the job was cancelled, preempted or handed to another worker; the report was discarded."));
}

/*
 * The attempt that worker_id runs of job_id, for a report on it: the
 * caller must act for the worker (42501), and the worker hold the job
 * running (TT003, TT002, TT001 otherwise).  With tenant, also the job's
 * tenant (NULL: none), palloc'd in the caller's context.  SPI connected.
 */
int32
tinytemp_held_attempt(const TinytempCaller *caller, int64 job_id, int64 worker_id, char **tenant)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int64GetDatum(worker_id)};
	char	   *t;

	tinytemp_require_worker(caller, worker_id);
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT attempts, tenant FROM tinytemp.jobs"
									   " WHERE id = $1 AND worker_id = $2 AND state = 'running'",
									   2, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		tinytemp_raise_not_held(job_id, worker_id);
	if (tenant)
	{
		t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		*tenant = t ? strcpy(SPI_palloc(strlen(t) + 1), t) : NULL;
	}
	return (int32) tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0);
}

/*
 * Check tinytemp_enqueue's depends_on: a one-dimensional array of at most
 * MAX_DEPENDENCIES distinct ids of existing jobs of tenants the caller acts
 * for (another tenant's job is, to the caller, one that does not exist).
 * SPI must be connected.
 */
static void
check_dependencies(ArrayType *deps, const TinytempCaller *caller)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {INT8ARRAYOID, BOOLOID};
	Datum		values[2] = {PointerGetDatum(deps), BoolGetDatum(caller->admin)};
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	bool		isnull;

	if (ARR_NDIM(deps) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("depends_on must be a one-dimensional array"));
	deconstruct_array(deps, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &n);
	if (n > MAX_DEPENDENCIES)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("a job may depend on at most %d jobs", MAX_DEPENDENCIES));
	for (int i = 0; i < n; i++)
		if (elem_nulls[i])
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("depends_on must not contain nulls"));

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT d.id, j.id IS NOT NULL, j.tenant FROM unnest($1) d(id)"
									   " LEFT JOIN tinytemp.jobs j ON j.id = d.id"
									   " WHERE j.id IS NULL OR NOT $2",
									   2, argtypes),
						 values, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		bool		exists = DatumGetBool(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));

		if (!exists || !tinytemp_caller_acts_for(caller, SPI_getvalue(t, SPI_tuptable->tupdesc, 3)))
			ereport(ERROR,
					errcode(ERRCODE_TINYTEMP_UNKNOWN_JOB),
					errmsg("job " INT64_FORMAT " in depends_on does not exist",
						   DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull))));
	}
}

/*
 * The rules tinytemp_enqueue applies to runtime_estimate_s and
 * placement_timeout itself (NULL: not given); `where` starts the message
 * ("" for one job, "job N of the array: " for tinytemp_enqueue_many).
 */
static void
check_estimate_and_timeout(const double *estimate, const Interval *timeout, const char *where)
{
	if (estimate && !(*estimate >= 0 && *estimate < 1e9))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%sruntime_estimate_s must be between 0 and 1e9 seconds", where));
	if (timeout && (timeout->time < 0 || timeout->day < 0 || timeout->month < 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%splacement_timeout must not be negative", where));
}

/*
 * The tenant a job is stored under: a submitter's jobs are its own
 * tenant's unless it names one it acts for; an admin's have none unless
 * named.
 */
static char *
job_tenant(const TinytempCaller *caller, char *named)
{
	if (named == NULL)
		return caller->admin ? NULL : tinytemp_caller_name(caller);
	tinytemp_require_tenant(caller, named, "enqueue");
	return named;
}

/*
 * tinytemp_enqueue(job_type, model, params, ..., depends_on,
 * runtime_estimate_s, placement_timeout): add a job, return its id.  A gang
 * (gang_size > 1) is gang_size member rows with consecutive ranks that the
 * planner starts together on distinct workers; its id is its first
 * member's, which is also every member's gang_id.
 */
Datum
tinytemp_enqueue(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plans[2][2];
#define ENQUEUE_COLUMNS \
	"job_type, model, params, priority, dataset_size, epochs, batch_size, cpus, memory_mb," \
	" gpus, gpu_type, gang_size, max_attempts, queue, tenant, run_after, depends_on," \
	" runtime_estimate_s, placement_timeout, predicted_runtime_s, rank_key, created_at, updated_at"
/* ... and, from 0.8, the spread of the prediction: ENQUEUE_COLUMNS_08 */
#define ENQUEUE_COLUMNS_08 ENQUEUE_COLUMNS ", predicted_spread"
#define ENQUEUE_VALUES \
	"$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15," \
	" coalesce($16, tinytemp.now()), $17, $18, $19, $20," \
	" $23 + $21 * extract(epoch FROM coalesce($16, tinytemp.now()))::float8," \
	" tinytemp.now(), tinytemp.now()"
#define ENQUEUE_VALUES_08 ENQUEUE_VALUES ", $22"
#define ENQUEUE_HISTORY \
	"), h AS (" \
	"  INSERT INTO tinytemp.jobs_history (job_id, event, detail)" \
	"  SELECT id, 'enqueued'," \
	"    CASE WHEN run_after > tinytemp.now() THEN jsonb_build_object('run_after', run_after) END" \
	"  FROM j" \
	") SELECT min(id) FROM j"
#define ENQUEUE_GANG_IDS \
	"WITH ids AS MATERIALIZED (" \
	"  SELECT nextval('tinytemp.jobs_id_seq') AS id, g AS rank" \
	"  FROM generate_series(0, $12 - 1) g" \
	"), j AS ("
	/* [schema 0.8 or later][gang] */
	static const char *const sql[2][2] = {{
			/* one job */
			"WITH j AS ("
			"  INSERT INTO tinytemp.jobs (" ENQUEUE_COLUMNS ") VALUES (" ENQUEUE_VALUES ")"
			"  RETURNING id, run_after"
			ENQUEUE_HISTORY,
			/* a gang: its members' ids drawn first, so that every row knows the first */
			ENQUEUE_GANG_IDS
			"  INSERT INTO tinytemp.jobs (id, gang_id, gang_rank, " ENQUEUE_COLUMNS ")"
			"  SELECT ids.id, (SELECT min(id) FROM ids), ids.rank, " ENQUEUE_VALUES
			"  FROM ids"
			"  RETURNING id, run_after"
			ENQUEUE_HISTORY
		}, {
			"WITH j AS ("
			"  INSERT INTO tinytemp.jobs (" ENQUEUE_COLUMNS_08 ") VALUES (" ENQUEUE_VALUES_08 ")"
			"  RETURNING id, run_after"
			ENQUEUE_HISTORY,
			ENQUEUE_GANG_IDS
			"  INSERT INTO tinytemp.jobs (id, gang_id, gang_rank, " ENQUEUE_COLUMNS_08 ")"
			"  SELECT ids.id, (SELECT min(id) FROM ids), ids.rank, " ENQUEUE_VALUES_08
			"  FROM ids"
			"  RETURNING id, run_after"
			ENQUEUE_HISTORY
	}};
	int			gang;
	int			v08;
	Oid			argtypes[ENQUEUE_NARGS + 4] = {
		TEXTOID, TEXTOID, JSONBOID, INT4OID, INT8OID, INT4OID, INT4OID, INT4OID,
		INT8OID, INT4OID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
		INT8ARRAYOID, FLOAT8OID, INTERVALOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID
	};
	static const char *const required[] = {
		"job_type", NULL, "params", "priority", NULL, NULL, NULL, "cpus",
		"memory_mb", "gpus", NULL, "gang_size", "max_attempts", "queue", NULL, NULL,
		NULL, NULL, NULL
	};
	Datum		values[ENQUEUE_NARGS + 4];
	char		nulls[ENQUEUE_NARGS + 4];
	bool		isnull;
	int64		id;
	char	   *queue;
	double		predicted = 0;
	double		spread = -1;
	char	   *tenant;
	Jsonb	   *params;
	TinytempJobIdentity who;
	TinytempCaller caller;

	/*
	 * The 0.2 signature had 16 arguments: the .so may meet it before ALTER
	 * EXTENSION UPDATE.  0.7 added inputs, the last.
	 */
	if (PG_NARGS() != ENQUEUE_NARGS && PG_NARGS() != ENQUEUE_NARGS + 1)
		tinytemp_raise_outdated_schema();
	for (int i = 0; i < ENQUEUE_NARGS; i++)
	{
		if (required[i])
			tinytemp_require_arg(fcinfo, i, required[i]);
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	/* The gang's size bounds the statement's row count: check it before the trigger can. */
	tinytemp_require_positive(PG_GETARG_INT32(11), "gang_size");
	if (PG_GETARG_INT32(11) > 1000)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("gang_size must be at most 1000"));
	check_estimate_and_timeout(PG_ARGISNULL(17) ? NULL : &(double) {PG_GETARG_FLOAT8(17)},
							   PG_ARGISNULL(18) ? NULL : PG_GETARG_INTERVAL_P(18), "");

	/* Sizes, resources and labels are checked by the jobs_validate trigger. */
	queue = text_to_cstring(PG_GETARG_TEXT_PP(13));
	params = PG_GETARG_JSONB_P(2);
	tinytemp_enter(fcinfo, &caller);
	tenant = job_tenant(&caller, PG_ARGISNULL(14) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(14)));
	values[14] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	nulls[14] = tenant ? ' ' : 'n';

	/* The prediction, which the history of requests of this tenant and queue corrects. */
	who.tenant = tenant;
	who.queue = queue;
	who.params = VARDATA_ANY(params);
	who.params_len = VARSIZE_ANY_EXHDR(params);
	nulls[ENQUEUE_NARGS] = 'n';
	values[ENQUEUE_NARGS] = (Datum) 0;
	if (tinytemp_predict(fcinfo, enqueue_predictor_args, false, &who, &predicted, &spread))
	{
		values[ENQUEUE_NARGS] = Float8GetDatum(predicted);
		nulls[ENQUEUE_NARGS] = ' ';
	}
	values[ENQUEUE_NARGS + 1] = Float8GetDatum(tinytemp_aging_rate);
	nulls[ENQUEUE_NARGS + 1] = ' ';
	values[ENQUEUE_NARGS + 2] = Float8GetDatum(spread);
	nulls[ENQUEUE_NARGS + 2] = spread >= 0 ? ' ' : 'n';
	/*
	 * The rank cost at no service: a runtime given is taken as the runtime;
	 * a gang, never preempted, costs its expected runtime.
	 */
	values[ENQUEUE_NARGS + 3] = Float8GetDatum(!PG_ARGISNULL(17) ?
											   tinytemp_rank_cost(PG_GETARG_FLOAT8(17), -1, 0) :
											   PG_GETARG_INT32(11) > 1 ?
											   tinytemp_gang_cost(predicted, spread) :
											   tinytemp_rank_cost(predicted, spread, 0));
	nulls[ENQUEUE_NARGS + 3] = ' ';

	SPI_connect();
	if (!PG_ARGISNULL(16))
		check_dependencies(PG_GETARG_ARRAYTYPE_P(16), &caller);
	gang = PG_GETARG_INT32(11) > 1;
	v08 = tinytemp_schema_has_service();
	tinytemp_spi_execute(tinytemp_plan(&plans[v08][gang], sql[v08][gang], ENQUEUE_NARGS + 4,
									   argtypes),
						 values, nulls, SPI_OK_SELECT);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (PG_NARGS() > ENQUEUE_NARGS && !PG_ARGISNULL(ENQUEUE_NARGS))
		tinytemp_attach_inputs(id, PG_GETARG_ARRAYTYPE_P(ENQUEUE_NARGS), &caller, tenant);
	SPI_finish();

	tinytemp_notify_enqueued(queue);
	tinytemp_leave(&caller);

	PG_RETURN_INT64(id);
}

/* The keys of a job in tinytemp_enqueue_many: tinytemp_enqueue's argument names. */
#define BULK_RECORD \
	"job_type text, model text, params jsonb, priority int, dataset_size bigint, epochs int," \
	" batch_size int, cpus int, memory_mb bigint, gpus int, gpu_type text, gang_size int," \
	" max_attempts int, queue text, tenant text, run_after timestamptz, depends_on bigint[]," \
	" runtime_estimate_s float8, placement_timeout interval, inputs text[]"
static const char *const bulk_key_names[] = {
	"job_type", "model", "params", "priority", "dataset_size", "epochs", "batch_size", "cpus",
	"memory_mb", "gpus", "gpu_type", "gang_size", "max_attempts", "queue", "tenant", "run_after",
	"depends_on", "runtime_estimate_s", "placement_timeout", "inputs"
};

/* Whether a key is one of those whose value must be a JSON string or null. */
static bool
bulk_text_key(const char *key, int len)
{
	static const char *const text_keys[] = {"job_type", "model", "gpu_type", "queue", "tenant"};

	for (int i = 0; i < (int) lengthof(text_keys); i++)
		if ((int) strlen(text_keys[i]) == len && memcmp(text_keys[i], key, len) == 0)
			return true;
	return false;
}

/* Whether a key is one of tinytemp_enqueue's argument names. */
static bool
bulk_known_key(const char *key, int len)
{
	for (int i = 0; i < (int) lengthof(bulk_key_names); i++)
		if ((int) strlen(bulk_key_names[i]) == len && memcmp(bulk_key_names[i], key, len) == 0)
			return true;
	return false;
}

/* Keep in *min (NULL: none yet) the lesser of it and key, in the database's collation. */
static void
keep_least_key(const JsonbValue *key, char **min)
{
	const char *k = key->val.string.val;
	int			len = key->val.string.len;

	if (*min == NULL || varstr_cmp(k, len, *min, strlen(*min), DEFAULT_COLLATION_OID) < 0)
		*min = pnstrdup(k, len);
}

/*
 * For each job object of the array jobs (one slot per element, in order;
 * nothing for an element that is not an object): its least unknown key,
 * and its least key among job_type, model, gpu_type, queue and tenant whose
 * value is neither a string nor null (NULL: none), least in the database's
 * collation, as min() over the keys would give.  One walk of the JSON,
 * where a jsonb_each per job cost more than the rest of its check.
 */
static void
bulk_key_errors(Jsonb *jobs, int n, char **unknown, char **not_string)
{
	JsonbIterator *it = JsonbIteratorInit(&jobs->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbIterator *obj;
		JsonbValue	key;
		JsonbValue	value;

		if (tok != WJB_ELEM)
			continue;
		if (i >= n)
			elog(ERROR, "the jobs array has more elements than rows were read");
		unknown[i] = not_string[i] = NULL;
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			obj = JsonbIteratorInit(v.val.binary.data);
			while ((tok = JsonbIteratorNext(&obj, &key, true)) != WJB_DONE)
			{
				if (tok != WJB_KEY)
					continue;
				tok = JsonbIteratorNext(&obj, &value, true);
				Assert(tok == WJB_VALUE);
				if (!bulk_known_key(key.val.string.val, key.val.string.len))
					keep_least_key(&key, &unknown[i]);
				else if (bulk_text_key(key.val.string.val, key.val.string.len) &&
						 value.type != jbvString && value.type != jbvNull)
					keep_least_key(&key, &not_string[i]);
			}
		}
		i++;
	}
}

#define BULK_ROWS \
	" FROM jsonb_array_elements($1) WITH ORDINALITY e(elem, ord)" \
	"  CROSS JOIN LATERAL jsonb_to_record(e.elem) AS x(" BULK_RECORD ")"

/* Column numbers (from 1) of the rows that check_bulk reads. */
enum
{
	BULK_JOB_TYPE = 1, BULK_MODEL, BULK_PARAMS, BULK_PRIORITY, BULK_DATASET_SIZE, BULK_EPOCHS,
	BULK_BATCH_SIZE, BULK_CPUS, BULK_MEMORY_MB, BULK_GPUS, BULK_GPU_TYPE, BULK_GANG_SIZE,
	BULK_MAX_ATTEMPTS, BULK_QUEUE, BULK_TENANT, BULK_RUN_AFTER, BULK_DEPENDS_ON,
	BULK_RUNTIME_ESTIMATE_S, BULK_PLACEMENT_TIMEOUT, BULK_INPUTS, BULK_NOT_OBJECT
};

/*
 * Read and check the jobs of tinytemp_enqueue_many: the rules that
 * tinytemp_enqueue applies to its arguments, job by job; the table's own
 * rules are left to the jobs_validate trigger as for a single enqueue.
 * Fills each job's predicted runtime (NaN: none) and tenant (NULL: none),
 * and returns how many jobs there are.  SPI must be connected.
 */
static int
check_bulk(Datum jobs, const TinytempCaller *caller, double **predicted, double **costs,
		   Datum **tenants, bool **tenant_nulls, Datum **inputs)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT x.*, jsonb_typeof(e.elem) <> 'object'"
		" FROM jsonb_array_elements($1) WITH ORDINALITY e(elem, ord)"
		" LEFT JOIN LATERAL jsonb_to_record(CASE jsonb_typeof(e.elem) WHEN 'object' THEN e.elem END)"
		"  AS x(" BULK_RECORD ") ON true"
		" ORDER BY e.ord";
	Oid			argtypes[1] = {JSONBOID};
	Datum		values[1] = {jobs};
	SPITupleTable *tab;
	int			n;
	char	   *last_tenant = NULL;
	char	   *own_tenant = NULL;
	bool		own_known = false;
	Jsonb	   *empty_params = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	TinytempRow row;
	char	  **unknown;
	char	  **not_string;

	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	tab = SPI_tuptable;
	n = (int) SPI_processed;
	unknown = palloc(sizeof(char *) * Max(n, 1));
	not_string = palloc(sizeof(char *) * Max(n, 1));
	bulk_key_errors(DatumGetJsonbP(jobs), n, unknown, not_string);
	*predicted = palloc(sizeof(double) * Max(n, 1));
	*costs = palloc(sizeof(double) * Max(n, 1) * 2);
	*tenants = palloc(sizeof(Datum) * Max(n, 1));
	*tenant_nulls = palloc(sizeof(bool) * Max(n, 1));
	*inputs = palloc0(sizeof(Datum) * Max(n, 1));
	tinytemp_row_init(&row, tab->tupdesc);
	for (int i = 0; i < n; i++)
	{
		char	   *key;
		char	   *tenant;
		char		where[48];
		double		estimate;
		double		p10,
					p90,
					spread;
		bool		bounded;
		TinytempJobSpec spec;
		TinytempJobIdentity who;
		Jsonb	   *params;

		tinytemp_row_read(&row, tab->vals[i]);
#define IS_NULL(c) (row.nulls[(c) - 1])
#define VALUE(c) (row.values[(c) - 1])

		if (DatumGetBool(VALUE(BULK_NOT_OBJECT)))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("job %d of the array is not a JSON object", i + 1));
		if ((key = unknown[i]) != NULL)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("job %d of the array has an unknown key \"%s\"", i + 1, key),
					errhint("The keys are tinytemp_enqueue's argument names."));
		if ((key = not_string[i]) != NULL)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					errmsg("job %d of the array: %s must be a JSON string", i + 1, key));
		if (IS_NULL(BULK_JOB_TYPE))
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("job %d of the array has no job_type", i + 1));
		if (!IS_NULL(BULK_GANG_SIZE) && DatumGetInt32(VALUE(BULK_GANG_SIZE)) != 1)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("job %d of the array is a gang (gang_size %d)", i + 1,
						   DatumGetInt32(VALUE(BULK_GANG_SIZE))),
					errhint("Enqueue gangs one at a time with tinytemp_enqueue()."));
		snprintf(where, sizeof(where), "job %d of the array: ", i + 1);
		estimate = IS_NULL(BULK_RUNTIME_ESTIMATE_S) ? 0 : DatumGetFloat8(VALUE(BULK_RUNTIME_ESTIMATE_S));
		check_estimate_and_timeout(IS_NULL(BULK_RUNTIME_ESTIMATE_S) ? NULL : &estimate,
								   IS_NULL(BULK_PLACEMENT_TIMEOUT) ? NULL :
								   DatumGetIntervalP(VALUE(BULK_PLACEMENT_TIMEOUT)), where);

		/* The tenant: the caller's own is looked up once, a named one checked when it changes. */
		tenant = tinytemp_row_text(&row, BULK_TENANT);
		if (tenant == NULL)
		{
			if (!own_known)
				own_tenant = job_tenant(caller, NULL);
			own_known = true;
			tenant = own_tenant;
		}
		else if (last_tenant == NULL || strcmp(tenant, last_tenant) != 0)
			last_tenant = job_tenant(caller, tenant);
		(*tenant_nulls)[i] = tenant == NULL;
		(*tenants)[i] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;

		if (!IS_NULL(BULK_DEPENDS_ON))
		{
			check_dependencies(DatumGetArrayTypeP(VALUE(BULK_DEPENDS_ON)), caller);
			SPI_tuptable = tab;	/* read on from the jobs' rows */
		}

		if (!IS_NULL(BULK_INPUTS))
			(*inputs)[i] = PointerGetDatum(SPI_datumTransfer(VALUE(BULK_INPUTS), false, -1));

		/* Sizes left out are the predictor's missing values, as in tinytemp_enqueue. */
		spec.job_type = tinytemp_row_text(&row, BULK_JOB_TYPE);
		spec.model = tinytemp_row_text(&row, BULK_MODEL);
		spec.gpu_type = tinytemp_row_text(&row, BULK_GPU_TYPE);
		spec.dataset_size = (double) tinytemp_row_int64(&row, BULK_DATASET_SIZE, -1);
		spec.epochs = (double) tinytemp_row_int64(&row, BULK_EPOCHS, -1);
		spec.batch_size = (double) tinytemp_row_int64(&row, BULK_BATCH_SIZE, -1);
		spec.cpus = (double) tinytemp_row_int64(&row, BULK_CPUS, 1);
		spec.gpus = (double) tinytemp_row_int64(&row, BULK_GPUS, 0);
		spec.memory_mb = (double) tinytemp_row_int64(&row, BULK_MEMORY_MB, 1024);
		params = IS_NULL(BULK_PARAMS) ? empty_params : DatumGetJsonbP(VALUE(BULK_PARAMS));
		who.tenant = tenant;
		who.queue = tinytemp_row_text(&row, BULK_QUEUE);
		if (who.queue == NULL)
			who.queue = "default";
		who.params = VARDATA_ANY(params);
		who.params_len = VARSIZE_ANY_EXHDR(params);
		spec.who = &who;
		if (spec.dataset_size < -1 || spec.epochs < -1 || spec.batch_size < -1 ||
			!tinytemp_predict_spec_interval(&spec, &p10, &(*predicted)[i], &p90, &bounded))
		{
			(*predicted)[i] = get_float8_nan();
			spread = -1;
		}
		else
			spread = bounded ? tinytemp_spread_from_interval(p10, p90) : -1;
		/* Each job's spread (NaN: none), then its rank cost at no service, as in tinytemp_enqueue. */
		(*costs)[2 * i] = spread >= 0 ? spread : get_float8_nan();
		(*costs)[2 * i + 1] = !IS_NULL(BULK_RUNTIME_ESTIMATE_S) ?
			tinytemp_rank_cost(DatumGetFloat8(VALUE(BULK_RUNTIME_ESTIMATE_S)), -1, 0) :
			isnan((*predicted)[i]) ? 0 : tinytemp_rank_cost((*predicted)[i], spread, 0);
#undef VALUE
#undef IS_NULL
	}
	return n;
}

/*
 * tinytemp_enqueue_many(jobs jsonb): enqueue a JSON array of jobs, each an
 * object whose keys are tinytemp_enqueue's argument names (left out or
 * null: the argument's default), in one statement: the same checks,
 * predictions, tenants, dependencies and history as that many calls of
 * tinytemp_enqueue, one notification per queue.  Returns the new jobs'
 * ids in the order of the array.  All or nothing.
 */
Datum
tinytemp_enqueue_many(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plans[2];
#define BULK_INSERT(COLUMNS, EXTRA) \
		"WITH x AS (" \
		"  SELECT e.ord, x.*, p.predicted, p.tenant AS owner, $5[(2 * e.ord - 1)::int] AS spread," \
		"    $5[(2 * e.ord)::int] AS cost" BULK_ROWS \
		"  JOIN unnest($2::float8[], $3::text[]) WITH ORDINALITY p(predicted, tenant, ord)" \
		"    ON p.ord = e.ord" \
		"), j AS (" \
		"  INSERT INTO tinytemp.jobs (" COLUMNS ")" \
		"  SELECT x.job_type, x.model, coalesce(x.params, '{}'), coalesce(x.priority, 0)," \
		"    x.dataset_size, x.epochs, x.batch_size, coalesce(x.cpus, 1), coalesce(x.memory_mb, 1024)," \
		"    coalesce(x.gpus, 0), x.gpu_type, 1, coalesce(x.max_attempts, 5)," \
		"    coalesce(x.queue, 'default'), x.owner, coalesce(x.run_after, tinytemp.now())," \
		"    x.depends_on, x.runtime_estimate_s, x.placement_timeout, nullif(x.predicted, 'NaN')," \
		"    x.cost + $4 * extract(epoch FROM coalesce(x.run_after, tinytemp.now()))::float8," \
		"    tinytemp.now(), tinytemp.now()" EXTRA \
		"  FROM x ORDER BY x.ord" \
		"  RETURNING id, run_after, queue" \
		"), h AS (" \
		"  INSERT INTO tinytemp.jobs_history (job_id, event, detail)" \
		"  SELECT id, 'enqueued'," \
		"    CASE WHEN run_after > tinytemp.now() THEN jsonb_build_object('run_after', run_after) END" \
		"  FROM j" \
		") SELECT id, queue FROM j ORDER BY id"
	/* by whether the schema is 0.8's or later */
	static const char *const sql[2] = {
		BULK_INSERT(ENQUEUE_COLUMNS, ""),
		BULK_INSERT(ENQUEUE_COLUMNS_08, ", nullif(x.spread, 'NaN')")
	};
	int			v08;
	Oid			argtypes[5] = {JSONBOID, FLOAT8ARRAYOID, TEXTARRAYOID, FLOAT8OID, FLOAT8ARRAYOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TinytempCaller caller;
	double	   *predicted;
	double	   *costs;
	Datum	   *tenants;
	bool	   *tenant_nulls;
	Datum	   *preds;
	int			dims[1];
	int			lbs[1] = {1};
	int			n;
	char	   *last_queue = NULL;
	Datum	   *inputs;
	int64	   *ids;

	tinytemp_require_arg(fcinfo, 0, "jobs");
	{
		Jsonb	   *jobs = PG_GETARG_JSONB_P(0);

		if (!JB_ROOT_IS_ARRAY(jobs) || JB_ROOT_IS_SCALAR(jobs))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("jobs must be a JSON array of job objects"));
	}
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	n = check_bulk(PG_GETARG_DATUM(0), &caller, &predicted, &costs, &tenants, &tenant_nulls,
				   &inputs);
	if (n > 0)
	{
		preds = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
			preds[i] = Float8GetDatum(predicted[i]);
		dims[0] = n;
		values[0] = PG_GETARG_DATUM(0);
		values[1] = PointerGetDatum(construct_array(preds, n, FLOAT8OID, sizeof(float8),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[2] = PointerGetDatum(construct_md_array(tenants, tenant_nulls, 1, dims, lbs,
													   TEXTOID, -1, false, TYPALIGN_INT));
		values[3] = Float8GetDatum(tinytemp_aging_rate);
		values[4] = tinytemp_float8_array(costs, 2 * n);
		v08 = tinytemp_schema_has_service();
		tinytemp_spi_execute(tinytemp_plan(&plans[v08], sql[v08], 5, argtypes), values, nulls,
							 SPI_OK_SELECT);
		if ((int) SPI_processed != n)
			elog(ERROR, "tinytemp_enqueue_many inserted " UINT64_FORMAT " jobs of %d",
				 SPI_processed, n);
		ids = palloc(sizeof(int64) * n);
		for (int i = 0; i < n; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Datum		id = SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull);
			char	   *queue = SPI_getvalue(t, SPI_tuptable->tupdesc, 2);

			ids[i] = DatumGetInt64(id);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &isnull);
			if (last_queue == NULL || strcmp(queue, last_queue) != 0)
				tinytemp_notify_enqueued(queue);
			last_queue = queue;
		}
		/* The jobs that declared inputs, in the array's order (the ids follow it). */
		for (int i = 0; i < n; i++)
			if (inputs[i] != (Datum) 0)
				tinytemp_attach_inputs(ids[i], DatumGetArrayTypeP(inputs[i]), &caller,
									   tenant_nulls[i] ? NULL : TextDatumGetCString(tenants[i]));
	}
	SPI_finish();
	tinytemp_leave(&caller);
	return (Datum) 0;
}

#define MAX_ACKS_PER_CALL 1000

static uint64 acked_in_xact = 0;
static bool ack_callback_registered = false;

/* At commit, hand this transaction's acks to the background worker's count. */
static void
publish_runtimes(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && acked_in_xact > 0)
		pg_atomic_fetch_add_u64(&tinytemp_shared->new_runtimes, acked_in_xact);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		acked_in_xact = 0;
}

/*
 * Count n new measured runtimes for the background worker, which retrains
 * the predictor once enough have committed.
 */
static void
count_runtimes_at_commit(int n)
{
	if (tinytemp_shared == NULL)
		return;
	if (!ack_callback_registered)
	{
		RegisterXactCallback(publish_runtimes, NULL);
		ack_callback_registered = true;
	}
	acked_in_xact += n;
}

/*
 * Mark the jobs `job_ids` that `worker_id` holds as succeeded, with their
 * results (NULL: none), in one statement.  When the worker does not hold
 * one of them, raise as tinytemp_raise_not_held does for the first such job; the
 * error rolls back the whole statement, so no job of the call is acked.
 */
static void
ack_jobs(FunctionCallInfo fcinfo, Datum job_ids, int njobs, int64 worker_id, Datum results,
		 bool results_isnull)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH u AS ("
		"  UPDATE tinytemp.jobs SET state = 'succeeded', result = ($3)[array_position($1, id)],"
		"    finished_at = tinytemp.now(), updated_at = tinytemp.now(), lease_until = NULL,"
		"    preempt_requested_at = NULL, preempt_notified_at = NULL"
		"  WHERE id = ANY ($1) AND worker_id = $2 AND state = 'running'"
		"  RETURNING id, attempts, started_at"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'acked', $2, jsonb_build_object('attempt', attempts,"
		"    'runtime_s', extract(epoch FROM tinytemp.now() - started_at))"
		"  FROM u"
		") SELECT a.id FROM unnest($1) a(id) WHERE a.id NOT IN (SELECT id FROM u) LIMIT 1";
	Oid			argtypes[3] = {INT8ARRAYOID, INT8OID, JSONBARRAYOID};
	Datum		values[3] = {job_ids, Int64GetDatum(worker_id), results};
	char		nulls[3] = {' ', ' ', results_isnull ? 'n' : ' '};
	bool		isnull;
	TinytempCaller caller;

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_require_worker(&caller, worker_id);
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 3, argtypes), values, nulls, SPI_OK_SELECT);
	if (SPI_processed > 0)
		tinytemp_raise_not_held(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull)),
					   worker_id);
	SPI_finish();
	tinytemp_leave(&caller);

	count_runtimes_at_commit(njobs);
}

/* tinytemp_ack(job_id, worker_id, result): the job succeeded. */
Datum
tinytemp_ack(PG_FUNCTION_ARGS)
{
	Datum		job_id;
	Datum		result;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	job_id = PG_GETARG_DATUM(0);
	result = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);

	ack_jobs(fcinfo,
			 PointerGetDatum(construct_array(&job_id, 1, INT8OID, sizeof(int64),
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
			 1, PG_GETARG_INT64(1),
			 PG_ARGISNULL(2) ? (Datum) 0 :
			 PointerGetDatum(construct_array(&result, 1, JSONBOID, -1, false, TYPALIGN_INT)),
			 PG_ARGISNULL(2));
	PG_RETURN_VOID();
}

/*
 * tinytemp_ack_many(job_ids, worker_id, results): several jobs succeeded,
 * acked in one statement and one commit.  results, when given, pairs with
 * job_ids.  All or nothing: a job the worker does not hold fails the call.
 */
Datum
tinytemp_ack_many(PG_FUNCTION_ARGS)
{
	tinytemp_require_arg(fcinfo, 0, "job_ids");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	PG_RETURN_INT32(tinytemp_ack_array(fcinfo, 0, PG_GETARG_INT64(1), 2));
}

/*
 * Ack the jobs of the bigint[] argument ids_arg, with the results of the
 * jsonb[] argument results_arg (NULL: none), for worker_id, as
 * tinytemp_ack_many does; returns how many.  Checks the arrays first.
 */
int
tinytemp_ack_array(FunctionCallInfo fcinfo, int ids_arg, int64 worker_id, int results_arg)
{
	ArrayType  *ids;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;

	ids = PG_GETARG_ARRAYTYPE_P(ids_arg);
	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("job_ids must be a one-dimensional array"));
	deconstruct_array(ids, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &n);
	if (n > MAX_ACKS_PER_CALL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("at most %d jobs can be acked in one call", MAX_ACKS_PER_CALL));
	for (int i = 0; i < n; i++)
	{
		if (elem_nulls[i])
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("job_ids must not contain nulls"));
		for (int j = 0; j < i; j++)
			if (elems[j] == elems[i])
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("job " INT64_FORMAT " appears twice in job_ids",
							   DatumGetInt64(elems[i])));
	}
	if (!PG_ARGISNULL(results_arg))
	{
		ArrayType  *results = PG_GETARG_ARRAYTYPE_P(results_arg);

		if (ARR_NDIM(results) > 1 || ArrayGetNItems(ARR_NDIM(results), ARR_DIMS(results)) != n)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("results must be a one-dimensional array as long as job_ids"));
	}

	if (n > 0)
		ack_jobs(fcinfo, PointerGetDatum(ids), n, worker_id,
				 PG_ARGISNULL(results_arg) ? (Datum) 0 : PG_GETARG_DATUM(results_arg),
				 PG_ARGISNULL(results_arg));
	return n;
}

/*
 * A gang runs as a whole: when member `failed_id` fails, the others that
 * hold a worker go back to pending with it (new_state 'pending'), or all
 * the unfinished ones fail with it (new_state 'failed').  Their workers'
 * next reports are refused (TT003), which stops their handlers.
 */
static void
fail_gang_members(int64 gang_id, int64 failed_id, const char *new_state)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH x AS ("
		"  SELECT id, state, worker_id FROM tinytemp.jobs"
		"  WHERE gang_id = $1 AND id <> $2"
		"    AND state IN ('assigned', 'running', CASE WHEN $3 = 'failed' THEN 'pending' END)"
		"  FOR UPDATE"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = $3, lease_until = NULL, preempt_requested_at = NULL,"
		"    preempt_notified_at = NULL,"
		"    worker_id = CASE WHEN $3 = 'pending' THEN NULL ELSE j.worker_id END,"
		"    run_after = CASE WHEN $3 = 'pending'"
		"      THEN (SELECT run_after FROM tinytemp.jobs WHERE id = $2) ELSE j.run_after END,"
		"    finished_at = CASE WHEN $3 = 'failed' THEN tinytemp.now() END,"
		"    last_error = 'gang member ' || $2 || ' failed', updated_at = tinytemp.now()"
		"  FROM x WHERE j.id = x.id"
		"  RETURNING j.id, x.state AS prior_state, x.worker_id"
		") INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, CASE WHEN $3 = 'pending' THEN 'requeued' ELSE 'dead_lettered' END, worker_id,"
		"    jsonb_build_object('reason', 'gang member failed', 'member', $2,"
		"      'prior_state', prior_state)"
		"  FROM u";
	Oid			argtypes[3] = {INT8OID, INT8OID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(gang_id);
	values[1] = Int64GetDatum(failed_id);
	values[2] = CStringGetTextDatum(new_state);
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 3, argtypes), values, NULL, SPI_OK_INSERT);
}

/*
 * tinytemp_fail(job_id, worker_id, error, retryable): the attempt failed.
 * Returns the job's new state: 'pending' when it will be retried after a
 * backoff, 'failed' when it is dead-lettered.
 */
Datum
tinytemp_fail(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	static const char *update_sql =
		"WITH u AS ("
		"  UPDATE tinytemp.jobs SET state = $2, last_error = $4, lease_until = NULL,"
		"    updated_at = tinytemp.now(), preempt_requested_at = NULL, preempt_notified_at = NULL,"
		"    run_after = CASE WHEN $2 = 'pending' THEN tinytemp.now() + make_interval(secs => $3)"
		"                ELSE run_after END,"
		"    worker_id = CASE WHEN $2 = 'pending' THEN NULL ELSE worker_id END,"
		"    finished_at = CASE WHEN $2 = 'failed' THEN tinytemp.now() END"
		"  WHERE id = $1"
		"  RETURNING id, run_after"
		") INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT u.id, e.event, $5, e.detail FROM u, LATERAL (VALUES"
		"    ('failed', jsonb_build_object('error', $4, 'attempt', $6, 'retryable', $7)),"
		"    (CASE WHEN $2 = 'pending' THEN 'retried' ELSE 'dead_lettered' END,"
		"     CASE WHEN $2 = 'pending'"
		"       THEN jsonb_build_object('run_after', u.run_after, 'delay_s', round($3::numeric, 3))"
		"       ELSE jsonb_build_object('attempts', $6) END)"
		"  ) e(event, detail)";
	Oid			lock_types[1] = {INT8OID};
	Oid			update_types[7] = {INT8OID, TEXTOID, FLOAT8OID, TEXTOID, INT8OID, INT4OID, BOOLOID};
	Datum		values[7];
	int64		job_id;
	int64		worker_id;
	bool		retryable;
	bool		isnull;
	bool		unheld;
	HeapTuple	tuple;
	TupleDesc	desc;
	char	   *state;
	Datum		holder;
	int32		attempts;
	int32		max_attempts;
	const char *new_state;
	double		delay_s = 0;
	int64		gang_id;
	uint64		row;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	tinytemp_require_arg(fcinfo, 2, "error");
	tinytemp_require_arg(fcinfo, 3, "retryable");
	job_id = PG_GETARG_INT64(0);
	worker_id = PG_GETARG_INT64(1);
	retryable = PG_GETARG_BOOL(3);

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_require_worker(&caller, worker_id);
	values[0] = Int64GetDatum(job_id);

	/*
	 * A gang member's failure changes every member: lock them all, in id
	 * order, as every gang-wide change does, before reading this one.  Two
	 * members failing at once then queue on the first member, and neither
	 * holds a row the other waits for.  gang_id never changes.
	 */
	tinytemp_spi_execute(tinytemp_plan(&lock_plan,
									   "SELECT state, worker_id, attempts, max_attempts, gang_id, id"
									   " FROM tinytemp.jobs"
									   " WHERE id = $1 OR gang_id = (SELECT gang_id FROM tinytemp.jobs"
									   "   WHERE id = $1 AND gang_id IS NOT NULL)"
									   " ORDER BY id FOR UPDATE",
									   1, lock_types),
						 values, NULL, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
		if (tinytemp_get_int64(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 6, 0) == job_id)
			break;
	if (row == SPI_processed)
		tinytemp_raise_not_held(job_id, worker_id);
	tuple = SPI_tuptable->vals[row];
	desc = SPI_tuptable->tupdesc;
	state = SPI_getvalue(tuple, desc, 1);
	holder = SPI_getbinval(tuple, desc, 2, &unheld);
	attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	max_attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	gang_id = tinytemp_get_int64(tuple, desc, 5, 0);

	if (unheld || DatumGetInt64(holder) != worker_id || strcmp(state, "running") != 0)
	{
		/* A job cancelled while it ran: the worker's report changes nothing. */
		if (!unheld && DatumGetInt64(holder) == worker_id && strcmp(state, "cancelled") == 0)
		{
			SPI_finish();
			tinytemp_leave(&caller);
			PG_RETURN_TEXT_P(cstring_to_text("cancelled"));
		}
		tinytemp_raise_not_held(job_id, worker_id);
	}

	if (retryable && attempts < max_attempts)
	{
		new_state = "pending";
		delay_s = retry_delay_ms(attempts) / 1000.0;
	}
	else
		new_state = "failed";

	values[1] = CStringGetTextDatum(new_state);
	values[2] = Float8GetDatum(delay_s);
	values[3] = PG_GETARG_DATUM(2);
	values[4] = Int64GetDatum(worker_id);
	values[5] = Int32GetDatum(attempts);
	values[6] = BoolGetDatum(retryable);
	tinytemp_spi_execute(tinytemp_plan(&update_plan, update_sql, 7, update_types),
						 values, NULL, SPI_OK_INSERT);
	if (gang_id != 0)
		fail_gang_members(gang_id, job_id, new_state);
	SPI_finish();
	tinytemp_leave(&caller);

	PG_RETURN_TEXT_P(cstring_to_text(new_state));
}

/*
 * tinytemp_checkpoint(job_id, worker_id, checkpoint): save where a running
 * job has got to.  The checkpoint stays with the job, so the run that
 * follows a failure, a lost lease or a preemption receives it in the
 * claimed row and resumes from it.  Once a heartbeat has answered
 * 'preempt', this is the worker's answer: the job goes back to pending with
 * the checkpoint, and the preempted run does not count as an attempt.  A
 * checkpoint saved before the worker heard 'preempt' only saves.
 */
Datum
tinytemp_checkpoint(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plans[2];
#define CHECKPOINT_SQL(SERVICE, ATTAINED) \
		"WITH u AS (" \
		"  UPDATE tinytemp.jobs j SET checkpoint = $3, updated_at = tinytemp.now()," \
		"    state = CASE WHEN j.preempt_notified_at IS NOT NULL THEN 'pending' ELSE 'running' END," \
		"    worker_id = CASE WHEN j.preempt_notified_at IS NOT NULL THEN NULL ELSE j.worker_id END," \
		"    lease_until = CASE WHEN j.preempt_notified_at IS NOT NULL THEN NULL ELSE j.lease_until END," \
		"    attempts = CASE WHEN j.preempt_notified_at IS NOT NULL THEN j.attempts - 1 ELSE j.attempts END," \
		"    preemptions = j.preemptions + (j.preempt_notified_at IS NOT NULL)::int," SERVICE \
		"    run_after = CASE WHEN j.preempt_notified_at IS NOT NULL THEN tinytemp.now() ELSE j.run_after END," \
		"    predicted_end_at = CASE WHEN j.preempt_notified_at IS NOT NULL THEN NULL ELSE j.predicted_end_at END," \
		"    preempt_requested_at = CASE WHEN j.preempt_notified_at IS NOT NULL THEN NULL" \
		"      ELSE j.preempt_requested_at END," \
		"    preempt_notified_at = NULL" \
		"  WHERE j.id = $1 AND j.worker_id = $2 AND j.state = 'running'" \
		"  RETURNING j.id, j.attempts, j.state, j.queue, j.preemptions, " ATTAINED " AS attained_s" \
		"), h AS (" \
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)" \
		"  SELECT id, CASE WHEN state = 'pending' THEN 'preempted' ELSE 'checkpointed' END, $2," \
		"    CASE WHEN state = 'pending'" \
		"      THEN jsonb_strip_nulls(jsonb_build_object('preemptions', preemptions, 'forced', false," \
		"        'attained_s', round(attained_s::numeric, 3)))" \
		"      ELSE jsonb_build_object('attempt', attempts) END" \
		"  FROM u" \
		") SELECT state, queue FROM u"
	/* by whether the schema is 0.8's or later, with the service a preempted job has had */
	static const char *const sql[2] = {
		CHECKPOINT_SQL("", "NULL::float8"),
		CHECKPOINT_SQL("    attained_s = CASE WHEN j.preempt_notified_at IS NOT NULL"
					   "      THEN " TINYTEMP_REQUEUED_ATTAINED " ELSE j.attained_s END,"
					   "    rank_key = CASE WHEN j.preempt_notified_at IS NOT NULL"
					   "      THEN " TINYTEMP_REQUEUED_RANK_KEY("$4") " ELSE j.rank_key END,",
					   "j.attained_s")
	};
	int			v08;
	Oid			argtypes[4] = {INT8OID, INT8OID, JSONBOID, FLOAT8OID};
	Datum		values[4];
	char	   *queue = NULL;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	tinytemp_require_arg(fcinfo, 2, "checkpoint");
	for (int i = 0; i < 3; i++)
		values[i] = PG_GETARG_DATUM(i);
	values[3] = Float8GetDatum(tinytemp_aging_rate);

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_require_worker(&caller, PG_GETARG_INT64(1));
	v08 = tinytemp_schema_has_service();
	tinytemp_spi_execute(tinytemp_plan(&plans[v08], sql[v08], 4, argtypes), values, NULL,
						 SPI_OK_SELECT);
	if (SPI_processed == 0)
		tinytemp_raise_not_held(PG_GETARG_INT64(0), PG_GETARG_INT64(1));
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "pending") == 0)
		queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (queue)
		queue = strcpy(SPI_palloc(strlen(queue) + 1), queue);
	SPI_finish();
	if (queue)
		tinytemp_notify_enqueued(queue);
	tinytemp_leave(&caller);
	PG_RETURN_VOID();
}

/*
 * tinytemp_heartbeat(job_id, worker_id, progress): renew the lease.
 * Answers 'continue'; 'preempt' once the planner wants the job's resources
 * (the worker saves a checkpoint with tinytemp_checkpoint, which gives the
 * job back); 'cancel' once the job was cancelled.
 */
Datum
tinytemp_heartbeat(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr renew_plan = NULL;
	static SPIPlanPtr cancelled_plan = NULL;
	Oid			argtypes[4] = {INT8OID, INT8OID, FLOAT8OID, JSONBOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		job_id;
	int64		worker_id;
	bool		isnull;
	const char *answer = "continue";
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	job_id = PG_GETARG_INT64(0);
	worker_id = PG_GETARG_INT64(1);
	values[0] = Int64GetDatum(job_id);
	values[1] = Int64GetDatum(worker_id);
	values[2] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	values[3] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[3] = PG_ARGISNULL(2) ? 'n' : ' ';

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_require_worker(&caller, worker_id);
	tinytemp_spi_execute(tinytemp_plan(&renew_plan,
									   "UPDATE tinytemp.jobs SET heartbeat_at = tinytemp.now(),"
									   "  lease_until = tinytemp.now() + make_interval(secs => $3),"
									   "  progress = coalesce($4, progress),"
									   "  preempt_notified_at = CASE WHEN preempt_requested_at IS NOT NULL"
									   "    THEN coalesce(preempt_notified_at, tinytemp.now()) END"
									   " WHERE id = $1 AND worker_id = $2 AND state = 'running'"
									   " RETURNING preempt_requested_at IS NOT NULL",
									   4, argtypes),
						 values, nulls, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed > 0)
	{
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			answer = "preempt";
	}
	else
	{
		tinytemp_spi_execute(tinytemp_plan(&cancelled_plan,
										   "SELECT 1 FROM tinytemp.jobs"
										   " WHERE id = $1 AND worker_id = $2 AND state = 'cancelled'",
										   2, argtypes),
							 values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			tinytemp_raise_not_held(job_id, worker_id);
		answer = "cancel";
	}
	SPI_finish();
	tinytemp_leave(&caller);

	PG_RETURN_TEXT_P(cstring_to_text(answer));
}

/*
 * tinytemp_cancel(job_id): cancel a job that has not finished, with the
 * rest of its gang.  A pending job never runs; a running one is told
 * 'cancel' at its next heartbeat.
 * Returns false when the job had already finished.
 */
Datum
tinytemp_cancel(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH o AS ("
		"  SELECT id, state, worker_id FROM tinytemp.jobs"
		"  WHERE id = $1 OR gang_id = (SELECT gang_id FROM tinytemp.jobs WHERE id = $1)"
		"  ORDER BY id FOR UPDATE"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'cancelled', finished_at = tinytemp.now(),"
		"    updated_at = tinytemp.now(), lease_until = NULL, preempt_requested_at = NULL,"
		"    preempt_notified_at = NULL"
		"  FROM o WHERE j.id = o.id AND o.state IN ('pending', 'assigned', 'running')"
		"  RETURNING j.id, o.state AS prior_state, o.worker_id"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'cancelled', worker_id, jsonb_build_object('prior_state', prior_state)"
		"  FROM u"
		") SELECT (SELECT count(*) FROM o WHERE id = $1), (SELECT count(*) FROM u)";
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int64		found;
	int64		cancelled;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	values[0] = PG_GETARG_DATUM(0);

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	if (!caller.admin)
	{
		static SPIPlanPtr tenant_plan = NULL;

		tinytemp_spi_execute(tinytemp_plan(&tenant_plan,
										   "SELECT tenant FROM tinytemp.jobs WHERE id = $1",
										   1, argtypes),
							 values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
			tinytemp_require_tenant(&caller,
									SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
									"cancel jobs");
	}
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	cancelled = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	tinytemp_leave(&caller);

	if (found == 0)
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_JOB),
				errmsg("job " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)));
	PG_RETURN_BOOL(cancelled > 0);
}

/*
 * tinytemp_retry(job_id): put a dead-lettered job back in the queue with
 * its attempts reset, with the rest of its gang.  Returns false when the job is not dead-lettered.
 */
Datum
tinytemp_retry(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH o AS ("
		"  SELECT id, state, attempts FROM tinytemp.jobs"
		"  WHERE id = $1 OR gang_id = (SELECT gang_id FROM tinytemp.jobs WHERE id = $1)"
		"  ORDER BY id FOR UPDATE"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'pending', attempts = 0, run_after = tinytemp.now(),"
		"    finished_at = NULL, worker_id = NULL, updated_at = tinytemp.now()"
		"  FROM o WHERE j.id = o.id AND o.state = 'failed'"
		"  RETURNING j.id, j.queue, o.attempts"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, detail)"
		"  SELECT id, 'requeued', jsonb_build_object('reason', 'manual retry',"
		"    'previous_attempts', attempts)"
		"  FROM u"
		") SELECT (SELECT count(*) FROM o WHERE id = $1), (SELECT count(*) FROM u),"
		"  (SELECT queue FROM u LIMIT 1)";
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int64		found;
	int64		requeued;
	char	   *queue;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	values[0] = PG_GETARG_DATUM(0);

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	requeued = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (queue)
		queue = strcpy(SPI_palloc(strlen(queue) + 1), queue);
	SPI_finish();
	tinytemp_leave(&caller);

	if (found == 0)
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_JOB),
				errmsg("job " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)));
	if (queue)
		tinytemp_notify_enqueued(queue);
	PG_RETURN_BOOL(requeued > 0);
}

/* tinytemp_retry_delay(attempt): one draw of the backoff after that attempt. */
Datum
tinytemp_retry_delay(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	tinytemp_require_positive(PG_GETARG_INT32(0), "attempt");
	result->time = (TimeOffset) (retry_delay_ms(PG_GETARG_INT32(0)) * 1000.0);
	PG_RETURN_INTERVAL_P(result);
}

/*
 * util.c
 *	  SPI plan caching and argument checks shared by the SQL API.
 */
#include "tinytemp.h"

#include "catalog/namespace.h"
#include "utils/lsyscache.h"

#include "utils/jsonb.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

/* Return the cached plan for sql, preparing and keeping it on first use. */
SPIPlanPtr
tinytemp_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (*cache != NULL)
		return *cache;

	/*
	 * Always the generic plan: our statements are shaped so that it is the
	 * right one whatever the parameters, and replanning on every call, as a
	 * custom plan does, would cost more than the statement itself.
	 */
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/* Execute a kept plan and check that it reports the expected SPI result. */
void
tinytemp_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan returned %s", SPI_result_code_string(rc));
}

/* Raise 55000: the library met the schema of an older version, before ALTER EXTENSION UPDATE. */
void
tinytemp_raise_outdated_schema(void)
{
	ereport(ERROR,
			errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			errmsg("the tinytemp extension in this database is older than its library"),
			errhint("Run ALTER EXTENSION tinytemp UPDATE."));
}

/*
 * Whether the schema is 0.8's or later (jobs have attained_s): before
 * ALTER EXTENSION UPDATE the library ranks and requeues jobs as 0.7 did.
 * An update never takes the column away, so a table once found with it is
 * remembered and only looked up by name (a new CREATE EXTENSION makes a
 * new table).
 */
bool
tinytemp_schema_has_service(void)
{
	static Oid	jobs_with_service = InvalidOid;
	Oid			jobs = get_relname_relid("jobs", get_namespace_oid("tinytemp", false));

	if (OidIsValid(jobs) && jobs == jobs_with_service)
		return true;
	if (get_attnum(jobs, "attained_s") == InvalidAttrNumber)
		return false;
	jobs_with_service = jobs;
	return true;
}

/* Raise 22004 when a required argument is NULL. */
void
tinytemp_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("%s must not be null", name));
}

/* Raise 22023 unless value > 0. */
void
tinytemp_require_positive(int64 value, const char *name)
{
	if (value <= 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be greater than zero", name),
				errdetail("The value given was " INT64_FORMAT ".", value));
}

/* Raise 22023 unless value >= 0. */
void
tinytemp_require_nonnegative(int64 value, const char *name)
{
	if (value < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be negative", name),
				errdetail("The value given was " INT64_FORMAT ".", value));
}

/* A column's value as int64 (col, from 1, for the error). */
static int64
int64_of(Datum d, Oid type, int col)
{
	switch (type)
	{
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		case NUMERICOID:
			return DatumGetInt64(DirectFunctionCall1(numeric_int8, d));
		default:
			elog(ERROR, "column %d is not an integer", col);
	}
	return 0;
}

/* A column's value as float8 (col, from 1, for the error). */
static double
float8_of(Datum d, Oid type, int col)
{
	if (type != FLOAT8OID)
		elog(ERROR, "column %d is not float8", col);
	return DatumGetFloat8(d);
}

/* Column `col` (from 1) of an SPI row as int64, or dflt when NULL. */
int64
tinytemp_get_int64(HeapTuple tuple, TupleDesc desc, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? dflt : int64_of(d, SPI_gettypeid(desc, col), col);
}

/* Column `col` of an SPI row as float8, or dflt when NULL. */
double
tinytemp_get_float8(HeapTuple tuple, TupleDesc desc, int col, double dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	return isnull ? dflt : float8_of(d, SPI_gettypeid(desc, col), col);
}

/* Room for the rows of an SPI result of desc (tinytemp_row_read). */
void
tinytemp_row_init(TinytempRow *row, TupleDesc desc)
{
	row->desc = desc;
	row->values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	row->nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
}

/*
 * Take out every column of tuple at once: read one by one, each column
 * after a NULL is a walk of the row from its start.
 */
void
tinytemp_row_read(TinytempRow *row, HeapTuple tuple)
{
	heap_deform_tuple(tuple, row->desc, row->values, row->nulls);
}

/* Column `col` (from 1) of a row as int64, or dflt when NULL. */
int64
tinytemp_row_int64(const TinytempRow *row, int col, int64 dflt)
{
	return row->nulls[col - 1] ? dflt :
		int64_of(row->values[col - 1], TupleDescAttr(row->desc, col - 1)->atttypid, col);
}

/* Column `col` of a row as float8, or dflt when NULL. */
double
tinytemp_row_float8(const TinytempRow *row, int col, double dflt)
{
	return row->nulls[col - 1] ? dflt :
		float8_of(row->values[col - 1], TupleDescAttr(row->desc, col - 1)->atttypid, col);
}

/* Column `col` of a row as text, as SPI_getvalue gives it (NULL when NULL). */
char *
tinytemp_row_text(const TinytempRow *row, int col)
{
	Oid			type = TupleDescAttr(row->desc, col - 1)->atttypid;
	Oid			output;
	bool		varlena;

	if (row->nulls[col - 1])
		return NULL;
	if (type == TEXTOID)
		return TextDatumGetCString(row->values[col - 1]);
	getTypeOutputInfo(type, &output, &varlena);
	return OidOutputFunctionCall(output, row->values[col - 1]);
}

/* Column `col` of an SPI row as a timestamptz, or dflt when NULL. */
TimestampTz
tinytemp_get_timestamptz(HeapTuple tuple, TupleDesc desc, int col, TimestampTz dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	if (isnull)
		return dflt;
	if (SPI_gettypeid(desc, col) != TIMESTAMPTZOID)
		elog(ERROR, "column %d is not timestamptz", col);
	return DatumGetTimestampTz(d);
}

/*
 * A job's predictor inputs from columns first..first+8 of a row, in the
 * order job_type, model, dataset_size, epochs, batch_size, cpus, gpus,
 * gpu_type, memory_mb.
 */
void
tinytemp_row_spec(const TinytempRow *row, int first, TinytempJobSpec *spec)
{
	spec->job_type = tinytemp_row_text(row, first);
	spec->model = tinytemp_row_text(row, first + 1);
	spec->dataset_size = (double) tinytemp_row_int64(row, first + 2, -1);
	spec->epochs = (double) tinytemp_row_int64(row, first + 3, -1);
	spec->batch_size = (double) tinytemp_row_int64(row, first + 4, -1);
	spec->cpus = (double) tinytemp_row_int64(row, first + 5, -1);
	spec->gpus = (double) tinytemp_row_int64(row, first + 6, -1);
	spec->gpu_type = tinytemp_row_text(row, first + 7);
	spec->memory_mb = (double) tinytemp_row_int64(row, first + 8, -1);
	spec->who = NULL;
}

/* The same from an SPI row. */
void
tinytemp_get_spec(HeapTuple tuple, TupleDesc desc, int first, TinytempJobSpec *spec)
{
	TinytempRow row;

	tinytemp_row_init(&row, desc);
	tinytemp_row_read(&row, tuple);
	tinytemp_row_spec(&row, first, spec);
	pfree(row.values);
	pfree(row.nulls);
}

/* A bigint[] of n values, for an SPI parameter. */
Datum
tinytemp_int8_array(const int64 *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* A float8[] of n values, for an SPI parameter. */
Datum
tinytemp_float8_array(const double *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, sizeof(float8),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * The first key of a JSON object that is none of the allowed ones, as a
 * palloc'd string, or NULL when every key is allowed.
 */
char *
tinytemp_jsonb_unknown_key(JsonbContainer *obj, const char *const *allowed, int nallowed)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (int k = 0; k < nallowed; k++)
			known |= (int) strlen(allowed[k]) == v.val.string.len &&
				strncmp(allowed[k], v.val.string.val, v.val.string.len) == 0;
		if (!known)
			return pnstrdup(v.val.string.val, Min(v.val.string.len, 64));
	}
	return NULL;
}

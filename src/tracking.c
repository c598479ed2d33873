/*
 * tracking.c
 *	  Experiment tracking: what a handler reports while it runs, its
 *	  metrics per step and its output lines, stored next to the job by the
 *	  worker that holds it.
 *
 * Both calls take a JSON array, check every element before anything is
 * written (a malformed report stores nothing), and write it in one
 * statement.  Logs are bounded per attempt by tinytemp.log_max_lines and
 * tinytemp.log_max_bytes: lines past the bounds are not kept, and the call
 * says how many it kept.
 */
#include "tinytemp.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(tinytemp_report_metrics);
PG_FUNCTION_INFO_V1(tinytemp_report_logs);

/* At most this many values (metrics) or lines (logs) in one report. */
#define MAX_REPORT_ROWS 100000
/* Longest metric name. */
#define MAX_KEY_CHARS 200

/* Columns of a report, built up element by element. */
typedef struct ReportRows
{
	int			n;
	int			size;
	Datum	   *values[4];
	bool	   *nulls[4];
} ReportRows;

static void
rows_init(ReportRows *rows)
{
	rows->n = 0;
	rows->size = 64;
	for (int c = 0; c < 4; c++)
	{
		rows->values[c] = palloc(sizeof(Datum) * rows->size);
		rows->nulls[c] = palloc(sizeof(bool) * rows->size);
	}
}

/* Room for one more row; its index. */
static int
rows_add(ReportRows *rows)
{
	if (rows->n >= MAX_REPORT_ROWS)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("a report may hold at most %d values or lines", MAX_REPORT_ROWS));
	if (rows->n == rows->size)
	{
		rows->size *= 2;
		for (int c = 0; c < 4; c++)
		{
			rows->values[c] = repalloc(rows->values[c], sizeof(Datum) * rows->size);
			rows->nulls[c] = repalloc(rows->nulls[c], sizeof(bool) * rows->size);
		}
	}
	return rows->n++;
}

/* Column c of the rows as a one-dimensional array of type. */
static Datum
rows_array(const ReportRows *rows, int c, Oid type)
{
	int			dims[1] = {rows->n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(rows->values[c], rows->nulls[c], 1, dims, lbs,
											  type, typlen, typbyval, typalign));
}

/*
 * The report's array (argument 2), after checking that the job, the worker
 * and the report are given (22004) and that the report is an array (22023).
 */
static Jsonb *
report_array(FunctionCallInfo fcinfo, const char *name)
{
	const int	argno = 2;
	Jsonb	   *jb;

	tinytemp_require_arg(fcinfo, 0, "job_id");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	tinytemp_require_arg(fcinfo, argno, name);
	jb = PG_GETARG_JSONB_P(argno);

	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be a JSON array", name));
	return jb;
}

/*
 * Element i of the report: an object with no key but the allowed ones.
 * Returns its container.
 */
static JsonbContainer *
report_element(Jsonb *jb, uint32 i, const char *name, const char *const *allowed, int nallowed)
{
	JsonbValue *el = getIthJsonbValueFromContainer(&jb->root, i);
	JsonbContainer *obj;
	char	   *unknown;

	if (el == NULL || el->type != jbvBinary || !JsonContainerIsObject(el->val.binary.data))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("element %u of %s must be a JSON object", i + 1, name));
	obj = el->val.binary.data;
	if ((unknown = tinytemp_jsonb_unknown_key(obj, allowed, nallowed)) != NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("element %u of %s has an unknown key \"%s\"", i + 1, name, unknown),
				errhint("The keys are %s, %s and %s.", allowed[0], allowed[1], allowed[2]));
	return obj;
}

/* obj's member key, or false when absent or JSON null. */
static bool
member(JsonbContainer *obj, const char *key, JsonbValue *v)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), v) != NULL && v->type != jbvNull;
}

/* An element's "at": when the handler printed it (a timestamp string), or NULL. */
static void
element_time(JsonbContainer *obj, uint32 i, const char *name, Datum *value, bool *isnull)
{
	JsonbValue	v;
	char	   *s;

	*isnull = !member(obj, "at", &v);
	if (*isnull)
		return;
	if (v.type != jbvString)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("\"at\" of element %u of %s must be a timestamp string", i + 1, name));
	s = pnstrdup(v.val.string.val, v.val.string.len);
	*value = DirectFunctionCall3(timestamptz_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
								 Int32GetDatum(-1));
	pfree(s);
}

/*
 * tinytemp_report_metrics(job_id, worker_id, metrics): store what the
 * running job reported, metrics being
 *   [{"step": 12, "metrics": {"loss": 0.31, "accuracy": 0.9}, "at": "..."}, ...]
 * ("step" and "at" optional).  Returns how many values were stored.
 */
Datum
tinytemp_report_metrics(PG_FUNCTION_ARGS)
{
	static const char *const allowed[3] = {"step", "metrics", "at"};
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[6] = {INT8OID, INT4OID, INT8ARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID,
	TIMESTAMPTZARRAYOID};
	Datum		values[6];
	Jsonb	   *jb;
	uint32		n;
	ReportRows	rows;
	int			stored;
	TinytempCaller caller;

	jb = report_array(fcinfo, "metrics");
	n = JB_ROOT_COUNT(jb);
	rows_init(&rows);

	for (uint32 i = 0; i < n; i++)
	{
		JsonbContainer *obj = report_element(jb, i, "metrics", allowed, 3);
		JsonbValue	v;
		Datum		step = (Datum) 0;
		bool		no_step;
		Datum		at;
		bool		no_at;
		JsonbIterator *it;
		JsonbIteratorToken tok;
		JsonbValue	key;

		no_step = !member(obj, "step", &v);
		if (!no_step)
		{
			double		s = v.type == jbvNumeric ?
				DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric))) : NAN;

			if (!(s == floor(s) && fabs(s) < 9007199254740992.0))
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("\"step\" of element %u of metrics must be an integer", i + 1));
			step = Int64GetDatum((int64) s);
		}
		element_time(obj, i, "metrics", &at, &no_at);
		if (!member(obj, "metrics", &v) || v.type != jbvBinary ||
			!JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("element %u of metrics must have a \"metrics\" object", i + 1),
					errhint("For example {\"step\": 3, \"metrics\": {\"loss\": 0.31}}."));

		it = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			JsonbValue	value;
			int			r;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &value, true);
			if (key.val.string.len == 0 ||
				pg_mbstrlen_with_len(key.val.string.val, key.val.string.len) > MAX_KEY_CHARS)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("metric names in element %u of metrics must be 1 to %d characters long",
							   i + 1, MAX_KEY_CHARS));
			if (value.type != jbvNumeric)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("metric \"%.*s\" in element %u of metrics must be a number",
							   Min(key.val.string.len, 64), key.val.string.val, i + 1));
			r = rows_add(&rows);
			rows.values[0][r] = step;
			rows.nulls[0][r] = no_step;
			rows.values[1][r] = PointerGetDatum(cstring_to_text_with_len(key.val.string.val,
																		  key.val.string.len));
			rows.nulls[1][r] = false;
			rows.values[2][r] = DirectFunctionCall1(numeric_float8, NumericGetDatum(value.val.numeric));
			rows.nulls[2][r] = false;
			rows.values[3][r] = at;
			rows.nulls[3][r] = no_at;
		}
	}

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	values[0] = PG_GETARG_DATUM(0);
	values[1] = Int32GetDatum(tinytemp_held_attempt(&caller, PG_GETARG_INT64(0), PG_GETARG_INT64(1), NULL));
	values[2] = rows_array(&rows, 0, INT8OID);
	values[3] = rows_array(&rows, 1, TEXTOID);
	values[4] = rows_array(&rows, 2, FLOAT8OID);
	values[5] = rows_array(&rows, 3, TIMESTAMPTZOID);
	stored = 0;
	if (rows.n > 0)
	{
		tinytemp_spi_execute(tinytemp_plan(&plan,
										   "INSERT INTO tinytemp.job_metrics (job_id, attempt, step, key, value, at)"
										   " SELECT $1, $2, u.step, u.key, u.value, coalesce(u.at, tinytemp.now())"
										   " FROM unnest($3, $4, $5, $6) AS u(step, key, value, at)",
										   6, argtypes),
							 values, NULL, SPI_OK_INSERT);
		stored = (int) SPI_processed;
	}
	SPI_finish();
	tinytemp_leave(&caller);
	PG_RETURN_INT32(stored);
}

/*
 * tinytemp_report_logs(job_id, worker_id, lines): store the running job's
 * output lines, lines being
 *   [{"stream": "stdout", "line": "epoch 3 done", "at": "..."}, ...]
 * ("at" optional), in order after those already stored for the attempt,
 * as many as the attempt's bounds allow.  Returns how many were stored.
 */
Datum
tinytemp_report_logs(PG_FUNCTION_ARGS)
{
	static const char *const allowed[3] = {"stream", "line", "at"};
	static SPIPlanPtr used_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	Oid			argtypes[6] = {INT8OID, INT4OID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TIMESTAMPTZARRAYOID};
	Datum		values[6];
	Jsonb	   *jb;
	uint32		n;
	ReportRows	rows;
	int64		job_id;
	int64		lines_used;
	int64		bytes_used;
	int32		last_line;
	int			kept;
	TinytempCaller caller;

	jb = report_array(fcinfo, "lines");
	job_id = PG_GETARG_INT64(0);
	n = JB_ROOT_COUNT(jb);
	rows_init(&rows);

	for (uint32 i = 0; i < n; i++)
	{
		JsonbContainer *obj = report_element(jb, i, "lines", allowed, 3);
		JsonbValue	v;
		int			r;
		bool		is_stdout;

		if (!member(obj, "stream", &v) || v.type != jbvString ||
			!((is_stdout = (v.val.string.len == 6 && strncmp(v.val.string.val, "stdout", 6) == 0)) ||
			  (v.val.string.len == 6 && strncmp(v.val.string.val, "stderr", 6) == 0)))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("\"stream\" of element %u of lines must be \"stdout\" or \"stderr\"", i + 1));
		r = rows_add(&rows);
		rows.values[1][r] = CStringGetTextDatum(is_stdout ? "stdout" : "stderr");
		rows.nulls[1][r] = false;
		if (!member(obj, "line", &v) || v.type != jbvString)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("\"line\" of element %u of lines must be a string", i + 1));
		rows.values[2][r] = PointerGetDatum(cstring_to_text_with_len(v.val.string.val,
																	  v.val.string.len));
		rows.nulls[2][r] = false;
		element_time(obj, i, "lines", &rows.values[3][r], &rows.nulls[3][r]);
	}

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(tinytemp_held_attempt(&caller, job_id, PG_GETARG_INT64(1), NULL));

	/* Reports on one job take turns, so that line numbers follow each other. */
	tinytemp_lock(TINYTEMP_LOCK_JOB_LOGS, (uint64) job_id);
	tinytemp_spi_execute(tinytemp_plan(&used_plan,
									   "SELECT count(*), coalesce(sum(octet_length(line)), 0),"
									   " coalesce(max(line_no), 0)"
									   " FROM tinytemp.job_logs WHERE job_id = $1 AND attempt = $2",
									   2, argtypes),
						 values, NULL, SPI_OK_SELECT);
	lines_used = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0);
	bytes_used = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, 0);
	last_line = (int32) tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, 0);

	kept = 0;
	while (kept < rows.n && lines_used + kept < tinytemp_log_max_lines)
	{
		int64		len = VARSIZE_ANY_EXHDR(DatumGetPointer(rows.values[2][kept]));

		if (bytes_used + len > tinytemp_log_max_bytes)
			break;
		bytes_used += len;
		rows.values[0][kept] = Int32GetDatum(last_line + kept + 1);
		rows.nulls[0][kept] = false;
		kept++;
	}
	if (kept > 0)
	{
		rows.n = kept;
		values[2] = rows_array(&rows, 0, INT4OID);
		values[3] = rows_array(&rows, 1, TEXTOID);
		values[4] = rows_array(&rows, 2, TEXTOID);
		values[5] = rows_array(&rows, 3, TIMESTAMPTZOID);
		tinytemp_spi_execute(tinytemp_plan(&insert_plan,
										   "INSERT INTO tinytemp.job_logs (job_id, attempt, line_no, stream, line, at)"
										   " SELECT $1, $2, u.line_no, u.stream, u.line, coalesce(u.at, tinytemp.now())"
										   " FROM unnest($3, $4, $5, $6) AS u(line_no, stream, line, at)",
										   6, argtypes),
							 values, NULL, SPI_OK_INSERT);
	}
	SPI_finish();
	tinytemp_leave(&caller);
	PG_RETURN_INT32(kept);
}

/*
 * validate.c
 *	  The rules a job's request must keep, enforced by a trigger on
 *	  tinytemp.jobs for tinytemp_enqueue and direct writes alike.
 *
 * These rules are a BEFORE INSERT OR UPDATE OF trigger rather than table
 * CHECKs because PostgreSQL rebuilds every CHECK of a table for each
 * INSERT and UPDATE statement, and the claim and ack paths update jobs rows
 * many times a second without touching these columns: the trigger fires
 * only when a statement assigns one of them.
 */
#include "tinytemp.h"

#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(tinytemp_jobs_validate);

/* A column's value, or NULL, by name. */
static bool
get_column(HeapTuple tuple, TupleDesc desc, const char *name, Datum *value)
{
	int			attnum = SPI_fnumber(desc, name);
	bool		isnull;

	if (attnum <= 0)
		elog(ERROR, "tinytemp.jobs has no column \"%s\"", name);
	*value = heap_getattr(tuple, attnum, desc, &isnull);
	return !isnull;
}

/* Raise 22023 unless the integer column is at least `min` (NULL passes). */
static void
require_at_least(HeapTuple tuple, TupleDesc desc, const char *name, int64 min, bool is_int8)
{
	Datum		value;
	int64		v;

	if (!get_column(tuple, desc, name, &value))
		return;
	v = is_int8 ? DatumGetInt64(value) : DatumGetInt32(value);
	if (v < min)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				min == 0 ? errmsg("%s must not be negative", name) :
				errmsg("%s must be greater than zero", name),
				errdetail("The value given was " INT64_FORMAT ".", v));
}

/* Raise 22023 unless the text column is a label: 1 to 200 characters. */
static void
require_label(HeapTuple tuple, TupleDesc desc, const char *name)
{
	Datum		value;

	if (!get_column(tuple, desc, name, &value))
		return;
	if (VARSIZE_ANY_EXHDR(DatumGetPointer(value)) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be empty", name));
	if (DatumGetInt32(DirectFunctionCall1(textlen, value)) > 200)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be at most 200 characters long", name));
}

/* Trigger tinytemp.jobs_validate(): check a job's request before it is stored. */
Datum
tinytemp_jobs_validate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	Datum		value;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "tinytemp_jobs_validate must run as a BEFORE ROW trigger");

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);

	require_label(tuple, desc, "job_type");
	require_label(tuple, desc, "queue");
	if (get_column(tuple, desc, "params", &value))
	{
		Jsonb	   *params = DatumGetJsonbP(value);

		if (!JB_ROOT_IS_OBJECT(params) || JB_ROOT_IS_SCALAR(params))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("params must be a JSON object"));
	}
	require_at_least(tuple, desc, "dataset_size", 0, true);
	require_at_least(tuple, desc, "epochs", 1, false);
	require_at_least(tuple, desc, "batch_size", 1, false);
	require_at_least(tuple, desc, "cpus", 1, false);
	require_at_least(tuple, desc, "memory_mb", 1, true);
	require_at_least(tuple, desc, "gpus", 0, false);
	require_at_least(tuple, desc, "gang_size", 1, false);
	require_at_least(tuple, desc, "max_attempts", 1, false);
	if (get_column(tuple, desc, "predicted_runtime_s", &value) && !(DatumGetFloat8(value) >= 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("predicted_runtime_s must not be negative"));

	return PointerGetDatum(tuple);
}

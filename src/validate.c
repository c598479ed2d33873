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

/* A column of tinytemp.jobs, by name. */
static AttrNumber
column_number(TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "tinytemp.jobs has no column \"%s\"", name);
	return (AttrNumber) attnum;
}

/*
 * A row of tinytemp.jobs, its columns taken out at once: one by one, each
 * column after a NULL is a walk of the row from its start, and a job's row
 * has many NULLs.
 */
typedef struct JobRow
{
	Datum	   *values;
	bool	   *nulls;
} JobRow;

static void
deform_row(HeapTuple tuple, TupleDesc desc, JobRow *row)
{
	row->values = palloc(sizeof(Datum) * desc->natts);
	row->nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(tuple, desc, row->values, row->nulls);
}

/* A column's value, or NULL, by number (0: the column does not exist). */
static bool
get_column(const JobRow *row, AttrNumber attnum, Datum *value)
{
	if (attnum == InvalidAttrNumber || row->nulls[attnum - 1])
		return false;
	*value = row->values[attnum - 1];
	return true;
}

/* Whether a column is NULL. */
static inline bool
column_is_null(const JobRow *row, AttrNumber attnum)
{
	return row->nulls[attnum - 1];
}

/*
 * The row a BEFORE ... FOR EACH ROW trigger on tinytemp.jobs is about to
 * write; raise when the function was called another way.
 */
static HeapTuple
row_to_write(FunctionCallInfo fcinfo, const char *function)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("%s must run as a BEFORE ... FOR EACH ROW trigger", function));
	return TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
}

/* Raise 22023 unless the integer column is at least `min` (NULL passes). */
static void
require_at_least(const JobRow *row, AttrNumber attnum, const char *name, int64 min, bool is_int8)
{
	Datum		value;
	int64		v;

	if (!get_column(row, attnum, &value))
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
require_label(const JobRow *row, AttrNumber attnum, const char *name)
{
	Datum		value;

	if (!get_column(row, attnum, &value))
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

/* The integer columns jobs_validate bounds below: name, least value, whether int8. */
static const struct
{
	const char *name;
	int64		min;
	bool		is_int8;
}			bounded_columns[] = {
	{"dataset_size", 0, true},
	{"epochs", 1, false},
	{"batch_size", 1, false},
	{"cpus", 1, false},
	{"memory_mb", 1, true},
	{"gpus", 0, false},
	{"gang_size", 1, false},
	{"max_attempts", 1, false},
};

#define NBOUNDED lengthof(bounded_columns)

/*
 * The columns jobs_validate reads, by attribute number (by name, a column
 * is a scan of the table's ~40 names, a thousand instructions a row).  The
 * 0.8 columns are 0 on an older schema, which the library may meet before
 * ALTER EXTENSION UPDATE.
 */
typedef struct ValidateColumns
{
	Oid			relid;			/* InvalidOid: not found yet */
	int			natts;
	AttrNumber	job_type, queue, params, predicted_runtime_s, predicted_spread, attained_s;
	AttrNumber	bounded[NBOUNDED];
} ValidateColumns;

static ValidateColumns validate_columns;

/*
 * Whether attribute number attnum of desc is still the column `name` (0,
 * a column the table did not have, passes: a column added since changes
 * natts, which the caches compare too).
 */
static bool
still_names(TupleDesc desc, AttrNumber attnum, const char *name)
{
	Form_pg_attribute att;

	if (attnum == InvalidAttrNumber)
		return true;
	if (attnum > desc->natts)
		return false;
	att = TupleDescAttr(desc, attnum - 1);
	return !att->attisdropped && strcmp(NameStr(att->attname), name) == 0;
}

/*
 * Whether the columns found for relid, with natts attributes then, are
 * still rel's: a cache of attribute numbers lives as long as the backend,
 * and is found again when the table changed (ALTER TABLE, another
 * extension version, a restore under another OID).
 */
static bool
columns_current(Oid relid, int natts, Relation rel)
{
	return relid == RelationGetRelid(rel) && natts == RelationGetDescr(rel)->natts;
}

/* Trigger tinytemp.jobs_validate(): check a job's request before it is stored. */
Datum
tinytemp_jobs_validate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple = row_to_write(fcinfo, "tinytemp.jobs_validate()");
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	ValidateColumns *c = &validate_columns;
	JobRow		row;
	Datum		value;
	bool		current = columns_current(c->relid, c->natts, trigdata->tg_relation) &&
		still_names(desc, c->job_type, "job_type") && still_names(desc, c->queue, "queue") &&
		still_names(desc, c->params, "params") &&
		still_names(desc, c->predicted_runtime_s, "predicted_runtime_s") &&
		still_names(desc, c->predicted_spread, "predicted_spread") &&
		still_names(desc, c->attained_s, "attained_s");

	for (int i = 0; i < (int) NBOUNDED && current; i++)
		current = still_names(desc, c->bounded[i], bounded_columns[i].name);
	if (!current)
	{
		c->relid = InvalidOid;
		c->job_type = column_number(desc, "job_type");
		c->queue = column_number(desc, "queue");
		c->params = column_number(desc, "params");
		c->predicted_runtime_s = column_number(desc, "predicted_runtime_s");
		c->attained_s = Max(SPI_fnumber(desc, "attained_s"), InvalidAttrNumber);
		c->predicted_spread = c->attained_s != InvalidAttrNumber ?
			column_number(desc, "predicted_spread") : InvalidAttrNumber;
		for (int i = 0; i < (int) NBOUNDED; i++)
			c->bounded[i] = column_number(desc, bounded_columns[i].name);
		c->natts = desc->natts;
		c->relid = RelationGetRelid(trigdata->tg_relation);
	}

	deform_row(tuple, desc, &row);
	require_label(&row, c->job_type, "job_type");
	require_label(&row, c->queue, "queue");
	if (get_column(&row, c->params, &value))
	{
		Jsonb	   *params = DatumGetJsonbP(value);

		if (!JB_ROOT_IS_OBJECT(params) || JB_ROOT_IS_SCALAR(params))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("params must be a JSON object"));
	}
	for (int i = 0; i < (int) NBOUNDED; i++)
		require_at_least(&row, c->bounded[i], bounded_columns[i].name,
						 bounded_columns[i].min, bounded_columns[i].is_int8);
	if (get_column(&row, c->predicted_runtime_s, &value) && !(DatumGetFloat8(value) >= 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("predicted_runtime_s must not be negative"));
	if (get_column(&row, c->predicted_spread, &value) && !(DatumGetFloat8(value) >= 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("predicted_spread must not be negative"));
	if (get_column(&row, c->attained_s, &value) && !(DatumGetFloat8(value) >= 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("attained_s must not be negative"));

	pfree(row.values);
	pfree(row.nulls);
	return PointerGetDatum(tuple);
}

PG_FUNCTION_INFO_V1(tinytemp_jobs_state_check);

/* The columns the state rules read, by attribute number (see ValidateColumns). */
typedef struct StateColumns
{
	Oid			relid;			/* InvalidOid: not found yet */
	int			natts;
	AttrNumber	state, attempts, max_attempts, worker_id, lease_until, finished_at,
				runtime_estimate_s, assigned_at, gang_id, gang_size;
} StateColumns;

static StateColumns state_columns;

/* Raise 23514, naming the rule a row breaks. */
static void
state_rule_broken(const char *rule)
{
	ereport(ERROR,
			errcode(ERRCODE_CHECK_VIOLATION),
			errmsg("a row of tinytemp.jobs breaks the rule %s", rule));
}

/*
 * tinytemp.jobs_state_check(), BEFORE INSERT OR UPDATE FOR EACH ROW: the
 * rules every state change keeps (before 0.5, table CHECKs):
 *   state is one of the six; 0 <= attempts <= max_attempts;
 *   assigned and running jobs have a worker; running jobs, and only they,
 *   a lease; finished jobs, and only they, a finished_at; assigned jobs an
 *   assigned_at; runtime_estimate_s >= 0; gang members, and only they, a
 *   gang_id.
 * A trigger costs a few thousand instructions a row; PostgreSQL reads and
 * plans every CHECK of a table again for each statement that writes it,
 * which cost a claim and its ack a fifth of their instructions.
 */
Datum
tinytemp_jobs_state_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple = row_to_write(fcinfo, "tinytemp.jobs_state_check()");
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	StateColumns *c = &state_columns;
	JobRow		row;
	char	   *state;
	int32		attempts;
	int32		max_attempts;
	bool		assigned, running, finished;

	if (!columns_current(c->relid, c->natts, trigdata->tg_relation) ||
		!still_names(desc, c->state, "state") || !still_names(desc, c->attempts, "attempts") ||
		!still_names(desc, c->max_attempts, "max_attempts") ||
		!still_names(desc, c->worker_id, "worker_id") ||
		!still_names(desc, c->lease_until, "lease_until") ||
		!still_names(desc, c->finished_at, "finished_at") ||
		!still_names(desc, c->runtime_estimate_s, "runtime_estimate_s") ||
		!still_names(desc, c->assigned_at, "assigned_at") ||
		!still_names(desc, c->gang_id, "gang_id") || !still_names(desc, c->gang_size, "gang_size"))
	{
		c->relid = InvalidOid;
		c->state = column_number(desc, "state");
		c->attempts = column_number(desc, "attempts");
		c->max_attempts = column_number(desc, "max_attempts");
		c->worker_id = column_number(desc, "worker_id");
		c->lease_until = column_number(desc, "lease_until");
		c->finished_at = column_number(desc, "finished_at");
		c->runtime_estimate_s = column_number(desc, "runtime_estimate_s");
		c->assigned_at = column_number(desc, "assigned_at");
		c->gang_id = column_number(desc, "gang_id");
		c->gang_size = column_number(desc, "gang_size");
		c->natts = desc->natts;
		c->relid = RelationGetRelid(trigdata->tg_relation);
	}

	deform_row(tuple, desc, &row);
	if (column_is_null(&row, c->state))
		state_rule_broken("state IS NOT NULL");
	state = TextDatumGetCString(row.values[c->state - 1]);
	assigned = strcmp(state, "assigned") == 0;
	running = strcmp(state, "running") == 0;
	finished = strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "cancelled") == 0;
	if (!assigned && !running && !finished && strcmp(state, "pending") != 0)
		state_rule_broken("state IN ('pending', 'assigned', 'running', 'succeeded', 'failed', 'cancelled')");

	/* attempts and max_attempts are NOT NULL columns. */
	attempts = DatumGetInt32(row.values[c->attempts - 1]);
	max_attempts = DatumGetInt32(row.values[c->max_attempts - 1]);
	if (attempts < 0 || attempts > max_attempts)
		state_rule_broken("attempts BETWEEN 0 AND max_attempts");

	if ((assigned || running) && column_is_null(&row, c->worker_id))
		state_rule_broken("state NOT IN ('assigned', 'running') OR worker_id IS NOT NULL");
	if (running == column_is_null(&row, c->lease_until))
		state_rule_broken("(state = 'running') = (lease_until IS NOT NULL)");
	if (finished == column_is_null(&row, c->finished_at))
		state_rule_broken("(state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)");
	if (assigned && column_is_null(&row, c->assigned_at))
		state_rule_broken("state <> 'assigned' OR assigned_at IS NOT NULL");
	if (!column_is_null(&row, c->runtime_estimate_s) &&
		!(DatumGetFloat8(row.values[c->runtime_estimate_s - 1]) >= 0))
		state_rule_broken("runtime_estimate_s >= 0");
	/* gang_size is a NOT NULL column. */
	if (column_is_null(&row, c->gang_id) != (DatumGetInt32(row.values[c->gang_size - 1]) == 1))
		state_rule_broken("(gang_id IS NULL) = (gang_size = 1)");
	pfree(state);
	pfree(row.values);
	pfree(row.nulls);
	tinytemp_metrics_job_written(trigdata->tg_relation,
								 TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
								 trigdata->tg_trigtuple : NULL, tuple);
	return PointerGetDatum(tuple);
}

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
 * Attribute numbers of columns of tinytemp.jobs by name, kept as long as
 * the backend: by name, a column is a scan of the table's ~40 names, a
 * thousand instructions a row.  Found again when the table changed (ALTER
 * TABLE, another extension version, a restore under another OID): its
 * OID or column count differs, or a kept number no longer names its
 * column.  Columns from first_optional on may be missing (0), as 0.8's are
 * in an older schema, which the library may meet before ALTER EXTENSION
 * UPDATE.
 */
#define MAX_CACHED_COLUMNS 16

typedef struct ColumnCache
{
	Oid			relid;			/* InvalidOid: not found yet */
	int			natts;
	AttrNumber	attnum[MAX_CACHED_COLUMNS];
} ColumnCache;

/* Whether attribute number attnum of desc is still the column `name` (0 passes). */
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

/* Make cache hold the numbers of the n columns names of rel (see ColumnCache). */
static void
find_columns(ColumnCache *cache, Relation rel, const char *const *names, int n,
			 int first_optional)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		current = cache->relid == RelationGetRelid(rel) && cache->natts == desc->natts;

	Assert(n <= MAX_CACHED_COLUMNS);
	for (int i = 0; i < n && current; i++)
		current = still_names(desc, cache->attnum[i], names[i]);
	if (current)
		return;
	cache->relid = InvalidOid;
	for (int i = 0; i < n; i++)
		cache->attnum[i] = i < first_optional ? column_number(desc, names[i]) :
			Max(SPI_fnumber(desc, names[i]), InvalidAttrNumber);
	cache->natts = desc->natts;
	cache->relid = RelationGetRelid(rel);
}

/* A column's value, or NULL, by number (0: the column does not exist). */
static bool
get_column(const TinytempRow *row, AttrNumber attnum, Datum *value)
{
	if (attnum == InvalidAttrNumber || row->nulls[attnum - 1])
		return false;
	*value = row->values[attnum - 1];
	return true;
}

/*
 * The row a BEFORE ... FOR EACH ROW trigger on tinytemp.jobs is about to
 * write, its columns taken out at once (a job's row has many NULLs, after
 * which each column read alone is a walk from the row's start); raise when
 * the function was called another way.
 */
static HeapTuple
row_to_write(FunctionCallInfo fcinfo, const char *function, TinytempRow *row)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("%s must run as a BEFORE ... FOR EACH ROW trigger", function));
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	tinytemp_row_init(row, RelationGetDescr(trigdata->tg_relation));
	tinytemp_row_read(row, tuple);
	return tuple;
}

/* Raise 22023 unless the integer column is at least `min` (NULL passes). */
static void
require_at_least(const TinytempRow *row, AttrNumber attnum, const char *name, int64 min,
				 bool is_int8)
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
require_label(const TinytempRow *row, AttrNumber attnum, const char *name)
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

/* Raise 22023 unless the float8 column is at least 0 (NULL passes). */
static void
require_nonnegative_float(const TinytempRow *row, AttrNumber attnum, const char *name)
{
	Datum		value;

	if (get_column(row, attnum, &value) && !(DatumGetFloat8(value) >= 0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be negative", name));
}

/* The columns jobs_validate reads, in the order it checks them; 0.8's last. */
enum
{
	V_JOB_TYPE, V_QUEUE, V_PARAMS, V_BOUNDED, V_PREDICTED_RUNTIME_S = V_BOUNDED + 8,
	V_PREDICTED_SPREAD, V_ATTAINED_S, NVALIDATE
};
static const char *const validate_names[NVALIDATE] = {
	"job_type", "queue", "params",
	"dataset_size", "epochs", "batch_size", "cpus", "memory_mb", "gpus", "gang_size", "max_attempts",
	"predicted_runtime_s", "predicted_spread", "attained_s"
};

/* The least value of each bounded column (V_BOUNDED on), and whether it is an int8. */
static const struct
{
	int64		min;
	bool		is_int8;
}			bounds[V_PREDICTED_RUNTIME_S - V_BOUNDED] = {
	{0, true}, {1, false}, {1, false}, {1, false}, {1, true}, {0, false}, {1, false}, {1, false}
};

static ColumnCache validate_columns;

/* Trigger tinytemp.jobs_validate(): check a job's request before it is stored. */
Datum
tinytemp_jobs_validate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TinytempRow row;
	HeapTuple	tuple = row_to_write(fcinfo, "tinytemp.jobs_validate()", &row);
	const AttrNumber *c = validate_columns.attnum;
	Datum		value;

	find_columns(&validate_columns, trigdata->tg_relation, validate_names, NVALIDATE,
				 V_PREDICTED_SPREAD);
	/* A 0.8 schema has both. */
	if (c[V_ATTAINED_S] != InvalidAttrNumber && c[V_PREDICTED_SPREAD] == InvalidAttrNumber)
		elog(ERROR, "tinytemp.jobs has no column \"predicted_spread\"");

	require_label(&row, c[V_JOB_TYPE], "job_type");
	require_label(&row, c[V_QUEUE], "queue");
	if (get_column(&row, c[V_PARAMS], &value))
	{
		Jsonb	   *params = DatumGetJsonbP(value);

		if (!JB_ROOT_IS_OBJECT(params) || JB_ROOT_IS_SCALAR(params))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("params must be a JSON object"));
	}
	for (int i = V_BOUNDED; i < V_PREDICTED_RUNTIME_S; i++)
		require_at_least(&row, c[i], validate_names[i], bounds[i - V_BOUNDED].min,
						 bounds[i - V_BOUNDED].is_int8);
	for (int i = V_PREDICTED_RUNTIME_S; i < NVALIDATE; i++)
		require_nonnegative_float(&row, c[i], validate_names[i]);

	pfree(row.values);
	pfree(row.nulls);
	return PointerGetDatum(tuple);
}

PG_FUNCTION_INFO_V1(tinytemp_jobs_state_check);

/* The columns the state rules read. */
enum
{
	S_STATE, S_ATTEMPTS, S_MAX_ATTEMPTS, S_WORKER_ID, S_LEASE_UNTIL, S_FINISHED_AT,
	S_RUNTIME_ESTIMATE_S, S_ASSIGNED_AT, S_GANG_ID, S_GANG_SIZE, NSTATE
};
static const char *const state_names[NSTATE] = {
	"state", "attempts", "max_attempts", "worker_id", "lease_until", "finished_at",
	"runtime_estimate_s", "assigned_at", "gang_id", "gang_size"
};

static ColumnCache state_columns;

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
	TinytempRow row;
	HeapTuple	tuple = row_to_write(fcinfo, "tinytemp.jobs_state_check()", &row);
	const AttrNumber *c = state_columns.attnum;
	Datum		value;
	char	   *state;
	int32		attempts;
	int32		max_attempts;
	bool		assigned, running, finished;

	find_columns(&state_columns, trigdata->tg_relation, state_names, NSTATE, NSTATE);
#define IS_NULL(col) (row.nulls[c[col] - 1])
#define VALUE(col) (row.values[c[col] - 1])

	if (IS_NULL(S_STATE))
		state_rule_broken("state IS NOT NULL");
	state = TextDatumGetCString(VALUE(S_STATE));
	assigned = strcmp(state, "assigned") == 0;
	running = strcmp(state, "running") == 0;
	finished = strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "cancelled") == 0;
	if (!assigned && !running && !finished && strcmp(state, "pending") != 0)
		state_rule_broken("state IN ('pending', 'assigned', 'running', 'succeeded', 'failed', 'cancelled')");

	/* attempts and max_attempts are NOT NULL columns (a NULL reads as 0 here). */
	attempts = DatumGetInt32(VALUE(S_ATTEMPTS));
	max_attempts = DatumGetInt32(VALUE(S_MAX_ATTEMPTS));
	if (attempts < 0 || attempts > max_attempts)
		state_rule_broken("attempts BETWEEN 0 AND max_attempts");

	if ((assigned || running) && IS_NULL(S_WORKER_ID))
		state_rule_broken("state NOT IN ('assigned', 'running') OR worker_id IS NOT NULL");
	if (running == IS_NULL(S_LEASE_UNTIL))
		state_rule_broken("(state = 'running') = (lease_until IS NOT NULL)");
	if (finished == IS_NULL(S_FINISHED_AT))
		state_rule_broken("(state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)");
	if (assigned && IS_NULL(S_ASSIGNED_AT))
		state_rule_broken("state <> 'assigned' OR assigned_at IS NOT NULL");
	if (get_column(&row, c[S_RUNTIME_ESTIMATE_S], &value) && !(DatumGetFloat8(value) >= 0))
		state_rule_broken("runtime_estimate_s >= 0");
	/* gang_size is a NOT NULL column. */
	if (IS_NULL(S_GANG_ID) != (DatumGetInt32(VALUE(S_GANG_SIZE)) == 1))
		state_rule_broken("(gang_id IS NULL) = (gang_size = 1)");
#undef VALUE
#undef IS_NULL
	pfree(state);
	pfree(row.values);
	pfree(row.nulls);
	tinytemp_metrics_job_written(trigdata->tg_relation,
								 TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
								 trigdata->tg_trigtuple : NULL, tuple);
	return PointerGetDatum(tuple);
}

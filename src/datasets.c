/*
 * datasets.c
 *	  The dataset registry: immutable versions of the data the pipeline's
 *	  jobs make and read, so that every run traces back to its data.
 *
 * A job declares the versions it reads when it is enqueued ("inputs":
 * 'name@version', or 'name' for the latest).  Those that exist are resolved
 * into the job's inputs column at once, with their location and checksum,
 * for the handler; for the others the job waits, as it waits on
 * depends_on: its run_after is 'infinity' (so that no claim, planner pass
 * or timeout takes it) until the last of them is registered, and then the
 * later of now and the run_after it was given.  Registering a version
 * resolves the jobs that wait for it, in the same transaction.
 *
 * Versions are numbered per name from 1 under a lock on the name, never
 * changed (a trigger refuses UPDATE) and never registered twice at one
 * location.  A dataset belongs to the tenant of the job that made it; a job
 * reads its tenant's datasets and the shared ones (tenant NULL).
 */
#include "tinytemp.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(tinytemp_register_dataset);
PG_FUNCTION_INFO_V1(tinytemp_datasets_immutable);

#define MAX_INPUTS			100
#define MAX_DATASETS_PER_CALL	100
#define MAX_NAME_BYTES		128
#define MAX_URI_BYTES		4096

/* A dataset name: a letter, digit or underscore, then those or '.', '-'; 1 to 128 bytes. */
static bool
valid_name(const char *s, int len)
{
	if (len < 1 || len > MAX_NAME_BYTES)
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];
		bool		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || (i > 0 && (c == '.' || c == '-'));

		if (!ok)
			return false;
	}
	return true;
}

static void
raise_bad_name(const char *what, const char *s, int len)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("%s \"%.*s\" is not a dataset name", what, Min(len, 200), s),
			errdetail("A dataset name is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'."));
}

/*
 * Parse inputs (text[]) into names and versions (0: the latest); 22023 for
 * anything else than 'name' or 'name@N', or the same name twice.
 */
static int
parse_inputs(ArrayType *inputs, Datum **names, Datum **versions)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(inputs) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("inputs must be a one-dimensional array"));
	deconstruct_array(inputs, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n > MAX_INPUTS)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("a job may declare at most %d inputs", MAX_INPUTS));
	*names = palloc(sizeof(Datum) * Max(n, 1));
	*versions = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		char	   *s;
		char	   *at;
		int			len;
		int32		version = 0;

		if (nulls[i])
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("inputs must not contain nulls"));
		s = TextDatumGetCString(elems[i]);
		at = strchr(s, '@');
		len = at ? (int) (at - s) : (int) strlen(s);
		if (!valid_name(s, len))
			raise_bad_name("input", s, len);
		if (at)
		{
			char	   *end;
			long		v;

			errno = 0;
			v = strtol(at + 1, &end, 10);
			if (at[1] < '0' || at[1] > '9' || *end != '\0' || errno != 0 || v < 1 || v > PG_INT32_MAX)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("input \"%s\" names no version", s),
						errhint("Write name@N with N a positive integer, or name alone for the latest version."));
			version = (int32) v;
		}
		for (int k = 0; k < i; k++)
		{
			text	   *seen = DatumGetTextPP((*names)[k]);

			if ((int) VARSIZE_ANY_EXHDR(seen) == len && memcmp(VARDATA_ANY(seen), s, len) == 0)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("input \"%.*s\" is declared twice", len, s));
		}
		(*names)[i] = PointerGetDatum(cstring_to_text_with_len(s, len));
		(*versions)[i] = Int32GetDatum(version);
	}
	return n;
}

/*
 * Attach inputs to a job just enqueued (and to the other members of its
 * gang): resolve the versions that exist, make it wait for the others.  A
 * version that exists but belongs to another tenant is refused (42501).
 * SPI connected, as the extension's owner.
 */
void
tinytemp_attach_inputs(int64 job_id, ArrayType *inputs, const TinytempCaller *caller,
					   const char *tenant)
{
	static SPIPlanPtr hidden_plan = NULL;
	static SPIPlanPtr attach_plan = NULL;
	Oid			argtypes[5] = {INT8OID, TEXTARRAYOID, INT4ARRAYOID, BOOLOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Datum	   *names;
	Datum	   *versions;
	int			n;

	if (get_attnum(get_relname_relid("jobs", get_namespace_oid("tinytemp", false)), "inputs") ==
		InvalidAttrNumber)
		tinytemp_raise_outdated_schema();
	n = parse_inputs(inputs, &names, &versions);
	if (n == 0)
		return;
	values[0] = Int64GetDatum(job_id);
	values[1] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(versions, n, INT4OID, sizeof(int32), true,
												TYPALIGN_INT));
	values[3] = BoolGetDatum(caller->admin);
	values[4] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	nulls[4] = tenant ? ' ' : 'n';

	tinytemp_spi_execute(tinytemp_plan(&hidden_plan,
									   "SELECT r.name || coalesce('@' || nullif(r.version, 0), '')"
									   " FROM unnest($2, $3) r(name, version)"
									   " WHERE NOT $4 AND EXISTS (SELECT FROM tinytemp.datasets d"
									   "   WHERE d.name = r.name AND (r.version = 0 OR d.version = r.version)"
									   "     AND d.tenant IS DISTINCT FROM $5 AND d.tenant IS NOT NULL)"
									   "   AND NOT EXISTS (SELECT FROM tinytemp.datasets d"
									   "   WHERE d.name = r.name AND (r.version = 0 OR d.version = r.version)"
									   "     AND (d.tenant IS NULL OR d.tenant = $5))"
									   " LIMIT 1",
									   5, argtypes),
						 values, nulls, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to read dataset \"%s\"",
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				errdetail("It belongs to another tenant."));

	tinytemp_spi_execute(tinytemp_plan(&attach_plan,
									   "WITH res AS ("
									   "  SELECT r.ord, r.name, coalesce(d.version, nullif(r.version, 0), 1) AS version,"
									   "    d.id, d.layer, d.uri, d.format, d.checksum, d.rows, d.bytes, d.meta"
									   "  FROM unnest($2, $3) WITH ORDINALITY r(name, version, ord)"
									   "  LEFT JOIN LATERAL (SELECT * FROM tinytemp.datasets d"
									   "    WHERE d.name = r.name AND (r.version = 0 OR d.version = r.version)"
									   "      AND ($4 OR d.tenant IS NULL OR d.tenant = $5)"
									   "    ORDER BY d.version DESC LIMIT 1) d ON true"
									   "), agg AS ("
									   "  SELECT jsonb_agg(CASE WHEN id IS NULL"
									   "      THEN jsonb_build_object('name', name, 'version', version)"
									   "      ELSE jsonb_build_object('id', id, 'name', name, 'version', version,"
									   "        'layer', layer, 'uri', uri, 'format', format, 'checksum', checksum,"
									   "        'rows', rows, 'bytes', bytes, 'meta', meta) END ORDER BY ord) AS inputs,"
									   "    array_agg(name || '@' || version ORDER BY ord) FILTER (WHERE id IS NULL)"
									   "      AS awaits"
									   "  FROM res"
									   ") UPDATE tinytemp.jobs j SET inputs = agg.inputs, awaits_data = agg.awaits,"
									   "    run_after_requested = CASE WHEN agg.awaits IS NOT NULL THEN j.run_after END,"
									   "    run_after = CASE WHEN agg.awaits IS NOT NULL THEN 'infinity' ELSE j.run_after END,"
									   "    rank_key = CASE WHEN agg.awaits IS NOT NULL THEN 'infinity' ELSE j.rank_key END"
									   "  FROM agg WHERE j.id = $1 OR j.gang_id = $1",
									   5, argtypes),
						 values, nulls, SPI_OK_UPDATE);
}

/* The members of a dataset object, checked. */
typedef struct DatasetSpec
{
	Datum		values[9];		/* name, layer, uri, format, schema, rows, bytes, checksum, meta */
	bool		nulls[9];
} DatasetSpec;

static const char *const dataset_keys[9] = {
	"name", "layer", "uri", "format", "schema", "rows", "bytes", "checksum", "meta"
};

static void
bad_member(int i, const char *key, const char *must)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("\"%s\" of dataset %d %s", key, i, must));
}

/* A string member's text, or NULL when absent or null; 22023 when it is not a string. */
static text *
string_member(JsonbContainer *obj, int i, int k, int max_bytes)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(obj, dataset_keys[k], strlen(dataset_keys[k]), &v) == NULL ||
		v.type == jbvNull)
		return NULL;
	if (v.type != jbvString)
		bad_member(i, dataset_keys[k], "must be a string");
	if (v.val.string.len == 0 || v.val.string.len > max_bytes)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("\"%s\" of dataset %d must be 1 to %d bytes long", dataset_keys[k], i, max_bytes));
	return cstring_to_text_with_len(v.val.string.val, v.val.string.len);
}

/* Read and check dataset i (from 1). */
static void
read_dataset(JsonbValue *el, int i, DatasetSpec *spec)
{
	JsonbContainer *obj;
	JsonbValue	v;
	char	   *unknown;
	text	   *t;

	if (el->type != jbvBinary || !JsonContainerIsObject(el->val.binary.data))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("dataset %d is not a JSON object", i));
	obj = el->val.binary.data;
	if ((unknown = tinytemp_jsonb_unknown_key(obj, dataset_keys, 9)) != NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("dataset %d has an unknown key \"%s\"", i, unknown),
				errhint("The keys are name, layer, uri, format, schema, rows, bytes, checksum and meta."));

	t = string_member(obj, i, 0, MAX_NAME_BYTES);
	if (t == NULL)
		bad_member(i, "name", "is required");
	if (!valid_name(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
		raise_bad_name("name", VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	spec->values[0] = PointerGetDatum(t);
	t = string_member(obj, i, 1, 16);
	if (t == NULL || !(strcmp(text_to_cstring(t), "raw") == 0 ||
					   strcmp(text_to_cstring(t), "processed") == 0 ||
					   strcmp(text_to_cstring(t), "curated") == 0))
		bad_member(i, "layer", "must be \"raw\", \"processed\" or \"curated\"");
	spec->values[1] = PointerGetDatum(t);
	t = string_member(obj, i, 2, MAX_URI_BYTES);
	if (t == NULL)
		bad_member(i, "uri", "is required");
	spec->values[2] = PointerGetDatum(t);
	t = string_member(obj, i, 3, 64);
	spec->values[3] = t ? PointerGetDatum(t) : CStringGetTextDatum("parquet");
	for (int k = 4; k <= 8; k += 4)	/* schema, meta: objects */
	{
		spec->nulls[k] = true;
		if (getKeyJsonValueFromContainer(obj, dataset_keys[k], strlen(dataset_keys[k]), &v) != NULL &&
			v.type != jbvNull)
		{
			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				bad_member(i, dataset_keys[k], "must be a JSON object");
			spec->values[k] = JsonbPGetDatum(JsonbValueToJsonb(&v));
			spec->nulls[k] = false;
		}
	}
	for (int k = 5; k <= 6; k++)	/* rows, bytes: non-negative integers */
	{
		spec->nulls[k] = true;
		if (getKeyJsonValueFromContainer(obj, dataset_keys[k], strlen(dataset_keys[k]), &v) != NULL &&
			v.type != jbvNull)
		{
			double		d = v.type == jbvNumeric ?
				DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric))) : -1;

			if (!(d >= 0 && d == floor(d) && d < 9.2e18))
				bad_member(i, dataset_keys[k], "must be a non-negative integer");
			spec->values[k] = Int64GetDatum((int64) d);
			spec->nulls[k] = false;
		}
	}
	t = string_member(obj, i, 7, 512);
	spec->values[7] = t ? PointerGetDatum(t) : (Datum) 0;
	spec->nulls[7] = t == NULL;
	spec->nulls[0] = spec->nulls[1] = spec->nulls[2] = spec->nulls[3] = false;
}

/*
 * Register one checked dataset: the next version of its name.  Resolves
 * the jobs that wait for that version and wakes their queues.  Returns the
 * version.  SPI connected, as the extension's owner.
 */
static int32
register_one(DatasetSpec *spec, Datum job_id, bool no_job, Datum attempt, Datum tenant,
			 bool no_tenant)
{
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr resolve_plans[2];
	static SPIPlanPtr history_plan = NULL;
	Oid			types[12] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID, INT8OID, TEXTOID,
	JSONBOID, INT8OID, INT4OID, TEXTOID};
	Datum		values[12];
	char		nulls[12];
	text	   *name = DatumGetTextPP(spec->values[0]);
	int32		version;
	int64		dataset_id;
	bool		isnull;

	/* Versions of one name are numbered one registration at a time. */
	tinytemp_lock(TINYTEMP_LOCK_DATASET_NAME,
				  hash_bytes_extended((const unsigned char *) VARDATA_ANY(name),
									  VARSIZE_ANY_EXHDR(name), 0));
	for (int k = 0; k < 9; k++)
	{
		values[k] = spec->values[k];
		nulls[k] = spec->nulls[k] ? 'n' : ' ';
	}
	values[9] = job_id;
	nulls[9] = no_job ? 'n' : ' ';
	values[10] = attempt;
	nulls[10] = no_job ? 'n' : ' ';
	values[11] = tenant;
	nulls[11] = no_tenant ? 'n' : ' ';
	tinytemp_spi_execute(tinytemp_plan(&insert_plan,
									   "INSERT INTO tinytemp.datasets (name, version, layer, uri, format, schema,"
									   "  rows, bytes, checksum, meta, created_by_job, created_attempt, tenant,"
									   "  created_at)"
									   " SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9,"
									   "  $10, $11, $12, tinytemp.now()"
									   " FROM tinytemp.datasets WHERE name = $1"
									   " ON CONFLICT (uri) DO NOTHING"
									   " RETURNING id, version",
									   12, types),
						 values, nulls, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_UNIQUE_VIOLATION),
				errmsg("uri \"%s\" is registered already", TextDatumGetCString(spec->values[2])),
				errdetail("A dataset version is never registered twice; a new version needs a new location."));
	dataset_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	if (!no_job)
	{
		Datum		hv[2] = {job_id, Int64GetDatum(dataset_id)};
		Oid			ht[2] = {INT8OID, INT8OID};

		tinytemp_spi_execute(tinytemp_plan(&history_plan,
										   "INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
										   " SELECT $1, 'dataset_registered', j.worker_id,"
										   "   jsonb_build_object('dataset', d.name, 'version', d.version, 'id', d.id)"
										   " FROM tinytemp.jobs j, tinytemp.datasets d WHERE j.id = $1 AND d.id = $2",
										   2, ht),
							 hv, NULL, SPI_OK_INSERT);
	}

	/* The jobs that wait for this version (of the dataset's tenant, or any for a shared one). */
	{
		Datum		rv[2] = {Int64GetDatum(dataset_id), Float8GetDatum(tinytemp_aging_rate)};
		Oid			rt[2] = {INT8OID, FLOAT8OID};

		/* by whether the schema is 0.8's or later: the released job's rank cost */
#define RESOLVE_SQL(COST) \
		"WITH d AS (SELECT * FROM tinytemp.datasets WHERE id = $1)," \
		" w AS (SELECT j.id FROM tinytemp.jobs j, d" \
		"   WHERE j.awaits_data @> ARRAY[d.name || '@' || d.version]" \
		"     AND j.awaits_data IS NOT NULL AND j.state = 'pending'" \
		"     AND (d.tenant IS NULL OR j.tenant = d.tenant)" \
		"   FOR UPDATE OF j)," \
		" r AS (SELECT w.id, nullif(array_remove(j.awaits_data, d.name || '@' || d.version)," \
		"     '{}') AS left_over," \
		"   greatest(coalesce(j.run_after_requested, tinytemp.now()), tinytemp.now()) AS due" \
		"   FROM w JOIN tinytemp.jobs j ON j.id = w.id, d)," \
		" u AS (UPDATE tinytemp.jobs j SET" \
		"   inputs = (SELECT jsonb_agg(CASE WHEN NOT x.e ? 'id' AND x.e->>'name' = d.name" \
		"       AND (x.e->>'version')::int = d.version" \
		"     THEN jsonb_build_object('id', d.id, 'name', d.name, 'version', d.version," \
		"       'layer', d.layer, 'uri', d.uri, 'format', d.format, 'checksum', d.checksum," \
		"       'rows', d.rows, 'bytes', d.bytes, 'meta', d.meta)" \
		"     ELSE x.e END ORDER BY x.ord)" \
		"     FROM jsonb_array_elements(j.inputs) WITH ORDINALITY x(e, ord))," \
		"   awaits_data = r.left_over," \
		"   run_after = CASE WHEN r.left_over IS NULL THEN r.due ELSE j.run_after END," \
		"   rank_key = CASE WHEN r.left_over IS NULL" \
		"     THEN " COST \
		"       + $2 * extract(epoch FROM r.due)::float8 ELSE j.rank_key END," \
		"   run_after_requested = CASE WHEN r.left_over IS NULL THEN NULL" \
		"     ELSE j.run_after_requested END," \
		"   updated_at = tinytemp.now()" \
		"   FROM r, d WHERE j.id = r.id" \
		"   RETURNING j.queue, r.left_over IS NULL AS due)" \
		" SELECT DISTINCT queue FROM u WHERE due"
		static const char *const resolve_sql[2] = {
			RESOLVE_SQL("coalesce(j.runtime_estimate_s, j.predicted_runtime_s, 0)"),
			RESOLVE_SQL(TINYTEMP_JOB_COST_SQL("j.attained_s"))
		};
		int			v08 = tinytemp_schema_has_service();

		tinytemp_spi_execute(tinytemp_plan(&resolve_plans[v08], resolve_sql[v08], 2, rt),
							 rv, NULL, SPI_OK_SELECT);
		for (uint64 i = 0; i < SPI_processed; i++)
			tinytemp_notify_enqueued(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	return version;
}

/*
 * tinytemp_register_dataset(job_id, worker_id, dataset): register what a
 * running job made (dataset: an object, or an array of objects registered
 * together, all or none), for the worker that holds it; or, with job_id and
 * worker_id NULL, a source dataset of the caller's tenant (an admin's is
 * shared).  Returns the (last) version given.
 */
Datum
tinytemp_register_dataset(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb;
	int			n;
	DatasetSpec *specs;
	bool		no_job;
	Datum		attempt = (Datum) 0;
	Datum		tenant = (Datum) 0;
	bool		no_tenant = true;
	int32		version = 0;
	TinytempCaller caller;

	tinytemp_require_arg(fcinfo, 2, "dataset");
	if (PG_ARGISNULL(0) != PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("job_id and worker_id go together"),
				errhint("Give both for what a running job made, neither for a source dataset."));
	no_job = PG_ARGISNULL(0);
	jb = PG_GETARG_JSONB_P(2);
	if (JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("dataset must be a JSON object or an array of them"));
	if (JB_ROOT_IS_ARRAY(jb))
	{
		n = JB_ROOT_COUNT(jb);
		if (n == 0 || n > MAX_DATASETS_PER_CALL)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("an array of datasets holds 1 to %d of them", MAX_DATASETS_PER_CALL));
		specs = palloc0(sizeof(DatasetSpec) * n);
		for (int i = 0; i < n; i++)
			read_dataset(getIthJsonbValueFromContainer(&jb->root, i), i + 1, &specs[i]);
	}
	else
	{
		JsonbValue	whole;

		n = 1;
		specs = palloc0(sizeof(DatasetSpec));
		whole.type = jbvBinary;
		whole.val.binary.data = &jb->root;
		whole.val.binary.len = VARSIZE(jb) - VARHDRSZ;
		read_dataset(&whole, 1, &specs[0]);
	}

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	if (!no_job)
	{
		char	   *job_tenant;

		attempt = Int32GetDatum(tinytemp_held_attempt(&caller, PG_GETARG_INT64(0),
													  PG_GETARG_INT64(1), &job_tenant));
		no_tenant = job_tenant == NULL;
		tenant = job_tenant ? CStringGetTextDatum(job_tenant) : (Datum) 0;
	}
	else
	{
		char	   *own = caller.admin ? NULL : tinytemp_caller_name(&caller);

		no_tenant = own == NULL;
		tenant = own ? CStringGetTextDatum(own) : (Datum) 0;
	}
	for (int i = 0; i < n; i++)
		version = register_one(&specs[i], no_job ? (Datum) 0 : PG_GETARG_DATUM(0), no_job, attempt,
							   tenant, no_tenant);
	SPI_finish();
	tinytemp_leave(&caller);
	PG_RETURN_INT32(version);
}

/* Trigger tinytemp.datasets_immutable(): a registered version never changes. */
Datum
tinytemp_datasets_immutable(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("tinytemp.datasets_immutable() must run as a trigger"));
	ereport(ERROR,
			errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			errmsg("dataset versions are immutable"),
			errhint("Register a new version instead."));
	PG_RETURN_NULL();
}

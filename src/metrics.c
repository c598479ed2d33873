/*
 * metrics.c
 *	  Prometheus metrics of the job queue, counted where the jobs change and
 *	  made visible when the change commits.
 *
 * Counters, histograms and the jobs by state live in shared memory, one
 * entry per (database, queue, job_type).  A backend adds what its triggers
 * see to a pending table of its own, by subtransaction level, and applies
 * it to shared memory when its transaction commits: a rolled-back enqueue
 * counts nothing, and neither does a rolled-back subtransaction.
 *
 *	- Events (enqueued, claimed, succeeded...) are counted by a BEFORE row
 *	  trigger on tinytemp.jobs_history: every path that changes a job
 *	  writes one history row per event, so the counters always equal what
 *	  the history says.  The history row names the job; its queue, job_type
 *	  and times come from the jobs trigger that fired for the same job
 *	  earlier in the statement (a table of this transaction's jobs), else
 *	  from one lookup.
 *	- The jobs by state are counted by jobs_validate_state (inserts and
 *	  state changes) and jobs_count_deleted.  They start unknown (after a
 *	  restart, or a TRUNCATE): the next scrape counts the table once, under
 *	  a SHARE lock so that no change can slip between the count and the
 *	  commits that follow it.  No other scrape counts rows.
 *
 * The workers' room and the tenants' shares are read per scrape from the
 * workers and the jobs they hold, which are few.
 */
#include "tinytemp.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(tinytemp_metrics);
PG_FUNCTION_INFO_V1(tinytemp_jobs_history_count);
PG_FUNCTION_INFO_V1(tinytemp_jobs_count_removed);

/* Label values are cut to this many bytes (at a character boundary). */
#define LABEL_BYTES			128
/* Entries in shared memory; the last OVERFLOW_ROOM only for "_other". */
#define MAX_SERIES			2048
#define OVERFLOW_ROOM		64
#define OTHER_LABEL			"_other"
/* Databases whose jobs-by-state are known. */
#define MAX_COUNTED_DBS		32

typedef struct MetricsKey
{
	Oid			db;
	char		queue[LABEL_BYTES];
	char		job_type[LABEL_BYTES];
} MetricsKey;

typedef enum Counter
{
	C_ENQUEUED,
	C_CLAIMED,
	C_SUCCEEDED,
	C_FAILED,
	C_RETRIED,
	C_DEAD_LETTERED,
	C_CANCELLED,
	C_LEASE_EXPIRED,
	C_PREEMPTED,
	NUM_COUNTERS
} Counter;

/* A history event, the counter it adds to, and the metric's name and help. */
static const struct
{
	const char *event;
	const char *name;
	const char *help;
}			counters[NUM_COUNTERS] = {
	{"enqueued", "tinytemp_jobs_enqueued_total", "Jobs enqueued (gang members each count)."},
	{"claimed", "tinytemp_jobs_claimed_total", "Attempts started by a worker's claim."},
	{"acked", "tinytemp_jobs_succeeded_total", "Jobs acked as succeeded."},
	{"failed", "tinytemp_jobs_failed_total", "Failed attempts reported by workers."},
	{"retried", "tinytemp_jobs_retried_total", "Failed attempts scheduled for a retry."},
	{"dead_lettered", "tinytemp_jobs_dead_lettered_total", "Jobs that failed for good (the dead-letter state)."},
	{"cancelled", "tinytemp_jobs_cancelled_total", "Jobs cancelled."},
	{"lease_expired", "tinytemp_lease_expirations_total", "Running jobs whose lease ran out without a heartbeat."},
	{"preempted", "tinytemp_preemptions_total", "Running jobs preempted and put back to pending."},
};

typedef enum JobState
{
	S_PENDING,
	S_ASSIGNED,
	S_RUNNING,
	S_SUCCEEDED,
	S_FAILED,
	S_CANCELLED,
	NUM_STATES
} JobState;

static const char *const state_names[NUM_STATES] = {
	"pending", "assigned", "running", "succeeded", "failed", "cancelled"
};

typedef enum Hist
{
	H_DURATION,
	H_WAIT,
	H_PREDICTION_ERROR,
	NUM_HISTS
} Hist;

#define MAX_BOUNDS 12

static const struct
{
	const char *name;
	const char *help;
	int			nbounds;
	double		bounds[MAX_BOUNDS];
}			hists[NUM_HISTS] = {
	{"tinytemp_job_duration_seconds",
		"Run time of succeeded jobs (started to acked).",
		11, {0.01, 0.1, 1, 10, 60, 300, 900, 3600, 10800, 43200, 86400}},
	{"tinytemp_job_wait_seconds",
		"Time from a job's run_after (when it became due) to the start of its attempt.",
		12, {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600}},
	{"tinytemp_prediction_error_ratio",
		"Actual run time over the runtime predicted on the worker that ran the job, at ack.",
		10, {0.25, 0.5, 0.67, 0.8, 0.9, 1.1, 1.25, 1.5, 2, 4}},
};

typedef struct Histogram
{
	uint64		buckets[MAX_BOUNDS + 1];	/* per bound, not cumulative; last is +Inf */
	uint64		count;
	double		sum;
} Histogram;

typedef struct MetricsValues
{
	int64		counters[NUM_COUNTERS];
	int64		jobs[NUM_STATES];
	Histogram	hist[NUM_HISTS];
} MetricsValues;

typedef struct MetricsEntry
{
	MetricsKey	key;
	MetricsValues v;
} MetricsEntry;

typedef struct MetricsShared
{
	LWLock	   *lock;			/* protects everything here and the hash */
	int			nentries;
	uint64		dropped;		/* updates lost: the table was full */
	int			ncounted;
	struct
	{
		Oid			db;
		Oid			jobs;		/* the tinytemp.jobs that was counted */
	}			counted[MAX_COUNTED_DBS];	/* databases whose jobs-by-state are known */
} MetricsShared;

static MetricsShared *metrics_shared = NULL;
static HTAB *metrics_hash = NULL;

/* What this backend has counted and not yet committed, by subtransaction level. */
typedef struct PendingKey
{
	MetricsKey	key;
	int			level;
} PendingKey;

typedef struct PendingEntry
{
	PendingKey	k;
	MetricsValues v;
} PendingEntry;

/* A job this transaction changed: what its history rows are counted by. */
typedef struct JobInfo
{
	int64		id;
	MetricsKey	key;
	TimestampTz run_after;
	TimestampTz started_at;
	TimestampTz finished_at;
	TimestampTz predicted_end_at;
} JobInfo;

static HTAB *pending = NULL;
static bool pending_any = false;
static int	truncated_level = 0;	/* > 0: a TRUNCATE at that level, not yet committed */
static HTAB *job_infos = NULL;
static bool job_infos_any = false;
static bool callbacks_registered = false;

/* The scrape's statements, prepared once per backend. */
static SPIPlanPtr count_plan = NULL;
static SPIPlanPtr workers_plan = NULL;
static SPIPlanPtr shares_plan = NULL;
static SPIPlanPtr model_plan = NULL;
static SPIPlanPtr standby_plan = NULL;

static Oid	jobs_relid(void);

/* SIZING AND STARTUP */

Size
tinytemp_metrics_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(MetricsShared)),
					hash_estimate_size(MAX_SERIES, sizeof(MetricsEntry)));
}

void
tinytemp_metrics_shmem_request(void)
{
	RequestNamedLWLockTranche("tinytemp_metrics", 1);
}

/* Create or attach to the shared table; called with AddinShmemInitLock held. */
void
tinytemp_metrics_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	metrics_shared = ShmemInitStruct("tinytemp metrics", sizeof(MetricsShared), &found);
	if (!found)
	{
		metrics_shared->lock = &(GetNamedLWLockTranche("tinytemp_metrics"))->lock;
		metrics_shared->nentries = 0;
		metrics_shared->dropped = 0;
		metrics_shared->ncounted = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(MetricsKey);
	info.entrysize = sizeof(MetricsEntry);
	metrics_hash = ShmemInitHash("tinytemp metrics series", MAX_SERIES, MAX_SERIES, &info,
								 HASH_ELEM | HASH_BLOBS);
}

/* COUNTING, IN A BACKEND */

/* A label value from a text datum, cut at a character boundary. */
static void
set_label(char *dst, Datum value, bool isnull)
{
	text	   *t;
	int			len;

	if (isnull)
	{
		dst[0] = '\0';
		return;
	}
	t = DatumGetTextPP(value);
	len = VARSIZE_ANY_EXHDR(t);
	if (len >= LABEL_BYTES)
		len = pg_mbcliplen(VARDATA_ANY(t), len, LABEL_BYTES - 1);
	memcpy(dst, VARDATA_ANY(t), len);
	dst[len] = '\0';
	if ((Pointer) t != DatumGetPointer(value))
		pfree(t);
}

static int
state_index(const char *state)
{
	for (int i = 0; i < NUM_STATES; i++)
		if (strcmp(state, state_names[i]) == 0)
			return i;
	return -1;
}

static void
add_values(MetricsValues *to, const MetricsValues *from)
{
	for (int i = 0; i < NUM_COUNTERS; i++)
		to->counters[i] += from->counters[i];
	for (int i = 0; i < NUM_STATES; i++)
		to->jobs[i] += from->jobs[i];
	for (int h = 0; h < NUM_HISTS; h++)
	{
		for (int b = 0; b <= MAX_BOUNDS; b++)
			to->hist[h].buckets[b] += from->hist[h].buckets[b];
		to->hist[h].count += from->hist[h].count;
		to->hist[h].sum += from->hist[h].sum;
	}
}

/*
 * The shared entry of a series, created when new; past the table's room, a
 * new series goes to its database's "_other" entry; NULL (counted as
 * dropped) when even that cannot be made.  The lock is held exclusively.
 */
static MetricsEntry *
shared_entry(const MetricsKey *key)
{
	MetricsEntry *e;
	bool		found;

	if (metrics_shared->nentries < MAX_SERIES - OVERFLOW_ROOM)
		e = hash_search(metrics_hash, key, HASH_ENTER_NULL, &found);
	else
		e = hash_search(metrics_hash, key, HASH_FIND, &found);
	if (e == NULL)
	{
		MetricsKey	other;

		memset(&other, 0, sizeof(other));
		other.db = key->db;
		strcpy(other.queue, OTHER_LABEL);
		strcpy(other.job_type, OTHER_LABEL);
		e = hash_search(metrics_hash, &other, HASH_ENTER_NULL, &found);
	}
	if (e == NULL)
	{
		metrics_shared->dropped++;
		return NULL;
	}
	if (!found)
	{
		memset(&e->v, 0, sizeof(e->v));
		metrics_shared->nentries++;
	}
	return e;
}

/* Apply the pending counts to shared memory: the transaction committed. */
static void
publish_pending(void)
{
	HASH_SEQ_STATUS seq;
	PendingEntry *p;

	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, pending);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		MetricsEntry *e = shared_entry(&p->k.key);

		if (e != NULL)
			add_values(&e->v, &p->v);
	}
	if (truncated_level > 0)
	{
		/* The jobs-by-state of this database are unknown until counted again. */
		for (int i = 0; i < metrics_shared->ncounted; i++)
			if (metrics_shared->counted[i].db == MyDatabaseId)
			{
				metrics_shared->counted[i] = metrics_shared->counted[--metrics_shared->ncounted];
				break;
			}
	}
	LWLockRelease(metrics_shared->lock);
}

static void
forget_pending(void)
{
	HASH_SEQ_STATUS seq;
	void	   *p;

	if (pending_any)
	{
		hash_seq_init(&seq, pending);
		while ((p = hash_seq_search(&seq)) != NULL)
			(void) hash_search(pending, p, HASH_REMOVE, NULL);
		pending_any = false;
	}
	if (job_infos_any)
	{
		hash_seq_init(&seq, job_infos);
		while ((p = hash_seq_search(&seq)) != NULL)
			(void) hash_search(job_infos, p, HASH_REMOVE, NULL);
		job_infos_any = false;
	}
	truncated_level = 0;
}

static void
metrics_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (pending_any || truncated_level > 0)
				publish_pending();
			forget_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:	/* a prepared transaction's counts are not kept */
			forget_pending();
			break;
		default:
			break;
	}
}

/*
 * A subtransaction ended: its counts go to its parent, or are dropped with
 * it.
 */
static void
metrics_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	HASH_SEQ_STATUS seq;
	PendingEntry *p;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	if (truncated_level >= level)
		truncated_level = event == SUBXACT_EVENT_COMMIT_SUB ? level - 1 : 0;
	if (!pending_any)
		return;
	hash_seq_init(&seq, pending);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		if (p->k.level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			PendingKey up = p->k;
			PendingEntry *parent;
			bool		found;

			up.level = level - 1;
			parent = hash_search(pending, &up, HASH_ENTER, &found);
			if (!found)
				memset(&parent->v, 0, sizeof(parent->v));
			add_values(&parent->v, &p->v);
		}
		(void) hash_search(pending, &p->k, HASH_REMOVE, NULL);
	}
}

/* Whether this backend counts: preloaded, with the tables ready. */
static bool
counting(void)
{
	HASHCTL		info;

	if (metrics_shared == NULL)
		return false;
	if (!callbacks_registered)
	{
		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(PendingKey);
		info.entrysize = sizeof(PendingEntry);
		pending = hash_create("tinytemp pending metrics", 64, &info, HASH_ELEM | HASH_BLOBS);
		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(int64);
		info.entrysize = sizeof(JobInfo);
		job_infos = hash_create("tinytemp jobs of this transaction", 256, &info,
								HASH_ELEM | HASH_BLOBS);
		RegisterXactCallback(metrics_xact_callback, NULL);
		RegisterSubXactCallback(metrics_subxact_callback, NULL);
		callbacks_registered = true;
	}
	return true;
}

/* The pending values of a series at the current level. */
static MetricsValues *
pending_values(const MetricsKey *key)
{
	PendingKey	k;
	PendingEntry *p;
	bool		found;

	memcpy(&k.key, key, sizeof(MetricsKey));
	k.level = GetCurrentTransactionNestLevel();
	p = hash_search(pending, &k, HASH_ENTER, &found);
	if (!found)
		memset(&p->v, 0, sizeof(p->v));
	pending_any = true;
	return &p->v;
}

static void
observe(MetricsValues *v, Hist h, double value)
{
	int			b = 0;

	while (b < hists[h].nbounds && value > hists[h].bounds[b])
		b++;
	v->hist[h].buckets[b]++;
	v->hist[h].count++;
	v->hist[h].sum += value;
}

/* The columns of tinytemp.jobs the counts read, found once per relation. */
typedef struct JobColumns
{
	Oid			relid;
	AttrNumber	id, queue, job_type, state, run_after, started_at, finished_at, predicted_end_at;
} JobColumns;

static JobColumns job_columns;

static void
find_job_columns(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const char *names[7] = {"id", "queue", "job_type", "state", "run_after", "started_at",
	"finished_at"};
	AttrNumber *slots[7] = {&job_columns.id, &job_columns.queue, &job_columns.job_type,
		&job_columns.state, &job_columns.run_after, &job_columns.started_at,
	&job_columns.finished_at};

	if (job_columns.relid == RelationGetRelid(rel))
		return;
	for (int i = 0; i < 7; i++)
	{
		*slots[i] = SPI_fnumber(desc, names[i]);
		if (*slots[i] <= 0)
			elog(ERROR, "tinytemp.jobs has no column \"%s\"", names[i]);
	}
	/* Added in 0.3: a 0.1 or 0.2 table still being updated has none. */
	job_columns.predicted_end_at = SPI_fnumber(desc, "predicted_end_at");
	job_columns.relid = RelationGetRelid(rel);
}

static void
job_key(HeapTuple tuple, TupleDesc desc, MetricsKey *key)
{
	bool		isnull;

	memset(key, 0, sizeof(*key));
	key->db = MyDatabaseId;
	{
		Datum		label = heap_getattr(tuple, job_columns.queue, desc, &isnull);

		set_label(key->queue, label, isnull);
	}
	{
		Datum		label = heap_getattr(tuple, job_columns.job_type, desc, &isnull);

		set_label(key->job_type, label, isnull);
	}
}

static TimestampTz
get_time(HeapTuple tuple, TupleDesc desc, AttrNumber att)
{
	bool		isnull;
	Datum		d;

	if (att <= 0)
		return DT_NOBEGIN;
	d = heap_getattr(tuple, att, desc, &isnull);
	return isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
}

static int
tuple_state(HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, job_columns.state, desc, &isnull);
	char		buf[16];
	text	   *t;
	int			len;

	if (isnull)
		return -1;
	t = DatumGetTextPP(d);
	len = VARSIZE_ANY_EXHDR(t);
	if (len >= (int) sizeof(buf))
		return -1;
	memcpy(buf, VARDATA_ANY(t), len);
	buf[len] = '\0';
	return state_index(buf);
}

/* Remember the job's labels and times for the history rows that follow. */
static void
remember_job(HeapTuple tuple, TupleDesc desc, const MetricsKey *key)
{
	bool		isnull;
	int64		id = DatumGetInt64(heap_getattr(tuple, job_columns.id, desc, &isnull));
	JobInfo    *info;

	if (isnull)
		return;
	info = hash_search(job_infos, &id, HASH_ENTER, NULL);
	memcpy(&info->key, key, sizeof(MetricsKey));
	info->run_after = get_time(tuple, desc, job_columns.run_after);
	info->started_at = get_time(tuple, desc, job_columns.started_at);
	info->finished_at = get_time(tuple, desc, job_columns.finished_at);
	info->predicted_end_at = get_time(tuple, desc, job_columns.predicted_end_at);
	job_infos_any = true;
}

/*
 * Called by jobs_validate_state for the row about to be written (old_tuple
 * NULL for an insert): count the job's move between states, and remember
 * it for its history rows.
 */
void
tinytemp_metrics_job_written(Relation rel, HeapTuple old_tuple, HeapTuple new_tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MetricsKey	key;
	int			new_state;
	int			old_state = -1;
	bool		same_key = false;

	if (!counting())
		return;
	find_job_columns(rel);
	new_state = tuple_state(new_tuple, desc);
	if (old_tuple != NULL)
	{
		bool		n1, n2;
		Datum		q_old = heap_getattr(old_tuple, job_columns.queue, desc, &n1);
		Datum		q_new = heap_getattr(new_tuple, job_columns.queue, desc, &n2);

		old_state = tuple_state(old_tuple, desc);
		if (n1 == n2 && (n1 || datumIsEqual(q_old, q_new, false, -1)))
		{
			Datum		t_old = heap_getattr(old_tuple, job_columns.job_type, desc, &n1);
			Datum		t_new = heap_getattr(new_tuple, job_columns.job_type, desc, &n2);

			same_key = n1 == n2 && (n1 || datumIsEqual(t_old, t_new, false, -1));
		}
		if (same_key && old_state == new_state)
			return;				/* a heartbeat, a checkpoint, progress */
	}
	job_key(new_tuple, desc, &key);
	if (old_state >= 0 && same_key)
	{
		/* A state change within one series: one entry, both counts. */
		MetricsValues *v = pending_values(&key);

		v->jobs[old_state]--;
		if (new_state >= 0)
			v->jobs[new_state]++;
	}
	else
	{
		if (old_state >= 0)
		{
			MetricsKey	old_key;

			job_key(old_tuple, desc, &old_key);
			pending_values(&old_key)->jobs[old_state]--;
		}
		if (new_state >= 0)
			pending_values(&key)->jobs[new_state]++;
	}
	remember_job(new_tuple, desc, &key);
}

/*
 * The labels and times of job id: from the jobs this transaction changed,
 * else read from the table (a history row written without a state change).
 */
static bool
job_info(int64 id, JobInfo *out)
{
	JobInfo    *info = hash_search(job_infos, &id, HASH_FIND, NULL);
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	bool		ok = false;

	if (info != NULL)
	{
		*out = *info;
		return true;
	}
	values[0] = Int64GetDatum(id);
	SPI_connect();
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT queue, job_type, run_after, started_at, finished_at,"
									   " predicted_end_at FROM tinytemp.jobs WHERE id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;

		memset(&out->key, 0, sizeof(out->key));
		out->id = id;
		out->key.db = MyDatabaseId;
		{
			Datum		label = SPI_getbinval(t, d, 1, &isnull);

			set_label(out->key.queue, label, isnull);
		}
		{
			Datum		label = SPI_getbinval(t, d, 2, &isnull);

			set_label(out->key.job_type, label, isnull);
		}
		out->run_after = tinytemp_get_timestamptz(t, d, 3, DT_NOBEGIN);
		out->started_at = tinytemp_get_timestamptz(t, d, 4, DT_NOBEGIN);
		out->finished_at = tinytemp_get_timestamptz(t, d, 5, DT_NOBEGIN);
		out->predicted_end_at = tinytemp_get_timestamptz(t, d, 6, DT_NOBEGIN);
		ok = true;
	}
	SPI_finish();
	return ok;
}

/* The columns of tinytemp.jobs_history the trigger reads. */
static Oid	history_relid = InvalidOid;
static AttrNumber history_job_id;
static AttrNumber history_event;

static double
seconds_between(TimestampTz from, TimestampTz to)
{
	return (double) (to - from) / USECS_PER_SEC;
}

/*
 * Trigger tinytemp.jobs_history_count(), BEFORE INSERT FOR EACH ROW on
 * tinytemp.jobs_history: count the event.
 */
Datum
tinytemp_jobs_history_count(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	text	   *event;
	int64		job_id;
	JobInfo		info;
	MetricsValues *v;
	int			c;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("tinytemp.jobs_history_count() must run as a BEFORE INSERT ... FOR EACH ROW trigger"));
	tuple = trigdata->tg_trigtuple;
	if (!counting())
		return PointerGetDatum(tuple);
	desc = RelationGetDescr(trigdata->tg_relation);
	if (history_relid != RelationGetRelid(trigdata->tg_relation))
	{
		history_job_id = SPI_fnumber(desc, "job_id");
		history_event = SPI_fnumber(desc, "event");
		if (history_job_id <= 0 || history_event <= 0)
			elog(ERROR, "tinytemp.jobs_history has no column job_id or event");
		history_relid = RelationGetRelid(trigdata->tg_relation);
	}
	d = heap_getattr(tuple, history_event, desc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);
	event = DatumGetTextPP(d);
	for (c = 0; c < NUM_COUNTERS; c++)
		if (VARSIZE_ANY_EXHDR(event) == strlen(counters[c].event) &&
			memcmp(VARDATA_ANY(event), counters[c].event, VARSIZE_ANY_EXHDR(event)) == 0)
			break;
	if (c == NUM_COUNTERS)
		return PointerGetDatum(tuple);
	job_id = DatumGetInt64(heap_getattr(tuple, history_job_id, desc, &isnull));
	if (isnull || !job_info(job_id, &info))
		return PointerGetDatum(tuple);

	v = pending_values(&info.key);
	v->counters[c]++;
	if (c == C_CLAIMED && info.started_at != DT_NOBEGIN && info.run_after != DT_NOBEGIN)
		observe(v, H_WAIT, Max(0.0, seconds_between(info.run_after, info.started_at)));
	if (c == C_SUCCEEDED && info.started_at != DT_NOBEGIN && info.finished_at != DT_NOBEGIN)
	{
		double		ran = Max(0.0, seconds_between(info.started_at, info.finished_at));

		observe(v, H_DURATION, ran);
		if (info.predicted_end_at != DT_NOBEGIN && info.predicted_end_at > info.started_at)
			observe(v, H_PREDICTION_ERROR,
					ran / seconds_between(info.started_at, info.predicted_end_at));
	}
	return PointerGetDatum(tuple);
}

/*
 * Trigger tinytemp.jobs_count_removed(): BEFORE DELETE FOR EACH ROW counts
 * the job out of its state; AFTER TRUNCATE makes the jobs by state unknown
 * until the next scrape counts them.
 */
Datum
tinytemp_jobs_count_removed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("tinytemp.jobs_count_removed() must run as a trigger"));
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (counting() && truncated_level == 0)
			truncated_level = GetCurrentTransactionNestLevel();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("tinytemp.jobs_count_removed() must run BEFORE DELETE ... FOR EACH ROW or AFTER TRUNCATE"));
	if (counting())
	{
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
		HeapTuple	tuple = trigdata->tg_trigtuple;
		MetricsKey	key;
		int			state;

		find_job_columns(trigdata->tg_relation);
		state = tuple_state(tuple, desc);
		if (state >= 0)
		{
			job_key(tuple, desc, &key);
			pending_values(&key)->jobs[state]--;
		}
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/* RENDERING */

/* Append a label value, escaped as the text format asks. */
static void
append_label(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, "%s=\"", name);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*p == '"')
			appendStringInfoString(buf, "\\\"");
		else if (*p == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

/* A sample value: integers as such, the rest as the shortest exact double. */
static void
append_value(StringInfo buf, double value)
{
	char		num[64];

	if (isinf(value))
		appendStringInfoString(buf, value > 0 ? "+Inf" : "-Inf");
	else if (isnan(value))
		appendStringInfoString(buf, "NaN");
	else if (value == rint(value) && fabs(value) < 1e15)
		appendStringInfo(buf, "%.0f", value);
	else
	{
		snprintf(num, sizeof(num), "%.15g", value);
		if (strtod(num, NULL) != value)
			snprintf(num, sizeof(num), "%.17g", value);
		appendStringInfoString(buf, num);
	}
}

static void
append_header(StringInfo buf, const char *name, const char *type, const char *help)
{
	appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
compare_entries(const void *a, const void *b)
{
	const MetricsEntry *x = a;
	const MetricsEntry *y = b;
	int			c = strcmp(x->key.queue, y->key.queue);

	return c != 0 ? c : strcmp(x->key.job_type, y->key.job_type);
}

/*
 * Count this database's jobs by state once, under a SHARE lock on the
 * table, taken only if no writer holds the table now: a scrape never waits
 * for a long transaction, and never queues the writers behind its own
 * request.  Returns false when the lock was not free (the next scrape tries
 * again).
 */
static bool
count_jobs_by_state(void)
{
	HASH_SEQ_STATUS seq;
	MetricsEntry *e;
	MemoryContext spi_cxt = CurrentMemoryContext;
	MetricsEntry *rows;
	uint64		n;

	if (!ConditionalLockRelationOid(jobs_relid(), ShareLock))
		return false;
	tinytemp_spi_execute(tinytemp_plan(&count_plan,
									   "SELECT queue, job_type, state, count(*) FROM tinytemp.jobs"
									   " GROUP BY 1, 2, 3", 0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	rows = MemoryContextAllocZero(spi_cxt, sizeof(MetricsEntry) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *state = SPI_getvalue(t, d, 3);
		int			s = state ? state_index(state) : -1;

		rows[i].key.db = MyDatabaseId;
		{
			Datum		label = SPI_getbinval(t, d, 1, &isnull);

			set_label(rows[i].key.queue, label, isnull);
		}
		{
			Datum		label = SPI_getbinval(t, d, 2, &isnull);

			set_label(rows[i].key.job_type, label, isnull);
		}
		if (s >= 0)
			rows[i].v.jobs[s] = tinytemp_get_int64(t, d, 4, 0);
	}

	LWLockAcquire(metrics_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, metrics_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.db == MyDatabaseId)
			memset(e->v.jobs, 0, sizeof(e->v.jobs));
	for (uint64 i = 0; i < n; i++)
	{
		e = shared_entry(&rows[i].key);
		if (e != NULL)
			for (int s = 0; s < NUM_STATES; s++)
				e->v.jobs[s] += rows[i].v.jobs[s];
	}
	for (int i = 0; i < metrics_shared->ncounted; i++)
		if (metrics_shared->counted[i].db == MyDatabaseId)
			metrics_shared->counted[i] = metrics_shared->counted[--metrics_shared->ncounted];
	if (metrics_shared->ncounted < MAX_COUNTED_DBS)
	{
		metrics_shared->counted[metrics_shared->ncounted].db = MyDatabaseId;
		metrics_shared->counted[metrics_shared->ncounted++].jobs = jobs_relid();
	}
	LWLockRelease(metrics_shared->lock);
	pfree(rows);
	return true;
}

/* tinytemp.jobs: a new one (the extension created again) is counted again. */
static Oid
jobs_relid(void)
{
	return get_relname_relid("jobs", get_namespace_oid("tinytemp", false));
}

static bool
jobs_counted(void)
{
	bool		known = false;
	Oid			jobs = jobs_relid();

	LWLockAcquire(metrics_shared->lock, LW_SHARED);
	for (int i = 0; i < metrics_shared->ncounted; i++)
		known |= metrics_shared->counted[i].db == MyDatabaseId &&
			metrics_shared->counted[i].jobs == jobs;
	LWLockRelease(metrics_shared->lock);
	return known;
}

/* This database's entries, sorted by queue and job_type. */
static MetricsEntry *
copy_entries(int *n, uint64 *dropped)
{
	HASH_SEQ_STATUS seq;
	MetricsEntry *e;
	MetricsEntry *copy;
	int			k = 0;

	LWLockAcquire(metrics_shared->lock, LW_SHARED);
	copy = palloc(sizeof(MetricsEntry) * Max(metrics_shared->nentries, 1));
	hash_seq_init(&seq, metrics_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.db == MyDatabaseId && k < metrics_shared->nentries)
			copy[k++] = *e;
	*dropped = metrics_shared->dropped;
	LWLockRelease(metrics_shared->lock);
	qsort(copy, k, sizeof(MetricsEntry), compare_entries);
	*n = k;
	return copy;
}

static void
render_series(StringInfo buf, MetricsEntry *entries, int n)
{
	for (int c = 0; c < NUM_COUNTERS; c++)
	{
		append_header(buf, counters[c].name, "counter", counters[c].help);
		for (int i = 0; i < n; i++)
		{
			appendStringInfoString(buf, counters[c].name);
			appendStringInfoChar(buf, '{');
			append_label(buf, "queue", entries[i].key.queue);
			appendStringInfoChar(buf, ',');
			append_label(buf, "job_type", entries[i].key.job_type);
			appendStringInfoString(buf, "} ");
			append_value(buf, (double) entries[i].v.counters[c]);
			appendStringInfoChar(buf, '\n');
		}
	}
	for (int h = 0; h < NUM_HISTS; h++)
	{
		append_header(buf, hists[h].name, "histogram", hists[h].help);
		for (int i = 0; i < n; i++)
		{
			Histogram  *hg = &entries[i].v.hist[h];
			uint64		cumulative = 0;

			for (int b = 0; b <= hists[h].nbounds; b++)
			{
				cumulative += hg->buckets[b];
				appendStringInfo(buf, "%s_bucket{", hists[h].name);
				append_label(buf, "queue", entries[i].key.queue);
				appendStringInfoChar(buf, ',');
				append_label(buf, "job_type", entries[i].key.job_type);
				appendStringInfoString(buf, ",le=\"");
				append_value(buf, b < hists[h].nbounds ? hists[h].bounds[b] : INFINITY);
				appendStringInfoString(buf, "\"} ");
				append_value(buf, (double) cumulative);
				appendStringInfoChar(buf, '\n');
			}
			appendStringInfo(buf, "%s_sum{", hists[h].name);
			append_label(buf, "queue", entries[i].key.queue);
			appendStringInfoChar(buf, ',');
			append_label(buf, "job_type", entries[i].key.job_type);
			appendStringInfoString(buf, "} ");
			append_value(buf, hg->sum);
			appendStringInfo(buf, "\n%s_count{", hists[h].name);
			append_label(buf, "queue", entries[i].key.queue);
			appendStringInfoChar(buf, ',');
			append_label(buf, "job_type", entries[i].key.job_type);
			appendStringInfoString(buf, "} ");
			append_value(buf, (double) hg->count);
			appendStringInfoChar(buf, '\n');
		}
	}
}

/* tinytemp_jobs{queue,state}: the entries' counts summed over job types. */
static void
render_jobs_by_state(StringInfo buf, MetricsEntry *entries, int n)
{
	append_header(buf, "tinytemp_jobs", "gauge", "Jobs by queue and state.");
	for (int i = 0; i < n;)
	{
		int64		jobs[NUM_STATES] = {0};
		int			j = i;

		while (j < n && strcmp(entries[j].key.queue, entries[i].key.queue) == 0)
		{
			for (int s = 0; s < NUM_STATES; s++)
				jobs[s] += entries[j].v.jobs[s];
			j++;
		}
		for (int s = 0; s < NUM_STATES; s++)
		{
			appendStringInfoString(buf, "tinytemp_jobs{");
			append_label(buf, "queue", entries[i].key.queue);
			appendStringInfo(buf, ",state=\"%s\"} ", state_names[s]);
			append_value(buf, (double) Max(jobs[s], 0));
			appendStringInfoChar(buf, '\n');
		}
		i = j;
	}
}

/* Gauges read per scrape from the few rows that hold them. */
static void
render_workers_and_tenants(StringInfo buf)
{
	static const struct
	{
		const char *name;
		const char *help;
		int			col;
		double		scale;
	}			worker_gauges[] = {
		{"tinytemp_worker_cpus", "CPUs an active worker offers.", 2, 1},
		{"tinytemp_worker_free_cpus", "CPUs of an active worker that no job holds.", 3, 1},
		{"tinytemp_worker_memory_bytes", "Memory an active worker offers.", 4, 1048576},
		{"tinytemp_worker_free_memory_bytes", "Memory of an active worker that no job holds.", 5, 1048576},
		{"tinytemp_worker_gpus", "GPUs an active worker offers.", 6, 1},
		{"tinytemp_worker_free_gpus", "GPUs of an active worker that no job holds.", 7, 1},
		{"tinytemp_worker_jobs", "Jobs an active worker holds (assigned or running).", 8, 1},
	};
	SPITupleTable *workers;
	uint64		nworkers;

	tinytemp_spi_execute(tinytemp_plan(&workers_plan,
									   "SELECT name, cpus::float8, free_cpus::float8, memory_mb::float8,"
									   " free_memory_mb::float8, gpus::float8, free_gpus::float8,"
									   " jobs_held::float8, coalesce(gpu_type, '')"
									   " FROM tinytemp.worker_status ORDER BY name, id", 0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	workers = SPI_tuptable;
	nworkers = SPI_processed;
	append_header(buf, "tinytemp_workers_active", "gauge", "Workers registered and active.");
	appendStringInfo(buf, "tinytemp_workers_active " UINT64_FORMAT "\n", nworkers);
	for (int g = 0; g < (int) lengthof(worker_gauges); g++)
	{
		append_header(buf, worker_gauges[g].name, "gauge", worker_gauges[g].help);
		for (uint64 i = 0; i < nworkers; i++)
		{
			HeapTuple	t = workers->vals[i];

			appendStringInfo(buf, "%s{", worker_gauges[g].name);
			append_label(buf, "worker", SPI_getvalue(t, workers->tupdesc, 1));
			appendStringInfoChar(buf, ',');
			append_label(buf, "gpu_type", SPI_getvalue(t, workers->tupdesc, 9));
			appendStringInfoString(buf, "} ");
			append_value(buf, tinytemp_get_float8(t, workers->tupdesc, worker_gauges[g].col, 0) *
						 worker_gauges[g].scale);
			appendStringInfoChar(buf, '\n');
		}
	}

	/*
	 * Each tenant's dominant share: the largest fraction of the active
	 * workers' cpus, memory or GPUs its assigned and running jobs hold; the
	 * tenants that wait with nothing held show 0.
	 */
	tinytemp_spi_execute(tinytemp_plan(&shares_plan,
									   TINYTEMP_PENDING_TENANTS_CTE
									   ", cap AS ("
									   "  SELECT sum(cpus)::float8 AS c, sum(memory_mb)::float8 AS m,"
									   "    sum(gpus)::float8 AS g FROM tinytemp.workers WHERE state = 'active'"
									   "), held AS ("
									   "  SELECT coalesce(tenant, '') AS tenant, sum(cpus) AS c,"
									   "    sum(memory_mb) AS m, sum(gpus) AS g FROM tinytemp.jobs"
									   "  WHERE state IN ('assigned', 'running') GROUP BY 1"
									   ") SELECT coalesce(h.tenant, t.tenant),"
									   "  coalesce(greatest(h.c / nullif(cap.c, 0), h.m / nullif(cap.m, 0),"
									   "    h.g / nullif(cap.g, 0)), 0)"
									   " FROM held h FULL JOIN (SELECT tenant FROM t WHERE tenant IS NOT NULL) t"
									   "   ON t.tenant = h.tenant CROSS JOIN cap"
									   " ORDER BY 1", 0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	append_header(buf, "tinytemp_tenant_dominant_share", "gauge",
				  "A tenant's dominant resource share of the active workers (DRF), from 0 to 1.");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		appendStringInfoString(buf, "tinytemp_tenant_dominant_share{");
		append_label(buf, "tenant", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		appendStringInfoString(buf, "} ");
		append_value(buf, tinytemp_get_float8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, 0));
		appendStringInfoChar(buf, '\n');
	}

	tinytemp_spi_execute(tinytemp_plan(&model_plan,
									   "SELECT coalesce(max(version), 0) FROM tinytemp.predictor_models",
									   0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	append_header(buf, "tinytemp_predictor_model_version", "gauge",
				  "Version of the runtime predictor's current model.");
	appendStringInfo(buf, "tinytemp_predictor_model_version " INT64_FORMAT "\n",
					 tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0));
}

/*
 * The whole exposition, for this database, into buf.  SPI must be
 * connected, in a transaction, as a role that may read tinytemp's tables.
 */
void
tinytemp_metrics_render(StringInfo buf)
{
	MetricsEntry *entries;
	int			n;
	uint64		dropped;
	bool		counted;

	if (metrics_shared == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("tinytemp's metrics need tinytemp in shared_preload_libraries"),
				errhint("Add tinytemp to shared_preload_libraries and restart the server."));
	counted = RecoveryInProgress() || jobs_counted() || count_jobs_by_state();
	entries = copy_entries(&n, &dropped);
	render_series(buf, entries, n);
	if (RecoveryInProgress())
	{
		/* A standby counts nothing itself: show what its copy of the table holds. */
		append_header(buf, "tinytemp_jobs", "gauge", "Jobs by queue and state.");
		tinytemp_spi_execute(tinytemp_plan(&standby_plan,
										   "SELECT queue, state, count(*) FROM tinytemp.jobs"
										   " GROUP BY 1, 2 ORDER BY 1, 2", 0, NULL),
							 NULL, NULL, SPI_OK_SELECT);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			appendStringInfoString(buf, "tinytemp_jobs{");
			append_label(buf, "queue", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			appendStringInfoChar(buf, ',');
			append_label(buf, "state", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
			appendStringInfo(buf, "} %s\n", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3));
		}
	}
	else if (counted)
		render_jobs_by_state(buf, entries, n);
	pfree(entries);
	render_workers_and_tenants(buf);
	append_header(buf, "tinytemp_metrics_dropped_total", "counter",
				  "Metric updates lost because the shared table of series was full.");
	appendStringInfo(buf, "tinytemp_metrics_dropped_total " UINT64_FORMAT "\n", dropped);
}

/* tinytemp_metrics(): the Prometheus text exposition of this database's queue. */
Datum
tinytemp_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	TinytempCaller caller;
	text	   *result;

	tinytemp_enter(fcinfo, &caller);
	initStringInfo(&buf);
	SPI_connect();
	tinytemp_metrics_render(&buf);
	SPI_finish();
	tinytemp_leave(&caller);
	result = cstring_to_text_with_len(buf.data, buf.len);
	pfree(buf.data);
	PG_RETURN_TEXT_P(result);
}

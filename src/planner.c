/*
 * planner.c
 *	  The planner's pass, run by the background worker after each lease
 *	  check and by tinytemp_schedule() (the simulator calls it directly):
 *
 *	  1. force back the preempted jobs whose grace period ran out, and
 *		 requeue the jobs whose lease ran out (with the rest of their gang);
 *	  2. release gangs assigned to a worker that never claimed its member;
 *	  3. fail the jobs whose dependency failed, and the jobs no worker can
 *		 take within their placement timeout ('unschedulable');
 *	  4. walk the ready jobs in the policy's order, as the claims will take
 *		 them, and
 *		 - start gangs: when gang_size distinct workers can each fit a
 *		   member, mark the members 'assigned' to them, all in one
 *		   statement, so a gang is placed whole or not at all and two gangs
 *		   never hold parts of the same workers (no deadlock);
 *		 - under 'fifo', stop at the first job that cannot start;
 *		 - under 'tinytemp', reserve resources for the highest-ranked jobs
 *		   that cannot start yet (up to MAX_BACKFILL_RESERVATIONS, each on
 *		   workers of its own), on the workers where each is predicted to
 *		   fit soonest, from then on (backfill: see policy.c), and preempt
 *		   lower-priority running jobs for a job of a higher class.
 *
 * Only one pass runs at a time (a try-lock: a second caller skips), and the
 * pass takes each worker's claim lock, without waiting, before assigning to
 * it, so that it never spends resources a concurrent claim is spending.
 */
#include "tinytemp.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "storage/lmgr.h"

PG_FUNCTION_INFO_V1(tinytemp_schedule);
PG_FUNCTION_INFO_V1(tinytemp_rank_cost_sql);

/* How many ready jobs (gangs counting once per member) one pass looks at. */
#define PLAN_WINDOW 1000
/*
 * Seconds between two checks of which requests no worker can fit: the
 * check reads every pending job, and its answer changes only with the
 * workers or new requests, which the placement timeout outlasts anyway.
 */
#define UNSCHEDULABLE_CHECK_S 10
/*
 * Weight of a worker's speed against its fit when the planner places a
 * gang: each halving of the gang's estimated runtime there counts as much
 * as leaving this many workers' worth of idle room.
 */
#define GANG_SPEED_WEIGHT 4.0
/* How many jobs one pass may start preemptions for. */
#define MAX_PREEMPTORS_PER_PASS 8
/* How many of the jobs that cannot start one pass tries to preempt for in their own class. */
#define MAX_SERVICE_PREEMPTION_TRIES 16
/* How many of the jobs that cannot start one pass reserves for, on distinct workers. */
#define MAX_BACKFILL_RESERVATIONS 8

/* What the pass did, for its caller. */
typedef struct PassCounts
{
	int			expired;
	int			released;
	int			forced_preemptions;
	int			dependency_failed;
	int			unschedulable;
	int			gangs_assigned;
	int			reservations;
	int			preemptions_requested;
} PassCounts;

/* A running (or assigned) job, as the planner sees it. */
typedef struct PlanJob
{
	int64		id;
	int32		priority;
	TinytempRunning run;
	TimestampTz started_at;
	int			preemptions;
	bool		preempt_requested;
	bool		in_gang;
	double		run_s;			/* seconds of this run so far */
	double		cost;			/* its rank cost at the service it has had by now */
	double		waited_s;		/* all it waited before this run (aging credit / aging_rate) */
} PlanJob;

typedef struct PlanWorker
{
	int64		id;
	TinytempResources capacity;
	TinytempResources avail;	/* free now, less what this pass placed */
	TinytempResources free_now; /* free now */
	char	   *gpu_type;
	double		speed;
	int			slots;			/* the most jobs it runs at once; -1: no limit */
	PlanJob    *jobs;			/* by predicted end */
	int			njobs;
	int			jobs_cap;
	TinytempRunning *running;	/* the same, for policy.c, and the jobs this pass placed */
	int			nrunning;
	int			running_cap;
	TinytempReservation res[MAX_PREEMPTORS_PER_PASS + MAX_BACKFILL_RESERVATIONS];
	int			nres;
} PlanWorker;

/* A ready job, or a gang's pending members. */
typedef struct PlanUnit
{
	int64		id;				/* the job's, or the gang's first member's */
	int			size;			/* pending members: 1 for a job */
	int			gang_size;		/* members in all: 1 for a job */
	bool		gang;
	int64	   *members;
	TinytempRank rank;
	TinytempResources req;		/* per member */
	TinytempJobSpec spec;
	double		runtime_estimate_s;	/* -1: none */
	double		cost;			/* its rank cost at the service it has had */
	double		waited_s;		/* all it has waited (aging credit / aging_rate) */
	bool		starving;		/* waited past tinytemp.starvation_limit in all */
} PlanUnit;

/* Why the planner asks a running job to stop. */
typedef enum PreemptReason
{
	PREEMPT_PRIORITY,			/* for a job of a higher class */
	PREEMPT_SERVICE,			/* for a job of its class that ranks far ahead */
	PREEMPT_STARVATION			/* for a job of its class that has waited too long */
} PreemptReason;

static const char *const preempt_reason_names[] = {"priority", "service", "starvation"};

/*
 * All the seconds a job has waited, up to `until` (seconds from the Unix
 * epoch): its rank key less its rank cost is aging_rate times the epoch
 * from which its waits add up.  0 when aging is off.
 */
static double
waited_until(double rank_key, double cost, double until)
{
	if (!(tinytemp_aging_rate > 0))
		return 0;
	return Max(until - (rank_key - cost) / tinytemp_aging_rate, 0);
}

/* ---------- housekeeping ---------- */

/* Run a statement that reports how many rows it handled in its first column. */
static int
run_counting(SPIPlanPtr plan, Datum *values)
{
	bool		isnull;

	tinytemp_spi_execute(plan, values, NULL, SPI_OK_SELECT);
	return (int) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											 &isnull));
}

/* Put back to pending the preempted jobs that did not checkpoint within the grace period. */
static int
force_preemptions(void)
{
	static SPIPlanPtr plans[2];
#define FORCE_SQL(SERVICE, ATTAINED) \
		"WITH x AS (" \
		"  SELECT id, worker_id FROM tinytemp.jobs" \
		"  WHERE state = 'running'" \
		"    AND preempt_requested_at <= tinytemp.now() - make_interval(secs => $1)" \
		"  FOR UPDATE SKIP LOCKED" \
		"), u AS (" \
		"  UPDATE tinytemp.jobs j SET state = 'pending', worker_id = NULL, lease_until = NULL," \
		"    attempts = j.attempts - 1, preemptions = j.preemptions + 1," SERVICE \
		"    preempt_requested_at = NULL, preempt_notified_at = NULL, predicted_end_at = NULL," \
		"    run_after = tinytemp.now()," \
		"    updated_at = tinytemp.now()" \
		"  FROM x WHERE j.id = x.id" \
		"  RETURNING j.id, x.worker_id, j.preemptions, j.queue, " ATTAINED " AS attained_s" \
		"), h AS (" \
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)" \
		"  SELECT id, 'preempted', worker_id," \
		"    jsonb_strip_nulls(jsonb_build_object('preemptions', preemptions, 'forced', true," \
		"      'attained_s', round(attained_s::numeric, 3))) FROM u" \
		") SELECT count(*), min(queue) FROM u"
	/* by whether the schema is 0.8's or later, with the service a preempted job has had */
	static const char *const sql[2] = {
		FORCE_SQL("", "NULL::float8"),
		FORCE_SQL("    attained_s = " TINYTEMP_REQUEUED_ATTAINED ","
				  "    rank_key = " TINYTEMP_REQUEUED_RANK_KEY("$2") ",",
				  "j.attained_s")
	};
	int			v08 = tinytemp_schema_has_service();
	Oid			argtypes[2] = {FLOAT8OID, FLOAT8OID};
	Datum		values[2] = {Float8GetDatum(tinytemp_preempt_grace_ms / 1000.0),
	Float8GetDatum(tinytemp_aging_rate)};
	int			n = run_counting(tinytemp_plan(&plans[v08], sql[v08], 2, argtypes), values);

	if (n > 0)
		tinytemp_notify_enqueued(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	return n;
}

/*
 * Fail the pending jobs that depend on a job that failed or was cancelled,
 * and so on down each pipeline.
 */
static int
fail_broken_dependencies(void)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH x AS ("
		"  SELECT j.id FROM tinytemp.jobs j"
		"  WHERE j.state = 'pending' AND j.depends_on IS NOT NULL"
		"    AND EXISTS (SELECT FROM tinytemp.jobs d"
		"                WHERE d.id = ANY (j.depends_on) AND d.state IN ('failed', 'cancelled'))"
		"  FOR UPDATE SKIP LOCKED"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'failed', finished_at = tinytemp.now(),"
		"    last_error = 'dependency failed', updated_at = tinytemp.now()"
		"  FROM x WHERE j.id = x.id"
		"  RETURNING j.id, j.depends_on"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, detail)"
		"  SELECT id, 'dead_lettered', jsonb_build_object('reason', 'dependency failed',"
		"    'dependencies', to_jsonb(depends_on)) FROM u"
		") SELECT count(*) FROM u";
	int			total = 0;
	int			n;

	do
	{
		n = run_counting(tinytemp_plan(&plan, sql, 0, NULL), NULL);
		total += n;
	} while (n > 0);
	return total;
}

/*
 * Note when each pending job's request stopped fitting every active worker
 * (or fewer workers than its gang needs), at most every
 * UNSCHEDULABLE_CHECK_S seconds, and fail those that stayed so for their
 * placement timeout.  Without any active worker nothing is marked or
 * failed: the fleet is down (or not up yet), which says nothing of the
 * requests, and marking a whole queue would lock every row of it.
 */
static int
fail_unschedulable(void)
{
	static SPIPlanPtr mark_plan = NULL;
	static SPIPlanPtr fail_plan = NULL;
	static const char *mark_sql =
		"WITH s AS ("
		"  SELECT DISTINCT cpus, memory_mb, gpus, gpu_type, gang_size FROM tinytemp.jobs"
		"  WHERE state = 'pending'"
		"), f AS MATERIALIZED ("
		"  SELECT s.*, (SELECT count(*) FROM tinytemp.workers w"
		"               WHERE w.state = 'active' AND w.cpus >= s.cpus AND w.memory_mb >= s.memory_mb"
		"                 AND w.gpus >= s.gpus"
		"                 AND (s.gpus = 0 OR s.gpu_type IS NULL OR s.gpu_type = w.gpu_type))"
		"    >= s.gang_size AS fits"
		"  FROM s"
		") UPDATE tinytemp.jobs j SET unschedulable_since ="
		"    CASE WHEN f.fits THEN NULL ELSE tinytemp.now() END"
		"  FROM f"
		"  WHERE j.state = 'pending' AND j.cpus = f.cpus AND j.memory_mb = f.memory_mb"
		"    AND j.gpus = f.gpus AND j.gpu_type IS NOT DISTINCT FROM f.gpu_type"
		"    AND j.gang_size = f.gang_size AND (j.unschedulable_since IS NULL) <> f.fits"
		"    AND EXISTS (SELECT FROM tinytemp.workers WHERE state = 'active')";
	static const char *fail_sql =
		"WITH x AS ("
		"  SELECT id, coalesce(placement_timeout, make_interval(secs => $1)) AS timeout"
		"  FROM tinytemp.jobs"
		"  WHERE state = 'pending' AND unschedulable_since IS NOT NULL"
		"    AND EXISTS (SELECT FROM tinytemp.workers WHERE state = 'active')"
		"  FOR UPDATE SKIP LOCKED"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'failed', finished_at = tinytemp.now(),"
		"    last_error = 'unschedulable', updated_at = tinytemp.now()"
		"  FROM x WHERE j.id = x.id AND x.timeout > interval '0'"
		"    AND j.unschedulable_since + x.timeout <= tinytemp.now()"
		"    AND j.run_after + x.timeout <= tinytemp.now()"
		"  RETURNING j.id, x.timeout"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, detail)"
		"  SELECT id, 'dead_lettered', jsonb_build_object('reason', 'unschedulable',"
		"    'placement_timeout_s', extract(epoch FROM timeout)) FROM u"
		") SELECT count(*) FROM u";
	Oid			argtypes[1] = {FLOAT8OID};
	Datum		values[1] = {Float8GetDatum(tinytemp_placement_timeout_ms / 1000.0)};
	static TimestampTz last_check = DT_NOBEGIN;
	TimestampTz now = tinytemp_now();

	/* A virtual clock may also go back: then check at once. */
	if (now < last_check || now >= last_check + (TimestampTz) UNSCHEDULABLE_CHECK_S * USECS_PER_SEC)
	{
		tinytemp_spi_execute(tinytemp_plan(&mark_plan, mark_sql, 0, NULL), NULL, NULL,
							 SPI_OK_UPDATE);
		last_check = now;
	}
	return run_counting(tinytemp_plan(&fail_plan, fail_sql, 1, argtypes), values);
}

/* ---------- the state the walk plans on ---------- */

/* Order of running jobs by predicted end. */
static int
plan_job_cmp(const void *a, const void *b)
{
	const PlanJob *x = a;
	const PlanJob *y = b;

	if (x->run.end_at != y->run.end_at)
		return x->run.end_at < y->run.end_at ? -1 : 1;
	return x->id < y->id ? -1 : (x->id > y->id);
}

/*
 * Load the active workers with what they hold, and their running jobs
 * (with their rank costs on a 0.8 schema, v08).
 */
static PlanWorker *
read_workers(int *nworkers, TimestampTz now, bool v08)
{
	static SPIPlanPtr worker_plan = NULL;
	static SPIPlanPtr job_plans[2];
	static const char *worker_sql =
		"SELECT id, cpus, memory_mb, gpus, gpu_type, speed, " TINYTEMP_WORKER_SLOTS_SQL("w")
		" FROM tinytemp.workers w WHERE state = 'active' ORDER BY id";
#define JOB_SQL(COSTS) \
		"SELECT worker_id, id, priority, cpus, memory_mb, gpus," \
		"  " TINYTEMP_EXPECTED_END_SQL "," \
		"  coalesce(started_at, tinytemp.now()), preemptions, preempt_requested_at IS NOT NULL," \
		"  gang_id IS NOT NULL, " TINYTEMP_RUN_S "," COSTS \
		" FROM tinytemp.jobs j WHERE state IN ('assigned', 'running')" \
		" ORDER BY worker_id"
	/* by whether the schema is 0.8's or later: the rank costs, at the service had by now and before */
	static const char *const job_sql[2] = {
		JOB_SQL("  0::float8, rank_key, 0::float8"),
		JOB_SQL("  " TINYTEMP_JOB_COST_SQL("j.attained_s + " TINYTEMP_RUN_S) ","
				"  rank_key, " TINYTEMP_JOB_COST_SQL("j.attained_s"))
	};
	PlanWorker *workers;
	int			n;
	int			i;

	tinytemp_spi_execute(tinytemp_plan(&worker_plan, worker_sql, 0, NULL), NULL, NULL,
						 SPI_OK_SELECT);
	n = (int) SPI_processed;
	workers = palloc0(sizeof(PlanWorker) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		PlanWorker *w = &workers[i];

		w->id = tinytemp_get_int64(t, d, 1, 0);
		w->capacity.cpus = tinytemp_get_int64(t, d, 2, 0);
		w->capacity.memory_mb = tinytemp_get_int64(t, d, 3, 0);
		w->capacity.gpus = tinytemp_get_int64(t, d, 4, 0);
		w->gpu_type = SPI_getvalue(t, d, 5);
		w->speed = tinytemp_get_float8(t, d, 6, 1.0);
		w->slots = (int) tinytemp_get_int64(t, d, 7, -1);
		w->free_now = w->capacity;
		w->jobs_cap = 8;
		w->jobs = palloc(sizeof(PlanJob) * w->jobs_cap);
	}

	/* Both lists are by worker id: walk them together. */
	i = 0;

	tinytemp_spi_execute(tinytemp_plan(&job_plans[v08], job_sql[v08], 0, NULL), NULL, NULL,
						 SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int64		worker_id = tinytemp_get_int64(t, d, 1, 0);
		PlanWorker *w;
		PlanJob    *j;

		while (i < n && workers[i].id < worker_id)
			i++;
		if (i == n || workers[i].id != worker_id)
			continue;			/* a retired worker's job, released elsewhere */
		w = &workers[i];
		if (w->njobs == w->jobs_cap)
		{
			w->jobs_cap *= 2;
			w->jobs = repalloc(w->jobs, sizeof(PlanJob) * w->jobs_cap);
		}
		j = &w->jobs[w->njobs++];
		j->id = tinytemp_get_int64(t, d, 2, 0);
		j->priority = (int32) tinytemp_get_int64(t, d, 3, 0);
		j->run.held.cpus = tinytemp_get_int64(t, d, 4, 0);
		j->run.held.memory_mb = tinytemp_get_int64(t, d, 5, 0);
		j->run.held.gpus = tinytemp_get_int64(t, d, 6, 0);
		j->started_at = tinytemp_get_timestamptz(t, d, 8, now);
		j->run.end_at = tinytemp_expected_end(tinytemp_get_timestamptz(t, d, 7, now),
											  j->started_at, now);
		j->preemptions = (int) tinytemp_get_int64(t, d, 9, 0);
		j->preempt_requested = DatumGetBool(SPI_getbinval(t, d, 10, &(bool){false}));
		j->in_gang = DatumGetBool(SPI_getbinval(t, d, 11, &(bool){false}));
		j->run_s = tinytemp_get_float8(t, d, 12, 0);
		j->cost = tinytemp_get_float8(t, d, 13, 0);
		j->waited_s = waited_until(tinytemp_get_float8(t, d, 14, 0),
								   tinytemp_get_float8(t, d, 15, 0),
								   (double) (j->started_at - SetEpochTimestamp()) / USECS_PER_SEC);
		tinytemp_resources_sub(&w->free_now, &j->run.held);
	}
	for (i = 0; i < n; i++)
	{
		PlanWorker *w = &workers[i];

		w->avail = w->free_now;
		qsort(w->jobs, w->njobs, sizeof(PlanJob), plan_job_cmp);
		w->running_cap = w->njobs + 8;
		w->running = palloc(sizeof(TinytempRunning) * w->running_cap);
		for (int k = 0; k < w->njobs; k++)
			w->running[k] = w->jobs[k].run;
		w->nrunning = w->njobs;
	}
	*nworkers = n;
	return workers;
}

/*
 * Settle the gang units: the window of ready jobs ends where it ends, and
 * may cut a gang's members off (or a tenant's window may), so read all the
 * ready members of every gang.  A gang whose members already succeeded
 * (one finished before another's worker was lost) is placed with the
 * members it has left, together; a gang whose other members are neither
 * ready nor done stays out of this pass.  So a gang is only ever assigned
 * whole.  Returns how many units are left.
 */
static int
complete_gangs(PlanUnit *units, int n)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	int			kept = 0;

	for (int k = 0; k < n; k++)
	{
		PlanUnit   *u = &units[k];

		if (u->gang)
		{
			Datum		values[1] = {Int64GetDatum(u->id)};
			int64		succeeded;

			tinytemp_spi_execute(tinytemp_plan(&plan,
											   "SELECT j.id, (SELECT count(*) FROM tinytemp.jobs s"
											   "  WHERE s.gang_id = $1 AND s.state = 'succeeded')"
											   " FROM tinytemp.jobs j"
											   " WHERE j.gang_id = $1 AND " TINYTEMP_READY_CONDITION
											   " ORDER BY j.id",
											   1, argtypes),
								 values, NULL, SPI_OK_SELECT);
			if (SPI_processed == 0)
				continue;
			succeeded = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, 0);
			if (SPI_processed + succeeded != (uint64) u->gang_size)
				continue;
			u->size = (int) SPI_processed;
			for (int m = 0; m < u->size; m++)
				u->members[m] = tinytemp_get_int64(SPI_tuptable->vals[m], SPI_tuptable->tupdesc, 1, 0);
		}
		units[kept++] = *u;
	}
	return kept;
}

/*
 * Who submitted the job whose tenant, queue and params are the columns
 * from `first` of the tuple: its estimates on each worker are the
 * predictor's for it, history of requests included, as at enqueue.
 */
static const TinytempJobIdentity *
read_identity(HeapTuple t, TupleDesc d, int first)
{
	TinytempJobIdentity *who = palloc(sizeof(TinytempJobIdentity));
	bool		isnull;
	Datum		params = SPI_getbinval(t, d, first + 2, &isnull);
	Jsonb	   *p = isnull ? NULL : DatumGetJsonbP(params);

	who->tenant = SPI_getvalue(t, d, first);
	who->queue = SPI_getvalue(t, d, first + 1);
	who->params = p ? VARDATA_ANY(p) : NULL;
	who->params_len = p ? VARSIZE_ANY_EXHDR(p) : 0;
	return who;
}

/*
 * Load the ready jobs in the policy's order, a gang's pending members as
 * one unit (a gang is ready when none of its members holds a worker), with
 * their rank costs on a 0.8 schema (v08).
 */
static PlanUnit *
read_units(int *nunits, bool v08)
{
	static SPIPlanPtr plans[2][2];
#define UNIT_COLUMNS(COST) \
	"j.id, j.job_type, j.model, j.dataset_size, j.epochs, j.batch_size, j.cpus," \
	" j.gpus, j.gpu_type, j.memory_mb, j.priority, j.runtime_estimate_s, j.gang_id, j.rank_key," \
	" j.gang_size, " COST ", j.tenant, j.queue, j.params"
/* the rank cost, at the service a job has had: from 0.8 */
#define UNIT_COST_08 TINYTEMP_JOB_COST_SQL("j.attained_s")
#define UNIT_CONDITION \
	TINYTEMP_READY_CONDITION \
	" AND (j.gang_id IS NULL OR NOT EXISTS (SELECT FROM tinytemp.jobs m" \
	"      WHERE m.gang_id = j.gang_id AND m.state IN ('assigned', 'running')))"
	/* tinytemp: the best of each tenant from jobs_rank_idx, then merged */
#define UNITS_TINYTEMP(COST) \
		TINYTEMP_PENDING_TENANTS_CTE \
		" SELECT c.* FROM t CROSS JOIN LATERAL (" \
		"  SELECT " UNIT_COLUMNS(COST) " FROM tinytemp.jobs j" \
		"  WHERE coalesce(j.tenant, '') = t.tenant AND " UNIT_CONDITION \
		"  ORDER BY j.priority DESC, j.rank_key LIMIT $1" \
		" ) c WHERE t.tenant IS NOT NULL" \
		" ORDER BY c.priority DESC, c.rank_key, coalesce(c.gang_id, c.id), c.id LIMIT $1"
	/* fifo: arrival order, from jobs_ready_idx */
#define UNITS_FIFO(COST) \
		"SELECT " UNIT_COLUMNS(COST) " FROM tinytemp.jobs j WHERE " UNIT_CONDITION \
		" ORDER BY j.priority DESC, j.id LIMIT $1"
	/* [schema 0.8 or later][fifo] */
	static const char *const sql[2][2] = {
		{UNITS_TINYTEMP("0::float8"), UNITS_FIFO("0::float8")},
		{UNITS_TINYTEMP(UNIT_COST_08), UNITS_FIFO(UNIT_COST_08)}
	};
	int			fifo = tinytemp_policy == TINYTEMP_POLICY_FIFO;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(PLAN_WINDOW)};
	PlanUnit   *units;
	int			n = 0;
	double		now_s = (double) (tinytemp_now() - SetEpochTimestamp()) / USECS_PER_SEC;

	tinytemp_spi_execute(tinytemp_plan(&plans[v08][fifo], sql[v08][fifo], 1, argtypes), values,
						 NULL, SPI_OK_SELECT);
	units = palloc0(sizeof(PlanUnit) * Max(SPI_processed, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int64		gang_id = tinytemp_get_int64(t, d, 13, 0);
		PlanUnit   *u = NULL;

		/* A gang's members join its unit, where its first member put it. */
		for (int k = n - 1; k >= 0 && gang_id != 0 && u == NULL; k--)
			if (units[k].id == gang_id)
				u = &units[k];
		if (u != NULL)
		{
			u->members[u->size++] = tinytemp_get_int64(t, d, 1, 0);
			continue;
		}
		u = &units[n++];
		u->id = gang_id != 0 ? gang_id : tinytemp_get_int64(t, d, 1, 0);
		u->gang_size = (int) tinytemp_get_int64(t, d, 15, 1);
		u->members = palloc(sizeof(int64) * u->gang_size);
		u->members[0] = tinytemp_get_int64(t, d, 1, 0);
		u->size = 1;
		u->gang = gang_id != 0;
		tinytemp_get_spec(t, d, 2, &u->spec);
		u->spec.who = read_identity(t, d, 17);
		u->rank.priority = (int32) tinytemp_get_int64(t, d, 11, 0);
		u->rank.rank_key = tinytemp_get_float8(t, d, 14, 0);
		u->runtime_estimate_s = tinytemp_get_float8(t, d, 12, -1);
		u->req = tinytemp_spec_request(&u->spec);
		u->cost = tinytemp_get_float8(t, d, 16, 0);
		u->waited_s = waited_until(u->rank.rank_key, u->cost, now_s);
		u->starving = tinytemp_starvation_limit_ms > 0 &&
			u->waited_s >= tinytemp_starvation_limit_ms / 1000.0 &&
			(u->gang || u->req.gpus > 1 || (u->req.gpus == 0 && u->req.cpus > 1));
	}
	*nunits = complete_gangs(units, n);
	return units;
}

/* Whether worker w could ever run a member of unit u. */
static bool
capable(const PlanWorker *w, const PlanUnit *u)
{
	return tinytemp_fits(&u->req, &w->capacity) &&
		tinytemp_gpu_type_matches(u->req.gpus, u->spec.gpu_type, w->gpu_type);
}

/*
 * Whether w has a slot free once `stopped` of the jobs it holds (or this
 * pass placed there) have stopped: a worker that holds as many jobs as its
 * slots claims no more, whatever room it has left.
 */
static bool
slot_free(const PlanWorker *w, int stopped)
{
	return w->slots < 0 || w->nrunning - stopped < w->slots;
}

/*
 * When w is expected to have a slot free: now, or when enough of the jobs
 * it holds have reached their predicted ends; DT_NOEND for a worker of no
 * slots.
 */
static TimestampTz
slot_free_at(const PlanWorker *w, TimestampTz now)
{
	if (slot_free(w, 0))
		return now;
	if (w->slots == 0)
		return DT_NOEND;
	return Max(now, w->running[w->nrunning - w->slots].end_at);
}

/*
 * How badly u's member fits what w has left: the shares of w's capacity
 * it would leave idle, GPUs counting most, and a CPU job on a GPU worker
 * worst of all, so that CPU work does not strand GPUs.  Lower is better.
 */
static double
fit_waste(const PlanWorker *w, const PlanUnit *u)
{
	double		waste = 0;

	if (w->capacity.gpus > 0)
		waste += 4.0 * (w->avail.gpus - u->req.gpus) / w->capacity.gpus;
	if (u->req.gpus == 0 && w->capacity.gpus > 0)
		waste += 8.0;
	waste += (double) (w->avail.cpus - u->req.cpus) / Max(w->capacity.cpus, 1);
	waste += (double) (w->avail.memory_mb - u->req.memory_mb) / Max(w->capacity.memory_mb, 1);
	return waste;
}

/* Order of candidate workers by a per-worker key. */
typedef struct WorkerKey
{
	int			index;
	double		key;
	TimestampTz start;			/* earliest_start's: when a member fits there */
} WorkerKey;

static int
worker_key_cmp(const void *a, const void *b)
{
	const WorkerKey *x = a;
	const WorkerKey *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->index - y->index;
}

/*
 * The workers where a member of u can start now (fits what is left, and
 * the reservations there allow it), best fit first; returns how many.
 */
static int
workers_fitting_now(PlanWorker *workers, int nworkers, const PlanUnit *u, TimestampTz now,
					WorkerKey *out)
{
	int			n = 0;

	for (int i = 0; i < nworkers; i++)
	{
		PlanWorker *w = &workers[i];
		double		est;

		if (!capable(w, u) || !tinytemp_fits(&u->req, &w->avail) || !slot_free(w, 0))
			continue;
		est = w->nres == 0 && !u->gang ? -1 :
			tinytemp_estimate_on(&u->spec, u->runtime_estimate_s, w->gpu_type, w->speed);
		if (!tinytemp_reservations_allow(u->id, u->rank, &u->req, est, &w->avail, w->res, w->nres,
										 now))
			continue;
		out[n].index = i;
		out[n].key = fit_waste(w, u);
		/* A gang is placed for real: on the fastest workers first, then the best fit. */
		if (u->gang && est > 0)
			out[n].key += GANG_SPEED_WEIGHT * log2(Max(est, 1.0));
		n++;
	}
	qsort(out, n, sizeof(WorkerKey), worker_key_cmp);
	return n;
}

/*
 * Count u's member as running on w from now until its predicted end, so
 * that the jobs after it in the walk, and the earliest start of the job
 * that gets the reservation, see the room it will take.
 */
static void
place(PlanWorker *w, const PlanUnit *u, TimestampTz now)
{
	double		est = tinytemp_estimate_on(&u->spec, u->runtime_estimate_s, w->gpu_type, w->speed);
	TinytempRunning run;
	int			k;

	tinytemp_resources_sub(&w->avail, &u->req);
	run.held = u->req;
	run.end_at = now + (TimestampTz) (Min(Max(est, 0), 1e8) * USECS_PER_SEC);
	if (w->nrunning == w->running_cap)
	{
		w->running_cap *= 2;
		w->running = repalloc(w->running, sizeof(TinytempRunning) * w->running_cap);
	}
	for (k = w->nrunning; k > 0 && w->running[k - 1].end_at > run.end_at; k--)
		w->running[k] = w->running[k - 1];
	w->running[k] = run;
	w->nrunning++;
}

/* ---------- decisions ---------- */

/*
 * Mark a gang's members 'assigned' to the chosen workers, in one
 * statement.  Fails (changing nothing) when one of the workers is busy
 * claiming: the gang waits for the next pass.
 */
static bool
assign_gang(PlanWorker *workers, const PlanUnit *u, const WorkerKey *chosen)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH a AS ("
		"  SELECT * FROM unnest($1, $2) a(id, worker_id)"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'assigned', worker_id = a.worker_id,"
		"    assigned_at = tinytemp.now(), updated_at = tinytemp.now(), unschedulable_since = NULL"
		"  FROM a WHERE j.id = a.id AND j.state = 'pending'"
		"  RETURNING j.id, j.worker_id, j.gang_id, j.gang_rank, j.queue"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'assigned', worker_id, jsonb_build_object('gang_id', gang_id,"
		"    'gang_rank', gang_rank) FROM u"
		") SELECT count(*), min(queue) FROM u";
	Oid			argtypes[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[2];
	int64	   *wids = palloc(sizeof(int64) * u->size);

	for (int k = 0; k < u->size; k++)
	{
		wids[k] = workers[chosen[k].index].id;
		if (!tinytemp_try_lock(TINYTEMP_LOCK_WORKER, (uint64) wids[k]))
			return false;
	}
	values[0] = tinytemp_int8_array(u->members, u->size);
	values[1] = tinytemp_int8_array(wids, u->size);
	if (run_counting(tinytemp_plan(&plan, sql, 2, argtypes), values) != u->size)
		elog(ERROR, "gang " INT64_FORMAT " changed while it was being assigned", u->id);
	/* Wake the workers, so that they claim their members at once. */
	tinytemp_notify_enqueued(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	return true;
}

/* Record reservations for u on the chosen workers from start_at. */
static void
reserve(PlanWorker *workers, const PlanUnit *u, const WorkerKey *chosen, TimestampTz start_at,
		const char *reason, TimestampTz since)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"INSERT INTO tinytemp.reservations"
		"  (job_id, worker_id, start_at, cpus, memory_mb, gpus, reason, since)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
	Oid			argtypes[8] = {INT8OID, INT8OID, TIMESTAMPTZOID, INT4OID, INT8OID, INT4OID,
	TEXTOID, TIMESTAMPTZOID};
	Datum		values[8];

	for (int k = 0; k < u->size; k++)
	{
		PlanWorker *w = &workers[chosen[k].index];
		TinytempReservation *r;

		if (w->nres >= (int) lengthof(w->res))
			continue;
		r = &w->res[w->nres++];
		r->job_id = u->id;
		r->rank = u->rank;
		r->start_at = start_at;
		r->since = since;
		r->held = u->req;
		values[0] = Int64GetDatum(u->id);
		values[1] = Int64GetDatum(w->id);
		values[2] = TimestampTzGetDatum(start_at);
		values[3] = Int32GetDatum((int32) u->req.cpus);
		values[4] = Int64GetDatum(u->req.memory_mb);
		values[5] = Int32GetDatum((int32) u->req.gpus);
		values[6] = CStringGetTextDatum(reason);
		values[7] = TimestampTzGetDatum(since);
		tinytemp_spi_execute(tinytemp_plan(&plan, sql, 8, argtypes), values, NULL, SPI_OK_INSERT);
	}
}

/* u's estimate on w (tinytemp_estimate_on), once per kind of hardware in kinds. */
static double
unit_estimate_on(const PlanUnit *u, const PlanWorker *w, TinytempKindEstimates *kinds)
{
	return tinytemp_estimate_on_kind(kinds, &u->spec, u->runtime_estimate_s, w->gpu_type, w->speed);
}

/*
 * When u, which cannot start now, is predicted to: the workers where a
 * member is expected to finish soonest, in `keys` (it fits there when the
 * worker frees resources as its running jobs, and those this pass placed,
 * reach their predicted ends, then runs its estimate on that hardware), and
 * the latest of their start times; with skip_reserved, among the workers
 * that hold no reservation of this pass yet.  On workers that all run it
 * as fast, that is where it fits soonest; a slow worker that frees first
 * does not get a job that a faster one, free a little later, would end
 * sooner.  DT_NOEND when fewer workers than u needs could ever run it.
 */
static TimestampTz
earliest_start(PlanWorker *workers, int nworkers, const PlanUnit *u, TimestampTz now,
			   bool skip_reserved, WorkerKey *keys)
{
	int			n = 0;
	TimestampTz start_at = now;
	TinytempKindEstimates kinds = {0};

	for (int i = 0; i < nworkers; i++)
	{
		TimestampTz t;
		double		est;

		if (!capable(&workers[i], u) || (skip_reserved && workers[i].nres > 0))
			continue;
		t = Max(tinytemp_earliest_fit(&u->req, workers[i].avail, workers[i].running,
									  workers[i].nrunning, now),
				slot_free_at(&workers[i], now));
		if (t == DT_NOEND)
			continue;
		est = unit_estimate_on(u, &workers[i], &kinds);
		keys[n].index = i;
		keys[n].start = t;
		keys[n].key = (double) (t - now) / USECS_PER_SEC + Max(est, 0);
		n++;
	}
	if (n < u->size)
		return DT_NOEND;
	qsort(keys, n, sizeof(WorkerKey), worker_key_cmp);
	for (int k = 0; k < u->size; k++)
		start_at = Max(start_at, keys[k].start);
	return start_at;
}

/*
 * Whether running job j may be stopped for u: never a gang member, nor a
 * job preempted tinytemp.max_preemptions times already; for priority, a
 * job of a lower class; within u's class, a job that has run at least
 * tinytemp.preemption_min_run and, for a starving u, one that overtook it
 * (started while u waited, having waited less in all), else one that
 * costs so much more than u that stopping it pays (policy.c).
 */
static bool
may_preempt(const PlanJob *j, const PlanUnit *u, PreemptReason reason)
{
	if (j->preempt_requested || j->in_gang || j->preemptions >= tinytemp_max_preemptions)
		return false;
	if (reason == PREEMPT_PRIORITY || j->priority != u->rank.priority)
		return j->priority < u->rank.priority;
	if (j->run_s * 1000.0 < tinytemp_preemption_min_run_ms)
		return false;
	if (reason == PREEMPT_STARVATION)
		return j->waited_s < u->waited_s;
	/*
	 * Never a job larger than u: it would wait for a hole of its size
	 * again, and the room it frees beyond u's would go to others.
	 */
	if (j->run.held.gpus > u->req.gpus || (u->req.gpus == 0 && j->run.held.cpus > u->req.cpus))
		return false;
	return tinytemp_service_preempt_pays(j->cost, u->cost, tinytemp_preemption_cost_ms / 1000.0);
}

/*
 * Whether victim a goes before victim b: the lower class first; then, for
 * priority, the most recently started (the least work lost), and within a
 * class the one that costs most now.
 */
static bool
better_victim(const PlanJob *a, const PlanJob *b, PreemptReason reason)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	if (reason == PREEMPT_PRIORITY)
		return a->started_at > b->started_at;
	return a->cost > b->cost;
}

/*
 * Preempt for u: on the workers where the fewest running jobs that
 * may_preempt allows would make room for a member, ask those jobs to stop
 * (heartbeat answers 'preempt'), and reserve the room for u.  Jobs already
 * asked count as room to come, so a job is not preempted twice for the
 * same need.  Returns how many jobs it asked to stop, or -1 when
 * preemption cannot make room.
 */
static int
preempt_for(PlanWorker *workers, int nworkers, const PlanUnit *u, TimestampTz now,
			TimestampTz since, PreemptReason reason)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH u AS ("
		"  UPDATE tinytemp.jobs SET preempt_requested_at = tinytemp.now()"
		"  WHERE id = ANY ($1) AND state = 'running' AND preempt_requested_at IS NULL"
		"  RETURNING id, worker_id, priority"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'preempt_requested', worker_id, jsonb_build_object('for_job', $2,"
		"    'priority', priority, 'for_priority', $3, 'reason', $4) FROM u"
		") SELECT count(*) FROM u";
	Oid			argtypes[4] = {INT8ARRAYOID, INT8OID, INT4OID, TEXTOID};
	Datum		values[4];
	WorkerKey  *keys = palloc(sizeof(WorkerKey) * Max(nworkers, 1));
	int		  **victims = palloc0(sizeof(int *) * Max(nworkers, 1));
	int		   *nvictims = palloc0(sizeof(int) * Max(nworkers, 1));
	double	   *est = palloc(sizeof(double) * Max(nworkers, 1));
	double		fastest = -1;
	TinytempKindEstimates kinds = {0};
	int64	   *ids;
	int			nids = 0;
	int			n = 0;

	/*
	 * A single job, not on hardware much slower (tinytemp_much_faster) than the
	 * fastest that could run it: rather than stop work there, it waits for
	 * the room where it ends soonest (earliest_start).  A gang, placed on
	 * the fastest workers first anyway, takes what it can get.
	 */
	for (int i = 0; i < nworkers; i++)
	{
		est[i] = capable(&workers[i], u) && !u->gang ? unit_estimate_on(u, &workers[i], &kinds) : -1;
		if (est[i] >= 0 && (fastest < 0 || est[i] < fastest))
			fastest = est[i];
	}
	for (int i = 0; i < nworkers; i++)
	{
		PlanWorker *w = &workers[i];
		TinytempResources room = w->free_now;
		int			stopping = 0;	/* jobs asked to stop, and victims */
		bool	   *used;

		if (!capable(w, u) || (!u->gang && tinytemp_much_faster(fastest, est[i])))
			continue;
		used = palloc0(sizeof(bool) * Max(w->njobs, 1));
		for (int k = 0; k < w->njobs; k++)
			if (w->jobs[k].preempt_requested)
			{
				tinytemp_resources_add(&room, &w->jobs[k].run.held);
				stopping++;
			}
		victims[i] = palloc(sizeof(int) * Max(w->njobs, 1));
		while (!tinytemp_fits(&u->req, &room) || !slot_free(w, stopping))
		{
			int			best = -1;

			for (int k = 0; k < w->njobs; k++)
			{
				PlanJob    *j = &w->jobs[k];

				if (used[k] || !may_preempt(j, u, reason))
					continue;
				if (best < 0 || better_victim(j, &w->jobs[best], reason))
					best = k;
			}
			if (best < 0)
				break;
			used[best] = true;
			victims[i][nvictims[i]++] = best;
			stopping++;
			tinytemp_resources_add(&room, &w->jobs[best].run.held);
		}
		if (!tinytemp_fits(&u->req, &room) || !slot_free(w, stopping))
			continue;
		keys[n].index = i;
		keys[n].key = nvictims[i] + fit_waste(w, u) / 100.0;
		n++;
	}
	if (n < u->size)
		return -1;
	qsort(keys, n, sizeof(WorkerKey), worker_key_cmp);

	ids = palloc(sizeof(int64));
	for (int k = 0; k < u->size; k++)
	{
		int			i = keys[k].index;

		ids = repalloc(ids, sizeof(int64) * (nids + nvictims[i] + 1));
		for (int v = 0; v < nvictims[i]; v++)
		{
			PlanJob    *j = &workers[i].jobs[victims[i][v]];

			j->preempt_requested = true;
			ids[nids++] = j->id;
		}
	}
	reserve(workers, u, keys,
			now + (TimestampTz) tinytemp_preempt_grace_ms * 1000, "preemption", since);
	if (nids == 0)
		return 0;
	values[0] = tinytemp_int8_array(ids, nids);
	values[1] = Int64GetDatum(u->id);
	values[2] = Int32GetDatum(u->rank.priority);
	values[3] = CStringGetTextDatum(preempt_reason_names[reason]);
	return run_counting(tinytemp_plan(&plan, sql, 4, argtypes), values);
}

/*
 * When each job that holds reservations first got one, so that a
 * reservation keeps its age from pass to pass; then clear them all for
 * this pass to plan anew.
 */
static void
take_reservations(int64 **job_ids, TimestampTz **since, int *n)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH d AS (DELETE FROM tinytemp.reservations RETURNING job_id, since)"
		" SELECT job_id, min(since) FROM d GROUP BY job_id";

	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 0, NULL), NULL, NULL, SPI_OK_SELECT);
	*n = (int) SPI_processed;
	*job_ids = palloc(sizeof(int64) * Max(*n, 1));
	*since = palloc(sizeof(TimestampTz) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		(*job_ids)[i] = tinytemp_get_int64(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, 0);
		(*since)[i] = tinytemp_get_timestamptz(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, 0);
	}
}

/* Walk the ready jobs in the policy's order and place, reserve or preempt. */
static void
plan_placements(PassCounts *counts)
{
	TimestampTz now = tinytemp_now();
	int64	   *old_jobs;
	TimestampTz *old_since;
	int			nold;
	PlanWorker *workers;
	int			nworkers;
	PlanUnit   *units;
	int			nunits;
	WorkerKey  *keys;
	int			reserved = 0;
	int			preemptors = 0;
	int			service_tries = 0;
	int32		lowest_running = PG_INT32_MAX;
	bool		v08 = tinytemp_schema_has_service();	/* once for the pass */

	take_reservations(&old_jobs, &old_since, &nold);
	workers = read_workers(&nworkers, now, v08);
	units = read_units(&nunits, v08);
	if (nworkers == 0 || nunits == 0)
		return;
	keys = palloc(sizeof(WorkerKey) * nworkers);
	for (int i = 0; i < nworkers; i++)
		for (int k = 0; k < workers[i].njobs; k++)
			lowest_running = Min(lowest_running, workers[i].jobs[k].priority);

	for (int ui = 0; ui < nunits; ui++)
	{
		PlanUnit   *u = &units[ui];
		int			fitting = workers_fitting_now(workers, nworkers, u, now, keys);
		TimestampTz since = now;
		TimestampTz start_at;

		if (fitting >= u->size)
		{
			if (u->gang)
			{
				if (!assign_gang(workers, u, keys))
					continue;
				counts->gangs_assigned++;
			}
			/* A single job is left to the claims; count what they will take. */
			for (int k = 0; k < u->size; k++)
				place(&workers[keys[k].index], u, now);
			continue;
		}

		/* u cannot start now. */
		if (tinytemp_policy == TINYTEMP_POLICY_FIFO)
			break;
		for (int k = 0; k < nold; k++)
			if (old_jobs[k] == u->id)
				since = old_since[k];
		start_at = earliest_start(workers, nworkers, u, now, false, keys);
		if (start_at == DT_NOEND)
			continue;			/* left to the placement timeout */

		/*
		 * Preempt only when waiting would take longer than the grace
		 * period: for a job of a higher class than some running jobs, then,
		 * within its class, by rank cost (the first few that cannot start).
		 */
		if (preemptors < MAX_PREEMPTORS_PER_PASS &&
			start_at > now + (TimestampTz) tinytemp_preempt_grace_ms * 1000)
		{
			int			asked = -1;

			if (u->rank.priority > lowest_running)
				asked = preempt_for(workers, nworkers, u, now, since, PREEMPT_PRIORITY);
			if (asked < 0 && tinytemp_service_preemption &&
				service_tries < MAX_SERVICE_PREEMPTION_TRIES && v08)
			{
				service_tries++;
				asked = preempt_for(workers, nworkers, u, now, since,
									u->starving ? PREEMPT_STARVATION : PREEMPT_SERVICE);
			}
			if (asked >= 0)
			{
				preemptors++;
				counts->preemptions_requested += asked;
				counts->reservations++;
				continue;
			}
		}
		/*
		 * Reserve for the first jobs that cannot start, each on workers no
		 * earlier one holds, so that several big jobs wait for room in
		 * parallel rather than one after the other.
		 */
		if (reserved < MAX_BACKFILL_RESERVATIONS)
		{
			if (reserved > 0)
				start_at = earliest_start(workers, nworkers, u, now, true, keys);
			if (start_at == DT_NOEND)
				continue;
			reserve(workers, u, keys, start_at, "backfill", since);
			reserved++;
			counts->reservations++;
		}
	}
}

/* ---------- the pass ---------- */

/*
 * One step of a pass, in the caller's transaction with SPI connected.
 * Returns false when another pass holds the planner's lock (this one then
 * does nothing).
 */
static bool
run_step(TinytempPassStep step, PassCounts *counts)
{
	if (!tinytemp_try_lock(TINYTEMP_LOCK_PLANNER, 0))
		return false;

	/*
	 * Every step reads tinytemp.jobs, some read the workers or reservations
	 * first: lock jobs before any of them, as a statement over all of them
	 * does (TRUNCATE tinytemp.jobs, ...), so that the two never deadlock.
	 */
	LockRelationOid(get_relname_relid("jobs", get_namespace_oid("tinytemp", false)),
					AccessShareLock);
	switch (step)
	{
		case TINYTEMP_STEP_LEASES:
			counts->forced_preemptions = force_preemptions();
			counts->expired = tinytemp_expire_leases_internal();
			break;
		case TINYTEMP_STEP_HOUSEKEEPING:
			counts->released = tinytemp_release_stale_assignments();
			counts->dependency_failed = fail_broken_dependencies();
			counts->unschedulable = fail_unschedulable();
			break;
		case TINYTEMP_STEP_PLACEMENT:
			plan_placements(counts);
			break;
	}
	return true;
}

/* A whole pass, its steps in order, in the caller's transaction. */
static bool
run_pass(PassCounts *counts)
{
	memset(counts, 0, sizeof(*counts));
	for (int step = TINYTEMP_STEP_LEASES; step <= TINYTEMP_STEP_PLACEMENT; step++)
		if (!run_step((TinytempPassStep) step, counts))
			return false;
	return true;
}

/*
 * One step of the background worker's pass, in a transaction of its own;
 * SPI connected.  Returns how many leases expired (the leases step) or 0.
 */
int
tinytemp_schedule_step(TinytempPassStep step)
{
	PassCounts	counts;

	memset(&counts, 0, sizeof(counts));
	(void) run_step(step, &counts);
	return counts.expired;
}

/* tinytemp_schedule(): one pass of the planner; what it did, as jsonb. */
Datum
tinytemp_schedule(PG_FUNCTION_ARGS)
{
	PassCounts	c;
	bool		ran;
	char	   *json;
	TinytempCaller caller;

	tinytemp_enter(fcinfo, &caller);
	SPI_connect();
	ran = run_pass(&c);
	SPI_finish();
	tinytemp_leave(&caller);
	json = psprintf("{\"ran\": %s, \"leases_expired\": %d, \"preemptions_forced\": %d,"
					" \"assignments_released\": %d, \"dependency_failed\": %d,"
					" \"unschedulable\": %d, \"gangs_assigned\": %d, \"reservations\": %d,"
					" \"preemptions_requested\": %d}",
					ran ? "true" : "false", c.expired, c.forced_preemptions, c.released,
					c.dependency_failed, c.unschedulable, c.gangs_assigned, c.reservations,
					c.preemptions_requested);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * tinytemp.rank_cost(median, spread, attained): a job's rank cost in
 * seconds (policy.c), for the statements that requeue a job and for those
 * who want to see how the policy ranks: NULL when the median or the
 * service is NULL, the median taken as the runtime when the spread is.
 */
Datum
tinytemp_rank_cost_sql(PG_FUNCTION_ARGS)
{
	static const char *const names[3] = {"median", "spread", "attained"};
	double		v[3];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	for (int i = 0; i < 3; i++)
	{
		v[i] = PG_ARGISNULL(i) ? -1 : PG_GETARG_FLOAT8(i);
		if (!PG_ARGISNULL(i) && !(v[i] >= 0 && v[i] < 1e300))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s must be a finite number of at least 0", names[i]),
					errdetail("The value given was %g.", v[i]));
	}
	PG_RETURN_FLOAT8(tinytemp_rank_cost(v[0], v[1], v[2]));
}

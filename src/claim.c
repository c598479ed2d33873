/*
 * claim.c
 *	  tinytemp_claim: hand a worker the next jobs it can run.
 *
 * A claim first takes the jobs the planner assigned to the worker (gang
 * members), then chooses among the ready jobs by tinytemp.policy.  Under
 * policy 'tinytemp' it reads the waiting tenants (straight from their
 * index), their shares, and the best few candidates of each (of the
 * leading ones only, past 16 tenants), chooses, and locks and starts what
 * it chose in one statement, with SKIP LOCKED: claims never wait on each
 * other.  Chosen jobs that another claim holds are passed over, and the
 * policy chooses again among the rest; a claim's last job is the first of
 * the candidates, in the policy's order, that no other claim holds, found
 * by one statement however many claims contend for the same jobs.  When
 * the candidates run out because other claims held them, it reads again
 * past those, in rounds.  Claims of one worker take turns on a private
 * lock so that two of its sessions cannot both spend the same free
 * resources; the planner takes the same lock before it assigns jobs to a
 * worker.  Policy 'fifo' locks each job as it walks the queue.
 *
 * The choice itself is policy.c's; this file reads the state it needs and
 * writes the outcome.
 */
#include "tinytemp.h"

#include "access/tupconvert.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(tinytemp_claim);
PG_FUNCTION_INFO_V1(tinytemp_ack_and_claim);

#define MAX_JOBS_PER_CLAIM 1000
/* How many jobs past max_jobs a FIFO claim looks at for ones it may skip. */
#define FIFO_LOOKAHEAD 64
/* Rounds of choosing again past the jobs other claims held. */
#define MAX_CLAIM_ROUNDS 8

/*
 * A worker's free room, as a claim reads it for its own worker and for the
 * others: its capacity less what its assigned and running jobs hold.
 * Select WORKER_ROOM from WORKERS_WITH_HELD and GROUP BY w.id.
 */
#define WORKER_ROOM \
	"w.cpus - coalesce(sum(h.cpus), 0), w.memory_mb - coalesce(sum(h.memory_mb), 0)," \
	" w.gpus - coalesce(sum(h.gpus), 0)"
#define WORKERS_WITH_HELD \
	" FROM tinytemp.workers w" \
	" LEFT JOIN tinytemp.jobs h ON h.worker_id = w.id AND h.state IN ('assigned', 'running')"

/* What a claim knows of its worker. */
typedef struct ClaimWorker
{
	int64		id;
	TinytempResources avail;	/* capacity less what it holds */
	char	   *gpu_type;
	double		speed;
	int64		assigned;		/* jobs the planner assigned to it */
	TinytempReservation *res;	/* reservations on it */
	int			nres;
} ClaimWorker;

/*
 * The ready jobs this claim chose but found held by other claims: its
 * next round reads past them.  One list serves, as a claim never nests in
 * another; it lives in TopMemoryContext and is emptied by each claim.
 */
static int64 *busy_ids = NULL;
static int	nbusy = 0;
static int	busy_size = 0;

/*
 * Estimated runtimes of candidates on a worker, kept between claims: the
 * same few best jobs are candidates claim after claim, and the estimate
 * depends only on the job, the worker (its GPU type and speed never change
 * within an incarnation) and the model.  Direct-mapped by job id; a clash
 * just computes the estimate again.
 */
#define EST_CACHE_SIZE 4096

typedef struct EstEntry
{
	int64		job_id;
	int64		worker_id;
	uint64		generation;		/* tinytemp_model_generation() when made */
	double		rank_key;		/* the job's: an id used again (a restored dump) is another job */
	double		est;
} EstEntry;

static EstEntry *est_cache = NULL;
static uint64 est_generation = 0;	/* of the claim under way */

/* The job's estimated runtime on worker w (see tinytemp_estimate_on), cached. */
static double
estimate_here(int64 job_id, double rank_key, const TinytempJobSpec *spec,
			  double runtime_estimate_s, int64 worker_id, const char *gpu_type, double speed)
{
	EstEntry   *e;

	if (est_cache == NULL)
		est_cache = MemoryContextAllocZero(TopMemoryContext, sizeof(EstEntry) * EST_CACHE_SIZE);
	e = &est_cache[(uint64) job_id % EST_CACHE_SIZE];
	if (e->job_id != job_id || e->worker_id != worker_id || e->generation != est_generation ||
		e->rank_key != rank_key)
	{
		e->est = tinytemp_estimate_on(spec, runtime_estimate_s, gpu_type, speed);
		e->job_id = job_id;
		e->worker_id = worker_id;
		e->generation = est_generation;
		e->rank_key = rank_key;
	}
	return e->est;
}

/*
 * Raise TT001 for a worker that cannot claim: unknown, or replaced by a
 * newer registration of its name.
 */
static void
require_active_worker(int64 worker_id)
{
	if (!tinytemp_worker_is_active(worker_id))
		ereport(ERROR,
				errcode(ERRCODE_TINYTEMP_UNKNOWN_WORKER),
				errmsg("worker " INT64_FORMAT " is not an active worker", worker_id),
				errdetail("A newer registration of the same name replaced it."),
				errhint("Claim with the id returned by the latest tinytemp_register_worker() call."));
}

/* Read the worker's free resources, its assigned jobs and its reservations. */
static void
read_worker(ClaimWorker *w)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr res_plan = NULL;
	static const char *sql =
		"SELECT " WORKER_ROOM ", w.gpu_type, w.speed,"
		"  count(h.id) FILTER (WHERE h.state = 'assigned'),"
		"  EXISTS (SELECT FROM tinytemp.reservations r WHERE r.worker_id = w.id)"
		WORKERS_WITH_HELD
		" WHERE w.id = $1 AND w.state = 'active'"
		" GROUP BY w.id";
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(w->id)};
	HeapTuple	t;
	TupleDesc	d;

	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		require_active_worker(w->id);
	t = SPI_tuptable->vals[0];
	d = SPI_tuptable->tupdesc;
	w->avail.cpus = tinytemp_get_int64(t, d, 1, 0);
	w->avail.memory_mb = tinytemp_get_int64(t, d, 2, 0);
	w->avail.gpus = tinytemp_get_int64(t, d, 3, 0);
	w->gpu_type = SPI_getvalue(t, d, 4);
	w->speed = tinytemp_get_float8(t, d, 5, 1.0);
	w->assigned = tinytemp_get_int64(t, d, 6, 0);
	w->nres = 0;
	w->res = NULL;
	if (!DatumGetBool(SPI_getbinval(t, d, 7, &(bool) {false})))
		return;

	tinytemp_spi_execute(tinytemp_plan(&res_plan,
									   "SELECT r.job_id, r.start_at, r.since, r.cpus, r.memory_mb, r.gpus,"
									   "  j.priority, j.rank_key"
									   " FROM tinytemp.reservations r"
									   " JOIN tinytemp.jobs j ON j.id = r.job_id AND j.state = 'pending'"
									   " WHERE r.worker_id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	w->nres = (int) SPI_processed;
	w->res = palloc0(sizeof(TinytempReservation) * Max(w->nres, 1));
	for (int i = 0; i < w->nres; i++)
	{
		t = SPI_tuptable->vals[i];
		d = SPI_tuptable->tupdesc;
		w->res[i].job_id = tinytemp_get_int64(t, d, 1, 0);
		w->res[i].start_at = tinytemp_get_timestamptz(t, d, 2, 0);
		w->res[i].since = tinytemp_get_timestamptz(t, d, 3, 0);
		w->res[i].held.cpus = tinytemp_get_int64(t, d, 4, 0);
		w->res[i].held.memory_mb = tinytemp_get_int64(t, d, 5, 0);
		w->res[i].held.gpus = tinytemp_get_int64(t, d, 6, 0);
		w->res[i].rank.priority = (int32) tinytemp_get_int64(t, d, 7, 0);
		w->res[i].rank.rank_key = tinytemp_get_float8(t, d, 8, 0);
	}
}

/*
 * Copy the rows of the last SPI result into the claim's result set.  The
 * rows are the table's live columns (RETURNING j.*); the result's rowtype
 * also keeps a slot for every column an upgrade dropped, so they are
 * matched by name, not by position.
 */
static int
emit_rows(ReturnSetInfo *rsinfo)
{
	int			n = (int) SPI_processed;
	TupleConversionMap *map = convert_tuples_by_name(SPI_tuptable->tupdesc, rsinfo->setDesc);

	for (int i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];

		if (map != NULL)
			row = execute_attr_map_tuple(row, map);
		tuplestore_puttuple(rsinfo->setResult, row);
	}
	return n;
}

/*
 * tinytemp_select's take() when a claim wants one more job: note the
 * candidate (its index in preference_of) and refuse it, so that
 * tinytemp_select goes on to the next best; the notes are the candidates
 * in the policy's order.
 */
static const TinytempCandidate *preference_of = NULL;
static int *preference = NULL;
static int	npreference = 0;

static bool
note_preference(const TinytempCandidate *cand)
{
	preference[npreference++] = (int) (cand - preference_of);
	return false;
}

/* Put a job another claim holds on the busy list: the next round reads past it. */
static void
note_busy(int64 id)
{
	if (nbusy == busy_size)
	{
		busy_size = Max(busy_size * 2, 64);
		busy_ids = repalloc(busy_ids, sizeof(int64) * busy_size);
	}
	busy_ids[nbusy++] = id;
}

/* Whether the busy list holds id at position from or later. */
static bool
is_busy(int64 id, int from)
{
	for (int i = from; i < nbusy; i++)
		if (busy_ids[i] == id)
			return true;
	return false;
}

/*
 * Lock a ready job for this claim.  When another claim holds it, or it is
 * no longer ready (a claim that committed meanwhile took it), put it on
 * the busy list instead and return false.
 */
static bool
lock_ready_job(int64 id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT FROM tinytemp.jobs"
									   " WHERE id = $1 AND state = 'pending' AND run_after <= tinytemp.now()"
									   " FOR UPDATE SKIP LOCKED",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		return true;
	note_busy(id);
	return false;
}

/*
 * tinytemp_select's take(): accept the candidate.  The candidates chosen
 * in a round are locked together by take_chosen, which starts those it
 * could lock and puts the others on the busy list for the next round.
 */
static bool
accept_candidate(const TinytempCandidate *cand)
{
	(void) cand;
	return true;
}

/* Start the jobs the planner assigned to this worker; returns how many. */
static int
take_assigned(ClaimWorker *w, int limit, ReturnSetInfo *rsinfo)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH c AS ("
		"  SELECT id FROM tinytemp.jobs WHERE worker_id = $1 AND state = 'assigned'"
		"  ORDER BY id LIMIT $3 FOR UPDATE"
		"), u AS ("
		"  UPDATE tinytemp.jobs j SET state = 'running', attempts = j.attempts + 1,"
		"    started_at = tinytemp.now(), heartbeat_at = tinytemp.now(),"
		"    lease_until = tinytemp.now() + make_interval(secs => $2), updated_at = tinytemp.now(),"
		"    predicted_end_at = tinytemp.now() + make_interval(secs =>"
		"      least(coalesce(j.runtime_estimate_s / $4, j.predicted_runtime_s, 0), 1e8))"
		"  FROM c WHERE j.id = c.id"
		"  RETURNING j.*"
		"), h AS ("
		"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)"
		"  SELECT id, 'claimed', $1, jsonb_build_object('attempt', attempts, 'gang_id', gang_id,"
		"    'gang_rank', gang_rank) FROM u"
		") SELECT * FROM u ORDER BY id";
	Oid			argtypes[4] = {INT8OID, FLOAT8OID, INT4OID, FLOAT8OID};
	Datum		values[4];

	values[0] = Int64GetDatum(w->id);
	values[1] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	values[2] = Int32GetDatum(limit);
	values[3] = Float8GetDatum(w->speed);
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 4, argtypes), values, NULL, SPI_OK_SELECT);
	return emit_rows(rsinfo);
}

/*
 * The start of the jobs of CTE l (id, est: estimated seconds here) on
 * worker $2 with a lease of $3 seconds, and their history: the rest of the
 * statements of take_chosen and take_first, which differ in how l locks.
 * Both name the ids twice, as a join and as "j.id = ANY ($1)": the plan is
 * generic and kept for the backend's life, and the ANY gives it an index
 * scan of the primary key even when it was made while the table looked
 * small (a join alone was planned as a scan of the whole table then).
 */
#define START_LOCKED_JOBS \
	"), u AS (" \
	"  UPDATE tinytemp.jobs j SET state = 'running', worker_id = $2," \
	"    attempts = j.attempts + 1, started_at = tinytemp.now(), heartbeat_at = tinytemp.now()," \
	"    lease_until = tinytemp.now() + make_interval(secs => $3), updated_at = tinytemp.now()," \
	"    unschedulable_since = NULL, preempt_requested_at = NULL, preempt_notified_at = NULL," \
	"    predicted_end_at = tinytemp.now() + make_interval(secs => l.est)" \
	"  FROM l WHERE j.id = l.id AND j.id = ANY ($1)" \
	"  RETURNING j.*" \
	"), h AS (" \
	"  INSERT INTO tinytemp.jobs_history (job_id, event, worker_id, detail)" \
	"  SELECT id, 'claimed', $2, jsonb_build_object('attempt', attempts) FROM u" \
	") SELECT * FROM u"

/* Run a START_LOCKED_JOBS statement for ids[0..n) with estimates ests (seconds, -1 unknown). */
static void
start_jobs(SPIPlanPtr *plan, const char *sql, ClaimWorker *w, int64 *ids, double *ests, int n)
{
	Oid			argtypes[4] = {INT8ARRAYOID, INT8OID, FLOAT8OID, FLOAT8ARRAYOID};
	Datum		values[4];
	double	   *secs = palloc(sizeof(double) * n);

	for (int i = 0; i < n; i++)
		secs[i] = ests[i] >= 0 ? Min(ests[i], 1e8) : 0;
	values[0] = tinytemp_int8_array(ids, n);
	values[1] = Int64GetDatum(w->id);
	values[2] = Float8GetDatum(tinytemp_lease_timeout_ms / 1000.0);
	values[3] = tinytemp_float8_array(secs, n);
	tinytemp_spi_execute(tinytemp_plan(plan, sql, 4, argtypes), values, NULL, SPI_OK_SELECT);
}

/*
 * Start the chosen jobs on the worker, with their estimated runtimes there:
 * one statement locks those still ready (SKIP LOCKED: never waiting on
 * another claim), starts them and writes their history.  The chosen jobs
 * it could not lock go on the busy list; returns how many started.  With
 * locked true the jobs are locked already (the FIFO policy locks as it
 * walks) and must all start.
 */
static int
take_chosen(ClaimWorker *w, int64 *ids, double *ests, int n, bool locked, ReturnSetInfo *rsinfo)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH l AS ("
		"  SELECT j.id, e.est FROM unnest($1, $4) e(id, est) JOIN tinytemp.jobs j ON j.id = e.id"
		"  WHERE j.id = ANY ($1) AND j.state = 'pending' AND j.run_after <= tinytemp.now()"
		"  FOR UPDATE OF j SKIP LOCKED"
		START_LOCKED_JOBS " ORDER BY array_position($1, id)";
	int			started;
	int			id_col;

	start_jobs(&plan, sql, w, ids, ests, n);
	started = emit_rows(rsinfo);
	if (started == n)
		return n;
	if (locked)
		elog(ERROR, "a job locked by this claim changed");
	/* The rows come in the order of ids: what is missing, another claim holds. */
	id_col = SPI_fnumber(SPI_tuptable->tupdesc, "id");
	for (int i = 0, r = 0; i < n; i++)
	{
		bool		isnull;

		if (r < started &&
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, id_col,
										&isnull)) == ids[i])
			r++;
		else
			note_busy(ids[i]);
	}
	return started;
}

/* The columns a claim reads of a candidate: id, then the predictor's inputs, then these. */
#define CANDIDATE_COLUMNS \
	"j.id, j.job_type, j.model, j.dataset_size, j.epochs, j.batch_size, j.cpus, j.gpus," \
	" j.gpu_type, j.memory_mb, j.tenant, j.priority, j.predicted_runtime_s," \
	" j.runtime_estimate_s, j.rank_key, j.gang_size"

/*
 * The active workers' capacity, summed, kept between claims: every change
 * to tinytemp.workers sends a relcache invalidation (the workers_changed
 * trigger), which empties it; a claim then costs the same however many
 * workers are registered.
 */
static TinytempResources capacity;
static bool capacity_valid = false;
static Oid	workers_relid = InvalidOid;
static bool capacity_callback = false;

/*
 * The kinds of hardware (GPU type and speed) of the active workers, kept
 * as the capacity is: a job is checked against the other workers only
 * when some kind would run it much faster (much_faster_kind), and a claim
 * on a cluster of one kind of worker, whatever its speed, skips the check
 * (one_kind).  n is -1 for more than MAX_KINDS.
 */
#define MAX_KINDS 16
static struct
{
	int			n;
	char	   *gpu_type[MAX_KINDS];
	double		speed[MAX_KINDS];
}			kinds;
static bool kinds_valid = false;
static MemoryContext kinds_cxt = NULL;

static void
invalidate_capacity(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == workers_relid || workers_relid == InvalidOid)
	{
		capacity_valid = false;
		kinds_valid = false;
		workers_relid = InvalidOid;
	}
}

/* Have changes to tinytemp.workers empty the caches above. */
static void
watch_workers(void)
{
	if (!capacity_callback)
	{
		CacheRegisterRelcacheCallback(invalidate_capacity, (Datum) 0);
		capacity_callback = true;
	}
	workers_relid = get_relname_relid("workers", get_namespace_oid("tinytemp", true));
}

static TinytempResources
cluster_capacity(void)
{
	static SPIPlanPtr plan = NULL;

	if (capacity_valid)
		return capacity;
	watch_workers();
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT sum(cpus)::bigint, sum(memory_mb)::bigint, sum(gpus)::bigint,"
									   "  to_regproc('tinytemp.workers_changed') IS NOT NULL"
									   " FROM tinytemp.workers WHERE state = 'active'",
									   0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	capacity.cpus = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, 0);
	capacity.memory_mb = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, 0);
	capacity.gpus = tinytemp_get_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, 0);
	/* Before 0.5 no trigger tells of changes: read it every time there. */
	capacity_valid = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4,
												&(bool) {false}));
	return capacity;
}

/* Read the kinds of the active workers, unless kept from an earlier claim. */
static void
read_kinds(void)
{
	static SPIPlanPtr plan = NULL;
	bool		trigger = false;

	if (kinds_valid)
		return;
	watch_workers();
	if (kinds_cxt == NULL)
		kinds_cxt = AllocSetContextCreate(TopMemoryContext, "tinytemp worker kinds",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(kinds_cxt);
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT gpu_type, speed, to_regproc('tinytemp.workers_changed') IS NOT NULL"
									   " FROM (SELECT DISTINCT gpu_type, speed FROM tinytemp.workers"
									   "       WHERE state = 'active') k"
									   " LIMIT " CppAsString2(MAX_KINDS) " + 1",
									   0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	kinds.n = SPI_processed > MAX_KINDS ? -1 : (int) SPI_processed;
	for (int k = 0; k < kinds.n; k++)
	{
		HeapTuple	t = SPI_tuptable->vals[k];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *gpu_type = SPI_getvalue(t, d, 1);

		kinds.gpu_type[k] = gpu_type ? MemoryContextStrdup(kinds_cxt, gpu_type) : NULL;
		kinds.speed[k] = tinytemp_get_float8(t, d, 2, 1.0);
	}
	if (SPI_processed > 0)
		trigger = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3,
											 &(bool) {false}));
	/* Before 0.5 no trigger tells of changes: read them every time there. */
	kinds_valid = trigger;
}

/* Whether the active workers are all of one kind: this worker's. */
static bool
one_kind(void)
{
	read_kinds();
	return kinds.n == 1;
}

/*
 * Whether some kind of active worker would run the job much faster than
 * est_here; its estimates on each kind are kept in ests for
 * faster_elsewhere.
 */
static bool
much_faster_kind(const TinytempJobSpec *spec, const TinytempResources *req,
				 double runtime_estimate_s, double est_here, TinytempKindEstimates *ests)
{
	read_kinds();
	if (kinds.n < 0)
		return true;
	for (int k = 0; k < kinds.n; k++)
		if (tinytemp_gpu_type_matches(req->gpus, spec->gpu_type, kinds.gpu_type[k]) &&
			tinytemp_much_faster(tinytemp_estimate_on_kind(ests, spec, runtime_estimate_s,
														   kinds.gpu_type[k], kinds.speed[k]),
								 est_here))
			return true;
	return false;
}

/*
 * The cluster's capacity, and the resources each tenant's jobs hold, for
 * dominant resource fairness.
 */
static void
read_shares(TinytempTenant *tenants, int ntenants, TinytempResources *total)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT coalesce(tenant, ''), sum(cpus)::bigint, sum(memory_mb)::bigint, sum(gpus)::bigint"
		"  FROM tinytemp.jobs WHERE state IN ('assigned', 'running') GROUP BY 1";

	*total = cluster_capacity();
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 0, NULL), NULL, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(t, d, 1);

		/* Only tenants with pending jobs matter; the others are not in the array. */
		for (int k = 0; k < ntenants; k++)
			if (strcmp(tenants[k].name, name) == 0)
			{
				tenants[k].used.cpus = tinytemp_get_int64(t, d, 2, 0);
				tenants[k].used.memory_mb = tinytemp_get_int64(t, d, 3, 0);
				tenants[k].used.gpus = tinytemp_get_int64(t, d, 4, 0);
				break;
			}
	}
}

/*
 * The free room, GPU type and speed of every other active worker, whether
 * it runs as many jobs as it has slots, and, read once a job needs them
 * (read_held), the jobs each one holds, with when each is expected to end.
 * A worker's slots, the most jobs it runs at once, are its label "slots"
 * (tinytemp-worker gives its --slots), a whole number; without it, a
 * worker takes as many jobs as fit.
 */
typedef struct OtherWorkers
{
	int			n;
	TinytempResources *avail;
	bool	   *full;			/* holds as many jobs as its slots */
	char	  **gpu_type;
	double	   *speed;
	int64	   *id;				/* by id */
	bool		held_read;
	int		   *first_held;		/* n + 1: worker k's held jobs are [first_held[k], first_held[k + 1]) */
	TinytempRunning *held;		/* each worker's by expected end */
} OtherWorkers;

static void
read_other_workers(const ClaimWorker *w, OtherWorkers *o)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT " WORKER_ROOM ", w.gpu_type, w.speed, w.id,"
		" coalesce(count(h.id) >= " TINYTEMP_WORKER_SLOTS_SQL("w") ", false)"
		WORKERS_WITH_HELD
		" WHERE w.state = 'active' AND w.id <> $1"
		" GROUP BY w.id ORDER BY w.id";
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(w->id)};

	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	o->n = (int) SPI_processed;
	o->avail = palloc(sizeof(TinytempResources) * Max(o->n, 1));
	o->full = palloc(sizeof(bool) * Max(o->n, 1));
	o->gpu_type = palloc(sizeof(char *) * Max(o->n, 1));
	o->speed = palloc(sizeof(double) * Max(o->n, 1));
	o->id = palloc(sizeof(int64) * Max(o->n, 1));
	o->held_read = false;
	for (int k = 0; k < o->n; k++)
	{
		HeapTuple	t = SPI_tuptable->vals[k];
		TupleDesc	d = SPI_tuptable->tupdesc;

		o->avail[k].cpus = tinytemp_get_int64(t, d, 1, 0);
		o->avail[k].memory_mb = tinytemp_get_int64(t, d, 2, 0);
		o->avail[k].gpus = tinytemp_get_int64(t, d, 3, 0);
		o->gpu_type[k] = SPI_getvalue(t, d, 4);
		o->speed[k] = tinytemp_get_float8(t, d, 5, 1.0);
		o->id[k] = tinytemp_get_int64(t, d, 6, 0);
		o->full[k] = DatumGetBool(SPI_getbinval(t, d, 7, &(bool) {false}));
	}
}

/*
 * The jobs the other workers hold, each worker's in the order they are
 * expected to end (tinytemp_expected_end).
 */
static void
read_held(const ClaimWorker *w, OtherWorkers *o, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT j.worker_id, j.cpus, j.memory_mb, j.gpus, " TINYTEMP_EXPECTED_END_SQL ","
		" coalesce(j.started_at, tinytemp.now())"
		" FROM tinytemp.jobs j"
		" WHERE j.state IN ('assigned', 'running') AND j.worker_id <> $1"
		" ORDER BY j.worker_id";
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(w->id)};
	int			k = 0;
	int			n = 0;

	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 1, argtypes), values, NULL, SPI_OK_SELECT);
	o->first_held = palloc0(sizeof(int) * (o->n + 1));
	o->held = palloc(sizeof(TinytempRunning) * Max(SPI_processed, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int64		worker_id = tinytemp_get_int64(t, d, 1, 0);
		TinytempRunning *h;

		while (k < o->n && o->id[k] < worker_id)
			o->first_held[++k] = n;
		if (k == o->n || o->id[k] != worker_id)
			continue;			/* a worker no longer active */
		h = &o->held[n++];
		h->held.cpus = tinytemp_get_int64(t, d, 2, 0);
		h->held.memory_mb = tinytemp_get_int64(t, d, 3, 0);
		h->held.gpus = tinytemp_get_int64(t, d, 4, 0);
		h->end_at = tinytemp_expected_end(tinytemp_get_timestamptz(t, d, 5, now),
										  tinytemp_get_timestamptz(t, d, 6, now), now);
	}
	while (k < o->n)
		o->first_held[++k] = n;
	for (k = 0; k < o->n; k++)
		qsort(&o->held[o->first_held[k]], o->first_held[k + 1] - o->first_held[k],
			  sizeof(TinytempRunning), tinytemp_running_end_cmp);
	o->held_read = true;
}

/* Seconds job id has waited: since it was enqueued, or became due. */
static double
waited_s(int64 id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};

	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT greatest(extract(epoch FROM tinytemp.now()"
									   " - greatest(j.created_at, j.run_after))::float8, 0)"
									   " FROM tinytemp.jobs j WHERE j.id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	return SPI_processed == 1 ? tinytemp_get_float8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													1, 0) : 0;
}

/*
 * Whether another worker would run the job much faster than this one (see
 * tinytemp_much_faster) and has room for it now, or will have room soon
 * enough that the job, counted from when it began to wait, would still end
 * much sooner there than by starting here now: then this worker leaves it
 * (policy.c, "Slow hardware").
 */
static bool
faster_elsewhere(const ClaimWorker *w, const TinytempJobSpec *spec, const TinytempCandidate *c,
				 double runtime_estimate_s, OtherWorkers *o, TinytempKindEstimates *ests)
{
	TimestampTz now = tinytemp_now();
	double		waited = -1;

	for (int k = 0; k < o->n; k++)
	{
		double		there;
		TimestampTz room_at;
		int			nheld;

		if (!tinytemp_gpu_type_matches(c->req.gpus, spec->gpu_type, o->gpu_type[k]))
			continue;
		there = tinytemp_estimate_on_kind(ests, spec, runtime_estimate_s, o->gpu_type[k],
										  o->speed[k]);
		if (!tinytemp_much_faster(there, c->est_here))
			continue;
		if (!o->full[k] && tinytemp_fits(&c->req, &o->avail[k]))
			return true;
		if (!o->held_read)
			read_held(w, o, now);
		nheld = o->first_held[k + 1] - o->first_held[k];
		room_at = tinytemp_earliest_fit(&c->req, o->avail[k], &o->held[o->first_held[k]],
										nheld, now);
		if (room_at == DT_NOEND || (o->full[k] && nheld == 0))
			continue;
		/* A full worker has room no sooner than a slot frees, when its first job ends. */
		if (o->full[k])
			room_at = Max(room_at, o->held[o->first_held[k]].end_at);
		if (waited < 0)
			waited = waited_s(c->id);
		if (tinytemp_much_faster(waited + (double) (room_at - now) / USECS_PER_SEC + there,
								 waited + c->est_here))
			return true;
	}
	return false;
}

/* A tenant with pending jobs, and its best pending job (by the index's order). */
typedef struct PendingTenant
{
	char	   *name;			/* '' for jobs without a tenant */
	int32		head_priority;
	double		head_rank_key;
	double		share;			/* its dominant share now */
} PendingTenant;

/*
 * With more tenants waiting than this, a claim reads the candidates of the
 * tenants that lead by (their best pending job's class, dominant share, its
 * rank) in groups of max_jobs + TENANT_GROUP_EXTRA, instead of every
 * tenant's: its cost then stays the same however many tenants wait.  Up to
 * this many, it reads them all, and chooses exactly as policy.c says.
 */
#define TENANTS_READ_ALL 16
#define TENANT_GROUP_EXTRA 8
/* Candidates read per tenant past max_jobs, when every tenant is read. */
#define CANDIDATES_EXTRA 16

/*
 * The tenants with pending jobs, with each one's best pending job: a loose
 * scan of jobs_rank_idx (coalesce(tenant, ''), priority DESC, rank_key,
 * on pending jobs), one descent per tenant, each for the first visible
 * entry past the last tenant found.  It reads the index directly, not
 * through SQL, as it runs on every claim and its cost grows with the
 * number of tenants.  Runs as the extension's owner.
 */
static int
read_pending_tenants(PendingTenant **out)
{
	Oid			nsp = get_namespace_oid("tinytemp", false);
	Oid			index_oid = get_relname_relid("jobs_rank_idx", nsp);
	Relation	heap;
	Relation	index;
	TupleDesc	desc;
	AttrNumber	tenant_att;
	AttrNumber	priority_att;
	AttrNumber	rank_att;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	int			size = 16;
	int			n = 0;
	PendingTenant *pt;

	/* Before 0.3 there is no such index: the schema wants ALTER EXTENSION UPDATE. */
	if (!OidIsValid(index_oid))
		tinytemp_raise_outdated_schema();
	heap = table_open(get_relname_relid("jobs", nsp), AccessShareLock);
	index = index_open(index_oid, AccessShareLock);
	desc = RelationGetDescr(heap);
	tenant_att = SPI_fnumber(desc, "tenant");
	priority_att = SPI_fnumber(desc, "priority");
	rank_att = SPI_fnumber(desc, "rank_key");
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, snapshot, 1, 0);
	pt = palloc0(sizeof(PendingTenant) * size);

	for (;;)
	{
		ScanKeyData key;
		bool		isnull;
		Datum		v;

		/* The first tenant is the index's first entry; each next, the first past it. */
		ScanKeyEntryInitialize(&key, 0, 1,
							   n == 0 ? BTGreaterEqualStrategyNumber : BTGreaterStrategyNumber,
							   InvalidOid, index->rd_indcollation[0],
							   n == 0 ? F_TEXT_GE : F_TEXT_GT,
							   CStringGetTextDatum(n == 0 ? "" : pt[n - 1].name));
		index_rescan(scan, &key, 1, NULL, 0);
		if (!index_getnext_slot(scan, ForwardScanDirection, slot))
			break;
		if (n == size)
		{
			size *= 2;
			pt = repalloc(pt, sizeof(PendingTenant) * size);
		}
		v = slot_getattr(slot, tenant_att, &isnull);
		pt[n].name = isnull ? pstrdup("") : TextDatumGetCString(v);
		v = slot_getattr(slot, priority_att, &isnull);
		pt[n].head_priority = isnull ? 0 : DatumGetInt32(v);
		v = slot_getattr(slot, rank_att, &isnull);
		pt[n].head_rank_key = isnull ? 0 : DatumGetFloat8(v);
		pt[n].share = 0;
		n++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	*out = pt;
	return n;
}

/*
 * With more than TENANTS_READ_ALL tenants waiting, the loose scan, whose
 * cost grows with them, runs at most once per TENANT_LIST_TTL_MS in a
 * backend (as Slurm's fair-share priorities are recomputed periodically):
 * claims in between order the tenants of the last scan, with their shares
 * of the moment.  A tenant that starts waiting meanwhile is seen at the
 * next scan, or at once when the tenants listed have nothing this worker
 * can take.  With fewer tenants every claim scans.
 */
#define TENANT_LIST_TTL_MS 1000

static MemoryContext tenant_list_cxt = NULL;
static PendingTenant *tenant_list = NULL;
static int	tenant_list_n = 0;
static TimestampTz tenant_list_at = 0;

/* The waiting tenants, from the last scan if it is recent enough; *cached tells which. */
static int
waiting_tenants(PendingTenant **out, bool rescan, bool *cached)
{
	TimestampTz now = tinytemp_now();
	PendingTenant *pt;
	int			n;

	*cached = !rescan && tenant_list_n > TENANTS_READ_ALL && now >= tenant_list_at &&
		now - tenant_list_at < (TimestampTz) TENANT_LIST_TTL_MS * 1000;
	if (*cached)
	{
		pt = palloc(sizeof(PendingTenant) * tenant_list_n);
		memcpy(pt, tenant_list, sizeof(PendingTenant) * tenant_list_n);
		*out = pt;
		return tenant_list_n;
	}
	n = read_pending_tenants(&pt);
	tenant_list_n = 0;
	if (n > TENANTS_READ_ALL)
	{
		if (tenant_list_cxt == NULL)
			tenant_list_cxt = AllocSetContextCreate(TopMemoryContext, "tinytemp waiting tenants",
													ALLOCSET_SMALL_SIZES);
		MemoryContextReset(tenant_list_cxt);
		tenant_list = MemoryContextAlloc(tenant_list_cxt, sizeof(PendingTenant) * n);
		for (int i = 0; i < n; i++)
		{
			tenant_list[i] = pt[i];
			tenant_list[i].name = MemoryContextStrdup(tenant_list_cxt, pt[i].name);
		}
		tenant_list_n = n;
	}
	tenant_list_at = now;
	*out = pt;
	return n;
}

/* qsort order of tenants for a claim: best job's class, then lowest share, then its rank. */
static int
tenant_order_cmp(const void *a, const void *b)
{
	const PendingTenant *x = *(PendingTenant *const *) a;
	const PendingTenant *y = *(PendingTenant *const *) b;

	if (x->head_priority != y->head_priority)
		return x->head_priority > y->head_priority ? -1 : 1;
	if (x->share != y->share)
		return x->share < y->share ? -1 : 1;
	if (x->head_rank_key != y->head_rank_key)
		return x->head_rank_key < y->head_rank_key ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Read the best max_jobs + extra ready jobs that fit the worker of each
 * tenant named in names[0..n) (whose indexes in the claim's tenants array
 * are idx[]), and score them on its hardware, into *cands; returns how
 * many.  The extra ones stand in for those the policy passes over.
 */
static int
read_candidates(ClaimWorker *w, int max_jobs, int extra, char **names, int *idx, int n,
				TinytempCandidate **cands, OtherWorkers *others)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT c.*, t.idx FROM unnest($7::text[], $8::int[]) t(tenant, idx) CROSS JOIN LATERAL ("
		"  SELECT " CANDIDATE_COLUMNS " FROM tinytemp.jobs j"
		"  WHERE coalesce(j.tenant, '') = t.tenant AND " TINYTEMP_READY_CONDITION
		"    AND j.gang_size = 1 AND j.cpus <= $1 AND j.memory_mb <= $2 AND j.gpus <= $3"
		"    AND j.id <> ALL ($6)"
		"    AND (j.gpus = 0 OR j.gpu_type IS NULL OR j.gpu_type = $4)"
		"  ORDER BY j.priority DESC, j.rank_key"
		"  LIMIT $5"
		") c";
	Oid			argtypes[8] = {INT8OID, INT8OID, INT8OID, TEXTOID, INT4OID, INT8ARRAYOID,
	TEXTARRAYOID, INT4ARRAYOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum	   *name_datums = palloc(sizeof(Datum) * n);
	Datum	   *idx_datums = palloc(sizeof(Datum) * n);
	SPITupleTable *tab;
	TinytempRow row;
	TinytempCandidate *c;
	int			ncands;
	bool		check_kinds = !one_kind();

	for (int i = 0; i < n; i++)
	{
		name_datums[i] = CStringGetTextDatum(names[i]);
		idx_datums[i] = Int32GetDatum(idx[i]);
	}
	values[0] = Int64GetDatum(w->avail.cpus);
	values[1] = Int64GetDatum(w->avail.memory_mb);
	values[2] = Int64GetDatum(w->avail.gpus);
	values[3] = w->gpu_type ? CStringGetTextDatum(w->gpu_type) : (Datum) 0;
	nulls[3] = w->gpu_type ? ' ' : 'n';
	values[4] = Int32GetDatum(max_jobs + extra);
	values[5] = tinytemp_int8_array(busy_ids, nbusy);
	values[6] = PointerGetDatum(construct_array(name_datums, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[7] = PointerGetDatum(construct_array(idx_datums, n, INT4OID, sizeof(int32), true,
												TYPALIGN_INT));
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 8, argtypes), values, nulls, SPI_OK_SELECT);

	ncands = (int) SPI_processed;
	tab = SPI_tuptable;
	c = palloc0(sizeof(TinytempCandidate) * Max(ncands, 1));
	tinytemp_row_init(&row, tab->tupdesc);
	for (int i = 0; i < ncands; i++)
	{
		TinytempJobSpec spec;
		double		estimate;	/* the submitter's, at speed 1.0 */
		double		est;		/* on a typical worker */

		tinytemp_row_read(&row, tab->vals[i]);
		tinytemp_row_spec(&row, 2, &spec);
		c[i].id = tinytemp_row_int64(&row, 1, 0);
		c[i].req = tinytemp_spec_request(&spec);
		c[i].tenant = (int) tinytemp_row_int64(&row, 17, 0);
		c[i].priority = (int32) tinytemp_row_int64(&row, 12, 0);
		c[i].rank_key = tinytemp_row_float8(&row, 15, 0);
		estimate = tinytemp_row_float8(&row, 14, -1);
		est = estimate >= 0 ? estimate : tinytemp_row_float8(&row, 13, -1);
		c[i].est_here = estimate_here(c[i].id, c[i].rank_key, &spec, estimate, w->id, w->gpu_type,
									  w->speed);
		c[i].score = tinytemp_score(c[i].rank_key, est, c[i].est_here);

		/* Some kind of worker much faster: is such room free, or soon? */
		if (check_kinds && est > 0 && c[i].est_here > 0)
		{
			TinytempKindEstimates ests = {0};

			if (!much_faster_kind(&spec, &c[i].req, estimate, c[i].est_here, &ests))
				continue;
			if (others->avail == NULL)
				read_other_workers(w, others);
			c[i].declined = faster_elsewhere(w, &spec, &c[i], estimate, others, &ests);
		}
	}
	*cands = c;
	return ncands;
}

/*
 * Start on the worker the first of ids[0..n), in that order, that is still
 * ready and that no other claim holds: one statement however many claims
 * contend for the same best jobs, where locking the best and, failing
 * that, the next would take one statement per claim ahead.  Returns the
 * index in ids of the job started, or -1 when every one was taken.
 */
static int
take_first(ClaimWorker *w, int64 *ids, double *ests, int n, ReturnSetInfo *rsinfo)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"WITH l AS ("
		"  SELECT j.id, e.est FROM unnest($1, $4) WITH ORDINALITY e(id, est, ord)"
		"  JOIN tinytemp.jobs j ON j.id = e.id"
		"  WHERE j.id = ANY ($1) AND j.state = 'pending' AND j.run_after <= tinytemp.now()"
		"  ORDER BY e.ord LIMIT 1"
		"  FOR UPDATE OF j SKIP LOCKED"
		START_LOCKED_JOBS;
	bool		isnull;
	int64		id;

	start_jobs(&plan, sql, w, ids, ests, n);
	if (emit_rows(rsinfo) == 0)
		return -1;
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									 SPI_fnumber(SPI_tuptable->tupdesc, "id"), &isnull));
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	elog(ERROR, "a claim started job " INT64_FORMAT ", which it did not choose", id);
}

/*
 * The claim's last job: the candidates in the policy's order (as many as
 * there are), and the first of them that no other claim holds (take_first).  When every one
 * is held, they all go on the busy list.  Returns how many started (0, 1).
 */
static int
select_last(ClaimWorker *w, TinytempCandidate *cands, int ncands, TinytempResources *avail,
			TinytempTenant *tenants, const TinytempResources *total, ReturnSetInfo *rsinfo)
{
	TimestampTz now = tinytemp_now();
	int64	   *ids = palloc(sizeof(int64) * Max(ncands, 1));
	double	   *ests = palloc(sizeof(double) * Max(ncands, 1));
	TinytempCandidate *chosen;
	int			n;
	int			first;

	preference_of = cands;
	preference = palloc(sizeof(int) * Max(ncands, 1));
	npreference = 0;
	(void) tinytemp_select(cands, ncands, *avail, w->res, w->nres, tenants, total, 1, now,
						   note_preference);
	n = npreference;
	for (int i = 0; i < n; i++)
	{
		TinytempCandidate *c = &cands[preference[i]];

		ids[i] = c->id;
		ests[i] = c->est_here;
		c->declined = false;	/* tinytemp_select declined what note_preference refused */
	}
	if (n == 0)
		return 0;
	first = take_first(w, ids, ests, n, rsinfo);
	if (first < 0)
	{
		for (int i = 0; i < n; i++)
		{
			note_busy(ids[i]);
			cands[preference[i]].declined = true;
		}
		return 0;
	}
	chosen = &cands[preference[first]];
	chosen->taken = chosen->started = true;
	tinytemp_resources_sub(avail, &chosen->req);
	tinytemp_resources_add(&tenants[chosen->tenant].used, &chosen->req);
	return 1;
}

/*
 * Choose among cands by policy.c's rules, then lock and start the chosen
 * together.  Those another claim holds give back their room and share,
 * and the policy chooses again among the rest, as long as any is left.
 * Returns how many started; *avail loses what they take.
 */
static int
select_and_take(ClaimWorker *w, TinytempCandidate *cands, int ncands, TinytempResources *avail,
				TinytempTenant *tenants, const TinytempResources *total, int max_jobs,
				int64 *ids, double *ests, ReturnSetInfo *rsinfo)
{
	TimestampTz now = tinytemp_now();
	int			started = 0;

	while (started < max_jobs)
	{
		int			n = 0;
		int			got;
		int			busy_before = nbusy;

		if (max_jobs - started == 1)
		{
			started += select_last(w, cands, ncands, avail, tenants, total, rsinfo);
			break;
		}
		if (tinytemp_select(cands, ncands, *avail, w->res, w->nres, tenants, total,
							max_jobs - started, now, accept_candidate) == 0)
			break;
		/* In the order chosen: by class, then as tinytemp_select took them. */
		for (int i = 0; i < ncands; i++)
			if (cands[i].taken && !cands[i].started)
			{
				ids[n] = cands[i].id;
				ests[n] = cands[i].est_here;
				n++;
			}
		got = take_chosen(w, ids, ests, n, false, rsinfo);
		started += got;
		for (int i = 0; i < ncands; i++)
		{
			TinytempCandidate *c = &cands[i];

			if (!c->taken || c->started)
				continue;
			if (busy_before < nbusy && is_busy(c->id, busy_before))
			{
				c->taken = false;
				c->declined = true;
				tinytemp_resources_sub(&tenants[c->tenant].used, &c->req);
			}
			else
			{
				c->started = true;
				tinytemp_resources_sub(avail, &c->req);
			}
		}
		if (got == n)
			break;
	}
	return started;
}

/*
 * Read the best few ready jobs of the npending waiting tenants pt that fit
 * the worker, score them on its hardware, and choose by policy.c's rules;
 * start what it chose.  Returns how many started.
 */
static int
choose_among(ClaimWorker *w, PendingTenant *pt, int npending, int max_jobs, int64 *ids,
			 double *ests, ReturnSetInfo *rsinfo)
{
	PendingTenant **order;
	TinytempTenant *tenants;
	TinytempResources total = {0, 0, 0};
	TinytempResources avail = w->avail;
	OtherWorkers others = {0};
	char	  **names;
	int		   *idx;
	int			group = npending;
	int			started = 0;

	if (npending == 0)
		return 0;
	tenants = palloc0(sizeof(TinytempTenant) * npending);
	for (int i = 0; i < npending; i++)
		tenants[i].name = pt[i].name;
	if (npending > 1)
		read_shares(tenants, npending, &total);

	order = palloc(sizeof(PendingTenant *) * npending);
	for (int i = 0; i < npending; i++)
		order[i] = &pt[i];
	if (npending > TENANTS_READ_ALL)
	{
		for (int i = 0; i < npending; i++)
			pt[i].share = tinytemp_dominant_share(&tenants[i].used, &total);
		qsort(order, npending, sizeof(PendingTenant *), tenant_order_cmp);
		group = max_jobs + TENANT_GROUP_EXTRA;
	}

	names = palloc(sizeof(char *) * npending);
	idx = palloc(sizeof(int) * npending);
	for (int first = 0; first < npending && started < max_jobs; first += group)
	{
		int			n = Min(group, npending - first);
		TinytempCandidate *cands;
		int			ncands;

		for (int i = 0; i < n; i++)
		{
			names[i] = order[first + i]->name;
			idx[i] = (int) (order[first + i] - pt);
		}
		ncands = read_candidates(w, max_jobs - started,
								 npending > TENANTS_READ_ALL ? TENANT_GROUP_EXTRA : CANDIDATES_EXTRA,
								 names, idx, n, &cands, &others);
		if (ncands > 0)
			started += select_and_take(w, cands, ncands, &avail, tenants, &total,
									   max_jobs - started, ids, ests, rsinfo);
	}
	return started;
}

/*
 * Policy 'tinytemp': choose among the waiting tenants' jobs (choose_among).
 * Returns how many started.
 */
static int
choose_tinytemp(ClaimWorker *w, int max_jobs, int64 *ids, double *ests, ReturnSetInfo *rsinfo)
{
	PendingTenant *pt;
	bool		cached;
	int			npending = waiting_tenants(&pt, false, &cached);
	int			started = choose_among(w, pt, npending, max_jobs, ids, ests, rsinfo);

	/* Nothing among the tenants of the last scan: scan again, for those who came since. */
	if (started == 0 && cached)
	{
		npending = waiting_tenants(&pt, true, &cached);
		started = choose_among(w, pt, npending, max_jobs, ids, ests, rsinfo);
	}
	return started;
}

/*
 * Policy 'fifo': strict arrival order within priority classes, as Slurm's
 * builtin scheduler without backfill and Kueue's StrictFIFO.  Walk the
 * ready jobs in order, placing each on a copy of every worker's free
 * resources: take a job that fits what this worker has left; count one
 * that fits another worker there instead (it can start there, so it is not
 * held up, and the jobs behind it cannot have that room); stop at the
 * first that can start nowhere, or at a gang the planner has not placed:
 * no younger job starts while an older one cannot.
 */
static int
choose_fifo(ClaimWorker *w, int max_jobs, int64 *ids, double *ests, ReturnSetInfo *rsinfo)
{
	static SPIPlanPtr plan = NULL;
	static const char *sql =
		"SELECT " CANDIDATE_COLUMNS " FROM tinytemp.jobs j"
		" WHERE " TINYTEMP_READY_CONDITION " AND j.id <> ALL ($2)"
		" ORDER BY j.priority DESC, j.id LIMIT $1";
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2];
	SPITupleTable *jobs;
	uint64		njobs;
	OtherWorkers others = {0};
	TinytempResources avail = w->avail;
	int			chosen = 0;

	values[0] = Int32GetDatum(max_jobs + FIFO_LOOKAHEAD);
	values[1] = tinytemp_int8_array(busy_ids, nbusy);
	tinytemp_spi_execute(tinytemp_plan(&plan, sql, 2, argtypes), values, NULL, SPI_OK_SELECT);
	jobs = SPI_tuptable;
	njobs = SPI_processed;

	for (uint64 i = 0; i < njobs && chosen < max_jobs; i++)
	{
		HeapTuple	t = jobs->vals[i];
		TupleDesc	d = jobs->tupdesc;
		TinytempJobSpec spec;
		TinytempResources req;
		bool		elsewhere = false;

		if (tinytemp_get_int64(t, d, 16, 1) > 1)
			break;
		tinytemp_get_spec(t, d, 2, &spec);
		req = tinytemp_spec_request(&spec);
		if (tinytemp_fits(&req, &avail) &&
			tinytemp_gpu_type_matches(req.gpus, spec.gpu_type, w->gpu_type) &&
			lock_ready_job(tinytemp_get_int64(t, d, 1, 0)))
		{
			ids[chosen] = tinytemp_get_int64(t, d, 1, 0);
			ests[chosen] = tinytemp_estimate_on(&spec, tinytemp_get_float8(t, d, 14, -1),
												w->gpu_type, w->speed);
			tinytemp_resources_sub(&avail, &req);
			chosen++;
			continue;
		}
		if (others.avail == NULL)
			read_other_workers(w, &others);
		/* It can start on another worker: count it there, for the jobs behind it. */
		for (int k = 0; k < others.n && !elsewhere; k++)
			if (tinytemp_fits(&req, &others.avail[k]) &&
				tinytemp_gpu_type_matches(req.gpus, spec.gpu_type, others.gpu_type[k]))
			{
				tinytemp_resources_sub(&others.avail[k], &req);
				elsewhere = true;
			}
		if (!elsewhere)
			break;
	}
	if (chosen > 0)
		take_chosen(w, ids, ests, chosen, true, rsinfo);
	return chosen;
}

/* Raise unless 0 < max_jobs <= MAX_JOBS_PER_CLAIM. */
static void
check_max_jobs(int32 max_jobs)
{
	tinytemp_require_positive(max_jobs, "max_jobs");
	if (max_jobs > MAX_JOBS_PER_CLAIM)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("max_jobs must be at most %d", MAX_JOBS_PER_CLAIM));
}

/* Claim up to max_jobs jobs for worker_id into the function's result set. */
static void
claim_jobs(FunctionCallInfo fcinfo, int64 worker_id, int32 max_jobs)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ClaimWorker w;
	int			taken = 0;
	int64	   *ids;
	double	   *ests;
	TinytempCaller caller;

	InitMaterializedSRF(fcinfo, 0);
	memset(&w, 0, sizeof(w));
	w.id = worker_id;

	tinytemp_enter(fcinfo, &caller);
	tinytemp_lock(TINYTEMP_LOCK_WORKER, (uint64) w.id);
	/* The model, loaded here when a new one came, not from within the claim's statements. */
	est_generation = tinytemp_model_generation();

	SPI_connect();
	ids = palloc(sizeof(int64) * max_jobs);
	ests = palloc(sizeof(double) * max_jobs);
	if (busy_ids == NULL)
		busy_ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * (busy_size = 64));
	nbusy = 0;
	tinytemp_require_worker(&caller, w.id);
	read_worker(&w);
	if (w.assigned > 0)
	{
		taken = take_assigned(&w, max_jobs, rsinfo);
		read_worker(&w);
	}

	/*
	 * Each round chooses from the best ready jobs that no other claim was
	 * found holding, and starts what it locked; the next round, if it got
	 * fewer than it wanted because others held some, reads past those.
	 * The started jobs count in the worker's room and its tenant's share
	 * from the next round on: they are this transaction's own updates.
	 */
	for (int round = 0; round < MAX_CLAIM_ROUNDS && taken < max_jobs; round++)
	{
		int			busy_before = nbusy;
		int			chosen;

		if (round > 0)
			read_worker(&w);
		if (tinytemp_policy == TINYTEMP_POLICY_FIFO)
			chosen = choose_fifo(&w, max_jobs - taken, ids, ests, rsinfo);
		else
			chosen = choose_tinytemp(&w, max_jobs - taken, ids, ests, rsinfo);
		taken += chosen;
		if (nbusy == busy_before)
			break;
	}
	SPI_finish();
	tinytemp_leave(&caller);

}

/* tinytemp_claim(worker_id, max_jobs): claim and return up to max_jobs jobs. */
Datum
tinytemp_claim(PG_FUNCTION_ARGS)
{
	tinytemp_require_arg(fcinfo, 0, "worker_id");
	tinytemp_require_arg(fcinfo, 1, "max_jobs");
	check_max_jobs(PG_GETARG_INT32(1));
	claim_jobs(fcinfo, PG_GETARG_INT64(0), PG_GETARG_INT32(1));
	return (Datum) 0;
}

/*
 * tinytemp_ack_and_claim(job_ids, worker_id, results, max_jobs): ack the
 * jobs as tinytemp_ack_many does, then claim up to max_jobs as
 * tinytemp_claim does, in one call and one commit: a worker's round trip
 * for the jobs that ended and the ones that take their slots.  A refused
 * ack raises before anything is claimed.
 */
Datum
tinytemp_ack_and_claim(PG_FUNCTION_ARGS)
{
	tinytemp_require_arg(fcinfo, 0, "job_ids");
	tinytemp_require_arg(fcinfo, 1, "worker_id");
	tinytemp_require_arg(fcinfo, 3, "max_jobs");
	check_max_jobs(PG_GETARG_INT32(3));
	(void) tinytemp_ack_array(fcinfo, 0, PG_GETARG_INT64(1), 2);
	claim_jobs(fcinfo, PG_GETARG_INT64(1), PG_GETARG_INT32(3));
	return (Datum) 0;
}

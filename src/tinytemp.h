/*
 * tinytemp.h
 *	  Declarations shared by the extension's source files.
 */
#ifndef TINYTEMP_H
#define TINYTEMP_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

/*
 * SQLSTATEs of tinytemp's own errors, in class "TT".  Input that is merely
 * malformed uses PostgreSQL's own codes (22004, 22023, 22P02).
 */
#define ERRCODE_TINYTEMP_UNKNOWN_WORKER		MAKE_SQLSTATE('T','T','0','0','1')
#define ERRCODE_TINYTEMP_UNKNOWN_JOB		MAKE_SQLSTATE('T','T','0','0','2')
#define ERRCODE_TINYTEMP_LEASE_LOST			MAKE_SQLSTATE('T','T','0','0','3')

/* Values of tinytemp.policy */
typedef enum TinytempPolicy
{
	TINYTEMP_POLICY_FIFO,
	TINYTEMP_POLICY_TINYTEMP
} TinytempPolicy;

/* The channel that tinytemp_enqueue notifies, with the queue as payload. */
#define TINYTEMP_NOTIFY_CHANNEL "tinytemp_jobs"

/* GUCs (tinytemp.c) */
extern int	tinytemp_lease_timeout_ms;
extern int	tinytemp_retry_base_ms;
extern int	tinytemp_retry_cap_ms;
extern int	tinytemp_naptime_ms;
extern int	tinytemp_retrain_after;
extern int	tinytemp_retrain_interval_ms;
extern char *tinytemp_database;
extern bool tinytemp_preloaded;
extern int	tinytemp_policy;
extern double tinytemp_aging_rate;
extern int	tinytemp_preempt_grace_ms;
extern int	tinytemp_max_preemptions;
extern int	tinytemp_placement_timeout_ms;
extern int	tinytemp_reservation_horizon_ms;
extern bool tinytemp_service_preemption;
extern bool tinytemp_predictor_history;
extern bool tinytemp_predictor_vector;
extern int	tinytemp_preemption_cost_ms;
extern int	tinytemp_preemption_min_run_ms;
extern int	tinytemp_starvation_limit_ms;
extern char *tinytemp_clock;
extern int	tinytemp_log_max_lines;
extern int	tinytemp_log_max_bytes;

/* Lock spaces for tinytemp's transaction-level advisory locks. */
typedef enum TinytempLockSpace
{
	TINYTEMP_LOCK_WORKER = 1,	/* one worker's claims, keyed by worker id */
	TINYTEMP_LOCK_WORKER_NAME,	/* registrations of one name, keyed by hash */
	TINYTEMP_LOCK_PLANNER,		/* the planner's pass, key 0 */
	TINYTEMP_LOCK_JOB_LOGS,		/* a job's log lines, keyed by job id */
	TINYTEMP_LOCK_DATASET_NAME	/* the versions of a dataset name, keyed by its hash */
} TinytempLockSpace;

extern void tinytemp_lock(TinytempLockSpace space, uint64 key);
extern bool tinytemp_try_lock(TinytempLockSpace space, uint64 key);

/* access.c: the caller of an SQL function, and what it may do */
typedef struct TinytempCaller
{
	Oid			role;			/* who called */
	bool		admin;			/* a superuser or a member of tinytemp_admin */
	Oid			saved_user;
	int			saved_context;
	bool		switched;		/* now running as the extension's owner */
} TinytempCaller;

extern void tinytemp_enter(FunctionCallInfo fcinfo, TinytempCaller *caller);
extern void tinytemp_leave(TinytempCaller *caller);
extern char *tinytemp_caller_name(const TinytempCaller *caller);
extern bool tinytemp_caller_acts_for(const TinytempCaller *caller, const char *name);
extern void tinytemp_require_tenant(const TinytempCaller *caller, const char *tenant,
									const char *action);
extern void tinytemp_require_worker(const TinytempCaller *caller, int64 worker_id);
extern void tinytemp_require_worker_owner(const TinytempCaller *caller, int64 worker_id,
										  const char *owner);

/* clock.c */
extern TimestampTz tinytemp_now(void);
extern bool tinytemp_clock_check(char **newval, void **extra, GucSource source);
extern void tinytemp_clock_assign(const char *newval, void *extra);

/* util.c */
extern SPIPlanPtr tinytemp_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes);
extern void tinytemp_raise_outdated_schema(void) pg_attribute_noreturn();
extern bool tinytemp_schema_has_service(void);
extern void tinytemp_require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern void tinytemp_require_positive(int64 value, const char *name);
extern void tinytemp_require_nonnegative(int64 value, const char *name);
extern void tinytemp_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls,
								 int expected);
extern int64 tinytemp_get_int64(HeapTuple tuple, TupleDesc desc, int col, int64 dflt);
extern double tinytemp_get_float8(HeapTuple tuple, TupleDesc desc, int col, double dflt);
extern TimestampTz tinytemp_get_timestamptz(HeapTuple tuple, TupleDesc desc, int col,
											TimestampTz dflt);

/*
 * A row (of an SPI result, or one a trigger writes) with its columns taken
 * out at once: read one by one, each column after a NULL is a walk of the
 * row from its start (util.c).
 */
typedef struct TinytempRow
{
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
} TinytempRow;

extern void tinytemp_row_init(TinytempRow *row, TupleDesc desc);
extern void tinytemp_row_read(TinytempRow *row, HeapTuple tuple);
extern int64 tinytemp_row_int64(const TinytempRow *row, int col, int64 dflt);
extern double tinytemp_row_float8(const TinytempRow *row, int col, double dflt);
extern char *tinytemp_row_text(const TinytempRow *row, int col);
struct JsonbContainer;
extern char *tinytemp_jsonb_unknown_key(struct JsonbContainer *obj, const char *const *allowed,
										int nallowed);


/* jobs.c */
extern void tinytemp_raise_not_held(int64 job_id, int64 worker_id) pg_attribute_noreturn();
extern int32 tinytemp_held_attempt(const TinytempCaller *caller, int64 job_id, int64 worker_id,
								   char **tenant);
extern int	tinytemp_ack_array(FunctionCallInfo fcinfo, int ids_arg, int64 worker_id,
							   int results_arg);

/* workers.c */
extern bool tinytemp_worker_is_active(int64 worker_id);
extern int	tinytemp_expire_leases_internal(void);
extern int	tinytemp_release_stale_assignments(void);
extern void tinytemp_renew_leases_since(TimestampTz since);

/* planner.c: a pass's steps, which the background worker runs one transaction each */
typedef enum TinytempPassStep
{
	TINYTEMP_STEP_LEASES,		/* forced preemptions and lost leases */
	TINYTEMP_STEP_HOUSEKEEPING,	/* stale assignments, broken dependencies, unschedulable jobs */
	TINYTEMP_STEP_PLACEMENT		/* gangs, reservations, preemption requests */
} TinytempPassStep;

extern int	tinytemp_schedule_step(TinytempPassStep step);


/* A stored job as the predictor sees it: NULL strings, negative numbers for NULL. */
/*
 * Who submits a job and how, which the predictor's history
 * of requests looks up (see Model in model_codec.h): its tenant (NULL:
 * none), queue, and params (the jsonb's bytes).
 */
typedef struct TinytempJobIdentity
{
	const char *tenant;
	const char *queue;
	const char *params;
	int			params_len;
} TinytempJobIdentity;

typedef struct TinytempJobSpec
{
	const char *job_type;
	const char *model;
	const char *gpu_type;
	double		dataset_size;
	double		epochs;
	double		batch_size;
	double		cpus;
	double		gpus;
	double		memory_mb;
	const TinytempJobIdentity *who; /* NULL: not known (the model alone predicts) */
} TinytempJobSpec;

/* util.c, on the struct above */
extern void tinytemp_get_spec(HeapTuple tuple, TupleDesc desc, int first, TinytempJobSpec *spec);
extern void tinytemp_row_spec(const TinytempRow *row, int first, TinytempJobSpec *spec);
extern Datum tinytemp_int8_array(const int64 *values, int n);
extern Datum tinytemp_float8_array(const double *values, int n);

/* policy.c: the placement policy, on plain structs */
typedef struct TinytempResources
{
	int64		cpus;
	int64		memory_mb;
	int64		gpus;
} TinytempResources;

/* Where a job stands in the policy's order: its class, then its rank_key. */
typedef struct TinytempRank
{
	int32		priority;
	double		rank_key;
} TinytempRank;

/* Resources held back on a worker for job_id from start_at; planned at since. */
typedef struct TinytempReservation
{
	int64		job_id;
	TinytempRank rank;			/* the job's */
	TimestampTz start_at;
	TimestampTz since;
	TinytempResources held;
} TinytempReservation;

/* A tenant's resources held by its assigned and running jobs. */
typedef struct TinytempTenant
{
	char	   *name;
	TinytempResources used;
} TinytempTenant;

/* A job a claim could take. */
typedef struct TinytempCandidate
{
	int64		id;
	int			tenant;			/* index into the tenants array */
	int32		priority;
	double		rank_key;
	TinytempResources req;
	double		est_here;		/* estimated seconds on this worker, -1 unknown */
	double		score;
	bool		declined;		/* left to a much faster worker, or held by another claim */
	bool		taken;
	bool		started;		/* the claim locked and started it (claim.c) */
} TinytempCandidate;

/*
 * One job's estimates on the kinds of hardware (GPU type and speed) seen
 * so far (tinytemp_estimate_on_kind): a cluster has few kinds and many
 * workers, and each estimate may cost a prediction; CPU work takes one
 * prediction for every speed.  Zeroed for a new job.
 */
#define TINYTEMP_ESTIMATE_KINDS 8
typedef struct TinytempKindEstimates
{
	int			n;
	const char *gpu_type[TINYTEMP_ESTIMATE_KINDS];
	double		speed[TINYTEMP_ESTIMATE_KINDS];
	double		est[TINYTEMP_ESTIMATE_KINDS];
	bool		cpu_predicted;	/* then cpu_seconds is CPU work's at speed 1.0, -1 for none */
	double		cpu_seconds;
} TinytempKindEstimates;

/* A running job: what it holds and when it is expected to end. */
typedef struct TinytempRunning
{
	TinytempResources held;
	TimestampTz end_at;
} TinytempRunning;

extern bool tinytemp_fits(const TinytempResources *req, const TinytempResources *avail);
extern bool tinytemp_gpu_type_matches(int64 gpus, const char *gpu_type, const char *worker_gpu_type);
extern void tinytemp_resources_sub(TinytempResources *a, const TinytempResources *b);
extern void tinytemp_resources_add(TinytempResources *a, const TinytempResources *b);
extern bool tinytemp_reservations_allow(int64 job_id, TinytempRank rank,
										const TinytempResources *req, double est_here,
										const TinytempResources *avail,
										const TinytempReservation *res, int nres, TimestampTz now);
extern TinytempResources tinytemp_spec_request(const TinytempJobSpec *spec);
extern double tinytemp_score(double rank_key, double est, double est_here);
extern bool tinytemp_much_faster(double est_there, double est_here);
extern double tinytemp_dominant_share(const TinytempResources *used, const TinytempResources *total);
extern int	tinytemp_select(TinytempCandidate *cands, int ncands, TinytempResources avail,
							const TinytempReservation *res, int nres,
							TinytempTenant *tenants, const TinytempResources *total,
							int max_jobs, TimestampTz now,
							bool (*take) (const TinytempCandidate *cand));
extern double tinytemp_estimate_on(const TinytempJobSpec *spec, double runtime_estimate_s,
								  const char *worker_gpu_type, double worker_speed);
extern double tinytemp_estimate_on_kind(TinytempKindEstimates *kinds, const TinytempJobSpec *spec,
										double runtime_estimate_s, const char *worker_gpu_type,
										double worker_speed);
extern double tinytemp_spread_from_interval(double p10, double p90);
extern double tinytemp_rank_cost(double median, double spread, double attained);
extern double tinytemp_gang_cost(double median, double spread);
extern bool tinytemp_service_preempt_pays(double victim_cost, double cost,
										  double restart_cost_s);
extern TimestampTz tinytemp_expected_end(TimestampTz end_at, TimestampTz started_at, TimestampTz now);
extern int	tinytemp_running_end_cmp(const void *a, const void *b);
extern TimestampTz tinytemp_earliest_fit(const TinytempResources *req, TinytempResources avail,
										 const TinytempRunning *running, int nrunning,
										 TimestampTz now);

/*
 * A worker's slots, the most jobs it runs at once: its label "slots"
 * (tinytemp-worker registers its --slots) when that is a whole number,
 * else NULL, no limit.  Any owner may label a worker, so nothing but
 * digits counts.  w is the alias of tinytemp.workers.
 */
#define TINYTEMP_WORKER_SLOTS_SQL(w) \
	"CASE WHEN " w ".labels->>'slots' ~ '^[0-9]{1,9}$' THEN (" w ".labels->>'slots')::int END"

/*
 * The tenants (NULL as '') that have pending jobs, one index probe each
 * (a loose scan of jobs_rank_idx): the planner then reads each tenant's
 * best jobs from that index with a LATERAL subquery.  (A claim scans the
 * index itself: see read_pending_tenants in claim.c.)
 */
#define TINYTEMP_PENDING_TENANTS_CTE \
	"WITH RECURSIVE t(tenant) AS (" \
	"  SELECT min(coalesce(tenant, '')) FROM tinytemp.jobs WHERE state = 'pending'" \
	"  UNION ALL" \
	"  SELECT (SELECT min(coalesce(j.tenant, '')) FROM tinytemp.jobs j" \
	"          WHERE j.state = 'pending' AND coalesce(j.tenant, '') > t.tenant)" \
	"  FROM t WHERE t.tenant IS NOT NULL" \
	")"

/* A job is ready: pending, due, and every job it depends on succeeded. */
#define TINYTEMP_READY_CONDITION \
	"j.state = 'pending' AND j.run_after <= tinytemp.now()" \
	" AND (j.depends_on IS NULL OR NOT EXISTS (SELECT FROM tinytemp.jobs d" \
	"      WHERE d.id = ANY (j.depends_on) AND d.state <> 'succeeded'))"

/*
 * A preempted job's service and rank, as it goes back to pending (in an
 * UPDATE of tinytemp.jobs j): the seconds of this run join its attained
 * service, and its rank key moves from the rank cost at the service it
 * had to the cost at the service it has now (policy.c), plus the aging
 * credit of the seconds it ran, so that its aging counts only its waits.
 * AGING is the parameter that holds tinytemp.aging_rate.
 */
#define TINYTEMP_RUN_S \
	"greatest(extract(epoch FROM tinytemp.now() - j.started_at)::float8, 0)"

/*
 * When a held job j (assigned or running) is expected to end: at its
 * predicted end, or, before it has one, after its estimate from now.  One
 * that has run past it is expected to run as long again as it has run
 * (tinytemp_expected_end), rather than to end now.
 */
#define TINYTEMP_EXPECTED_END_SQL \
	"coalesce(j.predicted_end_at, tinytemp.now()" \
	" + make_interval(secs => least(coalesce(j.runtime_estimate_s, j.predicted_runtime_s, 0), 1e8)))"
#define TINYTEMP_COST_ARGS \
	"coalesce(j.runtime_estimate_s, j.predicted_runtime_s, 0)," \
	" CASE WHEN j.runtime_estimate_s IS NULL THEN j.predicted_spread END"
#define TINYTEMP_REQUEUED_ATTAINED "j.attained_s + " TINYTEMP_RUN_S
#define TINYTEMP_REQUEUED_RANK_KEY(AGING) \
	"j.rank_key + " AGING " * " TINYTEMP_RUN_S \
	" + " TINYTEMP_JOB_COST_SQL("j.attained_s + " TINYTEMP_RUN_S) \
	" - " TINYTEMP_JOB_COST_SQL("j.attained_s")

/*
 * The distribution of a predicted runtime (policy.c): a log-normal around
 * the median, but for a share TINYTEMP_MISPREDICTED of jobs whose log
 * spreads over TINYTEMP_WIDE_SPREAD at least; under TINYTEMP_MIN_SPREAD
 * it is a point, and spreads over TINYTEMP_MAX_SPREAD count as that.
 */
#define TINYTEMP_MISPREDICTED 0.05
#define TINYTEMP_WIDE_SPREAD 2.0
#define TINYTEMP_MIN_SPREAD 0.01
#define TINYTEMP_MAX_SPREAD 10.0

/*
 * The rank cost of job j (of tinytemp.jobs j) at ATTAINED seconds of
 * service, in SQL: tinytemp.rank_cost, or for a gang's member with a
 * predicted runtime, tinytemp_gang_cost (its expected runtime).
 */
#define TINYTEMP_GANG_SPREAD "least(j.predicted_spread, " CppAsString2(TINYTEMP_MAX_SPREAD) ")"
#define TINYTEMP_JOB_COST_SQL(ATTAINED) \
	"(CASE WHEN j.gang_size > 1 AND j.runtime_estimate_s IS NULL AND j.predicted_runtime_s > 0" \
	" AND j.predicted_spread >= " CppAsString2(TINYTEMP_MIN_SPREAD) \
	" THEN j.predicted_runtime_s * ((1 - " CppAsString2(TINYTEMP_MISPREDICTED) ")" \
	" * exp(" TINYTEMP_GANG_SPREAD " ^ 2 / 2) + " CppAsString2(TINYTEMP_MISPREDICTED) \
	" * exp(greatest(" TINYTEMP_GANG_SPREAD ", " CppAsString2(TINYTEMP_WIDE_SPREAD) ") ^ 2 / 2))" \
	" ELSE tinytemp.rank_cost(" TINYTEMP_COST_ARGS ", " ATTAINED ") END)"

/* predictor.c */
extern bool tinytemp_predict_spec(const TinytempJobSpec *spec, double *seconds);
extern bool tinytemp_predict_spec_interval(const TinytempJobSpec *spec, double *p10,
										   double *p50, double *p90, bool *bounded);
extern uint64 tinytemp_model_generation(void);
extern int	tinytemp_retrain_from_history(void);
extern bool tinytemp_predict(FunctionCallInfo fcinfo, const int *args, bool refuse_negative,
							 const TinytempJobIdentity *who, double *seconds, double *spread);

/* shmem.c: what backends and the background worker share when preloaded */
typedef struct TinytempShared
{
	slock_t		mutex;			/* protects the three fields below */
	pid_t		scheduler_pid;	/* 0 while no background worker runs */
	Oid			scheduler_db;
	Latch	   *scheduler_latch;
	pg_atomic_uint32 wake_pending;	/* an enqueue committed since the last relay */
	pg_atomic_uint64 new_runtimes;	/* jobs acked since the predictor last trained */
} TinytempShared;

extern TinytempShared *tinytemp_shared;	/* NULL when not preloaded */
extern void tinytemp_shmem_init(void);

/* datasets.c: the dataset registry */
extern void tinytemp_attach_inputs(int64 job_id, ArrayType *inputs, const TinytempCaller *caller,
								   const char *tenant);

/* metrics.c: Prometheus metrics, counted at commit */
struct RelationData;
extern Size tinytemp_metrics_shmem_size(void);
extern void tinytemp_metrics_shmem_request(void);
extern void tinytemp_metrics_shmem_startup(void);
extern void tinytemp_metrics_job_written(struct RelationData *rel, HeapTuple old_tuple,
										 HeapTuple new_tuple);
extern void tinytemp_metrics_render(StringInfo buf);

/* metrics_http.c: the background worker that serves GET /metrics */
extern char *tinytemp_metrics_address;
extern void tinytemp_register_metrics_server(void);

/* notify.c */
extern void tinytemp_notify_enqueued(const char *queue);
extern void tinytemp_notify_attach_scheduler(void);
extern bool tinytemp_notify_relay(void);

/* bgworker.c */
extern void tinytemp_register_bgworker(void);
extern void tinytemp_register_background_worker(const char *function, const char *name,
												 BgWorkerStartTime start_time);

#endif							/* TINYTEMP_H */

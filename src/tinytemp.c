/*
 * tinytemp.c
 *	  Module entry point: GUCs and, when preloaded, the background worker.
 */
#include "tinytemp.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			tinytemp_lease_timeout_ms = 30000;
int			tinytemp_retry_base_ms = 2000;
int			tinytemp_retry_cap_ms = 600000;
int			tinytemp_naptime_ms = 1000;
int			tinytemp_retrain_after = 500;
int			tinytemp_retrain_interval_ms = 600000;
char	   *tinytemp_database = NULL;
int			tinytemp_policy = TINYTEMP_POLICY_TINYTEMP;
double		tinytemp_aging_rate = 1.0;
int			tinytemp_preempt_grace_ms = 30000;
int			tinytemp_max_preemptions = 3;
int			tinytemp_placement_timeout_ms = 900000;
int			tinytemp_reservation_horizon_ms = 3600000;
bool		tinytemp_service_preemption = true;
bool		tinytemp_predictor_history = true;
bool		tinytemp_predictor_vector = true;
int			tinytemp_preemption_cost_ms = 60000;
int			tinytemp_preemption_min_run_ms = 300000;
int			tinytemp_starvation_limit_ms = 1800000;
int			tinytemp_log_max_lines = 1000;
int			tinytemp_log_max_bytes = 1048576;
char	   *tinytemp_metrics_address = NULL;

static const struct config_enum_entry policy_options[] = {
	{"fifo", TINYTEMP_POLICY_FIFO, false},
	{"tinytemp", TINYTEMP_POLICY_TINYTEMP, false},
	{NULL, 0, false}
};

/* True in every backend forked from a postmaster that preloaded us. */
bool		tinytemp_preloaded = false;

void		_PG_init(void);

/* Define the GUCs and, at preload time only, register the background worker. */
void
_PG_init(void)
{
	DefineCustomIntVariable("tinytemp.lease_timeout",
							"How long a claimed job stays leased without a heartbeat.",
							"A job whose lease runs out is retried or dead-lettered by the background worker.",
							&tinytemp_lease_timeout_ms,
							30000, 100, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.retry_backoff_base",
							"Delay before the first retry of a failed job.",
							"Attempt n waits min(cap, base * 2^(n-1)), with equal jitter.",
							&tinytemp_retry_base_ms,
							2000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.retry_backoff_cap",
							"Longest delay between two attempts of a failed job.",
							NULL,
							&tinytemp_retry_cap_ms,
							600000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.naptime",
							"Pause between two passes of the background worker.",
							NULL,
							&tinytemp_naptime_ms,
							1000, 10, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.retrain_after",
							"Acked jobs after which the background worker retrains the predictor.",
							"It learns from the runtimes of the jobs that succeeded; 0 never retrains.",
							&tinytemp_retrain_after,
							500, 0, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.retrain_interval",
							"Shortest time between two retrainings of the predictor by the background worker.",
							"Training reads the whole history: a busy queue would retrain without pause.",
							&tinytemp_retrain_interval_ms,
							600000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("tinytemp.policy",
							 "Placement policy of claims and of the planner.",
							 "fifo: strict arrival order within priority classes; tinytemp: shortest predicted runtime first with aging, dominant resource fairness, backfill and preemption.",
							 &tinytemp_policy,
							 TINYTEMP_POLICY_TINYTEMP, policy_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("tinytemp.aging_rate",
							 "Seconds of estimated runtime forgiven for each second a job waits.",
							 "Within a priority class the tinytemp policy ranks jobs by estimated runtime minus aging_rate times their wait.",
							 &tinytemp_aging_rate,
							 1.0, 0.0, 1e6,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.preempt_grace",
							"Time a preempted job has to save a checkpoint before it is forced back to pending.",
							NULL,
							&tinytemp_preempt_grace_ms,
							30000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.max_preemptions",
							"How many times one job may be preempted.",
							NULL,
							&tinytemp_max_preemptions,
							3, 0, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.placement_timeout",
							"How long a ready job may stay without any worker able to take it before it fails as unschedulable.",
							"0 never fails a job for this; tinytemp_enqueue's placement_timeout overrides it per job.",
							&tinytemp_placement_timeout_ms,
							900000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.reservation_horizon",
							"How long a backfill reservation lets shorter jobs use the reserved resources.",
							"Past it, the reserved workers take no backfill until the reserved job starts.",
							&tinytemp_reservation_horizon_ms,
							3600000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("tinytemp.service_preemption",
							 "Whether the tinytemp policy preempts a running job of the same class for a waiting job that ranks far ahead of it.",
							 "A running job's rank cost grows with the service it has had (the Gittins index of its predicted runtime distribution): a job that has run past most of its predicted range makes way for new jobs no larger than itself, and a large job that has waited longer than tinytemp.starvation_limit for jobs that waited less.",
							 &tinytemp_service_preemption,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("tinytemp.predictor_history",
							 "Whether predictions of jobs whose submitter is known are corrected by the model's history of requests.",
							 "The model keeps what it got wrong of late for a recurring request and for a tenant's jobs of a queue, job type and GPU count; off, the model alone predicts.",
							 &tinytemp_predictor_history,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("tinytemp.predictor_vector",
							 "Whether the predictor evaluates its trees with the processor's vector instructions (AVX2) where it has them.",
							 "Eight trees a level at a time; the predictions are the same to the bit either way.",
							 &tinytemp_predictor_vector,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.preemption_cost",
							"Work a preempted job is expected to lose, counted against preempting it.",
							"Reloading, warming up and the steps since its last checkpoint: the planner preempts for a job of the same class only when the gain outweighs it.",
							&tinytemp_preemption_cost_ms,
							60000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.preemption_min_run",
							"How long a job runs before the planner may preempt it for a job of its own class.",
							"So that a job is not stopped just after paying for its start.",
							&tinytemp_preemption_min_run_ms,
							300000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.starvation_limit",
							"Time waiting after which a job of more than one GPU (or CPU) may preempt running jobs of its class that waited less.",
							"Counts all the time the job has waited, before each of its runs; a job of one unit takes the next one free and needs no rescue; 0 turns this off.",
							&tinytemp_starvation_limit_ms,
							1800000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tinytemp.log_max_lines",
							"Most output lines of a job's attempt that tinytemp_report_logs keeps.",
							NULL,
							&tinytemp_log_max_lines,
							1000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tinytemp.log_max_bytes",
							"Most bytes of output lines of a job's attempt that tinytemp_report_logs keeps.",
							NULL,
							&tinytemp_log_max_bytes,
							1048576, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("tinytemp.clock",
							   "Virtual time that tinytemp functions use instead of now(), for the simulator.",
							   "Empty: the real time.",
							   &tinytemp_clock,
							   "",
							   PGC_SUSET, 0,
							   tinytemp_clock_check, tinytemp_clock_assign, NULL);

	/* PGC_POSTMASTER variables may only be defined while preloading. */
	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("tinytemp");
		return;
	}

	DefineCustomStringVariable("tinytemp.database",
							   "Database in which the background worker runs.",
							   NULL,
							   &tinytemp_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("tinytemp.metrics_address",
							   "host:port on which a background worker serves GET /metrics; empty: none.",
							   "The host is an address or a name to listen on: 127.0.0.1 or localhost keeps it to this machine.",
							   &tinytemp_metrics_address,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("tinytemp");

	tinytemp_preloaded = true;
	tinytemp_shmem_init();
	tinytemp_register_bgworker();
	if (tinytemp_metrics_address[0] != '\0')
		tinytemp_register_metrics_server();
}

/*
 * Take a transaction-level lock private to tinytemp.  It lives in the
 * advisory lock table under a field4 value that pg_advisory_lock never
 * uses, so it cannot collide with the application's own advisory locks.
 */
void
tinytemp_lock(TinytempLockSpace space, uint64 key)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key,
						 0x7400 + (int) space);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* As tinytemp_lock, but give up at once when another transaction holds it. */
bool
tinytemp_try_lock(TinytempLockSpace space, uint64 key)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key,
						 0x7400 + (int) space);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

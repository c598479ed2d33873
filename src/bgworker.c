/*
 * bgworker.c
 *	  The tinytemp background worker: one per cluster, in the database named
 *	  by tinytemp.database.  It relays enqueue wake-ups to the workers, and
 *	  each maintenance pass expires the
 *	  leases whose heartbeat stopped, runs the planner (planner.c: gangs,
 *	  backfill, preemption, placement timeouts), and retrains the runtime predictor
 *	  once tinytemp.retrain_after jobs have succeeded since it last did, at
 *	  most once every tinytemp.retrain_interval.  Each step has a
 *	  transaction of its own, and an error in one is logged and survived.
 */
#include "tinytemp.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void tinytemp_bgworker_main(Datum main_arg);

/*
 * Register one of tinytemp's background workers: the function of this
 * library it runs, its name (also its type) and when it starts.  Restarted
 * 5 s after it dies.  Called from _PG_init at preload time.
 */
void
tinytemp_register_background_worker(const char *function, const char *name,
									 BgWorkerStartTime start_time)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = start_time;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tinytemp");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

/* Register the scheduler; called from _PG_init at preload time. */
void
tinytemp_register_bgworker(void)
{
	tinytemp_register_background_worker("tinytemp_bgworker_main", "tinytemp scheduler",
										 BgWorkerStart_RecoveryFinished);
}

/* A step of the pass; returns what it counts (leases expired, models trained). */
typedef int (*PassStepFn) (void);

/* When this background worker started: after a restart, or a promotion. */
static TimestampTz started_at;

/*
 * The jobs whose last heartbeat came before we started ran across a
 * restart or a failover, and their leases ran out while no server could
 * take a heartbeat: their workers get one lease from our start to
 * reconnect before the jobs are handed to others.
 */
static int
step_leases(void)
{
	tinytemp_renew_leases_since(started_at);
	return tinytemp_schedule_step(TINYTEMP_STEP_LEASES);
}

static int
step_housekeeping(void)
{
	return tinytemp_schedule_step(TINYTEMP_STEP_HOUSEKEEPING);
}

static int
step_placement(void)
{
	return tinytemp_schedule_step(TINYTEMP_STEP_PLACEMENT);
}

/*
 * Run one step of the pass in a transaction of its own.  An error (a
 * deadlock victim, a serialization failure, a corrupt row) is logged and
 * rolled back, and the pass goes on with its next step: the background
 * worker survives it, and the steps that can run still do.  The extension
 * may not be installed yet, or may have been dropped, in the database we
 * serve: then the step does nothing.  Returns the step's count, or -1 when
 * it failed.
 */
static int
run_step(const char *activity, PassStepFn step)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int result = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		SPI_connect();
		if (OidIsValid(get_extension_oid("tinytemp", true)))
			result = step();
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		ereport(LOG,
				errmsg("%s failed; the pass goes on with its next step", activity));
		result = -1;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return result;
}

/*
 * One pass of maintenance: lost leases, housekeeping, placements and, when
 * enough runtimes have arrived, retraining, each in its own transaction,
 * so that no step holds another's locks (the retrain reads the whole
 * history) and a step that fails does not undo the others.
 */
static void
run_pass(void)
{
	static TimestampTz last_retrain = 0;
	int			expired;
	bool		retrain = false;
	uint64		counted;

	/*
	 * Decide on retraining before the retrain's snapshot: acks are counted
	 * once they are visible, so the snapshot taken then sees every runtime
	 * counted here, and none is counted away unseen.
	 */
	counted = pg_atomic_read_u64(&tinytemp_shared->new_runtimes);
	if (tinytemp_retrain_after > 0 && counted >= (uint64) tinytemp_retrain_after &&
		(last_retrain == 0 ||
		 GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(last_retrain,
															   tinytemp_retrain_interval_ms)))
	{
		retrain = true;
		last_retrain = GetCurrentTimestamp();
		pg_atomic_fetch_sub_u64(&tinytemp_shared->new_runtimes, counted);
	}

	expired = run_step("tinytemp: expiring leases", step_leases);
	(void) run_step("tinytemp: housekeeping", step_housekeeping);
	(void) run_step("tinytemp: planning", step_placement);
	if (retrain)
		(void) run_step("tinytemp: retraining the predictor", tinytemp_retrain_from_history);

	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (expired > 0)
		elog(LOG, "tinytemp: released %d job%s whose lease expired",
			 expired, expired == 1 ? "" : "s");
}

/*
 * Entry point of the background worker.  It wakes for two reasons: its
 * latch, set by committed enqueues whose NOTIFY it relays at once (see
 * notify.c), and the naptime, after which it runs a maintenance pass.
 */
void
tinytemp_bgworker_main(Datum main_arg)
{
	TimestampTz next_pass;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(tinytemp_database, NULL, 0);
	/* The passes' statements are quick; JIT compiling them would not be. */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	tinytemp_notify_attach_scheduler();
	elog(LOG, "tinytemp scheduler started in database \"%s\"", tinytemp_database);
	started_at = next_pass = GetCurrentTimestamp();

	for (;;)
	{
		long		wait_ms;

		wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_pass);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		(void) tinytemp_notify_relay();

		if (GetCurrentTimestamp() >= next_pass)
		{
			run_pass();
			next_pass = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tinytemp_naptime_ms);
		}
	}
}

/*
 * tinytemp.h
 *	  Declarations shared by the extension's source files.
 */
#ifndef TINYTEMP_H
#define TINYTEMP_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/elog.h"

/*
 * SQLSTATEs of tinytemp's own errors, in class "TT".  Input that is merely
 * malformed uses PostgreSQL's own codes (22004, 22023, 22P02).
 */
#define ERRCODE_TINYTEMP_UNKNOWN_WORKER		MAKE_SQLSTATE('T','T','0','0','1')
#define ERRCODE_TINYTEMP_UNKNOWN_JOB		MAKE_SQLSTATE('T','T','0','0','2')
#define ERRCODE_TINYTEMP_LEASE_LOST			MAKE_SQLSTATE('T','T','0','0','3')

/* The channel that tinytemp_enqueue notifies, with the queue as payload. */
#define TINYTEMP_NOTIFY_CHANNEL "tinytemp_jobs"

/* GUCs (tinytemp.c) */
extern int	tinytemp_lease_timeout_ms;
extern int	tinytemp_retry_base_ms;
extern int	tinytemp_retry_cap_ms;
extern int	tinytemp_naptime_ms;
extern int	tinytemp_retrain_after;
extern char *tinytemp_database;
extern bool tinytemp_preloaded;

/* Lock spaces for tinytemp's transaction-level advisory locks. */
typedef enum TinytempLockSpace
{
	TINYTEMP_LOCK_WORKER = 1,	/* one worker's claims, keyed by worker id */
	TINYTEMP_LOCK_WORKER_NAME	/* registrations of one name, keyed by hash */
} TinytempLockSpace;

extern void tinytemp_lock(TinytempLockSpace space, uint64 key);

/* util.c */
extern SPIPlanPtr tinytemp_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes);
extern void tinytemp_require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern void tinytemp_require_positive(int64 value, const char *name);
extern void tinytemp_require_nonnegative(int64 value, const char *name);
extern void tinytemp_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls,
								 int expected);

/* workers.c */
extern bool tinytemp_worker_is_active(int64 worker_id);
extern int	tinytemp_expire_leases_internal(void);

/* predictor.c */
extern void tinytemp_retrain_from_history(void);
extern bool tinytemp_predict(FunctionCallInfo fcinfo, const int *args, bool refuse_negative,
							 double *seconds);

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

/* notify.c */
extern void tinytemp_notify_enqueued(const char *queue);
extern void tinytemp_notify_attach_scheduler(void);
extern bool tinytemp_notify_relay(void);

/* bgworker.c */
extern void tinytemp_register_bgworker(void);

#endif							/* TINYTEMP_H */

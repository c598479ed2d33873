/*
 * notify.c
 *	  How a committed enqueue wakes the workers listening on the
 *	  tinytemp_jobs channel.
 *
 * A transaction that sends a NOTIFY holds a cluster-wide lock from the
 * moment it queues its notifications until its commit record is flushed, so
 * transactions that notify commit one at a time.  An enqueue that notified
 * directly would make every enqueue wait for every other one's disk flush.
 * Instead, when the background worker serves this database, a committed
 * enqueue only sets a flag in shared memory and the background worker's
 * latch; the background worker then sends one NOTIFY for all the enqueues
 * that committed since its last one.  Where no background worker serves
 * the database, enqueue notifies directly, with the queue as payload.
 */
#include "tinytemp.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

typedef struct TinytempShared
{
	slock_t		mutex;			/* protects the three fields below */
	pid_t		scheduler_pid;	/* 0 while no background worker runs */
	Oid			scheduler_db;
	Latch	   *scheduler_latch;
	pg_atomic_uint32 wake_pending;	/* an enqueue committed since the last relay */
} TinytempShared;

static TinytempShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

/* Reserve our shared memory. */
static void
tinytemp_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TinytempShared)));
}

/* Create or attach to our shared memory. */
static void
tinytemp_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("tinytemp", sizeof(TinytempShared), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->scheduler_pid = 0;
		shared->scheduler_db = InvalidOid;
		shared->scheduler_latch = NULL;
		pg_atomic_init_u32(&shared->wake_pending, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the shared memory hooks; called from _PG_init at preload time. */
void
tinytemp_notify_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tinytemp_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tinytemp_shmem_startup;
}

/* At commit of a transaction that enqueued, wake the background worker. */
static void
wake_scheduler_at_commit(XactEvent event, void *arg)
{
	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		Latch	   *latch;

		pg_atomic_write_u32(&shared->wake_pending, 1);
		SpinLockAcquire(&shared->mutex);
		latch = shared->scheduler_latch;
		SpinLockRelease(&shared->mutex);
		/* Outside the spinlock: SetLatch may signal.  A stale latch is harmless. */
		if (latch != NULL)
			SetLatch(latch);
		wake_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = false;
}

/*
 * Arrange for the workers of `queue` to be woken once this transaction
 * commits: through the background worker when it serves this database,
 * else by a NOTIFY of our own.
 */
void
tinytemp_notify_enqueued(const char *queue)
{
	bool		relay = false;

	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		relay = shared->scheduler_pid != 0 && shared->scheduler_db == MyDatabaseId;
		SpinLockRelease(&shared->mutex);
	}
	if (!relay)
	{
		Async_Notify(TINYTEMP_NOTIFY_CHANNEL, queue);
		return;
	}
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_scheduler_at_commit, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

/* Forget the background worker when it exits. */
static void
scheduler_detach(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	shared->scheduler_pid = 0;
	shared->scheduler_db = InvalidOid;
	shared->scheduler_latch = NULL;
	SpinLockRelease(&shared->mutex);
}

/* Called by the background worker once connected: enqueues may now relay. */
void
tinytemp_notify_attach_scheduler(void)
{
	SpinLockAcquire(&shared->mutex);
	shared->scheduler_pid = MyProcPid;
	shared->scheduler_db = MyDatabaseId;
	shared->scheduler_latch = MyLatch;
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(scheduler_detach, (Datum) 0);
}

/*
 * In the background worker: send one NOTIFY, with an empty payload, for
 * the enqueues that committed since the last call.  Returns whether it did.
 */
bool
tinytemp_notify_relay(void)
{
	if (pg_atomic_exchange_u32(&shared->wake_pending, 0) == 0)
		return false;
	StartTransactionCommand();
	Async_Notify(TINYTEMP_NOTIFY_CHANNEL, "");
	CommitTransactionCommand();
	return true;
}

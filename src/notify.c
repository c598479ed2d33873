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
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"

static bool wake_at_commit = false;
static bool xact_callback_registered = false;

/* At commit of a transaction that enqueued, wake the background worker. */
static void
wake_scheduler_at_commit(XactEvent event, void *arg)
{
	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		Latch	   *latch;

		pg_atomic_write_u32(&tinytemp_shared->wake_pending, 1);
		SpinLockAcquire(&tinytemp_shared->mutex);
		latch = tinytemp_shared->scheduler_latch;
		SpinLockRelease(&tinytemp_shared->mutex);
		/* Outside the spinlock: SetLatch may signal.  A stale latch is harmless. */
		if (latch != NULL)
			SetLatch(latch);
		wake_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
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

	if (tinytemp_shared != NULL)
	{
		SpinLockAcquire(&tinytemp_shared->mutex);
		relay = tinytemp_shared->scheduler_pid != 0 && tinytemp_shared->scheduler_db == MyDatabaseId;
		SpinLockRelease(&tinytemp_shared->mutex);
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
	SpinLockAcquire(&tinytemp_shared->mutex);
	tinytemp_shared->scheduler_pid = 0;
	tinytemp_shared->scheduler_db = InvalidOid;
	tinytemp_shared->scheduler_latch = NULL;
	SpinLockRelease(&tinytemp_shared->mutex);
}

/* Called by the background worker once connected: enqueues may now relay. */
void
tinytemp_notify_attach_scheduler(void)
{
	SpinLockAcquire(&tinytemp_shared->mutex);
	tinytemp_shared->scheduler_pid = MyProcPid;
	tinytemp_shared->scheduler_db = MyDatabaseId;
	tinytemp_shared->scheduler_latch = MyLatch;
	SpinLockRelease(&tinytemp_shared->mutex);
	before_shmem_exit(scheduler_detach, (Datum) 0);
}

/*
 * In the background worker: send one NOTIFY, with an empty payload, for
 * the enqueues that committed since the last call.  Returns whether it did.
 */
bool
tinytemp_notify_relay(void)
{
	if (pg_atomic_exchange_u32(&tinytemp_shared->wake_pending, 0) == 0)
		return false;
	StartTransactionCommand();
	Async_Notify(TINYTEMP_NOTIFY_CHANNEL, "");
	CommitTransactionCommand();
	return true;
}

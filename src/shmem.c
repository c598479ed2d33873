/*
 * shmem.c
 *	  The little shared memory tinytemp keeps when it is preloaded: how
 *	  backends reach the background worker, and what they tell it.
 */
#include "tinytemp.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

TinytempShared *tinytemp_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Reserve our shared memory. */
static void
tinytemp_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(MAXALIGN(sizeof(TinytempShared)),
									tinytemp_metrics_shmem_size()));
	tinytemp_metrics_shmem_request();
}

/* Create or attach to our shared memory. */
static void
tinytemp_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tinytemp_shared = ShmemInitStruct("tinytemp", sizeof(TinytempShared), &found);
	if (!found)
	{
		SpinLockInit(&tinytemp_shared->mutex);
		tinytemp_shared->scheduler_pid = 0;
		tinytemp_shared->scheduler_db = InvalidOid;
		tinytemp_shared->scheduler_latch = NULL;
		pg_atomic_init_u32(&tinytemp_shared->wake_pending, 0);
		pg_atomic_init_u64(&tinytemp_shared->new_runtimes, 0);
	}
	tinytemp_metrics_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/* Install the shared memory hooks; called from _PG_init at preload time. */
void
tinytemp_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tinytemp_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tinytemp_shmem_startup;
}

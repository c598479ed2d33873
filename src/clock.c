/*
 * clock.c
 *	  What tinytemp takes for "now".
 *
 * Every statement of the extension reads tinytemp.now() instead of now(),
 * so that the simulator (bench/simulate) can replay a trace through the
 * real functions against a virtual clock: it sets tinytemp.clock to the
 * virtual time before each step.  Unset, tinytemp.now() is now(), the
 * start of the transaction.
 */
#include "tinytemp.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tinytemp_clock_now);

char	   *tinytemp_clock = NULL;

/* The parsed value of tinytemp.clock, when it is set. */
static bool clock_set = false;
static TimestampTz clock_value = 0;

/* GUC check hook: tinytemp.clock is empty or a timestamp with time zone. */
bool
tinytemp_clock_check(char **newval, void **extra, GucSource source)
{
	TimestampTz *parsed;
	MemoryContext context = CurrentMemoryContext;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* GUC extra data must come from malloc. */
	parsed = malloc(sizeof(TimestampTz));
	if (parsed == NULL)
		return false;
	PG_TRY();
	{
		*parsed = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
														  CStringGetDatum(*newval),
														  ObjectIdGetDatum(InvalidOid),
														  Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		FlushErrorState();
		free(parsed);
		GUC_check_errdetail("tinytemp.clock must be empty or a timestamp with time zone.");
		return false;
	}
	PG_END_TRY();
	if (TIMESTAMP_NOT_FINITE(*parsed))
	{
		free(parsed);
		GUC_check_errdetail("tinytemp.clock must be a finite timestamp.");
		return false;
	}
	*extra = parsed;
	return true;
}

/* GUC assign hook: remember the parsed time. */
void
tinytemp_clock_assign(const char *newval, void *extra)
{
	clock_set = extra != NULL;
	clock_value = extra ? *(TimestampTz *) extra : 0;
}

/* The virtual time when tinytemp.clock is set, else the transaction's start. */
TimestampTz
tinytemp_now(void)
{
	return clock_set ? clock_value : GetCurrentTransactionStartTimestamp();
}

/* tinytemp.now(): tinytemp_now() for SQL. */
Datum
tinytemp_clock_now(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(tinytemp_now());
}

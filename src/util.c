/*
 * util.c
 *	  SPI plan caching and argument checks shared by the SQL API.
 */
#include "tinytemp.h"

/* Return the cached plan for sql, preparing and keeping it on first use. */
SPIPlanPtr
tinytemp_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (*cache != NULL)
		return *cache;

	/*
	 * Always the generic plan: our statements are shaped so that it is the
	 * right one whatever the parameters, and replanning on every call, as a
	 * custom plan does, would cost more than the statement itself.
	 */
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/* Execute a kept plan and check that it reports the expected SPI result. */
void
tinytemp_spi_execute(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan returned %s", SPI_result_code_string(rc));
}

/* Raise 22004 when a required argument is NULL. */
void
tinytemp_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("%s must not be null", name));
}

/* Raise 22023 unless value > 0. */
void
tinytemp_require_positive(int64 value, const char *name)
{
	if (value <= 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be greater than zero", name),
				errdetail("The value given was " INT64_FORMAT ".", value));
}

/* Raise 22023 unless value >= 0. */
void
tinytemp_require_nonnegative(int64 value, const char *name)
{
	if (value < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be negative", name),
				errdetail("The value given was " INT64_FORMAT ".", value));
}

/*
 * access.c
 *	  Who may do what.  The SQL API's functions are SECURITY INVOKER: each
 *	  notes its caller, checks what the caller may do (act for a tenant,
 *	  report for a worker), and only then switches to the extension's
 *	  owner to read and write tinytemp's tables.  Nothing a caller supplies
 *	  (a relation, an expression) is ever evaluated after the switch.
 *
 *	  A tenant is a role: a role acts for tenant T when it has the
 *	  privileges of a role named T (itself, or a group role it was granted),
 *	  as pg_cron ties a job to the role that scheduled it.  Superusers and
 *	  members of tinytemp_admin act for every tenant and every worker.  A
 *	  worker incarnation belongs to the role that registered it.  Row-level
 *	  security on tinytemp.jobs and tinytemp.jobs_history applies the same
 *	  rule to what a role reads (tinytemp.acts_for, tinytemp.is_admin).
 */
#include "tinytemp.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(tinytemp_acts_for);
PG_FUNCTION_INFO_V1(tinytemp_is_admin);

#define ADMIN_ROLE "tinytemp_admin"

/* Whether role is a superuser or has the privileges of tinytemp_admin. */
static bool
role_is_admin(Oid role)
{
	Oid			admin;

	if (superuser_arg(role))
		return true;
	admin = get_role_oid(ADMIN_ROLE, true);
	return OidIsValid(admin) && has_privs_of_role(role, admin);
}

/*
 * Whether role, which is no admin, may act for the tenant or worker owner
 * called name (NULL: admins only).  tinytemp's own roles are no tenant:
 * every submitter is a member of tinytemp_submitter, and would share its
 * jobs with all the others.
 */
static bool
member_acts_for(Oid role, const char *name)
{
	Oid			named;

	if (name == NULL || strcmp(name, "tinytemp_submitter") == 0 ||
		strcmp(name, "tinytemp_worker") == 0 || strcmp(name, ADMIN_ROLE) == 0)
		return false;
	named = get_role_oid(name, true);
	return OidIsValid(named) && has_privs_of_role(role, named);
}

/*
 * Note who called the SQL function of fcinfo, and switch to the function's
 * owner (the extension's) for the rest of the call.  A transaction or
 * subtransaction that aborts restores the caller by itself; a call that
 * returns must call tinytemp_leave first.
 */
void
tinytemp_enter(FunctionCallInfo fcinfo, TinytempCaller *caller)
{
	Oid			owner = InvalidOid;

	GetUserIdAndSecContext(&caller->saved_user, &caller->saved_context);
	caller->role = caller->saved_user;
	caller->admin = role_is_admin(caller->role);
	caller->switched = false;

	/*
	 * Called from C (the background worker) there is no function to own us.
	 * The owner is looked up once per call site, and kept with it.
	 */
	if (fcinfo != NULL && fcinfo->flinfo != NULL && OidIsValid(fcinfo->flinfo->fn_oid))
	{
		FmgrInfo   *flinfo = fcinfo->flinfo;

		if (flinfo->fn_extra == NULL)
		{
			HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(flinfo->fn_oid));

			if (!HeapTupleIsValid(tuple))
				elog(ERROR, "cache lookup failed for function %u", flinfo->fn_oid);
			flinfo->fn_extra = MemoryContextAlloc(flinfo->fn_mcxt, sizeof(Oid));
			*(Oid *) flinfo->fn_extra = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
			ReleaseSysCache(tuple);
		}
		owner = *(Oid *) flinfo->fn_extra;
	}
	if (OidIsValid(owner) && owner != caller->role)
	{
		SetUserIdAndSecContext(owner, caller->saved_context | SECURITY_LOCAL_USERID_CHANGE);
		caller->switched = true;
	}
}

/* Switch back to the caller noted by tinytemp_enter. */
void
tinytemp_leave(TinytempCaller *caller)
{
	if (caller->switched)
		SetUserIdAndSecContext(caller->saved_user, caller->saved_context);
	caller->switched = false;
}

/* The caller's own role name: the tenant of the jobs it submits without naming one. */
char *
tinytemp_caller_name(const TinytempCaller *caller)
{
	return GetUserNameFromId(caller->role, false);
}

/* Whether the caller may act for the tenant or worker owner called name. */
bool
tinytemp_caller_acts_for(const TinytempCaller *caller, const char *name)
{
	return caller->admin || member_acts_for(caller->role, name);
}

/* Raise 42501 unless the caller may act for tenant (NULL: only admins may). */
void
tinytemp_require_tenant(const TinytempCaller *caller, const char *tenant, const char *action)
{
	if (tinytemp_caller_acts_for(caller, tenant))
		return;
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			tenant ? errmsg("permission denied to %s for tenant \"%s\"", action, tenant)
			: errmsg("permission denied to %s for jobs without a tenant", action),
			errdetail("A role acts for the tenants named after the roles it is a member of; role \"%s\" is a member of none of that name, nor of %s.",
					  GetUserNameFromId(caller->role, false), ADMIN_ROLE),
			errhint("GRANT the tenant's role to this role, or act through %s.", ADMIN_ROLE));
}

/*
 * Raise 42501 unless the caller may report for worker_id, whose
 * incarnation was registered by role owner (NULL: before 0.4, admins only).
 */
void
tinytemp_require_worker_owner(const TinytempCaller *caller, int64 worker_id, const char *owner)
{
	if (!tinytemp_caller_acts_for(caller, owner))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to report for worker " INT64_FORMAT, worker_id),
				errdetail("The worker was registered by role \"%s\"; role \"%s\" does not act for it.",
						  owner ? owner : "(unknown)", GetUserNameFromId(caller->role, false)));
}

/*
 * Raise 42501 unless the caller may report for worker_id: the worker was
 * registered by a role it acts for.  An unknown worker passes, for the
 * function's own check to report as TT001.  SPI must be connected, as
 * the extension's owner.  Nothing is remembered from one call to the
 * next: a membership may be revoked between them.
 */
void
tinytemp_require_worker(const TinytempCaller *caller, int64 worker_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(worker_id)};

	if (caller->admin)
		return;
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT registered_by FROM tinytemp.workers WHERE id = $1",
									   1, argtypes),
						 values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		tinytemp_require_worker_owner(caller, worker_id,
									  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/*
 * tinytemp.acts_for(name text): whether the current role may act for the
 * tenant or worker owner called name; for row-level security policies.
 */
Datum
tinytemp_acts_for(PG_FUNCTION_ARGS)
{
	char	   *name = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			role = GetUserId();

	PG_RETURN_BOOL(role_is_admin(role) || member_acts_for(role, name));
}

/* tinytemp.is_admin(): whether the current role is a superuser or a tinytemp_admin. */
Datum
tinytemp_is_admin(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(role_is_admin(GetUserId()));
}

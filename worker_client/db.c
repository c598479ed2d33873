/*
 * db.c
 *	  The database side of tinytemp-worker: connecting (on a helper thread,
 *	  so that handlers keep being served while libpq walks a multi-host
 *	  list with its connect_timeout), reconnecting with exponential backoff
 *	  and jitter, non-blocking queries with a deadline, LISTEN/NOTIFY, and
 *	  the calls of tinytemp's SQL API.  Every value goes to the server as a
 *	  query parameter; none is ever spliced into SQL text.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A query taking longer than this means the connection is as good as gone. */
#define QUERY_TIMEOUT_MS 30000
/* Reconnection delays: equal jitter over an exponential backoff. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000

#define MAX_CONN_KEYWORDS 12

/* What the connector thread works on; the main thread reads it after the join. */
typedef struct Connector
{
	pthread_t	thread;
	int			done_pipe[2];
	const char *keywords[MAX_CONN_KEYWORDS];
	char	   *values[MAX_CONN_KEYWORDS];
	PGconn	   *conn;
} Connector;

/* Set up an unconnected Db. */
void
db_init(Db *db, DbWaitHook hook)
{
	memset(db, 0, sizeof(*db));
	db->state = DB_DISCONNECTED;
	db->connector_fd = -1;
	db->backoff_ms = BACKOFF_BASE_MS;
	db->lease_ms = TT_DEFAULT_LEASE_MS;
	db->wait = hook;
}

/* The connector thread: one blocking PQconnectdbParams, then a byte to wake the main loop. */
static void *
connector_main(void *arg)
{
	Connector  *c = arg;

	c->conn = PQconnectdbParams(c->keywords, (const char *const *) c->values, 1);
	if (write(c->done_pipe[1], "x", 1) < 0)
	{
		/* The main loop also notices at its next poll timeout. */
	}
	return NULL;
}

/* Add a keyword to the connector's list. */
static void
connector_add(Connector *c, int *n, const char *keyword, const char *value)
{
	c->keywords[*n] = keyword;
	c->values[*n] = value ? xstrdup(value) : NULL;
	(*n)++;
}

/* Release a connector's memory (not its connection). */
static void
connector_free(Connector *c)
{
	for (int i = 0; i < MAX_CONN_KEYWORDS; i++)
		free(c->values[i]);
	if (c->done_pipe[0] >= 0)
		close(c->done_pipe[0]);
	if (c->done_pipe[1] >= 0)
		close(c->done_pipe[1]);
	free(c);
}

/*
 * Start connecting in the background.  Our defaults come before the user's
 * conninfo, which libpq expands in place and which therefore overrides
 * them; client_encoding comes after, because we send UTF-8 whatever the
 * user's locale.
 */
void
db_connect_start(Db *db, const char *conninfo, const char *worker_name)
{
	Connector  *c = xmalloc(sizeof(Connector));
	char	   *appname;
	sigset_t	all;
	sigset_t	old;
	int			n = 0;
	int			rc;

	memset(c, 0, sizeof(*c));
	if (pipe2(c->done_pipe, O_CLOEXEC) != 0)
	{
		c->done_pipe[0] = c->done_pipe[1] = -1;
		connector_free(c);
		db_lost(db, "cannot create a pipe for the connector thread");
		return;
	}
	appname = xasprintf("tinytemp-worker %s", worker_name);
	if (getenv("PGCONNECT_TIMEOUT") == NULL)
		connector_add(c, &n, "connect_timeout", "10");
	connector_add(c, &n, "keepalives", "1");
	connector_add(c, &n, "keepalives_idle", "30");
	connector_add(c, &n, "keepalives_interval", "10");
	connector_add(c, &n, "keepalives_count", "3");
	connector_add(c, &n, "fallback_application_name", appname);
	connector_add(c, &n, "dbname", conninfo);
	connector_add(c, &n, "client_encoding", "UTF8");
	c->keywords[n] = NULL;
	free(appname);

	/* Signals are for the main thread: block them all in the connector. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, connector_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		connector_free(c);
		db_lost(db, "cannot start the connector thread");
		return;
	}
	db->connector = c;
	db->connector_fd = c->done_pipe[0];
	db->state = DB_CONNECTING;
	log_debug(NO_JOB, "connecting", "attempt %d", db->failures + 1);
}

/* Copy a libpq error message, without its trailing newline. */
static char *
pq_error(const char *msg)
{
	size_t		n = strlen(msg ? msg : "");

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	return n ? xstrndup(msg, n) : xstrdup("unknown error");
}

/* libpq's notices and warnings (such as a FATAL before the server hangs up) go to our log, as one line. */
static void
notice_to_log(void *arg, const char *message)
{
	char	   *msg = pq_error(message);

	(void) arg;
	log_event(NO_JOB, "server", "%s", msg);
	free(msg);
}

/* Schedule the next connection attempt after a jittered, growing delay. */
static void
schedule_reconnect(Db *db)
{
	int64_t		d = db->backoff_ms;
	int64_t		delay = d / 2 + (int64_t) (random_unit() * (double) (d / 2));

	db->next_connect_ms = now_ms() + delay;
	db->backoff_ms = d * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : d * 2;
	db->failures++;
	log_event(NO_JOB, "reconnect", "next attempt in %.3fs", (double) delay / 1000.0);
}

/*
 * The connector thread is done: take its connection.  Returns true when
 * connected; otherwise sets *error and schedules the next attempt.
 */
bool
db_connect_finish(Db *db, char **error)
{
	Connector  *c = db->connector;
	char		byte;
	PGconn	   *conn;

	/* Readable means the thread wrote its byte and is about to return. */
	if (read(c->done_pipe[0], &byte, 1) < 0)
		log_event(NO_JOB, "connect", "reading the connector pipe: %s", strerror(errno));
	pthread_join(c->thread, NULL);
	conn = c->conn;
	connector_free(c);
	db->connector = NULL;
	db->connector_fd = -1;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		*error = pq_error(conn ? PQerrorMessage(conn) : "out of memory");
		if (conn)
			PQfinish(conn);
		db->state = DB_DISCONNECTED;
		log_event(NO_JOB, "connect-failed", "%s", *error);
		schedule_reconnect(db);
		return false;
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*error = pq_error(PQerrorMessage(conn));
		PQfinish(conn);
		db->state = DB_DISCONNECTED;
		schedule_reconnect(db);
		return false;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	db->conn = conn;
	db->state = DB_CONNECTED;
	log_event(NO_JOB, "connected", "host=%s port=%s server_version=%d",
			  PQhost(conn), PQport(conn), PQserverVersion(conn));
	return true;
}

/* The connection broke: drop it and schedule a reconnection. */
void
db_lost(Db *db, const char *why)
{
	if (db->conn)
	{
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->state = DB_DISCONNECTED;
	log_event(NO_JOB, "disconnected", "%s", why);
	schedule_reconnect(db);
}

/* Close for good at exit, waiting out a connector thread if one runs. */
void
db_close(Db *db)
{
	if (db->state == DB_CONNECTING && db->connector)
	{
		Connector  *c = db->connector;

		pthread_join(c->thread, NULL);
		if (c->conn)
			PQfinish(c->conn);
		connector_free(c);
		db->connector = NULL;
		db->connector_fd = -1;
	}
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db->state = DB_DISCONNECTED;
	free(db->server_message);
	db->server_message = NULL;
}

/* The socket to poll while idle, or -1. */
int
db_socket(const Db *db)
{
	return db->state == DB_CONNECTED ? PQsocket(db->conn) : -1;
}

/* Note every pending notification: any of them means work may be waiting. */
static void
take_notifications(Db *db)
{
	PGnotify   *n;

	while ((n = PQnotifies(db->conn)) != NULL)
	{
		log_debug(NO_JOB, "notified", "channel=%s queue=%s", n->relname, n->extra);
		db->notified = true;
		PQfreemem(n);
	}
}

/* Read what the server sent while we were idle: notifications, or the news that it went away. */
void
db_consume(Db *db)
{
	if (db->state != DB_CONNECTED)
		return;
	if (!PQconsumeInput(db->conn) || PQstatus(db->conn) == CONNECTION_BAD)
	{
		char	   *why = pq_error(PQerrorMessage(db->conn));

		db_lost(db, why);
		free(why);
		return;
	}
	take_notifications(db);
}

/* The columns of a claimed job j that the worker reads (see ClaimColumn). */
#define CLAIM_COLUMNS \
	"j.id, j.job_type, j.attempts, j.max_attempts," \
	" coalesce(j.params->>'runtime_s', j.predicted_runtime_s::text)," \
	" j.params->>'fail_attempts', row_to_json(j)::text, j.params::text," \
	" j.checkpoint::text, j.model, j.queue, j.epochs, j.batch_size, j.dataset_size," \
	" j.cpus, j.memory_mb, j.gpus"

/* Sort a failed result by its SQLSTATE into what the caller should do. */
static DbOutcome
classify_error(Db *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(db->conn) == CONNECTION_BAD || state == NULL)
		return PQstatus(db->conn) == CONNECTION_BAD ? DB_LOST : DB_ERROR;
	if (strcmp(state, "TT001") == 0)
		return DB_NOT_WORKER;
	if (strcmp(state, "TT002") == 0 || strcmp(state, "TT003") == 0)
		return DB_NOT_HELD;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		return DB_LOST;
	if (strncmp(state, "22", 2) == 0)
		return DB_BAD_INPUT;
	if (strcmp(state, "42883") == 0)
		return DB_UNSUPPORTED;
	if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
		strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
		return DB_TRANSIENT;
	return DB_ERROR;
}

/* The connection failed mid-query: report it and drop the connection. */
static DbOutcome
exec_lost(Db *db, const char *what, char **error)
{
	char	   *msg = pq_error(PQerrorMessage(db->conn));

	*error = xasprintf("%s: %s", what, msg);
	free(msg);
	db_lost(db, *error);
	return DB_LOST;
}

/*
 * Run one statement with text parameters, without blocking the worker:
 * send, flush, and wait for the result through the wait hook, at most
 * QUERY_TIMEOUT_MS.  On DB_OK *res holds the result (the caller clears
 * it); otherwise *error says why.
 */
DbOutcome
db_exec(Db *db, PGresult **res, const char *sql, int nparams, const char *const *values,
		char **error)
{
	int64_t		deadline = now_ms() + QUERY_TIMEOUT_MS;
	PGresult   *keep = NULL;
	PGresult   *r;
	DbOutcome	outcome;
	int			sock;

	*res = NULL;
	*error = NULL;
	db->sqlstate[0] = '\0';
	free(db->server_message);
	db->server_message = NULL;
	if (db->state != DB_CONNECTED)
	{
		*error = xstrdup("not connected");
		return DB_LOST;
	}
	sock = PQsocket(db->conn);
	if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, NULL, NULL, 0))
		return exec_lost(db, "cannot send query", error);

	for (;;)
	{
		int			f = PQflush(db->conn);
		short		ev;

		if (f == 0)
			break;
		if (f < 0)
			return exec_lost(db, "cannot send query", error);
		ev = db->wait(sock, POLLIN | POLLOUT, deadline);
		if (ev == 0 && now_ms() >= deadline)
			goto timeout;
		if ((ev & POLLIN) && !PQconsumeInput(db->conn))
			return exec_lost(db, "connection lost", error);
	}

	for (;;)
	{
		while (PQisBusy(db->conn))
		{
			short		ev = db->wait(sock, POLLIN, deadline);

			if (ev == 0)
			{
				if (now_ms() >= deadline)
					goto timeout;
				continue;
			}
			if (!PQconsumeInput(db->conn))
			{
				PQclear(keep);
				return exec_lost(db, "connection lost", error);
			}
		}
		r = PQgetResult(db->conn);
		if (r == NULL)
			break;
		/* Keep the first error, else the last result. */
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			PQclear(r);
		else
		{
			PQclear(keep);
			keep = r;
		}
	}
	take_notifications(db);

	if (keep == NULL)
	{
		*error = xstrdup("no result");
		return DB_ERROR;
	}
	if (PQresultStatus(keep) == PGRES_COMMAND_OK || PQresultStatus(keep) == PGRES_TUPLES_OK)
	{
		*res = keep;
		return DB_OK;
	}
	outcome = classify_error(db, keep);
	*error = pq_error(PQresultErrorMessage(keep));
	if (PQresultErrorField(keep, PG_DIAG_SQLSTATE))
		snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", PQresultErrorField(keep, PG_DIAG_SQLSTATE));
	if (PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY))
	{
		const char *detail = PQresultErrorField(keep, PG_DIAG_MESSAGE_DETAIL);

		db->server_message = detail ?
			xasprintf("%s: %s", PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY), detail) :
			xstrdup(PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY));
	}
	PQclear(keep);
	if (outcome == DB_LOST)
	{
		db_lost(db, *error);
	}
	return outcome;

timeout:
	PQclear(keep);
	*error = xasprintf("no answer from the server within %ds", QUERY_TIMEOUT_MS / 1000);
	db_lost(db, *error);
	return DB_LOST;
}

/* Parse a GUC value in milliseconds: a bare number, or with a unit (ms, s, min, h, d). */
static bool
parse_ms(const char *s, int64_t *out)
{
	char	   *end;
	double		v;
	double		scale = 1;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v <= 0)
		return false;
	while (*end == ' ')
		end++;
	if (*end == '\0' || strcmp(end, "ms") == 0)
		scale = 1;
	else if (strcmp(end, "s") == 0)
		scale = 1000;
	else if (strcmp(end, "min") == 0)
		scale = 60000;
	else if (strcmp(end, "h") == 0)
		scale = 3600000;
	else if (strcmp(end, "d") == 0)
		scale = 86400000;
	else
		return false;
	*out = (int64_t) (v * scale);
	return *out > 0;
}

/*
 * Prepare a fresh session: read the lease this session's claims will get
 * (tinytemp.lease_timeout, in pg_settings in milliseconds once tinytemp is
 * loaded, as typed by the user before), and LISTEN for new jobs.
 */
DbOutcome
db_setup_session(Db *db, bool listen, char **error)
{
	PGresult   *res;
	DbOutcome	o;

	o = db_exec(db, &res,
				"SELECT setting, unit FROM pg_catalog.pg_settings WHERE name = 'tinytemp.lease_timeout'",
				0, NULL, error);
	if (o != DB_OK)
		return o;
	if (PQntuples(res) == 1)
	{
		int64_t		ms;
		const char *setting = PQgetvalue(res, 0, 0);

		if (parse_ms(setting, &ms))
			db->lease_ms = ms;
		else
			log_event(NO_JOB, "lease", "cannot read tinytemp.lease_timeout \"%s\"; assuming %dms",
					  setting, TT_DEFAULT_LEASE_MS);
	}
	else
		log_event(NO_JOB, "lease", "tinytemp.lease_timeout is not defined; assuming %dms",
				  TT_DEFAULT_LEASE_MS);
	PQclear(res);

	if (listen)
	{
		o = db_exec(db, &res, "LISTEN " TT_NOTIFY_CHANNEL, 0, NULL, error);
		if (o != DB_OK)
			return o;
		PQclear(res);
	}
	db->backoff_ms = BACKOFF_BASE_MS;
	db->failures = 0;
	return DB_OK;
}

/*
 * Register this worker incarnation with its hardware and labels:
 * {"hostname", "pid", "version", "gpu_name", "slots"} and each --label
 * KEY=VALUE.  "slots", the most jobs it runs at once, tells the other
 * workers' claims when it is full though its resources are not (a --label
 * slots=N stands instead).
 */
DbOutcome
db_register(Db *db, const char *name, const Hardware *hw, int slots, char **labels,
			int64_t *worker_id, char **error)
{
	PGresult   *res;
	DbOutcome	o;
	StrBuf		json;
	char		host[256];
	char	   *cpus = xasprintf("%d", hw->cpus);
	char	   *memory = xasprintf("%lld", hw->memory_mb);
	char	   *gpus = xasprintf("%d", hw->gpus);
	const char *values[6];
	bool		slots_labelled = false;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	sb_init(&json);
	sb_appends(&json, "{\"hostname\": ");
	{
		char	   *clean = utf8_sanitize(host, strlen(host));

		json_append_string(&json, clean);
		free(clean);
	}
	sb_appendf(&json, ", \"pid\": %d, \"version\": \"%s\"", (int) getpid(), TT_VERSION);
	if (hw->gpu_name)
	{
		char	   *clean = utf8_sanitize(hw->gpu_name, strlen(hw->gpu_name));

		sb_appends(&json, ", \"gpu_name\": ");
		json_append_string(&json, clean);
		free(clean);
	}
	for (char **l = labels; l && *l; l++)
	{
		const char *eq = strchr(*l, '=');
		char	   *key = utf8_sanitize(*l, (size_t) (eq - *l));
		char	   *value = utf8_sanitize(eq + 1, strlen(eq + 1));

		slots_labelled |= strcmp(key, "slots") == 0;
		sb_appends(&json, ", ");
		json_append_string(&json, key);
		sb_appends(&json, ": ");
		json_append_string(&json, value);
		free(key);
		free(value);
	}
	if (!slots_labelled)
		sb_appendf(&json, ", \"slots\": \"%d\"", slots);
	sb_appends(&json, "}");

	values[0] = name;
	values[1] = cpus;
	values[2] = memory;
	values[3] = gpus;
	values[4] = hw->gpus > 0 ? hw->gpu_type : NULL;
	values[5] = json.data;
	o = db_exec(db, &res,
				"SELECT tinytemp_register_worker($1, $2::int, $3::bigint, $4::int, $5, $6::jsonb)",
				6, values, error);
	if (o == DB_OK)
	{
		*worker_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	free(cpus);
	free(memory);
	free(gpus);
	sb_free(&json);
	return o;
}

/* Claim up to max_jobs jobs; the columns follow enum ClaimColumn. */
DbOutcome
db_claim(Db *db, int64_t worker_id, int max_jobs, PGresult **res, char **error)
{
	char		id[32];
	char		max[16];
	const char *values[2] = {id, max};

	snprintf(id, sizeof(id), "%" PRId64, worker_id);
	snprintf(max, sizeof(max), "%d", max_jobs);
	return db_exec(db, res, "SELECT " CLAIM_COLUMNS " FROM tinytemp_claim($1::bigint, $2::int) AS j",
				   2, values, error);
}

/*
 * Call one of the SQL API's per-job reports, whose first two parameters are
 * the job and the worker and whose others are `extra`; *answer, when not
 * NULL, gets the text it returns.
 */
static DbOutcome
db_report(Db *db, const char *sql, int64_t job_id, int64_t worker_id, int nextra,
		  const char *const *extra, char **answer, char **error)
{
	char		job[32];
	char		worker[32];
	const char *values[4] = {job, worker, NULL, NULL};
	PGresult   *res;
	DbOutcome	o;

	snprintf(job, sizeof(job), "%" PRId64, job_id);
	snprintf(worker, sizeof(worker), "%" PRId64, worker_id);
	for (int i = 0; i < nextra; i++)
		values[2 + i] = extra[i];
	o = db_exec(db, &res, sql, 2 + nextra, values, error);
	if (o == DB_OK)
	{
		if (answer)
			*answer = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return o;
}

/* Renew a job's lease; *answer gets 'continue', 'cancel' or 'preempt'. */
DbOutcome
db_heartbeat(Db *db, int64_t worker_id, int64_t job_id, const char *progress,
			 char **answer, char **error)
{
	const char *extra[1] = {progress};

	return db_report(db, "SELECT tinytemp_heartbeat($1::bigint, $2::bigint, $3::jsonb)",
					 job_id, worker_id, 1, extra, answer, error);
}

/*
 * Save a running job's checkpoint (a JSON value), which its next run gets
 * in the claimed row.  TT003 when the job is no longer ours, as for a
 * heartbeat.
 */
DbOutcome
db_checkpoint(Db *db, int64_t worker_id, int64_t job_id, const char *checkpoint, char **error)
{
	const char *extra[1] = {checkpoint};

	return db_report(db, "SELECT tinytemp_checkpoint($1::bigint, $2::bigint, $3::jsonb)",
					 job_id, worker_id, 1, extra, NULL, error);
}

/*
 * Record on a running job the GPU indices its handler was given, such as
 * "0,2" (tinytemp 0.7).  TT003 when the job is no longer ours; 42883 on an older
 * server.
 */
DbOutcome
db_set_gpus(Db *db, int64_t worker_id, int64_t job_id, const char *gpu_list, char **error)
{
	char	   *array = xasprintf("{%s}", gpu_list);
	const char *extra[1] = {array};
	DbOutcome	o;

	o = db_report(db, "SELECT tinytemp_set_gpus($1::bigint, $2::bigint, $3::int[])",
				  job_id, worker_id, 1, extra, NULL, error);
	free(array);
	return o;
}

/* Report success, with result as the job's result (NULL for none). */
DbOutcome
db_ack(Db *db, int64_t worker_id, int64_t job_id, const char *result, char **error)
{
	const char *extra[1] = {result};

	return db_report(db, "SELECT tinytemp_ack($1::bigint, $2::bigint, $3::jsonb)",
					 job_id, worker_id, 1, extra, NULL, error);
}

/* The results of an ack, $3 as a JSON array of [result] or null, as a jsonb[]. */
#define ACK_RESULTS \
	"ARRAY(SELECT CASE WHEN pg_catalog.jsonb_typeof(r.x) = 'array' THEN r.x -> 0 END" \
	" FROM pg_catalog.jsonb_array_elements($3::jsonb) WITH ORDINALITY AS r(x, n) ORDER BY r.n)"

/*
 * Run sql, an ack of n jobs whose $1 is their ids, $2 the worker, $3 their
 * results (see ACK_RESULTS) and, when max_jobs >= 0, $4 max_jobs.
 */
static DbOutcome
ack_call(Db *db, const char *sql, int64_t worker_id, int n, const int64_t *job_ids,
		 const char *const *results, int max_jobs, PGresult **res, char **error)
{
	StrBuf		ids;
	StrBuf		json;
	char		worker[32];
	char		max[16];
	const char *values[4];
	DbOutcome	o;

	sb_init(&ids);
	sb_init(&json);
	sb_appends(&ids, "{");
	sb_appends(&json, "[");
	for (int i = 0; i < n; i++)
	{
		sb_appendf(&ids, "%s%" PRId64, i ? "," : "", job_ids[i]);
		if (i)
			sb_appends(&json, ", ");
		if (results[i])
		{
			sb_appends(&json, "[");
			sb_appends(&json, results[i]);
			sb_appends(&json, "]");
		}
		else
			sb_appends(&json, "null");
	}
	sb_appends(&ids, "}");
	sb_appends(&json, "]");
	snprintf(worker, sizeof(worker), "%" PRId64, worker_id);
	snprintf(max, sizeof(max), "%d", max_jobs);
	values[0] = ids.data;
	values[1] = worker;
	values[2] = json.data;
	values[3] = max;
	o = db_exec(db, res, sql, max_jobs >= 0 ? 4 : 3, values, error);
	sb_free(&ids);
	sb_free(&json);
	return o;
}

/*
 * Ack n jobs in one statement, hence one commit: all or nothing.  The ids
 * go as a text array literal (digits only, nothing to escape); the results
 * go as one JSON array, so that no JSON ever meets array-literal quoting.
 * Each element is [result], or null for none: a handler's literal "null"
 * result stays the JSON null that tinytemp_ack would store, distinct from
 * no result.  The CASE is needed because jsonb's -> 0 on the scalar null
 * returns that null rather than SQL NULL.  WITH ORDINALITY keeps the pairing.
 */
DbOutcome
db_ack_many(Db *db, int64_t worker_id, int n, const int64_t *job_ids,
			const char *const *results, char **error)
{
	PGresult   *res;
	DbOutcome	o = ack_call(db, "SELECT tinytemp_ack_many($1::bigint[], $2::bigint, " ACK_RESULTS ")",
							 worker_id, n, job_ids, results, -1, &res, error);

	if (o == DB_OK)
		PQclear(res);
	return o;
}

/*
 * Ack n jobs as db_ack_many does and claim up to max_jobs in the same call
 * and commit (tinytemp_ack_and_claim); on DB_OK *res holds the claimed
 * rows, with db_claim's columns.  DB_UNSUPPORTED: the server's tinytemp
 * predates the call.
 */
DbOutcome
db_ack_and_claim(Db *db, int64_t worker_id, int n, const int64_t *job_ids,
				 const char *const *results, int max_jobs, PGresult **res, char **error)
{
	return ack_call(db, "SELECT " CLAIM_COLUMNS " FROM tinytemp_ack_and_claim($1::bigint[], $2::bigint, "
					ACK_RESULTS ", $4::int) AS j",
					worker_id, n, job_ids, results, max_jobs, res, error);
}

/* Report a failed attempt; *new_state gets the job's new state. */
DbOutcome
db_fail(Db *db, int64_t worker_id, int64_t job_id, const char *message, bool retryable,
		char **new_state, char **error)
{
	const char *extra[2] = {message, retryable ? "true" : "false"};

	return db_report(db, "SELECT tinytemp_fail($1::bigint, $2::bigint, $3, $4::boolean)",
					 job_id, worker_id, 2, extra, new_state, error);
}

/*
 * Register a job's output datasets and ack it, in one statement, hence one
 * transaction: either every dataset is registered and the job acked, or
 * nothing is, so a refused dataset registers none of the others and a
 * statement that meets a lost connection can be sent again as it is (had
 * it committed, the job is no longer held and the server answers TT003).
 * datasets is a JSON array of dataset objects, which
 * tinytemp_register_dataset (tinytemp 0.7) checks and registers together,
 * in order, while the job is still held: the subquery (kept apart by its
 * OFFSET) yields its row before the ack is called.  On DB_OK *version gets
 * the version given to the last dataset and *names their names, one a
 * line.  A value the server refuses (SQLSTATE class 22, or class 23 such
 * as a uri registered already) is DB_BAD_INPUT; DB_UNSUPPORTED: the
 * server's tinytemp predates datasets.
 */
DbOutcome
db_ack_datasets(Db *db, int64_t worker_id, int64_t job_id, const char *result, const char *datasets,
				char **version, char **names, char **error)
{
	char		job[32];
	char		worker[32];
	const char *values[4] = {job, worker, result, datasets};
	PGresult   *res;
	DbOutcome	o;

	snprintf(job, sizeof(job), "%" PRId64, job_id);
	snprintf(worker, sizeof(worker), "%" PRId64, worker_id);
	o = db_exec(db, &res,
				"SELECT r.version, (SELECT pg_catalog.string_agg(d.x ->> 'name', E'\\n' ORDER BY d.n)"
				"   FROM pg_catalog.jsonb_array_elements($4::jsonb) WITH ORDINALITY AS d(x, n)),"
				" tinytemp_ack($1::bigint, $2::bigint, $3::jsonb)"
				" FROM (SELECT tinytemp_register_dataset($1::bigint, $2::bigint, $4::jsonb) AS version"
				"       OFFSET 0) AS r",
				4, values, error);
	if (o == DB_OK)
	{
		*version = xstrdup(PQgetvalue(res, 0, 0));
		*names = xstrdup(PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	else if (o == DB_ERROR && strncmp(db->sqlstate, "23", 2) == 0)
		o = DB_BAD_INPUT;
	return o;
}

/* Send a tracking batch with sql; *kept gets the rows the server kept. */
static DbOutcome
report_tracking(Db *db, const char *sql, int64_t worker_id, int64_t job_id, const char *batch,
				long long *kept, char **error)
{
	const char *extra[1] = {batch};
	char	   *answer = NULL;
	DbOutcome	o;

	o = db_report(db, sql, job_id, worker_id, 1, extra, &answer, error);
	if (o == DB_OK)
	{
		*kept = strtoll(answer, NULL, 10);
		free(answer);
	}
	return o;
}

/*
 * Send a job's metric records, a JSON array of {"step", "metrics", "at"}
 * objects (tinytemp_report_metrics, tinytemp 0.6).  TT003 when the job is
 * no longer ours, as for a heartbeat; DB_UNSUPPORTED on an older server.
 */
DbOutcome
db_report_metrics(Db *db, int64_t worker_id, int64_t job_id, const char *records,
				  long long *kept, char **error)
{
	return report_tracking(db, "SELECT tinytemp_report_metrics($1::bigint, $2::bigint, $3::jsonb)",
						   worker_id, job_id, records, kept, error);
}

/* Send a job's log lines, a JSON array of {"stream", "line", "at"} objects (tinytemp_report_logs). */
DbOutcome
db_report_logs(Db *db, int64_t worker_id, int64_t job_id, const char *lines,
			   long long *kept, char **error)
{
	return report_tracking(db, "SELECT tinytemp_report_logs($1::bigint, $2::bigint, $3::jsonb)",
						   worker_id, job_id, lines, kept, error);
}

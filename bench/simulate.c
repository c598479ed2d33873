/*
 * simulate.c
 *	  bench/simulate: replays a job trace on a simulated cluster through
 *	  tinytemp's real SQL functions, against a virtual clock, and prints the
 *	  scheduling figures as one JSON line.
 *
 *	  simulate --trace T --cluster C --policy fifo|tinytemp [--oracle]
 *			   [--conninfo S] [--tick S] [--lease S] [--restart-cost S]
 *			   [--progress] [--detail FILE] [--table]
 *
 * It creates a scratch database (tinytemp_sim_<pid>) in the cluster that
 * libpq's PG* variables or --conninfo reach, installs tinytemp there,
 * registers the cluster's workers and replays the trace; the scratch
 * database is dropped at the end, also on error or on SIGINT/SIGTERM.  No
 * real job is ever touched.
 *
 * Virtual time jumps from event to event: the next submission, the next
 * completion, or, while jobs wait and nothing else happens, a tick (60 s)
 * so that aging, reservations and placement timeouts progress.  Each step
 * is one transaction: set tinytemp.clock, ack the jobs that finish, enqueue
 * the arrivals, run one planner pass (tinytemp_schedule), answer the
 * preemption requests with a checkpoint, and let every worker claim until
 * it gets nothing.  Every decision is the extension's; the simulator only
 * keeps the workers' books (what each holds, when it finishes) so that it
 * can skip the claims that could not succeed.
 *
 * Its workers heartbeat as real ones do.  A claim leases a job for
 * tinytemp.lease_timeout (--lease, 1 h by default), and the planner's
 * pass requeues a running job whose lease ran out.  Since the clock jumps,
 * each step ends by heartbeating, in one statement, every running job whose
 * lease would come within a third of a lease of running out by the next
 * step, and no step jumps further than two thirds of a lease while jobs
 * run: no lease ever runs out, however long a job runs.  The steps taken
 * only for that run no planner pass and change no decision: the figures
 * are those of a replay without leases.  The predictor is retrained on
 * the replay's own history as the background worker would retrain it
 * (tinytemp.retrain_after acked jobs, at most once per
 * tinytemp.retrain_interval of virtual time).
 *
 * A job that no worker of the cluster can ever hold (or, for a gang, fewer
 * workers than its members) is named on stderr when the trace is read;
 * the extension fails it as unschedulable after its placement timeout, and
 * it counts among the failed jobs.  Should the extension leave such jobs
 * waiting (tinytemp.placement_timeout 0), the simulator cancels them once
 * nothing else is left, rather than stalling.
 *
 * A job runs runtime_s / speed seconds on a worker of that speed.  A
 * preempted job checkpoints the work it has done, {"done_s": d}, but its
 * restart is not free: the run that resumes it first redoes --restart-cost
 * seconds of work (60 by default: reloading, warming up, the steps since
 * its last save), so it runs (runtime_s - d + restart_cost) / speed.  The
 * redone work is reported as lost (work_lost_s, and work_lost_gpu_s in
 * GPU-seconds of the workers that redid it); a run preempted again while
 * it redoes keeps its checkpoint.
 * A job's wait is all the time it waits: before its first start, and
 * after each preemption until it starts again.
 * A gang counts as one job: it starts with its first member and ends
 * with its last.  Besides the utilization over the makespan, which the
 * longest jobs' tail dominates, the figures give it between the first and
 * the last submission (utilization_arrivals).  Waits and JCTs are also
 * given by class of job, so that the starvation of large or long jobs
 * shows: by the GPUs a job holds in all (gpus x gang_size: 0, 1, 2-8,
 * more than 8), and by its true runtime (under 10 min, 10 min to 2 h,
 * over 2 h); --table prints them as a table on stderr as well.  When jobs
 * wait for a day of virtual time with nothing running and nothing left to
 * arrive, the replay stops with the extension's own account of why
 * (tinytemp.pending_reasons and more).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* 2026-01-01 00:00:00+00, the virtual clock's origin (submit_s 0). */
#define CLOCK_ORIGIN 1767225600LL
/* Most jobs one claim asks for. */
#define CLAIM_BATCH 16
/* Give up when jobs wait this long with nothing running and nothing left to arrive. */
#define STALL_LIMIT_S 86400.0
/* Distinct server notices shown; the rest are counted. */
#define MAX_NOTICES 16

/* The trace's columns, in the order its rows are kept. */
enum
{
	COL_SUBMIT_S,
	COL_JOB_TYPE,
	COL_MODEL,
	COL_DATASET_SIZE,
	COL_EPOCHS,
	COL_BATCH_SIZE,
	COL_CPUS,
	COL_MEMORY_MB,
	COL_GPUS,
	COL_GPU_TYPE,
	COL_GANG_SIZE,
	COL_PRIORITY,
	COL_TENANT,
	COL_RUNTIME_S,
	NUM_TRACE_COLS
};

static const char *const trace_columns[NUM_TRACE_COLS] = {
	"submit_s", "job_type", "model", "dataset_size", "epochs", "batch_size", "cpus",
	"memory_mb", "gpus", "gpu_type", "gang_size", "priority", "tenant", "runtime_s"
};

enum
{
	CCOL_NAME,
	CCOL_COUNT,
	CCOL_CPUS,
	CCOL_MEMORY_MB,
	CCOL_GPUS,
	CCOL_GPU_TYPE,
	CCOL_SPEED,
	NUM_CLUSTER_COLS
};

static const char *const cluster_columns[NUM_CLUSTER_COLS] = {
	"name", "count", "cpus", "memory_mb", "gpus", "gpu_type", "speed"
};

/* One job of the trace; a gang is one TraceJob of gang_size members. */
typedef struct TraceJob
{
	int			row;			/* data row number in the file, from 1 */
	char	   *field[NUM_TRACE_COLS];	/* NULL for an empty field */
	double		submit_s;
	double		runtime_s;
	int			cpus;
	int64_t		memory_mb;
	int			gpus;
	int			gang_size;
	int64_t		first_id;		/* what tinytemp_enqueue returned */
	bool		enqueued;
	bool		failed;
	int			running;		/* members running now */
	int			done;			/* members acked */
	double		first_start;	/* -1 until a member starts */
	double		requeued_at;	/* when a preemption put it back to wait; -1: it does not */
	double		rewait;			/* seconds it waited again after preemptions */
	double		last_end;
	int			last_worker;	/* where a member last started, for --detail */
	int			preemptions;	/* members preempted */
	bool		never_fits;		/* no worker (or too few for the gang) can hold a member */
} TraceJob;

/* One worker of the simulated cluster, and the simulator's books on it. */
typedef struct Worker
{
	char	   *name;
	int64_t		id;
	int			cpus;
	int64_t		memory_mb;
	int			gpus;
	char	   *gpu_type;		/* NULL for none */
	double		speed;
	int			free_cpus;
	int64_t		free_memory_mb;
	int			free_gpus;
	bool		has_assigned;	/* the last pass assigned it jobs */
} Worker;

/* One member of a trace job, running on a worker. */
typedef struct Run
{
	int64_t		job_id;
	int			trace;			/* index into sim.jobs */
	int			worker;			/* index into sim.workers */
	double		start;
	double		done_at_start;	/* work done before, in speed-1.0 seconds */
	double		redo_s;			/* work to redo first, a resumed run's restart cost */
	double		end;
	double		lease_until;	/* as the extension has it: the claim or last heartbeat + lease */
	int			cpus;
	int64_t		memory_mb;
	int			gpus;
} Run;

typedef struct Sim
{
	/* options */
	const char *trace_path;
	const char *cluster_path;
	const char *policy;
	const char *conninfo;
	const char *detail_path;
	bool		oracle;
	bool		progress;
	bool		table;
	double		tick_s;
	double		lease_s;
	double		restart_cost_s;

	/* input */
	TraceJob   *jobs;			/* sorted by submit_s, then row */
	int			njobs;
	int		   *by_row;			/* row number - 1 -> index into jobs */
	Worker	   *workers;
	int			nworkers;

	/* connections */
	PGconn	   *admin;
	PGconn	   *conn;
	char		dbname[64];
	bool		created;

	/* state */
	Run		   *runs;
	int			nruns;
	int			runs_size;
	bool		replaying;
	double		now;
	int			next_arrival;
	int		   *waiting;		/* trace jobs enqueued with members yet to start */
	int			nwaiting;
	int			waiting_size;

	/* figures */
	double		busy_gpu_s;
	double		busy_cpu_s;
	double		busy_gpu_arrivals_s;	/* the same, between the first and last submission */
	double		busy_cpu_arrivals_s;
	int			preemptions;
	int			restarts;		/* runs resumed from a preemption's checkpoint */
	double		work_lost_s;	/* work redone by them, in speed-1.0 seconds */
	double		work_lost_gpu_s;	/* the same in GPU-seconds of the workers */
	int			failed;
	int			never_fit;		/* trace jobs that can never fit the cluster */
	long		heartbeats;
	int			retrain_after;	/* the server's tinytemp.retrain_after; 0: never */
	double		retrain_interval_s;	/* its tinytemp.retrain_interval, in virtual seconds */
	long		acked_since_train;
	double		trained_at;		/* virtual time of the last retraining; -inf: none */
	int			retrains;
	long		steps;
	long		lease_steps;	/* steps taken only to heartbeat in time */
	long		claims;
	double		schedule_wall_s;	/* real time in tinytemp_schedule, for --progress */
	double		claim_wall_s;
	int			notices;
	char	   *notice_seen[MAX_NOTICES];
} Sim;

static Sim	sim;
static volatile sig_atomic_t interrupted = 0;

static void cleanup(void);

/* Print an error, drop the scratch database and exit 1. */
static void
fatal(const char *fmt,...)
{
	va_list		ap;

	fputs("simulate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
	{
		fputs("simulate: out of memory\n", stderr);
		cleanup();
		exit(1);
	}
	return p;
}

static void *
xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (p == NULL)
	{
		fputs("simulate: out of memory\n", stderr);
		cleanup();
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* Signal handler: the main loop stops at its next step and cleans up. */
static void
on_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

static double
wall_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- input */

/*
 * Split one CSV line in place into at most max fields: commas separate,
 * double quotes enclose a field that may hold commas ("" is a quote).
 * Returns the number of fields, or -1 for a malformed line.
 */
static int
split_csv(char *line, char **fields, int max)
{
	int			n = 0;
	char	   *p = line;

	for (;;)
	{
		char	   *out = p;

		if (n == max)
			return -1;
		fields[n++] = p;
		if (*p == '"')
		{
			p++;
			for (;;)
			{
				if (*p == '\0')
					return -1;
				if (*p == '"' && p[1] == '"')
				{
					*out++ = '"';
					p += 2;
				}
				else if (*p == '"')
				{
					p++;
					break;
				}
				else
					*out++ = *p++;
			}
			if (*p != ',' && *p != '\0')
				return -1;
		}
		else
		{
			while (*p != ',' && *p != '\0')
				*out++ = *p++;
		}
		if (*p == '\0')
		{
			*out = '\0';
			return n;
		}
		*out = '\0';
		p++;
	}
}

/* Strip the line end (LF or CRLF). */
static void
chomp(char *line)
{
	size_t		n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
}

/*
 * Read a CSV file with a header naming at least the columns in names;
 * returns its rows as arrays of ncols strings in that column order (empty
 * fields are NULL), and their number in *nrows.
 */
static char ***
read_csv(const char *path, const char *const *names, int ncols, int *nrows)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	char	  **fields;
	int			map[64];
	int			nfields;
	char	 ***rows = NULL;
	int			n = 0;
	int			size = 0;
	int			lineno = 1;

	if (f == NULL)
		fatal("cannot open \"%s\": %s", path, strerror(errno));
	fields = xmalloc(sizeof(char *) * 64);
	if (getline(&line, &cap, f) < 0)
		fatal("\"%s\" is empty: expected a header line", path);
	chomp(line);
	nfields = split_csv(line, fields, 64);
	if (nfields < 0)
		fatal("\"%s\" line 1: malformed header", path);
	for (int c = 0; c < ncols; c++)
	{
		map[c] = -1;
		for (int i = 0; i < nfields; i++)
			if (strcmp(fields[i], names[c]) == 0)
				map[c] = i;
		if (map[c] < 0)
			fatal("\"%s\": the header has no column \"%s\"", path, names[c]);
	}
	while (getline(&line, &cap, f) >= 0)
	{
		char	  **row;

		lineno++;
		chomp(line);
		if (line[0] == '\0')
			continue;
		if (split_csv(line, fields, 64) != nfields)
			fatal("\"%s\" line %d: expected %d fields", path, lineno, nfields);
		row = xmalloc(sizeof(char *) * (ncols + 1));
		for (int c = 0; c < ncols; c++)
			row[c] = fields[map[c]][0] ? xstrdup(fields[map[c]]) : NULL;
		/* the line number, for messages */
		row[ncols] = xmalloc(16);
		snprintf(row[ncols], 16, "%d", lineno);
		if (n == size)
		{
			size = size ? size * 2 : 256;
			rows = xrealloc(rows, sizeof(char **) * size);
		}
		rows[n++] = row;
	}
	if (ferror(f))
		fatal("cannot read \"%s\": %s", path, strerror(errno));
	fclose(f);
	free(line);
	free(fields);
	*nrows = n;
	return rows;
}

/* Parse an integer field in [min, max]; an empty one is def. */
static int64_t
parse_int(const char *path, const char *line, const char *column, const char *s,
		  int64_t min, int64_t max, int64_t def)
{
	char	   *end;
	long long	v;

	if (s == NULL)
		return def;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fatal("\"%s\" line %s: %s must be an integer from %" PRId64 " to %" PRId64 ", not \"%s\"",
			  path, line, column, min, max, s);
	return v;
}

/* Parse a finite number field >= min (> min when strict); empty is an error. */
static double
parse_num(const char *path, const char *line, const char *column, const char *s,
		  double min, bool strict)
{
	char	   *end;
	double		v;

	if (s == NULL)
		fatal("\"%s\" line %s: %s must not be empty", path, line, column);
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || (strict && v == min))
		fatal("\"%s\" line %s: %s must be a number %s %g, not \"%s\"",
			  path, line, column, strict ? ">" : ">=", min, s);
	return v;
}

/* Order trace jobs by submission, then by their row in the file. */
static int
compare_jobs(const void *a, const void *b)
{
	const TraceJob *x = a;
	const TraceJob *y = b;

	if (x->submit_s != y->submit_s)
		return x->submit_s < y->submit_s ? -1 : 1;
	return x->row - y->row;
}

static void
load_trace(void)
{
	int			nrows;
	char	 ***rows = read_csv(sim.trace_path, trace_columns, NUM_TRACE_COLS, &nrows);
	const char *p = sim.trace_path;

	if (nrows == 0)
		fatal("\"%s\" has no jobs", p);
	sim.jobs = xmalloc(sizeof(TraceJob) * nrows);
	sim.by_row = xmalloc(sizeof(int) * nrows);
	sim.njobs = nrows;
	for (int i = 0; i < nrows; i++)
	{
		TraceJob   *j = &sim.jobs[i];
		char	  **r = rows[i];
		const char *ln = r[NUM_TRACE_COLS];

		memset(j, 0, sizeof(*j));
		j->row = i + 1;
		memcpy(j->field, r, sizeof(j->field));
		if (r[COL_JOB_TYPE] == NULL)
			fatal("\"%s\" line %s: job_type must not be empty", p, ln);
		j->submit_s = parse_num(p, ln, "submit_s", r[COL_SUBMIT_S], 0, false);
		j->runtime_s = parse_num(p, ln, "runtime_s", r[COL_RUNTIME_S], 0, true);
		/* What tinytemp_enqueue accepts: a trace it would refuse is refused here, before the replay. */
		j->cpus = parse_int(p, ln, "cpus", r[COL_CPUS], 1, INT32_MAX, 1);
		j->memory_mb = parse_int(p, ln, "memory_mb", r[COL_MEMORY_MB], 1, INT64_MAX, 1024);
		j->gpus = parse_int(p, ln, "gpus", r[COL_GPUS], 0, INT32_MAX, 0);
		j->gang_size = parse_int(p, ln, "gang_size", r[COL_GANG_SIZE], 1, 1000, 1);
		parse_int(p, ln, "dataset_size", r[COL_DATASET_SIZE], INT64_MIN, INT64_MAX, 0);
		parse_int(p, ln, "epochs", r[COL_EPOCHS], INT32_MIN, INT32_MAX, 0);
		parse_int(p, ln, "batch_size", r[COL_BATCH_SIZE], INT32_MIN, INT32_MAX, 0);
		parse_int(p, ln, "priority", r[COL_PRIORITY], INT32_MIN, INT32_MAX, 0);
		j->first_start = -1;
		j->requeued_at = -1;
		free(r[NUM_TRACE_COLS]);
		free(r);
	}
	free(rows);
	qsort(sim.jobs, sim.njobs, sizeof(TraceJob), compare_jobs);
	for (int i = 0; i < sim.njobs; i++)
		sim.by_row[sim.jobs[i].row - 1] = i;
}

static void
load_cluster(void)
{
	int			nrows;
	char	 ***rows = read_csv(sim.cluster_path, cluster_columns, NUM_CLUSTER_COLS, &nrows);
	const char *p = sim.cluster_path;
	int			total = 0;

	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < nrows; i++)
		{
			char	  **r = rows[i];
			const char *ln = r[NUM_CLUSTER_COLS];
			int			count = parse_int(p, ln, "count", r[CCOL_COUNT], 0, 100000, 1);

			if (pass == 0)
			{
				if (r[CCOL_NAME] == NULL)
					fatal("\"%s\" line %s: name must not be empty", p, ln);
				total += count;
				continue;
			}
			for (int k = 1; k <= count; k++)
			{
				Worker	   *w = &sim.workers[sim.nworkers++];
				size_t		len = strlen(r[CCOL_NAME]) + 16;

				w->name = xmalloc(len);
				snprintf(w->name, len, "%s-%d", r[CCOL_NAME], k);
				w->cpus = parse_int(p, ln, "cpus", r[CCOL_CPUS], 1, INT32_MAX, 0);
				w->memory_mb = parse_int(p, ln, "memory_mb", r[CCOL_MEMORY_MB], 1, INT64_MAX, 0);
				w->gpus = parse_int(p, ln, "gpus", r[CCOL_GPUS], 0, INT32_MAX, 0);
				w->gpu_type = r[CCOL_GPU_TYPE];
				w->speed = r[CCOL_SPEED] ? parse_num(p, ln, "speed", r[CCOL_SPEED], 0, true) : 1.0;
				w->free_cpus = w->cpus;
				w->free_memory_mb = w->memory_mb;
				w->free_gpus = w->gpus;
			}
		}
		if (pass == 0)
		{
			if (total == 0)
				fatal("\"%s\" has no workers", p);
			sim.workers = xmalloc(sizeof(Worker) * total);
		}
	}
}

/* Could worker w hold one member of trace job j when idle? (The extension's fit.) */
static bool
fits_worker(const TraceJob *j, const Worker *w)
{
	return j->cpus <= w->cpus && j->memory_mb <= w->memory_mb && j->gpus <= w->gpus &&
		(j->gpus == 0 || j->field[COL_GPU_TYPE] == NULL ||
		 (w->gpu_type && strcmp(j->field[COL_GPU_TYPE], w->gpu_type) == 0));
}

/*
 * Name the trace jobs that no worker of the cluster can ever hold, or, for
 * a gang, fewer workers than it has members.  They are replayed all the
 * same: the extension fails them as unschedulable.
 */
static void
check_fit(void)
{
	for (int i = 0; i < sim.njobs; i++)
	{
		TraceJob   *j = &sim.jobs[i];
		int			capable = 0;

		for (int w = 0; w < sim.nworkers && capable < j->gang_size; w++)
			if (fits_worker(j, &sim.workers[w]))
				capable++;
		if (capable >= j->gang_size)
			continue;
		j->never_fits = true;
		if (sim.never_fit++ < MAX_NOTICES)
			fprintf(stderr, "simulate: trace row %d can never fit the cluster: %d member%s of %d CPUs, "
					"%" PRId64 " MB, %d GPUs%s%s; %d worker%s could hold one\n",
					j->row, j->gang_size, j->gang_size == 1 ? "" : "s", j->cpus, j->memory_mb,
					j->gpus, j->gpus > 0 && j->field[COL_GPU_TYPE] ? " of type " : "",
					j->gpus > 0 && j->field[COL_GPU_TYPE] ? j->field[COL_GPU_TYPE] : "",
					capable, capable == 1 ? "" : "s");
	}
	if (sim.never_fit > MAX_NOTICES)
		fprintf(stderr, "simulate: ... and %d more trace jobs that can never fit\n",
				sim.never_fit - MAX_NOTICES);
	if (sim.never_fit > 0)
		fprintf(stderr, "simulate: %d trace job%s can never fit the cluster: expect %s to fail "
				"as unschedulable\n", sim.never_fit, sim.never_fit == 1 ? "" : "s",
				sim.never_fit == 1 ? "it" : "them");
}

/* ------------------------------------------------------------- database */

/* Show each distinct server notice once. */
static void
on_notice(void *arg, const char *message)
{
	(void) arg;
	for (int i = 0; i < sim.notices && i < MAX_NOTICES; i++)
		if (strcmp(sim.notice_seen[i], message) == 0)
			return;
	if (sim.notices < MAX_NOTICES)
	{
		sim.notice_seen[sim.notices] = xstrdup(message);
		fprintf(stderr, "simulate: server says: %s", message);
	}
	sim.notices++;
}

static PGconn *
connect_to(const char *dbname)
{
	const char *keywords[] = {"dbname", "dbname", "application_name", NULL};
	const char *values[] = {sim.conninfo ? sim.conninfo : "", dbname, "tinytemp-simulate", NULL};
	PGconn	   *conn;

	/* Only the first dbname is expanded as a connection string; the second overrides its database. */
	if (dbname == NULL)
	{
		keywords[1] = "application_name";
		values[1] = "tinytemp-simulate";
		keywords[2] = NULL;
		values[2] = NULL;
	}
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL)
		fatal("out of memory connecting");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = xstrdup(PQerrorMessage(conn));

		PQfinish(conn);
		msg[strcspn(msg, "\n")] = '\0';
		fatal("cannot connect%s%s: %s", dbname ? " to " : "", dbname ? dbname : "", msg);
	}
	PQsetNoticeProcessor(conn, on_notice, NULL);
	return conn;
}

/* Fail with the server's message when res is not of the expected status. */
static PGresult *
check(PGconn *conn, PGresult *res, ExecStatusType expected, const char *what)
{
	if (res == NULL || PQresultStatus(res) != expected)
	{
		const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
		char	   *copy = xstrdup(msg && msg[0] ? msg : "unexpected result\n");

		PQclear(res);
		copy[strcspn(copy, "\n")] = '\0';
		if (sim.replaying)
			fatal("%s at virtual time %.3f s: %s", what, sim.now, copy);
		fatal("%s: %s", what, copy);
	}
	return res;
}

/* Run a command that returns no rows. */
static void
exec_command(PGconn *conn, const char *sql, const char *what)
{
	PQclear(check(conn, PQexec(conn, sql), PGRES_COMMAND_OK, what));
}

/* Run a prepared statement that returns rows. */
static PGresult *
exec_prepared(const char *name, int nparams, const char *const *values, const char *what)
{
	return check(sim.conn, PQexecPrepared(sim.conn, name, nparams, values, NULL, NULL, 0),
				 PGRES_TUPLES_OK, what);
}

static void
prepare(const char *name, const char *sql)
{
	PQclear(check(sim.conn, PQprepare(sim.conn, name, sql, 0, NULL), PGRES_COMMAND_OK, name));
}

/* Close the connections, dropping the scratch database if we created it. */
static void
cleanup(void)
{
	static bool done = false;

	if (done)
		return;
	done = true;
	if (sim.conn)
		PQfinish(sim.conn);
	sim.conn = NULL;
	if (sim.created && sim.admin)
	{
		char		sql[128];
		PGresult   *res;

		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", sim.dbname);
		res = PQexec(sim.admin, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fprintf(stderr, "simulate: could not drop the scratch database %s: %s",
					sim.dbname, PQresultErrorMessage(res));
		PQclear(res);
	}
	if (sim.admin)
		PQfinish(sim.admin);
	sim.admin = NULL;
}

/* The virtual clock at t seconds, as a timestamptz literal. */
static void
format_clock(double t, char *buf, size_t size)
{
	long long	us = llround(t * 1e6);
	time_t		secs = (time_t) (CLOCK_ORIGIN + us / 1000000);
	struct tm	tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 us % 1000000);
}

static void
set_clock(double t)
{
	char		sql[128];
	char		ts[48];

	format_clock(t, ts, sizeof(ts));
	snprintf(sql, sizeof(sql), "BEGIN; SET tinytemp.clock = '%s'", ts);
	exec_command(sim.conn, sql, "setting tinytemp.clock");
}

/*
 * Create the scratch database, install tinytemp in it, check that it is
 * the version with the planner and the virtual clock, set the session's
 * policy and register the workers.
 */
static void
setup_database(void)
{
	char		sql[256];
	PGresult   *res;
	char		ts[48];

	sim.admin = connect_to(NULL);
	snprintf(sim.dbname, sizeof(sim.dbname), "tinytemp_sim_%d", (int) getpid());
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", sim.dbname);
	exec_command(sim.admin, sql, "creating the scratch database");
	sim.created = true;
	sim.conn = connect_to(sim.dbname);

	exec_command(sim.conn, "CREATE EXTENSION tinytemp", "CREATE EXTENSION tinytemp");
	res = check(sim.conn, PQexec(sim.conn,
								 "SELECT extversion, to_regproc('tinytemp_schedule') IS NOT NULL "
								 "FROM pg_extension WHERE extname = 'tinytemp'"),
				PGRES_TUPLES_OK, "checking the extension's version");
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		fatal("tinytemp %s has no tinytemp_schedule(): the simulator needs version 0.3 or later",
			  PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);

	{
		const char *values[1] = {sim.policy};

		res = PQexecParams(sim.conn, "SELECT set_config('tinytemp.policy', $1, false)",
						   1, NULL, values, NULL, NULL, 0);
		PQclear(check(sim.conn, res, PGRES_TUPLES_OK, "setting tinytemp.policy"));
	}
	/* The workers' lease; they heartbeat well before it runs out (heartbeat_runs). */
	snprintf(sql, sizeof(sql), "SET tinytemp.lease_timeout = %lld", llround(sim.lease_s * 1000));
	exec_command(sim.conn, sql, "setting tinytemp.lease_timeout");
	/* A scratch database: its commits need not wait for the disk. */
	exec_command(sim.conn, "SET synchronous_commit = off", "setting synchronous_commit");

	/* The clock must be honoured, or every figure would be wrong. */
	sim.now = 0;
	set_clock(sim.now);
	format_clock(sim.now, ts, sizeof(ts));
	snprintf(sql, sizeof(sql), "SELECT tinytemp.now() = '%s'::timestamptz", ts);
	res = check(sim.conn, PQexec(sim.conn, sql), PGRES_TUPLES_OK, "reading tinytemp.now()");
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		fatal("tinytemp.now() does not follow tinytemp.clock");
	PQclear(res);

	/*
	 * Registering warns that no background worker expires leases in this
	 * database: the planner's pass in each step does, and none need
	 * expiring here, since the simulator's workers heartbeat and never
	 * lose a job.
	 */
	exec_command(sim.conn, "SET LOCAL client_min_messages = error", "setting client_min_messages");
	prepare("register",
			"SELECT tinytemp_register_worker($1, $2::int, $3::bigint, $4::int, $5, "
			"jsonb_build_object('speed', $6::float8))");
	for (int i = 0; i < sim.nworkers; i++)
	{
		Worker	   *w = &sim.workers[i];
		char		cpus[16],
					mem[24],
					gpus[16],
					speed[32];
		const char *values[6] = {w->name, cpus, mem, gpus, w->gpu_type, speed};

		snprintf(cpus, sizeof(cpus), "%d", w->cpus);
		snprintf(mem, sizeof(mem), "%" PRId64, w->memory_mb);
		snprintf(gpus, sizeof(gpus), "%d", w->gpus);
		snprintf(speed, sizeof(speed), "%.17g", w->speed);
		res = exec_prepared("register", 6, values, "registering a worker");
		w->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	exec_command(sim.conn, "COMMIT", "registering the workers");

	prepare("enqueue",
			"SELECT tinytemp_enqueue(job_type => $1, model => $2, params => $3::jsonb, "
			"priority => coalesce($4::int, 0), dataset_size => $5::bigint, epochs => $6::int, "
			"batch_size => $7::int, cpus => coalesce($8::int, 1), "
			"memory_mb => coalesce($9::bigint, 1024), gpus => coalesce($10::int, 0), "
			"gpu_type => $11, gang_size => coalesce($12::int, 1), tenant => $13, "
			"runtime_estimate_s => $14::float8)");
	prepare("ack", "SELECT tinytemp_ack_many($1::bigint[], $2::bigint)");
	prepare("after_pass",
			"SELECT 'assigned', id, worker_id, NULL FROM tinytemp.jobs WHERE state = 'assigned' "
			"UNION ALL "
			"SELECT 'preempt', id, worker_id, NULL FROM tinytemp.jobs "
			"WHERE state = 'running' AND preempt_requested_at IS NOT NULL "
			"UNION ALL "
			"SELECT 'failed', id, (params->>'trace_row')::bigint, state || ': ' || "
			"coalesce(last_error, '') FROM tinytemp.jobs "
			"WHERE state IN ('failed', 'cancelled') "
			"AND (id = ANY ($1::bigint[]) OR gang_id = ANY ($1::bigint[]))");
	prepare("claim",
			"SELECT id, worker_id, (params->>'trace_row')::int, "
			"coalesce((checkpoint->>'done_s')::float8, 0), cpus, memory_mb, gpus, "
			"checkpoint IS NOT NULL "
			"FROM tinytemp_claim($1::bigint, $2::int)");
	prepare("heartbeat", "SELECT tinytemp_heartbeat($1::bigint, $2::bigint)");
	/* Every heartbeat of a step in one statement; only the answers other than "continue" come back. */
	prepare("heartbeats",
			"SELECT j, a FROM (SELECT u.j, tinytemp_heartbeat(u.j, u.w) AS a "
			"FROM unnest($1::bigint[], $2::bigint[]) AS u(j, w)) h WHERE a <> 'continue'");
	prepare("cancel", "SELECT tinytemp_cancel($1::bigint)");
	prepare("checkpoint",
			"SELECT tinytemp_checkpoint($1::bigint, $2::bigint, jsonb_build_object('done_s', $3::float8))");
	prepare("job_state", "SELECT state FROM tinytemp.jobs WHERE id = $1::bigint");
}

/* ---------------------------------------------------------- simulation */

static int
worker_by_id(int64_t id)
{
	for (int i = 0; i < sim.nworkers; i++)
		if (sim.workers[i].id == id)
			return i;
	fatal("the extension named worker %" PRId64 ", which the simulator did not register", id);
	return -1;
}

/* Is a trace job waiting, with members neither running nor done? */
static bool
is_waiting(const TraceJob *j)
{
	return j->enqueued && !j->failed && j->running + j->done < j->gang_size;
}

/* Put a trace job on the waiting list, unless it is there already. */
static void
add_waiting(int index)
{
	for (int i = 0; i < sim.nwaiting; i++)
		if (sim.waiting[i] == index)
			return;
	if (sim.nwaiting == sim.waiting_size)
	{
		sim.waiting_size = sim.waiting_size ? sim.waiting_size * 2 : 256;
		sim.waiting = xrealloc(sim.waiting, sizeof(int) * sim.waiting_size);
	}
	sim.waiting[sim.nwaiting++] = index;
}

/* Drop the jobs that no longer wait from the waiting list. */
static void
compact_waiting(void)
{
	int			n = 0;

	for (int i = 0; i < sim.nwaiting; i++)
		if (is_waiting(&sim.jobs[sim.waiting[i]]))
			sim.waiting[n++] = sim.waiting[i];
	sim.nwaiting = n;
}

/* Take a run off the books: free its worker's resources, count its busy time. */
static void
end_run(int r, double end)
{
	Run		   *run = &sim.runs[r];
	Worker	   *w = &sim.workers[run->worker];
	TraceJob   *j = &sim.jobs[run->trace];
	double		from = fmax(run->start, sim.jobs[0].submit_s);
	double		to = fmin(end, sim.jobs[sim.njobs - 1].submit_s);

	if (run->redo_s > 0)
	{
		/* The part of the restart cost this run got through before it ended. */
		double		lost = fmin(run->redo_s, (end - run->start) * w->speed);

		sim.work_lost_s += lost;
		sim.work_lost_gpu_s += lost / w->speed * run->gpus;
	}
	w->free_cpus += run->cpus;
	w->free_memory_mb += run->memory_mb;
	w->free_gpus += run->gpus;
	sim.busy_gpu_s += run->gpus * (end - run->start);
	sim.busy_cpu_s += run->cpus * (end - run->start);
	if (to > from)
	{
		sim.busy_gpu_arrivals_s += run->gpus * (to - from);
		sim.busy_cpu_arrivals_s += run->cpus * (to - from);
	}
	j->running--;
	sim.runs[r] = sim.runs[--sim.nruns];
}

/* Ack the members that finish now, one tinytemp_ack_many per worker. */
static int
complete_runs(void)
{
	int			completed = 0;
	size_t		cap = 64;
	char	   *ids = xmalloc(cap);

	for (int w = 0; w < sim.nworkers; w++)
	{
		size_t		len = 0;
		int			n = 0;
		char		wid[24];
		const char *values[2];
		PGresult   *res;

		ids[len++] = '{';
		for (int r = 0; r < sim.nruns; r++)
		{
			if (sim.runs[r].worker != w || sim.runs[r].end > sim.now)
				continue;
			if (len + 24 > cap)
				ids = xrealloc(ids, cap *= 2);
			len += snprintf(ids + len, cap - len, "%s%" PRId64, n ? "," : "", sim.runs[r].job_id);
			n++;
		}
		if (n == 0)
			continue;
		ids[len++] = '}';
		ids[len] = '\0';
		snprintf(wid, sizeof(wid), "%" PRId64, sim.workers[w].id);
		values[0] = ids;
		values[1] = wid;
		res = exec_prepared("ack", 2, values, "tinytemp_ack_many");
		if (atoi(PQgetvalue(res, 0, 0)) != n)
			fatal("tinytemp_ack_many acked %s of %d jobs of worker %s", PQgetvalue(res, 0, 0), n, wid);
		PQclear(res);
		for (int r = sim.nruns - 1; r >= 0; r--)
		{
			Run		   *run = &sim.runs[r];
			TraceJob   *j;

			if (run->worker != w || run->end > sim.now)
				continue;
			j = &sim.jobs[run->trace];
			j->done++;
			if (run->end > j->last_end)
				j->last_end = run->end;
			end_run(r, run->end);
			completed++;
		}
	}
	free(ids);
	return completed;
}

/* Enqueue the jobs submitted by now. */
static int
enqueue_arrivals(void)
{
	int			arrived = 0;

	while (sim.next_arrival < sim.njobs && sim.jobs[sim.next_arrival].submit_s <= sim.now)
	{
		TraceJob   *j = &sim.jobs[sim.next_arrival++];
		char		params[96];
		const char *values[14];
		PGresult   *res;

		snprintf(params, sizeof(params), "{\"trace_row\": %d, \"runtime_s\": %.17g}",
				 j->row, j->runtime_s);
		values[0] = j->field[COL_JOB_TYPE];
		values[1] = j->field[COL_MODEL];
		values[2] = params;
		values[3] = j->field[COL_PRIORITY];
		values[4] = j->field[COL_DATASET_SIZE];
		values[5] = j->field[COL_EPOCHS];
		values[6] = j->field[COL_BATCH_SIZE];
		values[7] = j->field[COL_CPUS];
		values[8] = j->field[COL_MEMORY_MB];
		values[9] = j->field[COL_GPUS];
		values[10] = j->field[COL_GPU_TYPE];
		values[11] = j->field[COL_GANG_SIZE];
		values[12] = j->field[COL_TENANT];
		values[13] = sim.oracle ? j->field[COL_RUNTIME_S] : NULL;
		res = exec_prepared("enqueue", 14, values, "tinytemp_enqueue");
		j->first_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		j->enqueued = true;
		add_waiting(sim.next_arrival - 1);
		arrived++;
	}
	return arrived;
}

/* Answer a preemption request: a heartbeat that hears "preempt", then a checkpoint. */
static void
preempt(int64_t job_id, int64_t worker_id)
{
	int			r;
	Run		   *run;
	double		done_s;
	char		jid[24],
				wid[24],
				done[32];
	const char *hb[2] = {jid, wid};
	const char *cp[3] = {jid, wid, done};
	PGresult   *res;

	for (r = 0; r < sim.nruns; r++)
		if (sim.runs[r].job_id == job_id)
			break;
	if (r == sim.nruns)
		fatal("the extension asks to preempt job %" PRId64 ", which no simulated worker runs", job_id);
	run = &sim.runs[r];
	if (sim.workers[run->worker].id != worker_id)
		fatal("the extension says job %" PRId64 " runs on worker %" PRId64 ", the simulator on %" PRId64,
			  job_id, worker_id, sim.workers[run->worker].id);
	snprintf(jid, sizeof(jid), "%" PRId64, job_id);
	snprintf(wid, sizeof(wid), "%" PRId64, worker_id);
	res = exec_prepared("heartbeat", 2, hb, "tinytemp_heartbeat");
	if (strcmp(PQgetvalue(res, 0, 0), "preempt") != 0)
		fatal("job %s has preempt_requested_at set, but its heartbeat answers \"%s\", not \"preempt\"",
			  jid, PQgetvalue(res, 0, 0));
	PQclear(res);
	/* What it did beyond the restart cost it had to redo first. */
	done_s = run->done_at_start +
		fmax(0, (sim.now - run->start) * sim.workers[run->worker].speed - run->redo_s);
	if (done_s > sim.jobs[run->trace].runtime_s)
		done_s = sim.jobs[run->trace].runtime_s;
	snprintf(done, sizeof(done), "%.17g", done_s);
	PQclear(exec_prepared("checkpoint", 3, cp, "tinytemp_checkpoint"));
	res = exec_prepared("job_state", 1, hb, "reading a preempted job's state");
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "pending") != 0)
		fatal("tinytemp_checkpoint after a \"preempt\" answer left job %s in state \"%s\", not pending",
			  jid, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(gone)");
	PQclear(res);
	add_waiting(run->trace);
	sim.jobs[run->trace].preemptions++;
	sim.jobs[run->trace].requeued_at = sim.now;
	end_run(r, sim.now);
	sim.preemptions++;
}

/*
 * After the pass: note the workers with assigned jobs and the trace jobs
 * that failed, and answer the preemption requests.  Returns the number of
 * assignments plus preemptions.
 */
static int
after_pass(void)
{
	size_t		cap = 64,
				len = 0;
	char	   *ids = xmalloc(cap);
	const char *values[1] = {ids};
	PGresult   *res;
	int			changes = 0;

	/* Only a waiting job can fail in a pass; they are found by their first member's id. */
	ids[len++] = '{';
	for (int i = 0; i < sim.nwaiting; i++)
	{
		if (len + 24 > cap)
			ids = xrealloc(ids, cap *= 2);
		len += snprintf(ids + len, cap - len, "%s%" PRId64, i ? "," : "",
						sim.jobs[sim.waiting[i]].first_id);
	}
	ids[len++] = '}';
	ids[len] = '\0';
	values[0] = ids;
	res = exec_prepared("after_pass", 1, values, "reading the pass's outcome");
	free(ids);
	for (int w = 0; w < sim.nworkers; w++)
		sim.workers[w].has_assigned = false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *kind = PQgetvalue(res, i, 0);
		int64_t		job_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		int64_t		other = strtoll(PQgetvalue(res, i, 2), NULL, 10);

		if (strcmp(kind, "assigned") == 0)
		{
			sim.workers[worker_by_id(other)].has_assigned = true;
			changes++;
		}
		else if (strcmp(kind, "preempt") == 0)
		{
			preempt(job_id, other);
			changes++;
		}
		else
		{
			TraceJob   *j;

			if (other < 1 || other > sim.njobs)
				fatal("failed job %" PRId64 " has an unknown trace_row", job_id);
			j = &sim.jobs[sim.by_row[other - 1]];
			if (!j->failed)
			{
				j->failed = true;
				/* Always said: a failed job changes what the figures mean. */
				if (sim.failed++ < MAX_NOTICES || sim.progress)
					fprintf(stderr, "simulate: trace row %d (job %" PRId64 ") %s at %.0f s (%s)\n",
							j->row, job_id, j->never_fits ? "which can never fit, failed" : "failed",
							sim.now, PQgetvalue(res, i, 3));
			}
		}
	}
	PQclear(res);
	compact_waiting();
	return changes;
}

/* Could anything waiting fit what worker w has free? */
static bool
might_fit(const Worker *w)
{
	for (int i = 0; i < sim.nwaiting; i++)
	{
		const TraceJob *j = &sim.jobs[sim.waiting[i]];

		if (!is_waiting(j))
			continue;
		if (j->cpus <= w->free_cpus && j->memory_mb <= w->free_memory_mb &&
			j->gpus <= w->free_gpus &&
			(j->gpus == 0 || j->field[COL_GPU_TYPE] == NULL ||
			 (w->gpu_type && strcmp(j->field[COL_GPU_TYPE], w->gpu_type) == 0)))
			return true;
	}
	return false;
}

/*
 * Let every worker that might get something claim until it gets nothing.
 * Real workers claim concurrently: the one that asks first changes from
 * step to step, so that no worker has the first pick of every arrival.
 * (The steps taken only to heartbeat do not count: the order of the
 * claims, and so every figure, is what it would be without leases.)
 */
static int
claim_all(void)
{
	int			started = 0;

	for (int k = 0; k < sim.nworkers; k++)
	{
		int			w = (int) ((sim.steps - sim.lease_steps + k) % sim.nworkers);
		Worker	   *worker = &sim.workers[w];
		char		wid[24],
					batch[8];
		const char *values[2] = {wid, batch};

		snprintf(wid, sizeof(wid), "%" PRId64, worker->id);
		snprintf(batch, sizeof(batch), "%d", CLAIM_BATCH);
		while (sim.nwaiting > 0 && (worker->has_assigned || might_fit(worker)))
		{
			PGresult   *res = exec_prepared("claim", 2, values, "tinytemp_claim");
			int			n = PQntuples(res);

			sim.claims++;
			worker->has_assigned = false;
			for (int i = 0; i < n; i++)
			{
				Run		   *run;
				TraceJob   *j;
				int			row = atoi(PQgetvalue(res, i, 2));
				double		remaining;

				if (strtoll(PQgetvalue(res, i, 1), NULL, 10) != worker->id)
					fatal("tinytemp_claim(%s) returned job %s held by worker %s",
						  wid, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
				if (row < 1 || row > sim.njobs)
					fatal("tinytemp_claim returned job %s with an unknown trace_row", PQgetvalue(res, i, 0));
				if (sim.nruns == sim.runs_size)
				{
					sim.runs_size = sim.runs_size ? sim.runs_size * 2 : 256;
					sim.runs = xrealloc(sim.runs, sizeof(Run) * sim.runs_size);
				}
				run = &sim.runs[sim.nruns++];
				run->job_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
				run->trace = sim.by_row[row - 1];
				run->worker = w;
				run->start = sim.now;
				run->done_at_start = atof(PQgetvalue(res, i, 3));
				run->cpus = atoi(PQgetvalue(res, i, 4));
				run->memory_mb = strtoll(PQgetvalue(res, i, 5), NULL, 10);
				run->gpus = atoi(PQgetvalue(res, i, 6));
				/* Only the simulator's answers to preemptions checkpoint: this run resumes one. */
				run->redo_s = 0;
				if (strcmp(PQgetvalue(res, i, 7), "t") == 0)
				{
					run->redo_s = sim.restart_cost_s;
					sim.restarts++;
				}
				j = &sim.jobs[run->trace];
				remaining = (j->runtime_s - run->done_at_start + run->redo_s) / worker->speed;
				run->end = sim.now + (remaining > 1e-3 ? remaining : 1e-3);
				run->lease_until = sim.now + sim.lease_s;
				worker->free_cpus -= run->cpus;
				worker->free_memory_mb -= run->memory_mb;
				worker->free_gpus -= run->gpus;
				if (worker->free_cpus < 0 || worker->free_memory_mb < 0 || worker->free_gpus < 0)
					fatal("tinytemp_claim gave worker %s more than it has: job %s leaves it %d CPUs, "
						  "%" PRId64 " MB, %d GPUs", worker->name, PQgetvalue(res, i, 0),
						  worker->free_cpus, worker->free_memory_mb, worker->free_gpus);
				if (j->running + j->done >= j->gang_size)
					fatal("tinytemp_claim started job %s, one member more than trace row %d's gang of %d",
						  PQgetvalue(res, i, 0), row, j->gang_size);
				j->running++;
				j->last_worker = w;
				if (j->first_start < 0)
					j->first_start = sim.now;
				if (j->requeued_at >= 0)
					j->rewait += sim.now - j->requeued_at;
				j->requeued_at = -1;
				started++;
			}
			PQclear(res);
			if (n == 0)
				break;
		}
	}
	compact_waiting();
	return started;
}

/* Print a query's rows on stderr, one line each, for a report. */
static void
print_rows(const char *title, const char *sql)
{
	PGresult   *res = PQexec(sim.conn, sql);

	fprintf(stderr, "simulate: %s:\n", title);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "simulate:   (%s)\n", PQresultErrorMessage(res));
	else
		for (int i = 0; i < PQntuples(res); i++)
		{
			fputs("simulate:  ", stderr);
			for (int c = 0; c < PQnfields(res); c++)
				fprintf(stderr, " %s=%s", PQfname(res, c),
						PQgetisnull(res, i, c) ? "NULL" : PQgetvalue(res, i, c));
			fputc('\n', stderr);
		}
	PQclear(res);
}

/* Show why jobs wait, from the extension's own view, before giving up. */
static void
report_stall(void)
{
	print_rows("the extension's reasons (tinytemp.pending_reasons)",
			   "SELECT job_id, reason, capable_workers, free_workers, tenant_share "
			   "FROM tinytemp.pending_reasons ORDER BY job_id LIMIT 20");
	print_rows("the waiting jobs",
			   "SELECT id, gang_id, gang_rank, state, worker_id, priority, tenant, cpus, memory_mb, "
			   "gpus, gpu_type, run_after, rank_key, predicted_runtime_s, runtime_estimate_s, "
			   "unschedulable_since "
			   "FROM tinytemp.jobs WHERE state IN ('pending', 'assigned') ORDER BY id LIMIT 20");
	print_rows("the reservations", "SELECT * FROM tinytemp.reservations ORDER BY job_id, worker_id");
	print_rows("the workers", "SELECT id, name, gpu_type, free_cpus, free_memory_mb, free_gpus "
			   "FROM tinytemp.worker_status ORDER BY id");
	print_rows("one more planner pass", "SELECT tinytemp_schedule()");
	print_rows("the waiting jobs after it",
			   "SELECT id, state, worker_id FROM tinytemp.jobs "
			   "WHERE state IN ('pending', 'assigned') ORDER BY id LIMIT 20");
}

/*
 * The time of the next step after sim.now: the next submission, the next
 * end of a run, or a tick while jobs wait (*tick then set); while jobs run,
 * at most two thirds of a lease away, so that heartbeat_runs can keep every
 * lease alive (*lease_only then set).  INFINITY when nothing is left to
 * happen.
 */
static double
next_step_at(bool *tick, bool *lease_only)
{
	double		next = INFINITY;

	if (sim.next_arrival < sim.njobs)
		next = sim.jobs[sim.next_arrival].submit_s;
	for (int r = 0; r < sim.nruns; r++)
		if (sim.runs[r].end < next)
			next = sim.runs[r].end;
	*tick = false;
	*lease_only = false;
	if (sim.nwaiting > 0 && sim.now + sim.tick_s < next)
	{
		next = sim.now + sim.tick_s;
		*tick = true;
	}
	if (sim.nruns > 0 && sim.now + sim.lease_s * 2 / 3 < next)
	{
		next = sim.now + sim.lease_s * 2 / 3;
		*tick = false;
		*lease_only = true;
	}
	return next;
}

/*
 * Heartbeat, in one statement, every running job whose lease would come
 * within a third of a lease of running out by the next step at next, as a
 * worker heartbeating every lease/3 would have by then.  Since next is at
 * most two thirds of a lease away, every lease then outlasts the next step
 * by at least a third of a lease.  Every answer must be "continue": the
 * simulator answers preemption requests in the step that makes them, and
 * cancels nothing it runs.
 */
static void
heartbeat_runs(double next)
{
	size_t		jcap = 64,
				wcap = 64,
				jlen = 0,
				wlen = 0;
	char	   *jids = xmalloc(jcap);
	char	   *wids = xmalloc(wcap);
	const char *values[2] = {NULL, NULL};
	int			n = 0;
	PGresult   *res;

	jids[jlen++] = '{';
	wids[wlen++] = '{';
	for (int r = 0; r < sim.nruns; r++)
	{
		Run		   *run = &sim.runs[r];

		if (run->lease_until >= next + sim.lease_s / 3)
			continue;
		if (jlen + 24 > jcap)
			jids = xrealloc(jids, jcap *= 2);
		if (wlen + 24 > wcap)
			wids = xrealloc(wids, wcap *= 2);
		jlen += snprintf(jids + jlen, jcap - jlen, "%s%" PRId64, n ? "," : "", run->job_id);
		wlen += snprintf(wids + wlen, wcap - wlen, "%s%" PRId64, n ? "," : "",
						 sim.workers[run->worker].id);
		run->lease_until = sim.now + sim.lease_s;
		n++;
	}
	if (n > 0)
	{
		jids[jlen++] = '}';
		jids[jlen] = '\0';
		wids[wlen++] = '}';
		wids[wlen] = '\0';
		values[0] = jids;
		values[1] = wids;
		res = exec_prepared("heartbeats", 2, values, "tinytemp_heartbeat");
		if (PQntuples(res) > 0)
			fatal("tinytemp_heartbeat answered \"%s\" for job %s at virtual time %.3f s, "
				  "where the simulator expects \"continue\"",
				  PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), sim.now);
		PQclear(res);
		sim.heartbeats += n;
	}
	free(jids);
	free(wids);
}

/*
 * One step at sim.now, in one transaction; returns the time of the next
 * one (INFINITY when nothing is left), whether that is a tick, and whether
 * it is taken only to heartbeat in time.
 */
static double
step(bool tick, bool lease_only, bool *next_tick, bool *next_lease_only)
{
	int			completed,
				arrived,
				changes;
	double		t0,
				next;

	set_clock(sim.now);
	completed = complete_runs();
	arrived = enqueue_arrivals();
	/*
	 * A step taken only to heartbeat runs no pass: the planner's decisions
	 * depend on time (how long a job has run or waited), and a replay with
	 * a shorter lease must make the same ones.
	 */
	changes = 0;
	if (!lease_only)
	{
		t0 = wall_clock();
		PQclear(check(sim.conn, PQexecPrepared(sim.conn, "schedule", 0, NULL, NULL, NULL, 0),
					  PGRES_TUPLES_OK, "tinytemp_schedule"));
		sim.schedule_wall_s += wall_clock() - t0;
		changes = after_pass();
	}
	if (arrived || completed || changes || tick)
	{
		t0 = wall_clock();
		claim_all();
		sim.claim_wall_s += wall_clock() - t0;
	}
	next = next_step_at(next_tick, next_lease_only);
	heartbeat_runs(next);
	exec_command(sim.conn, "COMMIT", "committing a step");
	sim.steps++;

	/*
	 * Retrain the predictor on the replay's own history as the background
	 * worker would: after tinytemp.retrain_after acked jobs, at most once
	 * per tinytemp.retrain_interval of virtual time.
	 */
	sim.acked_since_train += completed;
	if (sim.retrain_after > 0 && sim.acked_since_train >= sim.retrain_after &&
		sim.now - sim.trained_at >= sim.retrain_interval_s)
	{
		PQclear(exec_prepared("train", 0, NULL, "tinytemp_train_predictor"));
		sim.acked_since_train = 0;
		sim.trained_at = sim.now;
		sim.retrains++;
	}
	if (lease_only)
		sim.lease_steps++;
	return next;
}

/*
 * Jobs have waited a day with nothing running and nothing left to arrive:
 * cancel those that can never fit, as their submitters would, and report
 * them (under fifo they hold up every job behind them).  The extension
 * fails them itself after their placement timeout, unless that is 0.
 * Returns how many it cancelled.
 */
static int
cancel_never_fitting(void)
{
	int			n = 0;

	for (int i = 0; i < sim.nwaiting; i++)
		if (sim.jobs[sim.waiting[i]].never_fits)
			n++;
	if (n == 0)
		return 0;
	set_clock(sim.now);
	for (int i = 0; i < sim.nwaiting; i++)
	{
		TraceJob   *j = &sim.jobs[sim.waiting[i]];
		char		jid[24];
		const char *values[1] = {jid};

		if (!j->never_fits)
			continue;
		snprintf(jid, sizeof(jid), "%" PRId64, j->first_id);
		PQclear(exec_prepared("cancel", 1, values, "tinytemp_cancel"));
		j->failed = true;
		sim.failed++;
		fprintf(stderr, "simulate: trace row %d (job %" PRId64 "), which can never fit, still waits "
				"at %.0f s: cancelled\n", j->row, j->first_id, sim.now);
	}
	exec_command(sim.conn, "COMMIT", "cancelling the jobs that can never fit");
	compact_waiting();
	return n;
}

/* Replay the trace: step from event to event until nothing is left. */
static void
replay(void)
{
	double		stall_since = -1;
	double		started = wall_clock();
	bool		tick = false;
	bool		lease_only = false;
	PGresult   *res;

	prepare("schedule", "SELECT tinytemp_schedule()");
	prepare("train", "SELECT tinytemp_train_predictor()");
	res = check(sim.conn, PQexec(sim.conn, "SELECT current_setting('tinytemp.retrain_after')::int,"
								 " extract(epoch FROM current_setting('tinytemp.retrain_interval')::interval)"),
				PGRES_TUPLES_OK, "reading the retraining settings");
	sim.retrain_after = atoi(PQgetvalue(res, 0, 0));
	sim.retrain_interval_s = atof(PQgetvalue(res, 0, 1));
	sim.trained_at = -INFINITY;
	PQclear(res);
	sim.now = sim.jobs[0].submit_s;
	sim.replaying = true;
	for (;;)
	{
		double		next;

		if (interrupted)
			fatal("interrupted");
		next = step(tick, lease_only, &tick, &lease_only);

		if (sim.progress && sim.steps % 1000 == 0)
			fprintf(stderr, "simulate: step %ld at %.1f h: %d arrived, %d waiting, %d running; "
					"%.1f s wall, %.1f s in tinytemp_schedule, %.1f s in %ld claims\n",
					sim.steps, sim.now / 3600, sim.next_arrival, sim.nwaiting, sim.nruns,
					wall_clock() - started, sim.schedule_wall_s, sim.claim_wall_s, sim.claims);

		if (isinf(next))
			break;

		if (sim.nruns == 0 && sim.next_arrival == sim.njobs && sim.nwaiting > 0)
		{
			if (stall_since < 0)
				stall_since = sim.now;
			else if (sim.now - stall_since > STALL_LIMIT_S)
			{
				if (cancel_never_fitting() > 0)
				{
					/* The rest may start now: the next step is a tick. */
					stall_since = -1;
					if (sim.nwaiting == 0)
						break;
					tick = true;
					lease_only = false;
					sim.now = sim.now + sim.tick_s;
					continue;
				}
				fprintf(stderr, "simulate: %d jobs have waited %.0f s with nothing running\n",
						sim.nwaiting, sim.now - stall_since);
				report_stall();
				fatal("stalled at virtual time %.0f s: jobs never start", sim.now);
			}
		}
		else
			stall_since = -1;
		sim.now = next;
	}
}

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Job classes, for the waits and JCTs by class. */
#define NUM_GPU_CLASSES 4
#define NUM_RUNTIME_CLASSES 3
#define SHORT_RUNTIME_S 600.0
#define LONG_RUNTIME_S 7200.0

static const char *const gpu_class_names[NUM_GPU_CLASSES] = {"0", "1", "2-8", ">8"};
static const char *const gpu_class_labels[NUM_GPU_CLASSES] = {
	"0 GPUs", "1 GPU", "2-8 GPUs", ">8 GPUs"
};
static const char *const runtime_class_names[NUM_RUNTIME_CLASSES] = {"<10m", "10m-2h", ">2h"};
static const char *const runtime_class_labels[NUM_RUNTIME_CLASSES] = {
	"run < 10 min", "run 10 min-2 h", "run > 2 h"
};

/* The figures of a set of jobs: all of them, or one class. */
typedef struct Figures
{
	int			jobs;			/* in the trace */
	int			finished;		/* of which every member succeeded */
	double		sum_wait;
	double		max_wait;
	double		sum_jct;
} Figures;

/* A job's class by the GPUs it holds in all, its members together. */
static int
gpu_class(const TraceJob *j)
{
	int64_t		gpus = (int64_t) j->gpus * j->gang_size;

	return gpus == 0 ? 0 : gpus == 1 ? 1 : gpus <= 8 ? 2 : 3;
}

/* A job's class by its true runtime (on a worker of speed 1.0). */
static int
runtime_class(const TraceJob *j)
{
	return j->runtime_s < SHORT_RUNTIME_S ? 0 : j->runtime_s <= LONG_RUNTIME_S ? 1 : 2;
}

/*
 * A job's wait: all the time it spent waiting, before its first start and
 * after each preemption until it started again.
 */
static double
job_wait(const TraceJob *j)
{
	return j->first_start - j->submit_s + j->rewait;
}

static void
add_job(Figures *f, const TraceJob *j)
{
	double		wait;

	f->jobs++;
	if (j->failed || j->done < j->gang_size)
		return;
	wait = job_wait(j);
	f->finished++;
	f->sum_wait += wait;
	f->sum_jct += j->last_end - j->submit_s;
	if (wait > f->max_wait)
		f->max_wait = wait;
}

/* One class's figures as a JSON object; the averages are null when none finished. */
static void
print_class_json(const char *name, const Figures *f, bool first)
{
	printf("%s\"%s\":{\"jobs\":%d,\"finished\":%d,", first ? "" : ",", name, f->jobs, f->finished);
	if (f->finished > 0)
		printf("\"avg_wait_s\":%.3f,\"max_wait_s\":%.3f,\"avg_jct_s\":%.3f}",
			   f->sum_wait / f->finished, f->max_wait, f->sum_jct / f->finished);
	else
		printf("\"avg_wait_s\":null,\"max_wait_s\":null,\"avg_jct_s\":null}");
}

/* A duration in seconds, minutes or hours, or "-" for a class where no job finished. */
static void
format_duration(char *buf, size_t size, const Figures *f, double v)
{
	if (f->finished == 0)
		snprintf(buf, size, "-");
	else if (v < 120)
		snprintf(buf, size, "%.0fs", v);
	else if (v < 7200)
		snprintf(buf, size, "%.1fm", v / 60);
	else
		snprintf(buf, size, "%.2fh", v / 3600);
}

static void
print_class_row(const char *label, const Figures *f)
{
	char		avg_wait[32],
				max_wait[32],
				avg_jct[32];

	format_duration(avg_wait, sizeof(avg_wait), f, f->finished ? f->sum_wait / f->finished : 0);
	format_duration(max_wait, sizeof(max_wait), f, f->max_wait);
	format_duration(avg_jct, sizeof(avg_jct), f, f->finished ? f->sum_jct / f->finished : 0);
	fprintf(stderr, "  %-16s %6d %8d %9s %9s %9s\n", label, f->jobs, f->finished,
			avg_wait, max_wait, avg_jct);
}

/* --table: the figures by class, for a reader, on stderr. */
static void
print_table(const Figures *all, const Figures *by_gpus, const Figures *by_runtime,
			int preempted_jobs)
{
	fprintf(stderr, "policy %s%s: %d jobs, %d failed; %d preemptions (%d jobs), %d restarts, "
			"%.0f s of work lost (%.0f GPU-s) at a restart cost of %.0f s\n",
			sim.policy, sim.oracle ? " --oracle" : "", sim.njobs, sim.failed, sim.preemptions,
			preempted_jobs, sim.restarts, sim.work_lost_s, sim.work_lost_gpu_s, sim.restart_cost_s);
	fprintf(stderr, "  %-16s %6s %8s %9s %9s %9s\n", "class", "jobs", "finished", "avg wait",
			"max wait", "avg JCT");
	print_class_row("all", all);
	for (int c = 0; c < NUM_GPU_CLASSES; c++)
		print_class_row(gpu_class_labels[c], &by_gpus[c]);
	for (int c = 0; c < NUM_RUNTIME_CLASSES; c++)
		print_class_row(runtime_class_labels[c], &by_runtime[c]);
}

/* The figures of the replay, as one JSON line on stdout. */
static void
print_figures(double wall_s)
{
	double	   *jct = xmalloc(sizeof(double) * sim.njobs);
	int			n = 0;
	double		sum_jct = 0,
				sum_wait = 0,
				max_wait = 0,
				last_end = sim.jobs[0].submit_s,
				makespan,
				utilization = 0,
				arrivals_s = sim.jobs[sim.njobs - 1].submit_s - sim.jobs[0].submit_s,
				utilization_arrivals = 0;
	int64_t		total_gpus = 0,
				total_cpus = 0;
	Figures		all = {0},
				by_gpus[NUM_GPU_CLASSES] = {{0}},
				by_runtime[NUM_RUNTIME_CLASSES] = {{0}};
	int			preempted_jobs = 0;

	for (int i = 0; i < sim.njobs; i++)
	{
		TraceJob   *j = &sim.jobs[i];

		add_job(&all, j);
		add_job(&by_gpus[gpu_class(j)], j);
		add_job(&by_runtime[runtime_class(j)], j);
		if (j->preemptions > 0)
			preempted_jobs++;
		if (j->done > 0 && j->last_end > last_end)
			last_end = j->last_end;
		if (j->failed || j->done < j->gang_size)
			continue;
		jct[n++] = j->last_end - j->submit_s;
		sum_jct += j->last_end - j->submit_s;
		sum_wait += job_wait(j);
		if (job_wait(j) > max_wait)
			max_wait = job_wait(j);
	}
	makespan = last_end - sim.jobs[0].submit_s;
	for (int w = 0; w < sim.nworkers; w++)
	{
		total_gpus += sim.workers[w].gpus;
		total_cpus += sim.workers[w].cpus;
	}
	if (makespan > 0)
		utilization = total_gpus > 0 ? sim.busy_gpu_s / (total_gpus * makespan) :
			sim.busy_cpu_s / (total_cpus * makespan);
	if (arrivals_s > 0)
		utilization_arrivals = total_gpus > 0 ?
			sim.busy_gpu_arrivals_s / (total_gpus * arrivals_s) :
			sim.busy_cpu_arrivals_s / (total_cpus * arrivals_s);
	qsort(jct, n, sizeof(double), compare_doubles);

	printf("{\"policy\":\"%s\",\"oracle\":%s,\"jobs\":%d,\"failed\":%d,", sim.policy,
		   sim.oracle ? "true" : "false", sim.njobs, sim.failed);
	if (n > 0)
		printf("\"avg_jct_s\":%.3f,\"p95_jct_s\":%.3f,\"avg_wait_s\":%.3f,\"max_wait_s\":%.3f,",
			   sum_jct / n, jct[(int) ceil(0.95 * n) - 1], sum_wait / n, max_wait);
	else
		printf("\"avg_jct_s\":null,\"p95_jct_s\":null,\"avg_wait_s\":null,\"max_wait_s\":null,");
	printf("\"makespan_s\":%.3f,\"utilization\":%.4f,\"utilization_arrivals\":%.4f,"
		   "\"preemptions\":%d,\"never_fit\":%d,\"lease_s\":%.17g,\"heartbeats\":%ld,"
		   "\"steps\":%ld,\"lease_steps\":%ld,\"claims\":%ld,\"wall_s\":%.3f,",
		   makespan, utilization, utilization_arrivals, sim.preemptions, sim.never_fit,
		   sim.lease_s, sim.heartbeats, sim.steps, sim.lease_steps, sim.claims, wall_s);
	printf("\"retrains\":%d,", sim.retrains);
	printf("\"restart_cost_s\":%.17g,\"preempted_jobs\":%d,\"restarts\":%d,"
		   "\"work_lost_s\":%.3f,\"work_lost_gpu_s\":%.3f,",
		   sim.restart_cost_s, preempted_jobs, sim.restarts, sim.work_lost_s, sim.work_lost_gpu_s);
	printf("\"by_gpus\":{");
	for (int c = 0; c < NUM_GPU_CLASSES; c++)
		print_class_json(gpu_class_names[c], &by_gpus[c], c == 0);
	printf("},\"by_runtime\":{");
	for (int c = 0; c < NUM_RUNTIME_CLASSES; c++)
		print_class_json(runtime_class_names[c], &by_runtime[c], c == 0);
	printf("}}\n");
	fflush(stdout);
	if (sim.table)
		print_table(&all, by_gpus, by_runtime, preempted_jobs);
	free(jct);
}

/* Each trace job's outcome, one CSV line per job, for a closer look. */
static void
write_detail(void)
{
	FILE	   *f = fopen(sim.detail_path, "w");

	if (f == NULL)
		fatal("cannot write \"%s\": %s", sim.detail_path, strerror(errno));
	fputs("trace_row,first_id,submit_s,start_s,end_s,wait_s,jct_s,runtime_s,cpus,memory_mb,gpus,"
		  "gpu_type,gang_size,priority,tenant,outcome,worker\n", f);
	for (int i = 0; i < sim.njobs; i++)
	{
		TraceJob   *j = &sim.jobs[i];
		bool		ok = !j->failed && j->done == j->gang_size;

		fprintf(f, "%d,%" PRId64 ",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%" PRId64 ",%d,%s,%d,%s,%s,%s,%s\n",
				j->row, j->first_id, j->submit_s, j->first_start, ok ? j->last_end : -1,
				j->first_start >= 0 ? job_wait(j) : -1,
				ok ? j->last_end - j->submit_s : -1, j->runtime_s, j->cpus, j->memory_mb, j->gpus,
				j->field[COL_GPU_TYPE] ? j->field[COL_GPU_TYPE] : "",
				j->gang_size, j->field[COL_PRIORITY] ? j->field[COL_PRIORITY] : "",
				j->field[COL_TENANT] ? j->field[COL_TENANT] : "", ok ? "succeeded" : "failed",
				j->first_start >= 0 ? sim.workers[j->last_worker].name : "");
	}
	if (fclose(f) != 0)
		fatal("cannot write \"%s\": %s", sim.detail_path, strerror(errno));
}

static void
usage(FILE *out)
{
	fputs("usage: simulate --trace FILE --cluster FILE --policy fifo|tinytemp [--oracle]\n"
		  "                [--conninfo STRING] [--tick SECONDS] [--lease SECONDS]\n"
		  "                [--restart-cost SECONDS] [--progress] [--detail FILE] [--table]\n"
		  "Replays a job trace through tinytemp in a scratch database and prints one JSON line.\n"
		  "  --oracle      pass each job's true runtime as runtime_estimate_s\n"
		  "  --conninfo    where to connect (default: libpq's PG* environment variables)\n"
		  "  --tick        virtual seconds between steps while jobs wait (default 60)\n"
		  "  --lease       the workers' lease, tinytemp.lease_timeout, in virtual seconds\n"
		  "                (default 3600); they heartbeat running jobs before it runs out\n"
		  "  --restart-cost the work, in seconds at speed 1.0, that a preempted job redoes\n"
		  "                when it resumes from its checkpoint (default 60)\n"
		  "  --progress    report progress and failed jobs on stderr\n"
		  "  --detail FILE write each trace job's outcome to FILE as CSV (one line per job;\n"
		  "                a gang's worker is where a member last started)\n"
		  "  --table       also print the figures by class of job as a table on stderr\n", out);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"trace", required_argument, NULL, 't'},
		{"cluster", required_argument, NULL, 'c'},
		{"policy", required_argument, NULL, 'p'},
		{"oracle", no_argument, NULL, 'o'},
		{"conninfo", required_argument, NULL, 'd'},
		{"tick", required_argument, NULL, 'k'},
		{"lease", required_argument, NULL, 'l'},
		{"progress", no_argument, NULL, 'v'},
		{"detail", required_argument, NULL, 'D'},
		{"restart-cost", required_argument, NULL, 'r'},
		{"table", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	struct sigaction sa;
	double		started;
	int			c;

	sim.tick_s = 60;
	sim.lease_s = 3600;
	sim.restart_cost_s = 60;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (c)
		{
			case 't':
				sim.trace_path = optarg;
				break;
			case 'c':
				sim.cluster_path = optarg;
				break;
			case 'p':
				sim.policy = optarg;
				break;
			case 'o':
				sim.oracle = true;
				break;
			case 'd':
				sim.conninfo = optarg;
				break;
			case 'k':
				{
					char	   *end;

					sim.tick_s = strtod(optarg, &end);
					if (end == optarg || *end != '\0' || !(sim.tick_s > 0) || !isfinite(sim.tick_s))
					{
						fprintf(stderr, "simulate: --tick must be a positive number of seconds, not \"%s\"\n",
								optarg);
						return 1;
					}
				}
				break;
			case 'l':
				{
					char	   *end;

					/* tinytemp.lease_timeout is an int of milliseconds, at least 100. */
					sim.lease_s = strtod(optarg, &end);
					if (end == optarg || *end != '\0' || !(sim.lease_s >= 1) ||
						!(sim.lease_s <= INT32_MAX / 1000))
					{
						fprintf(stderr, "simulate: --lease must be from 1 to %d seconds, not \"%s\"\n",
								INT32_MAX / 1000, optarg);
						return 1;
					}
				}
				break;
			case 'r':
				{
					char	   *end;

					sim.restart_cost_s = strtod(optarg, &end);
					if (end == optarg || *end != '\0' || !(sim.restart_cost_s >= 0) ||
						!isfinite(sim.restart_cost_s))
					{
						fprintf(stderr, "simulate: --restart-cost must be a number of seconds >= 0, not \"%s\"\n",
								optarg);
						return 1;
					}
				}
				break;
			case 'T':
				sim.table = true;
				break;
			case 'v':
				sim.progress = true;
				break;
			case 'D':
				sim.detail_path = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 1;
		}
	}
	if (optind < argc || !sim.trace_path || !sim.cluster_path || !sim.policy)
	{
		usage(stderr);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	load_trace();
	load_cluster();
	check_fit();
	setup_database();
	if (interrupted)
		fatal("interrupted");
	started = wall_clock();
	replay();
	print_figures(wall_clock() - started);
	if (sim.detail_path)
		write_detail();
	cleanup();
	return 0;
}

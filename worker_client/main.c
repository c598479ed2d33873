/*
 * main.c
 *	  tinytemp-worker's event loop: register, claim up to the free slots,
 *	  start each job's handler, heartbeat every lease/3, report how each
 *	  job ended, drain on SIGTERM, and ride out lost connections while the
 *	  handlers keep running.
 *
 * One thread does everything except connecting (see db.c).  It sleeps in
 * poll(2) on a self-pipe written by the signal handlers, the handlers'
 * pipes, the metrics endpoint's sockets and the database socket, with the
 * nearest timer as its timeout.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* After the drain, how long undelivered reports may wait for the database. */
#define REPORT_GIVEUP_MS 15000
/* Retry delay for a report or heartbeat the server refused for a passing reason. */
#define RETRY_SOON_MS 1000
/* The longest poll, so that a lost wake-up costs at most this. */
#define MAX_SLEEP_MS 1000

static Config cfg;
static Db	db;
static Hardware hw;
static Job *jobs;
static struct pollfd *pollset;
static int	pollset_size;

static int64_t worker_id = -1;
static bool session_ready = false;	/* registered, lease read, listening */
static bool claim_now = true;	/* claim at the next chance, without waiting for the poll */
static bool ack_and_claim = true;	/* the server has tinytemp_ack_and_claim */
static bool tracking = true;	/* the server has tinytemp_report_metrics and _logs */
static bool dataset_registry = true;	/* the server has tinytemp_register_dataset */
static bool gpu_recording = true;	/* the server has tinytemp_set_gpus */
static bool ever_connected = false;
static int64_t next_claim_ms = 0;
static bool fatal = false;

static int	sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t term_signals = 0;
static volatile sig_atomic_t hup_signal = 0;
static volatile sig_atomic_t chld_signal = 0;
static int	term_handled = 0;
static bool draining = false;
static bool drain_stopped = false;	/* running jobs were told to stop */
static int64_t drain_deadline = 0;
static int64_t giveup_ms = 0;	/* when undelivered reports are abandoned */

/* Signal handler: count the signal and wake the loop through the self-pipe. */
static void
on_signal(int sig)
{
	int			saved_errno = errno;
	char		byte = (char) sig;

	if (sig == SIGTERM || sig == SIGINT)
		term_signals++;
	else if (sig == SIGHUP)
		hup_signal = 1;
	else if (sig == SIGCHLD)
		chld_signal = 1;
	if (write(sig_pipe[1], &byte, 1) < 0)
	{
		/* A full pipe already holds a wake-up. */
	}
	errno = saved_errno;
}

/* Install the signal handlers and the self-pipe they write to. */
static void
setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		fprintf(stderr, "tinytemp-worker: cannot create the signal pipe: %s\n", strerror(errno));
		exit(1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	/* Writing to a handler that closed its stdin must be an EPIPE, not our death. */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Make sure descriptors 0, 1 and 2 are open, so that no pipe of ours lands on them. */
static void
ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
	{
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
		{
			int			nfd = open("/dev/null", O_RDWR);

			if (nfd >= 0 && nfd != fd)
				close(nfd);
		}
	}
}

/* Reap every handler that has exited. */
static void
reap_children(void)
{
	pid_t		pid;
	int			status;

	chld_signal = 0;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		job_reap(pid, status, jobs, cfg.slots);
}

/*
 * Poll the self-pipe, every handler pipe and up to two more descriptors
 * (the database socket, the connector's pipe), then serve whatever is
 * ready except those extra descriptors, whose revents go back to the caller.
 */
static void
poll_and_serve(int nextra, const int *xfd, const short *xev, short *xrev, int timeout_ms)
{
	int			n = 0;
	int			mbase;
	int			base;
	int			rc;
	int			busy = 0;

	pollset[n++] = (struct pollfd) {sig_pipe[0], POLLIN, 0};
	for (int i = 0; i < cfg.slots; i++)
		n += job_pollfds(&jobs[i], pollset + n, pollset_size - n - nextra);
	mbase = n;
	n += metrics_pollfds(pollset + n, pollset_size - n - nextra, now_ms());
	base = n;
	for (int i = 0; i < nextra; i++)
		pollset[n++] = (struct pollfd) {xfd[i], xev[i], 0};

	rc = poll(pollset, (nfds_t) n, timeout_ms < 0 ? 0 : timeout_ms);
	if (rc < 0 && errno != EINTR)
		log_event(NO_JOB, "poll-failed", "%s", strerror(errno));
	for (int i = 0; i < nextra; i++)
		xrev[i] = rc > 0 ? pollset[base + i].revents : 0;
	if (rc > 0 && pollset[0].revents)
	{
		char		buf[64];

		while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
			;
	}
	if (rc > 0)
		for (int i = 0; i < cfg.slots; i++)
			job_service_fds(&jobs[i]);
	if (chld_signal)
		reap_children();
	for (int i = 0; i < cfg.slots; i++)
		if (jobs[i].phase != JOB_FREE)
			busy++;
	metrics_set_state(cfg.slots, busy, db.state == DB_CONNECTED);
	metrics_service(pollset + mbase, now_ms());
}

/* The database's wait hook: wait for its socket while serving the handlers. */
static short
db_wait_hook(int fd, short events, int64_t deadline_ms)
{
	int64_t		left = deadline_ms - now_ms();
	short		rev = 0;

	if (left <= 0)
		return 0;
	poll_and_serve(1, &fd, &events, &rev, (int) (left > MAX_SLEEP_MS ? MAX_SLEEP_MS : left));
	return rev;
}

/* Slots with no job. */
static int
free_slots(void)
{
	int			n = 0;

	for (int i = 0; i < cfg.slots; i++)
		if (jobs[i].phase == JOB_FREE)
			n++;
	return n;
}

/* Whether any slot holds a job. */
static bool
any_jobs(void)
{
	return free_slots() < cfg.slots;
}

/* Whether any handler process or simulated run is still going. */
static bool
any_running(void)
{
	for (int i = 0; i < cfg.slots; i++)
		if (jobs[i].phase == JOB_RUNNING || jobs[i].phase == JOB_STOPPING)
			return true;
	return false;
}

/* Our incarnation is gone (TT001): a newer worker of our name took over. */
static void
worker_replaced(const char *error)
{
	log_event(NO_JOB, "replaced", "worker %" PRId64 " is no longer active (%s); exiting",
			  worker_id, error ? error : "");
	fatal = true;
}

/* Add NAME=value to a job's environment unless value is NULL or too large for it. */
static void
job_env_add(char ***env, size_t *n, const char *name, const char *value)
{
	if (value == NULL || strlen(value) > TT_MAX_ENV_VALUE)
		return;
	*env = xrealloc(*env, (*n + 2) * sizeof(char *));
	(*env)[(*n)++] = xasprintf("%s=%s", name, value);
	(*env)[*n] = NULL;
}

/* The TINYTEMP_* variables of a claimed row. */
static char **
job_env_from_row(const PGresult *res, int row)
{
	static const struct
	{
		int			column;
		const char *name;
	}			vars[] = {
		{CLAIM_ID, "TINYTEMP_JOB_ID"},
		{CLAIM_JOB_TYPE, "TINYTEMP_JOB_TYPE"},
		{CLAIM_ATTEMPTS, "TINYTEMP_ATTEMPT"},
		{CLAIM_MAX_ATTEMPTS, "TINYTEMP_MAX_ATTEMPTS"},
		{CLAIM_PARAMS, "TINYTEMP_PARAMS"},
		{CLAIM_CHECKPOINT, "TINYTEMP_CHECKPOINT"},
		{CLAIM_MODEL, "TINYTEMP_MODEL"},
		{CLAIM_QUEUE, "TINYTEMP_QUEUE"},
		{CLAIM_EPOCHS, "TINYTEMP_EPOCHS"},
		{CLAIM_BATCH_SIZE, "TINYTEMP_BATCH_SIZE"},
		{CLAIM_DATASET_SIZE, "TINYTEMP_DATASET_SIZE"},
	};
	char	  **env = xmalloc(sizeof(char *));
	size_t		n = 0;
	char		id[32];
	const char *row_json = PQgetvalue(res, row, CLAIM_JSON);
	size_t		off;
	size_t		len;

	env[0] = NULL;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		job_env_add(&env, &n, vars[i].name,
					PQgetisnull(res, row, vars[i].column) ? NULL : PQgetvalue(res, row, vars[i].column));
	/*
	 * The job's resolved input datasets: a column since tinytemp 0.7, read
	 * from the row's JSON so that an older server's rows need no other query.
	 */
	if (json_object_member(row_json, strlen(row_json), "inputs", &off, &len) &&
		!(len == 4 && memcmp(row_json + off, "null", 4) == 0))
	{
		char	   *inputs = xstrndup(row_json + off, len);

		job_env_add(&env, &n, "TINYTEMP_INPUTS", inputs);
		free(inputs);
	}
	snprintf(id, sizeof(id), "%" PRId64, worker_id);
	job_env_add(&env, &n, "TINYTEMP_WORKER_ID", id);
	job_env_add(&env, &n, "TINYTEMP_WORKER_NAME", cfg.name);
	return env;
}

/*
 * Give the job its GPUs: the lowest free ones of the worker's, in
 * CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES (with CUDA_DEVICE_ORDER
 * set so that CUDA numbers them as nvidia-smi does) and TINYTEMP_GPUS.  A
 * job without GPUs gets CUDA_VISIBLE_DEVICES empty (CUDA sees none) and
 * NVIDIA_VISIBLE_DEVICES=void (a GPU container runtime adds neither GPUs
 * nor driver).  False, with *error, when fewer GPUs are free than the job
 * needs: the server counts the GPUs of the jobs it hands out, so that
 * happens only while a handler of a job the server no longer counts
 * (cancelled, preempted, lost) is still stopping.
 */
static bool
assign_gpus(Job *job, char **error)
{
	size_t		n = strv_len(job->env);
	const char *list;

	if (job->gpus > 0 && !gpu_pool_take(job->gpus, &job->gpu_indices))
	{
		*error = xasprintf("not enough free GPUs on worker \"%s\": the job needs %d, %d of its %d are free",
						   cfg.name, job->gpus, gpu_pool_free_count(), hw.gpus);
		return false;
	}
	job->gpu_list = gpu_list_text(job->gpu_indices, job->gpu_indices ? job->gpus : 0, ",");
	list = job->gpu_list;
	job_env_add(&job->env, &n, "CUDA_VISIBLE_DEVICES", list);
	job_env_add(&job->env, &n, "NVIDIA_VISIBLE_DEVICES", list[0] ? list : "void");
	job_env_add(&job->env, &n, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
	job_env_add(&job->env, &n, "TINYTEMP_GPUS", list);
	return true;
}

/* Put a claimed row in a free slot and start its handler. */
static void
start_job(Job *job, const PGresult *res, int row, int64_t now)
{
	const Handler *h;
	char	   *error = NULL;
	long long	v;

	job_reset(job);
	job->track = tracking;
	job->log_max_lines = cfg.log_max_lines;
	job->log_max_bytes = cfg.log_max_bytes;
	job->id = strtoll(PQgetvalue(res, row, CLAIM_ID), NULL, 10);
	job->attempt = atoi(PQgetvalue(res, row, CLAIM_ATTEMPTS));
	job->max_attempts = atoi(PQgetvalue(res, row, CLAIM_MAX_ATTEMPTS));
	job->job_type = xstrdup(PQgetvalue(res, row, CLAIM_JOB_TYPE));
	job->json = xstrdup(PQgetvalue(res, row, CLAIM_JSON));
	job->env = job_env_from_row(res, row);
	job->cpus = parse_int(PQgetvalue(res, row, CLAIM_CPUS), 1, INT32_MAX, &v) ? (int) v : 1;
	job->memory_mb = parse_int(PQgetvalue(res, row, CLAIM_MEMORY_MB), 1, LLONG_MAX, &v) ? v : 0;
	job->gpus = parse_int(PQgetvalue(res, row, CLAIM_GPUS), 0, INT32_MAX, &v) ? (int) v : 0;
	if (!PQgetisnull(res, row, CLAIM_CHECKPOINT))
		job->saved_checkpoint = xstrdup(PQgetvalue(res, row, CLAIM_CHECKPOINT));
	job->heartbeat_ms = now + db.lease_ms / 3;
	job->kill_grace_s = cfg.kill_grace_s;
	job->phase = JOB_RUNNING;
	log_event(job->id, "claimed", "job_type=%s attempt=%d/%d cpus=%d memory_mb=%lld gpus=%d",
			  job->job_type, job->attempt, job->max_attempts, job->cpus, job->memory_mb, job->gpus);

	h = config_find_handler(&cfg.handlers, job->job_type);
	if (h == NULL)
	{
		job_finish(job, REPORT_FAIL, NULL,
				   xasprintf("no handler for job_type \"%s\" on worker \"%s\"", job->job_type, cfg.name),
				   false);
		return;
	}
	if (h->simulate)
	{
		const char *runtime = PQgetisnull(res, row, CLAIM_RUNTIME_S) ? "0" : PQgetvalue(res, row, CLAIM_RUNTIME_S);

		if (!parse_seconds(runtime, &job->sim_runtime_s))
		{
			job_finish(job, REPORT_FAIL, NULL,
					   xasprintf("simulate: params.runtime_s is not a non-negative number: \"%s\"", runtime),
					   false);
			return;
		}
		if (!PQgetisnull(res, row, CLAIM_FAIL_ATTEMPTS) &&
			parse_int(PQgetvalue(res, row, CLAIM_FAIL_ATTEMPTS), 0, 1000000, &v))
			job->sim_fail = job->attempt <= v;
	}
	if (!assign_gpus(job, &error))
	{
		log_event(job->id, "gpus-busy", "%s", error);
		job_finish(job, REPORT_FAIL, NULL, error, true);
		return;
	}
	if (!job_start(job, h, &error))
	{
		job_release(job);
		job_finish(job, REPORT_FAIL, NULL, error, true);
		return;
	}
	/* The GPUs are recorded on the job (tinytemp_set_gpus) before anything else is reported. */
	job->gpus_to_record = job->gpus > 0 && gpu_recording;
	if (job->simulate)
		log_event(job->id, "started", "simulate runtime_s=%g%s%s", job->sim_runtime_s,
				  job->gpu_list[0] ? " gpus=" : "", job->gpu_list);
}

/* The job is no longer ours (TT003): stop its handler and report nothing. */
static void
lease_lost(Job *job, const char *error)
{
	log_event(job->id, "lease-lost", "%s", error);
	if (job->phase == JOB_STOPPING)
		job->stop = STOP_LEASE_LOST;
	else if (job->phase == JOB_DONE)
		job->report = REPORT_NONE;
	job_stop(job, STOP_LEASE_LOST, now_ms());
}

/*
 * A job we have just claimed cannot still be ours in another slot: that run
 * lost the job without hearing it (its lease ran out, or the planner put it
 * back, and the claim took it again).  Stop that run and report nothing
 * for it.
 */
static void
drop_earlier_run(int64_t job_id)
{
	for (int i = 0; i < cfg.slots; i++)
	{
		Job		   *job = &jobs[i];

		if (job->phase == JOB_FREE || job->id != job_id || job->stop == STOP_LEASE_LOST ||
			(job->phase == JOB_DONE && job->report == REPORT_NONE))
			continue;
		lease_lost(job, "claimed again: the run in this slot is no longer ours");
	}
}

/*
 * Record the GPUs of the jobs just started on their rows, with
 * tinytemp_set_gpus, so that a job's ack or fail never overtakes it.
 * TT003 means the job is no longer ours; a server older than 0.7 lacks the
 * call (42883), which is said once, and jobs run as before.
 */
static void
record_gpus(int64_t now)
{
	for (int i = 0; i < cfg.slots && db.state == DB_CONNECTED && session_ready && !fatal; i++)
	{
		Job		   *job = &jobs[i];
		char	   *error = NULL;
		DbOutcome	o;

		if (!job->gpus_to_record || now < job->gpus_record_ms)
			continue;
		if (!gpu_recording || job->phase == JOB_FREE || job->stop == STOP_LEASE_LOST ||
			(job->phase == JOB_DONE && job->report == REPORT_NONE))
		{
			job->gpus_to_record = false;
			continue;
		}
		/* The GPUs may be free again already (a quick handler): gpu_list stays with the job. */
		o = db_set_gpus(&db, worker_id, job->id, job->gpu_list, &error);
		switch (o)
		{
			case DB_OK:
				job->gpus_to_record = false;
				log_debug(job->id, "gpus-recorded", "%d GPUs", job->gpus);
				break;
			case DB_LOST:
				break;
			case DB_NOT_HELD:
				job->gpus_to_record = false;
				lease_lost(job, error);
				break;
			case DB_NOT_WORKER:
				worker_replaced(error);
				break;
			case DB_UNSUPPORTED:
				gpu_recording = false;
				log_event(NO_JOB, "warning", "the server cannot record the jobs' GPUs (tinytemp_set_gpus,"
						  " tinytemp 0.7: ALTER EXTENSION tinytemp UPDATE); not recording them");
				for (int k = 0; k < cfg.slots; k++)
					jobs[k].gpus_to_record = false;
				break;
			case DB_TRANSIENT:
				log_event(job->id, "gpus-retry", "%s", error);
				job->gpus_record_ms = now + RETRY_SOON_MS;
				break;
			default:
				log_event(job->id, "gpus-refused", "%s; not recording the job's GPUs", error);
				job->gpus_to_record = false;
				break;
		}
		free(error);
	}
}

/* Start the claimed jobs of res in free slots, and clear res; returns how many. */
static int
start_claimed(PGresult *res)
{
	int			got = PQntuples(res);

	for (int row = 0, slot = 0; row < got && slot < cfg.slots; slot++)
	{
		if (jobs[slot].phase != JOB_FREE)
			continue;
		drop_earlier_run(strtoll(PQgetvalue(res, row, CLAIM_ID), NULL, 10));
		start_job(&jobs[slot], res, row, now_ms());
		row++;
	}
	PQclear(res);
	return got;
}

/* The next claim without a wake-up: a poll interval from now, with a little jitter. */
static void
schedule_next_claim(int64_t now)
{
	claim_now = false;
	db.notified = false;
	/* A little jitter keeps workers that started together from polling in step. */
	next_claim_ms = now + (int64_t) (cfg.poll_interval_s * 1000.0 * (0.9 + 0.2 * random_unit()));
}

/* Claim as many jobs as there are free slots, when it is time to. */
static void
maybe_claim(int64_t now)
{
	int			want = free_slots();
	PGresult   *res;
	char	   *error = NULL;
	DbOutcome	o;
	int			got;

	if (draining || want == 0 || db.state != DB_CONNECTED)
		return;
	if (!claim_now && !db.notified && now < next_claim_ms)
		return;
	schedule_next_claim(now);

	o = db_claim(&db, worker_id, want, &res, &error);
	if (o != DB_OK)
	{
		if (o == DB_NOT_WORKER)
			worker_replaced(error);
		else if (o != DB_LOST)
		{
			log_event(NO_JOB, "claim-failed", "%s", error);
			next_claim_ms = now + RETRY_SOON_MS;
		}
		free(error);
		return;
	}
	got = start_claimed(res);
	log_debug(NO_JOB, "claim", "asked for %d, got %d", want, got);
}

/* The job has left its slot: count how it ended, and free the slot. */
static void
job_done(Job *job, JobOutcome outcome)
{
	metrics_count_job(outcome);
	job_reset(job);
	claim_now = true;
}

/*
 * The server lacks tinytemp_report_metrics or tinytemp_report_logs
 * (42883: tinytemp before 0.6): say so once, and neither collect nor send
 * metric records and log lines any more.  Jobs run as before.
 */
static void
tracking_unsupported(void)
{
	if (!tracking)
		return;
	tracking = false;
	log_event(NO_JOB, "warning", "the server lacks experiment tracking (tinytemp_report_metrics and"
			  " tinytemp_report_logs, tinytemp 0.6: ALTER EXTENSION tinytemp UPDATE); not sending"
			  " the handlers' metrics and logs");
	for (int i = 0; i < cfg.slots; i++)
		job_drop_tracking(&jobs[i]);
}

/*
 * Send a job's unsent log lines (logs) or metric records, as one JSON array.
 * The list is taken out of the job first, since the handler may print more
 * while the query waits; after a lost connection or a passing refusal it
 * goes back in front of what came meanwhile, for the next try.  A batch the
 * server refuses otherwise is logged and dropped; TT003 and TT001 are the
 * caller's to act on, with *error.
 */
static DbOutcome
send_tracking_batch(Job *job, bool logs, char **error)
{
	StrBuf	   *list = logs ? &job->logs_out : &job->metrics_out;
	int		   *count = logs ? &job->logs_n : &job->metrics_n;
	const char *what = logs ? "log lines" : "metric records";
	StrBuf		taken = *list;
	int			n = *count;
	int			values = job->metrics_values;
	StrBuf		batch;
	long long	kept = 0;
	DbOutcome	o;

	if (n == 0)
		return DB_OK;
	memset(list, 0, sizeof(*list));
	*count = 0;
	if (!logs)
		job->metrics_values = 0;
	sb_init(&batch);
	sb_appends(&batch, "[");
	sb_append(&batch, taken.data, taken.len);
	sb_appends(&batch, "]");
	if (logs)
		o = db_report_logs(&db, worker_id, job->id, batch.data, &kept, error);
	else
		o = db_report_metrics(&db, worker_id, job->id, batch.data, &kept, error);
	sb_free(&batch);
	switch (o)
	{
		case DB_OK:
			log_debug(job->id, logs ? "logs-sent" : "metrics-sent", "%d %s, %lld rows kept", n, what, kept);
			break;
		case DB_TRANSIENT:
			log_event(job->id, logs ? "logs-retry" : "metrics-retry", "%s", *error);
			/* FALLTHROUGH */
		case DB_LOST:
			if (!job->track)
				break;
			if (list->data)
			{
				sb_appends(&taken, ", ");
				sb_append(&taken, list->data, list->len);
				sb_free(list);
			}
			*list = taken;
			*count += n;
			if (!logs)
				job->metrics_values += values;
			return o;
		case DB_UNSUPPORTED:
			tracking_unsupported();
			break;
		case DB_NOT_HELD:
		case DB_NOT_WORKER:
			break;
		default:
			log_event(job->id, logs ? "logs-refused" : "metrics-refused", "%s; dropping %d %s",
					  *error, n, what);
			break;
	}
	sb_free(&taken);
	return o;
}

/*
 * Send a job's unsent metric records, then its log lines; when `final` (the
 * handler has ended) with the "(N more lines not kept)" line if lines were
 * not kept.  Returns DB_OK unless the caller has to act: DB_LOST,
 * DB_TRANSIENT (what was not sent is kept), DB_NOT_HELD (what was not sent
 * is dropped), DB_NOT_WORKER; with *error then.
 */
static DbOutcome
flush_tracking(Job *job, bool final, char **error)
{
	DbOutcome	o = DB_OK;

	if (!job->track)
		return DB_OK;
	if (job->metrics_dropped > 0)
	{
		log_event(job->id, "metrics-dropped", "%lld metric records: more than %d values or %d MiB"
				  " between two heartbeats", job->metrics_dropped, TT_METRICS_BUFFER_VALUES,
				  TT_METRICS_BUFFER_BYTES / (1024 * 1024));
		job->metrics_dropped = 0;
	}
	if (final)
		job_add_log_note(job);
	for (int logs = 0; logs <= 1 && job->track; logs++)
	{
		o = send_tracking_batch(job, logs == 1, error);
		if (o == DB_LOST || o == DB_TRANSIENT || o == DB_NOT_HELD || o == DB_NOT_WORKER)
			break;
		free(*error);
		*error = NULL;
		o = DB_OK;
	}
	if (o == DB_NOT_HELD)
		job_drop_tracking(job);
	return o;
}

/*
 * What a send just before a job's report (its checkpoint, its tracking)
 * means for the report: 0 it may go now; 1 the job is dealt with for now
 * (TT003: the report would be discarded too, so the job is dropped; or a
 * passing refusal: retried soon); -1 nothing more can be sent (the
 * connection broke, or TT001).
 */
static int
before_report(Job *job, int status, const char *error, int64_t now)
{
	switch (status)
	{
		case DB_LOST:
			return -1;
		case DB_NOT_WORKER:
			worker_replaced(error);
			return -1;
		case DB_NOT_HELD:
			log_event(job->id, "report-discarded", "%s", error);
			job_done(job, OUTCOME_LOST);
			return 1;
		case DB_TRANSIENT:
			job->report_ms = now + RETRY_SOON_MS;
			return 1;
		default:
			return 0;
	}
}

/*
 * Before a job's report (its ack, its fail, or the checkpoint that hands a
 * preempted job back), send what remains of its metric records and log
 * lines, so that they are in the tables before the job is finished.
 * Returns as flush_checkpoint does.
 */
static int
flush_final_tracking(Job *job, int64_t now)
{
	char	   *error = NULL;
	int			status;
	int			ret;

	if (!job->track)
		return 0;
	status = flush_tracking(job, true, &error);
	ret = before_report(job, status, error, now);
	free(error);
	return ret;
}

/*
 * Save the job's latest unsaved checkpoint with tinytemp_checkpoint.  It is
 * kept for another try when the connection broke or the server refused it
 * for a passing reason (unless a newer one came meanwhile); a value the
 * server refuses, or any other error, drops it with a log line.  TT003 and
 * TT001 are the caller's to act on, with *error.
 */
static DbOutcome
save_checkpoint(Job *job, char **error)
{
	char	   *checkpoint = job->checkpoint;
	DbOutcome	o;

	/* The handler may print a newer one while the query waits. */
	job->checkpoint = NULL;
	o = db_checkpoint(&db, worker_id, job->id, checkpoint, error);
	switch (o)
	{
		case DB_OK:
			log_event(job->id, "checkpointed", "%zu bytes", strlen(checkpoint));
			free(job->saved_checkpoint);
			job->saved_checkpoint = checkpoint;
			checkpoint = NULL;
			break;
		case DB_TRANSIENT:
			log_event(job->id, "checkpoint-retry", "%s", *error);
			/* FALLTHROUGH */
		case DB_LOST:
			if (job->checkpoint == NULL)
			{
				job->checkpoint = checkpoint;
				checkpoint = NULL;
			}
			break;
		case DB_NOT_HELD:
		case DB_NOT_WORKER:
			break;
		default:
			log_event(job->id, "checkpoint-refused", "%s; dropping this checkpoint", *error);
			break;
	}
	free(checkpoint);
	return o;
}

/*
 * Before a job's ack or fail, save its latest unsaved checkpoint, so that a
 * failure after a checkpoint keeps it for the next attempt.  Not once a
 * heartbeat answered 'preempt' (the job ended by itself meanwhile, or timed
 * out while stopping): the checkpoint would put the job back in the queue
 * and get the report refused, so it is dropped.  Returns 0 when the report
 * may go now; 1 when the job is dealt with for now (TT003: the report would
 * be discarded too, so the job is dropped; or a passing refusal: retried
 * soon); -1 when nothing more can be sent (the connection broke, or TT001).
 */
static int
flush_checkpoint(Job *job, int64_t now)
{
	char	   *error = NULL;
	int			status;
	int			ret;

	if (job->checkpoint == NULL)
		return 0;
	if (job->preempt_asked)
	{
		log_event(job->id, "checkpoint-dropped", "the job is being preempted; reporting how it ended");
		free(job->checkpoint);
		job->checkpoint = NULL;
		return 0;
	}
	/* Saved, or dropped for good: the report goes. */
	status = save_checkpoint(job, &error);
	ret = before_report(job, status, error, now);
	free(error);
	return ret;
}

/* One heartbeat, its round trip observed when the server answered. */
static DbOutcome
heartbeat(Job *job, const char *progress, char **answer, char **error)
{
	int64_t		start = now_us();
	DbOutcome	o = db_heartbeat(&db, worker_id, job->id, progress, answer, error);

	if (o != DB_LOST)
		metrics_observe_heartbeat((double) (now_us() - start) / 1e6);
	return o;
}

/*
 * Heartbeat the jobs whose time has come, act on the answers, then save the
 * job's latest unsaved checkpoint, so at most one per heartbeat, and send
 * its metric records and log lines the same way.  The heartbeat goes
 * first: once it has answered 'preempt', a save puts the job back in the
 * queue, so a preempted job's checkpoint waits until its handler has
 * stopped (see send_preempted), and a cancelled job's is not wanted.  A job
 * that is no longer ours is not heartbeaten.
 */
static void
send_heartbeats(int64_t now)
{
	for (int i = 0; i < cfg.slots && db.state == DB_CONNECTED && !fatal; i++)
	{
		Job		   *job = &jobs[i];
		char	   *answer = NULL;
		char	   *error = NULL;
		DbOutcome	o;

		if ((job->phase != JOB_RUNNING && job->phase != JOB_STOPPING) ||
			job->stop == STOP_LEASE_LOST || now < job->heartbeat_ms)
			continue;
		o = heartbeat(job, job->progress, &answer, &error);
		if (o == DB_BAD_INPUT && job->progress)
		{
			log_event(job->id, "progress-refused", "%s", error);
			free(error);
			free(job->progress);
			job->progress = NULL;
			o = heartbeat(job, NULL, &answer, &error);
		}
		job->heartbeat_ms = now_ms() + db.lease_ms / 3;
		switch (o)
		{
			case DB_OK:
				if (job->progress)
				{
					free(job->progress);
					job->progress = NULL;
				}
				log_debug(job->id, "heartbeat", "answer=%s", answer);
				if (strcmp(answer, "cancel") == 0)
				{
					log_event(job->id, "cancel", "the job was cancelled");
					if (job->phase == JOB_STOPPING)
						job->stop = STOP_CANCEL;
					else if (job->phase == JOB_DONE)
						job->report = REPORT_NONE;	/* ended meanwhile: nothing to say */
					job_stop(job, STOP_CANCEL, now_ms());
				}
				else if (strcmp(answer, "preempt") == 0)
				{
					if (!job->preempt_asked)
						log_event(job->id, "preempt", "the scheduler preempts the job");
					job->preempt_asked = true;
					/* A preempted job goes back to the queue without using up an attempt. */
					if (job->phase == JOB_STOPPING && job->stop == STOP_SHUTDOWN)
						job->stop = STOP_PREEMPT;
					job_stop(job, STOP_PREEMPT, now_ms());
				}
				else if (strcmp(answer, "continue") != 0)
					log_event(job->id, "heartbeat", "unexpected answer \"%s\"", answer);
				break;
			case DB_NOT_HELD:
				lease_lost(job, error);
				break;
			case DB_NOT_WORKER:
				worker_replaced(error);
				break;
			case DB_LOST:
				break;
			default:
				log_event(job->id, "heartbeat-failed", "%s", error);
				job->heartbeat_ms = now_ms() + (db.lease_ms / 3 < RETRY_SOON_MS ? db.lease_ms / 3 : RETRY_SOON_MS);
				break;
		}
		free(answer);
		free(error);
		error = NULL;

		if (o == DB_OK && job->checkpoint && !job->preempt_asked &&
			(job->phase == JOB_RUNNING || job->phase == JOB_STOPPING) &&
			job->stop != STOP_CANCEL && job->stop != STOP_LEASE_LOST)
		{
			o = save_checkpoint(job, &error);
			if (o == DB_NOT_HELD)
				lease_lost(job, error);
			else if (o == DB_NOT_WORKER)
				worker_replaced(error);
			free(error);
			error = NULL;
		}

		if (o == DB_OK && job->track && (job->phase == JOB_RUNNING || job->phase == JOB_STOPPING) &&
			job->stop != STOP_CANCEL && job->stop != STOP_LEASE_LOST)
		{
			o = flush_tracking(job, false, &error);
			if (o == DB_NOT_HELD)
				lease_lost(job, error);
			else if (o == DB_NOT_WORKER)
				worker_replaced(error);
			free(error);
		}
	}
}

/*
 * Act on the outcome `o` of a job's last report (its ack, fail, or the
 * checkpoint that hands a preempted job back), whose error text is
 * `error` (freed here): the job is done with, unless the report must wait
 * for the connection (returns false) or be retried soon.  `giving_up`
 * ends the log line of a report refused for good.
 */
static bool
settle_report(Job *job, DbOutcome o, char *error, int64_t now, const char *giving_up)
{
	JobOutcome	outcome = OUTCOME_LOST;

	switch (o)
	{
		case DB_OK:
			outcome = job->report == REPORT_ACK ? OUTCOME_SUCCEEDED :
				job->report == REPORT_FAIL ? OUTCOME_FAILED : OUTCOME_PREEMPTED;
			break;
		case DB_LOST:
			free(error);
			return false;
		case DB_NOT_HELD:
			log_event(job->id, "report-discarded", "%s", error);
			break;
		case DB_NOT_WORKER:
			worker_replaced(error);
			free(error);
			return false;
		case DB_TRANSIENT:
			log_event(job->id, "report-retry", "%s", error);
			job->report_ms = now + RETRY_SOON_MS;
			free(error);
			return true;
		default:
			log_event(job->id, "report-failed", "%s; %s", error, giving_up);
			break;
	}
	free(error);
	job_done(job, outcome);
	return true;
}

/*
 * A preempted job's handler has stopped: save its checkpoint, which puts
 * the job back in the queue without using up an attempt.  That is the
 * handler's latest (a refused one gives way to the one before), else the
 * one the job was claimed with, else {}.  The job is then no longer ours:
 * nothing else is reported.  TT003 means it was put back already (the
 * scheduler's grace ran out): it is dropped.  Returns false when the
 * checkpoint must wait for the connection.
 */
static bool
send_preempted(Job *job, int64_t now)
{
	const char *checkpoint;
	char	   *error = NULL;
	DbOutcome	o;
	int			flushed = flush_final_tracking(job, now);

	if (flushed != 0)
		return flushed > 0;
	for (;;)
	{
		checkpoint = job->checkpoint ? job->checkpoint :
			job->saved_checkpoint ? job->saved_checkpoint : "{}";
		o = db_checkpoint(&db, worker_id, job->id, checkpoint, &error);
		if (o != DB_BAD_INPUT || job->checkpoint == NULL)
			break;
		log_event(job->id, "checkpoint-refused", "%s; saving the one before", error);
		free(error);
		error = NULL;
		free(job->checkpoint);
		job->checkpoint = NULL;
	}

	if (o == DB_OK)
		log_event(job->id, "preempted", "after %.3fs; checkpoint of %zu bytes saved, the job is back in the queue",
				  (double) (now - job->started_ms) / 1000.0, strlen(checkpoint));
	return settle_report(job, o, error, now, "giving up on this checkpoint");
}

/*
 * The server lacks tinytemp_register_dataset (42883: tinytemp before 0.7):
 * say so once.  Jobs are acked as before, their datasets not registered.
 */
static void
dataset_registry_unsupported(void)
{
	if (!dataset_registry)
		return;
	dataset_registry = false;
	log_event(NO_JOB, "warning", "the server has no dataset registry (tinytemp_register_dataset,"
			  " tinytemp 0.7: ALTER EXTENSION tinytemp UPDATE); acking jobs without registering"
			  " the datasets their handlers print");
}

/* Ack a job with tinytemp_ack; a result the server refuses gives way to none. */
static DbOutcome
ack_plain(Job *job, char **error)
{
	DbOutcome	o = db_ack(&db, worker_id, job->id, job->result, error);

	if (o == DB_BAD_INPUT && job->result)
	{
		log_event(job->id, "result-refused", "%s; acking without a result", *error);
		free(*error);
		*error = NULL;
		free(job->result);
		job->result = NULL;
		o = db_ack(&db, worker_id, job->id, NULL, error);
	}
	return o;
}

/*
 * Ack a job, with the datasets its handler printed: all registered and the
 * job acked in one transaction (db_ack_datasets), or none.  A result or a
 * dataset the server refuses makes the first try fail; without the result
 * a refused dataset fails again, and a refused result was the reason (it
 * gives way to none, as in ack_plain).  A refused dataset fails the attempt
 * for good, since the handler's output is at fault: the report becomes that
 * failure, for the caller to send, and DB_BAD_INPUT is returned.  Against a
 * server without the dataset registry the job is acked without them.
 * Otherwise the datasets stay with the job until the ack goes through, and
 * a statement that met a lost connection or a passing error is sent again
 * whole (after a commit whose answer was lost, the job is no longer held:
 * TT003, and nothing is registered twice).
 */
static DbOutcome
ack_job(Job *job, char **error)
{
	StrBuf		list;
	char	   *version = NULL;
	char	   *names = NULL;
	char	   *refused_result = NULL;
	DbOutcome	o;

	if (job->datasets_n > 0 && !dataset_registry)
	{
		log_event(job->id, "datasets-not-registered", "%d datasets: the server has no dataset registry",
				  job->datasets_n);
		job_drop_datasets(job);
	}
	if (job->datasets_n == 0)
		return ack_plain(job, error);

	sb_init(&list);
	sb_appends(&list, "[");
	sb_append(&list, job->datasets.data, job->datasets.len);
	sb_appends(&list, "]");
	o = db_ack_datasets(&db, worker_id, job->id, job->result, list.data, &version, &names, error);
	if (o == DB_BAD_INPUT && job->result)
	{
		refused_result = *error;
		*error = NULL;
		o = db_ack_datasets(&db, worker_id, job->id, NULL, list.data, &version, &names, error);
		if (o == DB_OK)
		{
			log_event(job->id, "result-refused", "%s; acked without a result", refused_result);
			free(job->result);
			job->result = NULL;
		}
	}
	sb_free(&list);

	switch (o)
	{
		case DB_OK:
			/* The server gives the version of the last one. */
			for (char *name = names; name && *name;)
			{
				char	   *end = name + strcspn(name, "\n");
				bool		last = *end == '\0';

				*end = '\0';
				log_event(job->id, "dataset-registered", "name=%s%s%s", name,
						  last ? " version=" : "", last ? version : "");
				name = last ? end : end + 1;
			}
			if (job->datasets_ignored > 0)
				log_event(job->id, "datasets-ignored", "%lld datasets past the bounds were not registered",
						  job->datasets_ignored);
			job_drop_datasets(job);
			break;
		case DB_UNSUPPORTED:
			dataset_registry_unsupported();
			log_event(job->id, "datasets-not-registered", "%d datasets: the server has no dataset registry",
					  job->datasets_n);
			job_drop_datasets(job);
			free(*error);
			*error = NULL;
			o = ack_plain(job, error);
			break;
		case DB_BAD_INPUT:
			log_event(job->id, "datasets-refused", "%s; failing the attempt, no dataset registered", *error);
			free(job->error);
			job->error = xasprintf("dataset registration refused: %s",
								   db.server_message ? db.server_message : *error);
			job->retryable = false;
			job->report = REPORT_FAIL;
			free(job->result);
			job->result = NULL;
			job_drop_datasets(job);
			break;
		default:
			break;
	}
	free(refused_result);
	free(version);
	free(names);
	return o;
}

/* Send the report of one finished job; returns false when it must wait for the connection. */
static bool
send_report(Job *job, int64_t now)
{
	char	   *error = NULL;
	char	   *state = NULL;
	DbOutcome	o = DB_OK;
	int			flushed;

	if (job->report == REPORT_PREEMPTED)
		return send_preempted(job, now);
	flushed = flush_checkpoint(job, now);
	if (flushed == 0)
		flushed = flush_final_tracking(job, now);
	if (flushed != 0)
		return flushed > 0;
	if (job->report == REPORT_ACK)
	{
		o = ack_job(job, &error);
		if (o == DB_OK)
			log_event(job->id, "acked", "after %.3fs%s", (double) (now - job->started_ms) / 1000.0,
					  job->result ? " with a result" : "");
	}
	/* Also an ack turned into a failure by a refused dataset. */
	if (job->report == REPORT_FAIL)
	{
		free(error);
		error = NULL;
		o = db_fail(&db, worker_id, job->id, job->error, job->retryable, &state, &error);
		if (o == DB_OK)
			log_event(job->id, "failed", "new_state=%s retryable=%s error=%s", state,
					  job->retryable ? "yes" : "no", job->error);
	}
	free(state);
	return settle_report(job, o, error, now, "giving up on this report");
}

/*
 * Whether a job's ack is ready to go now (not waiting out a retry delay),
 * in a batch: a job with datasets to register is acked alone, in the same
 * transaction as their registration (see ack_job).
 */
static bool
ack_due(const Job *job, int64_t now)
{
	return job->phase == JOB_DONE && job->report == REPORT_ACK && now >= job->report_ms &&
		job->datasets_n == 0 && !job->gpus_to_record;
}

/*
 * Ack in one statement, hence one commit, the jobs whose handlers have
 * succeeded by now: commits are what bound throughput, and one per job
 * wastes them when several jobs end together.  Only what has already
 * finished goes; no ack waits for another job.  A refused batch acked
 * nothing (tinytemp_ack_many is all or nothing): on TT003 (one of the jobs
 * moved on), a result the server rejects or any other refusal, send_report
 * takes the jobs one by one, which acks those still held and logs and
 * drops the others as it always has.
 */
static void
send_ack_batch(int64_t now)
{
	Job		  **batch;
	int64_t    *ids;
	const char **results;
	char	   *error = NULL;
	DbOutcome	o = DB_ERROR;
	int			n = 0;
	PGresult   *claimed = NULL;
	int			want = 0;
	bool		combine = ack_and_claim && !draining;	/* claim in the same call */

	if (db.state != DB_CONNECTED || !session_ready || fatal)
		return;
	/* Each job's latest checkpoint, metric records and log lines are saved before its ack. */
	for (int i = 0; i < cfg.slots; i++)
	{
		if (ack_due(&jobs[i], now) && jobs[i].checkpoint && flush_checkpoint(&jobs[i], now) < 0)
			return;
		if (ack_due(&jobs[i], now) && jobs[i].track && flush_final_tracking(&jobs[i], now) < 0)
			return;
	}
	for (int i = 0; i < cfg.slots; i++)
		if (ack_due(&jobs[i], now))
			n++;
	/* A lone ack goes through send_report and tinytemp_ack, unless it can claim too. */
	if (n == 0 || (n == 1 && !combine))
		return;

	batch = xmalloc((size_t) n * sizeof(Job *));
	ids = xmalloc((size_t) n * sizeof(int64_t));
	results = xmalloc((size_t) n * sizeof(char *));
	n = 0;
	for (int i = 0; i < cfg.slots && n < TT_MAX_ACKS_PER_CALL; i++)
	{
		if (!ack_due(&jobs[i], now))
			continue;
		batch[n] = &jobs[i];
		ids[n] = jobs[i].id;
		results[n] = jobs[i].result;
		n++;
	}

	/*
	 * The slots of the acked jobs are free at once: claim their next jobs
	 * (and any for slots already free) in the same call and commit.
	 */
	if (combine)
	{
		want = free_slots() + n;
		o = db_ack_and_claim(&db, worker_id, n, ids, results, want, &claimed, &error);
		if (o == DB_UNSUPPORTED)
		{
			log_event(NO_JOB, "warning", "the server lacks tinytemp_ack_and_claim (%s);"
					  " acking and claiming in two calls", error);
			ack_and_claim = combine = false;
			free(error);
			error = NULL;
		}
	}
	if (!combine && n > 1)
		o = db_ack_many(&db, worker_id, n, ids, results, &error);
	if (combine || n > 1)		/* else a lone ack goes through send_report */
		switch (o)
		{
			case DB_OK:
				for (int i = 0; i < n; i++)
				{
					Job		   *job = batch[i];

					log_event(job->id, "acked", "after %.3fs%s batch=%d",
							  (double) (now - job->started_ms) / 1000.0,
							  job->result ? " with a result" : "", n);
					metrics_count_job(OUTCOME_SUCCEEDED);
					job_reset(job);
				}
				if (claimed)
				{
					int			got;

					schedule_next_claim(now);
					got = start_claimed(claimed);
					log_debug(NO_JOB, "claim", "acked %d and asked for %d, got %d", n, want, got);
				}
				else
					claim_now = true;
				break;
			case DB_LOST:
				break;			/* every ack waits for the connection */
			case DB_NOT_WORKER:
				worker_replaced(error);
				break;
			default:
				log_event(NO_JOB, "batch-ack-refused", "%s; acking the %d jobs one by one", error, n);
				for (int i = 0; i < n && !fatal && db.state == DB_CONNECTED; i++)
					if (!send_report(batch[i], now))
						break;
				break;
		}
	free(error);
	free(batch);
	free(ids);
	free(results);
}

/* Send the reports of finished jobs, and free the slots of those with nothing to report. */
static void
send_reports(int64_t now)
{
	record_gpus(now);
	send_ack_batch(now);
	for (int i = 0; i < cfg.slots && !fatal; i++)
	{
		Job		   *job = &jobs[i];

		if (job->phase != JOB_DONE)
			continue;
		if (job->report == REPORT_NONE)
		{
			job_done(job, job->stop == STOP_CANCEL ? OUTCOME_CANCELLED : OUTCOME_LOST);
			continue;
		}
		if (db.state != DB_CONNECTED || !session_ready || now < job->report_ms || job->gpus_to_record)
			continue;
		if (!send_report(job, now))
			return;
	}
}

/* Bring a fresh connection into service: register once, then read the lease and LISTEN. */
static void
setup_connection(void)
{
	char	   *error = NULL;
	DbOutcome	o;

	if (worker_id < 0)
	{
		o = db_register(&db, cfg.name, &hw, cfg.slots, cfg.labels, &worker_id, &error);
		if (o == DB_LOST)
		{
			free(error);
			return;
		}
		if (o != DB_OK)
		{
			log_event(NO_JOB, "register-failed", "%s", error);
			free(error);
			fatal = true;
			return;
		}
		log_event(NO_JOB, "registered",
				  "worker_id=%" PRId64 " cpus=%d memory_mb=%lld gpus=%d gpu_type=%s slots=%d",
				  worker_id, hw.cpus, hw.memory_mb, hw.gpus, hw.gpu_type ? hw.gpu_type : "-",
				  cfg.slots);
	}
	o = db_setup_session(&db, cfg.listen, &error);
	if (o != DB_OK)
	{
		if (o != DB_LOST)
			db_lost(&db, error);
		free(error);
		return;
	}
	session_ready = true;
	claim_now = true;
	log_event(NO_JOB, "ready", "lease=%" PRId64 "ms heartbeat every %" PRId64 "ms%s",
			  db.lease_ms, db.lease_ms / 3, cfg.listen ? " listening" : " polling only");
}

/* Re-read the config file on SIGHUP; running jobs keep the handler they started with. */
static void
reload_handlers(void)
{
	HandlerTable table;
	char	   *error = NULL;

	if (!config_load_handlers(&cfg, &table, &error))
	{
		log_event(NO_JOB, "reload-failed", "%s; keeping the previous handlers", error);
		free(error);
		return;
	}
	handlers_free(&cfg.handlers);
	cfg.handlers = table;
	log_event(NO_JOB, "reloaded", "%d handlers", table.n);
}

/* Act on SIGTERM/SIGINT counts and SIGHUP. */
static void
handle_signals(int64_t now)
{
	while (term_handled < term_signals)
	{
		term_handled++;
		if (term_handled == 1)
		{
			draining = true;
			drain_deadline = now + (int64_t) (cfg.drain_timeout_s * 1000.0);
			log_event(NO_JOB, "draining", "no more claims; running jobs have %gs", cfg.drain_timeout_s);
		}
		else if (term_handled == 2)
		{
			drain_deadline = now;
			log_event(NO_JOB, "draining", "second signal: stopping running jobs now");
		}
		else
		{
			log_event(NO_JOB, "draining", "another signal: killing running jobs");
			for (int i = 0; i < cfg.slots; i++)
				if (jobs[i].phase == JOB_STOPPING)
					jobs[i].kill_ms = now;
		}
	}
	if (hup_signal)
	{
		hup_signal = 0;
		reload_handlers();
	}
}

/* The drain's timers: stop running jobs at the deadline, give up on reports later. */
static void
drain_tick(int64_t now)
{
	if (!draining)
		return;
	if (!drain_stopped && now >= drain_deadline)
	{
		drain_stopped = true;
		for (int i = 0; i < cfg.slots; i++)
			job_stop(&jobs[i], STOP_SHUTDOWN, now);
	}
	if (giveup_ms == 0 && !any_running())
		giveup_ms = now + REPORT_GIVEUP_MS;
}

/* How long poll may sleep: until the nearest timer, at most MAX_SLEEP_MS. */
static int
sleep_ms(int64_t now)
{
	int64_t		next = now + MAX_SLEEP_MS;

#define CONSIDER(t) do { if ((t) > 0 && (t) < next) next = (t); } while (0)
	if (db.state == DB_DISCONNECTED)
		CONSIDER(db.next_connect_ms);
	for (int i = 0; i < cfg.slots; i++)
	{
		Job		   *job = &jobs[i];

		CONSIDER(job_next_timer(job));
		if (db.state == DB_CONNECTED && (job->phase == JOB_RUNNING || job->phase == JOB_STOPPING))
			CONSIDER(job->heartbeat_ms);
		if (db.state == DB_CONNECTED && job->gpus_to_record)
			CONSIDER(job->gpus_record_ms > now ? job->gpus_record_ms : now);
		if (job->phase == JOB_DONE && (job->report == REPORT_NONE || db.state == DB_CONNECTED))
			next = job->report_ms > now && job->report_ms < next ? job->report_ms :
				(job->report_ms > now ? next : now);
	}
	if (db.state == DB_CONNECTED && session_ready && !draining && free_slots() > 0)
		CONSIDER(next_claim_ms);
	if (draining && !drain_stopped)
		CONSIDER(drain_deadline);
	if (giveup_ms)
		CONSIDER(giveup_ms);
	CONSIDER(metrics_next_timer());
	CONSIDER(limits_next_timer());
#undef CONSIDER
	return next <= now ? 0 : (int) (next - now);
}

/* Kill and reap whatever handlers are left; used on a fatal exit. */
static void
kill_all_handlers(void)
{
	for (int i = 0; i < cfg.slots; i++)
	{
		Job		   *job = &jobs[i];

		if (job->pid > 0 && !job->exited)
		{
			int			status;

			log_event(job->id, "killing", "the worker exits");
			kill(-job->pid, SIGKILL);
			kill(job->pid, SIGKILL);
			while (waitpid(job->pid, &status, 0) < 0 && errno == EINTR)
				;
			job->exited = true;
		}
	}
}

/* The loop proper; returns the exit status. */
static int
run(void)
{
	for (;;)
	{
		int64_t		now = now_ms();
		int			nextra = 0;
		int			xfd[1];
		short		xev[1];
		short		xrev[1] = {0};

		handle_signals(now);
		for (int i = 0; i < cfg.slots; i++)
			job_tick(&jobs[i], now);
		drain_tick(now);
		limits_tick(now);

		if (db.state != DB_CONNECTED)
			session_ready = false;
		if (db.state == DB_DISCONNECTED && now >= db.next_connect_ms &&
			!(draining && worker_id < 0))
			db_connect_start(&db, cfg.conninfo, cfg.name);
		if (db.state == DB_CONNECTED && !session_ready)
			setup_connection();
		if (db.state == DB_CONNECTED && session_ready)
		{
			send_reports(now_ms());
			send_heartbeats(now_ms());
			maybe_claim(now_ms());
			record_gpus(now_ms());
		}
		else
			send_reports(now);	/* frees the slots that have nothing to report */
		if (db.state != DB_CONNECTED)
			session_ready = false;

		if (fatal)
			return 1;
		if (draining && !any_jobs())
		{
			log_event(NO_JOB, "exit", "drained");
			return 0;
		}
		if (draining && giveup_ms && now_ms() >= giveup_ms)
		{
			for (int i = 0; i < cfg.slots; i++)
				if (jobs[i].phase == JOB_DONE)
					log_event(jobs[i].id, "unreported",
							  "the database is unreachable; the lease will expire and the job be retried");
			log_event(NO_JOB, "exit", "drained, with reports undelivered");
			return 0;
		}

		if (db.state == DB_CONNECTED)
		{
			xfd[0] = db_socket(&db);
			xev[0] = POLLIN;
			nextra = 1;
		}
		else if (db.state == DB_CONNECTING)
		{
			xfd[0] = db.connector_fd;
			xev[0] = POLLIN;
			nextra = 1;
		}
		poll_and_serve(nextra, xfd, xev, xrev, sleep_ms(now_ms()));
		if (nextra && xrev[0])
		{
			if (db.state == DB_CONNECTED)
				db_consume(&db);
			else if (db.state == DB_CONNECTING)
			{
				char	   *error = NULL;

				if (db_connect_finish(&db, &error))
				{
					if (ever_connected)
						metrics_count_reconnect();
					ever_connected = true;
				}
				free(error);
			}
		}
	}
}

/* Warn at start-up about handlers whose executable is not there (yet). */
static void
check_handlers(void)
{
	for (int i = 0; i < cfg.handlers.n; i++)
	{
		const Handler *h = &cfg.handlers.items[i];
		char	   *path = NULL;

		if (h->simulate)
			continue;
		if (!runner_find_executable(h->argv[0], &path) || access(path, X_OK) != 0)
			log_event(NO_JOB, "warning", "handler for \"%s\" (%s): \"%s\" is not an executable file",
					  h->job_type, h->origin, h->argv[0]);
		free(path);
	}
}

/* Entry point. */
int
main(int argc, char **argv)
{
	char	   *error = NULL;
	int			status;

	ensure_std_fds();
	config_parse_args(&cfg, argc, argv);
	log_set_worker(cfg.name);
	log_set_verbose(cfg.verbose);
	if (!config_load_handlers(&cfg, &cfg.handlers, &error))
	{
		fprintf(stderr, "tinytemp-worker: %s\n", error);
		free(error);
		config_free(&cfg);
		return 2;
	}
	if (cfg.handlers.n == 0)
	{
		fprintf(stderr, "tinytemp-worker: no handlers: give --config FILE or --handler TYPE=COMMAND\n"
				"Try \"tinytemp-worker --help\" for more information.\n");
		config_free(&cfg);
		return 2;
	}
	check_handlers();
	if (cfg.metrics_address && cfg.metrics_address[0] && !metrics_listen(cfg.metrics_address, &error))
	{
		fprintf(stderr, "tinytemp-worker: %s\n", error);
		free(error);
		metrics_close();
		config_free(&cfg);
		return 2;
	}

	memset(&hw, 0, sizeof(hw));
	hw_detect(&hw, cfg.cpus < 0, cfg.memory_mb < 0, cfg.gpus < 0);
	if (cfg.cpus >= 0)
		hw.cpus = cfg.cpus;
	if (cfg.memory_mb >= 0)
		hw.memory_mb = cfg.memory_mb;
	/* --gpu-indices names the GPUs; --gpus N makes them 0..N-1. */
	if (cfg.gpus >= 0)
		hw_set_gpu_indices(&hw, cfg.gpu_indices, cfg.gpus);
	gpu_pool_init(&hw);
	if (cfg.gpu_type)
	{
		free(hw.gpu_type);
		hw.gpu_type = xstrdup(cfg.gpu_type);
	}

	random_seed();
	setup_signals();
	jobs = xmalloc((size_t) cfg.slots * sizeof(Job));
	memset(jobs, 0, (size_t) cfg.slots * sizeof(Job));
	for (int i = 0; i < cfg.slots; i++)
		jobs[i].in_fd = jobs[i].out_fd = jobs[i].err_fd = -1;
	pollset_size = 1 + 3 * cfg.slots + METRICS_MAX_POLLFDS + 1;
	pollset = xmalloc((size_t) pollset_size * sizeof(struct pollfd));
	db_init(&db, db_wait_hook);
	limits_init(cfg.name, cfg.limits);
	{
		char	   *gpus = gpu_list_text(hw.gpu_indices, hw.gpu_indices ? hw.gpus : 0, ",");

		log_event(NO_JOB, "starting", "tinytemp-worker %s pid=%d slots=%d handlers=%d limits=%s gpus=%s",
				  TT_VERSION, (int) getpid(), cfg.slots, cfg.handlers.n, limits_mode_name(),
				  gpus[0] ? gpus : "none");
		free(gpus);
	}

	status = run();

	kill_all_handlers();
	for (int i = 0; i < cfg.slots; i++)
		job_reset(&jobs[i]);
	limits_shutdown();
	gpu_pool_free();
	free(jobs);
	free(pollset);
	metrics_close();
	db_close(&db);
	hw_free(&hw);
	config_free(&cfg);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	return status;
}

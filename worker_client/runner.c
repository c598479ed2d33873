/*
 * runner.c
 *	  Handler processes: start one per job with vfork and execve (never a
 *	  shell), in the job's cgroup when the worker limits jobs (limits.c),
 *	  feed it the job on a non-blocking stdin pipe, read its stdout
 *	  and stderr as they come, stop it with SIGTERM then SIGKILL, reap it,
 *	  and turn how it ended into the report for the database.  The built-in
 *	  simulate handler lives here too, as a timer instead of a process.
 *
 * Each handler leads its own process group, so stopping a job stops what
 * its handler started, and the handler is told to die with the worker
 * (PR_SET_PDEATHSIG) so that a worker killed with -9 leaves no orphan
 * working on a job that another worker will be given.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

/* Stderr lines longer than this are logged in pieces. */
#define STDERR_LOG_LINE 1000

/* Close a descriptor if open and mark it closed. */
static void
close_fd(int *fd)
{
	if (*fd >= 0)
	{
		close(*fd);
		*fd = -1;
	}
}

/*
 * Give back what the job holds while its handler runs: its GPUs, and its
 * cgroup (whatever still runs in it is killed).  Once its handler has
 * ended, whatever the outcome; also when the slot is emptied.
 */
void
job_release(Job *job)
{
	limits_job_remove(&job->cgroup);
	if (job->gpu_indices)
		gpu_pool_release(job->gpu_indices, job->gpus);
	job->gpu_indices = NULL;
}

/* Empty a slot, releasing whatever the last job in it held. */
void
job_reset(Job *job)
{
	job_release(job);
	close_fd(&job->in_fd);
	close_fd(&job->out_fd);
	close_fd(&job->err_fd);
	free(job->job_type);
	free(job->json);
	strv_free(job->env);
	if (job->out_line.data)
		sb_free(&job->out_line);
	if (job->err_line.data)
		sb_free(&job->err_line);
	job_drop_tracking(job);
	job_drop_datasets(job);
	free(job->last_line);
	free(job->progress);
	free(job->checkpoint);
	free(job->saved_checkpoint);
	free(job->result);
	free(job->error);
	free(job->gpu_list);
	memset(job, 0, sizeof(*job));
	job->in_fd = job->out_fd = job->err_fd = -1;
}

/* Drop the job's unsent metric records and log lines, and stop collecting them. */
void
job_drop_tracking(Job *job)
{
	if (job->err_full.data)
		sb_free(&job->err_full);
	if (job->metrics_out.data)
		sb_free(&job->metrics_out);
	if (job->logs_out.data)
		sb_free(&job->logs_out);
	job->metrics_n = 0;
	job->metrics_values = 0;
	job->logs_n = 0;
	job->err_overflow = false;
	job->track = false;
}

/* Drop the datasets the job's handler printed: it failed, or they are registered. */
void
job_drop_datasets(Job *job)
{
	if (job->datasets.data)
		sb_free(&job->datasets);
	job->datasets_n = 0;
}

/* Start one more JSON object in a list of them: its separator, and the buffer itself the first time. */
static void
list_next(StrBuf *list, int *n)
{
	if (list->data == NULL)
		sb_init(list);
	else if (*n > 0)
		sb_appends(list, ", ");
	(*n)++;
}

/* Append one {"stream", "line", "at"} record to the job's unsent log lines; `line` is valid UTF-8. */
static void
append_log_record(Job *job, const char *stream, const char *line)
{
	list_next(&job->logs_out, &job->logs_n);
	sb_appendf(&job->logs_out, "{\"stream\": \"%s\", \"line\": ", stream);
	json_append_string(&job->logs_out, line);
	sb_appends(&job->logs_out, ", \"at\": \"");
	sb_append_timestamp(&job->logs_out);
	sb_appends(&job->logs_out, "\"}");
}

/* Whether the job's output lines are kept for its log: tracking on, and neither bound 0. */
static bool
job_keeps_log(const Job *job)
{
	return job->track && job->log_max_lines > 0 && job->log_max_bytes > 0;
}

/*
 * Keep a complete output line (without its newline) for the job's log,
 * within the attempt's bounds: once a line would pass --log-max-lines or
 * --log-max-bytes, it and every later line are only counted (see
 * job_add_log_note).  Invalid UTF-8 and NUL bytes become '?'.
 */
static void
keep_log_line(Job *job, const char *stream, const char *s, size_t n)
{
	char	   *clean;
	size_t		len;

	if (!job_keeps_log(job))
		return;
	if (job->log_full)
	{
		job->log_lines_dropped++;
		return;
	}
	clean = utf8_sanitize(s, n);
	len = strlen(clean);
	if (job->log_lines_kept + 1 > job->log_max_lines ||
		job->log_bytes_kept + (long long) len > job->log_max_bytes)
	{
		job->log_full = true;
		job->log_lines_dropped++;
		free(clean);
		return;
	}
	append_log_record(job, stream, clean);
	job->log_lines_kept++;
	job->log_bytes_kept += (long long) len;
	free(clean);
}

/*
 * A line longer than TT_MAX_LINE was not collected: it is not kept, but
 * counted with the lines past the bounds.
 */
static void
drop_long_log_line(Job *job)
{
	if (job_keeps_log(job))
		job->log_lines_dropped++;
}

/*
 * Once the handler has ended: when lines were not kept, add the stderr line
 * "(N more lines not kept)", once, past the bounds (the server may keep it
 * or not, by its own bounds).
 */
void
job_add_log_note(Job *job)
{
	char	   *note;

	if (!job->track || job->log_note_added || job->log_lines_dropped == 0)
		return;
	note = xasprintf("(%lld more lines not kept)", job->log_lines_dropped);
	append_log_record(job, "stderr", note);
	free(note);
	job->log_note_added = true;
}

/*
 * A metrics line of `values` values: append {"step": N, "metrics": {...},
 * "at": ...} to the job's unsent records, up to TT_METRICS_BUFFER_VALUES
 * values and TT_METRICS_BUFFER_BYTES between two sends.
 */
static void
keep_metrics(Job *job, const char *metrics, size_t metrics_len, int values, const char *step,
			 size_t step_len)
{
	if (!job->track)
		return;
	if (job->metrics_values + values > TT_METRICS_BUFFER_VALUES ||
		(job->metrics_out.data && job->metrics_out.len + metrics_len > TT_METRICS_BUFFER_BYTES))
	{
		job->metrics_dropped++;
		return;
	}
	job->metrics_values += values;
	list_next(&job->metrics_out, &job->metrics_n);
	sb_appends(&job->metrics_out, "{");
	if (step)
	{
		sb_appends(&job->metrics_out, "\"step\": ");
		sb_append(&job->metrics_out, step, step_len);
		sb_appends(&job->metrics_out, ", ");
	}
	sb_appends(&job->metrics_out, "\"metrics\": ");
	sb_append(&job->metrics_out, metrics, metrics_len);
	sb_appends(&job->metrics_out, ", \"at\": \"");
	sb_append_timestamp(&job->metrics_out);
	sb_appends(&job->metrics_out, "\"}");
}

/*
 * Whether the JSON object s[0..n) is a metrics line: a top-level "metrics"
 * object of numbers (see json_number_object_size), and "step" absent, null
 * or an integer.  On true, *metrics and *step (NULL when none) point into
 * s and *values is the number of metrics.  A line with a "metrics" key
 * that does not qualify is an ordinary line, logged once per job.
 */
static bool
metrics_line(Job *job, const char *s, size_t n, const char **metrics, size_t *metrics_len,
			 int *values, const char **step, size_t *step_len)
{
	size_t		off;
	size_t		len;

	if (!json_object_member(s, n, "metrics", &off, &len))
		return false;
	*values = json_number_object_size(s + off, len);
	if (*values < 0)
		goto malformed;
	*metrics = s + off;
	*metrics_len = len;
	*step = NULL;
	*step_len = 0;
	if (json_object_member(s, n, "step", &off, &len) && !(len == 4 && memcmp(s + off, "null", 4) == 0))
	{
		if (!json_is_integral(s + off, len))
			goto malformed;
		*step = s + off;
		*step_len = len;
	}
	return true;

malformed:
	if (!job->metrics_warned)
		log_event(job->id, "metrics-ignored", "a line with a \"metrics\" key is not"
				  " {\"metrics\": {NAME: NUMBER, ...}, \"step\": INTEGER} (names of 1 to %d characters);"
				  " taking it as an ordinary line", TT_METRIC_NAME_MAX);
	job->metrics_warned = true;
	return false;
}

/*
 * Whether the JSON object s[0..n) is a dataset line: a top-level "dataset"
 * key whose value is an object, which *dataset and *dataset_len then point
 * to.  A line with a "dataset" key of another kind is an ordinary line,
 * logged once per job.
 */
static bool
dataset_line(Job *job, const char *s, size_t n, const char **dataset, size_t *dataset_len)
{
	size_t		off;
	size_t		len;

	if (!json_object_member(s, n, "dataset", &off, &len))
		return false;
	if (!json_is_object(s + off, len))
	{
		if (!job->datasets_warned)
			log_event(job->id, "dataset-ignored", "a line with a \"dataset\" key is not"
					  " {\"dataset\": {\"name\": ..., ...}}; taking it as an ordinary line");
		job->datasets_warned = true;
		return false;
	}
	*dataset = s + off;
	*dataset_len = len;
	return true;
}

/*
 * Keep a dataset the handler printed, for registration if it succeeds: up
 * to TT_MAX_DATASETS of them and TT_DATASETS_MAX_BYTES per attempt.  Past
 * either bound this one and every later one are ignored, which is logged
 * once here (and their count with the registration).
 */
static void
keep_dataset(Job *job, const char *dataset, size_t len)
{
	if (job->datasets_ignored == 0 &&
		job->datasets_n < TT_MAX_DATASETS &&
		(job->datasets.data == NULL || job->datasets.len + len <= TT_DATASETS_MAX_BYTES))
	{
		list_next(&job->datasets, &job->datasets_n);
		sb_append(&job->datasets, dataset, len);
		return;
	}
	if (job->datasets_ignored++ == 0)
		log_event(job->id, "datasets-ignored", "more than %d datasets or %d MiB of them in one attempt;"
				  " this one and any later one will not be registered", TT_MAX_DATASETS,
				  TT_DATASETS_MAX_BYTES / (1024 * 1024));
}

/* A short name for a stop reason, for the log. */
const char *
stop_reason_name(StopReason reason)
{
	switch (reason)
	{
		case STOP_NONE:
			return "none";
		case STOP_TIMEOUT:
			return "timeout";
		case STOP_CANCEL:
			return "cancel";
		case STOP_PREEMPT:
			return "preempt";
		case STOP_LEASE_LOST:
			return "lease lost";
		case STOP_SHUTDOWN:
			return "shutdown";
	}
	return "?";
}

/*
 * Find an executable the way execvp would, but in the parent, so that the
 * child only has to call execve: a bare name is searched in PATH, a name
 * with a '/' is taken as it is.
 */
bool
runner_find_executable(const char *name, char **path)
{
	const char *search = getenv("PATH");
	const char *p;

	if (strchr(name, '/'))
	{
		*path = xstrdup(name);
		return true;
	}
	if (search == NULL || *search == '\0')
		search = "/usr/local/bin:/usr/bin:/bin";
	p = search;
	for (;;)
	{
		const char *colon = strchr(p, ':');
		size_t		len = colon ? (size_t) (colon - p) : strlen(p);
		char	   *candidate;
		struct stat st;

		candidate = len ? xasprintf("%.*s/%s", (int) len, p, name) : xasprintf("./%s", name);
		if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
		{
			*path = candidate;
			return true;
		}
		free(candidate);
		if (colon == NULL)
			return false;
		p = colon + 1;
	}
}

/* Set NAME=value in an environment vector, replacing an entry of the same name. */
static void
env_put(char ***envp, size_t *n, const char *entry)
{
	size_t		namelen = strcspn(entry, "=");

	for (size_t i = 0; i < *n; i++)
	{
		if (strncmp((*envp)[i], entry, namelen) == 0 && (*envp)[i][namelen] == '=')
		{
			free((*envp)[i]);
			(*envp)[i] = xstrdup(entry);
			return;
		}
	}
	*envp = xrealloc(*envp, (*n + 2) * sizeof(char *));
	(*envp)[(*n)++] = xstrdup(entry);
	(*envp)[*n] = NULL;
}

/*
 * The handler's environment: ours without PGPASSWORD (a handler has no
 * business with the worker's database credentials) and without stale
 * TINYTEMP_ variables (TINYTEMP_DATA_DIR aside: where the site keeps the
 * pipeline's data is the worker's to say), then the handler's env entries,
 * then the job's.
 */
static char **
build_env(const Handler *h, char *const *job_env)
{
	char	  **envp = xmalloc(sizeof(char *));
	size_t		n = 0;

	envp[0] = NULL;
	for (char **e = environ; e && *e; e++)
	{
		if (strncmp(*e, "PGPASSWORD=", 11) == 0 ||
			(strncmp(*e, "TINYTEMP_", 9) == 0 && strncmp(*e, "TINYTEMP_DATA_DIR=", 18) != 0))
			continue;
		env_put(&envp, &n, *e);
	}
	for (char **e = h->env; e && *e; e++)
		env_put(&envp, &n, *e);
	for (char *const *e = job_env; e && *e; e++)
		env_put(&envp, &n, *e);
	return envp;
}

/* Where the child failed, sent back through the report pipe with errno. */
enum
{
	CHILD_CGROUP = 1,			/* joining the job's cgroup */
	CHILD_EXEC					/* setting up its descriptors, workdir, or execve */
};

/* What a child sends through its report pipe when it cannot become the handler. */
typedef struct ChildReport
{
	int			stage;
	int			err;
} ChildReport;

/* How the child is set up; prepared by the parent before vfork, only read in the child. */
typedef struct ChildSpec
{
	pid_t		parent;
	int			in_fd;
	int			out_fd;
	int			err_fd;
	int			report_fd;
	const int  *cgroup_fds;		/* the job's cgroup.procs files, open for writing */
	int			ncgroup_fds;
	const char *path;
	char	   *const *argv;
	char	   *const *envp;
	const char *workdir;
} ChildSpec;

/*
 * What runs in the child between vfork and execve.  Only async-signal-safe
 * calls: the worker may have another thread (the connector) at this point,
 * and the child shares the worker's memory until execve.  The child joins
 * the job's cgroups first, by writing "0" (the writer itself) to their
 * cgroup.procs files, which the parent opened: the handler is limited from
 * its first instruction, and what it allocates after execve (a fresh
 * address space, of which it is the owner) is charged to the job's memory
 * cgroup.  The parent could not move it instead: vfork returns to it only
 * once the child has called execve.
 */
static void
child_exec(const ChildSpec *spec)
{
	static const int reset_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT};
	struct sigaction sa;
	sigset_t	none;
	ChildReport report = {CHILD_CGROUP, 0};

	setpgid(0, 0);
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != spec->parent)
		_exit(125);
#endif
	for (int i = 0; i < spec->ncgroup_fds; i++)
		if (write(spec->cgroup_fds[i], "0", 1) != 1)
			goto fail;
	report.stage = CHILD_EXEC;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(reset_signals) / sizeof(reset_signals[0]); i++)
		sigaction(reset_signals[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (dup2(spec->in_fd, STDIN_FILENO) < 0 || dup2(spec->out_fd, STDOUT_FILENO) < 0 ||
		dup2(spec->err_fd, STDERR_FILENO) < 0)
		goto fail;
	if (spec->workdir && chdir(spec->workdir) != 0)
		goto fail;
	execve(spec->path, spec->argv, spec->envp);
fail:
	report.err = errno;
	if (write(spec->report_fd, &report, sizeof(report)) < 0)
		_exit(126);
	_exit(127);
}

/*
 * Start a child that runs child_exec, and return its pid (-1 with *err set
 * on failure).  vfork: the worker is suspended only until the child has
 * called execve, without copying its page tables as fork does, which costs
 * milliseconds per handler.  Signals stay blocked until the child has reset
 * its handlers, so that none of the worker's runs in the child, which
 * shares the worker's memory until execve.
 */
static pid_t __attribute__((noinline))
spawn_child(const ChildSpec *spec, int *err)
{
	sigset_t	all;
	sigset_t	saved_mask;
	pid_t		pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved_mask);
	pid = vfork();
	if (pid == 0)
		child_exec(spec);
	*err = errno;
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	return pid;
}

/*
 * Start the job's handler.  The slot must hold the claimed job (id,
 * attempt, json, env).  On failure returns false with *error set and no
 * process left behind.
 */
bool
job_start(Job *job, const Handler *h, char **error)
{
	int			in_pipe[2] = {-1, -1};
	int			out_pipe[2] = {-1, -1};
	int			err_pipe[2] = {-1, -1};
	int			report_pipe[2] = {-1, -1};
	int			cgroup_fds[TT_CGROUP_HIERARCHIES];
	int			ncgroup_fds = 0;
	char	   *path = NULL;
	char	  **envp = NULL;
	ChildSpec	spec;
	ChildReport report = {0, 0};
	pid_t		pid;
	int			fork_errno;
	ssize_t		n;

	job->started_ms = now_ms();
	job->timeout_s = h->timeout_s;
	if (h->kill_grace_s >= 0)
		job->kill_grace_s = h->kill_grace_s;
	if (job->timeout_s > 0)
		job->deadline_ms = job->started_ms + (int64_t) (job->timeout_s * 1000.0);
	sb_init(&job->out_line);
	sb_init(&job->err_line);

	if (h->simulate)
	{
		job->simulate = true;
		job->end_ms = job->started_ms + (int64_t) (job->sim_runtime_s * 1000.0);
		job->phase = JOB_RUNNING;
		return true;
	}

	if (!runner_find_executable(h->argv[0], &path))
	{
		*error = xasprintf("handler \"%s\" (%s) not found in PATH", h->argv[0], h->origin);
		return false;
	}
	if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
		pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(report_pipe, O_CLOEXEC) != 0)
	{
		*error = xasprintf("cannot create pipes for the handler: %s", strerror(errno));
		goto fail;
	}
	envp = build_env(h, job->env);
	if (!limits_job_create(&job->cgroup, job->id, job->attempt, job->cpus, job->memory_mb, error))
		goto fail;
	ncgroup_fds = limits_job_open_procs(&job->cgroup, cgroup_fds, TT_CGROUP_HIERARCHIES, error);
	if (ncgroup_fds < 0)
	{
		ncgroup_fds = 0;
		goto fail;
	}

	spec.parent = getpid();
	spec.in_fd = in_pipe[0];
	spec.out_fd = out_pipe[1];
	spec.err_fd = err_pipe[1];
	spec.report_fd = report_pipe[1];
	spec.cgroup_fds = cgroup_fds;
	spec.ncgroup_fds = ncgroup_fds;
	spec.path = path;
	spec.argv = h->argv;
	spec.envp = envp;
	spec.workdir = h->workdir;
	pid = spawn_child(&spec, &fork_errno);
	while (ncgroup_fds > 0)
		close(cgroup_fds[--ncgroup_fds]);
	if (pid < 0)
	{
		*error = xasprintf("cannot start the handler: %s", strerror(fork_errno));
		goto fail;
	}

	/* Both sides set the group, so that no kill can reach the child before it is set. */
	setpgid(pid, pid);
	close(in_pipe[0]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(report_pipe[1]);
	in_pipe[0] = out_pipe[1] = err_pipe[1] = report_pipe[1] = -1;

	/*
	 * The report pipe closes at a successful execve, or carries errno from
	 * the child.  vfork returned once the child had called execve or exited,
	 * so the answer is there (or a moment away) and this read does not wait
	 * on the handler.
	 */
	do
		n = read(report_pipe[0], &report, sizeof(report));
	while (n < 0 && errno == EINTR);
	close(report_pipe[0]);
	report_pipe[0] = -1;
	if (n == (ssize_t) sizeof(report))
	{
		int			status;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (report.stage == CHILD_CGROUP)
			*error = xasprintf("cannot put the handler in its cgroup %s: %s", job->cgroup.name,
							   strerror(report.err));
		else
			*error = xasprintf("cannot execute handler %s%s%s: %s", path,
							   h->workdir ? " in " : "", h->workdir ? h->workdir : "",
							   strerror(report.err));
		goto fail;
	}

	job->pid = pid;
	job->in_fd = in_pipe[1];
	job->out_fd = out_pipe[0];
	job->err_fd = err_pipe[0];
	set_nonblocking(job->in_fd);
	set_nonblocking(job->out_fd);
	set_nonblocking(job->err_fd);
	job->phase = JOB_RUNNING;
	{
		char	   *cpuset = limits_job_cpuset(&job->cgroup);
		const char *gpus = job->gpu_list ? job->gpu_list : "";

		log_event(job->id, "started", "pid=%d handler=%s%s%s%s%s%s%s", (int) pid, path,
				  job->cgroup.name ? " cgroup=" : "", job->cgroup.name ? job->cgroup.name : "",
				  cpuset ? " cpuset=" : "", cpuset ? cpuset : "", gpus[0] ? " gpus=" : "", gpus);
		free(cpuset);
	}
	free(path);
	strv_free(envp);
	return true;

fail:
	while (ncgroup_fds > 0)
		close(cgroup_fds[--ncgroup_fds]);
	limits_job_remove(&job->cgroup);
	for (int i = 0; i < 2; i++)
	{
		close_fd(&in_pipe[i]);
		close_fd(&out_pipe[i]);
		close_fd(&err_pipe[i]);
		close_fd(&report_pipe[i]);
	}
	free(path);
	strv_free(envp);
	return false;
}

/* Record the job's outcome; the main loop sends it and frees the slot. */
void
job_finish(Job *job, Report report, char *result, char *error, bool retryable)
{
	job->phase = JOB_DONE;
	job->report = report;
	job->result = result;
	job->error = error;
	job->retryable = retryable;
	job->report_ms = 0;
}

/* Signal the handler's process group, or the handler alone if the group is gone. */
static void
signal_job(Job *job, int sig)
{
	if (job->pid <= 0)
		return;
	if (kill(-job->pid, sig) != 0 && errno == ESRCH && !job->exited)
		kill(job->pid, sig);
}

/* The last stderr bytes as text, trimmed and valid UTF-8, or NULL when there were none. */
static char *
stderr_tail(const Job *job)
{
	char		buf[TT_STDERR_TAIL];
	size_t		n;
	size_t		start = 0;

	if (job->err_tail_len <= TT_STDERR_TAIL)
	{
		n = job->err_tail_len;
		memcpy(buf, job->err_tail, n);
	}
	else
	{
		size_t		pos = job->err_tail_len % TT_STDERR_TAIL;

		n = TT_STDERR_TAIL;
		memcpy(buf, job->err_tail + pos, TT_STDERR_TAIL - pos);
		memcpy(buf + TT_STDERR_TAIL - pos, job->err_tail, pos);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	while (start < n && (buf[start] == '\n' || buf[start] == '\r'))
		start++;
	if (start >= n)
		return NULL;
	return utf8_sanitize(buf + start, n - start);
}

/* "what; stderr: tail", the error text of a failed attempt. */
static char *
failure_text(const Job *job, const char *what)
{
	char	   *tail = stderr_tail(job);
	char	   *text;

	if (tail)
		text = xasprintf("%s; stderr: %s", what, tail);
	else
		text = xstrdup(what);
	free(tail);
	return text;
}

/* How a process ended, in words. */
static char *
describe_status(int status)
{
	if (WIFEXITED(status))
		return xasprintf("handler exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return xasprintf("handler killed by signal %d (%s)", WTERMSIG(status),
						 strsignal(WTERMSIG(status)));
	return xasprintf("handler ended with wait status %d", status);
}

/* Decide the report of a job whose handler has ended or was stopped. */
static void
job_conclude(Job *job)
{
	char	   *what;

	/* The handler has ended: its GPUs and its cgroup go back. */
	job_release(job);
	if (job->started_ms)
		metrics_observe_handler(job->job_type, (double) (now_ms() - job->started_ms) / 1000.0);
	switch (job->stop)
	{
		case STOP_CANCEL:
			log_event(job->id, "cancelled", "handler stopped; the job stays cancelled");
			job_finish(job, REPORT_NONE, NULL, NULL, false);
			return;
		case STOP_LEASE_LOST:
			log_event(job->id, "abandoned", "handler stopped; the job is no longer ours");
			job_finish(job, REPORT_NONE, NULL, NULL, false);
			return;
		case STOP_PREEMPT:
			/* Whatever its exit status: the latest checkpoint is where the next run resumes. */
			job_finish(job, REPORT_PREEMPTED, NULL, NULL, false);
			return;
		case STOP_TIMEOUT:
			what = xasprintf("timed out after %gs", job->timeout_s);
			job_finish(job, REPORT_FAIL, NULL, failure_text(job, what), true);
			free(what);
			return;
		case STOP_SHUTDOWN:
			job_finish(job, REPORT_FAIL, NULL, failure_text(job, "worker shutting down"), true);
			return;
		case STOP_NONE:
			break;
	}

	if (job->simulate)
	{
		if (job->sim_fail)
			job_finish(job, REPORT_FAIL, NULL,
					   xasprintf("simulated failure of attempt %d", job->attempt), true);
		else
			job_finish(job, REPORT_ACK,
					   xasprintf("{\"simulated\": true, \"runtime_s\": %.6g}", job->sim_runtime_s),
					   NULL, false);
		return;
	}
	if (WIFEXITED(job->wait_status) && WEXITSTATUS(job->wait_status) == 0)
	{
		char	   *result = NULL;

		if (job->last_line && json_valid(job->last_line, strlen(job->last_line)))
			result = xstrdup(job->last_line);
		job_finish(job, REPORT_ACK, result, NULL, false);
		return;
	}
	/* Killed at its memory limit: that alone is the error, for the job's owner to act on. */
	if (job->oom_killed)
	{
		job_finish(job, REPORT_FAIL, NULL, xasprintf("out of memory: limit %lld MB", job->memory_mb), true);
		return;
	}
	what = describe_status(job->wait_status);
	job_finish(job, REPORT_FAIL, NULL, failure_text(job, what), true);
	free(what);
}

/*
 * Stop a running job: SIGTERM now, SIGKILL after the grace period (see
 * job_tick).  A simulated job just ends.  The first reason given wins.
 */
void
job_stop(Job *job, StopReason reason, int64_t now)
{
	if (job->phase != JOB_RUNNING)
		return;
	job->stop = reason;
	log_event(job->id, "stopping", "reason=%s%s", stop_reason_name(reason),
			  job->simulate ? "" : " signal=SIGTERM");
	if (job->simulate)
	{
		job_conclude(job);
		return;
	}
	job->phase = JOB_STOPPING;
	job->kill_ms = now + (int64_t) (job->kill_grace_s * 1000.0);
	signal_job(job, SIGTERM);
}

/*
 * A complete stdout line, which the job's log keeps.  A JSON object with a
 * top-level "checkpoint" key hands over that key's value as the checkpoint
 * to save; one with a top-level "metrics" object of numbers (and an
 * optional integer "step") is a metric record to send; one with a
 * top-level "dataset" object is an output dataset, to register with the
 * job's ack.  Any of them is neither progress nor the last line (the
 * result); any other line is the last line, and progress too when it is a
 * JSON object.
 */
static void
out_line_done(Job *job)
{
	char	   *s = job->out_line.data;
	size_t		n = job->out_line.len;

	if (job->out_overflow)
	{
		free(job->last_line);
		job->last_line = NULL;
		drop_long_log_line(job);
	}
	else
	{
		keep_log_line(job, "stdout", s, n > 0 && s[n - 1] == '\r' ? n - 1 : n);
		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n > 0)
		{
			bool		object = json_is_object(s, n);
			bool		special = false;
			size_t		off;
			size_t		len;
			const char *metrics;
			size_t		metrics_len;
			int			values;
			const char *step;
			size_t		step_len;
			const char *dataset;
			size_t		dataset_len;

			if (object && json_object_member(s, n, "checkpoint", &off, &len))
			{
				free(job->checkpoint);
				job->checkpoint = xstrndup(s + off, len);
				special = true;
			}
			if (object && metrics_line(job, s, n, &metrics, &metrics_len, &values, &step, &step_len))
			{
				keep_metrics(job, metrics, metrics_len, values, step, step_len);
				special = true;
			}
			if (object && dataset_line(job, s, n, &dataset, &dataset_len))
			{
				keep_dataset(job, dataset, dataset_len);
				special = true;
			}
			if (!special)
			{
				free(job->last_line);
				job->last_line = xstrndup(s, n);
				if (object)
				{
					free(job->progress);
					job->progress = xstrndup(s, n);
				}
			}
		}
	}
	sb_reset(&job->out_line);
	job->out_overflow = false;
}

/* Take in a chunk of the handler's stdout. */
static void
out_feed(Job *job, const char *buf, size_t n)
{
	while (n > 0)
	{
		const char *nl = memchr(buf, '\n', n);
		size_t		seg = nl ? (size_t) (nl - buf) : n;

		if (!job->out_overflow)
		{
			if (job->out_line.len + seg > TT_MAX_LINE)
			{
				job->out_overflow = true;
				sb_reset(&job->out_line);
			}
			else
				sb_append(&job->out_line, buf, seg);
		}
		if (nl == NULL)
			return;
		out_line_done(job);
		buf += seg + 1;
		n -= seg + 1;
	}
}

/* Log the stderr line collected so far. */
static void
err_line_done(Job *job)
{
	if (job->err_line.len > 0 && job->err_lines < TT_STDERR_LOG_LINES)
	{
		char	   *clean = utf8_sanitize(job->err_line.data, job->err_line.len);

		log_event(job->id, "stderr", "%s", clean);
		free(clean);
		if (++job->err_lines == TT_STDERR_LOG_LINES)
			log_event(job->id, "stderr", "(%d lines logged; the rest is not)", TT_STDERR_LOG_LINES);
	}
	sb_reset(&job->err_line);
}

/* The whole stderr line collected so far goes to the job's log. */
static void
err_full_done(Job *job)
{
	if (job->err_overflow)
		drop_long_log_line(job);
	else if (job->err_full.data)
	{
		size_t		n = job->err_full.len;

		keep_log_line(job, "stderr", job->err_full.data,
					  n > 0 && job->err_full.data[n - 1] == '\r' ? n - 1 : n);
	}
	if (job->err_full.data)
		sb_reset(&job->err_full);
	job->err_overflow = false;
}

/* Collect the handler's stderr in whole lines for the job's log. */
static void
err_full_feed(Job *job, const char *buf, size_t n)
{
	if (job->err_full.data == NULL)
		sb_init(&job->err_full);
	while (n > 0)
	{
		const char *nl = memchr(buf, '\n', n);
		size_t		seg = nl ? (size_t) (nl - buf) : n;

		if (!job->err_overflow)
		{
			if (job->err_full.len + seg > TT_MAX_LINE)
			{
				job->err_overflow = true;
				sb_reset(&job->err_full);
			}
			else
				sb_append(&job->err_full, buf, seg);
		}
		if (nl == NULL)
			return;
		err_full_done(job);
		buf += seg + 1;
		n -= seg + 1;
	}
}

/* Take in a chunk of the handler's stderr: into the tail ring, the worker's log and the job's. */
static void
err_feed(Job *job, const char *buf, size_t n)
{
	if (job_keeps_log(job))
		err_full_feed(job, buf, n);
	for (size_t i = 0; i < n; i++)
	{
		job->err_tail[job->err_tail_len % TT_STDERR_TAIL] = buf[i];
		job->err_tail_len++;
		if (buf[i] == '\n')
			err_line_done(job);
		else
		{
			sb_append(&job->err_line, buf + i, 1);
			if (job->err_line.len >= STDERR_LOG_LINE)
				err_line_done(job);
		}
	}
}

/* Read what a pipe has now; close it at EOF or on error. */
static void
drain_pipe(Job *job, int *fd, bool is_stdout)
{
	char		buf[65536];

	while (*fd >= 0)
	{
		ssize_t		n = read(*fd, buf, sizeof(buf));

		if (n > 0)
		{
			if (is_stdout)
				out_feed(job, buf, (size_t) n);
			else
				err_feed(job, buf, (size_t) n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_fd(fd);
	}
}

/* Write what the handler's stdin takes now; close it when all is written or the handler closed it. */
static void
feed_stdin(Job *job)
{
	size_t		total = strlen(job->json);

	while (job->in_fd >= 0 && job->in_off < total)
	{
		ssize_t		n = write(job->in_fd, job->json + job->in_off, total - job->in_off);

		if (n > 0)
			job->in_off += (size_t) n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else
			break;				/* EPIPE: the handler does not read its stdin */
	}
	close_fd(&job->in_fd);
}

/* Add the job's open pipes to a poll set; returns how many were added. */
int
job_pollfds(Job *job, struct pollfd *fds, int max)
{
	int			n = 0;

	if (job->in_fd >= 0 && n < max)
		fds[n++] = (struct pollfd) {job->in_fd, POLLOUT, 0};
	if (job->out_fd >= 0 && n < max)
		fds[n++] = (struct pollfd) {job->out_fd, POLLIN, 0};
	if (job->err_fd >= 0 && n < max)
		fds[n++] = (struct pollfd) {job->err_fd, POLLIN, 0};
	return n;
}

/* Move data through the job's pipes as far as they go without blocking. */
void
job_service_fds(Job *job)
{
	if (job->in_fd >= 0)
		feed_stdin(job);
	if (job->out_fd >= 0)
		drain_pipe(job, &job->out_fd, true);
	if (job->err_fd >= 0)
		drain_pipe(job, &job->err_fd, false);
}

/*
 * A child was reaped: if it is one of our handlers, take the rest of its
 * output, kill whatever it left in its group, and conclude the job.
 * Returns whether the pid was a handler's.
 */
bool
job_reap(pid_t pid, int status, Job *jobs, int njobs)
{
	for (int i = 0; i < njobs; i++)
	{
		Job		   *job = &jobs[i];

		if (job->pid != pid || job->exited || (job->phase != JOB_RUNNING && job->phase != JOB_STOPPING))
			continue;
		job->exited = true;
		job->wait_status = status;
		close_fd(&job->in_fd);
		if (job->out_fd >= 0)
			drain_pipe(job, &job->out_fd, true);
		if (job->err_fd >= 0)
			drain_pipe(job, &job->err_fd, false);
		close_fd(&job->out_fd);
		close_fd(&job->err_fd);
		if (job->out_line.len > 0 || job->out_overflow)
			out_line_done(job);
		err_line_done(job);
		if ((job->err_full.data && job->err_full.len > 0) || job->err_overflow)
			err_full_done(job);
		/* Leftovers of the handler must not outlive its job (those of its cgroup go in job_conclude). */
		kill(-pid, SIGKILL);
		if (job->stop == STOP_NONE)
		{
			char	   *how = describe_status(status);

			log_event(job->id, "exited", "%s after %.3fs", how,
					  (double) (now_ms() - job->started_ms) / 1000.0);
			free(how);
		}
		if (job->cgroup.name)
		{
			double		cpu_s;
			long long	peak_mb;

			if (job->stop == STOP_NONE && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
				job->oom_killed = limits_job_oom_killed(&job->cgroup,
														WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
			limits_job_usage(&job->cgroup, &cpu_s, &peak_mb);
			{
				StrBuf		sb;

				sb_init(&sb);
				if (cpu_s >= 0)
					sb_appendf(&sb, "cpu=%.3fs ", cpu_s);
				if (peak_mb >= 0)
					sb_appendf(&sb, "peak_memory=%lldMB ", peak_mb);
				sb_appendf(&sb, "limits cpus=%d memory_mb=%lld", job->cpus, job->memory_mb);
				log_event(job->id, job->oom_killed ? "oom-killed" : "usage", "%s", sb.data);
				sb_free(&sb);
			}
		}
		job_conclude(job);
		return true;
	}
	return false;
}

/* Act on the job's timers: the simulated end, the timeout, SIGKILL after the grace period. */
void
job_tick(Job *job, int64_t now)
{
	if (job->phase == JOB_RUNNING && job->deadline_ms && now >= job->deadline_ms)
	{
		log_event(job->id, "timeout", "past the handler's timeout of %gs", job->timeout_s);
		job_stop(job, STOP_TIMEOUT, now);
	}
	if (job->phase == JOB_RUNNING && job->simulate && now >= job->end_ms)
	{
		log_event(job->id, "exited", "simulated run of %.3fs done", job->sim_runtime_s);
		job_conclude(job);
	}
	if (job->phase == JOB_STOPPING && !job->exited && job->kill_ms && now >= job->kill_ms)
	{
		log_event(job->id, "killing", "still running after SIGTERM; signal=SIGKILL");
		signal_job(job, SIGKILL);
		job->kill_ms = 0;
	}
}

/* The job's next timer in now_ms() time, or 0 when it has none. */
int64_t
job_next_timer(const Job *job)
{
	int64_t		next = 0;

#define CONSIDER(t) do { if ((t) && (next == 0 || (t) < next)) next = (t); } while (0)
	if (job->phase == JOB_RUNNING)
	{
		CONSIDER(job->deadline_ms);
		if (job->simulate)
			CONSIDER(job->end_ms);
	}
	if (job->phase == JOB_STOPPING && !job->exited)
		CONSIDER(job->kill_ms);
#undef CONSIDER
	return next;
}

/*
 * tinytemp_worker.h
 *	  Declarations shared by the source files of tinytemp-worker, the libpq
 *	  program that claims tinytemp jobs, runs them and reports back.
 */
#ifndef TINYTEMP_WORKER_H
#define TINYTEMP_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define TT_VERSION "0.1"

/* The channel tinytemp_enqueue notifies, with the queue name as payload. */
#define TT_NOTIFY_CHANNEL "tinytemp_jobs"

/* The most jobs one tinytemp_ack_many call takes (the server's limit). */
#define TT_MAX_ACKS_PER_CALL 1000

/* The lease a session gets when tinytemp.lease_timeout cannot be read. */
#define TT_DEFAULT_LEASE_MS 30000

/* Stdout lines longer than this are neither progress, a checkpoint nor a result. */
#define TT_MAX_LINE (1024 * 1024)
/* How much of a handler's stderr a failure report quotes. */
#define TT_STDERR_TAIL 2048
/* A chatty handler's stderr is logged up to this many lines per job. */
#define TT_STDERR_LOG_LINES 500
/* Larger job fields reach the handler on stdin only, not in its environment. */
#define TT_MAX_ENV_VALUE (32 * 1024)
/* Metric values held for one job between two sends; later records are dropped. */
#define TT_METRICS_BUFFER_VALUES 50000
#define TT_METRICS_BUFFER_BYTES (8 * 1024 * 1024)
/* The longest metric name the server takes, in characters. */
#define TT_METRIC_NAME_MAX 200
/* The bounds that --log-max-lines and --log-max-bytes may set (the server takes 100000 lines a call). */
#define TT_LOG_MAX_LINES_LIMIT 100000
#define TT_LOG_MAX_BYTES_LIMIT (64 * 1024 * 1024)
/* The datasets one attempt may register, and their bytes; later ones are ignored. */
#define TT_MAX_DATASETS 100
#define TT_DATASETS_MAX_BYTES (8 * 1024 * 1024)

/* ---- util.c: memory, strings, time ---- */

/* A growable, always NUL-terminated byte string. */
typedef struct StrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} StrBuf;

extern void *xmalloc(size_t size);
extern void *xrealloc(void *ptr, size_t size);
extern char *xstrdup(const char *s);
extern char *xstrndup(const char *s, size_t n);
extern char *xasprintf(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void sb_init(StrBuf *sb);
extern void sb_append(StrBuf *sb, const char *data, size_t len);
extern void sb_appends(StrBuf *sb, const char *s);
extern void sb_appendf(StrBuf *sb, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void sb_reset(StrBuf *sb);
extern void sb_free(StrBuf *sb);
extern char *sb_steal(StrBuf *sb);
extern void strv_free(char **v);
extern size_t strv_len(char *const *v);
extern char **strv_dup(char *const *v);
extern int64_t now_ms(void);
extern int64_t now_us(void);
extern void sb_append_timestamp(StrBuf *sb);
extern double random_unit(void);
extern void random_seed(void);
extern bool parse_seconds(const char *s, double *out);
extern bool parse_int(const char *s, long long min, long long max, long long *out);
extern int	set_nonblocking(int fd);

/* ---- json.c: just enough JSON for results, progress and labels ---- */

extern bool json_valid(const char *s, size_t len);
extern bool json_is_object(const char *s, size_t len);
extern bool json_object_member(const char *s, size_t len, const char *key, size_t *value_off,
							   size_t *value_len);
extern int	json_number_object_size(const char *s, size_t len);
extern bool json_is_integral(const char *s, size_t len);
extern void json_append_string(StrBuf *sb, const char *s);
extern char *utf8_sanitize(const char *s, size_t len);

/* ---- log.c: one line per event on stderr ---- */

extern void log_set_worker(const char *name);
extern void log_set_verbose(bool verbose);
extern bool log_is_verbose(void);
extern void log_event(int64_t job_id, const char *event, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern void log_debug(int64_t job_id, const char *event, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* job_id for events that concern no job */
#define NO_JOB ((int64_t) -1)

/* ---- config.c: the command line and the handler config file ---- */

/* How one job_type is run. */
typedef struct Handler
{
	char	   *job_type;		/* the section name; "*" matches any job_type */
	bool		simulate;		/* the built-in simulate handler */
	char	  **argv;			/* executable and arguments, NULL-terminated */
	char	   *workdir;		/* NULL: the worker's own */
	char	  **env;			/* extra "NAME=value" entries, NULL-terminated */
	double		timeout_s;		/* 0: none */
	double		kill_grace_s;	/* SIGTERM to SIGKILL; < 0: the worker's default */
	char	   *origin;			/* file:line or "--handler", for messages */
} Handler;

typedef struct HandlerTable
{
	Handler    *items;
	int			n;
} HandlerTable;

typedef struct Config
{
	const char *conninfo;
	char	   *name;
	int			slots;
	const char *config_file;
	char	  **handler_args;	/* --handler TYPE=COMMAND, in order */
	char	  **labels;			/* --label KEY=VALUE, in order */
	int			cpus;			/* < 0: introspect */
	long long	memory_mb;		/* < 0: introspect */
	int			gpus;			/* < 0: introspect */
	int		   *gpu_indices;	/* --gpu-indices, or NULL */
	int			ngpu_indices;
	const char *gpu_type;		/* NULL: introspect */
	bool		limits;			/* CPU and memory limits with cgroups (not --no-limits) */
	double		poll_interval_s;
	double		drain_timeout_s;
	double		kill_grace_s;
	bool		listen;
	bool		verbose;
	const char *metrics_address;	/* NULL or "": no endpoint */
	long long	log_max_lines;	/* a job's log lines kept per attempt */
	long long	log_max_bytes;	/* and their bytes */
	HandlerTable handlers;
} Config;

extern void config_parse_args(Config *cfg, int argc, char **argv);
extern bool config_load_handlers(Config *cfg, HandlerTable *out, char **error);
extern const Handler *config_find_handler(const HandlerTable *table, const char *job_type);
extern void handlers_free(HandlerTable *table);
extern void config_free(Config *cfg);
extern bool split_command(const char *s, char ***argv_out, char **error);

/* ---- hw.c: what this machine offers ---- */

typedef struct Hardware
{
	int			cpus;
	long long	memory_mb;
	int			gpus;
	char	   *gpu_type;		/* short type such as "H100", or NULL */
	char	   *gpu_name;		/* nvidia-smi's full name, or NULL */
	int		   *gpu_indices;	/* the GPUs' indices, gpus of them, or NULL */
} Hardware;

/* The longest list of GPU indices (--gpu-indices, nvidia-smi) the worker takes. */
#define TT_MAX_GPUS 1024

extern void hw_detect(Hardware *hw, bool want_cpus, bool want_memory, bool want_gpus);
extern void hw_set_gpu_indices(Hardware *hw, const int *indices, int n);
extern void hw_free(Hardware *hw);
extern char *gpu_list_text(const int *indices, int n, const char *sep);
extern void gpu_pool_init(const Hardware *hw);
extern bool gpu_pool_take(int n, int **indices);
extern void gpu_pool_release(int *indices, int n);
extern int	gpu_pool_free_count(void);
extern void gpu_pool_free(void);

/* ---- limits.c: CPU and memory limits with cgroups ---- */

typedef enum LimitsMode
{
	LIMITS_OFF = 0,
	LIMITS_CGROUP_V1,
	LIMITS_CGROUP_V2
} LimitsMode;

/* The cgroup hierarchies a job's cgroup may span: v1's cpu, memory, cpuset and cpuacct. */
#define TT_CGROUP_HIERARCHIES 4

/* A job's own cgroup, under the worker's parent cgroup in each hierarchy. */
typedef struct JobCgroup
{
	char	   *name;			/* "job-ID-aN"; NULL when the job has none */
	bool		made[TT_CGROUP_HIERARCHIES];	/* created in hierarchy i */
	int		   *cpus;			/* its cpuset's CPUs, as positions in the worker's */
	int			ncpus;
} JobCgroup;

extern LimitsMode limits_init(const char *worker_name, bool enabled);
extern const char *limits_mode_name(void);
extern bool limits_job_create(JobCgroup *cg, int64_t job_id, int attempt, int cpus,
							  long long memory_mb, char **error);
extern char *limits_job_cpuset(const JobCgroup *cg);
extern int	limits_job_open_procs(const JobCgroup *cg, int *fds, int max, char **error);
extern bool limits_job_oom_killed(const JobCgroup *cg, bool sigkilled);
extern void limits_job_usage(const JobCgroup *cg, double *cpu_s, long long *peak_mb);
extern void limits_job_remove(JobCgroup *cg);
extern void limits_tick(int64_t now);
extern int64_t limits_next_timer(void);
extern void limits_shutdown(void);

/* ---- runner.c: handler processes ---- */

/* Why the worker stopped a job before it ended by itself. */
typedef enum StopReason
{
	STOP_NONE = 0,
	STOP_TIMEOUT,				/* past the handler's timeout: fail, retryable */
	STOP_CANCEL,				/* the job was cancelled: nothing to report */
	STOP_PREEMPT,				/* the scheduler wants the slot: save a checkpoint, which
								 * puts the job back in the queue, and report nothing else */
	STOP_LEASE_LOST,			/* another worker may own it now: report nothing */
	STOP_SHUTDOWN				/* the worker is exiting: fail, retryable */
} StopReason;

typedef enum JobPhase
{
	JOB_FREE = 0,				/* an empty slot */
	JOB_RUNNING,				/* the handler runs */
	JOB_STOPPING,				/* told to stop, not yet gone */
	JOB_DONE					/* ended; its report has not reached the database */
} JobPhase;

typedef enum Report
{
	REPORT_NONE = 0,			/* nothing to send: drop the job */
	REPORT_ACK,
	REPORT_FAIL,
	REPORT_PREEMPTED			/* the checkpoint that hands the job back */
} Report;

/* One claimed job in a slot, from claim to report. */
typedef struct Job
{
	JobPhase	phase;
	int64_t		id;
	int			attempt;
	int			max_attempts;
	char	   *job_type;
	char	   *json;			/* the claimed row as JSON: the handler's stdin */
	char	  **env;			/* the handler's whole environment */

	/* what the job asked for, and what it was given */
	int			cpus;
	long long	memory_mb;
	int			gpus;
	int		   *gpu_indices;	/* the GPUs it holds (gpus of them) until its handler ends */
	char	   *gpu_list;		/* the GPUs it was given, "0,2" ("" for none), kept to the end */
	bool		gpus_to_record; /* tinytemp_set_gpus is still to be called */
	int64_t		gpus_record_ms; /* its next try, after a passing refusal */
	JobCgroup	cgroup;			/* its cgroup while its handler runs */
	bool		oom_killed;		/* the kernel killed in its cgroup at the memory limit */

	/* the built-in simulate handler */
	bool		simulate;
	double		sim_runtime_s;
	bool		sim_fail;

	/* a handler process */
	pid_t		pid;			/* also its process group; 0 when none */
	int			in_fd;
	int			out_fd;
	int			err_fd;
	size_t		in_off;
	bool		exited;
	int			wait_status;
	StrBuf		out_line;		/* the stdout line being read */
	bool		out_overflow;	/* out_line passed TT_MAX_LINE */
	char	   *last_line;		/* the last complete non-blank stdout line, checkpoints aside */
	char	   *progress;		/* the latest JSON-object stdout line not yet sent */
	char	   *checkpoint;		/* the latest {"checkpoint": VALUE} line's VALUE not yet saved */
	char	   *saved_checkpoint;	/* the latest one saved, else the one claimed with, or NULL */
	StrBuf		err_line;		/* the stderr line being read, for the log */
	int			err_lines;		/* stderr lines logged so far */
	char		err_tail[TT_STDERR_TAIL];	/* ring of the last stderr bytes */
	size_t		err_tail_len;	/* bytes written to the ring so far, in total */

	/*
	 * Experiment tracking: metric records and log lines not yet sent, each
	 * a list of JSON objects separated by ", " (data NULL while empty).
	 */
	bool		track;			/* collect them (the server can take them) */
	long long	log_max_lines;	/* the attempt's bounds on its log */
	long long	log_max_bytes;
	StrBuf		err_full;		/* the whole stderr line being read, for the job's log */
	bool		err_overflow;	/* err_full passed TT_MAX_LINE */
	StrBuf		metrics_out;
	int			metrics_n;		/* records in it */
	int			metrics_values; /* metric values in them */
	long long	metrics_dropped;	/* records dropped since the last send: buffer full */
	bool		metrics_warned; /* a malformed metrics line was logged */
	StrBuf		logs_out;
	int			logs_n;
	long long	log_lines_kept; /* in this attempt */
	long long	log_bytes_kept;
	long long	log_lines_dropped;	/* past a bound, or too long to keep */
	bool		log_full;		/* a bound was reached: no more lines */
	bool		log_note_added; /* the "(N more lines not kept)" line */

	/*
	 * The attempt's output datasets: the objects of its {"dataset": {...}}
	 * lines, separated by ", ", registered only with the job's ack.
	 */
	StrBuf		datasets;
	int			datasets_n;
	long long	datasets_ignored;	/* past TT_MAX_DATASETS or TT_DATASETS_MAX_BYTES */
	bool		datasets_warned;	/* a "dataset" key without an object was logged */

	/* times, in now_ms() milliseconds; 0 when not set */
	int64_t		started_ms;
	int64_t		end_ms;			/* simulate: when it is done */
	int64_t		deadline_ms;	/* the handler's timeout */
	int64_t		kill_ms;		/* when SIGKILL follows SIGTERM */
	int64_t		heartbeat_ms;	/* next heartbeat */
	int64_t		report_ms;		/* next try of a report that failed */
	double		timeout_s;
	double		kill_grace_s;
	StopReason	stop;
	bool		preempt_asked;	/* a heartbeat answered 'preempt' */

	/* the outcome, once done */
	Report		report;
	char	   *result;			/* ack: JSON or NULL */
	char	   *error;			/* fail: text */
	bool		retryable;
} Job;

extern void job_reset(Job *job);
extern bool job_start(Job *job, const Handler *handler, char **error);
extern void job_stop(Job *job, StopReason reason, int64_t now);
extern void job_finish(Job *job, Report report, char *result, char *error, bool retryable);
extern int	job_pollfds(Job *job, struct pollfd *fds, int max);
extern void job_service_fds(Job *job);
extern bool job_reap(pid_t pid, int status, Job *jobs, int njobs);
extern void job_tick(Job *job, int64_t now);
extern int64_t job_next_timer(const Job *job);
extern const char *stop_reason_name(StopReason reason);
extern bool runner_find_executable(const char *name, char **path);
extern void job_add_log_note(Job *job);
extern void job_drop_tracking(Job *job);
extern void job_drop_datasets(Job *job);
extern void job_release(Job *job);

/* ---- db.c: the connection and the SQL API ---- */

/*
 * Wait until fd has one of events or deadline_ms passes, serving the
 * handlers' pipes and the signals meanwhile: queries wait through it so
 * that no handler stalls on a full pipe while the database is slow.
 * Returns fd's revents, 0 when it had none yet.
 */
typedef short (*DbWaitHook) (int fd, short events, int64_t deadline_ms);

typedef enum DbState
{
	DB_DISCONNECTED = 0,
	DB_CONNECTING,				/* a connector thread is at work */
	DB_CONNECTED
} DbState;

typedef struct Db
{
	DbState		state;
	PGconn	   *conn;
	int			connector_fd;	/* readable when the connector thread is done */
	void	   *connector;		/* its private state */
	int64_t		next_connect_ms;
	int64_t		backoff_ms;
	bool		notified;		/* a NOTIFY arrived since the last claim */
	int64_t		lease_ms;
	int			failures;		/* connection attempts failed in a row */
	DbWaitHook	wait;
	char		sqlstate[6];	/* the SQLSTATE of the last error the server sent, or "" */
	char	   *server_message; /* and its message ("PRIMARY: DETAIL"), or NULL */
} Db;

/* What a call through the SQL API came to. */
typedef enum DbOutcome
{
	DB_OK = 0,
	DB_LOST,					/* the connection broke: try again once back */
	DB_NOT_HELD,				/* TT002 or TT003: the report was discarded */
	DB_NOT_WORKER,				/* TT001: this incarnation is gone */
	DB_BAD_INPUT,				/* class 22: the server refused a value */
	DB_TRANSIENT,				/* worth another try later */
	DB_UNSUPPORTED,				/* 42883: the server's tinytemp lacks the function */
	DB_ERROR					/* anything else */
} DbOutcome;

extern void db_init(Db *db, DbWaitHook hook);
extern void db_connect_start(Db *db, const char *conninfo, const char *worker_name);
extern bool db_connect_finish(Db *db, char **error);
extern void db_lost(Db *db, const char *why);
extern void db_close(Db *db);
extern int	db_socket(const Db *db);
extern void db_consume(Db *db);
extern DbOutcome db_exec(Db *db, PGresult **res, const char *sql, int nparams,
						 const char *const *values, char **error);
extern DbOutcome db_setup_session(Db *db, bool listen, char **error);
extern DbOutcome db_register(Db *db, const char *name, const Hardware *hw, int slots,
							 char **labels, int64_t *worker_id, char **error);
extern DbOutcome db_claim(Db *db, int64_t worker_id, int max_jobs, PGresult **res, char **error);
extern DbOutcome db_heartbeat(Db *db, int64_t worker_id, int64_t job_id, const char *progress,
							  char **answer, char **error);
extern DbOutcome db_checkpoint(Db *db, int64_t worker_id, int64_t job_id, const char *checkpoint,
							 char **error);
extern DbOutcome db_ack(Db *db, int64_t worker_id, int64_t job_id, const char *result,
						char **error);
extern DbOutcome db_ack_and_claim(Db *db, int64_t worker_id, int n, const int64_t *job_ids,
								  const char *const *results, int max_jobs, PGresult **res,
								  char **error);
extern DbOutcome db_ack_many(Db *db, int64_t worker_id, int n, const int64_t *job_ids,
							 const char *const *results, char **error);
extern DbOutcome db_fail(Db *db, int64_t worker_id, int64_t job_id, const char *message,
						 bool retryable, char **new_state, char **error);
extern DbOutcome db_ack_datasets(Db *db, int64_t worker_id, int64_t job_id, const char *result,
								const char *datasets, char **version, char **names, char **error);
extern DbOutcome db_report_metrics(Db *db, int64_t worker_id, int64_t job_id, const char *records,
								   long long *kept, char **error);
extern DbOutcome db_set_gpus(Db *db, int64_t worker_id, int64_t job_id, const char *gpu_list,
							 char **error);
extern DbOutcome db_report_logs(Db *db, int64_t worker_id, int64_t job_id, const char *lines,
								long long *kept, char **error);

/* Columns of db_claim's result, in order. */
enum ClaimColumn
{
	CLAIM_ID = 0,
	CLAIM_JOB_TYPE,
	CLAIM_ATTEMPTS,
	CLAIM_MAX_ATTEMPTS,
	CLAIM_RUNTIME_S,
	CLAIM_FAIL_ATTEMPTS,
	CLAIM_JSON,
	CLAIM_PARAMS,
	CLAIM_CHECKPOINT,
	CLAIM_MODEL,
	CLAIM_QUEUE,
	CLAIM_EPOCHS,
	CLAIM_BATCH_SIZE,
	CLAIM_DATASET_SIZE,
	CLAIM_CPUS,
	CLAIM_MEMORY_MB,
	CLAIM_GPUS,
	CLAIM_NCOLUMNS
};

/* ---- metrics.c: the Prometheus endpoint ---- */

/* How a job left its slot, for tinytemp_worker_jobs_total. */
typedef enum JobOutcome
{
	OUTCOME_SUCCEEDED = 0,		/* acked */
	OUTCOME_FAILED,				/* its failure reported */
	OUTCOME_CANCELLED,			/* cancelled while it ran */
	OUTCOME_PREEMPTED,			/* handed back with its checkpoint */
	OUTCOME_LOST,				/* no longer ours (TT003, a lost lease), or unreportable */
	OUTCOME_COUNT
} JobOutcome;

/* Connections served at once; each is one entry of the poll set, and the listener one more. */
#define METRICS_MAX_CONNS 16
#define METRICS_MAX_POLLFDS (METRICS_MAX_CONNS + 1)

extern bool metrics_listen(const char *address, char **error);
extern void metrics_close(void);
extern int	metrics_pollfds(struct pollfd *fds, int max, int64_t now);
extern void metrics_service(const struct pollfd *fds, int64_t now);
extern int64_t metrics_next_timer(void);
extern void metrics_count_job(JobOutcome outcome);
extern void metrics_observe_handler(const char *job_type, double seconds);
extern void metrics_observe_heartbeat(double seconds);
extern void metrics_count_reconnect(void);
extern void metrics_set_state(int slots, int busy, bool connected);

#endif							/* TINYTEMP_WORKER_H */

/*
 * config.c
 *	  The command line and the handler config file of tinytemp-worker.
 *
 * A handler is an executable with its arguments, split into words here
 * once and for all: nothing from a job is ever added to them, and nothing
 * is ever run through a shell.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
"tinytemp-worker " TT_VERSION ": claims tinytemp jobs, runs them, reports back.\n"
"\n"
"Usage: tinytemp-worker [OPTION]...\n"
"\n"
"Connection:\n"
"  --conninfo STR       libpq connection string or URI (default: empty, so the\n"
"                       PGHOST, PGPORT, PGUSER, PGDATABASE... variables apply).\n"
"                       A multi-host string with target_session_attrs=read-write\n"
"                       follows a primary that moved.\n"
"  --name NAME          worker name (default: the host name).  Starting a worker\n"
"                       under a name releases at once the jobs that the earlier\n"
"                       worker of that name still held.\n"
"\n"
"Work:\n"
"  --slots N            jobs run at once (default 1)\n"
"  --config FILE        handler config file (format below)\n"
"  --handler TYPE=CMD   run jobs of job_type TYPE with the command CMD, split\n"
"                       into words as in the config file; TYPE may be * for\n"
"                       any type.  Repeatable; beats the section of the same\n"
"                       type in --config.\n"
"  --poll-interval S    claim at least every S seconds even without a\n"
"                       notification (default 5)\n"
"  --no-listen          do not LISTEN; rely on polling alone (for comparisons)\n"
"  --drain-timeout S    on SIGTERM or SIGINT, how long running jobs may still\n"
"                       take before they are stopped and failed as retryable\n"
"                       (default 60)\n"
"  --kill-grace S       default time between SIGTERM and SIGKILL when a handler\n"
"                       is stopped (default 10)\n"
"\n"
"Hardware, registered with the worker (default: introspected from /proc, the\n"
"cgroup limits and nvidia-smi when it exists):\n"
"  --cpus N  --memory-mb N  --gpus N  --gpu-type T\n"
"  --gpu-indices LIST   the worker's GPUs by index, such as 0,2,5 (default: the\n"
"                       indices nvidia-smi gives, or 0 to N-1 with --gpus N)\n"
"  --label KEY=VALUE    an extra label (repeatable)\n"
"\n"
"What a job gets: its GPUs, the lowest free indices of the worker's, held\n"
"until its handler ends, in CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and\n"
"TINYTEMP_GPUS (a job without GPUs: CUDA_VISIBLE_DEVICES empty,\n"
"NVIDIA_VISIBLE_DEVICES=void, TINYTEMP_GPUS empty).  When the worker may\n"
"create cgroups (v2, or v1's cpu and memory hierarchies; as root, say), each\n"
"handler runs in a cgroup of its own with a CPU quota of the job's cpus, as\n"
"many CPUs pinned where cpuset can be had, and a memory limit of its\n"
"memory_mb without swap; a handler the kernel kills at that limit fails the\n"
"attempt (retryable) with \"out of memory: limit N MB\".  What a handler\n"
"leaves running in its cgroup is killed when it ends.  Without cgroups the\n"
"worker says why once at start and runs jobs without limits.\n"
"  --no-limits          run jobs without cgroups, CPU and memory limits\n"
"\n"
"Observability:\n"
"  --metrics-address HOST:PORT\n"
"                       serve Prometheus metrics at http://HOST:PORT/metrics\n"
"                       (default: none).  An empty host (:PORT) is 127.0.0.1;\n"
"                       0.0.0.0:PORT or [::]:PORT listens on every interface.\n"
"                       Port 0 takes a free port, which the log says.\n"
"  --log-max-lines N    a job's log keeps at most N stdout and stderr lines\n"
"                       per attempt (default 1000, at most 100000)\n"
"  --log-max-bytes N    ... and at most N bytes of them (default 1048576, at\n"
"                       most 67108864).  Either at 0: no log is kept.\n"
"\n"
"Other:\n"
"  -v, --verbose        also log heartbeats and notifications\n"
"  --help               this text\n"
"  --version            the version\n"
"\n"
"Handler config file: one section per job_type, '#' starts a comment line.\n"
"\n"
"  [training]                         the job_type; [*] matches any other type\n"
"  command = /usr/bin/python3 -u train.py --fast\n"
"  workdir = /srv/ml                  optional working directory\n"
"  env = OMP_NUM_THREADS=4            optional extra variable (repeatable)\n"
"  timeout = 3600                     optional: kill and fail after S seconds\n"
"  kill_grace = 30                    optional: SIGTERM to SIGKILL, in seconds\n"
"\n"
"  The command is split at blanks; '...' quotes literally and \"...\" allows\n"
"  \\\" and \\\\.  There is no shell: no variables, globs, pipes or redirections.\n"
"  A bare name is looked up in PATH; a relative path with a '/' (and a relative\n"
"  workdir) is taken from the config file's directory.  The command 'simulate'\n"
"  selects the built-in handler, which sleeps params.runtime_s seconds (else\n"
"  the predicted runtime) and fails while the attempt is at most\n"
"  params.fail_attempts.\n"
"\n"
"What a handler gets: the claimed job row as one JSON object on stdin; the\n"
"worker's environment (less PGPASSWORD) plus TINYTEMP_JOB_ID, TINYTEMP_JOB_TYPE,\n"
"TINYTEMP_ATTEMPT, TINYTEMP_MAX_ATTEMPTS, TINYTEMP_PARAMS, TINYTEMP_CHECKPOINT,\n"
"TINYTEMP_MODEL, TINYTEMP_QUEUE, TINYTEMP_EPOCHS, TINYTEMP_BATCH_SIZE,\n"
"TINYTEMP_DATASET_SIZE, TINYTEMP_INPUTS (the job's input datasets, a JSON\n"
"array), TINYTEMP_WORKER_ID and TINYTEMP_WORKER_NAME (each set only when not\n"
"NULL and under 32 KiB); its own process group.\n"
"What it gives back: exit status 0 acks the job, with the last stdout line as\n"
"the result when that line is JSON; any stdout line that is a JSON object is\n"
"sent as progress with the next heartbeat; any other exit fails the attempt\n"
"(retried with backoff until max_attempts) with the status and the tail of\n"
"stderr.  Checkpoints: a stdout line that is a JSON object with a top-level\n"
"key \"checkpoint\", such as {\"checkpoint\": {\"epoch\": 3, \"weights\": [...]}},\n"
"makes the worker save that key's value with tinytemp_checkpoint: the latest\n"
"one, at most once per heartbeat (just after it), and always before the job\n"
"is acked or failed.  The job keeps it, and the next attempt gets it in\n"
"TINYTEMP_CHECKPOINT and the \"checkpoint\" field on stdin.  Such a line is\n"
"neither progress nor the result.  Metrics: a stdout line such as\n"
"{\"metrics\": {\"loss\": 0.31, \"accuracy\": 0.9}, \"step\": 12} (a JSON object\n"
"with a top-level \"metrics\" object of numbers, and an optional integer\n"
"\"step\") is neither progress nor the result either: the worker sends such\n"
"records with tinytemp_report_metrics, and every stdout and stderr line, up to\n"
"--log-max-lines and --log-max-bytes per attempt, with tinytemp_report_logs;\n"
"both at most once per heartbeat (just after it) and always before the ack\n"
"or the fail.  Datasets: a stdout line such as {\"dataset\": {\"name\": \"clicks\",\n"
"\"layer\": \"raw\", \"uri\": \"/data/raw/clicks/v3\", \"rows\": 1234}} (a JSON\n"
"object with a top-level \"dataset\" object) declares an output dataset, and is\n"
"neither progress nor the result; when the handler exits 0, the worker\n"
"registers them all (at most 100) with tinytemp_register_dataset in the\n"
"transaction of the ack: a dataset the server refuses registers none and\n"
"fails the attempt for good.  A handler that fails registers nothing.\n"
"Stderr lines are also logged (500 at most per job).  An\n"
"unknown job_type fails the job for good.  When the handler exits, what it\n"
"left in its process group is killed.\n"
"\n"
"Signals: SIGTERM or SIGINT drains (no more claims; running jobs get the drain\n"
"timeout) and exits 0; a second one stops the running jobs at once, a third\n"
"kills them.  SIGHUP reloads the config file.\n"
"\n"
"Leases: a job's lease is the session's tinytemp.lease_timeout (a superuser may\n"
"set it with PGOPTIONS='-c tinytemp.lease_timeout=2s'); the worker heartbeats\n"
"every lease/3.  A report the server refuses because the worker no longer holds\n"
"the job (SQLSTATE TT003) is logged and dropped, never retried.  A job that\n"
"is cancelled or preempted gets SIGTERM, then SIGKILL after the grace period;\n"
"once a preempted job's handler has exited, its latest checkpoint is saved,\n"
"which puts the job back in the queue, and nothing else is reported.\n"
"\n"
"Log: one line per event on stderr: TIME worker=NAME job=ID EVENT DETAIL.\n";

enum
{
	OPT_CONNINFO = 256,
	OPT_NAME,
	OPT_SLOTS,
	OPT_CONFIG,
	OPT_HANDLER,
	OPT_CPUS,
	OPT_MEMORY_MB,
	OPT_GPUS,
	OPT_GPU_TYPE,
	OPT_GPU_INDICES,
	OPT_NO_LIMITS,
	OPT_LABEL,
	OPT_POLL_INTERVAL,
	OPT_NO_LISTEN,
	OPT_DRAIN_TIMEOUT,
	OPT_KILL_GRACE,
	OPT_METRICS_ADDRESS,
	OPT_LOG_MAX_LINES,
	OPT_LOG_MAX_BYTES,
	OPT_HELP,
	OPT_VERSION
};

/* Print a usage error and exit 2. */
static void
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "tinytemp-worker: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry \"tinytemp-worker --help\" for more information.\n");
	exit(2);
}

/* Append a string to a NULL-terminated vector. */
static char **
strv_push(char **v, const char *s)
{
	size_t		n = strv_len(v);

	v = xrealloc(v, (n + 2) * sizeof(char *));
	v[n] = xstrdup(s);
	v[n + 1] = NULL;
	return v;
}

/* Parse an integer option or exit with a usage error. */
static long long
int_option(const char *name, const char *arg, long long min, long long max)
{
	long long	v;

	if (!parse_int(arg, min, max, &v))
		usage_error(name, arg);
	return v;
}

/* Parse a seconds option or exit with a usage error. */
static double
seconds_option(const char *name, const char *arg)
{
	double		v;

	if (!parse_seconds(arg, &v))
		usage_error(name, arg);
	return v;
}

/*
 * Parse "0,2,5" into a new array of distinct non-negative indices, at most
 * TT_MAX_GPUS of them; false when it is not that.
 */
static bool
parse_gpu_indices(const char *arg, int **out, int *n)
{
	int		   *v = xmalloc(TT_MAX_GPUS * sizeof(int));
	const char *p = arg;
	int			count = 0;

	for (;;)
	{
		size_t		len = strcspn(p, ",");
		char	   *item = xstrndup(p, len);
		long long	index;
		bool		ok = parse_int(item, 0, INT32_MAX, &index) && count < TT_MAX_GPUS;

		free(item);
		for (int i = 0; ok && i < count; i++)
			ok = v[i] != (int) index;
		if (!ok)
		{
			free(v);
			return false;
		}
		v[count++] = (int) index;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = v;
	*n = count;
	return true;
}

/* Fill cfg from the command line; exits on --help, --version and usage errors. */
void
config_parse_args(Config *cfg, int argc, char **argv)
{
	static const struct option options[] = {
		{"conninfo", required_argument, NULL, OPT_CONNINFO},
		{"name", required_argument, NULL, OPT_NAME},
		{"slots", required_argument, NULL, OPT_SLOTS},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"handler", required_argument, NULL, OPT_HANDLER},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"memory-mb", required_argument, NULL, OPT_MEMORY_MB},
		{"gpus", required_argument, NULL, OPT_GPUS},
		{"gpu-type", required_argument, NULL, OPT_GPU_TYPE},
		{"gpu-indices", required_argument, NULL, OPT_GPU_INDICES},
		{"no-limits", no_argument, NULL, OPT_NO_LIMITS},
		{"label", required_argument, NULL, OPT_LABEL},
		{"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
		{"no-listen", no_argument, NULL, OPT_NO_LISTEN},
		{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
		{"kill-grace", required_argument, NULL, OPT_KILL_GRACE},
		{"metrics-address", required_argument, NULL, OPT_METRICS_ADDRESS},
		{"log-max-lines", required_argument, NULL, OPT_LOG_MAX_LINES},
		{"log-max-bytes", required_argument, NULL, OPT_LOG_MAX_BYTES},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	int			c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->conninfo = "";
	cfg->slots = 1;
	cfg->cpus = -1;
	cfg->memory_mb = -1;
	cfg->gpus = -1;
	cfg->poll_interval_s = 5;
	cfg->drain_timeout_s = 60;
	cfg->kill_grace_s = 10;
	cfg->listen = true;
	cfg->limits = true;
	cfg->log_max_lines = 1000;
	cfg->log_max_bytes = 1048576;
	cfg->handler_args = strv_dup(NULL);
	cfg->labels = strv_dup(NULL);

	while ((c = getopt_long(argc, argv, "v", options, NULL)) != -1)
	{
		switch (c)
		{
			case OPT_CONNINFO:
				cfg->conninfo = optarg;
				break;
			case OPT_NAME:
				if (*optarg == '\0')
					usage_error("--name must not be empty%s", "");
				free(cfg->name);
				cfg->name = xstrdup(optarg);
				break;
			case OPT_SLOTS:
				cfg->slots = (int) int_option("invalid --slots: \"%s\" (1 to 1000)", optarg, 1, 1000);
				break;
			case OPT_CONFIG:
				cfg->config_file = optarg;
				break;
			case OPT_HANDLER:
				if (strchr(optarg, '=') == NULL || optarg[0] == '=')
					usage_error("invalid --handler: \"%s\" (want TYPE=COMMAND)", optarg);
				cfg->handler_args = strv_push(cfg->handler_args, optarg);
				break;
			case OPT_CPUS:
				cfg->cpus = (int) int_option("invalid --cpus: \"%s\"", optarg, 1, INT_MAX);
				break;
			case OPT_MEMORY_MB:
				cfg->memory_mb = int_option("invalid --memory-mb: \"%s\"", optarg, 1, LLONG_MAX);
				break;
			case OPT_GPUS:
				cfg->gpus = (int) int_option("invalid --gpus: \"%s\"", optarg, 0, INT_MAX);
				break;
			case OPT_GPU_TYPE:
				cfg->gpu_type = optarg;
				break;
			case OPT_GPU_INDICES:
				free(cfg->gpu_indices);
				cfg->gpu_indices = NULL;
				cfg->ngpu_indices = 0;
				if (!parse_gpu_indices(optarg, &cfg->gpu_indices, &cfg->ngpu_indices))
					usage_error("invalid --gpu-indices: \"%s\" (want distinct GPU indices such as 0,2,5)", optarg);
				break;
			case OPT_NO_LIMITS:
				cfg->limits = false;
				break;
			case OPT_LABEL:
				if (strchr(optarg, '=') == NULL || optarg[0] == '=')
					usage_error("invalid --label: \"%s\" (want KEY=VALUE)", optarg);
				cfg->labels = strv_push(cfg->labels, optarg);
				break;
			case OPT_POLL_INTERVAL:
				cfg->poll_interval_s = seconds_option("invalid --poll-interval: \"%s\"", optarg);
				if (cfg->poll_interval_s < 0.01)
					usage_error("--poll-interval must be at least 0.01%s", "");
				break;
			case OPT_NO_LISTEN:
				cfg->listen = false;
				break;
			case OPT_DRAIN_TIMEOUT:
				cfg->drain_timeout_s = seconds_option("invalid --drain-timeout: \"%s\"", optarg);
				break;
			case OPT_KILL_GRACE:
				cfg->kill_grace_s = seconds_option("invalid --kill-grace: \"%s\"", optarg);
				break;
			case OPT_METRICS_ADDRESS:
				cfg->metrics_address = optarg;
				break;
			case OPT_LOG_MAX_LINES:
				cfg->log_max_lines = int_option("invalid --log-max-lines: \"%s\" (0 to 100000)", optarg, 0,
												TT_LOG_MAX_LINES_LIMIT);
				break;
			case OPT_LOG_MAX_BYTES:
				cfg->log_max_bytes = int_option("invalid --log-max-bytes: \"%s\" (0 to 67108864)", optarg, 0,
												TT_LOG_MAX_BYTES_LIMIT);
				break;
			case 'v':
				cfg->verbose = true;
				break;
			case OPT_HELP:
				fputs(usage_text, stdout);
				exit(0);
			case OPT_VERSION:
				printf("tinytemp-worker %s\n", TT_VERSION);
				exit(0);
			default:
				fprintf(stderr, "Try \"tinytemp-worker --help\" for more information.\n");
				exit(2);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (cfg->gpu_indices)
	{
		if (cfg->gpus >= 0 && cfg->gpus != cfg->ngpu_indices)
			usage_error("--gpus and --gpu-indices disagree on the number of GPUs%s", "");
		cfg->gpus = cfg->ngpu_indices;
	}

	if (cfg->name == NULL)
	{
		char		host[256];

		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "worker");
		host[sizeof(host) - 1] = '\0';
		cfg->name = xstrdup(host);
	}
}

/*
 * Split a command into words: blanks separate, '...' quotes literally,
 * "..." quotes with \" and \\ as the only escapes, and a backslash outside
 * quotes takes the next character literally.  Nothing else is special.
 */
bool
split_command(const char *s, char ***argv_out, char **error)
{
	char	  **argv = strv_dup(NULL);
	StrBuf		word;
	bool		in_word = false;
	const char *p = s;

	sb_init(&word);
	for (;;)
	{
		char		c = *p;

		if (c == '\0' || c == ' ' || c == '\t')
		{
			if (in_word)
			{
				argv = strv_push(argv, word.data);
				sb_reset(&word);
				in_word = false;
			}
			if (c == '\0')
				break;
			p++;
		}
		else if (c == '\'')
		{
			const char *close = strchr(p + 1, '\'');

			if (close == NULL)
			{
				*error = xstrdup("unterminated '...'");
				goto fail;
			}
			sb_append(&word, p + 1, (size_t) (close - p - 1));
			in_word = true;
			p = close + 1;
		}
		else if (c == '"')
		{
			p++;
			while (*p != '"')
			{
				if (*p == '\0')
				{
					*error = xstrdup("unterminated \"...\"");
					goto fail;
				}
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				sb_append(&word, p, 1);
				p++;
			}
			p++;
			in_word = true;
		}
		else if (c == '\\' && p[1] != '\0')
		{
			sb_append(&word, p + 1, 1);
			in_word = true;
			p += 2;
		}
		else
		{
			sb_append(&word, p, 1);
			in_word = true;
			p++;
		}
	}
	sb_free(&word);
	if (argv[0] == NULL)
	{
		strv_free(argv);
		*error = xstrdup("empty command");
		return false;
	}
	*argv_out = argv;
	return true;

fail:
	sb_free(&word);
	strv_free(argv);
	return false;
}

/* base/path, unless path is absolute. */
static char *
path_from(const char *base, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("%s/%s", base, path);
}

/* Release one handler's memory. */
static void
handler_free(Handler *h)
{
	free(h->job_type);
	strv_free(h->argv);
	free(h->workdir);
	strv_free(h->env);
	free(h->origin);
}

/* Release a table of handlers. */
void
handlers_free(HandlerTable *table)
{
	for (int i = 0; i < table->n; i++)
		handler_free(&table->items[i]);
	free(table->items);
	table->items = NULL;
	table->n = 0;
}

/* Add a handler, replacing one for the same job_type. */
static void
table_put(HandlerTable *table, Handler *h)
{
	for (int i = 0; i < table->n; i++)
	{
		if (strcmp(table->items[i].job_type, h->job_type) == 0)
		{
			handler_free(&table->items[i]);
			table->items[i] = *h;
			return;
		}
	}
	table->items = xrealloc(table->items, (size_t) (table->n + 1) * sizeof(Handler));
	table->items[table->n++] = *h;
}

/*
 * Set a handler's command from its text: split it, make a relative path
 * with a '/' absolute from base, and recognise the built-in simulate.
 */
static bool
handler_set_command(Handler *h, const char *text, const char *base, char **error)
{
	char	  **argv;

	if (!split_command(text, &argv, error))
		return false;
	strv_free(h->argv);
	h->argv = argv;
	h->simulate = (strcmp(argv[0], "simulate") == 0 && argv[1] == NULL);
	if (!h->simulate && strchr(argv[0], '/') != NULL && argv[0][0] != '/')
	{
		char	   *abs = path_from(base, argv[0]);

		free(argv[0]);
		argv[0] = abs;
	}
	return true;
}

/* Trim blanks at both ends, in place. */
static char *
trim(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Whether a job_type section name is acceptable. */
static bool
valid_section_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == '[' || *s == ']')
			return false;
	return true;
}

/* Check a finished section and add it to the table. */
static bool
finish_section(HandlerTable *table, Handler *h, char **error)
{
	if (h->job_type == NULL)
		return true;
	if (h->argv == NULL)
	{
		*error = xasprintf("%s: section [%s] has no command", h->origin, h->job_type);
		handler_free(h);
		memset(h, 0, sizeof(*h));
		return false;
	}
	for (int i = 0; i < table->n; i++)
	{
		if (strcmp(table->items[i].job_type, h->job_type) == 0)
		{
			*error = xasprintf("%s: section [%s] appears twice", h->origin, h->job_type);
			handler_free(h);
			memset(h, 0, sizeof(*h));
			return false;
		}
	}
	table_put(table, h);
	memset(h, 0, sizeof(*h));
	return true;
}

/* Read the config file into table; on error set *error to "FILE:LINE: why". */
static bool
load_file(const char *file, HandlerTable *table, char **error)
{
	FILE	   *f = fopen(file, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	int			lineno = 0;
	char	   *base;
	char		resolved[PATH_MAX];
	Handler		h;
	bool		ok = true;

	if (f == NULL)
	{
		*error = xasprintf("cannot open config file \"%s\": %s", file, strerror(errno));
		return false;
	}
	if (realpath(file, resolved) == NULL)
		snprintf(resolved, sizeof(resolved), "%s", file);
	base = xstrdup(dirname(resolved));
	memset(&h, 0, sizeof(h));

	while (ok && getline(&line, &cap, f) >= 0)
	{
		char	   *s = trim(line);
		char	   *eq;
		char	   *key;
		char	   *value;
		double		secs;

		lineno++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[')
		{
			size_t		n = strlen(s);

			if (!finish_section(table, &h, error))
			{
				ok = false;
				break;
			}
			if (n < 3 || s[n - 1] != ']')
			{
				*error = xasprintf("%s:%d: malformed section header", file, lineno);
				ok = false;
				break;
			}
			s[n - 1] = '\0';
			s = trim(s + 1);
			if (!valid_section_name(s))
			{
				*error = xasprintf("%s:%d: invalid job_type \"%s\"", file, lineno, s);
				ok = false;
				break;
			}
			h.job_type = xstrdup(s);
			h.origin = xasprintf("%s:%d", file, lineno);
			h.kill_grace_s = -1;
			h.env = strv_dup(NULL);
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL)
		{
			*error = xasprintf("%s:%d: expected KEY = VALUE or [JOB_TYPE]", file, lineno);
			ok = false;
			break;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (h.job_type == NULL)
		{
			*error = xasprintf("%s:%d: \"%s\" outside any [JOB_TYPE] section", file, lineno, key);
			ok = false;
			break;
		}
		if (strcmp(key, "command") == 0)
		{
			char	   *why = NULL;

			if (!handler_set_command(&h, value, base, &why))
			{
				*error = xasprintf("%s:%d: invalid command: %s", file, lineno, why);
				free(why);
				ok = false;
			}
		}
		else if (strcmp(key, "workdir") == 0)
		{
			free(h.workdir);
			h.workdir = path_from(base, value);
		}
		else if (strcmp(key, "env") == 0)
		{
			char	   *veq = strchr(value, '=');

			if (veq == NULL || veq == value)
			{
				*error = xasprintf("%s:%d: env wants NAME=VALUE", file, lineno);
				ok = false;
			}
			else
				h.env = strv_push(h.env, value);
		}
		else if (strcmp(key, "timeout") == 0 || strcmp(key, "kill_grace") == 0)
		{
			if (!parse_seconds(value, &secs))
			{
				*error = xasprintf("%s:%d: %s wants a number of seconds", file, lineno, key);
				ok = false;
			}
			else if (key[0] == 't')
				h.timeout_s = secs;
			else
				h.kill_grace_s = secs;
		}
		else
		{
			*error = xasprintf("%s:%d: unknown key \"%s\"", file, lineno, key);
			ok = false;
		}
	}
	if (ok)
		ok = finish_section(table, &h, error);
	else
	{
		handler_free(&h);
	}
	free(line);
	free(base);
	fclose(f);
	return ok;
}

/*
 * Build the handler table: the config file's sections, then each
 * --handler, which replaces a section of the same job_type.
 */
bool
config_load_handlers(Config *cfg, HandlerTable *out, char **error)
{
	HandlerTable table = {NULL, 0};
	char		cwd[PATH_MAX];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), ".");
	if (cfg->config_file && !load_file(cfg->config_file, &table, error))
	{
		handlers_free(&table);
		return false;
	}
	for (char **arg = cfg->handler_args; *arg; arg++)
	{
		const char *eq = strchr(*arg, '=');
		Handler		h;
		char	   *why = NULL;

		memset(&h, 0, sizeof(h));
		h.job_type = xstrndup(*arg, (size_t) (eq - *arg));
		h.origin = xasprintf("--handler %s", h.job_type);
		h.kill_grace_s = -1;
		h.env = strv_dup(NULL);
		if (!handler_set_command(&h, eq + 1, cwd, &why))
		{
			*error = xasprintf("invalid --handler \"%s\": %s", *arg, why);
			free(why);
			handler_free(&h);
			handlers_free(&table);
			return false;
		}
		table_put(&table, &h);
	}
	*out = table;
	return true;
}

/* The handler for job_type: its own section, else [*], else NULL. */
const Handler *
config_find_handler(const HandlerTable *table, const char *job_type)
{
	const Handler *any = NULL;

	for (int i = 0; i < table->n; i++)
	{
		if (strcmp(table->items[i].job_type, job_type) == 0)
			return &table->items[i];
		if (strcmp(table->items[i].job_type, "*") == 0)
			any = &table->items[i];
	}
	return any;
}

/* Release what config_parse_args and config_load_handlers allocated. */
void
config_free(Config *cfg)
{
	free(cfg->name);
	free(cfg->gpu_indices);
	strv_free(cfg->handler_args);
	strv_free(cfg->labels);
	handlers_free(&cfg->handlers);
}

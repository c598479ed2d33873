/*
 * log.c
 *	  The worker's log: one line per event on stderr,
 *	    TIME worker=NAME job=ID EVENT DETAIL
 *	  with the time in UTC to the millisecond and job=- when no job is
 *	  concerned.  Each line goes out in a single write(2), so the lines of
 *	  workers that share a log file do not interleave.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static char worker_name[128] = "-";
static bool verbose = false;

/* Name the worker in every later line. */
void
log_set_worker(const char *name)
{
	snprintf(worker_name, sizeof(worker_name), "%s", name);
}

/* Turn the debug events (heartbeats, notifications) on or off. */
void
log_set_verbose(bool on)
{
	verbose = on;
}

/* Whether debug events are logged. */
bool
log_is_verbose(void)
{
	return verbose;
}

/* Format and write one line; control characters in the detail become spaces. */
static void
log_write(int64_t job_id, const char *event, const char *fmt, va_list ap)
{
	char		line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm	tm;
	size_t		n;
	size_t		start;
	int			saved_errno = errno;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	if (job_id >= 0)
		n += (size_t) snprintf(line + n, sizeof(line) - n, ".%03ldZ worker=%s job=%" PRId64 " %s ",
							   ts.tv_nsec / 1000000, worker_name, job_id, event);
	else
		n += (size_t) snprintf(line + n, sizeof(line) - n, ".%03ldZ worker=%s job=- %s ",
							   ts.tv_nsec / 1000000, worker_name, event);
	if (n >= sizeof(line) - 2)
		n = sizeof(line) - 2;
	start = n;
	vsnprintf(line + n, sizeof(line) - 1 - n, fmt, ap);
	n += strlen(line + n);
	for (size_t i = start; i < n; i++)
		if ((unsigned char) line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
	{
		/* Nowhere left to say so. */
	}
	errno = saved_errno;
}

/* Log an event. */
void
log_event(int64_t job_id, const char *event, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_write(job_id, event, fmt, ap);
	va_end(ap);
}

/* Log an event only with --verbose. */
void
log_debug(int64_t job_id, const char *event, const char *fmt,...)
{
	va_list		ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	log_write(job_id, event, fmt, ap);
	va_end(ap);
}

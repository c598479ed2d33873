/*
 * util.c
 *	  Small helpers of tinytemp-worker: allocation that cannot fail quietly,
 *	  growable strings, string vectors, the clock and number parsing.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Allocate or exit: a worker out of memory cannot do anything useful. */
void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "tinytemp-worker: out of memory\n");
		exit(1);
	}
	return p;
}

/* Reallocate or exit. */
void *
xrealloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "tinytemp-worker: out of memory\n");
		exit(1);
	}
	return p;
}

/* strdup or exit. */
char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* strndup or exit. */
char *
xstrndup(const char *s, size_t n)
{
	char	   *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* A freshly allocated formatted string. */
char *
xasprintf(const char *fmt,...)
{
	StrBuf		sb;
	va_list		ap;
	int			n;

	sb_init(&sb);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	sb.data = xrealloc(sb.data, (size_t) n + 1);
	sb.cap = (size_t) n + 1;
	va_start(ap, fmt);
	vsnprintf(sb.data, sb.cap, fmt, ap);
	va_end(ap);
	return sb.data;
}

/* Start an empty StrBuf. */
void
sb_init(StrBuf *sb)
{
	sb->cap = 64;
	sb->len = 0;
	sb->data = xmalloc(sb->cap);
	sb->data[0] = '\0';
}

/* Make room for `more` bytes and the terminator. */
static void
sb_reserve(StrBuf *sb, size_t more)
{
	if (sb->len + more + 1 <= sb->cap)
		return;
	while (sb->len + more + 1 > sb->cap)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

/* Append len bytes. */
void
sb_append(StrBuf *sb, const char *data, size_t len)
{
	sb_reserve(sb, len);
	memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

/* Append a C string. */
void
sb_appends(StrBuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

/* Append formatted text. */
void
sb_appendf(StrBuf *sb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	sb_reserve(sb, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

/* Empty the string, keeping its memory. */
void
sb_reset(StrBuf *sb)
{
	sb->len = 0;
	sb->data[0] = '\0';
}

/* Release the string's memory. */
void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

/* Hand the string's memory to the caller and leave the StrBuf released. */
char *
sb_steal(StrBuf *sb)
{
	char	   *s = sb->data;

	sb->data = NULL;
	sb->len = sb->cap = 0;
	return s;
}

/* Free a NULL-terminated vector of strings and the strings. */
void
strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* The number of strings in a NULL-terminated vector. */
size_t
strv_len(char *const *v)
{
	size_t		n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* A deep copy of a NULL-terminated vector. */
char **
strv_dup(char *const *v)
{
	size_t		n = strv_len(v);
	char	  **copy = xmalloc((n + 1) * sizeof(char *));

	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	copy[n] = NULL;
	return copy;
}

/* Milliseconds on the monotonic clock: every deadline uses it, so a wall-clock jump moves none. */
int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds on the monotonic clock, for round trips shorter than a millisecond. */
int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Append the wall-clock time now, in UTC to the microsecond, as a timestamptz accepts it. */
void
sb_append_timestamp(StrBuf *sb)
{
	struct timespec ts;
	struct tm	tm;
	char		buf[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	sb_appendf(sb, "%s.%06ldZ", buf, ts.tv_nsec / 1000);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* Seed the jitter generator so that workers started together do not retry in step. */
void
random_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	rng_state ^= ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) getpid() << 40);
	if (rng_state == 0)
		rng_state = 1;
}

/* A uniform draw in [0, 1) for jitter (xorshift64*; no need for more). */
double
random_unit(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double) ((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Parse a non-negative number of seconds such as "2", "0.5" or "1e-3". */
bool
parse_seconds(const char *s, double *out)
{
	char	   *end;
	double		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !isfinite(v) || v < 0)
		return false;
	*out = v;
	return true;
}

/* Parse a decimal integer within [min, max]. */
bool
parse_int(const char *s, long long min, long long max, long long *out)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Make a descriptor non-blocking, so that no single peer can stall the loop. */
int
set_nonblocking(int fd)
{
	int			flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

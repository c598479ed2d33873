/*
 * metrics.c
 *	  The worker's Prometheus endpoint: counters and histograms of what it
 *	  did, and GET /metrics served over HTTP/1.x from the main event loop.
 *
 * The listening socket and each connection are non-blocking descriptors in
 * the loop's poll set, so a scrape costs the loop no more than a pipe read.
 * A connection carries one request and gets one answer with "Connection:
 * close"; it has METRICS_CONN_DEADLINE_MS from accept to close, at most
 * METRICS_REQUEST_MAX bytes of request, and at most METRICS_MAX_CONNS are
 * open at once (the others wait in the kernel's backlog), so a client that
 * is slow, silent or malicious costs a slot for two seconds and nothing else.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection's whole life, from accept to close. */
#define METRICS_CONN_DEADLINE_MS 2000
/* The most bytes of request line and headers read from a connection. */
#define METRICS_REQUEST_MAX 8192
/* After EMFILE and the like, how long the listener rests. */
#define METRICS_ACCEPT_PAUSE_MS 1000
/* Distinct job_type series of the handler histogram; later types share "_other". */
#define METRICS_MAX_JOB_TYPES 100
#define METRICS_OTHER_JOB_TYPE "_other"

#define MAX_BUCKETS 12

static const double handler_bounds[] = {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
static const char *const handler_les[] = {"0.01", "0.1", "0.5", "1", "5", "10", "30", "60",
"300", "900", "3600"};
static const double rtt_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const char *const rtt_les[] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
"0.5", "1", "2.5", "5"};

#define NBOUNDS(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* A histogram: counts per bucket (not cumulative; the last is +Inf), their sum and total. */
typedef struct Histogram
{
	uint64_t	buckets[MAX_BUCKETS];
	double		sum;
	uint64_t	count;
} Histogram;

typedef struct JobTypeHistogram
{
	char	   *job_type;
	Histogram	h;
} JobTypeHistogram;

static const char *const outcome_names[OUTCOME_COUNT] = {
	"succeeded", "failed", "cancelled", "preempted", "lost"
};

static uint64_t jobs_total[OUTCOME_COUNT];
static JobTypeHistogram handler_hist[METRICS_MAX_JOB_TYPES];
static int	handler_types = 0;
static Histogram handler_other;
static bool handler_other_used = false;
static Histogram rtt_hist;
static uint64_t reconnects_total = 0;
static int	gauge_slots = 0;
static int	gauge_busy = 0;
static bool gauge_connected = false;

typedef enum ConnState
{
	CONN_FREE = 0,
	CONN_READING,				/* reading the request */
	CONN_WRITING,				/* writing the answer */
	CONN_CLOSING				/* answer sent and write side shut: reading to EOF */
} ConnState;

typedef struct HttpConn
{
	ConnState	state;
	int			fd;
	int			pidx;			/* its entry in the poll set, or -1 */
	int64_t		deadline_ms;
	size_t		req_len;
	char		req[METRICS_REQUEST_MAX];
	StrBuf		resp;
	size_t		resp_off;
} HttpConn;

static int	listen_fd = -1;
static int	listen_pidx = -1;
static int64_t accept_paused_until = 0;
static HttpConn conns[METRICS_MAX_CONNS];

/* Add one observation to a histogram with the given upper bounds. */
static void
hist_observe(Histogram *h, const double *bounds, int nbounds, double v)
{
	int			i = 0;

	if (v < 0)
		v = 0;
	while (i < nbounds && v > bounds[i])
		i++;
	h->buckets[i]++;
	h->sum += v;
	h->count++;
}

/* Count a job that left its slot, by how it ended. */
void
metrics_count_job(JobOutcome outcome)
{
	if (outcome >= 0 && outcome < OUTCOME_COUNT)
		jobs_total[outcome]++;
}

/*
 * A handler (or a simulated run) ended after `seconds`.  The first
 * METRICS_MAX_JOB_TYPES job types get a series each; the others, and a
 * type spelt "_other", share job_type="_other", so that no stream of
 * job types can grow the output without bound.
 */
void
metrics_observe_handler(const char *job_type, double seconds)
{
	Histogram  *h = NULL;

	if (strcmp(job_type, METRICS_OTHER_JOB_TYPE) != 0)
	{
		for (int i = 0; i < handler_types && h == NULL; i++)
			if (strcmp(handler_hist[i].job_type, job_type) == 0)
				h = &handler_hist[i].h;
		if (h == NULL && handler_types < METRICS_MAX_JOB_TYPES)
		{
			handler_hist[handler_types].job_type = xstrdup(job_type);
			h = &handler_hist[handler_types++].h;
		}
	}
	if (h == NULL)
	{
		h = &handler_other;
		handler_other_used = true;
	}
	hist_observe(h, handler_bounds, NBOUNDS(handler_bounds), seconds);
}

/* A heartbeat's round trip: from sending it to its answer. */
void
metrics_observe_heartbeat(double seconds)
{
	hist_observe(&rtt_hist, rtt_bounds, NBOUNDS(rtt_bounds), seconds);
}

/* A connection to the database was made again after one was lost. */
void
metrics_count_reconnect(void)
{
	reconnects_total++;
}

/* The gauges, as the loop sees them now. */
void
metrics_set_state(int slots, int busy, bool connected)
{
	gauge_slots = slots;
	gauge_busy = busy;
	gauge_connected = connected;
}

/* Append a label value escaped as the text format wants: \\, \" and \n. */
static void
append_label_value(StrBuf *sb, const char *s)
{
	for (; *s; s++)
	{
		if (*s == '\\')
			sb_appends(sb, "\\\\");
		else if (*s == '"')
			sb_appends(sb, "\\\"");
		else if (*s == '\n')
			sb_appends(sb, "\\n");
		else
			sb_append(sb, s, 1);
	}
}

/* The _bucket, _sum and _count lines of one histogram series; label is "" or `name="value"`. */
static void
render_histogram(StrBuf *sb, const char *name, const char *label_name, const char *label_value,
				 const Histogram *h, const char *const *les, int nbounds)
{
	StrBuf		labels;
	uint64_t	cumulative = 0;

	sb_init(&labels);
	if (label_name)
	{
		sb_appendf(&labels, "%s=\"", label_name);
		append_label_value(&labels, label_value);
		sb_appends(&labels, "\"");
	}
	for (int i = 0; i <= nbounds; i++)
	{
		cumulative += h->buckets[i];
		sb_appendf(sb, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels.data,
				   label_name ? "," : "", i < nbounds ? les[i] : "+Inf",
				   (unsigned long long) cumulative);
	}
	sb_appendf(sb, "%s_sum%s%s%s %.10g\n", name, label_name ? "{" : "", labels.data,
			   label_name ? "}" : "", h->sum);
	sb_appendf(sb, "%s_count%s%s%s %llu\n", name, label_name ? "{" : "", labels.data,
			   label_name ? "}" : "", (unsigned long long) h->count);
	sb_free(&labels);
}

/* The exposition, in the Prometheus text format 0.0.4. */
static void
render_metrics(StrBuf *sb)
{
	sb_appends(sb,
			   "# HELP tinytemp_worker_up Whether the worker runs (always 1).\n"
			   "# TYPE tinytemp_worker_up gauge\n"
			   "tinytemp_worker_up 1\n");
	sb_appendf(sb,
			   "# HELP tinytemp_worker_connected Whether the worker is connected to the database.\n"
			   "# TYPE tinytemp_worker_connected gauge\n"
			   "tinytemp_worker_connected %d\n", gauge_connected ? 1 : 0);
	sb_appendf(sb,
			   "# HELP tinytemp_worker_slots Jobs the worker runs at once at most.\n"
			   "# TYPE tinytemp_worker_slots gauge\n"
			   "tinytemp_worker_slots %d\n", gauge_slots);
	sb_appendf(sb,
			   "# HELP tinytemp_worker_busy_slots Slots holding a job (running, stopping or reporting).\n"
			   "# TYPE tinytemp_worker_busy_slots gauge\n"
			   "tinytemp_worker_busy_slots %d\n", gauge_busy);
	sb_appends(sb,
			   "# HELP tinytemp_worker_jobs_total Jobs that left a slot, by outcome.\n"
			   "# TYPE tinytemp_worker_jobs_total counter\n");
	for (int i = 0; i < OUTCOME_COUNT; i++)
		sb_appendf(sb, "tinytemp_worker_jobs_total{outcome=\"%s\"} %llu\n", outcome_names[i],
				   (unsigned long long) jobs_total[i]);
	sb_appends(sb,
			   "# HELP tinytemp_worker_handler_duration_seconds How long handlers ran, by job_type.\n"
			   "# TYPE tinytemp_worker_handler_duration_seconds histogram\n");
	for (int i = 0; i < handler_types; i++)
		render_histogram(sb, "tinytemp_worker_handler_duration_seconds", "job_type",
						 handler_hist[i].job_type, &handler_hist[i].h, handler_les,
						 NBOUNDS(handler_bounds));
	if (handler_other_used)
		render_histogram(sb, "tinytemp_worker_handler_duration_seconds", "job_type",
						 METRICS_OTHER_JOB_TYPE, &handler_other, handler_les,
						 NBOUNDS(handler_bounds));
	sb_appends(sb,
			   "# HELP tinytemp_worker_heartbeat_rtt_seconds Round trips of heartbeats to the database.\n"
			   "# TYPE tinytemp_worker_heartbeat_rtt_seconds histogram\n");
	render_histogram(sb, "tinytemp_worker_heartbeat_rtt_seconds", NULL, NULL, &rtt_hist,
					 rtt_les, NBOUNDS(rtt_bounds));
	sb_appendf(sb,
			   "# HELP tinytemp_worker_reconnects_total Connections to the database made again after one was lost.\n"
			   "# TYPE tinytemp_worker_reconnects_total counter\n"
			   "tinytemp_worker_reconnects_total %llu\n", (unsigned long long) reconnects_total);
}

/*
 * Split HOST:PORT, [HOST]:PORT, :PORT or PORT; an empty host is the
 * loopback address.  Returns false on a malformed address.
 */
static bool
split_address(const char *address, char **host, char **port)
{
	const char *colon;
	const char *p;

	if (address[0] == '[')
	{
		const char *close = strchr(address, ']');

		if (close == NULL || close[1] != ':')
			return false;
		*host = xstrndup(address + 1, (size_t) (close - address - 1));
		colon = close + 1;
	}
	else
	{
		colon = strrchr(address, ':');
		if (colon == NULL)
			colon = address - 1;	/* a bare port */
		else if (memchr(address, ':', (size_t) (colon - address)) != NULL)
			return false;		/* an IPv6 address needs its brackets */
		*host = colon < address ? xstrdup("") : xstrndup(address, (size_t) (colon - address));
	}
	p = colon + 1;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5 || atoi(p) > 65535)
	{
		free(*host);
		return false;
	}
	*port = xstrdup(p);
	if ((*host)[0] == '\0')
	{
		free(*host);
		*host = xstrdup("127.0.0.1");
	}
	return true;
}

/*
 * Open the listening socket of --metrics-address.  On success logs where it
 * listens (the port the system chose, for port 0); on failure sets *error.
 */
bool
metrics_listen(const char *address, char **error)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	char	   *host = NULL;
	char	   *port = NULL;
	int			rc;
	int			last_errno = 0;

	for (int i = 0; i < METRICS_MAX_CONNS; i++)
		conns[i].fd = -1;
	if (!split_address(address, &host, &port))
	{
		*error = xasprintf("invalid --metrics-address \"%s\" (want HOST:PORT, [IPV6]:PORT or :PORT)",
						   address);
		return false;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
	{
		*error = xasprintf("cannot resolve --metrics-address \"%s\": %s", address, gai_strerror(rc));
		free(host);
		free(port);
		return false;
	}
	for (struct addrinfo *ai = res; ai && listen_fd < 0; ai = ai->ai_next)
	{
		int			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
								ai->ai_protocol);
		int			one = 1;

		if (fd < 0)
		{
			last_errno = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0)
		{
			last_errno = errno;
			close(fd);
			continue;
		}
		listen_fd = fd;
	}
	freeaddrinfo(res);
	if (listen_fd < 0)
	{
		*error = xasprintf("cannot listen on --metrics-address \"%s\": %s", address,
						   strerror(last_errno ? last_errno : EADDRNOTAVAIL));
		free(host);
		free(port);
		return false;
	}
	{
		struct sockaddr_storage ss;
		socklen_t	len = sizeof(ss);
		char		h[NI_MAXHOST] = "?";
		char		s[NI_MAXSERV] = "?";

		if (getsockname(listen_fd, (struct sockaddr *) &ss, &len) == 0)
			getnameinfo((struct sockaddr *) &ss, len, h, sizeof(h), s, sizeof(s),
						NI_NUMERICHOST | NI_NUMERICSERV);
		log_event(NO_JOB, "metrics", "serving http://%s%s%s:%s/metrics", strchr(h, ':') ? "[" : "",
				  h, strchr(h, ':') ? "]" : "", s);
	}
	free(host);
	free(port);
	return true;
}

/* Close a connection and free its slot. */
static void
conn_close(HttpConn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->resp.data)
		sb_free(&c->resp);
	c->state = CONN_FREE;
	c->req_len = 0;
	c->resp_off = 0;
	c->pidx = -1;
}

/* Close the listener and every connection, freeing what the registry holds. */
void
metrics_close(void)
{
	for (int i = 0; i < METRICS_MAX_CONNS; i++)
		if (conns[i].state != CONN_FREE)
			conn_close(&conns[i]);
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	for (int i = 0; i < handler_types; i++)
		free(handler_hist[i].job_type);
	handler_types = 0;
}

/* Start the answer: status line, headers and, unless head_only, the body. */
static void
conn_respond(HttpConn *c, int status, const char *reason, const char *content_type,
			 const char *extra_headers, const StrBuf *body, bool head_only)
{
	sb_init(&c->resp);
	sb_appendf(&c->resp,
			   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
			   status, reason, content_type, body->len, extra_headers);
	if (!head_only)
		sb_append(&c->resp, body->data, body->len);
	c->resp_off = 0;
	c->state = CONN_WRITING;
}

/* An error answer with a one-line plain-text body. */
static void
conn_error(HttpConn *c, int status, const char *reason, const char *extra_headers)
{
	StrBuf		body;

	sb_init(&body);
	sb_appendf(&body, "%d %s\n", status, reason);
	conn_respond(c, status, reason, "text/plain; charset=utf-8", extra_headers, &body, false);
	sb_free(&body);
}

/* Whether c is a character of an HTTP token (a method, a header name). */
static bool
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		(c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * The request is complete (its headers end at req[0..end)): check it and
 * answer.  Anything but "METHOD SP /path SP HTTP/1.x" followed by well-formed
 * header lines is a 400; a path other than /metrics (a query string aside)
 * a 404; a method other than GET and HEAD a 405.  A request body is not read.
 */
static void
conn_answer(HttpConn *c, size_t end)
{
	char	   *req = c->req;
	char	   *line_end;
	char	   *method;
	char	   *target;
	char	   *version;
	char	   *sp1;
	char	   *sp2;
	char	   *p;
	size_t		path_len;
	StrBuf		body;

	req[end] = '\0';
	line_end = strchr(req, '\n');
	*line_end = '\0';
	if (line_end > req && line_end[-1] == '\r')
		line_end[-1] = '\0';
	method = req;
	sp1 = strchr(method, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == method || sp2 == sp1 + 1)
	{
		conn_error(c, 400, "Bad Request", "");
		return;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	target = sp1 + 1;
	version = sp2 + 1;
	for (p = method; *p; p++)
		if (!is_tchar(*p))
			break;
	if (*p != '\0' || target[0] != '/' ||
		strncmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9' || version[8] != '\0')
	{
		conn_error(c, 400, "Bad Request", "");
		return;
	}
	for (p = target; *p; p++)
		if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
			break;
	if (*p != '\0')
	{
		conn_error(c, 400, "Bad Request", "");
		return;
	}
	/* Header lines: a token, a colon, visible text; no folded lines. */
	for (p = line_end + 1; *p;)
	{
		char	   *nl = strchr(p, '\n');
		char	   *q = p;

		if (nl == NULL)
			break;
		if (nl == p || (nl == p + 1 && *p == '\r'))
			break;				/* the blank line that ends the headers */
		while (is_tchar(*q))
			q++;
		if (q == p || *q != ':')
		{
			conn_error(c, 400, "Bad Request", "");
			return;
		}
		for (; q < nl; q++)
			if (((unsigned char) *q < 0x20 && *q != '\t' && !(*q == '\r' && q + 1 == nl)) ||
				*q == 0x7f)
			{
				conn_error(c, 400, "Bad Request", "");
				return;
			}
		p = nl + 1;
	}

	path_len = strcspn(target, "?");
	if (path_len != strlen("/metrics") || strncmp(target, "/metrics", path_len) != 0)
	{
		conn_error(c, 404, "Not Found", "");
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
	{
		conn_error(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	sb_init(&body);
	render_metrics(&body);
	conn_respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", &body,
				 strcmp(method, "HEAD") == 0);
	sb_free(&body);
}

/* Where the request's headers end (past the blank line), or 0 when not yet read. */
static size_t
headers_end(const char *req, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		if (req[i] != '\n')
			continue;
		if (i + 1 < len && req[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && req[i + 1] == '\r' && req[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Read what the client sent; answer once the headers are complete or too long. */
static void
conn_read(HttpConn *c)
{
	for (;;)
	{
		ssize_t		n;
		size_t		end;

		if (c->req_len >= METRICS_REQUEST_MAX - 1)
		{
			conn_error(c, 431, "Request Header Fields Too Large", "");
			return;
		}
		n = read(c->fd, c->req + c->req_len, METRICS_REQUEST_MAX - 1 - c->req_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
		{
			conn_close(c);		/* gone before asking anything complete */
			return;
		}
		/* A request line cannot hold a NUL; the parser stops at the first one. */
		if (memchr(c->req + c->req_len, '\0', (size_t) n) != NULL)
		{
			conn_error(c, 400, "Bad Request", "");
			return;
		}
		end = headers_end(c->req, c->req_len + (size_t) n);
		c->req_len += (size_t) n;
		if (end > 0)
		{
			conn_answer(c, end);
			return;
		}
	}
}

/* Write what the socket takes of the answer; once all is written, shut the write side. */
static void
conn_write(HttpConn *c)
{
	while (c->resp_off < c->resp.len)
	{
		ssize_t		n = send(c->fd, c->resp.data + c->resp_off, c->resp.len - c->resp_off,
							 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
		{
			conn_close(c);
			return;
		}
		c->resp_off += (size_t) n;
	}
	/*
	 * Closing with unread request bytes would reset the connection and could
	 * lose the answer: shut our side and read to the client's EOF instead.
	 */
	shutdown(c->fd, SHUT_WR);
	sb_free(&c->resp);
	c->state = CONN_CLOSING;
}

/* Read and drop what the client still sends, until its EOF. */
static void
conn_linger(HttpConn *c)
{
	char		buf[1024];

	for (;;)
	{
		ssize_t		n = read(c->fd, buf, sizeof(buf));

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c);
		return;
	}
}

/* Move a connection along as far as it goes without blocking. */
static void
conn_step(HttpConn *c)
{
	if (c->state == CONN_READING)
		conn_read(c);
	if (c->state == CONN_WRITING)
		conn_write(c);
	if (c->state == CONN_CLOSING)
		conn_linger(c);
}

/* Accept the waiting connections while there are free slots. */
static void
accept_all(int64_t now)
{
	for (int i = 0; i < METRICS_MAX_CONNS; i++)
	{
		HttpConn   *c = &conns[i];
		int			fd;

		if (c->state != CONN_FREE)
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			{
				log_event(NO_JOB, "metrics", "cannot accept a connection: %s", strerror(errno));
				accept_paused_until = now + METRICS_ACCEPT_PAUSE_MS;
			}
			return;
		}
		c->fd = fd;
		c->state = CONN_READING;
		c->pidx = -1;
		c->req_len = 0;
		c->deadline_ms = now + METRICS_CONN_DEADLINE_MS;
		conn_step(c);
	}
}

/*
 * Add the listener (while a connection slot is free) and the open
 * connections to a poll set; returns how many entries were added.
 */
int
metrics_pollfds(struct pollfd *fds, int max, int64_t now)
{
	int			n = 0;
	bool		room = false;

	listen_pidx = -1;
	if (listen_fd < 0)
		return 0;
	for (int i = 0; i < METRICS_MAX_CONNS; i++)
	{
		HttpConn   *c = &conns[i];

		c->pidx = -1;
		if (c->state == CONN_FREE)
		{
			room = true;
			continue;
		}
		if (n >= max)
			continue;
		c->pidx = n;
		fds[n++] = (struct pollfd) {c->fd, c->state == CONN_WRITING ? POLLOUT : POLLIN, 0};
	}
	if (room && now >= accept_paused_until && n < max)
	{
		listen_pidx = n;
		fds[n++] = (struct pollfd) {listen_fd, POLLIN, 0};
	}
	return n;
}

/*
 * Serve the connections that poll found ready (fds as filled by
 * metrics_pollfds), close those past their deadline, and accept new ones.
 */
void
metrics_service(const struct pollfd *fds, int64_t now)
{
	if (listen_fd < 0)
		return;
	if (accept_paused_until && now >= accept_paused_until)
		accept_paused_until = 0;
	for (int i = 0; i < METRICS_MAX_CONNS; i++)
	{
		HttpConn   *c = &conns[i];

		if (c->state == CONN_FREE)
			continue;
		if (c->pidx >= 0 && fds[c->pidx].revents)
			conn_step(c);
		if (c->state != CONN_FREE && now >= c->deadline_ms)
			conn_close(c);
	}
	if (listen_pidx >= 0 && fds[listen_pidx].revents)
		accept_all(now);
}

/* The nearest connection deadline or listener pause, or 0 when none. */
int64_t
metrics_next_timer(void)
{
	int64_t		next = 0;

	for (int i = 0; i < METRICS_MAX_CONNS; i++)
		if (conns[i].state != CONN_FREE && (next == 0 || conns[i].deadline_ms < next))
			next = conns[i].deadline_ms;
	if (accept_paused_until && (next == 0 || accept_paused_until < next))
		next = accept_paused_until;
	return next;
}

/*
 * metrics_http.c
 *	  A background worker of its own that serves GET /metrics over HTTP on
 *	  tinytemp.metrics_address, for Prometheus to scrape.
 *
 * It is not the scheduler: a slow or hostile client can hold it only for
 * its request's deadline, and never delays a pass.  One connection at a
 * time; a request is read with a deadline and a size limit; anything but
 * GET (or HEAD) /metrics gets a 4xx.  Each scrape is one short
 * transaction in tinytemp.database that renders tinytemp_metrics().
 */
#include "tinytemp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void tinytemp_metrics_server_main(Datum main_arg);

/* A request's head may take this long and be this large. */
#define REQUEST_TIMEOUT_MS	2000
#define REQUEST_MAX_BYTES	8192
#define RESPONSE_TIMEOUT_MS	5000

/* Register the metrics server; called from _PG_init at preload time. */
void
tinytemp_register_metrics_server(void)
{
	/* A hot standby serves its own copy of the tables. */
	tinytemp_register_background_worker("tinytemp_metrics_server_main", "tinytemp metrics server",
										 BgWorkerStart_ConsistentState);
}

/*
 * Split "host:port" (the host in brackets for an IPv6 address).  Returns
 * false when it is not of that form.
 */
static bool
split_address(const char *address, char **host, char **port)
{
	const char *colon = strrchr(address, ':');
	char	   *end;
	long		n;

	if (colon == NULL || colon == address || colon[1] == '\0')
		return false;
	n = strtol(colon + 1, &end, 10);
	if (*end != '\0' || n < 1 || n > 65535)
		return false;
	*port = pstrdup(colon + 1);
	if (address[0] == '[')
	{
		if (colon[-1] != ']')
			return false;
		*host = pnstrdup(address + 1, colon - address - 2);
	}
	else
	{
		*host = pnstrdup(address, colon - address);
		if (strchr(*host, ':') != NULL)
			return false;		/* an IPv6 address goes in brackets */
	}
	return (*host)[0] != '\0';
}

/* Listen on the address; -1 (logged) when it cannot. */
static int
listen_on(const char *host, const char *port)
{
	struct addrinfo hints;
	struct addrinfo *res;
	int			rc;
	int			fd = -1;
	int			one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
	{
		ereport(LOG,
				errmsg("tinytemp metrics server: cannot resolve \"%s\": %s", host, gai_strerror(rc)));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0 &&
			fcntl(fd, F_SETFL, O_NONBLOCK) == 0)
			break;
		ereport(LOG,
				errmsg("tinytemp metrics server: cannot listen on %s:%s: %m", host, port));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Milliseconds left until deadline (a GetCurrentTimestamp value), at least 0. */
static int
ms_left(TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

	return (int) Max(ms, 0);
}

/* Wait until fd is ready for events, or the deadline; false on the deadline or an error. */
static bool
wait_fd(int fd, short events, TimestampTz deadline)
{
	for (;;)
	{
		struct pollfd p = {.fd = fd,.events = events};
		int			left = ms_left(deadline);
		int			rc;

		if (left == 0)
			return false;
		rc = poll(&p, 1, Min(left, 500));
		if (rc > 0)
			return (p.revents & (events | POLLHUP | POLLERR)) != 0;
		if (rc < 0 && errno != EINTR)
			return false;
		if (ShutdownRequestPending)
			return false;
	}
}

/*
 * Read the request's head: up to the blank line.  Its length, or -1 (too
 * large), -2 (gone or late), -3 (a NUL byte).
 */
static int
read_head(int fd, char *buf)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), REQUEST_TIMEOUT_MS);
	int			len = 0;

	for (;;)
	{
		ssize_t		n;

		if (!wait_fd(fd, POLLIN, deadline))
			return -2;
		n = recv(fd, buf + len, REQUEST_MAX_BYTES - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (n <= 0)
			return -2;
		if (memchr(buf + len, '\0', n) != NULL)
			return -3;			/* no HTTP request holds a NUL byte */
		len += n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
			return len;
		if (len >= REQUEST_MAX_BYTES)
			return -1;
	}
}

/* Send it all before the deadline, or give up. */
static void
send_all(int fd, const char *data, size_t len, TimestampTz deadline)
{
	while (len > 0)
	{
		ssize_t		n;

		if (!wait_fd(fd, POLLOUT, deadline))
			return;
		n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= n;
	}
}

static void
respond(int fd, const char *status, const char *content_type, const char *extra_headers,
		const char *body, size_t body_len, bool head_only)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RESPONSE_TIMEOUT_MS);
	char	   *head = psprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
								"Connection: close\r\n%s\r\n",
								status, content_type, body_len, extra_headers);

	send_all(fd, head, strlen(head), deadline);
	if (!head_only)
		send_all(fd, body, body_len, deadline);
	pfree(head);
}

static void
respond_text(int fd, const char *status, const char *extra_headers, const char *message)
{
	respond(fd, status, "text/plain; charset=utf-8", extra_headers, message, strlen(message), false);
}

/*
 * Render the metrics in a transaction of their own.  On failure, *error
 * says why and NULL is returned.
 */
static char *
render(size_t *len, char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	StringInfoData buf;
	char	   *volatile result = NULL;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "tinytemp: serving /metrics");
	PG_TRY();
	{
		if (!OidIsValid(get_extension_oid("tinytemp", true)))
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_OBJECT),
					errmsg("extension \"tinytemp\" is not installed in database \"%s\"",
						   tinytemp_database));
		SPI_connect();
		MemoryContextSwitchTo(cxt);
		initStringInfo(&buf);
		tinytemp_metrics_render(&buf);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		result = buf.data;
		*len = buf.len;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return result;
}

/* Read one request on fd and answer it. */
static void
serve(int fd)
{
	static bool failing = false;
	char		buf[REQUEST_MAX_BYTES + 1];
	int			len = read_head(fd, buf);
	char	   *sp1;
	char	   *sp2;
	char	   *eol;
	size_t		path_len;
	bool		head_only;
	char	   *body;
	size_t		body_len = 0;
	char	   *error = NULL;

	if (len == -2)
		return;					/* gone, or said nothing in time: nobody to answer */
	if (len == -1)
	{
		respond_text(fd, "431 Request Header Fields Too Large", "", "request too large\n");
		return;
	}
	if (len == -3)
	{
		respond_text(fd, "400 Bad Request", "", "bad request\n");
		return;
	}
	eol = strpbrk(buf, "\r\n");
	*eol = '\0';
	sp1 = strchr(buf, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
	{
		respond_text(fd, "400 Bad Request", "", "bad request\n");
		return;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	/* The absolute form, http://host:port/path, names the path after the host. */
	if (pg_strncasecmp(sp1 + 1, "http://", 7) == 0)
	{
		char	   *path = strchr(sp1 + 8, '/');

		sp1 = path ? path - 1 : sp2 - 1;
	}
	if (sp1[1] != '/')
	{
		respond_text(fd, "400 Bad Request", "", "bad request\n");
		return;
	}
	head_only = strcmp(buf, "HEAD") == 0;
	if (strcmp(buf, "GET") != 0 && !head_only)
	{
		respond_text(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET\n");
		return;
	}
	path_len = strcspn(sp1 + 1, "?");
	if (path_len != strlen("/metrics") || strncmp(sp1 + 1, "/metrics", path_len) != 0)
	{
		respond_text(fd, "404 Not Found", "", "not found: tinytemp serves /metrics only\n");
		return;
	}

	body = render(&body_len, &error);
	if (body == NULL)
	{
		/* Said once per run of failures, not on every scrape. */
		if (!failing)
			ereport(LOG, errmsg("tinytemp metrics server: a scrape failed: %s", error));
		failing = true;
		respond_text(fd, "503 Service Unavailable", "", psprintf("%s\n", error));
		return;
	}
	failing = false;
	respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", "", body, body_len,
			head_only);
}

/* Entry point of the metrics server. */
void
tinytemp_metrics_server_main(Datum main_arg)
{
	char	   *host;
	char	   *port;
	int			listen_fd;
	MemoryContext request_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	if (!split_address(tinytemp_metrics_address, &host, &port))
	{
		/* Exit 0: not restarted, as the address cannot change without a restart. */
		ereport(LOG,
				errmsg("tinytemp metrics server: tinytemp.metrics_address \"%s\" is not host:port; not serving",
					   tinytemp_metrics_address));
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnection(tinytemp_database, NULL, 0);
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	listen_fd = listen_on(host, port);
	if (listen_fd < 0)
		proc_exit(1);			/* tried again in bgw_restart_time */
	ereport(LOG,
			errmsg("tinytemp metrics server listening on %s, for database \"%s\"",
				   tinytemp_metrics_address, tinytemp_database));
	request_cxt = AllocSetContextCreate(TopMemoryContext, "tinytemp metrics request",
										ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		int			events;

		events = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
								   listen_fd, -1, PG_WAIT_EXTENSION);
		if (events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!(events & WL_SOCKET_READABLE))
			continue;
		for (;;)
		{
			int			fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			MemoryContext old;

			if (fd < 0)
				break;			/* EAGAIN: nothing more to accept */
			old = MemoryContextSwitchTo(request_cxt);
			serve(fd);
			MemoryContextSwitchTo(old);
			MemoryContextReset(request_cxt);
			close(fd);
			if (ShutdownRequestPending)
				break;
		}
	}
	close(listen_fd);
	proc_exit(0);
}

/*
 * fuzz_config.c
 *	  libFuzzer target: the worker's handler config parser
 *	  (config_load_handlers in worker_client/config.c, which reads the
 *	  --config file and applies the --handler options), and split_command,
 *	  which splits a command into words.
 *
 * The input is the config file's text.  Its first line, when it looks
 * like one (TYPE=COMMAND), is also given as a --handler option, which
 * replaces the file's section of the same type.  The file is an in-memory
 * file (memfd), read through its /proc/self/fd path.
 *
 * Checks: the sanitizers (including leaks, on success and on every error
 * path); an error always comes with a message; every handler loaded has a
 * job_type, at least one word of command and a NULL-terminated
 * environment, and config_find_handler finds it by its job_type.
 */
#include "tinytemp_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int	config_fd = -1;
static char config_path[64];

/* Stop with the input reported as a crash. */
static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_config: %s\n", why);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = xstrndup((const char *) data, size);
	const char *nl = strchr(text, '\n');
	char	   *first = xstrndup(text, nl ? (size_t) (nl - text) : strlen(text));
	char	  **words = NULL;
	char	   *error = NULL;
	Config		cfg;
	HandlerTable table = {NULL, 0};

	if (config_fd < 0)
	{
		config_fd = memfd_create("tinytemp-fuzz-config", 0);
		if (config_fd < 0)
			fail("memfd_create failed");
		snprintf(config_path, sizeof(config_path), "/proc/self/fd/%d", config_fd);
	}
	if (ftruncate(config_fd, 0) != 0 ||
		(size > 0 && pwrite(config_fd, data, size, 0) != (ssize_t) size))
		fail("cannot write the config file");

	/* A command line on its own. */
	if (split_command(text, &words, &error))
	{
		if (words == NULL || words[0] == NULL)
			fail("split_command succeeded with no words");
		strv_free(words);
	}
	else
	{
		if (error == NULL)
			fail("split_command failed without a message");
		free(error);
		error = NULL;
	}

	/* The whole file, and its first line as a --handler. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.config_file = config_path;
	cfg.handler_args = strv_dup(NULL);
	if (first[0] != '=' && strchr(first, '=') != NULL)
	{
		char	  **args = xmalloc(2 * sizeof(char *));

		args[0] = first;
		args[1] = NULL;
		strv_free(cfg.handler_args);
		cfg.handler_args = args;
		first = NULL;
	}
	if (config_load_handlers(&cfg, &table, &error))
	{
		if (error != NULL)
			fail("config_load_handlers succeeded with an error message");
		for (int i = 0; i < table.n; i++)
		{
			const Handler *h = &table.items[i];

			if (h->job_type == NULL || h->argv == NULL || h->argv[0] == NULL ||
				h->env == NULL || h->origin == NULL)
				fail("a handler is incomplete");
			if (config_find_handler(&table, h->job_type) != h)
				fail("config_find_handler does not find a handler by its job_type");
			for (int j = 0; j < i; j++)
				if (strcmp(table.items[j].job_type, h->job_type) == 0)
					fail("two handlers for one job_type");
		}
		handlers_free(&table);
	}
	else
	{
		if (error == NULL)
			fail("config_load_handlers failed without a message");
		free(error);
	}
	strv_free(cfg.handler_args);
	free(first);
	free(text);
	return 0;
}

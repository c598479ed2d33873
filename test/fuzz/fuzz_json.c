/*
 * fuzz_json.c
 *	  libFuzzer target: the worker's JSON code (worker_client/json.c), on
 *	  what it reads: a handler's stdout lines (results, progress,
 *	  checkpoints) and the text it quotes.
 *
 * Besides the sanitizers, it checks what the worker relies on:
 *	  - json_is_object implies json_valid;
 *	  - the "checkpoint" member that json_object_member finds lies inside
 *	    the line and is itself valid JSON (it is sent to the server as jsonb);
 *	  - utf8_sanitize gives valid UTF-8 without NUL of the same length, and
 *	    json_append_string makes of it a valid JSON string that decodes back
 *	    to it (a key built that way is found again by json_object_member).
 */
#include "tinytemp_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with the input reported as a crash. */
static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_json: %s\n", why);
	abort();
}

/* The member `key` of the object s[0..n), checked as the worker uses it. */
static void
check_member(const char *s, size_t n, const char *key)
{
	size_t		off = 0;
	size_t		len = 0;

	if (json_object_member(s, n, key, &off, &len))
	{
		if (off > n || len > n - off || len == 0)
			fail("a member's value lies outside the object");
		if (!json_valid(s + off, len))
			fail("a member's value is not valid JSON");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;
	bool		valid = json_valid(s, size);
	bool		object = json_is_object(s, size);
	char	   *clean;
	StrBuf		quoted;
	StrBuf		doc;
	size_t		off = 0;
	size_t		len = 0;

	if (object && !valid)
		fail("json_is_object accepts what json_valid refuses");
	if (object)
	{
		check_member(s, size, "checkpoint");
		check_member(s, size, "epoch");
		check_member(s, size, "");
	}

	clean = utf8_sanitize(s, size);
	if (strlen(clean) != size)
		fail("utf8_sanitize changed the length or kept a NUL");
	sb_init(&quoted);
	json_append_string(&quoted, clean);
	if (!json_valid(quoted.data, quoted.len))
		fail("json_append_string made invalid JSON");

	/* {"<clean>": "<clean>"}: the key is found again, its value is the same string. */
	sb_init(&doc);
	sb_append(&doc, "{", 1);
	sb_append(&doc, quoted.data, quoted.len);
	sb_append(&doc, ": ", 2);
	sb_append(&doc, quoted.data, quoted.len);
	sb_append(&doc, "}", 1);
	if (!json_is_object(doc.data, doc.len))
		fail("an object built with json_append_string is not an object");
	if (!json_object_member(doc.data, doc.len, clean, &off, &len))
		fail("a key built with json_append_string is not found again");
	if (len != quoted.len || memcmp(doc.data + off, quoted.data, len) != 0)
		fail("the value found is not the one stored");

	sb_free(&doc);
	sb_free(&quoted);
	free(clean);
	return 0;
}

/*
 * pg_stubs.c
 *	  Stand-ins for the server functions that src/model_codec.c calls, so
 *	  that the model loader runs in a fuzzer without a backend:
 *
 *	  - palloc, palloc0, palloc_extended, repalloc and pfree are malloc,
 *	    with the server's size limits, and every block is remembered, so
 *	    that fuzz_pg_free_all() releases what an input left behind (as the
 *	    server resets a memory context after an ERROR) and LeakSanitizer
 *	    still sees a leak if the harness forgets to call it.  Each block is
 *	    its own malloc, so AddressSanitizer checks both of its ends.
 *	  - ereport's functions format their messages (checking the format
 *	    strings' arguments as the server would) and turn an ERROR into a
 *	    siglongjmp to fuzz_pg_error_jump, the harness's PG_TRY.
 *	  - initStringInfo and appendBinaryStringInfo for the encoder.
 *
 * Built with the server's headers, so every signature is checked against
 * the real declarations.
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "pg_stubs.h"

sigjmp_buf *fuzz_pg_error_jump = NULL;
int			fuzz_pg_error_code = 0;
char		fuzz_pg_error_message[256];

/* The live blocks, in allocation order. */
static void **blocks = NULL;
static size_t nblocks = 0;
static size_t blocks_cap = 0;

/* The report being built by errstart ... errfinish. */
static int	error_level = 0;

static void raise_error(int code, const char *fmt,...) pg_attribute_printf(2, 3);

/* Give up on a broken harness: no fuzzer input can cause these. */
static void
harness_bug(const char *why)
{
	fprintf(stderr, "pg_stubs: %s\n", why);
	abort();
}

/* Raise an ERROR from the stubs themselves (a bad allocation size). */
static void
raise_error(int code, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(fuzz_pg_error_message, sizeof(fuzz_pg_error_message), fmt, ap);
	va_end(ap);
	fuzz_pg_error_code = code;
	if (fuzz_pg_error_jump == NULL)
		harness_bug("an ERROR outside the harness's jump");
	siglongjmp(*fuzz_pg_error_jump, 1);
}

/* Remember a new block. */
static void
track(void *p)
{
	if (nblocks == blocks_cap)
	{
		size_t		cap = blocks_cap ? blocks_cap * 2 : 1024;
		void	  **grown = realloc(blocks, cap * sizeof(void *));

		if (grown == NULL)
			harness_bug("out of memory for the block list");
		blocks = grown;
		blocks_cap = cap;
	}
	blocks[nblocks++] = p;
}

/* Forget a block, searching from the newest; returns whether it was ours. */
static bool
untrack(void *p)
{
	for (size_t i = nblocks; i > 0; i--)
	{
		if (blocks[i - 1] == p)
		{
			blocks[i - 1] = blocks[--nblocks];
			return true;
		}
	}
	return false;
}

size_t
fuzz_pg_free_all(void)
{
	size_t		n = nblocks;

	for (size_t i = 0; i < nblocks; i++)
		free(blocks[i]);
	nblocks = 0;
	return n;
}

void *
palloc_extended(Size size, int flags)
{
	void	   *p;

	if ((flags & MCXT_ALLOC_HUGE) ? !AllocHugeSizeIsValid(size) : !AllocSizeIsValid(size))
		raise_error(ERRCODE_INTERNAL_ERROR, "invalid memory alloc request size %zu", size);
	p = (flags & MCXT_ALLOC_ZERO) ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
	if (p == NULL)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		raise_error(ERRCODE_OUT_OF_MEMORY, "out of memory: failed on request of size %zu", size);
	}
	track(p);
	return p;
}

void *
palloc(Size size)
{
	return palloc_extended(size, 0);
}

void *
palloc0(Size size)
{
	return palloc_extended(size, MCXT_ALLOC_ZERO);
}

void *
repalloc(void *pointer, Size size)
{
	void	   *p;

	if (!AllocSizeIsValid(size))
		raise_error(ERRCODE_INTERNAL_ERROR, "invalid memory alloc request size %zu", size);
	if (!untrack(pointer))
		harness_bug("repalloc of a block palloc did not return");
	p = realloc(pointer, size ? size : 1);
	if (p == NULL)
		harness_bug("out of memory in repalloc");
	track(p);
	return p;
}

void
pfree(void *pointer)
{
	if (!untrack(pointer))
		harness_bug("pfree of a block palloc did not return");
	free(pointer);
}

/* ---------- ereport ---------- */

bool
errstart(int elevel, const char *domain)
{
	error_level = elevel;
	fuzz_pg_error_code = 0;
	fuzz_pg_error_message[0] = '\0';
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (error_level < ERROR)
		return;
	if (fuzz_pg_error_jump == NULL)
		harness_bug("an ERROR outside the harness's jump");
	siglongjmp(*fuzz_pg_error_jump, 1);
}

int
errcode(int sqlerrcode)
{
	fuzz_pg_error_code = sqlerrcode;
	return 0;
}

/* Format one part of a report, as the server would; keep the primary message. */
static void
format_part(bool primary, const char *fmt, va_list ap)
{
	char		buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (primary)
		snprintf(fuzz_pg_error_message, sizeof(fuzz_pg_error_message), "%s", buf);
}

#define FORMAT_PART(primary, fmt) \
	do { \
		va_list		ap; \
		va_start(ap, fmt); \
		format_part(primary, fmt, ap); \
		va_end(ap); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	FORMAT_PART(true, fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	FORMAT_PART(true, fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	FORMAT_PART(false, fmt);
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	FORMAT_PART(false, fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	FORMAT_PART(false, fmt);
	return 0;
}

/* ---------- StringInfo ---------- */

void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->len = 0;
	str->data[0] = '\0';
	str->cursor = 0;
}

void
appendBinaryStringInfo(StringInfo str, const char *data, int datalen)
{
	if (datalen < 0 || (Size) str->len + datalen + 1 > MaxAllocSize)
		raise_error(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "out of memory: string buffer");
	if (str->len + datalen + 1 > str->maxlen)
	{
		int			cap = str->maxlen;

		while (str->len + datalen + 1 > cap)
			cap = (Size) cap * 2 > MaxAllocSize ? (int) MaxAllocSize : cap * 2;
		str->data = repalloc(str->data, cap);
		str->maxlen = cap;
	}
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
	str->data[str->len] = '\0';
}

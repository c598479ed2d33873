/*
 * pg_stubs.h
 *	  What fuzz_model.c needs from pg_stubs.c, the stand-ins for the parts
 *	  of the PostgreSQL server that src/model_codec.c calls: palloc and
 *	  friends, ereport, and StringInfo.
 */
#ifndef TINYTEMP_FUZZ_PG_STUBS_H
#define TINYTEMP_FUZZ_PG_STUBS_H

#include <setjmp.h>

/*
 * Where an ERROR (or worse) jumps; NULL: an ERROR aborts, so that one
 * raised outside fuzz_pg_try is a crash the fuzzer reports.
 */
extern sigjmp_buf *fuzz_pg_error_jump;

/* The SQLSTATE and message of the last ERROR, for the harness's checks. */
extern int	fuzz_pg_error_code;
extern char fuzz_pg_error_message[256];

/* Free everything palloc'd since the last call; returns how many blocks it freed. */
extern size_t fuzz_pg_free_all(void);

#endif							/* TINYTEMP_FUZZ_PG_STUBS_H */

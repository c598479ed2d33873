/*
 * fuzz_model.c
 *	  libFuzzer target: the predictor's model loader (deserialize in
 *	  src/model_codec.c), built against pg_stubs.c.
 *
 * Every input must either decode or raise the loader's own ERROR
 * (XX001, "predictor model ... is corrupt"); anything else, a sanitizer
 * report or an ERROR of another kind, is a crash.  An input that decodes
 * must encode back to exactly the same bytes: the format has one way to
 * write a model, and the loader must take nothing more than that.
 *
 * FUZZ_MODEL_TRACE=1 prints what became of each input, e.g. of the seeds:
 *	  FUZZ_MODEL_TRACE=1 ./fuzz_model -runs=0 corpus/model
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "model_codec.h"
#include "pg_stubs.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop with the input reported as a crash. */
static void
fail(const char *why)
{
	fprintf(stderr, "fuzz_model: %s\n", why);
	abort();
}

/* What evaluation relies on in a model or part, checked again from outside the loader. */
static void
check_trees(const Model *m)
{
	if (m->nfeatures != (m->weights ? NFEATURES : NFEATURES_V3))
		fail("a feature count that is not that of the model's format");
	if (m->ntrees < 1 || m->ntrees > MAX_TREES || m->depth < 1 || m->depth > MAX_DEPTH)
		fail("tree count or depth out of range");
	for (size_t i = 0; i < (size_t) m->ntrees * m->depth; i++)
		if (m->split_feature[i] < 0 || m->split_feature[i] >= m->nfeatures)
			fail("a split names an unknown feature");
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		const CategoryMap *map = &m->categories[c];

		for (int i = 1; i < map->n; i++)
			if (name_cmp(map->names[i - 1], map->lengths[i - 1], map->names[i], map->lengths[i]) >= 0)
				fail("categories out of order");
	}
}

/* The same for a whole model: its trees, its interval, its job types' models. */
static void
check_model(const Model *m)
{
	check_trees(m);
	if (m->weights && m->interval_bins < 1)
		fail("a model of format 4 without an interval");
	if (m->nparts > 0 && !m->weights)
		fail("job types with models of their own in a model of format 2 or 3");
	for (int p = 0; p < m->nparts; p++)
	{
		if (!m->parts[p].weights || m->parts[p].nparts != 0 || m->parts[p].interval_bins != 0)
			fail("a job type's model that is not a plain model of format 4");
		check_trees(&m->parts[p]);
		if (p > 0 && name_cmp(m->part_names[p - 1], m->part_lengths[p - 1],
							  m->part_names[p], m->part_lengths[p]) >= 0)
			fail("job types out of order");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jump;
	volatile bool decoded = false;

	/* A version of 0 and one above it take the two forms of the message. */
	int64		version = size % 2;

	if (sigsetjmp(jump, 0) == 0)
	{
		Model	   *m;
		StringInfoData buf;

		fuzz_pg_error_jump = &jump;
		m = deserialize((const char *) data, size, version);
		decoded = true;
		check_model(m);
		initStringInfo(&buf);
		serialize(m, &buf);
		if ((size_t) buf.len != size || memcmp(buf.data, data, size) != 0)
			fail("a model that decodes does not encode back to the same bytes");
	}
	fuzz_pg_error_jump = NULL;
	if (getenv("FUZZ_MODEL_TRACE"))
		fprintf(stderr, "fuzz_model: %zu bytes: %s\n", size,
				decoded ? "decodes and encodes back" : fuzz_pg_error_message);
	if (!decoded &&
		(fuzz_pg_error_code != ERRCODE_DATA_CORRUPTED ||
		 strstr(fuzz_pg_error_message, "is corrupt") == NULL))
	{
		fprintf(stderr, "fuzz_model: unexpected ERROR %d: %s\n", fuzz_pg_error_code,
				fuzz_pg_error_message);
		abort();
	}
	fuzz_pg_free_all();
	return 0;
}

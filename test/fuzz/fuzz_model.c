/*
 * fuzz_model.c
 *	  libFuzzer target: the predictor's model loader (deserialize in
 *	  src/model_codec.c), built against pg_stubs.c.
 *
 * Every input must either decode or raise the loader's own ERROR
 * (XX001, "predictor model ... is corrupt"); anything else, a sanitizer
 * report or an ERROR of another kind, is a crash.  An input that decodes
 * must encode back to exactly the same bytes: the format has one way to
 * write a model, and the loader must take nothing more than that.  It
 * must also hold, checked from outside the loader, what evaluation relies
 * on (check_model): its trees' shape and splits, its names' order, in
 * formats 5 and 6 its history of requests (keys in order, counts, means,
 * shrinkages, interval), which formats 2 to 4 and job types' models lack,
 * in formats 6 and 7 its section of bare requests (check_bare): on the model
 * only, never on a part, and the three log-runtime quantiles of the model
 * and of each part that knows them finite, at most MAX_LOG_RUNTIME and in
 * order; a model of formats 2 to 5 knows them nowhere; and in format 7 its
 * section of overheads (check_overheads), the same way: on the model only,
 * overheads in the map of models alone, each finite and at most
 * MAX_LOG_RUNTIME either way; a model of formats 2 to 6 has none.
 *
 * FUZZ_MODEL_TRACE=1 prints what became of each input, e.g. of the seeds:
 *	  FUZZ_MODEL_TRACE=1 ./fuzz_model -runs=0 corpus/model
 */
#include "postgres.h"

#include <math.h>
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

/*
 * The history of requests of a model of format 5, which evaluation
 * searches by key and blends by shrinkage, mean and count (see Model).
 */
static void
check_history(const Model *m)
{
	if (!m->has_history)
	{
		if (m->nhistory != 0)
			fail("history keys in a model without a history");
		return;
	}
	if (!m->weights)
		fail("a history in a model of format 2 or 3");
	if (m->nhistory < 0 || m->nhistory > MAX_HISTORY_KEYS)
		fail("history key count out of range");
	if (m->nhistory > 0 && (!m->history_key || !m->history_mean || !m->history_count))
		fail("history keys without their arrays");
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		if (m->history_shrink[l] != -1 &&
			!(m->history_shrink[l] >= 0 && m->history_shrink[l] <= MAX_HISTORY_SHRINK))
			fail("history shrinkage out of range");
		if (!(m->history_lo[l] <= 0 && m->history_lo[l] >= -MAX_LOG_SPREAD &&
			  m->history_hi[l] >= 0 && m->history_hi[l] <= MAX_LOG_SPREAD))
			fail("history interval out of range");
	}
	for (int i = 0; i < m->nhistory; i++)
	{
		if (i > 0 && m->history_key[i] <= m->history_key[i - 1])
			fail("history keys out of order");
		if (m->history_count[i] < 1)
			fail("a history key with a count of 0");
		if (!isfinite(m->history_mean[i]) || fabs(m->history_mean[i]) > MAX_LOG_SPREAD)
			fail("a history key's mean out of range");
	}
}

/*
 * The runtimes of bare requests of a model or part, in a model of format 6
 * (section) or of an earlier one: known only in format 6, and then three
 * finite log quantiles, at most MAX_LOG_RUNTIME, in increasing order.
 */
static void
check_bare(const Model *m, bool section)
{
	if (!m->bare_known)
		return;
	if (!section)
		fail("runtimes of bare requests in a model without their section");
	for (int q = 0; q < 3; q++)
	{
		if (!isfinite(m->bare_log[q]) || fabs(m->bare_log[q]) > MAX_LOG_RUNTIME)
			fail("a runtime of bare requests out of range");
		if (q > 0 && !(m->bare_log[q] >= m->bare_log[q - 1]))
			fail("runtimes of bare requests out of order");
	}
}

/*
 * The overheads of a model or part, in a model of format 7 (section) or of
 * an earlier one: only in format 7, only in the map of models, and then
 * finite log runtimes, at most MAX_LOG_RUNTIME either way.
 */
static void
check_overheads(const Model *m, bool section)
{
	const CategoryMap *map = &m->categories[OVERHEAD_MAP];

	for (int c = 0; c < NCATEGORICAL; c++)
		if (c != OVERHEAD_MAP && m->categories[c].overheads)
			fail("overheads in a map other than the models'");
	if (!map->overheads)
		return;
	if (!section)
		fail("overheads in a model without their section");
	if (!m->weights)
		fail("overheads in a model without a linear part");
	if (!isfinite(map->overhead_fallback) || fabs(map->overhead_fallback) > MAX_LOG_RUNTIME ||
		!isfinite(map->overhead_unseen) || fabs(map->overhead_unseen) > MAX_LOG_RUNTIME)
		fail("an overhead of NULL or unseen models out of range");
	for (int k = 0; k < map->n; k++)
		if (!isfinite(map->overheads[k]) || fabs(map->overheads[k]) > MAX_LOG_RUNTIME)
			fail("a model's overhead out of range");
}

/*
 * The same for a whole model: its trees, its interval, its job types'
 * models, its history of requests, its runtimes of bare requests, its
 * overheads.
 */
static void
check_model(const Model *m)
{
	check_trees(m);
	if (m->weights && m->interval_bins < 1)
		fail("a model of format 4 to 7 without an interval");
	if (m->nparts > 0 && !m->weights)
		fail("job types with models of their own in a model of format 2 or 3");
	check_history(m);
	if (m->has_bare_section && (!m->weights || !m->has_history))
		fail("a section of bare requests in a model of format 2 to 5");
	check_bare(m, m->has_bare_section);
	if (m->has_overhead_section && !m->has_bare_section)
		fail("a section of overheads in a model of format 2 to 6");
	check_overheads(m, m->has_overhead_section);
	for (int p = 0; p < m->nparts; p++)
	{
		if (!m->parts[p].weights || m->parts[p].nparts != 0 || m->parts[p].interval_bins != 0)
			fail("a job type's model that is not a plain model of format 4");
		if (m->parts[p].has_history || m->parts[p].nhistory != 0)
			fail("a job type's model with a history of requests");
		if (m->parts[p].has_bare_section)
			fail("a job type's model with a section of bare requests of its own");
		if (m->parts[p].has_overhead_section)
			fail("a job type's model with a section of overheads of its own");
		check_bare(&m->parts[p], m->has_bare_section);
		check_overheads(&m->parts[p], m->has_overhead_section);
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

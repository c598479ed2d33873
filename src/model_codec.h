/*
 * model_codec.h
 *	  The predictor's model in memory and its stored form (a bytea in
 *	  tinytemp.predictor_models): the encoder and the loader, which trusts
 *	  nothing it reads.  Kept apart from predictor.c so that the loader can
 *	  be built on its own, as the fuzzer in test/fuzz/ does.
 *
 * Include after postgres.h.
 */
#ifndef TINYTEMP_MODEL_CODEC_H
#define TINYTEMP_MODEL_CODEC_H

#include "lib/stringinfo.h"

#define NFEATURES		18		/* features of a model of format 4 */
#define NLINEAR			(NFEATURES - 1) /* those with a linear weight; the last is their sum */
#define NFEATURES_V3	13		/* features of a model of format 2 or 3 */
#define NCATEGORICAL	3
#define MODEL_MAGIC		0x54544742	/* "TTGB" */
#define MODEL_FORMAT	7		/* format 6 and the models' overheads */
#define MODEL_FORMAT_BARE	6	/* before it: format 5 and the runtimes of bare requests */
#define MODEL_FORMAT_HISTORY	5	/* before it: format 4 and the history of requests */
#define MODEL_FORMAT_LINEAR	4	/* before that: a linear part under the trees */
#define MODEL_FORMAT_INTERVAL	3	/* before it: trees and the runtime interval */
#define MODEL_FORMAT_POINT	2	/* before that: trees, point predictions only */
#define MAX_TREES		10000
#define MAX_DEPTH		12
#define MAX_CATEGORIES	100000
#define MAX_INTERVAL_BINS	16
#define MAX_LOG_SPREAD	30.0	/* a bound's distance from the prediction, in log seconds */
#define HISTORY_LEVELS	2		/* a recurring request; its tenant, queue, job type and GPUs */
#define MAX_HISTORY_KEYS	10000000
#define MAX_HISTORY_SHRINK	1e6
#define MAX_LOG_RUNTIME	40.0	/* a bare request's runtime quantiles, in log seconds, at most */

/* Category -> encoding, sorted by name for binary search. */
typedef struct CategoryMap
{
	int			n;
	char	  **names;
	int		   *lengths;
	float8	   *codes;
	float8		fallback;		/* NULL, and unseen categories before format 4 */
	float8		unseen;			/* unseen categories */

	/*
	 * Overheads (format 7, the model's map only; NULL when none): each
	 * category's log runtime of a job that does no work, learnt with the
	 * linear part (see Model), and those of NULL and of unseen categories.
	 */
	float8	   *overheads;
	float8		overhead_fallback;
	float8		overhead_unseen;
} CategoryMap;

#define OVERHEAD_MAP	1		/* the map whose categories have overheads: the model */

/*
 * The trees are oblivious: all the nodes of one level of a tree split on
 * the same feature and threshold, so a tree is `depth` splits and 2^depth
 * leaves.  Evaluating one is `depth` independent comparisons that build
 * the leaf's index bit by bit, with no branch to mispredict, which is what
 * lets a backend predict well over a million rows a second.
 *
 * A model of format 4 describes a job by NFEATURES features and predicts
 * base + linear + trees, where linear, the weighted sum of the first
 * NLINEAR features, is also the trees' last feature.  It has parts: models
 * of their own (without interval or parts) for the job types that had
 * enough training rows, which predict those jobs' runtime; the model
 * itself predicts the others'.  In a model of format 7, linear is the log
 * of a sum: the runtime of the weighted sum, as work, and an overhead of
 * the job's model (see CategoryMap), as a job pays whatever it does.
 * Models of formats 2 and 3 describe a job
 * by the NFEATURES_V3 features of their time and have no linear part
 * (weights is NULL) and no parts.
 */
typedef struct Model
{
	int64		version;
	float8		base;
	int			nfeatures;		/* NFEATURES, or NFEATURES_V3 */
	CategoryMap categories[NCATEGORICAL];
	float8	   *weights;		/* NLINEAR, or NULL */
	int			ntrees;
	int			depth;
	int32	   *split_feature;	/* ntrees x depth */
	float4	   *split_value;	/* ntrees x depth: x <= value is bit 0 */
	float4	   *leaf;			/* ntrees x 2^depth */

	/*
	 * The 10-90% interval of the log residual (log actual - log predicted),
	 * calibrated by cross-validation: by bins of the predicted log runtime, bin b
	 * holding predictions up to interval_edge[b] (the last bin, all above),
	 * each with the 10th and 90th percentile of its residuals (lo <= 0 <=
	 * hi).  interval_bins is 0 in a model of format 2, which has none; every
	 * model of format 4 has one.
	 */
	int			interval_bins;
	float8	   *interval_edge;	/* interval_bins - 1, increasing */
	float8	   *interval_lo;	/* interval_bins */
	float8	   *interval_hi;	/* interval_bins */

	/* The job types with a model of their own, sorted by name for binary search. */
	int			nparts;
	char	  **part_names;
	int		   *part_lengths;
	struct Model *parts;		/* nparts */

	/*
	 * The history of requests (format 5; has_history false before): what
	 * the model got wrong, on average of late, for jobs like a new one.
	 * Level 0 is a recurring request (the same tenant, queue, job type,
	 * model, params and GPU count), level 1 its tenant, queue, job type and
	 * GPU count.  Each key (a hash of those, level included) has the recent
	 * mean log residual of its jobs (actual - predicted, cross-validated)
	 * and their count.  A job's correction is its level-1 mean shrunk
	 * towards 0 by history_shrink[1] (n / (n + shrink); -1: the level is
	 * not used), then its level-0 mean shrunk towards that.  A corrected
	 * prediction's 10-90% interval is history_lo/hi of the deepest level it
	 * used, when that level had history_rows of at least HISTORY_INTERVAL_ROWS
	 * in training, else the model's own.  Keys are sorted, for binary search.
	 */
	bool		has_history;
	float8		history_shrink[HISTORY_LEVELS];
	float8		history_lo[HISTORY_LEVELS];
	float8		history_hi[HISTORY_LEVELS];
	uint32		history_rows[HISTORY_LEVELS];
	int			nhistory;
	uint64	   *history_key;	/* nhistory, strictly increasing */
	float8	   *history_mean;	/* nhistory */
	uint32	   *history_count;	/* nhistory, each at least 1 */

	/*
	 * Bare requests (format 6; has_bare_section false before): a request
	 * that names no model and gives no dataset_size, epochs or batch_size
	 * describes no work, and trees that never saw one would answer it from
	 * the nearest rows they know, confidently and wrongly.  A model (or a
	 * job type's) whose training rows held fewer than BARE_MIN_ROWS of them
	 * has bare_known, and predicts such a request by the 10th, 50th and
	 * 90th percentiles of the log runtimes of all its rows (bare_log, in
	 * increasing order): what a job of that type runs when nothing else is
	 * known.  The section is in the model and then in each part's order.
	 */
	bool		has_bare_section;
	bool		has_overhead_section;	/* format 7 */
	bool		bare_known;
	float8		bare_log[3];

	/*
	 * Not stored: the splits of the first TREE_BLOCK * (ntrees / TREE_BLOCK)
	 * trees again, block by block and level by level (block b's level l
	 * holds its trees' features, then their values, at (b * depth + l) *
	 * TREE_BLOCK), so that one vector instruction compares a level of
	 * TREE_BLOCK trees; set by the loader for trees of depth 6 (NULL else).
	 */
	int32	   *block_feature;
	float4	   *block_value;
} Model;

#define TREE_BLOCK		8

#define BARE_MIN_ROWS	30

#define HISTORY_INTERVAL_ROWS	100

/* Order of two category names given with their lengths. */
static inline int
name_cmp(const char *a, int alen, const char *b, int blen)
{
	int			cmp = memcmp(a, b, Min(alen, blen));

	return cmp != 0 ? cmp : alen - blen;
}

/*
 * Not exported from tinytemp.so: the names are short, and only the
 * extension's own files use them.
 */
extern uint32 model_format(const Model *m) __attribute__((visibility("hidden")));
extern void serialize(const Model *m, StringInfo buf) __attribute__((visibility("hidden")));
extern Model *deserialize(const char *data, size_t len, int64 version) __attribute__((visibility("hidden")));

#endif							/* TINYTEMP_MODEL_CODEC_H */

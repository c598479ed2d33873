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

#define NFEATURES		13
#define NCATEGORICAL	3
#define MODEL_MAGIC		0x54544742	/* "TTGB" */
#define MODEL_FORMAT	3		/* with the runtime interval */
#define MODEL_FORMAT_POINT	2	/* before it: point predictions only */
#define MAX_TREES		10000
#define MAX_DEPTH		12
#define MAX_CATEGORIES	100000
#define MAX_INTERVAL_BINS	16
#define MAX_LOG_SPREAD	30.0	/* a bound's distance from the prediction, in log seconds */

/* Category -> encoding, sorted by name for binary search. */
typedef struct CategoryMap
{
	int			n;
	char	  **names;
	int		   *lengths;
	float8	   *codes;
	float8		fallback;		/* unseen categories and NULL */
} CategoryMap;

/*
 * The trees are oblivious: all the nodes of one level of a tree split on
 * the same feature and threshold, so a tree is `depth` splits and 2^depth
 * leaves.  Evaluating one is `depth` independent comparisons that build
 * the leaf's index bit by bit, with no branch to mispredict, which is what
 * lets a backend predict well over a million rows a second.
 */
typedef struct Model
{
	int64		version;
	float8		base;
	CategoryMap categories[NCATEGORICAL];
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
	 * hi).  interval_bins is 0 in a model of format 2, which has none.
	 */
	int			interval_bins;
	float8	   *interval_edge;	/* interval_bins - 1, increasing */
	float8	   *interval_lo;	/* interval_bins */
	float8	   *interval_hi;	/* interval_bins */
} Model;

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
extern void serialize(const Model *m, StringInfo buf) __attribute__((visibility("hidden")));
extern Model *deserialize(const char *data, size_t len, int64 version) __attribute__((visibility("hidden")));

#endif							/* TINYTEMP_MODEL_CODEC_H */

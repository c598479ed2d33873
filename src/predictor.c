/*
 * predictor.c
 *	  The runtime predictor: gradient-boosted regression trees trained and
 *	  evaluated in C, on the log of the runtime.
 *
 * A job is described by 18 features: its job_type, model and gpu_type, each
 * replaced by a code learnt for its category (NULL has one too; a category
 * never seen, or NULL when no training row had it, gets the code of the
 * most frequent one); the logs of its sizes and resources (-1 for NULL);
 * derived measures of work: samples processed (dataset_size x epochs),
 * optimizer steps, samples per device, the batch each GPU sees, memory per
 * sample; whether it runs on GPUs, gives epochs, gives a batch size; and,
 * last, the parametric part.  The prediction, in log seconds, is a base,
 * plus the parametric part: the linear part (the codes plus a weighted sum
 * of the numeric features, fitted by least squares: the log of a product of
 * sizes and rates is a sum), taken since format 7 as the work on top of an
 * overhead of the job's model when that fits better (fit_parametric), plus
 * gradient-boosted trees fitted to what the parametric part leaves.
 * Each job type with enough training rows gets such a model of its own;
 * one more, on all the rows, predicts the others.  Trees split on quantile
 * bins of each feature (rounded to float4), so that training 20,000 rows
 * takes a few seconds, and they are oblivious (see Model), so that
 * evaluating one is branch-free.  Models stored by earlier versions (formats 2 and 3: 13
 * features, codes that are mean log runtimes, no linear part, one model for
 * all job types) still load and predict as they did.
 *
 * A model is stored as a bytea in tinytemp.predictor_models; the newest
 * version is current.  Each backend keeps the current model in memory; a
 * new model sends a relcache invalidation for that table, which tells every
 * backend to reload it.  The loader trusts nothing it reads: a corrupt
 * model raises an error, never a crash.
 *
 * Evaluating the trees is nearly all of a prediction's cost.  Where the
 * processor has AVX2, the loader also lays out each model's splits eight
 * trees by eight, level by level (build_tree_blocks), and a prediction
 * compares a level of eight trees at once (tree_blocks_avx2), adding their
 * leaves in the same order as one tree at a time: the same sum to the bit.
 *
 * A prediction comes with a 10-90% interval: the trained model keeps the
 * 10th and 90th percentiles of the log residuals of cross-validation, by
 * bins of the predicted runtime, so that the bounds are those of errors on
 * jobs the model did not see.
 */
#include "tinytemp.h"

#include <math.h>

#include "model_codec.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "funcapi.h"
#include "access/htup_details.h"

PG_FUNCTION_INFO_V1(tinytemp_predict_runtime);
PG_FUNCTION_INFO_V1(tinytemp_predict_runtime_interval);
PG_FUNCTION_INFO_V1(tinytemp_train_predictor);
PG_FUNCTION_INFO_V1(tinytemp_predictor_check);
PG_FUNCTION_INFO_V1(tinytemp_predictor_models_changed);
PG_FUNCTION_INFO_V1(tinytemp_table_changed);

#define MAX_BINS		64
#define MIN_TRAIN_ROWS	30
#define CV_FOLDS		3
#define INTERVAL_LOW	0.10	/* the interval's quantiles */
#define INTERVAL_HIGH	0.90
#define INTERVAL_BIN_ROWS	500 /* residuals per bin of the interval, at least */
#define INTERVAL_MAX_BINS	8	/* bins trained; the loader takes up to MAX_INTERVAL_BINS */
#define PART_MIN_ROWS	500	/* rows of a job type that get it a model of its own */
#define LINEAR_RIDGE	1.0		/* fit_linear's penalty, in rows of standardized features */
#define LINEAR_SMOOTHING	10.0	/* and its pseudo-rows of code 0 in each category */
#define LINEAR_MAX_ITERATIONS	100
#define LINEAR_TOLERANCE	1e-5	/* largest change of a code, in log seconds, when done */
#define OVERHEAD_ITERATIONS	20	/* fit_parametric's rounds, at most */
#define OVERHEAD_TOLERANCE	1e-3	/* least relative fall of its squared error that goes on */
#define OVERHEAD_START_QUANTILE	0.05	/* of the log runtimes, where overheads start */
#define OVERHEAD_BELOW	10.0	/* how far below the shortest log runtime an overhead may go */
#define OVERHEAD_MIN_SHARE	1e-6	/* of the work in a runtime, in a step of the linear part */

/* Training settings; the defaults won on held-out synthetic data. */
typedef struct TrainParams
{
	int			trees;
	int			depth;
	double		learning_rate;
	int			min_leaf;
	double		subsample;
	uint64		seed;
} TrainParams;

static const TrainParams default_params = {400, 6, 0.1, 5, 0.5, 42};

/* One job's inputs, as the SQL functions receive them. */
typedef struct JobFeatures
{
	const char *category[NCATEGORICAL];	/* job_type, model, gpu_type; NULL allowed */
	int			category_len[NCATEGORICAL];
	bool		has[6];			/* dataset_size, epochs, batch_size, cpus, gpus, memory_mb */
	double		value[6];
	bool		has_identity;	/* then its keys in the history of requests */
	uint64		history_key[HISTORY_LEVELS];
} JobFeatures;

enum
{
	IN_DATASET, IN_EPOCHS, IN_BATCH, IN_CPUS, IN_GPUS, IN_MEMORY
};

static Model *current_model = NULL;
static bool current_model_valid = false;
static bool invalidation_registered = false;
static MemoryContext model_context = NULL;

/* ---------- features ---------- */

/*
 * Index of a category value in map, by binary search: -1 for NULL, -2 for
 * one the map does not hold.
 */
static int
category_index(const CategoryMap *map, const char *name, int len)
{
	int			lo = 0,
				hi = map->n - 1;

	if (name == NULL)
		return -1;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = name_cmp(name, len, map->names[mid], map->lengths[mid]);

		if (cmp == 0)
			return mid;
		if (cmp < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -2;
}

/* Code of the category at index (see category_index) in map. */
static inline double
indexed_code(const CategoryMap *map, int index)
{
	return index >= 0 ? map->codes[index] : (index == -1 ? map->fallback : map->unseen);
}

/* Log overhead of the category at index in map, which has overheads. */
static inline double
indexed_overhead(const CategoryMap *map, int index)
{
	return index >= 0 ? map->overheads[index] :
		(index == -1 ? map->overhead_fallback : map->overhead_unseen);
}

/* log1p of a non-negative input, -1 when it is NULL. */
static inline double
log_or_missing(const JobFeatures *in, int i)
{
	return in->has[i] ? log1p(in->value[i]) : -1.0;
}

/*
 * Features 3 to 12 of a job, the same in every format: the logs of its
 * sizes and resources, samples processed (dataset_size x epochs),
 * optimizer steps, samples per device, and whether it runs on GPUs.
 */
static void
input_features(const JobFeatures *in, double *x)
{
	double		samples,
				steps,
				devices;

	x[3] = log_or_missing(in, IN_DATASET);
	x[4] = log_or_missing(in, IN_EPOCHS);
	x[5] = log_or_missing(in, IN_BATCH);
	x[6] = log_or_missing(in, IN_CPUS);
	x[7] = log_or_missing(in, IN_GPUS);
	x[8] = log_or_missing(in, IN_MEMORY);

	samples = in->value[IN_DATASET] * (in->has[IN_EPOCHS] ? in->value[IN_EPOCHS] : 1.0);
	steps = samples / (in->has[IN_BATCH] && in->value[IN_BATCH] > 0 ? in->value[IN_BATCH] : 1.0);
	devices = in->has[IN_GPUS] && in->value[IN_GPUS] > 0 ? in->value[IN_GPUS] :
		(in->has[IN_CPUS] && in->value[IN_CPUS] > 0 ? in->value[IN_CPUS] : 1.0);
	x[9] = in->has[IN_DATASET] ? log1p(samples) : -1.0;
	x[10] = in->has[IN_DATASET] ? log1p(steps) : -1.0;
	x[11] = in->has[IN_DATASET] ? log1p(samples / devices) : -1.0;
	x[12] = in->has[IN_GPUS] && in->value[IN_GPUS] > 0 ? 1.0 : 0.0;
}

/* The feature vector of a job under a model of format 2 or 3. */
static void
job_vector_v3(const CategoryMap *maps, const JobFeatures *in, double *x)
{
	for (int c = 0; c < NCATEGORICAL; c++)
		x[c] = indexed_code(&maps[c],
							category_index(&maps[c], in->category[c], in->category_len[c]));
	input_features(in, x);
}

/*
 * Features 3 to NLINEAR - 1 of a job under a model of format 4, those that
 * need no training: those of every format, whether it gives epochs and a
 * batch size, the batch each GPU sees, and the memory per sample (whose
 * shortage slows jobs that hold their data in memory).
 */
static void
work_features(const JobFeatures *in, double *x)
{
	double		gpus = in->has[IN_GPUS] ? in->value[IN_GPUS] : 0;

	input_features(in, x);
	x[13] = in->has[IN_EPOCHS] ? 1.0 : 0.0;
	x[14] = in->has[IN_BATCH] ? 1.0 : 0.0;
	x[15] = in->has[IN_BATCH] ? log1p(in->value[IN_BATCH] / Max(gpus, 1.0)) : -1.0;
	x[16] = in->has[IN_DATASET] && in->has[IN_MEMORY] ? x[8] - x[3] : 0.0;
}

/*
 * The linear part of a job with features x (the first NLINEAR filled) under
 * weights, returned and put in x[NLINEAR] for the trees.
 */
static double
linear_part(const float8 *weights, double *x)
{
	double		linear = 0;

	for (int f = 0; f < NLINEAR; f++)
		linear += weights[f] * x[f];
	x[NLINEAR] = linear;
	return linear;
}

/* log(exp(a) + exp(b)), without overflow. */
static inline double
log_sum_exp(double a, double b)
{
	return Max(a, b) + log1p(exp(-fabs(a - b)));
}

/*
 * The parametric part of a job with features x under m: its linear part,
 * and, when m has overheads (format 7), that runtime as the work on top of
 * the overhead of the job's model (model_index, see category_index): the
 * log of their sum, less m's base, in which the linear part is learnt.
 * Returned and put in x[NLINEAR] for the trees.
 */
static double
parametric_part(const Model *m, int model_index, double *x)
{
	const CategoryMap *map = &m->categories[OVERHEAD_MAP];
	double		work = linear_part(m->weights, x);
	double		overhead;

	if (map->overheads == NULL)
		return work;
	overhead = indexed_overhead(map, model_index) - m->base;
	x[NLINEAR] = log_sum_exp(work, overhead);
	return x[NLINEAR];
}

/*
 * Add to sum the trees t to m->ntrees of m for the feature vector x, from
 * the split and leaf pointers of tree t (a statement, for x of either
 * precision).
 */
#define ADD_TREES(m, x, t, sum, feature, value, leaf) \
	for (; (t) < (m)->ntrees; (t)++) \
	{ \
		int			idx_ = 0; \
\
		for (int l_ = 0; l_ < (m)->depth; l_++) \
			idx_ = (idx_ << 1) | ((x)[(feature)[l_]] > (value)[l_]); \
		(sum) += (leaf)[idx_]; \
		(feature) += (m)->depth; \
		(value) += (m)->depth; \
		(leaf) += 1 << (m)->depth; \
	}

/* Sum of the trees for one feature vector, plus the model's base. */
static double
model_eval(const Model *m, const double *x)
{
	double		sum = m->base;
	const int32 *feature = m->split_feature;
	const float4 *value = m->split_value;
	const float4 *leaf = m->leaf;
	int			t = 0;

	ADD_TREES(m, x, t, sum, feature, value, leaf);
	return sum;
}

/*
 * The same for a model of format 4, whose trees were trained on features
 * rounded to float4 as x is: comparing in float4 gives the same splits and
 * costs less.  Trees of the usual depth are evaluated four at a time with
 * their levels unrolled, which lets the processor work on the four leaf
 * indexes at once; from tree t on, with sum so far.
 */
static double
trees_eval_float4(const Model *m, const float4 *x, int t, double sum)
{
	const int32 *feature = m->split_feature + (size_t) t * m->depth;
	const float4 *value = m->split_value + (size_t) t * m->depth;
	const float4 *leaf = m->leaf + ((size_t) t << m->depth);
	int			depth = m->depth;

#define LEVEL(o, l) ((x[feature[(o) + (l)]] > value[(o) + (l)]) << (5 - (l)))
#define TREE(o) (LEVEL(o, 0) | LEVEL(o, 1) | LEVEL(o, 2) | LEVEL(o, 3) | LEVEL(o, 4) | LEVEL(o, 5))
	if (depth == 6)
		for (; t + 4 <= m->ntrees; t += 4)
		{
			int			a = TREE(0),
						b = TREE(6),
						c = TREE(12),
						d = TREE(18);

			sum += ((double) leaf[a] + leaf[64 + b]) + ((double) leaf[128 + c] + leaf[192 + d]);
			feature += 24;
			value += 24;
			leaf += 256;
		}
#undef TREE
#undef LEVEL
	ADD_TREES(m, x, t, sum, feature, value, leaf);
	return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_TREE_BLOCKS_AVX2 1

/*
 * The trees of m's blocks (see Model) for x, with AVX2: the features, at
 * most 24, sit in three vector registers, and each level of a block's
 * TREE_BLOCK trees is three permutes that pick each tree's feature (one
 * per register, then two blends by its number), one compare and one OR
 * into their leaf indexes; no gather, which costs as much as all of that
 * on some processors.  The leaves are added in the order trees_eval_float4
 * adds them, so that the sum is the same to the bit.
 */
__attribute__((target("avx2")))
static double
tree_blocks_avx2(const Model *m, const float4 *x, double sum)
{
	const float4 *leaf = m->leaf;
	int			nblocks = m->ntrees / TREE_BLOCK;
	float4		padded[3 * 8] = {0};
	__m256		x0,
				x1,
				x2;

	memcpy(padded, x, sizeof(float4) * m->nfeatures);
	x0 = _mm256_loadu_ps(padded);
	x1 = _mm256_loadu_ps(padded + 8);
	x2 = _mm256_loadu_ps(padded + 16);
	for (int b = 0; b < nblocks; b++)
	{
		const int32 *feature = m->block_feature + (size_t) b * 6 * TREE_BLOCK;
		const float4 *value = m->block_value + (size_t) b * 6 * TREE_BLOCK;
		__m256i		idx = _mm256_setzero_si256();
		int32		k[TREE_BLOCK];

		for (int l = 0; l < 6; l++)
		{
			__m256i		f = _mm256_loadu_si256((const __m256i *) (feature + l * TREE_BLOCK));
			__m256		xv = _mm256_permutevar8x32_ps(x0, f);
			__m256		gt;

			xv = _mm256_blendv_ps(xv, _mm256_permutevar8x32_ps(x1, f),
								  _mm256_castsi256_ps(_mm256_cmpgt_epi32(f, _mm256_set1_epi32(7))));
			xv = _mm256_blendv_ps(xv, _mm256_permutevar8x32_ps(x2, f),
								  _mm256_castsi256_ps(_mm256_cmpgt_epi32(f, _mm256_set1_epi32(15))));
			gt = _mm256_cmp_ps(xv, _mm256_loadu_ps(value + l * TREE_BLOCK), _CMP_GT_OQ);
			idx = _mm256_or_si256(idx, _mm256_and_si256(_mm256_castps_si256(gt),
														_mm256_set1_epi32(1 << (5 - l))));
		}
		_mm256_storeu_si256((__m256i *) k, idx);
		sum += ((double) leaf[k[0]] + leaf[64 + k[1]]) + ((double) leaf[128 + k[2]] + leaf[192 + k[3]]);
		sum += ((double) leaf[256 + k[4]] + leaf[320 + k[5]]) +
			((double) leaf[384 + k[6]] + leaf[448 + k[7]]);
		leaf += 64 * TREE_BLOCK;
	}
	return sum;
}
#endif

/* Whether this processor runs tree_blocks_avx2. */
static bool
use_tree_blocks(void)
{
#ifdef HAVE_TREE_BLOCKS_AVX2
	static int	avx2 = -1;

	if (avx2 < 0)
		avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
	return avx2 == 1;
#else
	return false;
#endif
}

/* All the trees of m for x, plus the model's base (see trees_eval_float4). */
static double
model_eval_float4(const Model *m, const float4 *x)
{
#ifdef HAVE_TREE_BLOCKS_AVX2
	if (m->block_feature != NULL && tinytemp_predictor_vector && use_tree_blocks())
		return trees_eval_float4(m, x, m->ntrees / TREE_BLOCK * TREE_BLOCK,
								 tree_blocks_avx2(m, x, m->base));
#endif
	return trees_eval_float4(m, x, 0, m->base);
}

/*
 * Lay out the splits of m and of its parts block by block (see Model), in
 * the current memory context, when the processor can use them.
 */
static void
build_tree_blocks(Model *m)
{
	if (!use_tree_blocks())
		return;
	for (int p = -1; p < m->nparts; p++)
	{
		Model	   *part = p < 0 ? m : &m->parts[p];
		int			nblocks = part->ntrees / TREE_BLOCK;

		if (part->depth != 6 || part->weights == NULL || part->nfeatures > 24 || nblocks == 0)
			continue;
		part->block_feature = palloc(sizeof(int32) * nblocks * 6 * TREE_BLOCK);
		part->block_value = palloc(sizeof(float4) * nblocks * 6 * TREE_BLOCK);
		for (int b = 0; b < nblocks; b++)
			for (int l = 0; l < 6; l++)
				for (int k = 0; k < TREE_BLOCK; k++)
				{
					int			t = b * TREE_BLOCK + k;
					size_t		o = ((size_t) b * 6 + l) * TREE_BLOCK + k;

					part->block_feature[o] = part->split_feature[t * 6 + l];
					part->block_value[o] = part->split_value[t * 6 + l];
				}
	}
}

/* The model that predicts a job under m: its job type's own, if it has one. */
static const Model *
job_model(const Model *m, const JobFeatures *in)
{
	int			lo = 0,
				hi = m->nparts - 1;

	while (lo <= hi && in->category[0] != NULL)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = name_cmp(in->category[0], in->category_len[0],
								   m->part_names[mid], m->part_lengths[mid]);

		if (cmp == 0)
			return &m->parts[mid];
		if (cmp < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return m;
}

/*
 * Whether a request describes no work: no model, dataset_size, epochs or
 * batch_size (see Model).
 */
static inline bool
job_is_bare(const JobFeatures *in)
{
	return in->category[1] == NULL && !in->has[IN_DATASET] && !in->has[IN_EPOCHS] &&
		!in->has[IN_BATCH];
}

/*
 * The predicted log runtime of a job under m, the model that predicts its
 * job type (job_model; model_predict finds it first): under a model of
 * format 4, from the category codes, the work features and, last, the
 * linear part, which the prediction adds to the trees; under an older
 * model, from the features of its format, by the trees alone.  A bare
 * request under a model that knows bare requests' runtimes gets their
 * median.
 */
static double
own_model_predict(const Model *m, const JobFeatures *in)
{
	double		x[NFEATURES];
	float4		xf[NFEATURES];
	double		linear = 0;
	int			model_index = -1;

	if (m->bare_known && job_is_bare(in))
		return m->bare_log[1];
	if (m->weights == NULL)
	{
		job_vector_v3(m->categories, in, x);
		return model_eval(m, x);
	}
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		int			index = category_index(&m->categories[c], in->category[c],
										   in->category_len[c]);

		x[c] = indexed_code(&m->categories[c], index);
		if (c == OVERHEAD_MAP)
			model_index = index;
	}
	work_features(in, x);
	linear = parametric_part(m, model_index, x);
	for (int f = 0; f < NFEATURES; f++)
		xf[f] = (float4) x[f];
	return model_eval_float4(m, xf) + linear;
}

static inline double
model_predict(const Model *m, const JobFeatures *in)
{
	return own_model_predict(job_model(m, in), in);
}

/* The interval bin of a predicted log runtime under m, which has an interval. */
static int
interval_bin(const Model *m, double pred)
{
	int			b = 0;

	while (b < m->interval_bins - 1 && pred > m->interval_edge[b])
		b++;
	return b;
}

/* ---------- the history of requests ---------- */

/* Mix a string (NULL: none, apart from every string) into a key. */
static inline uint64
mix_string(uint64 h, const char *s, int len)
{
	if (s == NULL)
		return hash_bytes_uint32_extended(0xffffffff, h);
	return hash_bytes_extended((const unsigned char *) s, len, h + (uint64) len + 1);
}

/*
 * The job's keys in the history of requests, from its inputs and who
 * submitted it: level 1, its tenant, queue, job type and GPU count; level
 * 0, those and its model and params, the same for a request that recurs.
 */
static void
set_history_keys(JobFeatures *job, const TinytempJobIdentity *who)
{
	uint64		h = 0x7474686973746f72; /* "tthistor" */

	job->has_identity = who != NULL;
	if (who == NULL)
		return;
	h = mix_string(h, who->tenant, who->tenant ? (int) strlen(who->tenant) : 0);
	h = mix_string(h, who->queue, who->queue ? (int) strlen(who->queue) : 0);
	h = mix_string(h, job->category[0], job->category_len[0]);
	h = hash_bytes_uint32_extended(job->has[IN_GPUS] ? (uint32) job->value[IN_GPUS] : 0xffffffff, h);
	job->history_key[1] = hash_bytes_uint32_extended(1, h);
	h = mix_string(h, job->category[1], job->category_len[1]);
	h = mix_string(h, who->params, who->params_len);
	job->history_key[0] = hash_bytes_uint32_extended(0, h);
}

/* The index of key in m's history, or -1. */
static int
history_find(const Model *m, uint64 key)
{
	int			lo = 0,
				hi = m->nhistory - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (m->history_key[mid] == key)
			return mid;
		if (m->history_key[mid] < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * The history's correction of a log prediction from a level-1 mean and
 * count (n1 0: none) and a level-0 mean and count, under the shrinkages
 * k (see Model); *level is the deepest level used, or -1.
 */
static double
history_blend(const double *k, double m1, double n1, double m0, double n0, int *level)
{
	double		c = 0;

	*level = -1;
	if (n1 > 0 && k[1] >= 0)
	{
		c = n1 / (n1 + k[1]) * m1;
		*level = 1;
	}
	if (n0 > 0 && k[0] >= 0)
	{
		c = (n0 * m0 + k[0] * c) / (n0 + k[0]);
		*level = 0;
	}
	return c;
}

/*
 * A job's predicted runtime under m in seconds, and, when m has an interval,
 * its 10th and 90th percentiles (then the return is true).  A job whose
 * submitter is known is corrected by m's history of requests.
 */
static bool
predict_job(const Model *m, const JobFeatures *job, double *p10, double *p50, double *p90)
{
	double		pred;
	double		lo,
				hi;
	int			level = -1;
	const Model *own = job_model(m, job);

	/* A bare request that the trees never learnt: what a job of its type runs. */
	if (own->bare_known && job_is_bare(job))
	{
		*p10 = exp(own->bare_log[0]);
		*p50 = exp(own->bare_log[1]);
		*p90 = exp(own->bare_log[2]);
		return true;
	}
	pred = own_model_predict(own, job);
	if (m->has_history && job->has_identity && m->nhistory > 0 && tinytemp_predictor_history)
	{
		int			i1 = history_find(m, job->history_key[1]);
		int			i0 = history_find(m, job->history_key[0]);

		pred += history_blend(m->history_shrink,
							  i1 >= 0 ? m->history_mean[i1] : 0, i1 >= 0 ? m->history_count[i1] : 0,
							  i0 >= 0 ? m->history_mean[i0] : 0, i0 >= 0 ? m->history_count[i0] : 0,
							  &level);
	}
	*p50 = exp(pred);
	if (m->interval_bins == 0)
		return false;
	if (level >= 0 && m->history_rows[level] >= HISTORY_INTERVAL_ROWS)
	{
		lo = m->history_lo[level];
		hi = m->history_hi[level];
	}
	else
	{
		int			b = interval_bin(m, pred);

		lo = m->interval_lo[b];
		hi = m->interval_hi[b];
	}
	*p10 = exp(pred + lo);
	*p90 = exp(pred + hi);
	return true;
}

/* ---------- training ---------- */

/* The training rows, read from the source. */
typedef struct TrainSet
{
	int			n;
	JobFeatures *jobs;
	double	   *y;				/* log runtime */
	int64	   *finished;		/* the order in which the jobs finished (with identities) */
} TrainSet;

typedef struct CategoryStat
{
	const char *name;
	int			len;
	int			row;			/* position in the rows trained on */
} CategoryStat;

/* qsort comparator for CategoryStat by name. */
static int
category_stat_cmp(const void *a, const void *b)
{
	const CategoryStat *x = a,
			   *y = b;

	return name_cmp(x->name, x->len, y->name, y->len);
}

/*
 * Category map c's names from the rows listed in `rows`, with codes of 0
 * for fit_linear to learn (and the codes of NULL and of unseen categories);
 * index[i] is the category of rows[i] in the map, or -1 when it is NULL.
 */
static void
build_category_map(const TrainSet *ts, const int *rows, int nrows, int c, CategoryMap *map,
				   int *index)
{
	CategoryStat *stats = palloc(sizeof(CategoryStat) * Max(nrows, 1));
	int			n = 0;

	for (int i = 0; i < nrows; i++)
	{
		const JobFeatures *job = &ts->jobs[rows[i]];

		index[i] = -1;
		if (job->category[c] == NULL)
			continue;
		stats[n].name = job->category[c];
		stats[n].len = job->category_len[c];
		stats[n].row = i;
		n++;
	}
	qsort(stats, n, sizeof(CategoryStat), category_stat_cmp);

	map->fallback = 0;
	map->unseen = 0;
	map->names = palloc(sizeof(char *) * Max(n, 1));
	map->lengths = palloc(sizeof(int) * Max(n, 1));
	map->codes = palloc0(sizeof(float8) * Max(n, 1));
	map->n = 0;
	for (int i = 0; i < n; i++)
	{
		if (i == 0 || category_stat_cmp(&stats[i - 1], &stats[i]) != 0)
		{
			map->names[map->n] = pnstrdup(stats[i].name, stats[i].len);
			map->lengths[map->n] = stats[i].len;
			map->n++;
		}
		index[stats[i].row] = map->n - 1;
	}
	pfree(stats);
}

/* Factor the n x n symmetric positive definite a (row-major) into L L', in place. */
static void
cholesky_factor(double *a, int n)
{
	for (int j = 0; j < n; j++)
	{
		for (int k = 0; k < j; k++)
			a[j * n + j] -= a[j * n + k] * a[j * n + k];
		a[j * n + j] = sqrt(a[j * n + j]);
		for (int i = j + 1; i < n; i++)
		{
			for (int k = 0; k < j; k++)
				a[i * n + j] -= a[i * n + k] * a[j * n + k];
			a[i * n + j] /= a[j * n + j];
		}
	}
}

/* Solve L L' x = b in place of b, for l from cholesky_factor. */
static void
cholesky_solve(const double *l, double *b, int n)
{
	for (int i = 0; i < n; i++)
	{
		for (int k = 0; k < i; k++)
			b[i] -= l[i * n + k] * b[k];
		b[i] /= l[i * n + i];
	}
	for (int i = n - 1; i >= 0; i--)
	{
		for (int k = i + 1; k < n; k++)
			b[i] -= l[k * n + i] * b[k];
		b[i] /= l[i * n + i];
	}
}

/*
 * The most frequent category of map (the first of those in name order),
 * from the number of rows of each (slot k + 1 for category k), or -1 when
 * the map has none.
 */
static int
category_mode(const CategoryMap *map, const int *count)
{
	int			mode = -1;

	for (int k = 0; k < map->n; k++)
		if (mode < 0 || count[k + 1] > count[mode + 1])
			mode = k;
	return mode;
}

/*
 * The linear part of m and its category codes, fitted to the log runtimes
 * of the rows listed in `rows`, whose features 3 to NLINEAR - 1 are in x
 * (NFEATURES per row) and whose categories are in index: the least-squares
 * fit, in log space, of base + the codes of the row's categories (one
 * parameter per category, NULL being one more) + a weighted sum of the
 * numeric features; or, given target and weight (one per row), the
 * weighted least-squares fit of those targets, which fit_parametric's
 * steps need, from the codes as they stand.  Codes are shrunk towards 0 by LINEAR_SMOOTHING
 * pseudo-rows, so that a category seen twice does not get an extreme code,
 * and the weights by a ridge penalty on standardized features, so that
 * collinear ones (samples and dataset_size) stay finite.  Solved by
 * backfitting: the weights with the codes fixed, then each map's codes
 * with everything else fixed, until no code moves; each step works from
 * sums per category, so that an iteration reads each row only to add up
 * the codes of the other maps.
 *
 * Work is a product of sizes and rates, so its log is close to a sum of
 * such terms: this part carries most of the prediction, and the trees
 * learn what it leaves (start-up costs, memory shortage, interactions)
 * with its value as a feature.  Codes of a model's or GPU's log cost per
 * sample, learnt with dataset_size and epochs accounted for, are also more
 * telling to the trees than mean log runtimes, which mix in the sizes.
 */
static void
fit_linear(const TrainSet *ts, const int *rows, int nrows, const double *x,
		   int *const *index, const double *target, const double *weight, Model *m)
{
	const int	p = NLINEAR - NCATEGORICAL;
	double	   *mean = palloc0(sizeof(double) * p);
	double	   *scale = palloc0(sizeof(double) * p);
	double	   *chol = palloc0(sizeof(double) * p * p);
	double	   *zy = palloc0(sizeof(double) * p);
	double	   *beta = palloc(sizeof(double) * p);
	double	   *code_sum = palloc0(sizeof(double) * nrows);	/* of each row's codes */
	double	   *zsum[NCATEGORICAL];	/* per category: weighted sum of its rows' z */
	double	   *ysum[NCATEGORICAL];	/* per category: weighted sum of its rows' y */
	double	   *wsum[NCATEGORICAL];	/* per category: sum of its rows' weights */
	int		   *count[NCATEGORICAL];	/* per category: its rows */
	double	   *others = NULL;
	double		y_total = 0;
	double		w_total = 0;
	double		base = 0;
	int			ncodes = 1;
	bool		converged = false;

#define NUMERIC(i, f) (x[(size_t) (i) * NFEATURES + NCATEGORICAL + (f)])
#define Z(i, f) (scale[f] > 0 ? (NUMERIC(i, f) - mean[f]) / scale[f] : 0.0)
#define WEIGHT(i) (weight ? weight[i] : 1.0)

	/*
	 * Standardize, by weighted means, so that the weights are independent
	 * of the base: features that never vary get no weight.
	 */
	for (int i = 0; i < nrows; i++)
		w_total += WEIGHT(i);
	for (int i = 0; i < nrows; i++)
		for (int f = 0; f < p; f++)
			mean[f] += WEIGHT(i) * NUMERIC(i, f) / w_total;
	for (int i = 0; i < nrows; i++)
		for (int f = 0; f < p; f++)
			scale[f] += WEIGHT(i) * (NUMERIC(i, f) - mean[f]) * (NUMERIC(i, f) - mean[f]);
	for (int f = 0; f < p; f++)
		scale[f] = scale[f] > 1e-12 * w_total ? sqrt(scale[f] / w_total) : 0;

	/* Slot 0 of a category map's sums is NULL, slot k + 1 category k. */
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		int			n = m->categories[c].n + 1;

		zsum[c] = palloc0(sizeof(double) * n * p);
		ysum[c] = palloc0(sizeof(double) * n);
		wsum[c] = palloc0(sizeof(double) * n);
		count[c] = palloc0(sizeof(int) * n);
		ncodes = Max(ncodes, n);
	}
	others = palloc(sizeof(double) * ncodes);
	for (int i = 0; i < nrows; i++)
	{
		double		z[NLINEAR];
		double		w = WEIGHT(i);
		double		y = target ? target[i] : ts->y[rows[i]];

		for (int f = 0; f < p; f++)
			z[f] = Z(i, f);
		for (int f = 0; f < p; f++)
		{
			zy[f] += w * z[f] * y;
			for (int g = 0; g <= f; g++)
				chol[f * p + g] += w * z[f] * z[g];
		}
		for (int c = 0; c < NCATEGORICAL; c++)
		{
			int			k = index[c][i] + 1;

			for (int f = 0; f < p; f++)
				zsum[c][k * p + f] += w * z[f];
			ysum[c][k] += w * y;
			wsum[c][k] += w;
			count[c][k]++;
		}
		y_total += w * y;
	}
	for (int f = 0; f < p; f++)
		chol[f * p + f] += LINEAR_RIDGE;
	cholesky_factor(chol, p);

	for (int d = 0; d < NCATEGORICAL; d++)
		for (int i = 0; i < nrows; i++)
			code_sum[i] += indexed_code(&m->categories[d], index[d][i]);
	for (int iter = 0;; iter++)
	{
		double		moved = 0;

		/* The base and the weights, for the codes as they stand. */
		base = y_total;
		memcpy(beta, zy, sizeof(double) * p);
		for (int c = 0; c < NCATEGORICAL; c++)
			for (int k = 0; k <= m->categories[c].n; k++)
			{
				double		code = k == 0 ? m->categories[c].fallback : m->categories[c].codes[k - 1];

				base -= code * wsum[c][k];
				for (int f = 0; f < p; f++)
					beta[f] -= code * zsum[c][k * p + f];
			}
		base /= w_total;
		cholesky_solve(chol, beta, p);
		if (iter == LINEAR_MAX_ITERATIONS || converged)
			break;

		/* Each map's codes, for everything else as it stands. */
		for (int c = 0; c < NCATEGORICAL; c++)
		{
			CategoryMap *map = &m->categories[c];

			memset(others, 0, sizeof(double) * (map->n + 1));
			for (int i = 0; i < nrows; i++)
				others[index[c][i] + 1] +=
					WEIGHT(i) * (code_sum[i] - indexed_code(map, index[c][i]));
			for (int k = 0; k <= map->n; k++)
			{
				double		e = ysum[c][k] - wsum[c][k] * base - others[k];
				double	   *slot = k == 0 ? &map->fallback : &map->codes[k - 1];

				for (int f = 0; f < p; f++)
					e -= zsum[c][k * p + f] * beta[f];
				e /= wsum[c][k] + LINEAR_SMOOTHING;
				moved = Max(moved, fabs(e - *slot));
				*slot = e;
			}
			for (int i = 0; i < nrows; i++)
				code_sum[i] = 0;
			for (int d = 0; d < NCATEGORICAL; d++)
				for (int i = 0; i < nrows; i++)
					code_sum[i] += indexed_code(&m->categories[d], index[d][i]);
		}
		converged = moved < LINEAR_TOLERANCE;
	}
#undef WEIGHT
#undef Z
#undef NUMERIC

	/*
	 * A category the model never saw is taken for the most frequent one
	 * (the first of those in name order): the job is most likely like it,
	 * and its prediction stays among those the trees learnt from.  So is
	 * NULL, when no row had it.
	 */
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		CategoryMap *map = &m->categories[c];
		int			mode = category_mode(map, count[c]);

		map->unseen = mode >= 0 ? map->codes[mode] : map->fallback;
		if (count[c][0] == 0)
			map->fallback = map->unseen;
	}

	/* Back to the features' own scale; every category code counts once. */
	if (m->weights == NULL)
		m->weights = palloc(sizeof(float8) * NLINEAR);
	memset(m->weights, 0, sizeof(float8) * NLINEAR);
	for (int c = 0; c < NCATEGORICAL; c++)
		m->weights[c] = 1.0;
	for (int f = 0; f < p; f++)
		if (scale[f] > 0)
		{
			m->weights[NCATEGORICAL + f] = beta[f] / scale[f];
			base -= beta[f] * mean[f] / scale[f];
		}
	m->base = base;

	pfree(mean);
	pfree(scale);
	pfree(chol);
	pfree(zy);
	pfree(beta);
	pfree(code_sum);
	pfree(others);
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		pfree(zsum[c]);
		pfree(ysum[c]);
		pfree(wsum[c]);
		pfree(count[c]);
	}
}

/* qsort comparator for doubles. */
static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Grow oblivious tree t of model m on the sampled rows, level by level:
 * each level takes the feature and bin boundary whose split of every
 * current leaf gains most in squared error, then leaves get the mean
 * residual, shrunk by the learning rate.
 *
 * A level's histograms (sum and count of the residuals per leaf, bin and
 * feature, kept as running sums over the bins) are built from the rows of
 * the smaller child of each leaf of the level above; the other child's are
 * its parent's less its sibling's.  That reads each row once per level for
 * all features, and half the rows or fewer.
 */
static void
grow_tree(Model *m, int t, const TrainParams *params, const int *sample, int count,
		  const uint8 *bins, const double (*thresholds)[MAX_BINS], const int *nthresholds,
		  const double *residual, int *leaf_of)
{
	int			depth = params->depth;
	int			nleaves_max = 1 << depth;
	size_t		leaf_cells = (size_t) NFEATURES * MAX_BINS;
	size_t		cells = leaf_cells << (depth - 1);
	double	   *hsum = palloc(sizeof(double) * cells);
	int		   *hcount = palloc(sizeof(int) * cells);
	double	   *parent_sum = palloc(sizeof(double) * cells);
	int		   *parent_count = palloc(sizeof(int) * cells);
	int		   *rows_in = palloc0(sizeof(int) * nleaves_max);
	bool	   *counted = palloc(sizeof(bool) * nleaves_max);
	double	   *lsum = palloc0(sizeof(double) * nleaves_max);
	int		   *lcount = palloc0(sizeof(int) * nleaves_max);

	for (int i = 0; i < count; i++)
		leaf_of[i] = 0;
	rows_in[0] = count;

	for (int l = 0; l < depth; l++)
	{
		int			nleaves = 1 << l;
		double		best_gain = -1;
		int			best_feature = 0;
		int			best_bin = 0;

		for (int k = 0; k < nleaves; k++)
			counted[k] = l == 0 || rows_in[k] < rows_in[k ^ 1] ||
				(rows_in[k] == rows_in[k ^ 1] && (k & 1) == 0);
		memset(hsum, 0, sizeof(double) * leaf_cells * nleaves);
		memset(hcount, 0, sizeof(int) * leaf_cells * nleaves);
		for (int i = 0; i < count; i++)
		{
			const uint8 *row_bins = &bins[(size_t) sample[i] * NFEATURES];
			double		r = residual[sample[i]];
			double	   *sum;
			int		   *cnt;

			if (!counted[leaf_of[i]])
				continue;
			sum = &hsum[leaf_of[i] * leaf_cells];
			cnt = &hcount[leaf_of[i] * leaf_cells];
			for (int f = 0; f < NFEATURES; f++)
			{
				sum[row_bins[f] * NFEATURES + f] += r;
				cnt[row_bins[f] * NFEATURES + f]++;
			}
		}
		for (int k = 0; k < nleaves; k++)
		{
			double	   *sum = &hsum[k * leaf_cells];
			int		   *cnt = &hcount[k * leaf_cells];

			if (!counted[k])
				continue;
			for (int b = 1; b < MAX_BINS; b++)
				for (int f = 0; f < NFEATURES; f++)
				{
					sum[b * NFEATURES + f] += sum[(b - 1) * NFEATURES + f];
					cnt[b * NFEATURES + f] += cnt[(b - 1) * NFEATURES + f];
				}
		}
		for (int k = 0; k < nleaves; k++)
		{
			if (counted[k])
				continue;
			for (size_t j = 0; j < leaf_cells; j++)
			{
				hsum[k * leaf_cells + j] = parent_sum[(k >> 1) * leaf_cells + j] -
					hsum[(k ^ 1) * leaf_cells + j];
				hcount[k * leaf_cells + j] = parent_count[(k >> 1) * leaf_cells + j] -
					hcount[(k ^ 1) * leaf_cells + j];
			}
		}

		for (int f = 0; f < NFEATURES; f++)
		{
			int			nbins = nthresholds[f] + 1;

			for (int b = 0; b < nbins - 1; b++)
			{
				double		gain = 0;

				for (int k = 0; k < nleaves; k++)
				{
					const double *sum = &hsum[k * leaf_cells + f];
					const int  *cnt = &hcount[k * leaf_cells + f];
					double		ls = sum[b * NFEATURES];
					int			lc = cnt[b * NFEATURES];
					double		ts = sum[(MAX_BINS - 1) * NFEATURES];
					int			tc = cnt[(MAX_BINS - 1) * NFEATURES];

					if (lc >= params->min_leaf && tc - lc >= params->min_leaf)
						gain += ls * ls / lc + (ts - ls) * (ts - ls) / (tc - lc) - ts * ts / tc;
				}
				if (gain > best_gain)
				{
					best_gain = gain;
					best_feature = f;
					best_bin = b;
				}
			}
		}
		m->split_feature[t * depth + l] = best_feature;
		m->split_value[t * depth + l] = (float4) thresholds[best_feature][best_bin];
		memset(rows_in, 0, sizeof(int) * 2 * nleaves);
		for (int i = 0; i < count; i++)
		{
			leaf_of[i] = (leaf_of[i] << 1) |
				(bins[(size_t) sample[i] * NFEATURES + best_feature] > best_bin);
			rows_in[leaf_of[i]]++;
		}
		{
			double	   *swap_sum = parent_sum;
			int		   *swap_count = parent_count;

			parent_sum = hsum;
			parent_count = hcount;
			hsum = swap_sum;
			hcount = swap_count;
		}
	}

	for (int i = 0; i < count; i++)
	{
		lsum[leaf_of[i]] += residual[sample[i]];
		lcount[leaf_of[i]]++;
	}
	for (int k = 0; k < nleaves_max; k++)
		m->leaf[((size_t) t << depth) + k] =
			lcount[k] > 0 ? (float4) (params->learning_rate * lsum[k] / lcount[k]) : 0;

	pfree(hsum);
	pfree(hcount);
	pfree(parent_sum);
	pfree(parent_count);
	pfree(rows_in);
	pfree(counted);
	pfree(lsum);
	pfree(lcount);
}

/* A training row's out-of-fold prediction and residual, in log seconds. */
typedef struct Residual
{
	double		pred;
	double		resid;
} Residual;

/* qsort comparator for Residual by prediction. */
static int
residual_pred_cmp(const void *a, const void *b)
{
	return double_cmp(&((const Residual *) a)->pred, &((const Residual *) b)->pred);
}

/* Quantile q of n > 0 sorted values, interpolated between the nearest two. */
static double
quantile_sorted(const double *v, int n, double q)
{
	double		h = q * (n - 1);
	int			i = (int) floor(h);

	if (i >= n - 1)
		return v[n - 1];
	return v[i] + (h - i) * (v[i + 1] - v[i]);
}

/*
 * Give m the 10-90% interval of the n > 0 out-of-fold residuals in r
 * (reordered): bins of equal count of the predictions, at least
 * INTERVAL_BIN_ROWS residuals each (one bin below that), tied predictions in
 * the same bin; each bin's percentiles of its residuals, widened to include
 * 0 so that p10 <= p50 <= p90.
 */
static void
fit_interval(Residual *r, int n, Model *m)
{
	int			nbins = Max(1, Min(INTERVAL_MAX_BINS, n / INTERVAL_BIN_ROWS));
	double	   *v = palloc(sizeof(double) * n);
	int			start = 0;

	qsort(r, n, sizeof(Residual), residual_pred_cmp);
	m->interval_bins = 0;
	m->interval_edge = palloc(sizeof(float8) * nbins);
	m->interval_lo = palloc(sizeof(float8) * nbins);
	m->interval_hi = palloc(sizeof(float8) * nbins);
	for (int b = 0; b < nbins && start < n; b++)
	{
		int			end = Max((int) ((int64) n * (b + 1) / nbins), start + 1);
		int			k = 0;
		int			idx = m->interval_bins++;

		while (end < n && r[end].pred == r[end - 1].pred)
			end++;
		for (int i = start; i < end; i++)
			v[k++] = r[i].resid;
		qsort(v, k, sizeof(double), double_cmp);
		m->interval_lo[idx] = Max(Min(quantile_sorted(v, k, INTERVAL_LOW), 0), -MAX_LOG_SPREAD);
		m->interval_hi[idx] = Min(Max(quantile_sorted(v, k, INTERVAL_HIGH), 0), MAX_LOG_SPREAD);
		/* The bin holds predictions up to its last; the next starts above it. */
		if (end < n)
			m->interval_edge[idx] = r[end - 1].pred;
		start = end;
	}
	pfree(v);
}

/* ---------- fitting the history of requests ---------- */

#define HISTORY_WINDOW	20		/* a key's mean weighs about its last this many jobs */
#define HISTORY_MIN_GAIN	0.02	/* a level's least relative gain in mean absolute log residual */
#define HISTORY_BLOCK	500		/* jobs between two trainings when the background worker never retrains */

typedef struct HistoryState
{
	uint64		key;			/* the hash key: first */
	int			level;
	uint32		count;
	double		mean;
} HistoryState;

typedef struct HistoryEntryOut
{
	uint64		key;
	double		mean;
	uint32		count;
} HistoryEntryOut;

/* The training set whose rows finished_cmp orders (qsort has no argument for it). */
static const TrainSet *finished_order;

/* qsort comparator of row indexes by when the jobs finished, then by index. */
static int
finished_cmp(const void *a, const void *b)
{
	int			ia = *(const int *) a;
	int			ib = *(const int *) b;
	bool		ha = finished_order->jobs[ia].has_identity;
	bool		hb = finished_order->jobs[ib].has_identity;
	int64		fa = ha ? finished_order->finished[ia] : 0;
	int64		fb = hb ? finished_order->finished[ib] : 0;

	if (fa != fb)
		return fa < fb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

static int
history_entry_cmp(const void *a, const void *b)
{
	uint64		ka = ((const HistoryEntryOut *) a)->key;
	uint64		kb = ((const HistoryEntryOut *) b)->key;

	return ka < kb ? -1 : ka > kb;
}

/*
 * Give m its history of requests, from the training rows, taken in the
 * order they finished, and their out-of-fold log residuals r.  Each row is first
 * corrected by the history before it, as a new job would be, which is
 * what the shrinkages are chosen on (the least mean absolute residual,
 * level 1 first) and what each level's interval is made of; then the
 * history of all the rows is kept.  *corrected gets each row's corrected
 * residual.
 */
static void
fit_history(const TrainSet *ts, const double *r, Model *m, double *corrected)
{
	static const double grid[] = {-1, 0, 0.5, 1, 2, 4, 8, 16, 32, 64, 128};
	HASHCTL		ctl;
	HTAB	   *states;
	double	   *prior_mean[HISTORY_LEVELS];
	double	   *prior_n[HISTORY_LEVELS];
	int		   *deepest = palloc(sizeof(int) * Max(ts->n, 1));
	double	   *v = palloc(sizeof(double) * Max(ts->n, 1));
	HASH_SEQ_STATUS seq;
	HistoryState *st;
	HistoryEntryOut *out;
	int			nout = 0;
	int		   *order = palloc(sizeof(int) * Max(ts->n, 1));
	int			block;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(HistoryState);
	ctl.hcxt = CurrentMemoryContext;
	states = hash_create("tinytemp history of requests", Max(ts->n, 16), &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < ts->n; i++)
		order[i] = i;
	finished_order = ts;
	qsort(order, ts->n, sizeof(int), finished_cmp);
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		prior_mean[l] = palloc0(sizeof(double) * Max(ts->n, 1));
		prior_n[l] = palloc0(sizeof(double) * Max(ts->n, 1));
	}

	/*
	 * Each row's history before it, in the order the jobs finished: as the
	 * model is used, it knows the jobs of its training and none of those
	 * that finished since, up to tinytemp.retrain_after of them.  So the
	 * rows go in blocks of that many (half the rows at most, so that a
	 * first training has history to learn from): a row sees the history of
	 * the blocks before its own, and its block is added after it.
	 */
	block = Max(1, Min(tinytemp_retrain_after > 0 ? tinytemp_retrain_after : HISTORY_BLOCK,
					   ts->n / 2));
	for (int start = 0; start < ts->n; start += block)
	{
		int			end = Min(start + block, ts->n);

		for (int pass = 0; pass < 2; pass++)
			for (int o = start; o < end; o++)
			{
				int			i = order[o];

				if (!ts->jobs[i].has_identity)
					continue;
				for (int l = 0; l < HISTORY_LEVELS; l++)
				{
					bool		found;

					st = hash_search(states, &ts->jobs[i].history_key[l], HASH_ENTER, &found);
					if (!found)
					{
						st->level = l;
						st->count = 0;
						st->mean = 0;
					}
					if (pass == 0)
					{
						prior_mean[l][i] = st->mean;
						prior_n[l][i] = st->count;
						continue;
					}
					st->count++;
					st->mean += (r[i] - st->mean) / Min(st->count, HISTORY_WINDOW);
				}
			}
	}

	/*
	 * The shrinkages, level 1 first with level 0 off, then level 0.  A
	 * level is used only when it lowers the mean absolute residual of the
	 * rows it applies to (those with history at that level) by
	 * HISTORY_MIN_GAIN at least: a history that only follows noise would
	 * move predictions for nothing.
	 */
	m->history_shrink[0] = m->history_shrink[1] = -1;
	for (int l = HISTORY_LEVELS - 1; l >= 0; l--)
	{
		double		best = -1;
		double		best_loss = 0;
		double		off_loss = 0;

		for (int g = 0; g < (int) lengthof(grid); g++)
		{
			double		loss = 0;

			m->history_shrink[l] = grid[g];
			for (int i = 0; i < ts->n; i++)
			{
				int			level;

				if (prior_n[l][i] == 0)
					continue;	/* the level cannot change this row */
				loss += fabs(r[i] - history_blend(m->history_shrink,
												  prior_mean[1][i], prior_n[1][i],
												  prior_mean[0][i], prior_n[0][i], &level));
			}
			if (g == 0)
				off_loss = loss;
			if (g == 0 || loss < best_loss - 1e-9 * ts->n)
			{
				best = grid[g];
				best_loss = loss;
			}
		}
		m->history_shrink[l] = best_loss < (1 - HISTORY_MIN_GAIN) * off_loss ? best : -1;
	}

	/* Each row corrected by the history before it, and each level's interval. */
	for (int i = 0; i < ts->n; i++)
		corrected[i] = r[i] - history_blend(m->history_shrink, prior_mean[1][i], prior_n[1][i],
											prior_mean[0][i], prior_n[0][i], &deepest[i]);
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		int			k = 0;

		for (int i = 0; i < ts->n; i++)
			if (deepest[i] == l)
				v[k++] = corrected[i];
		m->history_rows[l] = k;
		m->history_lo[l] = m->history_hi[l] = 0;
		if (k >= HISTORY_INTERVAL_ROWS)
		{
			qsort(v, k, sizeof(double), double_cmp);
			m->history_lo[l] = Max(Min(quantile_sorted(v, k, INTERVAL_LOW), 0), -MAX_LOG_SPREAD);
			m->history_hi[l] = Min(Max(quantile_sorted(v, k, INTERVAL_HIGH), 0), MAX_LOG_SPREAD);
		}
	}

	/* The history of all the rows, for the levels in use, sorted by key. */
	out = palloc_extended(sizeof(HistoryEntryOut) * Max(hash_get_num_entries(states), 1),
						  MCXT_ALLOC_HUGE);
	hash_seq_init(&seq, states);
	while ((st = hash_seq_search(&seq)) != NULL)
		if (m->history_shrink[st->level] >= 0 && nout < MAX_HISTORY_KEYS)
		{
			out[nout].key = st->key;
			out[nout].mean = Max(Min(st->mean, MAX_LOG_SPREAD), -MAX_LOG_SPREAD);
			out[nout++].count = st->count;
		}
	qsort(out, nout, sizeof(HistoryEntryOut), history_entry_cmp);
	m->has_history = true;
	m->nhistory = nout;
	m->history_key = palloc_extended(sizeof(uint64) * Max(nout, 1), MCXT_ALLOC_HUGE);
	m->history_mean = palloc_extended(sizeof(float8) * Max(nout, 1), MCXT_ALLOC_HUGE);
	m->history_count = palloc_extended(sizeof(uint32) * Max(nout, 1), MCXT_ALLOC_HUGE);
	for (int i = 0; i < nout; i++)
	{
		m->history_key[i] = out[i].key;
		m->history_mean[i] = out[i].mean;
		m->history_count[i] = out[i].count;
	}
	hash_destroy(states);
}

/* A parametric fit of fit_parametric: its codes, weights, base and overheads. */
typedef struct ParametricFit
{
	double	   *values;
	double		sse;
} ParametricFit;

/* Save m's codes, weights, base and log overheads o (slot k + 1 for model k) into fit. */
static void
parametric_save(const Model *m, const double *o, ParametricFit *fit)
{
	double	   *v = fit->values;

	for (int c = 0; c < NCATEGORICAL; c++)
	{
		const CategoryMap *map = &m->categories[c];

		*v++ = map->fallback;
		*v++ = map->unseen;
		memcpy(v, map->codes, sizeof(double) * map->n);
		v += map->n;
	}
	memcpy(v, m->weights, sizeof(double) * NLINEAR);
	v += NLINEAR;
	*v++ = m->base;
	memcpy(v, o, sizeof(double) * (m->categories[OVERHEAD_MAP].n + 1));
}

/* The reverse of parametric_save. */
static void
parametric_restore(Model *m, double *o, const ParametricFit *fit)
{
	const double *v = fit->values;

	for (int c = 0; c < NCATEGORICAL; c++)
	{
		CategoryMap *map = &m->categories[c];

		map->fallback = *v++;
		map->unseen = *v++;
		memcpy(map->codes, v, sizeof(double) * map->n);
		v += map->n;
	}
	memcpy(m->weights, v, sizeof(double) * NLINEAR);
	v += NLINEAR;
	m->base = *v++;
	memcpy(o, v, sizeof(double) * (m->categories[OVERHEAD_MAP].n + 1));
}

/*
 * The parametric part of m (see parametric_part), fitted to the log
 * runtimes of the rows listed in `rows` (features and categories as for
 * fit_linear): first the linear part alone, then, when it fits better, the
 * linear part as work on top of an overhead of each model (NULL being one
 * more), a runtime that every job of that model pays whatever it does:
 * loading weights, building the graph, starting workers.
 *
 * Log runtime is then log(exp(o) + exp(L)), with o the model's log
 * overhead and L the linear part; in a short job o carries the runtime,
 * in a long one L, where a linear part alone has to bend one line through
 * both.  Fitted by least squares in log space, alternating Gauss-Newton
 * steps: each overhead with L fixed, then L (a weighted fit_linear on the
 * linearized runtimes: row i weighs s_i^2 and aims at L_i + r_i / s_i,
 * where s_i is the share of the work in its runtime and r_i its
 * residual), for OVERHEAD_ITERATIONS rounds or until the sum of squared
 * residuals stops falling; the best round is kept.  Each overhead starts
 * at a low quantile of all the runtimes, the shortest jobs being the
 * likeliest to be all overhead, and moves by at most 1 a step, within
 * OVERHEAD_BELOW of the shortest runtime and the longest, and within what
 * the loader takes (MAX_LOG_RUNTIME either way).
 */
static void
fit_parametric(const TrainSet *ts, const int *rows, int nrows, const double *x,
			   int *const *index, Model *m)
{
	CategoryMap *map = &m->categories[OVERHEAD_MAP];
	const int  *model_of = index[OVERHEAD_MAP];
	int			nslots = map->n + 1;
	int			nvalues = NLINEAR + 1 + nslots;
	double	   *o = palloc(sizeof(double) * nslots);
	double	   *num = palloc(sizeof(double) * nslots);
	double	   *den = palloc(sizeof(double) * nslots);
	double	   *work = palloc(sizeof(double) * nrows);
	double	   *share = palloc(sizeof(double) * nrows);
	double	   *resid = palloc(sizeof(double) * nrows);
	double	   *target = palloc(sizeof(double) * nrows);
	double	   *weight = palloc(sizeof(double) * nrows);
	double		linear_sse = 0;
	double		lo,
				hi;
	ParametricFit best;
	ParametricFit line;
	int			mode;
	int		   *count = palloc0(sizeof(int) * nslots);

	fit_linear(ts, rows, nrows, x, index, NULL, NULL, m);
	if (nrows < MIN_TRAIN_ROWS)
		goto done;

	for (int c = 0; c < NCATEGORICAL; c++)
		nvalues += 2 + m->categories[c].n;
	best.values = palloc(sizeof(double) * nvalues);
	line.values = palloc(sizeof(double) * nvalues);
	best.sse = 0;

	/* The overheads start low, and stay within the runtimes seen. */
	for (int i = 0; i < nrows; i++)
		work[i] = ts->y[rows[i]];
	qsort(work, nrows, sizeof(double), double_cmp);
	lo = Max(work[0] - OVERHEAD_BELOW, -MAX_LOG_RUNTIME);
	hi = Max(Min(work[nrows - 1], MAX_LOG_RUNTIME), lo);
	for (int k = 0; k < nslots; k++)
		o[k] = Min(Max(quantile_sorted(work, nrows, OVERHEAD_START_QUANTILE), lo), hi);

	for (int iter = 0;; iter++)
	{
		double		sse = 0;
		bool		gained;

		/* L, each row's residual and the share of the work in its runtime. */
		for (int i = 0; i < nrows; i++)
		{
			const double *xi = &x[(size_t) i * NFEATURES];
			double		l = m->base;
			double		p;

			for (int c = 0; c < NCATEGORICAL; c++)
				l += indexed_code(&m->categories[c], index[c][i]);
			for (int f = NCATEGORICAL; f < NLINEAR; f++)
				l += m->weights[f] * xi[f];
			work[i] = l;
			if (iter == 0)
				linear_sse += (ts->y[rows[i]] - l) * (ts->y[rows[i]] - l);
			p = log_sum_exp(l, o[model_of[i] + 1]);
			resid[i] = ts->y[rows[i]] - p;
			share[i] = exp(l - p);
			sse += resid[i] * resid[i];
		}
		gained = iter == 0 || sse < best.sse * (1 - OVERHEAD_TOLERANCE);
		if (iter == 0)
			parametric_save(m, o, &line);	/* the line alone, kept where it wins */
		if (iter == 0 || sse < best.sse)
		{
			best.sse = sse;
			parametric_save(m, o, &best);
		}
		if (iter == OVERHEAD_ITERATIONS || !gained)
			break;

		/* Each overhead, with L fixed. */
		memset(num, 0, sizeof(double) * nslots);
		memset(den, 0, sizeof(double) * nslots);
		for (int i = 0; i < nrows; i++)
		{
			num[model_of[i] + 1] += (1 - share[i]) * resid[i];
			den[model_of[i] + 1] += (1 - share[i]) * (1 - share[i]);
		}
		for (int k = 0; k < nslots; k++)
			o[k] = Min(Max(o[k] + Min(Max(num[k] / (den[k] + 1), -1.0), 1.0), lo), hi);

		/* Then L, with the overheads fixed. */
		for (int i = 0; i < nrows; i++)
		{
			double		l = work[i];
			double		om = o[model_of[i] + 1];
			double		p = log_sum_exp(l, om);
			double		s = Max(exp(l - p), OVERHEAD_MIN_SHARE);

			target[i] = l + (ts->y[rows[i]] - p) / s;
			weight[i] = s * s;
		}
		fit_linear(ts, rows, nrows, x, index, target, weight, m);
	}

	if (best.sse < linear_sse * (1 - OVERHEAD_TOLERANCE))
	{
		parametric_restore(m, o, &best);
		/* NULL and unseen models as for their codes (see fit_linear). */
		for (int i = 0; i < nrows; i++)
			count[model_of[i] + 1]++;
		mode = category_mode(map, count);
		map->overheads = palloc(sizeof(double) * Max(map->n, 1));
		memcpy(map->overheads, o + 1, sizeof(double) * map->n);
		map->overhead_unseen = mode >= 0 ? o[mode + 1] : o[0];
		map->overhead_fallback = count[0] > 0 ? o[0] : map->overhead_unseen;
	}
	else
		parametric_restore(m, o, &line);
	pfree(best.values);
	pfree(line.values);
done:
	pfree(o);
	pfree(num);
	pfree(den);
	pfree(work);
	pfree(share);
	pfree(resid);
	pfree(target);
	pfree(weight);
	pfree(count);
}

/* Fit a model on the rows listed in `rows`: its linear part, then its trees. */
static Model *
fit(const TrainSet *ts, const int *rows, int nrows, const TrainParams *params)
{
	Model	   *m = palloc0(sizeof(Model));
	double	   *x = palloc_extended(sizeof(double) * nrows * NFEATURES, MCXT_ALLOC_HUGE);
	uint8	   *bins = palloc_extended((size_t) nrows * NFEATURES, MCXT_ALLOC_HUGE);
	double		(*thresholds)[MAX_BINS] = palloc0(sizeof(double) * NFEATURES * MAX_BINS);
	int			nthresholds[NFEATURES];
	double	   *pred = palloc(sizeof(double) * nrows);
	double	   *residual = palloc(sizeof(double) * nrows);
	double	   *column = palloc(sizeof(double) * nrows);
	int		   *sample = palloc(sizeof(int) * nrows);
	int		   *leaf_of = palloc(sizeof(int) * nrows);
	int		   *index[NCATEGORICAL];
	pg_prng_state rng;

	pg_prng_seed(&rng, params->seed);
	m->nfeatures = NFEATURES;
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		index[c] = palloc(sizeof(int) * nrows);
		build_category_map(ts, rows, nrows, c, &m->categories[c], index[c]);
	}
	for (int i = 0; i < nrows; i++)
		work_features(&ts->jobs[rows[i]], &x[(size_t) i * NFEATURES]);
	fit_parametric(ts, rows, nrows, x, index, m);

	/* The codes and the parametric part, as model_predict computes them. */
	for (int i = 0; i < nrows; i++)
	{
		double	   *xi = &x[(size_t) i * NFEATURES];

		for (int c = 0; c < NCATEGORICAL; c++)
			xi[c] = indexed_code(&m->categories[c], index[c][i]);
		pred[i] = m->base + parametric_part(m, index[OVERHEAD_MAP][i], xi);
		/* As model_predict gives them to the trees. */
		for (int f = 0; f < NFEATURES; f++)
			xi[f] = (float4) xi[f];
	}

	/* Quantile bins of each feature. */
	for (int f = 0; f < NFEATURES; f++)
	{
		int			k = 0;

		for (int i = 0; i < nrows; i++)
			column[i] = x[(size_t) i * NFEATURES + f];
		qsort(column, nrows, sizeof(double), double_cmp);
		for (int q = 1; q < MAX_BINS; q++)
		{
			/* Rounded as the stored split will be, so that bins and splits agree. */
			double		t = (float4) column[(size_t) ((double) q / MAX_BINS * (nrows - 1))];

			if (t < column[nrows - 1] && (k == 0 || t > thresholds[f][k - 1]))
				thresholds[f][k++] = t;
		}
		nthresholds[f] = k;
		for (int i = 0; i < nrows; i++)
		{
			double		v = x[(size_t) i * NFEATURES + f];
			int			lo = 0,
						hi = k;

			/* first threshold >= v, or k */
			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if (thresholds[f][mid] < v)
					lo = mid + 1;
				else
					hi = mid;
			}
			bins[(size_t) i * NFEATURES + f] = (uint8) lo;
		}
	}

	m->ntrees = params->trees;
	m->depth = params->depth;
	m->split_feature = palloc(sizeof(int32) * params->trees * params->depth);
	m->split_value = palloc(sizeof(float4) * params->trees * params->depth);
	m->leaf = palloc_extended(sizeof(float4) * ((size_t) params->trees << params->depth),
							  MCXT_ALLOC_HUGE);

	for (int t = 0; t < params->trees; t++)
	{
		int			count = 0;
		Model		tree;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < nrows; i++)
		{
			residual[i] = ts->y[rows[i]] - pred[i];
			if (pg_prng_double(&rng) < params->subsample)
				sample[count++] = i;
		}
		grow_tree(m, t, params, sample, count, bins, (const double (*)[MAX_BINS]) thresholds,
				  nthresholds, residual, leaf_of);

		/* Add the new tree's output to every row's prediction. */
		tree = *m;
		tree.ntrees = 1;
		tree.base = 0;
		tree.split_feature += t * m->depth;
		tree.split_value += t * m->depth;
		tree.leaf += (size_t) t << m->depth;
		for (int i = 0; i < nrows; i++)
			pred[i] += model_eval(&tree, &x[(size_t) i * NFEATURES]);
	}

	pfree(x);
	pfree(bins);
	pfree(thresholds);
	pfree(pred);
	pfree(residual);
	pfree(column);
	pfree(sample);
	pfree(leaf_of);
	for (int c = 0; c < NCATEGORICAL; c++)
		pfree(index[c]);
	return m;
}

/*
 * Whether model m, trained on these rows, knows bare requests: when fewer
 * than BARE_MIN_ROWS of its rows were bare, it keeps the 10th, 50th and
 * 90th percentiles of the log runtimes of all of them for bare requests.
 */
static void
fit_bare(const TrainSet *ts, const int *rows, int nrows, Model *m)
{
	int			nbare = 0;
	double	   *y;

	for (int i = 0; i < nrows && nbare < BARE_MIN_ROWS; i++)
		nbare += job_is_bare(&ts->jobs[rows[i]]);
	m->bare_known = nbare < BARE_MIN_ROWS && nrows > 0;
	if (!m->bare_known)
		return;
	y = palloc(sizeof(double) * nrows);
	for (int i = 0; i < nrows; i++)
		y[i] = ts->y[rows[i]];
	qsort(y, nrows, sizeof(double), double_cmp);
	m->bare_log[0] = Max(Min(quantile_sorted(y, nrows, INTERVAL_LOW), MAX_LOG_RUNTIME), -MAX_LOG_RUNTIME);
	m->bare_log[1] = Max(Min(quantile_sorted(y, nrows, 0.5), MAX_LOG_RUNTIME), m->bare_log[0]);
	m->bare_log[2] = Max(Min(quantile_sorted(y, nrows, INTERVAL_HIGH), MAX_LOG_RUNTIME), m->bare_log[1]);
	pfree(y);
}

/*
 * Fit the predictor on the rows listed in `rows`: a model on all of them,
 * and a model of its own (a part) for each job type with at least
 * PART_MIN_ROWS of them, since job types tend to follow laws of their own
 * (a data-processing job's cost per sample has nothing to do with the
 * model's size, say) that one set of trees learns less well.  When the
 * parts cover every row, the model on all of them only serves job types
 * never seen, and gets a quarter of the trees.
 */
static Model *
fit_predictor(const TrainSet *ts, const int *rows, int nrows, const TrainParams *params)
{
	TrainParams global = *params;
	Model	   *m;
	CategoryMap types;
	int		   *type_of = palloc(sizeof(int) * nrows);
	int		   *type_rows = palloc0(sizeof(int) * Max(nrows, 1));
	int		   *part_rows = palloc(sizeof(int) * nrows);
	bool		covered = true;

	build_category_map(ts, rows, nrows, 0, &types, type_of);
	for (int i = 0; i < nrows; i++)
		if (type_of[i] >= 0)
			type_rows[type_of[i]]++;
	for (int i = 0; i < nrows; i++)
		covered &= type_of[i] >= 0 && type_rows[type_of[i]] >= PART_MIN_ROWS;
	if (covered)
		global.trees = Max(params->trees / 4, 1);
	m = fit(ts, rows, nrows, &global);
	fit_bare(ts, rows, nrows, m);

	m->part_names = palloc(sizeof(char *) * Max(types.n, 1));
	m->part_lengths = palloc(sizeof(int) * Max(types.n, 1));
	m->parts = palloc0(sizeof(Model) * Max(types.n, 1));
	for (int k = 0; k < types.n; k++)
	{
		int			n = 0;
		Model	   *part;

		if (type_rows[k] < PART_MIN_ROWS)
			continue;
		for (int i = 0; i < nrows; i++)
			if (type_of[i] == k)
				part_rows[n++] = rows[i];
		part = fit(ts, part_rows, n, params);
		fit_bare(ts, part_rows, n, part);
		m->parts[m->nparts] = *part;
		m->part_names[m->nparts] = types.names[k];
		m->part_lengths[m->nparts] = types.lengths[k];
		m->nparts++;
	}
	pfree(type_of);
	pfree(type_rows);
	pfree(part_rows);
	return m;
}

/* ---------- storage ---------- */

/* tinytemp.predictor_models, as of the last load; bumped at each load. */
static Oid	models_relid = InvalidOid;
static uint64 model_generation = 0;

/*
 * Relcache callback: a new model was stored (the statement trigger on
 * predictor_models), or everything is being reset.  Invalidations of
 * other relations, which vacuum and DDL send all the time, keep the model.
 */
static void
invalidate_model(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == models_relid || models_relid == InvalidOid)
	{
		current_model_valid = false;
		models_relid = InvalidOid;
	}
}

/*
 * Decode a stored model into model_context, or return NULL when it is
 * corrupt.  The loader raises on a corrupt model, so it runs in a
 * subtransaction; this backend warns about each corrupt version once.
 */
static Model *
load_model(bytea *raw, int64 version)
{
	static int64 warned_version = 0;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Model	   *volatile m = NULL;

	/* A parallel worker may not start a subtransaction: there, a corrupt model raises. */
	if (IsInParallelMode())
	{
		MemoryContextSwitchTo(model_context);
		m = deserialize(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), version);
		build_tree_blocks(m);
		MemoryContextSwitchTo(cxt);
		return m;
	}

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		MemoryContextSwitchTo(model_context);
		m = deserialize(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), version);
		build_tree_blocks(m);
		MemoryContextSwitchTo(cxt);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextReset(model_context);
		m = NULL;
		if (warned_version != version)
			ereport(WARNING,
					errcode(edata->sqlerrcode),
					errmsg("%s; scheduling goes on without runtime predictions", edata->message),
					edata->detail ? errdetail("%s", edata->detail) : 0,
					errhint("Train a new model with tinytemp_train_predictor()."));
		warned_version = version;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return m;
}

/*
 * The current model, loaded into this backend once per version; NULL when
 * none has been trained, or when the newest is corrupt (claims and
 * enqueues then go on without predictions).  Connects to SPI itself.
 */
static Model *
get_current_model(void)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;

	if (current_model_valid)
		return current_model;

	if (!invalidation_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_model, (Datum) 0);
		invalidation_registered = true;
	}
	if (model_context == NULL)
		model_context = AllocSetContextCreate(TopMemoryContext, "tinytemp predictor model",
											  ALLOCSET_DEFAULT_SIZES);

	models_relid = get_relname_relid("predictor_models", get_namespace_oid("tinytemp", true));
	model_generation++;
	SPI_connect();
	tinytemp_spi_execute(tinytemp_plan(&plan,
									   "SELECT version, model FROM tinytemp.predictor_models"
									   " ORDER BY version DESC LIMIT 1",
									   0, NULL),
						 NULL, NULL, SPI_OK_SELECT);
	MemoryContextReset(model_context);
	current_model = NULL;
	if (SPI_processed > 0)
	{
		int64		version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));
		bytea	   *raw = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &isnull));

		current_model = load_model(raw, version);
	}
	SPI_finish();
	current_model_valid = true;
	return current_model;
}

/*
 * The current model's generation in this backend, loading the model first
 * when a new one was stored: a cached prediction made under the same
 * generation is still the model's answer.
 */
uint64
tinytemp_model_generation(void)
{
	(void) get_current_model();
	return model_generation;
}

/* ---------- SQL interface ---------- */

/*
 * Read one job's inputs from the SQL arguments at the positions `args`
 * gives for job_type, model, dataset_size, epochs, batch_size, cpus, gpus,
 * gpu_type and memory_mb.  A negative size raises 22023, or, when the
 * caller validates the job itself, makes this return false.
 */
static bool
job_from_args(FunctionCallInfo fcinfo, const int *args, bool refuse_negative, JobFeatures *job)
{
	/* job_type, model, gpu_type within `args` */
	static const int cat_index[NCATEGORICAL] = {0, 1, 7};
	/* the six numeric inputs within `args`, and whether each is bigint */
	static const int num_index[6] = {2, 3, 4, 5, 6, 8};
	static const bool num_int8[6] = {true, false, false, false, false, true};
	static const char *const num_names[6] = {"dataset_size", "epochs", "batch_size", "cpus", "gpus", "memory_mb"};

	job->has_identity = false;
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		int			a = args[cat_index[c]];

		if (PG_ARGISNULL(a))
		{
			job->category[c] = NULL;
			job->category_len[c] = 0;
		}
		else
		{
			text	   *t = PG_GETARG_TEXT_PP(a);

			job->category[c] = VARDATA_ANY(t);
			job->category_len[c] = VARSIZE_ANY_EXHDR(t);
		}
	}
	for (int i = 0; i < 6; i++)
	{
		int			a = args[num_index[i]];

		job->has[i] = !PG_ARGISNULL(a);
		job->value[i] = 0;
		if (!job->has[i])
			continue;
		job->value[i] = num_int8[i] ? (double) PG_GETARG_INT64(a) : (double) PG_GETARG_INT32(a);
		if (job->value[i] < 0 && !refuse_negative)
			return false;
		if (job->value[i] < 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s must not be negative", num_names[i]),
					errdetail("The value given was %.0f.", job->value[i]));
	}
	return true;
}

/*
 * Predicted runtime in seconds of the job whose inputs are the arguments
 * at the positions `args` gives (see job_from_args), or false when no model
 * exists or, with refuse_negative false, when a size is negative.  With
 * `spread` not NULL, also the spread of the log of the runtime that the
 * model's 10-90% interval implies, or -1 when the model has no interval.
 * tinytemp_enqueue calls it too, leaving bad sizes to its own checks, with
 * `who` (else NULL) for the model's history of requests.
 */
bool
tinytemp_predict(FunctionCallInfo fcinfo, const int *args, bool refuse_negative,
				 const TinytempJobIdentity *who, double *seconds, double *spread)
{
	JobFeatures job;
	double		p10,
				p90;
	Model	   *m;

	if (!job_from_args(fcinfo, args, refuse_negative, &job))
		return false;
	set_history_keys(&job, who);
	m = get_current_model();
	if (m == NULL)
		return false;
	if (predict_job(m, &job, &p10, seconds, &p90) && spread != NULL)
		*spread = tinytemp_spread_from_interval(p10, p90);
	else if (spread != NULL)
		*spread = -1;
	return true;
}

/*
 * Predicted runtime in seconds of a job described by a TinytempJobSpec (the
 * scheduler's view of a stored job), or false when no model exists.
 */
bool
tinytemp_predict_spec(const TinytempJobSpec *spec, double *seconds)
{
	double		p10,
				p90;
	bool		bounded;

	return tinytemp_predict_spec_interval(spec, &p10, seconds, &p90, &bounded);
}

/*
 * The same, with the 10th and 90th percentiles of the runtime in *p10 and
 * *p90 and *bounded true when the current model has an interval (a model
 * stored before intervals has none): false when no model exists.  When
 * the spec says who submitted the job, the model's history of requests
 * corrects the prediction.
 */
bool
tinytemp_predict_spec_interval(const TinytempJobSpec *spec, double *p10, double *p50,
							   double *p90, bool *bounded)
{
	const char *names[NCATEGORICAL] = {spec->job_type, spec->model, spec->gpu_type};
	const double values[6] = {spec->dataset_size, spec->epochs, spec->batch_size,
	spec->cpus, spec->gpus, spec->memory_mb};
	JobFeatures job;
	Model	   *m = get_current_model();

	if (m == NULL)
		return false;
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		job.category[c] = names[c];
		job.category_len[c] = names[c] ? (int) strlen(names[c]) : 0;
	}
	for (int i = 0; i < 6; i++)
	{
		job.has[i] = values[i] >= 0;
		job.value[i] = job.has[i] ? values[i] : 0;
	}
	set_history_keys(&job, spec->who);
	*bounded = predict_job(m, &job, p10, p50, p90);
	return true;
}

/*
 * tinytemp_predict_runtime(job_type, model, dataset_size, epochs, batch_size,
 * cpus, gpus, gpu_type, memory_mb): predicted seconds, NULL before any model.
 */
Datum
tinytemp_predict_runtime(PG_FUNCTION_ARGS)
{
	static const int args[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
	double		seconds;

	if (!tinytemp_predict(fcinfo, args, true, NULL, &seconds, NULL))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(seconds);
}

/*
 * tinytemp_predict_runtime_interval(job_type, model, dataset_size, epochs,
 * batch_size, cpus, gpus, gpu_type, memory_mb, OUT p10, OUT p50, OUT p90):
 * the predicted runtime's 10th percentile, median (tinytemp_predict_runtime)
 * and 90th percentile in seconds; NULL bounds under a model stored before
 * intervals, all NULL before any model.
 */
Datum
tinytemp_predict_runtime_interval(PG_FUNCTION_ARGS)
{
	static const int args[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
	TupleDesc	desc;
	JobFeatures job;
	Datum		values[3] = {0, 0, 0};
	bool		nulls[3] = {true, true, true};
	Model	   *m;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	(void) job_from_args(fcinfo, args, true, &job);
	m = get_current_model();
	if (m != NULL)
	{
		double		p10,
					p50,
					p90;
		bool		bounded = predict_job(m, &job, &p10, &p50, &p90);

		values[1] = Float8GetDatum(p50);
		nulls[1] = false;
		if (bounded)
		{
			values[0] = Float8GetDatum(p10);
			values[2] = Float8GetDatum(p90);
			nulls[0] = nulls[2] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Read the training rows of a SELECT with the ten columns in order, then,
 * with_identity, the job's tenant, queue and params (NULL params: '{}')
 * and the rank of its finish (bigint; NULL: the order of the rows).
 */
static void
read_rows(const char *query, bool with_identity, TrainSet *ts)
{
	Jsonb	   *empty_params = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));

	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the training rows");
	ts->n = 0;
	ts->jobs = palloc_extended(sizeof(JobFeatures) * Max(SPI_processed, 1), MCXT_ALLOC_HUGE);
	ts->y = palloc_extended(sizeof(double) * Max(SPI_processed, 1), MCXT_ALLOC_HUGE);
	ts->finished = palloc_extended(sizeof(int64) * Max(SPI_processed, 1), MCXT_ALLOC_HUGE);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		JobFeatures *job = &ts->jobs[ts->n];
		static const int cat_cols[NCATEGORICAL] = {1, 2, 8};
		static const int num_cols[6] = {3, 4, 5, 6, 7, 9};
		bool		isnull;
		Datum		runtime = SPI_getbinval(tuple, desc, 10, &isnull);

		if (isnull || !(DatumGetFloat8(runtime) > 0) || !isfinite(DatumGetFloat8(runtime)))
			continue;
		for (int c = 0; c < NCATEGORICAL; c++)
		{
			char	   *v = SPI_getvalue(tuple, desc, cat_cols[c]);

			job->category[c] = v;
			job->category_len[c] = v ? strlen(v) : 0;
		}
		for (int i = 0; i < 6; i++)
		{
			char	   *v = SPI_getvalue(tuple, desc, num_cols[i]);

			job->has[i] = v != NULL;
			job->value[i] = v ? Max(strtod(v, NULL), 0) : 0;
		}
		if (with_identity)
		{
			TinytempJobIdentity who = {SPI_getvalue(tuple, desc, 11), SPI_getvalue(tuple, desc, 12),
			NULL, 0};
			Datum		params = SPI_getbinval(tuple, desc, 13, &isnull);

			if (!isnull)
			{
				Jsonb	   *p = DatumGetJsonbP(params);

				who.params = VARDATA_ANY(p);
				who.params_len = VARSIZE_ANY_EXHDR(p);
			}
			else
			{
				who.params = VARDATA_ANY(empty_params);
				who.params_len = VARSIZE_ANY_EXHDR(empty_params);
			}
			set_history_keys(job, &who);
			/* The jobs finished in this order; a source without finished_at, in the order read. */
			ts->finished[ts->n] = DatumGetInt64(SPI_getbinval(tuple, desc, 14, &isnull));
			if (isnull)
				ts->finished[ts->n] = (int64) r;
		}
		else
			job->has_identity = false;
		ts->y[ts->n++] = log(DatumGetFloat8(runtime));
	}
}

/* Median of n values (reorders them). */
static double
median(double *v, int n)
{
	qsort(v, n, sizeof(double), double_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * tinytemp_train_predictor(source regclass): train on `source` (any table
 * or view with columns job_type, model, dataset_size, epochs, batch_size,
 * cpus, gpus, gpu_type, memory_mb, runtime_s), or on the runtimes of the
 * jobs that succeeded here when NULL; estimate its error by 3-fold cross
 * validation; store it as the new current model.  Returns a report.
 */
Datum
tinytemp_train_predictor(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr insert_plan = NULL;
	TrainSet	ts;
	StringInfoData query;
	StringInfoData model_bytes;
	StringInfoData report;
	const char *source_name;
	int		   *all_rows;
	int		   *fold_of;
	pg_prng_state rng;
	double	   *ape;
	double	   *fold_pred;
	Residual   *resid;
	int			covered = 0;
	double		coverage;
	double		ss_res = 0,
				ss_tot = 0,
				mean_y = 0,
				mdape,
				r2;
	int			nape = 0;
	Model	   *m;
	instr_time	start,
				elapsed;
	int64		version;
	int			ntrees;
	int			nparts;
	int			interval_bins;
	bool		with_identity;
	double	   *corrected;
	double		mdape_history;
	int			nhistory;
	uint32		history_rows[HISTORY_LEVELS];
	double		history_shrink[HISTORY_LEVELS];
	bool		isnull;
	Oid			argtypes[7] = {TEXTOID, INT4OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, JSONBOID, BYTEAOID};
	Datum		values[7];
	TinytempCaller who;
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "tinytemp training",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(work);

	INSTR_TIME_SET_CURRENT(start);
	initStringInfo(&query);
	if (PG_ARGISNULL(0))
	{
		source_name = "tinytemp history";
		/* A job's runtime is its last run's, plus its earlier runs' (0.8) when it was preempted. */
		appendStringInfo(&query,
						 "SELECT j.job_type, j.model, j.dataset_size, j.epochs, j.batch_size,"
						 " j.cpus, j.gpus, CASE WHEN j.gpus > 0 THEN coalesce(w.gpu_type, j.gpu_type) END,"
						 " j.memory_mb, extract(epoch FROM j.finished_at - j.started_at)::float8%s,"
						 " j.tenant, j.queue, j.params, row_number() OVER (ORDER BY j.finished_at, j.id)"
						 " FROM tinytemp.jobs j JOIN tinytemp.workers w ON w.id = j.worker_id"
						 " WHERE j.state = 'succeeded' AND j.started_at IS NOT NULL"
						 /* the same model from the same jobs, wherever the rows lie */
						 " ORDER BY j.id",
						 tinytemp_schema_has_service() ? " + j.attained_s" : "");
		with_identity = true;
	}
	else
	{
		Oid			relid = PG_GETARG_OID(0);
		bool		has_tenant = get_attnum(relid, "tenant") != InvalidAttrNumber;
		bool		has_queue = get_attnum(relid, "queue") != InvalidAttrNumber;
		bool		has_params = get_attnum(relid, "params") != InvalidAttrNumber;
		bool		has_finished = get_attnum(relid, "finished_at") != InvalidAttrNumber;

		/*
		 * A source that says who submitted its jobs (tenant, queue, params:
		 * any of them) gets a history of requests too, in the order of its
		 * finished_at when it has one.
		 */
		source_name = DatumGetCString(DirectFunctionCall1(regclassout, PG_GETARG_DATUM(0)));
		with_identity = has_tenant || has_queue || has_params;
		appendStringInfo(&query,
						 "SELECT job_type::text, model::text, dataset_size::bigint, epochs::int,"
						 " batch_size::int, cpus::int, gpus::int, gpu_type::text, memory_mb::bigint,"
						 " runtime_s::float8, %s, %s, %s, %s FROM %s",
						 has_tenant ? "tenant::text" : "NULL::text",
						 has_queue ? "coalesce(queue::text, 'default')" : "'default'::text",
						 has_params ? "params::jsonb" : "NULL::jsonb",
						 has_finished ? "row_number() OVER (ORDER BY finished_at)" : "NULL::bigint",
						 source_name);
	}

	/*
	 * The history is tinytemp's own, read as the extension's owner.  A
	 * caller's relation is read with the caller's rights, since reading a
	 * view runs whatever functions the view calls: only the model is
	 * written as the owner.
	 */
	if (PG_ARGISNULL(0))
		tinytemp_enter(fcinfo, &who);
	SPI_connect();
	read_rows(query.data, with_identity, &ts);
	if (!PG_ARGISNULL(0))
		tinytemp_enter(fcinfo, &who);
	if (ts.n < MIN_TRAIN_ROWS)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("not enough rows to train the predictor from %s", source_name),
				errdetail("%d rows with a positive runtime were found; at least %d are needed.",
						  ts.n, MIN_TRAIN_ROWS));

	/*
	 * Cross-validation: each row predicted by a model that never saw it.
	 * Folds are drawn at random (with a fixed seed), since sources are often
	 * ordered by some feature.
	 *
	 * The interval comes from these out-of-fold residuals: errors on jobs
	 * a model did not see.  They are those of models of two thirds of the
	 * rows, a little wider than the model's own on new jobs, so the interval
	 * errs on the side of covering more.  A model's residuals on its own
	 * training rows would be far too narrow, and how much too narrow
	 * depends on how closely the trees fit their rows, which widening them
	 * by a cross-validated factor only partly undoes.
	 */
	all_rows = palloc(sizeof(int) * ts.n);
	fold_of = palloc(sizeof(int) * ts.n);
	fold_pred = palloc(sizeof(double) * ts.n);
	resid = palloc(sizeof(Residual) * ts.n);
	ape = palloc(sizeof(double) * ts.n);
	pg_prng_seed(&rng, default_params.seed);
	for (int i = 0; i < ts.n; i++)
		fold_of[i] = (int) pg_prng_uint64_range(&rng, 0, CV_FOLDS - 1);
	for (int fold = 0; fold < CV_FOLDS; fold++)
	{
		int			ntrain = 0;
		Model	   *fm;
		MemoryContext fold_cxt = AllocSetContextCreate(work, "tinytemp fold", ALLOCSET_DEFAULT_SIZES);
		MemoryContext prev = MemoryContextSwitchTo(fold_cxt);

		for (int i = 0; i < ts.n; i++)
			if (fold_of[i] != fold)
				all_rows[ntrain++] = i;
		fm = fit_predictor(&ts, all_rows, ntrain, &default_params);
		for (int i = 0; i < ts.n; i++)
			if (fold_of[i] == fold)
				fold_pred[i] = model_predict(fm, &ts.jobs[i]);
		MemoryContextSwitchTo(prev);
		MemoryContextDelete(fold_cxt);
	}
	for (int i = 0; i < ts.n; i++)
		mean_y += ts.y[i] / ts.n;
	for (int i = 0; i < ts.n; i++)
	{
		double		actual = exp(ts.y[i]);

		ss_res += (ts.y[i] - fold_pred[i]) * (ts.y[i] - fold_pred[i]);
		ss_tot += (ts.y[i] - mean_y) * (ts.y[i] - mean_y);
		ape[nape++] = fabs(exp(fold_pred[i]) - actual) / actual;
	}
	mdape = median(ape, nape);
	r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : 0;

	/*
	 * The interval's coverage, made as the model's is: for each fold, an
	 * interval from the other folds' out-of-fold residuals, against this
	 * fold's.
	 */
	for (int fold = 0; fold < CV_FOLDS; fold++)
	{
		Model		fold_interval;
		int			n = 0;

		for (int i = 0; i < ts.n; i++)
			if (fold_of[i] != fold)
			{
				resid[n].pred = fold_pred[i];
				resid[n++].resid = ts.y[i] - fold_pred[i];
			}
		if (n == 0)
			continue;
		fit_interval(resid, n, &fold_interval);
		for (int i = 0; i < ts.n; i++)
		{
			int			b;

			if (fold_of[i] != fold)
				continue;
			b = interval_bin(&fold_interval, fold_pred[i]);
			if (ts.y[i] - fold_pred[i] >= fold_interval.interval_lo[b] &&
				ts.y[i] - fold_pred[i] <= fold_interval.interval_hi[b])
				covered++;
		}
	}
	coverage = (double) covered / ts.n;

	/* The model itself, on every row, with the interval of all the out-of-fold residuals. */
	for (int i = 0; i < ts.n; i++)
	{
		all_rows[i] = i;
		resid[i].pred = fold_pred[i];
		resid[i].resid = ts.y[i] - fold_pred[i];
	}
	m = fit_predictor(&ts, all_rows, ts.n, &default_params);
	fit_interval(resid, ts.n, m);

	/* The history of requests, on the out-of-fold residuals in the order the jobs finished. */
	corrected = palloc(sizeof(double) * ts.n);
	for (int i = 0; i < ts.n; i++)
		ape[i] = ts.y[i] - fold_pred[i];
	fit_history(&ts, ape, m, corrected);
	m->has_bare_section = true;
	m->has_overhead_section = true;
	for (int i = 0; i < ts.n; i++)
		ape[i] = fabs(exp(-corrected[i]) - 1);
	mdape_history = median(ape, ts.n);
	nhistory = m->nhistory;
	memcpy(history_rows, m->history_rows, sizeof(history_rows));
	memcpy(history_shrink, m->history_shrink, sizeof(history_shrink));
	initStringInfo(&model_bytes);
	serialize(m, &model_bytes);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	initStringInfo(&report);
	appendStringInfo(&report,
					 "{\"trees\": %d, \"depth\": %d, \"learning_rate\": %g, \"min_leaf\": %d,"
					 " \"subsample\": %g, \"seed\": " UINT64_FORMAT ", \"features\": %d}",
					 default_params.trees, default_params.depth, default_params.learning_rate,
					 default_params.min_leaf, default_params.subsample, default_params.seed, NFEATURES);

	values[0] = CStringGetTextDatum(source_name);
	values[1] = Int32GetDatum(ts.n);
	values[2] = Float8GetDatum(mdape);
	values[3] = Float8GetDatum(r2);
	values[4] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(elapsed));
	values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(report.data));
	{
		bytea	   *b = palloc(VARHDRSZ + model_bytes.len);

		SET_VARSIZE(b, VARHDRSZ + model_bytes.len);
		memcpy(VARDATA(b), model_bytes.data, model_bytes.len);
		values[6] = PointerGetDatum(b);
	}
	tinytemp_spi_execute(tinytemp_plan(&insert_plan,
									   "INSERT INTO tinytemp.predictor_models"
									   " (source, rows_used, cv_mdape, cv_r2_log, train_seconds, params, model)"
									   " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING version",
									   7, argtypes),
						 values, NULL, SPI_OK_INSERT_RETURNING);
	version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ntrees = m->ntrees;
	nparts = m->nparts;
	interval_bins = m->interval_bins;
	/* Everything allocated since SPI_connect, the model included, goes now. */
	SPI_finish();
	tinytemp_leave(&who);

	initStringInfo(&report);
	appendStringInfo(&report, "{\"version\": " INT64_FORMAT ", \"source\": ", version);
	escape_json(&report, source_name);
	appendStringInfo(&report,
					 ", \"rows\": %d, \"cv_folds\": %d, \"cv_mdape\": %.6f, \"cv_r2_log\": %.6f,"
					 " \"cv_interval_coverage\": %.6f, \"interval_bins\": %d,"
					 " \"train_seconds\": %.3f, \"trees\": %d, \"depth\": %d,"
					 " \"job_type_models\": %d, \"history_keys\": %d,"
					 " \"history_rows\": {\"recurring\": %u, \"tenant_queue\": %u},"
					 " \"history_shrink\": {\"recurring\": %g, \"tenant_queue\": %g},"
					 " \"cv_mdape_history\": %.6f}",
					 ts.n, CV_FOLDS, mdape, r2, coverage, interval_bins,
					 INSTR_TIME_GET_DOUBLE(elapsed), ntrees, default_params.depth, nparts,
					 nhistory, history_rows[0], history_rows[1], history_shrink[0],
					 history_shrink[1], mdape_history);
	MemoryContextSwitchTo(caller);
	{
		Datum		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(report.data));

		MemoryContextDelete(work);
		PG_RETURN_DATUM(result);
	}
}

/*
 * tinytemp_predictor_check(model bytea): decode a stored model as a
 * prediction would, and describe it; a corrupt one raises XX001.
 */
Datum
tinytemp_predictor_check(PG_FUNCTION_ARGS)
{
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	Model	   *m = deserialize(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), 0);
	StringInfoData report;
	int			bare = m->bare_known;
	int			overheads = m->categories[OVERHEAD_MAP].overheads != NULL;

	for (int p = 0; p < m->nparts; p++)
	{
		bare += m->parts[p].bare_known;
		overheads += m->parts[p].categories[OVERHEAD_MAP].overheads != NULL;
	}

	initStringInfo(&report);
	appendStringInfo(&report,
					 "{\"trees\": %d, \"depth\": %d, \"job_types\": %d, \"models\": %d,"
					 " \"gpu_types\": %d, \"interval_bins\": %d, \"format\": %d,"
					 " \"job_type_models\": %d, \"history_keys\": %d,"
					 " \"bare_request_models\": %d, \"overhead_models\": %d}",
					 m->ntrees, m->depth, m->categories[0].n, m->categories[1].n,
					 m->categories[2].n, m->interval_bins,
					 (int) model_format(m),
					 m->nparts, m->nhistory, bare, overheads);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(report.data)));
}

/*
 * Statement trigger on tinytemp.predictor_models: whatever changed the
 * models (a training, an admin's INSERT or DELETE, a restore), every
 * backend reloads the current one once this commits.
 */
Datum
tinytemp_predictor_models_changed(PG_FUNCTION_ARGS)
{
	return tinytemp_table_changed(fcinfo);
}

/*
 * tinytemp.workers_changed() and tinytemp.predictor_models_changed(), the
 * statement triggers of the tables whose contents backends cache (the
 * cluster's capacity, the model): tell every backend to read them again.
 */
Datum
tinytemp_table_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("this function must be called as a trigger"));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * In the background worker, in a transaction of its own: train on the
 * history of succeeded jobs.  An error (too few rows, say) is the
 * background worker's to log.  Returns the number of models trained: 1.
 */
int
tinytemp_retrain_from_history(void)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		report;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = (Datum) 0;
	fcinfo->args[0].isnull = true;
	report = tinytemp_train_predictor(fcinfo);
	elog(LOG, "tinytemp: retrained the predictor: %s",
		 DatumGetCString(DirectFunctionCall1(jsonb_out, report)));
	return 1;
}

/*
 * model_codec.c
 *	  The stored form of a predictor model: native byte order, a header
 *	  (magic, format, feature count, tree count, depth), the base value,
 *	  the three category maps (count, code of NULL, in format 4 the code of
 *	  unseen categories, then each name and code), in format 4 the NLINEAR
 *	  weights of the linear part, the trees' splits and leaves, then the
 *	  10-90% interval: its bin count, the bins' upper edges and each bin's
 *	  low and high log residual.  Format 4 ends with the models of their own
 *	  of some job types: their count, then for each, in increasing order of
 *	  the job type, its name, tree count and depth, and the same body (base,
 *	  maps, weights, trees).  Format 5 adds the history of requests, and
 *	  format 6 then, for the model and each part in turn, whether it knows
 *	  bare requests' runtimes (a uint32, 0 or 1) and if so their three log
 *	  quantiles.  Format 7 ends with the same for the models'
 *	  overheads: for the model and each part, a uint32 flag and, if 1, the
 *	  overheads of NULL and of unseen models, then each model's in the
 *	  map's order.  Format 3, one model with the NFEATURES_V3
 *	  features of its time and no linear part, still loads, and so does
 *	  format 2, format 3 without the interval, as a model without one.
 *
 * The loader uses only palloc, palloc0, palloc_extended and ereport, so
 * that test/fuzz/ can build this file against stubs of them.
 */
#include "postgres.h"

#include <math.h>

#include "model_codec.h"
#include "utils/memutils.h"

/* Append the body of model or part m: base, category maps, weights, trees. */
static void
serialize_body(const Model *m, StringInfo buf)
{
	appendBinaryStringInfo(buf, (char *) &m->base, sizeof(float8));
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		const CategoryMap *map = &m->categories[c];
		uint32		n = map->n;

		appendBinaryStringInfo(buf, (char *) &n, sizeof(uint32));
		appendBinaryStringInfo(buf, (char *) &map->fallback, sizeof(float8));
		if (m->weights)
			appendBinaryStringInfo(buf, (char *) &map->unseen, sizeof(float8));
		for (int i = 0; i < map->n; i++)
		{
			uint32		len = map->lengths[i];

			appendBinaryStringInfo(buf, (char *) &len, sizeof(uint32));
			appendBinaryStringInfo(buf, map->names[i], len);
			appendBinaryStringInfo(buf, (char *) &map->codes[i], sizeof(float8));
		}
	}
	if (m->weights)
		appendBinaryStringInfo(buf, (char *) m->weights, sizeof(float8) * NLINEAR);
	appendBinaryStringInfo(buf, (char *) m->split_feature, sizeof(int32) * m->ntrees * m->depth);
	appendBinaryStringInfo(buf, (char *) m->split_value, sizeof(float4) * m->ntrees * m->depth);
	appendBinaryStringInfo(buf, (char *) m->leaf, sizeof(float4) * ((size_t) m->ntrees << m->depth));
}

/* Append a model's bytes to buf; native byte order. */
/* The format that stores m: the newest whose sections m has. */
uint32
model_format(const Model *m)
{
	if (m->has_overhead_section)
		return MODEL_FORMAT;
	if (m->has_bare_section)
		return MODEL_FORMAT_BARE;
	if (m->has_history)
		return MODEL_FORMAT_HISTORY;
	if (m->weights)
		return MODEL_FORMAT_LINEAR;
	return m->interval_bins > 0 ? MODEL_FORMAT_INTERVAL : MODEL_FORMAT_POINT;
}

void
serialize(const Model *m, StringInfo buf)
{
	uint32		format = model_format(m);
	uint32		header[5] = {MODEL_MAGIC, format, (uint32) m->nfeatures, (uint32) m->ntrees,
	(uint32) m->depth};

	Assert(format < MODEL_FORMAT_LINEAR || (m->interval_bins > 0 && m->weights));
	Assert(!m->has_bare_section || m->has_history);
	appendBinaryStringInfo(buf, (char *) header, sizeof(header));
	serialize_body(m, buf);
	if (m->interval_bins > 0)
	{
		uint32		n = m->interval_bins;

		appendBinaryStringInfo(buf, (char *) &n, sizeof(uint32));
		appendBinaryStringInfo(buf, (char *) m->interval_edge, sizeof(float8) * (n - 1));
		for (uint32 b = 0; b < n; b++)
		{
			appendBinaryStringInfo(buf, (char *) &m->interval_lo[b], sizeof(float8));
			appendBinaryStringInfo(buf, (char *) &m->interval_hi[b], sizeof(float8));
		}
	}
	if (format >= MODEL_FORMAT_LINEAR)
	{
		uint32		n = m->nparts;

		appendBinaryStringInfo(buf, (char *) &n, sizeof(uint32));
		for (int p = 0; p < m->nparts; p++)
		{
			const Model *part = &m->parts[p];
			uint32		part_header[3] = {(uint32) m->part_lengths[p], (uint32) part->ntrees,
			(uint32) part->depth};

			appendBinaryStringInfo(buf, (char *) &part_header[0], sizeof(uint32));
			appendBinaryStringInfo(buf, m->part_names[p], m->part_lengths[p]);
			appendBinaryStringInfo(buf, (char *) &part_header[1], 2 * sizeof(uint32));
			serialize_body(part, buf);
		}
	}
	if (format >= MODEL_FORMAT_HISTORY)
	{
		uint32		n = m->nhistory;

		appendBinaryStringInfo(buf, (char *) m->history_shrink, sizeof(float8) * HISTORY_LEVELS);
		appendBinaryStringInfo(buf, (char *) m->history_lo, sizeof(float8) * HISTORY_LEVELS);
		appendBinaryStringInfo(buf, (char *) m->history_hi, sizeof(float8) * HISTORY_LEVELS);
		appendBinaryStringInfo(buf, (char *) m->history_rows, sizeof(uint32) * HISTORY_LEVELS);
		appendBinaryStringInfo(buf, (char *) &n, sizeof(uint32));
		appendBinaryStringInfo(buf, (char *) m->history_key, sizeof(uint64) * n);
		appendBinaryStringInfo(buf, (char *) m->history_mean, sizeof(float8) * n);
		appendBinaryStringInfo(buf, (char *) m->history_count, sizeof(uint32) * n);
	}
	if (format >= MODEL_FORMAT_BARE)
		for (int p = -1; p < m->nparts; p++)
		{
			const Model *part = p < 0 ? m : &m->parts[p];
			uint32		known = part->bare_known ? 1 : 0;

			appendBinaryStringInfo(buf, (char *) &known, sizeof(uint32));
			if (known)
				appendBinaryStringInfo(buf, (char *) part->bare_log, sizeof(float8) * 3);
		}
	if (format == MODEL_FORMAT)
		for (int p = -1; p < m->nparts; p++)
		{
			const CategoryMap *map = &(p < 0 ? m : &m->parts[p])->categories[OVERHEAD_MAP];
			uint32		has = map->overheads ? 1 : 0;

			appendBinaryStringInfo(buf, (char *) &has, sizeof(uint32));
			if (!has)
				continue;
			appendBinaryStringInfo(buf, (char *) &map->overhead_fallback, sizeof(float8));
			appendBinaryStringInfo(buf, (char *) &map->overhead_unseen, sizeof(float8));
			appendBinaryStringInfo(buf, (char *) map->overheads, sizeof(float8) * map->n);
		}
}

/* Bounds-checked reading of a stored model. */
typedef struct Reader
{
	const char *data;
	size_t		len;
	size_t		pos;
	int64		version;
} Reader;

/* Raise the error for a stored model that cannot be used. */
static void
pg_attribute_noreturn()
corrupt(const Reader *r, const char *why)
{
	ereport(ERROR,
			errcode(ERRCODE_DATA_CORRUPTED),
			r->version > 0 ?
			errmsg("predictor model version " INT64_FORMAT " is corrupt", r->version) :
			errmsg("predictor model is corrupt"),
			errdetail("%s", why),
			errhint("Train a new model with tinytemp_train_predictor()."));
}

/* Copy n bytes out of the reader, or raise. */
static void
read_bytes(Reader *r, void *out, size_t n)
{
	if (n > r->len - r->pos)
		corrupt(r, "The model ends early.");
	memcpy(out, r->data + r->pos, n);
	r->pos += n;
}

/* Read a finite float8, or raise. */
static double
read_finite(Reader *r)
{
	float8		v;

	read_bytes(r, &v, sizeof(v));
	if (!isfinite(v))
		corrupt(r, "The model holds a value that is not a finite number.");
	return v;
}

/* Read a name of a map or part, NUL-terminated in memory, or raise. */
static char *
read_name(Reader *r, int *length)
{
	uint32		l;
	char	   *name;

	read_bytes(r, &l, sizeof(l));
	if (l > r->len - r->pos)
		corrupt(r, "A name is longer than what is left of the model.");
	name = palloc(l + 1);
	read_bytes(r, name, l);
	name[l] = '\0';
	*length = l;
	return name;
}

/* Check a tree count and depth read from the model, or raise. */
static void
check_tree_shape(const Reader *r, uint32 ntrees, uint32 depth)
{
	if (ntrees < 1 || ntrees > MAX_TREES || depth < 1 || depth > MAX_DEPTH)
		corrupt(r, "The model's tree count or depth is out of range.");
}

/*
 * Read the body of model or part m, whose nfeatures, tree count and depth
 * are set: base, category maps, with_linear weights, and the trees.
 */
static void
read_body(Reader *r, Model *m, bool with_linear)
{
	size_t		nsplits = (size_t) m->ntrees * m->depth;
	size_t		nleaves = (size_t) m->ntrees << m->depth;
	size_t		tree_bytes = nsplits * (sizeof(int32) + sizeof(float4)) + nleaves * sizeof(float4);

	m->base = read_finite(r);
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		CategoryMap *map = &m->categories[c];
		uint32		n;

		read_bytes(r, &n, sizeof(n));
		if (n > MAX_CATEGORIES)
			corrupt(r, "The model has too many categories.");
		map->n = n;
		map->fallback = read_finite(r);
		/* Before format 4, unseen categories share the code of NULL. */
		map->unseen = with_linear ? read_finite(r) : map->fallback;
		map->names = palloc(sizeof(char *) * Max(n, 1));
		map->lengths = palloc(sizeof(int) * Max(n, 1));
		map->codes = palloc(sizeof(float8) * Max(n, 1));
		for (uint32 i = 0; i < n; i++)
		{
			map->names[i] = read_name(r, &map->lengths[i]);
			map->codes[i] = read_finite(r);
			if (i > 0 && name_cmp(map->names[i - 1], map->lengths[i - 1],
								  map->names[i], map->lengths[i]) >= 0)
				corrupt(r, "The model's categories are not in strictly increasing order.");
		}
	}

	if (with_linear)
	{
		m->weights = palloc(sizeof(float8) * NLINEAR);
		for (int f = 0; f < NLINEAR; f++)
			m->weights[f] = read_finite(r);
	}

	/* Before allocating them, so that a forged count allocates nothing. */
	if (r->len - r->pos < tree_bytes)
		corrupt(r, "The model's size does not match its tree count and depth.");
	m->split_feature = palloc(sizeof(int32) * nsplits);
	m->split_value = palloc(sizeof(float4) * nsplits);
	m->leaf = palloc_extended(sizeof(float4) * nleaves, MCXT_ALLOC_HUGE);
	read_bytes(r, m->split_feature, sizeof(int32) * nsplits);
	read_bytes(r, m->split_value, sizeof(float4) * nsplits);
	read_bytes(r, m->leaf, sizeof(float4) * nleaves);
	for (size_t i = 0; i < nsplits; i++)
		if (m->split_feature[i] < 0 || m->split_feature[i] >= m->nfeatures ||
			!isfinite(m->split_value[i]))
			corrupt(r, "A split names an unknown feature or a value that is not a finite number.");
	for (size_t i = 0; i < nleaves; i++)
		if (!isfinite(m->leaf[i]))
			corrupt(r, "A leaf holds a value that is not a finite number.");
}

/* Read the 10-90% interval of m, or raise. */
static void
read_interval(Reader *r, Model *m)
{
	uint32		n;

	read_bytes(r, &n, sizeof(n));
	if (n < 1 || n > MAX_INTERVAL_BINS)
		corrupt(r, "The model's interval bin count is out of range.");
	m->interval_bins = n;
	m->interval_edge = palloc(sizeof(float8) * n);
	m->interval_lo = palloc(sizeof(float8) * n);
	m->interval_hi = palloc(sizeof(float8) * n);
	for (uint32 b = 0; b + 1 < n; b++)
	{
		m->interval_edge[b] = read_finite(r);
		if (b > 0 && !(m->interval_edge[b] > m->interval_edge[b - 1]))
			corrupt(r, "The model's interval edges are not in strictly increasing order.");
	}
	for (uint32 b = 0; b < n; b++)
	{
		m->interval_lo[b] = read_finite(r);
		m->interval_hi[b] = read_finite(r);
		if (!(m->interval_lo[b] <= 0 && m->interval_lo[b] >= -MAX_LOG_SPREAD &&
			  m->interval_hi[b] >= 0 && m->interval_hi[b] <= MAX_LOG_SPREAD))
			corrupt(r, "The model's interval bounds are out of range.");
	}
}

/*
 * The fewest bytes a job type's model takes: the length of its name, tree
 * count, depth, base, three empty maps, weights, one tree of depth 1.
 */
#define PART_MIN_BYTES (3 * sizeof(uint32) + sizeof(float8) + \
						NCATEGORICAL * (sizeof(uint32) + 2 * sizeof(float8)) + \
						NLINEAR * sizeof(float8) + sizeof(int32) + 3 * sizeof(float4))

/* Read the job types' own models of a model of format 4, or raise. */
static void
read_parts(Reader *r, Model *m)
{
	uint32		n;

	read_bytes(r, &n, sizeof(n));
	/* Before allocating them, so that a forged count allocates little. */
	if (n > MAX_CATEGORIES || n > (r->len - r->pos) / PART_MIN_BYTES)
		corrupt(r, "The model's count of job types with a model of their own is out of range.");
	m->nparts = n;
	m->part_names = palloc(sizeof(char *) * Max(n, 1));
	m->part_lengths = palloc(sizeof(int) * Max(n, 1));
	m->parts = palloc0(sizeof(Model) * Max(n, 1));
	for (uint32 p = 0; p < n; p++)
	{
		Model	   *part = &m->parts[p];
		uint32		shape[2];

		m->part_names[p] = read_name(r, &m->part_lengths[p]);
		if (p > 0 && name_cmp(m->part_names[p - 1], m->part_lengths[p - 1],
							  m->part_names[p], m->part_lengths[p]) >= 0)
			corrupt(r, "The model's job types are not in strictly increasing order.");
		read_bytes(r, shape, sizeof(shape));
		check_tree_shape(r, shape[0], shape[1]);
		part->version = m->version;
		part->nfeatures = NFEATURES;
		part->ntrees = shape[0];
		part->depth = shape[1];
		read_body(r, part, true);
	}
}

/* Read the history of requests of a model of format 5, or raise. */
static void
read_history(Reader *r, Model *m)
{
	uint32		n;
	size_t		entry = sizeof(uint64) + sizeof(float8) + sizeof(uint32);

	m->has_history = true;
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		m->history_shrink[l] = read_finite(r);
		if (m->history_shrink[l] != -1 &&
			!(m->history_shrink[l] >= 0 && m->history_shrink[l] <= MAX_HISTORY_SHRINK))
			corrupt(r, "The model's history shrinkage is out of range.");
	}
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		m->history_lo[l] = read_finite(r);
		if (!(m->history_lo[l] <= 0 && m->history_lo[l] >= -MAX_LOG_SPREAD))
			corrupt(r, "The model's history interval is out of range.");
	}
	for (int l = 0; l < HISTORY_LEVELS; l++)
	{
		m->history_hi[l] = read_finite(r);
		if (!(m->history_hi[l] >= 0 && m->history_hi[l] <= MAX_LOG_SPREAD))
			corrupt(r, "The model's history interval is out of range.");
	}
	read_bytes(r, m->history_rows, sizeof(uint32) * HISTORY_LEVELS);
	read_bytes(r, &n, sizeof(n));
	/* Before allocating them, so that a forged count allocates nothing. */
	if (n > MAX_HISTORY_KEYS || n > (r->len - r->pos) / entry)
		corrupt(r, "The model's count of history keys is out of range.");
	m->nhistory = n;
	m->history_key = palloc_extended(sizeof(uint64) * Max(n, 1), MCXT_ALLOC_HUGE);
	m->history_mean = palloc_extended(sizeof(float8) * Max(n, 1), MCXT_ALLOC_HUGE);
	m->history_count = palloc_extended(sizeof(uint32) * Max(n, 1), MCXT_ALLOC_HUGE);
	read_bytes(r, m->history_key, sizeof(uint64) * n);
	read_bytes(r, m->history_mean, sizeof(float8) * n);
	read_bytes(r, m->history_count, sizeof(uint32) * n);
	for (uint32 i = 0; i < n; i++)
	{
		if (i > 0 && m->history_key[i] <= m->history_key[i - 1])
			corrupt(r, "The model's history keys are not in strictly increasing order.");
		if (!(fabs(m->history_mean[i]) <= MAX_LOG_SPREAD) || m->history_count[i] < 1)
			corrupt(r, "A history key's mean or count is out of range.");
	}
}

/* A model's overhead, a log runtime no larger than MAX_LOG_RUNTIME either way, or raise. */
static double
read_overhead(Reader *r)
{
	double		v = read_finite(r);

	if (!(fabs(v) <= MAX_LOG_RUNTIME))
		corrupt(r, "A model's overhead is out of range.");
	return v;
}

/* Read the bare requests' runtimes of a model of format 6 and its parts, or raise. */
static void
read_bare(Reader *r, Model *m)
{
	m->has_bare_section = true;
	for (int p = -1; p < m->nparts; p++)
	{
		Model	   *part = p < 0 ? m : &m->parts[p];
		uint32		known;

		read_bytes(r, &known, sizeof(known));
		if (known > 1)
			corrupt(r, "The model's flag of bare requests is neither 0 nor 1.");
		part->bare_known = known == 1;
		if (!part->bare_known)
			continue;
		for (int q = 0; q < 3; q++)
		{
			part->bare_log[q] = read_finite(r);
			if (!(fabs(part->bare_log[q]) <= MAX_LOG_RUNTIME) ||
				(q > 0 && !(part->bare_log[q] >= part->bare_log[q - 1])))
				corrupt(r, "The model's runtimes of bare requests are out of range or out of order.");
		}
	}
}

/* Read the overheads of a model of format 7 and its parts, or raise. */
static void
read_overheads(Reader *r, Model *m)
{
	m->has_overhead_section = true;
	for (int p = -1; p < m->nparts; p++)
	{
		CategoryMap *map = &(p < 0 ? m : &m->parts[p])->categories[OVERHEAD_MAP];
		uint32		has;

		read_bytes(r, &has, sizeof(has));
		if (has > 1)
			corrupt(r, "The model's flag of overheads is neither 0 nor 1.");
		if (!has)
			continue;
		map->overheads = palloc(sizeof(float8) * Max(map->n, 1));
		map->overhead_fallback = read_overhead(r);
		map->overhead_unseen = read_overhead(r);
		for (int k = 0; k < map->n; k++)
			map->overheads[k] = read_overhead(r);
	}
}

/*
 * Decode a stored model into memory of the current context, checking every
 * count, index and value, so that evaluation can never leave the arrays:
 * the feature count is that of the format, every split names one of those
 * features, no tree is deeper than MAX_DEPTH, the trees' bytes are there
 * before they are allocated, every weight is finite, an interval's edges
 * increase and its bounds lie on either side of the prediction, names are
 * and history keys in strictly increasing order, bare requests' quantiles
 * are finite and in order, and the model ends exactly where its last
 * section does.  A model that decodes encodes back to the same bytes.
 */
Model *
deserialize(const char *data, size_t len, int64 version)
{
	Reader		r = {data, len, 0, version};
	Model	   *m = palloc0(sizeof(Model));
	uint32		header[5];

	m->version = version;
	read_bytes(&r, header, sizeof(header));
	if (header[0] != MODEL_MAGIC ||
		!(header[1] == MODEL_FORMAT || header[1] == MODEL_FORMAT_BARE ||
		  header[1] == MODEL_FORMAT_HISTORY ||
		  header[1] == MODEL_FORMAT_LINEAR ? header[2] == NFEATURES :
		  (header[1] == MODEL_FORMAT_INTERVAL || header[1] == MODEL_FORMAT_POINT) &&
		  header[2] == NFEATURES_V3))
		corrupt(&r, "The model's header is not that of this version of tinytemp.");
	check_tree_shape(&r, header[3], header[4]);
	m->nfeatures = header[2];
	m->ntrees = header[3];
	m->depth = header[4];
	read_body(&r, m, header[1] >= MODEL_FORMAT_LINEAR);
	if (header[1] != MODEL_FORMAT_POINT)
		read_interval(&r, m);
	if (header[1] >= MODEL_FORMAT_LINEAR)
		read_parts(&r, m);
	if (header[1] >= MODEL_FORMAT_HISTORY)
		read_history(&r, m);
	if (header[1] >= MODEL_FORMAT_BARE)
		read_bare(&r, m);
	if (header[1] == MODEL_FORMAT)
		read_overheads(&r, m);
	if (r.pos != r.len)
		corrupt(&r, "The model's size does not match its contents.");
	return m;
}

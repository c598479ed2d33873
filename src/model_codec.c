/*
 * model_codec.c
 *	  The stored form of a predictor model: native byte order, a header
 *	  (magic, format, feature count, tree count, depth), the base value,
 *	  the three category maps, the trees' splits and leaves, then, in format
 *	  3, the 10-90% interval: its bin count, the bins' upper edges and each
 *	  bin's low and high log residual.  Format 2, the same without the
 *	  interval, still loads, as a model without one.
 *
 * The loader uses only palloc, palloc0, palloc_extended and ereport, so
 * that test/fuzz/ can build this file against stubs of them.
 */
#include "postgres.h"

#include <math.h>

#include "model_codec.h"
#include "utils/memutils.h"

/* Append a model's bytes to buf; native byte order. */
void
serialize(const Model *m, StringInfo buf)
{
	uint32		header[5] = {MODEL_MAGIC, m->interval_bins > 0 ? MODEL_FORMAT : MODEL_FORMAT_POINT,
	NFEATURES, (uint32) m->ntrees, (uint32) m->depth};

	appendBinaryStringInfo(buf, (char *) header, sizeof(header));
	appendBinaryStringInfo(buf, (char *) &m->base, sizeof(float8));
	for (int c = 0; c < NCATEGORICAL; c++)
	{
		const CategoryMap *map = &m->categories[c];
		uint32		n = map->n;

		appendBinaryStringInfo(buf, (char *) &n, sizeof(uint32));
		appendBinaryStringInfo(buf, (char *) &map->fallback, sizeof(float8));
		for (int i = 0; i < map->n; i++)
		{
			uint32		len = map->lengths[i];

			appendBinaryStringInfo(buf, (char *) &len, sizeof(uint32));
			appendBinaryStringInfo(buf, map->names[i], len);
			appendBinaryStringInfo(buf, (char *) &map->codes[i], sizeof(float8));
		}
	}
	appendBinaryStringInfo(buf, (char *) m->split_feature, sizeof(int32) * m->ntrees * m->depth);
	appendBinaryStringInfo(buf, (char *) m->split_value, sizeof(float4) * m->ntrees * m->depth);
	appendBinaryStringInfo(buf, (char *) m->leaf, sizeof(float4) * ((size_t) m->ntrees << m->depth));
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

/*
 * Decode a stored model into memory of the current context, checking every
 * count, index and value, so that evaluation can never leave the arrays:
 * every split names one of the NFEATURES features, no tree is deeper than
 * MAX_DEPTH, the bytes left match the tree count and depth (and, in format
 * 3, the interval) exactly, and an interval's edges increase and its bounds
 * lie on either side of the prediction.  A model that decodes encodes back
 * to the same bytes.
 */
Model *
deserialize(const char *data, size_t len, int64 version)
{
	Reader		r = {data, len, 0, version};
	Model	   *m = palloc0(sizeof(Model));
	uint32		header[5];
	bool		has_interval;

	m->version = version;
	read_bytes(&r, header, sizeof(header));
	if (header[0] != MODEL_MAGIC ||
		(header[1] != MODEL_FORMAT && header[1] != MODEL_FORMAT_POINT) ||
		header[2] != NFEATURES)
		corrupt(&r, "The model's header is not that of this version of tinytemp.");
	has_interval = header[1] == MODEL_FORMAT;
	if (header[3] < 1 || header[3] > MAX_TREES || header[4] < 1 || header[4] > MAX_DEPTH)
		corrupt(&r, "The model's tree count or depth is out of range.");
	m->ntrees = header[3];
	m->depth = header[4];
	m->base = read_finite(&r);

	for (int c = 0; c < NCATEGORICAL; c++)
	{
		CategoryMap *map = &m->categories[c];
		uint32		n;

		read_bytes(&r, &n, sizeof(n));
		if (n > MAX_CATEGORIES)
			corrupt(&r, "The model has too many categories.");
		map->n = n;
		map->fallback = read_finite(&r);
		map->names = palloc(sizeof(char *) * Max(n, 1));
		map->lengths = palloc(sizeof(int) * Max(n, 1));
		map->codes = palloc(sizeof(float8) * Max(n, 1));
		for (uint32 i = 0; i < n; i++)
		{
			uint32		l;

			read_bytes(&r, &l, sizeof(l));
			if (l > len)
				corrupt(&r, "A category name is longer than the model.");
			map->names[i] = palloc(l + 1);
			read_bytes(&r, map->names[i], l);
			map->names[i][l] = '\0';
			map->lengths[i] = l;
			map->codes[i] = read_finite(&r);
			if (i > 0 && name_cmp(map->names[i - 1], map->lengths[i - 1], map->names[i], l) >= 0)
				corrupt(&r, "The model's categories are not in strictly increasing order.");
		}
	}

	{
		size_t		nsplits = (size_t) m->ntrees * m->depth;
		size_t		nleaves = (size_t) m->ntrees << m->depth;
		size_t		tree_bytes = nsplits * (sizeof(int32) + sizeof(float4)) + nleaves * sizeof(float4);

		/* Format 3 has at least the interval's bin count after the trees. */
		if (has_interval ? r.len - r.pos < tree_bytes + sizeof(uint32) : r.len - r.pos != tree_bytes)
			corrupt(&r, "The model's size does not match its tree count and depth.");
		m->split_feature = palloc(sizeof(int32) * nsplits);
		m->split_value = palloc(sizeof(float4) * nsplits);
		m->leaf = palloc_extended(sizeof(float4) * nleaves, MCXT_ALLOC_HUGE);
		read_bytes(&r, m->split_feature, sizeof(int32) * nsplits);
		read_bytes(&r, m->split_value, sizeof(float4) * nsplits);
		read_bytes(&r, m->leaf, sizeof(float4) * nleaves);
		for (size_t i = 0; i < nsplits; i++)
			if (m->split_feature[i] < 0 || m->split_feature[i] >= NFEATURES ||
				!isfinite(m->split_value[i]))
				corrupt(&r, "A split names an unknown feature or a value that is not a finite number.");
		for (size_t i = 0; i < nleaves; i++)
			if (!isfinite(m->leaf[i]))
				corrupt(&r, "A leaf holds a value that is not a finite number.");
	}

	if (has_interval)
	{
		uint32		n;

		read_bytes(&r, &n, sizeof(n));
		if (n < 1 || n > MAX_INTERVAL_BINS)
			corrupt(&r, "The model's interval bin count is out of range.");
		if (r.len - r.pos != (n - 1) * sizeof(float8) + n * 2 * sizeof(float8))
			corrupt(&r, "The model's size does not match its interval bin count.");
		m->interval_bins = n;
		m->interval_edge = palloc(sizeof(float8) * n);
		m->interval_lo = palloc(sizeof(float8) * n);
		m->interval_hi = palloc(sizeof(float8) * n);
		for (uint32 b = 0; b + 1 < n; b++)
		{
			m->interval_edge[b] = read_finite(&r);
			if (b > 0 && !(m->interval_edge[b] > m->interval_edge[b - 1]))
				corrupt(&r, "The model's interval edges are not in strictly increasing order.");
		}
		for (uint32 b = 0; b < n; b++)
		{
			m->interval_lo[b] = read_finite(&r);
			m->interval_hi[b] = read_finite(&r);
			if (!(m->interval_lo[b] <= 0 && m->interval_lo[b] >= -MAX_LOG_SPREAD &&
				  m->interval_hi[b] >= 0 && m->interval_hi[b] <= MAX_LOG_SPREAD))
				corrupt(&r, "The model's interval bounds are out of range.");
		}
	}
	return m;
}


/*
 * colix.c - the sorted index of colix.h: a permutation of a numeric
 * column's rows by value, built by an LSD radix sort of order-preserving
 * 64-bit keys, and searched by binary searches that read the column
 * through it.  It knows nothing of segments or of the filter's syntax,
 * only of its bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bigmem.h"
#include "colix.h"

#define DIGIT 11			/* bits per radix pass */
#define BUCKETS (1u << DIGIT)
#define PASSES ((64 + DIGIT - 1) / DIGIT)

struct mv_colix {
	size_t n;
	int isfloat;
	uint32_t *perm;			/* rows, by ascending value */
};

/* An unsigned key ordered as the value: NaN last, -0.0 just below 0.0. */
static inline uint64_t fkey(double d)
{
	uint64_t u;

	if (isnan(d))
		return UINT64_MAX;
	memcpy(&u, &d, 8);
	return u >> 63 ? ~u : u | UINT64_C(1) << 63;
}

struct mv_colix *mv_colix_build(const void *vals, size_t n, int isfloat)
{
	const unsigned char *v = vals;
	struct mv_colix *x = NULL;
	struct mv_big sb = { 0 };
	uint64_t *k, *k2;
	uint32_t *r = NULL, *r2, *out;
	size_t (*hist)[BUCKETS] = NULL;
	size_t need = (n ? n : 1) * (2 * sizeof(*k) + sizeof(*r));

	if (n > MV_COLIX_ROWS_MAX)
		return NULL;
	/*
	 * The scratch (keys twice, rows once more: 20 bytes a row) in a
	 * bigmem buffer, which reuses recently freed memory instead of
	 * faulting in fresh pages: those faults were most of a build.
	 */
	x = calloc(1, sizeof(*x));
	r = malloc((n ? n : 1) * sizeof(*r));
	hist = calloc(PASSES, sizeof(*hist));
	if (!x || !r || !hist || mv_big_reserve(&sb, need) < 0)
		goto fail;
	mv_big_touch(&sb, need);
	k = (uint64_t *)sb.p;
	k2 = k + n;
	r2 = (uint32_t *)(k2 + n);
	out = r;
	for (size_t i = 0; i < n; i++) {
		uint64_t u;

		memcpy(&u, v + i * 8, 8);
		if (isfloat) {
			double d;

			memcpy(&d, &u, 8);
			u = fkey(d);
		} else {
			u ^= UINT64_C(1) << 63;
		}
		k[i] = u;
		out[i] = (uint32_t)i;
		for (int p = 0; p < PASSES; p++)
			hist[p][u >> (p * DIGIT) & (BUCKETS - 1)]++;
	}
	for (int p = 0; p < PASSES; p++) {
		size_t sum = 0, *h = hist[p];
		int shift = p * DIGIT;
		uint64_t *tk;
		uint32_t *tr;

		/* A digit all rows share moves nothing: skip its pass. */
		if (n && h[k[0] >> shift & (BUCKETS - 1)] == n)
			continue;
		for (unsigned b = 0; b < BUCKETS; b++) {
			size_t c = h[b];

			h[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++) {
			size_t d = h[k[i] >> shift & (BUCKETS - 1)]++;

			k2[d] = k[i];
			r2[d] = out[i];
		}
		tk = k;
		k = k2;
		k2 = tk;
		tr = out;
		out = r2;
		r2 = tr;
	}
	if (out != r)
		memcpy(r, out, n * sizeof(*r));
	mv_big_free(&sb, need, 1);
	free(hist);
	x->n = n;
	x->isfloat = isfloat;
	x->perm = r;
	return x;
fail:
	mv_big_free(&sb, 0, 0);
	free(r);
	free(hist);
	free(x);
	return NULL;
}

void mv_colix_free(struct mv_colix *x)
{
	if (!x)
		return;
	free(x->perm);
	free(x);
}

size_t mv_colix_bytes(const struct mv_colix *x)
{
	return sizeof(*x) + x->n * sizeof(*x->perm);
}

static inline int64_t at_i(const struct mv_colix *x, const void *vals,
			   size_t i)
{
	int64_t v;

	memcpy(&v, (const unsigned char *)vals + (size_t)x->perm[i] * 8, 8);
	return v;
}

static inline double at_f(const struct mv_colix *x, const void *vals,
			  size_t i)
{
	double v;

	memcpy(&v, (const unsigned char *)vals + (size_t)x->perm[i] * 8, 8);
	return v;
}

/*
 * The first place whose value is >= c (le 0) or > c (le 1).  For floats
 * a NaN is neither, and NaNs sort last, so the predicate still falls
 * from true to false once along the permutation.
 */
static size_t first_i(const struct mv_colix *x, const void *vals, int64_t c,
		      int le)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t v = at_i(x, vals, mid);

		if (le ? v <= c : v < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t first_f(const struct mv_colix *x, const void *vals, double c,
		      int le)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		double v = at_f(x, vals, mid);

		if (le ? v <= c : v < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Add the run of values in [lo, hi] (ints, or floats) to h. */
static void span_i(const struct mv_colix *x, const void *vals, int64_t lo,
		   int64_t hi, struct mv_colix_hits *h)
{
	size_t a = first_i(x, vals, lo, 0), b = first_i(x, vals, hi, 1);

	if (a < b && h->nspan < MV_COLIX_SPANS) {
		h->a[h->nspan] = (uint32_t)a;
		h->b[h->nspan++] = (uint32_t)b;
		h->n += b - a;
	}
}

static void span_f(const struct mv_colix *x, const void *vals, double lo,
		   double hi, struct mv_colix_hits *h)
{
	size_t a = first_f(x, vals, lo, 0), b = first_f(x, vals, hi, 1);

	if (a < b && h->nspan < MV_COLIX_SPANS) {
		h->a[h->nspan] = (uint32_t)a;
		h->b[h->nspan++] = (uint32_t)b;
		h->n += b - a;
	}
}

size_t mv_colix_find(const struct mv_colix *x, const void *vals,
		     const struct mv_filter_bound *b,
		     struct mv_colix_hits *h)
{
	h->n = 0;
	h->nspan = 0;
	if (b->kind == MV_BOUND_INT && !x->isfloat) {
		const int64_t *s = b->set;
		int64_t lo = b->ilo, hi = b->ihi;

		if (s && b->nset <= MV_COLIX_SPANS) {
			for (size_t i = 0; i < b->nset; i++)
				if (s[i] >= lo && s[i] <= hi)
					span_i(x, vals, s[i], s[i], h);
			return h->n;
		}
		if (s) {
			if (s[0] > lo)
				lo = s[0];
			if (s[b->nset - 1] < hi)
				hi = s[b->nset - 1];
		}
		if (lo <= hi)
			span_i(x, vals, lo, hi, h);
	} else if (b->kind == MV_BOUND_FLOAT && x->isfloat) {
		const double *s = b->set;
		double lo = b->flo, hi = b->fhi;

		if (s && b->nset <= MV_COLIX_SPANS) {
			for (size_t i = 0; i < b->nset; i++)
				if (s[i] >= lo && s[i] <= hi)
					span_f(x, vals, s[i], s[i], h);
			return h->n;
		}
		if (s) {
			if (s[0] > lo)
				lo = s[0];
			if (s[b->nset - 1] < hi)
				hi = s[b->nset - 1];
		}
		if (lo <= hi)
			span_f(x, vals, lo, hi, h);
	}
	return h->n;
}

void mv_colix_mark(const struct mv_colix *x, const struct mv_colix_hits *h,
		   uint8_t *bits)
{
	for (int s = 0; s < h->nspan; s++)
		for (uint32_t i = h->a[s]; i < h->b[s]; i++) {
			uint32_t r = x->perm[i];

			bits[r / 8] |= (uint8_t)(1u << r % 8);
		}
}

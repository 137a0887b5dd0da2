/*
 * colix.c - the sorted index of colix.h: a permutation of a column's
 * rows by value, built by an LSD radix sort of order-preserving 64-bit
 * keys (a string's first 8 bytes, then a comparison sort where those tie),
 * and searched by binary searches that read the column through it.  It
 * knows nothing of segments or of the filter's syntax, only of its
 * bounds.
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
	enum mv_colix_type type;
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

/* A string's first 8 bytes, big-endian, zero-padded: its order's key. */
static inline uint64_t skey(struct mv_filter_str s)
{
	uint64_t u = 0;

	for (size_t i = 0; i < 8; i++)
		u = u << 8 | (i < s.len ? (unsigned char)s.p[i] : 0);
	return u;
}

struct scol {
	const unsigned char *vals;
	const uint64_t *off;
};

static int row_cmp(const void *a, const void *b, void *arg)
{
	const struct scol *c = arg;

	return mv_filter_str_cmp(
		mv_filter_str_at(c->vals, c->off, *(const uint32_t *)a),
		mv_filter_str_at(c->vals, c->off, *(const uint32_t *)b));
}

/*
 * Strings sorted by their keys: sort each run of equal keys that holds
 * more than one value (equal keys may still differ past byte 8 or in
 * length) by a comparison sort.
 */
static void str_runs(const unsigned char *vals, const uint64_t *off,
		     const uint64_t *k, uint32_t *perm, size_t n)
{
	struct scol c = { vals, off };

	for (size_t i = 0, j; i < n; i = j) {
		struct mv_filter_str s0 = mv_filter_str_at(vals, off, perm[i]);
		int same = 1;

		for (j = i + 1; j < n && k[j] == k[i]; j++)
			same &= !mv_filter_str_cmp(
				mv_filter_str_at(vals, off, perm[j]), s0);
		if (!same)
			qsort_r(perm + i, j - i, sizeof(*perm), row_cmp, &c);
	}
}

struct mv_colix *mv_colix_build(const void *vals, const uint64_t *off,
				size_t n, enum mv_colix_type type)
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

		if (type == MV_COLIX_STR) {
			u = skey(mv_filter_str_at(v, off, i));
		} else if (type == MV_COLIX_FLOAT) {
			double d;

			memcpy(&d, v + i * 8, 8);
			u = fkey(d);
		} else {
			memcpy(&u, v + i * 8, 8);
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
	if (type == MV_COLIX_STR)
		str_runs(v, off, k, r, n);
	mv_big_free(&sb, need, 1);
	free(hist);
	x->n = n;
	x->type = type;
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

/* A value of any of the three types, to compare with a row's. */
struct key {
	int64_t i;
	double f;
	struct mv_filter_str s;
};

/* Row perm[pos]'s value as a key. */
static inline void row_key(const struct mv_colix *x, const void *vals,
			   const uint64_t *off, size_t pos, struct key *k)
{
	const unsigned char *v = vals;
	size_t r = x->perm[pos];

	if (x->type == MV_COLIX_STR)
		k->s = mv_filter_str_at(v, off, r);
	else if (x->type == MV_COLIX_FLOAT)
		memcpy(&k->f, v + r * 8, 8);
	else
		memcpy(&k->i, v + r * 8, 8);
}

/* a against b in x's order; a NaN a is above everything, as it sorts. */
static inline int kcmp(enum mv_colix_type t, const struct key *a,
		       const struct key *b)
{
	if (t == MV_COLIX_STR)
		return mv_filter_str_cmp(a->s, b->s);
	if (t == MV_COLIX_FLOAT)
		return isnan(a->f) || a->f > b->f ? 1 : a->f < b->f ? -1 : 0;
	return a->i > b->i ? 1 : a->i < b->i ? -1 : 0;
}

/* The first place whose value is >= c (le 0) or > c (le 1). */
static size_t first(const struct mv_colix *x, const void *vals,
		    const uint64_t *off, const struct key *c, int le)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct key v;
		int k;

		row_key(x, vals, off, mid, &v);
		k = kcmp(x->type, &v, c);
		if (le ? k <= 0 : k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Add the run of values from lo (NULL: the least; lo_ex: above it) to hi
 * (NULL: the largest; hi_ex: below it) to h.
 */
static void span(const struct mv_colix *x, const void *vals,
		 const uint64_t *off, const struct key *lo, int lo_ex,
		 const struct key *hi, int hi_ex, struct mv_colix_hits *h)
{
	size_t a = lo ? first(x, vals, off, lo, lo_ex) : 0;
	size_t b = hi ? first(x, vals, off, hi, !hi_ex) : x->n;

	if (a < b && h->nspan < MV_COLIX_SPANS) {
		h->a[h->nspan] = (uint32_t)a;
		h->b[h->nspan++] = (uint32_t)b;
		h->n += b - a;
	}
}

/* Set value i of b as a key; 1 when it lies in b's interval. */
static int set_key(const struct mv_filter_bound *b, size_t i, struct key *k)
{
	if (b->kind == MV_BOUND_STR)
		k->s = ((const struct mv_filter_str *)b->set)[i];
	else if (b->kind == MV_BOUND_FLOAT)
		k->f = ((const double *)b->set)[i];
	else
		k->i = ((const int64_t *)b->set)[i];
	return mv_filter_bound_set_in(b, i);
}

size_t mv_colix_find(const struct mv_colix *x, const void *vals,
		     const uint64_t *off, const struct mv_filter_bound *b,
		     struct mv_colix_hits *h)
{
	enum mv_colix_type t = x->type;
	struct key lo, hi, k;
	int has_lo = 1, has_hi = 1, lo_ex = 0, hi_ex = 0;

	h->n = 0;
	h->nspan = 0;
	if (!(b->kind == MV_BOUND_STR && t == MV_COLIX_STR) &&
	    !(b->kind == MV_BOUND_INT && t == MV_COLIX_INT) &&
	    !(b->kind == MV_BOUND_FLOAT && t == MV_COLIX_FLOAT))
		return 0;
	if (b->set && b->nset <= MV_COLIX_SPANS) {
		for (size_t i = 0; i < b->nset; i++)
			if (set_key(b, i, &k))
				span(x, vals, off, &k, 0, &k, 0, h);
		return h->n;
	}
	/* The interval, within a long set's least and largest values. */
	lo.i = b->ilo;
	hi.i = b->ihi;
	lo.f = b->flo;
	hi.f = b->fhi;
	if (t == MV_COLIX_STR) {
		lo.s = b->slo;
		hi.s = b->shi;
		has_lo = b->has_slo;
		has_hi = b->has_shi;
		lo_ex = !b->slo_incl;
		hi_ex = !b->shi_incl;
	}
	if (b->set && b->nset) {
		set_key(b, 0, &k);
		if (!has_lo || kcmp(t, &k, &lo) > 0 ||
		    (!kcmp(t, &k, &lo) && lo_ex)) {
			lo = k;
			has_lo = 1;
			lo_ex = 0;
		}
		set_key(b, b->nset - 1, &k);
		if (!has_hi || kcmp(t, &k, &hi) < 0 ||
		    (!kcmp(t, &k, &hi) && hi_ex)) {
			hi = k;
			has_hi = 1;
			hi_ex = 0;
		}
	}
	span(x, vals, off, has_lo ? &lo : NULL, lo_ex, has_hi ? &hi : NULL,
	     hi_ex, h);
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

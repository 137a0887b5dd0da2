/*
 * colix.h - a sorted index over one numeric column of a block of rows (a
 * segment's): the row numbers ordered by value, so that the rows whose
 * value lies in a filter's bound (filter.h, mv_filter_bounds) are found
 * by binary searches instead of a scan of the column.  It keeps no copy
 * of the values (4 bytes a row, the permutation, and nothing else): the
 * searches read the column through it, so the column must be the one it
 * was built from, unchanged (a sealed segment's never changes).  Not
 * here: when to build or use one (libmv/engine/asof.c), the filter.
 */
#ifndef MV_COLIX_H
#define MV_COLIX_H

#include <stddef.h>
#include <stdint.h>
#include "filter.h"

struct mv_colix;

/* The most rows an index takes (row numbers are uint32). */
#define MV_COLIX_ROWS_MAX UINT32_MAX

enum mv_colix_type { MV_COLIX_INT, MV_COLIX_FLOAT, MV_COLIX_STR };

/*
 * An index over the n rows of a column as filter.h's mv_filter_rows holds
 * it: vals int64_t[n] (MV_COLIX_INT: int64, bool, ids), double[n]
 * (MV_COLIX_FLOAT: NaN values sort last and are never in a bound), or the
 * bytes of a string column with off[n] (MV_COLIX_STR: memcmp order, the
 * shorter first; off is NULL for the others).  Numbers are sorted by a
 * radix sort in O(n), with 20 bytes a row of scratch (bigmem.h, so that
 * it comes from recently freed memory when it can) freed before it
 * returns; strings by their first 8 bytes the same way, then each run
 * that shares them and is not all one value by a comparison sort.  NULL
 * when out of memory or n > MV_COLIX_ROWS_MAX.  Free with mv_colix_free.
 */
struct mv_colix *mv_colix_build(const void *vals, const uint64_t *off,
				size_t n, enum mv_colix_type type);
void mv_colix_free(struct mv_colix *x);

/* The bytes x holds (for memory_limit's count). */
size_t mv_colix_bytes(const struct mv_colix *x);

/*
 * At most this many runs of the permutation: a longer in-list is bounded
 * by its least and largest values instead.
 */
#define MV_COLIX_SPANS 64

/* The rows of a bound, as runs [a, b) of the permutation. */
struct mv_colix_hits {
	size_t n;			/* rows in all */
	int nspan;
	uint32_t a[MV_COLIX_SPANS], b[MV_COLIX_SPANS];
};

/*
 * Find the rows of x whose value (in vals and off, the column x was built
 * from) lies in bound b (MV_BOUND_INT for an int index, MV_BOUND_FLOAT for
 * a float one, MV_BOUND_STR for a string one; any other pairing finds
 * nothing) into h: binary searches, a few per value of an in-list.
 * Returns h->n.  x is only read: any number of threads may search one
 * index.
 */
size_t mv_colix_find(const struct mv_colix *x, const void *vals,
		     const uint64_t *off, const struct mv_filter_bound *b,
		     struct mv_colix_hits *h);

/* Set the bits of h's rows in bits (a bitmap as filter.h's). */
void mv_colix_mark(const struct mv_colix *x, const struct mv_colix_hits *h,
		   uint8_t *bits);

#endif

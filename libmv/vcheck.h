/*
 * vcheck.h - the vectors mv can search: finite, and with a squared norm of
 * at most MV_NORM2_MAX, so that no squared norm, squared L2 distance or
 * inner product between two of them overflows float (FAISS computes them
 * in float, and gives undefined labels, aborts or crashes when they do).
 * Inserted rows and queries are checked alike.
 */
#ifndef MV_VCHECK_H
#define MV_VCHECK_H

#include "mv.h"

/*
 * ||x||^2 <= 1e37 for x and y gives ||x - y||^2 <= 2||x||^2 + 2||y||^2
 * and |x.y| <= ||x|| ||y||, both far below FLT_MAX (3.4e38), with room
 * for rounding: a norm up to about 3.16e18.
 */
#define MV_NORM2_MAX 1e37f

/*
 * Check n vectors of dim floats: -1 if all are searchable, else the
 * 0-based number of the first that is not, with *why saying why ("NaN or
 * Inf", or "values too large (squared norm above 1e37)").
 */
long mv_vcheck(const float *v, size_t n, uint32_t dim, const char **why);

#endif

/*
 * vcheck.c - see vcheck.h.  One pass of multiply-adds per vector, in eight
 * independent sums that the compiler turns into SIMD; float overflow (to
 * Inf) and NaN both fail the single comparison, so the reason is looked
 * for only in a vector that failed.
 */
#include <math.h>
#include "vcheck.h"

static float norm2(const float *x, uint32_t dim)
{
	float acc[8] = { 0 }, s;
	uint32_t i = 0;

	for (; i + 8 <= dim; i += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += x[i + j] * x[i + j];
	for (; i < dim; i++)
		acc[0] += x[i] * x[i];
	s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	    ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	return s;
}

long mv_vcheck(const float *v, size_t n, uint32_t dim, const char **why)
{
	for (size_t r = 0; r < n; r++) {
		const float *x = v + r * dim;

		if (norm2(x, dim) <= MV_NORM2_MAX)
			continue;
		*why = "values too large (squared norm above 1e37)";
		for (uint32_t i = 0; i < dim; i++)
			if (!isfinite(x[i]))
				*why = "NaN or Inf";
		return (long)r;
	}
	return -1;
}

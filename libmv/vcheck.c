/*
 * vcheck.c - see vcheck.h.  The insert path runs it over every vector, so
 * the common case is one branch-free integer pass as cheap as a NaN
 * check: every magnitude of the block, from its bits (a finite float's
 * magnitude orders like its bits; NaN and Inf are above all), against the
 * value v with dim * v^2 <= MV_NORM2_MAX.  Only a block that fails it is
 * checked vector by vector, with the squared norm: float overflow (to Inf)
 * and NaN both fail its one comparison, and the reason is looked for only
 * in a vector that failed.
 */
#include <math.h>
#include <string.h>
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
	const uint32_t *u = (const uint32_t *)(const void *)v;
	uint32_t over = 0, lane[8] = { 0 };
	size_t total = n * dim, i = 0;
	float flim = sqrtf(MV_NORM2_MAX / (float)(dim ? dim : 1));
	int32_t lim;

	memcpy(&lim, &flim, sizeof(lim));
	/* Signed compares of the 31 magnitude bits (SSE has those), eight
	 * lanes a step so that -O2's cheapest vectoriser takes it. */
	for (; i + 8 <= total; i += 8)
		for (int j = 0; j < 8; j++)
			lane[j] |= (uint32_t)((int32_t)(u[i + j] & 0x7fffffffu) >
					      lim);
	for (; i < total; i++)
		lane[0] |= (uint32_t)((int32_t)(u[i] & 0x7fffffffu) > lim);
	for (int j = 0; j < 8; j++)
		over |= lane[j];
	if (!over)
		return -1;
	for (size_t r = 0; r < n; r++) {
		const float *x = v + r * dim;

		if (norm2(x, dim) <= MV_NORM2_MAX)
			continue;
		*why = "values too large (squared norm above 1e37)";
		for (uint32_t e = 0; e < dim; e++)
			if (!isfinite(x[e]))
				*why = "NaN or Inf";
		return (long)r;
	}
	return -1;
}

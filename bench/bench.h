/*
 * bench.h - what the bench programs share: dying with a message, a
 * monotonic clock, reading a whole fvecs/ivecs file, quantiles.  Each
 * program defines `prog` (its name, for messages) after including this.
 */
#ifndef MV_BENCH_H
#define MV_BENCH_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *prog;

static inline void die(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s%s%s\n", prog, what, detail ? ": " : "",
		detail ? detail : "");
	exit(1);
}

static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A whole fvecs (or ivecs: same layout) file as n rows of *dim values. */
static inline void *read_vecs(const char *path, size_t *n, int *dim)
{
	FILE *f = fopen(path, "rb");
	long size;
	int32_t d;
	size_t rec, rows;
	uint32_t *v;

	if (!f)
		die("cannot open", path);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0)
		die("cannot seek", path);
	rewind(f);
	if (size < 4 || fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20)
		die("not an fvecs/ivecs file", path);
	rec = 4 + (size_t)d * 4;
	if ((size_t)size % rec)
		die("size is not a multiple of the record size", path);
	rows = (size_t)size / rec;
	v = malloc(rows * (size_t)d * 4 + 1);
	if (!v)
		die("out of memory", path);
	rewind(f);
	for (size_t i = 0; i < rows; i++) {
		int32_t di;

		if (fread(&di, 4, 1, f) != 1 ||
		    fread(v + i * (size_t)d, 4, (size_t)d, f) != (size_t)d)
			die("short read", path);
		if (di != d)
			die("mixed dimensions", path);
	}
	fclose(f);
	*n = rows;
	*dim = d;
	return v;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile of n values sorted with cmp_double. */
static inline double quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)ceil(q * (double)n);

	if (i > 0)
		i--;
	return v[i < n ? i : n - 1];
}

#endif

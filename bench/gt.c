/*
 * gt - exact ground truth for a base/query pair of fvecs files.
 *
 *   gt [-m l2|ip|cosine] [-k K] BASE.fvecs QUERY.fvecs GT.ivecs [GT_DIST.fvecs]
 *
 * For every query, the K nearest base rows (0-based ids), nearest first,
 * ties broken by the smaller id, computed in float64 (OpenBLAS dgemm; for
 * l2 the candidates are re-ranked by the direct sum of squared
 * differences).  GT.ivecs gets the ids; GT_DIST.fvecs, when given, the
 * distances as float32: squared L2 for l2, 1 - cos for cosine (both sides
 * normalised in float64), the inner product for ip (highest first).
 * Used by scripts/fetch-data.sh; stand-alone (libc, OpenBLAS, libm), so it
 * also builds without libmv:
 *
 *   cc -O2 -o bench/gt bench/gt.c -lopenblas -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum metric { L2, IP, COS };

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "gt: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(void)
{
	fputs("usage: gt [-m l2|ip|cosine] [-k K] BASE.fvecs QUERY.fvecs "
	      "GT.ivecs [GT_DIST.fvecs]\n", stderr);
	exit(64);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Read a whole fvecs file; returns n rows of *dim floats (malloc'ed). */
static float *read_fvecs(const char *path, size_t *n, int *dim)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("%s: cannot open", path);
	if (fseek(f, 0, SEEK_END) != 0)
		die("%s: cannot seek", path);
	long size = ftell(f);
	rewind(f);
	int32_t d;
	if (size < 4 || fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20)
		die("%s: not an fvecs file", path);
	size_t rec = 4 + (size_t)d * 4;
	if ((size_t)size % rec)
		die("%s: size is not a multiple of the record size", path);
	size_t rows = (size_t)size / rec;
	float *v = malloc(rows * (size_t)d * sizeof(float));
	if (!v)
		die("%s: out of memory", path);
	rewind(f);
	for (size_t i = 0; i < rows; i++) {
		int32_t di;
		if (fread(&di, 4, 1, f) != 1 ||
		    fread(v + i * d, 4, (size_t)d, f) != (size_t)d)
			die("%s: short read", path);
		if (di != d)
			die("%s: mixed dimensions", path);
	}
	fclose(f);
	*n = rows;
	*dim = d;
	return v;
}

struct hit {
	double s;		/* score: lower is better */
	int32_t id;
};

/* a worse than b: larger score, or same score and larger id */
static int worse(const struct hit *a, const struct hit *b)
{
	return a->s > b->s || (a->s == b->s && a->id > b->id);
}

/* Max-heap (worst on top) of at most cap hits. */
static void heap_push(struct hit *h, size_t *n, size_t cap, struct hit x)
{
	size_t i;
	if (*n < cap) {
		i = (*n)++;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!worse(&x, &h[p]))
				break;
			h[i] = h[p];
			i = p;
		}
		h[i] = x;
		return;
	}
	if (!worse(&h[0], &x))
		return;
	i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct hit *hm = &x;
		if (l < *n && worse(&h[l], hm)) {
			m = l;
			hm = &h[l];
		}
		if (r < *n && worse(&h[r], hm))
			m = r;
		if (m == i)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = x;
}

static int cmp_hit(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

int main(int argc, char **argv)
{
	enum metric m = L2;
	long k = 100;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			const char *s = argv[++i];
			if (!strcmp(s, "l2"))
				m = L2;
			else if (!strcmp(s, "ip"))
				m = IP;
			else if (!strcmp(s, "cosine"))
				m = COS;
			else
				usage();
		} else if (!strcmp(argv[i], "-k") && i + 1 < argc) {
			k = strtol(argv[++i], NULL, 10);
			if (k <= 0)
				usage();
		} else {
			usage();
		}
	}
	if (argc - i < 3 || argc - i > 4)
		usage();
	const char *bpath = argv[i], *qpath = argv[i + 1];
	const char *gpath = argv[i + 2], *dpath = argc - i == 4 ? argv[i + 3] : NULL;

	size_t nb, nq;
	int d, dq;
	float *bf = read_fvecs(bpath, &nb, &d);
	float *qf = read_fvecs(qpath, &nq, &dq);
	if (d != dq)
		die("%s: dimension differs from the base", qpath);
	if ((size_t)k > nb)
		k = (long)nb;

	double *b = malloc(nb * d * sizeof(double));
	double *bn = malloc(nb * sizeof(double));	/* |b|^2 */
	if (!b || !bn)
		die("%s", "out of memory");
	for (size_t r = 0; r < nb; r++) {
		double s = 0;
		for (int j = 0; j < d; j++) {
			b[r * d + j] = bf[r * d + j];
			s += b[r * d + j] * b[r * d + j];
		}
		bn[r] = s;
		if (m == COS) {
			double nr = sqrt(s);
			if (nr == 0)
				die("%s: zero vector, no cosine", bpath);
			for (int j = 0; j < d; j++)
				b[r * d + j] /= nr;
		}
	}

	const size_t QB = 128;
	double *q = malloc(QB * d * sizeof(double));
	double *c = malloc(QB * nb * sizeof(double));
	/* l2: a few spare candidates, re-ranked by the direct sum below */
	size_t cap = (size_t)k + (m == L2 ? 16 : 0);
	if (cap > nb)
		cap = nb;
	struct hit *h = malloc(cap * sizeof(*h));
	int32_t *out_id = malloc((size_t)k * sizeof(int32_t));
	float *out_d = malloc((size_t)k * sizeof(float));
	if (!q || !c || !h || !out_id || !out_d)
		die("%s", "out of memory");
	FILE *gf = fopen(gpath, "wb");
	if (!gf)
		die("%s: cannot create", gpath);
	FILE *df = NULL;
	if (dpath && !(df = fopen(dpath, "wb")))
		die("%s: cannot create", dpath);

	double t0 = now();
	for (size_t q0 = 0; q0 < nq; q0 += QB) {
		size_t qn = nq - q0 < QB ? nq - q0 : QB;
		for (size_t r = 0; r < qn; r++) {
			double s = 0;
			for (int j = 0; j < d; j++) {
				q[r * d + j] = qf[(q0 + r) * d + j];
				s += q[r * d + j] * q[r * d + j];
			}
			if (m == COS) {
				double nr = sqrt(s);
				if (nr == 0)
					die("%s: zero query vector, no cosine", qpath);
				for (int j = 0; j < d; j++)
					q[r * d + j] /= nr;
			}
		}
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn,
			    (int)nb, d, 1.0, q, d, b, d, 0.0, c, (int)nb);
		for (size_t r = 0; r < qn; r++) {
			const double *cr = c + r * nb;
			double qn2 = 0;
			for (int j = 0; j < d; j++)
				qn2 += q[r * d + j] * q[r * d + j];
			size_t hn = 0;
			for (size_t x = 0; x < nb; x++) {
				struct hit e;
				e.id = (int32_t)x;
				if (m == L2)
					e.s = qn2 + bn[x] - 2 * cr[x];
				else if (m == COS)
					e.s = 1 - cr[x];
				else
					e.s = -cr[x];
				heap_push(h, &hn, cap, e);
			}
			if (m == L2) {
				/* exact squared L2 of the winners, direct sum */
				for (size_t t = 0; t < hn; t++) {
					const float *bv = bf + (size_t)h[t].id * d;
					const float *qv = qf + (q0 + r) * d;
					double s = 0;
					for (int j = 0; j < d; j++) {
						double diff = (double)qv[j] - bv[j];
						s += diff * diff;
					}
					h[t].s = s;
				}
			}
			qsort(h, hn, sizeof(*h), cmp_hit);
			for (size_t t = 0; t < (size_t)k; t++) {
				out_id[t] = h[t].id;
				out_d[t] = (float)(m == IP ? -h[t].s : h[t].s);
			}
			int32_t kk = (int32_t)k;
			if (fwrite(&kk, 4, 1, gf) != 1 ||
			    fwrite(out_id, 4, (size_t)k, gf) != (size_t)k)
				die("%s: write error", gpath);
			if (df && (fwrite(&kk, 4, 1, df) != 1 ||
				   fwrite(out_d, 4, (size_t)k, df) != (size_t)k))
				die("%s: write error", dpath);
		}
	}
	if (fclose(gf) != 0 || (df && fclose(df) != 0))
		die("write error: %s", strerror(errno));
	fprintf(stderr, "gt: %zu queries x %zu base, dim %d, k %ld: %.1f s\n",
		nq, nb, d, k, now() - t0);
	free(bf);
	free(qf);
	free(b);
	free(bn);
	free(q);
	free(c);
	free(h);
	free(out_id);
	free(out_d);
	return 0;
}

/*
 * faiss_flat - the in-process FAISS exact-search baseline for mv-search.
 *
 *   faiss_flat [--metric l2|ip|cosine] [-k K] [--gt GT.ivecs] [--tsv OUT]
 *              [--nq N] [--repeat R] BASE.fvecs QUERY.fvecs
 *
 * Builds an IndexFlatL2 (l2) or IndexFlatIP (ip; cosine normalises base and
 * queries first) through the FAISS C API, adds the base, and times only
 * faiss_Index_search of all queries as one batch (best of R runs).  Prints
 * "key<TAB>value" lines on stdout: sizes, threads, add_s, search_s, qps and,
 * with --gt, recall@K (the fraction of the true top K found, ground truth
 * ids 0-based = row numbers of BASE).  --tsv writes the hits like mv-search:
 * query_no, rank (from 1), id, distance (%.9g; squared L2 for l2, the
 * similarity for ip and cosine), so bench/recall can check either output.
 * Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS as for the daemon; run
 * with OMP_WAIT_POLICY=PASSIVE.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include "bench.h"

static const char *prog = "faiss_flat";

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [--metric l2|ip|cosine] [-k K] [--gt GT.ivecs] "
		"[--tsv OUT]\n"
		"       [--nq N] [--repeat R] BASE.fvecs QUERY.fvecs\n", prog);
	exit(rc);
}

/* A whole fvecs (or ivecs: same layout) file as n rows of *dim values. */
static void normalise(float *x, size_t n, int d)
{
	for (size_t i = 0; i < n; i++) {
		float *r = x + i * (size_t)d;
		double s = 0;
		for (int j = 0; j < d; j++)
			s += (double)r[j] * r[j];
		if (s > 0) {
			double inv = 1.0 / sqrt(s);
			for (int j = 0; j < d; j++)
				r[j] = (float)(r[j] * inv);
		}
	}
}

static void check(int rc, const char *what)
{
	if (rc) {
		const char *e = faiss_get_last_error();
		die(what, e ? e : "FAISS error");
	}
}

int main(int argc, char **argv)
{
	const char *metric = "l2", *gtpath = NULL, *tsvpath = NULL;
	long k = 10, nqmax = -1, repeat = 1;
	int i;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!v)
			usage(64);
		if (!strcmp(a, "--metric") || !strcmp(a, "-m"))
			metric = v;
		else if (!strcmp(a, "-k"))
			k = strtol(v, NULL, 10);
		else if (!strcmp(a, "--gt"))
			gtpath = v;
		else if (!strcmp(a, "--tsv"))
			tsvpath = v;
		else if (!strcmp(a, "--nq"))
			nqmax = strtol(v, NULL, 10);
		else if (!strcmp(a, "--repeat"))
			repeat = strtol(v, NULL, 10);
		else
			usage(64);
		i++;
	}
	if (argc - i != 2 || k <= 0 || repeat <= 0)
		usage(64);
	int l2 = !strcmp(metric, "l2"), ip = !strcmp(metric, "ip");
	int cosine = !strcmp(metric, "cosine");
	if (!l2 && !ip && !cosine)
		usage(64);

	size_t nb, nq;
	int d, dq;
	float *xb = read_vecs(argv[i], &nb, &d);
	float *xq = read_vecs(argv[i + 1], &nq, &dq);
	if (d != dq)
		die("query dimension differs from the base", argv[i + 1]);
	if (nqmax >= 0 && (size_t)nqmax < nq)
		nq = (size_t)nqmax;
	if (cosine) {
		normalise(xb, nb, d);
		normalise(xq, nq, d);
	}

	FaissIndex *index = NULL;
	if (l2)
		check(faiss_IndexFlatL2_new_with(&index, d), "IndexFlatL2");
	else
		check(faiss_IndexFlatIP_new_with(&index, d), "IndexFlatIP");
	double t0 = now();
	check(faiss_Index_add(index, (idx_t)nb, xb), "add");
	double add_s = now() - t0;

	float *dist = malloc(nq * (size_t)k * sizeof(float));
	idx_t *lab = malloc(nq * (size_t)k * sizeof(idx_t));
	if (!dist || !lab)
		die("out of memory", NULL);
	double best = 1e300;
	for (long r = 0; r < repeat; r++) {
		t0 = now();
		check(faiss_Index_search(index, (idx_t)nq, xq, (idx_t)k, dist, lab),
		      "search");
		double t = now() - t0;
		if (t < best)
			best = t;
	}

	printf("base\t%zu\nqueries\t%zu\ndim\t%d\nmetric\t%s\nk\t%ld\n",
	       nb, nq, d, metric, k);
	printf("omp_threads\t%d\nopenblas_threads\t%d\n", omp_get_max_threads(),
	       openblas_get_num_threads());
	printf("add_s\t%.3f\nsearch_s\t%.3f\nqps\t%.1f\n", add_s, best,
	       nq / best);

	if (gtpath) {
		size_t ng;
		int gk;
		int32_t *gt = read_vecs(gtpath, &ng, &gk);
		if (ng < nq)
			die("ground truth has fewer rows than queries", gtpath);
		if (gk < k)
			die("ground truth has fewer than k neighbours", gtpath);
		size_t hits = 0;
		for (size_t q = 0; q < nq; q++)
			for (long a = 0; a < k; a++)
				for (long b = 0; b < k; b++)
					if (lab[q * k + a] >= 0 &&
					    lab[q * k + a] == gt[q * (size_t)gk + b]) {
						hits++;
						break;
					}
		printf("recall@%ld\t%.6f\n", k, (double)hits / ((double)nq * k));
		free(gt);
	}

	if (tsvpath) {
		FILE *f = strcmp(tsvpath, "-") ? fopen(tsvpath, "w") : stdout;
		if (!f)
			die("cannot create", tsvpath);
		for (size_t q = 0; q < nq; q++)
			for (long a = 0; a < k; a++)
				if (lab[q * k + a] >= 0)
					fprintf(f, "%zu\t%ld\t%lld\t%.9g\n", q, a + 1,
						(long long)lab[q * k + a],
						dist[q * k + a]);
		if (ferror(f) || (f != stdout && fclose(f) != 0))
			die("write error", tsvpath);
	}

	faiss_Index_free(index);
	free(xb);
	free(xq);
	free(dist);
	free(lab);
	return 0;
}

/*
 * latency - single-query search latency through mv's client library over
 * one persistent connection (issue 3).
 *
 *   latency [-a ADDR] [-k K] [-n N] [-p PARAMS] [--warmup W] [--gt GT.ivecs]
 *           NAME QUERY.fvecs
 *
 * Connects once (mv_client_connect: -a, else $MV_ADDR, else the embedded
 * node's socket), asks DESCRIBE for the dimension, then sends the first N
 * queries (default all) one at a time: mv_client_search with nq = 1 and
 * PARAMS ("ef=64", "nprobe=16", ...), each call timed with CLOCK_MONOTONIC
 * from before the request is written to after the reply is read.  W
 * queries (default 200, not counted) warm the connection and the index up
 * first.  Queries are sent as read (mv-noded normalises them for cosine).
 *
 * Prints "key<TAB>value" lines: queries, k, params, median_us, p90_us,
 * p99_us, mean_us, qps (N / the sum of the call times) and, with --gt,
 * recall (the fraction of the true top K found; the collection's ids must
 * be the base rows, as bench/index.sh inserts them).
 * Exit 0, or the sysexits status of the failing call; 64 on usage.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "bench.h"

static const char *prog = "latency";

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [-a ADDR] [-k K] [-n N] [-p PARAMS] [--warmup W] "
		"[--gt GT.ivecs]\n"
		"       NAME QUERY.fvecs\n", prog);
	exit(rc);
}

/* A whole fvecs (or ivecs: same layout) file as n rows of *dim values. */
/* The q-quantile (0..1) of sorted v[n], nearest rank. */
int main(int argc, char **argv)
{
	const char *addr = NULL, *params = NULL, *gtpath = NULL;
	long k = 10, nmax = -1, warmup = 200;
	struct mv_err err = { 0 };
	struct mv_client *c;
	struct mv_coll_info info;
	int i, rc;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!v)
			usage(64);
		if (!strcmp(a, "-a"))
			addr = v;
		else if (!strcmp(a, "-k"))
			k = strtol(v, NULL, 10);
		else if (!strcmp(a, "-n"))
			nmax = strtol(v, NULL, 10);
		else if (!strcmp(a, "-p") || !strcmp(a, "--params"))
			params = *v ? v : NULL;
		else if (!strcmp(a, "--warmup"))
			warmup = strtol(v, NULL, 10);
		else if (!strcmp(a, "--gt"))
			gtpath = v;
		else
			usage(64);
		i++;
	}
	if (argc - i != 2 || k <= 0 || warmup < 0)
		usage(64);
	const char *name = argv[i], *qpath = argv[i + 1];

	size_t nq;
	int d;
	float *xq = read_vecs(qpath, &nq, &d);

	if (nmax >= 0 && (size_t)nmax < nq)
		nq = (size_t)nmax;
	if (nq == 0)
		die("no queries", qpath);

	c = mv_client_connect(addr, &err);
	if (!c) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return mv_exit_code(err.code);
	}
	rc = mv_client_describe(c, name, &info, &err);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		mv_client_free(c);
		return mv_exit_code(rc);
	}
	if ((int)info.dim != d)
		die("query dimension differs from the collection's", qpath);

	int64_t *ids = malloc(nq * (size_t)k * sizeof(int64_t));
	float *dist = malloc((size_t)k * sizeof(float));
	double *lat = malloc(nq * sizeof(double)), tsum = 0;

	if (!ids || !dist || !lat)
		die("out of memory", NULL);
	for (long w = 0; w < warmup; w++) {
		rc = mv_client_search(c, name, info.dim, (size_t)k, 1,
				      xq + (size_t)(w % (long)nq) * d, params,
				      ids, dist, NULL, NULL, &err);
		if (rc < 0)
			goto fail;
	}
	for (size_t q = 0; q < nq; q++) {
		double t0 = now();

		rc = mv_client_search(c, name, info.dim, (size_t)k, 1,
				      xq + q * d, params, ids + q * k, dist,
				      NULL, NULL, &err);
		lat[q] = now() - t0;
		if (rc < 0)
			goto fail;
		tsum += lat[q];
	}
	mv_client_free(c);
	qsort(lat, nq, sizeof(double), cmp_double);
	printf("queries\t%zu\nk\t%ld\nparams\t%s\n", nq, k,
	       params ? params : "-");
	printf("median_us\t%.1f\np90_us\t%.1f\np99_us\t%.1f\nmean_us\t%.1f\n"
	       "qps\t%.1f\n", quantile(lat, nq, 0.5) * 1e6,
	       quantile(lat, nq, 0.9) * 1e6, quantile(lat, nq, 0.99) * 1e6,
	       tsum / nq * 1e6, nq / tsum);
	if (gtpath) {
		size_t ng, hits = 0;
		int gk;
		int32_t *gt = read_vecs(gtpath, &ng, &gk);

		if (ng < nq || gk < k)
			die("ground truth too small for these queries", gtpath);
		for (size_t q = 0; q < nq; q++)
			for (long a = 0; a < k; a++) {
				int64_t l = ids[q * k + a];

				if (l < 0)
					continue;
				for (long b = 0; b < k; b++)
					if (l == gt[q * (size_t)gk + b]) {
						hits++;
						break;
					}
			}
		printf("recall\t%.4f\n", (double)hits / ((double)nq * k));
		free(gt);
	}
	free(xq);
	free(ids);
	free(dist);
	free(lat);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", prog, err.msg);
	mv_client_free(c);
	return mv_exit_code(rc);
}

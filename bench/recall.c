/*
 * recall - recall@K of search results against exact ground truth.
 *
 *   recall [-k K] [--metric l2|ip|cosine] [--tol T] [--offset N] [--nq N]
 *          RESULTS.tsv GT.ivecs [GT_DIST.fvecs]
 *
 * RESULTS.tsv is mv-search's output (or bench/faiss_flat --tsv):
 * query_no<TAB>rank<TAB>id<TAB>distance[<TAB>fields...], "-" for stdin.
 * Hits with rank <= K count; ids are compared with the ground truth's
 * 0-based base rows after subtracting --offset (for server-assigned ids that
 * do not start at 0).  The queries are the ground truth's rows (or the
 * first --nq).
 *
 * With GT_DIST.fvecs, a result id outside the true top K whose distance is
 * within T (default 1e-5; relative when the K-th true distance exceeds 1)
 * of the K-th true distance is a tie, as good as the neighbour it replaced.
 * mv-search prints the cosine SIMILARITY (higher is better) while
 * groundtruth_dist.fvecs holds the cosine distance 1 - cos, so with
 * --metric cosine the printed value is converted first; l2 (squared) and ip
 * are compared as printed.
 *
 * Prints "key<TAB>value" lines: queries, k, hits, misses, recall@K, and
 * with distances ties and recall@K_ties ((hits + ties) / (queries * K)).
 * Exit 0, 1 on bad input, 64 on usage.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static const char *prog = "recall";

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [-k K] [--metric l2|ip|cosine] [--tol T] "
		"[--offset N] [--nq N]\n"
		"       RESULTS.tsv GT.ivecs [GT_DIST.fvecs]\n", prog);
	exit(rc);
}

int main(int argc, char **argv)
{
	long k = 10, nqmax = -1;
	long long offset = 0;
	double tol = 1e-5;
	const char *metric = "l2";
	int i;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!v)
			usage(64);
		if (!strcmp(a, "-k"))
			k = strtol(v, NULL, 10);
		else if (!strcmp(a, "--metric") || !strcmp(a, "-m"))
			metric = v;
		else if (!strcmp(a, "--tol"))
			tol = strtod(v, NULL);
		else if (!strcmp(a, "--offset"))
			offset = strtoll(v, NULL, 10);
		else if (!strcmp(a, "--nq"))
			nqmax = strtol(v, NULL, 10);
		else
			usage(64);
		i++;
	}
	int cosine = !strcmp(metric, "cosine");
	if (!cosine && strcmp(metric, "l2") && strcmp(metric, "ip"))
		usage(64);
	if (argc - i < 2 || argc - i > 3 || k <= 0 || tol < 0)
		usage(64);
	const char *rpath = argv[i], *gpath = argv[i + 1];
	const char *dpath = argc - i == 3 ? argv[i + 2] : NULL;

	size_t nq, nd = 0;
	int gk, dk = 0;
	int32_t *gt = read_vecs(gpath, &nq, &gk);
	float *gd = dpath ? read_vecs(dpath, &nd, &dk) : NULL;
	if (gk < k)
		die("ground truth has fewer than k neighbours", gpath);
	if (gd && (nd != nq || dk != gk))
		die("does not match the ground truth ids", dpath);
	if (nqmax >= 0 && (size_t)nqmax < nq)
		nq = (size_t)nqmax;

	/* hits of each query: ids and distances, by rank */
	long long *ids = malloc(nq * (size_t)k * sizeof(*ids));
	double *dist = malloc(nq * (size_t)k * sizeof(*dist));
	unsigned char *seen = calloc(nq * (size_t)k, 1);
	if (!ids || !dist || !seen)
		die("out of memory", NULL);

	FILE *f = strcmp(rpath, "-") ? fopen(rpath, "r") : stdin;
	if (!f)
		die(strerror(errno), rpath);
	char line[4096];
	unsigned long ln = 0;
	while (fgets(line, sizeof line, f)) {
		ln++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *p = line, *e;
		unsigned long long q = strtoull(p, &e, 10);
		long rank = 0;
		long long id = 0;
		double dv = 0;
		int ok = e != p && *e == '\t';
		if (ok) {
			rank = strtol(p = e + 1, &e, 10);
			ok = e != p && *e == '\t' && rank >= 1;
		}
		if (ok) {
			id = strtoll(p = e + 1, &e, 10);
			ok = e != p && *e == '\t';
		}
		if (ok) {
			dv = strtod(p = e + 1, &e);
			ok = e != p && (*e == '\t' || *e == '\n' || !*e);
		}
		if (!ok) {
			fprintf(stderr, "%s: %s:%lu: not query_no<TAB>rank<TAB>id"
				"<TAB>distance\n", prog, rpath, ln);
			return 1;
		}
		if (q >= nq) {
			if (nqmax >= 0)
				continue;
			fprintf(stderr, "%s: %s:%lu: query %llu beyond the %zu "
				"of the ground truth\n", prog, rpath, ln, q, nq);
			return 1;
		}
		if (rank > k)
			continue;
		size_t s = q * (size_t)k + (size_t)(rank - 1);
		if (seen[s]) {
			fprintf(stderr, "%s: %s:%lu: query %llu has rank %ld "
				"twice\n", prog, rpath, ln, q, rank);
			return 1;
		}
		seen[s] = 1;
		ids[s] = id - offset;
		dist[s] = cosine ? 1.0 - dv : dv;
	}
	if (ferror(f))
		die("read error", rpath);
	if (f != stdin)
		fclose(f);

	size_t hits = 0, misses = 0, ties = 0, short_q = 0;
	for (size_t q = 0; q < nq; q++) {
		const int32_t *g = gt + q * (size_t)gk;
		int is_short = 0;
		for (long a = 0; a < k; a++) {
			size_t s = q * (size_t)k + (size_t)a;
			if (!seen[s]) {
				misses++;
				is_short = 1;
				continue;
			}
			int found = 0;
			for (long b = 0; b < k && !found; b++)
				found = ids[s] == g[b];
			if (found) {
				hits++;
				continue;
			}
			misses++;
			if (gd) {
				double last = gd[q * (size_t)gk + (size_t)(k - 1)];
				double scale = fabs(last) > 1 ? fabs(last) : 1;
				if (fabs(dist[s] - last) <= tol * scale)
					ties++;
			}
		}
		short_q += is_short;
	}
	double total = (double)nq * (double)k;
	printf("queries\t%zu\nk\t%ld\nhits\t%zu\nmisses\t%zu\n", nq, k, hits,
	       misses);
	if (short_q)
		printf("queries_short\t%zu\n", short_q);
	printf("recall@%ld\t%.6f\n", k, hits / total);
	if (gd)
		printf("ties\t%zu\nrecall@%ld_ties\t%.6f\n", ties, k,
		       (hits + ties) / total);
	free(gt);
	free(gd);
	free(ids);
	free(dist);
	free(seen);
	return 0;
}

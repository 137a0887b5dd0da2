/*
 * asof - the cost of --as-of (issue 8) through a running mv-noded: QPS of
 * a plain search, of one as of the latest flush (which must cost at most
 * 5% more: it takes the plain path) and of one as of an older flush (the
 * visibility bitmaps), in the same run.
 *
 *   asof [-a ADDR] [--rows N] [--nq Q] [--types LIST] [--ef E] [--reps R]
 *        BASE.fvecs QUERY.fvecs
 *
 * Takes the first N base rows (default 100000) and Q queries (default
 * 200), creates the collection abench (cosine) and inserts the rows in
 * four flushes, then a fifth flush deletes every 100th row of the first.
 * For "exact" (no index) and each index type of LIST (default "HNSW32",
 * searched at ef E, default 64): SEARCH of all queries in one request,
 * the three kinds taking turns (in a rotating order), best of R rounds
 * (default 7: the machine is shared).  Prints a Markdown table: index, kind, QPS, QPS / plain.
 * With --scan PAGE instead: an export by SCAN in pages of PAGE rows (what
 * mv-get --all does), as of now and as of flush 4 (every row, the
 * deletes of flush 5 not applied), best of R: rows, pages, seconds.
 * Drops the collection at the end.
 */
#include <inttypes.h>
#include <string.h>
#include "bench.h"
#include "client.h"

#define K 10
#define FLUSHES 4

static void check(int rc, const struct mv_err *e)
{
	if (rc < 0)
		die("mv", e->msg);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *types = "HNSW32", *bp = NULL, *qp = NULL;
	size_t rows = 100000, nq = 200, nb, nqf;
	int ef = 64, reps = 7, dim, qdim;
	size_t scan = 0;
	struct mv_err e = { 0 };
	struct mv_client *c;
	char line[512], reply[1024], tl[8][64];
	int nt = 0;
	float *base, *q, *dist;
	int64_t *ids;

	prog = "asof";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-a") && i + 1 < argc)
			addr = argv[++i];
		else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--nq") && i + 1 < argc)
			nq = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--types") && i + 1 < argc)
			types = argv[++i];
		else if (!strcmp(argv[i], "--ef") && i + 1 < argc)
			ef = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--scan") && i + 1 < argc)
			scan = strtoull(argv[++i], NULL, 10);
		else if (!bp)
			bp = argv[i];
		else if (!qp)
			qp = argv[i];
		else
			die("usage", "asof [-a ADDR] [--rows N] [--nq Q] [--types "
			    "LIST] [--ef E] [--reps R] [--scan PAGE] BASE.fvecs "
			    "QUERY.fvecs");
	}
	if (!bp || !qp || reps < 1)
		die("usage", "asof [-a ADDR] [--rows N] [--nq Q] [--types LIST] "
		    "[--ef E] [--reps R] [--scan PAGE] BASE.fvecs QUERY.fvecs");
	if (!addr)
		addr = getenv("MV_ADDR");
	if (!addr) {
		static char sock[600];

		snprintf(sock, sizeof(sock), "unix:%s/mv.sock",
			 getenv("MV_HOME") ? getenv("MV_HOME") : ".");
		addr = sock;
	}
	base = read_vecs(bp, &nb, &dim);
	q = read_vecs(qp, &nqf, &qdim);
	if (qdim != dim)
		die("dimensions differ", qp);
	if (rows > nb)
		rows = nb;
	if (nq > nqf)
		nq = nqf;
	ids = malloc(nq * K * sizeof(*ids));
	dist = malloc(nq * K * sizeof(*dist));
	if (!ids || !dist)
		die("out of memory", NULL);

	c = mv_client_connect(addr, &e);
	if (!c)
		die("connect", e.msg);
	mv_client_cmd(c, "DROP abench", reply, sizeof(reply), &e);
	snprintf(line, sizeof(line), "CREATE abench %d cosine", dim);
	check(mv_client_cmd(c, line, reply, sizeof(reply), &e), &e);
	for (int f = 0; f < FLUSHES; f++) {
		size_t lo = rows * f / FLUSHES, hi = rows * (f + 1) / FLUSHES;

		for (size_t i = lo; i < hi; i += 8192) {
			size_t n = hi - i < 8192 ? hi - i : 8192;
			int64_t idb[8192];

			for (size_t j = 0; j < n; j++)
				idb[j] = (int64_t)(i + j);
			check(mv_client_insert(c, "abench", n, dim, idb,
					       base + i * dim, NULL, 0, 0, NULL,
					       &e), &e);
		}
		check(mv_client_flush(c, NULL, NULL, NULL, &e), &e);
	}
	{
		size_t nd = 0;
		int64_t *d = malloc((rows / FLUSHES / 100 + 1) * sizeof(*d));

		for (size_t i = 0; d && i < rows / FLUSHES; i += 100)
			d[nd++] = (int64_t)i;
		check(mv_client_delete(c, "abench", nd, d, &e), &e);
		check(mv_client_flush(c, NULL, NULL, NULL, &e), &e);
		free(d);
	}
	fprintf(stderr, "%s: inserted %zu rows in %d flushes, deleted in "
		"flush %d\n", prog, rows, FLUSHES, FLUSHES + 1);
	if (scan) {
		printf("| export | page | rows | pages | seconds | rows/s |\n"
		       "|---|---|---|---|---|---|\n");
		for (int k = 0; k < 2; k++) {
			double best = 1e30;
			size_t got = 0, pages = 0;

			for (int r = 0; r < reps; r++) {
				struct mv_rows rw = { 0 };
				int64_t after = INT64_MIN;
				double t0 = now();

				got = pages = 0;
				for (;;) {
					check(mv_client_scan_at(c, "abench", dim,
								after, scan, 0,
								NULL, k ?
								FLUSHES : 0,
								&rw, &e), &e);
					pages++;
					if (!rw.n)
						break;
					got += rw.n;
					after = rw.ids[rw.n - 1];
					mv_rows_release(&rw);
				}
				mv_rows_release(&rw);
				if (now() - t0 < best)
					best = now() - t0;
			}
			printf("| %s | %zu | %zu | %zu | %.3f | %.0f |\n",
			       k ? "as of flush 4" : "now", scan, got, pages,
			       best, got / best);
			fflush(stdout);
		}
	} else {
		printf("| index | search | QPS | QPS / plain |\n"
		       "|---|---|---|---|\n");
	}
	{
		char *save = NULL, *tok, buf[256];

		snprintf(buf, sizeof(buf), "%s", types);
		for (tok = strtok_r(buf, " ,", &save); tok && nt < 8;
		     tok = strtok_r(NULL, " ,", &save))
			snprintf(tl[nt++], sizeof(tl[0]), "%s", tok);
	}
	for (int t = -1; scan == 0 && t < nt; t++) {
		static const char *const kinds[3] = { "plain",
			"as of the latest flush", "as of flush 2" };
		char params[3][64];
		double best[3] = { 1e30, 1e30, 1e30 };

		if (t >= 0) {
			snprintf(line, sizeof(line), "INDEX abench %s", tl[t]);
			check(mv_client_cmd(c, line, reply, sizeof(reply), &e),
			      &e);
			for (;;) {
				check(mv_client_cmd(c, "INDEXSTATUS abench",
						    reply, sizeof(reply), &e),
				      &e);
				if (strstr(reply, "state=done"))
					break;
				if (strstr(reply, "state=failed"))
					die("index build failed", reply);
				struct timespec ts = { 0, 200000000 };
				nanosleep(&ts, NULL);
			}
		}
		for (int k = 0; k < 3; k++) {
			const char *efp = t >= 0 ? " ef=" : "";
			char efv[16] = "";

			if (t >= 0)
				snprintf(efv, sizeof(efv), "%d", ef);
			if (k == 0)
				snprintf(params[k], sizeof(params[k]), "%s%s",
					 efp + (t < 0 ? 0 : 1), efv);
			else
				snprintf(params[k], sizeof(params[k]),
					 "asof=%d%s%s", k == 1 ? FLUSHES + 1 : 2,
					 efp, efv);
		}
		/* Each round in another order: none always runs first. */
		for (int r = 0; r < reps; r++)
			for (int j = 0; j < 3; j++) {
				int k = (r + j) % 3;
				double t0 = now(), dt;

				check(mv_client_search(c, "abench", dim, K, nq, q,
						       params[k], ids, dist,
						       NULL, NULL, &e), &e);
				dt = now() - t0;
				if (dt < best[k])
					best[k] = dt;
			}
		for (int k = 0; k < 3; k++)
			printf("| %s | %s | %.0f | %.3f |\n", t < 0 ? "exact" :
			       tl[t], kinds[k], nq / best[k], best[0] / best[k]);
		fflush(stdout);
	}
	mv_client_cmd(c, "DROP abench", reply, sizeof(reply), &e);
	mv_client_free(c);
	free(base);
	free(q);
	free(ids);
	free(dist);
	return 0;
}

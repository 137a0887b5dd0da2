/*
 * filter - filtered search (issue 8) through a running mv-noded: recall@10
 * against exact filtered ground truth and QPS, at several selectivities,
 * next to the unfiltered search of the same run.
 *
 *   filter [-a ADDR] [--rows N] [--nq Q] [--types LIST] [--ef LIST]
 *          [--nprobe LIST] [--keep] BASE.fvecs QUERY.fvecs
 *
 * Takes the first N base rows (default 200000) and Q queries (default
 * 1000), creates the collection fbench (cosine, a field f:int64 = a hash
 * of the id mod 1000, so that `f < 500`, `f < 250`, `f < 100`, `f < 10`,
 * `f < 1` match 50%, 25%, 10%, 1% and 0.1% of the rows at random) and
 * inserts them.
 * The ground truth is exact, in-process (libmv's mv_knn_rows over the
 * matching rows, normalised).  Then for "exact" (no index) and each
 * index type of LIST (default "HNSW32 IVF1024,Flat"; built with INDEX and
 * waited for), for each ef (HNSW, default "16 32 64 128") or nprobe (IVF,
 * default "4 8 16 32"): SEARCH of all queries in one request, best of 3,
 * unfiltered and with each filter.  Prints a Markdown table: type, param,
 * filter, matching rows, recall@10, QPS, QPS / unfiltered QPS.
 * --sel LIST runs only the bounds of f listed ("500 250 100": 50%, 25%,
 * 10%; the unfiltered search always).  --gt-out DIR writes the ground
 * truth and the field for a peer (bench/filter-peers.sh).  --single N
 * also times the first N queries one SEARCH each over the connection
 * (after one untimed pass over them), as a peer answering one call per
 * query is timed: two more columns, their QPS and recall@10.
 * Drops the collection at the end unless --keep.
 */
#include <inttypes.h>
#include <string.h>
#include "bench.h"
#include "client.h"
#include "knn.h"

#define K 10
#define SELS 6

static const char *filters[SELS] = { NULL, "f < 500", "f < 250", "f < 100",
				     "f < 10", "f < 1" };
static const int64_t bounds[SELS] = { 1000, 500, 250, 100, 10, 1 };

static int64_t field_of(int64_t id)
{
	uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (int64_t)((z ^ (z >> 31)) % 1000);
}

static void check(int rc, const struct mv_err *e)
{
	if (rc < 0)
		die("mv", e->msg);
}

static double search(struct mv_client *c, const float *q, size_t nq,
		     uint32_t dim, const char *params, int64_t *ids,
		     float *dist)
{
	struct mv_err e = { 0 };
	double best = 1e30;

	for (int rep = 0; rep < 3; rep++) {
		double t0 = now();

		check(mv_client_search(c, "fbench", dim, K, nq, q, params, ids,
				       dist, NULL, NULL, &e), &e);
		if (now() - t0 < best)
			best = now() - t0;
	}
	return best;
}

/* The first n queries one request each, after an untimed pass over them:
 * seconds for the timed pass. */
static double search_single(struct mv_client *c, const float *q, size_t n,
			    uint32_t dim, const char *params, int64_t *ids,
			    float *dist)
{
	struct mv_err e = { 0 };
	double t0 = 0;

	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			t0 = now();
		for (size_t i = 0; i < n; i++)
			check(mv_client_search(c, "fbench", dim, K, 1,
					       q + i * dim, params,
					       ids + i * K, dist + i * K,
					       NULL, NULL, &e), &e);
	}
	return now() - t0;
}

static double recall(const int64_t *got, const int64_t *gt, size_t nq)
{
	size_t hits = 0, want = 0;

	for (size_t i = 0; i < nq; i++)
		for (int j = 0; j < K; j++) {
			if (gt[i * K + j] < 0)
				continue;
			want++;
			for (int l = 0; l < K; l++)
				if (got[i * K + l] == gt[i * K + j]) {
					hits++;
					break;
				}
		}
	return want ? (double)hits / want : 1;
}

/*
 * --gt-out DIR, for a peer run on the same rows (bench/filter-peers.sh):
 * DIR/gt-B.ivecs, the exact ground truth of `f < B` (ids, -1 past the
 * matching rows), and DIR/f.i32, the field of each row (int32).
 */
static void write_gt(const char *dir, int64_t bound, const int64_t *gt,
		     size_t nq)
{
	char path[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/gt-%" PRId64 ".ivecs", dir, bound);
	if (!(fp = fopen(path, "wb")))
		die("cannot write", path);
	for (size_t i = 0; i < nq; i++) {
		int32_t rec[K + 1] = { K };

		for (int j = 0; j < K; j++)
			rec[j + 1] = (int32_t)gt[i * K + j];
		fwrite(rec, sizeof(rec), 1, fp);
	}
	if (fclose(fp) != 0)
		die("cannot write", path);
}

static void write_field(const char *dir, size_t rows)
{
	char path[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/f.i32", dir);
	if (!(fp = fopen(path, "wb")))
		die("cannot write", path);
	for (size_t i = 0; i < rows; i++) {
		int32_t v = (int32_t)field_of((int64_t)i);

		fwrite(&v, sizeof(v), 1, fp);
	}
	if (fclose(fp) != 0)
		die("cannot write", path);
}

static void split(const char *list, char out[][64], int *n)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	*n = 0;
	for (char *t = strtok_r(buf, " ", &save); t && *n < 16;
	     t = strtok_r(NULL, " ", &save))
		snprintf(out[(*n)++], 64, "%s", t);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *types = "HNSW32 IVF1024,Flat";
	const char *efs = "16 32 64 128", *nprobes = "4 8 16 32";
	size_t rows = 200000, nq = 1000, nb, nqf, single = 0;
	int dim, qdim, keep = 0, ai;
	struct mv_err e = { 0 };
	struct mv_client *c;
	float *base, *qs, *nbase;
	int64_t *gt[SELS], *ids, *rowsel, nmatch[SELS];
	float *dist, *gd;
	char line[512], reply[1024], tl[16][64], pl[16][64];
	int nt, np, want[SELS];
	const char *sels = NULL, *gtout = NULL;

	prog = "filter";
	for (ai = 1; ai < argc && argv[ai][0] == '-'; ai++) {
		const char *o = argv[ai], *v = ai + 1 < argc ? argv[ai + 1] : "";

		if (!strcmp(o, "--keep")) {
			keep = 1;
			continue;
		}
		ai++;
		if (!strcmp(o, "-a"))
			addr = v;
		else if (!strcmp(o, "--rows"))
			rows = strtoul(v, NULL, 10);
		else if (!strcmp(o, "--nq"))
			nq = strtoul(v, NULL, 10);
		else if (!strcmp(o, "--types"))
			types = v;
		else if (!strcmp(o, "--ef"))
			efs = v;
		else if (!strcmp(o, "--nprobe"))
			nprobes = v;
		else if (!strcmp(o, "--sel"))
			sels = v;
		else if (!strcmp(o, "--gt-out"))
			gtout = v;
		else if (!strcmp(o, "--single"))
			single = strtoul(v, NULL, 10);
		else
			die("unknown option", o);
	}
	if (argc - ai != 2)
		die("usage", "filter [-a ADDR] [--rows N] [--nq Q] [--types "
		    "LIST] [--ef LIST] [--nprobe LIST] [--sel LIST] [--gt-out "
		    "DIR] [--single N] [--keep] BASE QUERY");
	/* --sel: the bounds of f to run (1000: unfiltered), default all. */
	for (int s = 0; s < SELS; s++) {
		char b[16];

		snprintf(b, sizeof(b), "%" PRId64, bounds[s]);
		want[s] = !sels || s == 0;
		for (const char *p = sels; p && (p = strstr(p, b)); p++)
			if ((p == sels || p[-1] == ' ') &&
			    (p[strlen(b)] == ' ' || !p[strlen(b)]))
				want[s] = 1;
	}
	base = read_vecs(argv[ai], &nb, &dim);
	qs = read_vecs(argv[ai + 1], &nqf, &qdim);
	if (qdim != dim)
		die("dimensions differ", NULL);
	if (nb < rows)
		rows = nb;
	if (nqf < nq)
		nq = nqf;
	if (single > nq)
		single = nq;
	fprintf(stderr, "%s: %zu rows, %zu queries of %d\n", prog, rows, nq,
		dim);

	/* Ground truth: exact over the matching rows, cosine. */
	nbase = malloc(rows * dim * sizeof(float));
	rowsel = malloc(rows * sizeof(int64_t));
	ids = malloc(nq * K * sizeof(int64_t));
	dist = malloc(nq * K * sizeof(float));
	gd = malloc(nq * K * sizeof(float));
	if (!nbase || !rowsel || !ids || !dist || !gd)
		die("out of memory", NULL);
	memcpy(nbase, base, rows * dim * sizeof(float));
	mv_knn_renorm(nbase, rows, dim);
	{
		float *nq_ = malloc(nq * dim * sizeof(float));

		memcpy(nq_, qs, nq * dim * sizeof(float));
		mv_knn_renorm(nq_, nq, dim);
		for (int s = 0; s < SELS; s++) {
			size_t m = 0;

			gt[s] = NULL;
			if (!want[s])
				continue;

			for (size_t i = 0; i < rows; i++)
				if (field_of((int64_t)i) < bounds[s])
					rowsel[m++] = (int64_t)i;
			nmatch[s] = (int64_t)m;
			gt[s] = malloc(nq * K * sizeof(int64_t));
			if (!gt[s])
				die("out of memory", NULL);
			check(mv_knn_rows(0, nq_, nq, nbase, rowsel, m, dim, K,
					  gd, gt[s], &e), &e);
			if (gtout)
				write_gt(gtout, bounds[s], gt[s], nq);
		}
		free(nq_);
	}
	if (gtout)
		write_field(gtout, rows);
	fprintf(stderr, "%s: ground truth done\n", prog);

	c = mv_client_connect(addr, &e);
	if (!c)
		die("connect", e.msg);
	mv_client_cmd(c, "DROP fbench", reply, sizeof(reply), &e);
	snprintf(line, sizeof(line), "CREATE fbench %d cosine f:int64", dim);
	check(mv_client_cmd(c, line, reply, sizeof(reply), &e), &e);
	for (size_t i = 0; i < rows; i += 8192) {
		size_t n = rows - i < 8192 ? rows - i : 8192;
		int64_t idb[8192], fb[8192];

		for (size_t j = 0; j < n; j++) {
			idb[j] = (int64_t)(i + j);
			fb[j] = field_of(idb[j]);
		}
		check(mv_client_insert(c, "fbench", n, dim, idb,
				       base + i * dim, fb, n * 8, 0, NULL, &e),
		      &e);
	}
	check(mv_client_flush(c, NULL, NULL, NULL, &e), &e);
	fprintf(stderr, "%s: inserted\n", prog);

	printf("| index | param | filter | matching rows | recall@10 | QPS | "
	       "QPS / unfiltered |%s\n|---|---|---|---|---|---|---|%s\n",
	       single ? " single-query QPS | single recall@10 |" : "",
	       single ? "---|---|" : "");
	split(types, tl, &nt);
	for (int t = -1; t < nt; t++) {
		const char *ty = t < 0 ? "exact" : tl[t];
		int ivf = strstr(ty, "IVF") != NULL;

		if (t >= 0) {
			double t0 = now();

			snprintf(line, sizeof(line), "INDEX fbench %s", ty);
			check(mv_client_cmd(c, line, reply, sizeof(reply), &e),
			      &e);
			for (;;) {
				check(mv_client_cmd(c, "INDEXSTATUS fbench",
						    reply, sizeof(reply), &e),
				      &e);
				if (strstr(reply, "state=done"))
					break;
				if (strstr(reply, "state=failed"))
					die("index build", reply);
				struct timespec ts = { 0, 200000000 };
				nanosleep(&ts, NULL);
			}
			fprintf(stderr, "%s: %s built in %.1f s\n", prog, ty,
				now() - t0);
			split(ivf ? nprobes : efs, pl, &np);
		} else {
			np = 1;
			snprintf(pl[0], 64, "-");
		}
		for (int p = 0; p < np; p++) {
			double base_qps = 0;

			for (int s = 0; s < SELS; s++) {
				char params[2048] = "", *fp = NULL;
				double dt, qps, r;

				if (!want[s])
					continue;

				if (t >= 0)
					snprintf(params, sizeof(params),
						 "%s=%s", ivf ? "nprobe" : "ef",
						 pl[p]);
				if (filters[s]) {
					size_t l = strlen(params);

					fp = mv_filter_param(filters[s], &e);
					if (!fp)
						die("filter", e.msg);
					snprintf(params + l, sizeof(params) - l,
						 "%s%s", l ? " " : "", fp);
					free(fp);
				}
				dt = search(c, qs, nq, dim, params, ids, dist);
				qps = nq / dt;
				r = recall(ids, gt[s], nq);
				if (s == 0)
					base_qps = qps;
				printf("| %s | %s%s%s | %s | %" PRId64 " | %.4f | "
				       "%.0f | %.2f |", ty,
				       t < 0 ? "" : ivf ? "nprobe=" : "ef=",
				       t < 0 ? "-" : pl[p],
				       "", filters[s] ? filters[s] : "none",
				       nmatch[s], r, qps, qps / base_qps);
				if (single) {
					dt = search_single(c, qs, single, dim,
							   params, ids, dist);
					printf(" %.1f | %.4f |", single / dt,
					       recall(ids, gt[s], single));
				}
				printf("\n");
				fflush(stdout);
			}
		}
	}
	if (!keep)
		mv_client_cmd(c, "DROP fbench", reply, sizeof(reply), &e);
	mv_client_free(c);
	return 0;
}

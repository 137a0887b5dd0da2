/*
 * faiss_index - the in-process FAISS baseline for mv's indexed search
 * (issue 3): the same index, the same parameters, the same library.
 *
 *   faiss_index [--metric l2|ip|cosine] [-k K] [--ef LIST | --nprobe LIST]
 *               [--nq N] [--single N] [--repeat R] [--tsv PREFIX] [--via-mv]
 *               (--mv-idx FILE | --load FILE |
 *                --type SPEC --base BASE.fvecs [--efc N] [--save FILE])
 *               QUERY.fvecs GT.ivecs
 *
 * Where the index comes from:
 *   --mv-idx FILE  an mv index file ($MV_HOME/segments/.../NAME.idx): its
 *                  64-byte mv header is checked (libmv/segfile.h: version,
 *                  CRC-32C) and block B, FAISS's serialised bytes, is read
 *                  with faiss_read_index, as mv-noded loads it.  So both
 *                  sides search the very same index, built once.
 *   --load FILE    FAISS's serialised bytes (faiss_write_index, --save).
 *   --base BASE    build it here by mv's own procedure (libmv/engine/
 *                  indexer.c build(), through libmv/index.h): cosine
 *                  normalises the base as the node does; mv_index_new
 *                  (inner product for ip and cosine, else L2); train on the
 *                  evenly spread sample of mv_index_train_size() rows (rows
 *                  0, s, 2s, ... with s = n / size); take the room for n
 *                  rows (mv_index_reserve); add in chunks of 8192 rows;
 *                  serialise with mv_index_write (--save writes those
 *                  bytes, which then equal block B of the node's .idx when
 *                  both ran with one thread); read back like a load (the
 *                  node keeps what it built and streams the bytes out, so
 *                  build_s holds a copy and a read the node does not do).
 *
 * Search: the FAISS C API on the loaded index (faiss_ParameterSpace sets
 * efSearch or nprobe, faiss_Index_search).  For each value of the sweep:
 * one batch search of all queries (best of R runs, timed with
 * CLOCK_MONOTONIC around faiss_Index_search only), recall@K of that batch
 * against GT.ivecs (the fraction of the true top K found; labels are the
 * base rows), then a single-query loop (nq = 1 per call) over the first
 * --single queries (default all), each call timed.  Cosine queries (and
 * the base, when building) are normalised as mv-noded does, with libmv's
 * mv_knn_renorm (FAISS's fvec_renorm_L2).
 *
 * Output on stdout: "# key<TAB>value" lines (source, ntotal, dim, metric,
 * threads, build_s or load_s, build_cpu_s or load_cpu_s: the CPU time of
 * the process (all threads) over the same span, rss_kb: VmRSS of this
 * process after the build or load, before any search; rss_end_kb after
 * the sweep), then a header and one TSV row per sweep value:
 *   param value recall qps_batch median_us p90_us p99_us qps_single
 *   recall_single qps_cpu
 * (recall_single: recall@K of the single-query loop's answers, which may
 * differ slightly from the batch's: FAISS takes other code paths, e.g.
 * BLAS for the coarse quantizer, with several queries at once; qps_cpu:
 * queries per second of the process's CPU time in the batch search, best
 * of R, which a loaded machine's waiting for a core does not lower: with
 * one thread the figure to compare).
 * --via-mv searches through libmv instead (mv_index_read, then
 * mv_index_search with the value as its per-call nprobe or ef: the
 * wrapper mv-noded searches through), to tell FAISS's behaviour from that
 * of mv's wrapper in one process.
 * --tsv PREFIX writes each batch's hits to PREFIX.VALUE.tsv in mv-search's
 * format (query_no, rank, id, distance) for bench/recall.
 * Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS; run with
 * OMP_WAIT_POLICY=PASSIVE.  Exit 0, 1 on errors, 64 on usage.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index.h"
#include "knn.h"
#include "segfile.h"
#include "bench.h"

#define ADD_CHUNK 8192		/* as libmv/engine/indexer.c */
#define SWEEP_MAX 64

static const char *prog = "faiss_index";

/* CPU seconds of this process, all threads. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [--metric l2|ip|cosine] [-k K] [--ef LIST | --nprobe LIST]\n"
		"       [--nq N] [--single N] [--repeat R] [--tsv PREFIX] [--via-mv]\n"
		"       (--mv-idx FILE | --load FILE |\n"
		"        --type SPEC --base BASE.fvecs [--efc N] [--save FILE])\n"
		"       QUERY.fvecs GT.ivecs\n"
		"LIST: values separated by commas or spaces, e.g. 16,32,64\n",
		prog);
	exit(rc);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long size;

	if (!f)
		die("cannot open", path);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0)
		die("cannot seek", path);
	rewind(f);
	p = malloc((size_t)size + 1);
	if (!p)
		die("out of memory", path);
	if (fread(p, 1, (size_t)size, f) != (size_t)size)
		die("short read", path);
	fclose(f);
	*len = (size_t)size;
	return p;
}

/* A whole fvecs (or ivecs: same layout) file as n rows of *dim values. */
/* As libmv/engine/util.c node_normalise(): libmv's (FAISS's) kernel. */
static void normalise(float *v, size_t n, int dim)
{
	mv_knn_renorm(v, n, (size_t)dim);
}

static void check(int rc, const char *what)
{
	if (rc) {
		const char *e = faiss_get_last_error();

		die(what, e ? e : "FAISS error");
	}
}

static void mv_check(int rc, const struct mv_err *e, const char *what)
{
	if (rc < 0)
		die(what, e->msg[0] ? e->msg : "error");
}

/*
 * The searched index: FAISS's own object through its C API, or (--via-mv)
 * libmv's wrapper with per-call parameters.
 */
static FaissIndex *g_fi;
static struct mv_index *g_mi;
static FaissParameterSpace *g_ps;
static const char *g_pname;		/* "efSearch" or "nprobe" */
static long g_value;

static void read_index_bytes(const void *buf, size_t len, const char *name,
			     int via_mv)
{
	if (via_mv) {
		struct mv_err e = { 0 };

		g_mi = mv_index_read(buf, len, &e);
		if (!g_mi)
			die(name, e.msg);
	} else {
		FILE *f = fmemopen((void *)buf, len, "rb");

		if (!f)
			die("fmemopen failed", name);
		check(faiss_read_index(f, 0, &g_fi), name);
		fclose(f);
	}
}

static void set_value(long v)
{
	g_value = v;
	if (g_fi)
		check(faiss_ParameterSpace_set_index_parameter(g_ps, g_fi,
							       g_pname, (double)v),
		      g_pname);
}

static void search(size_t n, const float *x, long k, float *dist,
		   idx_t *lab)
{
	if (g_mi) {
		struct mv_err e = { 0 };
		int ef = g_pname[0] == 'e';

		mv_check(mv_index_search(g_mi, n, x, (size_t)k,
					 ef ? -1 : g_value, ef ? g_value : -1,
					 dist, (int64_t *)lab, &e), &e, "search");
	} else {
		check(faiss_Index_search(g_fi, (idx_t)n, x, (idx_t)k, dist, lab),
		      "search");
	}
}

/* mv's procedure (libmv/engine/indexer.c build()) on one segment. */
static void *build_like_mv(const char *spec, const char *basepath,
			   const char *metric, long efc, int *dim_out,
			   size_t *len_out)
{
	struct mv_err e = { 0 };
	struct mv_index *ix;
	size_t nb, ntrain;
	int d;
	float *xb = read_vecs(basepath, &nb, &d);
	void *ser = NULL;

	if (!strcmp(metric, "cosine"))
		normalise(xb, nb, d);
	ix = mv_index_new(spec, (uint32_t)d, strcmp(metric, "l2") != 0, &e);
	if (!ix)
		die("mv_index_new", e.msg);
	if (efc > 0)
		mv_check(mv_index_set(ix, "efConstruction", efc, &e), &e,
			 "efConstruction");
	ntrain = mv_index_train_size(ix, nb);
	if (ntrain) {
		size_t step = nb / ntrain, got = 0;
		float *tr = malloc(ntrain * (size_t)d * sizeof(float) + 1);

		if (!tr)
			die("out of memory", NULL);
		for (size_t r = 0; r < nb && got < ntrain; r += step, got++)
			memcpy(tr + got * d, xb + r * d, (size_t)d * sizeof(float));
		fprintf(stderr, "%s: training %s on %zu vectors\n", prog, spec, got);
		mv_check(mv_index_train(ix, got, tr, &e), &e, "training");
		free(tr);
	}
	mv_index_reserve(ix, nb);
	for (size_t r = 0; r < nb; r += ADD_CHUNK) {
		size_t n = nb - r < ADD_CHUNK ? nb - r : ADD_CHUNK;

		mv_check(mv_index_add(ix, n, xb + r * d, &e), &e, "adding");
	}
	free(xb);
	mv_check(mv_index_write(ix, &ser, len_out, &e), &e, "serialising");
	mv_index_free(ix);
	*dim_out = d;
	return ser;
}

static size_t parse_list(const char *s, long *v)
{
	size_t n = 0;
	char *e;

	while (*s) {
		while (*s == ',' || *s == ' ')
			s++;
		if (!*s)
			break;
		if (n == SWEEP_MAX)
			usage(64);
		v[n] = strtol(s, &e, 10);
		if (e == s || v[n] <= 0)
			usage(64);
		n++;
		s = e;
	}
	return n;
}

/* The q-quantile (0..1) of sorted v[n], nearest rank. */
/* How many of the true top k each query's k labels hold, in all. */
static size_t count_hits(const idx_t *lab, size_t nq, long k,
			 const int32_t *gt, int gk)
{
	size_t hits = 0;

	for (size_t q = 0; q < nq; q++)
		for (long a = 0; a < k; a++) {
			idx_t l = lab[q * k + a];

			if (l < 0)
				continue;
			for (long b = 0; b < k; b++)
				if (l == gt[q * (size_t)gk + b]) {
					hits++;
					break;
				}
		}
	return hits;
}

int main(int argc, char **argv)
{
	const char *metric = "l2", *mvidx = NULL, *load = NULL, *save = NULL;
	const char *spec = NULL, *basepath = NULL, *tsv = NULL;
	const char *pname = NULL;
	int via_mv = 0;
	long k = 10, nqmax = -1, nsingle = -1, repeat = 1, efc = -1;
	long sweep[SWEEP_MAX];
	size_t nsweep = 0;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!strcmp(a, "--via-mv")) {
			via_mv = 1;
			continue;
		}
		if (!v)
			usage(64);
		if (!strcmp(a, "--metric") || !strcmp(a, "-m"))
			metric = v;
		else if (!strcmp(a, "-k"))
			k = strtol(v, NULL, 10);
		else if (!strcmp(a, "--ef") || !strcmp(a, "--nprobe")) {
			if (pname)
				usage(64);
			pname = a[2] == 'e' ? "efSearch" : "nprobe";
			nsweep = parse_list(v, sweep);
		} else if (!strcmp(a, "--nq"))
			nqmax = strtol(v, NULL, 10);
		else if (!strcmp(a, "--single"))
			nsingle = strtol(v, NULL, 10);
		else if (!strcmp(a, "--repeat"))
			repeat = strtol(v, NULL, 10);
		else if (!strcmp(a, "--tsv"))
			tsv = v;
		else if (!strcmp(a, "--mv-idx"))
			mvidx = v;
		else if (!strcmp(a, "--load"))
			load = v;
		else if (!strcmp(a, "--save"))
			save = v;
		else if (!strcmp(a, "--type"))
			spec = v;
		else if (!strcmp(a, "--base"))
			basepath = v;
		else if (!strcmp(a, "--efc"))
			efc = strtol(v, NULL, 10);
		else
			usage(64);
		i++;
	}
	if (argc - i != 2 || k <= 0 || repeat <= 0 || !pname || !nsweep)
		usage(64);
	if (!!mvidx + !!load + !!basepath != 1 || (basepath && !spec) ||
	    (save && !basepath))
		usage(64);
	if (strcmp(metric, "l2") && strcmp(metric, "ip") &&
	    strcmp(metric, "cosine"))
		usage(64);

	/* The index. */
	int d = 0;
	double t0 = now(), c0 = cpu_now(), t_index, c_index;
	const char *src;

	if (basepath) {
		size_t len;
		void *ser = build_like_mv(spec, basepath, metric, efc, &d, &len);

		if (save) {
			FILE *f = fopen(save, "wb");
			if (!f || fwrite(ser, 1, len, f) != len || fclose(f) != 0)
				die("cannot write", save);
		}
		read_index_bytes(ser, len, "the built index", via_mv);
		free(ser);
		src = basepath;
	} else if (mvidx) {
		struct mv_err e = { 0 };
		struct mv_seginfo info;
		void *a = NULL;
		const void *b;
		size_t len;
		void *file = read_file(mvidx, &len);

		mv_check(mv_segfile_decode(mvidx, file, len, &info, &a, &b, &e),
			 &e, "not an mv file");
		if (info.kind != MV_SEG_IDX)
			die("not an mv index file", mvidx);
		read_index_bytes(b, info.b_len, mvidx, via_mv);
		free(a);
		free(file);
		src = mvidx;
	} else {
		size_t len;
		void *file = read_file(load, &len);

		read_index_bytes(file, len, load, via_mv);
		free(file);
		src = load;
	}
	t_index = now() - t0;
	c_index = cpu_now() - c0;
	long rss = rss_kb();

	/* Queries and ground truth. */
	size_t nq, ng;
	int dq, gk;
	float *xq = read_vecs(argv[i], &nq, &dq);
	int32_t *gt = read_vecs(argv[i + 1], &ng, &gk);

	if (g_fi && dq != (d = faiss_Index_d(g_fi)))
		die("query dimension differs from the index", argv[i]);
	d = dq;
	if (nqmax >= 0 && (size_t)nqmax < nq)
		nq = (size_t)nqmax;
	if (ng < nq)
		die("ground truth has fewer rows than queries", argv[i + 1]);
	if (gk < k)
		die("ground truth has fewer than k neighbours", argv[i + 1]);
	if (nsingle < 0 || (size_t)nsingle > nq)
		nsingle = (long)nq;
	if (!strcmp(metric, "cosine"))
		normalise(xq, nq, d);

	printf("# search\t%s\n", via_mv ? "libmv mv_index_search, per-call "
	       "parameters" : "FAISS C API, parameters set on the index");
	printf("# source\t%s%s\n", mvidx ? "mv-idx " : load ? "faiss " :
	       "built ", src);
	printf("# ntotal\t%lld\n# dim\t%d\n# metric\t%s\n# k\t%ld\n",
	       (long long)(g_fi ? faiss_Index_ntotal(g_fi) :
			   mv_index_ntotal(g_mi)), d, metric, k);
	printf("# queries\t%zu\n# single_queries\t%ld\n", nq, nsingle);
	printf("# omp_threads\t%d\n", omp_get_max_threads());
	printf("# %s_s\t%.3f\n", basepath ? "build" : "load", t_index);
	printf("# %s_cpu_s\t%.3f\n", basepath ? "build" : "load", c_index);
	printf("# rss_kb\t%ld\n", rss);
	printf("param\tvalue\trecall\tqps_batch\tmedian_us\tp90_us\tp99_us"
	       "\tqps_single\trecall_single\tqps_cpu\n");
	fflush(stdout);

	float *dist = malloc(nq * (size_t)k * sizeof(float));
	idx_t *lab = malloc(nq * (size_t)k * sizeof(idx_t));
	idx_t *slab = malloc(((size_t)nsingle + 1) * (size_t)k * sizeof(idx_t));
	double *lat = malloc(((size_t)nsingle + 1) * sizeof(double));

	if (!dist || !lab || !slab || !lat)
		die("out of memory", NULL);
	check(faiss_ParameterSpace_new(&g_ps), "ParameterSpace");
	g_pname = pname;

	/* Warm up: the code paths and the index pages. */
	set_value(sweep[0]);
	for (size_t q = 0; q < nq && q < 200; q++)
		search(1, xq + q * d, k, dist, lab);

	for (size_t s = 0; s < nsweep; s++) {
		double best = 1e300, cbest = 1e300, tsum = 0;
		size_t hits = 0, shits = 0;

		set_value(sweep[s]);
		for (long r = 0; r < repeat; r++) {
			double t;

			t0 = now();
			c0 = cpu_now();
			search(nq, xq, k, dist, lab);
			t = now() - t0;
			if (t < best)
				best = t;
			t = cpu_now() - c0;
			if (t < cbest)
				cbest = t;
		}
		hits = count_hits(lab, nq, k, gt, gk);
		if (tsv) {
			char path[4096];
			FILE *f;

			snprintf(path, sizeof(path), "%s.%ld.tsv", tsv, sweep[s]);
			f = fopen(path, "w");
			if (!f)
				die("cannot create", path);
			for (size_t q = 0; q < nq; q++)
				for (long a = 0; a < k; a++)
					if (lab[q * k + a] >= 0)
						fprintf(f, "%zu\t%ld\t%lld\t%.9g\n",
							q, a + 1,
							(long long)lab[q * k + a],
							dist[q * k + a]);
			if (ferror(f) || fclose(f) != 0)
				die("write error", path);
		}
		for (long q = 0; q < nsingle; q++) {
			double ta = now();

			search(1, xq + (size_t)q * d, k, dist,
			       slab + (size_t)q * k);
			lat[q] = now() - ta;
			tsum += lat[q];
		}
		shits = count_hits(slab, (size_t)nsingle, k, gt, gk);
		qsort(lat, (size_t)nsingle, sizeof(double), cmp_double);
		printf("%s\t%ld\t%.4f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f"
		       "\t%.1f\n",
		       pname[0] == 'e' ? "ef" : "nprobe", sweep[s],
		       (double)hits / ((double)nq * k), nq / best,
		       nsingle ? quantile(lat, nsingle, 0.5) * 1e6 : 0,
		       nsingle ? quantile(lat, nsingle, 0.9) * 1e6 : 0,
		       nsingle ? quantile(lat, nsingle, 0.99) * 1e6 : 0,
		       tsum > 0 ? nsingle / tsum : 0,
		       nsingle ? (double)shits / ((double)nsingle * k) : 0,
		       nq / cbest);
		fflush(stdout);
	}
	printf("# rss_end_kb\t%ld\n", rss_kb());

	faiss_ParameterSpace_free(g_ps);
	if (g_fi)
		faiss_Index_free(g_fi);
	mv_index_free(g_mi);
	free(xq);
	free(gt);
	free(dist);
	free(lab);
	free(slab);
	free(lat);
	return 0;
}

/*
 * test_index.c - the FAISS wrapper: spec translation, build, serialise,
 * and searches with different ef/nprobe from concurrent threads, which
 * must give what the same searches give alone.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "index.h"
#include "knn.h"
#include "unit.h"
#include "vcheck.h"

#define N 4000
#define D 16
#define NQ 64
#define K 10

static float *randvecs(size_t n, unsigned seed)
{
	float *v = malloc(n * D * sizeof(float));

	srand(seed);
	for (size_t i = 0; i < n * D; i++)
		v[i] = (float)rand() / RAND_MAX - 0.5f;
	return v;
}

TEST(index_spec_milvus_names)
{
	char out[128];
	struct mv_err err = { 0 };

	CHECK_EQ_INT(mv_index_spec("HNSW", "M=16", out, sizeof(out), &err), 0);
	CHECK_STR(out, "HNSW16");
	CHECK_EQ_INT(mv_index_spec("IVF_PQ", "nlist=64 m=8", out, sizeof(out),
				   &err), 0);
	CHECK_STR(out, "IVF64,PQ8");
	CHECK_EQ_INT(mv_index_spec("IVF_SQ8", "nlist=32", out, sizeof(out),
				   &err), 0);
	CHECK_STR(out, "IVF32,SQ8");
	CHECK_EQ_INT(mv_index_spec("FLAT", NULL, out, sizeof(out), &err), 0);
	CHECK_STR(out, "Flat");
	CHECK_EQ_INT(mv_index_spec("IVF_FLAT", NULL, out, sizeof(out), &err),
		     MV_EUSAGE);
	CHECK_STR(err.msg, "IVF_FLAT needs --param nlist=N (1..1048576)");
	CHECK_EQ_INT(mv_index_spec("IVF100,Flat", NULL, out, sizeof(out), NULL),
		     0);
	CHECK_STR(out, "IVF100,Flat");
}

TEST(index_bad_factory)
{
	struct mv_err err = { 0 };

	CHECK(mv_index_new("NoSuchIndex42", D, 0, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EUSAGE);
}

struct job {
	const struct mv_index *ix;
	const float *q;
	long ef, nprobe;
	const int64_t *want;
	int bad;
};

static void *search_loop(void *arg)
{
	struct job *j = arg;
	int64_t lab[NQ * K];
	float dist[NQ * K];

	for (int r = 0; r < 20; r++) {
		if (mv_index_search(j->ix, NQ, j->q, K, j->nprobe, j->ef, dist,
				    lab, NULL) < 0 ||
		    memcmp(lab, j->want, sizeof(lab)))
			j->bad++;
	}
	return NULL;
}

/* Build spec over random data; check params matter and do not race. */
static void check_concurrent(const char *spec, long lo_ef, long hi_ef,
			     long lo_np, long hi_np)
{
	float *x = randvecs(N, 1), *q = randvecs(NQ, 2);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new(spec, D, 0, &err), *back;
	int64_t lo[NQ * K], hi[NQ * K], exact[NQ * K];
	float dist[NQ * K];
	struct job jobs[4];
	pthread_t th[4];
	void *buf;
	size_t len, hits_lo = 0, hits_hi = 0;

	REQUIRE(ix != NULL);
	if (mv_index_train_size(ix, N))
		CHECK_EQ_INT(mv_index_train(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N, x, &err), 0);
	CHECK_EQ_INT((int)mv_index_ntotal(ix), N);
	CHECK_EQ_INT(mv_knn(1, q, NQ, x, N, D, K, NULL, dist, exact, &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, lo_np, lo_ef, dist, lo,
				     &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, hi_np, hi_ef, dist, hi,
				     &err), 0);
	for (int i = 0; i < NQ; i++)
		for (int a = 0; a < K; a++)
			for (int b = 0; b < K; b++) {
				hits_lo += lo[i * K + a] == exact[i * K + b];
				hits_hi += hi[i * K + a] == exact[i * K + b];
			}
	unit_diag("%s: recall %.3f (low) %.3f (high)", spec,
		  (double)hits_lo / (NQ * K), (double)hits_hi / (NQ * K));
	CHECK(hits_hi > hits_lo);
	CHECK(hits_hi >= (size_t)(NQ * K * 95 / 100));
	for (int t = 0; t < 4; t++) {
		jobs[t] = (struct job){ ix, q, t % 2 ? hi_ef : lo_ef,
					t % 2 ? hi_np : lo_np,
					t % 2 ? hi : lo, 0 };
		pthread_create(&th[t], NULL, search_loop, &jobs[t]);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ_INT(jobs[t].bad, 0);
	}
	/* Serialised and read back, it answers the same. */
	REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
	back = mv_index_read(buf, len, &err);
	REQUIRE(back != NULL);
	{
		int64_t again[NQ * K];
		CHECK_EQ_INT(mv_index_search(back, NQ, q, K, hi_np, hi_ef, dist,
					     again, &err), 0);
		CHECK(!memcmp(again, hi, sizeof(again)));
	}
	mv_index_free(back);
	free(buf);
	mv_index_free(ix);
	free(x);
	free(q);
}

TEST(index_hnsw_ef_per_search)
{
	check_concurrent("HNSW8", 1, 200, 0, 0);
}

TEST(index_ivf_nprobe_per_search)
{
	check_concurrent("IVF32,Flat", 0, 0, 1, 32);
}

/* Recall@K of lab against exact, in hits. */
static size_t hits(const int64_t *lab, const int64_t *exact, size_t nq)
{
	size_t n = 0;

	for (size_t i = 0; i < nq; i++)
		for (int a = 0; a < K; a++)
			for (int b = 0; b < K; b++)
				n += lab[i * K + a] == exact[i * K + b];
	return n;
}

/*
 * A search at ef E searches at E, beyond the index's own efSearch (16),
 * and leaves the index as it was: its default searches answer the same,
 * and it serialises to the same bytes.
 */
TEST(index_hnsw_call_ef_leaves_index)
{
	static const long efs[] = { 4, 16, 64, 256 };
	float *x = randvecs(N, 1), *q = randvecs(NQ, 2);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new("HNSW8", D, 0, &err);
	int64_t exact[NQ * K], def[NQ * K], lab[NQ * K];
	float dist[NQ * K];
	size_t h, prev = 0, len0, len1;
	void *buf0, *buf1;

	REQUIRE(ix != NULL);
	CHECK_EQ_INT(mv_index_add(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_knn(1, q, NQ, x, N, D, K, NULL, dist, exact, &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 0, 0, dist, def, &err), 0);
	REQUIRE(mv_index_write(ix, &buf0, &len0, &err) == 0);
	for (size_t e = 0; e < sizeof(efs) / sizeof(efs[0]); e++) {
		CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 0, efs[e], dist, lab,
					     &err), 0);
		h = hits(lab, exact, NQ);
		unit_diag("HNSW8 ef %ld: recall %.3f", efs[e],
			  (double)h / (NQ * K));
		CHECK(h >= prev);
		prev = h;
	}
	CHECK(prev >= (size_t)(NQ * K * 99 / 100));
	REQUIRE(mv_index_write(ix, &buf1, &len1, &err) == 0);
	CHECK(len0 == len1 && !memcmp(buf0, buf1, len0));
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 0, 0, dist, lab, &err), 0);
	CHECK(!memcmp(lab, def, sizeof(lab)));
	free(buf0);
	free(buf1);
	mv_index_free(ix);
	free(x);
	free(q);
}

/* The same for fast-scan IVF's nprobe, which FAISS 1.7.3 keeps locked. */
TEST(index_fastscan_nprobe_leaves_index)
{
	float *x = randvecs(N, 1), *q = randvecs(NQ, 2);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new("IVF32,PQ8x4fs", D, 0, &err);
	int64_t def[NQ * K], lab[NQ * K], hi[NQ * K];
	float dist[NQ * K];
	size_t len0, len1;
	void *buf0, *buf1;

	REQUIRE(ix != NULL);
	CHECK_EQ_INT(mv_index_train(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 0, 0, dist, def, &err), 0);
	REQUIRE(mv_index_write(ix, &buf0, &len0, &err) == 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 32, 0, dist, hi, &err), 0);
	CHECK(memcmp(hi, def, sizeof(hi)) != 0);
	REQUIRE(mv_index_write(ix, &buf1, &len1, &err) == 0);
	CHECK(len0 == len1 && !memcmp(buf0, buf1, len0));
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 0, 0, dist, lab, &err), 0);
	CHECK(!memcmp(lab, def, sizeof(lab)));
	free(buf0);
	free(buf1);
	mv_index_free(ix);
	free(x);
	free(q);
}

/* Take n bytes at *p of a serialised index, or fail. */
static int take(const unsigned char **p, const unsigned char *end, void *out,
		size_t n)
{
	if ((size_t)(end - *p) < n)
		return -1;
	if (out)
		memcpy(out, *p, n);
	*p += n;
	return 0;
}

/* Skip a FAISS vector (a size_t count, then count items of size sz). */
static int skip_vec(const unsigned char **p, const unsigned char *end,
		    size_t sz, uint64_t *count)
{
	uint64_t n;

	if (take(p, end, &n, 8) < 0 || n > (uint64_t)(end - *p) / sz)
		return -1;
	if (count)
		*count = n;
	*p += n * sz;
	return 0;
}

/*
 * HNSW's search against FAISS 1.7.3's own loop, run here on the graph the
 * index serialises (mv's FAISS patch 04 rewrites that loop for speed: a
 * sorted candidate list for MinimaxHeap, distances four at a time; it must
 * find what 1.7.3 finds, with patch 06's one change: see ref_search).
 * The vectors have small integer coordinates, so that every distance is an
 * exact integer in float whatever the order of its sums, and the
 * reference's distances are FAISS's bit for bit; a query
 * where two of the distances the reference computes are equal (where the
 * two loops may legitimately order points differently) is not compared.
 */
struct hgraph {
	int32_t ncum, entry, max_level;
	const unsigned char *cum, *levels, *off, *nb;
	uint64_t noff, nnb;
};

/* An IndexHNSWFlat serialised by FAISS 1.7.3 (index_write.cpp: "IHNf", the
 * index header, HNSW's vectors and fields), or -1. */
static int parse_hnsw(const void *buf, size_t len, struct hgraph *g)
{
	const unsigned char *p = buf, *end = p + len;
	uint64_t n, last;
	int32_t metric;

	if (len < 4 || memcmp(p, "IHNf", 4) ||
	    take(&p, end, NULL, 4 + 4 + 8 + 8 + 8 + 1) < 0 ||
	    take(&p, end, &metric, 4) < 0 ||
	    (metric > 1 && take(&p, end, NULL, 4) < 0) ||
	    skip_vec(&p, end, 8, NULL) < 0)
		return -1;
	g->cum = p + 8;
	if (skip_vec(&p, end, 4, &n) < 0 || n < 2)
		return -1;
	g->ncum = (int32_t)n;
	g->levels = p + 8;
	if (skip_vec(&p, end, 4, NULL) < 0)
		return -1;
	g->off = p + 8;
	if (skip_vec(&p, end, 8, &g->noff) < 0)
		return -1;
	g->nb = p + 8;
	if (g->noff < 2 || skip_vec(&p, end, 4, &g->nnb) < 0 ||
	    take(&p, end, &g->entry, 4) < 0 ||
	    take(&p, end, &g->max_level, 4) < 0)
		return -1;
	memcpy(&last, g->off + (g->noff - 1) * 8, 8);	/* lists' end */
	return last <= g->nnb ? 0 : -1;
}

static int32_t geti32(const unsigned char *a, uint64_t i)
{
	int32_t v;

	memcpy(&v, a + i * 4, 4);
	return v;
}

/* Node v's neighbour list at level l: [*b, *e) in g->nb. */
static void hrange(const struct hgraph *g, int32_t v, int l, uint64_t *b,
		   uint64_t *e)
{
	uint64_t o;

	memcpy(&o, g->off + (uint64_t)v * 8, 8);
	*b = o + (uint64_t)geti32(g->cum, l);
	*e = o + (uint64_t)geti32(g->cum, l + 1);
}

struct href {
	const float *x, *q;
	int ip;
	float dis[N];		/* each point's distance, where has[] */
	unsigned char has[N];
};

/* FAISS's internal distance: L2 squared, or minus the inner product. */
static float hdis(struct href *r, int32_t v)
{
	int64_t s = 0;

	for (int j = 0; j < D; j++) {
		int64_t a = (int64_t)r->q[j], b = (int64_t)r->x[(size_t)v * D + j];

		s += r->ip ? a * b : (a - b) * (a - b);
	}
	r->has[v] = 1;
	r->dis[v] = r->ip ? (float)-s : (float)s;
	return r->dis[v];
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/*
 * HNSW::search of FAISS 1.7.3 (upper_beam 1, bounded queue, relative
 * distance check): greedy descent, then search_from_candidates over a
 * MinimaxHeap of ef entries (pop_min: the nearest not yet expanded;
 * count_below: entries nearer than a distance, expanded or not; nvalid:
 * the entries not expanded yet; 1.7.3 also decremented it when a push
 * dropped an entry already expanded, and so stopped early: mv's patch 06
 * does not, as later FAISS does not).
 * Results (labels, nearest first) into lab; returns 1 if no two points
 * it computed distances of were at equal distances, else 0 (the query is
 * not comparable).
 */
static int ref_search(const struct hgraph *g, struct href *r, int ef,
		      const uint8_t *sel, int64_t *lab)
{
	static unsigned char vis[N];
	static float seen[N];
	int nseen = 0;
	int32_t cid[256], rid[K], near = g->entry;
	float cd[256], rd[K], dn;
	int cexp[256], nc = 1, nvalid = 1, nres = 0;
	uint64_t b, e;

	memset(vis, 0, sizeof(vis));
	memset(r->has, 0, sizeof(r->has));
	dn = hdis(r, near);
	for (int l = g->max_level; l >= 1; l--) {
		for (int32_t prev = -1; prev != near;) {
			prev = near;
			hrange(g, prev, l, &b, &e);
			for (uint64_t i = b; i < e && geti32(g->nb, i) >= 0; i++) {
				float d = hdis(r, geti32(g->nb, i));

				if (d < dn) {
					dn = d;
					near = geti32(g->nb, i);
				}
			}
		}
	}
	cid[0] = near, cd[0] = dn, cexp[0] = 0;
	vis[near] = 1;
	if (!sel || sel[near / 8] & 1 << near % 8)
		rid[nres] = near, rd[nres++] = dn;
	while (nvalid > 0) {
		int below = 0, imin = -1;
		int32_t v0;

		for (int i = 0; i < nc; i++)	/* pop_min */
			if (!cexp[i] && (imin < 0 || cd[i] < cd[imin]))
				imin = i;
		cexp[imin] = 1, nvalid--;
		v0 = cid[imin];
		for (int i = 0; i < nc; i++)	/* count_below */
			below += cd[i] < cd[imin];
		if (below >= ef)
			break;
		hrange(g, v0, 0, &b, &e);
		for (uint64_t i = b; i < e; i++) {
			int32_t v1 = geti32(g->nb, i);
			float d;
			int w = 0;

			if (v1 < 0)
				break;
			if (vis[v1])
				continue;
			vis[v1] = 1;
			d = hdis(r, v1);
			if (!sel || sel[v1 / 8] & 1 << v1 % 8) {
				if (nres < K) {
					rid[nres] = v1, rd[nres++] = d;
				} else {
					for (int j = 1; j < K; j++)
						if (rd[j] > rd[w])
							w = j;
					if (d < rd[w])
						rid[w] = v1, rd[w] = d;
				}
			}
			if (nc < ef) {	/* push */
				cid[nc] = v1, cd[nc] = d, cexp[nc++] = 0;
				nvalid++;
				continue;
			}
			for (int j = w = 0; j < nc; j++)
				if (cd[j] > cd[w])
					w = j;
			if (d < cd[w]) {  /* drops the farthest, expanded or not */
				nvalid += cexp[w];	/* patch 06 */
				cid[w] = v1, cd[w] = d, cexp[w] = 0;
			}
		}
	}
	for (int v = 0; v < N; v++)	/* two points at one distance? */
		if (r->has[v])
			seen[nseen++] = r->dis[v];
	qsort(seen, nseen, sizeof(float), cmp_float);
	for (int i = 1; i < nseen; i++)
		if (seen[i] == seen[i - 1])
			return 0;
	for (int i = 0; i < K; i++) {	/* nearest first, -1 past nres */
		int best = -1;

		for (int j = 0; j < nres; j++)
			if (rid[j] >= 0 && (best < 0 || rd[j] < rd[best]))
				best = j;
		lab[i] = best < 0 ? -1 : rid[best];
		if (best >= 0)
			rid[best] = -1;
	}
	return 1;
}

/* Vectors of integer coordinates in [-500, 500]: exact distances. */
static float *intvecs(size_t n, unsigned seed)
{
	float *v = malloc(n * D * sizeof(float));

	srand(seed);
	for (size_t i = 0; i < n * D; i++)
		v[i] = (float)(rand() % 1001 - 500);
	return v;
}

static void check_hnsw_as_faiss_173(int ip, int ef, int filtered)
{
	float *x = intvecs(N, 11), *q = intvecs(NQ, 12), dist[K];
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new("HNSW16", D, ip, &err);
	static struct href r;
	struct hgraph g;
	uint8_t sel[(N + 7) / 8];
	int64_t want[K], lab[K];
	int compared = 0, differ = 0;
	void *buf = NULL;
	size_t len = 0;

	REQUIRE(ix != NULL);
	CHECK_EQ_INT(mv_index_set(ix, "efConstruction", 40, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N, x, &err), 0);
	REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
	REQUIRE(parse_hnsw(buf, len, &g) == 0);
	REQUIRE(g.noff == N + 1 && g.ncum >= 3 && g.entry >= 0);
	for (size_t i = 0; i < sizeof(sel); i++)	/* 2 labels in 3 */
		sel[i] = (uint8_t)(i % 3 == 0 ? 0xb6 : i % 3 == 1 ? 0x6d : 0xdb);
	r.x = x, r.ip = ip;
	for (int i = 0; i < NQ; i++) {
		r.q = q + (size_t)i * D;
		if (!ref_search(&g, &r, ef, filtered ? sel : NULL, want))
			continue;
		compared++;
		if (filtered)
			CHECK_EQ_INT(mv_index_search_sel(ix, 1, r.q, K, 0, ef,
							 sel, N, dist, lab,
							 &err), 0);
		else
			CHECK_EQ_INT(mv_index_search(ix, 1, r.q, K, 0, ef,
						     dist, lab, &err), 0);
		differ += memcmp(lab, want, sizeof(lab)) != 0;
	}
	unit_diag("%s ef %d%s: %d of %d queries compared, %d differ",
		  ip ? "ip" : "l2", ef, filtered ? " filtered" : "", compared,
		  NQ, differ);
	CHECK(compared >= NQ / 2);
	CHECK_EQ_INT(differ, 0);
	free(buf);
	mv_index_free(ix);
	free(x);
	free(q);
}

TEST(index_hnsw_search_as_faiss_173)
{
	check_hnsw_as_faiss_173(0, 10, 0);
	check_hnsw_as_faiss_173(0, 40, 0);
	check_hnsw_as_faiss_173(1, 16, 0);
	check_hnsw_as_faiss_173(0, 16, 1);
	check_hnsw_as_faiss_173(1, 40, 1);
}

#ifdef MV_FAISS_PATCHED
struct long_search {
	const struct mv_index *ix;
	const float *q;
	size_t nq;
	long nprobe, ef;
	int64_t *lab;
	float *dist;
	int started, done, rc;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *long_search(void *arg)
{
	struct long_search *s = arg;

	__atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
	s->rc = mv_index_search(s->ix, s->nq, s->q, K, s->nprobe, s->ef,
				s->dist, s->lab, NULL);
	__atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * With mv's FAISS patches, searches at different ef / nprobe do not wait
 * for each other: while one long search (nl queries at long_np/long_ef)
 * runs, single-query searches at short_np/short_ef (neither the index's
 * own value) start and finish, with the results they give alone.
 */
static void check_not_serialised(const char *spec, size_t nl, long long_np,
				 long long_ef, long short_np, long short_ef)
{
	float *x = randvecs(N, 1), *q = randvecs(nl, 2);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new(spec, D, 0, &err);
	struct long_search s;
	int64_t want[K], lab[K];
	float dist[K];
	pthread_t th;
	int inside = 0, wrong = 0;
	double t0;

	REQUIRE(ix != NULL);
	if (mv_index_train_size(ix, N))
		CHECK_EQ_INT(mv_index_train(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N, x, &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, 1, q, K, short_np, short_ef, dist,
				     want, &err), 0);
	s = (struct long_search){ ix, q, nl, long_np, long_ef,
				  malloc(nl * K * sizeof(int64_t)),
				  malloc(nl * K * sizeof(float)), 0, 0, 0 };
	REQUIRE(s.lab && s.dist);
	t0 = mono_now();
	pthread_create(&th, NULL, long_search, &s);
	while (!__atomic_load_n(&s.started, __ATOMIC_SEQ_CST))
		;
	/*
	 * Nothing shows when the long search is inside FAISS (or, with a
	 * lock, holds it): give it 50 ms to get there.  It runs for several
	 * times that, and is checked to be still running after.
	 */
	nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	CHECK(!__atomic_load_n(&s.done, __ATOMIC_SEQ_CST));
	while (inside < 5 && !__atomic_load_n(&s.done, __ATOMIC_SEQ_CST)) {
		CHECK_EQ_INT(mv_index_search(ix, 1, q, K, short_np, short_ef,
					     dist, lab, &err), 0);
		wrong += memcmp(lab, want, sizeof(lab)) != 0;
		inside += !__atomic_load_n(&s.done, __ATOMIC_SEQ_CST);
	}
	pthread_join(th, NULL);
	unit_diag("%s: searches done during a long one (%.0f ms): %d", spec,
		  (mono_now() - t0) * 1e3, inside);
	CHECK_EQ_INT(s.rc, 0);
	CHECK(inside >= 3);
	CHECK_EQ_INT(wrong, 0);
	free(s.lab);
	free(s.dist);
	mv_index_free(ix);
	free(x);
	free(q);
}

/* The level-0 list of the last vector of an IndexHNSWFlat serialised by
 * FAISS 1.7.3: how many links it holds, or -1. */
static int last_level0_links(const void *buf, size_t len)
{
	struct hgraph g;
	uint64_t b, e;
	int links = 0;

	if (parse_hnsw(buf, len, &g) < 0)
		return -1;
	hrange(&g, (int32_t)(g.noff - 2), 0, &b, &e);
	for (uint64_t i = b; i < e; i++)
		links += geti32(g.nb, i) >= 0;
	return links;
}

/*
 * FAISS patch 05: a new vector links on level 0 to at most M neighbours,
 * chosen by the heuristic, as hnswlib does; stock 1.7.3 kept every one of
 * the efConstruction candidates up to 2 M: here all 40 for M 32.  The last
 * vector, added alone, has no back links yet: its list is what it chose.
 */
TEST(index_hnsw_level0_links_at_most_m)
{
	float *x = randvecs(N, 7);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new("HNSW32", D, 0, &err);
	void *buf = NULL;
	size_t len = 0;
	int links;

	REQUIRE(ix != NULL);
	CHECK_EQ_INT(mv_index_set(ix, "efConstruction", 40, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N - 1, x, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, 1, x + (size_t)(N - 1) * D, &err), 0);
	REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
	links = last_level0_links(buf, len);
	unit_diag("last vector's level-0 links: %d (M 32, efConstruction 40)",
		  links);
	CHECK(links >= 1);
	CHECK(links <= 32);
	free(buf);
	mv_index_free(ix);
	free(x);
}

TEST(index_hnsw_mixed_ef_concurrent)
{
	check_not_serialised("HNSW16", N / 2, 0, 256, 0, 32);
}

TEST(index_fastscan_mixed_nprobe_concurrent)
{
	check_not_serialised("IVF32,PQ8x4fs", 4 * N, 32, 0, 4, 0);
}
#endif

TEST(vcheck_norm_limit)
{
	float v[3 * 20];
	const char *why = NULL;

	for (int i = 0; i < 3 * 20; i++)
		v[i] = 1e17f;		/* squared norm 2e35 */
	CHECK_EQ_INT(mv_vcheck(v, 3, 20, &why), -1);
	v[2 * 20 + 19] = 3e18f;		/* squared norm 9e36 + 2e35 */
	CHECK_EQ_INT(mv_vcheck(v, 3, 20, &why), -1);
	v[2 * 20 + 19] = 3.3e18f;	/* 1.09e37 + 2e35 */
	CHECK_EQ_INT(mv_vcheck(v, 3, 20, &why), 2);
	CHECK(strstr(why, "too large") != NULL);
	v[1 * 20 + 3] = 1e20f;		/* its square overflows float */
	CHECK_EQ_INT(mv_vcheck(v, 3, 20, &why), 1);
	CHECK(strstr(why, "too large") != NULL);
	v[3] = NAN;
	CHECK_EQ_INT(mv_vcheck(v, 3, 20, &why), 0);
	CHECK_STR(why, "NaN or Inf");
	v[3] = -INFINITY;
	CHECK_EQ_INT(mv_vcheck(v, 1, 20, &why), 0);
	CHECK_STR(why, "NaN or Inf");
	CHECK_EQ_INT(mv_vcheck(v, 0, 20, &why), -1);
}

/*
 * Labels FAISS leaves alone (no hit: distances that overflow) must come
 * back as -1, never as whatever the caller's arrays held.
 */
static void check_labels(const int64_t *l, size_t n, size_t ny)
{
	for (size_t i = 0; i < n; i++)
		CHECK(l[i] == -1 || (l[i] >= 0 && (size_t)l[i] < ny));
}

TEST(knn_and_index_labels_defined_on_overflow)
{
	float y[4] = { 1, 2, 3, 4 }, yn[1] = { 30 }, q[20 * 4], dist[20 * 3];
	int64_t lab[20 * 3];
	struct mv_err err = { 0 };
	struct mv_index *ix;

	for (int i = 0; i < 20 * 4; i++)
		q[i] = 1e20f;
	for (size_t nq = 1; nq <= 20; nq += 19) {
		for (int l2 = 0; l2 <= 2; l2++) {
			for (size_t k = 1; k <= 3; k += 2) {
				memset(lab, 0x55, sizeof(lab));
				CHECK_EQ_INT(mv_knn(l2 != 0, q, nq, y, 1, 4, k,
						    l2 == 2 ? yn : NULL, dist,
						    lab, &err), 0);
				check_labels(lab, nq * k, 1);
			}
		}
		ix = mv_index_new("Flat", 4, 0, &err);
		CHECK(ix != NULL);
		CHECK_EQ_INT(mv_index_add(ix, 1, y, &err), 0);
		memset(lab, 0x55, sizeof(lab));
		CHECK_EQ_INT(mv_index_search(ix, nq, q, 3, 0, 0, dist, lab,
					     &err), 0);
		check_labels(lab, nq * 3, 1);
		mv_index_free(ix);
	}
}

/*
 * mv_index_map: the FAISS bytes at an offset inside a larger file (as in
 * mv's .idx files) load with an IVF's lists mapped from that file, answer
 * exactly as the index read from memory does (HNSW, read as usual, too),
 * and a length that is not where FAISS's bytes end is MV_EIO.
 */
TEST(index_map_at_offset)
{
	static const char *const specs[] = { "IVF16,Flat", "IVF16,SQ8", "HNSW8" };
	float *x = randvecs(N, 11), *q = randvecs(NQ, 12);
	float d1[NQ * K], d2[NQ * K];
	int64_t l1[NQ * K], l2[NQ * K];
	static const char pad[4096] = "mv header stand-in";

	REQUIRE(x && q);
	for (size_t t = 0; t < sizeof(specs) / sizeof(*specs); t++) {
		struct mv_err err = { 0 };
		struct mv_index *ix = mv_index_new(specs[t], D, 0, &err), *rd, *mp;
		void *buf = NULL;
		size_t len = 0;
		const char *path = unit_path("index-map.idx");
		FILE *f;

		REQUIRE(ix);
		if (mv_index_train_size(ix, N))
			REQUIRE(mv_index_train(ix, N, x, &err) == 0);
		REQUIRE(mv_index_add(ix, N, x, &err) == 0);
		REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
		REQUIRE((f = fopen(path, "wb")));
		REQUIRE(fwrite(pad, 1, sizeof(pad), f) == sizeof(pad));
		REQUIRE(fwrite(buf, 1, len, f) == len);
		REQUIRE(fclose(f) == 0);
		rd = mv_index_read(buf, len, &err);
		mp = mv_index_map(path, sizeof(pad), len, &err);
		if (!mp)
			unit_diag("%s: %s", specs[t], err.msg);
		REQUIRE(rd && mp);
		CHECK_EQ_INT(mv_index_ntotal(mp), N);
		REQUIRE(mv_index_search(rd, NQ, q, K, 4, 32, d1, l1, &err) == 0);
		REQUIRE(mv_index_search(mp, NQ, q, K, 4, 32, d2, l2, &err) == 0);
		CHECK_MEM(l2, l1, sizeof(l1));
		CHECK_MEM(d2, d1, sizeof(d1));
		/* A wrong length or offset: refused. */
		CHECK(!mv_index_map(path, sizeof(pad), len - 1, &err));
		CHECK_EQ_INT(err.code, MV_EIO);
		CHECK(!mv_index_map(path, sizeof(pad) - 64, len, &err));
		CHECK(!mv_index_map(unit_path("no-such.idx"), 0, len, &err));
		CHECK_EQ_INT(err.code, MV_EIO);
		mv_index_free(rd);
		mv_index_free(mp);
		mv_index_free(ix);
		free(buf);
	}
	free(x);
	free(q);
}

/*
 * Below 256 rows mv_knn_renorm and mv_knn_norms2 do FAISS's arithmetic on
 * the calling thread (no OpenMP team for a single query): the same bits
 * as FAISS's own, which they call for 256 rows and more.
 */
TEST(knn_small_norms_as_faiss)
{
	const size_t n = 300;
	float *a = randvecs(n, 11), *b = malloc(n * D * sizeof(float));
	float na[300], nb[300];

	CHECK(b != NULL);
	for (size_t i = 0; i < n * D; i++)
		a[i] *= (float)(i % 7 + 1) * 3.3f;
	memcpy(b, a, n * D * sizeof(float));
	memset(a + 5 * D, 0, D * sizeof(float));	/* a zero row stays 0 */
	memset(b + 5 * D, 0, D * sizeof(float));
	mv_knn_norms2(a, n, D, na);		/* FAISS's */
	for (size_t i = 0; i < n; i++)
		mv_knn_norms2(b + i * D, 1, D, nb + i);
	CHECK(!memcmp(na, nb, sizeof(na)));
	mv_knn_renorm(a, n, D);
	for (size_t i = 0; i < n; i += 100)
		mv_knn_renorm(b + i * D, n - i < 100 ? n - i : 100, D);
	CHECK(!memcmp(a, b, n * D * sizeof(float)));
	for (size_t j = 0; j < D; j++)
		CHECK(a[5 * D + j] == 0);
	free(a);
	free(b);
}

/* mv_index_write_to's put into a buffer; fails with MV_EIO at call fail_at. */
struct sink {
	unsigned char *p;
	size_t len, cap;
	int calls, fail_at;
};

static int sink_put(void *ctx, const void *p, size_t n, struct mv_err *err)
{
	struct sink *s = ctx;

	if (++s->calls == s->fail_at)
		return mv_err_set(err, MV_EIO, "write 'x': No space left on "
				  "device");
	if (s->len + n > s->cap)
		return mv_err_set(err, MV_EINTERNAL, "sink full");
	memcpy(s->p + s->len, p, n);
	s->len += n;
	return 0;
}

/*
 * Each spec built by adds in pieces (lists and arrays grown as a build
 * grows them): streamed out, its bytes are mv_index_write's; settled, it
 * searches as before and writes the same bytes, and it is settled (1)
 * unless its lists are of a kind settle does not know (fast scan: 0).
 */
static void check_stream_settle(const char *spec, int want_settled)
{
	float *x = randvecs(N, 3), *q = randvecs(NQ, 4);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new(spec, D, 0, &err);
	int64_t lab0[NQ * K], lab1[NQ * K];
	float dist[NQ * K];
	void *buf, *buf1;
	size_t len, len1;
	struct sink s = { 0 };

	REQUIRE(ix != NULL);
	if (!mv_index_is_trained(ix))
		CHECK_EQ_INT(mv_index_train(ix, N, x, &err), 0);
	mv_index_reserve(ix, N);
	for (size_t r = 0; r < N; r += 300)
		CHECK_EQ_INT(mv_index_add(ix, N - r < 300 ? N - r : 300,
					  x + r * D, &err), 0);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 4, 32, dist, lab0, &err), 0);
	REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
	s.cap = len;
	s.p = malloc(len);
	CHECK_EQ_INT(mv_index_write_to(ix, sink_put, &s, &err), 0);
	CHECK(s.len == len && !memcmp(s.p, buf, len));
	unit_diag("%s: %zu bytes in %d puts", spec, len, s.calls);
	CHECK(s.calls < 64);	/* gathered, not field by field */
	/* A put that fails ends the write with its own error. */
	s.fail_at = s.calls;	/* the last */
	s.len = 0;
	s.calls = 0;
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(mv_index_write_to(ix, sink_put, &s, &err), MV_EIO);
	CHECK_STR(err.msg, "write 'x': No space left on device");
	CHECK_EQ_INT(mv_index_settle(ix), want_settled);
	CHECK_EQ_INT(mv_index_search(ix, NQ, q, K, 4, 32, dist, lab1, &err), 0);
	CHECK(!memcmp(lab0, lab1, sizeof(lab0)));
	REQUIRE(mv_index_write(ix, &buf1, &len1, &err) == 0);
	CHECK(len1 == len && !memcmp(buf1, buf, len));
	free(buf);
	free(buf1);
	free(s.p);
	mv_index_free(ix);
	free(x);
	free(q);
}

TEST(index_stream_and_settle)
{
	check_stream_settle("HNSW8", 1);
	check_stream_settle("IVF32,Flat", 1);
	check_stream_settle("IVF32,PQ4x4", 1);
	check_stream_settle("Flat", 1);
	check_stream_settle("IVF32,PQ8x4fs", 0);
}

/*
 * search.c - exact search over the unindexed segments, merged with the
 * search of the index part (indexer.c); with a filter (filter.h), the
 * plan of docs/ARCHITECTURE.md "Filtered search": per segment the bitmap
 * of the rows that match and are not deleted, then an exact search over
 * those rows, or the index restricted to them.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include "bigmem.h"
#include "filter.h"
#include "internal.h"
#include "knn.h"
#include "log.h"
#include "segfile.h"
#include "vcheck.h"

/*
 * The plan's thresholds (bench/filter measured them, docs/BENCHMARKS.md
 * "Filtered search"): the indexed part is searched exactly over its
 * matching rows when at most FILTER_EXACT_ROWS match, or less than
 * FILTER_EXACT_SHARE of its live rows, or no more rows than the widened
 * index search costs, counted in rows of an exact search (IVF: nprobe
 * lists of live/nlist rows; HNSW: FILTER_HNSW_ROWS per unit of ef, its
 * distances at random places and its graph walk, against BLAS over a copy
 * of the rows for a batch; FILTER_HNSW_ROWS_FEW for fewer queries than
 * FILTER_GATHER_NQ, whose exact search reads each row once per query,
 * at memory speed); else through the index
 * with a selector, nprobe scaled up by 1/sqrt(share) and ef by
 * 1/share^0.75 (the share of live rows that match), at most FILTER_WIDEN
 * times and to at most
 * FILTER_EF_MAX / FILTER_NPROBE_MAX.  A brute-force segment walks a list
 * of its matching rows when they are at most a FILTER_ROWS_SHARE of it,
 * else tests every row's bit.
 */
#define FILTER_EXACT_ROWS 4096
#define FILTER_HNSW_ROWS 256.0
#define FILTER_HNSW_ROWS_FEW 32.0
#define FILTER_EXACT_SHARE 0.02
#define FILTER_WIDEN 16.0
#define FILTER_EF_MAX 1024
#define FILTER_NPROBE_MAX 1024
#define FILTER_ROWS_SHARE (1.0 / 16)
/* Queries from which a batch gathers its rows for BLAS (FAISS's 20). */
#define FILTER_GATHER_NQ 20

/*
 * OR the n bits of src (its bits past n clear) into bits from bit base
 * on: a byte at a time, shifted, not a bit at a time (a filter matching
 * half of a million rows sets half a million bits here per request).
 */
static void bits_at(uint8_t *bits, uint64_t base, const uint8_t *src,
		    uint64_t n)
{
	uint8_t *d = bits + base / 8;
	unsigned sh = (unsigned)(base % 8);

	for (uint64_t b = 0; b < (n + 7) / 8; b++) {
		unsigned v = (unsigned)src[b] << sh;

		if (!v)
			continue;
		d[b] |= (uint8_t)v;
		if (v >> 8)
			d[b + 1] |= (uint8_t)(v >> 8);
	}
}

/* The rows of a bitmap of n bits into rows (room for m). */
static size_t bits_rows(const uint8_t *bits, uint64_t n, int64_t *rows)
{
	size_t m = 0, nb = (n + 7) / 8;

	for (size_t i = 0; i < nb; i += 8) {
		uint64_t w = mv_bits_word(bits, nb, i * 8);

		while (w) {
			rows[m++] = (int64_t)(i * 8 + (size_t)__builtin_ctzll(w));
			w &= w - 1;
		}
	}
	return m;
}

/* Scratch of a search: grown, never shrunk. */
struct scratch {
	float *td;
	int64_t *tl;
	size_t cap;
};

static int scratch_get(struct scratch *sc, size_t n, struct mv_err *err)
{
	if (n <= sc->cap)
		return 0;
	free(sc->td);
	free(sc->tl);
	sc->cap = n;
	sc->td = malloc(n * sizeof(float) + 1);
	sc->tl = malloc(n * sizeof(int64_t) + 1);
	if (!sc->td || !sc->tl) {
		sc->cap = 0;
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	return 0;
}

/*
 * Exact search of nq queries q over the m rows of s listed in rows (or,
 * rows NULL, those set in bits), merged into ids/dist (k each).  vecs are
 * the segment's searched vectors, or NULL: then its raw ones, normalised
 * for cosine in a copy of those rows.
 */
static int exact_rows(struct node *nd, struct coll *c, struct seg *s,
		      const float *q, size_t nq, size_t k, const uint8_t *bits,
		      const int64_t *rows, size_t m, int64_t *ids, float *dist,
		      struct scratch *sc, struct mv_err *err)
{
	int l2 = c->metric == MV_L2, rc;
	size_t kk = k < m ? k : m;
	const float *v = s->vecs;
	float *copy = NULL;
	int raw = 0;

	if (!m)
		return 0;
	if (scratch_get(sc, nq * kk, err) < 0)
		return MV_EINTERNAL;
	if (!v) {
		if ((rc = node_seg_raw(nd, s, &v, err)) < 0)
			return rc;
		raw = c->metric == MV_COSINE;
	}
	if (rows && (raw || nq >= FILTER_GATHER_NQ)) {
		/*
		 * A copy of the few matching rows (at most a sixteenth of a
		 * segment, or the plan's exact branch of the index): raw
		 * cosine rows need normalising, and a batch of queries goes
		 * many times faster through BLAS over contiguous rows than
		 * row by row through a list.
		 */
		copy = malloc(m * c->dim * sizeof(float) + 1);
		if (!copy)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		for (size_t j = 0; j < m; j++)
			memcpy(copy + j * c->dim, v + rows[j] * c->dim,
			       c->dim * sizeof(float));
		if (raw)
			node_normalise(copy, m, c->dim);
		rc = mv_knn(l2, q, nq, copy, m, c->dim, kk, NULL, sc->td,
			    sc->tl, err);
		for (size_t i = 0; rc == 0 && i < nq * kk; i++)
			if (sc->tl[i] >= 0)
				sc->tl[i] = rows[sc->tl[i]];
		free(copy);
		goto merge;
	}
	if (rows)
		rc = mv_knn_rows(l2, q, nq, v, rows, m, c->dim, kk, sc->td,
				 sc->tl, err);
	else
		rc = mv_knn_sel(l2, q, nq, v, s->n, c->dim, kk,
				v == s->vecs ? s->norms2 : NULL, bits, sc->td,
				sc->tl, err);
merge:
	if (rc < 0)
		return rc;
	for (size_t qi = 0; qi < nq; qi++)
		for (size_t j = 0; j < kk; j++) {
			int64_t row = sc->tl[qi * kk + j];

			if (row < 0 || (uint64_t)row >= s->n)
				continue;
			node_merge_hit(l2, ids + qi * k, dist + qi * k, k,
				       s->ids[row], sc->td[qi * kk + j]);
		}
	return 0;
}

/*
 * The indexed part under a filter (c->lock held): the label bitmap of
 * the matching live rows; few of them: exact search over them; else the
 * index with a selector and a wider search, and an exact search for any
 * query that came back short.  Results merged into ids/dist.
 */
static int index_filtered(struct node *nd, struct coll *c, const float *q,
			  size_t nq, size_t k, long nprobe, long ef,
			  const struct mv_filter *f, uint64_t asof, int64_t *ids,
			  float *dist, struct scratch *sc, struct mv_err *err)
{
	struct cindex *ci = c->index;
	uint64_t total = ci->base[ci->nsegs], live = 0, m = 0, maxn = 0;
	uint8_t *lab = NULL, *sb = NULL;
	int64_t *rows = NULL;
	size_t *segm = NULL, *segb = NULL, kk, nshort = 0, nb = 0;
	int l2 = c->metric == MV_L2, rc = 0;
	double work;
	unsigned char *isshort = NULL;
	float *sq = NULL;
	int64_t *ri = NULL;
	float *rd = NULL;

	segb = malloc((ci->nsegs + 1) * sizeof(*segb));
	if (!segb) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ci->nsegs; i++) {
		live += ci->segs[i]->n - ci->segs[i]->ndeleted;
		if (ci->segs[i]->n > maxn)
			maxn = ci->segs[i]->n;
		segb[i] = nb;	/* segment i's bitmap in sb */
		nb += (ci->segs[i]->n + 7) / 8;
	}
	lab = calloc(total / 8 + 1, 1);
	sb = malloc(nb + 1);
	rows = malloc((maxn + 1) * sizeof(*rows));
	segm = calloc(ci->nsegs + 1, sizeof(*segm));
	if (!lab || !sb || !rows || !segm) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	/* Each segment's matching rows, once: the plan's branches reuse them. */
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *s = ci->segs[i];

		segm[i] = node_seg_match_at(s, f, asof, sb + segb[i]);
		if (segm[i])
			bits_at(lab, ci->base[i], sb + segb[i], s->n);
		m += segm[i];
	}
	if (!m)
		goto out;
	if (live < m)
		live = m;	/* as of a flush: rows deleted since count */
	{
		/*
		 * A search among a share s of the rows finds its k in a
		 * frontier 1/s as wide, but the unfiltered search's ef or
		 * nprobe already holds more than k: 1/sqrt(s) kept IVF's
		 * recall at or above the unfiltered one at 50%, 25% and 10%,
		 * 1/s bought little more at 2-4x the cost (BENCHMARKS.md
		 * "Filtered search", the widening).
		 */
		double share = (double)m / (double)live;
		long nlist = mv_index_nlist(ci->ix);
		/*
		 * HNSW: 1/sqrt(s) fell short of the unfiltered recall on
		 * 100,000 rows (ef 16 at 50 % and 25 %; ef 16 to 64 at 10 %
		 * once single queries went through the index, below), so
		 * 1/s^0.75, which stayed above it at every share measured
		 * (BENCHMARKS.md, "Single filtered queries").
		 */
		double widen = nlist <= 0 ? pow(1.0 / share, 0.75)
					  : sqrt(1.0 / share);

		if (widen > FILTER_WIDEN)
			widen = FILTER_WIDEN;
		if (nprobe <= 0)
			nprobe = ci->nprobe > 0 ? ci->nprobe : 1;
		if (ef <= 0)
			ef = ci->ef > 0 ? ci->ef : 16;
		if (ef < (long)k)
			ef = (long)k;
		nprobe = (long)ceil((double)nprobe * widen);
		ef = (long)ceil((double)ef * widen);
		if (nprobe > FILTER_NPROBE_MAX)
			nprobe = FILTER_NPROBE_MAX;
		if (ef > FILTER_EF_MAX)
			ef = FILTER_EF_MAX > (long)k ? FILTER_EF_MAX : (long)k;
		if (nlist > 0 && nprobe > nlist)
			nprobe = nlist;
		/*
		 * What the widened index search costs per query, in rows of
		 * an exact search: IVF scans nprobe lists of live/nlist rows;
		 * HNSW about FILTER_HNSW_ROWS per unit of ef.
		 */
		work = nlist > 0 ? (double)nprobe * (double)live / (double)nlist
				 : (double)ef * (nq < FILTER_GATHER_NQ ?
						 FILTER_HNSW_ROWS_FEW :
						 FILTER_HNSW_ROWS);
	}
	if (m <= FILTER_EXACT_ROWS || (double)m < FILTER_EXACT_SHARE * live ||
	    (double)m <= work) {
		log_debug("collection '%s': filtered search: %" PRIu64 " of %"
			  PRIu64 " rows match, exact over them (the index "
			  "would cost %.0f)", c->name, m, live, work);
		/* Few match: exact over them, recall 1. */
		for (size_t i = 0; rc == 0 && i < ci->nsegs; i++) {
			struct seg *s = ci->segs[i];
			size_t n;

			if (!segm[i])
				continue;
			n = bits_rows(sb + segb[i], s->n, rows);
			rc = exact_rows(nd, c, s, q, nq, k, NULL, rows, n, ids,
					dist, sc, err);
		}
		goto out;
	}
	log_debug("collection '%s': filtered search: %" PRIu64 " of %" PRIu64
		  " rows match, the index with nprobe %ld ef %ld", c->name, m,
		  live, nprobe, ef);
	kk = k < m ? k : (size_t)m;
	ri = malloc(nq * k * sizeof(*ri) + 1);
	rd = malloc(nq * k * sizeof(*rd) + 1);
	isshort = calloc(nq + 1, 1);
	if (!ri || !rd || !isshort || scratch_get(sc, nq * kk, err) < 0) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	rc = mv_index_search_sel(ci->ix, nq, q, kk, nprobe, ef, lab, total,
				 sc->td, sc->tl, err);
	if (rc < 0)
		goto out;
	node_topk_clear(l2, ri, rd, nq * k);
	for (size_t qi = 0; qi < nq; qi++) {
		size_t got = 0;

		for (size_t j = 0; j < kk; j++) {
			int64_t l = sc->tl[qi * kk + j];
			size_t si;

			/* Only labels of the bitmap: matching, not deleted,
			 * whatever the index type did with the selector. */
			if (l < 0 || (uint64_t)l >= total ||
			    !(lab[l / 8] & (1u << (l % 8))))
				continue;
			si = node_label_seg(ci, (uint64_t)l);
			got++;
			node_merge_hit(l2, ri + qi * k, rd + qi * k, k,
				       ci->segs[si]->ids[(uint64_t)l -
							 ci->base[si]],
				       sc->td[qi * kk + j]);
		}
		if (got < kk) {
			isshort[qi] = 1;
			nshort++;
		}
	}
	if (nshort) {
		/* Short of k while k match: finish those exactly. */
		size_t j = 0;
		int64_t *si = malloc(nshort * k * sizeof(*si) + 1);
		float *sd = malloc(nshort * k * sizeof(*sd) + 1);

		sq = malloc(nshort * c->dim * sizeof(float) + 1);
		if (!si || !sd || !sq) {
			free(si);
			free(sd);
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		for (size_t qi = 0; qi < nq; qi++)
			if (isshort[qi])
				memcpy(sq + j++ * c->dim, q + qi * c->dim,
				       c->dim * sizeof(float));
		node_topk_clear(l2, si, sd, nshort * k);
		for (size_t i = 0; rc == 0 && i < ci->nsegs; i++) {
			struct seg *s = ci->segs[i];
			size_t n;

			if (!segm[i])
				continue;
			n = bits_rows(sb + segb[i], s->n, rows);
			rc = exact_rows(nd, c, s, sq, nshort, k, NULL, rows, n,
					si, sd, sc, err);
		}
		j = 0;
		for (size_t qi = 0; rc == 0 && qi < nq; qi++) {
			if (!isshort[qi])
				continue;
			memcpy(ri + qi * k, si + j * k, k * sizeof(*ri));
			memcpy(rd + qi * k, sd + j * k, k * sizeof(*rd));
			j++;
		}
		free(si);
		free(sd);
		if (rc < 0)
			goto out;
	}
	for (size_t qi = 0; qi < nq; qi++)
		for (size_t j = 0; j < k && ri[qi * k + j] != MV_ID_NONE; j++)
			node_merge_hit(l2, ids + qi * k, dist + qi * k, k,
				       ri[qi * k + j], rd[qi * k + j]);
out:
	free(lab);
	free(sb);
	free(rows);
	free(segm);
	free(segb);
	free(isshort);
	free(sq);
	free(ri);
	free(rd);
	return rc;
}

/* A brute-force segment under a filter, merged into ids/dist. */
static int seg_filtered(struct node *nd, struct coll *c, struct seg *s,
			const float *q, size_t nq, size_t k,
			const struct mv_filter *f, uint64_t asof, int64_t *ids,
			float *dist, struct scratch *sc, struct mv_err *err)
{
	uint8_t *bits = malloc(s->n / 8 + 1);
	int64_t *rows = NULL;
	size_t m;
	int rc;

	if (!bits)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	m = node_seg_match_at(s, f, asof, bits);
	if (m && (double)m <= FILTER_ROWS_SHARE * (double)s->n) {
		rows = malloc(m * sizeof(*rows) + 1);
		if (!rows) {
			free(bits);
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		}
		bits_rows(bits, s->n, rows);
	}
	rc = exact_rows(nd, c, s, q, nq, k, bits, rows, m, ids, dist, sc, err);
	free(bits);
	free(rows);
	return rc;
}

/*
 * Whether to search the unit at path: 1 when it is in want (or want is
 * NULL) and served here (listed in done), 0 when not wanted, 0 and listed
 * in todo when wanted but not served.
 */
static int unit_pick(const char *path, int served,
		     const struct node_units *want, struct node_units *done,
		     struct node_units *todo, int *rc, struct mv_err *err)
{
	const char *leaf = strrchr(path, '/');

	leaf = leaf ? leaf + 1 : path;
	if (want && !node_units_has(want, leaf))
		return 0;
	if (done || todo) {
		struct node_units *u = served ? done : todo;

		if (u && node_units_add(u, leaf) < 0) {
			*rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			return 0;
		}
	}
	return served;
}

int node_search_filter(struct node *nd, struct coll *c, const float *q,
		       size_t nq, size_t k, long nprobe, long ef,
		       const struct mv_filter *f, int64_t *ids, float *dist,
		       struct mv_err *err)
{
	return node_search_at(nd, c, q, nq, k, nprobe, ef, f, 0, ids, dist,
			      err);
}

int node_search_at(struct node *nd, struct coll *c, const float *q,
		   size_t nq, size_t k, long nprobe, long ef,
		   const struct mv_filter *f, uint64_t asof, int64_t *ids,
		   float *dist, struct mv_err *err)
{
	return node_search_units(nd, c, q, nq, k, nprobe, ef, f, asof, NULL,
				 NULL, NULL, ids, dist, err);
}

int node_search_units(struct node *nd, struct coll *c, const float *q,
		      size_t nq, size_t k, long nprobe, long ef,
		      const struct mv_filter *f, uint64_t asof,
		      const struct node_units *want, struct node_units *done,
		      struct node_units *todo, int64_t *ids, float *dist,
		      struct mv_err *err)
{
	int l2 = c->metric == MV_L2;
	float *qn = NULL;
	struct scratch sc = { 0 };
	int rc = 0, units = want || done || todo;

	node_topk_clear(l2, ids, dist, nq * k);
	if (c->metric == MV_COSINE) {
		qn = malloc(nq * c->dim * sizeof(float));
		if (!qn)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		memcpy(qn, q, nq * c->dim * sizeof(float));
		node_normalise(qn, nq, c->dim);
		q = qn;
	}
	pthread_rwlock_rdlock(&c->lock);
	node_test_pause("MV_TEST_PAUSE_SEARCH_LOCKED");
	/* The cut the holders of the rest answer at (fanout.c). */
	if (todo)
		todo->seq = asof ? asof : c->next_seq - 1;
	/* As of the latest flush: the current rows, today's path. */
	asof = node_asof_now(c, asof);
	/* The index: unless this node holds it not (place.c). */
	if (c->index && (units ? unit_pick(c->index->path, c->index->ix != NULL,
					   want, done, todo, &rc, err)
			       : c->index->ix != NULL))
		rc = f || asof ? index_filtered(nd, c, q, nq, k, nprobe, ef, f,
						asof, ids, dist, &sc, err)
		       : node_index_search(c, q, nq, k, nprobe, ef, ids, dist,
					   err);
	/* Segments the index does not cover: brute force, same top-k. */
	for (size_t si = 0; rc == 0 && si < c->nsegs; si++) {
		struct seg *s = c->segs[si];
		size_t kk = k + s->ndeleted;

		if (s->indexed)
			continue;
		if (s->n == s->ndeleted && !asof) {
			/* Nothing to search: done wherever it is held. */
			if (units)
				unit_pick(s->path, 1, want, done, NULL, &rc,
					  err);
			continue;
		}
		if (units ? !unit_pick(s->path, s->vecs != NULL, want, done,
				       todo, &rc, err)
			  : !s->vecs)
			continue;
		if (f || asof) {
			rc = seg_filtered(nd, c, s, q, nq, k, f, asof, ids, dist,
					  &sc, err);
			continue;
		}
		if (kk > s->n)
			kk = s->n;
		if (scratch_get(&sc, nq * kk, err) < 0) {
			rc = MV_EINTERNAL;
			break;
		}
		rc = mv_knn(l2, q, nq, s->vecs, s->n, c->dim, kk, s->norms2,
			    sc.td, sc.tl, err);
		if (rc < 0)
			break;
		for (size_t qi = 0; qi < nq; qi++) {
			for (size_t j = 0; j < kk; j++) {
				int64_t row = sc.tl[qi * kk + j];

				if (row < 0 || node_seg_is_deleted(s, (uint64_t)row))
					continue;
				node_merge_hit(l2, ids + qi * k, dist + qi * k, k,
					       s->ids[row], sc.td[qi * kk + j]);
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	free(qn);
	free(sc.td);
	free(sc.tl);
	return rc;
}

int node_search(struct node *nd, struct coll *c, const float *q, size_t nq,
		size_t k, long nprobe, long ef, int64_t *ids, float *dist,
		struct mv_err *err)
{
	return node_search_filter(nd, c, q, nq, k, nprobe, ef, NULL, ids, dist,
				  err);
}

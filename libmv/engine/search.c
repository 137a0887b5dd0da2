/*
 * search.c - exact search over the unindexed segments, merged with the
 * search of the index part (indexer.c).
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
#include "internal.h"
#include "knn.h"
#include "log.h"
#include "segfile.h"
#include "vcheck.h"

int node_search(struct node *nd, struct coll *c, const float *q, size_t nq,
		size_t k, long nprobe, long ef, int64_t *ids, float *dist,
		struct mv_err *err)
{
	int l2 = c->metric == MV_L2;
	float *qn = NULL, *td = NULL;
	int64_t *tl = NULL;
	size_t tcap = 0;
	int rc = 0;

	(void)nd;
	for (size_t i = 0; i < nq * k; i++) {
		ids[i] = MV_ID_NONE;
		dist[i] = l2 ? INFINITY : -INFINITY;
	}
	if (c->metric == MV_COSINE) {
		qn = malloc(nq * c->dim * sizeof(float));
		if (!qn)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		memcpy(qn, q, nq * c->dim * sizeof(float));
		node_normalise(qn, nq, c->dim);
		q = qn;
	}
	pthread_rwlock_rdlock(&c->lock);
	if (c->index)
		rc = node_index_search(c, q, nq, k, nprobe, ef, ids, dist, err);
	/* Segments the index does not cover: brute force, same top-k. */
	for (size_t si = 0; rc == 0 && si < c->nsegs; si++) {
		struct seg *s = c->segs[si];
		size_t kk = k + s->ndeleted;

		if (s->indexed || s->n == s->ndeleted || !s->vecs)
			continue;
		if (kk > s->n)
			kk = s->n;
		if (nq * kk > tcap) {
			free(td);
			free(tl);
			tcap = nq * kk;
			td = malloc(tcap * sizeof(float));
			tl = malloc(tcap * sizeof(int64_t));
			if (!td || !tl) {
				rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
				break;
			}
		}
		rc = mv_knn(l2, q, nq, s->vecs, s->n, c->dim, kk, s->norms2,
			    td, tl, err);
		if (rc < 0)
			break;
		for (size_t qi = 0; qi < nq; qi++) {
			for (size_t j = 0; j < kk; j++) {
				int64_t row = tl[qi * kk + j];

				if (row < 0 || node_seg_is_deleted(s, (uint64_t)row))
					continue;
				node_merge_hit(l2, ids + qi * k, dist + qi * k, k,
					       s->ids[row], td[qi * kk + j]);
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	free(qn);
	free(td);
	free(tl);
	return rc;
}

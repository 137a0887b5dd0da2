/*
 * knn.h - exact k-nearest-neighbour search over a block of vectors, through
 * FAISS's own brute-force kernels (BLAS for batches, SIMD for single
 * queries).  The only place, with index.c, that links FAISS C++ symbols.
 */
#ifndef MV_KNN_H
#define MV_KNN_H

#include "mv.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * For each of nq queries x (nq*d), the k best of the ny vectors y (ny*d):
 * labels[i*k+j] a row of y (or -1: no hit, always set), dist the squared L2 distance
 * (ascending) when l2, else the inner product (descending).  y_norm2 (ny
 * squared norms) is optional for l2 and saves recomputing it.  Caller
 * allocates labels and dist (nq*k).  Thread-safe.  Returns 0 or
 * MV_EINTERNAL with the FAISS message.
 */
int mv_knn(int l2, const float *x, size_t nq, const float *y, size_t ny,
	   size_t d, size_t k, const float *y_norm2, float *dist,
	   int64_t *labels, struct mv_err *err);

/* Scale n vectors of d to unit length in place (zero vectors stay). */
void mv_knn_renorm(float *y, size_t n, size_t d);

/* Squared norms of n vectors of d (out: n floats). */
void mv_knn_norms2(const float *y, size_t n, size_t d, float *out);

#ifdef __cplusplus
}
#endif
#endif

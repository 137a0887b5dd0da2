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

/*
 * mv_knn over a subset of y: the rows whose bit is set in sel (a bitmap
 * of (ny + 7) / 8 bytes, bit r in sel[r / 8] & 1 << r % 8); labels are
 * rows of y.  Worth it when many rows are in the subset: every row's bit
 * is read; batches (20 queries or more) through BLAS as mv_knn's.
 */
int mv_knn_sel(int l2, const float *x, size_t nq, const float *y, size_t ny,
	       size_t d, size_t k, const float *y_norm2, const uint8_t *sel,
	       float *dist, int64_t *labels, struct mv_err *err);

/*
 * mv_knn over the rows rows[0..nrows) of y (any order, each once); labels
 * are rows of y.  For a small subset: only those rows are read.
 */
int mv_knn_rows(int l2, const float *x, size_t nq, const float *y,
		const int64_t *rows, size_t nrows, size_t d, size_t k,
		float *dist, int64_t *labels, struct mv_err *err);

/* Scale n vectors of d to unit length in place (zero vectors stay). */
void mv_knn_renorm(float *y, size_t n, size_t d);

/* Squared norms of n vectors of d (out: n floats). */
void mv_knn_norms2(const float *y, size_t n, size_t d, float *out);

#ifdef __cplusplus
}
#endif
#endif

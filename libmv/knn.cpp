/*
 * knn.cpp - a thin extern "C" shim over FAISS's brute-force kernels
 * (faiss::knn_L2sqr, faiss::knn_inner_product), which the 1.7.3 C API does
 * not expose.  FAISS exceptions stop here and become MV_EINTERNAL.
 */
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>
#include <exception>
#include <math.h>
#include <stdio.h>
#include "knn.h"

extern "C" int mv_knn(int l2, const float *x, size_t nq, const float *y,
		      size_t ny, size_t d, size_t k, const float *y_norm2,
		      float *dist, int64_t *labels, struct mv_err *err)
{
	/* FAISS leaves a slot it finds nothing for (distances that
	 * overflow, NaN) unwritten in some of its paths: no hit, then. */
	for (size_t i = 0; i < nq * k; i++) {
		labels[i] = -1;
		dist[i] = l2 ? INFINITY : -INFINITY;
	}
	try {
		if (l2)
			faiss::knn_L2sqr(x, y, d, nq, ny, k, dist, labels,
					 y_norm2);
		else
			faiss::knn_inner_product(x, y, d, nq, ny, k, dist,
						 labels);
	} catch (const std::exception &e) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: %s", e.what());
	} catch (...) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: unknown error");
	}
	return 0;
}

static void no_hits(int l2, size_t n, float *dist, int64_t *labels)
{
	for (size_t i = 0; i < n; i++) {
		labels[i] = -1;
		dist[i] = l2 ? INFINITY : -INFINITY;
	}
}

extern "C" int mv_knn_sel(int l2, const float *x, size_t nq, const float *y,
			  size_t ny, size_t d, size_t k, const uint8_t *sel,
			  float *dist, int64_t *labels, struct mv_err *err)
{
	faiss::IDSelectorBitmap bits((ny + 7) / 8, sel);

	no_hits(l2, nq * k, dist, labels);
	try {
		if (l2)
			faiss::knn_L2sqr(x, y, d, nq, ny, k, dist, labels,
					 nullptr, &bits);
		else
			faiss::knn_inner_product(x, y, d, nq, ny, k, dist,
						 labels, &bits);
	} catch (const std::exception &e) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: %s", e.what());
	} catch (...) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: unknown error");
	}
	return 0;
}

extern "C" int mv_knn_rows(int l2, const float *x, size_t nq, const float *y,
			   const int64_t *rows, size_t nrows, size_t d,
			   size_t k, float *dist, int64_t *labels,
			   struct mv_err *err)
{
	no_hits(l2, nq * k, dist, labels);
	try {
		/* ld 0: every query walks the same rows. */
		if (l2)
			faiss::knn_L2sqr_by_idx(x, y, rows, d, nq, nrows, k,
						dist, labels, 0);
		else
			faiss::knn_inner_products_by_idx(x, y, rows, d, nq,
							 nrows, k, dist,
							 labels, 0);
	} catch (const std::exception &e) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: %s", e.what());
	} catch (...) {
		return mv_err_set(err, MV_EINTERNAL, "faiss: unknown error");
	}
	/* The heaps start from +-inf with label -1: unfilled slots. */
	return 0;
}

extern "C" void mv_knn_norms2(const float *y, size_t n, size_t d, float *out)
{
	faiss::fvec_norms_L2sqr(out, y, d, n);
}

extern "C" void mv_knn_renorm(float *y, size_t n, size_t d)
{
	faiss::fvec_renorm_L2(d, n, y);
}

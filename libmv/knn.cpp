/*
 * knn.cpp - a thin extern "C" shim over FAISS's brute-force kernels
 * (faiss::knn_L2sqr, faiss::knn_inner_product), which the 1.7.3 C API does
 * not expose.  FAISS exceptions stop here and become MV_EINTERNAL.
 */
#include <cblas.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>
#include <exception>
#include <math.h>
#include <stdio.h>
#include <vector>
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

/*
 * The rows of [y0, y0 + n) selected in sel, for queries [q0, q0 + nq) whose
 * products with those rows are ip (nq x n), into the heaps.
 */
template <class C>
static void sel_block(int l2, const float *ip, size_t q0, size_t nq,
		      size_t y0, size_t n, const float *qn, const float *yn,
		      const uint8_t *sel, size_t k, float *dist,
		      int64_t *labels)
{
	for (size_t i = 0; i < nq; i++) {
		const float *row = ip + i * n;
		float *hd = dist + (q0 + i) * k;
		int64_t *hl = labels + (q0 + i) * k;

		for (size_t j = 0; j < n; j++) {
			size_t r = y0 + j;
			float v;

			if (!(sel[r / 8] & (1u << (r % 8))))
				continue;
			v = row[j];
			if (l2) {
				v = qn[q0 + i] + yn[j] - 2 * v;
				if (v < 0)
					v = 0;	/* as FAISS: rounding */
			}
			if (C::cmp(hd[0], v))
				faiss::heap_replace_top<C>(k, hd, hl, v,
							   (int64_t)r);
		}
	}
}

/*
 * The selector search of a batch as FAISS's own batches go: products by
 * BLAS a block of rows at a time (blocks with nothing selected skipped),
 * then only the selected rows into the heaps.
 */
template <class C>
static void sel_blas(int l2, const float *x, size_t nq, const float *y,
		     size_t ny, size_t d, size_t k, const float *y_norm2,
		     const uint8_t *sel, float *dist, int64_t *labels)
{
	const size_t bq = 512, by = 1024;
	std::vector<float> ip(bq * by), qn(l2 ? nq : 0), yn(l2 ? by : 0);

	if (l2)
		faiss::fvec_norms_L2sqr(qn.data(), x, d, nq);
	for (size_t i = 0; i < nq; i++)
		faiss::heap_heapify<C>(k, dist + i * k, labels + i * k);
	for (size_t y0 = 0; y0 < ny; y0 += by) {
		size_t n = ny - y0 < by ? ny - y0 : by, any = 0;
		const float *ynp = NULL;

		for (size_t b = y0 / 8; b <= (y0 + n - 1) / 8 && !any; b++)
			any = sel[b];
		if (!any)
			continue;
		if (l2) {
			if (y_norm2) {
				ynp = y_norm2 + y0;
			} else {
				faiss::fvec_norms_L2sqr(yn.data(), y + y0 * d,
							d, n);
				ynp = yn.data();
			}
		}
		for (size_t q0 = 0; q0 < nq; q0 += bq) {
			size_t m = nq - q0 < bq ? nq - q0 : bq;

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)m, (int)n, (int)d, 1.0f, x + q0 * d,
				    (int)d, y + y0 * d, (int)d, 0.0f, ip.data(),
				    (int)n);
			sel_block<C>(l2, ip.data(), q0, m, y0, n, qn.data(),
				     ynp, sel, k, dist, labels);
		}
	}
	for (size_t i = 0; i < nq; i++)
		faiss::heap_reorder<C>(k, dist + i * k, labels + i * k);
}

extern "C" int mv_knn_sel(int l2, const float *x, size_t nq, const float *y,
			  size_t ny, size_t d, size_t k, const float *y_norm2,
			  const uint8_t *sel, float *dist, int64_t *labels,
			  struct mv_err *err)
{
	faiss::IDSelectorBitmap bits((ny + 7) / 8, sel);

	no_hits(l2, nq * k, dist, labels);
	try {
		if (nq >= (size_t)faiss::distance_compute_blas_threshold &&
		    ny > 0) {
			if (l2)
				sel_blas<faiss::CMax<float, int64_t>>(
					1, x, nq, y, ny, d, k, y_norm2, sel,
					dist, labels);
			else
				sel_blas<faiss::CMin<float, int64_t>>(
					0, x, nq, y, ny, d, k, NULL, sel, dist,
					labels);
		} else if (l2)
			faiss::knn_L2sqr(x, y, d, nq, ny, k, dist, labels,
					 y_norm2, &bits);
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

/*
 * FAISS's fvec_norms_L2sqr and fvec_renorm_L2 run an OpenMP team for any
 * n: for a single query, the team's other thread is woken and put back
 * to sleep on every call (OMP_WAIT_POLICY=PASSIVE, a VM: 50-70 us, more
 * than an IVF search at nprobe 4 takes).  Fewer rows than SEQ_ROWS are
 * done by the calling thread alone, with FAISS's arithmetic, so the
 * results are the same bits.
 */
#define SEQ_ROWS 256

extern "C" void mv_knn_norms2(const float *y, size_t n, size_t d, float *out)
{
	if (n >= SEQ_ROWS) {
		faiss::fvec_norms_L2sqr(out, y, d, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = faiss::fvec_norm_L2sqr(y + i * d, d);
}

extern "C" void mv_knn_renorm(float *y, size_t n, size_t d)
{
	if (n >= SEQ_ROWS) {
		faiss::fvec_renorm_L2(d, n, y);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		float *v = y + i * d;
		float nr = faiss::fvec_norm_L2sqr(v, d);

		if (nr > 0) {
			float inv = (float)(1.0 / sqrtf(nr));

			for (size_t j = 0; j < d; j++)
				v[j] *= inv;
		}
	}
}

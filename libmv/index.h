/*
 * index.h - approximate (and exact) FAISS indexes: building from an
 * index_factory string, serialising to and from memory, and searching with
 * per-call parameters so that concurrent searches with different nprobe or
 * efSearch never race (FAISS 1.7.3 keeps them on the shared index object).
 * Labels are the 0-based order in which vectors were added.
 */
#ifndef MV_INDEX_H
#define MV_INDEX_H

#include "mv.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mv_index;

/*
 * Translate SPEC (a FAISS index_factory string, or a Milvus name FLAT,
 * IVF_FLAT, IVF_PQ, IVF_SQ8, HNSW using params nlist, m, M) into a factory
 * string.  params is "k=v k=v" or NULL.  MV_EUSAGE with a message when a
 * Milvus name lacks a parameter or has a bad one.
 */
int mv_index_spec(const char *spec, const char *params, char *out,
		  size_t cap, struct mv_err *err);

/* A new, empty index; ip selects inner product, else L2. */
struct mv_index *mv_index_new(const char *factory, uint32_t dim, int ip,
			      struct mv_err *err);
void mv_index_free(struct mv_index *ix);

/* Build-time settings: "efConstruction" (HNSW). 0 or MV_EUSAGE. */
int mv_index_set(struct mv_index *ix, const char *key, long value,
		 struct mv_err *err);
int mv_index_is_trained(const struct mv_index *ix);
/* How many training vectors are worth using (0: no training needed). */
size_t mv_index_train_size(const struct mv_index *ix, size_t n);
int mv_index_train(struct mv_index *ix, size_t n, const float *x,
		   struct mv_err *err);
int mv_index_add(struct mv_index *ix, size_t n, const float *x,
		 struct mv_err *err);
int64_t mv_index_ntotal(const struct mv_index *ix);
/*
 * Before the first add of n vectors: an HNSW index over plain vectors
 * takes its room for them at once (its arrays would grow by doubling and
 * keep the spare).  After the adds, mv_index_settle frees what room is
 * still spare (an IVF index's lists too) and returns 1 when the index
 * now holds what its bytes read back would, 0 for a type whose room it
 * does not know (IVF fast scan): that one is best read back.
 */
void mv_index_reserve(struct mv_index *ix, size_t n);
int mv_index_settle(struct mv_index *ix);

/* Serialise into a malloc'ed buffer (caller frees) / read one back. */
int mv_index_write(const struct mv_index *ix, void **buf, size_t *len,
		   struct mv_err *err);
/*
 * Serialise through put, in order, with no copy of the whole: the large
 * parts are handed over from the index's own memory, the small ones
 * gathered in 64 KiB.  put returns 0 or a negative MV_E* code with err
 * set, which ends the write and is returned.
 */
typedef int (*mv_index_put_fn)(void *ctx, const void *p, size_t n,
			       struct mv_err *err);
int mv_index_write_to(const struct mv_index *ix, mv_index_put_fn put,
		      void *ctx, struct mv_err *err);
struct mv_index *mv_index_read(const void *buf, size_t len,
			       struct mv_err *err);
/*
 * Read the index whose bytes are [off, off + len) of the file path, an
 * IVF index's inverted lists mapped from the file rather than copied
 * (read-only then: not for mv_index_add).  MV_EIO if they do not parse
 * or do not end at off + len.
 */
struct mv_index *mv_index_map(const char *path, uint64_t off, size_t len,
			      struct mv_err *err);

/*
 * Search nq queries; nprobe and ef <= 0 mean the index's own values.
 * Thread-safe for concurrent callers.  Caller allocates dist/labels nq*k;
 * a label is -1 where there is no hit.  Queries must pass mv_vcheck
 * (vcheck.h): FAISS throws on some overflows from inside an OpenMP region,
 * where no catch reaches, and the process aborts.
 */
int mv_index_search(const struct mv_index *ix, size_t nq, const float *x,
		    size_t k, long nprobe, long ef, float *dist,
		    int64_t *labels, struct mv_err *err);

/*
 * mv_index_search among the labels whose bit is set in sel (nsel bits, bit
 * l in sel[l / 8] & 1 << l % 8).  HNSW and IVF indexes skip the others;
 * the rest (IVF fast scan, a refine) may return them, and the caller
 * checks every label against sel.
 */
/* The lists of an IVF index (0: not an IVF index). */
long mv_index_nlist(const struct mv_index *ix);

int mv_index_search_sel(const struct mv_index *ix, size_t nq, const float *x,
			size_t k, long nprobe, long ef, const uint8_t *sel,
			size_t nsel, float *dist, int64_t *labels,
			struct mv_err *err);

#ifdef __cplusplus
}
#endif
#endif

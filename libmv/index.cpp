/*
 * index.cpp - FAISS indexes behind index.h.  Construction, training,
 * adding and serialisation go through FAISS's C API; searching with
 * per-call parameters (SearchParametersIVF / SearchParametersHNSW, which
 * the 1.7.3 C API lacks) and HNSW's build setting go through its C++ API.
 * FAISS errors and exceptions stop here and become MV_E* codes.
 */
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <exception>
#include <new>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern "C" {
#include "bigmem.h"
}
#include "index.h"

/*
 * Stock FAISS 1.7.3's HNSW sizes its candidate queue from the index's own
 * efSearch even when SearchParametersHNSW carries another (HNSW::search:
 * "int ef = std::max(efSearch, k)"), and its IVF fast-scan indexes refuse
 * parameters, so per-call values alone are not enough.  ef_lock makes it
 * safe: searches whose value equals the index's run concurrently under
 * the shared lock; another value takes the lock exclusively, sets it, and
 * searches alone.  Built against the FAISS that scripts/deps.sh patches
 * (scripts/faiss-patches/, MV_FAISS_PATCHED), HNSW honours the call's
 * efSearch and fast-scan IVF the call's nprobe, so searches at any value
 * run concurrently without the lock; it remains only for HNSW under a
 * refinement wrapper, which passes no parameters down.  A locked search
 * leaves its value on the index: mv_index_write puts ef0 and nprobe0 back
 * before it saves the index.
 */
#ifdef MV_FAISS_PATCHED
#define CALL_PARAMS_HONOURED 1	/* patches 01 and 02 */
#else
#define CALL_PARAMS_HONOURED 0
#endif

struct mv_index {
	FaissIndex *fi;
	pthread_rwlock_t ef_lock;
	int ef0;		/* HNSW: efSearch when no ef is given */
	size_t nprobe0;		/* IVF: nprobe when none is given */
};

/* Set up what a new or loaded index needs beside FAISS's object. */
static void index_init(struct mv_index *ix);
static void no_polysemous(struct mv_index *ix);

static faiss::Index *cxx(const mv_index *ix)
{
	return reinterpret_cast<faiss::Index *>(ix->fi);
}

/*
 * FAISS messages read "Error in <signature> at <file>:<line>: <what>";
 * the signature can be long enough to fill the error record, so keep only
 * what went wrong.
 */
static const char *faiss_what(const char *m)
{
	const char *at;

	if (!m)
		return "unknown error";
	if (!strncmp(m, "Error in ", 9) && (at = strstr(m, " at ")) &&
	    (at = strstr(at + 4, ": ")))
		return at + 2;
	return m;
}

static int faiss_fail(struct mv_err *err, int code, const char *what)
{
	return mv_err_set(err, code, "%s: %s", what,
			  faiss_what(faiss_get_last_error()));
}

/* Value of key in "k=v k=v", or -1. */
static long param(const char *params, const char *key)
{
	size_t kl = strlen(key);
	const char *p = params;

	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
		p = strpbrk(p, " ,");
	}
	return -1;
}

extern "C" int mv_index_spec(const char *spec, const char *params, char *out,
			     size_t cap, struct mv_err *err)
{
	long nlist = param(params, "nlist"), m = param(params, "m");
	long M = param(params, "M");

	if (!strcmp(spec, "FLAT")) {
		snprintf(out, cap, "Flat");
	} else if (!strcmp(spec, "IVF_FLAT") || !strcmp(spec, "IVF_SQ8") ||
		   !strcmp(spec, "IVF_PQ")) {
		if (nlist < 1 || nlist > (1L << 20))
			return mv_err_set(err, MV_EUSAGE,
				"%s needs --param nlist=N (1..1048576)", spec);
		if (!strcmp(spec, "IVF_FLAT")) {
			snprintf(out, cap, "IVF%ld,Flat", nlist);
		} else if (!strcmp(spec, "IVF_SQ8")) {
			snprintf(out, cap, "IVF%ld,SQ8", nlist);
		} else {
			if (m < 1 || m > 4096)
				return mv_err_set(err, MV_EUSAGE,
					"IVF_PQ needs --param m=N (sub-quantizers)");
			snprintf(out, cap, "IVF%ld,PQ%ld", nlist, m);
		}
	} else if (!strcmp(spec, "HNSW")) {
		if (M < 2 || M > 512)
			return mv_err_set(err, MV_EUSAGE,
				"HNSW needs --param M=N (2..512)");
		snprintf(out, cap, "HNSW%ld", M);
	} else {
		if (!*spec || strlen(spec) >= cap || strpbrk(spec, " \t\n"))
			return mv_err_set(err, MV_EUSAGE, "bad index type '%.80s'",
					  spec);
		snprintf(out, cap, "%s", spec);
	}
	return 0;
}

extern "C" struct mv_index *mv_index_new(const char *factory, uint32_t dim,
					 int ip, struct mv_err *err)
{
	mv_index *ix = (mv_index *)calloc(1, sizeof(*ix));

	if (!ix) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	if (faiss_index_factory(&ix->fi, (int)dim, factory,
				ip ? METRIC_INNER_PRODUCT : METRIC_L2)) {
		faiss_fail(err, MV_EUSAGE, "bad index type");
		free(ix);
		return NULL;
	}
	index_init(ix);
	no_polysemous(ix);
	return ix;
}

extern "C" void mv_index_free(struct mv_index *ix)
{
	if (!ix)
		return;
	faiss_Index_free(ix->fi);
	pthread_rwlock_destroy(&ix->ef_lock);
	free(ix);
}

/* The index under pre-transforms and refinement wrappers. */
static faiss::Index *core(faiss::Index *i)
{
	for (;;) {
		if (auto p = dynamic_cast<faiss::IndexPreTransform *>(i))
			i = p->index;
		else if (auto r = dynamic_cast<faiss::IndexRefine *>(i))
			i = r->base_index;
		else
			return i;
	}
}

static void index_init(struct mv_index *ix)
{
	auto h = dynamic_cast<faiss::IndexHNSW *>(core(cxx(ix)));

	auto ivf = dynamic_cast<faiss::IndexIVF *>(core(cxx(ix)));

	pthread_rwlock_init(&ix->ef_lock, NULL);
	ix->ef0 = h ? h->hnsw.efSearch : 0;
	ix->nprobe0 = ivf ? ivf->nprobe : 1;
}

/*
 * PQ's polysemous training (on by default for 8-bit codes) only serves
 * polysemous search, which mv does not use, and costs seconds per
 * sub-quantizer.
 */
static void no_polysemous(struct mv_index *ix)
{
	faiss::Index *i = core(cxx(ix));

	if (auto p = dynamic_cast<faiss::IndexIVFPQ *>(i))
		p->do_polysemous_training = false;
	else if (auto q = dynamic_cast<faiss::IndexPQ *>(i))
		q->do_polysemous_training = false;
}

extern "C" int mv_index_set(struct mv_index *ix, const char *key, long value,
			    struct mv_err *err)
{
	faiss::Index *i = core(cxx(ix));

	if (!strcmp(key, "efConstruction")) {
		auto h = dynamic_cast<faiss::IndexHNSW *>(i);
		if (!h)
			return mv_err_set(err, MV_EUSAGE,
				"efConstruction applies to HNSW indexes only");
		if (value < 1)
			return mv_err_set(err, MV_EUSAGE, "bad efConstruction");
		h->hnsw.efConstruction = (int)value;
		return 0;
	}
	return mv_err_set(err, MV_EUSAGE, "unknown build parameter '%s'", key);
}

extern "C" int mv_index_is_trained(const struct mv_index *ix)
{
	return faiss_Index_is_trained(ix->fi);
}

extern "C" size_t mv_index_train_size(const struct mv_index *ix, size_t n)
{
	faiss::Index *i = core(cxx(ix));
	size_t want = 100000;

	if (mv_index_is_trained(ix))
		return 0;
	if (auto ivf = dynamic_cast<faiss::IndexIVF *>(i))
		want = ivf->nlist * 64 > want ? ivf->nlist * 64 : want;
	return n < want ? n : want;
}

extern "C" int mv_index_train(struct mv_index *ix, size_t n, const float *x,
			      struct mv_err *err)
{
	if (faiss_Index_train(ix->fi, (idx_t)n, x))
		return faiss_fail(err, MV_EUSAGE, "training");
	return 0;
}

extern "C" int mv_index_add(struct mv_index *ix, size_t n, const float *x,
			    struct mv_err *err)
{
	if (faiss_Index_add(ix->fi, (idx_t)n, x))
		return faiss_fail(err, MV_EINTERNAL, "adding");
	return 0;
}

extern "C" int64_t mv_index_ntotal(const struct mv_index *ix)
{
	return faiss_Index_ntotal(ix->fi);
}

/* An HNSW index over plain stored vectors (those in *st), or NULL. */
static faiss::IndexHNSW *hnsw_flat(struct mv_index *ix,
				   faiss::IndexFlatCodes **st)
{
	auto h = dynamic_cast<faiss::IndexHNSW *>(core(cxx(ix)));

	*st = h ? dynamic_cast<faiss::IndexFlatCodes *>(h->storage) : NULL;
	return *st ? h : NULL;
}

extern "C" void mv_index_reserve(struct mv_index *ix, size_t n)
{
	faiss::IndexFlatCodes *st;
	faiss::IndexHNSW *h = hnsw_flat(ix, &st);
	double slots = 0;

	if (!h || h->ntotal)
		return;
	/* Expected links a point: each level's share of points times the
	 * links of a point of that level (level 0: 2M, above: M each). */
	for (size_t l = 0; l < h->hnsw.assign_probas.size() &&
	     l + 1 < h->hnsw.cum_nneighbor_per_level.size(); l++)
		slots += h->hnsw.assign_probas[l] *
			 h->hnsw.cum_nneighbor_per_level[l + 1];
	try {
		st->codes.reserve(n * st->code_size);
		h->hnsw.levels.reserve(n);
		h->hnsw.offsets.reserve(n + 1);
		h->hnsw.neighbors.reserve((size_t)(n * slots * 1.02) + 4096);
	} catch (...) {
		/* only room not taken ahead: the adds grow it as before */
	}
}

/* Free a vector's room beyond its size when that is over 4 %. */
template <class V> static void trim(V &v)
{
	if (v.capacity() > v.size() + v.size() / 25)
		v.shrink_to_fit();
}

/*
 * Free the spare room of i's arrays, the wrapped indexes' too; false when
 * some part is of a type whose room this does not know (then the caller
 * reads the index back from its bytes).
 */
static bool trim_index(faiss::Index *i)
{
	if (auto p = dynamic_cast<faiss::IndexPreTransform *>(i))
		return trim_index(p->index);
	if (auto r = dynamic_cast<faiss::IndexRefine *>(i))
		return trim_index(r->base_index) && trim_index(r->refine_index);
	if (auto h = dynamic_cast<faiss::IndexHNSW *>(i)) {
		if (!dynamic_cast<faiss::IndexFlatCodes *>(h->storage))
			return false;
		trim_index(h->storage);
		trim(h->hnsw.levels);
		trim(h->hnsw.offsets);
		trim(h->hnsw.neighbors);
		return true;
	}
	if (auto ivf = dynamic_cast<faiss::IndexIVF *>(i)) {
		auto il = dynamic_cast<faiss::ArrayInvertedLists *>(ivf->invlists);

		if (!il || !trim_index(ivf->quantizer))
			return false;
		for (size_t l = 0; l < il->nlist; l++) {
			trim(il->codes[l]);
			trim(il->ids[l]);
		}
		return true;
	}
	if (auto f = dynamic_cast<faiss::IndexFlatCodes *>(i)) {
		trim(f->codes);
		return true;
	}
	return false;
}

extern "C" int mv_index_settle(struct mv_index *ix)
{
	try {
		return trim_index(cxx(ix));
	} catch (...) {
		return 0;
	}
}

namespace {
/* Counts the bytes FAISS writes. */
struct CountWriter : faiss::IOWriter {
	size_t n = 0;

	size_t operator()(const void *, size_t size, size_t nitems) override
	{
		n += size * nitems;
		return nitems;
	}
};

/*
 * Hands FAISS's bytes to a caller's put: an item of PUT_GATHER bytes or
 * more (the vectors, the links, the lists) straight from the index's
 * memory, smaller ones (FAISS writes field by field) gathered first.
 */
#define PUT_GATHER (64u << 10)
struct PutWriter : faiss::IOWriter {
	mv_index_put_fn put;
	void *ctx;
	struct mv_err *err;
	int rc = 0;
	size_t len = 0;
	unsigned char buf[PUT_GATHER];

	PutWriter(mv_index_put_fn p, void *c, struct mv_err *e)
		: put(p), ctx(c), err(e) {}

	int flush()
	{
		if (rc == 0 && len)
			rc = put(ctx, buf, len, err);
		len = 0;
		return rc;
	}

	size_t operator()(const void *ptr, size_t size, size_t nitems) override
	{
		size_t n = size * nitems;

		if (rc < 0 || (n > sizeof(buf) - len && flush() < 0))
			return 0;	/* FAISS throws: a short write */
		if (n >= sizeof(buf)) {
			rc = put(ctx, ptr, n, err);
			return rc < 0 ? 0 : nitems;
		}
		if (n)		/* an empty vector's data() may be NULL */
			memcpy(buf + len, ptr, n);
		len += n;
		return nitems;
	}
};
}

/*
 * Serialise the index into w with its own efSearch/nprobe, not whatever
 * a locked search (see ef_lock) left on it.
 */
static int write_with(struct mv_index *ix, faiss::IOWriter &w,
		      struct mv_err *err)
{
	faiss::Index *i = core(cxx(ix));
	auto h = dynamic_cast<faiss::IndexHNSW *>(i);
	auto ivf = dynamic_cast<faiss::IndexIVF *>(i);
	int rc = 0;

	pthread_rwlock_wrlock(&ix->ef_lock);
	if (h && h->hnsw.efSearch != ix->ef0)
		h->hnsw.efSearch = ix->ef0;
	if (ivf && ivf->nprobe != ix->nprobe0)
		ivf->nprobe = ix->nprobe0;
	try {
		faiss::write_index(cxx(ix), &w);
	} catch (const std::exception &e) {
		rc = mv_err_set(err, MV_EINTERNAL, "writing the index: "
				"faiss: %s", faiss_what(e.what()));
	} catch (...) {
		rc = mv_err_set(err, MV_EINTERNAL, "writing the index: "
				"faiss: unknown error");
	}
	pthread_rwlock_unlock(&ix->ef_lock);
	return rc;
}

extern "C" int mv_index_write_to(const struct mv_index *ix0,
				 mv_index_put_fn put, void *ctx,
				 struct mv_err *err)
{
	struct mv_index *ix = const_cast<struct mv_index *>(ix0);
	PutWriter *pw = new (std::nothrow) PutWriter(put, ctx, err);
	int rc;

	if (!pw)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	rc = write_with(ix, *pw, err);
	if (pw->rc < 0)
		rc = pw->rc;	/* put's own error, not FAISS's "write error" */
	else if (rc == 0)
		rc = pw->flush();
	delete pw;
	return rc;
}

/* mv_index_write's put: into a buffer of the counted size. */
struct membuf {
	unsigned char *p;
	size_t cap, len;
};

static int mem_put(void *ctx, const void *p, size_t n, struct mv_err *err)
{
	struct membuf *m = (struct membuf *)ctx;

	if (n > m->cap - m->len)
		return mv_err_set(err, MV_EINTERNAL, "writing the index: more "
				  "than the %zu bytes counted", m->cap);
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return 0;
}

/*
 * Twice: once to count the bytes, then into one buffer of that size on
 * huge pages (mv_big_malloc).  A stream that grows as it goes
 * (open_memstream) faults in every 4 KiB page and moves the bytes as it
 * grows: 170 ms of a 2.0 s HNSW32 build of 100,000 glove-100 rows with 2
 * threads, against about 40 ms this way.
 */
extern "C" int mv_index_write(const struct mv_index *ix0, void **buf,
			      size_t *len, struct mv_err *err)
{
	struct mv_index *ix = const_cast<struct mv_index *>(ix0);
	CountWriter cw;
	struct membuf m = { NULL, 0, 0 };
	int rc = write_with(ix, cw, err);

	if (rc < 0)
		return rc;
	m.cap = cw.n;
	m.p = (unsigned char *)mv_big_malloc(cw.n ? cw.n : 1);
	if (!m.p)
		return mv_err_set(err, MV_EINTERNAL, "out of memory for a "
				  "%zu-byte index file", cw.n);
	rc = mv_index_write_to(ix, mem_put, &m, err);
	if (rc == 0 && m.len != cw.n)
		rc = mv_err_set(err, MV_EINTERNAL, "writing the index: %zu "
				"bytes, then %zu", cw.n, m.len);
	if (rc < 0) {
		free(m.p);
		return rc;
	}
	*buf = m.p;
	*len = m.len;
	return 0;
}

extern "C" struct mv_index *mv_index_read(const void *buf, size_t len,
					  struct mv_err *err)
{
	mv_index *ix = (mv_index *)calloc(1, sizeof(*ix));
	FILE *f;

	if (!ix) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	f = fmemopen((void *)buf, len, "rb");
	if (!f) {
		mv_err_sys(err, MV_EINTERNAL, "fmemopen");
		free(ix);
		return NULL;
	}
	if (faiss_read_index(f, 0, &ix->fi)) {
		faiss_fail(err, MV_EIO, "reading the index");
		fclose(f);
		free(ix);
		return NULL;
	}
	fclose(f);
	index_init(ix);
	return ix;
}

/*
 * The index whose FAISS bytes are [off, off + len) of the file path, an
 * IVF index's inverted lists mapped, not copied: FAISS's IO_FLAG_MMAP
 * reads them as OnDiskInvertedLists over a read-only MAP_SHARED mapping
 * of the whole file, each list at its own offset in it (ftell on our
 * FILE, so the offsets hold inside mv's .idx file too).  The lists' pages
 * are then the page cache's, faulted in as searches reach them.  Other
 * index types are read (copied) as by mv_index_read.  The caller checked
 * the bytes (checksums); a read that does not end at off + len is MV_EIO.
 */
extern "C" struct mv_index *mv_index_map(const char *path, uint64_t off,
					 size_t len, struct mv_err *err)
{
	mv_index *ix = (mv_index *)calloc(1, sizeof(*ix));
	FILE *f;
	off_t end;

	if (!ix) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	f = fopen(path, "rbe");
	if (!f || fseeko(f, (off_t)off, SEEK_SET) != 0) {
		mv_err_sys(err, MV_EIO, "'%s'", path);
		if (f)
			fclose(f);
		free(ix);
		return NULL;
	}
	if (faiss_read_index(f, faiss::IO_FLAG_MMAP, &ix->fi)) {
		faiss_fail(err, MV_EIO, "reading the index");
		fclose(f);
		free(ix);
		return NULL;
	}
	end = ftello(f);
	fclose(f);
	if (end < 0 || (uint64_t)end != off + len) {
		mv_err_set(err, MV_EIO, "'%s': the index ends at byte %lld, "
			   "not %llu", path, (long long)end,
			   (unsigned long long)(off + len));
		faiss_Index_free(ix->fi);
		free(ix);
		return NULL;
	}
	index_init(ix);
	if (auto ivf = dynamic_cast<faiss::IndexIVF *>(core(cxx(ix))))
		if (auto od = dynamic_cast<faiss::OnDiskInvertedLists *>(
			    ivf->invlists))
			od->prefetch_nthread = 0;	/* no threads per search */
	return ix;
}

/*
 * One query searches on the calling thread alone.  FAISS's HNSW search
 * opens an OpenMP parallel region whatever the number of queries, and
 * a region of two threads for one query wakes the second for nothing:
 * 20-25 us a query, a third of a query's time at low ef (single queries
 * with 2 threads ran at 0.64 of their 1-thread rate).  A single query
 * has no other parallelism FAISS would use (IVF splits queries, not
 * lists, by default).  The setting is the calling thread's own (a
 * node's connection thread) and is put back.
 */
struct one_thread {
	int was;
	explicit one_thread(size_t nq) : was(0)
	{
		if (nq == 1 && (was = omp_get_max_threads()) > 1)
			omp_set_num_threads(1);
	}
	~one_thread()
	{
		if (was > 1)
			omp_set_num_threads(was);
	}
};

static int index_search(const struct mv_index *cix, size_t nq,
			const float *x, size_t k, long nprobe, long ef,
			float *dist, int64_t *labels,
			struct mv_err *err, faiss::IDSelector *sel)
{
	struct mv_index *ix = const_cast<struct mv_index *>(cix);
	faiss::Index *top = cxx(ix), *i = core(top);
	faiss::SearchParametersIVF pivf;
	faiss::SearchParametersHNSW phnsw;
	/* HNSW and IVF honour a selector; elsewhere the caller filters. */
	pivf.sel = phnsw.sel = sel;
	faiss::SearchParameters *p = nullptr;
	faiss::IndexHNSW *h = nullptr;
	faiss::IndexIVF *fs = nullptr;

	if (auto ivf = dynamic_cast<faiss::IndexIVF *>(i)) {
		pivf.nprobe = nprobe > 0 ? (size_t)nprobe : ix->nprobe0;
		p = &pivf;
		if (dynamic_cast<faiss::IndexIVFFastScan *>(i)) {
			/* Refuses a selector even patched: the caller
			 * checks the labels and finishes short queries. */
			pivf.sel = nullptr;
			if (!CALL_PARAMS_HONOURED) {
				/* Refuses parameters in 1.7.3: set nprobe
				 * on the index under the lock, as for
				 * HNSW's ef. */
				fs = ivf;
				p = nullptr;
			}
		}
	} else if ((h = dynamic_cast<faiss::IndexHNSW *>(i))) {
		phnsw.efSearch = ef > 0 ? (int)ef : ix->ef0;
		/* FAISS searches with max(ef, k) anyway; the queue too. */
		if ((size_t)phnsw.efSearch < k)
			phnsw.efSearch = (int)k;
		p = &phnsw;
	}
	if (p && top != i) {
		/* 1.7.3 passes parameters through a pre-transform (OPQ) but
		 * not through refinement: there the index's own values apply. */
		auto pt = dynamic_cast<faiss::IndexPreTransform *>(top);
		if (!pt || pt->index != i)
			p = nullptr;
	}
	if (h && CALL_PARAMS_HONOURED && p)
		h = nullptr;	/* the call's ef reaches FAISS: no lock */
	/* A slot FAISS finds nothing for may be left unwritten: no hit. */
	for (size_t j = 0; j < nq * k; j++) {
		labels[j] = -1;
		dist[j] = i->metric_type == faiss::METRIC_L2 ? INFINITY
							     : -INFINITY;
	}
	if (h || fs) {
		pthread_rwlock_rdlock(&ix->ef_lock);
		if ((h && h->hnsw.efSearch != phnsw.efSearch) ||
		    (fs && fs->nprobe != pivf.nprobe)) {
			pthread_rwlock_unlock(&ix->ef_lock);
			pthread_rwlock_wrlock(&ix->ef_lock);
			if (h)
				h->hnsw.efSearch = phnsw.efSearch;
			else
				fs->nprobe = pivf.nprobe;
		}
	}
	try {
		one_thread one(nq);

		top->search((faiss::Index::idx_t)nq, x, (faiss::Index::idx_t)k,
			    dist, labels, p);
	} catch (const std::exception &e) {
		if (h || fs)
			pthread_rwlock_unlock(&ix->ef_lock);
		return mv_err_set(err, MV_EINTERNAL, "faiss: %s",
				  faiss_what(e.what()));
	} catch (...) {
		if (h || fs)
			pthread_rwlock_unlock(&ix->ef_lock);
		return mv_err_set(err, MV_EINTERNAL, "faiss: unknown error");
	}
	if (h || fs)
		pthread_rwlock_unlock(&ix->ef_lock);
	return 0;
}

extern "C" int mv_index_search(const struct mv_index *ix, size_t nq,
			       const float *x, size_t k, long nprobe, long ef,
			       float *dist, int64_t *labels,
			       struct mv_err *err)
{
	return index_search(ix, nq, x, k, nprobe, ef, dist, labels, err,
			    nullptr);
}

extern "C" int mv_index_search_sel(const struct mv_index *ix, size_t nq,
				   const float *x, size_t k, long nprobe,
				   long ef, const uint8_t *sel, size_t nsel,
				   float *dist, int64_t *labels,
				   struct mv_err *err)
{
	faiss::IDSelectorBitmap bits((nsel + 7) / 8, sel);

	return index_search(ix, nq, x, k, nprobe, ef, dist, labels, err,
			    &bits);
}

extern "C" long mv_index_nlist(const struct mv_index *ix)
{
	auto ivf = dynamic_cast<faiss::IndexIVF *>(core(cxx(ix)));

	return ivf ? (long)ivf->nlist : 0;
}

/*
 * indexer.c - building, loading, searching and dropping a collection's
 * FAISS index.  A build runs on its own thread over a snapshot of the
 * flushed segments; searches go on meanwhile with the old index or brute
 * force.  The new index file is written under a fresh name, then one
 * metadata transaction makes it current and retires the old one: a search
 * sees the old state or the new, and a build killed half way leaves only an
 * orphan file that start-up removes.
 */
#include <inttypes.h>
#include <malloc.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "log.h"
#include "internal.h"
#include "segfile.h"
#include "vcheck.h"

#define ADD_CHUNK 8192		/* rows per add(): the progress step */
/*
 * The empty slot of a result array, as search.c's node_search and
 * node_merge_hit fill and test it (idmap.h's reserved id).  FAISS's own
 * "no hit" label is -1, a label, not an id: see l < 0.
 */

struct build_job {
	struct node *nd;
	struct coll *c;			/* holds a reference */
	char spec[128], params[256];
	size_t nsegs;
	struct seg **segs;
};

/* "k=v k=v" -> value of key, or -1. */
static long param_get(const char *params, const char *key)
{
	size_t kl = strlen(key);
	const char *p = params;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
		p = strchr(p, ' ');
	}
	return -1;
}

static void set_progress(struct coll *c, double p)
{
	pthread_mutex_lock(&c->build_lock);
	c->build.progress = p;
	pthread_mutex_unlock(&c->build_lock);
}

/*
 * Rows [r0, r0+n) of s as searched vectors into out (n*dim): the
 * in-memory copy, or the stored raw vectors (normalised for cosine).
 */
static int seg_rows(struct node *nd, struct coll *c, struct seg *s,
		    uint64_t r0, size_t n, float *out, struct mv_err *err)
{
	const float *src = s->vecs;

	if (!src) {
		int rc = node_seg_raw(nd, s, &src, err);

		if (rc < 0)
			return rc;
		memcpy(out, src + r0 * c->dim, n * c->dim * sizeof(float));
		if (c->metric == MV_COSINE)
			node_normalise(out, n, c->dim);
		return 0;
	}
	memcpy(out, src + r0 * c->dim, n * c->dim * sizeof(float));
	return 0;
}

/* Free the searched copies of the covered segments: the index holds them. */
static void release_covered(struct cindex *ci)
{
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *s = ci->segs[i];

		s->indexed = 1;
		/* A build read the rows through the mapping: give them back. */
		if (s->map)
			mv_store_map_evict(the_node->store, s->map);
		if (s->own) {
			if (s->raw == s->vecs)
				s->raw = NULL;	/* mapped again when asked */
			node_seg_free_own(s, 0);	/* the index has them */
			s->vecs = NULL;
		}
	}
}

/*
 * Commit ci as c's index, then swap it in: the index, the segments it
 * covers marked indexed and the old index's unmarked, all in one hold of
 * c's write lock, so that no search sees a row both through the index and
 * by brute force, or through neither.  Takes the commit lock.  On failure
 * the index file is gone, or kept until etcd says whether the commit
 * applied (node_txn_files).
 */
static int install(struct node *nd, struct coll *c, struct cindex *ci,
		   uint64_t size, struct mv_err *err)
{
	struct cindex *old;
	char lkey[256], *val, *list;
	int64_t rows = 0;
	int rc;

	for (size_t i = 0; i < ci->nsegs; i++)
		rows += (int64_t)ci->segs[i]->n;
	val = index_json(ci, size, nd->node_no, rows);
	if (!val) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto unnamed;
	}
	pthread_mutex_lock(&nd->commit);
	if (c->dropped) {
		rc = mv_err_set(err, MV_ESERVER, "collection '%s' was dropped",
				c->name);
		goto unlock;
	}
	/*
	 * A follower's reload may have swapped c's segments since the
	 * snapshot (the old ones, read by the build, stay parked until it
	 * ends): the index covers the segments found again by path in
	 * c->segs, stable under node.commit; one gone (merged by another
	 * node) ends the build.
	 */
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *cur = node_coll_seg(c, ci->segs[i]->path);

		if (!cur) {
			pthread_rwlock_unlock(&c->lock);
			rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY,
					 "collection '%s' changed under the "
					 "build: '%s' is gone; build again",
					 c->name, ci->segs[i]->path);
			goto unlock;
		}
		ci->segs[i] = cur;
	}
	pthread_rwlock_unlock(&c->lock);
	key_user(lkey, sizeof(lkey), c->user, "collection_list");
	/* c->index changes only under the commit lock: stable from here. */
	pthread_rwlock_rdlock(&c->lock);
	old = c->index;
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_lock(&nd->lock);
	list = list_with_index(nd, c, ci->spec);
	pthread_mutex_unlock(&nd->lock);
	if (!list) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto unlock;
	}
	{
		struct mv_meta_op ops[3] = {
			{ MV_META_PUT, ci->key, val, strlen(val) },
			{ MV_META_PUT, lkey, list, strlen(list) },
			{ MV_META_DEL, old ? old->key : "", NULL, 0 },
		};
		rc = mv_meta_txn(nd->meta, NULL, 0, ops, old ? 3 : 2, err);
	}
	free(val);
	free(list);
	if (rc < 0) {
		pthread_mutex_unlock(&nd->commit);
		/* It may have applied: the file goes only once it certainly
		 * did not (else the key would name a file deleted). */
		node_txn_files(nd, "an index build", ci->key, &ci->path, 1);
		return rc;
	}
	pthread_rwlock_wrlock(&c->lock);
	c->index = ci;
	ci->held = size;
	node_held_add((long long)size);
	if (old)
		for (size_t i = 0; i < old->nsegs; i++)
			old->segs[i]->indexed = 0;
	release_covered(ci);
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&nd->commit);
	if (old) {
		mv_store_del(nd->store, old->path, NULL);
		cindex_free(old);
	}
	return 0;
unlock:
	pthread_mutex_unlock(&nd->commit);
	free(val);
unnamed:
	mv_store_del(nd->store, ci->path, NULL);	/* never committed */
	return rc;
}

/*
 * Rows stored before inserts were checked may overflow FAISS's float
 * arithmetic, which crashes in training: fail the build instead.
 */
static int unsearchable(struct coll *c, const float *x, size_t n,
			struct mv_err *err)
{
	const char *why;

	if (mv_vcheck(x, n, c->dim, &why) < 0)
		return 0;
	return mv_err_set(err, MV_EDATA, "collection '%s' holds a vector that "
			  "cannot be indexed: %s", c->name, why);
}

/*
 * Replace the index just built by the one read back from its file, as a
 * restarted node has it, for a type whose built form keeps spare room
 * that mv_index_settle cannot free (IVF fast scan's lists).  The others
 * are kept as built: reading an HNSW index back cost a fashion-mnist
 * build 2.6 of its 13.6 s, zeroing and copying 195 MiB of fresh memory.
 */
static int reload(struct node *nd, struct cindex *ci, uint64_t rows,
		  struct mv_err *err)
{
	struct mv_index *ix;
	uint64_t size;
	int rc = node_index_fetch(nd, ci->path, rows, &ix, &size, err);

	if (rc < 0)
		return rc;
	mv_index_free(ci->ix);
	ci->ix = ix;
	return 0;
}

/* An index file as it is streamed: FAISS's bytes so far, summed. */
struct ixout {
	struct mv_store_writer *w;
	uint32_t crc;
	uint64_t len;
};

static int ix_put(void *ctx, const void *p, size_t n, struct mv_err *err)
{
	struct ixout *o = ctx;
	struct iovec v = { (void *)p, n };

	o->crc = mv_crc32c(o->crc, p, n);
	o->len += n;
	return mv_store_append(o->w, &v, 1, err);
}

/*
 * Write ci's index file, streamed in segfile.h's other layout (FAISS's
 * bytes, then the trailer) from the index's own memory: no copy of the
 * whole, which on a VM cost more than the write (fresh pages: 2.5 of a
 * fashion-mnist HNSW build's 10.5 s).  *size gets the file's bytes.
 */
static int write_file(struct node *nd, struct cindex *ci, uint64_t rows,
		      uint64_t *size, struct mv_err *err)
{
	struct ixout o = { 0 };
	int rc = mv_store_begin(nd->store, ci->path, &o.w, err);

	if (rc < 0)
		return rc;
	if ((rc = mv_index_write_to(ci->ix, ix_put, &o, err)) < 0) {
		mv_store_abort(o.w);
		return rc;
	}
	return stage_end(o.w, MV_SEG_IDX, 0, rows, NULL, 0, NULL, o.len,
			 o.crc, size, err);
}

static int build(struct build_job *j, struct mv_err *err)
{
	struct node *nd = j->nd;
	struct coll *c = j->c;
	struct cindex *ci = calloc(1, sizeof(*ci));
	size_t ntrain, total = 0, done = 0;
	float *buf = NULL;
	long efc = param_get(j->params, "efConstruction");
	int64_t t_add = 0, t_ser = 0;
	int rc = 0;

	if (!ci)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	snprintf(ci->spec, sizeof(ci->spec), "%s", j->spec);
	snprintf(ci->params, sizeof(ci->params), "%s", j->params);
	ci->nprobe = param_get(j->params, "nprobe");
	ci->ef = param_get(j->params, "ef");
	if (ci->ef < 0)
		ci->ef = param_get(j->params, "efSearch");
	ci->nsegs = j->nsegs;
	ci->segs = j->segs;
	j->segs = NULL;
	ci->base = calloc(ci->nsegs + 1, sizeof(*ci->base));
	if (!ci->base) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ci->nsegs; i++) {
		ci->base[i] = total;
		total += ci->segs[i]->n;
	}
	ci->base[ci->nsegs] = total;
	node_test_pause("MV_TEST_PAUSE_BUILD");
	if (total == 0) {
		rc = mv_err_set(err, MV_ESERVER, "collection '%s' has no flushed "
				"rows to index", c->name);
		goto out;
	}
	ci->ix = mv_index_new(j->spec, c->dim, c->metric != MV_L2, err);
	if (!ci->ix) {
		rc = err->code;
		goto out;
	}
	if (efc > 0 && (rc = mv_index_set(ci->ix, "efConstruction", efc, err)) < 0)
		goto out;
	/* Train on an evenly spread sample. */
	ntrain = mv_index_train_size(ci->ix, total);
	if (ntrain) {
		size_t step = total / ntrain, got = 0;

		buf = malloc(ntrain * c->dim * sizeof(float));
		if (!buf) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < ci->nsegs && got < ntrain; i++) {
			struct seg *s = ci->segs[i];
			for (uint64_t r = (ci->base[i] + step - 1) / step * step -
					  ci->base[i];
			     r < s->n && got < ntrain; r += step) {
				rc = seg_rows(nd, c, s, r, 1,
					      buf + got * c->dim, err);
				if (rc < 0)
					goto out;
				got++;
			}
		}
		if ((rc = unsearchable(c, buf, got, err)) < 0)
			goto out;
		log_info("collection '%s': training %s on %zu vectors", c->name,
			 j->spec, got);
		rc = mv_index_train(ci->ix, got, buf, err);
		if (rc < 0)
			goto out;
		free(buf);
		buf = NULL;
	}
	set_progress(c, 0.05);
	mv_index_reserve(ci->ix, total);
	t_add = mv_mono_ms();
	buf = malloc((size_t)ADD_CHUNK * c->dim * sizeof(float));
	if (!buf) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *s = ci->segs[i];
		for (uint64_t r = 0; r < s->n; r += ADD_CHUNK) {
			size_t n = s->n - r < ADD_CHUNK ? s->n - r : ADD_CHUNK;
			const float *x = buf;

			if (s->vecs)
				x = s->vecs + r * c->dim;
			else if ((rc = seg_rows(nd, c, s, r, n, buf, err)) < 0)
				goto out;
			if ((rc = unsearchable(c, x, n, err)) < 0)
				goto out;
			rc = mv_index_add(ci->ix, n, x, err);
			if (rc < 0)
				goto out;
			done += n;
			set_progress(c, 0.05 + 0.9 * (double)done / total);
			if (atomic_load(&nd->shutting_down) || c->dropped) {
				rc = mv_err_set(err, MV_EAGAIN, "build stopped");
				goto out;
			}
		}
	}
	free(buf);
	buf = NULL;
	t_ser = mv_mono_ms();
	{
		char base[MV_SPATH - 8];
		uint64_t size = 0;

		/* Index files: FAISS's bytes and a format-version trailer. */
		node_seg_base(nd, c, base, sizeof(base));
		snprintf(ci->path, sizeof(ci->path), "%s.idx", base);
		key_data(ci->key, sizeof(ci->key),
			 c->user, c->name, strrchr(ci->path, '/') + 1);
		if ((rc = write_file(nd, ci, total, &size, err)) < 0)
			goto out;
		if (!mv_index_settle(ci->ix) &&
		    (rc = reload(nd, ci, total, err)) < 0) {
			mv_store_del(nd->store, ci->path, NULL);
			goto out;
		}
		/* Where a build's time goes: the adding, or the file. */
		log_info("collection '%s': %s: %zu rows added in %.3f s, index "
			 "file of %.1f MiB written in %.3f s", c->name, j->spec,
			 total, (t_ser - t_add) / 1e3, size / 1048576.0,
			 (mv_mono_ms() - t_ser) / 1e3);
		set_progress(c, 0.99);
		if ((rc = install(nd, c, ci, size, err)) < 0)
			goto out;
		ci = NULL;
	}
out:
	free(buf);
	cindex_free(ci);
	return rc;
}

/*
 * A build whose inputs another node merged away meanwhile (install:
 * MV_EAGAIN, BUSY) starts again over the segments now, up to this many
 * builds in all.
 */
#define BUILD_TRIES 3

/*
 * The build's snapshot: every segment flushed so far (what a reload swaps
 * out after it stays until node_coll_reader_end).  -1: out of memory.
 */
static int snapshot(struct build_job *j, struct coll *c)
{
	free(j->segs);
	pthread_rwlock_rdlock(&c->lock);
	j->nsegs = c->nsegs;
	j->segs = malloc((c->nsegs ? c->nsegs : 1) * sizeof(*j->segs));
	if (j->segs && c->nsegs)
		memcpy(j->segs, c->segs, c->nsegs * sizeof(*j->segs));
	pthread_rwlock_unlock(&c->lock);
	return j->segs ? 0 : -1;
}

/* j's snapshot taken again, for another build. */
static int snapshot_again(struct build_job *j, struct coll *c)
{
	int64_t rows = 0;

	node_coll_reader_end(c);
	node_coll_reader_start(c);
	if (snapshot(j, c) < 0)
		return -1;
	for (size_t i = 0; i < j->nsegs; i++)
		rows += (int64_t)j->segs[i]->n;
	pthread_mutex_lock(&c->build_lock);
	c->build.rows = rows;
	c->build.progress = 0;
	pthread_mutex_unlock(&c->build_lock);
	return 0;
}

static void *build_main(void *arg)
{
	struct build_job *j = arg;
	struct coll *c = j->c;
	struct mv_err e = { 0 };
	time_t t0 = time(NULL);
	int rc = build(j, &e);

	for (int tries = 1; rc == MV_EAGAIN && e.kind == MV_K_BUSY &&
	     tries < BUILD_TRIES && !c->dropped; tries++) {
		log_info("collection '%s': index build %s started again over "
			 "the segments now (%s)", c->name, j->spec, e.msg);
		mv_err_clear(&e);
		if (snapshot_again(j, c) < 0) {
			rc = mv_err_set(&e, MV_EINTERNAL, "out of memory");
			break;
		}
		rc = build(j, &e);
	}

	pthread_mutex_lock(&c->build_lock);
	c->build.state = rc < 0 ? BUILD_FAILED : BUILD_DONE;
	c->build.finished = time(NULL);
	if (rc < 0)
		c->build.err = e;
	else
		c->build.progress = 1;
	pthread_cond_broadcast(&c->build_cv);
	pthread_mutex_unlock(&c->build_lock);
	/* What a reload swapped out under the build goes now. */
	node_coll_reader_end(c);
	if (rc < 0)
		log_warnx("collection '%s': index build %s failed: %s", c->name,
			  j->spec, e.msg);
	else
		log_info("collection '%s': index %s built in %lld s", c->name,
			 j->spec, (long long)(time(NULL) - t0));
	free(j->segs);
	coll_put(c);
	free(j);
	malloc_trim(0);	/* what the build freed goes back now */
	return NULL;
}

int node_index_start(struct node *nd, struct coll *c, const char *spec,
		     const char *params, struct mv_err *err)
{
	struct build_job *j;
	pthread_t th;
	pthread_attr_t attr;

	pthread_mutex_lock(&c->build_lock);
	if (c->compacting) {
		pthread_mutex_unlock(&c->build_lock);
		return mv_err_set(err, MV_EAGAIN, "a compaction of '%s' is under "
				  "way", c->name);
	}
	if (c->build.state == BUILD_RUNNING) {
		int pct = (int)(c->build.progress * 100);
		pthread_mutex_unlock(&c->build_lock);
		return mv_err_set(err, MV_EAGAIN, "an index build of '%s' (%s, "
				  "started %lld s ago, %d%%) is under way",
				  c->name, c->build.spec,
				  (long long)(time(NULL) - c->build.started), pct);
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		pthread_mutex_unlock(&c->build_lock);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	j->nd = nd;
	j->c = c;
	snprintf(j->spec, sizeof(j->spec), "%s", spec);
	snprintf(j->params, sizeof(j->params), "%s", params ? params : "");
	/*
	 * The snapshot: every segment flushed so far.  What a reload swaps
	 * out after it stays until the build ends (build_main).
	 */
	node_coll_reader_start(c);
	if (snapshot(j, c) < 0) {
		pthread_mutex_unlock(&c->build_lock);
		node_coll_reader_end(c);
		free(j);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	/* Check the spec now, so that a typo is an immediate error. */
	{
		struct mv_index *probe = mv_index_new(spec, c->dim,
						      c->metric != MV_L2, err);
		if (!probe) {
			pthread_mutex_unlock(&c->build_lock);
			node_coll_reader_end(c);
			free(j->segs);
			free(j);
			return MV_EUSAGE;
		}
		mv_index_free(probe);
	}
	memset(&c->build, 0, sizeof(c->build));
	c->build.state = BUILD_RUNNING;
	snprintf(c->build.spec, sizeof(c->build.spec), "%s", spec);
	snprintf(c->build.params, sizeof(c->build.params), "%s", j->params);
	c->build.started = time(NULL);
	for (size_t i = 0; i < j->nsegs; i++)
		c->build.rows += (int64_t)j->segs[i]->n;
	atomic_fetch_add(&c->refs, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, build_main, j)) {
		c->build.state = BUILD_FAILED;
		mv_err_set(&c->build.err, MV_EINTERNAL, "cannot start a "
			   "thread");
		pthread_mutex_unlock(&c->build_lock);
		node_coll_reader_end(c);
		pthread_attr_destroy(&attr);
		coll_put(c);
		free(j->segs);
		free(j);
		return mv_err_set(err, MV_EINTERNAL, "cannot start a thread");
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&c->build_lock);
	return 0;
}

void node_index_wait(struct coll *c, int ms)
{
	struct timespec ts;

	node_deadline(&ts, ms);
	pthread_mutex_lock(&c->build_lock);
	while (c->build.state == BUILD_RUNNING &&
	       pthread_cond_timedwait(&c->build_cv, &c->build_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&c->build_lock);
}

void node_index_status(struct coll *c, char *out, size_t cap,
		       struct mv_err *failed)
{
	static const char *const names[] = { "none", "running", "done",
					     "failed" };
	char cur[160];

	pthread_rwlock_rdlock(&c->lock);
	snprintf(cur, sizeof(cur), "%s", c->index ? c->index->spec : "-");
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_lock(&c->build_lock);
	snprintf(out, cap, "state=%s index=%s spec=%s progress=%.3f rows=%"
		 PRId64 " elapsed=%lld", names[c->build.state], cur,
		 c->build.spec[0] ? c->build.spec : "-", c->build.progress,
		 c->build.rows,
		 (long long)((c->build.state == BUILD_RUNNING ? time(NULL) :
			      c->build.finished) - c->build.started) *
			 (c->build.state != BUILD_NONE));
	mv_err_clear(failed);
	if (c->build.state == BUILD_FAILED)
		*failed = c->build.err;
	pthread_mutex_unlock(&c->build_lock);
}

/* Bring back the searched copies of segments an index covered. */
static int restore_vecs(struct node *nd, struct coll *c, struct cindex *ci,
			float **copies, struct mv_err *err)
{
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *s = ci->segs[i];
		const float *raw;
		int rc;

		copies[i] = NULL;
		if (s->retired)
			continue;	/* no rows: freed with the index */
		if ((rc = node_seg_raw(nd, s, &raw, err)) < 0)
			return rc;
		copies[i] = malloc(s->n * c->dim * sizeof(float) + 1);
		if (!copies[i])
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		memcpy(copies[i], raw, s->n * c->dim * sizeof(float));
		if (c->metric == MV_COSINE)
			node_normalise(copies[i], s->n, c->dim);
	}
	node_test_pause("MV_TEST_PAUSE_INDEX_DROP");
	return 0;
}

/*
 * Copy the vectors back (the slow part) holding only c's build lock, which
 * keeps builds and other drops of c away; then, under the commit lock,
 * commit the removal and, in one hold of c's write lock, clear the index
 * and give the segments their copies back, so that a search sees every
 * row exactly once, through the index or by brute force.
 */
int node_index_drop(struct node *nd, struct coll *c, struct mv_err *err)
{
	struct cindex *ci;
	float **copies = NULL;
	size_t ncopies = 0;
	char lkey[256], *list;
	int rc;

	pthread_mutex_lock(&c->build_lock);
	/*
	 * A merge under way may rewrite an indexed segment and retire it
	 * from the index when it commits, under the copy below: wait for it
	 * (merges end; none starts while the drop holds build_lock).
	 */
	while (c->compacting && c->build.state != BUILD_RUNNING) {
		pthread_mutex_unlock(&c->build_lock);
		usleep(10 * 1000);
		pthread_mutex_lock(&c->build_lock);
	}
	if (c->build.state == BUILD_RUNNING) {
		pthread_mutex_unlock(&c->build_lock);
		return mv_err_set(err, MV_EAGAIN, "an index build of '%s' (%s) "
				  "is under way", c->name, c->build.spec);
	}
	/*
	 * Only a build (excluded above), a drop or a follower's reload
	 * changes c->index now; what a reload swaps out (ci among it) stays
	 * until the drop ends.
	 */
	node_coll_reader_start(c);
	pthread_rwlock_rdlock(&c->lock);
	ci = c->index;
	pthread_rwlock_unlock(&c->lock);
	if (!ci) {
		rc = 0;
		goto out;
	}
	ncopies = ci->nsegs;
	copies = calloc(ncopies + 1, sizeof(*copies));
	if (!copies) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	rc = restore_vecs(nd, c, ci, copies, err);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&nd->commit);
	if (c->dropped) {
		pthread_mutex_unlock(&nd->commit);
		rc = mv_err_set(err, MV_ESERVER, "collection '%s' was dropped",
				c->name);
		goto out;
	}
	if (c->index != ci) {
		/* A follower's reload put another index in (its node's). */
		pthread_mutex_unlock(&nd->commit);
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "the index of '%s' "
				 "changed under the drop; drop again", c->name);
		goto out;
	}
	key_user(lkey, sizeof(lkey), c->user, "collection_list");
	pthread_mutex_lock(&nd->lock);
	list = list_with_index(nd, c, "-");
	pthread_mutex_unlock(&nd->lock);
	if (!list) {
		pthread_mutex_unlock(&nd->commit);
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	{
		struct mv_meta_op ops[2] = {
			{ MV_META_DEL, ci->key, NULL, 0 },
			{ MV_META_PUT, lkey, list, strlen(list) },
		};
		rc = mv_meta_txn(nd->meta, NULL, 0, ops, 2, err);
	}
	free(list);
	if (rc < 0) {
		pthread_mutex_unlock(&nd->commit);
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	c->index = NULL;
	for (size_t i = 0; i < ci->nsegs; i++) {
		struct seg *s = ci->segs[i];
		if (s->retired)
			continue;
		s->own = copies[i];
		s->vecs = copies[i];	/* raw, if a mapping, stays valid */
		s->indexed = 0;
		copies[i] = NULL;
	}
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&nd->commit);
	mv_store_del(nd->store, ci->path, NULL);
	cindex_free(ci);
out:
	pthread_mutex_unlock(&c->build_lock);
	node_coll_reader_end(c);
	if (copies) {
		for (size_t i = 0; i < ncopies; i++)
			free(copies[i]);
		free(copies);
	}
	return rc;
}

/*
 * New search defaults: the index's metadata value is read back and only
 * its params replaced (size, rows and the rest stay as the build wrote
 * them), then the in-memory defaults follow once that is committed.
 */
int node_index_set(struct node *nd, struct coll *c, const char *params,
		   struct mv_err *err)
{
	struct cindex *ci;
	char *cur = NULL, *val = NULL;
	size_t len;
	json_t *j = NULL;
	int rc;

	pthread_mutex_lock(&nd->commit);
	/* c->index changes only under the commit lock. */
	pthread_rwlock_rdlock(&c->lock);
	ci = c->index;
	pthread_rwlock_unlock(&c->lock);
	if (!ci) {
		pthread_mutex_unlock(&nd->commit);
		return mv_err_set(err, MV_ESERVER, "collection '%s' has no index",
				  c->name);
	}
	rc = mv_meta_get(nd->meta, ci->key, &cur, &len, err);
	if (rc > 0)
		rc = mv_err_set(err, MV_EIO, "index key '%s' is missing",
				ci->key);
	if (rc < 0)
		goto out;
	j = json_loadb(cur, len, 0, NULL);
	if (!j || !json_is_object(j)) {
		rc = mv_err_set(err, MV_EIO, "bad index key '%s'", ci->key);
		goto out;
	}
	if (json_object_set_new(j, "params", json_string(params)) < 0 ||
	    !(val = json_dumps(j, JSON_COMPACT))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	rc = mv_meta_put(nd->meta, ci->key, val, strlen(val), err);
	if (rc < 0)
		goto out;
	pthread_rwlock_wrlock(&c->lock);
	snprintf(ci->params, sizeof(ci->params), "%s", params);
	ci->nprobe = param_get(params, "nprobe");
	ci->ef = param_get(params, "ef");
	if (ci->ef < 0)
		ci->ef = param_get(params, "efSearch");
	pthread_rwlock_unlock(&c->lock);
out:
	pthread_mutex_unlock(&nd->commit);
	json_decref(j);
	free(cur);
	free(val);
	return rc;
}

/*
 * A file a compaction replaced while the index covered it: n labels of
 * the index, every one deleted.  NULL when out of memory.
 */
static struct seg *retired_seg(const char *dir, const char *leaf, uint64_t n)
{
	struct seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->deleted = malloc((n + 7) / 8 + 1);
	if (!s->deleted) {
		free(s);
		return NULL;
	}
	memset(s->deleted, 0xff, (n + 7) / 8 + 1);
	snprintf(s->path, sizeof(s->path), "%s%s", dir, leaf);
	s->n = n;
	s->ndeleted = n;
	s->indexed = 1;
	s->retired = 1;
	return s;
}

int node_index_fetch(struct node *nd, const char *path, uint64_t total,
		     struct mv_index **out, uint64_t *size, struct mv_err *err)
{
	void *a = NULL, *map = NULL;
	const void *b, *file = NULL;
	size_t len;
	struct mv_seginfo info;
	struct mv_index *ix = NULL;
	int rc;

	*out = NULL;
	/*
	 * Mapped, not read whole: the checksum pass and FAISS's read fault
	 * in the page cache's pages, and the unmap below gives them back.
	 */
	rc = mv_store_map(nd->store, path, &file, &len, &map, err);
	if (rc < 0)
		return rc;
	rc = mv_segfile_decode(path, file, len, &info, &a, &b, err);
	if (rc < 0)
		goto out;
	if (info.kind != MV_SEG_IDX ||
	    (total != UINT64_MAX && info.n != total)) {
		rc = mv_err_set(err, MV_EIO, "'%s': not an index of %" PRIu64
				" rows", path, total);
		goto out;
	}
	/*
	 * Read from the mapping into FAISS's own lists.  mv_index_map would
	 * leave an IVF's lists in the file (no copy at start-up, resident
	 * only once searched), but searching them cost 15 to 20 % more CPU
	 * at nprobe 4 to 16 on glove-100 (docs/BENCHMARKS.md, issue 9).
	 */
	ix = mv_index_read(b, info.b_len, err);
	if (!ix) {
		rc = err->code;
		goto out;
	}
	*out = ix;
	*size = len;
out:
	mv_store_unmap(nd->store, map);
	free(a);
	return rc;
}

int node_index_load(struct node *nd, struct coll *c, const char *dir,
		    const char *leaf, const void *val, size_t vlen,
		    struct reuse *r, struct mv_err *err)
{
	json_t *j = json_loadb(val, vlen, 0, NULL), *raw, *ret;
	struct cindex *ci = calloc(1, sizeof(*ci));
	uint64_t total = 0, len = 0;
	int rc = 0;

	if (!j || !ci) {
		rc = mv_err_set(err, MV_EIO, "bad index key '%s'", leaf);
		goto out;
	}
	snprintf(ci->spec, sizeof(ci->spec), "%s",
		 json_string_value(json_object_get(j, "spec")) ?
		 json_string_value(json_object_get(j, "spec")) : "?");
	snprintf(ci->params, sizeof(ci->params), "%s",
		 json_string_value(json_object_get(j, "params")) ?
		 json_string_value(json_object_get(j, "params")) : "");
	ci->nprobe = param_get(ci->params, "nprobe");
	ci->ef = param_get(ci->params, "ef");
	if (ci->ef < 0)
		ci->ef = param_get(ci->params, "efSearch");
	snprintf(ci->path, sizeof(ci->path), "%s%s", dir, leaf);
	key_data(ci->key, sizeof(ci->key), c->user,
		 c->name, leaf);
	raw = json_object_get(j, "raw_files");
	ret = json_object_get(j, "retired");
	ci->nsegs = json_array_size(raw);
	ci->segs = calloc(ci->nsegs + 1, sizeof(*ci->segs));
	ci->base = calloc(ci->nsegs + 1, sizeof(*ci->base));
	if (!ci->segs || !ci->base) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ci->nsegs; i++) {
		const char *f = json_string_value(json_array_get(raw, i));
		for (size_t k = 0; f && k < c->nsegs; k++)
			if (!strcmp(strrchr(c->segs[k]->path, '/') + 1, f))
				ci->segs[i] = c->segs[k];
		if (!ci->segs[i] && f &&
		    json_is_integer(json_object_get(ret, f)))
			ci->segs[i] = retired_seg(dir, f, (uint64_t)
				json_integer_value(json_object_get(ret, f)));
		if (!ci->segs[i]) {
			rc = mv_err_set(err, MV_EIO, "index '%s' names a missing "
					"file '%s'", leaf, f ? f : "?");
			goto out;
		}
		ci->base[i] = total;
		total += ci->segs[i]->n;
	}
	ci->base[ci->nsegs] = total;
	if (!node_place_held(nd, ci->path) ||
	    (r && r->c->index && !strcmp(r->c->index->path, ci->path))) {
		/*
		 * Another node's unit (place.c): its labels only.  Or a
		 * reload of the index the node holds: node_reload_adopt
		 * takes its FAISS index over.
		 */
		c->index = ci;
		release_covered(ci);
		ci = NULL;
		goto out;
	}
	if (r && r->ix && !strcmp(r->ixpath, ci->path)) {
		/* Read ahead by the reload, with no lock held. */
		ci->ix = r->ix;
		r->ix = NULL;
		len = r->ixlen;
	} else if (r && !r->fill_missing) {
		rc = mv_err_set(err, MV_EAGAIN, "index '%s' appeared after "
				"the reload's reads", leaf);
		rc = NODE_RELOAD_AGAIN;
		goto out;
	} else if ((rc = node_index_fetch(nd, ci->path, total, &ci->ix, &len,
					  err)) < 0) {
		rc = node_gone_since(nd, c, ci->path, rc, err);
		goto out;
	}
	if ((uint64_t)mv_index_ntotal(ci->ix) != total) {
		rc = mv_err_set(err, MV_EIO, "'%s': index holds %" PRId64
				" vectors, want %" PRIu64, ci->path,
				mv_index_ntotal(ci->ix), total);
		goto out;
	}
	c->index = ci;
	ci->held = len;
	node_held_add((long long)len);
	release_covered(ci);
	ci = NULL;
out:
	json_decref(j);
	cindex_free(ci);
	return rc;
}

size_t node_label_seg(const struct cindex *ci, uint64_t l)
{
	size_t lo = 0, hi = ci->nsegs;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (ci->base[mid] <= l)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Deleted rows stay in the index until the next build, so the index is
 * asked for more than k: k plus the deleted rows it covers, at most 4k
 * extra at first, then four times more for as long as some query is short
 * of k live hits and the index has more to give.
 */
int node_index_search(struct coll *c, const float *q, size_t nq, size_t k,
		      long nprobe, long ef, int64_t *ids, float *dist,
		      struct mv_err *err)
{
	struct cindex *ci = c->index;
	uint64_t ndel = 0, total = ci->base[ci->nsegs];
	size_t kk;
	float *td = NULL;
	int64_t *tl = NULL;
	int l2 = c->metric == MV_L2, rc = 0;
	int64_t *ri = NULL;
	float *rd = NULL;

	for (size_t i = 0; i < ci->nsegs; i++)
		ndel += ci->segs[i]->ndeleted;
	if (ndel == total)
		return 0;
	kk = k + (ndel < 4 * k ? ndel : 4 * k);
	if (nprobe <= 0)
		nprobe = ci->nprobe;
	if (ef <= 0)
		ef = ci->ef;
	/* Our own top-k of this index, merged into ids/dist at the end. */
	ri = malloc(nq * k * sizeof(*ri) + 1);
	rd = malloc(nq * k * sizeof(*rd) + 1);
	if (!ri || !rd) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (;;) {
		size_t short_of_k = 0;
		if (kk > total)
			kk = total;
		free(td);
		free(tl);
		td = malloc(nq * kk * sizeof(float) + 1);
		tl = malloc(nq * kk * sizeof(int64_t) + 1);
		if (!td || !tl) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		rc = mv_index_search(ci->ix, nq, q, kk, nprobe, ef, td, tl, err);
		if (rc < 0)
			goto out;
		node_topk_clear(l2, ri, rd, nq * k);
		for (size_t qi = 0; qi < nq; qi++) {
			size_t live = 0;

			for (size_t j = 0; j < kk; j++) {
				int64_t l = tl[qi * kk + j];
				size_t si;
				struct seg *s;
				uint64_t row;

				if (l < 0 || (uint64_t)l >= total)
					continue;	/* FAISS: no hit */
				si = node_label_seg(ci, (uint64_t)l);
				s = ci->segs[si];
				row = (uint64_t)l - ci->base[si];
				if (node_seg_is_deleted(s, row))
					continue;
				live++;
				node_merge_hit(l2, ri + qi * k, rd + qi * k, k,
					       s->ids[row], td[qi * kk + j]);
			}
			short_of_k += live < k && tl[qi * kk + kk - 1] >= 0;
		}
		if (!short_of_k || kk >= total || kk - k >= ndel)
			break;
		kk *= 4;
	}
	for (size_t qi = 0; qi < nq; qi++)
		for (size_t j = 0; j < k && ri[qi * k + j] != MV_ID_NONE; j++)
			node_merge_hit(l2, ids + qi * k, dist + qi * k, k,
				       ri[qi * k + j], rd[qi * k + j]);
out:
	free(td);
	free(tl);
	free(ri);
	free(rd);
	return rc;
}

/*
 * batch.c - unflushed work: pending-byte accounting, batches and their
 * per-collection parts, merging them (COMMIT), id assignment, the insert
 * checks (node_insert_commit_tail) and the named-session table.
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

atomic_llong node_pending;

/*
 * Count bytes about to arrive; an insert (mem) is also held to
 * memory_limit: the bytes of loaded segments and indexes plus every
 * pending byte, this request's included.  Both are counters kept as data
 * comes and goes, so the check costs two atomic reads.
 */
static int pending_take(struct node *nd, size_t bytes, int mem)
{
	long long now = atomic_fetch_add(&node_pending, (long long)bytes);
	int64_t lim = nd->conf.memory_limit;

	if (now + (long long)bytes > nd->conf.max_pending && bytes) {
		atomic_fetch_sub(&node_pending, (long long)bytes);
		return -1;
	}
	if (mem && lim > 0 && bytes &&
	    now + (long long)bytes + atomic_load(&node_held) > lim) {
		atomic_fetch_sub(&node_pending, (long long)bytes);
		return -2;
	}
	return 0;
}

int node_pending_take(struct node *nd, size_t bytes)
{
	return pending_take(nd, bytes, 0);
}

int node_insert_take(struct node *nd, size_t bytes)
{
	return pending_take(nd, bytes, 1);
}

long long node_memory(void)
{
	long long m = atomic_load(&node_held) + atomic_load(&node_pending);

	return m < 0 ? 0 : m;
}

void node_pending_give(size_t bytes)
{
	atomic_fetch_sub(&node_pending, (long long)bytes);
}

struct batch *batch_new(const char *session)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	if (session)
		snprintf(b->session, sizeof(b->session), "%s", session);
	b->last_used = node_mono_s();
	atomic_init(&b->refs, 1);
	return b;
}

static void pcoll_free(struct pcoll *pc)
{
	stage_abort(pc);
	nbuf_release(&pc->ids);
	nbuf_release(&pc->vecs);
	nbuf_release(&pc->dels);
	for (int i = 0; i < MV_FIELDS_MAX; i++)
		nbuf_release(&pc->cols[i]);
	mv_idmap_release(&pc->seen);
	free(pc->norms2);
	coll_put(pc->c);
	free(pc);
}

void batch_clear(struct batch *b)
{
	struct pcoll *pc, *next;

	for (pc = b->colls; pc; pc = next) {
		next = pc->next;
		pcoll_free(pc);
	}
	b->colls = NULL;
	b->bytes = 0;
	node_pending_give(b->acct);
	b->acct = 0;
	b->rows = b->ndels = 0;
	b->first_ms = 0;
}

void batch_free(struct batch *b)
{
	if (!b)
		return;
	/* Another reference (the auto-flush) must find nothing to flush. */
	pthread_mutex_lock(&b->lock);
	batch_clear(b);
	pthread_mutex_unlock(&b->lock);
	if (atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	node_flushed_release(&b->sync_units);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

struct pcoll *batch_coll(struct batch *b, struct coll *c)
{
	struct pcoll *pc;

	for (pc = b->colls; pc; pc = pc->next)
		if (pc->c == c)
			return pc;
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	atomic_fetch_add(&c->refs, 1);
	pc->c = c;
	pc->vecs.mapped = 1;
	mv_idmap_init(&pc->seen);
	pc->next = b->colls;
	b->colls = pc;
	return pc;
}

/*
 * Merge pass 1 for one collection: 0 if s's rows can join d's (no id in
 * both, room reserved in every buffer of d), else an error; d's content
 * is unchanged either way (its seen map may be caught up).
 */
static int pcoll_merge_check(struct pcoll *d, struct pcoll *s,
			     struct mv_err *err)
{
	const int64_t *ids = (const int64_t *)s->ids.p;
	struct coll *c = d->c;

	if (d->user_ids || s->user_ids) {
		if (d->seen_stale) {
			const int64_t *all = (const int64_t *)d->ids.p;
			if (mv_idmap_reserve(&d->seen, d->n) < 0)
				goto oom;
			for (size_t i = 0; i < d->n; i++)
				mv_idmap_put(&d->seen, all[i], NULL, 0);
			d->seen_stale = 0;
		}
		for (size_t i = 0; i < s->n; i++)
			if (mv_idmap_get(&d->seen, ids[i]))
				return mv_err_setk(err, MV_EDATA, MV_K_DUPID,
					"id %" PRId64 " given twice in session "
					"for '%s'", ids[i], c->name);
		if (mv_idmap_reserve(&d->seen, s->n) < 0)
			goto oom;
	}
	if (d->vecs.len + s->vecs.len > d->vecs.cap)
		stage_wait(d);		/* vecs is about to move */
	if (nbuf_reserve(&d->ids, s->ids.len) < 0 ||
	    nbuf_reserve(&d->vecs, s->vecs.len) < 0 ||
	    nbuf_reserve(&d->dels, s->dels.len) < 0)
		goto oom;
	for (int f = 0; f < c->nfields; f++)
		if (nbuf_reserve(&d->cols[f], s->cols[f].len) < 0)
			goto oom;
	return 0;
oom:
	return mv_err_set(err, MV_EINTERNAL, "out of memory");
}

static void nbuf_append(struct nbuf *d, const struct nbuf *s)
{
	if (s->len)
		memcpy(d->p + d->len, s->p, s->len);
	d->len += s->len;
}

/* Merge pass 2: append s's rows to d (pcoll_merge_check said yes). */
static void pcoll_append(struct pcoll *d, struct pcoll *s)
{
	const int64_t *ids = (const int64_t *)s->ids.p;

	if (d->user_ids || s->user_ids) {
		for (size_t i = 0; i < s->n; i++)
			mv_idmap_put(&d->seen, ids[i], NULL, 0);
		d->user_ids = 1;
	} else if (s->n) {
		d->seen_stale = 1;	/* fresh ids only: seen falls behind */
	}
	nbuf_touch(&d->vecs, d->vecs.len + s->vecs.len);
	nbuf_append(&d->ids, &s->ids);
	nbuf_append(&d->vecs, &s->vecs);
	nbuf_append(&d->dels, &s->dels);
	for (int f = 0; f < d->c->nfields; f++)
		nbuf_append(&d->cols[f], &s->cols[f]);
	d->n += s->n;
}

static struct pcoll *batch_find(struct batch *b, struct coll *c)
{
	struct pcoll *pc;

	for (pc = b->colls; pc; pc = pc->next)
		if (pc->c == c)
			return pc;
	return NULL;
}

int batch_merge(struct node *nd, struct batch *dst, struct batch *src,
		struct mv_err *err)
{
	struct pcoll *pc, *next, *d;
	int rc;

	for (pc = src->colls; pc; pc = pc->next)
		if (pc->vw)
			MV_BUG("a held batch was staged");
	for (pc = src->colls; pc; pc = pc->next)
		if ((d = batch_find(dst, pc->c)) &&
		    (rc = pcoll_merge_check(d, pc, err)) < 0)
			return rc;
	/* Cannot fail from here on. */
	for (pc = src->colls; pc; pc = next) {
		next = pc->next;
		d = batch_find(dst, pc->c);
		if (d) {
			pcoll_append(d, pc);
			pcoll_free(pc);
		} else {
			pc->next = dst->colls;
			dst->colls = pc;
			d = pc;
		}
		stage_more(nd, d);
	}
	src->colls = NULL;
	dst->bytes += src->bytes;
	dst->rows += src->rows;
	dst->ndels += src->ndels;
	dst->acct += src->acct;
	src->acct = 0;
	if (src->first_ms && (!dst->first_ms || src->first_ms < dst->first_ms))
		dst->first_ms = src->first_ms;
	dst->last_used = node_mono_s();
	batch_clear(src);
	return 0;
}

/*
 * Reserve at least n more ids in c's state record, by compare-and-swap
 * (another writer's reservation makes it retry from there), unless
 * another thread did meanwhile.  Once per MV_ID_BLOCK ids at most.
 */
static int reserve_ids(struct node *nd, struct coll *c, size_t n,
		       struct mv_err *err)
{
	char key[256];
	__int128 from, base, end;
	int rc = 0, conflicts = 0;

	key_coll(key, sizeof(key), c->user, c->name, "state");
	pthread_mutex_lock(&c->state_lock);
	pthread_mutex_lock(&c->id_lock);
	from = c->id_next;
	pthread_mutex_unlock(&c->id_lock);
	if (from + (__int128)n > c->id_end)
		rc = mv_state_reserve(nd->meta, key, &c->state, from,
				      n > MV_ID_BLOCK ? n : MV_ID_BLOCK,
				      &base, &end, &conflicts, err);
	if (rc == 0 && from + (__int128)n > c->id_end) {
		pthread_mutex_lock(&c->id_lock);
		if (c->id_next < base)
			c->id_next = base;
		c->id_end = end;
		pthread_mutex_unlock(&c->id_lock);
	}
	pthread_mutex_unlock(&c->state_lock);
	if (conflicts)
		log_info("collection '%s': its state record changed under "
			 "another writer %d times; ids reserved after it",
			 c->name, conflicts);
	return rc;
}

/*
 * Take n consecutive ids for assignment into *first, from the range
 * reserved in the state record.  They never wrap: when fewer than n are
 * left below 2^63, nothing is taken.
 */
static int take_ids(struct node *nd, struct coll *c, size_t n,
		    int64_t *first, struct mv_err *err)
{
	for (;;) {
		int rc = 0, room;

		pthread_mutex_lock(&c->id_lock);
		room = c->id_next + (__int128)n <= c->id_end;
		if (c->id_next + (__int128)n > MV_ID_TOP) {
			rc = mv_err_set(err, MV_EDATA, "no ids left to assign "
				"in collection '%s': %zu more would pass %"
				PRId64 ", the largest int64; give ids explicitly",
				c->name, n, INT64_MAX);
		} else if (room) {
			*first = (int64_t)c->id_next;
			c->id_next += (__int128)n;
		}
		pthread_mutex_unlock(&c->id_lock);
		if (rc < 0 || room)
			return rc;
		if ((rc = reserve_ids(nd, c, n, err)) < 0)
			return rc;
	}
}

int node_insert_commit_tail(struct node *nd, struct batch *b,
			    struct pcoll *pc, size_t n, int has_ids,
			    int upsert, int has_fields, int64_t *first_id,
			    struct mv_err *err)
{
	struct coll *c = pc->c;
	size_t vstart = pc->vecs.len - n * c->dim * sizeof(float);
	const float *v = (const float *)(pc->vecs.p + vstart);
	size_t istart, put = 0;
	int64_t *ids;
	int rc = 0;

	*first_id = -1;
	{
		/* Only vectors FAISS can search: finite, norms in range. */
		const char *why;
		long bad = mv_vcheck(v, n, c->dim, &why);

		if (bad >= 0) {
			rc = mv_err_set(err, MV_EDATA, "row %ld: %s", bad + 1,
					why);
			goto undo;
		}
	}
	if (!has_ids) {
		int64_t first = 0;

		if (nbuf_reserve(&pc->ids, n * 8) < 0)
			goto oom;
		if ((rc = take_ids(nd, c, n, &first, err)) < 0)
			goto undo;
		ids = (int64_t *)(pc->ids.p + pc->ids.len);
		for (size_t i = 0; i < n; i++)
			ids[i] = first + (int64_t)i;
		pc->ids.len += n * 8;
		*first_id = first;
	}
	istart = pc->ids.len - n * 8;
	ids = (int64_t *)(pc->ids.p + istart);
	if (!has_ids && !pc->user_ids) {
		/* Fresh ids need no duplicate check; seen falls behind. */
		pc->seen_stale = 1;
	} else {
		if (pc->seen_stale) {
			/* The first given ids of the batch: catch seen up. */
			const int64_t *all = (const int64_t *)pc->ids.p;
			if (mv_idmap_reserve(&pc->seen, istart / 8 + n) < 0)
				goto oom;
			for (size_t i = 0; i < istart / 8; i++)
				mv_idmap_put(&pc->seen, all[i], NULL, 0);
			pc->seen_stale = 0;
		}
		if (mv_idmap_reserve(&pc->seen, n) < 0)
			goto oom;
		pthread_rwlock_rdlock(&c->lock);
		for (put = 0; put < n; put++) {
			size_t i = put;

			if (ids[i] == MV_ID_NONE) {
				rc = mv_err_set(err, MV_EDATA, "row %zu: bad id",
						i + 1);
				break;
			}
			if (mv_idmap_get(&pc->seen, ids[i])) {
				rc = mv_err_setk(err, MV_EDATA, MV_K_DUPID,
						"id %" PRId64 " given twice (row %zu)",
						ids[i], i + 1);
				break;
			}
			if (has_ids && !upsert && mv_idmap_get(&c->ids, ids[i])) {
				rc = mv_err_setk(err, MV_EDATA, MV_K_DUPID,
					"id %" PRId64 " already in collection '%s' (row %zu)",
					ids[i], c->name, i + 1);
				break;
			}
			mv_idmap_put(&pc->seen, ids[i], NULL, 0);
		}
		pthread_rwlock_unlock(&c->lock);
		if (rc < 0) {
			/* Forget what this request added, and only that. */
			for (size_t i = 0; i < put; i++)
				mv_idmap_del(&pc->seen, ids[i]);
			goto undo;
		}
		if (has_ids)
			pc->user_ids = 1;
	}
	if (upsert) {
		if (nbuf_reserve(&pc->dels, n * 8) < 0)
			goto oom_seen;
		memcpy(pc->dels.p + pc->dels.len, ids, n * 8);
		pc->dels.len += n * 8;
	}
	if (has_ids)
		bump_next_id(c, ids, n);
	if (!has_fields) {
		/* Default values: 0, 0.0, "". */
		for (int f = 0; f < c->nfields; f++) {
			size_t w = c->fields[f].type == MV_STRING ? 4 : 8;
			if (nbuf_reserve(&pc->cols[f], n * w) < 0)
				goto oom_seen;
			memset(pc->cols[f].p + pc->cols[f].len, 0, n * w);
			pc->cols[f].len += n * w;
		}
	}
	pc->n += n;
	b->rows += (int64_t)n;
	b->bytes += n * (c->dim * sizeof(float) + 8);
	if (!b->first_ms)
		b->first_ms = node_mono_ms();
	return 0;
oom_seen:
	if (!pc->seen_stale)
		for (size_t i = 0; i < put; i++)
			mv_idmap_del(&pc->seen, ids[i]);
oom:
	rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
undo:
	/* The caller restores the buffers' lengths. */
	return rc;
}

struct batch *node_session_get(struct node *nd, const char *name, int create)
{
	struct batch *b;

	for (b = nd->sessions; b; b = b->next)
		if (!strcmp(b->session, name)) {
			if (create == 2)
				node_cluster_session(nd, name, 1);
			return b;
		}
	if (!create)
		return NULL;
	b = batch_new(name);
	if (!b)
		return NULL;
	b->next = nd->sessions;
	nd->sessions = b;
	node_cluster_session(nd, name, 1);	/* cluster: its key */
	return b;
}

void node_session_remove(struct node *nd, struct batch *b)
{
	struct batch **pp;

	for (pp = &nd->sessions; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			node_cluster_session(nd, b->session, 0);
			return;
		}
}

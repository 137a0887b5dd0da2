/*
 * coll.c - a collection in memory: made, looked up, referenced and freed
 * with its segments and index.  Creating and dropping one, which touch
 * the metadata and the sessions, are ddl.c's.
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

struct coll *coll_new(const char *user, const char *name,
		      uint32_t dim, enum mv_metric metric,
		      const struct mv_field *f, int nf)
{
	struct coll *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->dim = dim;
	c->metric = metric;
	c->nfields = nf;
	if (nf)
		memcpy(c->fields, f, nf * sizeof(*f));
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->build_lock, NULL);
	pthread_cond_init(&c->build_cv, NULL);
	pthread_mutex_init(&c->park_lock, NULL);
	pthread_mutex_init(&c->scan_lock, NULL);
	mv_idmap_init(&c->ids);
	pthread_mutex_init(&c->id_lock, NULL);
	pthread_mutex_init(&c->state_lock, NULL);
	c->id_next = c->id_end = 0;
	c->next_seq = 1;
	return c;
}

/* Free a list of parked contents (node_coll_park). */
static void unpark(struct coll *p)
{
	while (p) {
		struct coll *next = p->next;

		p->next = NULL;
		coll_put(p);
		p = next;
	}
}

void coll_put(struct coll *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	unpark(c->parked);
	cindex_free(c->index);
	for (size_t i = 0; i < c->nsegs; i++)
		node_seg_free(c->segs[i]);
	free(c->segs);
	pthread_mutex_destroy(&c->build_lock);
	pthread_mutex_destroy(&c->park_lock);
	pthread_mutex_destroy(&c->scan_lock);
	pthread_mutex_destroy(&c->id_lock);
	pthread_mutex_destroy(&c->state_lock);
	free(c->state);
	free(c->scan_ids);
	free(c->asof_ids);
	free(c->dels);
	mv_idmap_release(&c->ids);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

void node_coll_path(const struct coll *c, const char *leaf, char *out)
{
	snprintf(out, MV_SPATH, "%s/%s-%s/%s", c->user, c->name, c->token,
		 leaf);
}

struct seg *node_coll_seg(struct coll *c, const char *path)
{
	for (size_t i = 0; i < c->nsegs; i++)
		if (!strcmp(c->segs[i]->path, path))
			return c->segs[i];
	return NULL;
}

void node_coll_reader_start(struct coll *c)
{
	pthread_mutex_lock(&c->park_lock);
	c->readers++;
	pthread_mutex_unlock(&c->park_lock);
}

void node_coll_reader_end(struct coll *c)
{
	struct coll *p = NULL;

	pthread_mutex_lock(&c->park_lock);
	if (--c->readers == 0) {
		p = c->parked;
		c->parked = NULL;
	}
	pthread_mutex_unlock(&c->park_lock);
	unpark(p);
}

void node_coll_park(struct coll *c, struct coll *old)
{
	pthread_mutex_lock(&c->park_lock);
	if (c->readers) {
		old->next = c->parked;
		c->parked = old;
		old = NULL;
	}
	pthread_mutex_unlock(&c->park_lock);
	coll_put(old);
}

struct coll *node_coll_get(struct node *nd, const char *user,
			   const char *name)
{
	struct coll *c;

	pthread_mutex_lock(&nd->lock);
	for (c = nd->colls; c; c = c->next)
		if (!strcmp(c->name, name) && !strcmp(c->user, user)) {
			atomic_fetch_add(&c->refs, 1);
			break;
		}
	pthread_mutex_unlock(&nd->lock);
	return c;
}

struct coll **node_colls_ref(struct node *nd, size_t *n)
{
	struct coll *c, **list;
	size_t all = 0;

	*n = 0;
	pthread_mutex_lock(&nd->lock);
	for (c = nd->colls; c; c = c->next)
		all++;
	list = malloc((all ? all : 1) * sizeof(*list));
	for (c = nd->colls; list && c; c = c->next) {
		atomic_fetch_add(&c->refs, 1);
		list[(*n)++] = c;
	}
	pthread_mutex_unlock(&nd->lock);
	return list;
}

/* Segments whose vectors c serves here (c->lock held): a cluster
 * node holds only some (place.c). */
static size_t node_segs_held(struct coll *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nsegs; i++) {
		const struct seg *s = c->segs[i];

		if (s->indexed ? c->index && c->index->ix : s->vecs != NULL)
			n++;
	}
	return n;
}

size_t node_segment_count(struct node *nd)
{
	size_t n, segs = 0;
	struct coll **list = node_colls_ref(nd, &n);

	/* Each collection's lock after the list's is let go: never nested. */
	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_rdlock(&list[i]->lock);
		segs += nd->place ? node_segs_held(list[i]) : list[i]->nsegs;
		pthread_rwlock_unlock(&list[i]->lock);
		coll_put(list[i]);
	}
	free(list);
	return segs;
}

void cindex_free(struct cindex *ci)
{
	if (!ci)
		return;
	if (ci->held)
		node_held_add(-(long long)ci->held);
	mv_index_free(ci->ix);
	/* Segments a compaction replaced live only for the index. */
	for (size_t i = 0; ci->segs && i < ci->nsegs; i++)
		if (ci->segs[i] && ci->segs[i]->retired)
			node_seg_free(ci->segs[i]);
	free(ci->segs);
	free(ci->base);
	free(ci);
}

/* Assigned ids stay above every id given: past the largest of ids[0..n). */
void bump_next_id(struct coll *c, const int64_t *ids, size_t n)
{
	int64_t max = INT64_MIN;

	for (size_t i = 0; i < n; i++)
		if (ids[i] > max)
			max = ids[i];
	if (!n)
		return;
	pthread_mutex_lock(&c->id_lock);
	if ((__int128)max + 1 > c->id_next)
		c->id_next = (__int128)max + 1;
	pthread_mutex_unlock(&c->id_lock);
}

/*
 * place.c - placement in a cluster (DESIGN.md "Master and nodes"): which
 * nodes hold a unit's vectors, computed alike on every node from the live
 * keys alone, so that the master stays stateless.  A unit is an index
 * (with the segments it covers) or a segment no index covers, named by
 * its storage path; its holders are the 1 + num_replicas live nodes with
 * the highest hash(path, node number) (rendezvous hashing: when a node
 * leaves, only its units move, each to the next node in its own order).
 *
 * Every node keeps every segment's ids, columns and deletion bitmap; only
 * vectors and indexes are placed.  The placer thread frees what this node
 * no longer holds (under the collection's write lock: after the searches
 * in flight) and loads from storage what it holds newly, whenever the
 * live set changes and once a second for what flushes, merges and builds
 * made meanwhile.  Embedded, every unit is held and no thread runs.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "log.h"
#include "rank.h"
#include "segfile.h"

#define PLACE_PASS_MS 1000

size_t node_place_pick(const char *unit, const uint32_t *nos, size_t n,
		       size_t want, uint32_t *out)
{
	uint64_t top[PLACE_NODES_MAX];
	size_t got = 0;

	if (want > PLACE_NODES_MAX)
		want = PLACE_NODES_MAX;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = mv_rank_hash(unit, nos[i]);
		size_t pos = got < want ? got++ : want;

		/* Insertion into the descending top; ties by smaller number. */
		while (pos > 0 && (top[pos - 1] < h ||
				   (top[pos - 1] == h && out[pos - 1] > nos[i]))) {
			if (pos < want) {
				top[pos] = top[pos - 1];
				out[pos] = out[pos - 1];
			}
			pos--;
		}
		if (pos < want) {
			top[pos] = h;
			out[pos] = nos[i];
		}
	}
	return got;
}

/* --- membership ----------------------------------------------------- */

static void live_prefix(const struct node *nd, char *out, size_t cap)
{
	snprintf(out, cap, "/%s/%s_property/live/", nd->conf.user,
		 nd->conf.cluster_id);
}

/* Add or update node no (p->lock held). */
static void live_set(struct place *p, uint32_t no, const char *addr)
{
	size_t i;

	for (i = 0; i < p->nlive; i++)
		if (p->live[i].no == no)
			break;
	if (i == p->nlive) {
		if (p->nlive == PLACE_NODES_MAX)
			return;
		memset(&p->live[i], 0, sizeof(p->live[i]));
		p->live[i].no = no;
		p->nlive++;
	}
	snprintf(p->live[i].addr, sizeof(p->live[i].addr), "%s", addr);
}

static int init_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct place *p = arg;
	char addr[sizeof(p->live[0].addr)];
	uint32_t no;

	(void)key;
	if (node_live_parse(val, vlen, &no, addr, sizeof(addr)) == 0)
		live_set(p, no, addr);
	return 0;
}

int node_place_init(struct node *nd, struct mv_err *err)
{
	struct place *p;
	char prefix[512];
	const char *addr = "";
	int rc;

	if (!nd->cluster || nd->place)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	live_prefix(nd, prefix, sizeof(prefix));
	rc = mv_meta_range(nd->meta, prefix, init_cb, p, err);
	if (rc < 0) {
		free(p);
		return rc;
	}
	for (int i = 0; i < nd->conf.nlisten; i++)
		if (strncmp(nd->conf.listen[i], "unix:", 5)) {
			addr = nd->conf.listen[i];
			break;
		}
	live_set(p, nd->node_no, addr);	/* this node, alive */
	p->gen = 1;
	nd->place = p;
	return 0;
}

int node_place_live_key(struct node *nd, const char *key, uint32_t *out)
{
	char prefix[512];
	size_t pl;
	char *end;
	unsigned long no;

	if (!nd->place)
		return 0;
	live_prefix(nd, prefix, sizeof(prefix));
	pl = strlen(prefix);
	if (strncmp(key, prefix, pl) || !key[pl])
		return 0;
	no = strtoul(key + pl, &end, 10);
	if (*end || no > UINT32_MAX || no == nd->node_no)
		return 0;	/* this node stays live for itself */
	*out = (uint32_t)no;
	return 1;
}

void node_place_live(struct node *nd, const char *key, const char *val,
		     size_t vlen, int put)
{
	struct place *p = nd->place;
	uint32_t no;

	if (!node_place_live_key(nd, key, &no))
		return;
	pthread_mutex_lock(&p->lock);
	if (put) {
		json_t *j = json_loadb(val, vlen, 0, NULL);
		const char *addr = json_string_value(json_object_get(j, "addr"));

		if (addr)
			live_set(p, no, addr);
		json_decref(j);
	} else {
		for (size_t i = 0; i < p->nlive; i++)
			if (p->live[i].no == no) {
				p->live[i] = p->live[--p->nlive];
				break;
			}
	}
	p->gen++;
	p->kick = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	log_info("node %u: node %u %s; placement computed again",
		 nd->node_no, no, put ? "live" : "gone");
}

/* The holders of unit in rank order (p->lock held). */
static size_t holders_locked(struct node *nd, const char *unit,
			     uint32_t *out)
{
	struct place *p = nd->place;
	uint32_t nos[PLACE_NODES_MAX];

	for (size_t i = 0; i < p->nlive; i++)
		nos[i] = p->live[i].no;
	return node_place_pick(unit, nos, p->nlive,
			       1 + (size_t)nd->conf.num_replicas, out);
}

int node_place_held(struct node *nd, const char *unit)
{
	uint32_t h[PLACE_NODES_MAX];
	size_t n;
	int held = 0;

	if (!nd->place)
		return 1;
	pthread_mutex_lock(&nd->place->lock);
	n = holders_locked(nd, unit, h);
	pthread_mutex_unlock(&nd->place->lock);
	for (size_t i = 0; i < n; i++)
		held |= h[i] == nd->node_no;
	return held;
}

size_t node_place_holders(struct node *nd, const char *unit,
			  struct place_node *out)
{
	struct place *p = nd->place;
	uint32_t h[PLACE_NODES_MAX];
	size_t n, m = 0;
	int64_t now = node_mono_ms();

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = holders_locked(nd, unit, h);
	/* Rank order, but nodes that did not answer lately last. */
	for (int late = 0; late < 2; late++)
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < p->nlive; j++) {
				struct place_node *x = &p->live[j];

				if (x->no != h[i] ||
				    (x->suspect_until > now) != late)
					continue;
				out[m++] = *x;
			}
	pthread_mutex_unlock(&p->lock);
	return m;
}

size_t node_place_others(struct node *nd, struct place_node *out)
{
	struct place *p = nd->place;
	size_t m = 0;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nlive; i++)
		if (p->live[i].no != nd->node_no)
			out[m++] = p->live[i];
	pthread_mutex_unlock(&p->lock);
	return m;
}

/*
 * The merger of c is the live node ranked first for the collection's
 * storage directory (rendezvous hashing, as units are placed): a pure
 * function of the live set, so merges spread over the nodes and go on
 * when any of them is gone.  Two nodes may both think so while the live
 * set changes; node_compact's commit requires its inputs' keys, so the
 * second merge of the same segments commits nothing.
 */
int node_place_merger(struct node *nd, const struct coll *c)
{
	struct place *p = nd->place;
	uint32_t nos[PLACE_NODES_MAX], top;
	char key[2 * MV_NAME_MAX + 32];
	size_t n;

	if (!p)
		return 1;
	snprintf(key, sizeof(key), "%s/%s-%s", c->user, c->name, c->token);
	pthread_mutex_lock(&p->lock);
	for (n = 0; n < p->nlive; n++)
		nos[n] = p->live[n].no;
	pthread_mutex_unlock(&p->lock);
	return node_place_pick(key, nos, n, 1, &top) == 1 &&
	       top == nd->node_no;
}

uint64_t node_place_gen(struct node *nd)
{
	struct place *p = nd->place;
	uint64_t g;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	g = p->gen;
	pthread_mutex_unlock(&p->lock);
	return g;
}

int64_t node_place_loaded(struct node *nd)
{
	struct place *p = nd->place;
	int64_t r;

	if (!p)
		return atomic_load(&nd->applied_rev);
	/*
	 * The follower loads the vectors of what this node holds as it
	 * applies (node_seg_read, node_index_load), so while the live set
	 * is the one of the placer's last clean pass, everything applied is
	 * loaded.  It bumps gen before it applies past a live key's change.
	 */
	pthread_mutex_lock(&p->lock);
	r = p->clean_gen == p->gen ? atomic_load(&nd->applied_rev)
				   : p->loaded_rev;
	pthread_mutex_unlock(&p->lock);
	return r;
}

void node_place_suspect(struct node *nd, uint32_t no, int ms)
{
	struct place *p = nd->place;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nlive; i++)
		if (p->live[i].no == no)
			p->live[i].suspect_until = ms ? node_mono_ms() + ms : 0;
	pthread_mutex_unlock(&p->lock);
}

/* --- the placer: free what is not held, load what is ----------------- */

/* Drop s's searched vectors (c->lock held exclusively). */
static void seg_unload(struct seg *s)
{
	if (s->raw == s->vecs)
		s->raw = NULL;		/* mapped again when GET asks */
	node_seg_free_own(s, 0);
	s->vecs = NULL;
	free(s->norms2);
	s->norms2 = NULL;
}

void node_place_drop_vecs(struct node *nd, struct seg *s)
{
	if (nd->place && s->vecs && !s->indexed &&
	    !node_place_held(nd, s->path))
		seg_unload(s);
}

int node_seg_vecs_read(struct node *nd, struct coll *c, struct seg *tmp,
		       uint64_t n, struct mv_err *err)
{
	struct mv_seginfo info;
	void *file = NULL, *a = NULL;
	const void *b;
	size_t len;
	int rc;

	rc = mv_store_get(nd->store, tmp->path, &file, &len, err);
	if (rc == 0)
		rc = mv_segfile_decode(tmp->path, file, len, &info, &a, &b, err);
	free(a);
	if (rc < 0) {
		free(file);
		return rc;
	}
	if (info.kind != MV_SEG_VEC || info.n != n ||
	    info.b_len != n * c->dim * sizeof(float)) {
		free(file);
		return mv_err_set(err, MV_EIO, "'%s': not the vector file it "
				  "was", tmp->path);
	}
	tmp->n = n;
	tmp->own = file;
	tmp->vecs = (float *)b;
	if (c->metric == MV_COSINE) {
		float *nv = malloc(n * c->dim * sizeof(float) + 1);

		if (!nv) {
			free(file);
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		}
		memcpy(nv, b, n * c->dim * sizeof(float));
		free(file);
		tmp->own = nv;
		tmp->vecs = nv;
	}
	rc = node_seg_prepare(c, tmp, 0, err);
	if (rc < 0) {
		free(tmp->own);
		free(tmp->norms2);
	}
	return rc;
}

/* c's index from storage, when it is held and not loaded. */
static struct mv_index *index_read(struct node *nd, const char *path,
				   uint64_t total, struct mv_err *err)
{
	struct mv_seginfo info;
	void *file = NULL, *a = NULL;
	const void *b;
	size_t len;
	struct mv_index *ix = NULL;

	if (mv_store_get(nd->store, path, &file, &len, err) == 0 &&
	    mv_segfile_decode(path, file, len, &info, &a, &b, err) == 0) {
		if (info.kind != MV_SEG_IDX || info.n != total)
			mv_err_set(err, MV_EIO, "'%s': not an index of %" PRIu64
				   " rows", path, total);
		else
			ix = mv_index_read(b, info.b_len, err);
	}
	free(file);
	free(a);
	return ix;
}

/*
 * One pass over c: 1 if something was left to do (a merge or build under
 * way, or storage away), else 0; *missing set when a unit this node holds
 * is left unloaded.
 */
static int place_coll(struct node *nd, struct coll *c, int *missing)
{
	struct want { char path[MV_SPATH]; uint64_t n; } *w = NULL;
	size_t nw = 0, nfree = 0;
	char ipath[MV_SPATH] = "";
	uint64_t itotal = 0;
	int ifree = 0, busy, again = 0;

	pthread_rwlock_rdlock(&c->lock);
	w = malloc((c->nsegs + 1) * sizeof(*w));
	if (!w)
		*missing = 1;
	for (size_t i = 0; w && i < c->nsegs; i++) {
		struct seg *s = c->segs[i];

		if (s->indexed || s->n == s->ndeleted)
			continue;
		if (node_place_held(nd, s->path)) {
			if (!s->vecs) {
				snprintf(w[nw].path, sizeof(w->path), "%s",
					 s->path);
				w[nw++].n = s->n;
			}
		} else if (s->vecs) {
			nfree++;
		}
	}
	if (c->index) {
		int held = node_place_held(nd, c->index->path);

		if (held && !c->index->ix) {
			snprintf(ipath, sizeof(ipath), "%s", c->index->path);
			itotal = c->index->base[c->index->nsegs];
		}
		ifree = !held && c->index->ix;
	}
	pthread_rwlock_unlock(&c->lock);
	if (nfree || ifree) {
		/* Not while a merge or build reads vectors unlocked. */
		pthread_mutex_lock(&c->build_lock);
		busy = c->compacting || c->build.state == BUILD_RUNNING;
		if (!busy)
			c->compacting = 1;
		pthread_mutex_unlock(&c->build_lock);
		if (!busy) {
			pthread_rwlock_wrlock(&c->lock);
			for (size_t i = 0; i < c->nsegs; i++)
				node_place_drop_vecs(nd, c->segs[i]);
			if (c->index && c->index->ix &&
			    !node_place_held(nd, c->index->path)) {
				mv_index_free(c->index->ix);
				c->index->ix = NULL;
			}
			pthread_rwlock_unlock(&c->lock);
			pthread_mutex_lock(&c->build_lock);
			c->compacting = 0;
			pthread_mutex_unlock(&c->build_lock);
		}
		again |= busy;
	}
	if (nw || ipath[0])
		node_test_pause("MV_TEST_PAUSE_PLACE");
	for (size_t i = 0; i < nw && !atomic_load(&nd->stop); i++) {
		struct seg tmp;
		struct mv_err e = { 0 };
		int done = 0;

		memset(&tmp, 0, sizeof(tmp));
		snprintf(tmp.path, sizeof(tmp.path), "%s", w[i].path);
		if (node_seg_vecs_read(nd, c, &tmp, w[i].n, &e) < 0) {
			/* Said once until a load works again (S3 away). */
			if (!nd->place->warned++)
				log_warnx("collection '%s': cannot load '%s': "
					  "%s; trying again every second",
					  c->name, w[i].path, e.msg);
			again = 1;
			*missing = 1;
			continue;
		}
		nd->place->warned = 0;
		pthread_rwlock_wrlock(&c->lock);
		for (size_t j = 0; j < c->nsegs; j++) {
			struct seg *s = c->segs[j];

			if (strcmp(s->path, w[i].path) || s->vecs ||
			    s->indexed || s->n != w[i].n)
				continue;
			s->own = tmp.own;
			s->vecs = tmp.vecs;
			if (c->metric != MV_COSINE)
				s->raw = s->vecs;
			free(s->norms2);
			s->norms2 = tmp.norms2;
			done = 1;
			break;
		}
		pthread_rwlock_unlock(&c->lock);
		if (!done) {
			free(tmp.own);
			free(tmp.norms2);
		}
	}
	free(w);
	if (ipath[0] && !atomic_load(&nd->stop)) {
		struct mv_err e = { 0 };
		struct mv_index *ix = index_read(nd, ipath, itotal, &e);

		if (!ix) {
			if (!nd->place->warned++)
				log_warnx("collection '%s': cannot load the "
					  "index '%s': %s; trying again every "
					  "second", c->name, ipath, e.msg);
			again = 1;
			*missing = 1;
		} else {
			nd->place->warned = 0;
			pthread_rwlock_wrlock(&c->lock);
			if (c->index && !c->index->ix &&
			    !strcmp(c->index->path, ipath)) {
				c->index->ix = ix;
				ix = NULL;
			}
			pthread_rwlock_unlock(&c->lock);
			mv_index_free(ix);
		}
	}
	return again;
}

static void *placer(void *arg)
{
	struct node *nd = arg;
	struct place *p = nd->place;

	while (!atomic_load(&nd->stop)) {
		size_t n;
		struct coll **list;
		int again = 0, missing = 0;
		uint64_t gen;
		int64_t rev;

		pthread_mutex_lock(&p->lock);
		if (!p->kick) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PLACE_PASS_MS / 1000;
			pthread_cond_timedwait(&p->cv, &p->lock, &ts);
		}
		p->kick = 0;
		gen = p->gen;
		pthread_mutex_unlock(&p->lock);
		if (atomic_load(&nd->stop))
			break;
		/* Read before the list: every collection applied by then is
		 * in it. */
		rev = atomic_load(&nd->applied_rev);
		list = node_colls_ref(nd, &n);
		missing = !list;
		for (size_t i = 0; i < n; i++) {
			if (!atomic_load(&nd->stop))
				again |= place_coll(nd, list[i], &missing);
			coll_put(list[i]);
		}
		free(list);
		pthread_mutex_lock(&p->lock);
		if (!missing && !atomic_load(&nd->stop) && p->gen == gen) {
			p->clean_gen = gen;
			if (rev > p->loaded_rev)
				p->loaded_rev = rev;
		}
		pthread_mutex_unlock(&p->lock);
		(void)again;	/* the next pass, within a second */
	}
	return NULL;
}

int node_place_start(struct node *nd, struct mv_err *err)
{
	if (!nd->place || nd->place->running)
		return 0;
	nd->place->kick = 1;	/* a first pass at once: loaded= */
	if (pthread_create(&nd->place->thread, NULL, placer, nd))
		return mv_err_set(err, MV_EINTERNAL, "cannot start a thread");
	nd->place->running = 1;
	return 0;
}

void node_place_stop(struct node *nd)
{
	struct place *p = nd->place;

	if (!p || !p->running)
		return;
	pthread_mutex_lock(&p->lock);
	p->kick = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->running = 0;
}

void node_place_free(struct node *nd)
{
	struct place *p = nd->place;

	if (!p)
		return;
	node_place_stop(nd);
	while (p->pool) {
		struct fan_conn *fc = p->pool;

		p->pool = fc->next;
		close(fc->fd);
		free(fc);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cv);
	free(p);
	nd->place = NULL;
}

/* --- unit lists --------------------------------------------------------- */

int node_units_add(struct node_units *u, const char *leaf)
{
	if (u->n == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 16;
		void *v = realloc(u->v, nc * sizeof(*u->v));

		if (!v)
			return MV_EINTERNAL;
		u->v = v;
		u->cap = nc;
	}
	snprintf(u->v[u->n++], MV_UNIT_LEAF, "%s", leaf);
	return 0;
}

int node_units_has(const struct node_units *u, const char *leaf)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i], leaf))
			return 1;
	return 0;
}

void node_units_free(struct node_units *u)
{
	free(u->v);
	memset(u, 0, sizeof(*u));
}

/*
 * follow.c - the cluster (DESIGN.md "Master and nodes", log as data): a
 * node joins (its number in the property key, its live key under a lease
 * it keeps alive), follows the commit log through a watch of every key,
 * loading from the store what other nodes commit, and makes reads wait
 * until it has applied the revision current when they started.
 *
 * The follower applies one revision at a time under node.commit, so a
 * commit of this node is either wholly in memory or not yet made when the
 * follower looks: what the node already holds (its own commits, or what a
 * reload read) is skipped, which makes every apply idempotent.  A vector
 * or delete-log key is applied incrementally; anything else that changes
 * a collection (a file removed by a compaction or a drop, another index)
 * reloads that collection from the metadata and swaps its contents in
 * under its write lock: after the revision's other applies, reading from
 * the store, with node.commit released, only the files the node lacks,
 * then building and swapping under node.commit (follow_reload).  A node
 * keeps every segment's ids and columns but only the vectors of the
 * units it holds (place.c).
 *
 * No store read of another node's file holds node.commit, so that the
 * node's own flushes never wait for them.  The incremental applies read
 * first (read_ahead), with no lock held: the vector files and delete logs
 * other nodes put in the revision, of collections the node has and does
 * not reload, that it does not hold (checked under the collection's read
 * lock).  The node's own files (the writer's number in the key's value)
 * are not read: its keys may reach the watch before its commit is in
 * memory, but that happens under node.commit, before the apply can take
 * it.  Then, under node.commit, the two passes apply the revision in its
 * order as before, each key checked for "held" again (a file read ahead
 * and held meanwhile is freed unused, never attached twice) and given
 * what was read for it; one read for another incarnation of the
 * collection (its token in the path) reloads it instead.  Read ahead,
 * a segment is not attached and not counted in node_held, and a delete
 * log is only its ids, applied at its turn to the rows in memory then
 * (a segment it follows in the log is attached by then); what is not
 * used is freed.  The store away (MV_EAGAIN)
 * ends the read-ahead before anything is applied: the revision is
 * applied again later.  Under node.commit the store is read only for a
 * file not read ahead: this node's own of a flush whose outcome was
 * unknown (limbo), or one skipped for a reload that then did not happen
 * (a data key deleted that the node did not hold).  applied_rev is set
 * once the revision is in memory, as before.  The revisions of one watch
 * are read several at once, ahead of their apply (apply_batch).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "internal.h"
#include "net.h"

#define LEASE_TTL_MS 10000
#define KEEPALIVE_MS 2000
#define WATCH_MS 500
#define SLOW_APPLY_MS 1000	/* a revision's apply logged past this */

/* "/<user>/<cluster_id>_property<leaf>" */
static void key_prop(struct node *nd, char *out, size_t cap,
		     const char *leaf)
{
	snprintf(out, cap, "/%s/%s_property%s", nd->conf.user,
		 nd->conf.cluster_id, leaf);
}

/* Reads waiting for a follower: woken when one applies a revision. */
static pthread_mutex_t applied_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t applied_cv = PTHREAD_COND_INITIALIZER;

static void set_applied(struct node *nd, int64_t rev)
{
	long long cur = atomic_load(&nd->applied_rev);

	while (cur < rev &&
	       !atomic_compare_exchange_weak(&nd->applied_rev, &cur, rev))
		;
	pthread_mutex_lock(&applied_mu);
	pthread_cond_broadcast(&applied_cv);
	pthread_mutex_unlock(&applied_mu);
}

int node_wait_applied(struct node *nd, int64_t rev, int ms,
		      struct mv_err *err)
{
	int64_t end = node_mono_ms() + ms;

	while (atomic_load(&nd->applied_rev) < rev) {
		if (node_mono_ms() >= end || atomic_load(&nd->stop))
			return mv_err_setk(err, MV_EAGAIN, MV_K_BUSY,
					   "node %u behind: applied %lld of "
					   "%" PRId64, nd->node_no,
					   (long long)atomic_load(&nd->applied_rev),
					   rev);
		{
			/* Woken by the follower; a flush's own advance (no
			 * wake-up) and a stop are seen within 2 ms. */
			struct timespec ts;

			node_deadline(&ts, 2);
			pthread_mutex_lock(&applied_mu);
			if (atomic_load(&nd->applied_rev) < rev)
				pthread_cond_timedwait(&applied_cv, &applied_mu,
						       &ts);
			pthread_mutex_unlock(&applied_mu);
		}
	}
	return 0;
}

/*
 * etcd's current revision, from a read that started after the call.
 * Concurrent requests share reads: one that arrives while a read is under
 * way waits for the next, which the first waiter to find none under way
 * starts for all (at most two reads' time; one etcd request per read
 * however many searches arrive meanwhile).
 */
static int shared_revision(struct node *nd, int64_t *rev, struct mv_err *err)
{
	uint64_t need;
	int rc;

	pthread_mutex_lock(&nd->rev_mu);
	need = nd->rev_started + 1;
	while (nd->rev_done < need) {
		struct mv_err e = { 0 };
		uint64_t ticket;
		int64_t r = 0;

		if (nd->rev_started > nd->rev_done) {	/* one under way */
			pthread_cond_wait(&nd->rev_cv, &nd->rev_mu);
			continue;
		}
		ticket = ++nd->rev_started;
		pthread_mutex_unlock(&nd->rev_mu);
		rc = mv_meta_revision(nd->meta, &r, &e);
		pthread_mutex_lock(&nd->rev_mu);
		nd->rev_done = ticket;
		nd->rev_last = rc < 0 ? 0 : r;
		nd->rev_err = e;
		if (rc < 0 && !nd->rev_err.code)
			nd->rev_err.code = rc;
		pthread_cond_broadcast(&nd->rev_cv);
	}
	*rev = nd->rev_last;
	rc = nd->rev_err.code;
	if (rc && err)
		*err = nd->rev_err;
	pthread_mutex_unlock(&nd->rev_mu);
	return rc;
}

uint64_t node_revision_reads(struct node *nd)
{
	uint64_t n;

	pthread_mutex_lock(&nd->rev_mu);
	n = nd->rev_done;
	pthread_mutex_unlock(&nd->rev_mu);
	return n;
}

int node_visible(struct node *nd, struct mv_err *err)
{
	struct mv_err e = { 0 };
	int64_t rev;

	if (!nd->cluster)
		return 0;
	if (shared_revision(nd, &rev, &e) < 0) {
		/* Answer from what the node holds; say so once. */
		if (!atomic_exchange(&nd->meta_down, 1))
			log_warnx("metadata unreachable (%s): answering reads "
				  "from what this node holds", e.msg);
		return 0;
	}
	if (atomic_exchange(&nd->meta_down, 0))
		log_info("metadata reachable again");
	return node_wait_applied(nd, rev, MV_VISIBLE_WAIT_MS, err);
}

int node_visible_at(struct node *nd, int64_t rev, struct mv_err *err)
{
	if (!nd->cluster)
		return 0;
	return node_wait_applied(nd, rev, MV_VISIBLE_WAIT_MS, err);
}

struct coll *node_coll_find(struct node *nd, const char *user,
			    const char *name)
{
	struct coll *c = node_coll_get(nd, user, name);

	if (c || !nd->cluster || node_visible(nd, NULL) < 0)
		return c;
	return node_coll_get(nd, user, name);
}

/* --- flushes of unknown outcome ------------------------------------ */

/* The metadata answers again: settle what waited for it. */
static void limbo_settle(struct node *nd)
{
	struct limbo *l, **pp;

	pthread_mutex_lock(&nd->limbo_lock);
	for (pp = &nd->limbo; (l = *pp);) {
		char *v = NULL;
		size_t vl;
		int rc = mv_meta_get(nd->meta, l->key, &v, &vl, NULL);

		free(v);
		if (rc < 0) {
			pp = &l->next;
			continue;
		}
		if (rc == 1) {
			for (size_t i = 0; i < l->n; i++)
				mv_store_del(nd->store, l->paths[i], NULL);
			log_info("%s that did not commit: its %zu files "
				 "removed", l->what, l->n);
		}
		*pp = l->next;
		free(l->paths);
		free(l);
	}
	pthread_mutex_unlock(&nd->limbo_lock);
}

/* --- the commit log ------------------------------------------------- */

struct fev {
	int type;
	char *key, *val;
	size_t vlen;
	int64_t rev;
};

struct fevs {
	struct fev *v;
	size_t n, cap;
};

static int fev_cb(void *arg, const struct mv_meta_event *ev)
{
	struct fevs *fe = arg;
	struct fev *x;

	if (fe->n == fe->cap) {
		size_t nc = fe->cap ? fe->cap * 2 : 64;
		struct fev *v = realloc(fe->v, nc * sizeof(*v));
		if (!v)
			return MV_EINTERNAL;
		fe->v = v;
		fe->cap = nc;
	}
	x = &fe->v[fe->n];
	x->type = ev->type;
	x->rev = ev->kv.mod_rev;
	x->vlen = ev->kv.vlen;
	x->key = strdup(ev->kv.key);
	x->val = malloc(ev->kv.vlen + 1);
	if (!x->key || !x->val) {
		free(x->key);
		free(x->val);
		return MV_EINTERNAL;
	}
	memcpy(x->val, ev->kv.val, ev->kv.vlen);
	x->val[ev->kv.vlen] = '\0';
	fe->n++;
	return 0;
}

static void fevs_free(struct fevs *fe)
{
	for (size_t i = 0; i < fe->n; i++) {
		free(fe->v[i].key);
		free(fe->v[i].val);
	}
	free(fe->v);
	memset(fe, 0, sizeof(*fe));
}

/* "/<user>/<coll>/<rest>" with valid names: 0, else -1. */
static int split_key(const char *key, char *user, char *coll,
		     const char **rest)
{
	const char *p = key + 1, *s;

	if (key[0] != '/' || !(s = strchr(p, '/')) || s - p > MV_NAME_MAX)
		return -1;
	memcpy(user, p, s - p);
	user[s - p] = '\0';
	p = s + 1;
	if (!(s = strchr(p, '/')) || s - p > MV_NAME_MAX)
		return -1;
	memcpy(coll, p, s - p);
	coll[s - p] = '\0';
	*rest = s + 1;
	if (mv_name_check(user, NULL) < 0 || mv_name_check(coll, NULL) < 0)
		return -1;
	return 0;
}

/* Drop user/name from memory (its keys are gone); node.commit held. */
static void follow_drop(struct node *nd, const char *user, const char *name)
{
	struct coll *c, **pp;

	pthread_mutex_lock(&nd->lock);
	for (pp = &nd->colls; (c = *pp); pp = &c->next)
		if (!strcmp(c->name, name) && !strcmp(c->user, user))
			break;
	if (c) {
		*pp = c->next;
		c->dropped = 1;
	}
	pthread_mutex_unlock(&nd->lock);
	if (c) {
		log_info("collection '%s' dropped by another node", name);
		coll_put(c);
	}
}

/*
 * Reads ahead before a reload reads what the last one lacks under
 * node.commit (the files committed since: a few flushes).
 */
#define RELOAD_TRIES 4

/*
 * Read user/name afresh from the metadata and put it in place of what the
 * node holds: a new collection is linked, another incarnation replaces
 * the old one, the same one gets the new contents swapped in under its
 * write lock, so a search sees one or the other.  Called without
 * node.commit: what the node holds is reused and only what it lacks is
 * read from the store (node_reload_read), with no lock held; then under
 * node.commit the collection is built from the metadata and the
 * read-ahead (no store read), and swapped in.  Should the metadata name
 * something the read-ahead has not (another node committed meanwhile),
 * the read-ahead goes on, keeping what it read and reading only what is
 * new; after RELOAD_TRIES, what it still lacks is read under node.commit
 * (before, each try read everything again, and the last read the whole
 * collection under node.commit: seconds a merge under a stream of
 * flushes, during which the follower applied nothing).  The node's own
 * commits need no check: they are in memory and in the metadata
 * together under node.commit.
 */
static int follow_reload(struct node *nd, const char *user, const char *name)
{
	struct mv_err e = { 0 };
	struct coll *n2 = NULL, *c, **pp, *have = node_coll_get(nd, user, name);
	struct coll *swapped = NULL;	/* c, whose old contents n2 holds */
	struct reuse r = { .c = have };
	int rc, tries = 0;
	int64_t t0 = node_mono_ms();

	/* Testing only: MV_TEST_RELOAD_TRIES=0 reads under node.commit at
	 * once, the last resort of a reload under a stream of merges. */
	const char *tv = getenv("MV_TEST_RELOAD_TRIES");
	int ahead_tries = tv ? atoi(tv) : RELOAD_TRIES;

	for (;;) {
		int ahead = have && tries < ahead_tries;

		r.fill_missing = have && !ahead;
		rc = ahead ? node_reload_read(nd, have, &r, &e) : 0;
		if (rc < 0) {
			log_warnx("collection '%s': cannot read what another "
				  "node committed: %s", name, e.msg);
			coll_put(have);
			return rc;
		}
		if (rc == 0) {
			pthread_mutex_lock(&nd->commit);
			rc = node_coll_load(nd, user, name, 0,
					    have ? &r : NULL, &n2, &e);
			if (rc != NODE_RELOAD_AGAIN)
				break;
			pthread_mutex_unlock(&nd->commit);
		}
		/* Another node committed, or merged a listed file away,
		 * since the list was read. */
		if (++tries >= 2 * RELOAD_TRIES) {
			/* Merged away under each read: the revision later. */
			rc = e.code ? e.code : MV_EAGAIN;
			pthread_mutex_lock(&nd->commit);
			break;
		}
		log_debug("collection '%s': %s; reading again", name, e.msg);
		mv_err_clear(&e);
	}
	if (node_mono_ms() - t0 >= SLOW_APPLY_MS)
		log_info("collection '%s': reloaded in %lld ms, %d list "
			 "reads", name, (long long)(node_mono_ms() - t0),
			 tries + 1);
	if (rc < 0) {
		log_warnx("collection '%s': cannot load what another node "
			  "committed: %s", name, e.msg);
		goto out;
	}
	if (rc == 1) {
		follow_drop(nd, user, name);
		rc = 0;
		goto out;
	}
	if (have) {
		/* n2's copies of have's segments take their parts over. */
		pthread_rwlock_wrlock(&have->lock);
		node_reload_adopt(have, n2);
		pthread_rwlock_unlock(&have->lock);
	}
	pthread_mutex_lock(&nd->lock);
	for (pp = &nd->colls; (c = *pp); pp = &c->next)
		if (!strcmp(c->name, name) && !strcmp(c->user, user))
			break;
	if (!c || strcmp(c->token, n2->token)) {
		/* New, or dropped and created again: n2 takes its place. */
		n2->next = c ? c->next : NULL;
		*pp = n2;
		n2 = NULL;
		if (c)
			c->dropped = 1;
		pthread_mutex_unlock(&nd->lock);
		log_debug("collection '%s' loaded from the metadata", name);
		coll_put(c);
		goto out;
	}
	atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&nd->lock);
	pthread_rwlock_wrlock(&c->lock);
	{
		struct seg **segs = c->segs;
		size_t nsegs = c->nsegs, ndels = c->ndels;
		struct dellog *dels = c->dels;
		struct mv_idmap ids = c->ids;
		struct cindex *ix = c->index;
		int64_t rows = c->rows;

		c->segs = n2->segs;
		c->nsegs = n2->nsegs;
		c->dels = n2->dels;
		c->ndels = n2->ndels;
		c->ids = n2->ids;
		c->index = n2->index;
		c->rows = n2->rows;
		n2->segs = segs;
		n2->nsegs = nsegs;
		n2->dels = dels;
		n2->ndels = ndels;
		n2->ids = ids;
		n2->index = ix;
		n2->rows = rows;
		c->gen++;
	}
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_lock(&c->id_lock);
	if (n2->id_next > c->id_next)
		c->id_next = n2->id_next;
	pthread_mutex_unlock(&c->id_lock);
	if (n2->next_seq > c->next_seq)
		c->next_seq = n2->next_seq;
	log_debug("collection '%s' reloaded from the metadata", name);
	swapped = c;
out:
	pthread_mutex_unlock(&nd->commit);
	if (swapped) {
		/*
		 * n2 holds the old contents: freed now, or once a merge or
		 * build that reads them unlocked ends (never waited for).
		 */
		node_coll_park(swapped, n2);
		n2 = NULL;
		coll_put(swapped);
	}
	coll_put(n2);
	node_reuse_release(&r);
	coll_put(have);
	return rc;
}

struct marks {
	char (*v)[2][MV_NAME_MAX + 1];
	size_t n;
};

static void mark(struct marks *m, const char *user, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i][0], user) && !strcmp(m->v[i][1], name))
			return;
	snprintf(m->v[m->n][0], MV_NAME_MAX + 1, "%s", user);
	snprintf(m->v[m->n][1], MV_NAME_MAX + 1, "%s", name);
	m->n++;
}

static void unmark(struct marks *m, const char *user, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i][0], user) && !strcmp(m->v[i][1], name))
			m->v[i][0][0] = '\0';
}

static int marked(const struct marks *m, const char *user, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i][0], user) && !strcmp(m->v[i][1], name))
			return 1;
	return 0;
}

/* A data key's PUT that names an index file (reloads its collection). */
static int index_put(const struct fev *ev)
{
	json_t *j = json_loadb(ev->val, ev->vlen, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	int r = type && !strcmp(type, "index");

	json_decref(j);
	return r;
}

/*
 * Another node's new file, read from the store before the apply takes
 * node.commit (read_ahead): a vector file's segment, not attached, or a
 * delete log's ids, not applied; or the read's error.  path has the
 * token of the collection read for: the apply uses it only for the same
 * incarnation.
 */
struct ahead {
	char path[MV_SPATH];
	struct seg *seg;
	int64_t *ids;
	size_t n;
	int rc;			/* MV_E* of the read, e its message */
	struct mv_err e;
	int done;		/* applied with its collection's others */
};

static void ahead_free(struct ahead *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		node_seg_free(a[i].seg);
		free(a[i].ids);
	}
	free(a);
}

/* The store read of another node's vector file (the test pause: a slow
 * store or a large file). */
static int read_vectors(struct node *nd, struct coll *c, const char *path,
			const json_t *val, struct seg **s, struct mv_err *e)
{
	node_test_pause("MV_TEST_PAUSE_APPLY");
	return node_seg_read(nd, c, path, val, s, e);
}

/* One data key's event, for collection c (node.commit held, and c's
 * write lock when locked); a: what read_ahead read for it (nothing: a
 * path of "").  What a takes over is cleared in it. */
static void apply_data(struct node *nd, struct coll *c, const struct fev *ev,
		       const char *leaf, struct marks *m, struct ahead *a,
		       int locked)
{
	char path[MV_SPATH];
	struct mv_err e = { 0 };
	json_t *j;
	const char *type, *params;
	int held, rc = 0, ahead;

	j = ev->type == MV_META_PUT ? json_loadb(ev->val, ev->vlen, 0, NULL)
				    : NULL;
	type = json_string_value(json_object_get(j, "type"));
	params = json_string_value(json_object_get(j, "params"));
	node_coll_path(c, leaf, path);
	if (!locked)
		pthread_rwlock_rdlock(&c->lock);
	held = node_coll_seg(c, path) || node_coll_del(c, path) ||
	       (c->index && !strcmp(c->index->key, ev->key) &&
		/* the index held, unless its search defaults changed */
		(!params || !strcmp(params, c->index->params)));
	if (!locked)
		pthread_rwlock_unlock(&c->lock);
	if (ev->type != MV_META_PUT) {
		if (held)
			mark(m, c->user, c->name);
		return;
	}
	if (held) {
		/* (what was read ahead, if anything, is freed unused) */
		json_decref(j);
		return;
	}
	ahead = a->path[0] != '\0';
	if (ahead && strcmp(a->path, path)) {
		/* Read for another incarnation (dropped and created again
		 * meanwhile): load it afresh, reading without node.commit. */
		json_decref(j);
		mark(m, c->user, c->name);
		return;
	}
	if (type && !strcmp(type, "vectors")) {
		struct seg *s = NULL;
		uint64_t seq = (uint64_t)json_integer_value(
			json_object_get(j, "seq"));

		if (ahead) {
			s = a->seg;
			a->seg = NULL;
			if ((rc = a->rc) < 0)
				e = a->e;
		} else {
			/* Not read ahead (see the top of the file). */
			rc = read_vectors(nd, c, path, j, &s, &e);
		}
		if (rc == 0) {
			if (!locked)
				pthread_rwlock_wrlock(&c->lock);
			rc = node_seg_attach(c, s, &e);
			if (!locked)
				pthread_rwlock_unlock(&c->lock);
			if (rc < 0)
				node_seg_free(s);
		}
		if (rc == 0 && seq >= c->next_seq)
			c->next_seq = seq + 1;
	} else if (type && !strcmp(type, "delete")) {
		int64_t *d = NULL;
		size_t n = 0;
		uint64_t seq = (uint64_t)json_integer_value(
			json_object_get(j, "seq"));

		if (ahead) {
			d = a->ids;
			n = a->n;
			a->ids = NULL;
			if ((rc = a->rc) < 0)
				e = a->e;
		} else {
			rc = node_del_read(nd, path, &d, &n, &e);
		}
		if (rc == 0) {
			if (!locked)
				pthread_rwlock_wrlock(&c->lock);
			rc = node_del_apply(c, path, seq, d, n, &e);
			if (!locked)
				pthread_rwlock_unlock(&c->lock);
		}
		free(d);
	} else if (type && !strcmp(type, "index")) {
		mark(m, c->user, c->name);
	}
	json_decref(j);
	if (rc == MV_ENOINPUT) {
		/* Deleted since, by a later merge, as a node catching up
		 * finds; if not, the reload finds it missing and says so. */
		log_debug("collection '%s': '%s': %s; reloading it", c->name,
			  path, e.msg);
		mark(m, c->user, c->name);
	} else if (rc < 0) {
		log_warnx("collection '%s': '%s': %s; reloading it", c->name,
			  path, e.msg);
		mark(m, c->user, c->name);
	}
}

/*
 * Read from the store, with no lock held but a collection's read lock
 * for a moment, the files of the revision's events ev[n] that apply_data
 * will add: other nodes' new vector files and delete logs of collections
 * the node has and does not reload, those it does not hold yet, into
 * a[i] for ev[i].  This node's own files are not read: its commits reach
 * memory under node.commit with the metadata (a flush of unknown outcome
 * excepted: apply_data reads that one itself).  0; MV_EAGAIN when the
 * store is unreachable (nothing applied yet: the revision again later);
 * any other failure is kept in a[i] for apply_data to log and reload.
 */
static int read_ahead(struct node *nd, const struct fev *ev, size_t n,
		      struct ahead *a)
{
	char user[MV_NAME_MAX + 1], name[MV_NAME_MAX + 1];
	const char *rest, *type;
	struct marks re = { calloc(n, sizeof(*re.v)), 0 };
	struct coll *c;
	json_t *j;
	int rc = 0;

	if (!re.v)
		MV_BUG("out of memory following the commit log");
	/* What the revision reloads anyway (apply_rev's first pass marks
	 * those; a reload reads without node.commit): nothing to read. */
	for (size_t i = 0; i < n; i++)
		if (split_key(ev[i].key, user, name, &rest) == 0 &&
		    (!strcmp(rest, "schema") ||
		     (!strncmp(rest, "data/", 5) &&
		      (ev[i].type != MV_META_PUT || index_put(&ev[i])))))
			mark(&re, user, name);
	for (size_t i = 0; i < n && rc != MV_EAGAIN; i++) {
		int held;

		if (ev[i].type != MV_META_PUT ||
		    split_key(ev[i].key, user, name, &rest) < 0 ||
		    strncmp(rest, "data/", 5) || !rest[5] ||
		    marked(&re, user, name))
			continue;
		if (!(c = node_coll_get(nd, user, name)))
			continue;
		j = json_loadb(ev[i].val, ev[i].vlen, 0, NULL);
		type = json_string_value(json_object_get(j, "type"));
		if (!type || (strcmp(type, "vectors") && strcmp(type, "delete")) ||
		    json_integer_value(json_object_get(j, "node")) ==
		    (json_int_t)nd->node_no)
			goto next;
		node_coll_path(c, rest + 5, a[i].path);
		pthread_rwlock_rdlock(&c->lock);
		held = node_coll_seg(c, a[i].path) ||
		       node_coll_del(c, a[i].path);
		pthread_rwlock_unlock(&c->lock);
		if (held) {
			a[i].path[0] = '\0';
			goto next;
		}
		if (!strcmp(type, "vectors"))
			rc = read_vectors(nd, c, a[i].path, j, &a[i].seg,
					  &a[i].e);
		else
			rc = node_del_read(nd, a[i].path, &a[i].ids, &a[i].n,
					   &a[i].e);
		a[i].rc = rc;
		if (rc == MV_EAGAIN)
			log_warnx("collection '%s': '%s': %s; trying again",
				  c->name, a[i].path, a[i].e.msg);
next:
		json_decref(j);
		coll_put(c);
	}
	free(re.v);
	return rc == MV_EAGAIN ? rc : 0;
}

/* A collection's schema key: dropped, or to be loaded (again). */
static void apply_schema(struct node *nd, const struct fev *ev,
			 const char *user, const char *name, struct marks *m)
{
	struct coll *c;
	json_t *j;
	const char *t;

	if (ev->type != MV_META_PUT) {
		unmark(m, user, name);
		follow_drop(nd, user, name);
		return;
	}
	c = node_coll_get(nd, user, name);
	j = json_loadb(ev->val, ev->vlen, 0, NULL);
	t = json_string_value(json_object_get(j, "token"));
	if (!c || !t || strcmp(c->token, t))
		mark(m, user, name);
	json_decref(j);
	coll_put(c);
}

/* 1 when apply_rev's pass takes the data key event ev of user/name:
 * the first, deletions and indexes; the second, the new files of the
 * collections the first did not mark to be read again. */
static int pass_takes(int pass, const struct fev *ev, const char *user,
		      const char *name, struct marks *m)
{
	const char *rest = strchr(ev->key + 1, '/');
	int put = ev->type == MV_META_PUT;

	rest = rest ? strchr(rest + 1, '/') : NULL;
	if (!rest || strncmp(rest + 1, "data/", 5) || !rest[6])
		return 0;
	return pass == 0 ? !put || index_put(ev)
			 : put && !index_put(ev) && !marked(m, user, name);
}

/* What a revision changes before its files are read: the users the
 * cluster claims (a user's first collection here) and the live set. */
static void place_rev(struct node *nd, const struct fev *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == MV_META_PUT)
			node_user_seen(nd, ev[i].key);
		node_place_live(nd, ev[i].key, ev[i].val, ev[i].vlen,
				ev[i].type == MV_META_PUT);
	}
}

/*
 * The events of one revision, in order, given what read_ahead read for
 * them in ah (freed here); then the reloads they need.  Returns MV_E* if
 * something could not be read (the store or the metadata away): the
 * revision is then applied again later, which is harmless since what is
 * held is skipped.
 */
static int apply_rev(struct node *nd, const struct fev *ev, size_t n,
		     struct ahead *ah)
{
	struct marks m = { calloc(n, sizeof(*m.v)), 0 };
	char user[MV_NAME_MAX + 1], name[MV_NAME_MAX + 1];
	int rc = 0;

	if (!m.v)
		MV_BUG("out of memory following the commit log");
	pthread_mutex_lock(&nd->commit);
	/*
	 * Two passes: first what makes a collection be read again (a schema
	 * change, a held file deleted, an index), then the new files of the
	 * others.  A merge puts its segment before it deletes its inputs:
	 * attaching that segment to a collection about to be reloaded would
	 * read it twice and show its rows twice until the reload.
	 */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const char *rest;
			struct coll *c;

			if (ah[i].done ||
			    split_key(ev[i].key, user, name, &rest) < 0)
				continue;
			if (!strcmp(rest, "schema")) {
				int ours = pass ? 0 : node_user_ours(nd, user,
								     NULL);

				if (ours < 0)
					rc = MV_EAGAIN;	/* etcd away: again */
				else if (ours)
					apply_schema(nd, &ev[i], user, name, &m);
				continue;
			}
			if (!pass_takes(pass, &ev[i], user, name, &m))
				continue;
			c = node_coll_get(nd, user, name);
			if (c && pass == 0) {
				apply_data(nd, c, &ev[i], rest + 5, &m, &ah[i],
					   0);
			} else if (c) {
				/*
				 * The collection's new files of the revision
				 * (a flush's vectors and delete log: an
				 * upsert's old row goes as its new one comes)
				 * under one write lock: a search sees the
				 * flush whole or not at all.
				 */
				pthread_rwlock_wrlock(&c->lock);
				for (size_t j = i; j < n; j++) {
					char u2[MV_NAME_MAX + 1];
					char n2[MV_NAME_MAX + 1];
					const char *r2;

					if (ah[j].done ||
					    split_key(ev[j].key, u2, n2,
						      &r2) < 0 ||
					    strcmp(u2, user) ||
					    strcmp(n2, name) ||
					    !pass_takes(1, &ev[j], u2, n2, &m))
						continue;
					apply_data(nd, c, &ev[j], r2 + 5, &m,
						   &ah[j], 1);
					ah[j].done = 1;
				}
				pthread_rwlock_unlock(&c->lock);
			}
			coll_put(c);
		}
	/* Reloads read the store without node.commit (follow_reload). */
	pthread_mutex_unlock(&nd->commit);
	ahead_free(ah, n);	/* what was not used */
	for (size_t i = 0; i < m.n; i++)
		if (m.v[i][0][0] &&
		    follow_reload(nd, m.v[i][0], m.v[i][1]) == MV_EAGAIN)
			rc = MV_EAGAIN;	/* unreachable: try again; else
					 * (damage) it stays logged */
	free(m.v);
	return rc;
}

/* The history is gone (compacted): every collection afresh. */
static int find_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	json_t *set = arg;
	char user[MV_NAME_MAX + 1], name[MV_NAME_MAX + 1], both[160];
	const char *rest;

	(void)val;
	(void)vlen;
	if (split_key(key, user, name, &rest) == 0 && !strcmp(rest, "schema")) {
		snprintf(both, sizeof(both), "%s/%s", user, name);
		json_object_set_new(set, both, json_true());
	}
	return 0;
}

static int reload_all(struct node *nd, struct mv_err *err)
{
	json_t *set = json_object(), *v;
	const char *k;
	struct coll *c;
	int rc;

	if (!set)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	rc = mv_meta_range(nd->meta, "/", find_cb, set, err);
	if (rc == 0) {
		json_object_foreach(set, k, v) {
			char user[MV_NAME_MAX + 1];
			size_t ul = strcspn(k, "/");

			snprintf(user, sizeof(user), "%.*s", (int)ul, k);
			if (node_user_ours(nd, user, NULL) > 0)
				follow_reload(nd, user, k + ul + 1);
		}
		pthread_mutex_lock(&nd->commit);
		for (;;) {
			char both[160], user[MV_NAME_MAX + 1];
			char name[MV_NAME_MAX + 1];

			pthread_mutex_lock(&nd->lock);
			for (c = nd->colls; c; c = c->next) {
				snprintf(both, sizeof(both), "%s/%s", c->user,
					 c->name);
				if (!json_object_get(set, both))
					break;
			}
			if (c) {
				snprintf(user, sizeof(user), "%s", c->user);
				snprintf(name, sizeof(name), "%s", c->name);
			}
			pthread_mutex_unlock(&nd->lock);
			if (!c)
				break;
			follow_drop(nd, user, name);
		}
		pthread_mutex_unlock(&nd->commit);
	}
	json_decref(set);
	return rc;
}

/* Sleep ms unless the node stops (or leaves) first. */
static void nap(struct node *nd, int ms)
{
	for (int i = 0; i < ms / 50 && !atomic_load(&nd->stop) &&
	     !atomic_load(&nd->leaving); i++)
		usleep(50 * 1000);
}

/*
 * Reading ahead of the apply, several revisions at once.  A watch that
 * returns many revisions (a node catching up, a burst of flushes) has
 * their files read by up to AHEAD_READERS threads at once, at most
 * AHEAD_REVS revisions and AHEAD_BYTES of vector files ahead of the
 * apply (one revision beyond the bytes at least), while the follower
 * applies them in order as each one's reads end: store latency (a
 * remote S3's is tens of ms a read) is paid once per window, not once a
 * revision.  The files are immutable, so a read made early differs only
 * in what it is checked against, and the apply checks every file again
 * as always: one held since (a reload read it) is freed unused, one read
 * for another incarnation or gone since (merged away) reloads the
 * collection, one of a collection not there when read is read by the
 * apply.  The live set decides which vectors a read keeps
 * (node_place_held), so a revision that changes a live key is a fence:
 * it and what follows it are read only once the apply has reached it
 * and applied the change, as one revision at a time did.
 */
#define AHEAD_READERS 4
#define AHEAD_REVS 32
#define AHEAD_BYTES ((uint64_t)256 << 20)

struct rev_read {
	const struct fev *ev;	/* the revision's events */
	size_t n;
	struct ahead *ah;	/* what read_ahead read: NULL until then */
	int rc;			/* read_ahead's */
	int state;		/* 0 to read, 1 being read, 2 read */
	int live;		/* changes a live key: a fence */
	uint64_t bytes;		/* of the others' vector files in it */
};

struct ahead_pipe {
	struct node *nd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rev_read *r;
	size_t nr;
	size_t next;		/* the next revision to read */
	size_t placed;		/* revisions whose live keys are applied */
	size_t applied;		/* revisions applied (or given up) */
	uint64_t bytes;		/* read or being read, not yet applied */
	int quit;
};

/* Group the batch's events into r[], one entry a revision; the count. */
static size_t rev_group(const struct fevs *fe, struct rev_read *r)
{
	size_t nr = 0;

	for (size_t i = 0, j; i < fe->n; i = j, nr++) {
		for (j = i; j < fe->n && fe->v[j].rev == fe->v[i].rev; j++)
			;
		r[nr] = (struct rev_read){ .ev = fe->v + i, .n = j - i };
	}
	return nr;
}

/* What bounds reading r ahead: whether it changes a live key (a fence),
 * and the sizes of the others' files it puts. */
static void rev_cost(struct node *nd, struct rev_read *r)
{
	char user[MV_NAME_MAX + 1], name[MV_NAME_MAX + 1];
	const char *rest;
	uint32_t no;

	for (size_t i = 0; i < r->n; i++) {
		const struct fev *e = &r->ev[i];
		json_t *v;

		r->live |= node_place_live_key(nd, e->key, &no);
		if (e->type != MV_META_PUT ||
		    split_key(e->key, user, name, &rest) < 0 ||
		    strncmp(rest, "data/", 5))
			continue;
		v = json_loadb(e->val, e->vlen, 0, NULL);
		if (json_integer_value(json_object_get(v, "node")) !=
		    (json_int_t)nd->node_no)
			r->bytes += (uint64_t)json_integer_value(
				json_object_get(v, "size"));
		json_decref(v);
	}
}

/* Whether a reader may take revision k now (p->mu held). */
static int may_read(const struct ahead_pipe *p, size_t k)
{
	if (p->quit || k >= p->nr || k >= p->applied + AHEAD_REVS ||
	    (k > p->applied && p->bytes + p->r[k].bytes > AHEAD_BYTES))
		return 0;
	for (size_t i = p->placed; i <= k; i++)
		if (p->r[i].live)
			return 0;	/* a fence not yet applied */
	return 1;
}

/* Read revision k (taken: state 1), then hand it to the apply. */
static void read_one(struct ahead_pipe *p, size_t k)
{
	struct rev_read *r = &p->r[k];
	struct ahead *ah = calloc(r->n, sizeof(*ah));
	int rc;

	if (!ah)
		MV_BUG("out of memory following the commit log");
	rc = read_ahead(p->nd, r->ev, r->n, ah);

	pthread_mutex_lock(&p->mu);
	r->ah = ah;
	r->rc = rc;
	r->state = 2;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Take revision k to read (p->mu held). */
static void take(struct ahead_pipe *p, size_t k)
{
	p->next = k + 1;
	p->r[k].state = 1;
	p->bytes += p->r[k].bytes;
}

static void *reader(void *arg)
{
	struct ahead_pipe *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->quit && p->next < p->nr) {
		size_t k = p->next;

		if (!may_read(p, k)) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		take(p, k);
		pthread_mutex_unlock(&p->mu);
		read_one(p, k);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/*
 * Apply the revisions of fe in order, reading ahead (above); *from is
 * set past each one applied.  0; -1 when one could not be (the store or
 * the metadata away): it is applied again later, and what was read
 * beyond it is freed.
 */
static int apply_batch(struct node *nd, const struct fevs *fe, int64_t *from)
{
	struct ahead_pipe p = { .nd = nd };
	pthread_t th[AHEAD_READERS];
	size_t nth = 0;
	int64_t t_batch = node_mono_ms();
	int rc = 0;

	if (!fe->n)
		return 0;
	if (!(p.r = calloc(fe->n, sizeof(*p.r))))
		MV_BUG("out of memory following the commit log");
	p.nr = rev_group(fe, p.r);
	/* One revision: read by the apply itself, nothing to bound. */
	for (size_t i = 0; p.nr > 1 && i < p.nr; i++)
		rev_cost(nd, &p.r[i]);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	while (nth < AHEAD_READERS && nth + 1 < p.nr &&
	       pthread_create(&th[nth], NULL, reader, &p) == 0)
		nth++;
	for (size_t a = 0; a < p.nr; a++) {
		struct rev_read *r = &p.r[a];
		int64_t t0 = node_mono_ms();

		place_rev(nd, r->ev, r->n);
		pthread_mutex_lock(&p.mu);
		p.placed = a + 1;
		pthread_cond_broadcast(&p.cv);
		if (r->state == 0) {
			/* No reader took it (none, or a fence): read here. */
			take(&p, a);
			pthread_mutex_unlock(&p.mu);
			read_one(&p, a);
			pthread_mutex_lock(&p.mu);
		}
		while (r->state != 2)
			pthread_cond_wait(&p.cv, &p.mu);
		pthread_mutex_unlock(&p.mu);
		if (r->rc == MV_EAGAIN) {
			ahead_free(r->ah, r->n);	/* nothing applied */
			rc = -1;
		} else if (apply_rev(nd, r->ev, r->n, r->ah) < 0) {
			rc = -1;
		}
		r->ah = NULL;	/* freed either way */
		if (node_mono_ms() - t0 >= SLOW_APPLY_MS)
			log_info("node %u: revision %" PRId64 " (%zu keys) "
				 "applied in %lld ms", nd->node_no, r->ev->rev,
				 r->n, (long long)(node_mono_ms() - t0));
		pthread_mutex_lock(&p.mu);
		p.applied = a + 1;
		p.bytes -= r->bytes;
		if (rc < 0)
			p.quit = 1;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		if (rc < 0)
			break;
		set_applied(nd, r->ev->rev);
		*from = r->ev->rev + 1;
	}
	pthread_mutex_lock(&p.mu);
	p.quit = 1;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.mu);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < p.nr; i++)
		ahead_free(p.r[i].ah, p.r[i].n);	/* read, not applied */
	if (p.nr > 1)
		log_debug("node %u: %zu of %zu revisions applied in %lld ms, "
			  "%zu readers ahead", nd->node_no,
			  p.applied - (rc < 0), p.nr,
			  (long long)(node_mono_ms() - t_batch), nth);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	free(p.r);
	return rc;
}

static void *follower(void *arg)
{
	struct node *nd = arg;
	int64_t from = atomic_load(&nd->applied_rev) + 1;
	int backoff = 100, down = 0, afail = 0;

	node_test_pause("MV_TEST_PAUSE_FOLLOW");
	while (!atomic_load(&nd->stop)) {
		struct fevs fe = { 0 };
		struct mv_err e = { 0 };
		int64_t next = 0;
		int rc;

		rc = mv_meta_watch(nd->meta, "", from, WATCH_MS, fev_cb, &fe,
				   &next, &e);
		if (rc == MV_META_COMPACTED) {
			int64_t rev;

			fevs_free(&fe);
			log_warnx("the commit log is compacted past revision "
				  "%" PRId64 ": loading everything afresh", from);
			if (mv_meta_revision(nd->meta, &rev, &e) == 0 &&
			    reload_all(nd, &e) == 0) {
				set_applied(nd, rev);
				from = rev + 1;
				continue;
			}
			rc = e.code ? e.code : MV_EIO;
		}
		if (rc != 0) {
			fevs_free(&fe);
			if (!down++)
				log_warnx("following the commit log: %s; trying "
					  "again until it answers", e.msg);
			nap(nd, backoff);
			if (backoff < 2000)
				backoff *= 2;
			continue;
		}
		if (down)
			log_info("following the commit log again");
		down = 0;
		if (nd->limbo)
			limbo_settle(nd);
		backoff = 100;
		if (apply_batch(nd, &fe, &from) < 0)
			rc = -1;	/* that revision again, later */
		if (rc == 0 && next > from)
			from = next;
		fevs_free(&fe);
		if (rc < 0) {
			nap(nd, afail < 5 ? 100 << afail : 2000);
			afail++;
		} else {
			afail = 0;
		}
	}
	return NULL;
}

/* --- membership ----------------------------------------------------- */

/* The address this node gives the master: its first TCP listen. */
static const char *node_tcp_addr(struct node *nd)
{
	for (int i = 0; i < nd->conf.nlisten; i++)
		if (strncmp(nd->conf.listen[i], "unix:", 5))
			return nd->conf.listen[i];
	return "";
}

static int live_put(struct node *nd, struct mv_err *err)
{
	char key[512], val[400];
	int64_t lease;
	struct mv_meta_op op;
	struct mv_meta_req req = { 0 };
	int rc;

	rc = mv_meta_lease_grant(nd->meta, LEASE_TTL_MS, &lease, err);
	if (rc < 0)
		return rc;
	{
		char leaf[32];

		snprintf(leaf, sizeof(leaf), "/live/%u", nd->node_no);
		key_prop(nd, key, sizeof(key), leaf);
	}
	snprintf(val, sizeof(val), "{\"no\":%u,\"addr\":\"%s\"}", nd->node_no,
		 node_tcp_addr(nd));
	op = (struct mv_meta_op){ MV_META_PUT, key, val, strlen(val) };
	req.ops = &op;
	req.nops = 1;
	req.leases = &lease;
	rc = mv_meta_txn_req(nd->meta, &req, err);
	if (rc != 0) {
		mv_meta_lease_revoke(nd->meta, lease, NULL);
		return rc < 0 ? rc : MV_EAGAIN;
	}
	atomic_store(&nd->lease, lease);
	node_sessions_reput(nd);
	return 0;
}

/* Revoke the node's lease, if it has one: its live and session keys go. */
static void lease_drop(struct node *nd)
{
	int64_t lease = atomic_exchange(&nd->lease, 0);

	if (lease)
		mv_meta_lease_revoke(nd->meta, lease, NULL);
}

static void *keeper(void *arg)
{
	struct node *nd = arg;
	int down = 0;

	/* Ended by node_cluster_leave (node_cluster_stop leaves first). */
	while (!atomic_load(&nd->leaving)) {
		struct mv_err e = { 0 };
		int64_t lease = atomic_load(&nd->lease);
		int rc;

		nap(nd, KEEPALIVE_MS);
		if (atomic_load(&nd->leaving))
			break;
		rc = lease ? mv_meta_lease_keepalive(nd->meta, lease, &e)
			   : MV_ESERVER;
		if (rc == MV_ESERVER) {
			/* Expired (or never had one): a new lease, put again. */
			mv_err_clear(&e);
			rc = live_put(nd, &e);
			if (rc == 0)
				log_info("node %u: live key put again with a "
					 "new lease", nd->node_no);
		}
		if (rc < 0 && !down++)
			log_warnx("node %u: cannot keep the live key: %s",
				  nd->node_no, e.msg);
		if (rc == 0)
			down = 0;
	}
	return NULL;
}

/*
 * Before a node takes again the number its data directory names: that
 * number's live key, if another address holds it, must be a dead run's
 * (killed: its lease ends within LEASE_TTL_MS), not a live node's, such
 * as the one whose data directory this is a copy of.  Two runs under one
 * number would sweep each other's files in progress and share a place.
 * 0, MV_ECONFIG when the key outlives a lease, or MV_E* from etcd.
 */
static int live_clash(struct node *nd, long no, const char *addr,
		      struct mv_err *err)
{
	char key[512], leaf[32];
	int64_t t0 = node_mono_ms();
	int said = 0;

	snprintf(leaf, sizeof(leaf), "/live/%ld", no);
	key_prop(nd, key, sizeof(key), leaf);
	for (;;) {
		char *v, other[256];
		size_t vlen;
		json_t *j;
		const char *a;
		int rc = mv_meta_get(nd->meta, key, &v, &vlen, err);

		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;	/* no live key */
		j = json_loadb(v, vlen, 0, NULL);
		free(v);
		a = json_string_value(json_object_get(j, "addr"));
		snprintf(other, sizeof(other), "%s", a ? a : "");
		json_decref(j);
		if (!strcmp(other, addr))
			return 0;	/* this node's own, from a killed run */
		if (node_mono_ms() - t0 > LEASE_TTL_MS + 2 * KEEPALIVE_MS)
			return mv_err_set(err, MV_ECONFIG, "node %ld is live "
					  "at %s, and '%s' names that number: "
					  "it is that node's data directory or "
					  "a copy of it; give this node a "
					  "data_dir of its own", no, other,
					  nd->conf.data_dir);
		if (!said++)
			log_info("node %ld: its live key names %s: waiting for "
				 "it to end (%d s at most), as it does after "
				 "that node was killed", no, other,
				 (LEASE_TTL_MS + 2 * KEEPALIVE_MS) / 1000);
		usleep(200 * 1000);
	}
}

/*
 * The node's number: DATA_DIR/node.json keeps it across restarts; a new
 * node takes max+1 in the property key, by compare-and-swap, where max
 * counts the members and "next" - 1 (numbers of members forgotten).
 */
static int node_join(struct node *nd, struct mv_err *err)
{
	char path[4200], key[512];
	const char *addr = node_tcp_addr(nd);
	long no = -1;
	int rc;

	snprintf(path, sizeof(path), "%s/node.json", nd->conf.data_dir);
	{
		json_t *j = json_load_file(path, 0, NULL);
		const char *cid = json_string_value(json_object_get(j,
							"cluster_id"));

		if (j && cid && !strcmp(cid, nd->conf.cluster_id))
			no = (long)json_integer_value(json_object_get(j, "no"));
		json_decref(j);
	}
	if (no >= 0 && (rc = live_clash(nd, no, addr, err)) < 0)
		return rc;
	key_prop(nd, key, sizeof(key), "");
	for (int tries = 0; ; tries++) {
		json_t *j = NULL, *nodes, *mine = NULL;
		long max = 0, next;
		char *val, *pv;
		size_t plen;
		int64_t mod;

		rc = mv_meta_get_rev(nd->meta, key, &pv, &plen, &mod, err);
		if (rc < 0)
			return rc;
		if (pv)
			j = json_loadb(pv, plen, 0, NULL);
		free(pv);
		if (!json_is_object(j)) {
			json_decref(j);
			j = json_pack("{s:i,s:[]}", "format", 1, "nodes");
		}
		nodes = json_object_get(j, "nodes");
		if (!json_is_array(nodes)) {
			nodes = json_array();
			json_object_set_new(j, "nodes", nodes);
		}
		/* A forgotten member's number is never given again. */
		next = (long)json_integer_value(json_object_get(j, "next"));
		if (next > 0)
			max = next - 1;
		for (size_t i = 0; i < json_array_size(nodes); i++) {
			json_t *x = json_array_get(nodes, i);
			long n = (long)json_integer_value(json_object_get(x, "no"));

			if (n > max)
				max = n;
			if (n == no)
				mine = x;
		}
		if (no < 0)
			no = max + 1;
		if (mine && json_string_value(json_object_get(mine, "addr")) &&
		    !strcmp(json_string_value(json_object_get(mine, "addr")),
			    addr)) {
			json_decref(j);
			break;		/* known, same address */
		}
		if (!mine) {
			mine = json_object();
			json_object_set_new(mine, "no", json_integer(no));
			json_object_set_new(mine, "addr", json_string(addr));
			json_object_set_new(mine, "joined",
					    json_integer(node_now_ms()));
			json_array_append_new(nodes, mine);
		}
		json_object_set_new(mine, "addr", json_string(addr));
		val = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!val)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		{
			struct mv_meta_rcmp rc1 = { key, MV_META_CMP_MOD,
						    MV_META_EQ, mod };
			struct mv_meta_op op = { MV_META_PUT, key, val,
						 strlen(val) };
			struct mv_meta_req req = { 0 };

			req.rcmps = &rc1;
			req.nrcmp = 1;
			req.ops = &op;
			req.nops = 1;
			rc = mv_meta_txn_req(nd->meta, &req, err);
		}
		free(val);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		mv_err_clear(err);
		if (tries > 100)
			return mv_err_set(err, MV_EAGAIN, "cannot join the "
					  "cluster: '%s' keeps changing", key);
		if (no > max)
			no = -1;	/* taken by another: max+1 again */
	}
	nd->node_no = (uint32_t)no;
	{
		char tmp[4300];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "{\"format\":1,\"no\":%ld,"
				  "\"cluster_id\":\"%s\"}\n", no,
				  nd->conf.cluster_id) < 0 ||
		    fflush(f) || fsync(fileno(f)) || fclose(f) ||
		    rename(tmp, path)) {
			if (f)
				fclose(f);
			return mv_err_sys(err, MV_EIO, "cannot write '%s'", path);
		}
	}
	return 0;
}

int node_cluster_join(struct node *nd, struct mv_err *err)
{
	int rc = node_join(nd, err);

	if (rc == 0)
		log_info("joined cluster '%s' as node %u", nd->conf.cluster_id,
			 nd->node_no);
	return rc;
}

/*
 * Wait until the node has applied, and loaded what it holds of, the
 * revision current now: what was committed while it loaded.  Until then
 * its live key is not put, so no node places units on it or asks it, and
 * no client is sent to it; a restarted node under a stream of flushes
 * would otherwise be asked for revisions it reaches only seconds later.
 * Past CATCHUP_MS it goes live all the same, saying how far behind.
 */
#define CATCHUP_MS 60000
#define CATCHUP_LOG_MS 5000

static int catch_up(struct node *nd, struct mv_err *err)
{
	int64_t target, t0 = node_mono_ms(), said = t0;
	int rc = mv_meta_revision(nd->meta, &target, err);

	if (rc < 0)
		return rc;
	while (node_place_loaded(nd) < target) {
		struct mv_err e = { 0 };
		int64_t now = node_mono_ms();

		if (now - t0 >= CATCHUP_MS) {
			log_warnx("node %u: live before it caught up: applied "
				  "%lld of revision %" PRId64 " after %d s",
				  nd->node_no,
				  (long long)atomic_load(&nd->applied_rev),
				  target, CATCHUP_MS / 1000);
			return 0;
		}
		if (now - said >= CATCHUP_LOG_MS) {
			log_info("node %u: catching up: applied %lld of "
				 "revision %" PRId64, nd->node_no,
				 (long long)atomic_load(&nd->applied_rev),
				 target);
			said = now;
		}
		/* The placer's pass (loaded) follows the apply closely. */
		if (node_wait_applied(nd, target, 100, &e) == 0)
			usleep(10 * 1000);
	}
	log_info("node %u: caught up with revision %" PRId64 " in %lld ms",
		 nd->node_no, target, (long long)(node_mono_ms() - t0));
	return 0;
}

/*
 * Follow the commit log from rev (what node_open loaded), place, catch
 * up, and only then put the live key and keep it.
 */
int node_cluster_start(struct node *nd, int64_t rev, struct mv_err *err)
{
	int rc;

	atomic_store(&nd->applied_rev, rev);
	atomic_store(&nd->stop, 0);
	atomic_store(&nd->leaving, 0);
	if (pthread_create(&nd->follower, NULL, follower, nd))
		return mv_err_set(err, MV_EINTERNAL, "cannot start a thread");
	rc = node_place_start(nd, err);
	if (rc == 0)
		rc = catch_up(nd, err);
	if (rc == 0)
		rc = live_put(nd, err);
	if (rc == 0 && pthread_create(&nd->keeper, NULL, keeper, nd))
		rc = mv_err_set(err, MV_EINTERNAL, "cannot start a thread");
	if (rc < 0) {
		lease_drop(nd);
		atomic_store(&nd->stop, 1);
		pthread_join(nd->follower, NULL);
		node_place_stop(nd);
		return rc;
	}
	nd->threads = 1;
	return 0;
}

static void sync_pool_close(struct node *nd);

void node_cluster_leave(struct node *nd)
{
	if (!nd->threads || atomic_exchange(&nd->leaving, 1))
		return;
	/*
	 * The live key goes once the keeper (which would put it again) has
	 * ended; the follower goes on, so that what is asked meanwhile (by
	 * a client, or another node that has yet to see the key go) is
	 * answered, not refused as behind.
	 */
	pthread_join(nd->keeper, NULL);
	lease_drop(nd);
	log_info("node %u: left the cluster (live key revoked)", nd->node_no);
}

void node_cluster_stop(struct node *nd)
{
	if (!nd->threads) {
		node_place_free(nd);	/* never started, or a start failed */
		sync_pool_close(nd);
		return;
	}
	node_cluster_leave(nd);
	/*
	 * From stop on, requests for revisions not applied are refused
	 * (behind): the others find new holders.
	 */
	atomic_store(&nd->stop, 1);
	node_test_pause("MV_TEST_PAUSE_STOP");
	pthread_join(nd->follower, NULL);
	nd->threads = 0;
	node_place_free(nd);
	sync_pool_close(nd);
}

/* --- named sessions ------------------------------------------------- */

static void session_key(struct node *nd, char *out, size_t cap,
			const char *name)
{
	char leaf[128];

	snprintf(leaf, sizeof(leaf), "/session/%s", name);
	key_prop(nd, out, cap, leaf);
}

void node_cluster_session(struct node *nd, const char *name, int held)
{
	char key[512], val[400];
	struct mv_err e = { 0 };
	int64_t lease = atomic_load(&nd->lease);

	if (!nd->cluster || !name[0])
		return;
	session_key(nd, key, sizeof(key), name);
	if (held && lease) {
		struct mv_meta_op op;
		struct mv_meta_req req = { 0 };

		snprintf(val, sizeof(val), "{\"no\":%u,\"addr\":\"%s\"}",
			 nd->node_no, node_tcp_addr(nd));
		op = (struct mv_meta_op){ MV_META_PUT, key, val, strlen(val) };
		req.ops = &op;
		req.nops = 1;
		req.leases = &lease;
		if (mv_meta_txn_req(nd->meta, &req, &e) < 0)
			log_warnx("session '%s': %s", name, e.msg);
	} else if (!held && mv_meta_del(nd->meta, key, &e) < 0) {
		log_warnx("session '%s': %s", name, e.msg);
	}
}

void node_sessions_reput(struct node *nd)
{
	char (*names)[MV_NAME_MAX + 1] = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&nd->slock);
	for (struct batch *b = nd->sessions; b; b = b->next) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *v = realloc(names, nc * sizeof(*names));
			if (!v)
				break;
			names = v;
			cap = nc;
		}
		snprintf(names[n++], sizeof(*names), "%s", b->session);
	}
	pthread_mutex_unlock(&nd->slock);
	for (size_t i = 0; i < n; i++)
		node_cluster_session(nd, names[i], 1);
	free(names);
}

/* --- sync_level: a flush waits for replicas -------------------------- */

/*
 * node_sync_wait asks the holders of a flush's new units (its own view of
 * the live set, once it has applied the flush's revision) with LOAD until
 * sync_level of each unit's holders other than this node report loaded=
 * rev or later: they applied it and hold its vectors (a unit with fewer
 * such holders live waits for all of them, to say how many did).  When
 * the live set changes during the wait (a stopped holder's lease
 * expires), the holders are those of the new set: a flush waiting on a
 * dead replica goes on once another node has loaded the unit in its
 * place, and one left with too few holders fails once they have
 * answered, not at the bound.  A flush
 * without a new unit (deletes only: every node applies a delete log to
 * the bitmaps it keeps of every segment) waits for sync_level of the
 * other live nodes.  Connections are kept per peer between flushes in a
 * small pool (any number of flushes wait at once, each with its own
 * connections); one with a request unanswered at the end is closed.
 * Polling a verb the peers answer anyway is cheaper here than a watch:
 * a node's loaded revision changes with every revision it applies, and
 * putting it in etcd would double etcd's writes.
 */
#define SYNC_PEERS_MAX PLACE_NODES_MAX
#define SYNC_LIVE_MS 100	/* how often a wait looks at the live set */

struct sync_conn {
	struct sync_conn *next;
	const struct node *nd;
	unsigned no;
	char addr[128];
	int fd;
};

static pthread_mutex_t sync_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sync_conn *sync_pool;

struct sync_peer {
	unsigned no;
	char addr[128];
	int fd, asked, done, drops;
	int64_t loaded, next_ms, backoff;
	char buf[512];
	size_t blen;
	char why[160];
};

/* Which peers (bits of p[]) hold one unit. */
struct sync_unit {
	uint64_t peers;
};

void node_flushed_add(struct node_flushed *f, const char *path)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 4;
		void *v = realloc(f->paths, nc * sizeof(*f->paths));

		if (!v) {
			f->lost = 1;
			return;
		}
		f->paths = v;
		f->cap = nc;
	}
	snprintf(f->paths[f->n++], sizeof(*f->paths), "%s", path);
}

void node_flushed_release(struct node_flushed *f)
{
	free(f->paths);
	memset(f, 0, sizeof(*f));
}

/* Peer x's index in p[] (added when new); -1 when p[] is full. */
static int sync_peer_add(struct sync_peer *p, int *n,
			 const struct place_node *x)
{
	int i;

	for (i = 0; i < *n; i++)
		if (p[i].no == x->no)
			return i;
	if (*n == SYNC_PEERS_MAX)
		return -1;
	i = (*n)++;
	memset(&p[i], 0, sizeof(p[i]));
	p[i].no = x->no;
	snprintf(p[i].addr, sizeof(p[i].addr), "%s", x->addr);
	p[i].fd = -1;
	p[i].loaded = -1;
	p[i].backoff = 1;
	snprintf(p[i].why, sizeof(p[i].why), "no answer");
	return i;
}

/* A pooled connection to peer p, or a new one (non-blocking connect
 * bounded by the deadline); -1 with p->why. */
static int sync_connect(struct node *nd, struct sync_peer *p, int64_t end)
{
	struct sync_conn **pp, *c;
	struct mv_addr a;
	struct mv_err e = { 0 };
	int fd;

	pthread_mutex_lock(&sync_pool_lock);
	for (pp = &sync_pool; (c = *pp); pp = &c->next)
		if (c->nd == nd && c->no == p->no && !strcmp(c->addr, p->addr))
			break;
	if (c)
		*pp = c->next;
	pthread_mutex_unlock(&sync_pool_lock);
	if (c) {
		fd = c->fd;
		free(c);
		return fd;
	}
	if (mv_addr_parse(p->addr, &a, &e) < 0 ||
	    (fd = mv_net_connect_within(&a, (int)(end > node_mono_ms() ?
					      end - node_mono_ms() : 0),
					&e)) < 0) {
		snprintf(p->why, sizeof(p->why), "%.150s", e.msg);
		return -1;
	}
	/* Peers are asked together: the polling loop wants it. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Close p's connection; it is asked again at once the first time (a
 * pooled connection the peer closed meanwhile), then after 50 ms. */
static void sync_drop(struct sync_peer *p, const char *why)
{
	p->next_ms = node_mono_ms() + (p->drops++ ? 50 : 0);
	if (why)
		snprintf(p->why, sizeof(p->why), "%s", why);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->asked = 0;
	p->blen = 0;
}

/* Read what p answered; a whole line settles its request. */
static void sync_read(struct sync_peer *p, int64_t rev, int64_t now)
{
	ssize_t r = read(p->fd, p->buf + p->blen, sizeof(p->buf) - 1 - p->blen);
	char *nl, *lp;

	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		sync_drop(p, r == 0 ? "closed the connection" :
			  "connection failed");
		return;
	}
	p->blen += (size_t)r;
	p->buf[p->blen] = '\0';
	if (!(nl = strchr(p->buf, '\n'))) {
		if (p->blen == sizeof(p->buf) - 1)
			sync_drop(p, "answered a line too long");
		return;
	}
	*nl = '\0';
	lp = strstr(p->buf, " loaded=");
	if (strncmp(p->buf, "OK ", 3) || !lp) {
		char why[160];

		snprintf(why, sizeof(why), "answered '%.100s'", p->buf);
		sync_drop(p, why);
		return;
	}
	p->loaded = strtoll(lp + 8, NULL, 10);
	p->asked = 0;
	p->blen = 0;		/* one request at a time: nothing follows */
	if (p->loaded >= rev) {
		p->done = 1;
		return;
	}
	snprintf(p->why, sizeof(p->why), "at revision %" PRId64, p->loaded);
	/* 1, 2, 4, 8, then every 10 ms: the flush answers at most that
	 * late after the peer got there, and a LOAD costs it little. */
	p->next_ms = now + p->backoff;
	p->backoff = p->backoff * 2 > 10 ? 10 : p->backoff * 2;
}

/* The fewest of any unit's holders done (at most need); *want the
 * holders of the units short of need (the peers still to ask), *open set
 * when one of those is not done. */
static int sync_count(const struct sync_unit *u, size_t nu, uint64_t done,
		      int need, uint64_t *want, int *open)
{
	int least = need;

	*want = 0;
	for (size_t i = 0; i < nu; i++) {
		int k = __builtin_popcountll(u[i].peers & done);

		if (k < need)
			*want |= u[i].peers;
		if (k < least)
			least = k;
	}
	*open = (*want & ~done) != 0;
	return least;
}

/*
 * Each unit's holders other than this node, as this node places it now,
 * into u[] (peers added to p[] as met); the fewest any unit has.
 */
static size_t sync_holders(struct node *nd, const struct node_flushed *f,
			   struct sync_unit *u, size_t nu, struct sync_peer *p,
			   int *np, struct place_node *h)
{
	size_t fewest = SIZE_MAX;

	for (size_t i = 0; i < nu; i++) {
		size_t nh = f && f->n ? node_place_holders(nd, f->paths[i], h)
				      : node_place_others(nd, h), others = 0;

		u[i].peers = 0;
		for (size_t j = 0; j < nh; j++) {
			int k;

			if (h[j].no == nd->node_no ||
			    (k = sync_peer_add(p, np, &h[j])) < 0)
				continue;
			u[i].peers |= 1ULL << k;
			others++;
		}
		if (others < fewest)
			fewest = others;
	}
	return fewest;
}

int node_sync_wait(struct node *nd, int64_t rev, const struct node_flushed *f,
		   struct mv_err *err)
{
	int need = nd->conf.sync_level, ok = 0, open = 0, rc = 0, np = 0;
	int64_t end = node_mono_ms() + (int64_t)nd->conf.sync_timeout * 1000;
	struct sync_peer *p;
	struct sync_unit *u = NULL;
	struct place_node *h = NULL;
	size_t nu = f && f->n ? f->n : 1, fewest;
	uint64_t done = 0, want = 0, gen, g;

	if (!nd->cluster || need <= 0 || rev <= 0 || !nd->place)
		return 0;
	if (f && f->lost)
		return mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "flush committed "
				   "at revision %" PRId64 " but its replicas "
				   "were not asked: out of memory", rev);
	p = calloc(SYNC_PEERS_MAX, sizeof(*p));
	u = calloc(nu, sizeof(*u));
	h = calloc(PLACE_NODES_MAX, sizeof(*h));
	if (!p || !u || !h) {
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "flush committed "
				 "at revision %" PRId64 " but its replicas "
				 "were not asked: out of memory", rev);
		goto out;
	}
	/* The live set as of rev: this node's own view once applied. */
	node_wait_applied(nd, rev, nd->conf.sync_timeout * 1000, NULL);
	gen = node_place_gen(nd);
	fewest = sync_holders(nd, f, u, nu, p, &np, h);
	ok = sync_count(u, nu, done, need, &want, &open);
	while (ok < need && open) {
		struct pollfd pf[SYNC_PEERS_MAX];
		int idx[SYNC_PEERS_MAX], npf = 0;
		int64_t now = node_mono_ms(), wake = end;

		if (now >= end || atomic_load(&nd->stop))
			break;
		/*
		 * The live set changed (a holder's lease expired, a node
		 * joined): the units' holders are those of the new set, and
		 * a new holder's LOAD says loaded= once it has loaded them.
		 */
		if ((g = node_place_gen(nd)) != gen) {
			gen = g;
			fewest = sync_holders(nd, f, u, nu, p, &np, h);
			ok = sync_count(u, nu, done, need, &want, &open);
			if (ok >= need || !open)
				break;
		}
		for (int i = 0; i < np; i++) {
			struct sync_peer *q = &p[i];

			if (q->done || !(want >> i & 1))
				continue;
			if (!q->asked && q->next_ms <= now) {
				if (q->fd < 0 &&
				    (q->fd = sync_connect(nd, q, end)) < 0) {
					q->next_ms = node_mono_ms() + 50;
				} else if (write(q->fd, "LOAD\n", 5) != 5) {
					sync_drop(q, "connection failed");
				} else {
					q->asked = 1;
				}
			}
			if (q->asked) {
				pf[npf] = (struct pollfd){ .fd = q->fd,
							   .events = POLLIN };
				idx[npf++] = i;
			} else if (q->next_ms < wake) {
				wake = q->next_ms;
			}
		}
		now = node_mono_ms();
		if (wake > now + SYNC_LIVE_MS)
			wake = now + SYNC_LIVE_MS;	/* the live set again */
		if (poll(pf, (nfds_t)npf, (int)(wake > now ? wake - now : 0)) > 0) {
			now = node_mono_ms();
			for (int k = 0; k < npf; k++)
				if (pf[k].revents)
					sync_read(&p[idx[k]], rev, now);
		}
		for (int i = 0; i < np; i++)
			if (p[i].done)
				done |= 1ULL << i;
		/* Ask only the holders of units still short of need. */
		ok = sync_count(u, nu, done, need, &want, &open);
	}
	if (ok < need) {
		char why[1024];
		size_t w = 0;

		why[0] = '\0';
		for (int i = 0; i < np && w < sizeof(why) - 1; i++)
			if (!p[i].done && (want >> i & 1))
				w += (size_t)snprintf(why + w, sizeof(why) - w,
						      "%snode %u (%s) %s",
						      w ? ", " : "", p[i].no,
						      p[i].addr, p[i].why);
		if (w >= sizeof(why))
			w = sizeof(why) - 1;
		if (fewest < (size_t)need)
			snprintf(why + w, sizeof(why) - w, "%sonly %zu other "
				 "node%s live", w ? "; " : "", fewest,
				 fewest == 1 ? " is" : "s are");
		else
			snprintf(why + w, sizeof(why) - w, "%snot within %d s "
				 "(sync_timeout)", w ? "; " : "",
				 nd->conf.sync_timeout);
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "flush committed at "
				 "revision %" PRId64 " but only %d of %d "
				 "replicas loaded it: %s", rev, ok, need, why);
	}
out:
	/* Idle connections back to the pool; one still asked is closed. */
	for (int i = 0; p && i < np; i++) {
		struct sync_conn *c;

		if (p[i].fd < 0)
			continue;
		if (p[i].asked || p[i].blen || !(c = calloc(1, sizeof(*c)))) {
			close(p[i].fd);
			continue;
		}
		c->nd = nd;
		c->no = p[i].no;
		snprintf(c->addr, sizeof(c->addr), "%s", p[i].addr);
		c->fd = p[i].fd;
		pthread_mutex_lock(&sync_pool_lock);
		c->next = sync_pool;
		sync_pool = c;
		pthread_mutex_unlock(&sync_pool_lock);
	}
	free(p);
	free(u);
	free(h);
	return rc;
}

/* Close this node's pooled connections (node_cluster_stop). */
static void sync_pool_close(struct node *nd)
{
	struct sync_conn **pp = &sync_pool, *c;

	pthread_mutex_lock(&sync_pool_lock);
	while ((c = *pp)) {
		if (c->nd == nd) {
			*pp = c->next;
			close(c->fd);
			free(c);
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&sync_pool_lock);
}

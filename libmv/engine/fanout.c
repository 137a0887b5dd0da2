/*
 * fanout.c - a search over the whole collection in a cluster: the units
 * this node serves are searched here, the others asked of their live
 * holders (place.c), one request per node and all of them at once, over
 * connections kept between searches: `SEARCH ... units=a,b rev=R`, which
 * the holder answers once it has applied revision R (and loaded, waiting
 * up to MV_HELD_WAIT_MS, the units asked that it holds), saying which of
 * the units it did not serve (`missing=`).  Those, and the units of a holder
 * that failed or did not answer in time, go to the next holder; the
 * answers merge into one top-k (ties by smaller id, an id once).  A unit
 * no holder answered for fails the search with MV_EAGAIN naming it: never
 * a silently partial answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include "internal.h"
#include "log.h"
#include "net.h"

/*
 * A holder that has not answered after FAN_HEDGE_MS (plus twice the time
 * the local part took: the remote part is about as much work) is not
 * waited for alone: the unit is asked of its next holder too, and the
 * first answer counts.  The search gives up on a unit after FAN_WAIT_MS
 * (plus eight times the local part) and fails naming it; a holder that
 * did not answer is asked last for FAN_SUSPECT_MS (a stopped process
 * keeps its live key until its lease expires).
 */
#define FAN_HEDGE_MS 300
#define FAN_WAIT_MS 5000
#define FAN_SUSPECT_MS 10000
/*
 * A unit whose holders all failed waits up to FAN_GONE_MS (within the
 * search's bound) for the live set to change, unless it changed since
 * the search began: a node stopping cleanly revokes its live key first,
 * but one asked before this node saw that (or once it stopped following
 * the commit log) refuses; then its units have new holders (or,
 * restarted, the same node again), which are asked.
 */
#define FAN_GONE_MS 2000
/* Idle connections kept per peer. */
#define FAN_POOL_PER_PEER 4
/* Room for the unit names of one request line (the node's line: 64 KiB). */
#define FAN_LINE_UNITS 48000

struct fan_unit {
	char leaf[MV_UNIT_LEAF];
	int done;
	int inflight;			/* requests naming it not settled */
	int64_t sent;			/* when last asked (mono ms) */
	uint32_t tried[PLACE_NODES_MAX];
	size_t ntried;
	char why[120];
};

/* What a search's requests share; their end is signalled on cv. */
struct fan_search {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct node *nd;
	struct coll *c;
	const struct fan_unit *all;	/* the search's units */
	const float *q;
	size_t nq, k;
	long nprobe, ef;
	const char *filter;
	uint64_t asof;			/* 0: now */
	uint64_t cut;			/* the last flush the local part saw */
	int64_t rev, end;
	int64_t gone_rev;		/* a holder's, past units it lacks */
};

/* One request: some units of the collection, to one node. */
struct fan_task {
	struct fan_search *s;
	struct place_node peer;
	size_t *unit;			/* indices into the search's units */
	size_t nunit;
	size_t len;			/* bytes of their names */
	atomic_int cancel;		/* answered by another: give up */
	/* the answer */
	int ok, timedout, finished;	/* finished: under s->mu */
	int64_t *ids;
	float *dist;
	struct node_units missing;
	int64_t gone_rev;		/* gone= units: the peer's applied= */
	char why[160];
	pthread_t th;
};

static int fan_get(struct node *nd, const struct place_node *p,
		   char *user, size_t ucap)
{
	struct place *pl = nd->place;
	struct fan_conn **pp, *c;
	int fd = -1;

	pthread_mutex_lock(&pl->lock);
	for (pp = &pl->pool; (c = *pp); pp = &c->next)
		if (c->no == p->no && !strcmp(c->addr, p->addr)) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&pl->lock);
	if (c) {
		fd = c->fd;
		snprintf(user, ucap, "%s", c->user);
		free(c);
	}
	return fd;
}

static void fan_put(struct node *nd, const struct place_node *p,
		    const char *user, int fd)
{
	struct fan_conn *c = calloc(1, sizeof(*c));

	if (!c || !nd->place) {
		free(c);
		close(fd);
		return;
	}
	c->no = p->no;
	snprintf(c->addr, sizeof(c->addr), "%s", p->addr);
	snprintf(c->user, sizeof(c->user), "%s", user);
	c->fd = fd;
	pthread_mutex_lock(&nd->place->lock);
	{
		/* A few idle ones per peer: each is a connection it counts
		 * in its load. */
		int same = 0;

		for (struct fan_conn *x = nd->place->pool; x; x = x->next)
			same += x->no == p->no;
		if (same >= FAN_POOL_PER_PEER) {
			pthread_mutex_unlock(&nd->place->lock);
			close(fd);
			free(c);
			return;
		}
	}
	c->next = nd->place->pool;
	nd->place->pool = c;
	pthread_mutex_unlock(&nd->place->lock);
}

/* A reply's reader: a line, then bytes, within the deadline. */
struct rd {
	int fd;
	int64_t end;
	char buf[4096];
	size_t len, off;
};

static int rd_fill(struct rd *r, struct fan_task *t)
{
	struct pollfd pf = { r->fd, POLLIN, 0 };
	ssize_t n;

	if (r->off == r->len)
		r->off = r->len = 0;
	for (;;) {
		int64_t now = node_mono_ms();
		int left = (int)(r->end - now), pr;

		if (atomic_load(&t->cancel) || left <= 0) {
			t->timedout = !atomic_load(&t->cancel);
			snprintf(t->why, sizeof(t->why), "no answer in time");
			return -1;
		}
		pr = poll(&pf, 1, left < 50 ? left : 50);
		if (pr > 0)
			break;
	}
	n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
	if (n <= 0) {
		snprintf(t->why, sizeof(t->why), "%s", n == 0 ?
			 "closed the connection" : "connection failed");
		return -1;
	}
	r->len += (size_t)n;
	return 0;
}

/* A line of at most cap - 1 bytes, without its newline. */
static int rd_line(struct rd *r, struct fan_task *t, char *out, size_t cap)
{
	size_t o = 0;

	for (;;) {
		while (r->off < r->len) {
			char ch = r->buf[r->off++];

			if (ch == '\n') {
				out[o] = '\0';
				return 0;
			}
			if (o + 1 >= cap) {
				snprintf(t->why, sizeof(t->why), "answered a "
					 "line too long");
				return -1;
			}
			out[o++] = ch;
		}
		if (r->len == sizeof(r->buf))
			r->off = r->len = 0;
		if (rd_fill(r, t) < 0)
			return -1;
	}
}

static int rd_bytes(struct rd *r, struct fan_task *t, void *out, size_t n)
{
	char *p = out;

	while (n) {
		size_t m;

		if (r->off == r->len && rd_fill(r, t) < 0)
			return -1;
		m = r->len - r->off < n ? r->len - r->off : n;
		memcpy(p, r->buf + r->off, m);
		r->off += m;
		p += m;
		n -= m;
	}
	return 0;
}

static int send_all(int fd, struct fan_task *t, struct iovec *iov, int n)
{
	if (mv_writev_all(fd, iov, n) < 0) {
		snprintf(t->why, sizeof(t->why), "connection failed");
		return -1;
	}
	return 0;
}

/* Ask t->peer for t's units; t->ok and the answer, or t->why. */
static void *fan_ask(void *arg)
{
	struct fan_task *t = arg;
	struct fan_search *s = t->s;
	struct node *nd = s->nd;
	struct coll *c = s->c;
	char user[MV_NAME_MAX + 1] = "", *line = NULL, *rep = NULL;
	struct rd *r = NULL;
	size_t cap = 64 * 1024, l;
	size_t qb = s->nq * c->dim * sizeof(float), nk = s->nq * s->k;
	int fd = fan_get(nd, &t->peer, user, sizeof(user)), pooled = fd >= 0;
	uint64_t bytes = 0;
	char *mp;

	line = malloc(cap);
	rep = malloc(cap);
	r = calloc(1, sizeof(*r));
	if (!line || !rep || !r) {
		snprintf(t->why, sizeof(t->why), "out of memory");
		goto fail;
	}
again:
	if (fd < 0) {
		struct mv_addr a;
		struct mv_err e = { 0 };

		int64_t left = s->end - node_mono_ms();

		if (mv_addr_parse(t->peer.addr, &a, &e) < 0 ||
		    (fd = mv_net_connect_within(&a, left < 1000 ? (left > 0 ?
						(int)left : 1) : 1000,
						&e)) < 0) {
			snprintf(t->why, sizeof(t->why), "%.150s", e.msg);
			goto fail;
		}
		user[0] = '\0';
	}
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->end = s->end;
	l = 0;
	if (strcmp(user, c->user))
		l += (size_t)snprintf(line + l, cap - l, "USER %s\n", c->user);
	l += (size_t)snprintf(line + l, cap - l, "SEARCH %s %zu %zu %zu rev=%"
			      PRId64, c->name, s->k, s->nq, qb, s->rev);
	if (s->nprobe > 0)
		l += (size_t)snprintf(line + l, cap - l, " nprobe=%ld",
				      s->nprobe);
	if (s->ef > 0)
		l += (size_t)snprintf(line + l, cap - l, " ef=%ld", s->ef);
	if (s->filter)
		l += (size_t)snprintf(line + l, cap - l, " filter=%s",
				      s->filter);
	if (s->asof)
		l += (size_t)snprintf(line + l, cap - l, " asof=%" PRIu64,
				      s->asof);
	else if (s->cut)
		l += (size_t)snprintf(line + l, cap - l, " cut=%" PRIu64,
				      s->cut);
	l += (size_t)snprintf(line + l, cap - l, " units=");
	for (size_t i = 0; i < t->nunit && l < cap; i++)
		l += (size_t)snprintf(line + l, cap - l, "%s%s", i ? "," : "",
				      s->all[t->unit[i]].leaf);
	if (l + 2 >= cap) {
		snprintf(t->why, sizeof(t->why), "request too long");
		goto fail;
	}
	line[l++] = '\n';
	{
		struct iovec iov[2] = { { line, l }, { (void *)s->q, qb } };
		int64_t ms = s->end - node_mono_ms();
		struct timeval tv;

		/* A stopped peer does not read: the write is bounded too. */
		if (ms < 1)
			ms = 1;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

		if (send_all(fd, t, iov, 2) < 0)
			goto retry;
	}
	if (strcmp(user, c->user)) {
		if (rd_line(r, t, rep, cap) < 0)
			goto retry;
		if (strncmp(rep, "OK", 2)) {
			snprintf(t->why, sizeof(t->why), "answered '%.100s'", rep);
			goto fail;
		}
		snprintf(user, sizeof(user), "%s", c->user);
	}
	if (rd_line(r, t, rep, cap) < 0)
		goto retry;
	if (strncmp(rep, "OK ", 3) || !strstr(rep, " bytes=")) {
		snprintf(t->why, sizeof(t->why), "answered '%.100s'", rep);
		/* An ERR line is whole: the connection stays usable. */
		if (!strncmp(rep, "ERR ", 4)) {
			fan_put(nd, &t->peer, user, fd);
			fd = -1;
		}
		goto fail;
	}
	bytes = strtoull(strstr(rep, " bytes=") + 7, NULL, 10);
	if (bytes != nk * 12) {
		snprintf(t->why, sizeof(t->why), "answered %" PRIu64 " bytes "
			 "for %zu hits", bytes, nk);
		goto fail;
	}
	if (rd_bytes(r, t, t->ids, nk * 8) < 0 ||
	    rd_bytes(r, t, t->dist, nk * 4) < 0)
		goto fail;
	if (strstr(rep, " gone=") && (mp = strstr(rep, " applied=")))
		t->gone_rev = strtoll(mp + 9, NULL, 10);
	if ((mp = strstr(rep, " missing="))) {
		char *save = NULL, *u;

		mp += 9;
		mp[strcspn(mp, " ")] = '\0';
		for (u = strtok_r(mp, ",", &save); u;
		     u = strtok_r(NULL, ",", &save))
			node_units_add(&t->missing, u);
	}
	t->ok = 1;
	fan_put(nd, &t->peer, user, fd);
	fd = -1;
	goto out;
retry:
	/* A kept connection the peer closed meanwhile: once more, afresh. */
	if (pooled && !t->timedout) {
		pooled = 0;
		close(fd);
		fd = -1;
		goto again;
	}
fail:
	if (fd >= 0)
		close(fd);
out:
	free(line);
	free(rep);
	free(r);
	pthread_mutex_lock(&s->mu);
	t->finished = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Merge one answer's top-k into ids/dist, each id once. */
static void fan_merge(int l2, size_t nq, size_t k, const int64_t *ri,
		      const float *rd, int64_t *ids, float *dist)
{
	for (size_t qi = 0; qi < nq; qi++)
		for (size_t j = 0; j < k; j++) {
			int64_t id = ri[qi * k + j];
			size_t x;

			if (id == MV_ID_NONE)
				break;
			for (x = 0; x < k && ids[qi * k + x] != id; x++)
				;
			if (x == k)
				node_merge_hit(l2, ids + qi * k, dist + qi * k,
					       k, id, rd[qi * k + j]);
		}
}

int node_search_held(struct node *nd, struct coll *c,
		     struct node_units *units, int ms, const float *q,
		     size_t nq, size_t k, long nprobe, long ef,
		     const struct mv_filter *f, uint64_t asof, int64_t *ids,
		     float *dist, struct node_units *gone, struct mv_err *err)
{
	struct node_units want = { 0 }, done = { 0 }, todo = { 0 };
	int64_t end = node_mono_ms() + ms;
	int64_t *ri = NULL;
	float *rd = NULL;
	int rc = 0;
	size_t kept = 0;

	for (size_t i = 0; nd->place && i < units->n; i++) {
		char path[MV_SPATH];

		node_coll_path(c, units->v[i], path);
		if (node_place_held(nd, path) &&
		    (rc = node_units_add(&want, units->v[i])) < 0)
			goto out;
	}
	if (!want.n)
		goto out;
	ri = malloc(nq * k * sizeof(*ri) + 1);
	rd = malloc(nq * k * sizeof(*rd) + 1);
	if (!ri || !rd) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&nd->place->lock);
	nd->place->kick = 1;
	pthread_cond_broadcast(&nd->place->cv);
	pthread_mutex_unlock(&nd->place->lock);
	for (;;) {
		node_topk_clear(c->metric == MV_L2, ri, rd, nq * k);
		done.n = todo.n = 0;
		rc = node_search_units(nd, c, q, nq, k, nprobe, ef, f, asof,
				       &want, &done, &todo, ri, rd, err);
		if (rc < 0)
			goto out;
		if (!todo.n || node_mono_ms() >= end)
			break;
		usleep(20 * 1000);
	}
	if (todo.n)
		goto out;
	fan_merge(c->metric == MV_L2, nq, k, ri, rd, ids, dist);
	/*
	 * Searched: out.  Held by name but not found (neither searched nor
	 * waited for): merged away or replaced since the asker named it.
	 */
	for (size_t i = 0; i < units->n; i++) {
		if (node_units_has(&done, units->v[i]))
			continue;
		if (node_units_has(&want, units->v[i])) {
			if (gone && node_units_add(gone, units->v[i]) < 0) {
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto out;
			}
			if (gone)
				continue;
		}
		memmove(units->v[kept++], units->v[i], MV_UNIT_LEAF);
	}
	units->n = kept;
out:
	free(ri);
	free(rd);
	node_units_free(&want);
	node_units_free(&done);
	node_units_free(&todo);
	return rc;
}

/*
 * node_search_held over the units of u not done yet: done if it served
 * them; 1 when some were gone here (merged away since the search named
 * them: its rows are in units it did not name).
 */
static int fan_self(struct node *nd, struct coll *c, struct fan_unit *u,
		    size_t nu, const float *q, size_t nq, size_t k,
		    long nprobe, long ef, const struct mv_filter *f,
		    uint64_t asof, int64_t *ids, float *dist,
		    struct mv_err *err)
{
	struct node_units left = { 0 }, gone = { 0 };
	int rc = 0;

	for (size_t i = 0; i < nu && rc == 0; i++)
		if (!u[i].done && node_units_add(&left, u[i].leaf) < 0)
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (rc == 0 && left.n) {
		log_debug("search of '%s': %zu units moved here, searched as "
			  "of %llu", c->name, left.n, (unsigned long long)asof);
		rc = node_search_held(nd, c, &left, MV_VISIBLE_WAIT_MS, q, nq,
				      k, nprobe, ef, f, asof, ids, dist, &gone,
				      err);
	}
	for (size_t i = 0; rc == 0 && i < nu; i++) {
		if (u[i].done)
			continue;
		if (node_units_has(&gone, u[i].leaf))
			snprintf(u[i].why, sizeof(u[i].why), "merged away by "
				 "then");
		else if (!node_units_has(&left, u[i].leaf))
			u[i].done = 1;
	}
	if (rc == 0 && gone.n)
		rc = 1;		/* the caller searches again */
	node_units_free(&left);
	node_units_free(&gone);
	return rc;
}

/*
 * 1 (and *gen the new generation) once the live set is not the one of
 * generation *gen, waiting for that up to FAN_GONE_MS, never past end;
 * else 0.
 */
static int live_set_changed(struct node *nd, uint64_t *gen, int64_t end)
{
	int64_t until = node_mono_ms() + FAN_GONE_MS;
	uint64_t g = node_place_gen(nd);

	if (until > end)
		until = end;
	while (g == *gen && node_mono_ms() < until) {
		usleep(10 * 1000);
		g = node_place_gen(nd);
	}
	if (g == *gen)
		return 0;
	*gen = g;
	return 1;
}

/* The best live holder of unit x not asked yet (not this node): 1 and
 * *out, or 0. */
static int next_holder(struct node *nd, struct coll *c,
		       const struct fan_unit *x, struct place_node *out)
{
	struct place_node h[PLACE_NODES_MAX];
	char path[MV_SPATH];
	size_t nh;

	if (x->ntried == PLACE_NODES_MAX)
		return 0;
	node_coll_path(c, x->leaf, path);
	nh = node_place_holders(nd, path, h);
	for (size_t j = 0; j < nh; j++) {
		size_t i;

		for (i = 0; i < x->ntried && x->tried[i] != h[j].no; i++)
			;
		if (h[j].no != nd->node_no && i == x->ntried) {
			*out = h[j];
			return 1;
		}
	}
	return 0;
}

/* Settle finished task t: merge its answer, mark its units. */
static void task_settle(struct node *nd, struct fan_task *t,
			struct fan_unit *u, int l2, int64_t *ids, float *dist)
{
	if (t->th)
		pthread_join(t->th, NULL);
	if (t->timedout)
		node_place_suspect(nd, t->peer.no, FAN_SUSPECT_MS);
	else if (t->ok)
		node_place_suspect(nd, t->peer.no, 0);
	if (t->ok)
		fan_merge(l2, t->s->nq, t->s->k, t->ids, t->dist, ids, dist);
	if (t->ok && t->gone_rev > t->s->gone_rev)
		t->s->gone_rev = t->gone_rev;
	log_debug("search of '%s': node %u %s for %zu units, %zu missing, "
		  "gone at %lld (%lld ms)", t->s->c->name, t->peer.no,
		  t->ok ? "answered" : "failed", t->nunit, t->missing.n,
		  (long long)t->gone_rev, (long long)node_mono_ms());
	for (size_t j = 0; j < t->nunit; j++) {
		struct fan_unit *x = &u[t->unit[j]];

		x->inflight--;
		if (t->ok && !node_units_has(&t->missing, x->leaf))
			x->done = 1;
		else if (!x->done && !atomic_load(&t->cancel))
			snprintf(x->why, sizeof(x->why), "node %u: %.100s",
				 t->peer.no, !t->ok ? t->why : t->gone_rev ?
				 "merged away by then" : "does not hold it");
	}
}

static void task_free(struct fan_task *t)
{
	if (!t)
		return;
	free(t->unit);
	free(t->ids);
	free(t->dist);
	node_units_free(&t->missing);
	free(t);
}

/*
 * The asof for cut=<flush> of a node's SEARCH units= (engine.h): the last
 * flush of c the asking node's own part saw.  A flush committed since, which this
 * node applied and the asker had not, is left out (searched as of cut),
 * and one the asker saw is waited for (bounded): every part of the
 * search answers at the same flush, so none sees half of it (an upsert's
 * new row here, its old one gone there).  The history kept decides: with
 * none (history_retention=0) the current rows, as before.
 */
#define CUT_WAIT_MS 1000
uint64_t node_search_cut(struct node *nd, struct coll *c, uint64_t cut)
{
	struct mv_err e = { 0 };
	uint64_t last = 0;

	if (!cut)
		return 0;

	for (int ms = 0; ms < CUT_WAIT_MS; ms++) {
		pthread_rwlock_rdlock(&c->lock);
		last = c->next_seq - 1;
		pthread_rwlock_unlock(&c->lock);
		if (last >= cut)
			break;
		usleep(1000);
	}
	/* At cut (or short of it still): the current rows, the fast path
	 * (node_asof_now), without asking etcd about the history. */
	if (last <= cut)
		return cut;
	return node_asof_check(nd, c, cut, &e) == 0 ? cut : 0;
}

/*
 * One pass of node_search_all.  With replan set, a pass that some units
 * failed only because their holders had merged them away (SEARCH's
 * gone=) returns FAN_REPLAN and the revision those holders had applied
 * in *replan, instead of failing.
 */
#define FAN_REPLAN 3
static int search_all_once(struct node *nd, struct coll *c, const float *q,
			   size_t nq, size_t k, long nprobe, long ef,
			   const struct mv_filter *f, const char *filter,
			   uint64_t asof, int64_t *ids, float *dist,
			   int64_t *replan, struct mv_err *err)
{
	struct node_units todo = { 0 };
	struct fan_unit *u = NULL;
	struct fan_task **tasks = NULL;
	struct fan_search w = { 0 };
	size_t nu, nt = 0, tcap = 0, left;
	int64_t rev = atomic_load(&nd->applied_rev), t0 = node_mono_ms();
	int64_t hedge, end;
	int rc, l2 = c->metric == MV_L2;
	uint64_t asked_gen = node_place_gen(nd);

	if (!nd->place)
		return node_search_at(nd, c, q, nq, k, nprobe, ef, f, asof,
				      ids, dist, err);
	rc = node_search_units(nd, c, q, nq, k, nprobe, ef, f, asof, NULL,
			       NULL, &todo, ids, dist, err);
	if (rc < 0 || !todo.n) {
		node_units_free(&todo);
		return rc;
	}
	t0 = node_mono_ms() - t0;	/* the local part's time */
	node_test_pause("MV_TEST_PAUSE_FANOUT");
	hedge = FAN_HEDGE_MS + 2 * t0;
	end = node_mono_ms() + FAN_WAIT_MS + 8 * t0;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.nd = nd;
	w.c = c;
	w.q = q;
	w.nq = nq;
	w.k = k;
	w.nprobe = nprobe;
	w.ef = ef;
	w.filter = filter;
	w.asof = asof;
	w.cut = todo.seq;
	/* What the local part saw was applied by now: the holders too. */
	w.rev = atomic_load(&nd->applied_rev);
	if (w.rev < rev)
		w.rev = rev;
	w.end = end;
	nu = todo.n;
	log_debug("search of '%s': own part at flush %llu, revision %lld; "
		  "%zu units to ask (%lld ms)", c->name,
		  (unsigned long long)w.cut, (long long)w.rev, nu,
		  (long long)node_mono_ms());
	u = calloc(nu, sizeof(*u));
	if (!u) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nu; i++)
		snprintf(u[i].leaf, sizeof(u[i].leaf), "%s", todo.v[i]);
	w.all = u;
	for (;;) {
		int64_t now = node_mono_ms(), wake = end;
		size_t first = nt, running = 0;

		/*
		 * Each unit not answered for to its best holder not asked
		 * yet: at once when no request names it, after the hedge
		 * delay when one does.
		 */
		for (size_t i = 0; i < nu; i++) {
			struct place_node h;
			size_t x, len = strlen(u[i].leaf) + 1;
			struct fan_task *t = NULL;

			if (u[i].done)
				continue;
			if (u[i].inflight && now < u[i].sent + hedge) {
				if (u[i].sent + hedge < wake)
					wake = u[i].sent + hedge;
				continue;
			}
			if (!next_holder(nd, c, &u[i], &h))
				continue;
			for (x = first; x < nt; x++)
				if (tasks[x]->peer.no == h.no &&
				    tasks[x]->len + len < FAN_LINE_UNITS) {
					t = tasks[x];
					break;
				}
			if (!t) {
				if (nt == tcap) {
					size_t nc = tcap ? tcap * 2 : 8;
					void *v = realloc(tasks,
							  nc * sizeof(*tasks));

					if (!v)
						break;
					tasks = v;
					tcap = nc;
				}
				t = calloc(1, sizeof(*t));
				if (t && !(t->unit = malloc(nu *
							    sizeof(*t->unit)))) {
					free(t);
					t = NULL;
				}
				if (!t)
					break;
				t->peer = h;
				tasks[nt++] = t;
			}
			t->unit[t->nunit++] = i;
			t->len += len;
			u[i].tried[u[i].ntried++] = h.no;
			u[i].inflight++;
			u[i].sent = now;
			if (now + hedge < wake)
				wake = now + hedge;
		}
		for (size_t i = first; i < nt; i++) {
			struct fan_task *t = tasks[i];

			t->s = &w;
			t->ids = malloc(nq * k * sizeof(*t->ids) + 1);
			t->dist = malloc(nq * k * sizeof(*t->dist) + 1);
			if (!t->ids || !t->dist) {
				snprintf(t->why, sizeof(t->why), "out of memory");
				t->finished = 1;
			} else if (pthread_create(&t->th, NULL, fan_ask, t)) {
				t->th = 0;
				fan_ask(t);
			}
		}
		/* Settle what finished; wait for the next event. */
		pthread_mutex_lock(&w.mu);
		for (;;) {
			int any = 0;

			running = 0;
			for (size_t i = 0; i < nt; i++) {
				if (!tasks[i] || tasks[i]->finished != 1) {
					running += tasks[i] != NULL;
					continue;
				}
				tasks[i]->finished = 2;
				pthread_mutex_unlock(&w.mu);
				task_settle(nd, tasks[i], u, l2, ids, dist);
				task_free(tasks[i]);
				tasks[i] = NULL;
				pthread_mutex_lock(&w.mu);
				any = 1;
			}
			now = node_mono_ms();
			if (any || now >= wake || !running)
				break;
			{
				struct timespec ts;

				node_deadline(&ts, wake - now);
				pthread_cond_timedwait(&w.cv, &w.mu, &ts);
			}
		}
		pthread_mutex_unlock(&w.mu);
		left = 0;
		for (size_t i = 0; i < nu; i++)
			left += !u[i].done;
		if (!left || node_mono_ms() >= end)
			break;
		if (!running) {
			/* Nothing out: on only if a holder is left to ask. */
			int more = 0;

			for (size_t i = 0; i < nu && !more; i++) {
				struct place_node h;

				more = !u[i].done && next_holder(nd, c, &u[i],
								 &h);
			}
			/* Units merged away: searched again (below), not
			 * waited for. */
			if (!more && (w.gone_rev ||
				      !live_set_changed(nd, &asked_gen, end)))
				break;
			/*
			 * None left, but the live set changed since the units
			 * were asked: a holder that failed may be back (a
			 * restart keeps its number); ask them all again.
			 */
			for (size_t i = 0; !more && i < nu; i++)
				if (!u[i].done)
					u[i].ntried = 0;
		}
	}
	/* Requests still out: answered by others, or too late. */
	for (size_t i = 0; i < nt; i++)
		if (tasks[i])
			atomic_store(&tasks[i]->cancel, 1);
	for (size_t i = 0; i < nt; i++)
		if (tasks[i]) {
			if (tasks[i]->th)
				pthread_join(tasks[i]->th, NULL);
			tasks[i]->th = 0;
			if (!tasks[i]->ok)
				node_place_suspect(nd, tasks[i]->peer.no,
						   FAN_SUSPECT_MS);
			task_settle(nd, tasks[i], u, l2, ids, dist);
			task_free(tasks[i]);
		}
	/* Units it serves now (moved here meanwhile): at the cut too. */
	rc = fan_self(nd, c, u, nu, q, nq, k, nprobe, ef, f,
		      asof ? asof : node_search_cut(nd, c, w.cut), ids, dist,
		      err);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		/* Merged away here: searched again from what it applied. */
		int64_t mine = atomic_load(&nd->applied_rev);

		if (mine > w.gone_rev)
			w.gone_rev = mine;
		rc = 0;
	}
	left = 0;
	for (size_t i = 0; i < nu; i++)
		left += !u[i].done;
	if (left && replan && w.gone_rev) {
		*replan = w.gone_rev;
		rc = FAN_REPLAN;
		goto out;
	}
	if (left) {
		char why[MV_ERR_LEN];
		size_t w2 = 0, named = 0;

		why[0] = '\0';
		for (size_t i = 0; i < nu && w2 + 1 < sizeof(why); i++) {
			if (u[i].done)
				continue;
			w2 += (size_t)snprintf(why + w2, sizeof(why) - w2,
					       "%s%s (%s)", named ? ", " : "",
					       u[i].leaf, u[i].why[0] ? u[i].why
						: "no live holder");
			named++;
		}
		if (named < left && w2 + 1 < sizeof(why))
			snprintf(why + w2, sizeof(why) - w2, " and %zu more",
				 left - named);
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "search of '%s' "
				 "incomplete: %zu unit%s unreachable: %s",
				 c->name, left, left == 1 ? "" : "s", why);
	}
out:
	free(u);
	free(tasks);
	node_units_free(&todo);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

/*
 * A merge committed while the search fanned out: the holders asked had
 * applied it and no longer know the units this node asked for (its rows
 * are in the merged unit, which this node did not know of yet).  This
 * node catches up to the revision they had applied, within the search's
 * bound, and searches again over the units it knows then: the search
 * never answers without those rows, and fails (75) only when that goes
 * on FAN_REPLANS times.
 */
#define FAN_REPLANS 3
int node_search_all(struct node *nd, struct coll *c, const float *q,
		    size_t nq, size_t k, long nprobe, long ef,
		    const struct mv_filter *f, const char *filter,
		    uint64_t asof, int64_t *ids, float *dist,
		    struct mv_err *err)
{
	int64_t end = node_mono_ms() + FAN_WAIT_MS;

	for (int i = 0;; i++) {
		int64_t rev = 0;
		int again = i < FAN_REPLANS && node_mono_ms() < end;
		int rc = search_all_once(nd, c, q, nq, k, nprobe, ef, f,
					 filter, asof, ids, dist,
					 again ? &rev : NULL, err);

		if (rc < 0 && again && nd->place && err &&
		    err->code == MV_ENOINPUT &&
		    mv_meta_revision(nd->meta, &rev, NULL) == 0) {
			/*
			 * A file this node read (mapped for an exact pass)
			 * is gone from storage: another node merged it away,
			 * by a revision this node had yet to apply.  Caught
			 * up, the search runs over the merged one.
			 */
			log_info("search of '%s': %s; searching again once "
				 "caught up", c->name, err->msg);
			mv_err_clear(err);
			rc = FAN_REPLAN;
		}
		if (rc != FAN_REPLAN)
			return rc;
		while (atomic_load(&nd->applied_rev) < rev &&
		       node_mono_ms() < end)
			usleep(2000);
		log_debug("search of '%s': units merged away meanwhile; "
			  "searching again at revision %lld", c->name,
			  (long long)rev);
	}
}

/*
 * nodes.c - how mv-masterd knows the nodes: a thread follows the property
 * key and its live/ keys in etcd (range, then watch; range again when the
 * history is compacted or etcd comes back), and one thread per node asks
 * it LOAD every second over a kept connection.  Nothing here is stored:
 * after a restart both are rebuilt at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "client.h"
#include "log.h"
#include "master.h"
#include "rank.h"

double master_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int mnode_up(const struct master *m, const struct mnode *n, double now)
{
	if (!n->used || !n->live || !mnode_addr(n)[0])
		return 0;
	if (n->fail_since == 0)
		return 1;
	return n->answered && now - n->fail_since < m->conf.heartbeat_timeout;
}

const char *mnode_addr(const struct mnode *n)
{
	return n->live_addr[0] ? n->live_addr : n->prop_addr;
}

/* ms milliseconds from now, for master.changed (CLOCK_MONOTONIC). */
static struct timespec deadline(int ms)
{
	struct timespec ts;

	mv_mono_ts(mv_mono_ms() + ms, &ts);
	return ts;
}

/* ---- heartbeats ------------------------------------------------------ */

/* Wait ms milliseconds, or less when n is poked (it just went live). */
static void hb_nap(struct master *m, struct mnode *n, int ms)
{
	struct timespec ts = deadline(ms);

	pthread_mutex_lock(&m->lock);
	while (!n->poke && !atomic_load(&m->stopping) &&
	       pthread_cond_timedwait(&m->changed, &m->lock, &ts) == 0)
		;
	n->poke = 0;
	pthread_mutex_unlock(&m->lock);
}

/* Connect to addr within ms milliseconds: a socket, or -1 with why set. */
static int connect_within(const char *addr, int ms, char *why, size_t cap)
{
	struct mv_addr a;
	struct mv_err e = { 0 };
	int fd;

	if (mv_addr_parse(addr, &a, &e) < 0 ||
	    (fd = mv_net_connect_within(&a, ms, &e)) < 0) {
		snprintf(why, cap, "%s", e.msg);
		return -1;
	}
	return fd;
}

/* Ask LOAD on fd; the reply's text after "OK " into out, within ms. */
static int ask_load(int fd, int ms, char *out, size_t cap, char *why,
		    size_t wcap)
{
	double end = master_now() + ms / 1000.0;
	size_t len = 0;

	if (mv_write_all(fd, "LOAD\n", 5) < 0) {
		snprintf(why, wcap, "send: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)((end - master_now()) * 1000);
		ssize_t r;
		char *nl;

		if (left <= 0 || poll(&p, 1, left) <= 0) {
			snprintf(why, wcap, "no answer to LOAD within %d ms", ms);
			return -1;
		}
		r = read(fd, out + len, cap - 1 - len);
		if (r <= 0) {
			snprintf(why, wcap, r == 0 ? "closed the connection" :
				 "read: %s", strerror(errno));
			return -1;
		}
		len += (size_t)r;
		out[len] = '\0';
		if ((nl = strchr(out, '\n'))) {
			*nl = '\0';
			if (nl > out && nl[-1] == '\r')
				nl[-1] = '\0';
			if (!strncmp(out, "ERR DENIED", 10)) {
				snprintf(why, wcap, "it refuses the master's "
					 "address: its allow must cover it");
				return -1;
			}
			if (strncmp(out, "OK ", 3)) {
				snprintf(why, wcap, "LOAD answered '%.80s'", out);
				return -1;
			}
			memmove(out, out + 3, strlen(out + 3) + 1);
			return 0;
		}
		if (len == cap - 1) {
			snprintf(why, wcap, "LOAD answer too long");
			return -1;
		}
	}
}

/* One node's heartbeat: LOAD every second, the connection kept. */
static void *heartbeat(void *arg)
{
	struct master *m = &the_master;
	struct mnode *n = arg;
	char addr[256] = "", cur[256] = "", why[256], rep[512];
	int fd = -1;

	while (!atomic_load(&m->stopping)) {
		double t0 = master_now();
		int want, ok = 0;
		int64_t no = -1, load = 0, mem = 0, segs = 0, held = 0;
		int64_t limit = 0;

		pthread_mutex_lock(&m->lock);
		want = n->listed || n->live;
		snprintf(addr, sizeof(addr), "%s", mnode_addr(n));
		pthread_mutex_unlock(&m->lock);
		if (fd >= 0 && (!want || strcmp(addr, cur))) {
			close(fd);
			fd = -1;
		}
		if (!want || !addr[0]) {
			hb_nap(m, n, HEARTBEAT_EVERY_MS);
			continue;
		}
		why[0] = '\0';
		if (fd < 0) {
			fd = connect_within(addr, HEARTBEAT_EVERY_MS, why,
					    sizeof(why));
			snprintf(cur, sizeof(cur), "%s", addr);
		}
		if (fd >= 0 && ask_load(fd, HEARTBEAT_EVERY_MS, rep, sizeof(rep),
					why, sizeof(why)) == 0) {
			if (mv_reply_get_i64(rep, "no", &no) < 0 ||
			    mv_reply_get_i64(rep, "load", &load) < 0) {
				snprintf(why, sizeof(why), "malformed LOAD "
					 "answer '%.80s'", rep);
			} else if (no != n->no) {
				snprintf(why, sizeof(why), "'%.200s' answers as "
					 "node %" PRId64, addr, no);
			} else {
				ok = 1;
				mv_reply_get_i64(rep, "mem", &mem);
				mv_reply_get_i64(rep, "segments", &segs);
				mv_reply_get_i64(rep, "held", &held);
				mv_reply_get_i64(rep, "limit", &limit);
			}
		}
		if (!ok && fd >= 0) {
			close(fd);
			fd = -1;
		}
		pthread_mutex_lock(&m->lock);
		if (ok) {
			n->answered = 1;
			n->fail_since = 0;
			n->load = load;
			n->mem = mem;
			n->segments = segs;
			n->held = held;
			n->limit = limit;
			n->assigned = 0;
			n->why[0] = '\0';
			n->logged_never = 1;
		} else {
			if (n->fail_since == 0)
				n->fail_since = master_now();
			snprintf(n->why, sizeof(n->why), "%s", why);
		}
		/* Down from the start (no state change to log): why, once. */
		if (!ok && !n->logged_up && !n->logged_never && n->live) {
			n->logged_never = 1;
			log_warnx("node %" PRIu32 " at %s does not answer the "
				  "heartbeat: %s", n->no, addr, why);
		}
		if (mnode_up(m, n, master_now()) != n->logged_up) {
			n->logged_up = !n->logged_up;
			if (n->logged_up) {
				log_info("node %" PRIu32 " at %s is up", n->no,
					 addr);
				pthread_cond_broadcast(&m->changed);
			} else {
				log_warnx("node %" PRIu32 " at %s is down: %s",
					  n->no, addr, n->why[0] ? n->why :
					  "not live");
			}
		}
		pthread_mutex_unlock(&m->lock);
		{
			int left = HEARTBEAT_EVERY_MS -
				(int)((master_now() - t0) * 1000);
			if (left > 0)
				hb_nap(m, n, left);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* The slot of node no, made if new (master.lock held); NULL when full. */
static struct mnode *slot(struct master *m, uint32_t no)
{
	struct mnode *free_slot = NULL;

	for (int i = 0; i < MASTER_NODES_MAX; i++) {
		if (m->nodes[i].used && m->nodes[i].no == no)
			return &m->nodes[i];
		if (!m->nodes[i].used && !free_slot)
			free_slot = &m->nodes[i];
	}
	if (!free_slot) {
		log_warnx("more than %d nodes: node %" PRIu32 " ignored",
			  MASTER_NODES_MAX, no);
		return NULL;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = 1;
	free_slot->no = no;
	{
		pthread_t th;
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&th, &attr, heartbeat, free_slot) != 0)
			log_warnx("no heartbeat thread for node %" PRIu32, no);
		pthread_attr_destroy(&attr);
	}
	return free_slot;
}

/* ---- following etcd -------------------------------------------------- */

/* A node number from JSON, or -1. */
static int64_t json_no(json_t *o)
{
	json_t *v = json_object_get(o, "no");

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return -1;
	return json_integer_value(v);
}

/* Apply a PUT (val) or DEL (val NULL) of key (master.lock held). */
static void apply(struct master *m, const char *key, const char *val,
		  size_t vlen)
{
	size_t plen = strlen(m->prefix);
	const char *rest = key + plen;
	json_error_t je;
	json_t *j = NULL;

	if (strncmp(key, m->prefix, plen))
		return;
	/* Only the property and its live/ keys (not session/ ones) count. */
	if (*rest && strncmp(rest, "/live/", 6))
		return;
	if (val && !(j = json_loadb(val, vlen, 0, &je))) {
		log_warnx("'%s': bad JSON: %s", key, je.text);
		return;
	}
	if (!*rest) {
		/* The property: which nodes are members. */
		json_t *arr = j ? json_object_get(j, "nodes") : NULL;
		size_t i;
		json_t *o;

		char was[MASTER_NODES_MAX];

		for (int k = 0; k < MASTER_NODES_MAX; k++) {
			was[k] = (char)m->nodes[k].listed;
			m->nodes[k].listed = 0;
		}
		if (j && !json_is_array(arr))
			log_warnx("'%s': no \"nodes\" array", key);
		json_array_foreach(arr, i, o) {
			int64_t no = json_no(o);
			json_t *a = json_object_get(o, "addr");
			struct mnode *n;

			if (no < 0 || !json_is_string(a)) {
				log_warnx("'%s': node %zu has no number or "
					  "address", key, i);
				continue;
			}
			if (!(n = slot(m, (uint32_t)no)))
				continue;
			if (!was[n - m->nodes] && !n->listed && !m->quiet)
				log_info("node %" PRId64 " at %s is a member",
					 no, json_string_value(a));
			n->listed = 1;
			snprintf(n->prop_addr, sizeof(n->prop_addr), "%s",
				 json_string_value(a));
		}
		for (int k = 0; k < MASTER_NODES_MAX; k++)
			if (was[k] && !m->nodes[k].listed && !m->quiet)
				log_info("node %" PRIu32 " is no longer a member",
					 m->nodes[k].no);
	} else if (!strncmp(rest, "/live/", 6)) {
		char *end;
		unsigned long long no = strtoull(rest + 6, &end, 10);
		struct mnode *n;

		if (end == rest + 6 || *end || no > UINT32_MAX) {
			log_warnx("'%s': not a node number", key);
		} else if ((n = slot(m, (uint32_t)no))) {
			json_t *a = j ? json_object_get(j, "addr") : NULL;

			if (j && !json_is_string(a)) {
				log_warnx("'%s': no \"addr\"", key);
			} else if (j) {
				if (!n->live && !m->quiet)
					log_info("node %llu at %s is live", no,
						 json_string_value(a));
				n->live = 1;
				snprintf(n->live_addr, sizeof(n->live_addr),
					 "%s", json_string_value(a));
				/*
				 * A node puts its live key once it listens:
				 * up now, as after a heartbeat answered, and
				 * heartbeat it at once.  Failures before (it
				 * was starting, or gone) count no more.  Not
				 * on a reading afresh, which replays keys
				 * put long ago.
				 */
				if (!m->quiet) {
					n->fail_since = 0;
					n->why[0] = '\0';
					n->poke = 1;
					pthread_cond_broadcast(&m->changed);
				}
			} else {
				if (n->live && !m->quiet)
					log_info("node %llu is gone (its live "
						 "key was deleted)", no);
				n->live = 0;
				n->live_addr[0] = '\0';
			}
		}
	}
	json_decref(j);
}

struct kvs {
	size_t n, cap;
	char **key, **val;
	size_t *vlen;
};

static int collect(void *arg, const struct mv_meta_kv *kv)
{
	struct kvs *s = arg;

	if (s->n == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 64;
		char **k = realloc(s->key, c * sizeof(*k));
		char **v = k ? realloc(s->val, c * sizeof(*v)) : NULL;
		size_t *l = v ? realloc(s->vlen, c * sizeof(*l)) : NULL;

		if (k)
			s->key = k;
		if (v)
			s->val = v;
		if (!l)
			return MV_EINTERNAL;
		s->vlen = l;
		s->cap = c;
	}
	s->key[s->n] = strdup(kv->key);
	s->val[s->n] = malloc(kv->vlen + 1);
	if (!s->key[s->n] || !s->val[s->n]) {
		free(s->key[s->n]);
		free(s->val[s->n]);
		return MV_EINTERNAL;
	}
	memcpy(s->val[s->n], kv->val, kv->vlen);
	s->val[s->n][kv->vlen] = '\0';
	s->vlen[s->n++] = kv->vlen;
	return 0;
}

static void kvs_release(struct kvs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->key[i]);
		free(s->val[i]);
	}
	free(s->key);
	free(s->val);
	free(s->vlen);
	memset(s, 0, sizeof(*s));
}

/* Read the whole prefix afresh into the table; *rev its revision. */
static int reload(struct master *m, int64_t *rev, struct mv_err *err)
{
	struct kvs s = { 0 };
	int rc = mv_meta_range_kv(m->meta, m->prefix, collect, &s, rev, err);

	if (rc == MV_EINTERNAL)
		mv_err_set(err, rc, "out of memory");
	if (rc == 0) {
		static char was[MASTER_NODES_MAX][2];

		pthread_mutex_lock(&m->lock);
		m->quiet = 1;
		for (int k = 0; k < MASTER_NODES_MAX; k++) {
			was[k][0] = (char)m->nodes[k].listed;
			was[k][1] = (char)m->nodes[k].live;
			m->nodes[k].listed = 0;
			m->nodes[k].live = 0;
			m->nodes[k].live_addr[0] = '\0';
		}
		for (size_t i = 0; i < s.n; i++)
			apply(m, s.key[i], s.val[i], s.vlen[i]);
		m->quiet = 0;
		/* What changed since the last read: a slot's number stays. */
		for (int k = 0; k < MASTER_NODES_MAX; k++) {
			struct mnode *n = &m->nodes[k];

			if (!n->used)
				continue;
			if (n->listed != was[k][0])
				log_info("node %" PRIu32 " at %s is %s", n->no,
					 n->prop_addr, n->listed ? "a member" :
					 "no longer a member");
			if (n->live != was[k][1])
				log_info("node %" PRIu32 " at %s is %s", n->no,
					 mnode_addr(n), n->live ? "live" :
					 "gone (no live key)");
		}
		m->loaded = 1;
		pthread_cond_broadcast(&m->changed);
		pthread_mutex_unlock(&m->lock);
	}
	kvs_release(&s);
	return rc;
}

static int on_event(void *arg, const struct mv_meta_event *ev)
{
	struct master *m = arg;

	pthread_mutex_lock(&m->lock);
	if (ev->type == MV_META_PUT)
		apply(m, ev->kv.key, ev->kv.val, ev->kv.vlen);
	else
		apply(m, ev->kv.key, NULL, 0);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void *master_watch(void *arg)
{
	struct master *m = arg;
	int failing = 0;

	while (!atomic_load(&m->stopping)) {
		struct mv_err e = { 0 };
		int64_t rev = 0, from, next;
		int rc;

		if (!m->meta) {
			struct mv_meta *mm = mv_meta_open_etcd(m->conf.etcd, &e);

			if (!mm) {
				if (!failing++)
					log_warnx("etcd: %s (trying again every "
						  "second)", e.msg);
				mv_sleep_ms(1000);
				continue;
			}
			pthread_mutex_lock(&m->lock);
			m->meta = mm;
			pthread_mutex_unlock(&m->lock);
		}
		if (reload(m, &rev, &e) < 0) {
			if (!failing++)
				log_warnx("etcd: %s (the nodes known are kept; "
					  "trying again every second)", e.msg);
			mv_sleep_ms(1000);
			continue;
		}
		if (failing)
			log_info("etcd answers again");
		failing = 0;
		log_debug("read '%s' at revision %" PRId64, m->prefix, rev);
		from = rev + 1;
		while (!atomic_load(&m->stopping)) {
			next = 0;
			rc = mv_meta_watch(m->meta, m->prefix, from, 1000,
					   on_event, m, &next, &e);
			if (rc == MV_META_COMPACTED) {
				log_info("etcd: %s: reading afresh", e.msg);
				break;
			}
			if (rc < 0) {
				log_warnx("etcd: watch: %s (the nodes known are "
					  "kept)", e.msg);
				failing = 1;
				mv_sleep_ms(1000);
				break;
			}
			if (next > from)
				from = next;
		}
	}
	return NULL;
}

/* ---- forgetting a member ---------------------------------------------- */

/* The etcd handle, or NULL before etcd first answered. */
static struct mv_meta *master_meta(struct master *m)
{
	struct mv_meta *meta;

	pthread_mutex_lock(&m->lock);
	meta = m->meta;
	pthread_mutex_unlock(&m->lock);
	return meta;
}

/*
 * The property without node *no (or, *no < 0, the member at addr: *no
 * set), its "next" raised past every number given (node_join takes
 * max+1 of the members and next-1), as JSON, or NULL: *found 0 when it
 * is not a member.
 */
static char *prop_without(const char *val, size_t vlen, int64_t *no,
			  const char *addr, int *found)
{
	json_t *j = val ? json_loadb(val, vlen, 0, NULL) : NULL;
	json_t *nodes = json_object_get(j, "nodes"), *o;
	int64_t next = json_integer_value(json_object_get(j, "next"));
	size_t i, at = 0;
	char *out = NULL;

	*found = 0;
	json_array_foreach(nodes, i, o) {
		int64_t x = json_no(o);
		const char *a = json_string_value(json_object_get(o, "addr"));

		if (x >= next)
			next = x + 1;
		if (!*found && (*no >= 0 ? x == *no : a && !strcmp(a, addr))) {
			*found = 1;
			*no = x;
			at = i;
		}
	}
	if (*found) {
		json_array_remove(nodes, at);
		json_object_set_new(j, "next", json_integer(next));
		out = json_dumps(j, JSON_COMPACT);
		if (!out)
			*found = -1;
	}
	json_decref(j);
	return out;
}

/* Put val as the property if it is unchanged since mod and node no has
 * no live key: 0, MV_META_CMPFAIL, or MV_E*. */
static int prop_swap(struct mv_meta *meta, const char *key, int64_t mod,
		     const char *live, const char *val, struct mv_err *err)
{
	struct mv_meta_rcmp cmps[2] = {
		{ key, MV_META_CMP_MOD, MV_META_EQ, mod },
		{ live, MV_META_CMP_MOD, MV_META_EQ, 0 },
	};
	struct mv_meta_op op = { MV_META_PUT, key, val, strlen(val) };
	struct mv_meta_req req = { 0 };

	req.rcmps = cmps;
	req.nrcmp = 2;
	req.ops = &op;
	req.nops = 1;
	return mv_meta_txn_req(meta, &req, err);
}

int master_forget(struct master *m, int64_t no, const char *addr,
		  struct mv_err *err)
{
	struct mv_meta *meta = master_meta(m);
	char live[sizeof(m->prefix) + 32], who[300];

	if (no >= 0)
		snprintf(who, sizeof(who), "node %" PRId64, no);
	else
		snprintf(who, sizeof(who), "the node at %.256s", addr);
	if (!meta)
		return mv_err_set(err, MV_EAGAIN, "etcd has not answered yet: "
				  "cannot forget %s", who);
	for (int tries = 0;; tries++) {
		char *pv, *lv = NULL, *val;
		size_t plen, llen;
		int64_t n = no, mod;
		int found, rc;

		rc = mv_meta_get_rev(meta, m->prefix, &pv, &plen, &mod, err);
		if (rc < 0)
			return rc;
		val = prop_without(pv, plen, &n, addr, &found);
		free(pv);
		if (found < 0)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		if (!found) {
			mv_err_set(err, MV_ESERVER, "%s is not a member", who);
			return MASTER_NOTMEMBER;
		}
		snprintf(live, sizeof(live), "%s/live/%" PRId64, m->prefix, n);
		rc = mv_meta_get(meta, live, &lv, &llen, err);
		if (rc == 0) {
			json_t *j = json_loadb(lv, llen, 0, NULL);
			const char *a = json_string_value(json_object_get(j,
								"addr"));

			mv_err_set(err, MV_ESERVER, "node %" PRId64 " is live at "
				   "%s: stop it first", n, a ? a : "?");
			json_decref(j);
			rc = MASTER_LIVE;
		} else if (rc == 1) {
			rc = prop_swap(meta, m->prefix, mod, live, val, err);
			if (rc == 0)
				log_info("node %" PRId64 " forgotten", n);
		}
		free(lv);
		free(val);
		if (rc != MV_META_CMPFAIL)
			return rc;
		mv_err_clear(err);
		if (tries >= 100)
			return mv_err_set(err, MV_EAGAIN, "cannot forget %s: "
					  "'%s' keeps changing", who, m->prefix);
	}
}

/* ---- choosing a node ------------------------------------------------- */

/* The session's holder from its key: 0, 1 when there is none, or MV_E*. */
static int session_holder(struct master *m, const char *session,
			  int64_t *no, struct mv_err *err)
{
	char key[sizeof(m->prefix) + MV_NAME_MAX + 16], *val = NULL;
	struct mv_err e = { 0 };
	size_t vlen = 0;
	struct mv_meta *meta;
	json_error_t je;
	json_t *j;
	int rc;

	meta = master_meta(m);
	if (!meta)
		return mv_err_set(err, MV_EAGAIN, "etcd has not answered yet: "
				  "cannot find session '%s'", session);
	snprintf(key, sizeof(key), "%s/session/%s", m->prefix, session);
	rc = mv_meta_get(meta, key, &val, &vlen, &e);
	if (rc != 0)
		return rc < 0 ? mv_err_set(err, MV_EAGAIN, "cannot find "
					   "session '%s': %s", session,
					   e.msg) : 1;
	j = json_loadb(val, vlen, 0, &je);
	*no = j ? json_no(j) : -1;
	json_decref(j);
	free(val);
	if (*no < 0)
		return mv_err_set(err, MV_EAGAIN, "'%s': bad value", key);
	return 0;
}

/* 1 when addr is one of the comma-separated list. */
static int listed_in(const char *addr, const char *list)
{
	size_t l = strlen(addr);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (!strncmp(p, addr, l) && (p[l] == ',' || !p[l]))
			return 1;
	}
	return 0;
}

/* Whether n goes before best: by load, or, given coll, by rank. */
static int better(const struct mnode *n, const struct mnode *best,
		  const char *coll)
{
	if (coll) {
		uint64_t hn = mv_rank_hash(coll, n->no);
		uint64_t hb = mv_rank_hash(coll, best->no);

		return hn > hb || (hn == hb && n->no < best->no);
	}
	return n->load + n->assigned < best->load + best->assigned ||
	       (n->load + n->assigned == best->load + best->assigned &&
		n->no < best->no);
}

/*
 * The up node a client goes to (master.lock held), or NULL: the least
 * loaded, or, for a collection's index commands (coll), the one ranked
 * first for it, so that a build and the questions about it meet.
 */
static struct mnode *pick_up(struct master *m, const char *coll,
			     const char *avoid, double now)
{
	struct mnode *best = NULL;

	for (int i = 0; i < MASTER_NODES_MAX; i++) {
		struct mnode *n = &m->nodes[i];

		if (!mnode_up(m, n, now))
			continue;
		if (!best) {
			best = n;
			continue;
		}
		/* A node failing its heartbeat loses to any that answers. */
		if ((n->fail_since != 0) != (best->fail_since != 0)) {
			if (best->fail_since != 0)
				best = n;
			continue;
		}
		/* An address to avoid loses to any other. */
		if (avoid) {
			int na = listed_in(mnode_addr(n), avoid);
			int ba = listed_in(mnode_addr(best), avoid);

			if (na != ba) {
				if (ba)
					best = n;
				continue;
			}
		}
		if (better(n, best, coll))
			best = n;
	}
	return best;
}

int master_pick(struct master *m, const char *session, const char *coll,
		const char *avoid, char *addr, size_t cap, uint32_t *no,
		struct mv_err *err)
{
	struct mnode *best = NULL;
	struct timespec ts;
	int64_t hno = -1;
	int rc = 1;

	pthread_mutex_lock(&m->lock);
	/* Just started: the nodes come with the first read of etcd. */
	ts = deadline(MASTER_FIRST_READ_MS);
	while (!m->loaded &&
	       pthread_cond_timedwait(&m->changed, &m->lock, &ts) == 0)
		;
	if (!m->loaded) {
		pthread_mutex_unlock(&m->lock);
		return mv_err_set(err, MV_EAGAIN, "etcd has not answered yet: "
				  "no node known");
	}
	pthread_mutex_unlock(&m->lock);
	if (session && (rc = session_holder(m, session, &hno, err)) < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	if (rc == 0) {
		for (int i = 0; i < MASTER_NODES_MAX; i++)
			if (m->nodes[i].used && m->nodes[i].no == hno)
				best = &m->nodes[i];
		if (!best || !mnode_up(m, best, master_now())) {
			pthread_mutex_unlock(&m->lock);
			return mv_err_set(err, MV_EAGAIN, "session '%s' is held "
					  "by node %" PRId64 ", which is down",
					  session, hno);
		}
	} else {
		/* None up: nodes started with the master come up soon. */
		ts = deadline(MASTER_NODE_WAIT_MS);
		while (!(best = pick_up(m, coll, avoid, master_now())) &&
		       pthread_cond_timedwait(&m->changed, &m->lock, &ts) == 0)
			;
	}
	if (!best) {
		pthread_mutex_unlock(&m->lock);
		return mv_err_set(err, MV_EAGAIN, "no live node");
	}
	best->assigned++;
	snprintf(addr, cap, "%s", mnode_addr(best));
	*no = best->no;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

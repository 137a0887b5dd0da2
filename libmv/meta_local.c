/*
 * meta_local.c - the metadata store in a local directory: the whole map in
 * memory as an AVL tree, made durable by an append-only log, dir/meta.log,
 * that is replayed at open and compacted into a snapshot when it grows.
 * It is for the embedded node; a cluster shares etcd instead.
 *
 * meta.log is an 8-byte header ("MVMETA", u16 format version) and then one
 * record per transaction: u32 payload length, u32 crc32c of the payload,
 * payload.  A payload is u32 nops and nops ops, each a u8 type and then:
 *   0 put        u32 key length, key, u32 value length, value
 *   1 del        u32 key length, key
 *   2 delprefix  u32 key length, key
 *   3 rev        u64 revision of this record, u64 next lease id (0: none)
 *   4 putx       as put, then u64 create_rev, mod_rev, version, lease
 *   5 putlease   as put, then u64 lease
 *   6 grant      u64 lease id, u64 ttl in ms
 *   7 revoke     u64 lease id
 * Integers are little-endian.  A txn's record starts with a rev op (older
 * logs have none: each record with key ops is then the next revision); a
 * lease grant, or a revoke that deletes no key, is a record without one
 * (no revision, as etcd).  A snapshot
 * is the header and one record: a rev op, a grant per lease and a putx
 * per key; its revision is the compaction point of the history (the
 * events that watches read, rebuilt at open from the records after it).
 *
 * Leases expire on a thread of their own, started with the first lease.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "meta.h"

#define LOG_NAME "meta.log"
#define TMP_NAME "meta.log.tmp"
#define LOCK_NAME "LOCK"
#define MAGIC "MVMETA"
#define HDR_LEN 8		/* magic and u16 version */
#define REC_HDR 8		/* u32 length, u32 crc */
#define OP_HDR 9		/* u8 type, u32 key length, u32 value length */
#define COMPACT_MIN (1u << 20)	/* no compaction below this log size */
#define COMPACT_RATIO 4		/* ...nor below 4x the live data */
#define T_REV 3
#define T_PUTX 4
#define T_PUTL 5
#define T_GRANT 6
#define T_REVOKE 7
#define REV_OP 17		/* u8 type, two u64 */
#define PUTX_EXTRA 32		/* putx's four u64 */
#define HIST_EVENTS (1u << 16)	/* history kept in memory: events... */
#define HIST_BYTES (8u << 20)	/* ...and bytes of keys and values */

/*
 * A key and its value, and a node of the tree.  key and val never change;
 * left, right and height belong to the tree and are guarded by the store's
 * mutex.  refs counts the tree (while the entry is in it) and each range
 * snapshot holding it; the last one frees it, so ranges run unlocked.
 */
struct ent {
	struct ent *left, *right;
	int height;
	unsigned refs;		/* atomic */
	int64_t create_rev, mod_rev, version, lease;	/* set once, at apply */
	size_t klen, vlen;
	char *val;		/* in key[], after the key's NUL */
	char key[];		/* key, NUL, value, NUL */
};

/* An event of the history: a put (e, the entry put) or a delete (e, the
 * entry deleted), at revision rev. */
struct hev {
	int64_t rev;
	int type;
	struct ent *e;
};

struct lease {
	int64_t id, ttl_ms;
	int64_t deadline;	/* CLOCK_MONOTONIC ms */
};

struct meta_local {
	pthread_mutex_t mu;	/* guards everything below */
	pthread_cond_t changed;	/* a new revision (watches) */
	pthread_cond_t lease_cv;	/* leases changed, or stopping */
	int64_t rev, compact_rev, next_lease;
	struct hev *hist;	/* events after compact_rev, in order */
	size_t nhist, hcap;
	uint64_t hbytes;
	struct lease *leases;
	size_t nleases, lcap;
	pthread_t lease_thr;
	int lease_thr_on, stopping;
	char *dir;
	int dirfd, lockfd, logfd;
	struct ent *root;
	uint64_t nkeys;
	uint64_t live;		/* the ops of a snapshot, encoded */
	uint64_t logsize;	/* end of the last good record */
	uint64_t compact_at;	/* no compaction before this log size */
	int broken;		/* a failed write could not be cut off */
	uint64_t torn, compactions, txns;
};

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get_le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* A growing record being encoded; oom set when an allocation failed. */
struct wb {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static unsigned char *wb_room(struct wb *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = 1;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	b->len += n;
	return b->p + b->len - n;
}

static void wb_u8(struct wb *b, unsigned v)
{
	unsigned char *p = wb_room(b, 1);

	if (p)
		*p = v;
}

static void wb_u32(struct wb *b, uint32_t v)
{
	unsigned char *p = wb_room(b, 4);

	if (p)
		put_le32(p, v);
}

static void wb_u64(struct wb *b, uint64_t v)
{
	unsigned char *p = wb_room(b, 8);

	if (p) {
		put_le32(p, (uint32_t)v);
		put_le32(p + 4, (uint32_t)(v >> 32));
	}
}

static void wb_mem(struct wb *b, const void *v, size_t n)
{
	unsigned char *p = wb_room(b, n);

	if (p && n)
		memcpy(p, v, n);
}

/* Start a record: room for its header and op count. */
static void wb_rec_start(struct wb *b)
{
	wb_room(b, REC_HDR + 4);
}

static void wb_op(struct wb *b, int type, const char *key, size_t klen,
		  const void *val, size_t vlen)
{
	wb_u8(b, type);
	wb_u32(b, klen);
	wb_mem(b, key, klen);
	if (type == MV_META_PUT || type == T_PUTX || type == T_PUTL) {
		wb_u32(b, vlen);
		wb_mem(b, val, vlen);
	}
}

static void wb_op64(struct wb *b, int type, uint64_t x, uint64_t y, int two)
{
	wb_u8(b, type);
	wb_u64(b, x);
	if (two)
		wb_u64(b, y);
}

static struct ent *ent_new(const char *key, size_t klen, const void *val,
			   size_t vlen)
{
	struct ent *e = malloc(sizeof(*e) + klen + vlen + 2);

	if (!e)
		return NULL;
	e->left = e->right = NULL;
	e->height = 1;
	e->refs = 1;
	e->create_rev = e->mod_rev = e->version = e->lease = 0;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	e->val = e->key + klen + 1;
	if (vlen)
		memcpy(e->val, val, vlen);
	e->val[vlen] = '\0';
	return e;
}

static void ent_ref(struct ent *e)
{
	__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
}

static void ent_unref(struct ent *e)
{
	if (e && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(e);
}

/* Byte order of keys, as etcd's. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* <0 if key sorts before every key with prefix p, 0 if it has it, else >0. */
static int prefix_cmp(const struct ent *e, const char *p, size_t plen)
{
	int c = memcmp(e->key, p, e->klen < plen ? e->klen : plen);

	if (c)
		return c;
	return e->klen < plen ? -1 : 0;
}

static int height(const struct ent *e)
{
	return e ? e->height : 0;
}

static void fix_height(struct ent *e)
{
	int l = height(e->left), r = height(e->right);

	e->height = 1 + (l > r ? l : r);
}

static struct ent *rot_right(struct ent *e)
{
	struct ent *l = e->left;

	e->left = l->right;
	l->right = e;
	fix_height(e);
	fix_height(l);
	return l;
}

static struct ent *rot_left(struct ent *e)
{
	struct ent *r = e->right;

	e->right = r->left;
	r->left = e;
	fix_height(e);
	fix_height(r);
	return r;
}

static struct ent *balance(struct ent *e)
{
	int b;

	fix_height(e);
	b = height(e->left) - height(e->right);
	if (b > 1) {
		if (height(e->left->left) < height(e->left->right))
			e->left = rot_left(e->left);
		return rot_right(e);
	}
	if (b < -1) {
		if (height(e->right->right) < height(e->right->left))
			e->right = rot_right(e->right);
		return rot_left(e);
	}
	return e;
}

/* Insert n into t, taking the place of an entry with its key (*old). */
static struct ent *tree_put(struct ent *t, struct ent *n, struct ent **old)
{
	int c;

	if (!t) {
		n->left = n->right = NULL;
		n->height = 1;
		return n;
	}
	c = key_cmp(n->key, n->klen, t->key, t->klen);
	if (!c) {
		n->left = t->left;
		n->right = t->right;
		n->height = t->height;
		*old = t;
		return n;
	}
	if (c < 0)
		t->left = tree_put(t->left, n, old);
	else
		t->right = tree_put(t->right, n, old);
	return balance(t);
}

static struct ent *tree_pop_min(struct ent *t, struct ent **min)
{
	if (!t->left) {
		*min = t;
		return t->right;
	}
	t->left = tree_pop_min(t->left, min);
	return balance(t);
}

/* Remove key from t; the entry removed, if any, goes to *old. */
static struct ent *tree_del(struct ent *t, const char *key, size_t klen,
			    struct ent **old)
{
	struct ent *min, *r;
	int c;

	if (!t)
		return NULL;
	c = key_cmp(key, klen, t->key, t->klen);
	if (c < 0) {
		t->left = tree_del(t->left, key, klen, old);
	} else if (c > 0) {
		t->right = tree_del(t->right, key, klen, old);
	} else {
		*old = t;
		if (!t->left || !t->right)
			return t->left ? t->left : t->right;
		r = tree_pop_min(t->right, &min);
		min->left = t->left;
		min->right = r;
		return balance(min);
	}
	return balance(t);
}

static struct ent *tree_get(struct ent *t, const char *key, size_t klen)
{
	while (t) {
		int c = key_cmp(key, klen, t->key, t->klen);

		if (!c)
			return t;
		t = c < 0 ? t->left : t->right;
	}
	return NULL;
}

/* The first entry with prefix p, or NULL. */
static struct ent *tree_first(struct ent *t, const char *p, size_t plen)
{
	struct ent *best = NULL;

	while (t) {
		int c = prefix_cmp(t, p, plen);

		if (c < 0) {
			t = t->right;
		} else {
			if (!c)
				best = t;
			t = t->left;
		}
	}
	return best;
}

static void tree_free(struct ent *t)
{
	while (t) {
		struct ent *r = t->right;

		tree_free(t->left);
		ent_unref(t);
		t = r;
	}
}

/* Entries with prefix p, in order, referenced, appended to a growing array. */
struct snap {
	struct ent **v;
	size_t n, cap;
};

static int snap_collect(struct ent *t, const char *p, size_t plen,
			struct snap *s)
{
	int c;

	while (t) {
		c = prefix_cmp(t, p, plen);
		if (c < 0) {
			t = t->right;
			continue;
		}
		if (c > 0) {
			t = t->left;
			continue;
		}
		if (snap_collect(t->left, p, plen, s) < 0)
			return -1;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 64;
			struct ent **v = realloc(s->v, cap * sizeof(*v));

			if (!v)
				return -1;
			s->v = v;
			s->cap = cap;
		}
		ent_ref(t);
		s->v[s->n++] = t;
		t = t->right;
	}
	return 0;
}

static uint64_t op_size(size_t klen, size_t vlen)
{
	return OP_HDR + klen + vlen;
}

static void hist_clear_to(struct meta_local *ml, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ml->hbytes -= ml->hist[i].e->klen + ml->hist[i].e->vlen + 64;
		ent_unref(ml->hist[i].e);
	}
	ml->nhist -= n;
	if (n && ml->nhist)
		memmove(ml->hist, ml->hist + n,
			ml->nhist * sizeof(*ml->hist));
}

/*
 * Drop the oldest events, whole revisions, so that the history holds
 * nothing at or before rev (or, with rev < 0, about half of it).
 */
static void hist_trim(struct meta_local *ml, int64_t rev)
{
	size_t n = 0;

	if (rev < 0) {
		n = ml->nhist / 2 + 1;
		if (n > ml->nhist)
			n = ml->nhist;
		while (n && n < ml->nhist &&
		       ml->hist[n].rev == ml->hist[n - 1].rev)
			n++;
		rev = n ? ml->hist[n - 1].rev : ml->compact_rev;
	}
	while (n < ml->nhist && ml->hist[n].rev <= rev)
		n++;
	hist_clear_to(ml, n);
	if (rev > ml->compact_rev)
		ml->compact_rev = rev;
}

/* Record an event; with no memory for it, compact the history up to it. */
static void hist_add(struct meta_local *ml, int64_t rev, int type,
		     struct ent *e)
{
	if (ml->nhist == ml->hcap) {
		size_t cap = ml->hcap ? 2 * ml->hcap : 64;
		struct hev *v = realloc(ml->hist, cap * sizeof(*v));

		if (!v) {
			hist_trim(ml, rev);
			return;
		}
		ml->hist = v;
		ml->hcap = cap;
	}
	ent_ref(e);
	ml->hist[ml->nhist++] = (struct hev){ rev, type, e };
	ml->hbytes += e->klen + e->vlen + 64;
	if (ml->nhist > HIST_EVENTS || ml->hbytes > HIST_BYTES)
		hist_trim(ml, -1);
}

/*
 * Put n.  rev > 0: a change at revision rev, which sets n's revisions
 * and is recorded in the history; 0: a snapshot's entry, as it is.
 */
static void apply_put(struct meta_local *ml, struct ent *n, int64_t rev)
{
	struct ent *old = NULL;

	ml->root = tree_put(ml->root, n, &old);
	ml->live += op_size(n->klen, n->vlen);
	if (rev > 0) {
		n->mod_rev = rev;
		n->create_rev = old ? old->create_rev : rev;
		n->version = old ? old->version + 1 : 1;
		hist_add(ml, rev, MV_META_PUT, n);
	}
	if (old) {
		ml->live -= op_size(old->klen, old->vlen);
		ent_unref(old);
	} else {
		ml->nkeys++;
	}
}

static void apply_del(struct meta_local *ml, const char *key, size_t klen,
		      int64_t rev)
{
	struct ent *old = NULL;

	ml->root = tree_del(ml->root, key, klen, &old);
	if (old) {
		ml->live -= op_size(old->klen, old->vlen);
		ml->nkeys--;
		if (rev > 0)
			hist_add(ml, rev, MV_META_DEL, old);
		ent_unref(old);
	}
}

static void apply_delprefix(struct meta_local *ml, const char *p, size_t plen,
			    int64_t rev)
{
	struct ent *e;

	while ((e = tree_first(ml->root, p, plen))) {
		ent_ref(e);
		apply_del(ml, e->key, e->klen, rev);
		ent_unref(e);
	}
}

static struct lease *lease_find(struct meta_local *ml, int64_t id)
{
	for (size_t i = 0; i < ml->nleases; i++)
		if (ml->leases[i].id == id)
			return &ml->leases[i];
	return NULL;
}

static int lease_add(struct meta_local *ml, int64_t id, int64_t ttl_ms)
{
	struct lease *l = lease_find(ml, id);

	if (!l) {
		if (ml->nleases == ml->lcap) {
			size_t cap = ml->lcap ? 2 * ml->lcap : 8;
			struct lease *v = realloc(ml->leases, cap * sizeof(*v));

			if (!v)
				return -1;
			ml->leases = v;
			ml->lcap = cap;
		}
		l = &ml->leases[ml->nleases++];
	}
	l->id = id;
	l->ttl_ms = ttl_ms;
	l->deadline = mv_mono_ms() + ttl_ms;
	if (id >= ml->next_lease)
		ml->next_lease = id + 1;
	return 0;
}

static void lease_remove(struct meta_local *ml, int64_t id)
{
	struct lease *l = lease_find(ml, id);

	if (l)
		*l = ml->leases[--ml->nleases];
}

/* A payload being read; fields point into it. */
struct rd {
	const unsigned char *p, *end;
};

struct rd_op {
	int type;
	const char *key, *val;
	size_t klen, vlen;
	uint64_t a, b, c, d;	/* the u64 fields, in order */
};

static int rd_u64(struct rd *r, uint64_t *v)
{
	if (r->end - r->p < 8)
		return -1;
	*v = get_le64(r->p);
	r->p += 8;
	return 0;
}

/* Decode the next op; -1 when the payload is malformed. */
static int rd_op(struct rd *r, struct rd_op *o)
{
	size_t left = r->end - r->p;

	memset(o, 0, sizeof(*o));
	if (left < 1)
		return -1;
	o->type = r->p[0];
	if (o->type == T_REV || o->type == T_GRANT) {
		r->p++;
		return rd_u64(r, &o->a) < 0 || rd_u64(r, &o->b) < 0 ? -1 : 0;
	}
	if (o->type == T_REVOKE) {
		r->p++;
		return rd_u64(r, &o->a);
	}
	if (left < 5)
		return -1;
	o->klen = get_le32(r->p + 1);
	o->key = (const char *)r->p + 5;
	left -= 5;
	if (o->type > T_PUTL || o->type == T_REV || o->klen > left ||
	    o->klen > MV_META_KEY_MAX ||
	    (!o->klen && o->type != MV_META_DELPREFIX) ||
	    memchr(o->key, '\0', o->klen))
		return -1;
	r->p += 5 + o->klen;
	left -= o->klen;
	if (o->type == MV_META_DEL || o->type == MV_META_DELPREFIX)
		return 0;
	if (left < 4)
		return -1;
	o->vlen = get_le32(r->p);
	if (o->vlen > left - 4)
		return -1;
	o->val = (const char *)r->p + 4;
	r->p += 4 + o->vlen;
	if (o->type == T_PUTL)
		return rd_u64(r, &o->d);
	if (o->type == T_PUTX)
		return rd_u64(r, &o->a) < 0 || rd_u64(r, &o->b) < 0 ||
		       rd_u64(r, &o->c) < 0 || rd_u64(r, &o->d) < 0 ? -1 : 0;
	return 0;
}

/* Check a replayed payload whole, then apply it. */
static int replay_payload(struct meta_local *ml, const unsigned char *p,
			  size_t len, uint64_t off, struct mv_err *err)
{
	struct rd r = { p + 4, p + len };
	struct rd_op o;
	uint32_t nops = get_le32(p);
	int has_rev = 0, snap = 0, kv = 0, plain = 0;
	uint64_t rev = 0, next_lease = 0;

	for (uint32_t i = 0; i < nops; i++) {
		if (rd_op(&r, &o) < 0)
			goto bad;
		if (o.type == T_REV) {
			if (has_rev++)
				goto bad;
			rev = o.a;
			next_lease = o.b;
		} else if (o.type <= T_PUTL) {
			kv = 1;
			snap |= o.type == T_PUTX;
			plain |= o.type != T_PUTX;
		}
	}
	if (r.p != r.end)
		goto bad;
	if (has_rev) {
		if (rev > INT64_MAX || (int64_t)rev < ml->rev ||
		    ((int64_t)rev == ml->rev && (off != HDR_LEN || plain)))
			goto bad;
		ml->rev = (int64_t)rev;
	} else if (kv) {
		ml->rev++;
	}
	if (next_lease > (uint64_t)ml->next_lease && next_lease <= INT64_MAX)
		ml->next_lease = (int64_t)next_lease;
	/*
	 * A snapshot (the first record, with a rev and no txn ops; a txn
	 * can come first after an old, header-only snapshot): the history
	 * starts after it.
	 */
	snap |= has_rev && off == HDR_LEN && !plain;
	if (snap && plain)
		goto bad;
	if (snap)
		ml->compact_rev = ml->rev;
	r.p = p + 4;
	for (uint32_t i = 0; i < nops; i++) {
		struct ent *e;

		rd_op(&r, &o);
		switch (o.type) {
		case MV_META_PUT:
		case T_PUTL:
		case T_PUTX:
			e = ent_new(o.key, o.klen, o.val, o.vlen);
			if (!e)
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			e->lease = (int64_t)o.d;
			if (o.type == T_PUTX) {
				e->create_rev = (int64_t)o.a;
				e->mod_rev = (int64_t)o.b;
				e->version = (int64_t)o.c;
			}
			apply_put(ml, e, o.type == T_PUTX ? 0 : ml->rev);
			break;
		case MV_META_DEL:
			apply_del(ml, o.key, o.klen, ml->rev);
			break;
		case MV_META_DELPREFIX:
			apply_delprefix(ml, o.key, o.klen, ml->rev);
			break;
		case T_GRANT:
			if (o.a > INT64_MAX || !o.a || o.b > INT64_MAX ||
			    lease_add(ml, (int64_t)o.a, (int64_t)o.b) < 0)
				goto bad;
			break;
		case T_REVOKE:
			lease_remove(ml, (int64_t)o.a);
			break;
		}
	}
	return 0;
bad:
	return mv_err_set(err, MV_EDATA,
			  "'%s/%s': corrupt record at offset %llu", ml->dir,
			  LOG_NAME, (unsigned long long)off);
}

static void enc_header(unsigned char *p)
{
	memcpy(p, MAGIC, 6);
	p[6] = MV_FORMAT_VERSION & 0xff;
	p[7] = MV_FORMAT_VERSION >> 8;
}

/* Fill a record's length, op count and checksum; 0, or -1 out of memory. */
static int wb_rec_end(struct wb *b, size_t off, uint32_t nops)
{
	size_t plen = b->len - off - REC_HDR;

	if (b->oom)
		return -1;
	put_le32(b->p + off, plen);
	put_le32(b->p + off + REC_HDR, nops);
	put_le32(b->p + off + 4, mv_crc32c(0, b->p + off + REC_HDR, plen));
	return 0;
}

static void enc_tree(struct wb *b, const struct ent *t)
{
	for (; t; t = t->right) {
		enc_tree(b, t->left);
		wb_op(b, T_PUTX, t->key, t->klen, t->val, t->vlen);
		wb_u64(b, t->create_rev);
		wb_u64(b, t->mod_rev);
		wb_u64(b, t->version);
		wb_u64(b, t->lease);
	}
}

/*
 * Replace meta.log with a snapshot of the map: write meta.log.tmp, sync
 * it, rename it over meta.log and sync the directory.  On success logfd is
 * the new file.
 */
static int write_snapshot(struct meta_local *ml, struct mv_err *err)
{
	struct wb b = { NULL, 0, 0, 0 };
	int fd = -1, rc = MV_EIO;

	wb_room(&b, HDR_LEN);
	wb_rec_start(&b);
	wb_op64(&b, T_REV, ml->rev, ml->next_lease, 1);
	for (size_t i = 0; i < ml->nleases; i++)
		wb_op64(&b, T_GRANT, ml->leases[i].id, ml->leases[i].ttl_ms, 1);
	enc_tree(&b, ml->root);
	if (b.len - HDR_LEN - REC_HDR > UINT32_MAX) {
		rc = mv_err_set(err, MV_EINTERNAL, "'%s/%s': metadata too "
				"large to compact", ml->dir, LOG_NAME);
		goto out;
	}
	if (wb_rec_end(&b, HDR_LEN, 1 + ml->nleases + ml->nkeys) < 0) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	enc_header(b.p);
	fd = openat(ml->dirfd, TMP_NAME, O_RDWR | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		mv_err_sys(err, MV_EIO, "open '%s/%s'", ml->dir, TMP_NAME);
		goto out;
	}
	if (mv_pwrite_all(fd, b.p, b.len, 0) < 0) {
		mv_err_sys(err, MV_EIO, "write '%s/%s'", ml->dir, TMP_NAME);
		goto out;
	}
	if (fsync(fd) < 0) {
		mv_err_sys(err, MV_EIO, "fsync '%s/%s'", ml->dir, TMP_NAME);
		goto out;
	}
	if (renameat(ml->dirfd, TMP_NAME, ml->dirfd, LOG_NAME) < 0) {
		mv_err_sys(err, MV_EIO, "rename '%s/%s'", ml->dir, TMP_NAME);
		goto out;
	}
	/* From here on fd is meta.log, whatever else fails. */
	if (ml->logfd >= 0)
		close(ml->logfd);
	ml->logfd = fd;
	ml->logsize = b.len;
	fd = -1;
	if (fsync(ml->dirfd) < 0) {
		mv_err_sys(err, MV_EIO, "fsync '%s'", ml->dir);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(ml->dirfd, TMP_NAME, 0);
	}
	free(b.p);
	return rc;
}

static uint64_t snapshot_size(const struct meta_local *ml)
{
	return HDR_LEN + REC_HDR + 4 + REV_OP * (1 + ml->nleases) + ml->live +
	       PUTX_EXTRA * ml->nkeys;
}

/* Compact when the log is 4x the live data and over 1 MiB. */
static void maybe_compact(struct meta_local *ml)
{
	if (ml->logsize < COMPACT_MIN || ml->logsize < ml->compact_at ||
	    ml->logsize < COMPACT_RATIO * snapshot_size(ml))
		return;
	if (write_snapshot(ml, NULL) == 0)
		ml->compactions++;
	else
		ml->compact_at = ml->logsize + COMPACT_MIN;
}

/* 1 if a record with a good length and checksum starts at off. */
static int rec_valid(const unsigned char *p, uint64_t size, uint64_t off)
{
	uint32_t len;

	if (size - off < REC_HDR)
		return 0;
	len = get_le32(p + off);
	return len >= 4 && len <= size - off - REC_HDR &&
	       mv_crc32c(0, p + off + REC_HDR, len) == get_le32(p + off + 4);
}

/* The offset of the first valid record at or after from, or 0. */
static uint64_t next_valid(const unsigned char *p, uint64_t size,
			   uint64_t from)
{
	for (uint64_t off = from; off + REC_HDR <= size; off++)
		if (rec_valid(p, size, off))
			return off;
	return 0;
}

/*
 * Read meta.log into the map.  A bad record that runs to the end of the
 * file, with no valid record after it, is a torn tail (a crash during the
 * last append) and is cut; one followed by a valid record is damage, and
 * MV_EDATA with the file left as it is.
 */
static int replay(struct meta_local *ml, struct mv_err *err)
{
	const unsigned char *p = NULL;
	struct stat st;
	uint64_t off, size;
	int rc = MV_EIO;

	if (fstat(ml->logfd, &st) < 0) {
		mv_err_sys(err, MV_EIO, "stat '%s/%s'", ml->dir, LOG_NAME);
		goto out;
	}
	size = st.st_size;
	if (size == 0) {
		/* Created by hand, or by a tool: treat as new. */
		rc = write_snapshot(ml, err);
		goto out;
	}
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, ml->logfd, 0);
	if (p == MAP_FAILED) {
		p = NULL;
		mv_err_sys(err, MV_EIO, "mmap '%s/%s'", ml->dir, LOG_NAME);
		goto out;
	}
	if (size < HDR_LEN || memcmp(p, MAGIC, 6)) {
		rc = mv_err_set(err, MV_EDATA, "'%s/%s': not an mv metadata "
				"log", ml->dir, LOG_NAME);
		goto out;
	}
	if ((p[6] | p[7] << 8) > MV_FORMAT_VERSION) {
		rc = mv_err_set(err, MV_EDATA, "'%s/%s': format version %d "
				"is newer than %d", ml->dir, LOG_NAME,
				p[6] | p[7] << 8, MV_FORMAT_VERSION);
		goto out;
	}
	for (off = HDR_LEN; size - off >= REC_HDR; ) {
		uint32_t len = get_le32(p + off);

		if (!rec_valid(p, size, off))
			break;
		rc = replay_payload(ml, p + off + REC_HDR, len, off, err);
		if (rc < 0)
			goto out;
		off += REC_HDR + len;
	}
	if (off < size) {
		uint64_t next = next_valid(p, size, off + 1);

		/*
		 * A valid record after the bad one: the log is damaged, not
		 * torn.  Cutting it would drop committed transactions (and
		 * the node would then delete the files they name), so refuse
		 * and touch nothing.
		 */
		if (next) {
			rc = mv_err_set(err, MV_EDATA, "'%s/%s': damaged "
					"record at byte offset %llu (a valid "
					"record follows at %llu); not opening "
					"it, nothing was changed", ml->dir,
					LOG_NAME, (unsigned long long)off,
					(unsigned long long)next);
			goto out;
		}
		/* A crash cut the last write short: drop it. */
		if (ftruncate(ml->logfd, off) < 0 ||
		    fdatasync(ml->logfd) < 0) {
			rc = mv_err_sys(err, MV_EIO, "truncate '%s/%s'",
					ml->dir, LOG_NAME);
			goto out;
		}
		ml->torn = size - off;
	}
	ml->logsize = off;
	rc = 0;
out:
	if (p)
		munmap((void *)p, size);
	return rc;
}

static void local_close(void *impl)
{
	struct meta_local *ml = impl;

	if (!ml)
		return;
	if (ml->lease_thr_on) {
		pthread_mutex_lock(&ml->mu);
		ml->stopping = 1;
		pthread_cond_broadcast(&ml->lease_cv);
		pthread_mutex_unlock(&ml->mu);
		pthread_join(ml->lease_thr, NULL);
	}
	hist_clear_to(ml, ml->nhist);
	free(ml->hist);
	free(ml->leases);
	tree_free(ml->root);
	if (ml->logfd >= 0)
		close(ml->logfd);
	if (ml->lockfd >= 0)
		close(ml->lockfd);
	if (ml->dirfd >= 0)
		close(ml->dirfd);
	pthread_cond_destroy(&ml->changed);
	pthread_cond_destroy(&ml->lease_cv);
	pthread_mutex_destroy(&ml->mu);
	free(ml->dir);
	free(ml);
}

static void kv_of(const struct ent *e, struct mv_meta_kv *kv)
{
	kv->key = e->key;
	kv->val = e->val;
	kv->vlen = e->vlen;
	kv->create_rev = e->create_rev;
	kv->mod_rev = e->mod_rev;
	kv->version = e->version;
	kv->lease = e->lease;
}

static int local_get(void *impl, const char *key,
		     int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		     struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct mv_meta_kv kv;
	struct ent *e;
	int rc;

	(void)err;
	pthread_mutex_lock(&ml->mu);
	e = tree_get(ml->root, key, strlen(key));
	if (e)
		ent_ref(e);
	pthread_mutex_unlock(&ml->mu);
	if (!e)
		return 1;
	kv_of(e, &kv);
	rc = fn(arg, &kv);
	ent_unref(e);
	return rc;
}

static int local_range(void *impl, const char *prefix,
		       int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		       int64_t *rev, struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct snap s = { NULL, 0, 0 };
	struct mv_meta_kv kv;
	size_t i = 0;
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	if (snap_collect(ml->root, prefix, strlen(prefix), &s) < 0)
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (rev)
		*rev = ml->rev;
	pthread_mutex_unlock(&ml->mu);
	for (; !rc && i < s.n; i++) {
		kv_of(s.v[i], &kv);
		rc = fn(arg, &kv);
	}
	for (i = 0; i < s.n; i++)
		ent_unref(s.v[i]);
	free(s.v);
	return rc;
}

static int cmp_holds(struct meta_local *ml, const struct mv_meta_cmp *c)
{
	struct ent *e = tree_get(ml->root, c->key, strlen(c->key));

	if (!c->val)
		return !e;
	return e && e->vlen == c->vlen && !memcmp(e->val, c->val, c->vlen);
}

static int rcmp_holds(struct meta_local *ml, const struct mv_meta_rcmp *c)
{
	struct ent *e = tree_get(ml->root, c->key, strlen(c->key));
	int64_t v = 0;

	if (e)
		v = c->target == MV_META_CMP_MOD ? e->mod_rev :
		    c->target == MV_META_CMP_CREATE ? e->create_rev :
		    e->version;
	switch (c->result) {
	case MV_META_EQ:
		return v == c->rev;
	case MV_META_NE:
		return v != c->rev;
	case MV_META_LT:
		return v < c->rev;
	default:
		return v > c->rev;
	}
}

/*
 * Append a record whole and durably at the end of the log.  When that
 * fails, whether it reached the disk is unknown: cut the log back to the
 * last good record, durably, and go on taking writes (the disk may have
 * room again by the next one).  If even that fails, the end of the log is
 * unknown: take no more writes.
 */
static int log_append(struct meta_local *ml, const unsigned char *rec,
		      size_t len, struct mv_err *err)
{
	int rc;

	if (ml->broken)
		return mv_err_set(err, MV_EIO, "'%s/%s': an earlier write "
				  "failed and could not be cut off; reopen "
				  "the store", ml->dir, LOG_NAME);
	if (mv_pwrite_all(ml->logfd, rec, len, ml->logsize) < 0) {
		rc = mv_err_sys(err, MV_EIO, "write '%s/%s'", ml->dir,
				LOG_NAME);
		goto fail;
	}
	if (fdatasync(ml->logfd) < 0) {
		rc = mv_err_sys(err, MV_EIO, "fdatasync '%s/%s'", ml->dir,
				LOG_NAME);
		goto fail;
	}
	ml->logsize += len;
	return 0;
fail:
	if (ftruncate(ml->logfd, ml->logsize) < 0 ||
	    fdatasync(ml->logfd) < 0)
		ml->broken = 1;
	return rc;
}

/* 0 when ops only delete absent keys: etcd then takes no revision. */
static int txn_changes(struct meta_local *ml, const struct mv_meta_op *ops,
		       size_t nops)
{
	for (size_t i = 0; i < nops; i++) {
		size_t klen = strlen(ops[i].key);

		if (ops[i].type == MV_META_PUT ||
		    (ops[i].type == MV_META_DEL &&
		     tree_get(ml->root, ops[i].key, klen)) ||
		    (ops[i].type == MV_META_DELPREFIX &&
		     tree_first(ml->root, ops[i].key, klen)))
			return 1;
	}
	return 0;
}

static int local_txn(void *impl, struct mv_meta_req *req, struct mv_err *err)
{
	struct meta_local *ml = impl;
	const struct mv_meta_op *ops = req->ops;
	size_t nops = req->nops;
	struct ent **ents = NULL;
	struct wb b = { NULL, 0, 0, 0 };
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	req->rev = ml->rev;
	for (size_t i = 0; i < req->ncmp; i++)
		if (!cmp_holds(ml, &req->cmps[i])) {
			rc = MV_META_CMPFAIL;
			goto out;
		}
	for (size_t i = 0; i < req->nrcmp; i++)
		if (!rcmp_holds(ml, &req->rcmps[i])) {
			rc = MV_META_CMPFAIL;
			goto out;
		}
	if (!nops)
		goto out;
	for (size_t i = 0; req->leases && i < nops; i++)
		if (req->leases[i] && !lease_find(ml, req->leases[i])) {
			rc = mv_err_set(err, MV_ESERVER, "lease %lld not "
					"found", (long long)req->leases[i]);
			goto out;
		}
	if (!txn_changes(ml, ops, nops))
		goto out;
	if (!(ents = calloc(nops, sizeof(*ents))))
		goto nomem;
	wb_rec_start(&b);
	wb_op64(&b, T_REV, ml->rev + 1, ml->next_lease, 1);
	for (size_t i = 0; i < nops; i++) {
		const struct mv_meta_op *o = &ops[i];
		size_t klen = strlen(o->key);
		int64_t lease = req->leases ? req->leases[i] : 0;

		wb_op(&b, lease ? T_PUTL : (int)o->type, o->key, klen, o->val,
		      o->vlen);
		if (lease)
			wb_u64(&b, lease);
		if (o->type != MV_META_PUT)
			continue;
		ents[i] = ent_new(o->key, klen, o->val, o->vlen);
		if (!ents[i])
			goto nomem;
		ents[i]->lease = lease;
	}
	if (wb_rec_end(&b, 0, 1 + nops) < 0)
		goto nomem;
	if ((rc = log_append(ml, b.p, b.len, err)) < 0)
		goto out;
	ml->rev++;
	for (size_t i = 0; i < nops; i++) {
		const struct mv_meta_op *o = &ops[i];

		if (o->type == MV_META_PUT) {
			apply_put(ml, ents[i], ml->rev);
			ents[i] = NULL;
		} else if (o->type == MV_META_DEL) {
			apply_del(ml, o->key, strlen(o->key), ml->rev);
		} else {
			apply_delprefix(ml, o->key, strlen(o->key), ml->rev);
		}
	}
	ml->txns++;
	req->rev = ml->rev;
	pthread_cond_broadcast(&ml->changed);
	maybe_compact(ml);
	goto out;
nomem:
	rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
out:
	pthread_mutex_unlock(&ml->mu);
	if (ents)
		for (size_t i = 0; i < nops; i++)
			ent_unref(ents[i]);
	free(ents);
	free(b.p);
	return rc;
}

/*
 * Revoke lease id: one txn deleting its keys, at a revision of its own;
 * as etcd, none when it has no key (the record then has no rev op).
 */
static int revoke_locked(struct meta_local *ml, int64_t id,
			 struct mv_err *err)
{
	struct snap s = { NULL, 0, 0 };
	struct wb b = { NULL, 0, 0, 0 };
	uint32_t nops = 1;
	int rc;

	if (snap_collect(ml->root, "", 0, &s) < 0)
		goto nomem;
	for (size_t i = 0; i < s.n; i++)
		nops += s.v[i]->lease == id;
	wb_rec_start(&b);
	if (nops > 1)
		wb_op64(&b, T_REV, ml->rev + 1, ml->next_lease, 1);
	wb_op64(&b, T_REVOKE, id, 0, 0);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i]->lease == id)
			wb_op(&b, MV_META_DEL, s.v[i]->key, s.v[i]->klen,
			      NULL, 0);
	if (wb_rec_end(&b, 0, nops + (nops > 1)) < 0)
		goto nomem;
	if ((rc = log_append(ml, b.p, b.len, err)) < 0)
		goto out;
	ml->rev += nops > 1;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i]->lease == id)
			apply_del(ml, s.v[i]->key, s.v[i]->klen, ml->rev);
	lease_remove(ml, id);
	ml->txns++;
	pthread_cond_broadcast(&ml->changed);
	maybe_compact(ml);
	goto out;
nomem:
	rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
out:
	for (size_t i = 0; i < s.n; i++)
		ent_unref(s.v[i]);
	free(s.v);
	free(b.p);
	return rc;
}

/* Revoke every expired lease; the earliest deadline left, or INT64_MAX. */
static int64_t expire_locked(struct meta_local *ml)
{
	int64_t now = mv_mono_ms(), next = INT64_MAX;

	for (size_t i = 0; i < ml->nleases;) {
		struct lease *l = &ml->leases[i];

		if (l->deadline > now) {
			if (l->deadline < next)
				next = l->deadline;
			i++;
		} else if (revoke_locked(ml, l->id, NULL) < 0) {
			/* Cannot write now: try again in a second. */
			l->deadline = now + 1000;
			i++;
		}
	}
	return next;
}

static void *lease_main(void *arg)
{
	struct meta_local *ml = arg;
	struct timespec ts;

	pthread_mutex_lock(&ml->mu);
	while (!ml->stopping) {
		int64_t next = expire_locked(ml);

		if (next == INT64_MAX) {
			pthread_cond_wait(&ml->lease_cv, &ml->mu);
			continue;
		}
		mv_mono_ts(next, &ts);
		pthread_cond_timedwait(&ml->lease_cv, &ml->mu, &ts);
	}
	pthread_mutex_unlock(&ml->mu);
	return NULL;
}

/* Start the expiry thread if leases exist and it is not running. */
static int lease_thread(struct meta_local *ml, struct mv_err *err)
{
	int e;

	if (ml->lease_thr_on || !ml->nleases)
		return 0;
	if ((e = pthread_create(&ml->lease_thr, NULL, lease_main, ml))) {
		errno = e;
		return mv_err_sys(err, MV_EINTERNAL, "start the lease thread");
	}
	ml->lease_thr_on = 1;
	return 0;
}

static int local_lease_grant(void *impl, int64_t ttl_ms, int64_t *id,
			     struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct wb b = { NULL, 0, 0, 0 };
	int64_t n;
	int rc;

	pthread_mutex_lock(&ml->mu);
	n = ml->next_lease > 0 ? ml->next_lease : 1;
	wb_rec_start(&b);
	wb_op64(&b, T_GRANT, n, ttl_ms, 1);
	if (wb_rec_end(&b, 0, 1) < 0) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = log_append(ml, b.p, b.len, err)) < 0)
		goto out;
	if (lease_add(ml, n, ttl_ms) < 0) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	*id = n;
	pthread_cond_broadcast(&ml->lease_cv);
	rc = lease_thread(ml, err);
out:
	pthread_mutex_unlock(&ml->mu);
	free(b.p);
	return rc;
}

static int lease_missing(int64_t id, struct mv_err *err)
{
	return mv_err_set(err, MV_ESERVER, "lease %lld not found",
			  (long long)id);
}

static int local_lease_keepalive(void *impl, int64_t id, struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct lease *l;
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	expire_locked(ml);
	if (!(l = lease_find(ml, id)))
		rc = lease_missing(id, err);
	else
		l->deadline = mv_mono_ms() + l->ttl_ms;
	pthread_mutex_unlock(&ml->mu);
	return rc;
}

static int local_lease_revoke(void *impl, int64_t id, struct mv_err *err)
{
	struct meta_local *ml = impl;
	int rc;

	pthread_mutex_lock(&ml->mu);
	expire_locked(ml);
	if (!lease_find(ml, id))
		rc = lease_missing(id, err);
	else
		rc = revoke_locked(ml, id, err);
	pthread_mutex_unlock(&ml->mu);
	return rc;
}

static int local_watch(void *impl, const char *prefix, int64_t from,
		       int timeout_ms,
		       int (*fn)(void *, const struct mv_meta_event *),
		       void *arg, int64_t *next, struct mv_err *err)
{
	struct meta_local *ml = impl;
	size_t plen = strlen(prefix), nev = 0, cap = 0;
	struct hev *evs = NULL;
	struct timespec ts;
	int rc = 0;

	mv_mono_ts(mv_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), &ts);
	pthread_mutex_lock(&ml->mu);
	if (!from)
		from = ml->rev + 1;
	for (;;) {
		size_t lo = 0, hi = ml->nhist;

		if (from <= ml->compact_rev) {
			rc = MV_META_COMPACTED;
			break;
		}
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (ml->hist[mid].rev < from)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < ml->nhist; lo++) {
			struct hev *h = &ml->hist[lo];

			if (prefix_cmp(h->e, prefix, plen))
				continue;
			if (nev == cap) {
				size_t c = cap ? 2 * cap : 16;
				struct hev *v = realloc(evs, c * sizeof(*v));

				if (!v) {
					rc = mv_err_set(err, MV_EINTERNAL,
							"out of memory");
					goto out;
				}
				evs = v;
				cap = c;
			}
			ent_ref(h->e);
			evs[nev++] = *h;
		}
		if (nev || !timeout_ms)
			break;
		if (timeout_ms < 0)
			pthread_cond_wait(&ml->changed, &ml->mu);
		else if (pthread_cond_timedwait(&ml->changed, &ml->mu, &ts) ==
			 ETIMEDOUT)
			timeout_ms = 0;	/* one last look */
	}
	if (next)
		*next = ml->rev + 1 > from ? ml->rev + 1 : from;
out:
	pthread_mutex_unlock(&ml->mu);
	for (size_t i = 0; i < nev; i++) {
		struct mv_meta_event ev;

		if (!rc) {
			ev.type = evs[i].type;
			kv_of(evs[i].e, &ev.kv);
			ev.kv.mod_rev = evs[i].rev;
			if (ev.type == MV_META_DEL) {
				ev.kv.val = "";
				ev.kv.vlen = 0;
				ev.kv.create_rev = ev.kv.version = 0;
				ev.kv.lease = 0;
			}
			rc = fn(arg, &ev);
		}
		ent_unref(evs[i].e);
	}
	free(evs);
	return rc;
}

static int local_compact(void *impl, int64_t rev, struct mv_err *err)
{
	struct meta_local *ml = impl;
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	if (rev > ml->rev)
		rc = mv_err_set(err, MV_EUSAGE, "cannot compact to revision "
				"%lld, past the current %lld", (long long)rev,
				(long long)ml->rev);
	else
		hist_trim(ml, rev);
	pthread_mutex_unlock(&ml->mu);
	return rc;
}

static int local_stats(void *impl, struct mv_meta_stats *st,
		       struct mv_err *err)
{
	struct meta_local *ml = impl;

	pthread_mutex_lock(&ml->mu);
	st->keys = ml->nkeys;
	st->bytes = ml->live;
	st->log_bytes = ml->logsize;
	st->torn_bytes = ml->torn;
	st->compactions = ml->compactions;
	st->txns = ml->txns;
	st->revision = ml->rev;
	st->compact_revision = ml->compact_rev;
	st->leases = ml->nleases;
	pthread_mutex_unlock(&ml->mu);
	(void)err;
	return 0;
}

static const struct mv_meta_ops local_ops = {
	.name = "local",
	.get = local_get,
	.range = local_range,
	.txn = local_txn,
	.watch = local_watch,
	.compact = local_compact,
	.lease_grant = local_lease_grant,
	.lease_keepalive = local_lease_keepalive,
	.lease_revoke = local_lease_revoke,
	.stats = local_stats,
	.close = local_close,
};

struct mv_meta *mv_meta_open_local(const char *dir, struct mv_err *err)
{
	struct meta_local *ml = calloc(1, sizeof(*ml));

	if (!ml || !(ml->dir = strdup(dir))) {
		free(ml);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	ml->dirfd = ml->lockfd = ml->logfd = -1;
	ml->next_lease = 1;
	pthread_mutex_init(&ml->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ml->changed, &ca);
		pthread_cond_init(&ml->lease_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (mv_mkdir_p(dir, err) < 0)
		goto fail;
	ml->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ml->dirfd < 0) {
		mv_err_sys(err, MV_EIO, "open '%s'", dir);
		goto fail;
	}
	ml->lockfd = openat(ml->dirfd, LOCK_NAME, O_RDWR | O_CREAT |
			    O_CLOEXEC, 0600);
	if (ml->lockfd < 0 || fchmod(ml->lockfd, 0600) < 0) {
		mv_err_sys(err, MV_EIO, "open '%s/%s'", dir, LOCK_NAME);
		goto fail;
	}
	if (flock(ml->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			mv_err_set(err, MV_EAGAIN, "data directory '%s' is in "
				   "use by another process", dir);
		else
			mv_err_sys(err, MV_EIO, "lock '%s/%s'", dir,
				   LOCK_NAME);
		goto fail;
	}
	/* A compaction that crashed before its rename. */
	if (unlinkat(ml->dirfd, TMP_NAME, 0) < 0 && errno != ENOENT) {
		mv_err_sys(err, MV_EIO, "unlink '%s/%s'", dir, TMP_NAME);
		goto fail;
	}
	ml->logfd = openat(ml->dirfd, LOG_NAME, O_RDWR | O_CLOEXEC);
	if (ml->logfd < 0 && errno == ENOENT) {
		if (write_snapshot(ml, err) < 0)
			goto fail;
	} else if (ml->logfd < 0) {
		mv_err_sys(err, MV_EIO, "open '%s/%s'", dir, LOG_NAME);
		goto fail;
	} else if (replay(ml, err) < 0) {
		goto fail;
	} else if (fchmod(ml->logfd, 0600) < 0) {
		/* One written before logs were 0600. */
		mv_err_sys(err, MV_EIO, "chmod '%s/%s'", dir, LOG_NAME);
		goto fail;
	}
	maybe_compact(ml);
	if (lease_thread(ml, err) < 0)
		goto fail;
	return mv_meta_new(&local_ops, ml, err);
fail:
	local_close(ml);
	return NULL;
}

/*
 * meta_local.c - the metadata store in a local directory: the whole map in
 * memory as an AVL tree, made durable by an append-only log, dir/meta.log,
 * that is replayed at open and compacted into a snapshot when it grows.
 * It is for the embedded node; a cluster shares etcd instead.
 *
 * meta.log is an 8-byte header ("MVMETA", u16 format version) and then one
 * record per transaction: u32 payload length, u32 crc32c of the payload,
 * payload.  A payload is u32 nops and nops ops, each u8 type, u32 key
 * length, key, and for a put u32 value length, value.  Integers are
 * little-endian.  A snapshot is the header and one record of puts.
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
	size_t klen, vlen;
	char *val;		/* in key[], after the key's NUL */
	char key[];		/* key, NUL, value, NUL */
};

struct meta_local {
	pthread_mutex_t mu;	/* guards everything below */
	char *dir;
	int dirfd, lockfd, logfd;
	struct ent *root;
	uint64_t nkeys;
	uint64_t live;		/* the ops of a snapshot, encoded */
	uint64_t logsize;	/* end of the last good record */
	uint64_t compact_at;	/* no compaction before this log size */
	int broken;		/* a write failed: refuse writes */
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

static struct ent *ent_new(const char *key, size_t klen, const void *val,
			   size_t vlen)
{
	struct ent *e = malloc(sizeof(*e) + klen + vlen + 2);

	if (!e)
		return NULL;
	e->left = e->right = NULL;
	e->height = 1;
	e->refs = 1;
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

static void apply_put(struct meta_local *ml, struct ent *n)
{
	struct ent *old = NULL;

	ml->root = tree_put(ml->root, n, &old);
	ml->live += op_size(n->klen, n->vlen);
	if (old) {
		ml->live -= op_size(old->klen, old->vlen);
		ent_unref(old);
	} else {
		ml->nkeys++;
	}
}

static void apply_del(struct meta_local *ml, const char *key, size_t klen)
{
	struct ent *old = NULL;

	ml->root = tree_del(ml->root, key, klen, &old);
	if (old) {
		ml->live -= op_size(old->klen, old->vlen);
		ml->nkeys--;
		ent_unref(old);
	}
}

static void apply_delprefix(struct meta_local *ml, const char *p, size_t plen)
{
	struct ent *e;

	while ((e = tree_first(ml->root, p, plen))) {
		ent_ref(e);
		apply_del(ml, e->key, e->klen);
		ent_unref(e);
	}
}

/* A payload being read; fields point into it. */
struct rd {
	const unsigned char *p, *end;
};

struct rd_op {
	int type;
	const char *key, *val;
	size_t klen, vlen;
};

/* Decode the next op; -1 when the payload is malformed. */
static int rd_op(struct rd *r, struct rd_op *o)
{
	size_t left = r->end - r->p;

	if (left < 5)
		return -1;
	o->type = r->p[0];
	o->klen = get_le32(r->p + 1);
	o->key = (const char *)r->p + 5;
	o->val = NULL;
	o->vlen = 0;
	left -= 5;
	if (o->type > MV_META_DELPREFIX || o->klen > left ||
	    o->klen > MV_META_KEY_MAX ||
	    (!o->klen && o->type != MV_META_DELPREFIX) ||
	    memchr(o->key, '\0', o->klen))
		return -1;
	r->p += 5 + o->klen;
	left -= o->klen;
	if (o->type != MV_META_PUT)
		return 0;
	if (left < 4)
		return -1;
	o->vlen = get_le32(r->p);
	if (o->vlen > left - 4)
		return -1;
	o->val = (const char *)r->p + 4;
	r->p += 4 + o->vlen;
	return 0;
}

/* Check a replayed payload whole, then apply it. */
static int replay_payload(struct meta_local *ml, const unsigned char *p,
			  size_t len, uint64_t off, struct mv_err *err)
{
	struct rd r = { p + 4, p + len };
	struct rd_op o;
	uint32_t nops = get_le32(p);

	for (uint32_t i = 0; i < nops; i++)
		if (rd_op(&r, &o) < 0)
			goto bad;
	if (r.p != r.end)
		goto bad;
	r.p = p + 4;
	for (uint32_t i = 0; i < nops; i++) {
		struct ent *e;

		rd_op(&r, &o);
		switch (o.type) {
		case MV_META_PUT:
			e = ent_new(o.key, o.klen, o.val, o.vlen);
			if (!e)
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			apply_put(ml, e);
			break;
		case MV_META_DEL:
			apply_del(ml, o.key, o.klen);
			break;
		default:
			apply_delprefix(ml, o.key, o.klen);
			break;
		}
	}
	return 0;
bad:
	return mv_err_set(err, MV_EDATA,
			  "'%s/%s': corrupt record at offset %llu", ml->dir,
			  LOG_NAME, (unsigned long long)off);
}

static unsigned char *enc_op(unsigned char *p, int type, const char *key,
			     size_t klen, const void *val, size_t vlen)
{
	*p++ = type;
	put_le32(p, klen);
	memcpy(p + 4, key, klen);
	p += 4 + klen;
	if (type == MV_META_PUT) {
		put_le32(p, vlen);
		if (vlen)
			memcpy(p + 4, val, vlen);
		p += 4 + vlen;
	}
	return p;
}

static void enc_header(unsigned char *p)
{
	memcpy(p, MAGIC, 6);
	p[6] = MV_FORMAT_VERSION & 0xff;
	p[7] = MV_FORMAT_VERSION >> 8;
}

/* Fill a record's length and checksum in front of its payload. */
static void enc_record(unsigned char *rec, size_t plen)
{
	put_le32(rec, plen);
	put_le32(rec + 4, mv_crc32c(0, rec + REC_HDR, plen));
}

static unsigned char *enc_tree(unsigned char *p, const struct ent *t)
{
	for (; t; t = t->right) {
		p = enc_tree(p, t->left);
		p = enc_op(p, MV_META_PUT, t->key, t->klen, t->val, t->vlen);
	}
	return p;
}

/*
 * Replace meta.log with a snapshot of the map: write meta.log.tmp, sync
 * it, rename it over meta.log and sync the directory.  On success logfd is
 * the new file.
 */
static int write_snapshot(struct meta_local *ml, struct mv_err *err)
{
	size_t plen = ml->nkeys ? 4 + ml->live : 0;
	size_t len = HDR_LEN + (plen ? REC_HDR + plen : 0);
	unsigned char *buf = NULL;
	int fd = -1, rc = MV_EIO;

	if (plen > UINT32_MAX) {
		rc = mv_err_set(err, MV_EINTERNAL, "'%s/%s': metadata too "
				"large to compact", ml->dir, LOG_NAME);
		goto out;
	}
	if (!(buf = malloc(len))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	enc_header(buf);
	if (plen) {
		unsigned char *end;

		put_le32(buf + HDR_LEN + REC_HDR, ml->nkeys);
		end = enc_tree(buf + HDR_LEN + REC_HDR + 4, ml->root);
		if ((size_t)(end - buf) != len)
			MV_BUG("snapshot of %zu bytes, expected %zu",
			       (size_t)(end - buf), len);
		enc_record(buf + HDR_LEN, plen);
	}
	fd = openat(ml->dirfd, TMP_NAME, O_RDWR | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0644);
	if (fd < 0) {
		mv_err_sys(err, MV_EIO, "open '%s/%s'", ml->dir, TMP_NAME);
		goto out;
	}
	if (mv_pwrite_all(fd, buf, len, 0) < 0) {
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
	ml->logsize = len;
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
	free(buf);
	return rc;
}

static uint64_t snapshot_size(const struct meta_local *ml)
{
	return HDR_LEN + (ml->nkeys ? REC_HDR + 4 + ml->live : 0);
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

/* Read meta.log into the map, cutting a torn tail. */
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

		if (len < 4 || len > size - off - REC_HDR ||
		    mv_crc32c(0, p + off + REC_HDR, len) !=
		    get_le32(p + off + 4))
			break;
		rc = replay_payload(ml, p + off + REC_HDR, len, off, err);
		if (rc < 0)
			goto out;
		off += REC_HDR + len;
	}
	if (off < size) {
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
	tree_free(ml->root);
	if (ml->logfd >= 0)
		close(ml->logfd);
	if (ml->lockfd >= 0)
		close(ml->lockfd);
	if (ml->dirfd >= 0)
		close(ml->dirfd);
	pthread_mutex_destroy(&ml->mu);
	free(ml->dir);
	free(ml);
}

static int local_get(void *impl, const char *key, char **val, size_t *vlen,
		     struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct ent *e;
	int rc = 1;

	pthread_mutex_lock(&ml->mu);
	e = tree_get(ml->root, key, strlen(key));
	if (e) {
		if (!(*val = malloc(e->vlen + 1))) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		memcpy(*val, e->val, e->vlen + 1);
		*vlen = e->vlen;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&ml->mu);
	return rc;
}

static int local_range(void *impl, const char *prefix,
		       int (*fn)(void *, const char *, const void *, size_t),
		       void *arg, struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct snap s = { NULL, 0, 0 };
	size_t i = 0;
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	if (snap_collect(ml->root, prefix, strlen(prefix), &s) < 0)
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	pthread_mutex_unlock(&ml->mu);
	for (; !rc && i < s.n; i++)
		rc = fn(arg, s.v[i]->key, s.v[i]->val, s.v[i]->vlen);
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

static int local_txn(void *impl, const struct mv_meta_cmp *cmps, size_t ncmp,
		     const struct mv_meta_op *ops, size_t nops,
		     struct mv_err *err)
{
	struct meta_local *ml = impl;
	struct ent **ents = NULL;
	unsigned char *rec = NULL, *p;
	size_t plen = 4, len;
	int rc = 0;

	pthread_mutex_lock(&ml->mu);
	for (size_t i = 0; i < ncmp; i++)
		if (!cmp_holds(ml, &cmps[i])) {
			rc = MV_META_CMPFAIL;
			goto out;
		}
	if (!nops)
		goto out;
	if (ml->broken) {
		rc = mv_err_set(err, MV_EIO, "'%s/%s': an earlier write "
				"failed; reopen the store", ml->dir, LOG_NAME);
		goto out;
	}
	if (!(ents = calloc(nops, sizeof(*ents))))
		goto nomem;
	for (size_t i = 0; i < nops; i++) {
		size_t klen = strlen(ops[i].key);

		plen += 5 + klen;
		if (ops[i].type != MV_META_PUT)
			continue;
		plen += 4 + ops[i].vlen;
		ents[i] = ent_new(ops[i].key, klen, ops[i].val, ops[i].vlen);
		if (!ents[i])
			goto nomem;
	}
	len = REC_HDR + plen;
	if (!(rec = malloc(len)))
		goto nomem;
	put_le32(rec + REC_HDR, nops);
	p = rec + REC_HDR + 4;
	for (size_t i = 0; i < nops; i++)
		p = enc_op(p, ops[i].type, ops[i].key, strlen(ops[i].key),
			   ops[i].val, ops[i].vlen);
	enc_record(rec, plen);
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
	for (size_t i = 0; i < nops; i++) {
		const struct mv_meta_op *o = &ops[i];

		if (o->type == MV_META_PUT) {
			apply_put(ml, ents[i]);
			ents[i] = NULL;
		} else if (o->type == MV_META_DEL) {
			apply_del(ml, o->key, strlen(o->key));
		} else {
			apply_delprefix(ml, o->key, strlen(o->key));
		}
	}
	ml->txns++;
	maybe_compact(ml);
	goto out;
nomem:
	rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	goto out;
fail:
	/*
	 * Whether the record reached the disk is unknown: cut it off if we
	 * can, and take no more writes in any case.
	 */
	if (ftruncate(ml->logfd, ml->logsize) == 0)
		fdatasync(ml->logfd);
	ml->broken = 1;
out:
	pthread_mutex_unlock(&ml->mu);
	if (ents)
		for (size_t i = 0; i < nops; i++)
			ent_unref(ents[i]);
	free(ents);
	free(rec);
	return rc;
}

static void local_stats(void *impl, struct mv_meta_stats *st)
{
	struct meta_local *ml = impl;

	pthread_mutex_lock(&ml->mu);
	st->keys = ml->nkeys;
	st->bytes = ml->live;
	st->log_bytes = ml->logsize;
	st->torn_bytes = ml->torn;
	st->compactions = ml->compactions;
	st->txns = ml->txns;
	pthread_mutex_unlock(&ml->mu);
}

static const struct mv_meta_ops local_ops = {
	.name = "local",
	.get = local_get,
	.range = local_range,
	.txn = local_txn,
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
	pthread_mutex_init(&ml->mu, NULL);
	if (mv_mkdir_p(dir, err) < 0)
		goto fail;
	ml->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ml->dirfd < 0) {
		mv_err_sys(err, MV_EIO, "open '%s'", dir);
		goto fail;
	}
	ml->lockfd = openat(ml->dirfd, LOCK_NAME, O_RDWR | O_CREAT |
			    O_CLOEXEC, 0644);
	if (ml->lockfd < 0) {
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
	}
	maybe_compact(ml);
	return mv_meta_new(&local_ops, ml, err);
fail:
	local_close(ml);
	return NULL;
}

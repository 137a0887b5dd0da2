/*
 * meta.c - the metadata store's public functions: check the arguments once
 * for every implementation, then dispatch through struct mv_meta_ops.  No
 * storage logic lives here; see meta_local.c.
 */
#include <stdlib.h>
#include <string.h>
#include "meta.h"

struct mv_meta {
	const struct mv_meta_ops *ops;
	void *impl;
};

struct mv_meta *mv_meta_new(const struct mv_meta_ops *ops, void *impl,
			    struct mv_err *err)
{
	struct mv_meta *m = malloc(sizeof(*m));

	if (!m) {
		ops->close(impl);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	m->ops = ops;
	m->impl = impl;
	return m;
}

/* Length of a key, or -1 (err set) when it is NULL, empty or too long. */
static long key_check(const char *key, int empty_ok, struct mv_err *err)
{
	size_t n;

	if (!key)
		return mv_err_set(err, MV_EUSAGE, "metadata key is NULL");
	n = strnlen(key, MV_META_KEY_MAX + 1);
	if (n > MV_META_KEY_MAX)
		return mv_err_set(err, MV_EUSAGE,
				  "metadata key '%.64s...' is longer than %d",
				  key, MV_META_KEY_MAX);
	if (!n && !empty_ok)
		return mv_err_set(err, MV_EUSAGE, "metadata key is empty");
	return (long)n;
}

int mv_meta_get_kv(struct mv_meta *m, const char *key,
		   int (*fn)(void *arg, const struct mv_meta_kv *kv),
		   void *arg, struct mv_err *err)
{
	long rc;

	if ((rc = key_check(key, 0, err)) < 0)
		return (int)rc;
	return m->ops->get(m->impl, key, fn, arg, err);
}

struct get_copy {
	char *val;
	size_t vlen;
	int64_t mod;
};

static int get_copy(void *arg, const struct mv_meta_kv *kv)
{
	struct get_copy *g = arg;

	if (!(g->val = malloc(kv->vlen + 1)))
		return MV_EINTERNAL;
	memcpy(g->val, kv->val, kv->vlen + 1);
	g->vlen = kv->vlen;
	g->mod = kv->mod_rev;
	return 0;
}

int mv_meta_get_rev(struct mv_meta *m, const char *key, char **val,
		    size_t *vlen, int64_t *mod, struct mv_err *err)
{
	struct get_copy g = { NULL, 0, 0 };
	int rc;

	*val = NULL;
	*vlen = 0;
	if (mod)
		*mod = 0;
	rc = mv_meta_get_kv(m, key, get_copy, &g, err);
	if (rc == MV_EINTERNAL && !g.val)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (rc == 0) {
		*val = g.val;
		*vlen = g.vlen;
		if (mod)
			*mod = g.mod;
	}
	return rc;
}

int mv_meta_get(struct mv_meta *m, const char *key, char **val,
		size_t *vlen, struct mv_err *err)
{
	return mv_meta_get_rev(m, key, val, vlen, NULL, err);
}

int mv_meta_range_kv(struct mv_meta *m, const char *prefix,
		     int (*fn)(void *arg, const struct mv_meta_kv *kv),
		     void *arg, int64_t *rev, struct mv_err *err)
{
	long rc;

	if ((rc = key_check(prefix, 1, err)) < 0)
		return (int)rc;
	return m->ops->range(m->impl, prefix, fn, arg, rev, err);
}

struct range_plain {
	int (*fn)(void *arg, const char *key, const void *val, size_t vlen);
	void *arg;
};

static int range_plain(void *arg, const struct mv_meta_kv *kv)
{
	struct range_plain *r = arg;

	return r->fn(r->arg, kv->key, kv->val, kv->vlen);
}

int mv_meta_range(struct mv_meta *m, const char *prefix,
		  int (*fn)(void *arg, const char *key, const void *val,
			    size_t vlen),
		  void *arg, struct mv_err *err)
{
	struct range_plain r = { fn, arg };

	return mv_meta_range_kv(m, prefix, range_plain, &r, NULL, err);
}

/* 1 if the put key k is also touched by op o (etcd's duplicate key rule). */
static int overlaps(const char *k, const struct mv_meta_op *o)
{
	if (o->type == MV_META_DELPREFIX)
		return !strncmp(k, o->key, strlen(o->key));
	return !strcmp(k, o->key);
}

/* Refuse what etcd would refuse, so that both stores behave alike. */
static int txn_check(const struct mv_meta_req *req, struct mv_err *err)
{
	const struct mv_meta_cmp *cmps = req->cmps;
	const struct mv_meta_op *ops = req->ops;
	size_t ncmp = req->ncmp, nops = req->nops, bytes = 0;
	long n;

	if (ncmp + req->nrcmp > MV_META_TXN_OPS_MAX ||
	    nops > MV_META_TXN_OPS_MAX)
		return mv_err_set(err, MV_EUSAGE,
				  "metadata txn has more than %d compares "
				  "or ops", MV_META_TXN_OPS_MAX);
	if ((ncmp && !cmps) || (nops && !ops))
		return mv_err_set(err, MV_EUSAGE, "metadata txn array is NULL");
	if (req->nrcmp && !req->rcmps)
		return mv_err_set(err, MV_EUSAGE, "metadata txn array is NULL");
	for (size_t i = 0; i < ncmp; i++) {
		if ((n = key_check(cmps[i].key, 0, err)) < 0)
			return (int)n;
		bytes += (size_t)n + (cmps[i].val ? cmps[i].vlen : 0);
	}
	for (size_t i = 0; i < req->nrcmp; i++) {
		const struct mv_meta_rcmp *c = &req->rcmps[i];

		if ((n = key_check(c->key, 0, err)) < 0)
			return (int)n;
		if ((unsigned)c->target > MV_META_CMP_VERSION ||
		    (unsigned)c->result > MV_META_GT)
			return mv_err_set(err, MV_EUSAGE, "metadata compare "
					  "of '%s' is unknown", c->key);
		bytes += (size_t)n;
	}
	for (size_t i = 0; i < nops; i++) {
		const struct mv_meta_op *o = &ops[i];

		if (o->type != MV_META_PUT && o->type != MV_META_DEL &&
		    o->type != MV_META_DELPREFIX)
			return mv_err_set(err, MV_EUSAGE,
					  "metadata op type %d is unknown",
					  (int)o->type);
		n = key_check(o->key, o->type == MV_META_DELPREFIX, err);
		if (n < 0)
			return (int)n;
		bytes += (size_t)n;
		if (req->leases && req->leases[i] &&
		    (o->type != MV_META_PUT || req->leases[i] < 0))
			return mv_err_set(err, MV_EUSAGE, "metadata lease %lld "
					  "on '%s' is not for a put",
					  (long long)req->leases[i], o->key);
		if (o->type != MV_META_PUT)
			continue;
		if (!o->val && o->vlen)
			return mv_err_set(err, MV_EUSAGE,
					  "metadata value of '%s' is NULL",
					  o->key);
		if (o->vlen > MV_META_TXN_BYTES_MAX)
			goto big;
		bytes += o->vlen;
		for (size_t j = 0; j < nops; j++)
			if (j != i && overlaps(o->key, &ops[j]))
				return mv_err_set(err, MV_EUSAGE,
						  "metadata txn touches key "
						  "'%s' twice", o->key);
	}
	if (bytes > MV_META_TXN_BYTES_MAX)
		goto big;
	return 0;
big:
	return mv_err_set(err, MV_EUSAGE,
			  "metadata txn is larger than %u bytes",
			  MV_META_TXN_BYTES_MAX);
}

int mv_meta_txn_req(struct mv_meta *m, struct mv_meta_req *req,
		    struct mv_err *err)
{
	int rc;

	req->rev = 0;
	if ((rc = txn_check(req, err)) < 0)
		return rc;
	rc = m->ops->txn(m->impl, req, err);
	if (rc == MV_META_CMPFAIL)
		mv_err_set(err, MV_ESERVER, "compare failed");
	return rc;
}

int mv_meta_txn(struct mv_meta *m, const struct mv_meta_cmp *cmps,
		size_t ncmp, const struct mv_meta_op *ops, size_t nops,
		struct mv_err *err)
{
	struct mv_meta_req req = {
		.cmps = cmps, .ncmp = ncmp, .ops = ops, .nops = nops,
	};

	return mv_meta_txn_req(m, &req, err);
}

int mv_meta_watch(struct mv_meta *m, const char *prefix, int64_t from,
		  int timeout_ms,
		  int (*fn)(void *arg, const struct mv_meta_event *ev),
		  void *arg, int64_t *next, struct mv_err *err)
{
	struct mv_meta_stats st;
	int64_t n = from;
	long rc;

	if ((rc = key_check(prefix, 1, err)) < 0)
		return (int)rc;
	if (from < 0)
		return mv_err_set(err, MV_EUSAGE, "metadata watch from "
				  "revision %lld", (long long)from);
	rc = m->ops->watch(m->impl, prefix, from, timeout_ms, fn, arg, &n,
			   err);
	if (rc == MV_META_COMPACTED) {
		mv_meta_stats(m, &st, NULL);
		mv_err_set(err, MV_ESERVER, "required revision %lld has been "
			   "compacted (compacted at %lld)", (long long)from,
			   (long long)st.compact_revision);
	}
	if (next)
		*next = n;
	return (int)rc;
}

int mv_meta_compact(struct mv_meta *m, int64_t rev, struct mv_err *err)
{
	return m->ops->compact(m->impl, rev, err);
}

int mv_meta_lease_grant(struct mv_meta *m, int64_t ttl_ms, int64_t *id,
			struct mv_err *err)
{
	*id = 0;
	if (ttl_ms <= 0)
		return mv_err_set(err, MV_EUSAGE, "lease ttl %lld ms is not "
				  "positive", (long long)ttl_ms);
	return m->ops->lease_grant(m->impl, ttl_ms, id, err);
}

int mv_meta_lease_keepalive(struct mv_meta *m, int64_t id, struct mv_err *err)
{
	return m->ops->lease_keepalive(m->impl, id, err);
}

int mv_meta_lease_revoke(struct mv_meta *m, int64_t id, struct mv_err *err)
{
	return m->ops->lease_revoke(m->impl, id, err);
}

int mv_meta_revision(struct mv_meta *m, int64_t *rev, struct mv_err *err)
{
	struct mv_meta_stats st;
	int rc;

	*rev = 0;
	if (m->ops->revision)
		return m->ops->revision(m->impl, rev, err);
	rc = mv_meta_stats(m, &st, err);
	*rev = st.revision;
	return rc;
}

int mv_meta_put(struct mv_meta *m, const char *key, const void *val,
		size_t vlen, struct mv_err *err)
{
	struct mv_meta_op op = { MV_META_PUT, key, val, vlen };

	return mv_meta_txn(m, NULL, 0, &op, 1, err);
}

int mv_meta_del(struct mv_meta *m, const char *key, struct mv_err *err)
{
	struct mv_meta_op op = { MV_META_DEL, key, NULL, 0 };

	return mv_meta_txn(m, NULL, 0, &op, 1, err);
}

int mv_meta_stats(struct mv_meta *m, struct mv_meta_stats *st,
		  struct mv_err *err)
{
	memset(st, 0, sizeof(*st));
	return m->ops->stats ? m->ops->stats(m->impl, st, err) : 0;
}

void mv_meta_close(struct mv_meta *m)
{
	if (!m)
		return;
	m->ops->close(m->impl);
	free(m);
}

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

int mv_meta_get(struct mv_meta *m, const char *key, char **val,
		size_t *vlen, struct mv_err *err)
{
	long rc;

	*val = NULL;
	*vlen = 0;
	if ((rc = key_check(key, 0, err)) < 0)
		return (int)rc;
	return m->ops->get(m->impl, key, val, vlen, err);
}

int mv_meta_range(struct mv_meta *m, const char *prefix,
		  int (*fn)(void *arg, const char *key, const void *val,
			    size_t vlen),
		  void *arg, struct mv_err *err)
{
	long rc;

	if ((rc = key_check(prefix, 1, err)) < 0)
		return (int)rc;
	return m->ops->range(m->impl, prefix, fn, arg, err);
}

/* 1 if the put key k is also touched by op o (etcd's duplicate key rule). */
static int overlaps(const char *k, const struct mv_meta_op *o)
{
	if (o->type == MV_META_DELPREFIX)
		return !strncmp(k, o->key, strlen(o->key));
	return !strcmp(k, o->key);
}

/* Refuse what etcd would refuse, so that both stores behave alike. */
static int txn_check(const struct mv_meta_cmp *cmps, size_t ncmp,
		     const struct mv_meta_op *ops, size_t nops,
		     struct mv_err *err)
{
	size_t bytes = 0;
	long n;

	if (ncmp > MV_META_TXN_OPS_MAX || nops > MV_META_TXN_OPS_MAX)
		return mv_err_set(err, MV_EUSAGE,
				  "metadata txn has more than %d compares "
				  "or ops", MV_META_TXN_OPS_MAX);
	if ((ncmp && !cmps) || (nops && !ops))
		return mv_err_set(err, MV_EUSAGE, "metadata txn array is NULL");
	for (size_t i = 0; i < ncmp; i++) {
		if ((n = key_check(cmps[i].key, 0, err)) < 0)
			return (int)n;
		bytes += (size_t)n + (cmps[i].val ? cmps[i].vlen : 0);
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

int mv_meta_txn(struct mv_meta *m, const struct mv_meta_cmp *cmps,
		size_t ncmp, const struct mv_meta_op *ops, size_t nops,
		struct mv_err *err)
{
	int rc;

	if ((rc = txn_check(cmps, ncmp, ops, nops, err)) < 0)
		return rc;
	rc = m->ops->txn(m->impl, cmps, ncmp, ops, nops, err);
	if (rc == MV_META_CMPFAIL)
		mv_err_set(err, MV_ESERVER, "compare failed");
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
	(void)err;
	memset(st, 0, sizeof(*st));
	if (m->ops->stats)
		m->ops->stats(m->impl, st);
	return 0;
}

void mv_meta_close(struct mv_meta *m)
{
	if (!m)
		return;
	m->ops->close(m->impl);
	free(m);
}

/*
 * history.c - the time axis's records (DESIGN.md "The time axis"): every
 * flush of a collection writes, in its own transaction, the key
 * /<user>/<coll>/flush/<seq> (seq zero-padded, so that key order is flush
 * order) with its commit time and counts; node_history lists them and
 * node_history_prune gives back those older than history_retention.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "log.h"

void key_flush(char *out, size_t cap, const char *user, const char *coll,
	       uint64_t seq)
{
	snprintf(out, cap, "/%s/%s/flush/%020" PRIu64, user, coll, seq);
}

char *node_flush_json(int64_t time_ms, uint64_t inserted, uint64_t deleted,
		      int64_t rows)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "{\"time\":%" PRId64 ",\"inserted\":%"
		 PRIu64 ",\"deleted\":%" PRIu64 ",\"rows\":%" PRId64 "}",
		 time_ms, inserted, deleted, rows);
	return strdup(buf);
}

/* A record's value into r (seq from the key): 0, or -1 if malformed. */
static int rec_parse(const char *key, const void *val, size_t vlen,
		     struct node_flushrec *r)
{
	const char *leaf = strrchr(key, '/');
	json_t *j = json_loadb(val, vlen, 0, NULL), *t, *i, *d, *n;
	char *end;
	int rc = -1;

	if (!leaf || !json_is_object(j))
		goto out;
	r->seq = strtoull(leaf + 1, &end, 10);
	t = json_object_get(j, "time");
	i = json_object_get(j, "inserted");
	d = json_object_get(j, "deleted");
	n = json_object_get(j, "rows");
	if (*end || !json_is_integer(t) || !json_is_integer(i) ||
	    !json_is_integer(d) || !json_is_integer(n))
		goto out;
	r->time_ms = json_integer_value(t);
	r->inserted = (uint64_t)json_integer_value(i);
	r->deleted = (uint64_t)json_integer_value(d);
	r->rows = json_integer_value(n);
	rc = 0;
out:
	json_decref(j);
	return rc;
}

struct list_ctx {
	int (*fn)(void *arg, const struct node_flushrec *r);
	void *arg;
	struct mv_err *err;
};

static int list_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct list_ctx *lc = arg;
	struct node_flushrec r;

	if (rec_parse(key, val, vlen, &r) < 0)
		return mv_err_set(lc->err, MV_EDATA, "flush record '%s' is "
				  "damaged", key);
	return lc->fn(lc->arg, &r);
}

int node_history(struct node *nd, struct coll *c,
		 int (*fn)(void *arg, const struct node_flushrec *r),
		 void *arg, struct mv_err *err)
{
	struct list_ctx lc = { fn, arg, err };
	char pre[MV_SPATH];

	key_coll(pre, sizeof(pre), c->user, c->name, "flush/");
	return mv_meta_range(nd->meta, pre, list_cb, &lc, err);
}

/* Keys of the records older than the cutoff, oldest first. */
struct prune_ctx {
	int64_t cutoff;
	char (*keys)[MV_SPATH];
	size_t n, cap;
};

static int prune_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct prune_ctx *pc = arg;
	struct node_flushrec r;

	/* A damaged record is kept (and listed as damaged), never swept. */
	if (rec_parse(key, val, vlen, &r) < 0)
		return 0;
	if (r.time_ms >= pc->cutoff || pc->n == pc->cap)
		return 1;	/* in order: the rest are newer */
	snprintf(pc->keys[pc->n++], MV_SPATH, "%s", key);
	return 0;
}

void node_history_prune(struct node *nd, struct coll *c, int64_t now_ms)
{
	struct prune_ctx pc = { 0 };
	struct mv_meta_op ops[MV_META_TXN_OPS_MAX];
	struct mv_err e = { 0 };
	char pre[MV_SPATH];
	int rc;

	pc.cutoff = now_ms - nd->conf.history_retention * 1000;
	pc.cap = 4 * MV_META_TXN_OPS_MAX;	/* the rest next time */
	pc.keys = malloc(pc.cap * sizeof(*pc.keys));
	if (!pc.keys)
		return;
	key_coll(pre, sizeof(pre), c->user, c->name, "flush/");
	rc = mv_meta_range(nd->meta, pre, prune_cb, &pc, &e);
	for (size_t i = 0; rc >= 0 && i < pc.n; i += MV_META_TXN_OPS_MAX) {
		size_t n = pc.n - i < MV_META_TXN_OPS_MAX ?
			   pc.n - i : MV_META_TXN_OPS_MAX;

		for (size_t j = 0; j < n; j++)
			ops[j] = (struct mv_meta_op){ MV_META_DEL,
						      pc.keys[i + j], NULL, 0 };
		rc = mv_meta_txn(nd->meta, NULL, 0, ops, n, &e);
	}
	if (rc < 0)
		log_warnx("collection '%s': history not pruned: %s", c->name,
			  e.msg);
	free(pc.keys);
}

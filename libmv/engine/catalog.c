/*
 * catalog.c - the metadata layout: key paths and the JSON values stored
 * under them (schema, data files, collection_list, user_list).  The
 * layout is written here; docs/ARCHITECTURE.md lists the keys.
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

void key_coll(char *out, size_t cap, const char *user,
	      const char *coll, const char *leaf)
{
	snprintf(out, cap, "/%s/%s/%s", user, coll, leaf);
}

void key_data(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf)
{
	snprintf(out, cap, "/%s/%s/data/%s", user, coll, leaf);
}

void key_user(char *out, size_t cap, const char *user, const char *leaf)
{
	snprintf(out, cap, "/%s/%s", user, leaf);
}

void key_config(char *out, size_t cap, const char *user,
		const char *cluster_id)
{
	snprintf(out, cap, "/%s/config/%s", user, cluster_id);
}

int node_live_parse(const void *val, size_t vlen, uint32_t *no, char *addr,
		    size_t cap)
{
	json_t *j = json_loadb(val, vlen, 0, NULL);
	json_t *n = json_object_get(j, "no"), *a = json_object_get(j, "addr");
	int ok = json_is_integer(n) && json_is_string(a) &&
		 json_integer_value(n) >= 0 &&
		 json_integer_value(n) <= (json_int_t)UINT32_MAX;

	if (ok) {
		*no = (uint32_t)json_integer_value(n);
		snprintf(addr, cap, "%s", json_string_value(a));
	}
	json_decref(j);
	return ok ? 0 : -1;
}

void node_config_json(const struct node *nd, char *out, size_t cap)
{
	snprintf(out, cap,
		 "{\"num_replicas\":%d,\"num_nodes\":%d,\"sync_level\":%d,"
		 "\"auto_flush\":%s,\"flush_interval\":%lld,"
		 "\"flush_limit\":%lld}",
		 nd->conf.num_replicas, nd->conf.num_nodes,
		 nd->conf.sync_level, nd->conf.auto_flush ? "true" : "false",
		 (long long)nd->conf.flush_interval,
		 (long long)nd->conf.flush_limit);
}

/* Keep user -> ours (users_lock not held). */
static void user_keep(struct node *nd, const char *user, int ours)
{
	pthread_mutex_lock(&nd->users_lock);
	if (!nd->users)
		nd->users = json_object();
	if (nd->users)	/* out of memory: asked again next time */
		json_object_set_new(nd->users, user, json_boolean(ours));
	pthread_mutex_unlock(&nd->users_lock);
}

int node_user_ours(struct node *nd, const char *user, struct mv_err *err)
{
	char key[256], *val = NULL;
	size_t vlen;
	json_t *v;
	int rc;

	if (!nd->cluster)
		return 1;
	pthread_mutex_lock(&nd->users_lock);
	v = nd->users ? json_object_get(nd->users, user) : NULL;
	rc = v ? json_is_true(v) : -1;
	pthread_mutex_unlock(&nd->users_lock);
	if (rc >= 0)
		return rc;
	key_config(key, sizeof(key), user, nd->conf.cluster_id);
	rc = mv_meta_get(nd->meta, key, &val, &vlen, err);
	free(val);
	if (rc < 0)
		return rc;
	user_keep(nd, user, rc == 0);
	return rc == 0;
}

void node_user_seen(struct node *nd, const char *key)
{
	const char *u = key + 1, *s = strchr(u, '/');
	char user[MV_NAME_MAX + 1];
	size_t cl = strlen(nd->conf.cluster_id);

	if (key[0] != '/' || !s || s - u > MV_NAME_MAX ||
	    strncmp(s, "/config/", 8) || strncmp(s + 8, nd->conf.cluster_id,
						  cl) || s[8 + cl])
		return;
	memcpy(user, u, (size_t)(s - u));
	user[s - u] = '\0';
	user_keep(nd, user, 1);
}

/* The oldest config key under /<user>/config/: its cluster owns the user. */
struct claim {
	size_t plen;		/* of the prefix */
	char owner[256];
	int64_t rev;		/* its create_rev (0: none yet) */
	int ours;		/* this cluster's key exists */
	const char *cid;
};

static int claim_cb(void *arg, const struct mv_meta_kv *kv)
{
	struct claim *cl = arg;
	const char *cid = kv->key + cl->plen;

	if (strchr(cid, '/'))
		return 0;
	if (!strcmp(cid, cl->cid))
		cl->ours = 1;
	if (!cl->rev || kv->create_rev < cl->rev ||
	    (kv->create_rev == cl->rev && strcmp(cid, cl->owner) < 0)) {
		cl->rev = kv->create_rev;
		snprintf(cl->owner, sizeof(cl->owner), "%s", cid);
	}
	return 0;
}

static int claim_read(struct node *nd, const char *user, struct claim *cl,
		      struct mv_err *err)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "/%s/config/", user);
	memset(cl, 0, sizeof(*cl));
	cl->plen = strlen(prefix);
	cl->cid = nd->conf.cluster_id;
	return mv_meta_range_kv(nd->meta, prefix, claim_cb, cl, NULL, err);
}

/*
 * Refuse user to this cluster: at a node's start, a configuration error
 * (78); for a CREATE, a permission error (77).
 */
static int claim_refuse(struct node *nd, const char *user,
			const struct claim *cl, int at_start,
			struct mv_err *err)
{
	if (!at_start)
		return mv_err_set(err, MV_EPERM, "user '%s' belongs to "
				  "cluster '%s', not to '%s': a user belongs "
				  "to one cluster", user, cl->owner,
				  nd->conf.cluster_id);
	return mv_err_set(err, MV_ECONFIG, "user '%s' belongs to cluster '%s' "
			  "(key /%s/config/%s), not to '%s': a user belongs "
			  "to one cluster; start this node with another user "
			  "or with cluster_id=%s", user, cl->owner,
			  user, cl->owner, nd->conf.cluster_id,
			  cl->owner);
}

/*
 * Put this cluster's config key for user, and keep it only if it is the
 * oldest config key of the user: two clusters claiming the user at the
 * same moment both put, then both read, and both see the same oldest key,
 * so exactly one keeps the user; the other takes its key back.
 */
static int claim_user(struct node *nd, const char *user, int at_start,
		      struct mv_err *err)
{
	struct claim cl;
	char key[256], conf[512];
	int rc, had = 0;

	key_config(key, sizeof(key), user, nd->conf.cluster_id);
	node_config_json(nd, conf, sizeof(conf));
	if (nd->cluster) {
		if ((rc = claim_read(nd, user, &cl, err)) < 0)
			return rc;
		if (cl.rev && strcmp(cl.owner, nd->conf.cluster_id))
			return claim_refuse(nd, user, &cl, at_start, err);
		had = cl.ours;
	}
	rc = mv_meta_put(nd->meta, key, conf, strlen(conf), err);
	if (rc < 0)
		return rc;
	if (nd->cluster && !had) {
		if ((rc = claim_read(nd, user, &cl, err)) < 0)
			return rc;
		if (strcmp(cl.owner, nd->conf.cluster_id)) {
			mv_meta_del(nd->meta, key, NULL);
			return claim_refuse(nd, user, &cl, at_start, err);
		}
	}
	node_user_seen(nd, key);
	return 0;
}

int node_user_claim(struct node *nd, struct mv_err *err)
{
	return claim_user(nd, nd->conf.user, 1, err);
}

int node_user_take(struct node *nd, const char *user, struct mv_err *err)
{
	return nd->cluster ? claim_user(nd, user, 0, err) : 0;
}

char *schema_json(const struct coll *c)
{
	json_t *o = json_object(), *fs = json_array();
	char *s;

	json_object_set_new(o, "format", json_integer(MV_FORMAT_VERSION));
	json_object_set_new(o, "dim", json_integer(c->dim));
	json_object_set_new(o, "metric", json_string(mv_metric_name(c->metric)));
	json_object_set_new(o, "create_time", json_integer(c->create_time));
	json_object_set_new(o, "token", json_string(c->token));
	for (int i = 0; i < c->nfields; i++) {
		json_t *f = json_object();
		json_object_set_new(f, "name", json_string(c->fields[i].name));
		json_object_set_new(f, "type",
				    json_string(mv_ftype_name(c->fields[i].type)));
		json_array_append_new(fs, f);
	}
	json_object_set_new(o, "fields", fs);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/*
 * "/<user>/collection_list": "name : create_time, index_type", newest
 * first.  It is written with the transaction of a create, drop or index
 * change, so it stops short of half of a transaction's byte limit (some
 * 20,000 collections): past that it lists the newest only.  The node
 * itself finds collections by their schema keys (node_open).
 */
#define COLL_LIST_BYTES_MAX (MV_META_TXN_BYTES_MAX / 2)

char *node_collection_list(struct node *nd, const char *user,
			   const char *skip, const struct coll *add)
{
	json_t *a = json_array();
	char item[256], *s;
	struct coll *c, **order;
	size_t n = 0, all = 0, bytes = 2;

	for (c = nd->colls; c; c = c->next)
		all++;
	order = malloc((all ? all : 1) * sizeof(*order));
	if (!a || !order) {
		json_decref(a);
		free(order);
		return NULL;
	}
	if (add) {
		snprintf(item, sizeof(item), "%s : %" PRId64 ", -", add->name,
			 add->create_time);
		json_array_append_new(a, json_string(item));
		bytes += strlen(item) + 3;
	}
	for (c = nd->colls; c; c = c->next)
		if (!strcmp(c->user, user))
			order[n++] = c;
	while (n--) {
		c = order[n];
		if (skip && !strcmp(c->name, skip))
			continue;
		pthread_rwlock_rdlock(&c->lock);
		snprintf(item, sizeof(item), "%s : %" PRId64 ", %s", c->name,
			 c->create_time, c->index ? c->index->spec : "-");
		pthread_rwlock_unlock(&c->lock);
		/* Quotes and a comma; names and specs need no escapes. */
		bytes += strlen(item) + 3;
		if (bytes > COLL_LIST_BYTES_MAX)
			break;
		json_array_append_new(a, json_string(item));
	}
	free(order);
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* /user_list with user added, or NULL if it is there already. */
char *user_list_with(struct node *nd, const char *user)
{
	char *val = NULL, *s = NULL;
	size_t vlen;
	json_t *ul = NULL;

	if (mv_meta_get(nd->meta, KEY_USER_LIST, &val, &vlen, NULL) == 0)
		ul = json_loadb(val, vlen, 0, NULL);
	free(val);
	if (!json_is_array(ul)) {
		json_decref(ul);
		ul = json_array();
	}
	for (size_t i = 0; i < json_array_size(ul); i++) {
		const char *u = json_string_value(json_array_get(ul, i));
		if (u && !strcmp(u, user)) {
			json_decref(ul);
			return NULL;
		}
	}
	json_array_append_new(ul, json_string(user));
	s = json_dumps(ul, JSON_COMPACT);
	json_decref(ul);
	return s;
}

char *node_data_json(const char *type, uint64_t size, uint32_t node_no,
		       uint64_t seq, uint64_t rows, const char *column,
		       const char *vector_file)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "node", json_integer(node_no));
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	json_object_set_new(o, "rows", json_integer((json_int_t)rows));
	json_object_set_new(o, "format", json_integer(MV_FORMAT_VERSION));
	if (column)
		json_object_set_new(o, "column", json_string(column));
	if (vector_file)
		json_object_set_new(o, "vector_file", json_string(vector_file));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *index_json(const struct cindex *ci, uint64_t size,
		 uint32_t node_no, int64_t rows)
{
	json_t *o = json_object(), *raw = json_array(), *ret = json_object();
	char *s;

	json_object_set_new(o, "type", json_string("index"));
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "node", json_integer(node_no));
	json_object_set_new(o, "rows", json_integer(rows));
	json_object_set_new(o, "spec", json_string(ci->spec));
	json_object_set_new(o, "params", json_string(ci->params));
	json_object_set_new(o, "format", json_integer(MV_FORMAT_VERSION));
	for (size_t i = 0; i < ci->nsegs; i++) {
		json_array_append_new(raw, json_string(
			strrchr(ci->segs[i]->path, '/') + 1));
		if (ci->segs[i]->retired)
			json_object_set_new(ret,
				strrchr(ci->segs[i]->path, '/') + 1,
				json_integer((json_int_t)ci->segs[i]->n));
	}
	json_object_set_new(o, "raw_files", raw);
	if (json_object_size(ret))
		json_object_set_new(o, "retired", ret);
	else
		json_decref(ret);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/*
 * The JSON of c's user's collection list with spec as c's index column
 * (node.lock held): what the list will be once the change commits, while
 * c->index still shows the state searches use.
 */
char *list_with_index(struct node *nd, struct coll *c,
		      const char *spec)
{
	char *s = node_collection_list(nd, c->user, NULL, NULL), item[512];
	size_t nl = strlen(c->name);
	json_t *a = s ? json_loads(s, 0, NULL) : NULL;

	free(s);
	if (!a)
		return NULL;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *it = json_string_value(json_array_get(a, i));

		if (!it || strncmp(it, c->name, nl) || strncmp(it + nl, " : ", 3))
			continue;
		snprintf(item, sizeof(item), "%s : %" PRId64 ", %s", c->name,
			 c->create_time, spec);
		json_array_set_new(a, i, json_string(item));
	}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/*
 * The value of c's index key with the inputs of a compaction that the
 * index covers added to its "retired" files (name: rows), so that a
 * restart keeps the index's labels in place; node.commit held.
 */
char *index_retire_json(struct node *nd, struct coll *c,
			struct seg **in, size_t nin, struct mv_err *err)
{
	char *val = NULL, *s = NULL;
	size_t vlen;
	json_t *j = NULL, *ret;
	int rc;

	if (!c->index) {
		mv_err_set(err, MV_EINTERNAL, "an indexed segment without an "
			   "index");
		return NULL;
	}
	rc = mv_meta_get(nd->meta, c->index->key, &val, &vlen, err);
	if (rc > 0)
		mv_err_set(err, MV_EIO, "no key '%s'", c->index->key);
	if (rc != 0)
		return NULL;
	j = json_loadb(val, vlen, 0, NULL);
	free(val);
	if (!j) {
		mv_err_set(err, MV_EIO, "bad key '%s'", c->index->key);
		return NULL;
	}
	ret = json_object_get(j, "retired");
	if (!json_is_object(ret)) {
		ret = json_object();
		json_object_set_new(j, "retired", ret);
	}
	for (size_t i = 0; i < nin; i++)
		if (in[i]->indexed)
			json_object_set_new(ret, strrchr(in[i]->path, '/') + 1,
					    json_integer((json_int_t)in[i]->n));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		mv_err_set(err, MV_EINTERNAL, "out of memory");
	return s;
}

/* A listed file gone from the store and the metadata (internal.h). */
int node_gone_since(struct node *nd, const struct coll *c,
		    const char *path, int rc, struct mv_err *err)
{
	const char *leaf = strrchr(path, '/');
	char key[256], *val = NULL;
	size_t vlen;
	int named;

	if (rc != MV_ENOINPUT)
		return rc;
	leaf = leaf ? leaf + 1 : path;
	key_data(key, sizeof(key), c->user, c->name, leaf);
	named = mv_meta_get(nd->meta, key, &val, &vlen, NULL);
	free(val);
	if (named != 1)
		return rc;	/* still named (or etcd away): as it was */
	mv_err_set(err, MV_EAGAIN, "'%s' was deleted after the list of "
		   "files was read", path);
	return NODE_RELOAD_AGAIN;
}

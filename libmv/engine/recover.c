/*
 * recover.c - start-up and shut-down: node_open opens the metadata and the
 * store, loads every user's collections (segments, deletion logs, index),
 * then sweeps orphaned files; node_close frees it all.
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
#include "knn.h"
#include "log.h"
#include "internal.h"
#include "segfile.h"
#include "vcheck.h"

struct loaded {
	char name[180];	/* file name under the collection */
	json_t *val;
	uint64_t seq;
	int kind;		/* 0 del, 1 vec (dels first at equal seq) */
};

struct load_ctx {
	struct loaded *v;
	size_t n, cap;
	size_t prefix_len;
	char *index_leaf, *index_val;	/* the newest index key */
	size_t index_vlen;
};

static int load_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	json_t *j;
	const char *type;

	j = json_loadb(val, vlen, 0, NULL);
	if (!j)
		return 0;
	type = json_string_value(json_object_get(j, "type"));
	if (type && !strcmp(type, "index")) {
		free(lc->index_leaf);
		free(lc->index_val);
		lc->index_leaf = strdup(key + lc->prefix_len);
		lc->index_val = malloc(vlen + 1);
		if (lc->index_val) {
			memcpy(lc->index_val, val, vlen);
			lc->index_vlen = vlen;
		}
		json_decref(j);
		return 0;
	}
	if (!type || (strcmp(type, "vectors") && strcmp(type, "delete"))) {
		json_decref(j);
		return 0;	/* scalar files are found from their vectors */
	}
	if (lc->n == lc->cap) {
		size_t nc = lc->cap ? lc->cap * 2 : 64;
		struct loaded *v = realloc(lc->v, nc * sizeof(*v));
		if (!v) {
			json_decref(j);
			return MV_EINTERNAL;
		}
		lc->v = v;
		lc->cap = nc;
	}
	snprintf(lc->v[lc->n].name, sizeof(lc->v->name), "%s",
		 key + lc->prefix_len);
	lc->v[lc->n].val = j;
	lc->v[lc->n].seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
	lc->v[lc->n].kind = !strcmp(type, "vectors");
	lc->n++;
	return 0;
}

static int loaded_cmp(const void *a, const void *b)
{
	const struct loaded *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->kind - y->kind;
}

static int load_seg(struct node *nd, struct coll *c, const char *dir,
		    struct loaded *l, struct mv_err *err)
{
	struct seg *s = calloc(1, sizeof(*s));
	struct mv_seginfo info;
	void *file = NULL, *a = NULL;
	const void *b;
	size_t len;
	int rc;

	if (!s || !(s->cols = calloc(c->nfields ? c->nfields : 1,
				     sizeof(*s->cols)))) {
		free(s);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	snprintf(s->path, sizeof(s->path), "%s%s", dir, l->name);
	rc = mv_store_get(nd->store, s->path, &file, &len, err);
	if (rc < 0)
		goto fail;
	rc = mv_segfile_decode(s->path, file, len, &info, &a, &b, err);
	if (rc < 0)
		goto fail;
	if (info.kind != MV_SEG_VEC || info.aux != c->dim ||
	    info.a_raw != info.n * 8 ||
	    info.b_len != info.n * c->dim * sizeof(float)) {
		rc = mv_err_set(err, MV_EIO, "'%s': not a vector file of dim %u",
				s->path, c->dim);
		goto fail;
	}
	s->seq = l->seq;
	s->n = info.n;
	s->size = len;
	s->ids = a;
	a = NULL;
	/* Keep the file buffer: vectors sit 64-byte aligned inside it. */
	s->own = file;
	s->vecs = (float *)b;
	file = NULL;
	s->ncols = c->nfields;
	for (int f = 0; f < c->nfields; f++) {
		struct nbuf nb = { 0 };
		void *cf = NULL, *ca = NULL;
		const void *cb;
		size_t clen;

		/* "<base>.vec" -> "<base>.<field>.col" */
		snprintf(s->cols[f].path, sizeof(s->cols->path), "%s%.*s.%s.col",
			 dir, (int)strlen(l->name) - 4, l->name,
			 c->fields[f].name);
		rc = mv_store_get(nd->store, s->cols[f].path, &cf, &clen, err);
		if (rc == 0)
			rc = mv_segfile_decode(s->cols[f].path, cf, clen, &info,
					       &ca, &cb, err);
		free(cf);
		if (rc < 0)
			goto fail;
		if (info.kind != MV_SEG_COL || info.n != s->n ||
		    info.aux != (uint32_t)c->fields[f].type) {
			free(ca);
			rc = mv_err_set(err, MV_EIO, "'%s': bad column file",
					s->cols[f].path);
			goto fail;
		}
		s->size += clen;
		nb.p = ca;
		nb.len = nb.cap = info.a_raw;
		if (node_seg_col_from(&s->cols[f], c->fields[f].type, &nb, s->n) < 0) {
			free(ca);
			rc = mv_err_set(err, MV_EIO, "'%s': bad string column",
					s->cols[f].path);
			goto fail;
		}
	}
	if (c->metric == MV_COSINE) {
		/* Search a normalised copy; raw stays in storage for GET. */
		float *nv = malloc(s->n * c->dim * sizeof(float) + 1);
		if (!nv) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto fail;
		}
		memcpy(nv, s->vecs, s->n * c->dim * sizeof(float));
		node_seg_free_own(s, 0);
		s->own = nv;
		s->vecs = nv;
	}
	rc = node_seg_prepare(c, s, 0, err);
	if (rc < 0)
		goto fail;
	{
		struct seg **segs = realloc(c->segs, (c->nsegs + 1) * sizeof(*segs));
		if (!segs || mv_idmap_reserve(&c->ids, s->n) < 0) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto fail;
		}
		c->segs = segs;
		c->segs[c->nsegs++] = s;
	}
	mv_idmap_put_rows(&c->ids, s->ids, s->n, s, 0);
	bump_next_id(c, s->ids, s->n);
	c->rows += (int64_t)s->n;
	return 0;
fail:
	free(file);
	free(a);
	node_seg_free(s);
	return rc;
}

static int load_del(struct node *nd, struct coll *c, const char *dir,
		    struct loaded *l, struct mv_err *err)
{
	struct mv_seginfo info;
	void *file = NULL, *a = NULL;
	const void *b;
	size_t len;
	char path[MV_SPATH];
	int rc;

	snprintf(path, sizeof(path), "%s%s", dir, l->name);
	rc = mv_store_get(nd->store, path, &file, &len, err);
	if (rc == 0)
		rc = mv_segfile_decode(path, file, len, &info, &a, &b, err);
	free(file);
	if (rc < 0)
		return rc;
	{
		const int64_t *d = a;
		for (uint64_t j = 0; j < info.a_raw / 8; j++) {
			struct mv_idmap_ent *e = mv_idmap_get(&c->ids, d[j]);
			if (e) {
				node_seg_set_deleted(e->seg, e->row);
				mv_idmap_del(&c->ids, d[j]);
				c->rows--;
			}
		}
	}
	free(a);
	{
		struct dellog *dl = realloc(c->dels, (c->ndels + 1) * sizeof(*dl));
		if (!dl)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		c->dels = dl;
		snprintf(dl[c->ndels].path, sizeof(dl->path), "%s", path);
		dl[c->ndels++].seq = l->seq;
	}
	return 0;
}

static int load_coll(struct node *nd, const char *user, const char *name,
		     struct mv_err *err)
{
	char key[256], *val = NULL, dir[200];
	size_t vlen;
	json_t *j = NULL, *fs;
	struct mv_field f[MV_FIELDS_MAX];
	int nf = 0, rc;
	enum mv_metric metric;
	struct coll *c = NULL, **tail;
	struct load_ctx lc = { 0 };

	key_coll(key, sizeof(key), user, name, "schema");
	rc = mv_meta_get(nd->meta, key, &val, &vlen, err);
	if (rc != 0) {
		if (rc > 0)
			rc = mv_err_set(err, MV_EIO, "no schema for '%s'", name);
		return rc;
	}
	j = json_loadb(val, vlen, 0, NULL);
	free(val);
	if (!j || mv_metric_parse(json_string_value(json_object_get(j, "metric"))
				  ? json_string_value(json_object_get(j, "metric"))
				  : "?", &metric) < 0) {
		rc = mv_err_set(err, MV_EIO, "bad schema for '%s'", name);
		goto out;
	}
	fs = json_object_get(j, "fields");
	for (size_t i = 0; i < json_array_size(fs) && nf < MV_FIELDS_MAX; i++) {
		json_t *x = json_array_get(fs, i);
		snprintf(f[nf].name, sizeof(f[nf].name), "%s",
			 json_string_value(json_object_get(x, "name")));
		if (mv_ftype_parse(json_string_value(json_object_get(x, "type")),
				   &f[nf].type) < 0) {
			rc = mv_err_set(err, MV_EIO, "bad schema for '%s'", name);
			goto out;
		}
		nf++;
	}
	c = coll_new(user, name,
		     (uint32_t)json_integer_value(json_object_get(j, "dim")),
		     metric, f, nf);
	if (!c) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	c->create_time = json_integer_value(json_object_get(j, "create_time"));
	snprintf(c->token, sizeof(c->token), "%s",
		 json_string_value(json_object_get(j, "token")));
	key_coll(key, sizeof(key), user, name, "state");
	{
		/* Ids below next_id may have been handed out: never again. */
		struct mv_state st;

		if (mv_state_load(nd->meta, key, &c->state, &st, NULL) == 0) {
			c->id_next = c->id_end = st.next_id;
			c->next_seq = st.next_seq;
		}
	}
	if (c->next_seq == 0)
		c->next_seq = 1;
	key_coll(key, sizeof(key), user, name, "data/");
	lc.prefix_len = strlen(key);
	rc = mv_meta_range(nd->meta, key, load_cb, &lc, err);
	if (rc < 0)
		goto out;
	if (lc.n)
		qsort(lc.v, lc.n, sizeof(*lc.v), loaded_cmp);
	snprintf(dir, sizeof(dir), "%s/%s-%s/", user, name, c->token);
	for (size_t i = 0; i < lc.n; i++) {
		rc = lc.v[i].kind ? load_seg(nd, c, dir, &lc.v[i], err)
				  : load_del(nd, c, dir, &lc.v[i], err);
		if (rc < 0)
			goto out;
		if (lc.v[i].seq >= c->next_seq)
			c->next_seq = lc.v[i].seq + 1;
	}
	if (!c->state) {
		/* No (readable) state record: a fresh one past every row. */
		struct mv_state st = { c->id_next, c->next_seq };
		char sv[96];

		mv_state_format(&st, sv, sizeof(sv));
		key_coll(key, sizeof(key), user, name, "state");
		rc = mv_meta_put(nd->meta, key, sv, strlen(sv), err);
		if (rc < 0)
			goto out;
		if (!(c->state = strdup(sv))) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		c->id_end = c->id_next;
	}
	if (lc.index_leaf &&
	    node_index_load(nd, c, dir, lc.index_leaf, lc.index_val,
			    lc.index_vlen, err) < 0) {
		/* A bad index is not fatal: search falls back to brute force. */
		log_warnx("collection '%s': %s; searching without the index",
			  name, err ? err->msg : "bad index");
		mv_err_clear(err);
	}
	for (tail = &nd->colls; *tail; tail = &(*tail)->next)
		;
	*tail = c;
	c = NULL;
	rc = 0;
out:
	for (size_t i = 0; i < lc.n; i++)
		json_decref(lc.v[i].val);
	free(lc.v);
	free(lc.index_leaf);
	free(lc.index_val);
	json_decref(j);
	coll_put(c);
	return rc;
}

/*
 * The start-up sweep removes files that no metadata key names, but only
 * those provably this node's leftovers: in its own store (under its locked
 * data_dir), at <user>/<collection>-<token>/<leaf> with a leaf of the names
 * this node gives files (<ms>-<16 hex>.vec, .del, .idx, .<field>.col).
 * Anything else (another name, another layout) is kept and reported.
 */
struct orphan_ctx {
	struct node *nd;
	int removed, kept;
	char kept_eg[256];
};

/* s[0..n) is lowercase hex, n long. */
static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* 1 if leaf is a name this node gives segment files. */
static int own_leaf(const char *leaf)
{
	const char *p = leaf, *q;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == leaf || *p++ != '-' || strlen(p) < 16 || !is_hex(p, 16))
		return 0;
	p += 16;
	if (!strcmp(p, ".vec") || !strcmp(p, ".del") || !strcmp(p, ".idx"))
		return 1;
	if (*p++ != '.' || !(q = strchr(p, '.')) || q == p || strcmp(q, ".col"))
		return 0;
	for (; p < q; p++)
		if (!(*p == '_' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

static int orphan_cb(void *arg, const char *path, uint64_t size)
{
	struct orphan_ctx *oc = arg;
	struct node *nd = oc->nd;
	char key[512], user[MV_NAME_MAX + 1], coll[MV_NAME_MAX + 20], *val;
	char name[MV_NAME_MAX + 1], vec[160];
	const char *p = path, *slash, *dash, *leaf, *ext;
	size_t vlen;
	struct coll *c;
	int rc;

	(void)size;
	/* <user>/<collection>-<token>/<leaf> */
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= sizeof(user))
		goto keep;
	memcpy(user, p, slash - p);
	user[slash - p] = '\0';
	p = slash + 1;
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= sizeof(coll))
		goto keep;
	memcpy(coll, p, slash - p);
	coll[slash - p] = '\0';
	leaf = slash + 1;
	dash = strrchr(coll, '-');
	if (!dash || strlen(dash + 1) != 16 || !is_hex(dash + 1, 16) ||
	    (size_t)(dash - coll) >= sizeof(name) || !own_leaf(leaf))
		goto keep;
	memcpy(name, coll, dash - coll);
	name[dash - coll] = '\0';
	if (mv_name_check(user, NULL) < 0 || mv_name_check(name, NULL) < 0)
		goto keep;
	for (c = nd->colls; c; c = c->next)
		if (!strcmp(c->user, user) && !strcmp(c->name, name) &&
		    !strcmp(c->token, dash + 1))
			break;
	if (!c) {
		/* Not loaded: keep it if the metadata knows this incarnation. */
		json_t *j;
		const char *t;

		key_coll(key, sizeof(key), user, name, "schema");
		if (mv_meta_get(nd->meta, key, &val, &vlen, NULL) == 0) {
			j = json_loadb(val, vlen, 0, NULL);
			free(val);
			t = json_string_value(json_object_get(j, "token"));
			rc = !j || !t || !strcmp(t, dash + 1);
			json_decref(j);
			if (rc)
				goto keep;
		}
	}
	ext = strrchr(leaf, '.');
	if (!strcmp(ext, ".col")) {
		/* A column lives as long as its vector file. */
		snprintf(vec, sizeof(vec), "%.*s.vec",
			 (int)(strchr(leaf, '.') - leaf), leaf);
		leaf = vec;
	}
	key_data(key, sizeof(key), user, name, leaf);
	rc = mv_meta_get(nd->meta, key, &val, &vlen, NULL);
	free(val);
	if (rc != 1)
		return 0;	/* named, or no way to tell: keep */
	if (mv_store_del(nd->store, path, NULL) == 0) {
		log_info("removed orphaned file '%s'", path);
		oc->removed++;
	}
	return 0;
keep:
	/* Not provably this node's: left alone. */
	if (!oc->kept++)
		snprintf(oc->kept_eg, sizeof(oc->kept_eg), "%s", path);
	return 0;
}

static int load_user(struct node *nd, const char *user, struct mv_err *err);

int node_open(struct node *nd, struct mv_err *err)
{
	char key[256], *val = NULL;
	size_t vlen;
	int rc;

	pthread_mutex_init(&nd->lock, NULL);
	pthread_mutex_init(&nd->commit, NULL);
	nd->node_no = nd->conf.node_no;
	pthread_mutex_init(&nd->blist, NULL);
	pthread_mutex_init(&nd->slock, NULL);
	nd->meta = mv_meta_open_local(nd->conf.data_dir, err);
	if (!nd->meta)
		return err ? err->code : MV_EIO;
	{
		char sdir[4096];
		snprintf(sdir, sizeof(sdir), "%s/segments", nd->conf.data_dir);
		nd->store = mv_store_open_local(sdir, err);
		if (!nd->store)
			return err ? err->code : MV_EIO;
	}
	/* /user_list and the cluster's configuration. */
	{
		char *users = user_list_with(nd, nd->conf.user);
		if (users) {
			rc = mv_meta_put(nd->meta, KEY_USER_LIST, users,
					 strlen(users), err);
			free(users);
			if (rc < 0)
				return rc;
		}
	}
	{
		char conf[512];
		key_config(key, sizeof(key), nd->conf.user,
			   nd->conf.cluster_id);
		snprintf(conf, sizeof(conf),
			 "{\"num_replicas\":%d,\"num_nodes\":%d,\"sync_level\":%d,"
			 "\"auto_flush\":%s,\"flush_interval\":%lld,"
			 "\"flush_limit\":%lld}",
			 nd->conf.num_replicas, nd->conf.num_nodes,
			 nd->conf.sync_level,
			 nd->conf.auto_flush ? "true" : "false",
			 (long long)nd->conf.flush_interval,
			 (long long)nd->conf.flush_limit);
		rc = mv_meta_put(nd->meta, key, conf, strlen(conf), err);
		if (rc < 0)
			return rc;
	}
	/* Every user's collections. */
	rc = mv_meta_get(nd->meta, KEY_USER_LIST, &val, &vlen, err);
	if (rc < 0)
		return rc;
	{
		json_t *ul = rc == 0 ? json_loadb(val, vlen, 0, NULL) : NULL;

		free(val);
		rc = 0;
		for (size_t i = 0; rc == 0 && i < json_array_size(ul); i++) {
			const char *u = json_string_value(json_array_get(ul, i));

			if (!u || mv_name_check(u, NULL) < 0)
				continue;
			rc = load_user(nd, u, err);
		}
		json_decref(ul);
		if (rc < 0)
			return rc;
	}
	/*
	 * The sweep: only now that the metadata opened cleanly and every
	 * collection loaded, and only in a store that is this node's own
	 * (under its locked data_dir); a shared store keeps other nodes'
	 * work in progress, which no name here can tell from leftovers.
	 */
	{
		struct orphan_ctx oc = { nd, 0, 0, "" };
		const char *ld = mv_store_local_dir(nd->store);
		size_t dl = strlen(nd->conf.data_dir);
		int tmp = mv_store_clean_tmp(nd->store, NULL);

		if (tmp > 0)
			log_info("removed %d half-written files", tmp);
		if (ld && !strncmp(ld, nd->conf.data_dir, dl) &&
		    !strcmp(ld + dl, "/segments"))
			mv_store_list(nd->store, "", orphan_cb, &oc, NULL);
		if (oc.removed > 0)
			log_info("removed %d orphaned files", oc.removed);
		if (oc.kept > 0)
			log_warnx("kept %d files in '%s' that no metadata names "
				  "and that are not this node's to delete, "
				  "such as '%s'", oc.kept, ld, oc.kept_eg);
	}
	return 0;
}

/*
 * A user's collections are those with a schema key, /<user>/<name>/schema:
 * the collection list may not name them all (node_collection_list).
 * They load oldest first: by create time, then in the list's order (newest
 * first there), then by name.
 */
struct found {
	char name[MV_NAME_MAX + 1];
	int64_t create_time;
	long rank;		/* index in the collection list, -1 if absent */
};

struct find_ctx {
	struct found *v;
	size_t n, cap;
	size_t prefix_len;
	json_t *ranks;		/* name -> index in the collection list */
};

static int find_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct find_ctx *fc = arg;
	const char *name = key + fc->prefix_len, *slash = strchr(name, '/');
	json_t *j, *r;
	size_t n;

	if (!slash || strcmp(slash, "/schema"))
		return 0;
	n = (size_t)(slash - name);
	if (n == 0 || n > MV_NAME_MAX)
		return 0;
	if (fc->n == fc->cap) {
		size_t nc = fc->cap ? fc->cap * 2 : 64;
		struct found *v = realloc(fc->v, nc * sizeof(*v));
		if (!v)
			return MV_EINTERNAL;
		fc->v = v;
		fc->cap = nc;
	}
	memcpy(fc->v[fc->n].name, name, n);
	fc->v[fc->n].name[n] = '\0';
	j = json_loadb(val, vlen, 0, NULL);
	fc->v[fc->n].create_time = json_integer_value(
		json_object_get(j, "create_time"));
	json_decref(j);
	r = json_object_get(fc->ranks, fc->v[fc->n].name);
	fc->v[fc->n].rank = r ? (long)json_integer_value(r) : -1;
	fc->n++;
	return 0;
}

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->create_time != y->create_time)
		return x->create_time < y->create_time ? -1 : 1;
	if (x->rank != y->rank) {
		/* Listed ones first, the list's older (higher index) first. */
		if (x->rank < 0 || y->rank < 0)
			return x->rank < 0 ? 1 : -1;
		return x->rank > y->rank ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

static int load_user(struct node *nd, const char *user, struct mv_err *err)
{
	struct find_ctx fc = { 0 };
	char key[256], *val = NULL;
	size_t vlen;
	json_t *list = NULL;
	int rc;

	fc.ranks = json_object();
	if (!fc.ranks)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	key_user(key, sizeof(key), user, "collection_list");
	if (mv_meta_get(nd->meta, key, &val, &vlen, NULL) == 0)
		list = json_loadb(val, vlen, 0, NULL);
	free(val);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *item = json_string_value(json_array_get(list, i));
		char name[MV_NAME_MAX + 1];
		size_t n = item ? strcspn(item, " :") : 0;

		if (n == 0 || n > MV_NAME_MAX)
			continue;
		memcpy(name, item, n);
		name[n] = '\0';
		json_object_set_new(fc.ranks, name, json_integer((json_int_t)i));
	}
	json_decref(list);
	key_user(key, sizeof(key), user, "");
	fc.prefix_len = strlen(key);
	rc = mv_meta_range(nd->meta, key, find_cb, &fc, err);
	if (rc > 0)
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (rc == 0 && fc.n)
		qsort(fc.v, fc.n, sizeof(*fc.v), found_cmp);
	for (size_t i = 0; rc == 0 && i < fc.n; i++)
		rc = load_coll(nd, user, fc.v[i].name, err);
	free(fc.v);
	json_decref(fc.ranks);
	return rc;
}

void node_close(struct node *nd)
{
	struct coll *c, *next;
	struct batch *b, *bn;

	for (b = nd->sessions; b; b = bn) {
		bn = b->next;
		batch_free(b);
	}
	nd->sessions = NULL;
	for (c = nd->colls; c; c = next) {
		next = c->next;
		coll_put(c);
	}
	nd->colls = NULL;
	mv_store_close(nd->store);
	mv_meta_close(nd->meta);
	mv_conf_release(&nd->conf);
}

/*
 * recover.c - start-up and shut-down: node_open opens the metadata and the
 * store, loads every user's collections (segments, deletion logs, index),
 * then sweeps orphaned files; node_close frees it all.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
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

/*
 * The start-up sweep removes files that no metadata key names, but only
 * those provably this node's leftovers: in its own store (under its locked
 * data_dir), at <user>/<collection>-<token>/<leaf> with a leaf of the names
 * this node gives files (<ms>-<16 hex>.vec, .del, .idx, .<field>.col).
 * Anything else (another name, another layout) is kept and reported.
 */
struct orphan_ctx {
	struct node *nd;
	char who[16];
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

/*
 * 1 if leaf is a name this node gives segment files; who is "" (embedded)
 * or "n<N>-", the prefix of this cluster node's names.
 */
static int own_leaf(const char *leaf, const char *who)
{
	const char *p = leaf, *q;

	if (strncmp(p, who, strlen(who)))
		return 0;
	p += strlen(who);
	leaf = p;
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
	    (size_t)(dash - coll) >= sizeof(name) || !own_leaf(leaf, oc->who))
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

/* Add to the array arg the user of every "/<user>/<coll>/schema" key. */
static int users_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	json_t *ul = arg;
	const char *u = key + 1, *s = strchr(u, '/'), *t;
	char user[MV_NAME_MAX + 1];

	(void)val;
	(void)vlen;
	if (!s || s - u > MV_NAME_MAX || !(t = strchr(s + 1, '/')) ||
	    strcmp(t, "/schema"))
		return 0;
	memcpy(user, u, s - u);
	user[s - u] = '\0';
	for (size_t i = 0; i < json_array_size(ul); i++)
		if (!strcmp(json_string_value(json_array_get(ul, i)) ?
			    json_string_value(json_array_get(ul, i)) : "", user))
			return 0;
	json_array_append_new(ul, json_string(user));
	return 0;
}

/* Cluster mode: data_dir is a cache, but one node's (flock on LOCK). */
static int lock_data_dir(struct node *nd, struct mv_err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/LOCK", nd->conf.data_dir);
	nd->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (nd->lockfd < 0)
		return mv_err_sys(err, MV_EIO, "cannot open '%s'", path);
	if (flock(nd->lockfd, LOCK_EX | LOCK_NB) < 0) {
		close(nd->lockfd);
		nd->lockfd = -1;
		return mv_err_set(err, MV_EAGAIN, "data directory '%s' is in "
				  "use by another process", nd->conf.data_dir);
	}
	return 0;
}

int node_open(struct node *nd, struct mv_err *err)
{
	char *val = NULL;
	size_t vlen;
	int64_t rev = 0;
	int rc;

	pthread_mutex_init(&nd->lock, NULL);
	pthread_mutex_init(&nd->commit, NULL);
	nd->node_no = nd->conf.node_no;
	pthread_mutex_init(&nd->blist, NULL);
	pthread_mutex_init(&nd->slock, NULL);
	pthread_mutex_init(&nd->limbo_lock, NULL);
	pthread_mutex_init(&nd->users_lock, NULL);
	pthread_mutex_init(&nd->rev_mu, NULL);
	pthread_cond_init(&nd->rev_cv, NULL);
	nd->users = NULL;
	nd->limbo = NULL;
	nd->cluster = nd->conf.etcd != NULL;
	nd->lockfd = -1;
	if (nd->cluster && (rc = lock_data_dir(nd, err)) < 0)
		return rc;
	nd->meta_preset = nd->meta != NULL;
	nd->store_preset = nd->store != NULL;
	if (!nd->meta)
		nd->meta = nd->cluster ? mv_meta_open_etcd(nd->conf.etcd, err)
				       : mv_meta_open_local(nd->conf.data_dir, err);
	if (!nd->meta)
		return err ? err->code : MV_EIO;
	if (!nd->store) {
		char sdir[4096];
		const char *ep = nd->conf.s3_endpoint;

		if (nd->cluster && strncmp(ep, "file:", 5)) {
			struct mv_s3_conf sc = { 0 };

			snprintf(sdir, sizeof(sdir), "%s/cache",
				 nd->conf.data_dir);
			sc.endpoint = ep;
			sc.bucket = nd->conf.s3_bucket;
			sc.region = nd->conf.s3_region;
			sc.ca_file = nd->conf.s3_ca_file;
			sc.cache_dir = sdir;
			nd->store = mv_store_open_s3(&sc, err);
		} else {
			if (nd->cluster)
				snprintf(sdir, sizeof(sdir), "%s", ep + 5);
			else
				snprintf(sdir, sizeof(sdir), "%s/segments",
					 nd->conf.data_dir);
			nd->store = mv_store_open_local(sdir, err);
		}
		if (!nd->store)
			return err ? err->code : MV_EIO;
	}
	if (nd->cluster) {
		/* The number first: it is in every file name. */
		if ((rc = node_cluster_join(nd, err)) < 0)
			return rc;
		/* The live nodes: what this node holds of what it loads. */
		if ((rc = node_place_init(nd, err)) < 0)
			return rc;
		/* Everything after rev is followed; what loads is skipped. */
		if ((rc = mv_meta_revision(nd->meta, &rev, err)) < 0)
			return rc;
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
	if ((rc = node_user_claim(nd, err)) < 0)
		return rc;
	/* Every user's collections. */
	rc = mv_meta_get(nd->meta, KEY_USER_LIST, &val, &vlen, err);
	if (rc < 0)
		return rc;
	{
		json_t *ul = rc == 0 ? json_loadb(val, vlen, 0, NULL) : NULL;

		free(val);
		rc = 0;
		if (!json_is_array(ul)) {
			json_decref(ul);
			ul = json_array();
		}
		/*
		 * Cluster: two nodes adding users at once may each write the
		 * list without the other's; the schema keys tell every user.
		 */
		if (nd->cluster && ul &&
		    (rc = mv_meta_range(nd->meta, "/", users_cb, ul, err)) < 0) {
			json_decref(ul);
			return rc;
		}
		for (size_t i = 0; rc == 0 && i < json_array_size(ul); i++) {
			const char *u = json_string_value(json_array_get(ul, i));

			if (!u || mv_name_check(u, NULL) < 0)
				continue;
			/* Another cluster's (one etcd, several clusters). */
			if ((rc = node_user_ours(nd, u, err)) <= 0)
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
		struct orphan_ctx oc = { nd, "", 0, 0, "" };
		const char *ld = mv_store_local_dir(nd->store);
		size_t dl = strlen(nd->conf.data_dir);
		int tmp = nd->cluster ? 0 : mv_store_clean_tmp(nd->store, NULL);
		int uploads = 0;

		if (tmp > 0)
			log_info("removed %d half-written files", tmp);
		if (nd->cluster) {
			/*
			 * Shared storage (other clusters may use the bucket
			 * too): only under the collections loaded here, only
			 * this node's own names (n<N>-), which no other node
			 * writes; no temporaries either.
			 */
			snprintf(oc.who, sizeof(oc.who), "n%u-", nd->node_no);
			for (struct coll *c = nd->colls; c; c = c->next) {
				char pre[MV_SPATH];
				int up;

				node_coll_path(c, oc.who, pre);
				mv_store_list(nd->store, pre, orphan_cb, &oc,
					      NULL);
				/* Large files a kill left half uploaded. */
				up = mv_store_clean_uploads(nd->store, pre,
							    NULL);
				if (up > 0)
					uploads += up;
			}
		} else if (ld && !strncmp(ld, nd->conf.data_dir, dl) &&
			   !strcmp(ld + dl, "/segments")) {
			mv_store_list(nd->store, "", orphan_cb, &oc, NULL);
		}
		if (oc.removed > 0)
			log_info("removed %d orphaned files", oc.removed);
		if (uploads > 0)
			log_info("aborted %d unfinished uploads of this "
				 "node's", uploads);
		if (oc.kept > 0 && !nd->cluster)
			log_warnx("kept %d files in '%s' that no metadata names "
				  "and that are not this node's to delete, "
				  "such as '%s'", oc.kept, ld, oc.kept_eg);
	}
	if (nd->cluster && nd->start_later)
		atomic_store(&nd->applied_rev, rev);	/* node_start's */
	else if (nd->cluster)
		return node_cluster_start(nd, rev, err);
	return 0;
}

int node_start(struct node *nd, struct mv_err *err)
{
	if (!nd->cluster || !nd->start_later || nd->threads)
		return 0;
	return node_cluster_start(nd, atomic_load(&nd->applied_rev), err);
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
	for (size_t i = 0; rc == 0 && i < fc.n; i++) {
		struct coll *c = NULL, **tail;

		rc = node_coll_load(nd, user, fc.v[i].name, 1, NULL, &c, err);
		if (rc != 0)
			break;
		for (tail = &nd->colls; *tail; tail = &(*tail)->next)
			;
		*tail = c;
	}
	free(fc.v);
	json_decref(fc.ranks);
	return rc;
}

void node_close(struct node *nd)
{
	struct coll *c, *next;
	struct batch *b, *bn;

	node_cluster_stop(nd);
	while (nd->limbo) {
		struct limbo *l = nd->limbo;

		nd->limbo = l->next;
		free(l->paths);
		free(l);
	}
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
	if (!nd->store_preset)
		mv_store_close(nd->store);
	if (!nd->meta_preset)
		mv_meta_close(nd->meta);
	nd->store = NULL;
	nd->meta = NULL;
	if (nd->lockfd >= 0)
		close(nd->lockfd);
	nd->lockfd = -1;
	json_decref(nd->users);
	nd->users = NULL;
	mv_conf_release(&nd->conf);
}

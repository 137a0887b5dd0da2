/*
 * ddl.c - creating and dropping a collection: the metadata transaction,
 * the collection list, and (on drop) the files and the named sessions
 * with work on it.
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

int node_create(struct node *nd, const char *user, const char *name,
		uint32_t dim, enum mv_metric metric, const struct mv_field *f,
		int nf, int if_not_exists, int *existed, struct mv_err *err)
{
	struct coll *c, *last;
	char k1[256], k2[256], k3[256], *schema = NULL, *list = NULL;
	char state[64], *users = NULL;
	int rc;

	*existed = 0;
	if (mv_name_check(name, err) < 0)
		return MV_EDATA;
	for (int i = 0; i < nf; i++) {
		if (mv_name_check(f[i].name, err) < 0)
			return MV_EDATA;
		if (!strcmp(f[i].name, "id") || !strcmp(f[i].name, "vector"))
			return mv_err_setk(err, MV_EDATA, MV_K_BADNAME,
					  "field name '%s' is reserved",
					  f[i].name);
		for (int j = 0; j < i; j++)
			if (!strcmp(f[i].name, f[j].name))
				return mv_err_setk(err, MV_EDATA, MV_K_BADNAME,
						  "field '%s' given twice",
						  f[i].name);
	}
	/* Cluster: decide on what every node committed before. */
	if ((rc = node_visible(nd, err)) < 0)
		return rc;
	/*
	 * A user new to this cluster may be another cluster's, or being
	 * claimed by one at this moment: claim it first (its config key),
	 * apart from the collection's keys, which every cluster of the
	 * user would share.
	 */
	if (nd->cluster && node_user_ours(nd, user, NULL) == 0 &&
	    (rc = node_user_take(nd, user, err)) < 0)
		return rc;
	pthread_mutex_lock(&nd->commit);
	pthread_mutex_lock(&nd->lock);
	for (c = nd->colls, last = NULL; c; last = c, c = c->next)
		if (!strcmp(c->name, name) && !strcmp(c->user, user))
			break;
	if (c) {
		pthread_mutex_unlock(&nd->lock);
		pthread_mutex_unlock(&nd->commit);
		if (if_not_exists && c->dim == dim && c->metric == metric) {
			*existed = 1;
			return 0;
		}
		if (if_not_exists)
			return mv_err_setk(err, MV_ESERVER, MV_K_EXISTS,
				"collection '%s' exists with dim %u metric %s",
				name, c->dim, mv_metric_name(c->metric));
		return mv_err_setk(err, MV_ESERVER, MV_K_EXISTS,
				   "collection '%s' already exists", name);
	}
	c = coll_new(user, name, dim, metric, f, nf);
	if (!c) {
		pthread_mutex_unlock(&nd->lock);
		pthread_mutex_unlock(&nd->commit);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	c->create_time = (int64_t)time(NULL);
	node_random_hex(c->token, 8);
	schema = schema_json(c);
	list = node_collection_list(nd, user, NULL, c);
	if (!schema || !list) {
		pthread_mutex_unlock(&nd->lock);
		pthread_mutex_unlock(&nd->commit);
		coll_put(c);
		free(schema);
		free(list);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	users = user_list_with(nd, user);
	key_coll(k1, sizeof(k1), user, name, "schema");
	key_coll(k2, sizeof(k2), user, name, "state");
	key_user(k3, sizeof(k3), user, "collection_list");
	snprintf(state, sizeof(state), "{\"next_id\":0,\"next_seq\":1}");
	{
		struct mv_meta_op ops[4] = {
			{ MV_META_PUT, k1, schema, strlen(schema) },
			{ MV_META_PUT, k2, state, strlen(state) },
			{ MV_META_PUT, k3, list, strlen(list) },
		};
		/* Absent schema: another node may create the same name. */
		struct mv_meta_cmp cmp = { k1, NULL, 0 };
		size_t nops = 3;

		if (users)
			ops[nops++] = (struct mv_meta_op){ MV_META_PUT,
				KEY_USER_LIST, users, strlen(users) };
		rc = mv_meta_txn(nd->meta, &cmp, 1, ops, nops, err);
		if (rc == MV_META_CMPFAIL) {
			mv_err_clear(err);
			rc = mv_err_setk(err, MV_ESERVER, MV_K_EXISTS,
					 "collection '%s' already exists "
					 "(created by another node)", name);
		}
	}
	free(users);
	if (rc == 0 && !(c->state = strdup(state)))
		MV_BUG("out of memory after commit");
	if (rc == 0) {
		if (last)
			last->next = c;
		else
			nd->colls = c;
	} else {
		coll_put(c);
	}
	pthread_mutex_unlock(&nd->lock);
	pthread_mutex_unlock(&nd->commit);
	free(schema);
	free(list);
	return rc;
}

static int del_file_cb(void *arg, const char *path, uint64_t size)
{
	(void)size;
	mv_store_del(arg, path, NULL);
	return 0;
}

/* Abort (drop whole) every named session with pending work on c. */
static void abort_sessions_on(struct node *nd, struct coll *c)
{
	struct batch **pp, *s;

	pthread_mutex_lock(&nd->slock);
	for (pp = &nd->sessions; (s = *pp);) {
		struct pcoll *pc;
		int hit = 0;

		pthread_mutex_lock(&s->lock);
		for (pc = s->colls; pc; pc = pc->next)
			hit |= pc->c == c;
		if (hit)
			batch_clear(s);
		pthread_mutex_unlock(&s->lock);
		if (!hit) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		node_cluster_session(nd, s->session, 0);
		if (s->conns == 0)
			batch_free(s);
		else
			s->session[0] = '\0';	/* freed by its last connection */
	}
	pthread_mutex_unlock(&nd->slock);
}

int node_drop(struct node *nd, const char *user, const char *name,
	      struct mv_err *err)
{
	struct coll *c, *prev;
	char prefix[256], k3[256], dir[200], *list;
	int rc;

	if ((rc = node_visible(nd, err)) < 0)
		return rc;
	pthread_mutex_lock(&nd->commit);
	pthread_mutex_lock(&nd->lock);
	for (c = nd->colls, prev = NULL; c; prev = c, c = c->next)
		if (!strcmp(c->name, name) && !strcmp(c->user, user))
			break;
	if (!c) {
		pthread_mutex_unlock(&nd->lock);
		pthread_mutex_unlock(&nd->commit);
		return mv_err_setk(err, MV_ESERVER, MV_K_NOTFOUND,
				   "unknown collection '%s'", name);
	}
	key_coll(prefix, sizeof(prefix), user, name, "");
	key_user(k3, sizeof(k3), user, "collection_list");
	list = node_collection_list(nd, user, name, NULL);
	if (!list) {
		pthread_mutex_unlock(&nd->lock);
		pthread_mutex_unlock(&nd->commit);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	{
		struct mv_meta_op ops[2] = {
			{ MV_META_DELPREFIX, prefix, NULL, 0 },
			{ MV_META_PUT, k3, list, strlen(list) },
		};
		rc = mv_meta_txn(nd->meta, NULL, 0, ops, 2, err);
	}
	free(list);
	if (rc == 0) {
		if (prev)
			prev->next = c->next;
		else
			nd->colls = c->next;
		c->dropped = 1;
	}
	pthread_mutex_unlock(&nd->lock);
	if (rc == 0) {
		snprintf(dir, sizeof(dir), "%s/%s-%s/", user, name, c->token);
		mv_store_list(nd->store, dir, del_file_cb, nd->store, NULL);
	}
	pthread_mutex_unlock(&nd->commit);
	if (rc == 0) {
		/* Not under node.commit: a session's flush takes them the
		 * other way round. */
		abort_sessions_on(nd, c);
		coll_put(c);
	}
	return rc > 0 ? MV_EAGAIN : rc;
}

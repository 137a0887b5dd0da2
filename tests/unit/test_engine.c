/*
 * test_engine.c - the engine (libmv/engine/) as a library, without the
 * daemon: open it on a scratch directory, create a collection, insert,
 * flush, search exactly, then close, reopen and search again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/engine.h"
#include "engine/internal.h"
#include "unit.h"

#define DIM 4
#define ROWS 50

int unit_engine_open(struct node *nd, const char *dir, struct mv_err *err)
{
	memset(nd, 0, sizeof(*nd));
	if (mv_conf_init(&nd->conf, err) < 0 ||
	    mv_conf_set(&nd->conf, "data_dir", dir, err) < 0 ||
	    mv_mkdir_p(dir, err) < 0)
		return -1;
	the_node = nd;
	return node_open(nd, err);
}

/* Vector i: (i, 2i, -i, 1); query i's nearest neighbour is itself. */
static void vec_of(int i, float *v)
{
	v[0] = (float)i;
	v[1] = 2.0f * (float)i;
	v[2] = -(float)i;
	v[3] = 1.0f;
}

static void check_search(struct node *nd, const char *when)
{
	struct mv_err err = { 0 };
	struct coll *c = node_coll_get(nd, "default", "things");
	float q[2 * DIM];
	int64_t ids[2 * 3];
	float dist[2 * 3];

	unit_diag("searching %s", when);
	REQUIRE(c != NULL);
	CHECK_EQ_INT(c->dim, DIM);
	CHECK_EQ_INT((int)c->rows, ROWS);
	vec_of(7, q);
	vec_of(30, q + DIM);
	q[DIM] += 0.25f;	/* nearer 30 than 31 */
	CHECK_EQ_INT(node_search(nd, c, q, 2, 3, 0, 0, ids, dist, &err), 0);
	/* Ids were assigned from 0 in insertion order. */
	CHECK_EQ_INT((int)ids[0], 7);
	CHECK(dist[0] == 0.0f);
	CHECK((ids[1] == 6 && ids[2] == 8) || (ids[1] == 8 && ids[2] == 6));
	CHECK_EQ_INT((int)ids[3], 30);
	CHECK(dist[3] > 0.0f && dist[3] < dist[4]);
	coll_put(c);
}

TEST(engine_library_roundtrip)
{
	const char *dir = unit_path("engine");
	struct node *nd = calloc(1, sizeof(*nd));
	struct mv_err err = { 0 };
	struct batch *b;
	struct pcoll *pc;
	struct coll *c;
	int64_t first = -1, ins = 0, del = 0;
	int existed = 0;

	REQUIRE(nd != NULL);
	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	REQUIRE(node_create(nd, "default", "things", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	CHECK_EQ_INT(existed, 0);
	c = node_coll_get(nd, "default", "things");
	REQUIRE(c != NULL);

	b = batch_new(NULL);
	REQUIRE(b != NULL);
	pthread_mutex_lock(&b->lock);
	pc = batch_coll(b, c);
	REQUIRE(pc != NULL);
	REQUIRE(nbuf_reserve(&pc->vecs, ROWS * DIM * sizeof(float)) == 0);
	for (int i = 0; i < ROWS; i++)
		vec_of(i, (float *)(pc->vecs.p + pc->vecs.len) + i * DIM);
	pc->vecs.len += ROWS * DIM * sizeof(float);
	CHECK_EQ_INT(node_insert_commit_tail(nd, b, pc, ROWS, 0, 0, 0, &first,
					     &err), 0);
	CHECK_EQ_INT((int)first, 0);
	CHECK_EQ_INT(node_flush(nd, b, &ins, &del, &err), 0);
	pthread_mutex_unlock(&b->lock);
	CHECK_EQ_INT((int)ins, ROWS);
	CHECK_EQ_INT((int)del, 0);
	batch_free(b);
	coll_put(c);

	check_search(nd, "after the flush");
	node_close(nd);

	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	check_search(nd, "after reopening");
	node_close(nd);
	the_node = NULL;
	free(nd);
}

/*
 * memory_limit: a flush counts its segment's bytes in node_held, a drop
 * gives them back; an insert that would pass the limit (held plus
 * pending) is refused with nothing counted, a delete's bytes are not
 * limited, and once the memory is freed the same insert passes.
 */
TEST(engine_memory_limit_counts_segments_and_pending)
{
	const char *dir = unit_path("engine-mem");
	struct node *nd = calloc(1, sizeof(*nd));
	struct mv_err err = { 0 };
	struct batch *b;
	struct pcoll *pc;
	struct coll *c;
	struct seg *s;
	int64_t first = -1, ins = 0, del = 0;
	long long held0, pend0, held1;
	int existed = 0;

	REQUIRE(nd != NULL);
	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	held0 = atomic_load(&node_held);
	pend0 = atomic_load(&node_pending);
	REQUIRE(node_create(nd, "default", "mem", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	c = node_coll_get(nd, "default", "mem");
	REQUIRE(c != NULL);
	b = batch_new(NULL);
	REQUIRE(b != NULL);
	pthread_mutex_lock(&b->lock);
	pc = batch_coll(b, c);
	REQUIRE(pc != NULL);
	REQUIRE(nbuf_reserve(&pc->vecs, ROWS * DIM * sizeof(float)) == 0);
	for (int i = 0; i < ROWS; i++)
		vec_of(i, (float *)(pc->vecs.p + pc->vecs.len) + i * DIM);
	pc->vecs.len += ROWS * DIM * sizeof(float);
	CHECK_EQ_INT(node_insert_commit_tail(nd, b, pc, ROWS, 0, 0, 0, &first,
					     &err), 0);
	CHECK_EQ_INT(node_flush(nd, b, &ins, &del, &err), 0);
	pthread_mutex_unlock(&b->lock);
	batch_free(b);
	REQUIRE(c->nsegs == 1);
	s = c->segs[0];
	CHECK(s->size >= ROWS * DIM * sizeof(float));
	CHECK(s->held == s->size);
	held1 = atomic_load(&node_held);
	CHECK(held1 - held0 == (long long)s->size);
	coll_put(c);

	/* A limit 100 bytes above what is held now. */
	nd->conf.memory_limit = held1 + atomic_load(&node_pending) + 100;
	CHECK_EQ_INT(node_insert_take(nd, 101), -2);
	CHECK(atomic_load(&node_pending) == pend0);
	CHECK_EQ_INT(node_insert_take(nd, 60), 0);
	CHECK(node_memory() == held1 + pend0 + 60);
	/* The 60 pending count: 41 more pass the limit too. */
	CHECK_EQ_INT(node_insert_take(nd, 41), -2);
	/* A delete's bytes are held to max_pending only. */
	CHECK_EQ_INT(node_pending_take(nd, 1000), 0);
	node_pending_give(1000 + 60);
	CHECK(atomic_load(&node_pending) == pend0);

	/* The drop frees the segment: the refused insert passes. */
	CHECK_EQ_INT(node_drop(nd, "default", "mem", &err), 0);
	CHECK(atomic_load(&node_held) == held0);
	CHECK_EQ_INT(node_insert_take(nd, 101), 0);
	node_pending_give(101);
	node_close(nd);
	the_node = NULL;
	free(nd);
}

/*
 * Cluster mode without servers: two nodes in one process on one local
 * metadata store and one store directory (preset, as etcd and S3 would
 * be shared), each following the other's commits; with num_replicas
 * cl_replicas (1: both hold every unit).
 */
static const char *cl_replicas = "1";

static int cluster_open(struct node *nd, const char *dir, struct mv_meta *m,
			struct mv_store *s, const char *listen,
			struct mv_err *err)
{
	memset(nd, 0, sizeof(*nd));
	if (mv_conf_init(&nd->conf, err) < 0 ||
	    mv_conf_set(&nd->conf, "data_dir", dir, err) < 0 ||
	    mv_conf_set(&nd->conf, "etcd", "http://127.0.0.1:1", err) < 0 ||
	    mv_conf_set(&nd->conf, "s3_endpoint", "file:/unused", err) < 0 ||
	    mv_conf_set(&nd->conf, "listen", listen, err) < 0 ||
	    mv_conf_set(&nd->conf, "num_replicas", cl_replicas, err) < 0 ||
	    mv_mkdir_p(dir, err) < 0)
		return -1;
	nd->meta = m;
	nd->store = s;
	the_node = nd;
	return node_open(nd, err);
}

/* Flush n rows with ids first.. (vectors vec_of(id)) through nd. */
static int cl_insert(struct node *nd, struct batch *b, int64_t first, int n,
		     struct mv_err *err)
{
	struct coll *c = node_coll_get(nd, "default", "things");
	struct pcoll *pc;
	int64_t f = -1;
	int rc;

	if (!c)
		return -1;
	pc = batch_coll(b, c);
	if (!pc || nbuf_reserve(&pc->vecs, n * DIM * sizeof(float)) < 0 ||
	    nbuf_reserve(&pc->ids, n * 8) < 0) {
		coll_put(c);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int64_t id = first + i;
		vec_of((int)id, (float *)(pc->vecs.p + pc->vecs.len) + i * DIM);
		memcpy(pc->ids.p + pc->ids.len + i * 8, &id, 8);
	}
	pc->vecs.len += n * DIM * sizeof(float);
	pc->ids.len += n * 8;
	rc = node_insert_commit_tail(nd, b, pc, n, 1, 0, 0, &f, err);
	coll_put(c);
	return rc;
}

static int cl_flush(struct node *nd, struct batch *b, int64_t *ins,
		    int64_t *del, struct mv_err *err)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = node_flush(nd, b, ins, del, err);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* The nearest id to vec_of(id) through nd, or -1. */
static int64_t cl_nearest(struct node *nd, int id)
{
	struct mv_err err = { 0 };
	struct coll *c = node_coll_get(nd, "default", "things");
	float q[DIM], dist[1];
	int64_t got[1] = { -1 };

	if (!c)
		return -2;
	vec_of(id, q);
	if (node_search(nd, c, q, 1, 1, 0, 0, got, dist, &err) < 0 ||
	    dist[0] != 0.0f)
		got[0] = -1;
	coll_put(c);
	return got[0];
}

static int64_t cl_rows(struct node *nd)
{
	struct coll *c = node_coll_get(nd, "default", "things");
	int64_t r = c ? c->rows : -1;

	coll_put(c);
	return r;
}

TEST(engine_cluster_two_nodes_follow_each_other)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = mv_meta_open_local(unit_path("cl-meta"), &err);
	struct mv_store *s = mv_store_open_local(unit_path("cl-store"), &err);
	struct node *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct batch *ba, *bb;
	int64_t ins = 0, del = 0, id7 = 7;
	int existed = 0;
	char *val = NULL;
	size_t vlen;

	REQUIRE(m && s && a && b);
	REQUIRE(cluster_open(a, unit_path("cl-a"), m, s, "127.0.0.1:7001",
			     &err) == 0);
	REQUIRE(cluster_open(b, unit_path("cl-b"), m, s, "127.0.0.1:7002",
			     &err) == 0);
	CHECK_EQ_INT(a->cluster, 1);
	CHECK_EQ_INT((int)a->node_no, 1);
	CHECK_EQ_INT((int)b->node_no, 2);
	CHECK_EQ_INT(mv_meta_get(m, "/default/embedded_property/live/2", &val,
				 &vlen, &err), 0);
	CHECK(val && strstr(val, "\"addr\":\"127.0.0.1:7002\""));
	free(val);
	CHECK_EQ_INT(mv_meta_get(m, "/default/embedded_property", &val, &vlen,
				 &err), 0);
	CHECK(val && strstr(val, "\"no\":1") && strstr(val, "\"no\":2"));
	free(val);

	unit_diag("a lost lease: a new one, and the live key put again");
	{
		int back = 0;

		REQUIRE(mv_meta_lease_revoke(m, atomic_load(&a->lease),
					     &err) == 0);
		CHECK_EQ_INT(mv_meta_get(m, "/default/embedded_property/live/1",
					 &val, &vlen, &err), 1);
		for (int i = 0; i < 100 && !back; i++) {
			usleep(50000);
			back = mv_meta_get(m, "/default/embedded_property/live/1",
					   &val, &vlen, &err) == 0;
			free(val);
			val = NULL;
		}
		CHECK(back);
	}

	unit_diag("create on A, visible on B");
	REQUIRE(node_create(a, "default", "things", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	CHECK_EQ_INT(node_visible(b, &err), 0);
	CHECK_EQ_INT((int)cl_rows(b), 0);
	CHECK(node_create(b, "default", "things", DIM, MV_L2, NULL, 0, 0,
			  &existed, &err) < 0);

	unit_diag("flush on A, searchable on B once B applied it");
	ba = batch_new(NULL);
	bb = batch_new(NULL);
	REQUIRE(ba && bb);
	REQUIRE(cl_insert(a, ba, 0, ROWS, &err) == 0);
	CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
	CHECK_EQ_INT((int)ins, ROWS);
	CHECK_EQ_INT(node_visible(b, &err), 0);
	CHECK_EQ_INT((int)cl_rows(b), ROWS);
	CHECK_EQ_INT((int)cl_nearest(b, 33), 33);

	unit_diag("delete on B, applied on A");
	{
		struct coll *c = node_coll_get(b, "default", "things");
		struct pcoll *pc = batch_coll(bb, c);

		REQUIRE(pc && nbuf_reserve(&pc->dels, 8) == 0);
		memcpy(pc->dels.p, &id7, 8);
		pc->dels.len = 8;
		bb->ndels = 1;
		coll_put(c);
	}
	CHECK_EQ_INT(cl_flush(b, bb, &ins, &del, &err), 0);
	CHECK_EQ_INT((int)del, 1);
	CHECK_EQ_INT(node_visible(a, &err), 0);
	CHECK_EQ_INT((int)cl_rows(a), ROWS - 1);
	CHECK(cl_nearest(a, 7) != 7);
	CHECK_EQ_INT((int)cl_nearest(a, 8), 8);

	unit_diag("the same new id flushed on both: one DUPID");
	REQUIRE(cl_insert(a, ba, 1000, 1, &err) == 0);
	REQUIRE(cl_insert(b, bb, 1000, 1, &err) == 0);
	CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
	CHECK_EQ_INT(cl_flush(b, bb, &ins, &del, &err), MV_EDATA);
	CHECK_EQ_INT(err.kind, MV_K_DUPID);
	mv_err_clear(&err);
	CHECK_EQ_INT(node_visible(b, &err), 0);
	CHECK_EQ_INT((int)cl_rows(b), ROWS);
	CHECK_EQ_INT((int)cl_rows(a), ROWS);
	CHECK_EQ_INT((int)cl_nearest(b, 1000), 1000);

	unit_diag("a flush on B after A's: both sides see both");
	REQUIRE(cl_insert(b, bb, 2000, 3, &err) == 0);
	CHECK_EQ_INT(cl_flush(b, bb, &ins, &del, &err), 0);
	CHECK_EQ_INT(node_visible(a, &err), 0);
	CHECK_EQ_INT((int)cl_rows(a), ROWS + 3);
	CHECK_EQ_INT((int)cl_nearest(a, 2002), 2002);

	unit_diag("a flush is applied on its node at once, without its "
		  "follower; not past another node's commit");
	{
		int64_t rev, mine;
		struct coll *c;

		/* A's state record current (B flushed last), then A's
		 * follower stopped: only the flush itself can move A on. */
		REQUIRE(cl_insert(a, ba, 399, 1, &err) == 0);
		CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
		CHECK_EQ_INT(node_visible(a, &err), 0);
		node_cluster_stop(a);
		/* Its lease revoked deleted its live key: as if applied. */
		REQUIRE(mv_meta_revision(m, &rev, &err) == 0);
		atomic_store(&a->applied_rev, rev);
		REQUIRE(cl_insert(a, ba, 400, 2, &err) == 0);
		CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
		REQUIRE(mv_meta_revision(m, &rev, &err) == 0);
		CHECK_EQ_INT(atomic_load(&a->applied_rev), rev);
		CHECK_EQ_INT(node_visible(a, &err), 0);
		CHECK_EQ_INT((int)cl_nearest(a, 401), 401);
		mine = rev;
		/* Another node's commit in between: A has not applied it. */
		REQUIRE(node_create(b, "default", "gap", DIM, MV_L2, NULL, 0,
				    0, &existed, &err) == 0);
		REQUIRE(cl_insert(a, ba, 450, 1, &err) == 0);
		CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
		REQUIRE(mv_meta_revision(m, &rev, &err) == 0);
		CHECK(rev >= mine + 2);
		CHECK_EQ_INT(atomic_load(&a->applied_rev), mine);
		REQUIRE(node_cluster_start(a, atomic_load(&a->applied_rev),
					   &err) == 0);
		CHECK_EQ_INT(node_visible(a, &err), 0);
		CHECK(atomic_load(&a->applied_rev) >= rev);
		c = node_coll_get(a, "default", "gap");
		CHECK(c != NULL);
		coll_put(c);
		CHECK_EQ_INT((int)cl_nearest(a, 450), 450);
		CHECK_EQ_INT(node_visible(b, &err), 0);
		CHECK_EQ_INT((int)cl_nearest(b, 450), 450);
	}

	unit_diag("an index built on A, and new search defaults, on B");
	{
		struct coll *c = node_coll_get(a, "default", "things"), *cb;
		int state = BUILD_NONE;

		REQUIRE(c != NULL);
		CHECK_EQ_INT(node_index_start(a, c, "Flat", "", &err), 0);
		for (int i = 0; i < 500 && state != BUILD_DONE &&
		     state != BUILD_FAILED; i++) {
			usleep(10000);
			pthread_mutex_lock(&c->build_lock);
			state = c->build.state;
			pthread_mutex_unlock(&c->build_lock);
		}
		CHECK_EQ_INT(state, BUILD_DONE);
		CHECK_EQ_INT(node_visible(b, &err), 0);
		cb = node_coll_get(b, "default", "things");
		REQUIRE(cb != NULL);
		CHECK(cb->index != NULL);
		coll_put(cb);
		CHECK_EQ_INT(node_index_set(a, c, "nprobe=7", &err), 0);
		CHECK_EQ_INT(node_visible(b, &err), 0);
		cb = node_coll_get(b, "default", "things");
		REQUIRE(cb != NULL);
		CHECK(cb->index && strstr(cb->index->params, "nprobe=7"));
		CHECK_EQ_INT((int)cl_nearest(b, 2002), 2002);
		coll_put(cb);
		coll_put(c);
	}

	unit_diag("B away while the history is compacted: B reloads everything");
	{
		int64_t rev;
		struct coll *c;

		node_cluster_stop(b);
		REQUIRE(node_create(a, "default", "late", DIM, MV_L2, NULL, 0,
				    0, &existed, &err) == 0);
		REQUIRE(cl_insert(a, ba, 3000, 3, &err) == 0);
		CHECK_EQ_INT(cl_flush(a, ba, &ins, &del, &err), 0);
		REQUIRE(mv_meta_revision(m, &rev, &err) == 0);
		REQUIRE(mv_meta_compact(m, rev, &err) == 0);
		REQUIRE(node_cluster_start(b, atomic_load(&b->applied_rev),
					   &err) == 0);
		CHECK_EQ_INT(node_visible(b, &err), 0);
		c = node_coll_get(b, "default", "late");
		CHECK(c != NULL);
		coll_put(c);
		CHECK_EQ_INT((int)cl_rows(b), (int)cl_rows(a));
		CHECK_EQ_INT((int)cl_nearest(b, 3001), 3001);
	}

	unit_diag("drop on A, gone on B");
	CHECK_EQ_INT(node_drop(a, "default", "things", &err), 0);
	CHECK_EQ_INT(node_visible(b, &err), 0);
	CHECK(node_coll_get(b, "default", "things") == NULL);

	unit_diag("a restart keeps the node's number, sweeps its own files only");
	REQUIRE(node_create(a, "default", "other", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	{
		struct coll *c = node_coll_get(a, "default", "other");
		char p1[200], p2[200];
		struct iovec iov = { "x", 1 };
		void *buf = NULL;
		size_t len;

		REQUIRE(c != NULL);
		snprintf(p1, sizeof(p1), "default/other-%s/n1-5-0123456789abcdef.vec",
			 c->token);
		snprintf(p2, sizeof(p2), "default/other-%s/n2-5-0123456789abcdef.vec",
			 c->token);
		coll_put(c);
		REQUIRE(mv_store_put(s, p1, &iov, 1, &err) == 0);
		REQUIRE(mv_store_put(s, p2, &iov, 1, &err) == 0);
		/* A user lost from /user_list (two nodes wrote it at once). */
		REQUIRE(node_create(a, "u2", "z", DIM, MV_L2, NULL, 0, 0,
				    &existed, &err) == 0);
		REQUIRE(mv_meta_put(m, "/user_list", "[\"default\"]", 11,
				    &err) == 0);
		node_close(b);
		REQUIRE(cluster_open(b, unit_path("cl-b"), m, s,
				     "127.0.0.1:7002", &err) == 0);
		CHECK_EQ_INT((int)b->node_no, 2);
		c = node_coll_get(b, "u2", "z");
		CHECK(c != NULL);
		coll_put(c);
		CHECK_EQ_INT(mv_store_get(s, p1, &buf, &len, &err), 0);
		free(buf);
		CHECK_EQ_INT(mv_store_get(s, p2, &buf, &len, &err), MV_ENOINPUT);
		mv_err_clear(&err);
	}
	batch_free(ba);
	batch_free(bb);
	node_close(a);
	node_close(b);
	the_node = NULL;
	mv_store_close(s);
	mv_meta_close(m);
	free(a);
	free(b);
}

/* The units nd serves of things (*done) and those it does not (*todo);
 * the nearest id to vec_of(id) among those it serves into *near. */
static int cl_units(struct node *nd, int id, size_t *done, size_t *todo,
		    int64_t *near)
{
	struct mv_err err = { 0 };
	struct coll *c = node_coll_get(nd, "default", "things");
	struct node_units d = { 0 }, t = { 0 };
	float q[DIM], dist[1];
	int rc;

	if (!c)
		return -1;
	vec_of(id, q);
	rc = node_search_units(nd, c, q, 1, 1, 0, 0, NULL, 0, NULL, &d, &t, near,
			       dist, &err);
	if (rc == 0 && *near != MV_ID_NONE && dist[0] != 0.0f)
		*near = -1;
	*done = d.n;
	*todo = t.n;
	node_units_free(&d);
	node_units_free(&t);
	coll_put(c);
	return rc;
}

TEST(engine_cluster_placement_splits_units_and_takes_them_over)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = mv_meta_open_local(unit_path("pl-meta"), &err);
	struct mv_store *s = mv_store_open_local(unit_path("pl-store"), &err);
	struct node *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct batch *ba;
	int64_t ins = 0, del = 0, na = 0, nb = 0;
	size_t da = 0, ta = 0, db = 0, tb = 0;
	int existed = 0, split = 0, whole = 0;

	REQUIRE(m && s && a && b);
	cl_replicas = "0";
	REQUIRE(cluster_open(a, unit_path("pl-a"), m, s, "127.0.0.1:7001",
			     &err) == 0);
	REQUIRE(cluster_open(b, unit_path("pl-b"), m, s, "127.0.0.1:7002",
			     &err) == 0);
	cl_replicas = "1";
	REQUIRE(node_create(a, "default", "things", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	ba = batch_new(NULL);
	REQUIRE(ba);
	/* Ten segments, all written by A. */
	for (int f = 0; f < 10; f++) {
		REQUIRE(cl_insert(a, ba, f * 20, 20, &err) == 0);
		REQUIRE(cl_flush(a, ba, &ins, &del, &err) == 0);
	}
	CHECK_EQ_INT(node_visible(b, &err), 0);
	/* Each unit on one node once the placers passed (A frees the
	 * vectors of what it wrote for B). */
	for (int i = 0; i < 100 && !split; i++) {
		CHECK_EQ_INT(cl_units(a, 77, &da, &ta, &na), 0);
		CHECK_EQ_INT(cl_units(b, 77, &db, &tb, &nb), 0);
		split = da + ta == 10 && db + tb == 10 && da + db == 10 &&
			da > 0 && db > 0;
		if (!split)
			usleep(50000);
	}
	unit_diag("A serves %zu units, B %zu", da, db);
	CHECK(split);
	CHECK_EQ_INT((int)(node_segment_count(a) + node_segment_count(b)), 10);
	/* Row 77 is in exactly one node's part. */
	CHECK((na == 77) != (nb == 77));
	{
		/* One of the two merges the collection; both hold what they
		 * should up to what they applied (LOAD's loaded=). */
		struct coll *ca = node_coll_get(a, "default", "things");
		struct coll *cb = node_coll_get(b, "default", "things");

		REQUIRE(ca && cb);
		CHECK(node_place_merger(a, ca) != node_place_merger(b, cb));
		int loaded = 0;

		coll_put(ca);
		coll_put(cb);
		for (int i = 0; i < 100 && !loaded; i++) {
			loaded = node_place_loaded(a) ==
				 atomic_load(&a->applied_rev) &&
				 node_place_loaded(b) ==
				 atomic_load(&b->applied_rev);
			if (!loaded)
				usleep(50000);
		}
		CHECK(loaded);
	}
	/* B leaves (its lease revoked): A loads B's units from storage. */
	node_close(b);
	for (int i = 0; i < 100 && !whole; i++) {
		CHECK_EQ_INT(cl_units(a, 177, &da, &ta, &na), 0);
		whole = da == 10 && ta == 0;
		if (!whole)
			usleep(50000);
	}
	CHECK(whole);
	{
		/* Alone, A merges, and once its placer passed, it reports
		 * everything it applied as loaded again. */
		struct coll *ca = node_coll_get(a, "default", "things");
		int loaded = 0;

		REQUIRE(ca);
		CHECK(node_place_merger(a, ca));
		coll_put(ca);
		for (int i = 0; i < 100 && !loaded; i++) {
			loaded = node_place_loaded(a) ==
				 atomic_load(&a->applied_rev);
			if (!loaded)
				usleep(50000);
		}
		CHECK(loaded);
	}
	for (int id = 0; id < 200; id += 13)
		CHECK_EQ_INT((int)cl_nearest(a, id), id);
	{
		/*
		 * A unit asked of A that A holds (alone, it holds every name)
		 * but no longer knows (merged away meanwhile) is not taken for
		 * searched: it stays asked, listed as gone.  Before, it was
		 * taken out, and its rows were silently left out of a search.
		 */
		struct coll *ca = node_coll_get(a, "default", "things");
		struct node_units want = { 0 }, gone = { 0 };
		float q[DIM], dist[1];
		int64_t got[1];

		REQUIRE(ca);
		vec_of(5, q);
		REQUIRE(node_units_add(&want, "n9-1-merged-away.vec") == 0);
		CHECK_EQ_INT(node_search_held(a, ca, &want, 100, q, 1, 1, 0, 0,
					      NULL, 0, got, dist, &gone, &err),
			     0);
		CHECK_EQ_INT((int)want.n, 0);
		CHECK_EQ_INT((int)gone.n, 1);
		CHECK(gone.n == 1 && !strcmp(gone.v[0], "n9-1-merged-away.vec"));
		node_units_free(&want);
		node_units_free(&gone);
		coll_put(ca);
	}
	batch_free(ba);
	node_close(a);
	the_node = NULL;
	mv_store_close(s);
	mv_meta_close(m);
	free(a);
	free(b);
}

/*
 * A string column whose row count cannot fit its block (a segment file's
 * header with a right CRC but a wrong n): refused as bad data before the
 * row offsets are allocated, and without n * 8 wrapping to a small block
 * (fuzz_strblock, corpus/strblock/regress-*).
 */
TEST(engine_string_column_rows)
{
	static const uint64_t rows[] = {
		3, 1ull << 40, (1ull << 61) + 1, UINT64_MAX,
	};
	unsigned char rec[8] = { 0 };	/* two empty strings */

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct col col = { 0 };
		struct nbuf nb = { malloc(8), 8, 8, 0, 0 };

		memcpy(nb.p, rec, 8);
		CHECK_EQ_INT(node_seg_col_from(&col, MV_STRING, &nb, rows[i]),
			     MV_EDATA);
		CHECK(!col.off && nb.p && nb.len == 8);
		free(nb.p);
	}
	{
		struct col col = { 0 };
		struct nbuf nb = { malloc(8), 8, 8, 0, 0 };

		memcpy(nb.p, rec, 8);
		CHECK_EQ_INT(node_seg_col_from(&col, MV_STRING, &nb, 2), 0);
		CHECK(col.off && col.off[0] == 0 && col.off[1] == 4);
		free(col.vals);
		free(col.off);
	}
}

/*
 * test_engine.c - the engine (libmv/engine/) as a library, without the
 * daemon: open it on a scratch directory, create a collection, insert,
 * flush, search exactly, then close, reopen and search again.
 */
#include <stdlib.h>
#include <string.h>
#include "engine/internal.h"
#include "unit.h"

#define DIM 4
#define ROWS 50

static int engine_open(struct node *nd, const char *dir, struct mv_err *err)
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
	REQUIRE(engine_open(nd, dir, &err) == 0);
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

	REQUIRE(engine_open(nd, dir, &err) == 0);
	check_search(nd, "after reopening");
	node_close(nd);
	the_node = NULL;
	free(nd);
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

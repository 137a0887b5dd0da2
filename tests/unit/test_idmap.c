/*
 * test_idmap.c - unit tests of the id map (idmap.h): random puts, gets and
 * deletes against a plain array, and bulk puts of a segment's rows.
 */
#include <stdlib.h>
#include "idmap.h"
#include "unit.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

TEST(idmap_random_ops_match_an_array)
{
	enum { SPACE = 5000 };
	static long row[SPACE];	/* -1: absent */
	struct mv_idmap m;
	uint64_t seed = 42;
	int bad = 0;

	mv_idmap_init(&m);
	for (int i = 0; i < SPACE; i++)
		row[i] = -1;
	for (int op = 0; op < 200000; op++) {
		uint64_t r = rnd(&seed);
		/* ids clustered in strides, negative too, to stress probing */
		int k = (int)(r % SPACE);
		int64_t id = (int64_t)k * 64 - 100000;

		if (r >> 62) {
			CHECK_EQ_INT(mv_idmap_put(&m, id, &m, (uint64_t)op), 0);
			row[k] = op;
		} else {
			CHECK_EQ_INT(mv_idmap_del(&m, id), row[k] >= 0);
			row[k] = -1;
		}
	}
	for (int k = 0; k < SPACE; k++) {
		struct mv_idmap_ent *e = mv_idmap_get(&m, (int64_t)k * 64 - 100000);

		if (row[k] < 0 ? e != NULL : !e || e->row != (uint64_t)row[k])
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	mv_idmap_release(&m);
}

TEST(idmap_put_rows_equals_puts)
{
	size_t n = 100000;
	int64_t *ids = malloc(n * sizeof(*ids));
	struct mv_idmap a, b;
	int seg, bad = 0;

	REQUIRE(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)(i < n / 2 ? i : i * 977 + 5);
	mv_idmap_init(&a);
	mv_idmap_init(&b);
	CHECK_EQ_INT(mv_idmap_put_rows(&a, ids, n, &seg, 10), 0);
	for (size_t i = 0; i < n; i++)
		mv_idmap_put(&b, ids[i], &seg, 10 + i);
	CHECK_EQ_U64(a.n, n);
	CHECK_EQ_U64(b.n, n);
	for (size_t i = 0; i < n; i++) {
		struct mv_idmap_ent *e = mv_idmap_get(&a, ids[i]);

		if (!e || e->row != 10 + i || e->seg != (void *)&seg)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	/* Again over the same ids: replaced, not added. */
	CHECK_EQ_INT(mv_idmap_put_rows(&a, ids, n, &seg, 0), 0);
	CHECK_EQ_U64(a.n, n);
	CHECK_EQ_U64(mv_idmap_get(&a, ids[7])->row, 7);
	CHECK(mv_idmap_get(&a, -1) == NULL);
	mv_idmap_release(&a);
	mv_idmap_release(&b);
	free(ids);
}

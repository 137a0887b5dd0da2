/*
 * test_place.c - placement (libmv/engine/place.c): rendezvous hashing
 * of units over node numbers is stable, balanced, and moves only a
 * leaving node's units.
 */
#include <stdint.h>
#include <stdio.h>
#include "../../libmv/engine/internal.h"
#include "rank.h"
#include "unit.h"

#define UNITS 10000

static void unit_name(char *out, size_t cap, int i)
{
	snprintf(out, cap, "u/things-0123456789abcdef/n%d-17331000%05d-"
		 "%016x.vec", i % 3 + 1, i, (unsigned)(i * 2654435761u));
}

TEST(place_pick_is_stable_and_ordered)
{
	uint32_t nodes[5] = { 1, 2, 3, 4, 5 }, rev[5] = { 5, 4, 3, 2, 1 };
	uint32_t a[5], b[5];
	char u[200];

	for (int i = 0; i < 100; i++) {
		unit_name(u, sizeof(u), i);
		CHECK_EQ_INT(node_place_pick(u, nodes, 5, 2, a), 2);
		/* the same in any order of the live list */
		CHECK_EQ_INT(node_place_pick(u, rev, 5, 2, b), 2);
		CHECK(a[0] == b[0] && a[1] == b[1]);
		CHECK(a[0] != a[1]);
		CHECK(mv_rank_hash(u, a[0]) >= mv_rank_hash(u, a[1]));
		/* all of them, best first, when asked for more than live */
		CHECK_EQ_INT(node_place_pick(u, nodes, 5, 9, b), 5);
		CHECK(b[0] == a[0] && b[1] == a[1]);
		for (int j = 1; j < 5; j++)
			CHECK(mv_rank_hash(u, b[j - 1]) >=
			      mv_rank_hash(u, b[j]));
	}
	CHECK_EQ_INT(node_place_pick("x", nodes, 0, 2, a), 0);
	/*
	 * Known values (FNV-1a of the path, mixed with the number by
	 * splitmix64; computed apart in Python): nodes of two versions
	 * must agree on every placement.
	 */
	CHECK(mv_rank_hash("a/b-0/c.vec", 1) == 0xdd663d2e222f751cULL);
	CHECK(mv_rank_hash("a/b-0/c.vec", 2) == 0x88e891e23d6de92bULL);
}

TEST(place_balanced_over_five_nodes)
{
	uint32_t nodes[5] = { 1, 2, 3, 4, 5 }, h[2];
	int first[6] = { 0 }, held[6] = { 0 };
	char u[200];

	for (int i = 0; i < UNITS; i++) {
		unit_name(u, sizeof(u), i);
		node_place_pick(u, nodes, 5, 2, h);
		first[h[0]]++;
		held[h[0]]++;
		held[h[1]]++;
	}
	for (int n = 1; n <= 5; n++) {
		unit_diag("node %d: first of %d, holds %d", n, first[n],
			  held[n]);
		/* 2000 and 4000 each, within 5 % */
		CHECK(first[n] > 1900 && first[n] < 2100);
		CHECK(held[n] > 3800 && held[n] < 4200);
	}
}

TEST(place_only_a_leaving_nodes_units_move)
{
	uint32_t five[5] = { 1, 2, 3, 4, 5 }, four[4] = { 1, 2, 4, 5 };
	uint32_t a[2], b[2];
	int moved = 0;
	char u[200];

	for (int i = 0; i < UNITS; i++) {
		unit_name(u, sizeof(u), i);
		node_place_pick(u, five, 5, 2, a);
		node_place_pick(u, four, 4, 2, b);
		if (a[0] != 3 && a[1] != 3) {
			/* node 3 did not hold it: nothing changes */
			CHECK(a[0] == b[0] && a[1] == b[1]);
		} else {
			/* the other holder stays; one new one comes */
			uint32_t other = a[0] == 3 ? a[1] : a[0];

			CHECK(b[0] == other || b[1] == other);
			moved++;
		}
	}
	unit_diag("%d of %d units had node 3 among their holders", moved,
		  UNITS);
	CHECK(moved > 3800 && moved < 4200);
}

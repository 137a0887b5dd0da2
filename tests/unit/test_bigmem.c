/*
 * test_bigmem.c - unit tests of the large-buffer allocator (bigmem.h):
 * contents survive growth from small pages to huge ones and beyond, freed
 * memory is pooled within the limit and moved into the next buffer, and
 * trimming returns it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bigmem.h"
#include "unit.h"

static void fill(unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		p[i] = (unsigned char)(i * 7 + i / 4096);
}

static int same(const unsigned char *p, size_t to)
{
	for (size_t i = 0; i < to; i++)
		if (p[i] != (unsigned char)(i * 7 + i / 4096))
			return 0;
	return 1;
}

TEST(bigmem_grow_keeps_contents)
{
	struct mv_big b = { 0 };
	size_t len = 0;

	/* Appends of 1.5 MiB: small pages, then huge, then moved twice. */
	for (int i = 0; i < 14; i++) {
		size_t more = 3u << 19;

		REQUIRE(mv_big_reserve(&b, len + more) == 0);
		CHECK(b.cap >= len + more);
		mv_big_touch(&b, len + more);
		CHECK(b.touched >= len + more);
		fill(b.p, len, len + more);
		len += more;
		if (b.cap >= MV_BIG_MIN)
			CHECK_EQ_U64((uintptr_t)b.p % (2u << 20), 0);
	}
	CHECK(same(b.p, len));
	mv_big_free(&b, len, 0);
	CHECK(b.p == NULL && b.cap == 0);
	CHECK_EQ_U64(mv_big_pooled(), 0);
}

TEST(bigmem_pool_reuses_and_trims)
{
	struct mv_big a = { 0 }, b = { 0 }, c = { 0 };
	size_t n = 24u << 20;

	mv_big_pool_limit(40u << 20);
	REQUIRE(mv_big_reserve(&a, n) == 0);
	mv_big_touch(&a, n);
	fill(a.p, 0, n);
	/* 24 MiB used of a 32 MiB buffer: 24 MiB pooled. */
	mv_big_free(&a, n, 1);
	CHECK_EQ_U64(mv_big_pooled(), n);
	/* Over the limit: not kept. */
	REQUIRE(mv_big_reserve(&c, n) == 0);
	mv_big_touch(&c, n);
	mv_big_free(&c, n, 1);
	CHECK_EQ_U64(mv_big_pooled(), n);
	/* The next buffer takes its pages from the pool and works. */
	REQUIRE(mv_big_reserve(&b, 10u << 20) == 0);
	mv_big_touch(&b, 10u << 20);
	CHECK_EQ_U64(mv_big_pooled(), n - (10u << 20));
	fill(b.p, 0, 10u << 20);
	REQUIRE(mv_big_reserve(&b, 40u << 20) == 0);
	mv_big_touch(&b, 40u << 20);
	CHECK_EQ_U64(mv_big_pooled(), 0);
	fill(b.p, 10u << 20, 40u << 20);
	CHECK(same(b.p, 40u << 20));
	/* Grown again after taking from the pool: still whole. */
	REQUIRE(mv_big_reserve(&b, 70u << 20) == 0);
	CHECK(same(b.p, 40u << 20));
	mv_big_free(&b, 40u << 20, 1);
	CHECK_EQ_U64(mv_big_pooled(), 40u << 20);
	mv_big_trim(3600);	/* young: kept */
	CHECK_EQ_U64(mv_big_pooled(), 40u << 20);
	mv_big_trim(0);
	CHECK_EQ_U64(mv_big_pooled(), 0);
	mv_big_pool_limit(0);
}

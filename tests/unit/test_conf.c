/*
 * test_conf.c - unit tests of mv.conf parsing (conf.h): sizes with
 * suffixes, and sizes too big for 64 bits refused rather than wrapped.
 */
#include "conf.h"
#include "unit.h"

TEST(conf_parse_size_suffixes)
{
	CHECK_EQ_U64(mv_parse_size("4096"), 4096);
	CHECK_EQ_U64(mv_parse_size("16M"), 16u << 20);
	CHECK_EQ_U64(mv_parse_size("1GiB"), 1u << 30);
	CHECK_EQ_U64(mv_parse_size("2kB"), 2048);
	CHECK_EQ_U64(mv_parse_size("8589934591G"), 8589934591ull << 30);
	CHECK_EQ_INT(mv_parse_size("-1"), -1);
	CHECK_EQ_INT(mv_parse_size("12Q"), -1);
	CHECK_EQ_INT(mv_parse_size(""), -1);
}

/* Found by tests/fuzz/fuzz_conf: the shift overflowed (and wrapped). */
TEST(conf_parse_size_refuses_overflow)
{
	struct mv_conf c;
	struct mv_err err = { 0 };

	CHECK_EQ_INT(mv_parse_size("9223372036854775807M"), -1);
	CHECK_EQ_INT(mv_parse_size("8589934592G"), -1);	/* 2^63 */
	CHECK_EQ_INT(mv_parse_size("17592186044416M"), -1);	/* 2^64: 0 */
	CHECK_EQ_INT(mv_parse_size("17592186044417M"), -1);	/* 2^64 + 1M */
	CHECK_EQ_INT(mv_parse_size("9007199254740992K"), -1);	/* 2^63 */
	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_set(&c, "flush_limit", "17592186044417M", &err),
		     MV_ECONFIG);
	CHECK_EQ_U64(c.flush_limit, MV_FLUSH_LIMIT_DEFAULT);
	mv_conf_release(&c);
}

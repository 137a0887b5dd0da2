/*
 * test_proto.c - unit tests of the request-line parser (proto.h): words
 * split at spaces, and numbers that are digits only and within bounds.
 */
#include <string.h>
#include "proto.h"
#include "unit.h"

TEST(proto_split_words_and_limit)
{
	char line[] = "  SEARCH c  10 1 16   nprobe=8 ", *argv[7];
	char many[] = "a b c d e";

	CHECK_EQ_INT(mv_proto_split(line, argv, 6), 6);
	CHECK_STR(argv[5], "nprobe=8");
	strcpy(line, "  SEARCH c  10 1   ");
	CHECK_EQ_INT(mv_proto_split(line, argv, 4), 4);
	CHECK_STR(argv[0], "SEARCH");
	CHECK_STR(argv[3], "1");
	CHECK(argv[4] == NULL);
	CHECK_EQ_INT(mv_proto_split(many, argv, 4), -1);
	strcpy(line, "   ");
	CHECK_EQ_INT(mv_proto_split(line, argv, 4), 0);
}

TEST(proto_u64_digits_within_bounds)
{
	uint64_t v = 7;

	CHECK_EQ_INT(mv_proto_u64("0", 0, &v), 0);
	CHECK_EQ_U64(v, 0);
	CHECK_EQ_INT(mv_proto_u64("1073741824", 1u << 30, &v), 0);
	CHECK_EQ_U64(v, 1u << 30);
	CHECK_EQ_INT(mv_proto_u64("1073741825", 1u << 30, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("18446744073709551615", UINT64_MAX, &v), 0);
	CHECK_EQ_U64(v, UINT64_MAX);
	CHECK_EQ_INT(mv_proto_u64("18446744073709551616", UINT64_MAX, &v), -1);
	/* A single digit above a small bound (max - digit must not wrap). */
	CHECK_EQ_INT(mv_proto_u64("7", 5, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("00012", 100, &v), 0);
	CHECK_EQ_U64(v, 12);
	v = 3;
	CHECK_EQ_INT(mv_proto_u64("", 100, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("-1", 100, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("+1", 100, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("\t1", 100, &v), -1);
	CHECK_EQ_INT(mv_proto_u64("1x", 100, &v), -1);
	CHECK_EQ_U64(v, 3);
}

TEST(proto_addr_list)
{
	CHECK_EQ_INT(mv_proto_addr_list("127.0.0.1:7531", 8), 1);
	CHECK_EQ_INT(mv_proto_addr_list("a:1,b:2,[::1]:3", 8), 3);
	CHECK_EQ_INT(mv_proto_addr_list("1,2,3,4,5,6,7,8", 8), 8);
	CHECK_EQ_INT(mv_proto_addr_list("1,2,3,4,5,6,7,8,9", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list(",a", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("a,", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("a,,b", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("a b", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("a\tb", 8), -1);
	CHECK_EQ_INT(mv_proto_addr_list("a\x80", 8), -1);
	CHECK_EQ_INT(mv_proto_listed("a:1,b:2", "b:2"), 1);
	CHECK_EQ_INT(mv_proto_listed("a:1,b:2", "a:1"), 1);
	CHECK_EQ_INT(mv_proto_listed("a:1,b:2", "a:"), 0);
	CHECK_EQ_INT(mv_proto_listed("a:1,b:22", "b:2"), 0);
	CHECK_EQ_INT(mv_proto_listed("", "a"), 0);
	CHECK_EQ_INT(mv_proto_listed("a", ""), 0);
}

/*
 * test_asof.c - the time axis's engine logic (libmv/engine/asof.c) on
 * hand-made segments: which rows a segment shows as of a flush (insert
 * seqs, per-row seqs of a merged segment, deletion seqs, with a filter),
 * rows by id as of a flush, and the tools' --as-of parser
 * (libmv/timeaxis.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "filter.h"
#include "unit.h"

/* A segment of n rows, ids first.., written by flush seq. */
static struct seg *mkseg(uint64_t n, int64_t first, uint64_t seq)
{
	struct seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ids = malloc(n * sizeof(*s->ids));
	s->cols = calloc(1, sizeof(*s->cols));
	for (uint64_t r = 0; s->ids && r < n; r++)
		s->ids[r] = first + (int64_t)r;
	s->n = n;
	s->seq = seq;
	return s;
}

/* The rows set in bits, as a string of 0 and 1. */
static const char *rowstr(const uint8_t *bits, uint64_t n)
{
	static char out[64];

	for (uint64_t r = 0; r < n && r < sizeof(out) - 1; r++)
		out[r] = bits[r / 8] & (1u << (r % 8)) ? '1' : '0';
	out[n < sizeof(out) - 1 ? n : sizeof(out) - 1] = '\0';
	return out;
}

TEST(asof_segment_rows_by_insert_and_delete_seq)
{
	struct seg *s = mkseg(11, 0, 3);
	uint8_t bits[2];

	REQUIRE(s && s->ids);
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 1, 4), 0);
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 10, 6), 0);
	/* Deleting again keeps the first seq. */
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 1, 9), 0);
	CHECK_EQ_INT((int)s->ndseq, 2);
	CHECK_EQ_INT((int)s->ndeleted, 2);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 2, bits), 0);
	CHECK(strcmp(rowstr(bits, 11), "00000000000") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 3, bits), 11);
	CHECK(strcmp(rowstr(bits, 11), "11111111111") == 0);
	CHECK_EQ_INT(bits[1] >> 3, 0);		/* nothing past n */
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 5, bits), 10);
	CHECK(strcmp(rowstr(bits, 11), "10111111111") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 6, bits), 9);
	CHECK(strcmp(rowstr(bits, 11), "10111111110") == 0);
	/* 0: now, the deletion bitmap. */
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 0, bits), 9);
	CHECK(strcmp(rowstr(bits, 11), "10111111110") == 0);
	node_seg_free(s);
}

TEST(asof_merged_segment_rows_keep_their_own_seqs)
{
	static const uint64_t ins[6] = { 1, 1, 2, 5, 5, 2 };
	struct seg *s = mkseg(6, 100, 5);
	uint8_t bits[1];

	REQUIRE(s && s->ids);
	s->rowseq = malloc(sizeof(ins));
	REQUIRE(s->rowseq != NULL);
	memcpy(s->rowseq, ins, sizeof(ins));
	s->minseq = 1;
	/* Row 0 was deleted by flush 3, row 2 by flush 5. */
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 0, 3), 0);
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 2, 5), 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 1, bits), 2);
	CHECK(strcmp(rowstr(bits, 6), "110000") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 2, bits), 4);
	CHECK(strcmp(rowstr(bits, 6), "111001") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 4, bits), 3);
	CHECK(strcmp(rowstr(bits, 6), "011001") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, NULL, 5, bits), 4);
	CHECK(strcmp(rowstr(bits, 6), "010111") == 0);
	CHECK_EQ_INT((int)node_seg_ins(s, 3), 5);
	node_seg_free(s);
}

TEST(asof_and_filter_combine)
{
	struct mv_err err = { 0 };
	struct mv_filter *f = mv_filter_parse("id >= 3 and id != 5", NULL, 0,
					      &err);
	struct seg *s = mkseg(8, 0, 2);
	uint8_t bits[1];

	REQUIRE(f != NULL);
	REQUIRE(s && s->ids);
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 4, 3), 0);
	CHECK_EQ_INT(node_seg_set_deleted_at(s, 6, 2), 0);
	/* As of 2: 6 deleted; 4 still there; the filter drops 0-2 and 5. */
	CHECK_EQ_INT((int)node_seg_match_at(s, f, 2, bits), 3);
	CHECK(strcmp(rowstr(bits, 8), "00011001") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, f, 3, bits), 2);
	CHECK(strcmp(rowstr(bits, 8), "00010001") == 0);
	CHECK_EQ_INT((int)node_seg_match_at(s, f, 1, bits), 0);
	mv_filter_free(f);
	node_seg_free(s);
}

TEST(asof_rows_by_id_and_sorted_ids)
{
	struct coll *c = coll_new("u", "c", 2, MV_L2, NULL, 0);
	struct seg *a = mkseg(4, 1, 1), *b = mkseg(1, 2, 2), *sg;
	struct node_past p;
	struct mv_err err = { 0 };
	uint64_t row;
	int64_t *ids;
	size_t n;

	REQUIRE(c && a && b);
	REQUIRE(node_seg_attach(c, a, &err) == 0);
	/* Flush 2 upserts id 2: its old row deleted, a new one. */
	REQUIRE(node_seg_set_deleted_at(a, 1, 2) == 0);
	mv_idmap_del(&c->ids, 2);
	REQUIRE(node_seg_attach(c, b, &err) == 0);
	/* Flush 3 deletes id 4. */
	REQUIRE(node_seg_set_deleted_at(a, 3, 3) == 0);
	mv_idmap_del(&c->ids, 4);
	c->next_seq = 4;

	REQUIRE(node_past_init(c, 1, &p) == 0);
	CHECK_EQ_INT(node_row_at(c, &p, 2, &sg, &row), 1);
	CHECK(sg == a && row == 1);
	CHECK_EQ_INT(node_row_at(c, &p, 4, &sg, &row), 1);
	CHECK(sg == a && row == 3);
	node_past_release(&p);
	REQUIRE(node_past_init(c, 2, &p) == 0);
	CHECK_EQ_INT(node_row_at(c, &p, 2, &sg, &row), 1);
	CHECK(sg == b && row == 0);
	CHECK_EQ_INT(node_row_at(c, &p, 4, &sg, &row), 1);
	node_past_release(&p);
	REQUIRE(node_past_init(c, 3, &p) == 0);
	CHECK_EQ_INT(node_row_at(c, &p, 4, &sg, &row), 0);
	CHECK_EQ_INT(node_row_at(c, &p, 9, &sg, &row), 0);
	node_past_release(&p);

	REQUIRE(node_asof_ids(c, 1, NULL, &ids, &n, &err) == 0);
	CHECK_EQ_INT((int)n, 4);
	CHECK(n == 4 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 &&
	      ids[3] == 4);
	free(ids);
	REQUIRE(node_asof_ids(c, 3, NULL, &ids, &n, &err) == 0);
	CHECK(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3);
	free(ids);
	/* The latest flush, or past it, is now. */
	CHECK_EQ_INT((int)node_asof_now(c, 3), 0);
	CHECK_EQ_INT((int)node_asof_now(c, 2), 2);
	coll_put(c);
}

TEST(asof_ids_sorted_over_the_whole_range_and_kept_for_scan)
{
	static const int64_t in[] = { 5, -3, INT64_MAX, 0, -9000000000000LL,
				      256, 1LL << 40, INT64_MIN + 1, 255, -1,
				      65536, 7 };
	const size_t n0 = sizeof(in) / sizeof(*in);
	struct coll *c = coll_new("u", "c", 2, MV_L2, NULL, 0);
	struct seg *a = mkseg(n0, 0, 1), *b = mkseg(3, 1000, 2);
	struct mv_err err = { 0 };
	int64_t *ids, *kept;
	size_t n;

	REQUIRE(c && a && a->ids && b);
	memcpy(a->ids, in, sizeof(in));
	REQUIRE(node_seg_attach(c, a, &err) == 0);
	REQUIRE(node_seg_attach(c, b, &err) == 0);
	c->next_seq = 3;
	REQUIRE(node_asof_ids(c, 1, NULL, &ids, &n, &err) == 0);
	CHECK_EQ_INT((int)n, (int)n0);
	for (size_t i = 1; i < n; i++)
		if (ids[i - 1] >= ids[i])
			unit_fail(__FILE__, __LINE__, "ids[%zu] %lld >= %lld",
				  i - 1, (long long)ids[i - 1],
				  (long long)ids[i]);
	CHECK(n == n0 && ids[0] == INT64_MIN + 1 && ids[n - 1] == INT64_MAX);
	free(ids);
	/* SCAN's copy: made once, kept while asof and gen stay. */
	REQUIRE(node_asof_scan_ids(c, 1, &err) == 0);
	kept = c->asof_ids;
	CHECK(c->asof_n == n0 && kept[0] == INT64_MIN + 1);
	REQUIRE(node_asof_scan_ids(c, 1, &err) == 0);
	CHECK(c->asof_ids == kept);
	c->gen++;
	REQUIRE(node_asof_scan_ids(c, 1, &err) == 0);
	CHECK(c->asof_n == n0);
	REQUIRE(node_asof_scan_ids(c, 2, &err) == 0);
	CHECK(c->asof_n == n0 + 3 && c->asof_ids[n0 + 2] == INT64_MAX);
	node_asof_scan_done(c);
	CHECK(c->asof_ids == NULL && c->asof_n == 0);
	coll_put(c);
}

TEST(asof_parse_flush_and_time)
{
	struct mv_err err = { 0 };
	uint64_t fl;
	int64_t ms;

	CHECK_EQ_INT(mv_asof_parse("12", &fl, &ms, &err), 0);
	CHECK(fl == 12 && ms == 0);
	CHECK_EQ_INT(mv_asof_parse("@100", &fl, &ms, &err), 0);
	CHECK(fl == 0 && ms == 100000);
	CHECK_EQ_INT(mv_asof_parse("1970-01-02T00:00:00Z", &fl, &ms, &err), 0);
	CHECK(ms == 86400000);
	CHECK_EQ_INT(mv_asof_parse("1970-01-01T01:00:00.25+01:00", &fl, &ms,
				   &err), 0);
	CHECK(ms == 250);
	CHECK_EQ_INT(mv_asof_parse("2026-12-02", &fl, &ms, &err), 0);
	CHECK(ms == 1796169600000LL);
	CHECK_EQ_INT(mv_asof_parse("2000-03-01 00:00", &fl, &ms, &err), 0);
	CHECK(ms == 951868800000LL);
	static const char *const bad[] = { "0", "-1", "", "@", "@x", "1.5",
		"2026-13-01", "2026-02-30", "2026-01-01T24:00:00Z",
		"2026-01-01T10:00:00Q", "yesterday" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		mv_err_clear(&err);
		CHECK_EQ_INT(mv_asof_parse(bad[i], &fl, &ms, &err), MV_EUSAGE);
		CHECK(strstr(err.msg, "--as-of") != NULL);
	}
}

TEST(asof_parse_calendar_limits)
{
	struct mv_err err = { 0 };
	uint64_t fl;
	int64_t ms;
	static const char *const bad[] = { "2025-02-29T00:00:00Z",
		"2023-02-29", "1900-02-29", "2100-02-29", "2026-02-30",
		"2026-04-31", "2026-06-31", "2026-09-31", "2026-11-31",
		"2026-01-32", "2026-01-00", "2026-00-10",
		"2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z",
		"2026-01-01T12:00:60Z", "2016-12-31T23:58:60Z",
		"2016-12-31T23:59:60+01:00", "2016-12-31T23:59:61Z" };

	/* Leap years: every 4th, not every 100th, every 400th. */
	CHECK_EQ_INT(mv_asof_parse("2024-02-29T00:00:00Z", &fl, &ms, &err), 0);
	CHECK(ms == 1709164800000LL);
	CHECK_EQ_INT(mv_asof_parse("2000-02-29", &fl, &ms, &err), 0);
	CHECK(ms == 951782400000LL);
	CHECK_EQ_INT(mv_asof_parse("2026-03-31T23:59:59Z", &fl, &ms, &err), 0);
	CHECK(ms == 1775001599000LL);
	/* A leap second (23:59:60 UTC, here or through an offset) is the
	 * last millisecond of its day. */
	CHECK_EQ_INT(mv_asof_parse("2016-12-31T23:59:60Z", &fl, &ms, &err), 0);
	CHECK(ms == 1483228799999LL);
	CHECK_EQ_INT(mv_asof_parse("2016-12-31T23:59:60.5Z", &fl, &ms, &err),
		     0);
	CHECK(ms == 1483228799999LL);
	CHECK_EQ_INT(mv_asof_parse("2017-01-01T00:59:60+01:00", &fl, &ms,
				   &err), 0);
	CHECK(ms == 1483228799999LL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		mv_err_clear(&err);
		CHECK_EQ_INT(mv_asof_parse(bad[i], &fl, &ms, &err), MV_EUSAGE);
		if (strstr(err.msg, bad[i]) == NULL)
			unit_fail(__FILE__, __LINE__, "'%s' not in '%s'",
				  bad[i], err.msg);
	}
}

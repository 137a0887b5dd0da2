/*
 * test_state.c - the collection state record (state.h): its format, and
 * id reservations by compare-and-swap on the local metadata store.
 */
#include <stdlib.h>
#include <string.h>
#include "state.h"
#include "unit.h"

TEST(state_format_and_parse)
{
	struct mv_state st = { 42, 7 }, back;
	char buf[96];

	mv_state_format(&st, buf, sizeof(buf));
	CHECK_STR(buf, "{\"next_id\":42,\"next_seq\":7}");
	REQUIRE(mv_state_parse(buf, strlen(buf), &back, NULL) == 0);
	CHECK(back.next_id == 42);
	CHECK(back.next_seq == 7);
	st.next_id = MV_STATE_ID_TOP;
	mv_state_format(&st, buf, sizeof(buf));
	CHECK_STR(buf, "{\"next_id\":9223372036854775807,\"ids_full\":true,"
		  "\"next_seq\":7}");
	REQUIRE(mv_state_parse(buf, strlen(buf), &back, NULL) == 0);
	CHECK(back.next_id == MV_STATE_ID_TOP);
	CHECK(mv_state_parse("{\"next_seq\":1}", 14, &back, NULL) == MV_EDATA);
}

TEST(state_reserve_retries_after_another_writer)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = mv_meta_open_local(unit_path("state"), &err);
	const char *key = "/u/c/state", *v0 = "{\"next_id\":0,\"next_seq\":1}";
	const char *other = "{\"next_id\":70000,\"next_seq\":5}";
	char *cur, *val = NULL;
	__int128 base, end;
	int conflicts = 0;
	size_t vlen;
	struct mv_state st;

	REQUIRE(m);
	REQUIRE(mv_meta_put(m, key, v0, strlen(v0), &err) == 0);
	cur = strdup(v0);
	REQUIRE(mv_state_reserve(m, key, &cur, 0, 65536, &base, &end,
				 &conflicts, &err) == 0);
	CHECK(base == 0 && end == 65536);
	CHECK_EQ_INT(conflicts, 0);
	/* Another writer reserves behind our back: our copy is stale. */
	REQUIRE(mv_meta_put(m, key, other, strlen(other), &err) == 0);
	REQUIRE(mv_state_reserve(m, key, &cur, 65536, 10, &base, &end,
				 &conflicts, &err) == 0);
	CHECK_EQ_INT(conflicts, 1);
	CHECK(base == 70000 && end == 70010);
	REQUIRE(mv_meta_get(m, key, &val, &vlen, &err) == 0);
	CHECK_STR(val, "{\"next_id\":70010,\"next_seq\":5}");
	CHECK_STR(cur, val);
	/* Near 2^63 a reservation stops there and says how far it got. */
	REQUIRE(mv_state_reserve(m, key, &cur, INT64_MAX - 2, 65536, &base,
				 &end, NULL, &err) == 0);
	CHECK(base == INT64_MAX - 2 && end == MV_STATE_ID_TOP);
	REQUIRE(mv_state_parse(cur, strlen(cur), &st, NULL) == 0);
	CHECK(st.next_id == MV_STATE_ID_TOP && st.next_seq == 5);
	/* A dropped collection: its record is gone. */
	REQUIRE(mv_meta_del(m, key, &err) == 0);
	CHECK(mv_state_reserve(m, key, &cur, 0, 1, &base, &end, NULL,
			       &err) == MV_ESERVER);
	free(val);
	free(cur);
	mv_meta_close(m);
}

/*
 * test_failalloc.c - allocation failures injected into the engine.
 *
 * The unit runner is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc (Makefile): every direct call of libmv, the engine and
 * the tests goes through the wrappers below, which pass it on unless this
 * thread armed a failure with fail_arm(N): then the Nth allocation from
 * there returns NULL, once.  A test sweeps N = 1, 2, ... over one
 * operation until it runs without meeting the failure, and checks after
 * each run that the operation either failed and changed nothing or
 * succeeded whole.  Only the arming thread fails; nothing is armed
 * outside these tests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"
#include "engine/internal.h"
#include "unit.h"

#define DIM 4

static __thread long fail_at, fail_seen;
static __thread int fail_hit;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static int fail_now(void)
{
	if (!fail_at || ++fail_seen != fail_at)
		return 0;
	fail_hit = 1;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

static void fail_arm(long n)
{
	fail_at = n;
	fail_seen = 0;
	fail_hit = 0;
}

/* Disarm; 1 if the armed allocation was reached (and failed). */
static int fail_disarm(void)
{
	fail_at = 0;
	return fail_hit;
}

/* Rows with ids first..first+n-1, flushed. */
static int fa_insert(struct node *nd, struct coll *c, int64_t first, int n)
{
	struct mv_err err = { 0 };
	struct batch *b = batch_new(NULL);
	struct pcoll *pc;
	int64_t f = -1, ins = 0, del = 0;
	int rc = -1;

	if (!b)
		return -1;
	pthread_mutex_lock(&b->lock);
	pc = batch_coll(b, c);
	if (pc && nbuf_reserve(&pc->vecs, n * DIM * sizeof(float)) == 0 &&
	    nbuf_reserve(&pc->ids, n * 8) == 0) {
		for (int i = 0; i < n; i++) {
			float *v = (float *)(pc->vecs.p + pc->vecs.len) + i * DIM;
			int64_t id = first + i;

			for (int d = 0; d < DIM; d++)
				v[d] = (float)(id * DIM + d);
			memcpy(pc->ids.p + pc->ids.len + i * 8, &id, 8);
		}
		pc->vecs.len += n * DIM * sizeof(float);
		pc->ids.len += n * 8;
		if (node_insert_commit_tail(nd, b, pc, n, 1, 0, 0, &f,
					    &err) == 0 &&
		    node_flush(nd, b, &ins, &del, &err) == 0 && ins == n)
			rc = 0;
	}
	if (rc < 0)
		unit_diag("insert of %d rows: %s", n, err.msg);
	pthread_mutex_unlock(&b->lock);
	batch_free(b);
	return rc;
}

/*
 * Every id of [0, n) but the deleted ones maps to a row of one of c's
 * segments that holds that id and is not deleted; the deleted ones map
 * to nothing.  Returns the number of wrong entries.
 */
static int ids_ok(struct coll *c, int64_t n, int64_t deleted_below)
{
	int bad = 0;

	for (int64_t id = 0; id < n; id++) {
		struct mv_idmap_ent *e = mv_idmap_get(&c->ids, id);
		struct seg *s = NULL;

		if (id < deleted_below) {
			if (e) {
				unit_diag("deleted id %" PRId64 " is mapped", id);
				bad++;
			}
			continue;
		}
		for (size_t i = 0; e && i < c->nsegs; i++)
			if (c->segs[i] == e->seg)
				s = e->seg;
		if (!s || e->row >= s->n || s->ids[e->row] != id ||
		    node_seg_is_deleted(s, e->row)) {
			unit_diag("id %" PRId64 " maps to %s", id,
				  !e ? "nothing" : !s ?
				  "a segment the collection no longer has" :
				  "a wrong row");
			bad++;
		}
	}
	return bad;
}

/*
 * A flush that deletes a row, with its Nth allocation failing, N = 1, 2,
 * ...: it fails and changes nothing, or it succeeds and its delete log is
 * in the collection's list (c->dels, which compaction collects from).
 * Then a restart finds what memory held.  Before the fix, the list grew
 * after the commit and a failed realloc was ignored: the flush succeeded
 * with its delete log missing from the list.
 */
TEST(engine_flush_dellog_alloc_failure)
{
	const char *dir = unit_path("failalloc-dellog");
	struct node *nd = calloc(1, sizeof(*nd));
	struct mv_err err = { 0 };
	struct coll *c;
	int64_t victim = 0, rows;
	size_t ndels;
	int existed = 0, failed = 0, done = 0;

	REQUIRE(nd != NULL);
	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	REQUIRE(node_create(nd, "default", "d", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	c = node_coll_get(nd, "default", "d");
	REQUIRE(c != NULL);
	REQUIRE(fa_insert(nd, c, 0, 64) == 0);
	for (long n = 1; n < 400 && !done && victim < 60; n++) {
		struct batch *b = batch_new(NULL);
		struct pcoll *pc;
		int64_t ins = 0, del = 0;
		int rc, hit;

		REQUIRE(b != NULL);
		pthread_mutex_lock(&b->lock);
		pc = batch_coll(b, c);
		REQUIRE(pc != NULL);
		REQUIRE(nbuf_reserve(&pc->dels, 8) == 0);
		memcpy(pc->dels.p, &victim, 8);
		pc->dels.len = 8;
		b->ndels = 1;
		ndels = c->ndels;
		rows = c->rows;
		mv_err_clear(&err);
		fail_arm(n);
		rc = node_flush(nd, b, &ins, &del, &err);
		hit = fail_disarm();
		pthread_mutex_unlock(&b->lock);
		batch_free(b);
		if (rc < 0) {
			CHECK(hit);
			CHECK(err.msg[0] != '\0');
			CHECK_EQ_INT((int)c->ndels, (int)ndels);
			CHECK_EQ_INT((int)c->rows, (int)rows);
			CHECK(mv_idmap_get(&c->ids, victim) != NULL);
			failed++;
			continue;
		}
		if (c->ndels != ndels + 1)
			unit_diag("allocation %ld failed: the flush deleted "
				  "id %" PRId64 " but its delete log is not "
				  "in the list (%zu logs, %zu before)", n,
				  victim, c->ndels, ndels);
		CHECK_EQ_INT((int)c->ndels, (int)ndels + 1);
		CHECK_EQ_INT((int)del, 1);
		CHECK_EQ_INT((int)c->rows, (int)rows - 1);
		CHECK(mv_idmap_get(&c->ids, victim) == NULL);
		victim++;
		done = !hit;
	}
	unit_diag("%d flushes failed cleanly, %" PRId64 " succeeded", failed,
		  victim);
	CHECK(done);
	CHECK(failed > 0);
	CHECK_EQ_INT(ids_ok(c, 64, victim), 0);
	ndels = c->ndels;
	rows = c->rows;
	coll_put(c);
	node_close(nd);

	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	c = node_coll_get(nd, "default", "d");
	REQUIRE(c != NULL);
	CHECK_EQ_INT((int)c->ndels, (int)ndels);
	CHECK_EQ_INT((int)c->rows, (int)rows);
	CHECK_EQ_INT(ids_ok(c, 64, victim), 0);
	coll_put(c);
	node_close(nd);
	the_node = NULL;
	free(nd);
}

/*
 * A forced compaction of two segments, with its Nth allocation failing,
 * N = 1, 2, ...: it fails and changes nothing, or it merges them and
 * every id maps to its row in the merged segment.  Ten ids fill the id
 * map's 16 slots as far as it goes (2/3: libmv/idmap.c), so that an
 * mv_idmap_put there must grow it.
 * Before the fix the merged rows' ids were put into the map after the
 * commit and a failed put was ignored: ids kept pointing at a freed input
 * segment.
 */
TEST(engine_compact_idmap_alloc_failure)
{
	const char *dir = unit_path("failalloc-compact");
	struct node *nd = calloc(1, sizeof(*nd));
	struct mv_err err = { 0 };
	struct coll *c;
	int existed = 0, failed = 0, merged_ok = 0;

	REQUIRE(nd != NULL);
	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	REQUIRE(node_create(nd, "default", "m", DIM, MV_L2, NULL, 0, 0,
			    &existed, &err) == 0);
	c = node_coll_get(nd, "default", "m");
	REQUIRE(c != NULL);
	REQUIRE(fa_insert(nd, c, 0, 5) == 0);
	REQUIRE(fa_insert(nd, c, 5, 5) == 0);
	REQUIRE(c->nsegs == 2);
	CHECK_EQ_INT((int)c->ids.n, 10);
	CHECK_EQ_INT((int)c->ids.cap, 16);
	for (long n = 1; n < 400 && !merged_ok; n++) {
		int merged = 0, rc, hit;

		mv_err_clear(&err);
		fail_arm(n);
		rc = node_compact(nd, c, 1, &merged, &err);
		hit = fail_disarm();
		if (rc < 0 || !merged) {
			CHECK(hit);
			CHECK_EQ_INT((int)c->nsegs, 2);
			CHECK_EQ_INT(ids_ok(c, 10, 0), 0);
			failed++;
			continue;
		}
		CHECK_EQ_INT(merged, 2);
		CHECK_EQ_INT((int)c->nsegs, 1);
		if (ids_ok(c, 10, 0))
			unit_diag("allocation %ld failed, yet the compaction "
				  "succeeded with ids wrongly mapped", n);
		CHECK_EQ_INT(ids_ok(c, 10, 0), 0);
		merged_ok = 1;
	}
	unit_diag("%d compactions failed cleanly before one merged", failed);
	CHECK(merged_ok);
	CHECK(failed > 0);
	CHECK_EQ_INT((int)c->rows, 10);
	coll_put(c);
	node_close(nd);

	REQUIRE(unit_engine_open(nd, dir, &err) == 0);
	c = node_coll_get(nd, "default", "m");
	REQUIRE(c != NULL);
	CHECK_EQ_INT((int)c->nsegs, 1);
	CHECK_EQ_INT((int)c->rows, 10);
	CHECK_EQ_INT(ids_ok(c, 10, 0), 0);
	coll_put(c);
	node_close(nd);
	the_node = NULL;
	free(nd);
}

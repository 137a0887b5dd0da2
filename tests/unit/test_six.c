/*
 * test_six.c - sorted indexes of segments' numeric columns (libmv/colix.c,
 * and their use in libmv/engine/asof.c's node_seg_match): over random
 * columns (duplicates, NaN, -0.0, infinities, int64 extremes) and random
 * selective expressions, the rows found through an index are the scan's,
 * bit for bit, with deleted rows and as of a flush; the index is built
 * once, counted in node_held and given back with the segment.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "colix.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "filter.h"
#include "unit.h"

static const struct mv_field sf[] = {
	{ "i", MV_INT64 }, { "f", MV_FLOAT64 }, { "s", MV_STRING },
	{ "b", MV_BOOL },
};
#define NSF 4

static uint64_t xs6;

/* lo + d, at most INT64_MAX (d >= 0): the bound's top near the edge. */
static int64_t add_sat(int64_t lo, int64_t d)
{
	return lo > INT64_MAX - d ? INT64_MAX : lo + d;
}

static uint64_t rnd6(void)
{
	xs6 ^= xs6 >> 12;
	xs6 ^= xs6 << 25;
	xs6 ^= xs6 >> 27;
	return xs6 * 2685821657736338717ull;
}

static const int64_t iedge[] = {
	INT64_MIN, INT64_MIN + 1, -1, 0, 1, 9007199254740992LL,
	9007199254740993LL, INT64_MAX - 1, INT64_MAX,
};
#define NIEDGE (int)(sizeof(iedge) / sizeof(iedge[0]))
static const double fedge[] = {
	NAN, -NAN, INFINITY, -INFINITY, -0.0, 0.0, 0.5, 1e300, -1e300,
	9007199254740992.0, 9007199254740994.0, 5e-324,
};
#define NFEDGE (int)(sizeof(fedge) / sizeof(fedge[0]))

/*
 * String number x: "w<x % 1000>", "longprefix<x % 1000>" (its first 8
 * bytes shared by many), or one of a few short edge values.
 */
static void str6(char *out, uint64_t x)
{
	static const char *const edge[] = { "", "a", "ab", "\xff", "w1" };

	if (x % 3 == 0)
		snprintf(out, 20, "w%u", (unsigned)(x / 3 % 1000));
	else if (x % 3 == 1)
		snprintf(out, 20, "longprefix%u", (unsigned)(x / 3 % 1000));
	else
		snprintf(out, 20, "%s", edge[x / 3 % 5]);
}

/* Row record of string str6(x) at p (a length, the bytes): its size. */
static size_t put_str(unsigned char *p, uint64_t x)
{
	char t[20];
	size_t l;

	str6(t, x);
	l = strlen(t);
	p[0] = (unsigned char)l;
	p[1] = p[2] = p[3] = 0;
	memcpy(p + 4, t, l);
	return 4 + l;
}

/*
 * A segment of n rows with columns i, f, s, b: i mostly in 0..999 (so ==
 * is about 0.1%), f mostly tenths in 0..999.9, both with edge values
 * sprinkled in; ids ascending with gaps, from first.
 */
static struct seg *mkseg6(uint64_t n, int64_t first)
{
	struct seg *s = calloc(1, sizeof(*s));
	int64_t *iv, *bv;
	double *fv;
	unsigned char *sb;
	uint64_t *off;
	size_t pos = 0;

	s->ids = malloc(n * 8);
	s->cols = calloc(4, sizeof(*s->cols));
	iv = malloc(n * 8);
	fv = malloc(n * 8);
	bv = malloc(n * 8);
	sb = malloc(n * 24);
	off = malloc(n * 8);
	for (uint64_t r = 0; r < n; r++) {
		uint64_t x = rnd6();

		first += 1 + (int64_t)(x % 3);
		s->ids[r] = first;
		iv[r] = x % 50 ? (int64_t)(x >> 8) % 1000 :
			iedge[(x >> 8) % NIEDGE];
		fv[r] = x % 40 ? (double)((x >> 20) % 10000) / 10 :
			fedge[(x >> 20) % NFEDGE];
		bv[r] = (x >> 40) % 97 == 0;
		off[r] = pos;
		pos += put_str(sb + pos, x >> 44);
	}
	s->n = n;
	s->seq = 1;
	s->ncols = 4;
	s->cols[0].type = MV_INT64;
	s->cols[0].vals = iv;
	s->cols[1].type = MV_FLOAT64;
	s->cols[1].vals = fv;
	s->cols[2].type = MV_STRING;
	s->cols[2].vals = sb;
	s->cols[2].off = off;
	s->cols[3].type = MV_BOOL;
	s->cols[3].vals = bv;
	return s;
}

/* The scan: f over all of s's rows (no index), deleted rows cleared. */
static size_t scan6(const struct seg *s, const struct mv_filter *f,
		    uint8_t *bits, int drop_deleted)
{
	struct mv_filter_rows r;
	size_t m = 0, nb = (s->n + 7) / 8;

	memset(&r, 0, sizeof(r));
	r.n = s->n;
	r.ids = s->ids;
	for (int i = 0; i < s->ncols; i++) {
		r.vals[i] = s->cols[i].vals;
		r.off[i] = s->cols[i].off;
	}
	mv_filter_eval(f, &r, bits);
	for (size_t b = 0; b < nb; b++) {
		if (drop_deleted && s->deleted)
			bits[b] &= (uint8_t)~s->deleted[b];
		m += (size_t)__builtin_popcount(bits[b]);
	}
	return m;
}


/* A literal for column c (0 i, 1 f, -1 id): a value of the column, mostly. */
static void lit6(char *buf, size_t size, const struct seg *s, int c)
{
	uint64_t r = rnd6() % s->n;
	int k = (int)(rnd6() % 10);
	double d;

	if (c < 0) {
		unit_catf(buf, size, "%lld", (long long)s->ids[r] + (k == 0));
		return;
	}
	if (c == 0) {
		if (k == 0)
			unit_catf(buf, size, "%lld", (long long)iedge[rnd6() %
								 NIEDGE]);
		else if (k == 1)
			unit_catf(buf, size, "%lld.5", (long long)(rnd6() % 1000));
		else if (k == 2)
			unit_catf(buf, size, "%s", rnd6() % 2 ? "1e19" : "-1e19");
		else
			unit_catf(buf, size, "%lld",
			     (long long)((int64_t *)s->cols[0].vals)[r]);
		return;
	}
	d = ((double *)s->cols[1].vals)[r];
	if (k == 0)
		d = fedge[2 + rnd6() % (NFEDGE - 2)];	/* no NaN literal */
	if (k == 1) {
		unit_catf(buf, size, "%lld", (long long)(rnd6() % 1000));
		return;
	}
	if (isnan(d))
		d = 0.25;
	if (isinf(d))
		unit_catf(buf, size, "%s", d > 0 ? "1e999" : "-1e999");
	else
		unit_catf(buf, size, "%.17g%s", d, d == floor(d) &&
		     fabs(d) < 1e17 ? ".0" : "");
}

static const char *const cname6[] = { "id", "i", "f" };
static const char *const ops6[] = { "==", "<", "<=", ">", ">=", "!=" };

/* One predicate, most of them selective. */
static void atom6(char *buf, size_t size, const struct seg *s)
{
	int c = (int)(rnd6() % 3) - 1, k = (int)(rnd6() % 10);

	switch (k) {
	case 0:
	case 1:
		unit_catf(buf, size, "%s %s ", cname6[c + 1], ops6[rnd6() % 6]);
		lit6(buf, size, s, c);
		break;
	case 2: {
		/* A narrow range about a value of the column. */
		uint64_t r = rnd6() % s->n;
		int64_t d = (int64_t)(rnd6() % 20);

		if (c < 0)
			unit_catf(buf, size, "%lld <= id < %lld",
			     (long long)s->ids[r], (long long)s->ids[r] + d);
		else if (c == 0 && ((int64_t *)s->cols[0].vals)[r] < 1000000)
			unit_catf(buf, size, "%lld < i <= %lld",
			     (long long)((int64_t *)s->cols[0].vals)[r],
			     (long long)((int64_t *)s->cols[0].vals)[r] + d);
		else
			unit_catf(buf, size, "%lld.5 <= f < %lld.0",
			     (long long)(rnd6() % 1000), (long long)(rnd6() %
								    1000));
		break;
	}
	case 3: {
		char a[64] = "", b[64] = "";

		lit6(a, sizeof(a), s, c);
		lit6(b, sizeof(b), s, c);
		unit_catf(buf, size, "%s %s %s %s %s", a, rnd6() % 2 ? "<" : "<=",
		     cname6[c + 1], rnd6() % 2 ? "<" : "<=", b);
		break;
	}
	case 4: {
		int n = (int)(rnd6() % (rnd6() % 2 ? 4 : 80));

		unit_catf(buf, size, "%s %sin [", cname6[c + 1],
		     rnd6() % 8 ? "" : "not ");
		for (int i = 0; i < n; i++) {
			if (i)
				unit_catf(buf, size, ", ");
			lit6(buf, size, s, c);
		}
		unit_catf(buf, size, "]");
		break;
	}
	case 5:
		unit_catf(buf, size, "not (%s < ", cname6[c + 1]);
		lit6(buf, size, s, c);
		unit_catf(buf, size, ")");
		break;
	case 6: {
		char t[20];
		int n = (int)(rnd6() % 4);

		str6(t, rnd6());
		if (n == 3) {
			unit_catf(buf, size, "s %s '%s'", rnd6() % 4 ? "==" : "!=",
			     t);
			break;
		}
		/* A list, at times longer than the index's 64 runs. */
		if (rnd6() % 4 == 0)
			n = 70;
		unit_catf(buf, size, "s %sin ['%s'", rnd6() % 8 ? "" : "not ", t);
		for (int i = 0; i < n; i++) {
			str6(t, rnd6());
			unit_catf(buf, size, ", '%s'", t);
		}
		unit_catf(buf, size, "]");
		break;
	}
	case 7:
		unit_catf(buf, size, "%sb", rnd6() % 2 ? "not " : "");
		break;
	case 8:
		unit_catf(buf, size, "s like 'w%%%d'", (int)(rnd6() % 10));
		break;
	default: {
		/* String ranges and prefixes, narrow and wide. */
		char a[20], b[20];
		static const char *const ops[] = { "<", "<=", ">", ">=" };

		str6(a, rnd6());
		str6(b, rnd6());
		switch (rnd6() % 4) {
		case 0:
			unit_catf(buf, size, "s like '%.*s%%'",
				  (int)(rnd6() % (strlen(a) + 1)), a);
			break;
		case 1:
			unit_catf(buf, size, "s %s '%s'", ops[rnd6() % 4], a);
			break;
		case 2:
			unit_catf(buf, size, "'%s' %s s %s '%s'", a,
				  rnd6() % 2 ? "<" : "<=", rnd6() % 2 ? "<" :
				  "<=", b);
			break;
		default:
			unit_catf(buf, size, "s like '%s'", a);
			break;
		}
		break;
	}
	}
}

/* An expression: mostly an and of predicates, at times or and not. */
static void expr6(char *buf, size_t size, const struct seg *s)
{
	int n = 1 + (int)(rnd6() % 3), k = (int)(rnd6() % 6);

	if (k == 0)
		unit_catf(buf, size, "not (");
	for (int i = 0; i < n; i++) {
		if (i)
			unit_catf(buf, size, k == 1 ? " or " : " and ");
		if (rnd6() % 5 == 0) {
			unit_catf(buf, size, "(");
			atom6(buf, size, s);
			unit_catf(buf, size, " %s ", rnd6() % 2 ? "and" : "or");
			atom6(buf, size, s);
			unit_catf(buf, size, ")");
		} else {
			atom6(buf, size, s);
		}
	}
	if (k == 0)
		unit_catf(buf, size, ")");
}

static int same_bits(const uint8_t *a, const uint8_t *b, uint64_t n)
{
	for (uint64_t r = 0; r < n; r++)
		if ((a[r / 8] ^ b[r / 8]) >> r % 8 & 1)
			return 0;
	return 1;
}

TEST(six_matches_are_the_scans_bit_for_bit)
{
	enum { N = 20011, EXPRS = 3000 };
	struct seg *s;
	uint8_t *a = malloc(N / 8 + 1), *b = malloc(N / 8 + 1);
	unsigned long long used0 = node_six_used;
	long long held0 = node_held;
	int bad = 0, some = 0;

	xs6 = 0x2545f4914f6cdd1dull;
	s = mkseg6(N, -5);
	REQUIRE(s && a && b);
	/* Deleted rows, at flushes 2 and 3. */
	for (int k = 0; k < 300; k++)
		CHECK_EQ_INT(node_seg_set_deleted_at(s, rnd6() % N,
						     2 + rnd6() % 2), 0);
	for (int e = 0; e < EXPRS && bad < 5; e++) {
		char buf[4096] = "";
		struct mv_err err = { 0 };
		struct mv_filter *f;
		size_t want, got;

		expr6(buf, sizeof(buf), s);
		f = mv_filter_parse(buf, sf, NSF, &err);
		if (!f) {
			unit_fail(__FILE__, __LINE__, "%s: %s", buf, err.msg);
			bad++;
			continue;
		}
		want = scan6(s, f, a, 1);
		got = node_seg_match(s, f, b);
		if (got != want || !same_bits(a, b, N)) {
			unit_fail(__FILE__, __LINE__, "%s: %zu rows, the scan "
				  "%zu", buf, got, want);
			bad++;
		}
		some += want > 0 && want < N / 16;
		/* As of flush 2: rows deleted at 3 are there again. */
		want = scan6(s, f, a, 0);
		node_seg_match_at(s, NULL, 2, b);
		want = 0;
		for (size_t i = 0; i < (N + 7) / 8; i++) {
			a[i] &= b[i];
			want += (size_t)__builtin_popcount(a[i]);
		}
		got = node_seg_match_at(s, f, 2, b);
		if (got != want || !same_bits(a, b, N)) {
			unit_fail(__FILE__, __LINE__, "%s as of 2: %zu rows, "
				  "the scan %zu", buf, got, want);
			bad++;
		}
		mv_filter_free(f);
	}
	CHECK_EQ_INT(bad, 0);
	unit_diag("%d of %d expressions select some rows, under 1/16; %llu "
		  "matches through an index", some, EXPRS,
		  node_six_used - used0);
	CHECK(some > EXPRS / 5);
	CHECK(node_six_used - used0 > (unsigned long long)EXPRS / 5);
	/* Indexes of i, f, s and id: 4 bytes a row each, counted, given back. */
	CHECK(s->six[0] && s->six[1] && s->six[2] && s->six[MV_FIELDS_MAX]);
	CHECK(node_held - held0 >= 4LL * 4 * N);
	CHECK(node_held - held0 <= 5LL * 4 * N + 1024);
	node_seg_free(s);
	CHECK_EQ_INT(node_held - held0, 0);
	free(a);
	free(b);
}

/* Each value of a small domain, and the edges, found exactly. */
TEST(six_colix_finds_every_value)
{
	enum { N = 5000 };
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	struct mv_colix *xi, *xf;
	struct mv_colix_hits h;
	struct mv_filter_bound bd;

	xs6 = 7;
	for (int r = 0; r < N; r++) {
		iv[r] = r % 7 ? (int64_t)(rnd6() % 11) - 5 :
			iedge[rnd6() % NIEDGE];
		fv[r] = r % 5 ? (double)(rnd6() % 11) - 5 :
			fedge[rnd6() % NFEDGE];
	}
	xi = mv_colix_build(iv, NULL, N, MV_COLIX_INT);
	xf = mv_colix_build(fv, NULL, N, MV_COLIX_FLOAT);
	REQUIRE(xi && xf);
	CHECK(mv_colix_bytes(xi) >= sizeof(uint32_t) * N);
	CHECK(mv_colix_bytes(xi) <= sizeof(uint32_t) * N + 64);
	for (int k = 0; k < 300; k++) {
		int64_t lo = k % 3 ? (int64_t)(rnd6() % 15) - 7 :
			     iedge[rnd6() % NIEDGE];
		int64_t hi = k % 5 ? add_sat(lo, (int64_t)(rnd6() % 4)) :
			     iedge[rnd6() % NIEDGE];
		double flo = k % 3 ? (double)(rnd6() % 15) - 7.5 :
			     fedge[2 + rnd6() % (NFEDGE - 2)];
		double fhi = k % 4 ? flo + (double)(rnd6() % 4) :
			     fedge[2 + rnd6() % (NFEDGE - 2)];
		uint8_t bits[N / 8 + 1];
		size_t want = 0, set = 0;

		memset(&bd, 0, sizeof(bd));
		bd.kind = MV_BOUND_INT;
		bd.ilo = lo;
		bd.ihi = hi;
		memset(bits, 0, sizeof(bits));
		mv_colix_find(xi, iv, NULL, &bd, &h);
		mv_colix_mark(xi, &h, bits);
		for (int r = 0; r < N; r++) {
			int w = iv[r] >= lo && iv[r] <= hi;

			want += w;
			set += bits[r / 8] >> r % 8 & 1;
			CHECK_EQ_INT(bits[r / 8] >> r % 8 & 1, w);
		}
		CHECK_EQ_U64(h.n, want);
		CHECK_EQ_U64(set, want);
		bd.kind = MV_BOUND_FLOAT;
		bd.flo = flo;
		bd.fhi = fhi;
		memset(bits, 0, sizeof(bits));
		want = 0;
		mv_colix_find(xf, fv, NULL, &bd, &h);
		mv_colix_mark(xf, &h, bits);
		for (int r = 0; r < N; r++) {
			int w = fv[r] >= flo && fv[r] <= fhi;

			want += w;
			if ((bits[r / 8] >> r % 8 & 1) != w) {
				unit_fail(__FILE__, __LINE__, "[%g, %g]: row "
					  "%d (%g)", flo, fhi, r, fv[r]);
				break;
			}
		}
		CHECK_EQ_U64(h.n, want);
		/* An int bound finds nothing in a float index. */
		bd.kind = MV_BOUND_INT;
		CHECK_EQ_U64(mv_colix_find(xf, fv, NULL, &bd, &h), 0);
	}
	mv_colix_free(xi);
	mv_colix_free(xf);
	mv_colix_free(NULL);
	free(iv);
	free(fv);
}

struct six_arg {
	struct seg *s;
	struct mv_filter *f;
	uint8_t *bits;
	size_t m;
};

static void *six_thread(void *p)
{
	struct six_arg *a = p;

	a->m = node_seg_match(a->s, a->f, a->bits);
	return NULL;
}

/* Searches at once on a segment without an index: one build, one answer. */
TEST(six_concurrent_first_searches)
{
	enum { N = 30000, T = 4 };
	struct seg *s;
	struct mv_filter *f = mv_filter_parse("i == 7 and f >= 0", sf, NSF,
					      NULL);
	struct six_arg a[T];
	pthread_t th[T];
	uint8_t *want = malloc(N / 8 + 1);
	long long held0 = node_held;
	size_t m;

	xs6 = 99;
	s = mkseg6(N, 1);
	REQUIRE(s && f && want);
	m = scan6(s, f, want, 1);
	CHECK(m > 0 && m < N / 16);
	for (int t = 0; t < T; t++) {
		a[t] = (struct six_arg){ s, f, malloc(N / 8 + 1), 0 };
		REQUIRE(a[t].bits);
		REQUIRE(pthread_create(&th[t], NULL, six_thread, &a[t]) == 0);
	}
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ_U64(a[t].m, m);
		CHECK(same_bits(a[t].bits, want, N));
		free(a[t].bits);
	}
	/* One index of i (f's bound, all but NaN, is not narrow: built). */
	CHECK(s->six[0] != NULL);
	CHECK_EQ_INT(node_held - held0, (long long)(mv_colix_bytes(s->six[0]) +
						   mv_colix_bytes(s->six[1])));
	node_seg_free(s);
	CHECK_EQ_INT(node_held - held0, 0);
	mv_filter_free(f);
	free(want);
}

/* A small segment is scanned: no index. */
TEST(six_not_for_small_segments)
{
	struct seg *s;
	struct mv_filter *f = mv_filter_parse("i == 7", sf, NSF, NULL);
	uint8_t bits[NODE_SIX_MIN_ROWS / 8];
	uint8_t want[NODE_SIX_MIN_ROWS / 8];

	xs6 = 3;
	s = mkseg6(NODE_SIX_MIN_ROWS - 1, 1);
	REQUIRE(s && f);
	CHECK_EQ_U64(node_seg_match(s, f, bits), scan6(s, f, want, 1));
	CHECK(same_bits(bits, want, s->n));
	CHECK(!s->six[0]);
	node_seg_free(s);
	mv_filter_free(f);
}

/*
 * Speed, for the record (`run-unit six_speed`): CPU time of building an
 * index over 1M rows (int64 in 0..999, and float64), of finding 0.1% of
 * them, and of a scan of the same column; the counts checked.
 */
TEST(six_speed)
{
	enum { N = 1000000, REPS = 20 };
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	uint8_t *bits = malloc(N / 8 + 1);
	struct mv_filter *f = mv_filter_parse("i == 7", sf, NSF, NULL);
	struct mv_filter_rows r;
	struct mv_filter_bound b;
	struct mv_colix *xi, *xf;
	struct mv_colix_hits h;
	struct timespec t0, t1, t2, t3;
	size_t want = 0, got = 0, scan = 0;

	REQUIRE(iv && fv && bits && f);
	xs6 = 5;
	for (int i = 0; i < N; i++) {
		iv[i] = (int64_t)(rnd6() % 1000);
		fv[i] = (double)(rnd6() % 100000) / 7;
		want += iv[i] == 7;
	}
	/* Once before, so that the scratch comes from the heap, as in a node. */
	mv_colix_free(mv_colix_build(iv, NULL, N, MV_COLIX_INT));
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	xi = mv_colix_build(iv, NULL, N, MV_COLIX_INT);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	xf = mv_colix_build(fv, NULL, N, MV_COLIX_FLOAT);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t2);
	REQUIRE(xi && xf);
	REQUIRE(mv_filter_bounds(f, 0, &b) == MV_BOUND_INT);
	for (int k = 0; k < REPS; k++)
		got += mv_colix_find(xi, iv, NULL, &b, &h);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t3);
	CHECK_EQ_U64(got, want * REPS);
	unit_diag("build: int64 %.1f ns/row, float64 %.1f ns/row; find 0.1%%: "
		  "%.1f us", ((t1.tv_sec - t0.tv_sec) * 1e9 +
			      (t1.tv_nsec - t0.tv_nsec)) / N,
		  ((t2.tv_sec - t1.tv_sec) * 1e9 +
		   (t2.tv_nsec - t1.tv_nsec)) / N,
		  ((t3.tv_sec - t2.tv_sec) * 1e9 +
		   (t3.tv_nsec - t2.tv_nsec)) / 1e3 / REPS);
	memset(&r, 0, sizeof(r));
	r.n = N;
	r.vals[0] = iv;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (int k = 0; k < REPS; k++)
		scan += mv_filter_eval(f, &r, bits);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	CHECK_EQ_U64(scan, want * REPS);
	unit_diag("scan of the same column: %.1f us", ((t1.tv_sec -
		  t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / REPS);
	mv_colix_free(xi);
	mv_colix_free(xf);
	mv_filter_free(f);
	free(iv);
	free(fv);
	free(bits);
}

/* Strings: every value and lists of them found exactly, shared prefixes too. */
TEST(six_colix_finds_every_string)
{
	enum { N = 6000 };
	unsigned char *sb = malloc(N * 24);
	uint64_t *off = malloc(N * 8);
	uint64_t *xv = malloc(N * 8);
	struct mv_colix *x;
	struct mv_colix_hits h;
	struct mv_filter_bound bd;
	size_t pos = 0;

	xs6 = 17;
	for (int r = 0; r < N; r++) {
		xv[r] = rnd6() % 600;
		off[r] = pos;
		pos += put_str(sb + pos, xv[r]);
	}
	x = mv_colix_build(sb, off, N, MV_COLIX_STR);
	REQUIRE(x);
	for (int k = 0; k < 200; k++) {
		char t[80][20];
		struct mv_filter_str set[80];
		uint8_t bits[N / 8 + 1];
		int n = k % 3 ? 1 + (int)(rnd6() % 5) : 65 + (int)(rnd6() % 15);
		size_t want = 0;

		for (int i = 0; i < n; i++) {
			str6(t[i], rnd6() % 700);
			set[i].p = t[i];
			set[i].len = strlen(t[i]);
		}
		/* Sorted, distinct: as the filter hands them over. */
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && strcmp(t[j - 1], t[j]) > 0; j--) {
				struct mv_filter_str s = set[j];

				set[j] = set[j - 1];
				set[j - 1] = s;
				memcpy(t[79], t[j], 20);
				memcpy(t[j], t[j - 1], 20);
				memcpy(t[j - 1], t[79], 20);
				set[j].p = t[j];
				set[j - 1].p = t[j - 1];
			}
		for (int i = 1; i < n; i++)
			if (!strcmp(t[i], t[i - 1])) {
				for (int j = i + 1; j < n; j++) {
					memcpy(t[j - 1], t[j], 20);
					set[j - 1].len = set[j].len;
				}
				n--;
				i--;
			}
		memset(&bd, 0, sizeof(bd));
		bd.kind = MV_BOUND_STR;
		bd.set = set;
		bd.nset = (size_t)n;
		memset(bits, 0, sizeof(bits));
		mv_colix_find(x, sb, off, &bd, &h);
		mv_colix_mark(x, &h, bits);
		for (int r = 0; r < N; r++) {
			char v[20];
			int w = 0, got = bits[r / 8] >> r % 8 & 1;

			str6(v, xv[r]);
			for (int i = 0; i < n; i++)
				w |= !strcmp(v, t[i]);
			want += w;
			/* A long list is bounded by its ends: more, never less. */
			if (n <= MV_COLIX_SPANS ? got != w : w && !got) {
				unit_fail(__FILE__, __LINE__, "list of %d: row "
					  "%d ('%s') %d, want %d", n, r, v, got,
					  w);
				break;
			}
		}
		if (n <= MV_COLIX_SPANS)
			CHECK_EQ_U64(h.n, want);
	}
	/* Ranges: either end open, in or out. */
	for (int k = 0; k < 200; k++) {
		char lo[20], hi[20];
		uint8_t bits[N / 8 + 1];
		size_t want = 0;

		str6(lo, rnd6() % 700);
		str6(hi, rnd6() % 700);
		memset(&bd, 0, sizeof(bd));
		bd.kind = MV_BOUND_STR;
		bd.has_slo = k % 5 != 0;
		bd.has_shi = k % 7 != 0;
		bd.slo_incl = k % 2;
		bd.shi_incl = k / 2 % 2;
		bd.slo = (struct mv_filter_str){ lo, strlen(lo) };
		bd.shi = (struct mv_filter_str){ hi, strlen(hi) };
		memset(bits, 0, sizeof(bits));
		mv_colix_find(x, sb, off, &bd, &h);
		mv_colix_mark(x, &h, bits);
		for (int r = 0; r < N; r++) {
			char v[20];
			int a, b, w;

			str6(v, xv[r]);
			a = strcmp(v, lo);	/* no NUL inside: memcmp order */
			b = strcmp(v, hi);
			w = (!bd.has_slo || a > 0 || (!a && bd.slo_incl)) &&
			    (!bd.has_shi || b < 0 || (!b && bd.shi_incl));
			want += w;
			if ((bits[r / 8] >> r % 8 & 1) != w) {
				unit_fail(__FILE__, __LINE__, "range %d: row "
					  "%d ('%s')", k, r, v);
				break;
			}
		}
		CHECK_EQ_U64(h.n, want);
	}
	mv_colix_free(x);
	free(sb);
	free(off);
	free(xv);
}

/* An index that would pass memory_limit is not built: the scan answers. */
TEST(six_not_past_memory_limit)
{
	struct node *saved = the_node, *nd = calloc(1, sizeof(*nd));
	struct mv_filter *f = mv_filter_parse("i == 7", sf, NSF, NULL);
	struct seg *s;
	uint8_t *bits = malloc(20000 / 8 + 1), *want = malloc(20000 / 8 + 1);
	size_t m;

	xs6 = 4;
	s = mkseg6(20000, 1);
	REQUIRE(nd && f && s && bits && want);
	the_node = nd;
	nd->conf.memory_limit = node_held + 20000 * 4 - 1;
	m = scan6(s, f, want, 1);
	CHECK(m > 0);
	CHECK_EQ_U64(node_seg_match(s, f, bits), m);
	CHECK(same_bits(bits, want, s->n));
	CHECK(!s->six[0]);
	/* With room for it, it is built. */
	nd->conf.memory_limit = node_held + 20000 * 4 + 64;
	CHECK_EQ_U64(node_seg_match(s, f, bits), m);
	CHECK(same_bits(bits, want, s->n));
	CHECK(s->six[0] != NULL);
	the_node = saved;
	node_seg_free(s);
	mv_filter_free(f);
	free(nd);
	free(bits);
	free(want);
}

/*
 * fuzz_filter - the --filter language (libmv/filter.c): the input is an
 * expression, parsed against a fixed schema (i int64, f float64, s
 * string, b bool, and id).  A refusal must be MV_EUSAGE with "col N: " inside the
 * input; an expression that parses is evaluated over a fixed table of
 * 1100 rows (edge values, across a chunk boundary), and then: the count
 * equals the bits set, the bits past n are clear and nothing past the
 * bitmap is written, the rows from row 3 on give the same bits, every
 * matching row lies in the bound mv_filter_bounds gives for each field, mv_filter_eval_sel over candidates derived from the input keeps
 * exactly the matching ones, and `not (<input>)` parses and gives exactly
 * the complement.
 */
#include <math.h>
#include <string.h>
#include "filter.h"
#include "fuzz.h"

#define ROWS 1100
#define SHIFT 3

static const struct mv_field fields[] = {
	{ "i", MV_INT64 }, { "f", MV_FLOAT64 }, { "s", MV_STRING },
	{ "b", MV_BOOL },
};
#define NFIELDS 4

static int64_t ids[ROWS], iv[ROWS], bv[ROWS];
static double fv[ROWS];
static unsigned char sb[ROWS * 24];
static uint64_t off[ROWS];
static struct mv_filter_rows rows, shifted;

static const char *const strs[] = {
	"", "a", "ab", "abc", "b", "ba", "a%b", "a_b", "red", "green",
	"\xc3\xa9t\xc3\xa9", "it's", "a\\b", "\xff\xfe", "%", "_",
};

static void table(void)
{
	static const int64_t iedge[] = {
		INT64_MIN, INT64_MIN + 1, -1, 0, 1, 9007199254740992LL,
		9007199254740993LL, INT64_MAX - 1, INT64_MAX,
	};
	static const double fedge[] = {
		NAN, INFINITY, -INFINITY, -0.0, 0.0, 0.5, -2.5, 1e300,
		9007199254740992.0, 5e-324,
	};
	uint64_t x = 88172645463325252ull;
	size_t pos = 0;

	for (size_t r = 0; r < ROWS; r++) {
		const char *s;
		size_t l;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ids[r] = (int64_t)r;
		bv[r] = (int64_t)(x >> 40) & 1;
		iv[r] = x % 4 ? (int64_t)(x >> 8) % 21 - 10 :
			iedge[(x >> 8) % (sizeof(iedge) / sizeof(iedge[0]))];
		fv[r] = x % 3 ? (double)((int64_t)(x >> 16) % 41 - 20) / 4 :
			fedge[(x >> 16) % (sizeof(fedge) / sizeof(fedge[0]))];
		s = strs[(x >> 24) % (sizeof(strs) / sizeof(strs[0]))];
		l = strlen(s);
		off[r] = pos;
		sb[pos] = (unsigned char)l;
		sb[pos + 1] = sb[pos + 2] = sb[pos + 3] = 0;
		memcpy(sb + pos + 4, s, l);
		pos += 4 + l;
	}
	rows.n = ROWS;
	rows.ids = ids;
	rows.vals[0] = iv;
	rows.vals[1] = fv;
	rows.vals[2] = sb;
	rows.off[2] = off;
	rows.vals[3] = bv;
	shifted.n = ROWS - SHIFT;
	shifted.ids = ids + SHIFT;
	shifted.vals[0] = iv + SHIFT;
	shifted.vals[1] = fv + SHIFT;
	shifted.vals[2] = sb;
	shifted.off[2] = off + SHIFT;
	shifted.vals[3] = bv + SHIFT;
}

#define BYTES ((ROWS + 7) / 8)

static int bit(const uint8_t *b, size_t r)
{
	return b[r / 8] >> r % 8 & 1;
}

/* Evaluate f over rs into b (poisoned first); check count and tail. */
static size_t eval(const struct mv_filter *f, const struct mv_filter_rows *rs,
		   uint8_t *b)
{
	size_t n = rs->n, cnt, set = 0;

	memset(b, 0xa5, BYTES + 1);
	cnt = mv_filter_eval(f, rs, b);
	for (size_t r = 0; r < n; r++)
		set += bit(b, r);
	FUZZ_CHECK(cnt == set);
	if (n % 8)
		FUZZ_CHECK((b[n / 8] >> n % 8) == 0);
	FUZZ_CHECK(b[(n + 7) / 8] == 0xa5);
	return cnt;
}

/* Byte-wise order, the shorter first (filter.h's), written again here. */
static int sorder(struct mv_filter_str a, struct mv_filter_str b)
{
	size_t m = a.len < b.len ? a.len : b.len;
	int c = m ? memcmp(a.p, b.p, m) : 0;

	return c ? c : a.len < b.len ? -1 : a.len > b.len;
}

/* Every row set in a lies in f's bound on each field. */
static void check_bounds(const struct mv_filter *f, const uint8_t *a)
{
	static const int cols[] = { 0, 1, 3, -1, 2 };

	for (int c = 0; c < 5; c++) {
		struct mv_filter_bound b;
		int k = mv_filter_bounds(f, cols[c], &b);

		FUZZ_CHECK(k == (int)b.kind);
		FUZZ_CHECK(k == MV_BOUND_INT || k == MV_BOUND_FLOAT ||
			   k == MV_BOUND_STR || !b.set);
		FUZZ_CHECK(k != MV_BOUND_STR || cols[c] == 2);
		FUZZ_CHECK(k != MV_BOUND_FLOAT || cols[c] == 1);
		FUZZ_CHECK(k != MV_BOUND_INT || (cols[c] != 1 && cols[c] != 2));
		if (k == MV_BOUND_NONE)
			continue;
		for (size_t r = 0; r < ROWS; r++) {
			int in = 0;

			if (!bit(a, r))
				continue;
			FUZZ_CHECK(k != MV_BOUND_EMPTY);
			if (k == MV_BOUND_STR) {
				const unsigned char *q = sb + off[r];
				const struct mv_filter_str *ss = b.set;
				struct mv_filter_str v = {
					(const char *)q + 4, q[0]
				};
				int lo = b.has_slo ? sorder(v, b.slo) : 1;
				int hi = b.has_shi ? sorder(v, b.shi) : -1;

				FUZZ_CHECK(lo > 0 || (!lo && b.slo_incl));
				FUZZ_CHECK(hi < 0 || (!hi && b.shi_incl));
				for (size_t i = 0; ss && i < b.nset; i++)
					in |= !sorder(v, ss[i]);
			} else if (k == MV_BOUND_INT) {
				int64_t v = cols[c] == 0 ? iv[r] :
					    cols[c] == 3 ? bv[r] : ids[r];

				FUZZ_CHECK(v >= b.ilo && v <= b.ihi);
				for (size_t i = 0; b.set && i < b.nset; i++)
					in |= ((const int64_t *)b.set)[i] == v;
			} else {
				FUZZ_CHECK(fv[r] >= b.flo && fv[r] <= b.fhi);
				for (size_t i = 0; b.set && i < b.nset; i++)
					in |= ((const double *)b.set)[i] ==
					      fv[r];
			}
			FUZZ_CHECK(!b.set || in);
		}
	}
}

/* mv_filter_eval_sel over candidates made from the input: a & them. */
static void check_sel(const struct mv_filter *f, const uint8_t *a,
		      const uint8_t *data, size_t len)
{
	uint8_t c[BYTES + 1], c0[BYTES + 1];
	size_t want = 0;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ data[i]) * 16777619u;
	for (size_t i = 0; i <= BYTES; i++) {
		h = h * 1103515245u + 12345u;
		c[i] = c0[i] = (uint8_t)(h >> 16 & 3 ? h >> 8 : 0xff);
	}
	for (size_t r = 0; r < ROWS; r++)
		want += bit(a, r) & bit(c0, r);
	FUZZ_CHECK(mv_filter_eval_sel(f, &rows, c) == want);
	for (size_t r = 0; r < ROWS; r++)
		FUZZ_CHECK(bit(c, r) == (bit(a, r) & bit(c0, r)));
	if (ROWS % 8)
		FUZZ_CHECK((c[ROWS / 8] >> ROWS % 8) == 0);
	FUZZ_CHECK(c[BYTES] == c0[BYTES]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int ready;
	struct mv_err err = { 0 };
	struct mv_filter *f, *g;
	uint8_t a[BYTES + 1], b[BYTES + 1], c[BYTES + 1];
	char *s, *t;
	size_t ca, cc;

	if (!ready) {
		table();
		ready = 1;
	}
	if (len > 4096 || memchr(data, 0, len))
		return 0;
	s = malloc(len + 1);
	t = malloc(len + 8);
	if (!s || !t)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	f = mv_filter_parse(s, fields, NFIELDS, &err);
	if (!f) {
		unsigned long col = 0;
		int k = 0;

		FUZZ_CHECK(err.code == MV_EUSAGE);
		FUZZ_CHECK(sscanf(err.msg, "col %lu: %n", &col, &k) == 1 &&
			   k > 0);
		FUZZ_CHECK(col >= 1 && col <= len + 1);
		goto out;
	}
	FUZZ_CHECK(!(mv_filter_fields(f) & ~(MV_FILTER_ID | 15)));
	ca = eval(f, &rows, a);
	check_bounds(f, a);
	check_sel(f, a, data, len);
	cc = eval(f, &shifted, c);
	(void)cc;
	for (size_t r = SHIFT; r < ROWS; r++)
		FUZZ_CHECK(bit(a, r) == bit(c, r - SHIFT));
	memcpy(t, "not (", 5);
	memcpy(t + 5, s, len);
	memcpy(t + 5 + len, ")", 2);
	mv_err_clear(&err);
	g = mv_filter_parse(t, fields, NFIELDS, &err);
	if (!g) {
		/* Only one more level of nesting may refuse it. */
		FUZZ_CHECK(strstr(err.msg, "nested deeper"));
	} else {
		FUZZ_CHECK(eval(g, &rows, b) == ROWS - ca);
		for (size_t r = 0; r < ROWS; r++)
			FUZZ_CHECK(bit(a, r) != bit(b, r));
		mv_filter_free(g);
	}
	mv_filter_free(f);
out:
	free(s);
	free(t);
	return 0;
}

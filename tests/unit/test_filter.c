/*
 * test_filter.c - unit tests of the --filter language (filter.h): every
 * operator over a fixed table, precedence, errors and their columns, the
 * chunked evaluation of many rows, and random expressions checked against
 * a row-at-a-time evaluator written here.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "filter.h"
#include "unit.h"

static const struct mv_field tf[] = {
	{ "i", MV_INT64 }, { "f", MV_FLOAT64 }, { "s", MV_STRING },
	{ "b", MV_BOOL },
};
#define NTF 4

/* Columns of n rows in the layout filter.h describes. */
struct trows {
	struct mv_filter_rows r;
	int64_t *ids, *iv, *bv;	/* b: true on every third row */
	double *fv;
	unsigned char *sb;
	uint64_t *off;
};

static void trows_make(struct trows *t, size_t n, const int64_t *iv,
		       const double *fv, const char *const *sv)
{
	size_t total = 0, pos = 0;

	memset(t, 0, sizeof(*t));
	for (size_t r = 0; r < n; r++)
		total += 4 + strlen(sv[r]);
	t->ids = malloc((n + 1) * 8);
	t->iv = malloc((n + 1) * 8);
	t->bv = malloc((n + 1) * 8);
	t->fv = malloc((n + 1) * 8);
	t->off = malloc((n + 1) * 8);
	t->sb = malloc(total + 1);
	for (size_t r = 0; r < n; r++) {
		uint32_t l = (uint32_t)strlen(sv[r]);

		t->ids[r] = (int64_t)r + 1;
		t->iv[r] = iv[r];
		t->bv[r] = r % 3 == 0;
		t->fv[r] = fv[r];
		t->off[r] = pos;
		t->sb[pos] = (unsigned char)l;
		t->sb[pos + 1] = (unsigned char)(l >> 8);
		t->sb[pos + 2] = (unsigned char)(l >> 16);
		t->sb[pos + 3] = (unsigned char)(l >> 24);
		memcpy(t->sb + pos + 4, sv[r], l);
		pos += 4 + l;
	}
	t->r.n = n;
	t->r.ids = t->ids;
	t->r.vals[0] = t->iv;
	t->r.vals[1] = t->fv;
	t->r.vals[2] = t->sb;
	t->r.off[2] = t->off;
	t->r.vals[3] = t->bv;
}

static void trows_free(struct trows *t)
{
	free(t->ids);
	free(t->iv);
	free(t->bv);
	free(t->fv);
	free(t->sb);
	free(t->off);
}

/* The fixture: eight rows with the edge cases of each type. */
static struct trows fx;

static void fx_init(void)
{
	static const int64_t iv[8] = {
		-3, 0, 2, 5, 7, INT64_MAX, INT64_MIN, 9007199254740993LL,
	};
	static const char *const sv[8] = {
		"", "apple", "banana", "app", "a_b", "a%b", "grape",
		"\xc3\x81pple",
	};
	double fv[8] = { -1.5, 0.0, 2.5, NAN, 10.0, -0.0, INFINITY, 3.0 };

	if (!fx.r.n)
		trows_make(&fx, 8, iv, fv, sv);
}

/*
 * Evaluate expr over t: "01.." one digit per row, or "E:<message>".  The
 * bits past n are checked to be cleared and the count to match.
 */
static const char *ev(struct trows *t, const char *expr)
{
	static char out[4][512];
	static int slot;
	char *o = out[slot++ % 4];
	struct mv_err err = { 0 };
	struct mv_filter *f = mv_filter_parse(expr, tf, NTF, &err);
	uint8_t bm[64];
	size_t n = t->r.n, cnt, set = 0;

	if (!f) {
		snprintf(o, 512, "E:%s", err.msg);
		if (err.code != MV_EUSAGE)
			snprintf(o, 512, "E%d:%s", err.code, err.msg);
		return o;
	}
	memset(bm, 0xff, sizeof(bm));
	cnt = mv_filter_eval(f, &t->r, bm);
	for (size_t r = 0; r < n; r++) {
		o[r] = bm[r / 8] & 1 << r % 8 ? '1' : '0';
		set += o[r] == '1';
	}
	o[n] = '\0';
	if (cnt != set)
		snprintf(o, 512, "count %zu != %zu bits", cnt, set);
	if (n % 8 && bm[n / 8] >> n % 8)
		snprintf(o, 512, "bits past n set");
	if (bm[(n + 7) / 8] != 0xff)
		snprintf(o, 512, "wrote past the bitmap");
	mv_filter_free(f);
	return o;
}

static const char *m(const char *expr)
{
	fx_init();
	return ev(&fx, expr);
}

/*
 * i: -3 0 2 5 7 MAX MIN 2^53+1
 * f: -1.5 0 2.5 NaN 10 -0 inf 3
 * s: "" apple banana app a_b a%b grape Ápple
 * b: true false false true false false true false
 * id: 1..8
 */
TEST(filter_int_comparisons)
{
	CHECK_STR(m("i == 2"), "00100000");
	CHECK_STR(m("i != 2"), "11011111");
	CHECK_STR(m("i < 2"), "11000010");
	CHECK_STR(m("i <= 2"), "11100010");
	CHECK_STR(m("i > 2"), "00011101");
	CHECK_STR(m("i >= 2"), "00111101");
	CHECK_STR(m("2 < i"), "00011101");
	CHECK_STR(m("2 >= i"), "11100010");
	CHECK_STR(m("2 == i"), "00100000");
	CHECK_STR(m("2 != i"), "11011111");
	CHECK_STR(m("i > -3"), "01111101");
	CHECK_STR(m("i >= -3"), "11111101");
	CHECK_STR(m("i == +5"), "00010000");
	CHECK_STR(m("i == 9223372036854775807"), "00000100");
	CHECK_STR(m("i == -9223372036854775808"), "00000010");
	CHECK_STR(m("i < -9223372036854775808"), "00000000");
	CHECK_STR(m("i > 9223372036854775807"), "00000000");
	CHECK_STR(m("i == 9007199254740993"), "00000001");
	CHECK_STR(m("i == 9007199254740992"), "00000000");
	CHECK_STR(m("id > 6"), "00000011");
	CHECK_STR(m("id in [1, 3, 8]"), "10100001");
}

TEST(filter_int_against_float_is_exact)
{
	CHECK_STR(m("i > 2.5"), "00011101");
	CHECK_STR(m("i >= 2.5"), "00011101");
	CHECK_STR(m("i < 2.5"), "11100010");
	CHECK_STR(m("i <= 2.5"), "11100010");
	CHECK_STR(m("i == 2.0"), "00100000");
	CHECK_STR(m("i == 2.5"), "00000000");
	CHECK_STR(m("i != 2.5"), "11111111");
	CHECK_STR(m("i > -3.5"), "11111101");
	CHECK_STR(m("i < -2.5"), "10000010");
	CHECK_STR(m("2.5 < i"), "00011101");
	/* 2^53 as a float: 2^53 + 1 is above it, not equal to it. */
	CHECK_STR(m("i > 9007199254740992.0"), "00000101");
	CHECK_STR(m("i == 9007199254740992.0"), "00000000");
	CHECK_STR(m("i >= 9.2e18"), "00000100");
	CHECK_STR(m("i < 1e19"), "11111111");
	CHECK_STR(m("i > -1e19"), "11111111");
	CHECK_STR(m("i >= 9223372036854775808.0"), "00000000");
	CHECK_STR(m("i < -9223372036854775808.0"), "00000000");
	CHECK_STR(m("i <= -9223372036854775808.0"), "00000010");
	CHECK_STR(m("i in [2.0, 2.5, 5]"), "00110000");
	CHECK_STR(m("1.5 < i < 5.5"), "00110000");
}

TEST(filter_float_comparisons_and_nan)
{
	CHECK_STR(m("f == 0"), "01000100");
	CHECK_STR(m("f == -0.0"), "01000100");
	CHECK_STR(m("f != 0"), "10111011");
	CHECK_STR(m("f < 0"), "10000000");
	CHECK_STR(m("f <= 0"), "11000100");
	CHECK_STR(m("f >= 2.5"), "00101011");
	CHECK_STR(m("f > 2"), "00101011");
	CHECK_STR(m("f > 2.5"), "00001011");
	CHECK_STR(m("f <= 3"), "11100101");
	CHECK_STR(m("1 < f < 5"), "00100001");
	CHECK_STR(m("f in [0, 3, 2.5]"), "01100101");
	CHECK_STR(m("f not in [0, 3, 2.5]"), "10011010");
	CHECK_STR(m("f > 1e308"), "00000010");
	CHECK_STR(m("f < 1e400"), "11101101");
	CHECK_STR(m("f > 1e400"), "00000000");
	CHECK_STR(m("f <= 1e400"), "11101111");
	CHECK_STR(m("not f > 2"), "11010100");
}

TEST(filter_float_against_big_int_is_exact)
{
	/* 2^53 as a double; 2^53 + 1 has no double of its own. */
	static const int64_t iv[3] = { 0, 0, 0 };
	static const char *const sv[3] = { "", "", "" };
	double fv[3] = { 9007199254740992.0, 9007199254740994.0, -1.0 };
	struct trows t;

	trows_make(&t, 3, iv, fv, sv);
	CHECK_STR(ev(&t, "f == 9007199254740993"), "000");
	CHECK_STR(ev(&t, "f != 9007199254740993"), "111");
	CHECK_STR(ev(&t, "f < 9007199254740993"), "101");
	CHECK_STR(ev(&t, "f <= 9007199254740993"), "101");
	CHECK_STR(ev(&t, "f > 9007199254740993"), "010");
	CHECK_STR(ev(&t, "f >= 9007199254740993"), "010");
	CHECK_STR(ev(&t, "f == 9007199254740992"), "100");
	CHECK_STR(ev(&t, "f in [9007199254740993, -1]"), "001");
	CHECK_STR(ev(&t, "f > -9223372036854775808"), "111");
	trows_free(&t);
}

TEST(filter_string_comparisons_and_in)
{
	CHECK_STR(m("s == \"app\""), "00010000");
	CHECK_STR(m("s == 'app'"), "00010000");
	CHECK_STR(m("s != 'app'"), "11101111");
	CHECK_STR(m("s == ''"), "10000000");
	CHECK_STR(m("s < 'b'"), "11011100");
	CHECK_STR(m("s >= 'b'"), "00100011");
	CHECK_STR(m("'a' < s <= 'b'"), "01011100");
	CHECK_STR(m("'app' <= s <= 'app'"), "00010000");
	CHECK_STR(m("'b' < s < 'a'"), "00000000");
	CHECK_STR(m("s in ['app', 'grape', 'zzz']"), "00010010");
	CHECK_STR(m("s not in ['app', 'grape', 'zzz']"), "11101101");
	CHECK_STR(m("s in []"), "00000000");
	CHECK_STR(m("s not in []"), "11111111");
	CHECK_STR(m("s in ['', '']"), "10000000");
}

TEST(filter_string_escapes)
{
	static const int64_t iv[4] = { 0 };
	static const char *const sv[4] = { "it's", "say \"hi\"", "a\\b",
					   "a\\%" };
	double fv[4] = { 0 };
	struct trows t;

	trows_make(&t, 4, iv, fv, sv);
	CHECK_STR(ev(&t, "s == 'it\\'s'"), "1000");
	CHECK_STR(ev(&t, "s == \"it's\""), "1000");
	CHECK_STR(ev(&t, "s == \"say \\\"hi\\\"\""), "0100");
	CHECK_STR(ev(&t, "s == 'a\\\\b'"), "0010");
	/* Backslash before another byte stays, as like's escape. */
	CHECK_STR(ev(&t, "s == 'a\\b'"), "0010");
	CHECK_STR(ev(&t, "s like 'a\\\\\\\\%'"), "0011");
	CHECK_STR(ev(&t, "s like 'a\\\\\\\\\\%'"), "0001");
	trows_free(&t);
}

TEST(filter_like_patterns)
{
	CHECK_STR(m("s like 'app%'"), "01010000");
	CHECK_STR(m("s like '%pple'"), "01000001");
	CHECK_STR(m("s like '%an%'"), "00100000");
	CHECK_STR(m("s like 'app'"), "00010000");
	CHECK_STR(m("s like ''"), "10000000");
	CHECK_STR(m("s like '%'"), "11111111");
	CHECK_STR(m("s like '%%'"), "11111111");
	CHECK_STR(m("s like '%%an%%'"), "00100000");
	CHECK_STR(m("s like 'a_b'"), "00001100");
	CHECK_STR(m("s like 'a\\_b'"), "00001000");
	CHECK_STR(m("s like 'a\\%b'"), "00000100");
	CHECK_STR(m("s like 'a%b'"), "00001100");
	CHECK_STR(m("s like '_pple'"), "01000001");
	CHECK_STR(m("s like '%a%a%'"), "00100000");
	CHECK_STR(m("s like 'g%e'"), "00000010");
	CHECK_STR(m("s like '%p_e'"), "01000001");
	CHECK_STR(m("s like '_'"), "00000000");
	CHECK_STR(m("s like '___'"), "00011100");
	CHECK_STR(m("s like '%_'"), "01111111");
	CHECK_STR(m("s like 'b%a%a'"), "00100000");
	CHECK_STR(m("s LIKE 'APP%'"), "00000000");
	CHECK_STR(m("not s like 'app%'"), "10101111");
}

TEST(filter_like_contains)
{
	static const int64_t iv[7] = { 0 };
	static const char *const sv[7] = {
		"aaab", "aab", "abaab", "aa", "xaabx", "",
		"0123456789abcdefghij-0123456789abcdefghik",
	};
	double fv[7] = { 0 };
	struct trows t;

	trows_make(&t, 7, iv, fv, sv);
	CHECK_STR(ev(&t, "s like '%aab%'"), "1110100");
	CHECK_STR(ev(&t, "s like '%b%'"), "1110101");
	CHECK_STR(ev(&t, "s like '%x%'"), "0000100");
	CHECK_STR(ev(&t, "s like '%aaab%'"), "1000000");
	CHECK_STR(ev(&t, "s like '%bx%'"), "0000100");
	CHECK_STR(ev(&t, "s like '%0123456789abcdefghik%'"), "0000001");
	CHECK_STR(ev(&t, "s like '%0123456789abcdefghil%'"), "0000000");
	CHECK_STR(ev(&t, "s like '%j-0%'"), "0000001");
	trows_free(&t);
}

TEST(filter_like_has_no_exponential_backtracking)
{
	static const int64_t iv[1] = { 0 };
	static char big[20001];
	const char *sv[1] = { big };
	double fv[1] = { 0 };
	char pat[200];
	struct trows t;
	size_t k = 0;

	memset(big, 'a', sizeof(big) - 1);
	k += (size_t)snprintf(pat, sizeof(pat), "s like '");
	for (int i = 0; i < 30; i++)
		k += (size_t)snprintf(pat + k, sizeof(pat) - k, "%%a");
	snprintf(pat + k, sizeof(pat) - k, "%%b'");
	trows_make(&t, 1, iv, fv, sv);
	/* O(len * pattern): a few hundred thousand steps, not 20000^30. */
	CHECK_STR(ev(&t, pat), "0");
	pat[strlen(pat) - 2] = 'a';
	CHECK_STR(ev(&t, pat), "1");
	trows_free(&t);
}

TEST(filter_logic_and_precedence)
{
	CHECK_STR(m("i > 2 and f > 2"), "00001001");
	CHECK_STR(m("i > 2 && f > 2"), "00001001");
	CHECK_STR(m("i > 2 AND f > 2"), "00001001");
	CHECK_STR(m("i > 2 or f > 2"), "00111111");
	CHECK_STR(m("i > 2 || f > 2"), "00111111");
	CHECK_STR(m("i > 2 OR f > 2"), "00111111");
	CHECK_STR(m("not i > 2"), "11100010");
	CHECK_STR(m("NOT i > 2"), "11100010");
	CHECK_STR(m("!(i > 2)"), "11100010");
	CHECK_STR(m("!i > 2"), "11100010");
	CHECK_STR(m("not not i == 0"), "01000000");
	/* and binds tighter than or; not tighter than and. */
	CHECK_STR(m("i == 0 or i == 2 and f > 2"), "01100000");
	CHECK_STR(m("(i == 0 or i == 2) and f > 2"), "00100000");
	CHECK_STR(m("i == 2 and f > 2 or i == 0"), "01100000");
	CHECK_STR(m("not i == 0 and f == 0"), "00000100");
	CHECK_STR(m("not (i == 0 and f == 0)"), "10111111");
	CHECK_STR(m("not i == 0 or f == 0"), "11111111");
	CHECK_STR(m("((i == 2))"), "00100000");
	CHECK_STR(m("i>2&&f>2||s=='app'"), "00011001");
	CHECK_STR(m("not (i > 2 or f > 2)"), "11000000");
	CHECK_STR(m("i > 2 and s like 'a%' and f in [10]"), "00001000");
	CHECK_STR(m("i in [1] or s not in ['x']"), "11111111");
	CHECK_STR(m("\ti\n==\r2 "), "00100000");
}

TEST(filter_bool_fields)
{
	CHECK_STR(m("b"), "10010010");
	CHECK_STR(m("(b)"), "10010010");
	CHECK_STR(m("b == true"), "10010010");
	CHECK_STR(m("b == True"), "10010010");
	CHECK_STR(m("b != false"), "10010010");
	CHECK_STR(m("true == b"), "10010010");
	CHECK_STR(m("FALSE != b"), "10010010");
	CHECK_STR(m("not b"), "01101101");
	CHECK_STR(m("!b"), "01101101");
	CHECK_STR(m("b == false"), "01101101");
	CHECK_STR(m("b != true"), "01101101");
	CHECK_STR(m("b in [true]"), "10010010");
	CHECK_STR(m("b in [false, false]"), "01101101");
	CHECK_STR(m("b not in [true]"), "01101101");
	CHECK_STR(m("b in [true, false]"), "11111111");
	CHECK_STR(m("b not in [true, false]"), "00000000");
	CHECK_STR(m("b in []"), "00000000");
	CHECK_STR(m("b and i > 2"), "00010000");
	CHECK_STR(m("i > 2 and b"), "00010000");
	CHECK_STR(m("b or s == 'apple'"), "11010010");
	CHECK_STR(m("not b and not i > 2"), "01100000");
	CHECK_STR(m("b > true"),
		  "E:col 3: 'b' is bool: compare it with == or !=");
	CHECK_STR(m("true < b"),
		  "E:col 6: 'b' is bool: compare it with == or !=");
	CHECK_STR(m("b == 1"), "E:col 6: 'b' is bool, compared with a number");
	CHECK_STR(m("b == 'x'"),
		  "E:col 6: 'b' is bool, compared with a string");
	CHECK_STR(m("b in [1]"),
		  "E:col 7: 'b' is bool, compared with a number");
	CHECK_STR(m("true == b == false"), "E:col 11: 'b' is bool: no range");
	CHECK_STR(m("b like 'x'"),
		  "E:col 3: like needs a string field: 'b' is bool");
	CHECK_STR(m("b i"), "E:col 3: expected and, or or the end, got 'i'");
	CHECK_STR(m("s == true"),
		  "E:col 6: 's' is a string, compared with true/false");
}

TEST(filter_errors_name_the_column)
{
	CHECK_STR(m(""), "E:col 1: empty expression");
	CHECK_STR(m("   "), "E:col 4: empty expression");
	CHECK_STR(m("x > 1"), "E:col 1: unknown field 'x'");
	CHECK_STR(m("i > 1 and price < 3"),
		  "E:col 11: unknown field 'price'");
	CHECK_STR(m("i > 'a'"),
		  "E:col 5: 'i' is int64, compared with a string");
	CHECK_STR(m("id == 'a'"),
		  "E:col 7: 'id' is int64, compared with a string");
	CHECK_STR(m("f < \"1\""),
		  "E:col 5: 'f' is float64, compared with a string");
	CHECK_STR(m("s == 1"),
		  "E:col 6: 's' is a string, compared with a number");
	CHECK_STR(m("1.5 < s"),
		  "E:col 1: 's' is a string, compared with a number");
	CHECK_STR(m("i == true"),
		  "E:col 6: 'i' is int64, compared with true/false");
	CHECK_STR(m("i like 'a%'"),
		  "E:col 3: like needs a string field: 'i' is int64");
	CHECK_STR(m("s like 1"),
		  "E:col 8: like needs a quoted pattern, got '1'");
	CHECK_STR(m("s in ['a', 1]"),
		  "E:col 12: mixed types in the list of 's': a number after "
		  "a string");
	CHECK_STR(m("i in [1, 'a']"),
		  "E:col 10: mixed types in the list of 'i': a string after "
		  "a number");
	CHECK_STR(m("i in ['a']"),
		  "E:col 7: 'i' is int64, compared with a string");
	CHECK_STR(m("i > "), "E:col 5: expected a value, got the end");
	CHECK_STR(m("(i > 1"),
		  "E:col 7: expected ')' for the '(' at col 1, got the end");
	CHECK_STR(m("i > 1)"),
		  "E:col 6: expected and, or or the end, got ')'");
	CHECK_STR(m("i = 1"), "E:col 3: '=' is not an operator: use '=='");
	CHECK_STR(m("i > 1 & f > 1"),
		  "E:col 7: '&' is not an operator: use '&&'");
	CHECK_STR(m("i > 1 | f > 1"),
		  "E:col 7: '|' is not an operator: use '||'");
	CHECK_STR(m("s == 'abc"), "E:col 6: string not closed");
	CHECK_STR(m("i > 99999999999999999999"),
		  "E:col 5: integer out of range");
	CHECK_STR(m("i > 9223372036854775808"),
		  "E:col 5: integer out of range");
	CHECK_STR(m("i > 1abc"), "E:col 5: bad number '1a'");
	CHECK_STR(m("i > 1.2.3"), "E:col 5: bad number '1.2.'");
	CHECK_STR(m("1 < i == 3"),
		  "E:col 7: a range is < or <= twice, or > or >= twice: not < "
		  "and ==");
	CHECK_STR(m("1 < i > 3"),
		  "E:col 7: a range is < or <= twice, or > or >= twice: not < "
		  "and >");
	CHECK_STR(m("1 == i < 3"),
		  "E:col 3: a range is < or <= twice, or > or >= twice: not == "
		  "and <");
	CHECK_STR(m("i < 1 < 3"),
		  "E:col 7: a range starts with a value: 10 < x <= 20");
	CHECK_STR(m("i > f"), "E:col 5: comparing two fields is not supported");
	CHECK_STR(m("i in 1"), "E:col 6: expected '[' after in, got '1'");
	CHECK_STR(m("i in [1 2]"),
		  "E:col 9: expected ',' or ']' in the list, got '2'");
	CHECK_STR(m("i in [1,]"), "E:col 9: expected a value, got ']'");
	CHECK_STR(m("i in [1"),
		  "E:col 8: expected ',' or ']' in the list, got the end");
	CHECK_STR(m("s not like 'a'"),
		  "E:col 7: expected in after not, got 'like'");
	CHECK_STR(m("i > 1 and"),
		  "E:col 10: expected a field, a value, not or '(', got the end");
	CHECK_STR(m("i @ 1"), "E:col 3: unexpected '@'");
	CHECK_STR(m("i == \x01"), "E:col 6: unexpected byte 0x01");
	CHECK_STR(m("i"), "E:col 2: expected an operator after 'i', got the end");
	CHECK_STR(m("5"),
		  "E:col 2: expected a comparison after the value, got the end");
	CHECK_STR(m("5 < 6"), "E:col 5: expected a field, got '6'");
	CHECK_STR(m("i == -'a'"),
		  "E:col 7: expected a number after the sign, got ''a''");
	CHECK_STR(m("i == 1 i == 2"),
		  "E:col 8: expected and, or or the end, got 'i'");
}

TEST(filter_nesting_is_bounded)
{
	char e[400];
	size_t k = 0;

	for (int i = 0; i < 64; i++)
		e[k++] = '(';
	k += (size_t)snprintf(e + k, sizeof(e) - k, "i == 2");
	for (int i = 0; i < 64; i++)
		e[k++] = ')';
	e[k] = '\0';
	CHECK_STR(m(e), "00100000");
	memmove(e + 1, e, k + 1);
	e[0] = '(';
	CHECK_STR(m(e), "E:col 65: nested deeper than 64");
	k = 0;
	for (int i = 0; i < 65; i++)
		k += (size_t)snprintf(e + k, sizeof(e) - k, "not ");
	snprintf(e + k, sizeof(e) - k, "i == 2");
	CHECK_STR(m(e), "E:col 257: nested deeper than 64");
}

/* The deepest expressions, parsed and evaluated on a 128 KiB stack. */
#if defined(__SANITIZE_ADDRESS__)
#define DEEP_STACK (4 * 128 * 1024)
#else
#define DEEP_STACK (128 * 1024)
#endif
static void *deep_thread(void *arg)
{
	static const char *const ops[] = { " or (", " and (", " or not (" };
	char *e = malloc(8192), *res = arg;
	size_t k = 0;
	int depth = 0, lv = 0, nots = 0;

	/*
	 * i == 1000 or (i != 1000 and (i == 1000 or not (... 64 levels
	 * deep: no level decides a row, so every level is evaluated.
	 */
	while (depth + (lv % 3 == 2 ? 2 : 1) <= 64) {
		k += (size_t)snprintf(e + k, 8192 - k, "i %s 1000%s",
				      lv % 3 == 1 ? "!=" : "==", ops[lv % 3]);
		depth += lv % 3 == 2 ? 2 : 1;
		nots += lv % 3 == 2;
		lv++;
	}
	k += (size_t)snprintf(e + k, 8192 - k, "s like '%%p_e'");
	for (int i = 0; i < lv; i++)
		e[k++] = ')';
	e[k] = '\0';
	snprintf(res, 600, "%d %s", nots % 2, m(e));
	free(e);
	return NULL;
}

TEST(filter_deep_expressions_fit_a_small_stack)
{
	char res[600] = "";
	pthread_attr_t attr;
	pthread_t th;

	fx_init();
	pthread_attr_init(&attr);
	/* ASan's frames are several times larger (and the node's threads
	 * have 512 KiB): the same bound, scaled, under make asan. */
	pthread_attr_setstacksize(&attr, DEEP_STACK);
	REQUIRE(pthread_create(&th, &attr, deep_thread, res) == 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	/* The like at the bottom (apple, Ápple), under an odd or even not. */
	CHECK(!strcmp(res, "0 01000001") || !strcmp(res, "1 10111110"));
	unit_diag("%s", res);
}

TEST(filter_fields_read)
{
	struct mv_filter *f;

	f = mv_filter_parse("s == 'a' or id > 3", tf, NTF, NULL);
	REQUIRE(f);
	CHECK_EQ_U64(mv_filter_fields(f), MV_FILTER_ID | 4);
	mv_filter_free(f);
	f = mv_filter_parse("not (i < 1 and f in [1])", tf, NTF, NULL);
	REQUIRE(f);
	CHECK_EQ_U64(mv_filter_fields(f), 3);
	mv_filter_free(f);
	mv_filter_free(NULL);
}

/* Long in-lists: a bitset when close, bisection when not, any type. */
TEST(filter_long_in_lists)
{
	enum { N = 3000 };
	static const char *const words[] = {
		"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9",
		"w10", "w11", "w12",
	};
	static const struct {
		const char *expr;
		int set[24];	/* values of i (then of f * 2, of word): */
		int n, col;	/* 0 i, 1 f, 2 s */
	} cases[] = {
		{ "i in [-100, -7, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 99]",
		  { -100, -7, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 99 }, 13, 0 },
		{ "i not in [-100, -7, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 99]",
		  { -100, -7, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 99 }, 13, 0 },
		{ "i in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4611686018427387904]",
		  { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 10, 0 },
		{ "i in [-9223372036854775808, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
		  { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 9, 0 },
		{ "f in [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.25]",
		  { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 10, 1 },
		{ "s in ['w1', 'w3', 'w5', 'w7', 'w9', 'w11', 'x', 'y', 'z']",
		  { 1, 3, 5, 7, 9, 11 }, 6, 2 },
	};
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	const char **sv = malloc(N * sizeof(*sv));
	uint8_t *bm = malloc(N / 8 + 1);
	struct trows t;

	for (int r = 0; r < N; r++) {
		iv[r] = r % 203 - 101;
		fv[r] = (r % 23) * 0.5;
		sv[r] = words[r % 13];
	}
	iv[7] = INT64_MIN;
	iv[8] = INT64_MAX;
	iv[9] = 4611686018427387904LL;
	trows_make(&t, N, iv, fv, sv);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mv_filter *f = mv_filter_parse(cases[c].expr, tf, NTF,
						      NULL);
		int neg = strstr(cases[c].expr, "not in") != NULL, bad = 0;
		size_t want = 0, cnt;

		REQUIRE(f);
		cnt = mv_filter_eval(f, &t.r, bm);
		for (int r = 0; r < N; r++) {
			int64_t v = cases[c].col == 0 ? iv[r] :
				    cases[c].col == 1 ? (int64_t)(fv[r] * 2) :
				    r % 13;
			int w = 0;

			for (int k = 0; k < cases[c].n; k++)
				w |= v == cases[c].set[k];
			if (cases[c].col == 0 && c == 2)
				w |= iv[r] == 4611686018427387904LL;
			if (cases[c].col == 0 && c == 3)
				w |= iv[r] == INT64_MIN;
			w ^= neg;
			want += w;
			if (w != !!(bm[r / 8] & 1 << r % 8) && bad++ < 3)
				unit_fail(__FILE__, __LINE__, "%s: row %d",
					  cases[c].expr, r);
		}
		CHECK_EQ_U64(cnt, want);
		mv_filter_free(f);
	}
	trows_free(&t);
	free(iv);
	free(fv);
	free(sv);
	free(bm);
}

/* Many rows, across chunk boundaries, and the bits past n. */
TEST(filter_many_rows_across_chunks)
{
	enum { N = 5003 };
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	const char **sv = malloc(N * sizeof(*sv));
	static const char *const words[3] = { "red", "green", "blue" };
	uint8_t *bm = malloc(N / 8 + 2);
	struct mv_filter *f;
	struct trows t;
	size_t want = 0, cnt;
	int bad = 0;

	for (int r = 0; r < N; r++) {
		iv[r] = r % 7;
		fv[r] = r * 0.5;
		sv[r] = words[r % 3];
	}
	trows_make(&t, N, iv, fv, sv);
	f = mv_filter_parse("(i == 3 and s != 'red') or id > 4990 or "
			    "f in [100, 1023.5, 2048]", tf, NTF, NULL);
	REQUIRE(f);
	memset(bm, 0xff, N / 8 + 2);
	cnt = mv_filter_eval(f, &t.r, bm);
	for (int r = 0; r < N; r++) {
		int w = (iv[r] == 3 && r % 3) || r + 1 > 4990 ||
			fv[r] == 100 || fv[r] == 1023.5 || fv[r] == 2048;
		int got = !!(bm[r / 8] & 1 << r % 8);

		want += w;
		if (w != got && bad++ < 5)
			unit_diag("row %d: want %d got %d", r, w, got);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_U64(cnt, want);
	CHECK_EQ_INT(bm[N / 8] >> (N % 8), 0);
	CHECK_EQ_INT(bm[N / 8 + 1], 0xff);
	/* n = 0 writes nothing and matches nothing. */
	t.r.n = 0;
	bm[0] = 0xab;
	CHECK_EQ_U64(mv_filter_eval(f, &t.r, bm), 0);
	CHECK_EQ_INT(bm[0], 0xab);
	mv_filter_free(f);
	trows_free(&t);
	free(iv);
	free(fv);
	free(sv);
	free(bm);
}

/* ---- random expressions against a row-at-a-time evaluator ---------- */

enum { X_AND, X_OR, X_NOT, X_CMP, X_CHAIN, X_IN, X_LIKE };

struct xlit {
	int isf;		/* numbers: a float literal */
	int64_t i;
	double f;
	const char *s;
};

struct xnode {
	int kind, col, op, op2, neg;	/* col: 0 i, 1 f, 2 s, 3 id, 4 b */
	int bare;			/* b alone */
	int litfirst;
	struct xlit a, b;
	struct xlit list[16];
	int nlist;
	struct xnode *l, *r;
};

static uint64_t xs;

static uint64_t rnd(void)
{
	xs ^= xs >> 12;
	xs ^= xs << 25;
	xs ^= xs >> 27;
	return xs * 2685821657736338717ull;
}

static const char *const strs[] = {
	"", "a", "ab", "abc", "b", "ba", "bab", "a%b", "a_b", "abab", "cab",
};
#define NSTRS (int)(sizeof(strs) / sizeof(strs[0]))
static const char *const pats[] = {
	"%", "a%", "%b", "%a%", "a", "_", "a_", "_b%", "%a_b", "a%b",
	"%ab%ab%", "b%", "\\%", "a\\_b", "a\\%b", "", "__", "%b%a", "ab%",
	"%_a%", "b_b",
};
#define NPATS (int)(sizeof(pats) / sizeof(pats[0]))

static const int64_t ivals[] = {
	-3, -2, -1, 0, 1, 2, 3, 9007199254740993LL, INT64_MAX, INT64_MIN,
};
#define NIVALS (int)(sizeof(ivals) / sizeof(ivals[0]))

static void xlit_rand(struct xlit *l, int col)
{
	memset(l, 0, sizeof(*l));
	if (col == 4) {
		l->i = rnd() % 2;
		return;
	}
	if (col == 2) {
		l->s = strs[rnd() % NSTRS];
		return;
	}
	l->isf = rnd() % 3 == 0;
	if (l->isf) {
		static const double fl[] = {
			-2.5, -1.0, -0.0, 0.5, 1.0, 1.5, 2.0, 2.5,
			9007199254740992.0, 1e19, -1e19, 1e300,
		};
		l->f = fl[rnd() % (sizeof(fl) / sizeof(fl[0]))];
	} else {
		l->i = rnd() % 4 ? (int64_t)(rnd() % 7) - 3 :
		       ivals[rnd() % NIVALS];
	}
}

static struct xnode *xgen(int depth)
{
	struct xnode *x = calloc(1, sizeof(*x));
	int k = depth > 0 ? (int)(rnd() % 7) : 3 + (int)(rnd() % 4);

	x->kind = k;
	x->col = (int)(rnd() % 5);
	if (k == X_CHAIN && x->col == 4)
		x->col = 0;
	switch (k) {
	case X_AND:
	case X_OR:
		x->l = xgen(depth - 1);
		x->r = xgen(depth - 1);
		break;
	case X_NOT:
		x->l = xgen(depth - 1);
		break;
	case X_CMP:
		x->op = (int)(rnd() % (x->col == 4 ? 2 : 6));
		x->litfirst = rnd() % 2;
		xlit_rand(&x->a, x->col);
		if (x->col == 4 && rnd() % 3 == 0) {
			x->bare = 1;
			x->op = 0;
			x->a.i = 1;
		}
		break;
	case X_CHAIN:
		x->op = (int)(rnd() % 2);	/* 0: < or <=, 1: > or >= */
		x->op2 = (int)(rnd() % 4);	/* bit 0: first incl, 1: second */
		xlit_rand(&x->a, x->col);
		xlit_rand(&x->b, x->col);
		break;
	case X_IN:
		x->neg = rnd() % 2;
		/* Short lists, and long ones (bitset or bisection). */
		x->nlist = (int)(rnd() % (rnd() % 2 ? 5 : 15));
		if (rnd() % 4 == 0)
			x->nlist = 0;
		for (int i = 0; i < x->nlist; i++) {
			xlit_rand(&x->list[i], x->col);
			/* Wider, so that long lists stay long once deduped. */
			if (x->col != 2 && x->col != 4 && !x->list[i].isf &&
			    rnd() % 2)
				x->list[i].i = (int64_t)(rnd() % 19) - 9;
		}
		break;
	case X_LIKE:
		x->col = 2;
		x->neg = rnd() % 2;
		x->a.s = pats[rnd() % NPATS];
		break;
	}
	return x;
}

static void xfree(struct xnode *x)
{
	if (!x)
		return;
	xfree(x->l);
	xfree(x->r);
	free(x);
}

static const char *const colname[] = { "i", "f", "s", "id", "b" };
static const char *const opname[] = { "==", "!=", "<", "<=", ">", ">=" };


static void xlit_print(char *buf, size_t size, const struct xlit *l, int col)
{
	if (col == 4) {
		unit_catf(buf, size, "%s", l->i ? "true" : "false");
	} else if (col == 2) {
		unit_catf(buf, size, rnd() % 2 ? "'%s'" : "\"%s\"", l->s);
	} else if (l->isf) {
		char t[64];

		snprintf(t, sizeof(t), "%.17g", l->f);
		if (!strpbrk(t, ".e"))
			strcat(t, ".0");
		unit_catf(buf, size, "%s", t);
	} else {
		unit_catf(buf, size, "%lld", (long long)l->i);
	}
}

static void xprint(char *buf, size_t size, const struct xnode *x)
{
	static const char *const ands[] = { "and", "&&", "AND" };
	static const char *const ors[] = { "or", "||", "OR" };
	static const char *const nots[] = { "not ", "!", "NOT " };

	switch (x->kind) {
	case X_AND:
	case X_OR:
		unit_catf(buf, size, "(");
		xprint(buf, size, x->l);
		unit_catf(buf, size, " %s ", x->kind == X_AND ? ands[rnd() % 3] :
		     ors[rnd() % 3]);
		xprint(buf, size, x->r);
		unit_catf(buf, size, ")");
		break;
	case X_NOT:
		unit_catf(buf, size, "%s(", nots[rnd() % 3]);
		xprint(buf, size, x->l);
		unit_catf(buf, size, ")");
		break;
	case X_CMP:
		if (x->bare) {
			unit_catf(buf, size, "b");
		} else if (x->litfirst) {
			/* lit op col: print the mirrored operator. */
			static const int mir[] = { 0, 1, 4, 5, 2, 3 };

			xlit_print(buf, size, &x->a, x->col);
			unit_catf(buf, size, " %s %s", opname[mir[x->op]],
			     colname[x->col]);
		} else {
			unit_catf(buf, size, "%s %s ", colname[x->col],
			     opname[x->op]);
			xlit_print(buf, size, &x->a, x->col);
		}
		break;
	case X_CHAIN:
		xlit_print(buf, size, &x->a, x->col);
		unit_catf(buf, size, " %s %s %s ",
		     x->op ? (x->op2 & 1 ? ">=" : ">") :
			     (x->op2 & 1 ? "<=" : "<"),
		     colname[x->col],
		     x->op ? (x->op2 & 2 ? ">=" : ">") :
			     (x->op2 & 2 ? "<=" : "<"));
		xlit_print(buf, size, &x->b, x->col);
		break;
	case X_IN:
		unit_catf(buf, size, "%s %sin [", colname[x->col],
		     x->neg ? "not " : "");
		for (int i = 0; i < x->nlist; i++) {
			if (i)
				unit_catf(buf, size, ", ");
			xlit_print(buf, size, &x->list[i], x->col);
		}
		unit_catf(buf, size, "]");
		break;
	case X_LIKE:
		unit_catf(buf, size, "%ss like '%s'", x->neg ? "not " : "",
		     x->a.s);
		break;
	}
}

/* Three-way comparison of a row's value with a literal; 2: unordered. */
static int xcmp(const struct trows *t, size_t r, int col,
		const struct xlit *l)
{
	if (col == 2) {
		const unsigned char *q = t->sb + t->off[r];
		size_t len = q[0] | q[1] << 8, ll = strlen(l->s);
		size_t mn = len < ll ? len : ll;
		int c = memcmp(q + 4, l->s, mn);

		if (c)
			return c < 0 ? -1 : 1;
		return len < ll ? -1 : len > ll;
	}
	if (col == 4)
		return t->bv[r] == l->i ? 0 : t->bv[r] < l->i ? -1 : 1;
	/* long double holds every int64 and every double exactly. */
	long double v = col == 0 ? (long double)t->iv[r] :
			col == 1 ? (long double)t->fv[r] :
			(long double)t->ids[r];
	long double c = l->isf ? (long double)l->f : (long double)l->i;

	if (v != v)
		return 2;
	return v < c ? -1 : v > c;
}

static int xop(int c, int op)
{
	if (c == 2)
		return op == 1;
	switch (op) {
	case 0: return c == 0;
	case 1: return c != 0;
	case 2: return c < 0;
	case 3: return c <= 0;
	case 4: return c > 0;
	default: return c >= 0;
	}
}

/* A plain recursive like, with \ escaping the next byte (ASCII data). */
static int xlike(const char *s, size_t n, const char *p)
{
	if (!*p)
		return n == 0;
	if (*p == '%')
		for (size_t k = 0; k <= n; k++) {
			if (xlike(s + k, n - k, p + 1))
				return 1;
		}
	if (*p == '%')
		return 0;
	if (*p == '_')
		return n && xlike(s + 1, n - 1, p + 1);
	if (*p == '\\' && p[1])
		p++;
	return n && *s == *p && xlike(s + 1, n - 1, p + 1);
}

static int xeval(const struct trows *t, size_t r, const struct xnode *x)
{
	int v = 0;

	switch (x->kind) {
	case X_AND:
		return xeval(t, r, x->l) && xeval(t, r, x->r);
	case X_OR:
		return xeval(t, r, x->l) || xeval(t, r, x->r);
	case X_NOT:
		return !xeval(t, r, x->l);
	case X_CMP:
		return xop(xcmp(t, r, x->col, &x->a), x->op);
	case X_CHAIN: {
		/* a op1 col op2 b: col mirrored against a, then against b. */
		int ca = xcmp(t, r, x->col, &x->a);
		int cb = xcmp(t, r, x->col, &x->b);

		if (x->op == 0)
			return xop(ca, x->op2 & 1 ? 5 : 4) &&
			       xop(cb, x->op2 & 2 ? 3 : 2);
		return xop(ca, x->op2 & 1 ? 3 : 2) &&
		       xop(cb, x->op2 & 2 ? 5 : 4);
	}
	case X_IN:
		for (int i = 0; i < x->nlist; i++)
			v |= xcmp(t, r, x->col, &x->list[i]) == 0;
		return x->neg ? !v : v;
	case X_LIKE: {
		const unsigned char *q = t->sb + t->off[r];

		v = xlike((const char *)q + 4, q[0] | q[1] << 8, x->a.s);
		return x->neg ? !v : v;
	}
	}
	return 0;
}

/* Bytes-wise order, the shorter first: filter.h's, written again here. */
static int sorder(const char *a, size_t na, const char *b, size_t nb)
{
	size_t m = na < nb ? na : nb;
	int c = m ? memcmp(a, b, m) : 0;

	return c ? c : na < nb ? -1 : na > nb;
}

/* Whether string v[len] lies in the string range of b. */
static int str_in_bound(const struct mv_filter_bound *b, const char *v,
			size_t len)
{
	int lo = b->has_slo ? sorder(v, len, b->slo.p, b->slo.len) : 1;
	int hi = b->has_shi ? sorder(v, len, b->shi.p, b->shi.len) : -1;

	return (lo > 0 || (!lo && b->slo_incl)) &&
	       (hi < 0 || (!hi && b->shi_incl));
}

/* 1 (and a failure) when a row set in bm lies outside f's bound on a column. */
static int check_bounds(const struct mv_filter *f, const struct trows *t,
			const uint8_t *bm, const char *expr)
{
	static const int cols[] = { 0, 1, 3, -1, 2 };

	for (int c = 0; c < 5; c++) {
		struct mv_filter_bound b;
		int k = mv_filter_bounds(f, cols[c], &b);

		for (size_t r = 0; r < t->r.n; r++) {
			int in = 1;

			if (!(bm[r / 8] & 1 << r % 8) || k == MV_BOUND_NONE)
				continue;
			if (k == MV_BOUND_INT) {
				int64_t v = cols[c] == 0 ? t->iv[r] :
					    cols[c] == 3 ? t->bv[r] :
					    t->ids[r];

				in = v >= b.ilo && v <= b.ihi &&
				     (cols[c] == 0 || cols[c] == 3 ||
				      cols[c] == -1);
				if (b.set) {
					int hit = 0;

					for (size_t i = 0; i < b.nset; i++)
						hit |= ((const int64_t *)
							b.set)[i] == v;
					in &= hit;
				}
			} else if (k == MV_BOUND_STR) {
				const unsigned char *q = t->sb + t->off[r];
				size_t len = (size_t)q[0] | (size_t)q[1] << 8;
				const struct mv_filter_str *ss = b.set;
				int hit = !ss;

				for (size_t i = 0; ss && i < b.nset; i++)
					hit |= ss[i].len == len &&
					       !memcmp(ss[i].p, q + 4, len);
				in = cols[c] == 2 && hit &&
				     str_in_bound(&b, (const char *)q + 4, len);
			} else if (k == MV_BOUND_FLOAT) {
				double v = t->fv[r];

				in = cols[c] == 1 && v >= b.flo && v <= b.fhi;
				if (b.set) {
					int hit = 0;

					for (size_t i = 0; i < b.nset; i++)
						hit |= ((const double *)
							b.set)[i] == v;
					in &= hit;
				}
			} else {
				in = 0;		/* empty, yet a row matched */
			}
			if (!in) {
				unit_fail(__FILE__, __LINE__, "%s: row %zu "
					  "matches outside the bound on "
					  "column %d (kind %d)", expr, r,
					  cols[c], k);
				return 1;
			}
		}
	}
	return 0;
}

/*
 * 1 (and a failure) when mv_filter_eval_sel over random candidates is not
 * the scan's bits (bm) ANDed with them.
 */
static int check_sel(const struct mv_filter *f, const struct trows *t,
		     const uint8_t *bm, const char *expr)
{
	size_t n = t->r.n, nb = (n + 7) / 8, want = 0, got;
	uint8_t *c = malloc(nb + 1), *c0 = malloc(nb + 1);
	int bad = 0;

	for (size_t i = 0; i <= nb; i++)
		c[i] = c0[i] = (uint8_t)(rnd() % 3 == 0 ? 0xff : rnd());
	got = mv_filter_eval_sel(f, &t->r, c);
	for (size_t r = 0; r < n; r++) {
		int w = (c0[r / 8] & bm[r / 8]) >> r % 8 & 1;

		want += w;
		bad |= w != (c[r / 8] >> r % 8 & 1);
	}
	if (n % 8 && c[n / 8] >> n % 8)
		bad = 1;
	if (c[nb] != c0[nb])
		bad = 1;
	if (bad || got != want) {
		unit_fail(__FILE__, __LINE__, "%s: the gathered evaluation "
			  "differs from the scan", expr);
		bad = 1;
	}
	free(c);
	free(c0);
	return bad;
}

TEST(filter_random_expressions_match_a_row_evaluator)
{
	enum { N = 2100, EXPRS = 3000 };
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	const char **sv = malloc(N * sizeof(*sv));
	uint8_t *bm = malloc(N / 8 + 1);
	static const double fpool[] = {
		-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, NAN,
		INFINITY, -INFINITY, 9007199254740992.0, 9007199254740994.0,
		1e19, -1e300,
	};
	struct trows t;
	int bad = 0, mixed = 0;

	xs = 0x9e3779b97f4a7c15ull;
	for (int r = 0; r < N; r++) {
		iv[r] = rnd() % 3 ? (int64_t)(rnd() % 19) - 9 :
			ivals[rnd() % NIVALS];
		fv[r] = fpool[rnd() % (sizeof(fpool) / sizeof(fpool[0]))];
		sv[r] = strs[rnd() % NSTRS];
	}
	trows_make(&t, N, iv, fv, sv);
	for (int e = 0; e < EXPRS && bad < 5; e++) {
		struct xnode *x = xgen((int)(rnd() % 5));
		char buf[8192] = "";
		struct mv_err err = { 0 };
		struct mv_filter *f;
		size_t cnt, want = 0;

		xprint(buf, sizeof(buf), x);
		f = mv_filter_parse(buf, tf, NTF, &err);
		if (!f) {
			unit_fail(__FILE__, __LINE__, "%s: %s", buf, err.msg);
			bad++;
			xfree(x);
			continue;
		}
		cnt = mv_filter_eval(f, &t.r, bm);
		for (size_t r = 0; r < N; r++) {
			int w = xeval(&t, r, x);

			want += w;
			if (w != !!(bm[r / 8] & 1 << r % 8)) {
				unit_fail(__FILE__, __LINE__,
					  "%s: row %zu (i %lld f %g s '%s'): "
					  "want %d", buf, r,
					  (long long)iv[r], fv[r], sv[r], w);
				bad++;
				break;
			}
		}
		mixed += cnt > 0 && cnt < N;
		bad += check_bounds(f, &t, bm, buf);
		bad += check_sel(f, &t, bm, buf);
		if (cnt != want && !bad) {
			unit_fail(__FILE__, __LINE__, "%s: count %zu, want %zu",
				  buf, cnt, want);
			bad++;
		}
		mv_filter_free(f);
		xfree(x);
	}
	CHECK_EQ_INT(bad, 0);
	/* The expressions split the rows, rather than all or none. */
	unit_diag("%d of %d expressions match some rows, not all", mixed,
		  EXPRS);
	CHECK(mixed > EXPRS / 2);
	trows_free(&t);
	free(iv);
	free(fv);
	free(sv);
	free(bm);
}

/* ---- bounds (mv_filter_bounds) ------------------------------------ */

/*
 * The bound of expr on field (0 i, 1 f, 3 b, -1 id) as text: "none",
 * "empty", "i LO..HI", "f LO..HI" (%.17g), then " {v,...}" for a set.
 */
static const char *bd(const char *expr, int field)
{
	static char out[4][256];
	static int slot;
	char *o = out[slot++ % 4];
	struct mv_err err = { 0 };
	struct mv_filter *f = mv_filter_parse(expr, tf, NTF, &err);
	struct mv_filter_bound b;
	int k;

	if (!f) {
		snprintf(o, 256, "E:%.200s", err.msg);
		return o;
	}
	k = mv_filter_bounds(f, field, &b);
	if (k != (int)b.kind)
		snprintf(o, 256, "returned %d, kind %d", k, (int)b.kind);
	else if (k == MV_BOUND_NONE)
		snprintf(o, 256, "none");
	else if (k == MV_BOUND_EMPTY)
		snprintf(o, 256, "empty");
	else if (k == MV_BOUND_INT)
		snprintf(o, 256, "i %lld..%lld", (long long)b.ilo,
			 (long long)b.ihi);
	else if (k == MV_BOUND_STR && !b.has_slo && !b.has_shi)
		snprintf(o, 256, "s");
	else if (k == MV_BOUND_STR)
		snprintf(o, 256, "s %s%.*s%s..%s%.*s%s", b.has_slo ?
			 (b.slo_incl ? "['" : "('") : "(", (int)b.slo.len,
			 b.has_slo ? b.slo.p : "", b.has_slo ? "'" : "",
			 b.has_shi ? "'" : "", (int)b.shi.len,
			 b.has_shi ? b.shi.p : "", b.has_shi ?
			 (b.shi_incl ? "']" : "')") : ")");
	else
		snprintf(o, 256, "f %.17g..%.17g", b.flo, b.fhi);
	if ((k == MV_BOUND_NONE || k == MV_BOUND_EMPTY) && (b.set || b.nset))
		snprintf(o, 256, "a set with kind %d", k);
	if (b.set) {
		unit_catf(o, 256, " {");
		for (size_t i = 0; i < b.nset; i++) {
			if (k == MV_BOUND_STR)
				unit_catf(o, 256, "%s'%.*s'", i ? "," : "",
				     (int)((const struct mv_filter_str *)
					   b.set)[i].len,
				     ((const struct mv_filter_str *)
				      b.set)[i].p);
			else if (k == MV_BOUND_INT)
				unit_catf(o, 256, "%s%lld", i ? "," : "",
				     (long long)((const int64_t *)b.set)[i]);
			else
				unit_catf(o, 256, "%s%.17g", i ? "," : "",
				     ((const double *)b.set)[i]);
		}
		unit_catf(o, 256, "}");
	}
	mv_filter_free(f);
	return o;
}

TEST(filter_bounds_of_each_operator)
{
	/* int64 */
	CHECK_STR(bd("i == 5", 0), "i 5..5");
	CHECK_STR(bd("5 == i", 0), "i 5..5");
	CHECK_STR(bd("i < 5", 0), "i -9223372036854775808..4");
	CHECK_STR(bd("i <= 5", 0), "i -9223372036854775808..5");
	CHECK_STR(bd("i > 5", 0), "i 6..9223372036854775807");
	CHECK_STR(bd("i >= 5", 0), "i 5..9223372036854775807");
	CHECK_STR(bd("5 > i", 0), "i -9223372036854775808..4");
	CHECK_STR(bd("i != 5", 0), "none");
	CHECK_STR(bd("i in [7, 3, 3, 5]", 0),
		  "i -9223372036854775808..9223372036854775807 {3,5,7}");
	CHECK_STR(bd("i not in [3, 5]", 0), "none");
	CHECK_STR(bd("i in []", 0), "empty");
	CHECK_STR(bd("i < -9223372036854775808", 0), "empty");
	CHECK_STR(bd("i > 9223372036854775807", 0), "empty");
	CHECK_STR(bd("i >= -9223372036854775808", 0), "none");
	/* Negated one-sided ranges are ranges; two-sided ones are not. */
	CHECK_STR(bd("not (i < 5)", 0), "i 5..9223372036854775807");
	CHECK_STR(bd("!(i >= 5)", 0), "i -9223372036854775808..4");
	CHECK_STR(bd("not (1 < i < 5)", 0), "none");
	CHECK_STR(bd("not (i == 5)", 0), "none");
	/* Chained ranges, and ands meet. */
	CHECK_STR(bd("1 < i <= 5", 0), "i 2..5");
	CHECK_STR(bd("5 >= i > 1", 0), "i 2..5");
	CHECK_STR(bd("i > 1 and i < 10 and i != 4 and i <= 8", 0), "i 2..8");
	CHECK_STR(bd("(i > 1 and s == 'a') and (f < 2 and i < 10)", 0),
		  "i 2..9");
	CHECK_STR(bd("i > 5 and i < 3", 0), "empty");
	CHECK_STR(bd("i in [1, 2, 9] and i in [2, 3]", 0),
		  "i -9223372036854775808..9223372036854775807 {2,3}");
	CHECK_STR(bd("i in [1, 2, 9] and i > 2", 0),
		  "i 3..9223372036854775807 {1,2,9}");
	CHECK_STR(bd("i in [1, 2] and i > 2", 0), "empty");
	/* Constants: an empty in-list is false, an empty not in true. */
	CHECK_STR(bd("f < 5 and i in []", 1), "empty");
	CHECK_STR(bd("i < 5 and s not in []", 0), "i -9223372036854775808..4");
	CHECK_STR(bd("s in []", 0), "empty");
	CHECK_STR(bd("s not in []", 0), "none");
	/* An or, or a not above an and, says nothing. */
	CHECK_STR(bd("i == 1 or i == 2", 0), "none");
	CHECK_STR(bd("i == 1 or f < 2", 0), "none");
	CHECK_STR(bd("not (i > 1 and i < 5)", 0), "none");
	CHECK_STR(bd("(i == 1 or i == 2) and i > 0", 0),
		  "i 1..9223372036854775807");
	/* Other fields' predicates are no bound on this one. */
	CHECK_STR(bd("f < 2 and s == 'a'", 0), "none");
	/* Strings: == and in only, a set in memcmp order. */
	CHECK_STR(bd("s == 'a'", 2), "s {'a'}");
	CHECK_STR(bd("'b' == s", 2), "s {'b'}");
	CHECK_STR(bd("s in ['b', 'a', 'ab', 'b']", 2), "s {'a','ab','b'}");
	CHECK_STR(bd("s in ['b', 'a'] and s == 'c' and i < 2", 2), "s {'c'}");
	CHECK_STR(bd("s in ['b', 'a'] and s in ['x']", 2), "s {'x'}");
	CHECK_STR(bd("s == ''", 2), "s {''}");
	CHECK_STR(bd("s != 'a'", 2), "none");
	CHECK_STR(bd("s not in ['a']", 2), "none");
	/* String ranges, chained and met, and like's prefix and exact. */
	CHECK_STR(bd("s < 'a'", 2), "s (..'a')");
	CHECK_STR(bd("s >= 'a'", 2), "s ['a'..)");
	CHECK_STR(bd("'a' < s <= 'c'", 2), "s ('a'..'c']");
	CHECK_STR(bd("s > 'a' and s >= 'b' and s < 'd' and s <= 'c'", 2),
		  "s ['b'..'c']");
	CHECK_STR(bd("s > 'a' and s >= 'a'", 2), "s ('a'..)");
	CHECK_STR(bd("s > 'b' and s < 'a'", 2), "empty");
	CHECK_STR(bd("s >= 'b' and s < 'b'", 2), "empty");
	CHECK_STR(bd("s >= 'b' and s <= 'b'", 2), "s ['b'..'b']");
	CHECK_STR(bd("s like 'ab%' and i == 2", 2), "s ['ab'..'ac')");
	CHECK_STR(bd("s like 'a\xff\xff%'", 2), "s ['a\xff\xff'..'b')");
	CHECK_STR(bd("s like '\xff%'", 2), "s ['\xff'..)");
	CHECK_STR(bd("s like 'ab'", 2), "s {'ab'}");
	CHECK_STR(bd("s like 'a_%'", 2), "none");
	CHECK_STR(bd("s like '%b'", 2), "none");
	CHECK_STR(bd("not (s like 'a%')", 2), "none");
	CHECK_STR(bd("not (s < 'a')", 2), "none");
	CHECK_STR(bd("s in ['a', 'b', 'c'] and s > 'a'", 2),
		  "s ('a'..) {'a','b','c'}");
	CHECK_STR(bd("s in ['a', 'b'] and s > 'b'", 2), "empty");
	CHECK_STR(bd("s like 'b%' and s == 'a'", 2), "empty");
	CHECK_STR(bd("s == 'a' or s == 'b'", 2), "none");
	CHECK_STR(bd("s == 'a' and i in []", 2), "empty");
	/* Floats against an int64 field: exact integral bounds. */
	CHECK_STR(bd("i < 2.5", 0), "i -9223372036854775808..2");
	CHECK_STR(bd("i <= -2.5", 0), "i -9223372036854775808..-3");
	CHECK_STR(bd("i > 2.5", 0), "i 3..9223372036854775807");
	CHECK_STR(bd("i == 2.5", 0), "empty");
	CHECK_STR(bd("i == 2.0", 0), "i 2..2");
	CHECK_STR(bd("i < 1e19", 0), "none");
	CHECK_STR(bd("i > 1e19", 0), "empty");
	CHECK_STR(bd("i >= -1e19", 0), "none");
	CHECK_STR(bd("i > 9007199254740992.0", 0),
		  "i 9007199254740993..9223372036854775807");
	CHECK_STR(bd("i in [2.5, 3.0, 1e19]", 0),
		  "i -9223372036854775808..9223372036854775807 {3}");
	/* float64: inclusive double bounds, never NaN. */
	CHECK_STR(bd("f == 2.5", 1), "f 2.5..2.5");
	CHECK_STR(bd("f < 1", 1), "f -inf..0.99999999999999989");
	CHECK_STR(bd("f >= 1", 1), "f 1..inf");
	CHECK_STR(bd("f > -0.0", 1), "f 4.9406564584124654e-324..inf");
	CHECK_STR(bd("f != 2.5", 1), "none");
	CHECK_STR(bd("not (f < 1)", 1), "none");
	CHECK_STR(bd("f < -1e999", 1), "empty");
	CHECK_STR(bd("f in [2, 0.5, 2]", 1),
		  "f -inf..inf {0.5,2}");
	CHECK_STR(bd("0 < f < 1 and f > 0.5", 1),
		  "f 0.50000000000000011..0.99999999999999989");
	CHECK_STR(bd("f > 2 and f < 1", 1), "empty");
	/* Ints against a float64 field: exact, past 2^53 too. */
	CHECK_STR(bd("f < 9007199254740993", 1),
		  "f -inf..9007199254740992");
	CHECK_STR(bd("f > 9007199254740993", 1),
		  "f 9007199254740994..inf");
	CHECK_STR(bd("f == 9007199254740993", 1), "empty");
	/* id, and bool fields (int64 columns of 0 and 1). */
	CHECK_STR(bd("id >= 3 and id < 7", -1), "i 3..6");
	CHECK_STR(bd("id in [9, 4]", -1),
		  "i -9223372036854775808..9223372036854775807 {4,9}");
	CHECK_STR(bd("id >= 3 and id < 7", 0), "none");
	CHECK_STR(bd("not b", 3), "i 0..0");
	CHECK_STR(bd("b == false and i == 1", 3), "i 0..0");
	CHECK_STR(bd("b", 3), "none");
}

/*
 * Speed, for the record (`run-unit filter_eval_speed`): CPU ns per row
 * over 1M rows; each count checked against a plain loop.
 */
TEST(filter_eval_speed)
{
	enum { N = 1000000, REPS = 5 };
	static const char *const words[5] = {
		"red", "green", "blue", "abcab", "xyz",
	};
	static const struct {
		const char *expr;
		int which;
	} cases[] = {
		{ "500 <= i < 600", 0 },
		{ "f > 12.5", 1 },
		{ "i in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377]", 2 },
		{ "s == 'green'", 3 },
		{ "s like '%cab%'", 4 },
		{ "i < 10 and s like '%cab%'", 5 },
		{ "i > 100 and f < 500 and s != 'red'", 6 },
	};
	int64_t *iv = malloc(N * 8);
	double *fv = malloc(N * 8);
	const char **sv = malloc(N * sizeof(*sv));
	uint8_t *bm = malloc(N / 8 + 1);
	static const int fib[] = { 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144,
				   233, 377 };
	struct trows t;

	xs = 12345;
	for (int r = 0; r < N; r++) {
		iv[r] = (int64_t)(rnd() % 1000);
		fv[r] = (double)(rnd() % 10000) / 10;
		sv[r] = words[rnd() % 5];
	}
	trows_make(&t, N, iv, fv, sv);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mv_filter *f = mv_filter_parse(cases[c].expr, tf, NTF,
						      NULL);
		struct timespec t0, t1;
		size_t cnt = 0, want = 0;
		double ns;

		REQUIRE(f);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
		for (int k = 0; k < REPS; k++)
			cnt = mv_filter_eval(f, &t.r, bm);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
		ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		      (double)(t1.tv_nsec - t0.tv_nsec)) / REPS / N;
		for (int r = 0; r < N; r++) {
			int w = 0;

			switch (cases[c].which) {
			case 0: w = iv[r] >= 500 && iv[r] < 600; break;
			case 1: w = fv[r] > 12.5; break;
			case 2:
				for (int k = 0; k < 13; k++)
					w |= iv[r] == fib[k];
				break;
			case 3: w = !strcmp(sv[r], "green"); break;
			case 4: w = strstr(sv[r], "cab") != NULL; break;
			case 5:
				w = iv[r] < 10 && strstr(sv[r], "cab");
				break;
			default:
				w = iv[r] > 100 && fv[r] < 500 &&
				    strcmp(sv[r], "red");
			}
			want += w;
		}
		CHECK_EQ_U64(cnt, want);
		unit_diag("%-45s %5.2f ns/row, %zu match", cases[c].expr, ns,
			  cnt);
		mv_filter_free(f);
	}
	trows_free(&t);
	free(iv);
	free(fv);
	free(sv);
	free(bm);
}

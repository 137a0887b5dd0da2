/*
 * filter.h - the --filter expressions of DESIGN.md "Filters": Milvus's
 * boolean expression syntax over a collection's scalar fields and `id`,
 * parsed and type-checked against the schema once, then evaluated over
 * the columns of a block of rows (a segment, or a pending batch) into a
 * bitmap, a column at a time.
 *
 * Grammar: comparisons == != < <= > >= between a field and a literal
 * (either side), chained ranges (10 < price <= 20: < or <= twice, or >
 * or >= twice), `in [..]` and `not in [..]` (an empty list allowed),
 * `like` on strings, and/&&, or/||, not/!, parentheses; not binds
 * tighter than and, and tighter than or.  Keywords are all lower or all
 * upper case (and, AND); true/false also True/False.  Literals are
 * integers (decimal, an optional sign), floats (1.5, .5, 1e3), "double"
 * or 'single' quoted strings, and true/false for bool fields.  In a
 * string literal a backslash escapes either quote and itself; before any
 * other byte it stays as it is, so that like sees it.  Comparing two
 * fields is not supported.  A bool field compares with true and false
 * by == and != (and in), and stands alone as a predicate: `flag` is
 * `flag == true`, `not flag` is `flag == false`.
 *
 * like: % matches any run of bytes, _ one character (one UTF-8
 * sequence), a backslash makes the next byte literal (\% \_ \\); it is
 * case-sensitive and matches the whole value.
 *
 * Types: an int64 field (and id) or a float64 field compares with any
 * number, int or float, exactly (no rounding through double: id < 2.5 is
 * id <= 2, and 2^53 + 1 is not equal to 2^53.0); a string field with
 * strings only, byte-wise (memcmp, then the shorter first); anything
 * else is a type error (a bool with anything but true and false too),
 * and so is an in-list that mixes strings and numbers.  A NaN float64
 * value makes every comparison false but != (and not in true).  Absent
 * or null values were stored as the type's zero (0, 0.0, "" or false)
 * and match as such: `tag == ""` finds them, and so do `price == 0` and
 * `not flag`.
 */
#ifndef MV_FILTER_H
#define MV_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "mv.h"

struct mv_filter;

/* The bit of mv_filter_fields for `id`. */
#define MV_FILTER_ID (UINT64_C(1) << 63)

/*
 * Parse expr against fields[nfields] (`id` is always there, int64).
 * NULL with err set on failure: MV_EUSAGE with a message
 * "col N: what is wrong" (N the byte from 1 where it went wrong) for a
 * syntax error, an unknown field (naming it) or a type mismatch;
 * MV_EINTERNAL when out of memory.  An empty expression is a syntax error.
 */
struct mv_filter *mv_filter_parse(const char *expr,
				  const struct mv_field *fields, int nfields,
				  struct mv_err *err);
void mv_filter_free(struct mv_filter *f);

/* The fields the filter reads: bit i for fields[i], MV_FILTER_ID for id. */
uint64_t mv_filter_fields(const struct mv_filter *f);

/*
 * The columns of n rows, as a segment holds them: for fields[i],
 * vals[i] is int64_t[n] (int64, and bool as 0 or 1), double[n]
 * (float64) or, for a string, the bytes of the column: row r's value
 * starts at vals[i] + off[i][r] with a 4-byte little-endian length, then
 * the bytes.  Columns the filter does not read may be NULL.
 */
struct mv_filter_rows {
	size_t n;
	const int64_t *ids;
	const void *vals[MV_FIELDS_MAX];
	const uint64_t *off[MV_FIELDS_MAX];
};

/*
 * Evaluate f over rows into out, a bitmap of (n + 7) / 8 bytes: bit r
 * (out[r / 8] & 1 << r % 8, the order of a segment's deletion bitmap) set
 * when row r matches, cleared otherwise; the bits past n are cleared.
 * Returns the number of rows that match.  Never fails and never
 * allocates: it works through the rows in chunks of a fixed size with
 * scratch bitmaps on its stack (nesting is bounded at parse, so even the
 * deepest expression fits a 128 KiB thread stack), and f is only read,
 * so any number of threads may evaluate one filter at once.
 */
size_t mv_filter_eval(const struct mv_filter *f,
		      const struct mv_filter_rows *rows, uint8_t *out);

/*
 * Bits r..r+63 of a bitmap of nb bytes as mv_filter_eval writes it (r a
 * multiple of 64; bytes past nb read as 0), bit r + j as bit j: one load
 * where little-endian.  For walking the set bits of a bitmap.
 */
static inline uint64_t mv_bits_word(const uint8_t *bits, size_t nb, size_t r)
{
	size_t i = r / 8;
	uint64_t w = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (nb - i >= 8) {
		memcpy(&w, bits + i, 8);
		return w;
	}
#endif
	for (size_t j = 0; j < 8 && i + j < nb; j++)
		w |= (uint64_t)bits[i + j] << (8 * j);
	return w;
}

/* A string value: len bytes at p (not NUL-terminated). */
struct mv_filter_str {
	const char *p;
	size_t len;
};

/*
 * Row r's string of a string column as mv_filter_rows holds it: at
 * vals + off[r], a 4-byte little-endian length, then the bytes.
 */
static inline struct mv_filter_str mv_filter_str_at(const void *vals,
						    const uint64_t *off,
						    size_t r)
{
	const unsigned char *q = (const unsigned char *)vals + off[r];
	struct mv_filter_str s;

	s.len = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 |
		(size_t)q[3] << 24;
	s.p = (const char *)q + 4;
	return s;
}

/*
 * What f implies about one field (field: its index in fields[], -1 for
 * id): every row that matches f has a value that lies in the bound.
 * Derived from the comparisons, in-lists and ranges at the top of f,
 * alone or joined by and; one under an or or a not gives nothing (except
 * a one-sided int range negated: not (x < 5) is x >= 5).  Returns
 * b->kind:
 *
 *   MV_BOUND_NONE   nothing known
 *   MV_BOUND_EMPTY  no row matches f at all
 *   MV_BOUND_INT    ilo <= x <= ihi (int64 and bool columns, and id)
 *   MV_BOUND_FLOAT  flo <= x <= fhi, never NaN (float64 columns)
 *   MV_BOUND_STR    string columns: slo <= x (or < when !slo_incl) if
 *                   has_slo, x <= shi (or <) if has_shi, in memcmp order,
 *                   the shorter first (==, <, <=, >, >=, chained ranges,
 *                   like 'prefix%' and like 'exact')
 *
 * and, for all three, when set is not NULL, x is also one of set[0..nset)
 * (int64_t, double or struct mv_filter_str, sorted ascending, distinct,
 * none NaN; in, and == for strings).  set and the strings are owned by f
 * and valid while f is.  The bound is conservative, not exact: the rows
 * inside it still have to be tested against the whole of f.
 */
enum mv_bound_kind {
	MV_BOUND_NONE, MV_BOUND_EMPTY, MV_BOUND_INT, MV_BOUND_FLOAT,
	MV_BOUND_STR,
};

struct mv_filter_bound {
	enum mv_bound_kind kind;
	int64_t ilo, ihi;
	double flo, fhi;
	struct mv_filter_str slo, shi;
	int has_slo, has_shi, slo_incl, shi_incl;
	const void *set;
	size_t nset;
};

int mv_filter_bounds(const struct mv_filter *f, int field,
		     struct mv_filter_bound *b);
/* a against b in memcmp order, the shorter first: < 0, 0 or > 0. */
int mv_filter_str_cmp(struct mv_filter_str a, struct mv_filter_str b);
/* Whether v lies in the string range of b (MV_BOUND_STR). */
int mv_filter_str_in(const struct mv_filter_bound *b, struct mv_filter_str v);
/* Whether b's set value i lies in b's interval or string range. */
int mv_filter_bound_set_in(const struct mv_filter_bound *b, size_t i);

/*
 * Evaluate f only on the rows whose bit is set in bits ((n + 7) / 8
 * bytes, bit r as in mv_filter_eval): a row that does not match has its
 * bit cleared, and the bits past n are cleared.  The candidates' values
 * are gathered a few at a time onto the stack and evaluated there, so
 * the cost follows the number of bits set, plus a pass over the bitmap's
 * words; the result is the bitmap mv_filter_eval gives ANDed with the
 * candidates.  Returns the number of bits left.  Never allocates;
 * thread-safe as mv_filter_eval is.
 */
size_t mv_filter_eval_sel(const struct mv_filter *f,
			  const struct mv_filter_rows *rows, uint8_t *bits);

#endif

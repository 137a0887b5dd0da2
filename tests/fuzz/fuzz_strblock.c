/*
 * fuzz_strblock - the string column block decoder of
 * libmv/engine/segment.c: node_string_block (what mv-noded's INSERT walks
 * a received field block with), node_seg_col_from (a string column of a
 * batch or of a segment file, with its row offsets) and coll_fields_text
 * (the TSV of GET --fields / SEARCH --fields, from those offsets).
 *
 * Input: the row count n, 8 bytes little-endian, then the block: n
 * records of a u32 length and that many bytes.  segment.c and util.c are
 * compiled with clang for this target alone; the two vector kernels of
 * libmv/knn.cpp they refer to (FAISS, C++) are stubs that abort.
 */
#include <string.h>
#include "engine/internal.h"
#include "fuzz.h"
#include "knn.h"

void mv_knn_norms2(const float *y, size_t n, size_t d, float *out)
{
	(void)y, (void)n, (void)d, (void)out;
	abort();
}

void mv_knn_renorm(float *v, size_t n, size_t d)
{
	(void)v, (void)n, (void)d;
	abort();
}

/* The TSV of every row, checked against the records themselves. */
static void fields_text(const struct col *col, const unsigned char *blk,
			uint64_t n)
{
	static struct coll c;
	struct seg s = { 0 };
	struct nbuf out = { 0 };
	int which = 0;

	c.nfields = 1;
	c.fields[0].type = MV_STRING;
	s.n = n;
	s.ncols = 1;
	s.cols = (struct col *)col;
	for (uint64_t row = 0; row < n && row < 64; row++) {
		uint32_t l;
		size_t at;

		memcpy(&l, blk + col->off[row], 4);
		out.len = 0;
		FUZZ_CHECK(coll_fields_text(&c, &s, row, &which, 1, &out) == 0);
		/* One line: the bytes, tab, newline and backslash escaped. */
		FUZZ_CHECK(out.len >= (size_t)l + 1 && out.p[out.len - 1] == '\n');
		at = 0;
		for (uint32_t j = 0; j < l; j++) {
			unsigned char ch = blk[col->off[row] + 4 + j];

			if (ch == '\t' || ch == '\n' || ch == '\\') {
				FUZZ_CHECK(out.p[at] == '\\');
				at++;
				ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : '\\';
			}
			FUZZ_CHECK(out.p[at] == ch);
			at++;
		}
		FUZZ_CHECK(at == out.len - 1);
		FUZZ_CHECK(!memchr(out.p, '\t', out.len));
		FUZZ_CHECK(memchr(out.p, '\n', out.len) == out.p + out.len - 1);
	}
	free(out.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint64_t n, *off = NULL;
	unsigned char *blk;
	long used, used2;
	struct nbuf nb;
	struct col col = { 0 };
	int rc;

	if (len < 8)
		return 0;
	memcpy(&n, data, 8);
	data += 8;
	len -= 8;
	/* Exact-size heap copies, so that ASan sees any read past the end. */
	blk = malloc(len ? len : 1);
	if (!blk)
		abort();
	memcpy(blk, data, len);

	used = node_string_block(blk, len, n, NULL);
	FUZZ_CHECK(used == -1 || (used >= 0 && (size_t)used <= len));
	/* Every record takes 4 bytes at least: more rows cannot fit. */
	if (n > len / 4)
		FUZZ_CHECK(used == -1);
	if (n <= len / 4) {
		off = malloc((n ? n : 1) * sizeof(*off));
		if (!off)
			abort();
		used2 = node_string_block(blk, len, n, off);
		FUZZ_CHECK(used2 == used);
		if (used >= 0) {
			size_t pos = 0;

			for (uint64_t i = 0; i < n; i++) {
				uint32_t l;

				FUZZ_CHECK(off[i] == pos);
				memcpy(&l, blk + pos, 4);
				pos += 4 + (size_t)l;
			}
			FUZZ_CHECK(pos == (size_t)used);
			/* The block alone is walked the same (INSERT's split). */
			FUZZ_CHECK(node_string_block(blk, pos, n, NULL) == used);
		}
		free(off);
	}

	/* A column of n rows, as a batch or a segment file gives it. */
	nb = (struct nbuf){ blk, len, len, 0, 0 };
	rc = node_seg_col_from(&col, MV_STRING, &nb, n);
	if (used >= 0 && (size_t)used == len) {
		FUZZ_CHECK(rc == 0 && col.vals == blk && col.off);
		FUZZ_CHECK(!nb.p && !nb.len);
		fields_text(&col, blk, n);
		free(col.off);
	} else {
		FUZZ_CHECK(rc == MV_EDATA && !col.off);
		FUZZ_CHECK(nb.p == blk && nb.len == len);
	}
	free(blk);
	return 0;
}

/*
 * fuzz_vecio - every input format of libmv/vecio.c.  The first byte picks
 * the format and options (low 3 bits: auto-sniffed like stdin, fvecs,
 * bvecs, npy, text, text with ids first, jsonl, jsonl with fields; the
 * next bits: expected dimension 0 or 4, and a batch of 1 or 7 rows); the
 * rest is the input.
 */
#include <math.h>
#include <string.h>
#include "fuzz.h"
#include "vecio.h"

/*
 * The column block of a batch must be what the node accepts (PROTOCOL.md,
 * verbs_write.c's take_fields): per field, n 8-byte values, or n strings each
 * a u32 length and its bytes, and nothing more.
 */
static void check_fields(const struct mv_vbatch *b,
			 const struct mv_field *f, int nf)
{
	size_t pos = 0, len = b->fields_len;

	for (int i = 0; i < nf; i++) {
		if (f[i].type != MV_STRING) {
			FUZZ_CHECK(len - pos >= b->n * 8);
			pos += b->n * 8;
			continue;
		}
		for (size_t r = 0; r < b->n; r++) {
			uint32_t l;

			FUZZ_CHECK(len - pos >= 4);
			memcpy(&l, b->fields + pos, 4);
			FUZZ_CHECK(len - pos - 4 >= l);
			pos += 4 + l;
		}
	}
	FUZZ_CHECK(pos == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct mv_field fields[] = {
		{ "price", MV_FLOAT64 }, { "tag", MV_STRING }, { "n", MV_INT64 },
	};
	struct mv_vreader_opts o = { 0 };
	struct mv_vbatch b;
	struct mv_vreader *r;
	struct mv_err err = { 0 };
	uint8_t sel;
	long n;
	int fd;

	if (len < 1)
		return 0;
	sel = data[0];
	switch (sel & 7) {
	case 0: o.format = MV_FMT_AUTO; break;
	case 1: o.format = MV_FMT_FVECS; break;
	case 2: o.format = MV_FMT_BVECS; break;
	case 3: o.format = MV_FMT_NPY; break;
	case 4: o.format = MV_FMT_TEXT; break;
	case 5: o.format = MV_FMT_TEXT; o.ids_first = 1; break;
	case 6: o.format = MV_FMT_JSONL; break;
	default:
		o.format = MV_FMT_JSONL;
		o.fields = fields;
		o.nfields = 3;
		break;
	}
	o.dim = (sel & 8) ? 4 : 0;
	if (mv_vbatch_init(&b, (sel & 16) ? 1 : 7, o.dim, &err) < 0)
		abort();
	fd = fuzz_memfd(data + 1, len - 1);
	/* "-" sniffs the content as for stdin. */
	r = mv_vreader_fdopen(fd, "-", &o, &err);
	if (r) {
		int rounds = 0;
		while ((n = mv_vreader_read(r, &b, &err)) > 0) {
			uint32_t dim = mv_vreader_dim(r);
			FUZZ_CHECK((size_t)n == b.n && b.n <= b.cap);
			FUZZ_CHECK(dim > 0 && dim == b.dim);
			FUZZ_CHECK(!o.dim || dim == o.dim);
			for (size_t i = 0; i < b.n * dim; i++)
				FUZZ_CHECK(isfinite(b.vecs[i]));
			FUZZ_CHECK(mv_vreader_pos(r) <= len - 1);
			if (o.nfields) {
				FUZZ_CHECK(b.has_fields);
				check_fields(&b, o.fields, o.nfields);
			}
			if (++rounds > 100000)
				break;
		}
		if (n < 0) {
			FUZZ_CHECK(err.code == n && err.msg[0]);
			/* Errors are sticky. */
			FUZZ_CHECK(mv_vreader_read(r, &b, NULL) == n);
		}
		mv_vreader_close(r);
	}
	mv_vbatch_release(&b);
	close(fd);
	return 0;
}

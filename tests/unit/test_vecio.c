/*
 * test_vecio.c - unit tests of libmv/vecio.c: every input format through
 * temporary files, pipes and stdin, the exact bad-input messages, and the
 * fast float parser against strtof.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "unit.h"
#include "vecio.h"

/* Everything a reader returned, batches concatenated. */
struct got {
	int rc;
	struct mv_err err;
	enum mv_vformat fmt;
	size_t n;
	uint32_t dim;
	float *v;
	int64_t *ids;
	uint64_t *recs;
	int has_ids;
	unsigned char *fields;	/* of the last batch */
	size_t flen;
	long batches;
	int rec0_ok;
};

static void got_read(struct mv_vreader *r, size_t cap, struct got *g)
{
	struct mv_vbatch b;
	long n;

	g->rec0_ok = 1;
	if (mv_vbatch_init(&b, cap, 0, &g->err) < 0) {
		g->rc = g->err.code;
		return;
	}
	for (;;) {
		n = mv_vreader_read(r, &b, &g->err);
		if (n < 0) {
			g->rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (b.rec0 != b.recs[0])
			g->rec0_ok = 0;
		g->dim = b.dim;
		g->v = realloc(g->v, (g->n + n) * b.dim * sizeof(float));
		g->ids = realloc(g->ids, (g->n + n) * sizeof(int64_t));
		g->recs = realloc(g->recs, (g->n + n) * sizeof(uint64_t));
		memcpy(g->v + g->n * b.dim, b.vecs, n * b.dim * sizeof(float));
		memcpy(g->ids + g->n, b.ids, n * sizeof(int64_t));
		memcpy(g->recs + g->n, b.recs, n * sizeof(uint64_t));
		g->n += n;
		g->has_ids = b.has_ids;
		if (b.has_fields) {
			free(g->fields);
			g->fields = malloc(b.fields_len + 1);
			memcpy(g->fields, b.fields, b.fields_len);
			g->flen = b.fields_len;
		}
		g->batches++;
	}
	g->fmt = mv_vreader_format(r);
	mv_vbatch_release(&b);
}

static void got_path(const char *path, const struct mv_vreader_opts *o,
		     size_t cap, struct got *g)
{
	struct mv_vreader *r;

	memset(g, 0, sizeof(*g));
	r = mv_vreader_open(path, o, &g->err);
	if (!r) {
		g->rc = g->err.code;
		return;
	}
	got_read(r, cap, g);
	mv_vreader_close(r);
}

static void got_free(struct got *g)
{
	free(g->v);
	free(g->ids);
	free(g->recs);
	free(g->fields);
	memset(g, 0, sizeof(*g));
}

static void put_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		abort();
	}
}

static void put_str(const char *path, const char *s)
{
	put_file(path, s, strlen(s));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A finite float from random bits. */
static float rnd_float(void)
{
	uint32_t bits;
	float f;

	do {
		bits = (uint32_t)rnd();
		memcpy(&f, &bits, 4);
	} while (!isfinite(f));
	return f;
}

static void fill_random(float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = i % 3 ? rnd_float()
			     : (float)((int)(rnd() % 2001) - 1000) / 7;
}

/*
 * Write data to a file named name (in the scratch dir), read it with opts
 * and expect the error code and the message "PATH" + suffix (suffix is
 * appended to the path, so it starts with ':').
 */
static void expect_err_at(const char *file, int line, const void *data,
			  size_t len, const char *name,
			  const struct mv_vreader_opts *o, int code,
			  const char *suffix)
{
	const char *path = unit_path(name);
	char want[1024];
	struct got g;

	put_file(path, data, len);
	got_path(path, o, 4, &g);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	if (g.rc != code)
		unit_fail(file, line, "%s: rc %d, want %d (%s)", name, g.rc,
			  code, g.err.msg);
	if (strcmp(g.err.msg, want))
		unit_fail(file, line, "%s: message \"%s\", want \"%s\"", name,
			  g.err.msg, want);
	got_free(&g);
}

#define EXPECT_ERR(data, len, name, o, code, suffix)			\
	expect_err_at(__FILE__, __LINE__, data, len, name, o, code, suffix)
#define EXPECT_TEXT_ERR(s, o, suffix)					\
	expect_err_at(__FILE__, __LINE__, s, strlen(s), "bad.txt", o,	\
		      MV_EDATA, suffix)

static const struct mv_vreader_opts no_opts;

/*
 * Formats, round trip.
 */

TEST(vecio_format_names)
{
	enum mv_vformat f;

	CHECK(mv_vformat_parse("fvecs", &f) == 0 && f == MV_FMT_FVECS);
	CHECK(mv_vformat_parse("bvecs", &f) == 0 && f == MV_FMT_BVECS);
	CHECK(mv_vformat_parse("npy", &f) == 0 && f == MV_FMT_NPY);
	CHECK(mv_vformat_parse("csv", &f) == 0 && f == MV_FMT_TEXT);
	CHECK(mv_vformat_parse("text", &f) == 0 && f == MV_FMT_TEXT);
	CHECK(mv_vformat_parse("json", &f) == 0 && f == MV_FMT_JSONL);
	CHECK(mv_vformat_parse("auto", &f) == 0 && f == MV_FMT_AUTO);
	CHECK(mv_vformat_parse("parquet", &f) == -1);
	CHECK_STR(mv_vformat_name(MV_FMT_JSONL), "jsonl");
	CHECK_STR(mv_vformat_name(MV_FMT_FVECS), "fvecs");
}

TEST(vecio_fvecs_roundtrip)
{
	enum { N = 1000, D = 17 };
	const char *path = unit_path("a.fvecs");
	float *v = malloc(N * D * sizeof(float));
	struct mv_vreader *r;
	struct mv_err err = { 0 };
	struct got g;
	FILE *f;

	fill_random(v, N * D);
	f = fopen(path, "wb");
	REQUIRE(f);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(mv_write_fvecs(f, v + i * D, D), 0);
	fclose(f);

	memset(&g, 0, sizeof(g));
	r = mv_vreader_open(path, &no_opts, &err);
	REQUIRE(r);
	CHECK_EQ_INT(mv_vreader_format(r), MV_FMT_FVECS);
	CHECK_EQ_U64(mv_vreader_size(r), (uint64_t)N * (4 + 4 * D));
	CHECK_EQ_INT(mv_vreader_dim(r), 0);
	got_read(r, 64, &g);
	CHECK_EQ_U64(mv_vreader_pos(r), mv_vreader_size(r));
	CHECK_EQ_INT(mv_vreader_dim(r), D);
	mv_vreader_close(r);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, N);
	CHECK_EQ_INT(g.dim, D);
	CHECK_EQ_INT(g.batches, (N + 63) / 64);
	CHECK(g.rec0_ok);
	CHECK_EQ_INT(g.has_ids, 0);
	REQUIRE(g.n == N);
	CHECK_MEM(g.v, v, sizeof(float) * N * D);
	CHECK_EQ_U64(g.recs[0], 1);
	CHECK_EQ_U64(g.recs[N - 1], N);
	got_free(&g);

	/* The same with the dimension given, and a batch made for it. */
	struct mv_vreader_opts o = { .dim = D };
	got_path(path, &o, N, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, N);
	CHECK_EQ_INT(g.batches, 1);
	got_free(&g);

	/* The format forced on a file with another extension. */
	const char *other = unit_path("a.bin");
	rename(path, other);
	o.format = MV_FMT_FVECS;
	got_path(other, &o, 100, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, N);
	got_free(&g);
	free(v);
}

TEST(vecio_bvecs_roundtrip)
{
	enum { N = 300, D = 9 };
	unsigned char rec[4 + D], *all = malloc(N * sizeof(rec));
	struct got g;
	int32_t d = D;

	for (int i = 0; i < N; i++) {
		memcpy(rec, &d, 4);
		for (int j = 0; j < D; j++)
			rec[4 + j] = (unsigned char)(i * 7 + j * 31);
		memcpy(all + i * sizeof(rec), rec, sizeof(rec));
	}
	put_file(unit_path("b.bvecs"), all, N * sizeof(rec));
	got_path(unit_path("b.bvecs"), &no_opts, 50, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_INT(g.fmt, MV_FMT_BVECS);
	CHECK_EQ_U64(g.n, N);
	CHECK_EQ_INT(g.dim, D);
	REQUIRE(g.n == N);
	for (int i = 0; i < N * D; i++) {
		unsigned char want = (unsigned char)(i / D * 7 + i % D * 31);

		if (g.v[i] != (float)want) {
			CHECK(!"bvecs value");
			break;
		}
	}
	got_free(&g);
	free(all);
}

/* An npy file of n x d float32 with header version major. */
static size_t make_npy(unsigned char *out, int major, const char *descr,
		       const char *order, const char *shape, const float *v,
		       size_t nv)
{
	char dict[256];
	size_t hs = major == 1 ? 10 : 12, dl, pad, hl;

	dl = (size_t)snprintf(dict, sizeof(dict),
			      "{'descr': '%s', 'fortran_order': %s, "
			      "'shape': %s, }", descr, order, shape);
	pad = 64 - (hs + dl + 1) % 64;
	hl = dl + pad + 1;
	memcpy(out, "\x93NUMPY", 6);
	out[6] = (unsigned char)major;
	out[7] = 0;
	if (major == 1) {
		out[8] = (unsigned char)(hl & 0xff);
		out[9] = (unsigned char)(hl >> 8);
	} else {
		uint32_t l = (uint32_t)hl;
		memcpy(out + 8, &l, 4);
	}
	memcpy(out + hs, dict, dl);
	memset(out + hs + dl, ' ', pad);
	out[hs + hl - 1] = '\n';
	memcpy(out + hs + hl, v, nv * sizeof(float));
	return hs + hl + nv * sizeof(float);
}

TEST(vecio_npy_roundtrip)
{
	enum { N = 500, D = 12 };
	float *v = malloc(N * D * sizeof(float));
	unsigned char *buf = malloc(N * D * sizeof(float) + 256);
	struct got g;
	size_t len;

	fill_random(v, N * D);
	for (int major = 1; major <= 3; major++) {
		len = make_npy(buf, major, "<f4", "False", "(500, 12)", v,
			       N * D);
		put_file(unit_path("c.npy"), buf, len);
		got_path(unit_path("c.npy"), &no_opts, 77, &g);
		CHECK_EQ_INT(g.rc, 0);
		CHECK_EQ_INT(g.fmt, MV_FMT_NPY);
		CHECK_EQ_U64(g.n, N);
		CHECK_EQ_INT(g.dim, D);
		CHECK(g.rec0_ok);
		if (g.n == N) {
			CHECK_MEM(g.v, v, sizeof(float) * N * D);
			CHECK_EQ_U64(g.recs[N - 1], N);
		}
		got_free(&g);
	}
	/* No rows at all. */
	len = make_npy(buf, 1, "<f4", "False", "(0, 12)", v, 0);
	put_file(unit_path("empty.npy"), buf, len);
	got_path(unit_path("empty.npy"), &no_opts, 10, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 0);
	got_free(&g);
	free(v);
	free(buf);
}

TEST(vecio_npy_rejects)
{
	float v[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	unsigned char buf[512];
	struct mv_vreader_opts o = { .dim = 4 };
	size_t len;

	len = make_npy(buf, 1, "<f8", "False", "(3, 2)", v, 12);
	EXPECT_ERR(buf, len, "f8.npy", &no_opts, MV_EDATA,
		   ": npy dtype '<f8' is not supported, want '<f4'");
	len = make_npy(buf, 1, ">f4", "False", "(3, 4)", v, 12);
	EXPECT_ERR(buf, len, "be.npy", &no_opts, MV_EDATA,
		   ": npy dtype '>f4' is not supported, want '<f4'");
	len = make_npy(buf, 1, "<f4", "True", "(3, 4)", v, 12);
	EXPECT_ERR(buf, len, "fo.npy", &no_opts, MV_EDATA,
		   ": npy arrays in fortran order are not supported");
	len = make_npy(buf, 1, "<f4", "False", "(12,)", v, 12);
	EXPECT_ERR(buf, len, "1d.npy", &no_opts, MV_EDATA,
		   ": npy array of 1 dimensions, want 2 (rows, dim)");
	len = make_npy(buf, 1, "<f4", "False", "(1, 3, 4)", v, 12);
	EXPECT_ERR(buf, len, "3d.npy", &no_opts, MV_EDATA,
		   ": npy array of 3 dimensions, want 2 (rows, dim)");
	len = make_npy(buf, 1, "<f4", "False", "(4, 4)", v, 12);
	EXPECT_ERR(buf, len, "short.npy", &no_opts, MV_EDATA,
		   ":4: truncated record");
	len = make_npy(buf, 1, "<f4", "False", "(2, 4)", v, 12);
	EXPECT_ERR(buf, len, "long.npy", &no_opts, MV_EDATA,
		   ": trailing data after 2 rows");
	len = make_npy(buf, 1, "<f4", "False", "(4, 3)", v, 12);
	EXPECT_ERR(buf, len, "dim.npy", &o, MV_EDATA,
		   ":1: dimension 3, expected 4");
	len = make_npy(buf, 1, "<f4", "False", "(3, 0)", v, 0);
	EXPECT_ERR(buf, len, "dim0.npy", &no_opts, MV_EDATA,
		   ":1: bad dimension 0");
	v[5] = NAN;
	len = make_npy(buf, 2, "<f4", "False", "(3, 4)", v, 12);
	EXPECT_ERR(buf, len, "nan.npy", &no_opts, MV_EDATA,
		   ":2: NaN or Inf");
	EXPECT_ERR("\x93NUMPY\x01", 7, "hdr.npy", &no_opts, MV_EDATA,
		   ": not an npy file");
	EXPECT_ERR("PK\x03\x04 zip, not npy", 17, "zip.npy", &no_opts,
		   MV_EDATA, ": not an npy file");
	EXPECT_ERR("\x93NUMPY\x09\x00\x10\x00", 10, "v9.npy", &no_opts,
		   MV_EDATA, ": npy version 9.0 is not supported");
	EXPECT_ERR("\x93NUMPY\x01\x00\x40\x00{'descr'", 17, "cut.npy",
		   &no_opts, MV_EDATA, ": truncated npy header");
}

TEST(vecio_text_roundtrip)
{
	enum { N = 200, D = 31 };
	const char *path = unit_path("t.txt");
	float *v = malloc(N * D * sizeof(float));
	const char seps[] = { ' ', ',', '\t' };
	struct got g;
	FILE *f;

	fill_random(v, N * D);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs("# a comment\n\n   \n", f);
	for (int i = 0; i < N; i++) {
		if (i % 10 == 3)
			fputs("  # indented comment\r\n\t\n", f);
		if (i % 7 == 1)
			fputs("  ", f);
		CHECK_EQ_INT(mv_write_text(f, v + i * D, D, seps[i % 3]), 0);
		fputs(i % 5 == 0 ? "\r\n" : i % 5 == 1 ? " \t\n" : "\n", f);
	}
	fclose(f);
	got_path(path, &no_opts, 16, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_INT(g.fmt, MV_FMT_TEXT);
	CHECK_EQ_U64(g.n, N);
	CHECK_EQ_INT(g.dim, D);
	CHECK(g.rec0_ok);
	if (g.n == N) {
		CHECK_MEM(g.v, v, sizeof(float) * N * D);
		CHECK_EQ_U64(g.recs[0], 4);	/* after 3 skipped lines */
	}
	got_free(&g);

	/* Separators: runs of blanks, one comma with blanks around it. */
	put_str(path, "1 ,2,\t3 , 4,\n5\t\t6  7,8\n");
	got_path(path, &no_opts, 16, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 2);
	if (g.n == 2) {
		float want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
		CHECK_MEM(g.v, want, sizeof(want));
	}
	got_free(&g);

	/* No newline at the end, a UTF-8 BOM at the start. */
	put_str(path, "\xef\xbb\xbf" "0.5 -2e3\n-0 +7");
	got_path(path, &no_opts, 16, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 2);
	if (g.n == 2) {
		CHECK(g.v[0] == 0.5f && g.v[1] == -2000.0f);
		CHECK(g.v[2] == 0 && signbit(g.v[2]) && g.v[3] == 7.0f);
		CHECK_EQ_U64(g.recs[1], 2);
	}
	got_free(&g);
	free(v);
}

TEST(vecio_text_ids_first)
{
	struct mv_vreader_opts o = { .ids_first = 1 };
	const char *path = unit_path("ids.csv");
	struct got g;

	put_str(path, "7 1 2\n-3,4,5\n9223372036854775807\t0\t0\n");
	got_path(path, &o, 2, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 3);
	CHECK_EQ_INT(g.has_ids, 1);
	if (g.n == 3) {
		CHECK_EQ_INT(g.ids[0], 7);
		CHECK_EQ_INT(g.ids[1], -3);
		CHECK_EQ_INT(g.ids[2], INT64_MAX);
		CHECK(g.v[0] == 1 && g.v[3] == 5);
	}
	got_free(&g);

	EXPECT_TEXT_ERR("x 1 2\n", &o, ":1: bad id 'x'");
	EXPECT_TEXT_ERR("1 1 2\n1.5 1 2\n", &o, ":2: bad id '1.5'");
	EXPECT_TEXT_ERR("9223372036854775808 1 2\n", &o,
			":1: bad id '9223372036854775808'");
	EXPECT_TEXT_ERR("1 1 2\n-9223372036854775808 1 2\n", &o,
			":2: id -9223372036854775808 is reserved");
	EXPECT_TEXT_ERR("1 1 2\n2\n", &o, ":2: no values after the id");
	EXPECT_TEXT_ERR("1 1 2\n2 3\n", &o, ":2: dimension 1, expected 2");
}

TEST(vecio_text_errors)
{
	struct mv_vreader_opts o100 = { .dim = 100 };
	char *s = malloc(4096);
	size_t k = 0;

	REQUIRE(s);
	/* Two good lines of 100, then one of 99. */
	for (int line = 0; line < 3; line++) {
		for (int i = 0; i < (line == 2 ? 99 : 100); i++)
			k += (size_t)sprintf(s + k, "%s%d", i ? " " : "", i);
		s[k++] = '\n';
	}
	s[k] = '\0';
	EXPECT_TEXT_ERR(s, &o100, ":3: dimension 99, expected 100");
	/* The first line sets the dimension when none is given. */
	EXPECT_TEXT_ERR(s, &no_opts, ":3: dimension 99, expected 100");
	EXPECT_TEXT_ERR("1 2 3\n1 2 3 4\n", &no_opts,
			":2: dimension 4, expected 3");
	free(s);

	EXPECT_TEXT_ERR("1 2\n3 abc\n", &no_opts, ":2: not a number: 'abc'");
	EXPECT_TEXT_ERR("1 2\n3 1.5abc,7\n", &no_opts,
			":2: not a number: '1.5abc'");
	EXPECT_TEXT_ERR("x1,x2\n1,2\n", &no_opts, ":1: not a number: 'x1'");
	EXPECT_TEXT_ERR("1 2\n3 0x10\n", &no_opts,
			":2: not a number: '0x10'");
	EXPECT_TEXT_ERR("1 2\n3 1e\n", &no_opts, ":2: not a number: '1e'");
	EXPECT_TEXT_ERR("1 2\n3 \x01\xff\n", &no_opts,
			":2: not a number: '?\?'");
	EXPECT_TEXT_ERR("1 2\n3 "
			"12345678901234567890123456789012345678901234567890x\n",
			&no_opts, ":2: not a number: "
			"'1234567890123456789012345678901234567890...'");
	EXPECT_TEXT_ERR("1,,2\n", &no_opts, ":1: empty value");
	EXPECT_TEXT_ERR(",1,2\n", &no_opts, ":1: empty value");
	EXPECT_TEXT_ERR("1 2\nnan 2\n", &no_opts, ":2: NaN or Inf");
	EXPECT_TEXT_ERR("1 2\n3 -inf\n", &no_opts, ":2: NaN or Inf");
	EXPECT_TEXT_ERR("1 2\n3 Infinity\n", &no_opts, ":2: NaN or Inf");
	EXPECT_TEXT_ERR("1 2\n\n# x\n3 1e39\n", &no_opts, ":4: NaN or Inf");
	EXPECT_TEXT_ERR("1 2\n3 4\r\n5 6 \r\n7 8 9\r\n", &no_opts,
			":4: dimension 3, expected 2");
}

TEST(vecio_text_long_lines)
{
	size_t big = (16u << 20) + 10, k;
	char *s = malloc(big + 64);
	struct mv_vreader_opts o2 = { .dim = 2 };
	struct got g;

	REQUIRE(s);
	/* A 10 MB line is no format error, but has the wrong dimension. */
	k = (size_t)sprintf(s, "1 2\n");
	while (k < 10000000)
		k += (size_t)sprintf(s + k, "0.5 ");
	s[k++] = '\n';
	EXPECT_ERR(s, k, "ten.txt", &o2, MV_EDATA,
		   ":2: dimension 2499999, expected 2");
	/* Past the 65536 maximum on the first line. */
	EXPECT_ERR(s + 4, k - 4, "ten1.txt", &no_opts, MV_EDATA,
		   ":1: dimension 2499999, at most 65536");

	/* Over 16 MiB. */
	k = (size_t)sprintf(s, "1 2\n");
	memset(s + k, '7', big);
	k += big;
	s[k++] = '\n';
	EXPECT_ERR(s, k, "huge.txt", &no_opts, MV_EDATA,
		   ":2: line longer than 16 MiB");
	EXPECT_ERR(s, k - 1, "huge2.txt", &no_opts, MV_EDATA,
		   ":2: line longer than 16 MiB");
	/* A line just under 16 MiB is fine. */
	k = (size_t)sprintf(s, "1 2\n");
	memset(s + k, ' ', 16u << 20);
	memcpy(s + k + (16u << 20) - 4, "3 4\n", 4);
	k += 16u << 20;
	put_file(unit_path("max.txt"), s, k);
	got_path(unit_path("max.txt"), &no_opts, 4, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_STR(g.err.msg, "");
	CHECK_EQ_U64(g.n, 2);
	got_free(&g);
	free(s);
}

/* Lines of every length across the 4 MiB buffer boundaries. */
TEST(vecio_text_buffer_boundaries)
{
	enum { D = 40 };
	const char *path = unit_path("bound.txt");
	size_t n = 0, cap = 1 << 16;
	float *want = malloc(cap * D * sizeof(float));
	struct got g;
	FILE *f = fopen(path, "w");
	long bytes = 0;

	REQUIRE(f);
	while (bytes < (10l << 20)) {
		char tok[64];

		if (n == cap) {
			cap *= 2;
			want = realloc(want, cap * D * sizeof(float));
		}
		if (rnd() % 50 == 0)
			bytes += fprintf(f, "# %*s\n", (int)(rnd() % 3000),
					 "x");
		for (int i = 0; i < D; i++) {
			float x = rnd_float();

			if (rnd() % 4)
				x = (float)((double)(int64_t)(rnd() % 2000001 -
					1000000) * 1e-6);
			snprintf(tok, sizeof(tok), "%.*g",
				 (int)(rnd() % 9) + 1, (double)x);
			want[n * D + i] = strtof(tok, NULL);
			bytes += fprintf(f, "%s%s", i ? " " : "", tok);
		}
		bytes += fprintf(f, "\n");
		n++;
	}
	fclose(f);
	got_path(path, &no_opts, 1000, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, n);
	if (g.n == n)
		CHECK_MEM(g.v, want, n * D * sizeof(float));
	got_free(&g);
	free(want);
}

TEST(vecio_binary_errors)
{
	struct mv_vreader_opts o = { .dim = 4 };
	unsigned char buf[256];
	int32_t d = 4, bad;
	float v[4] = { 1, 2, 3, 4 };
	size_t k = 0;

	for (int i = 0; i < 3; i++) {
		memcpy(buf + k, &d, 4);
		memcpy(buf + k + 4, v, 16);
		k += 20;
	}
	EXPECT_ERR(buf, k - 3, "cut.fvecs", &no_opts, MV_EDATA,
		   ":3: truncated record");
	EXPECT_ERR(buf, 42, "cuthdr.fvecs", &no_opts, MV_EDATA,
		   ":3: truncated record");
	bad = 0;
	memcpy(buf + 20, &bad, 4);
	EXPECT_ERR(buf, k, "zero.fvecs", &no_opts, MV_EDATA,
		   ":2: bad dimension 0");
	bad = -3;
	memcpy(buf + 20, &bad, 4);
	EXPECT_ERR(buf, k, "neg.fvecs", &no_opts, MV_EDATA,
		   ":2: bad dimension -3");
	bad = 99;
	memcpy(buf + 20, &bad, 4);
	EXPECT_ERR(buf, k, "dim.fvecs", &no_opts, MV_EDATA,
		   ":2: dimension 99, expected 4");
	EXPECT_ERR(buf, k, "dim.fvecs", &o, MV_EDATA,
		   ":2: dimension 99, expected 4");
	bad = 70000;
	memcpy(buf, &bad, 4);
	EXPECT_ERR(buf, k, "max.fvecs", &no_opts, MV_EDATA,
		   ":1: dimension 70000, at most 65536");
	memcpy(buf, &d, 4);
	memcpy(buf + 20, &d, 4);
	v[2] = INFINITY;
	memcpy(buf + 44 + 8, &v[2], 4);
	EXPECT_ERR(buf, k, "inf.fvecs", &no_opts, MV_EDATA,
		   ":3: NaN or Inf");
	v[2] = NAN;
	memcpy(buf + 44 + 8, &v[2], 4);
	EXPECT_ERR(buf, k, "nan.fvecs", &o, MV_EDATA, ":3: NaN or Inf");
	/* bvecs: 4 + d bytes a record. */
	memcpy(buf + 8, &d, 4);
	EXPECT_ERR(buf, 14, "cut.bvecs", &no_opts, MV_EDATA,
		   ":2: truncated record");
	EXPECT_ERR(buf, 16, "dim.bvecs", &(struct mv_vreader_opts){ .dim = 3 },
		   MV_EDATA, ":1: dimension 4, expected 3");
}

TEST(vecio_error_is_sticky)
{
	const char *path = unit_path("sticky.txt");
	struct mv_vreader *r;
	struct mv_vbatch b;
	struct mv_err err = { 0 }, err2 = { 0 };
	char want[512];

	put_str(path, "1 2\n3 4\nx y\n5 6\n");
	r = mv_vreader_open(path, &no_opts, &err);
	REQUIRE(r);
	REQUIRE(mv_vbatch_init(&b, 2, 2, &err) == 0);
	CHECK_EQ_INT(mv_vreader_read(r, &b, &err), 2);
	CHECK_EQ_U64(b.rec0, 1);
	CHECK_EQ_INT(mv_vreader_read(r, &b, &err), MV_EDATA);
	snprintf(want, sizeof(want), "%s:3: not a number: 'x'", path);
	CHECK_STR(err.msg, want);
	CHECK_EQ_INT(mv_vreader_read(r, &b, &err2), MV_EDATA);
	CHECK_STR(err2.msg, want);
	CHECK_EQ_INT(mv_vreader_read(r, &b, NULL), MV_EDATA);
	mv_vreader_close(r);
	mv_vbatch_release(&b);
	mv_vbatch_release(&b);
	mv_vreader_close(NULL);
}

TEST(vecio_missing_file)
{
	struct mv_err err = { 0 };
	struct mv_vreader *r;
	struct mv_idreader *ir;
	char want[512];

	r = mv_vreader_open("/nonexistent/x.fvecs", &no_opts, &err);
	CHECK(r == NULL);
	CHECK_EQ_INT(err.code, MV_ENOINPUT);
	CHECK_STR(err.msg, "cannot open '/nonexistent/x.fvecs': "
		  "No such file or directory");
	mv_err_clear(&err);
	r = mv_vreader_open(unit_tmpdir(), &no_opts, &err);
	CHECK(r == NULL);
	CHECK_EQ_INT(err.code, MV_ENOINPUT);
	snprintf(want, sizeof(want), "cannot open '%s': Is a directory",
		 unit_tmpdir());
	CHECK_STR(err.msg, want);
	mv_err_clear(&err);
	ir = mv_idreader_open("nope.ids", &err);
	CHECK(ir == NULL);
	CHECK_EQ_INT(err.code, MV_ENOINPUT);
	CHECK_STR(err.msg, "cannot open 'nope.ids': No such file or directory");
}

TEST(vecio_empty_inputs)
{
	const char *names[] = { "e.fvecs", "e.bvecs", "e.txt", "e.jsonl",
				"e.bin" };
	struct got g;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		put_file(unit_path(names[i]), "", 0);
		got_path(unit_path(names[i]), &no_opts, 8, &g);
		CHECK_EQ_INT(g.rc, 0);
		CHECK_EQ_U64(g.n, 0);
		got_free(&g);
	}
	put_str(unit_path("blank.txt"), "\n\n  \n# nothing\n");
	got_path(unit_path("blank.txt"), &no_opts, 8, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 0);
	got_free(&g);
}

/*
 * jsonl.
 */

static const struct mv_field jfields[] = {
	{ "price", MV_FLOAT64 }, { "tag", MV_STRING }, { "n", MV_INT64 },
};

TEST(vecio_jsonl)
{
	struct mv_vreader_opts o = { .fields = jfields, .nfields = 3 };
	const char *path = unit_path("j.jsonl");
	unsigned char want[256];
	size_t k = 0;
	struct got g;
	double dv;
	int64_t iv;
	uint32_t len;

	put_str(path,
		"{\"id\":7,\"vector\":[1,2.5,-3],\"price\":9.5,\"tag\":\"red\","
		"\"n\":3}\n"
		"\n"
		"  {\"vector\":[0,0,1e-3],\"id\":-2,\"other\":[1],"
		"\"tag\":\"\",\"price\":2}\r\n"
		"{\"id\":9,\"vector\":[4,5,6],\"tag\":null,\"n\":-1}");
	got_path(path, &o, 10, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_STR(g.err.msg, "");
	CHECK_EQ_INT(g.fmt, MV_FMT_JSONL);
	CHECK_EQ_U64(g.n, 3);
	CHECK_EQ_INT(g.dim, 3);
	CHECK_EQ_INT(g.has_ids, 1);
	REQUIRE(g.n == 3);
	CHECK_EQ_INT(g.ids[0], 7);
	CHECK_EQ_INT(g.ids[1], -2);
	CHECK_EQ_INT(g.ids[2], 9);
	CHECK(g.v[1] == 2.5f && g.v[2] == -3.0f && g.v[5] == 1e-3f);
	CHECK_EQ_U64(g.recs[1], 3);
	/* price column, tag column, n column. */
	dv = 9.5, memcpy(want + k, &dv, 8), k += 8;
	dv = 2, memcpy(want + k, &dv, 8), k += 8;
	dv = 0, memcpy(want + k, &dv, 8), k += 8;
	len = 3, memcpy(want + k, &len, 4), k += 4;
	memcpy(want + k, "red", 3), k += 3;
	len = 0, memcpy(want + k, &len, 4), k += 4;
	memcpy(want + k, &len, 4), k += 4;
	iv = 3, memcpy(want + k, &iv, 8), k += 8;
	iv = 0, memcpy(want + k, &iv, 8), k += 8;
	iv = -1, memcpy(want + k, &iv, 8), k += 8;
	CHECK_EQ_U64(g.flen, k);
	if (g.flen == k)
		CHECK_MEM(g.fields, want, k);
	got_free(&g);

	/* Without ids and fields. */
	put_str(path, "{\"vector\":[1,2]}\n{\"vector\":[3,4]}\n");
	got_path(path, &no_opts, 1, &g);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 2);
	CHECK_EQ_INT(g.has_ids, 0);
	CHECK_EQ_INT(g.batches, 2);
	CHECK(g.flen == 0 && g.fields == NULL);
	got_free(&g);
}

TEST(vecio_jsonl_errors)
{
	struct mv_vreader_opts o = { .fields = jfields, .nfields = 3 };
	struct mv_vreader_opts o2 = { .dim = 2 };
	char big[70000 + 64];
	const char *ok = "{\"id\":1,\"vector\":[1,2]}\n";
	char s[512];

#define JERR(line, opts, suffix)					\
	expect_err_at(__FILE__, __LINE__, line, strlen(line), "bad.jsonl", \
		      opts, MV_EDATA, suffix)
	snprintf(s, sizeof(s),
		 "%s{\"id\":2,\"vector\":[1,2],\"price\":\"x\"}\n", ok);
	JERR(s, &o, ":2: field 'price' is not a number");
	snprintf(s, sizeof(s), "%s{\"id\":2,\"vector\":[1,2],\"tag\":5}\n", ok);
	JERR(s, &o, ":2: field 'tag' is not a string");
	snprintf(s, sizeof(s), "%s{\"id\":2,\"vector\":[1,2],\"n\":1.5}\n", ok);
	JERR(s, &o, ":2: field 'n' is not an integer");
	snprintf(s, sizeof(s), "%s{\"vector\":[1,2]}\n", ok);
	JERR(s, &o, ":2: no 'id', but earlier lines have one");
	JERR("{\"vector\":[1,2]}\n{\"id\":3,\"vector\":[1,2]}\n", &o,
	     ":2: 'id' given, but earlier lines have none");
	JERR("{\"id\":\"a\",\"vector\":[1,2]}\n", &o, ":1: bad id '\"a\"'");
	JERR("{\"id\":1.5,\"vector\":[1,2]}\n", &o, ":1: bad id '1.5'");
	snprintf(s, sizeof(s), "%s{\"id\":2,\"vector\":[1,2,3]}\n", ok);
	JERR(s, &o, ":2: dimension 3, expected 2");
	JERR("{\"vector\":[1,2,3]}\n", &o2, ":1: dimension 3, expected 2");
	JERR("{\"vector\":[]}\n", &o2, ":1: empty 'vector'");
	JERR("{\"id\":1}\n", &o2, ":1: no 'vector' array");
	JERR("{\"vector\":\"1 2\"}\n", &o2, ":1: no 'vector' array");
	JERR("{\"vector\":[1,\"2\"]}\n", &o2, ":1: not a number in 'vector'");
	JERR("{\"vector\":[1,NaN]}\n", &o2, ":1: NaN or Inf");
	JERR("{\"vector\":[1,-Infinity]}\n", &o2, ":1: NaN or Inf");
	JERR("{\"vector\":[1,1e300]}\n", &o2, ":1: NaN or Inf");
	JERR("[1,2]\n", &o2, ":1: not a json object");
	JERR("{\"vector\":[1,2]}\n{\"vector\":[1,2]\n", &o2,
	     ":2: bad json: '}' expected near end of file");
	JERR("{\"vector\":[1,2]} x\n", &o2,
	     ":1: bad json: end of file expected near 'x'");
	snprintf(big, sizeof(big), "{\"vector\":[1,2],\"tag\":\"%070000d\"}\n",
		 0);
	JERR(big, &o, ":1: field 'tag' longer than 65535 bytes");
#undef JERR
}

/*
 * Sniffing: pipes and stdin.
 */

/* A child writes data into a pipe, the first bytes one at a time. */
static int pipe_from(const void *data, size_t len, pid_t *pid)
{
	int fds[2];

	if (pipe(fds) < 0)
		abort();
	*pid = fork();
	if (*pid < 0)
		abort();
	if (*pid == 0) {
		const char *p = data;
		size_t off = 0;

		close(fds[0]);
		while (off < len) {
			size_t n = off < 16 ? 1 : len - off;
			ssize_t w = write(fds[1], p + off, n);

			if (w <= 0)
				_exit(1);
			off += (size_t)w;
			if (off < 16)
				usleep(1000);
		}
		_exit(0);
	}
	close(fds[1]);
	return fds[0];
}

static void sniff_check(const char *file, int line, const void *data,
			size_t len, enum mv_vformat want, size_t rows,
			uint32_t dim)
{
	struct mv_err err = { 0 };
	struct mv_vreader *r;
	struct got g;
	pid_t pid;
	int fd = pipe_from(data, len, &pid), st;

	memset(&g, 0, sizeof(g));
	r = mv_vreader_fdopen(fd, "-", &no_opts, &err);
	if (!r) {
		unit_fail(file, line, "fdopen: %s", err.msg);
	} else {
		got_read(r, 1000, &g);
		if (g.fmt != want)
			unit_fail(file, line, "format %s, want %s",
				  mv_vformat_name(g.fmt),
				  mv_vformat_name(want));
		if (g.rc || g.n != rows || (rows && g.dim != dim))
			unit_fail(file, line, "rc %d (%s), %zu rows of %u",
				  g.rc, g.err.msg, g.n, g.dim);
		mv_vreader_close(r);
	}
	close(fd);
	waitpid(pid, &st, 0);
	got_free(&g);
}

#define SNIFF(data, len, want, rows, dim)				\
	sniff_check(__FILE__, __LINE__, data, len, want, rows, dim)
#define SNIFF_STR(s, want, rows, dim)					\
	sniff_check(__FILE__, __LINE__, s, strlen(s), want, rows, dim)

TEST(vecio_sniff_pipe)
{
	enum { N = 3000, D = 100 };
	size_t cap = (size_t)N * (4 + 4 * D) + 4096, k = 0;
	unsigned char *buf = malloc(cap);
	float *v = malloc(N * D * sizeof(float));
	int32_t d = D;

	fill_random(v, N * D);
	for (int i = 0; i < N; i++) {
		memcpy(buf + k, &d, 4);
		memcpy(buf + k + 4, v + i * D, 4 * D);
		k += 4 + 4 * D;
	}
	SNIFF(buf, k, MV_FMT_FVECS, N, D);
	SNIFF(buf, 4 + 4 * D, MV_FMT_FVECS, 1, D);
	/* Dimension 123 starts with '{'. */
	d = 123;
	memcpy(buf, &d, 4);
	memcpy(buf + 4 + 4 * 123, &d, 4);
	SNIFF(buf, 2 * (4 + 4 * 123), MV_FMT_FVECS, 2, 123);
	d = D;
	/* bvecs with the same dims. */
	k = 0;
	for (int i = 0; i < N; i++) {
		memcpy(buf + k, &d, 4);
		memset(buf + k + 4, i & 0xff, D);
		k += 4 + D;
	}
	SNIFF(buf, k, MV_FMT_BVECS, N, D);
	SNIFF(buf, 4 + D, MV_FMT_BVECS, 1, D);
	k = make_npy(buf, 1, "<f4", "False", "(3000, 100)", v, N * D);
	SNIFF(buf, k, MV_FMT_NPY, N, D);
	SNIFF_STR("\n\n  {\"vector\":[1,2]}\n{\"vector\":[3,4]}\n",
		  MV_FMT_JSONL, 2, 2);
	SNIFF_STR("\xef\xbb\xbf{\"vector\":[1,2]}\n", MV_FMT_JSONL, 1, 2);
	SNIFF_STR("1 2 3\n4 5 6\n", MV_FMT_TEXT, 2, 3);
	SNIFF_STR("# x\n-1,2\n", MV_FMT_TEXT, 1, 2);
	SNIFF_STR("", MV_FMT_TEXT, 0, 0);
	SNIFF_STR("7", MV_FMT_TEXT, 1, 1);
	free(buf);
	free(v);
}

TEST(vecio_sniff_bad_binary)
{
	/* A NUL in the first bytes is binary: the fvecs reader explains. */
	unsigned char rec[12] = { 0, 0, 0, 0 };
	struct mv_err err = { 0 };
	struct mv_vreader *r;
	struct got g;
	pid_t pid;
	int fd = pipe_from(rec, sizeof(rec), &pid), st;

	memset(&g, 0, sizeof(g));
	r = mv_vreader_fdopen(fd, NULL, &no_opts, &err);
	REQUIRE(r);
	got_read(r, 10, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_FVECS);
	CHECK_EQ_INT(g.rc, MV_EDATA);
	CHECK_STR(g.err.msg, "-:1: bad dimension 0");
	mv_vreader_close(r);
	close(fd);
	waitpid(pid, &st, 0);
	got_free(&g);
}

/* Read path "-" with fd 0 replaced by the file at path. */
static void read_as_stdin(const char *path, const struct mv_vreader_opts *o,
			  struct got *g)
{
	int saved = dup(0), fd = open(path, O_RDONLY);

	if (saved < 0 || fd < 0 || dup2(fd, 0) < 0)
		abort();
	close(fd);
	got_path("-", o, 100, g);
	dup2(saved, 0);
	close(saved);
}

TEST(vecio_sniff_stdin)
{
	const char *path = unit_path("stdin.data");
	struct got g;
	float v[6] = { 1, 2, 3, 4, 5, 6 };
	unsigned char buf[512];
	size_t k;

	put_str(path, "1 2\n3 x\n");
	read_as_stdin(path, &no_opts, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_TEXT);
	CHECK_EQ_INT(g.rc, MV_EDATA);
	CHECK_STR(g.err.msg, "-:2: not a number: 'x'");
	got_free(&g);

	k = make_npy(buf, 1, "<f4", "False", "(2, 3)", v, 6);
	put_file(path, buf, k);
	read_as_stdin(path, &no_opts, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_NPY);
	CHECK_EQ_INT(g.rc, 0);
	CHECK_EQ_U64(g.n, 2);
	if (g.n == 2)
		CHECK_MEM(g.v, v, sizeof(v));
	got_free(&g);

	put_str(path, "{\"vector\":[1,2,3]}\n{\"vector\":[1,2]}\n");
	read_as_stdin(path, &no_opts, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_JSONL);
	CHECK_STR(g.err.msg, "-:2: dimension 2, expected 3");
	got_free(&g);

	/* --format wins over sniffing. */
	struct mv_vreader_opts o = { .format = MV_FMT_TEXT };
	put_str(path, "{\"vector\":[1,2,3]}\n");
	read_as_stdin(path, &o, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_TEXT);
	CHECK_STR(g.err.msg, "-:1: not a number: '{\"vector\":[1'");
	got_free(&g);

	/* A file with an unknown extension is sniffed too. */
	put_str(path, "{\"vector\":[1,2,3]}\n");
	got_path(path, &no_opts, 10, &g);
	CHECK_EQ_INT(g.fmt, MV_FMT_JSONL);
	CHECK_EQ_U64(g.n, 1);
	got_free(&g);
}

/*
 * Id lists.
 */

TEST(vecio_idreader)
{
	const char *path = unit_path("ids");
	struct mv_err err = { 0 };
	struct mv_idreader *r;
	int64_t ids[4];
	uint64_t lines[4];
	char want[512];

	put_str(path, "1\n\n# comment\n  -5 \r\n9223372036854775807\n"
		"-9223372036854775807\n42");
	r = mv_idreader_open(path, &err);
	REQUIRE(r);
	CHECK_EQ_INT(mv_idreader_read_lines(r, ids, lines, 4, &err), 4);
	CHECK_EQ_INT(ids[0], 1);
	CHECK_EQ_INT(ids[1], -5);
	CHECK_EQ_INT(ids[2], INT64_MAX);
	CHECK_EQ_INT(ids[3], INT64_MIN + 1);
	/* Lines of the ids, blank and comment lines counted. */
	CHECK_EQ_INT(lines[0], 1);
	CHECK_EQ_INT(lines[1], 4);
	CHECK_EQ_INT(lines[2], 5);
	CHECK_EQ_INT(lines[3], 6);
	CHECK_EQ_INT(mv_idreader_read(r, ids, 4, &err), 1);
	CHECK_EQ_INT(ids[0], 42);
	CHECK_EQ_INT(mv_idreader_read(r, ids, 4, &err), 0);
	mv_idreader_close(r);
	mv_idreader_close(NULL);

	const char *bad[][2] = {
		{ "1\n2\nx\n", ":3: bad id 'x'" },
		{ "1\n2 3\n", ":2: bad id '2 3'" },
		{ "1.0\n", ":1: bad id '1.0'" },
		{ "9223372036854775808\n", ":1: bad id '9223372036854775808'" },
		{ "-\n", ":1: bad id '-'" },
		/* -2^63 is the reserved id, never a user's. */
		{ "1\n-9223372036854775808\n",
		  ":2: id -9223372036854775808 is reserved" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_str(path, bad[i][0]);
		mv_err_clear(&err);
		r = mv_idreader_open(path, &err);
		REQUIRE(r);
		while (mv_idreader_read(r, ids, 1, &err) > 0)
			;
		snprintf(want, sizeof(want), "%s%s", path, bad[i][1]);
		CHECK_EQ_INT(err.code, MV_EDATA);
		CHECK_STR(err.msg, want);
		mv_idreader_close(r);
	}
}

/*
 * Writers.
 */

TEST(vecio_write_text)
{
	float v[4] = { 0.1f, -2.0f, 1e-20f, 3.4028235e38f };
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	REQUIRE(f);
	CHECK_EQ_INT(mv_write_text(f, v, 4, ','), 0);
	fputc('|', f);
	CHECK_EQ_INT(mv_write_text(f, v, 1, '\t'), 0);
	CHECK_EQ_INT(mv_write_text(f, v, 0, '\t'), 0);
	fclose(f);
	CHECK_STR(s, "0.100000001,-2,9.99999968e-21,3.40282347e+38|"
		  "0.100000001");
	free(s);
}

TEST(vecio_write_text_long)
{
	enum { D = 4000 };
	float *v = malloc(D * sizeof(float));
	char *s = NULL, tok[32];
	size_t len = 0, k = 0;
	FILE *f = open_memstream(&s, &len);
	int ok = 1;

	REQUIRE(f);
	fill_random(v, D);
	CHECK_EQ_INT(mv_write_text(f, v, D, ' '), 0);
	fclose(f);
	for (int i = 0; i < D && ok; i++) {
		int n = snprintf(tok, sizeof(tok), "%s%.9g", i ? " " : "",
				 (double)v[i]);
		ok = k + n <= len && !memcmp(s + k, tok, (size_t)n);
		k += (size_t)n;
	}
	CHECK(ok);
	CHECK_EQ_U64(k, len);
	free(s);
	free(v);
}

/*
 * The float parser.
 */

static void check_parse(const char *file, int line, const char *s, int *bad)
{
	const char *p = s, *e = s + strlen(s);
	char *end;
	float want, got = 0;
	uint32_t wb, gb;
	int rc;

	errno = 0;
	want = strtof(s, &end);
	rc = mv_parse_float(&p, e, &got);
	memcpy(&wb, &want, 4);
	memcpy(&gb, &got, 4);
	if (end == s ? rc != -1 || p != s :
	    rc != 0 || p != end || (wb != gb && !(isnan(want) && isnan(got)))) {
		if ((*bad)++ < 10)
			unit_fail(file, line, "'%s': strtof %a (%td chars), "
				  "mv_parse_float %d %a (%td chars)", s,
				  (double)want, end - s, rc, (double)got,
				  p - s);
	}
}

#define CHECK_PARSE(s, bad) check_parse(__FILE__, __LINE__, s, bad)

TEST(vecio_parse_float_cases)
{
	static const char *const cases[] = {
		"0", "-0", "+0", "0.0", "-0.0", ".5", "5.", "-.5e1", "1e10",
		"1e-10", "16777216", "16777217", "16777218", "16777219",
		"33554433", "33554435", "1.6777217e7", "167772170e-1",
		"3.4028235e38", "3.4028236e38", "3.40282357e38",
		"3.4028235677973366e38", "3.402823567797337e38",
		"1e39", "-1e39", "1e-38", "1.17549435e-38", "1.1754942e-38",
		"1e-45", "1.4e-45", "7e-46", "7.1e-46", "1e-46", "2.5e-46",
		"0.000000000000000000000000000000000000000000001",
		"123456789012345678901234567890", "1.00000000000000000000001",
		"0.1", "0.2", "0.3", "-0.038194", "-0.24487", "0.72812",
		"9007199254740993", "9007199254740992e-22", "1e22", "1e23",
		"4.2e-22", "inf", "-inf", "INF", "infinity", "-Infinity",
		"nan", "NaN", "1e", "1e+", "1e-", "1.5e+x", "-", "+", ".",
		"-.", "e5", "abc", "", "1e100000000000000000000",
		"1e-100000000000000000000", "00000000000000000000000000001",
		"0.00000000000000000000000000001", "1,5", "12abc",
		"1.5E3", "7.038531e-26", "8.589973e9", "1.0e-5",
		"2.2250738585072014e-308",
		"340282356779733661637539395458142568448",
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_PARSE(cases[i], &bad);
	CHECK_EQ_INT(bad, 0);

	/* end bounds the number. */
	const char *s = "123456", *p = s;
	float f;
	CHECK_EQ_INT(mv_parse_float(&p, s + 3, &f), 0);
	CHECK(f == 123.0f && p == s + 3);
	p = s;
	CHECK_EQ_INT(mv_parse_float(&p, s, &f), -1);
	CHECK(p == s);
	s = "1.5e7x";
	p = s;
	CHECK_EQ_INT(mv_parse_float(&p, s + 4, &f), 0);
	CHECK(f == 1.5f && p == s + 3);
}

/* A random decimal string of one of several shapes. */
static void gen_number(char *s, size_t cap)
{
	unsigned kind = (unsigned)(rnd() % 8);
	size_t k = 0;

	switch (kind) {
	case 0:			/* any float, 1..9 significant digits */
		snprintf(s, cap, "%.*g", (int)(rnd() % 9) + 1,
			 (double)rnd_float());
		break;
	case 1:			/* glove-like */
		snprintf(s, cap, "%.6g", (double)((float)((int64_t)(rnd() %
			 6000001) - 3000000) * 1e-6f));
		break;
	case 2: {		/* random digits, point and exponent */
		int nd = (int)(rnd() % 25) + 1, dot = (int)(rnd() % (nd + 2));

		if (rnd() % 2)
			s[k++] = rnd() % 2 ? '-' : '+';
		for (int i = 0; i < nd; i++) {
			if (i == dot)
				s[k++] = '.';
			s[k++] = (char)('0' + rnd() % 10);
		}
		if (rnd() % 2)
			snprintf(s + k, cap - k, "e%d",
				 (int)(rnd() % 101) - 50);
		else
			s[k] = '\0';
		break;
	}
	case 3: {		/* exact ties m * 10^e between two floats */
		float f;
		double mid;
		char tmp[64];
		size_t n, z = 0;

		do
			f = fabsf(rnd_float());
		while (f < 16777216.0f || f > 1e30f);
		mid = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
		n = (size_t)snprintf(tmp, sizeof(tmp), "%.0f", mid);
		while (n > 1 && tmp[n - 1] == '0')
			n--, z++;
		tmp[n] = '\0';
		if (rnd() % 2)
			snprintf(s, cap, "%se%zu", tmp, z);
		else
			snprintf(s, cap, "%s%.*s", tmp, (int)z,
				 "000000000000000000000000000000");
		break;
	}
	case 4: {		/* near ties in any range */
		float f = fabsf(rnd_float());
		double mid = ((double)f + (double)nextafterf(f, INFINITY)) / 2;

		snprintf(s, cap, "%.*g", (int)(rnd() % 12) + 8, mid);
		break;
	}
	case 5:			/* integers, maybe scaled */
		snprintf(s, cap, "%llu%s%d",
			 (unsigned long long)(rnd() >> (rnd() % 64)),
			 "e", (int)(rnd() % 45) - 22);
		break;
	case 6:			/* short mantissa, wide exponent */
		snprintf(s, cap, "%d.%de%d", (int)(rnd() % 1000),
			 (int)(rnd() % 1000), (int)(rnd() % 97) - 48);
		break;
	default:		/* round trip %.9g and %.17g */
		snprintf(s, cap, rnd() % 2 ? "%.9g" : "%.17g",
			 (double)rnd_float());
		break;
	}
}

TEST(vecio_parse_float_random)
{
	long n = 3000000;
	const char *env = getenv("MV_UNIT_FLOATS");
	char s[128];
	int bad = 0;

	if (env && *env)
		n = atol(env);
	for (long i = 0; i < n; i++) {
		gen_number(s, sizeof(s));
		CHECK_PARSE(s, &bad);
	}
	CHECK_EQ_INT(bad, 0);
	/* Odd integers just above 2^24: ties for the double path. */
	for (uint32_t m = (1u << 24) + 1; m < (1u << 24) + 200000; m += 2) {
		snprintf(s, sizeof(s), "%u", m);
		CHECK_PARSE(s, &bad);
		snprintf(s, sizeof(s), "%u0e-1", m);
		CHECK_PARSE(s, &bad);
	}
	CHECK_EQ_INT(bad, 0);
	unit_diag("%ld random numbers parsed as strtof does", n);
}

/* Reports (does not assert) the text reading speed. */
TEST(vecio_text_speed)
{
	enum { N = 20000, D = 100 };
	const char *path = unit_path("speed.txt");
	struct mv_vreader *r;
	struct mv_vbatch b;
	struct mv_err err = { 0 };
	struct timespec t0, t1;
	FILE *f = fopen(path, "w");
	long rows = 0, n;
	double sec;

	REQUIRE(f);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < D; j++)
			fprintf(f, "%.6g%c", (double)((float)((int64_t)(rnd() %
				2000001) - 1000000) * 1e-6f),
				j == D - 1 ? '\n' : ' ');
	fclose(f);
	REQUIRE(mv_vbatch_init(&b, 4096, D, &err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = mv_vreader_open(path, &no_opts, &err);
	REQUIRE(r);
	while ((n = mv_vreader_read(r, &b, &err)) > 0)
		rows += n;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(rows, N);
	sec = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	unit_diag("text: %.1f MB in %.3f s, %.0f MB/s",
		  mv_vreader_size(r) / 1e6, sec,
		  mv_vreader_size(r) / 1e6 / sec);
	mv_vreader_close(r);
	mv_vbatch_release(&b);
}

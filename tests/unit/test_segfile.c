/*
 * test_segfile.c - unit tests of the segment file format (segfile.h):
 * round trips of small and large files (block B then starts on a page),
 * zstd on block A, and every kind of damage reported as such.
 */
#include <stdlib.h>
#include <string.h>
#include "crc32c.h"
#include "segfile.h"
#include "unit.h"

/* The encoded file in one malloc'ed buffer. */
static unsigned char *flatten(const struct mv_segenc *e, size_t *len)
{
	unsigned char *f;
	size_t n = 0;

	for (int i = 0; i < 4; i++)
		n += e->iov[i].iov_len;
	f = malloc(n ? n : 1);
	if (!f)
		return NULL;
	*len = 0;
	for (int i = 0; i < 4; i++) {
		memcpy(f + *len, e->iov[i].iov_base, e->iov[i].iov_len);
		*len += e->iov[i].iov_len;
	}
	return f;
}

static void round_trip(uint64_t n, uint32_t dim, uint64_t want_align)
{
	int64_t *ids = malloc(n * 8 + 1);
	float *v = malloc(n * dim * sizeof(float) + 1);
	struct mv_segenc e;
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	unsigned char *f;
	size_t len = 0;
	void *a;
	const void *b;

	REQUIRE(ids && v);
	for (uint64_t i = 0; i < n; i++)
		ids[i] = (int64_t)(i * 3 + 7);
	for (uint64_t i = 0; i < n * dim; i++)
		v[i] = (float)i * 0.25f - 3.0f;
	REQUIRE(mv_segenc_init(&e, MV_SEG_VEC, dim, n, ids, n * 8, v,
			       n * dim * sizeof(float), &err) == 0);
	if (n * 8 >= 4096)	/* sequential ids compress */
		CHECK(e.iov[1].iov_len < n * 8 / 4);
	REQUIRE((f = flatten(&e, &len)));
	mv_segenc_release(&e);
	CHECK_EQ_INT(mv_segfile_decode("x.vec", f, len, &info, &a, &b, &err), 0);
	CHECK_EQ_INT(info.kind, MV_SEG_VEC);
	CHECK_EQ_U64(info.aux, dim);
	CHECK_EQ_U64(info.n, n);
	CHECK_EQ_U64(info.b_off % want_align, 0);
	CHECK_EQ_U64(info.b_len, n * dim * sizeof(float));
	CHECK(a && !memcmp(a, ids, n * 8));
	CHECK(b && !memcmp(b, v, n * dim * sizeof(float)));
	free(a);

	/* A flipped byte in A, in B, in the header; a cut tail. */
	f[64] ^= 1;
	CHECK_EQ_INT(mv_segfile_decode("x.vec", f, len, &info, &a, &b, &err),
		     MV_EIO);
	CHECK(strstr(err.msg, "'x.vec': checksum mismatch"));
	f[64] ^= 1;
	f[len - 1] ^= 0x80;
	CHECK_EQ_INT(mv_segfile_decode("x.vec", f, len, &info, &a, &b, &err),
		     MV_EIO);
	f[len - 1] ^= 0x80;
	f[20] ^= 1;
	memset(&err, 0, sizeof(err));	/* the first error sticks */
	CHECK_EQ_INT(mv_segfile_decode("x.vec", f, len, &info, &a, &b, &err),
		     MV_EIO);
	CHECK(strstr(err.msg, "header checksum"));
	f[20] ^= 1;
	memset(&err, 0, sizeof(err));	/* the first error sticks */
	CHECK_EQ_INT(mv_segfile_decode("x.vec", f, len - 4, &info, &a, &b,
				       &err), MV_EIO);
	CHECK(strstr(err.msg, "truncated"));
	CHECK(a == NULL);
	free(f);
	free(ids);
	free(v);
}

TEST(segfile_small_round_trip)
{
	round_trip(10, 3, 64);
	round_trip(1000, 16, 64);
}

TEST(segfile_large_block_starts_on_a_page)
{
	/* 1 MiB of vectors or more: B is page-aligned for direct I/O. */
	round_trip(20000, 16, 4096);
	round_trip(2621, 100, 64);	/* 1048400 bytes: just under */
}

/* B first, then A and a trailer: what a flush streamed to storage. */
TEST(segfile_tail_layout)
{
	uint64_t n = 5000;
	uint32_t dim = 8;
	size_t blen = n * dim * sizeof(float), len;
	int64_t *ids = malloc(n * 8);
	unsigned char *f = malloc(blen + n * 8 + 64);
	float *v = (float *)(void *)f;
	struct mv_segenc e;
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	void *a;
	const void *b;

	REQUIRE(ids && f);
	for (uint64_t i = 0; i < n; i++)
		ids[i] = (int64_t)(n - i);
	for (uint64_t i = 0; i < n * dim; i++)
		v[i] = (float)i / 7.0f;
	REQUIRE(mv_segenc_tail(&e, MV_SEG_VEC, dim, n, ids, n * 8, blen,
			       mv_crc32c(0, v, blen), &err) == 0);
	len = blen;
	for (int i = 0; i < 2; i++) {
		memcpy(f + len, e.iov[i].iov_base, e.iov[i].iov_len);
		len += e.iov[i].iov_len;
	}
	mv_segenc_release(&e);
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f, len, &info, &a, &b, &err), 0);
	CHECK_EQ_U64(info.n, n);
	CHECK_EQ_U64(info.aux, dim);
	CHECK_EQ_U64(info.b_off, 0);
	CHECK_EQ_U64(info.b_len, blen);
	CHECK(b == f);
	CHECK(a && !memcmp(a, ids, n * 8));
	free(a);
	/* Damage to B, to A, to the trailer; a cut file. */
	f[100] ^= 4;
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f, len, &info, &a, &b, &err),
		     MV_EIO);
	CHECK(strstr(err.msg, "checksum mismatch"));
	f[100] ^= 4;
	f[blen + 3] ^= 4;
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f, len, &info, &a, &b, NULL),
		     MV_EIO);
	f[blen + 3] ^= 4;
	f[len - 30] ^= 4;
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f, len, &info, &a, &b, NULL),
		     MV_EIO);
	f[len - 30] ^= 4;
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f + 4, len - 4, &info, &a, &b,
				       NULL), MV_EIO);
	CHECK_EQ_INT(mv_segfile_decode("t.vec", f, len, &info, &a, &b, NULL), 0);
	free(a);
	free(ids);
	free(f);
}

/*
 * A header (with a right checksum) that claims a huge decompressed block
 * A is refused as damage before anything is allocated for it, zstd or
 * not (found by tests/fuzz/fuzz_segfile).
 */
TEST(segfile_huge_a_raw_is_damage_not_an_allocation)
{
	int64_t ids[64];
	float v[64];
	struct mv_segenc e;
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	unsigned char *f;
	size_t len = 0;
	void *a = NULL;
	const void *b;
	uint64_t huge = (uint64_t)1 << 62;
	uint32_t crc;

	for (int i = 0; i < 64; i++) {
		ids[i] = i;
		v[i] = (float)i;
	}
	for (int zstd = 0; zstd < 2; zstd++) {
		size_t n = zstd ? 64 : 4;	/* 64 sequential ids compress */

		REQUIRE(mv_segenc_init(&e, MV_SEG_VEC, 1, n, ids, n * 8, v,
				       n * 4, &err) == 0);
		REQUIRE((f = flatten(&e, &len)));
		mv_segenc_release(&e);
		memcpy(f + 32, &huge, 8);	/* a_raw */
		crc = mv_crc32c(0, f, 56);
		memcpy(f + 56, &crc, 4);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(mv_segfile_decode("h.vec", f, len, &info, &a, &b,
					       &err), MV_EIO);
		CHECK(strstr(err.msg, zstd ? "bad zstd block" :
			     "bad block size"));
		CHECK(a == NULL);
		free(f);
	}
}

/*
 * What a range reader does (load.c on a cluster node): the header alone
 * (at offset 0, or the trailer of a streamed file), then block A alone,
 * checked against the header's checksum; block B only when it is read.
 * A flipped bit in the header or in A is MV_EIO naming the file; one in
 * B passes the header and A and is caught by mv_segfile_check_b.
 */
static void parts(unsigned char *f, size_t len, const int64_t *ids,
		  uint64_t n, int tail)
{
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	const unsigned char *h = tail ? f + len - MV_SEGFILE_HDR : f;
	void *a = NULL;
	uint64_t bit[3];

	CHECK_EQ_INT(mv_segfile_header("p.vec", h, &info, &err), 0);
	CHECK_EQ_INT(info.tail, tail);
	CHECK_EQ_U64(info.size, len);
	CHECK_EQ_U64(info.n, n);
	CHECK_EQ_U64(info.a_raw, n * 8);
	CHECK_EQ_U64(info.a_off, tail ? info.b_len : MV_SEGFILE_HDR);
	CHECK(info.a_off + info.a_len <= len);
	CHECK_EQ_INT(mv_segfile_block_a("p.vec", &info, f + info.a_off,
					info.a_len, &a, &err), 0);
	CHECK(a && !memcmp(a, ids, n * 8));
	free(a);
	CHECK_EQ_INT(mv_segfile_check_b("p.vec", &info, f + info.b_off, &err),
		     0);
	/* One bit in the header, in A, in B. */
	bit[0] = (uint64_t)(h - f) + 17;
	bit[1] = info.a_off + info.a_len / 2;
	bit[2] = info.b_off + info.b_len - 3;
	for (int i = 0; i < 3; i++) {
		struct mv_seginfo in2;
		int rc;

		f[bit[i]] ^= 0x10;
		memset(&err, 0, sizeof(err));
		a = NULL;
		rc = mv_segfile_header("p.vec", h, &in2, &err);
		if (rc == 0)
			rc = mv_segfile_block_a("p.vec", &in2, f + in2.a_off,
						in2.a_len, &a, &err);
		if (i < 2) {
			CHECK_EQ_INT(rc, MV_EIO);
			CHECK(strstr(err.msg, "'p.vec': "));
			CHECK(strstr(err.msg, i ? "checksum mismatch" :
				     "header checksum mismatch"));
			CHECK(a == NULL);
		} else {
			/* B is not read with the header and A. */
			CHECK_EQ_INT(rc, 0);
			free(a);
			CHECK_EQ_INT(mv_segfile_check_b("p.vec", &in2,
							f + in2.b_off, &err),
				     MV_EIO);
			CHECK(strstr(err.msg, "'p.vec': checksum mismatch"));
		}
		f[bit[i]] ^= 0x10;
	}
	/* A block A of the wrong length (a short range read). */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(mv_segfile_block_a("p.vec", &info, f + info.a_off,
					info.a_len - 1, &a, &err), MV_EIO);
	CHECK(strstr(err.msg, "'p.vec': truncated"));
	/* A trailer is not taken for a header at the start, nor B's bytes. */
	memset(&err, 0, sizeof(err));
	if (tail)
		CHECK_EQ_INT(mv_segfile_header("p.vec", f, &info, &err), MV_EIO);
}

TEST(segfile_header_and_block_a_alone)
{
	uint64_t n = 3000;
	uint32_t dim = 16;
	size_t blen = n * dim * sizeof(float), len = 0;
	int64_t *ids = malloc(n * 8);
	float *v = malloc(blen);
	unsigned char *f, *g;
	struct mv_segenc e;
	struct mv_err err = { 0 };

	REQUIRE(ids && v);
	for (uint64_t i = 0; i < n; i++)
		ids[i] = (int64_t)(i * 7919 % 100003);
	for (uint64_t i = 0; i < n * dim; i++)
		v[i] = (float)i * 0.5f;
	/* The header at offset 0 (zstd on A: ids that compress a little). */
	REQUIRE(mv_segenc_init(&e, MV_SEG_VEC, dim, n, ids, n * 8, v, blen,
			       &err) == 0);
	REQUIRE((f = flatten(&e, &len)));
	mv_segenc_release(&e);
	parts(f, len, ids, n, 0);
	free(f);
	/* Streamed: B, A, the trailer. */
	REQUIRE(mv_segenc_tail(&e, MV_SEG_VEC, dim, n, ids, n * 8, blen,
			       mv_crc32c(0, v, blen), &err) == 0);
	REQUIRE((g = malloc(blen + e.iov[0].iov_len + MV_SEGFILE_HDR)));
	memcpy(g, v, blen);
	len = blen;
	for (int i = 0; i < 2; i++) {
		memcpy(g + len, e.iov[i].iov_base, e.iov[i].iov_len);
		len += e.iov[i].iov_len;
	}
	mv_segenc_release(&e);
	parts(g, len, ids, n, 1);
	free(g);
	free(ids);
	free(v);
}

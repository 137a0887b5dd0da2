/*
 * fuzz_segfile - the segment file decoder of libmv/segfile.c, both
 * layouts (header first, and B first with the header as a trailer): the
 * input is the whole file.  Each input is decoded as it is, then again
 * with its checksums made right (a fuzzer cannot guess a CRC), so that the
 * size and decompression checks behind them are reached too.  Each is also
 * read as a cluster node's range reads do (mv_segfile_header on the first
 * or last 64 bytes, then mv_segfile_block_a on the span the header names,
 * mv_segfile_check_b on B), which must agree with the whole-file decode.
 */
#include <string.h>
#include "crc32c.h"
#include "fuzz.h"
#include "segfile.h"

#define HDR 64
#define F_PAGE 2u
#define F_TAIL 4u

static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

/*
 * The range reader's way: a header at either end, then its block A.  When
 * the whole file decoded (rc 0, block A a of a_raw bytes), this must too,
 * with the same bytes.
 */
static void by_parts(const unsigned char *file, size_t len, int whole,
		     const void *a_whole, uint64_t a_raw)
{
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	int found = 0;

	for (int end = 0; end < 2 && !found && len >= MV_SEGFILE_HDR; end++) {
		const unsigned char *h = end ? file + len - MV_SEGFILE_HDR : file;
		void *a = NULL;
		int rc;

		memset(&err, 0, sizeof(err));
		if (mv_segfile_header("fuzz.vec", h, &info, &err) < 0) {
			FUZZ_CHECK(err.code < 0 && err.msg[0]);
			continue;
		}
		if (!!info.tail != end)
			continue;
		found = 1;
		if (info.size != len || info.a_off > len ||
		    info.a_len > len - info.a_off)
			break;
		rc = mv_segfile_block_a("fuzz.vec", &info, file + info.a_off,
					(size_t)info.a_len, &a, &err);
		if (rc == 0) {
			FUZZ_CHECK(info.a_raw == 0 || a);
			if (whole) {
				FUZZ_CHECK(info.a_raw == a_raw);
				FUZZ_CHECK(!a_raw || !memcmp(a, a_whole, a_raw));
			}
			if (info.b_off <= len && info.b_len <= len - info.b_off)
				(void)mv_segfile_check_b("fuzz.vec", &info,
							 file + info.b_off,
							 &err);
		} else {
			FUZZ_CHECK(!a && err.msg[0]);
			FUZZ_CHECK(!whole);
		}
		free(a);
	}
	if (whole)
		FUZZ_CHECK(found);
}

static void decode(const unsigned char *file, size_t len)
{
	struct mv_seginfo info;
	struct mv_err err = { 0 };
	void *a = NULL;
	const void *b = NULL;
	int rc = mv_segfile_decode("fuzz.vec", file, len, &info, &a, &b, &err);

	if (rc == 0) {
		const unsigned char *pa = a, *pb = b;
		volatile unsigned char sum = 0;

		FUZZ_CHECK(info.b_off <= len && info.b_len <= len - info.b_off);
		FUZZ_CHECK(!info.b_len || pb == file + info.b_off);
		/* Touch every byte promised, for ASan. */
		for (uint64_t i = 0; i < info.a_raw; i++)
			sum ^= pa[i];
		for (uint64_t i = 0; i < info.b_len; i++)
			sum ^= pb[i];
		(void)sum;
		by_parts(file, len, 1, a, info.a_raw);
	} else {
		FUZZ_CHECK(rc < 0 && err.code == rc && err.msg[0]);
		FUZZ_CHECK(!a && !b);
		by_parts(file, len, 0, NULL, 0);
	}
	free(a);
}

/* Set the CRCs of the header at h for the blocks where they must be. */
static void fix_crcs(unsigned char *f, size_t len, unsigned char *h)
{
	uint32_t flags = get32(h + 12);
	uint64_t aslen = get64(h + 24), blen = get64(h + 40);

	if (flags & F_TAIL) {
		if (blen <= len - HDR) {
			put32(h + 52, mv_crc32c(0, f, blen));
			put32(h + 48, mv_crc32c(0, f + blen, len - HDR - blen));
		}
	} else if (aslen <= len - HDR) {
		uint64_t align = flags & F_PAGE ? 4096 : 64;
		uint64_t boff = HDR + aslen;

		boff += (align - boff % align) % align;
		put32(h + 48, mv_crc32c(0, f + HDR, aslen));
		if (boff <= len)
			put32(h + 52, mv_crc32c(0, f + boff, len - boff));
	}
	put32(h + 56, mv_crc32c(0, h, 56));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* Exact-size heap copies, so that ASan sees any read past the end. */
	unsigned char *f = malloc(len ? len : 1);

	if (!f)
		abort();
	memcpy(f, data, len);
	decode(f, len);
	if (len >= HDR) {
		if (!memcmp(f, "MVF1", 4) && !(get32(f + 12) & F_TAIL))
			fix_crcs(f, len, f);
		else
			fix_crcs(f, len, f + len - HDR);
		decode(f, len);
	}
	free(f);
	return 0;
}

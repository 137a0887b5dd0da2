/*
 * segfile.c - encoding and checking of segment files (see segfile.h).  The
 * only user of zstd.  Vectors are never compressed: float32 embeddings
 * gain little and must stay mappable.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "crc32c.h"
#include "segfile.h"

#define HDR_LEN MV_SEGFILE_HDR
#define F_ZSTD 1u
#define F_PAGE 2u	/* block B starts at a 4096-byte boundary */
#define F_TAIL 4u	/* B, A, then the header: written as B arrived */
#define PAGE_FROM (1u << 20)	/* B blocks this large get F_PAGE */
/* zstd's best: a 128 KiB block stored as a 4-byte RLE block. */
#define ZSTD_RATIO_MAX 32768

static const unsigned char zeros[4096];	/* padding */

/* Offset of block B after a block A of aslen stored bytes. */
static uint64_t b_offset(uint64_t aslen, uint32_t flags)
{
	uint64_t align = flags & F_PAGE ? 4096 : 64;
	uint64_t off = HDR_LEN + aslen;

	return off + (align - off % align) % align;
}

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/*
 * Header layout (little-endian): 0 magic "MVF1", 4 u16 version, 6 u16 kind,
 * 8 u32 aux, 12 u32 flags, 16 u64 n, 24 u64 a_len (stored), 32 u64 a_raw,
 * 40 u64 b_len, 48 u32 crc_a, 52 u32 crc_b, 56 u32 crc of bytes 0..55.
 */
/* Block A as stored: zstd-compressed when that saves a sixteenth. */
static int store_a(struct mv_segenc *e, const void *a, size_t alen,
		   const void **astore, size_t *aslen, uint32_t *flags,
		   struct mv_err *err)
{
	*astore = a;
	*aslen = alen;
	if (alen >= 256) {
		size_t bound = ZSTD_compressBound(alen);
		size_t z;

		e->zbuf = malloc(bound);
		if (!e->zbuf)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		z = ZSTD_compress(e->zbuf, bound, a, alen, 1);
		if (ZSTD_isError(z)) {
			free(e->zbuf);
			e->zbuf = NULL;
			return mv_err_set(err, MV_EINTERNAL, "zstd: %s",
					  ZSTD_getErrorName(z));
		}
		if (z < alen - alen / 16) {
			*astore = e->zbuf;
			*aslen = z;
			*flags |= F_ZSTD;
		}
	}
	return 0;
}

static void fill_hdr(unsigned char *h, enum mv_segkind kind, uint32_t aux,
		     uint32_t flags, uint64_t n, uint64_t aslen, uint64_t alen,
		     uint64_t blen, uint32_t crc_a, uint32_t crc_b)
{
	memcpy(h, "MVF1", 4);
	put16(h + 4, MV_FORMAT_VERSION);
	put16(h + 6, (uint16_t)kind);
	put32(h + 8, aux);
	put32(h + 12, flags);
	put64(h + 16, n);
	put64(h + 24, aslen);
	put64(h + 32, alen);
	put64(h + 40, blen);
	put32(h + 48, crc_a);
	put32(h + 52, crc_b);
	put32(h + 56, mv_crc32c(0, h, 56));
}

int mv_segenc_init(struct mv_segenc *e, enum mv_segkind kind, uint32_t aux,
		   uint64_t n, const void *a, size_t alen, const void *b,
		   size_t blen, struct mv_err *err)
{
	const void *astore;
	size_t aslen;
	uint32_t flags = blen >= PAGE_FROM ? F_PAGE : 0;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = store_a(e, a, alen, &astore, &aslen, &flags, err)) < 0)
		return rc;
	fill_hdr(e->hdr, kind, aux, flags, n, aslen, alen, blen,
		 mv_crc32c(0, astore, aslen), blen ? mv_crc32c(0, b, blen) : 0);
	e->iov[0] = (struct iovec){ e->hdr, HDR_LEN };
	e->iov[1] = (struct iovec){ (void *)astore, aslen };
	e->iov[2] = (struct iovec){ (void *)zeros,
				    b_offset(aslen, flags) - HDR_LEN - aslen };
	e->iov[3] = (struct iovec){ (void *)b, blen };
	return 0;
}

int mv_segenc_tail(struct mv_segenc *e, enum mv_segkind kind, uint32_t aux,
		   uint64_t n, const void *a, size_t alen, uint64_t blen,
		   uint32_t crc_b, struct mv_err *err)
{
	const void *astore;
	size_t aslen;
	uint32_t flags = F_TAIL;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = store_a(e, a, alen, &astore, &aslen, &flags, err)) < 0)
		return rc;
	fill_hdr(e->hdr, kind, aux, flags, n, aslen, alen, blen,
		 mv_crc32c(0, astore, aslen), blen ? crc_b : 0);
	e->iov[0] = (struct iovec){ (void *)astore, aslen };
	e->iov[1] = (struct iovec){ e->hdr, HDR_LEN };
	return 0;
}

void mv_segenc_release(struct mv_segenc *e)
{
	free(e->zbuf);
	e->zbuf = NULL;
}

/* Sizes past this are damage: no sum of two of them overflows. */
#define SIZE_MAX_SANE (UINT64_C(1) << 62)

int mv_segfile_header(const char *name, const void *hdr,
		      struct mv_seginfo *info, struct mv_err *err)
{
	const unsigned char *h = hdr;

	if (memcmp(h, "MVF1", 4))
		return mv_err_set(err, MV_EIO, "'%s': not a segment file", name);
	if (get32(h + 56) != mv_crc32c(0, h, 56))
		return mv_err_set(err, MV_EIO, "'%s': header checksum mismatch",
				  name);
	if (get16(h + 4) != MV_FORMAT_VERSION)
		return mv_err_set(err, MV_EIO, "'%s': format version %u, want %u",
				  name, get16(h + 4), MV_FORMAT_VERSION);
	memset(info, 0, sizeof(*info));
	info->kind = (enum mv_segkind)get16(h + 6);
	info->aux = get32(h + 8);
	info->flags = get32(h + 12);
	info->n = get64(h + 16);
	info->a_len = get64(h + 24);
	info->a_raw = get64(h + 32);
	info->b_len = get64(h + 40);
	info->crc_a = get32(h + 48);
	info->crc_b = get32(h + 52);
	if (info->a_len > SIZE_MAX_SANE || info->b_len > SIZE_MAX_SANE)
		return mv_err_set(err, MV_EIO, "'%s': bad block size", name);
	if (info->flags & F_TAIL) {
		info->tail = 1;
		info->b_off = 0;
		info->a_off = info->b_len;
		info->size = info->b_len + info->a_len + HDR_LEN;
	} else {
		info->a_off = HDR_LEN;
		info->b_off = b_offset(info->a_len, info->flags);
		info->size = info->b_off + info->b_len;
	}
	return 0;
}

int mv_segfile_block_a(const char *name, const struct mv_seginfo *info,
		       const void *astored, size_t len, void **a,
		       struct mv_err *err)
{
	void *araw;

	*a = NULL;
	if (len != info->a_len)
		return mv_err_set(err, MV_EIO, "'%s': truncated (block A of %zu "
				  "bytes, want %llu)", name, len,
				  (unsigned long long)info->a_len);
	if (info->crc_a != mv_crc32c(0, astored, len))
		return mv_err_set(err, MV_EIO, "'%s': checksum mismatch", name);
	/*
	 * The size block A claims is checked before it is allocated: a
	 * stored block is that size, and a zstd frame says its size in its
	 * header, and cannot expand more than ZSTD_RATIO_MAX times.
	 */
	if (info->flags & F_ZSTD) {
		unsigned long long fcs = ZSTD_getFrameContentSize(astored, len);

		if (fcs != info->a_raw || info->a_raw / ZSTD_RATIO_MAX > len)
			return mv_err_set(err, MV_EIO, "'%s': bad zstd block",
					  name);
	} else if (len != info->a_raw) {
		return mv_err_set(err, MV_EIO, "'%s': bad block size", name);
	}
	araw = malloc(info->a_raw ? info->a_raw : 1);
	if (!araw)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (info->flags & F_ZSTD) {
		size_t z = ZSTD_decompress(araw, info->a_raw, astored, len);

		if (ZSTD_isError(z) || z != info->a_raw) {
			free(araw);
			return mv_err_set(err, MV_EIO, "'%s': bad zstd block",
					  name);
		}
	} else {
		memcpy(araw, astored, len);
	}
	*a = araw;
	return 0;
}

int mv_segfile_check_b(const char *name, const struct mv_seginfo *info,
		       const void *b, struct mv_err *err)
{
	if (info->b_len && info->crc_b != mv_crc32c(0, b, info->b_len))
		return mv_err_set(err, MV_EIO, "'%s': checksum mismatch", name);
	return 0;
}

int mv_segfile_decode(const char *name, const void *file, size_t len,
		      struct mv_seginfo *info, void **a, const void **b,
		      struct mv_err *err)
{
	const unsigned char *h = file;
	int rc;

	*a = NULL;
	*b = NULL;
	if (len < HDR_LEN)
		return mv_err_set(err, MV_EIO, "'%s': not a segment file", name);
	if (memcmp(h, "MVF1", 4) || (get32(h + 12) & F_TAIL) ||
	    get32(h + 56) != mv_crc32c(0, h, 56)) {
		/* Not a header at the start: a trailer at the end? */
		const unsigned char *t = h + len - HDR_LEN;

		if (!memcmp(t, "MVF1", 4) && (get32(t + 12) & F_TAIL) &&
		    get32(t + 56) == mv_crc32c(0, t, 56))
			h = t;
	}
	if ((rc = mv_segfile_header(name, h, info, err)) < 0)
		return rc;
	if (info->size != len)
		return mv_err_set(err, MV_EIO, "'%s': truncated (%zu bytes)",
				  name, len);
	rc = mv_segfile_check_b(name, info, (const unsigned char *)file +
				info->b_off, err);
	if (rc == 0)
		rc = mv_segfile_block_a(name, info, (const unsigned char *)file +
				info->a_off, info->a_len, a, err);
	if (rc < 0)
		return rc;
	*b = info->b_len ? (const unsigned char *)file + info->b_off : NULL;
	return 0;
}

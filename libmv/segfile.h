/*
 * segfile.h - the on-disk format of segment files: raw vectors with their
 * ids (.vec), one scalar column (.col) and delete logs (.del).
 *
 * (and .idx: a FAISS index) Every file is: a 64-byte header (magic "MVF1", format version, kind,
 * sizes, CRC-32C of each part and of the header itself), block A (ids,
 * column values or deleted ids; zstd-compressed where it pays), padding to
 * 64 bytes (4096 when block B is 1 MiB or more, flagged in the header, so
 * that B can be written with direct I/O straight from page-aligned
 * memory), and block B (vectors, float32, stored raw so that they can be
 * mapped and searched in place; empty for other kinds).  A file streamed
 * to storage as its vectors arrive is laid out the other way round: B at
 * offset 0, A, then the header as a trailer (see mv_segenc_tail).
 */
#ifndef MV_SEGFILE_H
#define MV_SEGFILE_H

#include <sys/uio.h>
#include "mv.h"

enum mv_segkind {
	MV_SEG_VEC = 1,		/* A: ids, B: vectors */
	MV_SEG_COL = 2,		/* A: one scalar column */
	MV_SEG_DEL = 3,		/* A: deleted ids */
	MV_SEG_IDX = 4,		/* B: a serialised FAISS index */
};

struct mv_seginfo {
	enum mv_segkind kind;
	uint32_t aux;		/* dim for VEC, field type for COL */
	uint64_t n;		/* rows */
	uint64_t a_raw;		/* decompressed size of block A */
	uint64_t b_len;		/* size of block B */
	uint64_t b_off;		/* offset of block B in the file */
	uint64_t a_off, a_len;	/* block A as stored: offset, bytes */
	uint64_t size;		/* bytes in the whole file */
	int tail;		/* the header is a trailer (streamed layout) */
	uint32_t flags, crc_a, crc_b;	/* as in the header */
};

#define MV_SEGFILE_HDR 64	/* bytes of a header (or trailer) */

/*
 * Encoded file as 4 iovecs (header, block A, padding, block B); B is not
 * copied.  The caller keeps a and b alive until written, then calls
 * mv_segenc_release.
 */
struct mv_segenc {
	struct iovec iov[4];
	unsigned char hdr[64];
	void *zbuf;
};
int mv_segenc_init(struct mv_segenc *e, enum mv_segkind kind, uint32_t aux,
		   uint64_t n, const void *a, size_t alen, const void *b,
		   size_t blen, struct mv_err *err);
/*
 * The other layout, for a file written as its block B arrives: B (blen
 * bytes whose CRC-32C the caller computed as it went, crc_b), then A, then
 * the header as a trailer (flagged).  Fills iov[0] (A) and iov[1] (the
 * trailer) to append after B.  mv_segfile_decode reads both layouts.
 */
int mv_segenc_tail(struct mv_segenc *e, enum mv_segkind kind, uint32_t aux,
		   uint64_t n, const void *a, size_t alen, uint64_t blen,
		   uint32_t crc_b, struct mv_err *err);
void mv_segenc_release(struct mv_segenc *e);

/*
 * Check a whole file held in memory (CRCs, version, sizes) and decode it:
 * *a gets a malloc'ed copy of block A (caller frees), *b points into file.
 * name is used in messages.  MV_EIO "'x': checksum mismatch" etc.
 */
int mv_segfile_decode(const char *name, const void *file, size_t len,
		      struct mv_seginfo *info, void **a, const void **b,
		      struct mv_err *err);

/*
 * For a reader that fetches parts of a file (a range read): decode the
 * MV_SEGFILE_HDR bytes at hdr as a header (at offset 0) or a trailer (the
 * last bytes of a streamed file; info->tail then set), checking its magic,
 * version and checksum, and fill info with the kind, sizes and where the
 * blocks lie (a_off, a_len, b_off, b_len, size).  Then
 * mv_segfile_block_a checks the len bytes of block A as stored against
 * the header's checksum and decodes them into *a (malloc'ed, caller
 * frees), and mv_segfile_check_b checks block B (info->b_len bytes at b).
 * Damage is MV_EIO naming name, as mv_segfile_decode's.
 */
int mv_segfile_header(const char *name, const void *hdr,
		      struct mv_seginfo *info, struct mv_err *err);
int mv_segfile_block_a(const char *name, const struct mv_seginfo *info,
		       const void *astored, size_t len, void **a,
		       struct mv_err *err);
int mv_segfile_check_b(const char *name, const struct mv_seginfo *info,
		       const void *b, struct mv_err *err);

#endif

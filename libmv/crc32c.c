/*
 * crc32c.c - CRC-32C with the SSE4.2 crc32 instruction and a slicing-by-8
 * software fallback.  The hardware path runs three independent crc streams
 * over adjacent blocks to hide the instruction's latency, then joins them
 * with "append n zero bytes" operators (after Mark Adler's crc32c.c).
 */
#include <pthread.h>
#include <string.h>
#include "crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_HW 1
#else
#define HAVE_HW 0
#endif

#define POLY 0x82f63b78u	/* Castagnoli, bit-reflected */
#define LONG_BLOCK 8192		/* bytes per stream, big buffers */
#define SHORT_BLOCK 256		/* bytes per stream, the rest */

static uint32_t sw_table[8][256];
static uint32_t long_shift[4][256];	/* append LONG_BLOCK zeros */
static uint32_t short_shift[4][256];	/* append SHORT_BLOCK zeros */
static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static int hw_ok;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* The 32x32 GF(2) matrix mat times the vector vec. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
	for (int i = 0; i < 32; i++)
		sq[i] = gf2_times(mat, mat[i]);
}

/*
 * Build in op the operator that appends len zero bytes to a raw crc
 * register; len must be a power of two.
 */
static void zeros_op(uint32_t *op, size_t len)
{
	uint32_t odd[32], row = 1;

	odd[0] = POLY;		/* one zero bit */
	for (int i = 1; i < 32; i++, row <<= 1)
		odd[i] = row;
	gf2_square(op, odd);	/* two bits */
	gf2_square(odd, op);	/* four bits */
	for (;;) {
		gf2_square(op, odd);	/* one byte, then 4, 16... */
		len >>= 1;
		if (!len)
			return;
		gf2_square(odd, op);	/* two bytes, then 8, 32... */
		len >>= 1;
		if (!len)
			break;
	}
	memcpy(op, odd, sizeof(odd));
}

/* Byte-wise lookup tables for the zeros operator of len bytes. */
static void zeros_table(uint32_t tab[4][256], size_t len)
{
	uint32_t op[32];

	zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++) {
		tab[0][n] = gf2_times(op, n);
		tab[1][n] = gf2_times(op, n << 8);
		tab[2][n] = gf2_times(op, n << 16);
		tab[3][n] = gf2_times(op, n << 24);
	}
}

static inline uint32_t shift(uint32_t tab[4][256], uint32_t crc)
{
	return tab[0][crc & 0xff] ^ tab[1][(crc >> 8) & 0xff] ^
	       tab[2][(crc >> 16) & 0xff] ^ tab[3][crc >> 24];
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static uint32_t sw_crc(uint32_t crc, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w = load64(p) ^ crc;

		crc = sw_table[7][w & 0xff] ^
		      sw_table[6][(w >> 8) & 0xff] ^
		      sw_table[5][(w >> 16) & 0xff] ^
		      sw_table[4][(w >> 24) & 0xff] ^
		      sw_table[3][(w >> 32) & 0xff] ^
		      sw_table[2][(w >> 40) & 0xff] ^
		      sw_table[1][(w >> 48) & 0xff] ^
		      sw_table[0][w >> 56];
	}
	while (n--)
		crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if HAVE_HW
/* Three streams of blk bytes each over 3 * blk bytes at *pp. */
__attribute__((target("sse4.2")))
static inline uint64_t hw_triple(uint64_t crc0, const unsigned char **pp,
				 size_t blk, uint32_t tab[4][256])
{
	const unsigned char *p = *pp, *end = p + blk;
	uint64_t crc1 = 0, crc2 = 0;

	do {
		crc0 = _mm_crc32_u64(crc0, load64(p));
		crc1 = _mm_crc32_u64(crc1, load64(p + blk));
		crc2 = _mm_crc32_u64(crc2, load64(p + 2 * blk));
		p += 8;
	} while (p < end);
	crc0 = shift(tab, (uint32_t)crc0) ^ crc1;
	crc0 = shift(tab, (uint32_t)crc0) ^ crc2;
	*pp = p + 2 * blk;
	return crc0;
}

__attribute__((target("sse4.2")))
static uint32_t hw_crc(uint32_t crc, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (n && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		n--;
	}
	for (; n >= 3 * LONG_BLOCK; n -= 3 * LONG_BLOCK)
		c = hw_triple(c, &p, LONG_BLOCK, long_shift);
	for (; n >= 3 * SHORT_BLOCK; n -= 3 * SHORT_BLOCK)
		c = hw_triple(c, &p, SHORT_BLOCK, short_shift);
	for (; n >= 8; n -= 8, p += 8)
		c = _mm_crc32_u64(c, load64(p));
	while (n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		sw_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = sw_table[0][n];

		for (int k = 1; k < 8; k++) {
			c = sw_table[0][c & 0xff] ^ (c >> 8);
			sw_table[k][n] = c;
		}
	}
	crc_impl = sw_crc;
#if HAVE_HW
	zeros_table(long_shift, LONG_BLOCK);
	zeros_table(short_shift, SHORT_BLOCK);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		hw_ok = 1;
		crc_impl = hw_crc;
	}
#else
	(void)zeros_table;
#endif
}

uint32_t mv_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	return sw_crc(crc, p, n);
}

uint32_t mv_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
#if HAVE_HW
	pthread_once(&crc_once, crc_init);
	return hw_crc(crc, p, n);
#else
	return mv_crc32c_sw(crc, p, n);
#endif
}

int mv_crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return hw_ok;
}

uint32_t mv_crc32c(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	return crc_impl(crc, p, n);
}

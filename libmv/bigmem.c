/*
 * bigmem.c - large buffers on huge pages with a pool of warm memory (see
 * bigmem.h).  The pool holds ranges of freed buffers, each a whole number
 * of huge pages; taking from it moves pages with mremap(MREMAP_FIXED)
 * into the buffer, huge page by huge page so that no move straddles two
 * mappings.  A buffer made so spans several kernel mappings, so growing
 * it moves it huge page by huge page too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "bigmem.h"
#include "mv.h"

#define HUGE (2u << 20)
#define POOL_MAX 32

struct spare {
	unsigned char *p;
	size_t len;		/* a multiple of HUGE */
	time_t at;		/* when freed */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spare pool[POOL_MAX];
static int npool;
static size_t pooled, pool_limit;

static size_t huge_up(size_t n)
{
	return (n + HUGE - 1) & ~(size_t)(HUGE - 1);
}

/* A fresh cap-byte mapping, HUGE-aligned and advised for huge pages. */
static unsigned char *map_aligned(size_t cap)
{
	size_t span = cap + HUGE;
	unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *a;

	if (m == MAP_FAILED)
		return NULL;
	a = (unsigned char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	if (m + span > a + cap)
		munmap(a + cap, (size_t)(m + span - (a + cap)));
	madvise(a, cap, MADV_HUGEPAGE);
	return a;
}

/*
 * Move len bytes (a multiple of HUGE) of pages from src to dst (a range
 * of a mapping of ours): in one call when src is one kernel mapping, else
 * huge page by huge page.  A page that will not move is copied if copy,
 * else the move stops there with -1.
 */
static int move_pages(unsigned char *src, unsigned char *dst, size_t len,
		      int copy)
{
	if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED)
		return 0;
	for (size_t off = 0; off < len; off += HUGE) {
		if (mremap(src + off, HUGE, HUGE, MREMAP_MAYMOVE | MREMAP_FIXED,
			   dst + off) != MAP_FAILED)
			continue;
		if (!copy)
			return -1;
		memcpy(dst + off, src + off, HUGE);
	}
	return 0;
}

void *mv_big_malloc(size_t n)
{
	void *p;

	if (n < MV_BIG_MALLOC_MIN)
		return malloc(n);
	/*
	 * Whole huge pages: a 1.6 MiB batch would otherwise be 400 faults of
	 * 4 KiB, dearer than zeroing the 2 MiB page it rounds up to.
	 */
	n = huge_up(n);
	if (posix_memalign(&p, HUGE, n))
		return NULL;
	madvise(p, n, MADV_HUGEPAGE);
	return p;
}

int mv_big_reserve(struct mv_big *b, size_t need)
{
	size_t cap;
	unsigned char *p;

	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return MV_EINTERNAL;
		cap *= 2;
	}
	if (cap < MV_BIG_MIN) {
		/* Small: plain pages, grown in place or moved whole. */
		p = b->p ? mremap(b->p, b->cap, cap, MREMAP_MAYMOVE) :
			   mmap(NULL, cap, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return MV_EINTERNAL;
	} else {
		if (!(p = map_aligned(cap)))
			return MV_EINTERNAL;
		if (b->p && b->cap >= MV_BIG_MIN) {
			move_pages(b->p, p, b->cap, 1);
		} else if (b->p) {
			/* From small pages to huge ones: a copy, under 4 MiB. */
			memcpy(p, b->p, b->touched);
		}
		if (b->p)
			munmap(b->p, b->cap);
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Fault in [from, to) with one call instead of a fault per page. */
static void populate(unsigned char *p, size_t from, size_t to)
{
	from &= ~(size_t)4095;
	if (to > from)
		madvise(p + from, to - from, MADV_POPULATE_WRITE);
}

void mv_big_touch(struct mv_big *b, size_t end)
{
	size_t from, to;

	if (end > b->cap)
		end = b->cap;
	if (end <= b->touched)
		return;
	if (b->cap < MV_BIG_MIN) {
		populate(b->p, b->touched, end);
		b->touched = end;
		return;
	}
	/* The huge page under way, then whole ones from the pool. */
	from = huge_up(b->touched);
	populate(b->p, b->touched, from < end ? from : end);
	to = huge_up(end);
	pthread_mutex_lock(&pool_lock);
	while (from < to && npool) {
		struct spare *s = &pool[npool - 1];
		size_t n = s->len < to - from ? s->len : to - from;

		if (move_pages(s->p, b->p + from, n, 0) < 0) {
			/* Not movable after all: give it back, use fresh. */
			munmap(s->p, s->len);
			pooled -= s->len;
			npool--;
			break;
		}
		s->p += n;
		s->len -= n;
		pooled -= n;
		from += n;
		if (!s->len)
			npool--;
	}
	pthread_mutex_unlock(&pool_lock);
	populate(b->p, from, end);
	b->touched = from > end ? from : end;
}

void mv_big_free(struct mv_big *b, size_t used, int keep)
{
	size_t n = huge_up(used);

	if (!b->p)
		return;
	if (n > b->cap)
		n = b->cap;
	if (keep && b->cap >= MV_BIG_MIN && n) {
		pthread_mutex_lock(&pool_lock);
		if (pooled + n <= pool_limit) {
			if (npool == POOL_MAX) {
				munmap(pool[0].p, pool[0].len);
				pooled -= pool[0].len;
				memmove(pool, pool + 1, --npool * sizeof(*pool));
			}
			pool[npool++] = (struct spare){ b->p, n, time(NULL) };
			pooled += n;
			if (b->cap > n)
				munmap(b->p + n, b->cap - n);
			n = 0;	/* kept */
		}
		pthread_mutex_unlock(&pool_lock);
		if (!n) {
			memset(b, 0, sizeof(*b));
			return;
		}
	}
	munmap(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

void mv_big_trim(int max_age_s)
{
	time_t now = time(NULL);
	int i, j;

	pthread_mutex_lock(&pool_lock);
	for (i = j = 0; i < npool; i++) {
		if (max_age_s > 0 && now - pool[i].at < max_age_s) {
			pool[j++] = pool[i];
			continue;
		}
		munmap(pool[i].p, pool[i].len);
		pooled -= pool[i].len;
	}
	npool = j;
	pthread_mutex_unlock(&pool_lock);
}

void mv_big_pool_limit(size_t bytes)
{
	pthread_mutex_lock(&pool_lock);
	pool_limit = bytes;
	pthread_mutex_unlock(&pool_lock);
	mv_big_trim(0);
}

size_t mv_big_pooled(void)
{
	size_t n;

	pthread_mutex_lock(&pool_lock);
	n = pooled;
	pthread_mutex_unlock(&pool_lock);
	return n;
}

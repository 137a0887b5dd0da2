/*
 * bigmem.h - large growable buffers in their own anonymous mappings, on
 * huge pages, with a pool of recently freed memory.
 *
 * Touching fresh memory is the dearest part of taking in a large insert
 * on some machines: a page fault per 4 KiB, and on a VM that hands free
 * memory back to its host (free page reporting) a trip to the host for
 * every page touched again.  Buffers of MV_BIG_MIN bytes or more are
 * therefore 2 MiB-aligned and advised for transparent huge pages, and
 * memory freed with mv_big_free is kept for a while (at most the pool's
 * limit, for at most its age) and moved into the next buffer that grows,
 * page tables and all (mremap), instead of being faulted in afresh.  This
 * is what malloc implementations call retained memory; mv_big_trim
 * returns what has aged.
 *
 * Buffers are filled front to back: mv_big_touch(b, end) makes the bytes
 * before end resident, from the pool where it can.  Thread-safe.
 */
#ifndef MV_BIGMEM_H
#define MV_BIGMEM_H

#include <stddef.h>

#define MV_BIG_MIN (4u << 20)	/* smaller buffers use small pages */

struct mv_big {
	unsigned char *p;	/* NULL when empty */
	size_t cap;		/* bytes mapped */
	size_t touched;		/* bytes known resident, from the start */
};

#define MV_BIG_MALLOC_MIN (256u << 10)	/* mv_big_malloc's huge pages */

/*
 * malloc for a tool's large buffers: from MV_BIG_MALLOC_MIN bytes on,
 * rounded up to whole huge pages, aligned to and advised for them, so
 * that it costs a fault per 2 MiB, not per 4 KiB (free and realloc as
 * usual).
 */
void *mv_big_malloc(size_t n);
/* Grow b to hold at least need bytes (contents kept): 0 or MV_EINTERNAL. */
int mv_big_reserve(struct mv_big *b, size_t need);
/* Make [0, end) resident (end <= b->cap), from the pool where it can. */
void mv_big_touch(struct mv_big *b, size_t end);
/*
 * Release b: its first used bytes (rounded up to huge pages) go to the
 * pool if keep and the pool has room, the rest to the system.
 */
void mv_big_free(struct mv_big *b, size_t used, int keep);
/* Return pooled memory older than max_age_s seconds (0: all). */
void mv_big_trim(int max_age_s);
/* Set the pool's limit in bytes (default 0: no pool). */
void mv_big_pool_limit(size_t bytes);
/* Bytes in the pool now. */
size_t mv_big_pooled(void);

#endif

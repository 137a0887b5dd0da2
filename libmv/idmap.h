/*
 * idmap.h - a hash map from int64 ids to (segment, row), open addressing
 * with linear probing and backward-shift deletion: no tombstones, no
 * per-entry allocation.  Not thread-safe; the owner locks.
 */
#ifndef MV_IDMAP_H
#define MV_IDMAP_H

#include "mv.h"

#define MV_ID_NONE INT64_MIN	/* reserved: never a user id */

struct mv_idmap_ent {
	int64_t id;
	void *seg;
	uint64_t row;
};

struct mv_idmap {
	struct mv_idmap_ent *t;
	size_t cap, n;		/* cap is a power of two or 0 */
};

void mv_idmap_init(struct mv_idmap *m);
void mv_idmap_release(struct mv_idmap *m);
/* Make room for n more entries; 0 or MV_EINTERNAL. */
int mv_idmap_reserve(struct mv_idmap *m, size_t more);
/* Insert or replace; 0 or MV_EINTERNAL (out of memory). */
int mv_idmap_put(struct mv_idmap *m, int64_t id, void *seg, uint64_t row);
/*
 * Insert or replace ids[0..n) as rows row0.. of seg, faster than n puts
 * (the table is prefetched ahead); 0 or MV_EINTERNAL.
 */
int mv_idmap_put_rows(struct mv_idmap *m, const int64_t *ids, size_t n,
		      void *seg, uint64_t row0);
/* The entry for id, or NULL; valid until the next change. */
struct mv_idmap_ent *mv_idmap_get(const struct mv_idmap *m, int64_t id);
/* 1 if removed, 0 if absent. */
int mv_idmap_del(struct mv_idmap *m, int64_t id);

#endif

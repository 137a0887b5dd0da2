/*
 * idmap.c - see idmap.h.  Load factor at most 2/3; the hash is splitmix64's
 * finaliser, so consecutive ids spread evenly.
 */
#include <stdlib.h>
#include "idmap.h"

/*
 * The slots for n entries: at most 2/3 full.  At most 1/2 cost twice the
 * memory for most sizes (glove-100's 331,479 ids: 2^20 slots of 24 bytes,
 * 24 MiB, against 2^19, 12 MiB) for fewer probes; bench/idmap.c measures
 * both in one run (docs/BENCHMARKS.md, "Memory and restart").
 */
#ifndef MV_IDMAP_SLOTS
#define MV_IDMAP_SLOTS(n) ((n) + (n) / 2)
#endif

static inline size_t hash(int64_t id)
{
	uint64_t x = (uint64_t)id;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (size_t)x;
}

void mv_idmap_init(struct mv_idmap *m)
{
	m->t = NULL;
	m->cap = m->n = 0;
}

void mv_idmap_release(struct mv_idmap *m)
{
	free(m->t);
	mv_idmap_init(m);
}

static int rehash(struct mv_idmap *m, size_t cap)
{
	struct mv_idmap_ent *old = m->t, *t;
	size_t oldcap = m->cap;

	t = malloc(cap * sizeof(*t));
	if (!t)
		return MV_EINTERNAL;
	for (size_t i = 0; i < cap; i++)
		t[i].id = MV_ID_NONE;
	m->t = t;
	m->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].id == MV_ID_NONE)
			continue;
		size_t j = hash(old[i].id) & (cap - 1);
		while (t[j].id != MV_ID_NONE)
			j = (j + 1) & (cap - 1);
		t[j] = old[i];
	}
	free(old);
	return 0;
}

int mv_idmap_reserve(struct mv_idmap *m, size_t more)
{
	size_t need = MV_IDMAP_SLOTS(m->n + more), cap = m->cap ? m->cap : 16;

	while (cap < need)
		cap *= 2;
	return cap == m->cap ? 0 : rehash(m, cap);
}

/* Insert or replace, room made. */
static inline void put(struct mv_idmap *m, int64_t id, void *seg,
		       uint64_t row)
{
	size_t j = hash(id) & (m->cap - 1);

	while (m->t[j].id != MV_ID_NONE && m->t[j].id != id)
		j = (j + 1) & (m->cap - 1);
	if (m->t[j].id == MV_ID_NONE)
		m->n++;
	m->t[j].id = id;
	m->t[j].seg = seg;
	m->t[j].row = row;
}

/*
 * n rows of one segment: the slot of the row PREFETCH ahead is fetched
 * while this one goes in, so that a large segment costs memory bandwidth
 * rather than a cache miss per id.
 */
#define PREFETCH 16
int mv_idmap_put_rows(struct mv_idmap *m, const int64_t *ids, size_t n,
		      void *seg, uint64_t row0)
{
	if (mv_idmap_reserve(m, n) < 0)
		return MV_EINTERNAL;
	for (size_t i = 0; i < n; i++) {
		if (i + PREFETCH < n)
			__builtin_prefetch(&m->t[hash(ids[i + PREFETCH]) &
						 (m->cap - 1)], 1);
		put(m, ids[i], seg, row0 + i);
	}
	return 0;
}

int mv_idmap_put(struct mv_idmap *m, int64_t id, void *seg, uint64_t row)
{
	if (mv_idmap_reserve(m, 1) < 0)
		return MV_EINTERNAL;
	put(m, id, seg, row);
	return 0;
}

struct mv_idmap_ent *mv_idmap_get(const struct mv_idmap *m, int64_t id)
{
	size_t j;

	if (!m->cap)
		return NULL;
	j = hash(id) & (m->cap - 1);
	while (m->t[j].id != MV_ID_NONE) {
		if (m->t[j].id == id)
			return &m->t[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

int mv_idmap_del(struct mv_idmap *m, int64_t id)
{
	struct mv_idmap_ent *e = mv_idmap_get(m, id);
	size_t i, j, mask = m->cap - 1;

	if (!e)
		return 0;
	i = (size_t)(e - m->t);
	/* Backward shift: pull later entries of the cluster into the hole. */
	for (j = (i + 1) & mask; m->t[j].id != MV_ID_NONE; j = (j + 1) & mask) {
		size_t h = hash(m->t[j].id) & mask;
		/* Move j to i if its home h is not cyclically in (i, j]. */
		if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
			m->t[i] = m->t[j];
			i = j;
		}
	}
	m->t[i].id = MV_ID_NONE;
	m->n--;
	return 1;
}

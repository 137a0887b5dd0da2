/*
 * state.h - the record /<user>/<coll>/state of the metadata: the next id
 * that may be assigned and the next flush sequence.  Writers never hand
 * out the same id or sequence twice because every change of the record is
 * a compare-and-swap on its current value: ids are reserved in blocks
 * (mv_state_reserve), a flush takes its sequence in its own transaction
 * with a compare on the record.
 */
#ifndef MV_STATE_H
#define MV_STATE_H

#include "meta.h"

/* One past the largest int64: no assignable id is left. */
#define MV_STATE_ID_TOP ((__int128)INT64_MAX + 1)

struct mv_state {
	__int128 next_id;	/* ids below it may be taken; TOP: none left */
	uint64_t next_seq;	/* the next flush's sequence */
};

/*
 * Parse a record: {"next_id":N,"next_seq":S}, with "ids_full":true when
 * next_id is 2^63 (JSON has no room for it).  0 or MV_EDATA.
 */
int mv_state_parse(const void *val, size_t len, struct mv_state *st,
		   struct mv_err *err);
/* The record of st into out (80 bytes are enough). */
void mv_state_format(const struct mv_state *st, char *out, size_t cap);

/*
 * Read key: *cur (malloc'ed, replacing the old one) and st.  0, or
 * MV_ESERVER when the key is gone (the collection was dropped), or MV_E*.
 */
int mv_state_load(struct mv_meta *m, const char *key, char **cur,
		  struct mv_state *st, struct mv_err *err);

/*
 * Reserve want ids at or above from, consecutive: compare key with *cur
 * (the record as last seen), put the record with next_id moved past them;
 * when another writer changed it meanwhile, reload and try again from its
 * next_id.  On success *base and *end bound the ids reserved (end - base
 * is want, or less at 2^63: the caller checks it has enough) and *cur is
 * the new record.  *conflicts, if not NULL, counts the compares that
 * failed.  0 or MV_E*.
 */
int mv_state_reserve(struct mv_meta *m, const char *key, char **cur,
		     __int128 from, uint64_t want, __int128 *base,
		     __int128 *end, int *conflicts, struct mv_err *err);

#endif

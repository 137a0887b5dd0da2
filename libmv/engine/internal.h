/*
 * internal.h - what the engine's files (libmv/engine/) share and nothing
 * outside them calls: key builders, JSON makers, constructors.  The
 * public API, with the structures and the locking contract, is engine.h.
 */
#ifndef MV_ENGINE_INTERNAL_H
#define MV_ENGINE_INTERNAL_H

#include "engine.h"

/* catalog.c: the metadata keys and values. */
/* "/<user>/<coll>/<leaf>", the key of one of a collection's records. */
void key_coll(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf);
/* The JSON of a collection's schema record. */
char *schema_json(const struct coll *c);
/* The JSON of /user_list with user added, or NULL if it is there. */
char *user_list_with(struct node *nd, const char *user);

/* coll.c: a new collection in memory, one reference held. */
struct coll *coll_new(const char *user, const char *name, uint32_t dim,
		      enum mv_metric metric, const struct mv_field *f, int nf);

/* coll.c: past the largest of n ids given at insert or found at load. */
void bump_next_id(struct coll *c, const int64_t *ids, size_t n);

#endif

/*
 * internal.h - what the engine's files (libmv/engine/) share and nothing
 * outside them calls: key builders, JSON makers, constructors.  The
 * public API, with the structures and the locking contract, is engine.h.
 */
#ifndef MV_ENGINE_INTERNAL_H
#define MV_ENGINE_INTERNAL_H

#include "engine.h"

/*
 * catalog.c: the metadata keys and values.  The keys, all built here:
 *   /user_list                     JSON array of the users
 *   /<user>/collection_list        JSON array of the user's collections
 *   /<user>/config/<cluster_id>    the cluster's configuration
 *   /<user>/<coll>/schema          a collection's schema
 *   /<user>/<coll>/state           its ids and sequence (state.h)
 *   /<user>/<coll>/data/<file>     one per segment, deletion log, index
 */
#define KEY_USER_LIST "/user_list"
/* "/<user>/<coll>/<leaf>", the key of one of a collection's records. */
void key_coll(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf);
/* "/<user>/<coll>/data/<leaf>", the record of one of its files. */
void key_data(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf);
/* "/<user>/<leaf>": leaf "collection_list", or "" for the prefix. */
void key_user(char *out, size_t cap, const char *user, const char *leaf);
/* "/<user>/config/<cluster_id>". */
void key_config(char *out, size_t cap, const char *user,
		const char *cluster_id);
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

/*
 * rank.h - rendezvous hashing: the nodes ranked for a key.  Every node
 * and the master compute the same ranking from the key and the node
 * numbers alone, so nothing need be stored or agreed: a unit's holders
 * (engine/place.c) and the node a collection's index commands go to
 * through the master (mv-masterd) are the highest-ranked live nodes.
 * When a node leaves, only the keys it ranked first move, each to the
 * next node in its own order.
 */
#ifndef MV_RANK_H
#define MV_RANK_H

#include <stdint.h>

/* Node no's rank for key: higher ranks first (FNV-1a, splitmix64). */
uint64_t mv_rank_hash(const char *key, uint32_t no);

#endif

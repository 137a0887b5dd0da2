/*
 * rank.c - see rank.h.  The values are part of the cluster's contract:
 * nodes of two versions must rank alike (tests/unit/test_place.c pins
 * two of them).
 */
#include "rank.h"

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t mv_rank_hash(const char *key, uint32_t no)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return mix64(h ^ mix64(no));
}

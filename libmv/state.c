/*
 * state.c - the /<user>/<coll>/state record and its compare-and-swap
 * reservations (state.h).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "state.h"

int mv_state_parse(const void *val, size_t len, struct mv_state *st,
		   struct mv_err *err)
{
	json_t *j = json_loadb(val, len, 0, NULL), *id, *seq;
	int rc = 0;

	id = json_object_get(j, "next_id");
	seq = json_object_get(j, "next_seq");
	if (!json_is_integer(id) || !json_is_integer(seq) ||
	    json_integer_value(seq) < 0) {
		rc = mv_err_set(err, MV_EDATA, "bad state record '%.*s'",
				(int)(len < 80 ? len : 80), (const char *)val);
	} else {
		st->next_id = json_is_true(json_object_get(j, "ids_full")) ?
			MV_STATE_ID_TOP : (__int128)json_integer_value(id);
		st->next_seq = (uint64_t)json_integer_value(seq);
	}
	json_decref(j);
	return rc;
}

void mv_state_format(const struct mv_state *st, char *out, size_t cap)
{
	int full = st->next_id >= MV_STATE_ID_TOP;

	snprintf(out, cap, "{\"next_id\":%" PRId64 "%s,\"next_seq\":%" PRIu64
		 "}", full ? INT64_MAX : (int64_t)st->next_id,
		 full ? ",\"ids_full\":true" : "", st->next_seq);
}

int mv_state_load(struct mv_meta *m, const char *key, char **cur,
		  struct mv_state *st, struct mv_err *err)
{
	char *val = NULL;
	size_t vlen;
	int rc = mv_meta_get(m, key, &val, &vlen, err);

	if (rc > 0)
		return mv_err_set(err, MV_ESERVER, "'%s' is gone: the "
				  "collection was dropped", key);
	if (rc < 0)
		return rc;
	rc = mv_state_parse(val, vlen, st, err);
	if (rc < 0) {
		free(val);
		return rc;
	}
	free(*cur);
	*cur = val;
	return 0;
}

int mv_state_reserve(struct mv_meta *m, const char *key, char **cur,
		     __int128 from, uint64_t want, __int128 *base,
		     __int128 *end, int *conflicts, struct mv_err *err)
{
	struct mv_state st;
	char val[96];
	int rc;

	if (!*cur && (rc = mv_state_load(m, key, cur, &st, err)) < 0)
		return rc;
	for (int tries = 0; tries < 1000; tries++) {
		struct mv_meta_cmp cmp = { key, *cur, strlen(*cur) };
		struct mv_meta_op op;
		char *nv;

		if ((rc = mv_state_parse(*cur, strlen(*cur), &st, err)) < 0)
			return rc;
		*base = st.next_id > from ? st.next_id : from;
		*end = *base + (__int128)want;
		if (*end > MV_STATE_ID_TOP)
			*end = MV_STATE_ID_TOP;
		if (*base > *end)
			*base = *end;
		st.next_id = *end;
		mv_state_format(&st, val, sizeof(val));
		op = (struct mv_meta_op){ MV_META_PUT, key, val, strlen(val) };
		rc = mv_meta_txn(m, &cmp, 1, &op, 1, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (!(nv = strdup(val)))
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			free(*cur);
			*cur = nv;
			return 0;
		}
		/* Another writer changed the record: start from its value. */
		mv_err_clear(err);
		if (conflicts)
			(*conflicts)++;
		if ((rc = mv_state_load(m, key, cur, &st, err)) < 0)
			return rc;
	}
	return mv_err_set(err, MV_EAGAIN, "'%s' keeps changing: too many "
			  "conflicting writers", key);
}

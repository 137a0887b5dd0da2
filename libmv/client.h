/*
 * client.h - blocking client of the mv line protocol (docs/PROTOCOL.md).
 *
 * The only way tools reach a daemon.  One struct mv_client is one
 * connection; it is not thread-safe.  Every call returns 0 or a negative
 * MV_E* code and fills err: MV_EUNAVAIL when the node does not answer,
 * MV_EPROTO for a malformed reply, and for an ERR reply the code of the
 * table in PROTOCOL.md (MV_ESERVER, MV_EDATA, MV_EAGAIN, ...) with the
 * server's message.
 */
#ifndef MV_CLIENT_H
#define MV_CLIENT_H

#include "mv.h"

struct mv_client;

/*
 * Connect to addr ("unix:PATH", "HOST:PORT", "[V6]:PORT", or a bare path);
 * NULL means mv_default_addr().  Returns NULL and sets err (MV_EUNAVAIL or
 * MV_EUSAGE for a bad address) on failure.  Free with mv_client_free().
 * Waiting for the answer to a small request (a search of up to 16
 * queries, a text verb), the client polls the socket for up to 1 ms before
 * it sleeps ($MV_BUSY_POLL_US microseconds instead; 0: never).
 */
struct mv_client *mv_client_connect(const char *addr, struct mv_err *err);
void mv_client_free(struct mv_client *c);
const char *mv_client_addr(const struct mv_client *c);

/*
 * 1 when the last request sent went out whole but no reply line came back
 * (the call failed with MV_EUNAVAIL): the node may have carried it out,
 * a FLUSH or COMMIT may be durable.  0 when it was answered or never sent
 * whole.
 */
int mv_client_in_doubt(const struct mv_client *c);

/*
 * The MV_E* code of an error word of the protocol (`ERR <WORD> ...`,
 * INDEXSTATUS's code=): MV_EAGAIN for IO, BUSY and SHUTDOWN (try again
 * later), MV_ESERVER for a word it does not know.
 */
int mv_client_code(const char *word, size_t len);

/*
 * Send one text request line (no newline) and read a one-line reply.  On OK
 * the rest of the line after "OK" (maybe empty) is copied to reply.
 */
int mv_client_cmd(struct mv_client *c, const char *line, char *reply,
		  size_t cap, struct mv_err *err);

/*
 * Send a text request whose reply is lines ended by END; fn is called with
 * each line (NUL-terminated, no newline).  A non-zero return from fn stops
 * the calls (the rest is still read) and is returned.
 */
int mv_client_lines(struct mv_client *c, const char *line,
		    int (*fn)(void *arg, char *line), void *arg,
		    struct mv_err *err);

/* Get "key=value" from an OK reply's text into out; 0 or -1 if absent. */
int mv_reply_get(const char *reply, const char *key, char *out, size_t cap);
int mv_reply_get_i64(const char *reply, const char *key, int64_t *out);

struct mv_coll_info {
	char name[MV_NAME_MAX + 1];
	uint32_t dim;
	enum mv_metric metric;
	int64_t rows;
	int64_t segments;
	char index[256];		/* "-" when none */
	int nfields;
	struct mv_field fields[MV_FIELDS_MAX];
};

/* DESCRIBE. MV_ESERVER "unknown collection 'x'" if it does not exist. */
int mv_client_describe(struct mv_client *c, const char *name,
		       struct mv_coll_info *info, struct mv_err *err);

/*
 * INSERT n rows.  ids may be NULL (assigned by the node; *first_id then
 * receives the first one, the rest follow consecutively; INT64_MIN, never
 * an id, when the reply does not say).  fields, when not
 * NULL, is the encoded column block of PROTOCOL.md (fields_len bytes).
 */
#define MV_INSERT_UPSERT 1
int mv_client_insert(struct mv_client *c, const char *name, size_t n,
		     uint32_t dim, const int64_t *ids, const float *vecs,
		     const void *fields, size_t fields_len, int flags,
		     int64_t *first_id, struct mv_err *err);

/*
 * The two halves of mv_client_insert, for pipelining: replies come in
 * request order, so a tool may send the next INSERT before reading the
 * previous reply (the data may be reused once send returns).
 */
int mv_client_insert_send(struct mv_client *c, const char *name, size_t n,
			  uint32_t dim, const int64_t *ids, const float *vecs,
			  const void *fields, size_t fields_len, int flags,
			  struct mv_err *err);
int mv_client_insert_recv(struct mv_client *c, int64_t *first_id,
			  struct mv_err *err);

int mv_client_delete(struct mv_client *c, const char *name, size_t n,
		     const int64_t *ids, struct mv_err *err);

/* FLUSH (or COMMIT session when session is not NULL). */
int mv_client_flush(struct mv_client *c, const char *session,
		    int64_t *inserted, int64_t *deleted, struct mv_err *err);

/* SESSION name: bind this connection to a named session. */
int mv_client_session(struct mv_client *c, const char *session,
		      struct mv_err *err);
/*
 * HANDOFF: the input is complete; move this connection's pending work
 * into its session (until then a disconnect discards it).
 */
int mv_client_handoff(struct mv_client *c, struct mv_err *err);

/*
 * SEARCH.  ids and dist are caller-allocated nq*k arrays; ids past the last
 * hit are -1.  params is NULL or "nprobe=8 ef=64 fields=a,b".  When fields
 * are asked for, *text receives a malloc'ed block of one line per hit
 * (caller frees), else it is left NULL (text may be NULL if not wanted).
 */
int mv_client_search(struct mv_client *c, const char *name, uint32_t dim,
		     size_t k, size_t nq, const float *queries,
		     const char *params, int64_t *ids, float *dist,
		     char **text, size_t *text_len, struct mv_err *err);

/* The two halves of mv_client_search, for pipelining (replies in order). */
int mv_client_search_send(struct mv_client *c, const char *name,
			  uint32_t dim, size_t k, size_t nq,
			  const float *queries, const char *params,
			  struct mv_err *err);
int mv_client_search_recv(struct mv_client *c, size_t k, size_t nq,
			  int64_t *ids, float *dist, char **text,
			  size_t *text_len, struct mv_err *err);

/*
 * GET or SCAN result: n rows, ids[n], vecs[n*dim], text (one line per row
 * with the field values, or NULL).  All in one malloc'ed block owned by the
 * struct: release with mv_rows_release().  A reply with more rows than
 * asked for (n ids, limit), a size that does not fit them, or (SCAN) ids
 * that do not increase past after is MV_EPROTO.
 */
struct mv_rows {
	size_t n;
	int64_t *ids;
	float *vecs;
	char *text;
	size_t text_len;
	void *block;
};
void mv_rows_release(struct mv_rows *r);

int mv_client_get(struct mv_client *c, const char *name, uint32_t dim,
		  size_t n, const int64_t *ids, int want_fields,
		  struct mv_rows *out, struct mv_err *err);
int mv_client_scan(struct mv_client *c, const char *name, uint32_t dim,
		   int64_t after, size_t limit, int want_fields,
		   struct mv_rows *out, struct mv_err *err);

/*
 * --filter (DESIGN.md "Filters"): the same with a filter expression
 * (NULL: none), sent percent-encoded as filter=<expr>: GET returns only
 * the rows that match, SCAN pages through the matching rows.  A bad
 * expression is MV_EUSAGE "filter: col N: ...".
 */
int mv_client_get_filter(struct mv_client *c, const char *name, uint32_t dim,
			 size_t n, const int64_t *ids, int want_fields,
			 const char *filter, struct mv_rows *out,
			 struct mv_err *err);
int mv_client_scan_filter(struct mv_client *c, const char *name,
			  uint32_t dim, int64_t after, size_t limit,
			  int want_fields, const char *filter,
			  struct mv_rows *out, struct mv_err *err);
/*
 * --as-of (DESIGN.md "The time axis"): the same as the collection stood
 * right after flush asof (0: now), sent as asof=<flush>.
 */
int mv_client_get_at(struct mv_client *c, const char *name, uint32_t dim,
		     size_t n, const int64_t *ids, int want_fields,
		     const char *filter, uint64_t asof, struct mv_rows *out,
		     struct mv_err *err);
int mv_client_scan_at(struct mv_client *c, const char *name, uint32_t dim,
		      int64_t after, size_t limit, int want_fields,
		      const char *filter, uint64_t asof, struct mv_rows *out,
		      struct mv_err *err);
/*
 * --as-of FLUSH|TIME: parse spec (a flush number; "@" and Unix seconds;
 * or ISO 8601, "2026-12-02T03:04:05Z", fractions and a +hh:mm offset
 * allowed, UTC without one) into *flush or *ms (the other 0): 0, or
 * MV_EUSAGE "--as-of: ...".
 */
int mv_asof_parse(const char *spec, uint64_t *flush, int64_t *ms,
		  struct mv_err *err);
/*
 * The flush an --as-of spec names on collection name: a number as it
 * is (the node checks it), a time the last retained flush at or before
 * it (HISTORY): 0 and *flush, MV_EUSAGE for bad syntax, MV_ESERVER
 * saying how far back the history goes when none is.
 */
int mv_asof_resolve(struct mv_client *c, const char *name, const char *spec,
		    uint64_t *flush, struct mv_err *err);

/* DELETE by expression: *n the rows it matched, now pending deletes. */
int mv_client_delete_filter(struct mv_client *c, const char *name,
			    const char *filter, int64_t *n, struct mv_err *err);
/*
 * Parse expr against info's fields as the node will, to fail before
 * sending anything: 0, or MV_EUSAGE "--filter: col N: ...".
 */
int mv_filter_check(const struct mv_coll_info *info, const char *expr,
		    struct mv_err *err);
/* "filter=<expr percent-encoded>" for a SEARCH's params (malloc'ed). */
char *mv_filter_param(const char *expr, struct mv_err *err);

#endif

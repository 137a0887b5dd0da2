/*
 * conn.h - what the protocol's files (conn.c and the verbs_*.c) share: a
 * connection, reading its payloads, replying, and the verbs' handlers.
 */
#ifndef MV_CONN_H
#define MV_CONN_H

#include "engine/engine.h"

#define LINE_MAX_LEN (64 * 1024)
#define PAYLOAD_MAX ((size_t)1 << 30)
#define MAX_ARGS 80
#define READ_PIECE ((size_t)4 << 20)	/* memory taken per payload read */
#define RBUF_MIN 4096			/* an idle connection's line buffer */

#define VIA_MAX 8		/* nodes a connection is relayed through */

struct conn {
	int fd;
	char peer[64];
	struct node *nd;
	struct batch *own;		/* this connection's batch */
	char sess[MV_NAME_MAX + 1];	/* bound named session, or "" */
	char user[MV_NAME_MAX + 1];	/* namespace of the names it uses */
	size_t rpos, rlen, rcap;
	char *rbuf;			/* rcap + 1 bytes: grows to a long line */
	struct nbuf out;
	int quit;
	/* Reduce: the nodes that relayed this connection here (VIA), a
	 * comma-separated list, and how many. */
	char via[VIA_MAX * 257];
	int nvia;
};

typedef int (*handler_fn)(struct conn *cn, int argc, char **argv);

/* conn.c: payloads (0, or -1 if the client went away) and replies. */
/* Read exactly len payload bytes into dst. */
int read_payload(struct conn *cn, void *dst, size_t len);
/* Throw a payload away (after a refusal), keeping the stream in step. */
int skip_payload(struct conn *cn, size_t len);
/*
 * Append len payload bytes to nb, taking memory as they arrive, a piece at
 * a time; -2 out of memory (the stream is then out of step: close).
 */
int read_into(struct conn *cn, struct pcoll *pc, struct nbuf *nb,
	      size_t len);
int send_raw(struct conn *cn, const void *p, size_t len);
/* One reply line; the newline is added. */
int reply(struct conn *cn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The reply code of an error: its kind, else what its code means. */
const char *code_name(const struct mv_err *e);
int reply_err(struct conn *cn, const struct mv_err *e);
int proto_err(struct conn *cn, const char *msg);
int parse_u64(const char *s, uint64_t max, uint64_t *out);
int unknown_coll(struct conn *cn, const char *name);
/*
 * Cluster mode: wait until this node has applied every commit made before
 * the request (node_visible), so that it sees every flush, build and merge
 * that returned before, through any node; else answer the error (after
 * skipping the request's payload of that many bytes) into *rc and return
 * -1.
 */
int visible(struct conn *cn, uint64_t payload, int *rc);
struct coll *id_payload_coll(struct conn *cn, const char *name, uint64_t n,
			     uint64_t bytes, int *rc);
/* The batch this connection's requests go to (its own). */
struct batch *cur_batch(struct conn *cn);
/* Tell a client once that an automatic flush of its data failed. */
int check_autoflush(struct conn *cn);
/* Count bytes about to arrive against max_pending; refuse them. */
int pending_take(struct conn *cn, size_t bytes);
int pending_refuse(struct conn *cn, size_t bytes);
void batch_clear_locked(struct batch *b);
/*
 * relay.c: an INSERT past memory_limit (its payload not read yet):
 * refused with ERR BUSY, or in a cluster relayed with the rest of the
 * connection to a node with room (then -1: the connection ends with it).
 */
int reduce_insert(struct conn *cn, const char *name, uint64_t n,
		  const char *flags, uint64_t bytes);
/* VIA <addr>[,<addr>]...: the nodes that relayed this connection. */
int cmd_via(struct conn *cn, int argc, char **argv);

/*
 * verbs_read.c: the filter of a request's filter=<value> (value
 * percent-encoded, decoded in place) parsed against c's schema; NULL
 * once the refusal is sent (*rc the handler's return).
 */
struct mv_filter;
struct mv_filter *req_filter(struct conn *cn, struct coll *c, char *val,
			     int *rc);

/* The verbs (docs/PROTOCOL.md), one handler each. */
/* verbs_admin.c */
int cmd_hello(struct conn *cn, int argc, char **argv);
int cmd_ping(struct conn *cn, int argc, char **argv);
int cmd_quit(struct conn *cn, int argc, char **argv);
int cmd_user(struct conn *cn, int argc, char **argv);
int cmd_create(struct conn *cn, int argc, char **argv);
int cmd_drop(struct conn *cn, int argc, char **argv);
int cmd_index(struct conn *cn, int argc, char **argv);
int cmd_indexstatus(struct conn *cn, int argc, char **argv);
int cmd_indexdrop(struct conn *cn, int argc, char **argv);
int cmd_indexset(struct conn *cn, int argc, char **argv);
int cmd_compact(struct conn *cn, int argc, char **argv);
int cmd_stat(struct conn *cn, int argc, char **argv);
int cmd_load(struct conn *cn, int argc, char **argv);
/* verbs_write.c */
int cmd_insert(struct conn *cn, int argc, char **argv);
int cmd_delete(struct conn *cn, int argc, char **argv);
int cmd_flush(struct conn *cn, int argc, char **argv);
int cmd_session(struct conn *cn, int argc, char **argv);
int cmd_handoff(struct conn *cn, int argc, char **argv);
int cmd_commit(struct conn *cn, int argc, char **argv);
int cmd_abort(struct conn *cn, int argc, char **argv);
int cmd_sessions(struct conn *cn, int argc, char **argv);
/* verbs_read.c */
int cmd_describe(struct conn *cn, int argc, char **argv);
int cmd_ls(struct conn *cn, int argc, char **argv);
int cmd_history(struct conn *cn, int argc, char **argv);
int cmd_search(struct conn *cn, int argc, char **argv);
int cmd_get(struct conn *cn, int argc, char **argv);
int cmd_scan(struct conn *cn, int argc, char **argv);

#endif

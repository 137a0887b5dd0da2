/*
 * relay.c - memory_limit on INSERT and the design's Reduce mode.
 *
 * An INSERT whose payload would take the node past memory_limit (its
 * loaded segments and indexes plus every pending byte: node_memory) is
 * refused with ERR BUSY on an embedded node.  A node in a cluster asks
 * for the other nodes' memory and limits instead (the master's
 * `NODES limits`, or without a master the live keys in etcd and `LOAD`
 * of each), picks the live node under its limit with the most room, and
 * from then on relays the connection to it: the INSERT that crossed the
 * limit and every byte after it, both ways, copied through without
 * parsing, until either side closes.  The client then talks to the other
 * node as if it had connected there (docs/ARCHITECTURE.md, "Reduce").
 *
 * The connection's unflushed rows are not moved: with any pending on
 * this node (in its own batch, or in the named session it is bound to)
 * the crossing INSERT is refused with ERR BUSY, so that the client's
 * batch commits whole or not at all, on one node.
 *
 * A relayed connection may pass another node's limit in turn (a later
 * INSERT, or a race between the room LOAD showed and the INSERT): it is
 * then relayed again, but never to a node it came through, whose
 * addresses the relaying node sends first (VIA), and through at most
 * VIA_MAX nodes, so relays neither loop nor chain without end.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "client.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#define RELAY_BUF ((size_t)1 << 20)	/* bytes copied at a time */
#define PEERS_MAX 64			/* nodes considered */

/* A candidate: a live node other than this one, with its figures. */
struct peer {
	char addr[256];
	int64_t load, held, limit;
};

static int ask_line(int fd, const char *line, char *ans, size_t cap);

/* The address this node is known by: its first TCP listen. */
static const char *self_addr(const struct node *nd)
{
	for (int i = 0; i < nd->conf.nlisten; i++)
		if (strncmp(nd->conf.listen[i], "unix:", 5))
			return nd->conf.listen[i];
	return "";
}

/* Room left under a node's limit (0: no limit, all the room there is). */
static int64_t room(const struct peer *p)
{
	return p->limit > 0 ? p->limit - p->held : INT64_MAX;
}

/* The candidates: other live nodes with room for the bytes. */
struct pick {
	const struct node *nd;
	const char *via;		/* nodes the connection came through */
	uint64_t bytes;
	struct peer p[PEERS_MAX];
	int n, seen;
};

static void consider(struct pick *k, const struct peer *p)
{
	if (!strcmp(p->addr, self_addr(k->nd)) || mv_proto_listed(k->via, p->addr))
		return;
	k->seen++;
	if (room(p) >= (int64_t)k->bytes && k->n < PEERS_MAX)
		k->p[k->n++] = *p;
}

/* The most room first; ties: the least load. */
static int by_room(const void *a, const void *b)
{
	const struct peer *x = a, *y = b;

	if (room(x) != room(y))
		return room(x) > room(y) ? -1 : 1;
	return (x->load > y->load) - (x->load < y->load);
}

/* One line of `NODES limits`: addr state load mem segments held limit. */
static int nodes_line(void *arg, char *line)
{
	struct pick *k = arg;
	char *f[8], *save = NULL, *t;
	int n = 0;
	struct peer p;

	for (t = strtok_r(line, "\t", &save); t && n < 8;
	     t = strtok_r(NULL, "\t", &save))
		f[n++] = t;
	if (n < 7 || strcmp(f[1], "up"))
		return 0;
	memset(&p, 0, sizeof(p));
	snprintf(p.addr, sizeof(p.addr), "%s", f[0]);
	p.load = strtoll(f[2], NULL, 10);
	p.held = strtoll(f[5], NULL, 10);
	p.limit = strtoll(f[6], NULL, 10);
	consider(k, &p);
	return 0;
}

static int ask_master(struct node *nd, struct pick *k, char *why,
		      size_t cap)
{
	struct mv_err e = { 0 };
	struct mv_client *c = mv_client_connect(nd->conf.master, &e);
	int rc;

	if (!c) {
		snprintf(why, cap, "the master at '%s' does not answer: %s",
			 nd->conf.master, e.msg);
		return -1;
	}
	rc = mv_client_lines(c, "NODES limits", nodes_line, k, &e);
	mv_client_free(c);
	if (rc < 0) {
		snprintf(why, cap, "the master at '%s': %s", nd->conf.master,
			 e.msg);
		return -1;
	}
	return 0;
}

struct live {
	const struct node *nd;
	char addr[PEERS_MAX][256];
	int n;
};

static int live_key(void *arg, const char *key, const void *val, size_t vlen)
{
	struct live *l = arg;
	uint32_t no;

	(void)key;
	if (l->n < PEERS_MAX &&
	    node_live_parse(val, vlen, &no, l->addr[l->n],
			    sizeof(l->addr[0])) == 0 &&
	    no != l->nd->node_no)
		l->n++;
	return 0;
}

/* Without a master: the live keys in etcd, and LOAD of each node. */
static int ask_nodes(struct node *nd, struct pick *k, char *why, size_t cap)
{
	struct live *l = calloc(1, sizeof(*l));
	char prefix[300];
	struct mv_err e = { 0 };

	if (!l) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	l->nd = nd;
	snprintf(prefix, sizeof(prefix), "/%s/%s_property/live/",
		 nd->conf.user, nd->conf.cluster_id);
	if (mv_meta_range(nd->meta, prefix, live_key, l, &e) < 0) {
		snprintf(why, cap, "cannot list the live nodes: %s", e.msg);
		free(l);
		return -1;
	}
	for (int i = 0; i < l->n; i++) {
		struct mv_client *c = mv_client_connect(l->addr[i], &e);
		char rep[512];
		struct peer p;

		if (!c)
			continue;
		memset(&p, 0, sizeof(p));
		snprintf(p.addr, sizeof(p.addr), "%s", l->addr[i]);
		if (mv_client_cmd(c, "LOAD", rep, sizeof(rep), &e) == 0 &&
		    mv_reply_get_i64(rep, "held", &p.held) == 0 &&
		    mv_reply_get_i64(rep, "limit", &p.limit) == 0) {
			mv_reply_get_i64(rep, "load", &p.load);
			consider(k, &p);
		}
		mv_client_free(c);
	}
	free(l);
	return 0;
}

/*
 * A connection to p for the relay, once its own LOAD says it still has
 * room (the master's figures are a heartbeat old); -1 with why.
 */
static int open_peer(const struct pick *k, const struct peer *p, char *why,
		     size_t cap)
{
	struct mv_addr a;
	struct mv_err e = { 0 };
	char ans[512];
	struct peer now = *p;
	int fd;

	if (mv_addr_parse(p->addr, &a, &e) < 0 ||
	    (fd = mv_net_connect_within(&a, 1000, &e)) < 0) {
		snprintf(why, cap, "node at '%.200s': %.200s", p->addr, e.msg);
		return -1;
	}
	if (ask_line(fd, "LOAD\n", ans, sizeof(ans)) < 0 ||
	    mv_reply_get_i64(ans + 2, "held", &now.held) < 0 ||
	    mv_reply_get_i64(ans + 2, "limit", &now.limit) < 0) {
		snprintf(why, cap, "node at '%.200s': LOAD: %.200s", p->addr,
			 ans);
		close(fd);
		return -1;
	}
	if (room(&now) < (int64_t)k->bytes) {
		snprintf(why, cap, "no other live node has room");
		close(fd);
		return -1;
	}
	mv_net_bulk(fd);
	return fd;
}

/* Send line and read the one-line answer from fd; 0 when it is OK. */
static int ask_line(int fd, const char *line, char *ans, size_t cap)
{
	size_t len = 0;

	if (mv_write_all(fd, line, strlen(line)) < 0) {
		snprintf(ans, cap, "write failed: %s", strerror(errno));
		return -1;
	}
	while (len + 1 < cap) {
		ssize_t r = read(fd, ans + len, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(ans, cap, "closed the connection");
			return -1;
		}
		if (ans[len] == '\n') {
			ans[len] = '\0';
			return strncmp(ans, "OK", 2) ? -1 : 0;
		}
		len++;
	}
	ans[len] = '\0';
	return -1;
}

/*
 * Copy len payload bytes from the client to fd: first those already
 * read into the line buffer, then the rest from the socket.
 */
static int copy_payload(struct conn *cn, int fd, unsigned char *buf,
			uint64_t len)
{
	while (len) {
		size_t n = len < RELAY_BUF ? (size_t)len : RELAY_BUF;

		if (read_payload(cn, buf, n) < 0 || mv_write_all(fd, buf, n) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

/*
 * Both ways until the other node closes.  The client's end of input is
 * passed on (a half-close): the other node answers what it got, then
 * closes, as it would for the client itself.
 */
static void pump(struct conn *cn, int fd, unsigned char *buf)
{
	int client_done = 0;

	/* What the client sent after the payload, already read here. */
	if (cn->rlen > cn->rpos &&
	    mv_write_all(fd, cn->rbuf + cn->rpos, cn->rlen - cn->rpos) < 0)
		return;
	cn->rpos = cn->rlen = 0;
	for (;;) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { cn->fd, POLLIN, 0 } };
		int r = poll(pf, client_done ? 1 : 2, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return;
		for (int i = 0; i < (client_done ? 1 : 2); i++) {
			ssize_t got;

			if (!pf[i].revents)
				continue;
			got = read(pf[i].fd, buf, RELAY_BUF);
			if (got < 0 && (errno == EINTR || errno == EAGAIN ||
					errno == EWOULDBLOCK))
				continue;
			if (got <= 0 && i == 1) {
				client_done = 1;
				shutdown(fd, SHUT_WR);
				continue;
			}
			if (got <= 0)
				return;	/* the other node closed */
			if (mv_write_all(i == 0 ? cn->fd : fd, buf,
					 (size_t)got) < 0)
				return;
		}
	}
}

/*
 * The connection is bound to a session: it may move only while this node
 * holds nothing of it; then the empty session (and its key) goes, so that
 * the node the connection moves to holds it and puts the key.
 */
static int session_movable(struct conn *cn)
{
	struct node *nd = cn->nd;
	struct batch *s;
	int ok = 1;

	pthread_mutex_lock(&nd->slock);
	s = node_session_get(nd, cn->sess, 0);
	if (s) {
		pthread_mutex_lock(&s->lock);
		ok = !s->rows && !s->ndels && !s->conns;
		pthread_mutex_unlock(&s->lock);
		if (ok) {
			node_session_remove(nd, s);
			s->next = NULL;
			s->session[0] = '\0';
			batch_free(s);
		}
	}
	pthread_mutex_unlock(&nd->slock);
	return ok;
}

static int over_limit(struct conn *cn, uint64_t bytes, const char *more)
{
	long long now = node_memory();
	long long lim = (long long)cn->nd->conf.memory_limit;

	log_warnx("%s: refused an INSERT of %" PRIu64 " bytes: the node holds "
		  "%lld bytes, memory_limit=%lld%s%s", cn->peer, bytes, now,
		  lim, *more ? "; " : "", more);
	return reply(cn, "ERR BUSY the node holds %lld bytes (segments, "
		     "indexes, unflushed data); %" PRIu64 " more would pass "
		     "memory_limit=%lld%s%s", now, bytes, lim,
		     *more ? ": " : "", more);
}

int reduce_insert(struct conn *cn, const char *name, uint64_t n,
		  const char *flags, uint64_t bytes)
{
	struct node *nd = cn->nd;
	struct pick *k = NULL;
	const struct peer *to = NULL;
	char why[512] = "", line[512], ans[512];
	char vline[sizeof(cn->via) + 300];
	unsigned char *buf = NULL;
	int fd = -1, busy;

	if (!nd->cluster)
		goto refuse;
	if (cn->nvia >= VIA_MAX) {
		snprintf(why, sizeof(why), "the connection came through %d "
			 "nodes already (%.300s)", cn->nvia, cn->via);
		goto refuse;
	}
	pthread_mutex_lock(&cn->own->lock);
	busy = cn->own->rows || cn->own->ndels;
	pthread_mutex_unlock(&cn->own->lock);
	if (busy) {
		snprintf(why, sizeof(why), "this connection's unflushed rows "
			 "stay whole on this node: flush them, then the rest "
			 "goes to a node with room");
		goto refuse;
	}
	if (!(k = calloc(1, sizeof(*k)))) {
		snprintf(why, sizeof(why), "out of memory");
		goto refuse;
	}
	k->nd = nd;
	k->via = cn->via;
	k->bytes = bytes;
	if (nd->conf.master ? ask_master(nd, k, why, sizeof(why)) :
	    ask_nodes(nd, k, why, sizeof(why)))
		goto refuse;
	snprintf(why, sizeof(why), "%s", k->seen ?
		 "no other live node has room" : "no other live node");
	qsort(k->p, (size_t)k->n, sizeof(*k->p), by_room);
	for (int i = 0; i < k->n && fd < 0; i++)
		if ((fd = open_peer(k, &k->p[i], why, sizeof(why))) >= 0)
			to = &k->p[i];
	if (fd < 0)
		goto refuse;
	snprintf(vline, sizeof(vline), "VIA %s%s%s\n", cn->via,
		 cn->nvia && *self_addr(nd) ? "," : "", self_addr(nd));
	if (strcmp(vline, "VIA \n") &&
	    ask_line(fd, vline, ans, sizeof(ans)) < 0) {
		snprintf(why, sizeof(why), "node at '%.200s': %.200s",
			 to->addr, ans);
		goto refuse;
	}
	if (strcmp(cn->user, nd->conf.user)) {
		snprintf(line, sizeof(line), "USER %s\n", cn->user);
		if (ask_line(fd, line, ans, sizeof(ans)) < 0) {
			snprintf(why, sizeof(why), "node at '%.200s': %.200s",
				 to->addr, ans);
			goto refuse;
		}
	}
	if (cn->sess[0]) {
		if (!session_movable(cn)) {
			snprintf(why, sizeof(why), "session '%s' holds rows "
				 "on this node: commit it first", cn->sess);
			goto refuse;
		}
		snprintf(line, sizeof(line), "SESSION %s\n", cn->sess);
		if (ask_line(fd, line, ans, sizeof(ans)) < 0) {
			snprintf(why, sizeof(why), "node at '%.200s': %.200s",
				 to->addr, ans);
			goto refuse;
		}
	}
	if (!(buf = malloc(RELAY_BUF))) {
		snprintf(why, sizeof(why), "out of memory");
		goto refuse;
	}
	log_info("%s: memory_limit=%lld passed (%lld bytes held, %" PRIu64
		 " more): the connection goes on through node at %s%s%s%s",
		 cn->peer, (long long)nd->conf.memory_limit, node_memory(),
		 bytes, to->addr, cn->nvia ? " (it came through " : "",
		 cn->via, cn->nvia ? ")" : "");
	free(k);
	snprintf(line, sizeof(line), "INSERT %s %" PRIu64 " %s %" PRIu64 "\n",
		 name, n, flags, bytes);
	if (mv_write_all(fd, line, strlen(line)) == 0 &&
	    copy_payload(cn, fd, buf, bytes) == 0)
		pump(cn, fd, buf);
	free(buf);
	close(fd);
	return -1;	/* the client's connection ends with the relay */
refuse:
	free(k);
	if (fd >= 0)
		close(fd);
	if (skip_payload(cn, bytes) < 0)
		return -1;
	return over_limit(cn, bytes, why);
}

int cmd_via(struct conn *cn, int argc, char **argv)
{
	int n = mv_proto_addr_list(argv[1], VIA_MAX);

	(void)argc;
	if (n < 0 || strlen(argv[1]) >= sizeof(cn->via))
		return proto_err(cn, "VIA: want 1 to 8 addresses, "
				 "comma-separated");
	snprintf(cn->via, sizeof(cn->via), "%s", argv[1]);
	cn->nvia = n;
	return reply(cn, "OK");
}

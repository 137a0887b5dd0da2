/*
 * conn.c - the protocol side of mv-noded: one thread per connection
 * reads request lines (and their binary payloads) and answers them through
 * the command table below; the verbs are in verbs_write.c, verbs_read.c
 * and verbs_admin.c.  docs/PROTOCOL.md is the reference; change it and
 * this table together.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "log.h"
#include "net.h"
#include "proto.h"
#include "conn.h"
#include "server.h"
#include "vcheck.h"

/* ---- I/O ------------------------------------------------------------ */

/* Next request line, NUL-terminated; 0, or -1 at EOF/error, -2 too long. */
static int read_line(struct conn *cn, char **line)
{
	for (;;) {
		char *nl = memchr(cn->rbuf + cn->rpos, '\n', cn->rlen - cn->rpos);
		ssize_t r;

		if (nl) {
			*line = cn->rbuf + cn->rpos;
			cn->rpos = (size_t)(nl - cn->rbuf) + 1;
			*nl = '\0';
			if (nl > *line && nl[-1] == '\r')
				nl[-1] = '\0';
			return 0;
		}
		if (cn->rpos) {
			memmove(cn->rbuf, cn->rbuf + cn->rpos, cn->rlen - cn->rpos);
			cn->rlen -= cn->rpos;
			cn->rpos = 0;
		}
		if (cn->rlen == cn->rcap) {
			size_t cap = cn->rcap * 2;
			char *p;

			if (cn->rcap == LINE_MAX_LEN)
				return -2;
			if (cap > LINE_MAX_LEN)
				cap = LINE_MAX_LEN;
			if (!(p = realloc(cn->rbuf, cap + 1)))
				return -1;
			cn->rbuf = p;
			cn->rcap = cap;
		}
		/*
		 * A client in a request loop sends the next one within
		 * microseconds: poll for it a moment before sleeping.
		 */
		mv_net_spin(cn->fd, cn->nd->conf.busy_poll_us);
		r = read(cn->fd, cn->rbuf + cn->rlen, cn->rcap - cn->rlen);
		/* io_timeout bounds payloads only: idle clients may wait. */
		if (r < 0 && (errno == EINTR || errno == EAGAIN ||
			      errno == EWOULDBLOCK))
			continue;
		if (r <= 0)
			return -1;
		cn->rlen += (size_t)r;
	}
}

/* Read exactly len payload bytes into dst; -1 if the client went away. */
int read_payload(struct conn *cn, void *dst, size_t len)
{
	size_t have = cn->rlen - cn->rpos;

	if (have > len)
		have = len;
	memcpy(dst, cn->rbuf + cn->rpos, have);
	cn->rpos += have;
	if (len > have && mv_read_all(cn->fd, (char *)dst + have, len - have) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			log_warnx("%s: payload stalled for io_timeout=%d s: "
				  "connection dropped with its unflushed work",
				  cn->peer, cn->nd->conf.io_timeout);
		return -1;
	}
	return 0;
}

/* Throw a payload away (after a refusal), keeping the stream in step. */
int skip_payload(struct conn *cn, size_t len)
{
	char tmp[16384];

	while (len) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
		if (read_payload(cn, tmp, n) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

/*
 * Append len payload bytes to nb, taking memory as they arrive, a piece at
 * a time: a header's claim alone costs nothing.  0; -1 if the client went
 * away, -2 out of memory (the stream is then out of step: close).
 */
int read_into(struct conn *cn, struct pcoll *pc, struct nbuf *nb,
	      size_t len)
{
	while (len) {
		size_t piece = len < READ_PIECE ? len : READ_PIECE;

		if (nb->len + piece > nb->cap) {
			if (nb == &pc->vecs)
				stage_wait(pc);		/* vecs is about to move */
			if (nbuf_reserve(nb, piece) < 0)
				return -2;
		}
		/* Resident before the read: no page fault per 4 KiB in it. */
		nbuf_touch(nb, nb->len + piece);
		if (read_payload(cn, nb->p + nb->len, piece) < 0)
			return -1;
		nb->len += piece;
		len -= piece;
	}
	return 0;
}

int send_raw(struct conn *cn, const void *p, size_t len)
{
	return mv_write_all(cn->fd, p, len);
}

int reply(struct conn *cn, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	return send_raw(cn, line, (size_t)n);
}

/* The reply code of an error: its kind, else what its code means. */
const char *code_name(const struct mv_err *e)
{
	switch (e->kind) {
	case MV_K_NOTFOUND:
		return "NOTFOUND";
	case MV_K_EXISTS:
		return "EXISTS";
	case MV_K_NOSESSION:
		return "NOSESSION";
	case MV_K_BADNAME:
		return "BADNAME";
	case MV_K_BADDIM:
		return "BADDIM";
	case MV_K_DUPID:
		return "DUPID";
	case MV_K_BUSY:
		return "BUSY";
	case MV_K_SHUTDOWN:
		return "SHUTDOWN";
	}
	switch (e->code) {
	case MV_EDATA:
		return "BADDATA";
	case MV_EUSAGE:
		return "PROTO";
	case MV_EPERM:
		return "DENIED";
	case MV_EINTERNAL:
		return "INTERNAL";
	case MV_ECONFIG:
		return "CONFIG";
	case MV_EAGAIN:
	case MV_EIO:
		return "IO";
	default:
		return "NOTFOUND";
	}
}

int reply_err(struct conn *cn, const struct mv_err *e)
{
	return reply(cn, "ERR %s %s", code_name(e), e->msg);
}

int proto_err(struct conn *cn, const char *msg)
{
	return reply(cn, "ERR PROTO %s", msg);
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return mv_proto_u64(s, max, out);
}

int unknown_coll(struct conn *cn, const char *name)
{
	return reply(cn, "ERR NOTFOUND unknown collection '%s'", name);
}

int visible(struct conn *cn, uint64_t payload, int *rc)
{
	struct mv_err e = { 0 };

	if (node_visible(cn->nd, &e) == 0)
		return 0;
	if (payload && skip_payload(cn, payload) < 0)
		*rc = -1;
	else
		*rc = reply_err(cn, &e);
	return -1;
}

/*
 * The collection of a request whose payload is n int64 ids (GET,
 * DELETE), with a reference; or NULL once the payload was skipped and the
 * refusal sent (*rc the handler's return).
 */
struct coll *id_payload_coll(struct conn *cn, const char *name, uint64_t n,
			     uint64_t bytes, int *rc)
{
	struct coll *c = node_coll_find(cn->nd, cn->user, name);

	if (c && bytes == n * 8)
		return c;
	if (skip_payload(cn, bytes) < 0) {
		coll_put(c);
		*rc = -1;
		return NULL;
	}
	if (!c) {
		*rc = unknown_coll(cn, name);
		return NULL;
	}
	coll_put(c);
	*rc = reply(cn, "ERR BADDATA payload of %" PRIu64
		    " bytes does not hold %" PRIu64 " ids", bytes, n);
	return NULL;
}

/*
 * The batch requests of this connection go to: always its own, also when
 * bound to a named session (HANDOFF then moves the work there), so that
 * no lock another connection needs is held while reading a payload.
 */
struct batch *cur_batch(struct conn *cn)
{
	return cn->own;
}

/* Tell a client once that an automatic flush of its data failed. */
int check_autoflush(struct conn *cn)
{
	struct batch *b = cn->own;
	struct mv_err e = { 0 };
	int failed;

	if (node_autoflush_sync(cn->nd, b, &e) < 0) {
		/* Committed, but sync_level was not reached (tick.c). */
		reply(cn, "ERR BUSY automatic %s", e.msg);
		return 1;
	}
	pthread_mutex_lock(&b->lock);
	failed = b->autoflush_failed;
	b->autoflush_failed = 0;
	pthread_mutex_unlock(&b->lock);
	if (failed) {
		reply(cn, "ERR IO automatic flush failed: %s", b->autoflush_err);
		return 1;
	}
	return 0;
}

/* Count bytes about to arrive against max_pending. */
int pending_take(struct conn *cn, size_t bytes)
{
	return node_pending_take(cn->nd, bytes);
}

int pending_refuse(struct conn *cn, size_t bytes)
{
	long long now = atomic_load(&node_pending);

	log_warnx("%s: refused %zu bytes: the node holds %lld bytes of "
		  "unflushed data, max_pending=%lld", cn->peer, bytes, now,
		  (long long)cn->nd->conf.max_pending);
	return reply(cn, "ERR BUSY the node holds %lld bytes of unflushed "
		     "data; %zu more would pass max_pending=%lld: flush, or "
		     "retry later", now, bytes,
		     (long long)cn->nd->conf.max_pending);
}

void batch_clear_locked(struct batch *b)
{
	pthread_mutex_lock(&b->lock);
	batch_clear(b);
	pthread_mutex_unlock(&b->lock);
}

/* ---- the command table ---------------------------------------------- */

static const struct cmd {
	const char *name;
	int min, max;		/* argc including the verb */
	handler_fn fn;
} cmds[] = {
	{ "HELLO", 1, 2, cmd_hello },
	{ "PING", 1, 1, cmd_ping },
	{ "QUIT", 1, 1, cmd_quit },
	{ "USER", 2, 2, cmd_user },
	{ "CREATE", 4, 4 + MV_FIELDS_MAX + 1, cmd_create },
	{ "DROP", 2, 2, cmd_drop },
	{ "DESCRIBE", 2, 2, cmd_describe },
	{ "LS", 1, 2, cmd_ls },
	{ "HISTORY", 2, 2, cmd_history },
	{ "INSERT", 5, 5, cmd_insert },
	{ "DELETE", 3, 4, cmd_delete },
	{ "FLUSH", 1, 1, cmd_flush },
	{ "SESSION", 2, 2, cmd_session },
	{ "HANDOFF", 1, 1, cmd_handoff },
	{ "COMMIT", 2, 2, cmd_commit },
	{ "ABORT", 2, 2, cmd_abort },
	{ "SESSIONS", 1, 1, cmd_sessions },
	{ "SEARCH", 5, MAX_ARGS, cmd_search },
	{ "GET", 4, 7, cmd_get },
	{ "SCAN", 4, 7, cmd_scan },
	{ "STAT", 1, 3, cmd_stat },
	{ "LOAD", 1, 1, cmd_load },
	{ "VIA", 2, 2, cmd_via },
	{ "INDEX", 3, 12, cmd_index },
	{ "INDEXSTATUS", 2, 3, cmd_indexstatus },
	{ "INDEXDROP", 2, 2, cmd_indexdrop },
	{ "INDEXSET", 3, 12, cmd_indexset },
	{ "COMPACT", 2, 2, cmd_compact },
};

/* A printable sample of a bad line for the log. */
static void sanitise(const char *in, char *out, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; in[i] && j + 4 < cap && i < 64; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 32 && ch < 127)
			out[j++] = (char)ch;
		else
			j += (size_t)snprintf(out + j, cap - j, "\\x%02x", ch);
	}
	out[j] = '\0';
}

static int dispatch(struct conn *cn, char *line)
{
	char *argv[MAX_ARGS + 1];
	int argc = mv_proto_split(line, argv, MAX_ARGS);

	if (argc < 0)
		return proto_err(cn, "too many words");
	if (argc == 0)
		return 0;	/* blank lines are ignored */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		const struct cmd *cmd = &cmds[i];

		if (strcasecmp(argv[0], cmd->name))
			continue;
		if (argc < cmd->min || argc > cmd->max) {
			char msg[96];
			snprintf(msg, sizeof(msg), "wrong number of arguments "
				 "for %s", cmd->name);
			/* A data verb's payload size is unknown: resync by closing. */
			if (cmd->fn == cmd_insert || cmd->fn == cmd_delete ||
			    cmd->fn == cmd_search || cmd->fn == cmd_get)
				cn->quit = 1;
			return proto_err(cn, msg);
		}
		{
			int rc;

			atomic_fetch_add(&cn->nd->serving, 1);
			rc = cmd->fn(cn, argc, argv);
			atomic_fetch_sub(&cn->nd->serving, 1);
			return rc;
		}
	}
	{
		char sample[300];
		sanitise(argv[0], sample, sizeof(sample));
		log_debug("%s: unknown verb '%s'", cn->peer, sample);
	}
	return proto_err(cn, "unknown verb");
}

static void conn_close(struct conn *cn)
{
	struct node *nd = cn->nd;
	struct batch **pp;

	pthread_mutex_lock(&nd->blist);
	for (pp = &nd->conn_batches; *pp; pp = &(*pp)->next)
		if (*pp == cn->own) {
			*pp = cn->own->next;
			break;
		}
	pthread_mutex_unlock(&nd->blist);
	/*
	 * Unflushed work of the connection is discarded here, also work for
	 * a named session not handed off: its input was not complete.
	 */
	pthread_mutex_lock(&cn->own->lock);
	pthread_mutex_unlock(&cn->own->lock);
	batch_free(cn->own);
	close(cn->fd);
	free(cn->rbuf);
	nbuf_release(&cn->out);
	atomic_fetch_sub(&nd->nconns, 1);
	free(cn);
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	char *line;
	int rc;

	while (!cn->quit) {
		rc = read_line(cn, &line);
		if (rc == -2) {
			proto_err(cn, "line too long");
			log_debug("%s: request line over %d bytes", cn->peer,
				  LINE_MAX_LEN);
			break;
		}
		if (rc < 0)
			break;
		if (dispatch(cn, line) < 0)
			break;
	}
	conn_close(cn);
	return NULL;
}

int server_accept(struct node *nd, int lfd, const struct mv_cidr *allow,
		  int nallow)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn *cn;
	pthread_t th;
	pthread_attr_t attr;
	int fd;

	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (!mv_cidr_allow(allow, nallow, (struct sockaddr *)&ss)) {
		static const char msg[] = "ERR DENIED address not allowed\n";
		mv_write_all(fd, msg, sizeof(msg) - 1);
		close(fd);
		log_info("refused a connection from an address not allowed");
		return 0;
	}
	if (atomic_load(&nd->nconns) >= nd->conf.max_connections) {
		char msg[128];
		int l = snprintf(msg, sizeof(msg), "ERR BUSY too many "
				 "connections: max_connections=%d\n",
				 nd->conf.max_connections);
		mv_write_all(fd, msg, (size_t)l);
		close(fd);
		log_warnx("refused a connection: max_connections=%d reached",
			  nd->conf.max_connections);
		return 0;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn || !(cn->own = batch_new(NULL)) ||
	    !(cn->rbuf = malloc(RBUF_MIN + 1))) {
		if (cn)
			batch_free(cn->own);
		free(cn);
		close(fd);
		return 0;
	}
	cn->rcap = RBUF_MIN;
	mv_net_bulk(fd);
	if (nd->conf.io_timeout > 0) {
		/* Payload reads stall at most this long (read_payload). */
		struct timeval tv = { nd->conf.io_timeout, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	cn->fd = fd;
	cn->nd = nd;
	snprintf(cn->user, sizeof(cn->user), "%s", nd->conf.user);
	snprintf(cn->peer, sizeof(cn->peer), "fd %d", fd);
	pthread_mutex_lock(&nd->blist);
	cn->own->next = nd->conn_batches;
	nd->conn_batches = cn->own;
	pthread_mutex_unlock(&nd->blist);
	atomic_fetch_add(&nd->nconns, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	if (pthread_create(&th, &attr, conn_main, cn)) {
		pthread_attr_destroy(&attr);
		conn_close(cn);
		return 0;
	}
	pthread_attr_destroy(&attr);
	return 0;
}

/*
 * server.c - the protocol side of mv-noded: one thread per connection
 * reads request lines (and their binary payloads) and answers them through
 * the command table below.  docs/PROTOCOL.md is the reference; change it
 * and this table together.
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
#include "server.h"
#include "vcheck.h"

#define LINE_MAX_LEN (64 * 1024)
#define PAYLOAD_MAX ((size_t)1 << 30)
#define MAX_ARGS 80
#define READ_PIECE ((size_t)4 << 20)	/* memory taken per payload read */
#define RBUF_MIN 4096			/* an idle connection's line buffer */

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
};

typedef int (*handler_fn)(struct conn *cn, int argc, char **argv);

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
static int read_payload(struct conn *cn, void *dst, size_t len)
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
static int skip_payload(struct conn *cn, size_t len)
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
static int read_into(struct conn *cn, struct pcoll *pc, struct nbuf *nb,
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

static int send_raw(struct conn *cn, const void *p, size_t len)
{
	return mv_write_all(cn->fd, p, len);
}

static int reply(struct conn *cn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int reply(struct conn *cn, const char *fmt, ...)
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
static const char *code_name(const struct mv_err *e)
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
	case MV_EAGAIN:
	case MV_EIO:
		return "IO";
	default:
		return "NOTFOUND";
	}
}

static int reply_err(struct conn *cn, const struct mv_err *e)
{
	return reply(cn, "ERR %s %s", code_name(e), e->msg);
}

static int proto_err(struct conn *cn, const char *msg)
{
	return reply(cn, "ERR PROTO %s", msg);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return mv_proto_u64(s, max, out);
}

static int unknown_coll(struct conn *cn, const char *name)
{
	return reply(cn, "ERR NOTFOUND unknown collection '%s'", name);
}

/*
 * The batch requests of this connection go to: always its own, also when
 * bound to a named session (HANDOFF then moves the work there), so that
 * no lock another connection needs is held while reading a payload.
 */
static struct batch *cur_batch(struct conn *cn)
{
	return cn->own;
}

/* Tell a client once that an automatic flush of its data failed. */
static int check_autoflush(struct conn *cn)
{
	struct batch *b = cn->own;
	int failed;

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
static int pending_take(struct conn *cn, size_t bytes)
{
	return node_pending_take(cn->nd, bytes);
}

static int pending_refuse(struct conn *cn, size_t bytes)
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

static void batch_clear_locked(struct batch *b)
{
	pthread_mutex_lock(&b->lock);
	batch_clear(b);
	pthread_mutex_unlock(&b->lock);
}

/* ---- verbs ---------------------------------------------------------- */

static int cmd_hello(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return reply(cn, "OK version=%d server=mv-noded/%s maxline=%d "
		     "maxpayload=%zu", MV_PROTO_VERSION, MV_VERSION,
		     LINE_MAX_LEN, PAYLOAD_MAX);
}

static int cmd_ping(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return reply(cn, "OK");
}

static int cmd_quit(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cn->quit = 1;
	return reply(cn, "OK");
}

static int cmd_user(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };

	(void)argc;
	if (mv_name_check(argv[1], &e) < 0)
		return reply(cn, "ERR BADNAME %s", e.msg);
	snprintf(cn->user, sizeof(cn->user), "%s", argv[1]);
	return reply(cn, "OK");
}

static int cmd_create(struct conn *cn, int argc, char **argv)
{
	struct mv_field f[MV_FIELDS_MAX];
	struct mv_err e = { 0 };
	enum mv_metric metric;
	uint64_t dim;
	int nf = 0, ifne = 0, existed;

	if (parse_u64(argv[2], MV_DIM_MAX, &dim) < 0 || dim == 0)
		return reply(cn, "ERR BADDIM bad dimension '%.32s': want 1..%d",
			     argv[2], MV_DIM_MAX);
	if (mv_metric_parse(argv[3], &metric) < 0)
		return proto_err(cn, "bad metric: want l2, ip or cosine");
	for (int i = 4; i < argc; i++) {
		char *colon = strchr(argv[i], ':');

		if (!strcmp(argv[i], "if-not-exists")) {
			ifne = 1;
			continue;
		}
		if (!colon || nf == MV_FIELDS_MAX)
			return proto_err(cn, "bad field: want NAME:TYPE");
		*colon = '\0';
		if (strlen(argv[i]) > MV_NAME_MAX)
			return reply(cn, "ERR BADNAME bad field name");
		snprintf(f[nf].name, sizeof(f[nf].name), "%s", argv[i]);
		if (mv_ftype_parse(colon + 1, &f[nf].type) < 0)
			return proto_err(cn,
				"bad field type: want int64, float64 or string");
		nf++;
	}
	if (node_create(cn->nd, cn->user, argv[1], (uint32_t)dim, metric, f, nf, ifne,
			&existed, &e) < 0)
		return reply_err(cn, &e);
	return reply(cn, existed ? "OK exists=1" : "OK");
}

static int cmd_drop(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };

	(void)argc;
	if (node_drop(cn->nd, cn->user, argv[1], &e) < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

static void coll_counts(struct coll *c, int64_t *rows, size_t *segs,
			char *index, size_t icap)
{
	pthread_rwlock_rdlock(&c->lock);
	*rows = c->rows;
	*segs = c->nsegs;
	snprintf(index, icap, "%s", c->index ? c->index->spec : "-");
	pthread_rwlock_unlock(&c->lock);
}

static int cmd_describe(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	char fields[MV_FIELDS_MAX * (MV_NAME_MAX + 10) + 2] = "";
	char index[160];
	int64_t rows;
	size_t segs;
	int rc;

	(void)argc;
	if (!c)
		return unknown_coll(cn, argv[1]);
	for (int i = 0; i < c->nfields; i++) {
		size_t l = strlen(fields);
		snprintf(fields + l, sizeof(fields) - l, "%s%s:%s", i ? "," : "",
			 c->fields[i].name, mv_ftype_name(c->fields[i].type));
	}
	coll_counts(c, &rows, &segs, index, sizeof(index));
	rc = reply(cn, "OK name=%s dim=%u metric=%s rows=%" PRId64
		   " segments=%zu index=%s fields=%s", c->name, c->dim,
		   mv_metric_name(c->metric), rows, segs, index,
		   c->nfields ? fields : "-");
	coll_put(c);
	return rc;
}

static int cmd_ls(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct coll *c, **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (argc == 2) {
		c = node_coll_get(nd, cn->user, argv[1]);
		if (!c)
			return unknown_coll(cn, argv[1]);
		list = malloc(sizeof(*list));
		if (!list) {
			coll_put(c);
			return reply(cn, "ERR INTERNAL out of memory");
		}
		list[n++] = c;
	} else {
		pthread_mutex_lock(&nd->lock);
		for (c = nd->colls; c; c = c->next) {
			if (strcmp(c->user, cn->user))
				continue;
			if (n == cap) {
				struct coll **l2;
				cap = cap ? cap * 2 : 16;
				l2 = realloc(list, cap * sizeof(*l2));
				if (!l2)
					break;
				list = l2;
			}
			atomic_fetch_add(&c->refs, 1);
			list[n++] = c;
		}
		pthread_mutex_unlock(&nd->lock);
	}
	cn->out.len = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t rows;
		size_t segs;
		char line[512], index[160];
		int l;

		c = list[i];
		coll_counts(c, &rows, &segs, index, sizeof(index));
		l = snprintf(line, sizeof(line), "%s\t%u\t%s\t%" PRId64 "\t%zu\t%s\n",
			     c->name, c->dim, mv_metric_name(c->metric), rows,
			     segs, index);
		if (nbuf_reserve(&cn->out, (size_t)l) == 0) {
			memcpy(cn->out.p + cn->out.len, line, (size_t)l);
			cn->out.len += (size_t)l;
		}
		coll_put(c);
	}
	free(list);
	if (nbuf_reserve(&cn->out, 4) == 0) {
		memcpy(cn->out.p + cn->out.len, "END\n", 4);
		cn->out.len += 4;
	}
	rc = send_raw(cn, cn->out.p, cn->out.len);
	return rc;
}

/* Split a received column block into the pending columns of pc. */
static int take_fields(struct conn *cn, struct coll *c, struct pcoll *pc,
		       const unsigned char *p, size_t len, size_t n,
		       size_t *saved)
{
	size_t pos = 0;

	for (int f = 0; f < c->nfields; f++) {
		size_t start = pos;

		if (c->fields[f].type != MV_STRING) {
			if (len - pos < n * 8)
				goto short_block;
			pos += n * 8;
		} else {
			long used = node_string_block(p + pos, len - pos, n,
						      NULL);
			if (used < 0)
				goto short_block;
			pos += (size_t)used;
		}
		if (nbuf_reserve(&pc->cols[f], pos - start) < 0)
			return reply(cn, "ERR INTERNAL out of memory"), 1;
		memcpy(pc->cols[f].p + pc->cols[f].len, p + start, pos - start);
		pc->cols[f].len += pos - start;
	}
	if (pos != len)
		goto short_block;
	return 0;
short_block:
	for (int f = 0; f < c->nfields; f++)
		pc->cols[f].len = saved[f];
	return reply(cn, "ERR BADDATA field block does not match the %zu rows",
		     n), 1;
}

static int cmd_insert(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	uint64_t n, bytes;
	int has_ids = 0, upsert = 0, has_fields = 0, rc;
	struct coll *c;
	struct batch *b;
	struct pcoll *pc;
	size_t need, vbytes, saved_ids, saved_vecs, saved_cols[MV_FIELDS_MAX];
	unsigned char *fblock = NULL;
	size_t flen = 0;
	int64_t first_id = -1;
	struct mv_err e = { 0 };

	(void)argc;
	if (parse_u64(argv[2], PAYLOAD_MAX, &n) < 0 ||
	    parse_u64(argv[4], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;	/* the payload size is unknown: cannot resync */
		return proto_err(cn, "usage: INSERT <name> <n> <flags> <bytes>");
	}
	if (strcmp(argv[3], "-")) {
		char *save = NULL, *f;
		for (f = strtok_r(argv[3], ",", &save); f;
		     f = strtok_r(NULL, ",", &save)) {
			if (!strcmp(f, "ids"))
				has_ids = 1;
			else if (!strcmp(f, "upsert"))
				upsert = 1;
			else if (!strcmp(f, "fields"))
				has_fields = 1;
			else {
				skip_payload(cn, bytes);
				return proto_err(cn, "unknown INSERT flag");
			}
		}
	}
	c = node_coll_get(nd, cn->user, argv[1]);
	if (!c) {
		if (skip_payload(cn, bytes) < 0)
			return -1;
		return unknown_coll(cn, argv[1]);
	}
	vbytes = n * c->dim * sizeof(float);
	need = vbytes + (has_ids ? n * 8 : 0);
	if (bytes < need || (!has_fields && bytes != need) ||
	    (has_fields && !c->nfields)) {
		coll_put(c);
		if (skip_payload(cn, bytes) < 0)
			return -1;
		if (has_fields && !c->nfields)
			return reply(cn, "ERR BADDATA collection '%s' has no fields",
				     argv[1]);
		return reply(cn, "ERR BADDIM payload of %" PRIu64 " bytes does "
			     "not hold %" PRIu64 " vectors of dimension %u",
			     bytes, n, c->dim);
	}
	if (check_autoflush(cn)) {
		coll_put(c);
		return skip_payload(cn, bytes);
	}
	if (pending_take(cn, bytes) < 0) {
		coll_put(c);
		return skip_payload(cn, bytes) < 0 ? -1 : pending_refuse(cn, bytes);
	}
	b = cur_batch(cn);
	pthread_mutex_lock(&b->lock);
	pc = batch_coll(b, c);
	if (!pc) {
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		skip_payload(cn, bytes);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	saved_ids = pc->ids.len;
	saved_vecs = pc->vecs.len;
	for (int f = 0; f < c->nfields; f++)
		saved_cols[f] = pc->cols[f].len;
	/* Memory is taken as the bytes arrive, not as the header claims. */
	rc = 0;
	if (has_ids)
		rc = read_into(cn, pc, &pc->ids, n * 8);
	if (rc == 0)
		rc = read_into(cn, pc, &pc->vecs, vbytes);
	if (rc == 0 && has_fields) {
		flen = bytes - need;
		fblock = malloc(flen ? flen : 1);
		rc = fblock ? read_payload(cn, fblock, flen) : -1;
	}
	if (rc < 0) {
		/* Client gone mid-payload: nothing of this request stays. */
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		free(fblock);
		coll_put(c);
		if (rc == -2) {
			log_warnx("%s: out of memory for an INSERT of %" PRIu64
				  " bytes: connection dropped", cn->peer, bytes);
			reply(cn, "ERR INTERNAL out of memory");
		}
		return -1;
	}
	if (has_fields && take_fields(cn, c, pc, fblock, flen, n, saved_cols)) {
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		free(fblock);
		coll_put(c);
		return 0;
	}
	free(fblock);
	rc = node_insert_commit_tail(nd, b, pc, n, has_ids, upsert, has_fields,
				     &first_id, &e);
	if (rc < 0) {
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		for (int f = 0; f < c->nfields; f++)
			pc->cols[f].len = saved_cols[f];
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		return reply_err(cn, &e);
	}
	b->acct += bytes;
	b->last_used = node_mono_s();
	if (!b->held)
		stage_more(nd, pc);
	if (nd->conf.auto_flush && !b->held &&
	    b->bytes >= (size_t)nd->conf.flush_limit) {
		int64_t ins, del;
		int frc;

		/* In flight like a FLUSH: shutdown waits for it. */
		atomic_fetch_add(&nd->inflight, 1);
		frc = node_flush(nd, b, &ins, &del, &e);
		atomic_fetch_sub(&nd->inflight, 1);
		if (frc < 0) {
			pthread_mutex_unlock(&b->lock);
			coll_put(c);
			log_warnx("automatic flush failed: %s", e.msg);
			return reply(cn, "ERR IO automatic flush failed: %s",
				     e.msg);
		}
	}
	pthread_mutex_unlock(&b->lock);
	coll_put(c);
	if (has_ids)
		return reply(cn, "OK n=%" PRIu64, n);
	return reply(cn, "OK n=%" PRIu64 " first_id=%" PRId64, n, first_id);
}

static int cmd_delete(struct conn *cn, int argc, char **argv)
{
	uint64_t n, bytes;
	struct coll *c;
	struct batch *b;
	struct pcoll *pc;
	size_t saved;
	int rc;

	(void)argc;
	if (parse_u64(argv[2], PAYLOAD_MAX / 8, &n) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: DELETE <name> <n> <bytes>");
	}
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c || bytes != n * 8) {
		if (skip_payload(cn, bytes) < 0) {
			coll_put(c);
			return -1;
		}
		if (!c)
			return unknown_coll(cn, argv[1]);
		coll_put(c);
		return reply(cn, "ERR BADDATA payload of %" PRIu64
			     " bytes does not hold %" PRIu64 " ids", bytes, n);
	}
	if (check_autoflush(cn)) {
		coll_put(c);
		return skip_payload(cn, bytes);
	}
	if (pending_take(cn, bytes) < 0) {
		coll_put(c);
		return skip_payload(cn, bytes) < 0 ? -1 : pending_refuse(cn, bytes);
	}
	b = cur_batch(cn);
	pthread_mutex_lock(&b->lock);
	pc = batch_coll(b, c);
	if (!pc) {
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		skip_payload(cn, bytes);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	saved = pc->dels.len;
	if ((rc = read_into(cn, pc, &pc->dels, bytes)) < 0) {
		pc->dels.len = saved;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		if (rc == -2)
			reply(cn, "ERR INTERNAL out of memory");
		return -1;
	}
	b->acct += bytes;
	b->ndels += (int64_t)n;
	b->bytes += bytes;
	b->last_used = node_mono_s();
	if (!b->first_ms)
		b->first_ms = node_mono_ms();
	pthread_mutex_unlock(&b->lock);
	coll_put(c);
	return reply(cn, "OK n=%" PRIu64, n);
}

/*
 * Commit b (locked by the caller) and say how it went in *ok (with the
 * counts) or *e; the caller answers once it holds no lock.
 */
static int flush_batch(struct conn *cn, struct batch *b, char *ok,
		       size_t cap, struct mv_err *e)
{
	int64_t ins = 0, del = 0;
	int rc;

	rc = node_flush(cn->nd, b, &ins, &del, e);
	if (rc == 0)
		snprintf(ok, cap, "OK inserted=%" PRId64 " deleted=%" PRId64,
			 ins, del);
	return rc;
}

/* Unpin a session; the last pin frees one removed from the table. */
static void session_unpin(struct node *nd, struct batch *s)
{
	pthread_mutex_lock(&nd->slock);
	s->conns--;
	if (!s->session[0] && s->conns == 0)
		batch_free(s);
	pthread_mutex_unlock(&nd->slock);
}

static int commit_session(struct conn *cn, const char *name, int abort)
{
	struct node *nd = cn->nd;
	struct mv_err e = { 0 };
	char ok[128] = "OK";
	struct batch *s;
	int rc = 0;

	pthread_mutex_lock(&nd->slock);
	s = node_session_get(nd, name, 0);
	if (s) {
		/* Nobody can reach it by name now; HANDOFFs that pinned it
		 * before see it removed and go to a new session. */
		node_session_remove(nd, s);
		s->next = NULL;
		s->session[0] = '\0';
		s->conns++;
	}
	pthread_mutex_unlock(&nd->slock);
	if (!s)
		return reply(cn, "ERR NOSESSION no session '%s' (never opened, "
			     "committed, aborted, expired, or the node "
			     "restarted)", name);
	/* Counted until answered: shutdown waits for the answer too. */
	atomic_fetch_add(&nd->inflight, 1);
	pthread_mutex_lock(&s->lock);
	if (abort)
		batch_clear(s);
	else
		rc = flush_batch(cn, s, ok, sizeof(ok), &e);
	pthread_mutex_unlock(&s->lock);
	session_unpin(nd, s);
	rc = rc < 0 ? reply_err(cn, &e) : reply(cn, "%s", ok);
	atomic_fetch_sub(&nd->inflight, 1);
	return rc;
}

/*
 * Move the connection's pending work into its bound session, looked up or
 * created by name now, in one step: a session committed or aborted since
 * the bind is simply made anew.  0 and *rows, or an error in e (nothing
 * moved).
 */
static int handoff(struct conn *cn, int64_t *rows, struct mv_err *e)
{
	struct node *nd = cn->nd;
	struct batch *s;
	int rc;

	for (;;) {
		pthread_mutex_lock(&nd->slock);
		s = node_session_get(nd, cn->sess, 1);
		if (!s) {
			pthread_mutex_unlock(&nd->slock);
			return mv_err_set(e, MV_EINTERNAL, "out of memory");
		}
		s->conns++;	/* pinned: not freed, not expired */
		s->last_used = time(NULL);
		pthread_mutex_unlock(&nd->slock);
		pthread_mutex_lock(&s->lock);
		if (s->session[0])
			break;
		/* Committed or aborted meanwhile: take a new one. */
		pthread_mutex_unlock(&s->lock);
		session_unpin(nd, s);
	}
	pthread_mutex_lock(&cn->own->lock);
	rc = batch_merge(nd, s, cn->own, e);
	pthread_mutex_unlock(&cn->own->lock);
	*rows = s->rows;
	pthread_mutex_unlock(&s->lock);
	session_unpin(nd, s);
	return rc;
}

/* The connection's pending work, in rows and deletes. */
static int64_t own_pending(struct conn *cn)
{
	int64_t n;

	pthread_mutex_lock(&cn->own->lock);
	n = cn->own->colls ? cn->own->rows + cn->own->ndels + 1 : 0;
	pthread_mutex_unlock(&cn->own->lock);
	return n;
}

static int cmd_flush(struct conn *cn, int argc, char **argv)
{
	struct batch *b = cn->own;
	struct mv_err e = { 0 };
	char ok[128];
	int rc;

	(void)argc;
	(void)argv;
	if (cn->sess[0]) {
		int64_t rows;
		if (handoff(cn, &rows, &e) < 0) {
			batch_clear_locked(cn->own);
			return reply_err(cn, &e);
		}
		return commit_session(cn, cn->sess, 0);
	}
	if (check_autoflush(cn))
		return 0;
	atomic_fetch_add(&cn->nd->inflight, 1);
	pthread_mutex_lock(&b->lock);
	rc = flush_batch(cn, b, ok, sizeof(ok), &e);
	pthread_mutex_unlock(&b->lock);
	rc = rc < 0 ? reply_err(cn, &e) : reply(cn, "%s", ok);
	atomic_fetch_sub(&cn->nd->inflight, 1);
	return rc;
}

static int cmd_handoff(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };
	int64_t rows;

	(void)argc;
	(void)argv;
	if (!cn->sess[0])
		return proto_err(cn, "HANDOFF needs a session: send SESSION "
				 "first");
	if (handoff(cn, &rows, &e) < 0) {
		/* A refused input leaves nothing anywhere. */
		batch_clear_locked(cn->own);
		return reply_err(cn, &e);
	}
	return reply(cn, "OK rows=%" PRId64, rows);
}

static int cmd_session(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct batch *s;
	struct mv_err e = { 0 };
	int64_t rows;

	(void)argc;
	if (mv_name_check(argv[1], &e) < 0)
		return reply(cn, "ERR BADNAME %s", e.msg);
	if (own_pending(cn)) {
		if (!cn->sess[0])
			return proto_err(cn, "unflushed work: FLUSH it before "
					 "SESSION");
		/* Rebinding completes the input for the old session. */
		if (handoff(cn, &rows, &e) < 0) {
			batch_clear_locked(cn->own);
			return reply_err(cn, &e);
		}
	}
	pthread_mutex_lock(&nd->slock);
	s = node_session_get(nd, argv[1], 1);
	if (!s) {
		pthread_mutex_unlock(&nd->slock);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	s->last_used = node_mono_s();
	pthread_mutex_lock(&s->lock);
	rows = s->rows;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&nd->slock);
	snprintf(cn->sess, sizeof(cn->sess), "%s", argv[1]);
	pthread_mutex_lock(&cn->own->lock);
	cn->own->held = 1;
	pthread_mutex_unlock(&cn->own->lock);
	return reply(cn, "OK rows=%" PRId64, rows);
}

static int cmd_commit(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	return commit_session(cn, argv[1], 0);
}

static int cmd_abort(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	return commit_session(cn, argv[1], 1);
}

static int cmd_sessions(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct batch *s;
	time_t now = node_mono_s();

	(void)argc;
	(void)argv;
	cn->out.len = 0;
	pthread_mutex_lock(&nd->slock);
	for (s = nd->sessions; s; s = s->next) {
		char line[1024], colls[768] = "";
		struct pcoll *pc;
		int64_t rows;
		int l;

		pthread_mutex_lock(&s->lock);
		rows = s->rows;
		for (pc = s->colls; pc; pc = pc->next) {
			size_t cl = strlen(colls);
			if (pc->c->dropped)
				continue;
			snprintf(colls + cl, sizeof(colls) - cl, "%s%s",
				 cl ? "," : "", pc->c->name);
		}
		pthread_mutex_unlock(&s->lock);
		l = snprintf(line, sizeof(line), "%s\t%s\t%" PRId64 "\t%lld\n",
			     s->session, colls[0] ? colls : "-", rows,
			     (long long)(now - s->last_used));
		if (nbuf_reserve(&cn->out, (size_t)l) == 0) {
			memcpy(cn->out.p + cn->out.len, line, (size_t)l);
			cn->out.len += (size_t)l;
		}
	}
	pthread_mutex_unlock(&nd->slock);
	if (nbuf_reserve(&cn->out, 4) == 0) {
		memcpy(cn->out.p + cn->out.len, "END\n", 4);
		cn->out.len += 4;
	}
	return send_raw(cn, cn->out.p, cn->out.len);
}

/* Field indices of "a,b" for c; -1 and a reply on an unknown one. */
static int parse_fields(struct conn *cn, struct coll *c, char *list, int *which)
{
	char *save = NULL, *f;
	int n = 0;

	for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		int i;
		for (i = 0; i < c->nfields; i++)
			if (!strcmp(c->fields[i].name, f))
				break;
		if (i == c->nfields || n == MV_FIELDS_MAX) {
			reply(cn, "ERR NOTFOUND unknown field '%.64s' in '%s'", f,
			      c->name);
			return -1;
		}
		which[n++] = i;
	}
	return n;
}

static int cmd_search(struct conn *cn, int argc, char **argv)
{
	uint64_t k, nq, bytes;
	struct coll *c;
	float *q = NULL, *dist = NULL;
	int64_t *ids = NULL;
	int which[MV_FIELDS_MAX], nwhich = 0, rc;
	struct mv_err e = { 0 };
	long nprobe = -1, ef = -1;

	if (parse_u64(argv[2], 1000000, &k) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &nq) < 0 ||
	    parse_u64(argv[4], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: SEARCH <name> <k> <nq> <bytes> "
				 "[param=value]...");
	}
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c) {
		if (skip_payload(cn, bytes) < 0)
			return -1;
		return unknown_coll(cn, argv[1]);
	}
	if (bytes != nq * c->dim * sizeof(float) || k == 0 ||
	    nq * k > (PAYLOAD_MAX / 12)) {
		rc = skip_payload(cn, bytes);
		coll_put(c);
		if (rc < 0)
			return -1;
		if (k == 0 || nq * k > PAYLOAD_MAX / 12)
			return reply(cn, "ERR BADDATA k must be 1..%zu per "
				     "request", PAYLOAD_MAX / 12 / (nq ? nq : 1));
		return reply(cn, "ERR BADDIM payload of %" PRIu64 " bytes does "
			     "not hold %" PRIu64 " queries of dimension %u",
			     bytes, nq, c->dim);
	}
	q = malloc(bytes ? bytes : 1);
	if (!q || read_payload(cn, q, bytes) < 0) {
		free(q);
		coll_put(c);
		return -1;
	}
	for (int i = 5; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			rc = proto_err(cn, "bad parameter: want name=value");
			goto out;
		}
		*eq = '\0';
		if (!strcmp(argv[i], "fields")) {
			nwhich = parse_fields(cn, c, eq + 1, which);
			if (nwhich < 0) {
				rc = 0;
				goto out;
			}
		}
		else if (!strcmp(argv[i], "nprobe") || !strcmp(argv[i], "ef") ||
			 !strcmp(argv[i], "efSearch")) {
			uint64_t v;
			if (parse_u64(eq + 1, 1 << 24, &v) < 0 || v == 0) {
				rc = reply(cn, "ERR BADDATA bad value for '%s'",
					   argv[i]);
				goto out;
			}
			if (argv[i][0] == 'n')
				nprobe = (long)v;
			else
				ef = (long)v;
		} else {
			rc = reply(cn, "ERR PROTO unknown search parameter '%.64s'",
				   argv[i]);
			goto out;
		}
	}
	{
		const char *why;
		long bad = mv_vcheck(q, nq, c->dim, &why);

		if (bad >= 0) {
			rc = reply(cn, "ERR BADDATA query %ld: %s", bad + 1, why);
			goto out;
		}
	}
	ids = malloc(nq * k * 8 + 1);
	dist = malloc(nq * k * 4 + 1);
	if (!ids || !dist) {
		rc = reply(cn, "ERR INTERNAL out of memory");
		goto out;
	}
	if (node_search(cn->nd, c, q, nq, k, nprobe, ef, ids, dist, &e) < 0) {
		rc = reply_err(cn, &e);
		goto out;
	}
	cn->out.len = 0;
	if (nwhich) {
		pthread_rwlock_rdlock(&c->lock);
		for (uint64_t i = 0; i < nq * k; i++) {
			struct mv_idmap_ent *en;
			if (ids[i] == MV_ID_NONE)
				continue;
			en = mv_idmap_get(&c->ids, ids[i]);
			if (en)
				coll_fields_text(c, en->seg, en->row, which,
						 nwhich, &cn->out);
			else if (nbuf_reserve(&cn->out, 1) == 0)
				cn->out.p[cn->out.len++] = '\n';
		}
		pthread_rwlock_unlock(&c->lock);
	}
	{
		char line[128];
		int l = snprintf(line, sizeof(line),
				 "OK nq=%" PRIu64 " k=%" PRIu64 " bytes=%zu\n",
				 nq, k, nq * k * 12 + cn->out.len);
		struct iovec iov[4] = {
			{ line, (size_t)l },
			{ ids, nq * k * 8 },
			{ dist, nq * k * 4 },
			{ cn->out.p, cn->out.len },
		};
		rc = mv_writev_all(cn->fd, iov, 4);
	}
out:
	free(q);
	free(ids);
	free(dist);
	coll_put(c);
	return rc;
}

/* Send rows (ids known to exist or skipped) as a GET/SCAN reply. */
static int send_rows(struct conn *cn, struct coll *c, const int64_t *want,
		     size_t n, int fields)
{
	struct nbuf idb = { 0 }, vb = { 0 };
	int which[MV_FIELDS_MAX], rc;
	size_t found = 0, vsz = c->dim * sizeof(float);

	for (int i = 0; i < c->nfields; i++)
		which[i] = i;
	cn->out.len = 0;
	if (nbuf_reserve(&idb, n * 8) < 0 || nbuf_reserve(&vb, n * vsz) < 0) {
		nbuf_release(&idb);
		nbuf_release(&vb);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		struct mv_idmap_ent *e = mv_idmap_get(&c->ids, want[i]);
		const float *raw;

		if (!e)
			continue;
		raw = node_seg_raw(cn->nd, e->seg);
		if (!raw)
			continue;
		memcpy(idb.p + found * 8, &want[i], 8);
		memcpy(vb.p + found * vsz, raw + e->row * c->dim, vsz);
		found++;
		if (fields && c->nfields)
			coll_fields_text(c, e->seg, e->row, which, c->nfields,
					 &cn->out);
	}
	pthread_rwlock_unlock(&c->lock);
	{
		char line[128];
		int l = snprintf(line, sizeof(line), "OK n=%zu bytes=%zu\n",
				 found, found * (8 + vsz) + cn->out.len);
		struct iovec iov[4] = {
			{ line, (size_t)l },
			{ idb.p, found * 8 },
			{ vb.p, found * vsz },
			{ cn->out.p, cn->out.len },
		};
		rc = mv_writev_all(cn->fd, iov, 4);
	}
	nbuf_release(&idb);
	nbuf_release(&vb);
	return rc;
}

static int cmd_get(struct conn *cn, int argc, char **argv)
{
	uint64_t n, bytes;
	struct coll *c;
	int64_t *ids;
	int rc;

	if (parse_u64(argv[2], PAYLOAD_MAX / 8, &n) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: GET <name> <n> <bytes> [fields]");
	}
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c || bytes != n * 8) {
		rc = skip_payload(cn, bytes);
		if (rc < 0) {
			coll_put(c);
			return -1;
		}
		if (!c)
			return unknown_coll(cn, argv[1]);
		coll_put(c);
		return reply(cn, "ERR BADDATA payload of %" PRIu64
			     " bytes does not hold %" PRIu64 " ids", bytes, n);
	}
	ids = malloc(bytes + 1);
	if (!ids || read_payload(cn, ids, bytes) < 0) {
		free(ids);
		coll_put(c);
		return -1;
	}
	rc = send_rows(cn, c, ids, n, argc > 4 && !strcmp(argv[4], "fields"));
	free(ids);
	coll_put(c);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The live ids of c in order, remade only when they changed since the
 * last SCAN (c->scan_lock held): an export in chunks sorts once.
 */
static int scan_ids(struct coll *c)
{
	int64_t *all;
	size_t n = 0;

	pthread_rwlock_rdlock(&c->lock);
	if (c->scan_gen == c->gen + 1) {
		pthread_rwlock_unlock(&c->lock);
		return 0;
	}
	all = malloc((c->ids.n + 1) * sizeof(*all));
	if (all)
		for (size_t i = 0; i < c->ids.cap; i++)
			if (c->ids.t[i].id != MV_ID_NONE)
				all[n++] = c->ids.t[i].id;
	c->scan_gen = c->gen + 1;
	pthread_rwlock_unlock(&c->lock);
	if (!all)
		return -1;
	qsort(all, n, sizeof(*all), cmp_i64);
	free(c->scan_ids);
	c->scan_ids = all;
	c->scan_n = n;
	return 0;
}

static int cmd_scan(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	long long after;
	uint64_t limit;
	int64_t *page = NULL;
	size_t lo, hi, n = 0;
	char *end;
	int rc;

	if (!c)
		return unknown_coll(cn, argv[1]);
	errno = 0;
	after = strtoll(argv[2], &end, 10);
	if (*end || errno || parse_u64(argv[3], 1000000, &limit) < 0) {
		coll_put(c);
		return proto_err(cn, "usage: SCAN <name> <after> <limit> [fields]");
	}
	pthread_mutex_lock(&c->scan_lock);
	if (scan_ids(c) == 0) {
		/* First id > after. */
		for (lo = 0, hi = c->scan_n; lo < hi;) {
			size_t mid = (lo + hi) / 2;
			if (c->scan_ids[mid] <= after)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* Only ids still live, so that a page is empty only at the
		 * end even while rows are being deleted. */
		page = malloc(((c->scan_n - lo < limit ? c->scan_n - lo : limit)
			       + 1) * sizeof(*page));
		pthread_rwlock_rdlock(&c->lock);
		for (size_t i = lo; page && i < c->scan_n && n < limit; i++)
			if (mv_idmap_get(&c->ids, c->scan_ids[i]))
				page[n++] = c->scan_ids[i];
		pthread_rwlock_unlock(&c->lock);
	}
	pthread_mutex_unlock(&c->scan_lock);
	if (!page) {
		coll_put(c);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	rc = send_rows(cn, c, page, n, argc > 4 && !strcmp(argv[4], "fields"));
	free(page);
	coll_put(c);
	return rc;
}

/* Join argv[from..] into "k=v k=v", checking the form. */
static int join_params(char **argv, int from, int argc, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = from; i < argc; i++) {
		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return -1;
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
					len ? " " : "", argv[i]);
		if (len >= cap)
			return -1;
	}
	return 0;
}

static int cmd_index(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	struct mv_err e = { 0 };
	char params[256], status[512];
	int rc;

	if (!c)
		return unknown_coll(cn, argv[1]);
	if (join_params(argv, 3, argc, params, sizeof(params)) < 0) {
		coll_put(c);
		return proto_err(cn, "bad parameter: want name=value");
	}
	rc = node_index_start(cn->nd, c, argv[2], params, &e);
	if (rc == 0)
		node_index_status(c, status, sizeof(status));
	coll_put(c);
	if (rc < 0) {
		if (rc == MV_EAGAIN)
			return reply(cn, "ERR BUSY %s", e.msg);
		if (rc == MV_EUSAGE)
			return reply(cn, "ERR BADDATA %s", e.msg);
		return reply_err(cn, &e);
	}
	return reply(cn, "OK %s", status);
}

static int cmd_indexstatus(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	char status[512];

	(void)argc;
	if (!c)
		return unknown_coll(cn, argv[1]);
	node_index_status(c, status, sizeof(status));
	coll_put(c);
	return reply(cn, "OK %s", status);
}

static int cmd_indexdrop(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	struct mv_err e = { 0 };
	int rc;

	(void)argc;
	if (!c)
		return unknown_coll(cn, argv[1]);
	rc = node_index_drop(cn->nd, c, &e);
	coll_put(c);
	if (rc == MV_EAGAIN)
		return reply(cn, "ERR BUSY %s", e.msg);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

static int cmd_indexset(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	struct mv_err e = { 0 };
	char params[256];
	int rc;

	if (!c)
		return unknown_coll(cn, argv[1]);
	if (join_params(argv, 2, argc, params, sizeof(params)) < 0) {
		coll_put(c);
		return proto_err(cn, "bad parameter: want name=value");
	}
	rc = node_index_set(cn->nd, c, params, &e);
	coll_put(c);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

static int cmd_compact(struct conn *cn, int argc, char **argv)
{
	struct coll *c = node_coll_get(cn->nd, cn->user, argv[1]);
	struct mv_err e = { 0 };
	size_t segs;
	int merged, rc;

	(void)argc;
	if (!c)
		return unknown_coll(cn, argv[1]);
	rc = node_compact(cn->nd, c, 1, &merged, &e);
	pthread_rwlock_rdlock(&c->lock);
	segs = c->nsegs;
	pthread_rwlock_unlock(&c->lock);
	coll_put(c);
	if (rc == MV_EAGAIN)
		return reply(cn, "ERR BUSY %s", e.msg);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK merged=%d segments=%zu", merged, segs);
}

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

static int cmd_stat(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct coll *c;
	size_t segs = 0;

	(void)argc;
	(void)argv;
	pthread_mutex_lock(&nd->lock);
	for (c = nd->colls; c; c = c->next)
		segs += c->nsegs;
	pthread_mutex_unlock(&nd->lock);
	return reply(cn, "%s\t%s\t%d\t%ld\t%zu\nEND", nd->addr,
		     atomic_load(&nd->shutting_down) ? "stopping" : "up",
		     atomic_load(&nd->nconns), rss_bytes(), segs);
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
	{ "INSERT", 5, 5, cmd_insert },
	{ "DELETE", 4, 4, cmd_delete },
	{ "FLUSH", 1, 1, cmd_flush },
	{ "SESSION", 2, 2, cmd_session },
	{ "HANDOFF", 1, 1, cmd_handoff },
	{ "COMMIT", 2, 2, cmd_commit },
	{ "ABORT", 2, 2, cmd_abort },
	{ "SESSIONS", 1, 1, cmd_sessions },
	{ "SEARCH", 5, MAX_ARGS, cmd_search },
	{ "GET", 4, 5, cmd_get },
	{ "SCAN", 4, 5, cmd_scan },
	{ "STAT", 1, 1, cmd_stat },
	{ "INDEX", 3, 12, cmd_index },
	{ "INDEXSTATUS", 2, 2, cmd_indexstatus },
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
		return cmd->fn(cn, argc, argv);
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

/*
 * client.c - the blocking client of the line protocol (docs/PROTOCOL.md).
 * It owns one connection and one read buffer; reply lines are parsed in
 * place and binary payloads are read straight into the caller's memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "client.h"
#include "filter.h"
#include "net.h"
#include "proto.h"

#define RBUF_CAP (1 << 16)

/*
 * How long a client polls for an answer before it sleeps: waking a
 * sleeping thread costs tens of microseconds on a VM, as much as a cheap
 * search.  $MV_BUSY_POLL_US overrides (0: never poll).
 */
#define SPIN_DEFAULT_US 1000
/* Seconds a TCP connect may wait for the node (MV_CONNECT_TIMEOUT). */
#define CONNECT_TIMEOUT_S 10
#define SPIN_MAX_NQ 16		/* larger searches: the wake-up is noise */
#define CLIENT_LINE_MAX (64 * 1024)	/* the node's request line limit */

struct mv_client {
	int fd;
	int spin_us;
	int spin_now;		/* for the answer to the last request sent */
	int unanswered;		/* a request went out whole, no reply yet */
	char addr[256];
	size_t rpos, rlen;
	char rbuf[RBUF_CAP + 1];
};

static const struct {
	const char *name;
	int code;
} err_codes[] = {
	{ "NOTFOUND", MV_ESERVER }, { "EXISTS", MV_ESERVER },
	{ "BADNAME", MV_EDATA }, { "BADDIM", MV_EDATA },
	{ "BADDATA", MV_EDATA }, { "DUPID", MV_EDATA },
	{ "PROTO", MV_EUSAGE }, { "BUSY", MV_EAGAIN },
	{ "SHUTDOWN", MV_EAGAIN }, { "IO", MV_EAGAIN },
	{ "NOSESSION", MV_ESERVER }, { "DENIED", MV_EPERM },
	{ "INTERNAL", MV_EINTERNAL }, { "CONFIG", MV_ECONFIG },
};

struct mv_client *mv_client_connect(const char *addr, struct mv_err *err)
{
	struct mv_addr a;
	struct mv_client *c;
	char *def = NULL;
	int fd;

	if (!addr) {
		def = mv_default_addr();
		if (!def) {
			mv_err_set(err, MV_EINTERNAL, "out of memory");
			return NULL;
		}
		addr = def;
	}
	if (mv_addr_parse(addr, &a, err) < 0)
		goto fail;
	if (a.family == AF_UNIX) {
		fd = mv_net_connect(&a, err);
	} else {
		/* A host gone from the network never answers a SYN. */
		const char *e = getenv("MV_CONNECT_TIMEOUT");
		char *end;
		long s = e && *e ? strtol(e, &end, 10) : CONNECT_TIMEOUT_S;

		if (e && *e && (*end || s < 1 || s > 3600)) {
			mv_err_set(err, MV_EUSAGE, "MV_CONNECT_TIMEOUT '%s': "
				   "want seconds, 1 to 3600", e);
			goto fail;
		}
		fd = mv_net_connect_within(&a, (int)s * 1000, err);
	}
	if (fd < 0)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto fail;
	}
	c->fd = fd;
	c->spin_us = SPIN_DEFAULT_US;
	{
		const char *e = getenv("MV_BUSY_POLL_US");
		char *end;
		long v = e && *e ? strtol(e, &end, 10) : -1;

		if (e && *e && !*end && v >= 0 && v <= 1000000)
			c->spin_us = (int)v;
	}
	snprintf(c->addr, sizeof(c->addr), "%s", a.text);
	free(def);
	return c;
fail:
	free(def);
	return NULL;
}

void mv_client_free(struct mv_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

const char *mv_client_addr(const struct mv_client *c)
{
	return c->addr;
}

int mv_client_in_doubt(const struct mv_client *c)
{
	return c && c->unanswered;
}

static int lost(struct mv_client *c, struct mv_err *err)
{
	if (errno)
		return mv_err_sys(err, MV_EUNAVAIL, "connection to '%s'", c->addr);
	return mv_err_set(err, MV_EUNAVAIL, "'%s' closed the connection",
			  c->addr);
}

static int read_line(struct mv_client *c, char **line, struct mv_err *err);
static int check_reply(struct mv_client *c, char *line, char **rest,
		       struct mv_err *err);

/* Send a request; quick: its answer is expected soon, so poll for it. */
static int send_all(struct mv_client *c, struct iovec *iov, int n,
		    int quick, struct mv_err *err)
{
	c->spin_now = quick ? c->spin_us : 0;
	c->unanswered = 0;
	if (mv_writev_all(c->fd, iov, n) < 0) {
		int saved = errno;
		char *line, *rest;

		/* A node that refused the connection said why (ERR BUSY). */
		if (read_line(c, &line, NULL) == 0 && !strncmp(line, "ERR ", 4))
			return check_reply(c, line, &rest, err);
		errno = saved;
		return lost(c, err);
	}
	c->unanswered = 1;
	return 0;
}

/* Read one reply line; *line points into rbuf, valid until the next read. */
static int read_line(struct mv_client *c, char **line, struct mv_err *err)
{
	for (;;) {
		char *nl = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
		ssize_t r;

		if (nl) {
			*line = c->rbuf + c->rpos;
			c->rpos = (size_t)(nl - c->rbuf) + 1;
			*nl = '\0';
			if (nl > *line && nl[-1] == '\r')
				nl[-1] = '\0';
			c->unanswered = 0;
			return 0;
		}
		if (c->rpos > 0) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		if (c->rlen == RBUF_CAP)
			return mv_err_set(err, MV_EPROTO,
					  "reply line too long from '%s'", c->addr);
		mv_net_spin(c->fd, c->spin_now);
		r = read(c->fd, c->rbuf + c->rlen, RBUF_CAP - c->rlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return lost(c, err);
		}
		c->rlen += (size_t)r;
	}
}

/* Read len payload bytes into dst (buffered bytes first). */
static int read_payload(struct mv_client *c, void *dst, size_t len,
			struct mv_err *err)
{
	size_t have = c->rlen - c->rpos;

	if (have > len)
		have = len;
	memcpy(dst, c->rbuf + c->rpos, have);
	c->rpos += have;
	if (len > have && mv_read_all(c->fd, (char *)dst + have, len - have) < 0)
		return lost(c, err);
	return 0;
}

int mv_client_code(const char *word, size_t len)
{
	for (size_t i = 0; i < sizeof(err_codes) / sizeof(*err_codes); i++)
		if (strlen(err_codes[i].name) == len &&
		    !strncmp(err_codes[i].name, word, len))
			return err_codes[i].code;
	return MV_ESERVER;
}

/* Turn a reply line into 0 (OK, *rest after "OK") or an error code. */
static int check_reply(struct mv_client *c, char *line, char **rest,
		       struct mv_err *err)
{
	if (!strncmp(line, "OK", 2) && (line[2] == '\0' || line[2] == ' ')) {
		*rest = line + 2 + (line[2] == ' ');
		return 0;
	}
	if (!strncmp(line, "ERR ", 4)) {
		char *code = line + 4, *msg = strchr(code, ' ');
		size_t clen = msg ? (size_t)(msg - code) : strlen(code);

		msg = msg ? msg + 1 : code;
		return mv_err_set(err, mv_client_code(code, clen), "%s", msg);
	}
	return mv_err_set(err, MV_EPROTO, "malformed reply from '%s': '%.80s'",
			  c->addr, line);
}

static int request(struct mv_client *c, const char *line, const void *payload,
		   size_t plen, char **rest, struct mv_err *err)
{
	struct iovec iov[3] = {
		{ (void *)line, strlen(line) },
		{ "\n", 1 },
		{ (void *)payload, plen },
	};
	char *reply;
	int rc;

	rc = send_all(c, iov, payload && plen ? 3 : 2, 1, err);
	if (rc < 0)
		return rc;
	rc = read_line(c, &reply, err);
	if (rc < 0)
		return rc;
	return check_reply(c, reply, rest, err);
}

int mv_client_cmd(struct mv_client *c, const char *line, char *reply,
		  size_t cap, struct mv_err *err)
{
	char *rest;
	int rc = request(c, line, NULL, 0, &rest, err);

	if (rc == 0 && reply && cap)
		snprintf(reply, cap, "%s", rest);
	return rc;
}

int mv_client_lines(struct mv_client *c, const char *line,
		    int (*fn)(void *arg, char *line), void *arg,
		    struct mv_err *err)
{
	struct iovec iov[2] = { { (void *)line, strlen(line) }, { "\n", 1 } };
	char *l, *rest;
	int rc, stop = 0;

	rc = send_all(c, iov, 2, 1, err);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = read_line(c, &l, err);
		if (rc < 0)
			return rc;
		if (!strcmp(l, "END"))
			return stop;
		if (!strncmp(l, "ERR ", 4))
			return check_reply(c, l, &rest, err);
		if (!stop)
			stop = fn(arg, l);
	}
}

int mv_reply_get(const char *reply, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = reply;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			const char *v = p + klen + 1, *e = strchr(v, ' ');
			size_t n = e ? (size_t)(e - v) : strlen(v);
			if (n >= cap)
				n = cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
		p = strchr(p, ' ');
	}
	return -1;
}

int mv_reply_get_i64(const char *reply, const char *key, int64_t *out)
{
	char buf[64], *end;

	/* Longer than "-9223372036854775808": out of range (or cut short). */
	if (mv_reply_get(reply, key, buf, sizeof(buf)) < 0 || !buf[0] ||
	    strlen(buf) > 20)
		return -1;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return (*end || errno) ? -1 : 0;
}

static int malformed(struct mv_client *c, const char *what, struct mv_err *err)
{
	return mv_err_set(err, MV_EPROTO, "malformed reply from '%s': %s",
			  c->addr, what);
}

int mv_client_describe(struct mv_client *c, const char *name,
		       struct mv_coll_info *info, struct mv_err *err)
{
	char line[128], *rest, buf[4096], *f, *save = NULL;
	int64_t v;
	int rc;

	snprintf(line, sizeof(line), "DESCRIBE %s", name);
	rc = request(c, line, NULL, 0, &rest, err);
	if (rc < 0)
		return rc;
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name);
	if (mv_reply_get_i64(rest, "dim", &v) < 0 || v <= 0 || v > MV_DIM_MAX)
		return malformed(c, "no dim", err);
	info->dim = (uint32_t)v;
	if (mv_reply_get(rest, "metric", buf, sizeof(buf)) < 0 ||
	    mv_metric_parse(buf, &info->metric) < 0)
		return malformed(c, "no metric", err);
	mv_reply_get_i64(rest, "rows", &info->rows);
	mv_reply_get_i64(rest, "segments", &info->segments);
	if (mv_reply_get(rest, "index", info->index, sizeof(info->index)) < 0)
		snprintf(info->index, sizeof(info->index), "-");
	if (mv_reply_get(rest, "fields", buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "-")) {
		for (f = strtok_r(buf, ",", &save); f;
		     f = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(f, ':');
			struct mv_field *fd;

			if (!colon || info->nfields == MV_FIELDS_MAX)
				return malformed(c, "bad fields", err);
			*colon = '\0';
			fd = &info->fields[info->nfields++];
			snprintf(fd->name, sizeof(fd->name), "%s", f);
			if (mv_ftype_parse(colon + 1, &fd->type) < 0)
				return malformed(c, "bad field type", err);
		}
	}
	return 0;
}

int mv_client_insert_send(struct mv_client *c, const char *name, size_t n,
			  uint32_t dim, const int64_t *ids, const float *vecs,
			  const void *fields, size_t fields_len, int flags,
			  struct mv_err *err)
{
	char line[256], fl[32];
	size_t vbytes = n * dim * sizeof(float);
	size_t ibytes = ids ? n * sizeof(int64_t) : 0;

	snprintf(fl, sizeof(fl), "%s%s%s", ids ? ",ids" : "",
		 flags & MV_INSERT_UPSERT ? ",upsert" : "",
		 fields ? ",fields" : "");
	if (!fl[0])
		snprintf(fl, sizeof(fl), ",-");
	snprintf(line, sizeof(line), "INSERT %s %zu %s %zu\n", name, n, fl + 1,
		 ibytes + vbytes + (fields ? fields_len : 0));
	{
		struct iovec iov[4] = {
			{ line, strlen(line) },
			{ (void *)ids, ibytes },
			{ (void *)vecs, vbytes },
			{ (void *)fields, fields ? fields_len : 0 },
		};
		/* Bulk: the answer comes after the whole payload. */
		return send_all(c, iov, 4, 0, err);
	}
}

int mv_client_insert_recv(struct mv_client *c, int64_t *first_id,
			  struct mv_err *err)
{
	char *rest, *reply;
	int rc = read_line(c, &reply, err);

	if (rc < 0)
		return rc;
	rc = check_reply(c, reply, &rest, err);
	if (rc < 0)
		return rc;
	if (first_id && mv_reply_get_i64(rest, "first_id", first_id) < 0)
		*first_id = INT64_MIN;
	return 0;
}

int mv_client_insert(struct mv_client *c, const char *name, size_t n,
		     uint32_t dim, const int64_t *ids, const float *vecs,
		     const void *fields, size_t fields_len, int flags,
		     int64_t *first_id, struct mv_err *err)
{
	int rc = mv_client_insert_send(c, name, n, dim, ids, vecs, fields,
				       fields_len, flags, err);

	return rc < 0 ? rc : mv_client_insert_recv(c, first_id, err);
}

int mv_client_delete(struct mv_client *c, const char *name, size_t n,
		     const int64_t *ids, struct mv_err *err)
{
	char line[160], *rest;

	snprintf(line, sizeof(line), "DELETE %s %zu %zu", name, n,
		 n * sizeof(int64_t));
	return request(c, line, ids, n * sizeof(int64_t), &rest, err);
}

int mv_client_flush(struct mv_client *c, const char *session,
		    int64_t *inserted, int64_t *deleted, struct mv_err *err)
{
	char line[160], *rest;
	int rc;

	if (session)
		snprintf(line, sizeof(line), "COMMIT %s", session);
	else
		snprintf(line, sizeof(line), "FLUSH");
	rc = request(c, line, NULL, 0, &rest, err);
	if (rc < 0)
		return rc;
	if (inserted && mv_reply_get_i64(rest, "inserted", inserted) < 0)
		*inserted = 0;
	if (deleted && mv_reply_get_i64(rest, "deleted", deleted) < 0)
		*deleted = 0;
	return 0;
}

int mv_client_session(struct mv_client *c, const char *session,
		      struct mv_err *err)
{
	char line[160], *rest;

	snprintf(line, sizeof(line), "SESSION %s", session);
	return request(c, line, NULL, 0, &rest, err);
}

int mv_client_handoff(struct mv_client *c, struct mv_err *err)
{
	char *rest;

	return request(c, "HANDOFF", NULL, 0, &rest, err);
}

int mv_client_search_send(struct mv_client *c, const char *name,
			  uint32_t dim, size_t k, size_t nq,
			  const float *queries, const char *params,
			  struct mv_err *err)
{
	char small[4096], *line = small;
	size_t qbytes = nq * dim * sizeof(float);
	size_t cap = sizeof(small), plen = params ? strlen(params) : 0;
	struct iovec iov[3];
	int rc;

	if (plen + 256 > cap) {		/* a long filter= */
		cap = plen + 256;
		if (cap > CLIENT_LINE_MAX)
			return mv_err_set(err, MV_EUSAGE,
					  "search parameters too long");
		if (!(line = malloc(cap)))
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((size_t)snprintf(line, cap, "SEARCH %s %zu %zu %zu%s%s",
			     name, k, nq, qbytes, params && *params ? " " : "",
			     params ? params : "") >= cap) {
		if (line != small)
			free(line);
		return mv_err_set(err, MV_EUSAGE, "search parameters too long");
	}
	iov[0] = (struct iovec){ line, strlen(line) };
	iov[1] = (struct iovec){ "\n", 1 };
	iov[2] = (struct iovec){ (void *)queries, qbytes };
	rc = send_all(c, iov, qbytes ? 3 : 2, nq <= SPIN_MAX_NQ, err);
	if (line != small)
		free(line);
	return rc;
}

int mv_client_search_recv(struct mv_client *c, size_t k, size_t nq,
			  int64_t *ids, float *dist, char **text,
			  size_t *text_len, struct mv_err *err)
{
	char *rest, *reply;
	size_t fixed = nq * k * 12;
	int64_t bytes, rnq, rk;
	int rc;

	if (text)
		*text = NULL;
	if (text_len)
		*text_len = 0;
	rc = read_line(c, &reply, err);
	if (rc < 0)
		return rc;
	rc = check_reply(c, reply, &rest, err);
	if (rc < 0)
		return rc;
	if (mv_reply_get_i64(rest, "bytes", &bytes) < 0 ||
	    mv_reply_get_i64(rest, "nq", &rnq) < 0 ||
	    mv_reply_get_i64(rest, "k", &rk) < 0 || rnq < 0 || rk < 0 ||
	    (size_t)rnq != nq || (size_t)rk != k || bytes < 0 ||
	    (uint64_t)bytes < fixed || bytes > ((int64_t)1 << 31))
		return malformed(c, "bad SEARCH reply", err);
	rc = read_payload(c, ids, nq * k * 8, err);
	if (rc == 0)
		rc = read_payload(c, dist, nq * k * 4, err);
	if (rc < 0)
		return rc;
	if ((size_t)bytes > fixed) {
		size_t tl = (size_t)bytes - fixed;
		char *t = malloc(tl + 1);

		if (!t)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		rc = read_payload(c, t, tl, err);
		if (rc < 0) {
			free(t);
			return rc;
		}
		t[tl] = '\0';
		if (text) {
			*text = t;
			if (text_len)
				*text_len = tl;
		} else {
			free(t);
		}
	}
	return 0;
}

int mv_client_search(struct mv_client *c, const char *name, uint32_t dim,
		     size_t k, size_t nq, const float *queries,
		     const char *params, int64_t *ids, float *dist,
		     char **text, size_t *text_len, struct mv_err *err)
{
	int rc = mv_client_search_send(c, name, dim, k, nq, queries, params,
				       err);

	if (rc < 0) {
		if (text)
			*text = NULL;
		return rc;
	}
	return mv_client_search_recv(c, k, nq, ids, dist, text, text_len,
				     err);
}

void mv_rows_release(struct mv_rows *r)
{
	if (r) {
		free(r->block);
		memset(r, 0, sizeof(*r));
	}
}

/*
 * The payload of a GET or SCAN reply: at most max_n rows, each 8 + 4 * dim
 * bytes; a count or size out of these bounds is MV_EPROTO, before anything
 * is allocated.
 */
static int read_rows(struct mv_client *c, char *rest, uint32_t dim,
		     size_t max_n, struct mv_rows *out, struct mv_err *err)
{
	size_t fixed, rowsize = 8 + 4 * (size_t)dim;
	int64_t n, bytes;
	char *b;
	int rc;

	memset(out, 0, sizeof(*out));
	if (mv_reply_get_i64(rest, "n", &n) < 0 ||
	    mv_reply_get_i64(rest, "bytes", &bytes) < 0 || n < 0 ||
	    bytes < 0 || bytes > ((int64_t)1 << 31) ||
	    (uint64_t)n > max_n || (uint64_t)n > (uint64_t)bytes / rowsize)
		return malformed(c, "bad rows payload", err);
	fixed = (size_t)n * rowsize;
	b = malloc((size_t)bytes + 1);
	if (!b)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	rc = read_payload(c, b, (size_t)bytes, err);
	if (rc < 0) {
		free(b);
		return rc;
	}
	b[bytes] = '\0';
	out->block = b;
	out->n = (size_t)n;
	out->ids = (int64_t *)b;
	out->vecs = (float *)(b + 8 * n);
	if ((size_t)bytes > fixed) {
		out->text = b + fixed;
		out->text_len = (size_t)bytes - fixed;
	}
	return 0;
}

int mv_filter_check(const struct mv_coll_info *info, const char *expr,
		    struct mv_err *err)
{
	struct mv_err e = { 0 };
	struct mv_filter *f = mv_filter_parse(expr, info->fields,
					      info->nfields, &e);

	if (!f)
		return mv_err_set(err, e.code, "--filter: %s", e.msg);
	mv_filter_free(f);
	return 0;
}

char *mv_filter_param(const char *expr, struct mv_err *err)
{
	size_t cap = strlen(expr) * 3 + 8;
	char *p = malloc(cap);

	if (!p) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	memcpy(p, "filter=", 7);
	if (mv_proto_escape(expr, p + 7, cap - 7) < 0 ||
	    strlen(p) + 200 > CLIENT_LINE_MAX) {
		free(p);
		mv_err_set(err, MV_EUSAGE, "filter: expression too long");
		return NULL;
	}
	return p;
}

/*
 * A request line: fmt's text, then " filter=<expr>" when filter is
 * given; malloc'ed, NULL with err set.
 */
static char *filter_line(const char *filter, struct mv_err *err,
			 const char *fmt, ...)
{
	char head[200], *fp = NULL, *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	if (filter && !(fp = mv_filter_param(filter, err)))
		return NULL;
	line = malloc(strlen(head) + (fp ? strlen(fp) : 0) + 2);
	if (line)
		sprintf(line, "%s%s%s", head, fp ? " " : "", fp ? fp : "");
	else
		mv_err_set(err, MV_EINTERNAL, "out of memory");
	free(fp);
	return line;
}

int mv_client_get(struct mv_client *c, const char *name, uint32_t dim,
		  size_t n, const int64_t *ids, int want_fields,
		  struct mv_rows *out, struct mv_err *err)
{
	return mv_client_get_filter(c, name, dim, n, ids, want_fields, NULL,
				    out, err);
}

int mv_client_get_filter(struct mv_client *c, const char *name, uint32_t dim,
			 size_t n, const int64_t *ids, int want_fields,
			 const char *filter, struct mv_rows *out,
			 struct mv_err *err)
{
	return mv_client_get_at(c, name, dim, n, ids, want_fields, filter, 0,
				out, err);
}

/* " asof=N", or "" for 0 (now). */
static const char *asof_arg(char *buf, size_t cap, uint64_t asof)
{
	if (!asof)
		return "";
	snprintf(buf, cap, " asof=%llu", (unsigned long long)asof);
	return buf;
}

int mv_client_get_at(struct mv_client *c, const char *name, uint32_t dim,
		     size_t n, const int64_t *ids, int want_fields,
		     const char *filter, uint64_t asof, struct mv_rows *out,
		     struct mv_err *err)
{
	char *line, *rest, ab[40];
	int rc;

	line = filter_line(filter, err, "GET %s %zu %zu%s%s", name, n, n * 8,
			   want_fields ? " fields" : "",
			   asof_arg(ab, sizeof(ab), asof));
	if (!line)
		return err->code;
	rc = request(c, line, ids, n * 8, &rest, err);
	free(line);
	if (rc < 0)
		return rc;
	return read_rows(c, rest, dim, n, out, err);
}

int mv_client_scan(struct mv_client *c, const char *name, uint32_t dim,
		   int64_t after, size_t limit, int want_fields,
		   struct mv_rows *out, struct mv_err *err)
{
	return mv_client_scan_filter(c, name, dim, after, limit, want_fields,
				     NULL, out, err);
}

int mv_client_delete_filter(struct mv_client *c, const char *name,
			    const char *filter, int64_t *n, struct mv_err *err)
{
	char *line, *rest;
	int rc;

	line = filter_line(filter, err, "DELETE %s", name);
	if (!line)
		return err->code;
	rc = request(c, line, NULL, 0, &rest, err);
	free(line);
	if (rc < 0)
		return rc;
	if (mv_reply_get_i64(rest, "n", n) < 0 || *n < 0)
		return malformed(c, "DELETE reply without n", err);
	return 0;
}

int mv_client_scan_filter(struct mv_client *c, const char *name,
			  uint32_t dim, int64_t after, size_t limit,
			  int want_fields, const char *filter,
			  struct mv_rows *out, struct mv_err *err)
{
	return mv_client_scan_at(c, name, dim, after, limit, want_fields,
				 filter, 0, out, err);
}

int mv_client_scan_at(struct mv_client *c, const char *name, uint32_t dim,
		      int64_t after, size_t limit, int want_fields,
		      const char *filter, uint64_t asof, struct mv_rows *out,
		      struct mv_err *err)
{
	char *line, *rest, ab[40];
	int rc;

	line = filter_line(filter, err, "SCAN %s %lld %zu%s%s", name,
			   (long long)after, limit,
			   want_fields ? " fields" : "",
			   asof_arg(ab, sizeof(ab), asof));
	if (!line)
		return err->code;
	rc = request(c, line, NULL, 0, &rest, err);
	free(line);
	if (rc < 0)
		return rc;
	rc = read_rows(c, rest, dim, limit, out, err);
	if (rc < 0)
		return rc;
	/* Ids past after, increasing: a scan that does not advance is bad. */
	for (size_t i = 0; i < out->n; i++)
		if (out->ids[i] <= (i ? out->ids[i - 1] : after)) {
			mv_rows_release(out);
			return malformed(c, "SCAN ids not increasing", err);
		}
	return 0;
}

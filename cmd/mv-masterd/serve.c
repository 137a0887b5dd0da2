/*
 * serve.c - the clients of mv-masterd: the allow-list, a thread per
 * connection (at most max_connections), request lines and the verbs
 * HELLO, PING, QUIT, NODE, NODES and FORGET (docs/PROTOCOL.md, "The
 * master").
 * The master's answers are tiny; no request touches the disk.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "log.h"
#include "master.h"

struct mconn {
	int fd;
	size_t len;
	char buf[MASTER_LINE_MAX + 1];
};

static int say(struct mconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int say(struct mconn *c, const char *fmt, ...)
{
	char line[MASTER_LINE_MAX + 2];
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
	return mv_write_all(c->fd, line, (size_t)n);
}

/*
 * NODES: one TSV line per known node, by number, then END; NODES limits
 * adds the memory memory_limit counts and the limit (the Reduce mode).
 */
static int cmd_nodes(struct master *m, struct mconn *c, int limits)
{
	double now = master_now();
	size_t cap = (size_t)MASTER_NODES_MAX * 400, len = 0;
	char *out = malloc(cap);
	int rc;

	if (!out)
		return say(c, "ERR INTERNAL out of memory");
	pthread_mutex_lock(&m->lock);
	for (int64_t no = -1;;) {
		struct mnode *n = NULL;

		/* The next number up: the table is small. */
		for (int i = 0; i < MASTER_NODES_MAX; i++) {
			struct mnode *x = &m->nodes[i];

			if (x->used && (x->listed || x->live) && x->no > no &&
			    (!n || x->no < n->no))
				n = x;
		}
		if (!n || cap - len < 512)
			break;
		no = n->no;
		len += (size_t)snprintf(out + len, cap - len,
					"%s\t%s\t%" PRId64 "\t%" PRId64 "\t%"
					PRId64, mnode_addr(n),
					mnode_up(m, n, now) ? "up" : "down",
					n->load, n->mem, n->segments);
		if (limits)
			len += (size_t)snprintf(out + len, cap - len,
						"\t%" PRId64 "\t%" PRId64,
						n->held, n->limit);
		out[len++] = '\n';
	}
	pthread_mutex_unlock(&m->lock);
	rc = mv_write_all(c->fd, out, len);
	free(out);
	return rc < 0 ? -1 : say(c, "END");
}

/* NODE [session=NAME | coll=NAME] [avoid=HOST:PORT[,...]] */
static int cmd_node(struct master *m, struct mconn *c, int argc, char **argv)
{
	const char *session = NULL, *coll = NULL, *avoid = NULL;
	struct mv_err e = { 0 };
	char addr[256];
	uint32_t no;

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "session=", 8)) {
			session = argv[i] + 8;
			if (mv_name_check(session, &e) < 0)
				return say(c, "ERR BADNAME %s", e.msg);
		} else if (!strncmp(argv[i], "coll=", 5)) {
			coll = argv[i] + 5;
			if (mv_name_check(coll, &e) < 0)
				return say(c, "ERR BADNAME %s", e.msg);
		} else if (!strncmp(argv[i], "avoid=", 6) && argv[i][6]) {
			avoid = argv[i] + 6;
		} else {
			return say(c, "ERR PROTO bad argument '%.64s': want "
				   "session=NAME, coll=NAME or avoid=HOST:PORT",
				   argv[i]);
		}
	}
	if (session && coll)
		return say(c, "ERR PROTO session= and coll= do not go together");
	if (master_pick(m, session, coll, avoid, addr, sizeof(addr), &no,
			&e) < 0)
		return say(c, "ERR BUSY %s", e.msg);
	return say(c, "OK addr=%s no=%" PRIu32, addr, no);
}

/* FORGET <no>|<host:port>: a member down for good is one no more. */
static int cmd_forget(struct master *m, struct mconn *c, const char *arg)
{
	struct mv_err e = { 0 };
	int64_t no = -1;
	int rc;

	/* An address is compared as text: its host may no longer resolve. */
	if (!strchr(arg, ':')) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (!*arg || *arg == '-' || *end || errno || v > UINT32_MAX)
			return say(c, "ERR PROTO bad node number '%.64s': want "
				   "a number or HOST:PORT", arg);
		no = (int64_t)v;
	}
	rc = master_forget(m, no, arg, &e);
	if (rc == 0)
		return say(c, "OK");
	return say(c, "ERR %s %s", rc == MASTER_NOTMEMBER ? "NOTFOUND" :
		   rc == MASTER_LIVE ? "EXISTS" : rc == MV_EAGAIN ? "IO" :
		   "INTERNAL", e.msg);
}

/* One request line: 0, or -1 to close the connection. */
static int dispatch(struct master *m, struct mconn *c, char *line)
{
	char *argv[8], *save = NULL, *w;
	int argc = 0;

	for (w = strtok_r(line, " \t", &save); w && argc < 8;
	     w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	if (w)
		return say(c, "ERR PROTO too many arguments");
	if (argc == 0)
		return say(c, "ERR PROTO empty request");
	if (!strcmp(argv[0], "HELLO") && argc <= 2)
		return say(c, "OK version=%d server=mv-masterd/%s maxline=%d",
			   MV_PROTO_VERSION, MV_VERSION, MASTER_LINE_MAX);
	if (!strcmp(argv[0], "PING") && argc == 1)
		return say(c, "OK");
	if (!strcmp(argv[0], "QUIT") && argc == 1) {
		say(c, "OK");
		return -1;
	}
	if (!strcmp(argv[0], "NODE"))
		return cmd_node(m, c, argc, argv);
	if (!strcmp(argv[0], "NODES") && argc == 1)
		return cmd_nodes(m, c, 0);
	if (!strcmp(argv[0], "NODES") && argc == 2 &&
	    !strcmp(argv[1], "limits"))
		return cmd_nodes(m, c, 1);
	if (!strcmp(argv[0], "FORGET") && argc == 2)
		return cmd_forget(m, c, argv[1]);
	if (!strcmp(argv[0], "HELLO") || !strcmp(argv[0], "PING") ||
	    !strcmp(argv[0], "QUIT") || !strcmp(argv[0], "NODES") ||
	    !strcmp(argv[0], "FORGET"))
		return say(c, "ERR PROTO wrong number of arguments");
	return say(c, "ERR PROTO unknown verb for mv-masterd: ask NODE for "
		   "a node");
}

static void *conn_main(void *arg)
{
	struct master *m = &the_master;
	struct mconn *c = arg;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t r;

		if (nl) {
			size_t used = (size_t)(nl - c->buf) + 1;

			*nl = '\0';
			if (nl > c->buf && nl[-1] == '\r')
				nl[-1] = '\0';
			if (dispatch(m, c, c->buf) < 0)
				break;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			continue;
		}
		if (c->len == MASTER_LINE_MAX) {
			say(c, "ERR PROTO line too long");
			break;
		}
		r = read(c->fd, c->buf + c->len, MASTER_LINE_MAX - c->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		c->len += (size_t)r;
	}
	close(c->fd);
	free(c);
	atomic_fetch_sub(&m->nconns, 1);
	return NULL;
}

void master_accept(struct master *m, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct mconn *c;
	pthread_t th;
	pthread_attr_t attr;
	int fd;

	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!mv_cidr_allow(m->allow, m->nallow, (struct sockaddr *)&ss)) {
		static const char msg[] = "ERR DENIED address not allowed\n";

		mv_write_all(fd, msg, sizeof(msg) - 1);
		close(fd);
		log_info("refused a connection from an address not allowed");
		return;
	}
	if (atomic_load(&m->nconns) >= m->conf.max_connections) {
		char msg[128];
		int l = snprintf(msg, sizeof(msg), "ERR BUSY too many "
				 "connections: max_connections=%d\n",
				 m->conf.max_connections);

		mv_write_all(fd, msg, (size_t)l);
		close(fd);
		log_warnx("refused a connection: max_connections=%d reached",
			  m->conf.max_connections);
		return;
	}
	if (m->conf.io_timeout > 0) {
		/* A client idle this long is let go. */
		struct timeval tv = { m->conf.io_timeout, 0 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	atomic_fetch_add(&m->nconns, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, conn_main, c)) {
		close(fd);
		free(c);
		atomic_fetch_sub(&m->nconns, 1);
	}
	pthread_attr_destroy(&attr);
}

/*
 * tool.c - the parts every mv tool shares: options, messages, exit
 * statuses, connecting, buffered output with quiet EPIPE, number
 * formatting and the progress line.  See tool.h.  Nothing here exits; the
 * tools' main() functions return what these functions compute.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bigmem.h"
#include "net.h"
#include "tool.h"

#define OPT_VERSION 0x1ff

static const char common_help[] =
	"  -a, --addr ADDR    node or master: unix:PATH or HOST:PORT (default\n"
	"                     $MV_ADDR, else unix:$MV_HOME/mv.sock)\n"
	"  -u, --user USER    user whose data to use (default $MV_USER)\n"
	"  -q, --quiet        no progress and no notes on stderr\n"
	"  -v, --verbose      tell more on stderr\n"
	"  -h, --help         print this help and exit\n"
	"      --version      print the version and exit\n";

static const struct option common_lopts[] = {
	{ "addr", required_argument, NULL, 'a' },
	{ "user", required_argument, NULL, 'u' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

void mv_tool_init(struct mv_tool *t, const char *name, const char *usage,
		  const char *help)
{
	const char *u = getenv("MV_USER");

	memset(t, 0, sizeof(*t));
	t->name = name;
	t->usage = usage;
	t->help = help;
	t->user = u && *u ? u : NULL;
	signal(SIGPIPE, SIG_IGN);
	mv_out_init(&t->out, 1, MV_OUT_BUFSIZE);
}

static void vmsg(const struct mv_tool *t, const char *fmt, va_list ap)
{
	char line[MV_ERR_LEN + 256];
	int n;

	n = snprintf(line, sizeof(line), "%s: ", t->name);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	n = strlen(line);
	line[n++] = '\n';
	/* One write, so that lines of parallel tools do not mix. */
	if (write(2, line, n) < 0)
		return;
}

void mv_tool_err(const struct mv_tool *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(t, fmt, ap);
	va_end(ap);
}

void mv_tool_note(const struct mv_tool *t, const char *fmt, ...)
{
	va_list ap;

	if (t->quiet)
		return;
	va_start(ap, fmt);
	vmsg(t, fmt, ap);
	va_end(ap);
}

void mv_tool_info(const struct mv_tool *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->verbose)
		return;
	va_start(ap, fmt);
	vmsg(t, fmt, ap);
	va_end(ap);
}

int mv_tool_usage(struct mv_tool *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(t, fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s\n", t->usage);
	t->status = mv_exit_code(MV_EUSAGE);
	return t->status;
}

int mv_tool_status(const struct mv_tool *t)
{
	return t->status;
}

static void build_opts(struct mv_tool *t, const char *shortopts,
		       const struct option *longopts)
{
	size_t n = 0;

	snprintf(t->sopts, sizeof(t->sopts), ":a:u:qvh%s",
		 shortopts ? shortopts : "");
	for (const struct option *o = longopts; o && o->name; o++) {
		if (n + 1 >= sizeof(t->lopts) / sizeof(t->lopts[0]) -
		    sizeof(common_lopts) / sizeof(common_lopts[0]))
			MV_BUG("too many options");
		t->lopts[n++] = *o;
	}
	for (const struct option *o = common_lopts; o->name; o++)
		t->lopts[n++] = *o;
	memset(&t->lopts[n], 0, sizeof(t->lopts[n]));
}

/* The option the user typed, for messages: "-k" or "--batch". */
static void opt_text(char *buf, size_t cap, char **argv)
{
	const char *a = optind > 0 ? argv[optind - 1] : "";

	if (optopt > 0 && optopt < 256 && strncmp(a, "--", 2) != 0) {
		snprintf(buf, cap, "-%c", optopt);
		return;
	}
	snprintf(buf, cap, "%.*s", (int)strcspn(a, "="), a);
}

int mv_tool_getopt(struct mv_tool *t, int argc, char **argv,
		   const char *shortopts, const struct option *longopts)
{
	char opt[64];
	int c;

	if (!t->sopts[0])
		build_opts(t, shortopts, longopts);
	opterr = 0;
	for (;;) {
		optopt = 0;
		c = getopt_long(argc, argv, t->sopts, t->lopts, NULL);
		switch (c) {
		case 'a':
			t->addr = optarg;
			break;
		case 'u':
			t->user = optarg;
			break;
		case 'q':
			t->quiet = 1;
			t->verbose = 0;
			break;
		case 'v':
			t->verbose++;
			t->quiet = 0;
			break;
		case 'h':
			printf("usage: %s\n\n%s%s", t->usage,
			       t->help ? t->help : "", common_help);
			t->status = 0;
			return MV_TOOL_EXIT;
		case OPT_VERSION:
			printf("%s (mv) %s\n", t->name, MV_VERSION);
			t->status = 0;
			return MV_TOOL_EXIT;
		case ':':
			opt_text(opt, sizeof(opt), argv);
			mv_tool_usage(t, "option '%s' needs a value", opt);
			return MV_TOOL_EXIT;
		case '?':
			opt_text(opt, sizeof(opt), argv);
			if (strncmp(opt, "--", 2) == 0 &&
			    strchr(argv[optind - 1], '='))
				mv_tool_usage(t, "option '%s' takes no value",
					      opt);
			else
				mv_tool_usage(t, "unknown option '%s'", opt);
			return MV_TOOL_EXIT;
		default:
			return c;
		}
	}
}

int mv_tool_int(struct mv_tool *t, const char *opt, const char *s,
		int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return mv_tool_usage(t, "bad value '%.40s' for %s: want an "
				     "integer from %" PRId64 " to %" PRId64,
				     s, opt, min, max);
	*out = v;
	return 0;
}

#define ROUTE_TRIES 3	/* nodes a master may name before the tool gives up */

/*
 * Ask the master on m (at maddr) for a node and connect to it, asking
 * again, avoiding the nodes that did not answer; m is freed.
 */
static int via_master(struct mv_tool *t, struct mv_client *m,
		      const char *maddr, struct mv_err *err)
{
	char avoid[800] = "", line[1024], reply[512], node[256];
	struct mv_err last = { 0 };
	int rc;

	for (int i = 0; i < ROUTE_TRIES; i++) {
		struct mv_err e = { 0 };
		struct mv_client *c;

		snprintf(line, sizeof(line), "NODE%s%s%s%s%s%s",
			 t->session ? " session=" : "",
			 t->session ? t->session : "",
			 t->coll ? " coll=" : "", t->coll ? t->coll : "",
			 avoid[0] ? " avoid=" : "", avoid);
		rc = mv_client_cmd(m, line, reply, sizeof(reply), err);
		if (rc < 0)
			goto out;
		if (mv_reply_get(reply, "addr", node, sizeof(node)) < 0 ||
		    !node[0]) {
			rc = mv_err_set(err, MV_EPROTO, "malformed reply from "
					"'%s': '%.80s'", maddr, reply);
			goto out;
		}
		c = mv_client_connect(node, &e);
		if (c) {
			t->client = c;
			rc = 0;
			goto out;
		}
		last = e;
		if (strlen(avoid) + strlen(node) + 2 < sizeof(avoid))
			snprintf(avoid + strlen(avoid),
				 sizeof(avoid) - strlen(avoid), "%s%s",
				 avoid[0] ? "," : "", node);
	}
	rc = mv_err_set(err, MV_EUNAVAIL, "the master at '%s' named nodes "
			"that do not answer, %d times: %s", maddr, ROUTE_TRIES,
			last.msg);
out:
	mv_client_free(m);
	return rc;
}

/*
 * t->client from the address: a node's, or through a master (tool.h).
 */
static int connect_routed(struct mv_tool *t, struct mv_err *err)
{
	char *def = NULL, reply[512], server[128];
	const char *addr = t->addr;
	struct mv_client *c;
	struct mv_addr a;
	int rc = 0;

	if (!addr && !(addr = def = mv_default_addr()))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	c = mv_client_connect(addr, err);
	if (!c) {
		rc = err && err->code ? err->code : MV_EUNAVAIL;
		goto out;
	}
	if (mv_addr_parse(addr, &a, NULL) < 0 || a.family == AF_UNIX) {
		t->client = c;
		goto out;
	}
	rc = mv_client_cmd(c, "HELLO 1", reply, sizeof(reply), err);
	if (rc < 0) {
		mv_client_free(c);
		goto out;
	}
	if (mv_reply_get(reply, "server", server, sizeof(server)) < 0 ||
	    strncmp(server, "mv-masterd/", 11)) {
		t->client = c;
		goto out;
	}
	t->master = 1;
	if (t->at_master) {
		t->client = c;
		goto out;
	}
	rc = via_master(t, c, a.text, err);
out:
	free(def);
	return rc;
}

int mv_tool_connect(struct mv_tool *t, struct mv_err *err)
{
	char line[MV_NAME_MAX + 16], reply[256];
	int rc;

	/* A name is data: a bad one is 65, as for a collection name. */
	if (t->user && mv_name_check(t->user, NULL) < 0)
		return mv_err_set(err, MV_EDATA,
				  "bad user name '%.80s': want "
				  "[A-Za-z][A-Za-z0-9_]{0,63}", t->user);
	rc = connect_routed(t, err);
	if (rc < 0)
		return rc;
	if (t->user && !(t->master && t->at_master)) {
		snprintf(line, sizeof(line), "USER %s", t->user);
		rc = mv_client_cmd(t->client, line, reply, sizeof(reply),
				   err);
		if (rc == MV_EUSAGE) {
			/* ERR PROTO: a node without the USER verb. */
			mv_err_clear(err);
			return mv_err_set(err, MV_ESERVER, "'%s' does not "
					  "serve users: cannot select user "
					  "'%s'", mv_client_addr(t->client),
					  t->user);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int mv_tool_in_doubt(const struct mv_tool *t, int rc, struct mv_err *err,
		     const char *check)
{
	size_t len;

	if (rc != MV_EUNAVAIL || !err || !mv_client_in_doubt(t->client))
		return rc;
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, "; the commit was "
		 "sent, its outcome is unknown: %s", check);
	return rc;
}

static const char *code_text(int rc)
{
	switch (rc) {
	case MV_ESERVER: return "the node refused the request";
	case MV_EUSAGE: return "bad usage";
	case MV_EDATA: return "bad input data";
	case MV_ENOINPUT: return "input file missing";
	case MV_EUNAVAIL: return "the node does not answer";
	case MV_EIO: return "input/output error";
	case MV_EAGAIN: return "the node is busy: try again later";
	case MV_EPROTO: return "malformed reply from the node";
	case MV_EPERM: return "not allowed";
	case MV_ECONFIG: return "bad configuration";
	default: return "internal error";
	}
}

int mv_tool_exit(struct mv_tool *t, int rc, const struct mv_err *err)
{
	struct mv_err oerr = { 0 };
	int orc, status;

	if (t->out.len)
		mv_out_flush(&t->out);
	orc = mv_out_status(&t->out, &oerr);
	if (rc == 0 && orc < 0) {
		rc = orc;
		err = &oerr;
	}
	if (rc == MV_TOOL_EPIPE) {
		status = 0;
	} else {
		status = mv_exit_code(rc);
		if (rc < 0 && err)
			mv_tool_err(t, "%s", err->code && err->msg[0] ?
				    err->msg : code_text(rc));
	}
	mv_client_free(t->client);
	t->client = NULL;
	mv_out_release(&t->out);
	if (fclose(stdout) != 0 && status == 0 && errno != EPIPE) {
		mv_tool_err(t, "write error on stdout: %s", strerror(errno));
		status = mv_exit_code(MV_EIO);
	}
	return status;
}

double mv_tool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Output buffer. */

void mv_out_init(struct mv_out *o, int fd, size_t cap)
{
	o->fd = fd;
	o->buf = NULL;
	o->len = o->cap = 0;
	o->want = cap;
	o->errnum = 0;
}

void mv_out_release(struct mv_out *o)
{
	free(o->buf);
	o->buf = NULL;
	o->cap = o->len = 0;
}

static int write_all(struct mv_out *o, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(o->fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->errnum = errno;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

int mv_out_flush(struct mv_out *o)
{
	int rc = 0;

	if (o->errnum)
		return -1;
	if (!o->buf) {
		/* The buffer comes with the first write. */
		o->buf = mv_big_malloc(o->want);
		if (!o->buf) {
			o->errnum = ENOMEM;
			return -1;
		}
		o->cap = o->want;
	}
	if (o->len)
		rc = write_all(o, o->buf, o->len);
	o->len = 0;
	return rc;
}

void mv_out_write_slow(struct mv_out *o, const void *p, size_t n)
{
	if (mv_out_flush(o) < 0)
		return;
	if (n >= o->cap) {
		write_all(o, p, n);
		return;
	}
	memcpy(o->buf, p, n);
	o->len = n;
}

int mv_out_status(const struct mv_out *o, struct mv_err *err)
{
	if (!o->errnum)
		return 0;
	if (o->errnum == EPIPE)
		return MV_TOOL_EPIPE;
	return mv_err_set(err, MV_EIO, "write error on stdout: %s",
			  strerror(o->errnum));
}

/* Number formatting. */

size_t mv_fmt_u64(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

size_t mv_fmt_i64(char *buf, int64_t v)
{
	if (v < 0) {
		buf[0] = '-';
		return 1 + mv_fmt_u64(buf + 1, -(uint64_t)v);
	}
	return mv_fmt_u64(buf, v);
}

typedef unsigned __int128 u128;

static u128 pow10_128(int n)
{
	static const uint64_t p19 = 10000000000000000000ULL;
	u128 r = 1;

	while (n >= 19) {
		r *= p19;
		n -= 19;
	}
	while (n-- > 0)
		r *= 10;
	return r;
}

/*
 * m * 2^e2 * 10^s, truncated, or rounded to nearest with ties to even as
 * glibc's printf rounds, into *q.  -1 when the exact value does not fit
 * the 128-bit fast path.
 */
static int scaled(uint32_t m, int e2, int s, int round, uint64_t *q)
{
	u128 num, den, rem, half;
	int sh;

	if (s >= 0) {
		if (s > 30 || (e2 > 0 && (s > 10 || e2 > 60)))
			return -1;
		num = (u128)m * pow10_128(s);
		if (e2 >= 0) {
			num <<= e2;
			if (num >> 64)
				return -1;
			*q = (uint64_t)num;
			return 0;
		}
		sh = -e2;
		if (sh > 127)
			return -1;
		if ((num >> sh) >> 64)
			return -1;
		*q = (uint64_t)(num >> sh);
		if (round) {
			rem = num & (((u128)1 << sh) - 1);
			half = (u128)1 << (sh - 1);
			if (rem > half || (rem == half && (*q & 1)))
				++*q;
		}
		return 0;
	}
	if (s < -30 || e2 < 0 || e2 > 103)
		return -1;
	num = (u128)m << e2;
	den = pow10_128(-s);
	if ((num / den) >> 64)
		return -1;
	*q = (uint64_t)(num / den);
	if (round) {
		rem = num % den;
		if (rem > den - rem || (rem == den - rem && (*q & 1)))
			++*q;
	}
	return 0;
}

size_t mv_fmt_g9(char *buf, float f)
{
	uint32_t bits, m, ex;
	uint64_t q;
	int e2, x, nd, i;
	char d[9], *p = buf;

	memcpy(&bits, &f, sizeof(bits));
	ex = (bits >> 23) & 0xff;
	m = bits & 0x7fffff;
	if (ex == 0xff || ex == 0)
		goto slow;	/* inf, nan, zero, subnormal */
	m |= 0x800000;
	e2 = (int)ex - 150;
	/* Guess the decimal exponent x, then fix it: 10^8 <= q < 10^9. */
	x = ((e2 + 23) * 78913) >> 18;
	for (i = 0;; i++) {
		if (i == 4 || scaled(m, e2, 8 - x, 0, &q) < 0)
			goto slow;
		if (q >= 1000000000ULL)
			x++;
		else if (q < 100000000ULL)
			x--;
		else
			break;
	}
	if (scaled(m, e2, 8 - x, 1, &q) < 0)
		goto slow;
	if (q == 1000000000ULL) {
		q = 100000000ULL;
		x++;
	}
	if (bits >> 31)
		*p++ = '-';
	for (i = 8; i >= 0; i--) {
		d[i] = '0' + q % 10;
		q /= 10;
	}
	for (nd = 9; nd > 1 && d[nd - 1] == '0'; nd--)
		;
	if (x >= -4 && x < 9) {
		if (x >= 0) {
			memcpy(p, d, x + 1);
			p += x + 1;
			if (nd > x + 1) {
				*p++ = '.';
				memcpy(p, d + x + 1, nd - x - 1);
				p += nd - x - 1;
			}
		} else {
			*p++ = '0';
			*p++ = '.';
			for (i = 0; i < -x - 1; i++)
				*p++ = '0';
			memcpy(p, d, nd);
			p += nd;
		}
		return p - buf;
	}
	*p++ = d[0];
	if (nd > 1) {
		*p++ = '.';
		memcpy(p, d + 1, nd - 1);
		p += nd - 1;
	}
	*p++ = 'e';
	*p++ = x < 0 ? '-' : '+';
	if (x < 0)
		x = -x;
	if (x >= 100)
		*p++ = '0' + x / 100;
	*p++ = '0' + x / 10 % 10;
	*p++ = '0' + x % 10;
	return p - buf;
slow:
	return snprintf(buf, 24, "%.9g", (double)f);
}

/* Progress line. */

void mv_progress_start(struct mv_progress *p, const struct mv_tool *t,
		       uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->name = t->name;
	p->on = !t->quiet && isatty(2);
	p->t0 = p->last = mv_tool_now();
	p->total = total;
}

void mv_progress_update(struct mv_progress *p, uint64_t rows,
			uint64_t bytes)
{
	char line[160];
	double now, dt, mb;
	int n;

	if (!p->on)
		return;
	now = mv_tool_now();
	if (now - p->last < 0.1)
		return;
	p->last = now;
	dt = now - p->t0;
	mb = bytes / 1e6;
	n = snprintf(line, sizeof(line), "\r%s: %" PRIu64 " rows  %.1f MB  "
		     "%.1f MB/s", p->name, rows, mb, dt > 0 ? mb / dt : 0.0);
	if (p->total && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - n, "  %3d%%",
			      (int)(bytes * 100 / p->total > 100 ? 100 :
				    bytes * 100 / p->total));
	if (n > 0 && (size_t)n < sizeof(line) - 4) {
		memcpy(line + n, "\033[K", 3);
		if (write(2, line, n + 3) > 0)
			p->drawn = 1;
	}
}

void mv_progress_end(struct mv_progress *p)
{
	if (p->on && p->drawn && write(2, "\r\033[K", 4) < 0)
		p->drawn = 0;
	p->drawn = 0;
}

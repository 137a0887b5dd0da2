/*
 * tool.h - what every mv tool (cmd/mv-X/main.c) shares: the common options
 * (-a ADDR, -u USER, -h, --version, -q, -v), usage and error messages in
 * the "mv-X: message" form, connecting to the node, a buffered stdout that
 * turns a closed pipe into a quiet exit, fast "%.9g" output, and a progress
 * line on a terminal.
 *
 * Nothing here exits: functions return an exit status (>= 0) or a return
 * code (0 or MV_E*) and main() returns what mv_tool_exit() computes.  Not
 * for the daemons, which log instead of printing.
 */
#ifndef MV_TOOL_H
#define MV_TOOL_H

#include <getopt.h>
#include <stdint.h>
#include <string.h>
#include "mv.h"
#include "client.h"

/*
 * Return code for "the reader of stdout went away" (EPIPE): the tool stops
 * and mv_tool_exit() ends it quietly with status 0, as `| head` expects.
 */
#define MV_TOOL_EPIPE (-141)

/* Returned by mv_tool_getopt() when main() must return mv_tool_status(). */
#define MV_TOOL_EXIT (-2)

/* First value free for a tool's long-only options. */
#define MV_OPT_TOOL 0x200

#define MV_OUT_BUFSIZE (1 << 20)

/*
 * A buffered writer on a file descriptor, used for stdout.  After a write
 * error every further write is dropped; mv_out_status() tells what happened.
 */
struct mv_out {
	int fd;
	char *buf;
	size_t len, cap;
	size_t want;		/* cap once allocated, at the first write */
	int errnum;		/* errno of the first failed write, or 0 */
};

struct mv_tool {
	const char *name;	/* "mv-insert" */
	const char *usage;	/* short synopsis: "mv-ls [options] [NAME]" */
	const char *help;	/* option list printed by -h */
	const char *addr;	/* -a; NULL: $MV_ADDR or the embedded socket */
	const char *user;	/* -u or $MV_USER; NULL when neither */
	int quiet, verbose;
	int status;		/* exit status when getopt says MV_TOOL_EXIT */
	struct mv_client *client;
	/*
	 * Given a master's address (HOST:PORT; mv-masterd answers HELLO with
	 * server=mv-masterd/...), mv_tool_connect asks it NODE and connects
	 * to the node it names: with session set, the node that holds that
	 * named session; with coll (mv-index), the node ranked first for
	 * that collection, where its builds run.  at_master: stay
	 * connected to the master instead (mv-stat); master is then 1 when
	 * the server is one.
	 */
	const char *session;
	const char *coll;
	int at_master;
	int master;
	struct mv_out out;
	/* getopt tables: the tool's options merged with the common ones */
	char sopts[96];
	struct option lopts[48];
};

/*
 * Set t up: ignore SIGPIPE (write errors come back as EPIPE), read
 * MV_USER, allocate the stdout buffer.  name, usage and help are static
 * strings.
 */
void mv_tool_init(struct mv_tool *t, const char *name, const char *usage,
		  const char *help);

/*
 * getopt_long() with the common options added to the tool's own (shortopts
 * without a leading ':', longopts ended by a zero entry, at most 40).
 * Handles the common options itself and returns the tool's option
 * characters, -1 at the end of the options, or MV_TOOL_EXIT after -h,
 * --version or a bad option (main() then returns mv_tool_status(t)).
 */
int mv_tool_getopt(struct mv_tool *t, int argc, char **argv,
		   const char *shortopts, const struct option *longopts);
int mv_tool_status(const struct mv_tool *t);

/*
 * Print "mv-X: message" and the one-line usage on stderr; returns 64 (to be
 * returned by main()).
 */
int mv_tool_usage(struct mv_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Parse a decimal integer option value in [min, max]: 0, or prints a usage
 * error naming opt and returns 64.
 */
int mv_tool_int(struct mv_tool *t, const char *opt, const char *s,
		int64_t min, int64_t max, int64_t *out);

/* "mv-X: message" on stderr: always, unless -q, only with -v. */
void mv_tool_err(const struct mv_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mv_tool_note(const struct mv_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mv_tool_info(const struct mv_tool *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Connect to the node (-a, $MV_ADDR or the default socket) into t->client
 * and, when a user was given, select it.  0 or MV_EUNAVAIL ("cannot
 * connect to 'unix:...': ...") with err set; MV_EDATA for a bad user name.
 * A TCP address is greeted with HELLO; when it is a master's, the tool is
 * sent on to a node (see session above), and a node that does not answer
 * makes it ask the master again, avoiding that node, up to 3 times
 * (then MV_EUNAVAIL); a master with no live node is MV_EAGAIN.  Unix
 * socket addresses are nodes: no HELLO, no extra round trip.
 */
int mv_tool_connect(struct mv_tool *t, struct mv_err *err);

/*
 * After a FLUSH or COMMIT failed with rc: when it is MV_EUNAVAIL and the
 * request went out whole (mv_client_in_doubt), the node may have committed
 * before the connection broke; append to err that the outcome is unknown
 * and how to check (check: "check with mv-get ...").  Returns rc.
 */
int mv_tool_in_doubt(const struct mv_tool *t, int rc, struct mv_err *err,
		     const char *check);

/*
 * The end of every main(): prints err for a failed rc ("mv-X: message";
 * err NULL when the error was already reported),
 * flushes stdout, closes the connection and stdout, and returns the exit
 * status: mv_exit_code(rc), 0 for MV_TOOL_EPIPE, 74 when stdout could not
 * be written.
 */
int mv_tool_exit(struct mv_tool *t, int rc, const struct mv_err *err);

/* Seconds on a monotonic clock. */
double mv_tool_now(void);

/*
 * The output buffer.  Writes never fail on the spot; mv_out_status() is
 * 0, MV_TOOL_EPIPE when the reader went away, or MV_EIO with err set.
 */
void mv_out_init(struct mv_out *o, int fd, size_t cap);
void mv_out_release(struct mv_out *o);
int mv_out_flush(struct mv_out *o);
int mv_out_status(const struct mv_out *o, struct mv_err *err);
void mv_out_write_slow(struct mv_out *o, const void *p, size_t n);

/* Room for n bytes (n <= cap), flushing when needed; NULL after an error. */
static inline char *mv_out_room(struct mv_out *o, size_t n)
{
	if (o->cap - o->len < n && mv_out_flush(o) < 0)
		return NULL;
	return o->errnum ? NULL : o->buf + o->len;
}

static inline void mv_out_write(struct mv_out *o, const void *p, size_t n)
{
	if (o->cap - o->len >= n) {
		if (n)
			memcpy(o->buf + o->len, p, n);
		o->len += n;
	} else {
		mv_out_write_slow(o, p, n);
	}
}

static inline void mv_out_str(struct mv_out *o, const char *s)
{
	mv_out_write(o, s, strlen(s));
}

static inline void mv_out_putc(struct mv_out *o, char ch)
{
	if (o->len == o->cap && mv_out_flush(o) < 0)
		return;
	o->buf[o->len++] = ch;
}

/*
 * Formatting into a caller buffer; each returns the length written (no
 * NUL).  mv_fmt_i64 needs 20 bytes, mv_fmt_g9 24.  mv_fmt_g9 prints
 * exactly what printf("%.9g", (double)f) prints.
 */
size_t mv_fmt_u64(char *buf, uint64_t v);
size_t mv_fmt_i64(char *buf, int64_t v);
size_t mv_fmt_g9(char *buf, float f);

static inline void mv_out_i64(struct mv_out *o, int64_t v)
{
	char *p = mv_out_room(o, 24);

	if (p)
		o->len += mv_fmt_i64(p, v);
}

static inline void mv_out_g9(struct mv_out *o, float f)
{
	char *p = mv_out_room(o, 32);

	if (p)
		o->len += mv_fmt_g9(p, f);
}

/*
 * A progress line on stderr, drawn only when stderr is a terminal and -q
 * was not given, at most ten times a second: rows, MB, MB/s and, when the
 * input size is known, the percentage.
 */
struct mv_progress {
	const char *name;
	int on;
	int drawn;
	double t0, last;
	uint64_t total;		/* bytes, 0 when unknown */
};
void mv_progress_start(struct mv_progress *p, const struct mv_tool *t,
		       uint64_t total);
void mv_progress_update(struct mv_progress *p, uint64_t rows,
			uint64_t bytes);
/* Erase the line. */
void mv_progress_end(struct mv_progress *p);

#endif

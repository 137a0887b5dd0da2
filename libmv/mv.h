/*
 * mv.h - version, error record and error codes shared by every part of mv.
 *
 * Library calls return 0 on success or a negative MV_E* code, and fill the
 * optional struct mv_err (last argument, NULL allowed) with a message.  The
 * codes are the negated sysexits(3) exit statuses that a tool returns for
 * them, so a tool's main() ends with `return mv_exit_code(rc);`.
 */
#ifndef MV_H
#define MV_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MV_VERSION "0.1.0"
#define MV_PROTO_VERSION 1
#define MV_FORMAT_VERSION 1	/* of every file and record on disk */

#define MV_ERR_LEN 256

/* Error codes: -(sysexits status).  MV_ESERVER is "the server said no". */
enum {
	MV_OK = 0,
	MV_ESERVER = -1,	/* ERR reply: unknown collection, exists... */
	MV_EUSAGE = -64,
	MV_EDATA = -65,		/* bad input data, wrong dimension, dup id */
	MV_ENOINPUT = -66,	/* input file missing */
	MV_EUNAVAIL = -69,	/* daemon does not answer */
	MV_EINTERNAL = -70,
	MV_EIO = -74,		/* local I/O error */
	MV_EAGAIN = -75,	/* busy, shutting down: try again later */
	MV_EPROTO = -76,	/* malformed reply */
	MV_EPERM = -77,
	MV_ECONFIG = -78,
};

/*
 * What a server-side error is about, when its code alone does not say:
 * the protocol's reply code (docs/PROTOCOL.md) is decided where the error
 * is made, never guessed from the message.  0: the code's usual meaning.
 */
enum mv_kind {
	MV_K_NONE = 0,
	MV_K_NOTFOUND,		/* unknown collection */
	MV_K_EXISTS,		/* collection already exists */
	MV_K_NOSESSION,		/* unknown named session */
	MV_K_BADNAME,
	MV_K_BADDIM,
	MV_K_DUPID,
	MV_K_BUSY,		/* conflicting work, or a limit reached */
	MV_K_SHUTDOWN,
};

struct mv_err {
	int code;		/* first error wins: 0 until set */
	int kind;		/* enum mv_kind, with code */
	char msg[MV_ERR_LEN];
};

/*
 * Record an error; a no-op when err is NULL or already holds one.  Returns
 * code so that callers can write `return mv_err_set(err, MV_EIO, ...);`.
 */
int mv_err_set(struct mv_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like mv_err_set, recording the kind of the error as well. */
int mv_err_setk(struct mv_err *err, int code, int kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Like mv_err_set, appending ": strerror(errno)". */
int mv_err_sys(struct mv_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mv_err_clear(struct mv_err *err);

/* The process exit status for a return code (0 or MV_E*). */
static inline int mv_exit_code(int rc) { return rc < 0 ? -rc : 0; }

/* Crash with file:line on a broken invariant (git's BUG()). */
#define MV_BUG(...) mv_bug(__FILE__, __LINE__, __VA_ARGS__)
void mv_bug(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* Metrics of a collection. */
enum mv_metric { MV_L2 = 0, MV_IP = 1, MV_COSINE = 2 };
const char *mv_metric_name(enum mv_metric m);
int mv_metric_parse(const char *s, enum mv_metric *out);

/* Scalar field types.  A bool is stored as an int64 column of 0 or 1. */
enum mv_ftype { MV_INT64 = 0, MV_FLOAT64 = 1, MV_STRING = 2, MV_BOOL = 3 };
const char *mv_ftype_name(enum mv_ftype t);
int mv_ftype_parse(const char *s, enum mv_ftype *out);

#define MV_NAME_MAX 64		/* [A-Za-z][A-Za-z0-9_]{0,63} */
#define MV_DIM_MAX 65536
#define MV_FIELDS_MAX 32

/* A scalar field of a collection. */
struct mv_field {
	char name[MV_NAME_MAX + 1];
	enum mv_ftype type;
};

/* 0 if s is a valid, non-reserved collection or user name. */
int mv_name_check(const char *s, struct mv_err *err);

/* Default data directory: $MV_HOME, else $HOME/.mv.  Caller frees. */
char *mv_home(void);
/* mkdir -p, new directories 0700 whatever the umask: 0 or MV_EIO. */
int mv_mkdir_p(const char *dir, struct mv_err *err);
/*
 * pwrite all n bytes at off, through short writes and EINTR: 0, or -1
 * with errno (ENOSPC when the disk takes no more).
 */
int mv_pwrite_all(int fd, const void *buf, size_t n, long long off);

/* Milliseconds of CLOCK_MONOTONIC; sleep ms milliseconds, through EINTR. */
int64_t mv_mono_ms(void);
void mv_sleep_ms(long ms);
/* The instant mono (mv_mono_ms's) as a timespec, for the timed wait of a
 * condition variable on CLOCK_MONOTONIC (pthread_condattr_setclock). */
void mv_mono_ts(int64_t mono, struct timespec *ts);

/* Default address: $MV_ADDR, else unix:$MV_HOME/mv.sock.  Caller frees. */
char *mv_default_addr(void);

#ifdef __cplusplus
}
#endif
#endif

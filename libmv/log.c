/*
 * log.c - the daemons' log: one line per event on stderr with a UTC time
 * stamp and a level letter.  fatal() is for start-up and broken
 * invariants only; request errors are replies, not log lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"

static int verbose;

void log_init(int verbosity)
{
	verbose = verbosity;
}

static void vlog(char level, int sys, const char *fmt, va_list ap)
{
	char msg[1024], ts[32];
	int saved = errno;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (sys)
		fprintf(stderr, "%s %c %s: %s\n", ts, level, msg,
			strerror(saved));
	else
		fprintf(stderr, "%s %c %s\n", ts, level, msg);
}

#define LOGFN(name, level, sys, min)				\
	void name(const char *fmt, ...)				\
	{							\
		va_list ap;					\
		if (verbose < (min))				\
			return;					\
		va_start(ap, fmt);				\
		vlog(level, sys, fmt, ap);			\
		va_end(ap);					\
	}

LOGFN(log_warn, 'W', 1, -1)
LOGFN(log_warnx, 'W', 0, -1)
LOGFN(log_info, 'I', 0, 0)
LOGFN(log_debug, 'D', 0, 1)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog('E', 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog('E', 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * log.h - daemon logging (the OpenBSD log.h set).  Lines go to stderr as
 * "2026-11-25T12:00:00Z I message"; levels E W I D.  Thread-safe.
 */
#ifndef MV_LOG_H
#define MV_LOG_H

void log_init(int verbosity);		/* 0 info, 1 debug, -1 warnings only */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
void fatalx(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

#endif

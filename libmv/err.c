/*
 * err.c - the error record, names of metrics and field types, name checks
 * default paths and a pwrite loop.  Everything here is small and
 * dependency-free.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mv.h"

static int err_vset(struct mv_err *err, int code, int kind, int sys,
		    const char *fmt, va_list ap)
{
	int saved = errno;

	if (!err || err->code)
		return code;
	err->code = code;
	err->kind = kind;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (sys) {
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
			 strerror(saved));
	}
	return code;
}

int mv_err_set(struct mv_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, MV_K_NONE, 0, fmt, ap);
	va_end(ap);
	return code;
}

int mv_err_setk(struct mv_err *err, int code, int kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, kind, 0, fmt, ap);
	va_end(ap);
	return code;
}

int mv_err_sys(struct mv_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, MV_K_NONE, 1, fmt, ap);
	va_end(ap);
	return code;
}

void mv_err_clear(struct mv_err *err)
{
	if (err) {
		err->code = 0;
		err->kind = MV_K_NONE;
		err->msg[0] = '\0';
	}
}

void mv_bug(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "BUG: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static const char *const metric_names[] = { "l2", "ip", "cosine" };
static const char *const ftype_names[] = { "int64", "float64", "string",
					    "bool" };

const char *mv_metric_name(enum mv_metric m)
{
	return (unsigned)m < 3 ? metric_names[m] : "?";
}

int mv_metric_parse(const char *s, enum mv_metric *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, metric_names[i])) {
			*out = (enum mv_metric)i;
			return 0;
		}
	return -1;
}

const char *mv_ftype_name(enum mv_ftype t)
{
	return (unsigned)t < 4 ? ftype_names[t] : "?";
}

int mv_ftype_parse(const char *s, enum mv_ftype *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, ftype_names[i])) {
			*out = (enum mv_ftype)i;
			return 0;
		}
	return -1;
}

int mv_name_check(const char *s, struct mv_err *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > MV_NAME_MAX ||
	    !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		goto bad;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			goto bad;
	}
	if (!strcmp(s, "config") || !strcmp(s, "collection_list") ||
	    !strcmp(s, "user_list") ||
	    (n >= 9 && !strcmp(s + n - 9, "_property")))
		return mv_err_setk(err, MV_EDATA, MV_K_BADNAME,
				   "name '%s' is reserved", s);
	return 0;
bad:
	return mv_err_setk(err, MV_EDATA, MV_K_BADNAME,
			  "bad name '%.80s': want [A-Za-z][A-Za-z0-9_]{0,63}",
			  s);
}

char *mv_home(void)
{
	const char *h = getenv("MV_HOME");
	char *out;

	if (h && *h)
		return strdup(h);
	h = getenv("HOME");
	if (!h || !*h)
		h = "/";
	if (asprintf(&out, "%s/.mv", h) < 0)
		return NULL;
	return out;
}

char *mv_default_addr(void)
{
	const char *a = getenv("MV_ADDR");
	char *home, *out;

	if (a && *a)
		return strdup(a);
	home = mv_home();
	if (!home)
		return NULL;
	if (asprintf(&out, "unix:%s/mv.sock", home) < 0)
		out = NULL;
	free(home);
	return out;
}

/*
 * mkdir -p: missing directories are made 0700 whatever the umask (what mv
 * keeps is its owner's alone); existing ones are left as they are.
 */
int mv_mkdir_p(const char *dir, struct mv_err *err)
{
	char *d = strdup(dir);
	int rc = 0;

	if (!d)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (!*d) {
		free(d);
		return mv_err_set(err, MV_EUSAGE, "empty directory name");
	}
	for (char *s = d + 1;; s++) {
		char c;

		if (*s && *s != '/')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(d, 0700) == 0) {
			/* umask may have taken bits (0222 gives 0500). */
			if (chmod(d, 0700) < 0) {
				rc = mv_err_sys(err, MV_EIO, "chmod '%s'", d);
				break;
			}
		} else if (errno != EEXIST) {
			rc = mv_err_sys(err, MV_EIO, "mkdir '%s'", d);
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(d);
	return rc;
}

int mv_pwrite_all(int fd, const void *buf, size_t n, long long off)
{
	const char *p = buf;

	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

int64_t mv_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mv_mono_ts(int64_t mono, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono / 1000);
	ts->tv_nsec = (long)(mono % 1000) * 1000000;
}

void mv_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * timeaxis.c - the tools' half of --as-of (DESIGN.md "The time axis"):
 * parsing FLUSH or TIME, and turning a time into the last retained flush
 * at or before it through the node's HISTORY.  The node checks a flush
 * number itself (asof=, docs/PROTOCOL.md).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "client.h"

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n digits at *p into *v; the pointer moves past them.  -1: not digits. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return 0;
}

static int leap_year(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int iso_ms(const char *s, int64_t *ms)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, se = 0, frac = 0, sign = 0, oh = 0, om = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
				     30, 31 };

	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 ||
	    *p++ != '-' || digits(&p, 2, &d) < 0)
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) < 0 || *p++ != ':' ||
		    digits(&p, 2, &mi) < 0)
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se) < 0)
				return -1;
			if (*p == '.' || *p == ',') {
				int scale = 100, any = 0;

				for (p++; isdigit((unsigned char)*p); p++) {
					frac += (*p - '0') * scale;
					scale /= 10;
					any = 1;
				}
				if (!any)
					return -1;
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '+' ? 1 : -1;
			if (digits(&p, 2, &oh) < 0)
				return -1;
			if (*p == ':')
				p++;
			if (digits(&p, 2, &om) < 0)
				return -1;
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap_year(y)) || h > 23 || mi > 59 ||
	    se > 60 || oh > 23 || om > 59)
		return -1;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
		sign * (oh * 3600 + om * 60)) * 1000) + frac;
	if (se == 60) {
		/*
		 * A leap second is the 61st second of the last minute of a
		 * UTC day, and only there; Unix time has no number for it:
		 * it counts as the last millisecond before the next day.
		 */
		if ((*ms - frac) % 86400000 != 0)
			return -1;
		*ms -= frac + 1;
	}
	return 0;
}

int mv_asof_parse(const char *spec, uint64_t *flush, int64_t *ms,
		  struct mv_err *err)
{
	char *end;

	*flush = 0;
	*ms = 0;
	if (isdigit((unsigned char)spec[0]) && !strchr(spec, '-')) {
		unsigned long long v;

		errno = 0;
		v = strtoull(spec, &end, 10);
		if (*end || errno || v == 0 || v > INT64_MAX)
			return mv_err_set(err, MV_EUSAGE, "--as-of: '%s': a "
					  "flush number is 1 or more", spec);
		*flush = v;
		return 0;
	}
	if (spec[0] == '@') {
		long long v;

		errno = 0;
		v = strtoll(spec + 1, &end, 10);
		if (!isdigit((unsigned char)spec[1]) || *end || errno ||
		    v > INT64_MAX / 1000)
			return mv_err_set(err, MV_EUSAGE, "--as-of: '%s': want "
					  "@ and Unix seconds", spec);
		*ms = v * 1000;
		return 0;
	}
	if (iso_ms(spec, ms) < 0 || *ms < 0)
		return mv_err_set(err, MV_EUSAGE, "--as-of: '%s': want a flush "
				  "number, @SECONDS or ISO 8601 time "
				  "(2026-01-31T12:00:00Z)", spec);
	return 0;
}

/* The last flush at or before ms among HISTORY's lines. */
struct pick {
	int64_t ms;
	uint64_t best, first;
	int64_t first_ms;
	int n;
};

static int pick_line(void *arg, char *line)
{
	struct pick *pk = arg;
	char *end;
	unsigned long long seq;
	long long t;

	errno = 0;
	seq = strtoull(line, &end, 10);
	if (*end != '\t' || errno)
		return MV_EPROTO;
	t = strtoll(end + 1, &end, 10);
	if (*end != '\t' || errno)
		return MV_EPROTO;
	if (!pk->n++) {
		pk->first = seq;
		pk->first_ms = t;
	}
	if (t <= pk->ms)
		pk->best = seq;
	return 0;
}

int mv_asof_resolve(struct mv_client *c, const char *name, const char *spec,
		    uint64_t *flush, struct mv_err *err)
{
	struct pick pk = { 0 };
	char line[128], iso[32];
	int64_t ms;
	time_t t;
	struct tm tm;
	int rc;

	if ((rc = mv_asof_parse(spec, flush, &ms, err)) < 0 || *flush)
		return rc;
	pk.ms = ms;
	snprintf(line, sizeof(line), "HISTORY %s", name);
	rc = mv_client_lines(c, line, pick_line, &pk, err);
	if (rc == MV_EPROTO && !err->code)
		mv_err_set(err, MV_EPROTO, "malformed reply to HISTORY");
	if (rc < 0)
		return rc;
	if (!pk.n)
		return mv_err_set(err, MV_ESERVER, "--as-of %s: collection '%s' "
				  "has no retained history", spec, name);
	if (!pk.best) {
		t = (time_t)(pk.first_ms / 1000);
		gmtime_r(&t, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return mv_err_set(err, MV_ESERVER, "--as-of %s: before the "
				  "retained history of '%s', which goes back to "
				  "flush %" PRIu64 " (%s)", spec, name,
				  pk.first, iso);
	}
	*flush = pk.best;
	return 0;
}

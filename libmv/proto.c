/*
 * proto.c - request-line parsing of the line protocol (see proto.h).
 */
#include <stddef.h>
#include <string.h>
#include "proto.h"

int mv_proto_split(char *line, char **argv, int max)
{
	char *save = NULL, *t;
	int argc = 0;

	for (t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (argc == max)
			return -1;
		argv[argc++] = t;
	}
	argv[argc] = NULL;
	return argc;
}

int mv_proto_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned char)*s - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

long mv_proto_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= ' ' || ch >= 0x7f || ch == '%') {
			if (n + 3 >= cap)
				return -1;
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		} else {
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)ch;
		}
	}
	if (n >= cap)
		return -1;
	out[n] = '\0';
	return (long)n;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int mv_proto_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s == '%') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (lo < 0 || (hi | lo) == 0)
				return -1;
			*w++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

int mv_proto_addr_list(const char *s, int max)
{
	int n = 1;
	const char *p;

	if (!*s || *s == ',')
		return -1;
	for (p = s; *p; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p > '~')
			return -1;
		if (*p == ',' && (p[1] == ',' || !p[1] || ++n > max))
			return -1;
	}
	return n;
}

int mv_proto_listed(const char *list, const char *addr)
{
	size_t n = strlen(addr);

	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncmp(p, addr, n))
			return 1;
		p += l + (e != NULL);
	}
	return 0;
}

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

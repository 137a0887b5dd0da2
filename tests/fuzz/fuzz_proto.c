/*
 * fuzz_proto - the request-line parser of the protocol (libmv/proto.c,
 * used by mv-noded's conn.c): every input line (as the server cuts it,
 * '\r' stripped) is split into words, and each word is parsed as a
 * number with the bounds the server uses, checked against strtoull, and
 * as a VIA address list (mv_proto_addr_list, mv_proto_listed).  The
 * reply-line lookups of client.c (mv_reply_get*) run on the line too.
 */
#include <errno.h>
#include <string.h>
#include "client.h"
#include "fuzz.h"
#include "proto.h"

#define MAX_ARGS 80

static void check_u64(const char *s, uint64_t max)
{
	uint64_t v = 12345;
	int rc = mv_proto_u64(s, max, &v);
	int digits = *s != '\0';
	char *end;
	unsigned long long ref;

	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			digits = 0;
	errno = 0;
	ref = strtoull(s, &end, 10);
	if (digits && !errno && ref <= max) {
		FUZZ_CHECK(rc == 0 && v == ref);
	} else {
		FUZZ_CHECK(rc == -1 && v == 12345);
	}
}

/*
 * A word as a VIA list: its count is its commas plus one when it is one
 * (a reference count here), and each of its entries is listed in it.
 */
static void check_list(const char *s)
{
	int n = mv_proto_addr_list(s, 8), commas = 0, ok = *s != '\0';
	char entry[64];

	for (const char *p = s; *p; p++) {
		if (*p == ',') {
			commas++;
			if (p == s || p[1] == ',' || !p[1])
				ok = 0;
		}
		if ((unsigned char)*p <= ' ' || (unsigned char)*p > '~')
			ok = 0;
	}
	if (commas + 1 > 8)
		ok = 0;
	FUZZ_CHECK(n == (ok ? commas + 1 : -1));
	if (n < 0)
		return;
	for (const char *p = s; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l < sizeof(entry)) {
			memcpy(entry, p, l);
			entry[l] = '\0';
			FUZZ_CHECK(mv_proto_listed(s, entry) == 1);
		}
		p += l + (e != NULL);
	}
}

static void one_line(char *line, size_t len)
{
	char *argv[MAX_ARGS + 1], copy[256], val[32];
	int64_t i64;
	int argc;

	snprintf(copy, sizeof(copy), "%s", line);
	argc = mv_proto_split(line, argv, MAX_ARGS);
	FUZZ_CHECK(argc >= -1 && argc <= MAX_ARGS);
	if (argc < 0)
		return;
	FUZZ_CHECK(argv[argc] == NULL);
	for (int i = 0; i < argc; i++) {
		FUZZ_CHECK(argv[i] >= line && argv[i] < line + len);
		FUZZ_CHECK(argv[i][0] && !strchr(argv[i], ' '));
		check_u64(argv[i], UINT64_MAX);
		check_u64(argv[i], (uint64_t)1 << 30);
		check_u64(argv[i], 1000000);
		check_u64(argv[i], 0);
		check_list(argv[i]);
	}
	/* The first word as a key of the reply line. */
	if (argc > 0 && !strchr(argv[0], '=')) {
		if (mv_reply_get(copy, argv[0], val, sizeof(val)) == 0)
			FUZZ_CHECK(strlen(val) < sizeof(val));
		(void)mv_reply_get_i64(copy, argv[0], &i64);
		(void)mv_reply_get(copy, argv[0], val, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *buf = malloc(len + 1), *p, *nl;

	if (!buf)
		abort();
	memcpy(buf, data, len);
	buf[len] = '\0';
	for (p = buf; p < buf + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(buf + len - p));
		if (!nl)
			nl = buf + len;
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		/* A NUL inside ends the line as it does for the server. */
		one_line(p, strlen(p));
	}
	free(buf);
	return 0;
}

/*
 * fuzz_float - the text format's number parser (mv_parse_float of
 * libmv/vecio.c, its own fast path) against strtof, which it promises to
 * equal bit for bit, with *p, on decimal numbers, inf, infinity and nan.
 * The input is one token, tried from each of its first 8 offsets.
 */
#include <math.h>
#include <string.h>
#include "fuzz.h"
#include "vecio.h"

static void one(const char *s, const char *end)
{
	const char *p = s, *q = s;
	char *e;
	float f = 12345.0f, ref;
	int rc;

	/* strtof also skips blanks and takes hex: not compared. */
	if (*q == '+' || *q == '-')
		q++;
	if (s == end || strchr(" \t\n\v\f\r", *s) ||
	    (q + 1 < end && q[0] == '0' && (q[1] == 'x' || q[1] == 'X')))
		return;
	rc = mv_parse_float(&p, end, &f);
	ref = strtof(s, &e);
	if (e == s) {
		FUZZ_CHECK(rc == -1 && p == s);
		return;
	}
	FUZZ_CHECK(rc == 0);
	if (isnan(ref)) {	/* strtof also takes "nan(chars)" */
		FUZZ_CHECK(isnan(f));
		return;
	}
	if (p != e || memcmp(&f, &ref, sizeof(f))) {
		fprintf(stderr, "'%.*s': mv_parse_float %a (%zu chars), "
			"strtof %a (%zu chars)\n", (int)(end - s), s, f,
			(size_t)(p - s), ref, (size_t)(e - s));
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *s;

	if (len > 4096)
		return 0;
	s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	len = strlen(s);	/* strtof stops at a NUL: so does the end */
	for (size_t i = 0; i < 8 && i < len; i++)
		one(s + i, s + len);
	free(s);
	return 0;
}

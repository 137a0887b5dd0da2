/*
 * test_meta_replay.c - meta.log records that pass their checksum but hold
 * what the API never writes are corrupt (found by tests/fuzz/fuzz_meta).
 * Apart from test_meta.c, which is being reworked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "crc32c.h"
#include "meta.h"
#include "unit.h"

static void put_le32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);	/* the tests run little-endian */
}

TEST(meta_replay_refuses_a_key_over_the_maximum)
{
	size_t klen = MV_META_KEY_MAX + 1;
	size_t plen = 4 + 1 + 4 + klen + 4 + 1;
	unsigned char *log = calloc(1, 8 + 8 + plen), *p;
	const char *dir = unit_path("meta-longkey");
	char path[512];
	struct mv_err err = { 0 };
	struct mv_meta *m;
	FILE *f;

	REQUIRE(log);
	memcpy(log, "MVMETA\1\0", 8);
	p = log + 16;
	put_le32(p, 1);			/* one op */
	p[4] = MV_META_PUT;
	put_le32(p + 5, (uint32_t)klen);
	p[9] = '/';
	memset(p + 10, 'k', klen - 1);
	put_le32(p + 9 + klen, 1);
	p[13 + klen] = 'v';
	put_le32(log + 8, (uint32_t)plen);
	put_le32(log + 12, mv_crc32c(0, p, plen));
	REQUIRE(mkdir(dir, 0755) == 0);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	REQUIRE((f = fopen(path, "wb")));
	REQUIRE(fwrite(log, 1, 16 + plen, f) == 16 + plen);
	fclose(f);
	m = mv_meta_open_local(dir, &err);
	CHECK(m == NULL);
	CHECK_EQ_INT(err.code, MV_EDATA);
	CHECK(strstr(err.msg, "corrupt record"));
	mv_meta_close(m);
	free(log);
}

/*
 * fuzz_meta - recovery of the local metadata store: the input is written
 * as meta.log into a fresh directory, which mv_meta_open_local replays;
 * whatever it opens must then answer a full range walk.  Only the public
 * API of meta.h is used (the harness knows the log's record framing, to
 * fix checksums).
 */
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include "crc32c.h"
#include "fuzz.h"
#include "meta.h"

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

struct walk {
	uint64_t keys;
	char last[MV_META_KEY_MAX + 2];
};

static int each(void *arg, const char *key, const void *val, size_t vlen)
{
	struct walk *w = arg;
	size_t klen = strlen(key);
	volatile unsigned char sum = 0;

	FUZZ_CHECK(klen > 0 && klen <= MV_META_KEY_MAX);
	FUZZ_CHECK(!w->keys || strcmp(w->last, key) < 0);	/* in order */
	FUZZ_CHECK(((const char *)val)[vlen] == '\0');
	for (size_t i = 0; i < vlen; i++)
		sum ^= ((const unsigned char *)val)[i];
	(void)sum;
	memcpy(w->last, key, klen + 1);
	w->keys++;
	return 0;
}

/*
 * meta.log's framing, as written by meta_local.c: an 8-byte header, then
 * records of u32 length, u32 CRC-32C of the payload, payload.  A fuzzer
 * cannot guess a CRC: fix_crcs makes every record's right, so that the
 * payload decoder behind it is reached.
 */
#define LOG_HDR 8
#define REC_HDR 8

static void fix_crcs(unsigned char *p, size_t size)
{
	size_t off = LOG_HDR;

	while (size >= off && size - off >= REC_HDR) {
		uint32_t len, crc;

		memcpy(&len, p + off, 4);
		if (len > size - off - REC_HDR)
			break;
		crc = mv_crc32c(0, p + off + REC_HDR, len);
		memcpy(p + off + 4, &crc, 4);
		off += REC_HDR + len;
	}
}

static void open_log(const uint8_t *data, size_t len)
{
	char dir[128], path[160];
	const char *base = getenv("TMPDIR");
	struct mv_err err = { 0 };
	struct mv_meta *m;
	int fd;

	snprintf(dir, sizeof(dir), "%s/mv-fuzz-meta.XXXXXX",
		 base && *base && strlen(base) < 64 ? base : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
		abort();
	close(fd);
	m = mv_meta_open_local(dir, &err);
	if (m) {
		static struct walk w;
		struct mv_meta_stats st;

		w.keys = 0;
		FUZZ_CHECK(mv_meta_range(m, "", each, &w, &err) == 0);
		FUZZ_CHECK(mv_meta_stats(m, &st, &err) == 0);
		FUZZ_CHECK(st.keys == w.keys);
		mv_meta_close(m);
	} else {
		FUZZ_CHECK(err.code < 0 && err.msg[0]);
	}
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	unsigned char *fixed = malloc(len ? len : 1);

	if (!fixed)
		abort();
	memcpy(fixed, data, len);
	fix_crcs(fixed, len);
	/* As it is (a torn or damaged tail), then with the CRCs right. */
	open_log(data, len);
	if (memcmp(fixed, data, len))
		open_log(fixed, len);
	free(fixed);
	return 0;
}

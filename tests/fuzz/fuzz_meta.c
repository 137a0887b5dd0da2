/*
 * fuzz_meta - recovery of the local metadata store: the input is written
 * as meta.log into a fresh directory, which mv_meta_open_local replays;
 * whatever it opens must then answer a full range walk.  Only the public
 * API of meta.h is used.
 */
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
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
	return 0;
}

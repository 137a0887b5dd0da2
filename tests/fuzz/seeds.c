/*
 * seeds.c - writes the binary seeds of tests/fuzz/corpus/ that are easier
 * made through libmv than by hand: segment files of both layouts (plain
 * and zstd block A) and meta.log files.  `make fuzz-seeds` builds and runs
 * it; the text seeds are plain files kept as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "crc32c.h"
#include "meta.h"
#include "segfile.h"

static void put_file(const char *path, const struct iovec *iov, int n)
{
	FILE *f = fopen(path, "wb");

	if (!f) {
		perror(path);
		exit(1);
	}
	for (int i = 0; i < n; i++)
		fwrite(iov[i].iov_base, 1, iov[i].iov_len, f);
	fclose(f);
}

static void seg(const char *path, enum mv_segkind kind, uint32_t aux,
		uint64_t n, const void *a, size_t alen, const void *b,
		size_t blen, int tail)
{
	struct mv_segenc e;

	if (tail) {
		struct iovec iov[3];
		if (mv_segenc_tail(&e, kind, aux, n, a, alen, blen,
				   mv_crc32c(0, b, blen), NULL) < 0)
			exit(1);
		iov[0] = (struct iovec){ (void *)b, blen };
		iov[1] = e.iov[0];
		iov[2] = e.iov[1];
		put_file(path, iov, 3);
	} else {
		if (mv_segenc_init(&e, kind, aux, n, a, alen, b, blen, NULL) < 0)
			exit(1);
		put_file(path, e.iov, 4);
	}
	mv_segenc_release(&e);
}

static void meta(const char *out, int variant)
{
	char dir[] = "/tmp/mv-seeds.XXXXXX", cmd[512];
	struct mv_meta *m;

	if (!mkdtemp(dir) || !(m = mv_meta_open_local(dir, NULL)))
		exit(1);
	mv_meta_put(m, "/colls/a", "{\"dim\":4}", 9, NULL);
	mv_meta_put(m, "/colls/b", "{\"dim\":8}", 9, NULL);
	if (variant) {
		struct mv_meta_cmp cmp = { "/colls/a", "{\"dim\":4}", 9 };
		struct mv_meta_op ops[2] = {
			{ MV_META_PUT, "/segs/a/1", "x", 1 },
			{ MV_META_DELPREFIX, "/colls/b", NULL, 0 },
		};
		mv_meta_txn(m, &cmp, 1, ops, 2, NULL);
		mv_meta_del(m, "/colls/a", NULL);
	}
	mv_meta_close(m);
	snprintf(cmd, sizeof(cmd), "cp %s/meta.log %s && rm -rf %s", dir, out,
		 dir);
	if (system(cmd) != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	const char *d = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	char p[512];
	int64_t ids[64];
	float vecs[64 * 4];

	for (int i = 0; i < 64; i++)
		ids[i] = i * 3;
	for (int i = 0; i < 64 * 4; i++)
		vecs[i] = (float)i / 7;
	snprintf(p, sizeof(p), "%s/segfile/vec-small", d);
	seg(p, MV_SEG_VEC, 4, 4, ids, 4 * 8, vecs, 4 * 16, 0);
	snprintf(p, sizeof(p), "%s/segfile/vec-zstd", d);
	seg(p, MV_SEG_VEC, 4, 64, ids, 64 * 8, vecs, 64 * 16, 0);
	snprintf(p, sizeof(p), "%s/segfile/vec-tail", d);
	seg(p, MV_SEG_VEC, 4, 4, ids, 4 * 8, vecs, 4 * 16, 1);
	snprintf(p, sizeof(p), "%s/segfile/vec-tail-zstd", d);
	seg(p, MV_SEG_VEC, 4, 64, ids, 64 * 8, vecs, 64 * 16, 1);
	snprintf(p, sizeof(p), "%s/segfile/del", d);
	seg(p, MV_SEG_DEL, 0, 3, ids, 3 * 8, NULL, 0, 0);
	snprintf(p, sizeof(p), "%s/segfile/col", d);
	seg(p, MV_SEG_COL, 1, 4, vecs, 4 * 8, NULL, 0, 0);
	snprintf(p, sizeof(p), "%s/meta/puts", d);
	meta(p, 0);
	snprintf(p, sizeof(p), "%s/meta/txn-del", d);
	meta(p, 1);
	return 0;
}

/*
 * seeds.c - writes the binary seeds of tests/fuzz/corpus/ that are easier
 * made through libmv than by hand: segment files of both layouts (plain
 * and zstd block A) and meta.log files.  `make fuzz-seeds` builds and runs
 * it; the text seeds are plain files kept as they are.  The string
 * column blocks of strblock/ are written by the jsonl reader of
 * libmv/vecio.c, as mv-insert sends them (`seeds DIR strblock` writes
 * only those).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "crc32c.h"
#include "fuzz.h"
#include "meta.h"
#include "segfile.h"
#include "vecio.h"

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

/* jsonl rows with one string field "s": the row count, then the block. */
static void strblock(const char *out, const char *jsonl)
{
	static const struct mv_field f = { "s", MV_STRING };
	struct mv_vreader_opts o = { MV_FMT_JSONL, 0, 0, &f, 1 };
	struct mv_vbatch b;
	struct mv_vreader *r;
	uint64_t n;
	int in = fuzz_memfd((const uint8_t *)jsonl, strlen(jsonl));
	FILE *fo;

	if (mv_vbatch_init(&b, 1024, 0, NULL) < 0 ||
	    !(r = mv_vreader_fdopen(in, "x.jsonl", &o, NULL)))
		exit(1);
	if (mv_vreader_read(r, &b, NULL) < 0 || !(fo = fopen(out, "wb")))
		exit(1);
	n = b.n;
	fwrite(&n, 8, 1, fo);
	fwrite(b.fields, 1, b.fields_len, fo);
	fclose(fo);
	mv_vreader_close(r);
	mv_vbatch_release(&b);
	close(in);
}

static void strblocks(const char *d)
{
	char p[512], big[16384];
	size_t at = 0;

	snprintf(p, sizeof(p), "%s/strblock/tags", d);
	strblock(p, "{\"vector\":[1],\"s\":\"red\"}\n"
		 "{\"vector\":[2],\"s\":\"green\"}\n"
		 "{\"vector\":[3],\"s\":\"\"}\n");
	snprintf(p, sizeof(p), "%s/strblock/escapes", d);
	strblock(p, "{\"vector\":[1],\"s\":\"a\\tb\\nc\\\\d\"}\n"
		 "{\"vector\":[2],\"s\":\"caf\\u00e9 \\u65e5\\u672c\"}\n"
		 "{\"vector\":[3]}\n"
		 "{\"vector\":[4],\"s\":null}\n");
	for (int i = 0; i < 100; i++)
		at += (size_t)snprintf(big + at, sizeof(big) - at,
			"{\"vector\":[%d],\"s\":\"%.*s\"}\n", i, i,
			"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq"
			"rstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012345");
	snprintf(p, sizeof(p), "%s/strblock/lengths", d);
	strblock(p, big);
}

int main(int argc, char **argv)
{
	const char *d = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	char p[512];
	int64_t ids[64];
	float vecs[64 * 4];

	mkdir(d, 0755);
	snprintf(p, sizeof(p), "%s/strblock", d);
	mkdir(p, 0755);
	strblocks(d);
	if (argc > 2 && !strcmp(argv[2], "strblock"))
		return 0;
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

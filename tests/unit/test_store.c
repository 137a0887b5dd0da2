/*
 * test_store.c - unit tests of the segment store (store.h), and of the
 * crc32c that checksums its files: check values, hardware against
 * software, put/get/range/map/list/del, path checks and concurrent
 * writers on the local store and again on S3 (SEAM_TEST; test_s3.c has
 * the S3 server), temporaries and direct I/O on the local one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "store.h"
#include "unit.h"

/* xorshift64*, for reproducible random buffers. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd(&seed) >> 56;
}

TEST(crc32c_check_values)
{
	unsigned char b[32];

	CHECK_EQ_U64(mv_crc32c(0, "123456789", 9), 0xe3069283);
	CHECK_EQ_U64(mv_crc32c_sw(0, "123456789", 9), 0xe3069283);
	CHECK_EQ_U64(mv_crc32c(0, "", 0), 0);
	CHECK_EQ_U64(mv_crc32c(0x12345678, "", 0), 0x12345678);
	/* RFC 3720, B.4. */
	memset(b, 0, 32);
	CHECK_EQ_U64(mv_crc32c(0, b, 32), 0x8a9136aa);
	memset(b, 0xff, 32);
	CHECK_EQ_U64(mv_crc32c(0, b, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = i;
	CHECK_EQ_U64(mv_crc32c(0, b, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = 31 - i;
	CHECK_EQ_U64(mv_crc32c(0, b, 32), 0x113fdb5c);
	/* Chaining. */
	CHECK_EQ_U64(mv_crc32c(mv_crc32c(0, "1234", 4), "56789", 5),
		     0xe3069283);
	if (mv_crc32c_hw_available())
		CHECK_EQ_U64(mv_crc32c_hw(0, "123456789", 9), 0xe3069283);
	else
		unit_diag("crc32c: no sse4.2, software only");
}

TEST(crc32c_hw_equals_sw)
{
	size_t max = 3 * 8192 * 4 + 3 * 256 * 3 + 77;
	unsigned char *buf = malloc(max + 8);
	uint64_t seed = 42;
	int bad = 0;

	REQUIRE(buf);
	fill(buf, max + 8, 7);
	if (!mv_crc32c_hw_available()) {
		unit_diag("crc32c: no sse4.2, hardware path not tested");
		free(buf);
		return;
	}
	/* Every length to 1000 at every alignment, then random ones. */
	for (size_t n = 0; n < 1000; n++)
		for (size_t a = 0; a < 8; a++)
			bad += mv_crc32c_hw(n, buf + a, n) !=
			       mv_crc32c_sw(n, buf + a, n);
	for (int i = 0; i < 300; i++) {
		size_t a = rnd(&seed) % 8, n = rnd(&seed) % max;
		uint32_t hw = mv_crc32c_hw(0, buf + a, n);
		size_t cut = n ? rnd(&seed) % n : 0;

		bad += hw != mv_crc32c_sw(0, buf + a, n);
		/* Split anywhere, chained, the same. */
		bad += hw != mv_crc32c_hw(mv_crc32c_hw(0, buf + a, cut),
					  buf + a + cut, n - cut);
	}
	/* The block boundaries of the three-stream path. */
	for (size_t n = 3 * 256 - 9; n < 3 * 256 + 9; n++)
		bad += mv_crc32c_hw(1, buf, n) != mv_crc32c_sw(1, buf, n);
	for (size_t n = 3 * 8192 - 9; n < 3 * 8192 + 9; n++)
		bad += mv_crc32c_hw(1, buf + 3, n) !=
		       mv_crc32c_sw(1, buf + 3, n);
	CHECK_EQ_INT(bad, 0);
	free(buf);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(crc32c_speed)
{
	size_t n = 64u << 20;
	unsigned char *buf = malloc(n);
	double best = 1e9, sw;
	uint32_t c = 0;

	REQUIRE(buf);
	fill(buf, n, 1);
	for (int r = 0; r < 3; r++) {
		double t = now();

		c += mv_crc32c(0, buf, n);
		t = now() - t;
		if (t < best)
			best = t;
	}
	sw = now();
	c += mv_crc32c_sw(0, buf, n);
	sw = now() - sw;
	unit_diag("crc32c: %.1f GB/s (%s), software %.1f GB/s [%08x]",
		  n / best / 1e9,
		  mv_crc32c_hw_available() ? "sse4.2" : "software",
		  n / sw / 1e9, c);
	free(buf);
}

/* From test_s3.c: a store on the test S3 (RGW), prefix by name. */
const struct mv_s3_conf *unit_s3_conf(void);
struct mv_store *unit_s3_open(const char *name, const char *cache_dir);
const char *unit_s3_prefix(const char *name);
void unit_s3_wipe(struct mv_store *s);

/*
 * Tests of the seam run twice: on the local store, then on S3 (Ceph's
 * RGW, with a cache directory for maps); on_s3 says which.  The S3 run
 * deletes what the test left, by the names it opened.
 */
static int on_s3;
static char s3_names[8][64];
static int s3_nnames;

static struct mv_store *open_store(const char *name)
{
	struct mv_err err = { 0 };
	struct mv_store *s;
	char cache[128];

	if (on_s3) {
		int i;

		for (i = 0; i < s3_nnames && strcmp(s3_names[i], name); i++)
			;
		if (i == s3_nnames && i < 8)
			snprintf(s3_names[s3_nnames++], 64, "%s", name);
		snprintf(cache, sizeof(cache), "%s-cache", name);
		return unit_s3_open(name, unit_path(cache));
	}
	s = mv_store_open_local(unit_path(name), &err);
	if (!s)
		unit_diag("open '%s': %s", name, err.msg);
	return s;
}

static int s3_start(void)
{
	if (!unit_s3_conf()) {
		unit_fail(__FILE__, __LINE__, "no S3 to test on");
		return 0;
	}
	on_s3 = 1;
	s3_nnames = 0;
	return 1;
}

static void s3_end(void)
{
	on_s3 = 0;
	for (int i = 0; i < s3_nnames; i++) {
		struct mv_store *s = unit_s3_open(s3_names[i], NULL);

		unit_s3_wipe(s);
		mv_store_close(s);
	}
}

/* A test of the seam: store_NAME on local, store_s3_NAME on S3. */
#define SEAM_TEST(name)							\
	static void seam_##name(void);					\
	TEST(store_##name) { seam_##name(); }				\
	TEST(store_s3_##name)						\
	{								\
		if (s3_start()) {					\
			seam_##name();					\
			s3_end();					\
		}							\
	}								\
	static void seam_##name(void)

static int put_str(struct mv_store *s, const char *path, const char *data)
{
	struct iovec iov = { (void *)data, strlen(data) };

	return mv_store_put(s, path, &iov, 1, NULL);
}

/* The object's content as a string, "(absent)" or "(error)". */
static const char *get_str(struct mv_store *s, const char *path)
{
	static char out[256];
	void *buf;
	size_t len;
	int rc = mv_store_get(s, path, &buf, &len, NULL);

	if (rc == MV_ENOINPUT)
		return "(absent)";
	if (rc)
		return "(error)";
	snprintf(out, sizeof(out), "%s", (char *)buf);
	free(buf);
	return out;
}

SEAM_TEST(put_get_map)
{
	struct mv_err err = { 0 };
	struct mv_store *s = open_store("store-basic");
	struct iovec iov[4] = {
		{ "hello", 5 }, { NULL, 0 }, { ", ", 2 }, { "world", 5 },
	};
	const void *p;
	void *buf, *h;
	size_t len;
	char real[4200];
	struct stat st;

	REQUIRE(s);
	CHECK_EQ_INT(mv_store_put(s, "docs/seg-000001.vec", iov, 4, &err), 0);
	CHECK_EQ_INT(err.code, 0);
	CHECK_STR(get_str(s, "docs/seg-000001.vec"), "hello, world");

	REQUIRE(mv_store_get(s, "docs/seg-000001.vec", &buf, &len, NULL) == 0);
	CHECK_EQ_INT(len, 12);
	CHECK_EQ_INT(((char *)buf)[12], 0);
	free(buf);

	REQUIRE(mv_store_map(s, "docs/seg-000001.vec", &p, &len, &h,
			     NULL) == 0);
	CHECK_EQ_INT(len, 12);
	CHECK_MEM(p, "hello, world", 12);
	/* Replaced meanwhile: the mapping keeps the old content. */
	CHECK_EQ_INT(put_str(s, "docs/seg-000001.vec", "HELLO, WORLD!"), 0);
	CHECK_MEM(p, "hello, world", 12);
	CHECK_STR(get_str(s, "docs/seg-000001.vec"), "HELLO, WORLD!");
	mv_store_unmap(s, h);
	mv_store_unmap(s, NULL);

	/* Deep paths get directories; the file is where local_dir says. */
	CHECK_EQ_INT(put_str(s, "u/c/idx/ivf.index", "x"), 0);
	if (on_s3) {
		CHECK(mv_store_local_dir(s) == NULL);
	} else {
		REQUIRE(mv_store_local_dir(s));
		snprintf(real, sizeof(real), "%s/u/c/idx/ivf.index",
			 mv_store_local_dir(s));
		CHECK(stat(real, &st) == 0 && st.st_size == 1);
	}

	/* Empty objects. */
	CHECK_EQ_INT(mv_store_put(s, "empty", NULL, 0, NULL), 0);
	REQUIRE(mv_store_get(s, "empty", &buf, &len, NULL) == 0);
	CHECK_EQ_INT(len, 0);
	free(buf);
	REQUIRE(mv_store_map(s, "empty", &p, &len, &h, NULL) == 0);
	CHECK(p != NULL);
	CHECK_EQ_INT(len, 0);
	mv_store_unmap(s, h);

	/* Absent objects, and a directory is no object. */
	CHECK_EQ_INT(mv_store_get(s, "docs/nope", &buf, &len, &err),
		     MV_ENOINPUT);
	CHECK(buf == NULL);
	CHECK(strstr(err.msg, on_s3 ? "docs/nope': HTTP 404 NoSuchKey" :
		     "docs/nope': No such file or directory"));
	CHECK_EQ_INT(mv_store_map(s, "nope/x", &p, &len, &h, NULL),
		     MV_ENOINPUT);
	CHECK(h == NULL);
	CHECK_EQ_INT(mv_store_get(s, "docs", &buf, &len, NULL), MV_ENOINPUT);
	CHECK_EQ_INT(mv_store_get(s, "empty/x", &buf, &len, NULL),
		     MV_ENOINPUT);
	mv_store_close(s);
	mv_store_close(NULL);

	/* Durable across reopen, of course. */
	REQUIRE((s = open_store("store-basic")));
	CHECK_STR(get_str(s, "docs/seg-000001.vec"), "HELLO, WORLD!");
	mv_store_close(s);
}

SEAM_TEST(big_and_many_iovecs)
{
	struct mv_store *s = open_store("store-big");
	size_t big = 48u << 20, nsmall = 300;
	unsigned char *a = malloc(big);
	struct iovec *iov = calloc(nsmall + 2, sizeof(*iov));
	uint32_t want;
	const void *p;
	void *h;
	size_t len, total = 0;

	REQUIRE(s && a && iov);
	fill(a, big, 3);
	iov[0] = (struct iovec){ a, big / 2 };
	for (size_t i = 0; i < nsmall; i++)
		iov[1 + i] = (struct iovec){ a + big / 2 + i, i % 3 };
	iov[nsmall + 1] = (struct iovec){ a + big / 2, big - big / 2 };
	want = 0;
	for (size_t i = 0; i < nsmall + 2; i++) {
		want = mv_crc32c(want, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	CHECK_EQ_INT(mv_store_put(s, "big/seg.vec", iov, nsmall + 2, NULL), 0);
	REQUIRE(mv_store_map(s, "big/seg.vec", &p, &len, &h, NULL) == 0);
	CHECK_EQ_U64(len, total);
	CHECK_EQ_U64(mv_crc32c(0, p, len), want);
	mv_store_unmap(s, h);
	free(iov);
	free(a);
	mv_store_close(s);
}

/* The unit runner links with --wrap=pwrite: this can refuse O_DIRECT. */
static int refuse_direct;
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (refuse_direct && (fcntl(fd, F_GETFL) & O_DIRECT)) {
		errno = EINVAL;
		return -1;
	}
	return __real_pwrite(fd, buf, n, off);
}

/*
 * Large objects are written with direct I/O: buffers whose address matches
 * their file offset modulo 4096 go straight to the disk, the rest through
 * a bounce buffer; where the filesystem refuses O_DIRECT, through the page
 * cache.  Every mix must come back byte for byte.
 */
TEST(store_direct_io_layouts)
{
	struct mv_store *s = open_store("store-direct");
	size_t big = (5u << 20) + 123;
	unsigned char *a = NULL, small[5000];
	struct {
		size_t head, tail;	/* bytes before a+skew and after it */
		size_t skew;		/* a + skew starts the big buffer */
	} cases[] = {
		{ 4096, 0, 0 },		/* aligned, congruent, odd length */
		{ 100, 7, 0 },		/* aligned memory, unaligned offset */
		{ 4096, 5000, 16 },	/* malloc-like address */
		{ 0, 0, 0 },		/* one big buffer */
		{ 1, 4095, 1 },		/* congruent, one byte in */
	};

	REQUIRE(s && posix_memalign((void **)&a, 4096, big + 4096) == 0);
	fill(a, big + 4096, 5);
	fill(small, sizeof(small), 6);
	/* Once with direct I/O, once on a filesystem that refuses it. */
	for (refuse_direct = 0; refuse_direct < 2; refuse_direct++)
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct iovec iov[3] = {
			{ small, cases[c].head },
			{ a + cases[c].skew, big },
			{ small, cases[c].tail },
		};
		uint32_t want = 0;
		size_t total = 0, len;
		const void *p;
		void *h;
		char path[32];

		for (int i = 0; i < 3; i++) {
			want = mv_crc32c(want, iov[i].iov_base, iov[i].iov_len);
			total += iov[i].iov_len;
		}
		snprintf(path, sizeof(path), "d%d/%zu.vec", refuse_direct, c);
		CHECK_EQ_INT(mv_store_put(s, path, iov, 3, NULL), 0);
		REQUIRE(mv_store_map(s, path, &p, &len, &h, NULL) == 0);
		CHECK_EQ_U64(len, total);
		CHECK_EQ_U64(mv_crc32c(0, p, len), want);
		mv_store_unmap(s, h);
	}
	refuse_direct = 0;
	free(a);
	mv_store_close(s);
}

/* A writer's object appears only at commit; abort leaves nothing. */
SEAM_TEST(writer)
{
	struct mv_store *s = open_store("store-writer");
	size_t big = 3u << 20;
	unsigned char *a = NULL, small[777];
	struct mv_store_writer *w;
	struct mv_err err = { 0 };
	uint32_t want = 0;
	uint64_t size = 0, total = 0;
	const void *p;
	void *h;
	size_t len;

	REQUIRE(s && posix_memalign((void **)&a, 4096, big) == 0);
	fill(a, big, 7);
	fill(small, sizeof(small), 8);
	REQUIRE(mv_store_begin(s, "w/obj.vec", &w, &err) == 0);
	/* aligned and congruent, then odd pieces, then aligned again */
	for (int round = 0; round < 3; round++) {
		struct iovec iov[2] = { { a, big / 2 }, { small, sizeof(small) } };
		struct iovec one = { a + big / 2 + round, 100000 };

		CHECK_EQ_INT(mv_store_append(w, iov, 2, NULL), 0);
		CHECK_EQ_INT(mv_store_append(w, &one, 1, NULL), 0);
		want = mv_crc32c(want, a, big / 2);
		want = mv_crc32c(want, small, sizeof(small));
		want = mv_crc32c(want, a + big / 2 + round, 100000);
		total += big / 2 + sizeof(small) + 100000;
	}
	CHECK_STR(get_str(s, "w/obj.vec"), "(absent)");
	/* Start-up cleaning spares an open writer's temporary. */
	CHECK_EQ_INT(mv_store_clean_tmp(s, NULL), 0);
	CHECK_EQ_INT(mv_store_commit(w, &size, &err), 0);
	CHECK_EQ_U64(size, total);
	REQUIRE(mv_store_map(s, "w/obj.vec", &p, &len, &h, NULL) == 0);
	CHECK_EQ_U64(len, total);
	CHECK_EQ_U64(mv_crc32c(0, p, len), want);
	mv_store_unmap(s, h);

	/* Abort: no object, no temporary left. */
	REQUIRE(mv_store_begin(s, "w/gone.vec", &w, NULL) == 0);
	{
		struct iovec iov = { a, big };
		CHECK_EQ_INT(mv_store_append(w, &iov, 1, NULL), 0);
	}
	mv_store_abort(w);
	mv_store_abort(NULL);
	CHECK_STR(get_str(s, "w/gone.vec"), "(absent)");
	CHECK_EQ_INT(mv_store_clean_tmp(s, NULL), 0);
	CHECK_EQ_INT(mv_store_begin(s, "../x", &w, &err), MV_EUSAGE);
	CHECK(w == NULL);
	free(a);
	mv_store_close(s);
}

struct listed {
	char *v[64];
	int n, stop_at;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int on_path(void *arg, const char *path, uint64_t size)
{
	struct listed *l = arg;

	if (l->n < 64 && asprintf(&l->v[l->n], "%s:%llu", path,
				  (unsigned long long)size) < 0)
		l->v[l->n] = NULL;
	return ++l->n == l->stop_at ? 9 : 0;
}

static void listed_free(struct listed *l)
{
	for (int i = 0; i < l->n && i < 64; i++)
		free(l->v[i]);
}

/* The listing under prefix, sorted, as "path:size path:size". */
static const char *list_str(struct mv_store *s, const char *prefix)
{
	static char out[1024];
	struct listed l = { .n = 0 };
	size_t len = 0;

	if (mv_store_list(s, prefix, on_path, &l, NULL) != 0 || l.n > 64) {
		listed_free(&l);
		return "(error)";
	}
	qsort(l.v, l.n, sizeof(l.v[0]), cmp_str);
	out[0] = '\0';
	for (int i = 0; i < l.n; i++)
		len += snprintf(out + len, sizeof(out) - len, "%s%s",
				i ? " " : "", l.v[i]);
	listed_free(&l);
	return out;
}

SEAM_TEST(list)
{
	struct mv_store *s = open_store("store-list");
	struct listed l = { .stop_at = 1 };
	char tmp[4200];
	int fd;

	REQUIRE(s);
	put_str(s, "docs/seg-1.vec", "a");
	put_str(s, "docs/seg-2.vec", "bb");
	put_str(s, "docs/idx/ivf", "ccc");
	put_str(s, "docsx/seg-1.vec", "dddd");
	put_str(s, "top", "eeeee");
	put_str(s, ".hidden", "f");
	/* A temporary is never listed. */
	if (!on_s3) {
		snprintf(tmp, sizeof(tmp), "%s/docs/.tmp-1-1",
			 unit_path("store-list"));
		REQUIRE((fd = open(tmp, O_WRONLY | O_CREAT, 0644)) >= 0);
		close(fd);
	}

	CHECK_STR(list_str(s, ""), ".hidden:1 docs/idx/ivf:3 "
		  "docs/seg-1.vec:1 docs/seg-2.vec:2 docsx/seg-1.vec:4 top:5");
	CHECK_STR(list_str(s, "docs/"),
		  "docs/idx/ivf:3 docs/seg-1.vec:1 docs/seg-2.vec:2");
	CHECK_STR(list_str(s, "docs/seg-"),
		  "docs/seg-1.vec:1 docs/seg-2.vec:2");
	CHECK_STR(list_str(s, "docs"), "docs/idx/ivf:3 docs/seg-1.vec:1 "
		  "docs/seg-2.vec:2 docsx/seg-1.vec:4");
	CHECK_STR(list_str(s, "docs/idx/ivf"), "docs/idx/ivf:3");
	CHECK_STR(list_str(s, "t"), "top:5");
	CHECK_STR(list_str(s, "nope/"), "");
	CHECK_STR(list_str(s, "top/"), "");
	CHECK_EQ_INT(mv_store_list(s, "", on_path, &l, NULL), 9);
	CHECK_EQ_INT(l.n, 1);
	listed_free(&l);
	mv_store_close(s);
}

SEAM_TEST(del)
{
	struct mv_err err = { 0 };
	struct mv_store *s = open_store("store-del");
	char dir[4200];

	REQUIRE(s);
	put_str(s, "a/b/c/one", "1");
	put_str(s, "a/two", "2");
	CHECK_EQ_INT(mv_store_del(s, "a/b/c/one", &err), 0);
	CHECK_STR(get_str(s, "a/b/c/one"), "(absent)");
	CHECK_STR(list_str(s, ""), "a/two:1");
	/* Emptied directories go; a non-empty one stays. */
	snprintf(dir, sizeof(dir), "%s/a/b", unit_path("store-del"));
	CHECK(on_s3 || access(dir, F_OK) < 0);
	CHECK_EQ_INT(mv_store_del(s, "a/b/c/one", &err), 0);	/* absent */
	CHECK_EQ_INT(mv_store_del(s, "a/two/x", &err), 0);
	CHECK_EQ_INT(mv_store_del(s, "a", &err), 0);		/* a dir */
	CHECK_EQ_INT(err.code, 0);
	CHECK_STR(get_str(s, "a/two"), "2");
	CHECK_EQ_INT(mv_store_del(s, "a/two", &err), 0);
	CHECK_STR(list_str(s, ""), "");
	/* The root stays, and takes new objects. */
	CHECK_EQ_INT(put_str(s, "a/again", "3"), 0);
	CHECK_STR(get_str(s, "a/again"), "3");
	mv_store_close(s);
}

TEST(store_clean_tmp)
{
	struct mv_err err = { 0 };
	struct mv_store *s = open_store("store-tmp");
	const char *names[] = { ".tmp-99-0", "x/.tmp-99-1", "x/y/.tmp-a" };
	char path[4200];

	REQUIRE(s);
	put_str(s, "x/y/keep", "k");
	put_str(s, "keep", "k");
	for (int i = 0; i < 3; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", unit_path("store-tmp"),
			 names[i]);
		REQUIRE((fd = open(path, O_WRONLY | O_CREAT, 0644)) >= 0);
		REQUIRE(write(fd, "half", 4) == 4);
		close(fd);
	}
	CHECK_STR(list_str(s, ""), "keep:1 x/y/keep:1");
	CHECK_EQ_INT(mv_store_clean_tmp(s, &err), 3);
	CHECK_EQ_INT(err.code, 0);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", unit_path("store-tmp"),
			 names[i]);
		CHECK(access(path, F_OK) < 0);
	}
	CHECK_EQ_INT(mv_store_clean_tmp(s, NULL), 0);
	CHECK_STR(list_str(s, ""), "keep:1 x/y/keep:1");
	/* A successful put leaves no temporary. */
	CHECK_EQ_INT(put_str(s, "x/new", "n"), 0);
	CHECK_EQ_INT(mv_store_clean_tmp(s, NULL), 0);
	mv_store_close(s);
}

SEAM_TEST(bad_paths)
{
	static const char *bad[] = {
		"", "/abs", "..", "../x", "a/../b", "a/..", "a//b", "a/",
		".", "./a", "a/./b", ".tmp-x", "a/.tmp-1-2",
	};
	struct mv_store *s = open_store("store-badpath");
	struct iovec iov = { "x", 1 };
	char *longp = malloc(MV_STORE_PATH_MAX + 2);
	const void *p;
	void *buf, *h;
	size_t len;
	int wrong = 0;

	REQUIRE(s && longp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mv_err err = { 0 };
		int rc[4];

		rc[0] = mv_store_put(s, bad[i], &iov, 1, &err);
		rc[1] = mv_store_get(s, bad[i], &buf, &len, NULL);
		rc[2] = mv_store_map(s, bad[i], &p, &len, &h, NULL);
		rc[3] = mv_store_del(s, bad[i], NULL);
		for (int j = 0; j < 4; j++)
			if (rc[j] != MV_EUSAGE) {
				unit_diag("path '%s' op %d: %d", bad[i], j,
					  rc[j]);
				wrong++;
			}
		if (!strstr(err.msg, "bad store path"))
			wrong++;
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK_EQ_INT(mv_store_list(s, "/", on_path, NULL, NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_store_list(s, "../", on_path, NULL, NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_store_list(s, "a//", on_path, NULL, NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_store_put(s, "ok", NULL, 1, NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_store_put(s, "ok", &iov, -1, NULL), MV_EUSAGE);

	memset(longp, 'p', MV_STORE_PATH_MAX + 1);
	longp[MV_STORE_PATH_MAX + 1] = '\0';
	CHECK_EQ_INT(mv_store_put(s, longp, &iov, 1, NULL), MV_EUSAGE);
	/* Names of 255 bytes, the most a local file system takes. */
	for (int i = 255; i < MV_STORE_PATH_MAX - 1; i += 256)
		longp[i] = '/';
	longp[MV_STORE_PATH_MAX - 1] = '\0';
	/* On S3 the prefix counts against the key's 1024 bytes. */
	if (on_s3)
		longp[MV_STORE_PATH_MAX - strlen(unit_s3_prefix(
			"store-badpath"))] = '\0';
	CHECK_EQ_INT(mv_store_put(s, longp, &iov, 1, NULL), 0);
	CHECK_STR(get_str(s, longp), "x");
	CHECK_EQ_INT(mv_store_del(s, longp, NULL), 0);
	/* Odd but legal names. */
	CHECK_EQ_INT(put_str(s, "..a/.b/a.tmp-", "y"), 0);
	CHECK_STR(get_str(s, "..a/.b/a.tmp-"), "y");
	free(longp);
	mv_store_close(s);
}

#define NWRITERS 4
#define NOBJ 40

/* Put and delete objects in directories the other threads share. */
static void *writer(void *arg)
{
	struct mv_store *s = arg;
	static int next;
	int id = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	long bad = 0;

	for (int i = 0; i < NOBJ; i++) {
		char path[64], data[64];
		struct iovec iov = { data, 0 };

		snprintf(path, sizeof(path), "shared/d%d/w%d-%d", i % 3, id,
			 i);
		iov.iov_len = snprintf(data, sizeof(data), "%s", path);
		bad += mv_store_put(s, path, &iov, 1, NULL) != 0;
		if (i % 2)
			bad += mv_store_del(s, path, NULL) != 0;
	}
	return (void *)bad;
}

static int count_path(void *arg, const char *path, uint64_t size)
{
	(void)path;
	(void)size;
	++*(int *)arg;
	return 0;
}

SEAM_TEST(threads)
{
	struct mv_store *s = open_store("store-threads");
	pthread_t t[NWRITERS];
	long bad = 0;
	int n = 0;

	REQUIRE(s);
	for (int i = 0; i < NWRITERS; i++)
		REQUIRE(pthread_create(&t[i], NULL, writer, s) == 0);
	for (int i = 0; i < NWRITERS; i++) {
		void *r;

		pthread_join(t[i], &r);
		bad += (long)r;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(mv_store_list(s, "shared/", count_path, &n, NULL), 0);
	CHECK_EQ_INT(n, NWRITERS * NOBJ / 2);
	CHECK_EQ_INT(mv_store_clean_tmp(s, NULL), 0);
	mv_store_close(s);
}

/* Ranges: inside, across the end, past it, empty, of an absent object. */
SEAM_TEST(range)
{
	struct mv_store *s = open_store("store-range");
	struct mv_err err = { 0 };
	void *buf;
	size_t got;

	REQUIRE(s);
	REQUIRE(put_str(s, "r/obj", "0123456789") == 0);
	REQUIRE(mv_store_get_range(s, "r/obj", 2, 3, &buf, &got, &err) == 0);
	CHECK_EQ_INT(got, 3);
	CHECK_STR(buf, "234");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r/obj", 7, 100, &buf, &got, NULL) == 0);
	CHECK_EQ_INT(got, 3);
	CHECK_STR(buf, "789");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r/obj", 12, 5, &buf, &got, NULL) == 0);
	CHECK_EQ_INT(got, 0);
	CHECK_STR(buf, "");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r/obj", 4, 0, &buf, &got, NULL) == 0);
	CHECK_EQ_INT(got, 0);
	free(buf);
	CHECK_EQ_INT(mv_store_get_range(s, "r/none", 0, 5, &buf, &got, NULL),
		     MV_ENOINPUT);
	CHECK(buf == NULL);
	CHECK_EQ_INT(mv_store_get_range(s, "../r", 0, 5, &buf, &got, NULL),
		     MV_EUSAGE);
	CHECK_EQ_INT(err.code, 0);
	mv_store_close(s);
}

/* The bytes read: every get, range and map counts what it gave. */
SEAM_TEST(bytes_read)
{
	struct mv_store *s = open_store("store-bytes-read");
	void *buf, *h;
	const void *p;
	size_t got;

	REQUIRE(s);
	CHECK_EQ_U64(mv_store_bytes_read(s), 0);
	REQUIRE(put_str(s, "r/obj", "0123456789") == 0);
	CHECK_EQ_U64(mv_store_bytes_read(s), 0);
	REQUIRE(mv_store_get(s, "r/obj", &buf, &got, NULL) == 0);
	free(buf);
	CHECK_EQ_U64(mv_store_bytes_read(s), 10);
	REQUIRE(mv_store_get_range(s, "r/obj", 7, 100, &buf, &got, NULL) == 0);
	free(buf);
	CHECK_EQ_U64(mv_store_bytes_read(s), 13);
	REQUIRE(mv_store_map(s, "r/obj", &p, &got, &h, NULL) == 0);
	mv_store_unmap(s, h);
	CHECK_EQ_U64(mv_store_bytes_read(s), 23);
	/* A failed read counts nothing. */
	CHECK_EQ_INT(mv_store_get(s, "r/none", &buf, &got, NULL), MV_ENOINPUT);
	CHECK_EQ_U64(mv_store_bytes_read(s), 23);
	CHECK_EQ_U64(mv_store_bytes_read(NULL), 0);
	mv_store_close(s);
}

/* kB of the process's file-backed resident memory (RssFile). */
static long rss_file_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "RssFile:", 8))
			kb = strtol(line + 8, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/*
 * mv_store_map_evict gives back the pages a pass over a local mapping
 * made resident, and the mapping reads the same bytes afterwards.
 */
TEST(store_map_evict)
{
	struct mv_store *s = open_store("store-evict");
	size_t big = 16u << 20;
	unsigned char *a = malloc(big);
	struct iovec iov;
	uint32_t want;
	const void *p;
	void *h;
	size_t len;
	long before, touched, after;

	REQUIRE(s && a);
	fill(a, big, 5);
	want = mv_crc32c(0, a, big);
	iov = (struct iovec){ a, big };
	REQUIRE(mv_store_put(s, "evict/seg.vec", &iov, 1, NULL) == 0);
	free(a);
	REQUIRE(mv_store_map(s, "evict/seg.vec", &p, &len, &h, NULL) == 0);
	before = rss_file_kb();
	CHECK_EQ_U64(mv_crc32c(0, p, len), want);
	touched = rss_file_kb();
	mv_store_map_evict(s, h);
	after = rss_file_kb();
	unit_diag("RssFile %ld kB, after a pass %ld, after evict %ld",
		  before, touched, after);
	CHECK(touched - before >= 15 * 1024);
	CHECK(touched - after >= 15 * 1024);
	CHECK_EQ_U64(mv_crc32c(0, p, len), want);	/* faulted in again */
	mv_store_map_evict(s, NULL);			/* a no-op */
	mv_store_unmap(s, h);
	mv_store_close(s);
}

/*
 * test_meta.c - unit tests of the metadata store (meta.h): the seam's
 * semantics (get/range/txn, the limits shared with etcd, durability across
 * reopen, revisions, watches, leases) on every backend, the local one and
 * a real etcd (MV_TEST_ETCD, or one started with scripts/etcd.sh for the
 * run); the local store's log (torn and corrupt tails, compaction, the
 * directory lock); etcd's endpoints (unreachable, failover, bad replies).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "meta.h"
#include "unit.h"

/* Open dir (a unit_path name) or fail the test. */
static struct mv_meta *open_dir(const char *name)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = mv_meta_open_local(unit_path(name), &err);

	if (!m)
		unit_diag("open '%s': %s", name, err.msg);
	return m;
}

/*
 * The seam: get, range, txn, revisions, revision compares, watches and
 * leases.  These tests run against every backend of this table;
 * open(name) opens the store called name, the same store again when
 * called again after mv_meta_close (on etcd: a namespace of its own).
 */
struct backend {
	const char *name;
	struct mv_meta *(*open)(const char *name);
};

static struct mv_meta *open_local(const char *name)
{
	return open_dir(name);
}

static char etcd_url[256], etcd_dir[64];

/* scripts/etcd.sh, found from this binary (tests/unit/run-unit). */
static const char *etcd_sh(void)
{
	static char path[4096];
	char *p;
	ssize_t n;

	if (path[0])
		return path;
	n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	path[n > 0 ? n : 0] = '\0';
	for (int i = 0; i < 3 && (p = strrchr(path, '/')); i++)
		*p = '\0';
	if (!path[0] || strchr(path, '\''))
		snprintf(path, sizeof(path), ".");
	strcat(path, "/scripts/etcd.sh");
	return path;
}

static void etcd_stop(void)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "sh '%s' stop '%s' && rm -rf '%s'",
		 etcd_sh(), etcd_dir, etcd_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "run-unit: cannot stop etcd in %s\n", etcd_dir);
}

/*
 * The URL of the test etcd: MV_TEST_ETCD, or one started for this run
 * (with scripts/etcd.sh of the tree this binary is in) and stopped at
 * exit.
 */
static const char *etcd_endpoint(void)
{
	const char *env = getenv("MV_TEST_ETCD");
	char cmd[8192], line[256];
	FILE *f;

	if (etcd_url[0])
		return etcd_url;
	if (env && *env) {
		snprintf(etcd_url, sizeof(etcd_url), "%s", env);
		return etcd_url;
	}
	snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/mv-unit-etcd.XXXXXX");
	if (!mkdtemp(etcd_dir)) {
		unit_diag("mkdtemp: %s", strerror(errno));
		return NULL;
	}
	snprintf(cmd, sizeof(cmd), "sh '%s' start '%s'", etcd_sh(), etcd_dir);
	if (!(f = popen(cmd, "r")))
		return NULL;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MV_TEST_ETCD=", 13))
			snprintf(etcd_url, sizeof(etcd_url), "%s",
				 strtok(line + 13, "\n"));
	pclose(f);
	atexit(etcd_stop);
	if (!etcd_url[0])
		unit_diag("could not start etcd (scripts/etcd.sh)");
	return etcd_url[0] ? etcd_url : NULL;
}

/* The key namespace of name in this run. */
static const char *etcd_ns(const char *name)
{
	static char ns[256];
	static long run;

	if (!run)
		run = (long)time(NULL) * 100000 + getpid() % 100000;
	snprintf(ns, sizeof(ns), "/mv-unit.%ld/%s", run, name);
	return ns;
}

static struct mv_meta *open_etcd(const char *name)
{
	struct mv_err err = { 0 };
	const char *url = etcd_endpoint();
	struct mv_meta *m;

	if (!url)
		return NULL;
	if (!(m = mv_meta_open_etcd_ns(url, etcd_ns(name), &err)))
		unit_diag("open etcd '%s': %s", url, err.msg);
	return m;
}

static const struct backend backends[] = {
	{ "local", open_local },
	{ "etcd", open_etcd },
};

#define EACH_BACKEND(b)							\
	for (const struct backend *b = backends;			\
	     b < backends + sizeof(backends) / sizeof(backends[0]); b++)

static struct mv_meta *bopen(const struct backend *b, const char *test)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-%s", test, b->name);
	return b->open(name);
}

/* The value of key as a string, "" if absent, in a static buffer. */
static const char *get_str(struct mv_meta *m, const char *key)
{
	static char out[256];
	char *v;
	size_t n;
	int rc = mv_meta_get(m, key, &v, &n, NULL);

	if (rc == 1)
		return "";
	if (rc < 0)
		return "(error)";
	snprintf(out, sizeof(out), "%s", v);
	free(v);
	return out;
}

static int put_str(struct mv_meta *m, const char *key, const char *val)
{
	return mv_meta_put(m, key, val, strlen(val), NULL);
}

/* Range collector: "key=val;" for each key. */
struct coll {
	char buf[4096];
	int n, stop_at;
};

static int collect(void *arg, const char *key, const void *val, size_t vlen)
{
	struct coll *c = arg;
	size_t len = strlen(c->buf);

	snprintf(c->buf + len, sizeof(c->buf) - len, "%s=%.*s;", key,
		 (int)vlen, (const char *)val);
	if (++c->n == c->stop_at)
		return 7;
	return 0;
}

static const char *range_str(struct mv_meta *m, const char *prefix)
{
	static struct coll c;

	memset(&c, 0, sizeof(c));
	if (mv_meta_range(m, prefix, collect, &c, NULL) != 0)
		return "(error)";
	return c.buf;
}

static void get_put_del(const struct backend *b)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = bopen(b, "meta-basic");
	const char bin[] = { 'a', 0, 'b', 0, (char)0xff };
	char *v = (char *)1;
	size_t n = 99;

	REQUIRE(m);
	CHECK_EQ_INT(mv_meta_get(m, "/k", &v, &n, &err), 1);
	CHECK(v == NULL);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(err.code, 0);
	CHECK_EQ_INT(put_str(m, "/k", "one"), 0);
	CHECK_STR(get_str(m, "/k"), "one");
	CHECK_EQ_INT(put_str(m, "/k", "two"), 0);
	CHECK_STR(get_str(m, "/k"), "two");

	/* Binary values come back whole and NUL-terminated. */
	CHECK_EQ_INT(mv_meta_put(m, "/bin", bin, sizeof(bin), NULL), 0);
	REQUIRE(mv_meta_get(m, "/bin", &v, &n, NULL) == 0);
	CHECK_EQ_INT(n, sizeof(bin));
	CHECK_MEM(v, bin, sizeof(bin));
	CHECK_EQ_INT(v[n], 0);
	free(v);

	/* An empty value is a present key. */
	CHECK_EQ_INT(mv_meta_put(m, "/empty", NULL, 0, NULL), 0);
	REQUIRE(mv_meta_get(m, "/empty", &v, &n, NULL) == 0);
	CHECK_EQ_INT(n, 0);
	CHECK_STR(v, "");
	free(v);

	CHECK_EQ_INT(mv_meta_del(m, "/k", NULL), 0);
	CHECK_EQ_INT(mv_meta_get(m, "/k", &v, &n, NULL), 1);
	CHECK_EQ_INT(mv_meta_del(m, "/k", NULL), 0);	/* absent: fine */

	/* Bad keys. */
	CHECK_EQ_INT(mv_meta_put(m, "", "x", 1, &err), MV_EUSAGE);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_meta_get(m, "", &v, &n, &err), MV_EUSAGE);
	mv_meta_close(m);
	mv_meta_close(NULL);
}

TEST(meta_get_put_del)
{
	EACH_BACKEND(b)
		get_put_del(b);
}

static void range(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-range");
	struct coll c = { .stop_at = 2 };

	REQUIRE(m);
	put_str(m, "/u/b", "2");
	put_str(m, "/u/a", "1");
	put_str(m, "/u/c/x", "3");
	put_str(m, "/u", "0");
	put_str(m, "/v/a", "4");
	put_str(m, "/t", "5");
	put_str(m, "/u\x7f", "6");
	put_str(m, "/u\xc3\xa9", "7");	/* bytewise: after 0x7f */
	CHECK_STR(range_str(m, "/u/"), "/u/a=1;/u/b=2;/u/c/x=3;");
	CHECK_STR(range_str(m, "/u"),
		  "/u=0;/u/a=1;/u/b=2;/u/c/x=3;/u\x7f=6;/u\xc3\xa9=7;");
	CHECK_STR(range_str(m, "/u/c/x"), "/u/c/x=3;");
	CHECK_STR(range_str(m, "/u/c/xy"), "");
	CHECK_STR(range_str(m, "/w"), "");
	CHECK_STR(range_str(m, ""),
		  "/t=5;/u=0;/u/a=1;/u/b=2;/u/c/x=3;/u\x7f=6;/u\xc3\xa9=7;"
		  "/v/a=4;");

	/* A non-zero return stops the walk and is returned. */
	CHECK_EQ_INT(mv_meta_range(m, "/u/", collect, &c, NULL), 7);
	CHECK_STR(c.buf, "/u/a=1;/u/b=2;");
	mv_meta_close(m);
}

TEST(meta_range)
{
	EACH_BACKEND(b)
		range(b);
}

/* Range callback that writes into the store it walks. */
static int range_put(void *arg, const char *key, const void *val,
		     size_t vlen)
{
	struct mv_meta *m = arg;
	char k[64];

	(void)val;
	(void)vlen;
	snprintf(k, sizeof(k), "/copy%s", key);
	return mv_meta_put(m, k, "c", 1, NULL) ? -1 : 0;
}

static void range_reenters(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-reenter");

	REQUIRE(m);
	put_str(m, "/a", "1");
	put_str(m, "/b", "2");
	/* fn may call into m and sees the snapshot taken at the call. */
	CHECK_EQ_INT(mv_meta_range(m, "", range_put, m, NULL), 0);
	CHECK_STR(range_str(m, ""), "/a=1;/b=2;/copy/a=c;/copy/b=c;");
	mv_meta_close(m);
}

TEST(meta_range_reenters)
{
	EACH_BACKEND(b)
		range_reenters(b);
}

static void delprefix(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-delprefix");
	struct mv_meta_op ops[2] = {
		{ MV_META_DELPREFIX, "/u/c/", NULL, 0 },
		{ MV_META_DELPREFIX, "/u/c/d", NULL, 0 },	/* overlaps */
	};
	char key[32];

	REQUIRE(m);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "/u/c/%03d", i);
		put_str(m, key, "x");
	}
	put_str(m, "/u/c", "keep");
	put_str(m, "/u/cc", "keep");
	put_str(m, "/u/b", "keep");
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 2, NULL), 0);
	CHECK_STR(range_str(m, ""), "/u/b=keep;/u/c=keep;/u/cc=keep;");

	ops[0].key = "";
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 1, NULL), 0);
	CHECK_STR(range_str(m, ""), "");
	mv_meta_close(m);
}

TEST(meta_delprefix)
{
	EACH_BACKEND(b)
		delprefix(b);
}

static void txn_compare(const struct backend *b)
{
	struct mv_err err = { 0 };
	struct mv_meta *m = bopen(b, "meta-txn");
	struct mv_meta_cmp cmp[2] = {
		{ "/a", "1", 1 },
		{ "/none", NULL, 0 },
	};
	struct mv_meta_op ops[3] = {
		{ MV_META_PUT, "/a", "2", 1 },
		{ MV_META_PUT, "/b", "new", 3 },
		{ MV_META_DEL, "/c", NULL, 0 },
	};

	REQUIRE(m);
	put_str(m, "/a", "1");
	put_str(m, "/c", "old");

	/* Every compare holds: every op applies. */
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 2, ops, 3, &err), 0);
	CHECK_EQ_INT(err.code, 0);
	CHECK_STR(range_str(m, ""), "/a=2;/b=new;");

	/* /a is 2 now: nothing applies. */
	ops[0].val = "3";
	ops[1].key = "/d";
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 2, ops, 2, &err), MV_META_CMPFAIL);
	CHECK_EQ_INT(err.code, MV_ESERVER);
	CHECK_STR(err.msg, "compare failed");
	CHECK_STR(range_str(m, ""), "/a=2;/b=new;");

	/* A value of another length, a present key that must be absent. */
	mv_err_clear(&err);
	cmp[0].val = "22";
	cmp[0].vlen = 2;
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 1, ops, 1, &err), MV_META_CMPFAIL);
	cmp[0].key = "/b";
	cmp[0].val = NULL;
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 1, ops, 1, NULL), MV_META_CMPFAIL);
	CHECK_STR(get_str(m, "/a"), "2");

	/* Compares alone. */
	cmp[0].key = "/a";
	cmp[0].val = "2";
	cmp[0].vlen = 1;
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 2, NULL, 0, NULL), 0);
	CHECK_EQ_INT(mv_meta_txn(m, &cmp[0], 1, NULL, 0, NULL), 0);
	cmp[0].val = "9";
	CHECK_EQ_INT(mv_meta_txn(m, cmp, 1, NULL, 0, NULL), MV_META_CMPFAIL);
	mv_meta_close(m);
}

TEST(meta_txn_compare)
{
	EACH_BACKEND(b)
		txn_compare(b);
}

static void txn_limits(const struct backend *b)
{
	static struct mv_meta_op many[MV_META_TXN_OPS_MAX + 1];
	static char keys[MV_META_TXN_OPS_MAX + 1][16];
	struct mv_err err = { 0 };
	struct mv_meta *m = bopen(b, "meta-limits");
	struct mv_meta_op ops[2] = {
		{ MV_META_PUT, "/a", "1", 1 },
		{ MV_META_PUT, "/a", "2", 1 },
	};
	char *big, *longkey;

	REQUIRE(m);
	/* etcd refuses a key touched twice; so do we. */
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 2, &err), MV_EUSAGE);
	CHECK_STR(err.msg, "metadata txn touches key '/a' twice");
	ops[1].type = MV_META_DEL;
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 2, NULL), MV_EUSAGE);
	ops[1].type = MV_META_DELPREFIX;
	ops[1].key = "/";
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 2, NULL), MV_EUSAGE);
	ops[1].key = "/b";
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 2, NULL), 0);
	ops[0].type = 42;
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 1, NULL), MV_EUSAGE);
	ops[0].type = MV_META_PUT;
	ops[0].val = NULL;
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, ops, 1, NULL), MV_EUSAGE);

	for (int i = 0; i <= MV_META_TXN_OPS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "/m/%d", i);
		many[i] = (struct mv_meta_op){ MV_META_PUT, keys[i], "v", 1 };
	}
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, many, MV_META_TXN_OPS_MAX + 1,
				 NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_meta_txn(m, NULL, 0, many, MV_META_TXN_OPS_MAX,
				 NULL), 0);

	REQUIRE((big = calloc(1, MV_META_TXN_BYTES_MAX + 1)));
	CHECK_EQ_INT(mv_meta_put(m, "/big", big, MV_META_TXN_BYTES_MAX + 1,
				 NULL), MV_EUSAGE);
	CHECK_EQ_INT(mv_meta_put(m, "/big", big, MV_META_TXN_BYTES_MAX - 4,
				 NULL), 0);
	free(big);
	REQUIRE((longkey = malloc(MV_META_KEY_MAX + 2)));
	memset(longkey, 'k', MV_META_KEY_MAX + 1);
	longkey[MV_META_KEY_MAX + 1] = '\0';
	CHECK_EQ_INT(mv_meta_put(m, longkey, "v", 1, NULL), MV_EUSAGE);
	longkey[MV_META_KEY_MAX] = '\0';
	CHECK_EQ_INT(mv_meta_put(m, longkey, "v", 1, NULL), 0);
	free(longkey);
	mv_meta_close(m);
}

TEST(meta_txn_limits)
{
	EACH_BACKEND(b)
		txn_limits(b);
}

static void reopen(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-reopen");
	struct mv_meta_op ops[2] = {
		{ MV_META_DELPREFIX, "/p/", NULL, 0 },
		{ MV_META_PUT, "/q", "after", 5 },
	};
	struct mv_meta_stats st;

	REQUIRE(m);
	put_str(m, "/a", "1");
	put_str(m, "/b", "2");
	put_str(m, "/a", "3");
	put_str(m, "/p/1", "x");
	put_str(m, "/p/2", "y");
	mv_meta_del(m, "/b", NULL);
	mv_meta_txn(m, NULL, 0, ops, 2, NULL);
	mv_meta_close(m);

	REQUIRE((m = bopen(b, "meta-reopen")));
	CHECK_STR(range_str(m, ""), "/a=3;/q=after;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.keys, 2);
	CHECK_EQ_U64(st.torn_bytes, 0);
	put_str(m, "/c", "4");
	mv_meta_close(m);

	REQUIRE((m = bopen(b, "meta-reopen")));
	CHECK_STR(range_str(m, ""), "/a=3;/c=4;/q=after;");
	mv_meta_close(m);
}

TEST(meta_reopen)
{
	EACH_BACKEND(b)
		reopen(b);
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*buf = malloc(n ? n : 1);
	*len = fread(*buf, 1, n, f);
	fclose(f);
	return *len == (size_t)n ? 0 : -1;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc;

	if (!f)
		return -1;
	rc = fwrite(buf, 1, len, f) == len ? 0 : -1;
	return fclose(f) || rc ? -1 : 0;
}

/* Open the log image buf[0..len) and check it holds exactly the first txns. */
static int check_image(const unsigned char *buf, size_t len, size_t good)
{
	char log[4096];
	struct mv_meta *m;
	struct mv_meta_stats st;
	int bad = 0;

	snprintf(log, sizeof(log), "%s/meta.log", unit_path("meta-torn"));
	if (write_file(log, buf, len) < 0)
		return 1;
	if (!(m = open_dir("meta-torn")))
		return 1;
	/* The earlier txns whole, the last one not at all. */
	bad |= strcmp(range_str(m, ""), "/a=1;/b=2;/c=3;") != 0;
	mv_meta_stats(m, &st, NULL);
	bad |= st.torn_bytes != len - good;
	bad |= st.log_bytes != good;
	/* The cut tail is gone: a new txn lands and survives a reopen. */
	bad |= put_str(m, "/z", "z") != 0;
	mv_meta_close(m);
	if (!(m = open_dir("meta-torn")))
		return 1;
	bad |= strcmp(range_str(m, ""), "/a=1;/b=2;/c=3;/z=z;") != 0;
	mv_meta_stats(m, &st, NULL);
	bad |= st.torn_bytes != 0;
	mv_meta_close(m);
	return bad;
}

TEST(meta_torn_tail)
{
	struct mv_meta *m = open_dir("meta-torn");
	struct mv_meta_op ops[3] = {
		{ MV_META_PUT, "/d", "4", 1 },
		{ MV_META_DEL, "/a", NULL, 0 },
		{ MV_META_DELPREFIX, "/b", NULL, 0 },
	};
	struct mv_meta_stats st;
	unsigned char *buf;
	size_t len, good, cut_bad = 0, flip_bad = 0;
	char log[4096];

	REQUIRE(m);
	put_str(m, "/a", "1");
	put_str(m, "/b", "2");
	put_str(m, "/c", "3");
	mv_meta_stats(m, &st, NULL);
	good = st.log_bytes;
	REQUIRE(mv_meta_txn(m, NULL, 0, ops, 3, NULL) == 0);
	mv_meta_close(m);
	snprintf(log, sizeof(log), "%s/meta.log", unit_path("meta-torn"));
	REQUIRE(read_file(log, &buf, &len) == 0);
	REQUIRE(len > good);

	/* A crash at any byte of the last write. */
	for (size_t cut = good; cut < len; cut++)
		if (check_image(buf, cut, good)) {
			unit_diag("bad reopen after a cut at %zu", cut);
			cut_bad++;
		}
	CHECK_EQ_INT(cut_bad, 0);

	/* A flipped byte anywhere in the last record. */
	for (size_t i = good; i < len; i++) {
		buf[i] ^= 0x20;
		if (check_image(buf, len, good)) {
			unit_diag("bad reopen with byte %zu flipped", i);
			flip_bad++;
		}
		buf[i] ^= 0x20;
	}
	CHECK_EQ_INT(flip_bad, 0);

	/* Zeros where the record should be (a file extended, not written). */
	memset(buf + good, 0, len - good);
	CHECK_EQ_INT(check_image(buf, len, good), 0);
	free(buf);
}

TEST(meta_corrupt_log)
{
	unsigned char rec[8 + 8 + 5];
	struct mv_err err = { 0 };
	struct mv_meta *m;
	uint32_t crc;
	char log[4096];
	const char *dir = unit_path("meta-corrupt");

	REQUIRE(mkdir(dir, 0755) == 0);
	snprintf(log, sizeof(log), "%s/meta.log", dir);

	REQUIRE(write_file(log, "NOTMETA!garbage", 15) == 0);
	CHECK(mv_meta_open_local(dir, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EDATA);
	CHECK(strstr(err.msg, "not an mv metadata log") != NULL);

	mv_err_clear(&err);
	REQUIRE(write_file(log, "MVMETA\x09\x00", 8) == 0);
	CHECK(mv_meta_open_local(dir, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EDATA);
	CHECK(strstr(err.msg, "format version 9") != NULL);

	/* A record with a good checksum that does not decode (type 7). */
	memcpy(rec, "MVMETA\x01\x00" "\x05\0\0\0" "CRC!"
	       "\x01\0\0\0\x07", sizeof(rec));
	crc = mv_crc32c(0, rec + 16, 5);
	for (int i = 0; i < 4; i++)
		rec[12 + i] = crc >> (8 * i);
	REQUIRE(write_file(log, rec, sizeof(rec)) == 0);
	mv_err_clear(&err);
	CHECK(mv_meta_open_local(dir, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EDATA);
	CHECK(strstr(err.msg, "corrupt record at offset 8") != NULL);

	/* An empty file is a new store. */
	REQUIRE(write_file(log, "", 0) == 0);
	mv_err_clear(&err);
	m = mv_meta_open_local(dir, &err);
	REQUIRE(m);
	CHECK_EQ_INT(put_str(m, "/a", "1"), 0);
	mv_meta_close(m);
}

TEST(meta_compaction)
{
	struct mv_meta *m = open_dir("meta-compact");
	struct mv_meta_stats st;
	char val[512], key[32];
	int rounds = 0;

	REQUIRE(m);
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "/keep/%02d", i);
		put_str(m, key, key);
	}
	/* Overwrite a few keys until the log passes 1 MiB and 4x live. */
	do {
		struct mv_meta_op ops[16];
		char keys[16][32];

		for (int i = 0; i < 16; i++) {
			snprintf(keys[i], sizeof(keys[i]), "/hot/%02d", i);
			val[0] = 'a' + rounds % 26;
			ops[i] = (struct mv_meta_op){ MV_META_PUT, keys[i],
						      val, sizeof(val) };
		}
		REQUIRE(mv_meta_txn(m, NULL, 0, ops, 16, NULL) == 0);
		mv_meta_stats(m, &st, NULL);
		rounds++;
	} while (!st.compactions && rounds < 1000);
	CHECK_EQ_U64(st.compactions, 1);
	CHECK(st.log_bytes < 4 * st.bytes + 64);
	CHECK_EQ_U64(st.keys, 36);
	mv_meta_del(m, "/keep/00", NULL);
	mv_meta_close(m);

	REQUIRE((m = open_dir("meta-compact")));
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.keys, 35);
	CHECK_STR(get_str(m, "/keep/07"), "/keep/07");
	CHECK_STR(get_str(m, "/keep/00"), "");
	{
		char *v;
		size_t n;

		REQUIRE(mv_meta_get(m, "/hot/15", &v, &n, NULL) == 0);
		CHECK_EQ_INT(n, sizeof(val));
		CHECK_EQ_INT(v[0], 'a' + (rounds - 1) % 26);
		free(v);
	}
	mv_meta_close(m);
	/* No temporary is left behind. */
	CHECK(access(unit_path("meta-compact/meta.log.tmp"), F_OK) < 0);
}

TEST(meta_lock)
{
	struct mv_err err = { 0 };
	const char *dir = unit_path("meta-lock");
	struct mv_meta *m = open_dir("meta-lock"), *m2;
	char want[4200];
	pid_t pid;
	int status;

	REQUIRE(m);
	/* A second open, in this process... */
	m2 = mv_meta_open_local(dir, &err);
	CHECK(m2 == NULL);
	CHECK_EQ_INT(err.code, MV_EAGAIN);
	snprintf(want, sizeof(want), "data directory '%s' is in use by "
		 "another process", dir);
	CHECK_STR(err.msg, want);
	mv_meta_close(m2);

	/* ...or in another. */
	fflush(stdout);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct mv_err e = { 0 };
		struct mv_meta *c = mv_meta_open_local(dir, &e);

		_exit(c == NULL && e.code == MV_EAGAIN ? 0 : 1);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Closing releases it. */
	mv_meta_close(m);
	REQUIRE((m = open_dir("meta-lock")));
	mv_meta_close(m);
}

#define NTHREADS 4
#define NINCR 50

/* Increment /counter NINCR times with compare-and-swap. */
static void *incr(void *arg)
{
	struct mv_meta *m = arg;
	long fails = 0;

	for (int i = 0; i < NINCR; ) {
		char *v, nv[32];
		size_t n;
		struct mv_meta_cmp cmp;
		struct mv_meta_op op;
		int rc;

		if (mv_meta_get(m, "/counter", &v, &n, NULL) != 0)
			return (void *)-1L;
		snprintf(nv, sizeof(nv), "%ld", atol(v) + 1);
		cmp = (struct mv_meta_cmp){ "/counter", v, n };
		op = (struct mv_meta_op){ MV_META_PUT, "/counter", nv,
					  strlen(nv) };
		rc = mv_meta_txn(m, &cmp, 1, &op, 1, NULL);
		free(v);
		if (rc < 0)
			return (void *)-1L;
		if (rc == MV_META_CMPFAIL)
			fails++;
		else
			i++;
	}
	return (void *)fails;
}

static void threads(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-threads");
	pthread_t t[NTHREADS];
	long fails = 0;
	char want[32];

	REQUIRE(m);
	put_str(m, "/counter", "0");
	for (int i = 0; i < NTHREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, incr, m) == 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *r;

		pthread_join(t[i], &r);
		CHECK((long)r >= 0);
		fails += (long)r;
	}
	snprintf(want, sizeof(want), "%d", NTHREADS * NINCR);
	CHECK_STR(get_str(m, "/counter"), want);
	unit_diag("meta_threads: %ld compare failures retried", fails);
	mv_meta_close(m);
}

TEST(meta_threads)
{
	EACH_BACKEND(b)
		threads(b);
}

static int count_keys(void *arg, const char *key, const void *val,
		      size_t vlen)
{
	(void)key;
	(void)val;
	(void)vlen;
	++*(long *)arg;
	return 0;
}

static void many_keys(const struct backend *b)
{
	struct mv_meta *m = bopen(b, "meta-many");
	static struct mv_meta_op ops[MV_META_TXN_OPS_MAX];
	static char keys[MV_META_TXN_OPS_MAX][48];
	const int nkeys = 100 * MV_META_TXN_OPS_MAX;
	struct mv_meta_stats st;
	long n = 0;

	REQUIRE(m);
	/* Keys in a scrambled order, so that the tree has to balance. */
	for (int i = 0; i < nkeys; i += MV_META_TXN_OPS_MAX) {
		for (int j = 0; j < MV_META_TXN_OPS_MAX; j++) {
			unsigned k = (unsigned)(i + j) * 2654435761u % 1000003;

			snprintf(keys[j], sizeof(keys[j]), "/c%d/data/%07u-%d",
				 (i + j) % 4, k, i + j);
			ops[j] = (struct mv_meta_op){ MV_META_PUT, keys[j],
						      keys[j], 5 };
		}
		REQUIRE(mv_meta_txn(m, NULL, 0, ops, MV_META_TXN_OPS_MAX,
				    NULL) == 0);
	}
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.keys, nkeys);
	CHECK_EQ_INT(mv_meta_range(m, "/c2/", count_keys, &n, NULL), 0);
	CHECK_EQ_INT(n, nkeys / 4);
	mv_meta_close(m);

	REQUIRE((m = bopen(b, "meta-many")));
	n = 0;
	CHECK_EQ_INT(mv_meta_range(m, "", count_keys, &n, NULL), 0);
	CHECK_EQ_INT(n, nkeys);
	mv_meta_close(m);
}

TEST(meta_many_keys)
{
	EACH_BACKEND(b)
		many_keys(b);
}

/*
 * One flipped bit in the middle of meta.log is damage, not a torn tail:
 * the open fails with MV_EDATA naming the file and the offset, and leaves
 * the log byte for byte as it was (no cut, no snapshot); once the bit is
 * flipped back, everything is there.
 */
TEST(meta_damage_mid_log)
{
	const char *dir = unit_path("meta-damage");
	struct mv_meta *m = open_dir("meta-damage");
	struct mv_err err = { 0 };
	struct mv_meta_stats st;
	unsigned char *buf, *after;
	size_t len, alen, first, second, at;
	char log[4096], want[64], tmp[4096];
	struct stat sb;

	REQUIRE(m);
	CHECK_EQ_INT(put_str(m, "/a", "first value"), 0);
	mv_meta_stats(m, &st, NULL);
	first = st.log_bytes;
	CHECK_EQ_INT(put_str(m, "/b", "second value"), 0);
	mv_meta_stats(m, &st, NULL);
	second = st.log_bytes;
	CHECK_EQ_INT(put_str(m, "/c", "third value"), 0);
	mv_meta_close(m);
	snprintf(log, sizeof(log), "%s/meta.log", dir);
	snprintf(tmp, sizeof(tmp), "%s/meta.log.tmp", dir);
	REQUIRE(read_file(log, &buf, &len) == 0);

	/* Every byte of the second record, the first and the third valid. */
	for (at = first; at < second; at++) {
		buf[at] ^= 0x10;
		REQUIRE(write_file(log, buf, len) == 0);
		mv_err_clear(&err);
		m = mv_meta_open_local(dir, &err);
		CHECK(m == NULL);
		mv_meta_close(m);
		CHECK_EQ_INT(err.code, MV_EDATA);
		snprintf(want, sizeof(want), "offset %zu", first);
		if (!strstr(err.msg, want) || !strstr(err.msg, "meta.log"))
			unit_fail(__FILE__, __LINE__, "byte %zu: message '%s'",
				  at, err.msg);
		REQUIRE(read_file(log, &after, &alen) == 0);
		CHECK_EQ_U64(alen, len);
		if (alen == len)
			CHECK_MEM(after, buf, len);
		free(after);
		CHECK(stat(tmp, &sb) < 0 && errno == ENOENT);
		buf[at] ^= 0x10;
		if (err.code != MV_EDATA)
			break;
	}
	REQUIRE(write_file(log, buf, len) == 0);
	REQUIRE((m = open_dir("meta-damage")));
	CHECK_STR(range_str(m, ""),
		  "/a=first value;/b=second value;/c=third value;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.torn_bytes, 0);
	mv_meta_close(m);

	/* Damage in the last record is still a torn tail: cut, and open. */
	buf[second + 9] ^= 0x10;
	REQUIRE(write_file(log, buf, len) == 0);
	REQUIRE((m = open_dir("meta-damage")));
	CHECK_STR(range_str(m, ""), "/a=first value;/b=second value;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.torn_bytes, len - second);
	mv_meta_close(m);
	free(buf);
}

/*
 * A write that fails (the disk full; here the file size limit) leaves the
 * txn out, and once there is room again the store takes writes without a
 * reopen: the failed record was cut off, so the log replays cleanly.
 */
TEST(meta_write_fails_then_recovers)
{
	struct mv_meta *m = open_dir("meta-enospc");
	struct mv_err err = { 0 };
	struct mv_meta_stats st;
	struct rlimit old, lim;
	char big[600], log[4096];
	struct stat sb;
	int rc;

	REQUIRE(m);
	CHECK_EQ_INT(put_str(m, "/a", "1"), 0);
	mv_meta_stats(m, &st, NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = st.log_bytes + 100;	/* part of the record fits */
	REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	rc = mv_meta_put(m, "/b", big, strlen(big), &err);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);	/* room again */
	signal(SIGXFSZ, SIG_DFL);
	CHECK_EQ_INT(rc, MV_EIO);
	CHECK_STR(get_str(m, "/b"), "");
	/* No reopen: the next writes land. */
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_meta_put(m, "/c", "3", 1, &err), 0);
	if (err.code)
		unit_diag("put after the failure: %s", err.msg);
	CHECK_EQ_INT(put_str(m, "/b", "2"), 0);
	CHECK_STR(range_str(m, ""), "/a=1;/b=2;/c=3;");
	mv_meta_stats(m, &st, NULL);
	snprintf(log, sizeof(log), "%s/meta.log", unit_path("meta-enospc"));
	REQUIRE(stat(log, &sb) == 0);
	CHECK_EQ_U64(sb.st_size, st.log_bytes);
	mv_meta_close(m);
	REQUIRE((m = open_dir("meta-enospc")));
	CHECK_STR(range_str(m, ""), "/a=1;/b=2;/c=3;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.torn_bytes, 0);
	mv_meta_close(m);
}

/* The unit runner links with --wrap=ftruncate: this can make it fail. */
static int fail_ftruncate;
int __real_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len)
{
	if (fail_ftruncate) {
		errno = EIO;
		return -1;
	}
	return __real_ftruncate(fd, len);
}

/*
 * When the failed record cannot be cut off either, the end of the log is
 * unknown: the store refuses writes until reopened, and the reopen cuts
 * the torn tail.
 */
TEST(meta_write_fails_cut_fails)
{
	struct mv_meta *m = open_dir("meta-cutfail");
	struct mv_err err = { 0 };
	struct mv_meta_stats st;
	struct rlimit old, lim;
	char big[600];
	int rc;

	REQUIRE(m);
	CHECK_EQ_INT(put_str(m, "/a", "1"), 0);
	mv_meta_stats(m, &st, NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = st.log_bytes + 100;
	REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	fail_ftruncate = 1;
	rc = mv_meta_put(m, "/b", big, strlen(big), NULL);
	fail_ftruncate = 0;
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	CHECK_EQ_INT(rc, MV_EIO);
	CHECK_EQ_INT(mv_meta_put(m, "/c", "3", 1, &err), MV_EIO);
	CHECK(strstr(err.msg, "reopen") != NULL);
	CHECK_STR(range_str(m, ""), "/a=1;");
	mv_meta_close(m);
	REQUIRE((m = open_dir("meta-cutfail")));
	CHECK_STR(range_str(m, ""), "/a=1;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_U64(st.torn_bytes, 100);
	CHECK_EQ_INT(put_str(m, "/c", "3"), 0);
	mv_meta_close(m);
}

static int mode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) < 0 ? -1 : (int)(sb.st_mode & 07777);
}

/* meta.log, LOCK and snapshots are 0600, new directories 0700: any umask. */
TEST(meta_permissions)
{
	static const mode_t masks[] = { 0, 0222, 0077 };

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		char top[64], dir[96], path[4096];
		struct mv_meta_stats st;
		struct mv_meta *m;
		char val[4096];
		mode_t old;
		int n = 0, rc;

		snprintf(top, sizeof(top), "meta-perm%zu", i);
		snprintf(dir, sizeof(dir), "%s/a/b", top);
		old = umask(masks[i]);
		m = open_dir(dir);
		umask(old);
		REQUIRE(m);
		/* Enough rewrites of one key for a compaction. */
		memset(val, 'v', sizeof(val));
		do {
			old = umask(masks[i]);
			rc = mv_meta_put(m, "/k", val, sizeof(val), NULL);
			CHECK_EQ_INT(rc, 0);
			umask(old);
			mv_meta_stats(m, &st, NULL);
		} while (!st.compactions && ++n < 2000);
		CHECK(st.compactions > 0);
		mv_meta_close(m);
		snprintf(path, sizeof(path), "%s", unit_path(top));
		CHECK_EQ_INT(mode_of(path), 0700);
		snprintf(path, sizeof(path), "%s/a", unit_path(top));
		CHECK_EQ_INT(mode_of(path), 0700);
		CHECK_EQ_INT(mode_of(unit_path(dir)), 0700);
		snprintf(path, sizeof(path), "%s/LOCK", unit_path(dir));
		CHECK_EQ_INT(mode_of(path), 0600);
		snprintf(path, sizeof(path), "%s/meta.log", unit_path(dir));
		CHECK_EQ_INT(mode_of(path), 0600);
	}
}

static int64_t put_rev(struct mv_meta *m, const char *key, const char *val,
		       int64_t lease)
{
	struct mv_meta_op op = { MV_META_PUT, key, val, strlen(val) };
	struct mv_meta_req req = { .ops = &op, .nops = 1,
				   .leases = lease ? &lease : NULL };
	struct mv_err err = { 0 };
	int rc = mv_meta_txn_req(m, &req, &err);

	if (rc)
		unit_diag("put '%s': %d %s", key, rc, err.msg);
	return rc ? -1 : req.rev;
}

static int64_t del_rev(struct mv_meta *m, const char *key, int prefix)
{
	struct mv_meta_op op = { prefix ? MV_META_DELPREFIX : MV_META_DEL,
				 key, NULL, 0 };
	struct mv_meta_req req = { .ops = &op, .nops = 1 };

	return mv_meta_txn_req(m, &req, NULL) ? -1 : req.rev;
}

static int kv_copy(void *arg, const struct mv_meta_kv *kv)
{
	struct mv_meta_kv *out = arg;

	*out = *kv;
	out->key = NULL;
	out->val = NULL;
	return 0;
}

/* key's revisions into *kv (zeros when absent); 0 found, 1 absent. */
static int get_revs(struct mv_meta *m, const char *key, struct mv_meta_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
	return mv_meta_get_kv(m, key, kv_copy, kv, NULL);
}

static int64_t cur_rev(struct mv_meta *m)
{
	int64_t r = -1;

	mv_meta_revision(m, &r, NULL);
	return r;
}

TEST(seam_revisions)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-rev");
		struct mv_meta_kv kv;
		struct mv_meta_stats st;
		int64_t r0, r1, r2, r3, r4, rr = -1;
		char val[4096];
		int n = 0;

		REQUIRE(m);
		r0 = cur_rev(m);
		r1 = put_rev(m, "/a", "1", 0);
		r2 = put_rev(m, "/a", "2", 0);
		r3 = put_rev(m, "/b", "x", 0);
		CHECK(r1 > r0 && r2 > r1 && r3 > r2);
		CHECK_EQ_INT(cur_rev(m), r3);
		CHECK_EQ_INT(get_revs(m, "/a", &kv), 0);
		CHECK_EQ_INT(kv.create_rev, r1);
		CHECK_EQ_INT(kv.mod_rev, r2);
		CHECK_EQ_INT(kv.version, 2);
		CHECK_EQ_INT(kv.lease, 0);
		CHECK_EQ_INT(get_revs(m, "/nope", &kv), 1);
		/* Deleted and put again: a new life. */
		r4 = del_rev(m, "/a", 0);
		CHECK(r4 > r3);
		CHECK_EQ_INT(put_rev(m, "/a", "3", 0), r4 + 1);
		CHECK_EQ_INT(get_revs(m, "/a", &kv), 0);
		CHECK_EQ_INT(kv.create_rev, r4 + 1);
		CHECK_EQ_INT(kv.version, 1);
		/* A range reads at a revision. */
		CHECK_EQ_INT(mv_meta_range_kv(m, "/", kv_copy, &kv, &rr, NULL),
			     0);
		CHECK_EQ_INT(rr, r4 + 1);
		/* A txn that changes nothing gives the current revision. */
		{
			struct mv_meta_req req = { 0 };

			CHECK_EQ_INT(mv_meta_txn_req(m, &req, NULL), 0);
			CHECK_EQ_INT(req.rev, r4 + 1);
		}
		/* Compaction of the log and a restart keep every revision. */
		memset(val, 'v', sizeof(val) - 1);
		val[sizeof(val) - 1] = '\0';
		do {	/* etcd: a few puts, it has no log to compact */
			CHECK(put_rev(m, "/big", val, 0) > 0);
			mv_meta_stats(m, &st, NULL);
		} while (!st.compactions &&
			 ++n < (strcmp(b->name, "local") ? 3 : 2000));
		if (!st.compactions)
			n--;	/* the count ended it: n puts, not n + 1 */
		r4 = cur_rev(m);
		mv_meta_close(m);
		REQUIRE((m = bopen(b, "seam-rev")));
		CHECK_EQ_INT(cur_rev(m), r4);
		CHECK_EQ_INT(get_revs(m, "/b", &kv), 0);
		CHECK_EQ_INT(kv.create_rev, r3);
		CHECK_EQ_INT(kv.mod_rev, r3);
		CHECK_EQ_INT(get_revs(m, "/big", &kv), 0);
		CHECK_EQ_INT(kv.mod_rev, r4);
		CHECK_EQ_INT(kv.version, n + 1);
		CHECK_EQ_INT(put_rev(m, "/c", "c", 0), r4 + 1);
		mv_meta_close(m);
	}
}

static int txn_rcmp(struct mv_meta *m, const char *key,
		    enum mv_meta_cmp_target t, enum mv_meta_cmp_result r,
		    int64_t rev)
{
	struct mv_meta_rcmp c = { key, t, r, rev };
	struct mv_meta_op op = { MV_META_PUT, "/side", "s", 1 };
	struct mv_meta_req req = { .rcmps = &c, .nrcmp = 1, .ops = &op,
				   .nops = 1 };

	return mv_meta_txn_req(m, &req, NULL);
}

#define RCMP(key, t, r, rev)						\
	txn_rcmp(m, key, MV_META_CMP_##t, MV_META_##r, rev)

TEST(seam_txn_compares)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-cmp");
		struct mv_meta_cmp absent = { "/k", NULL, 0 };
		struct mv_meta_cmp val = { "/k", "1", 1 };
		struct mv_meta_op op = { MV_META_PUT, "/k", "1", 1 };
		struct mv_meta_req req = { .cmps = &absent, .ncmp = 1,
					   .ops = &op, .nops = 1 };
		struct mv_err err = { 0 };
		int64_t r1, r2;

		REQUIRE(m);
		/* Absence, then value, as before. */
		CHECK_EQ_INT(mv_meta_txn_req(m, &req, NULL), 0);
		r1 = req.rev;
		CHECK_EQ_INT(mv_meta_txn_req(m, &req, &err), MV_META_CMPFAIL);
		CHECK_EQ_INT(req.rev, r1);
		CHECK(strstr(err.msg, "compare failed") != NULL);
		req.cmps = &val;
		CHECK_EQ_INT(mv_meta_txn_req(m, &req, NULL), 0);
		r2 = req.rev;
		CHECK(r2 > r1);
		/* On mod revision, as etcd: EQ, NE, LT, GT. */
		CHECK_EQ_INT(RCMP("/k", MOD, EQ, r2), 0);
		CHECK_EQ_INT(RCMP("/k", MOD, EQ, r1),      MV_META_CMPFAIL);
		CHECK_EQ_INT(RCMP("/k", MOD, NE, r1), 0);
		CHECK_EQ_INT(RCMP("/k", MOD, LT, r2 + 1),      0);
		CHECK_EQ_INT(RCMP("/k", MOD, LT, r2),      MV_META_CMPFAIL);
		CHECK_EQ_INT(RCMP("/k", MOD, GT, r1), 0);
		CHECK_EQ_INT(RCMP("/k", MOD, GT, r2),      MV_META_CMPFAIL);
		CHECK_EQ_INT(RCMP("/k", CREATE, EQ, r1),      0);
		CHECK_EQ_INT(RCMP("/k", VERSION, EQ, 2),      0);
		/* An absent key counts as 0. */
		CHECK_EQ_INT(RCMP("/none", MOD, EQ, 0),      0);
		CHECK_EQ_INT(RCMP("/none", MOD, GT, 0),      MV_META_CMPFAIL);
		/* A failed compare changes nothing. */
		r2 = cur_rev(m);
		CHECK_EQ_INT(RCMP("/k", MOD, EQ, 1),      MV_META_CMPFAIL);
		CHECK_EQ_INT(cur_rev(m), r2);
		/* Nonsense is refused. */
		CHECK_EQ_INT(txn_rcmp(m, "/k", 9, MV_META_EQ, 1), MV_EUSAGE);
		mv_meta_close(m);
	}
}

/* Watch collector: "P key=val@rev;" or "D key@rev;" per event. */
struct evs {
	char buf[8192];
	int n;
};

static int on_event(void *arg, const struct mv_meta_event *ev)
{
	struct evs *e = arg;
	size_t len = strlen(e->buf);

	if (ev->type == MV_META_PUT)
		snprintf(e->buf + len, sizeof(e->buf) - len, "P %s=%.*s@%lld;",
			 ev->kv.key, (int)ev->kv.vlen, ev->kv.val,
			 (long long)ev->kv.mod_rev);
	else
		snprintf(e->buf + len, sizeof(e->buf) - len, "D %s@%lld;",
			 ev->kv.key, (long long)ev->kv.mod_rev);
	e->n++;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct later {
	struct mv_meta *m;
	int ms;
};

static void *put_later(void *arg)
{
	struct later *l = arg;

	usleep(l->ms * 1000);
	put_rev(l->m, "/w/late", "L", 0);
	return NULL;
}

TEST(seam_watch)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-watch");
		struct evs e = { "", 0 };
		struct mv_err err = { 0 };
		char want[512];
		int64_t r0, r1, r2, r3, r4, next = 0;
		struct mv_meta_op two[2] = {
			{ MV_META_PUT, "/w/y", "Y", 1 },
			{ MV_META_PUT, "/w/z", "Z", 1 },
		};
		struct mv_meta_req req = { .ops = two, .nops = 2 };
		struct later l = { NULL, 200 };
		pthread_t t;
		double t0;

		REQUIRE(m);
		r0 = cur_rev(m);
		r1 = put_rev(m, "/w/a", "1", 0);
		put_rev(m, "/other", "o", 0);
		r2 = put_rev(m, "/w/a", "2", 0);
		CHECK_EQ_INT(mv_meta_txn_req(m, &req, NULL), 0);
		r3 = req.rev;
		r4 = del_rev(m, "/w/", 1);
		/* Everything from r0 + 1, in order, only under the prefix. */
		CHECK_EQ_INT(mv_meta_watch(m, "/w/", r0 + 1, 1000, on_event, &e,
					   &next, NULL), 0);
		snprintf(want, sizeof(want),
			 "P /w/a=1@%lld;P /w/a=2@%lld;P /w/y=Y@%lld;"
			 "P /w/z=Z@%lld;D /w/a@%lld;D /w/y@%lld;D /w/z@%lld;",
			 (long long)r1, (long long)r2, (long long)r3,
			 (long long)r3, (long long)r4, (long long)r4,
			 (long long)r4);
		CHECK_STR(e.buf, want);
		CHECK_EQ_INT(next, r4 + 1);
		/* From the middle. */
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(mv_meta_watch(m, "/w/z", r3 + 1, 0, on_event, &e,
					   NULL, NULL), 0);
		snprintf(want, sizeof(want), "D /w/z@%lld;", (long long)r4);
		CHECK_STR(e.buf, want);
		/* Nothing new: returns when the time is up, with nothing. */
		memset(&e, 0, sizeof(e));
		t0 = now_s();
		CHECK_EQ_INT(mv_meta_watch(m, "/w/", next, 150, on_event, &e,
					   &next, NULL), 0);
		CHECK_EQ_INT(e.n, 0);
		CHECK(now_s() - t0 >= 0.14);
		CHECK_EQ_INT(next, r4 + 1);
		/* Blocks until a change arrives, not until the timeout. */
		l.m = m;
		REQUIRE(pthread_create(&t, NULL, put_later, &l) == 0);
		t0 = now_s();
		CHECK_EQ_INT(mv_meta_watch(m, "/w/", next, 10000, on_event, &e,
					   &next, NULL), 0);
		pthread_join(t, NULL);
		CHECK(now_s() - t0 < 5);
		snprintf(want, sizeof(want), "P /w/late=L@%lld;",
			 (long long)r4 + 1);
		CHECK_STR(e.buf, want);
		CHECK_EQ_INT(next, r4 + 2);
		/* Compacted history: a clear error, as etcd. */
		CHECK_EQ_INT(mv_meta_compact(m, r2, NULL), 0);
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(mv_meta_watch(m, "/w/", r2, 0, on_event, &e, NULL,
					   &err), MV_META_COMPACTED);
		CHECK_EQ_INT(err.code, MV_ESERVER);
		CHECK(strstr(err.msg, "compacted") != NULL);
		CHECK_EQ_INT(e.n, 0);
		CHECK_EQ_INT(mv_meta_watch(m, "/w/", r2 + 1, 0, on_event, &e,
					   NULL, NULL), 0);
		CHECK_EQ_INT(e.n, 6);	/* r3: 2, r4: 3, the late put */
		mv_meta_close(m);
	}
}

TEST(seam_leases)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-lease");
		struct mv_meta_kv kv;
		struct mv_err err = { 0 };
		struct evs e = { "", 0 };
		int64_t id, id2, r0, r1, next;
		char want[256];
		double t0;

		REQUIRE(m);
		CHECK_EQ_INT(mv_meta_lease_grant(m, 1000, &id, NULL), 0);
		CHECK(id != 0);
		CHECK_EQ_INT(get_revs(m, "/l", &kv), 1);
		r0 = cur_rev(m);
		CHECK(put_rev(m, "/l/a", "a", id) > 0);
		CHECK(put_rev(m, "/l/b", "b", id) > 0);
		r1 = put_rev(m, "/l/c", "c", 0);
		CHECK_EQ_INT(get_revs(m, "/l/a", &kv), 0);
		CHECK_EQ_INT(kv.lease, id);
		/* Kept alive past its ttl. */
		for (int i = 0; i < 15; i++) {
			usleep(100 * 1000);
			CHECK_EQ_INT(mv_meta_lease_keepalive(m, id, NULL), 0);
		}
		CHECK_EQ_INT(get_revs(m, "/l/a", &kv), 0);
		/* Then let go: its keys go, in one revision of their own. */
		t0 = now_s();
		while (get_revs(m, "/l/b", &kv) == 0 && now_s() - t0 < 5)
			usleep(20 * 1000);
		CHECK_EQ_INT(get_revs(m, "/l/a", &kv), 1);
		CHECK_EQ_INT(get_revs(m, "/l/b", &kv), 1);
		CHECK_EQ_INT(get_revs(m, "/l/c", &kv), 0);
		CHECK(now_s() - t0 > 0.2);
		CHECK_EQ_INT(cur_rev(m), r1 + 1);
		CHECK_EQ_INT(mv_meta_watch(m, "/l/", r1 + 1, 0, on_event, &e,
					   &next, NULL), 0);
		snprintf(want, sizeof(want), "D /l/a@%lld;D /l/b@%lld;",
			 (long long)r1 + 1, (long long)r1 + 1);
		CHECK_STR(e.buf, want);
		CHECK_EQ_INT(mv_meta_lease_keepalive(m, id, &err), MV_ESERVER);
		CHECK(strstr(err.msg, "not found") != NULL);
		/* A put on a lease that does not exist changes nothing. */
		r0 = cur_rev(m);
		CHECK_EQ_INT(put_rev(m, "/l/x", "x", id), -1);
		CHECK_EQ_INT(cur_rev(m), r0);
		CHECK_EQ_INT(get_revs(m, "/l/x", &kv), 1);
		/* Revoked: at once, one revision. */
		CHECK_EQ_INT(mv_meta_lease_grant(m, 60000, &id2, NULL), 0);
		CHECK(id2 != id);
		put_rev(m, "/l/p", "p", id2);
		put_rev(m, "/l/q", "q", id2);
		r0 = cur_rev(m);
		CHECK_EQ_INT(mv_meta_lease_revoke(m, id2, NULL), 0);
		CHECK_EQ_INT(cur_rev(m), r0 + 1);
		CHECK_EQ_INT(get_revs(m, "/l/p", &kv), 1);
		CHECK_EQ_INT(get_revs(m, "/l/q", &kv), 1);
		mv_err_clear(&err);
		CHECK_EQ_INT(mv_meta_lease_revoke(m, id2, &err), MV_ESERVER);
		/* A lease outlives a restart, and its ttl starts afresh. */
		CHECK_EQ_INT(mv_meta_lease_grant(m, 700, &id, NULL), 0);
		put_rev(m, "/l/r", "r", id);
		mv_meta_close(m);
		REQUIRE((m = bopen(b, "seam-lease")));
		CHECK_EQ_INT(get_revs(m, "/l/r", &kv), 0);
		CHECK_EQ_INT(kv.lease, id);
		CHECK_EQ_INT(mv_meta_lease_keepalive(m, id, NULL), 0);
		CHECK_EQ_INT(mv_meta_lease_grant(m, 60000, &id2, NULL), 0);
		CHECK(id2 != id);
		t0 = now_s();
		while (get_revs(m, "/l/r", &kv) == 0 && now_s() - t0 < 5)
			usleep(20 * 1000);
		CHECK_EQ_INT(get_revs(m, "/l/r", &kv), 1);
		CHECK_EQ_INT(get_revs(m, "/l/c", &kv), 0);
		mv_meta_close(m);
	}
}

/*
 * Corners where etcd is the reference: a delete of nothing takes no
 * revision, a put without a lease takes the key off its lease, prefixes
 * ending in 0xff bytes.
 */
TEST(seam_corners)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-corners");
		struct mv_meta_kv kv;
		struct evs e = { "", 0 };
		int64_t id, r;

		REQUIRE(m);
		r = put_rev(m, "/a", "1", 0);
		CHECK_EQ_INT(del_rev(m, "/none", 0), r);
		CHECK_EQ_INT(del_rev(m, "/none/", 1), r);
		CHECK_EQ_INT(cur_rev(m), r);
		/* The same value again is a change all the same. */
		CHECK_EQ_INT(put_rev(m, "/a", "1", 0), r + 1);
		CHECK_EQ_INT(get_revs(m, "/a", &kv), 0);
		CHECK_EQ_INT(kv.version, 2);
		/* Put again without the lease: the key stays when it goes. */
		REQUIRE(mv_meta_lease_grant(m, 60000, &id, NULL) == 0);
		CHECK(put_rev(m, "/l", "1", id) > 0);
		CHECK(put_rev(m, "/l", "2", 0) > 0);
		CHECK_EQ_INT(get_revs(m, "/l", &kv), 0);
		CHECK_EQ_INT(kv.lease, 0);
		r = cur_rev(m);
		CHECK_EQ_INT(mv_meta_lease_revoke(m, id, NULL), 0);
		CHECK_EQ_INT(cur_rev(m), r);
		CHECK_STR(get_str(m, "/l"), "2");
		/* Prefixes that end in 0xff. */
		put_str(m, "/p\xff", "1");
		put_str(m, "/p\xff\xff", "2");
		put_str(m, "/p\xff\xff\x01", "3");
		put_str(m, "/q", "4");
		CHECK_STR(range_str(m, "/p\xff\xff"),
			  "/p\xff\xff=2;/p\xff\xff\x01=3;");
		CHECK_STR(range_str(m, "/p\xff"),
			  "/p\xff=1;/p\xff\xff=2;/p\xff\xff\x01=3;");
		r = put_rev(m, "/p\xff\xff", "5", 0);
		put_rev(m, "/q", "6", 0);
		CHECK_EQ_INT(mv_meta_watch(m, "/p\xff\xff", r, 0, on_event, &e,
					   NULL, NULL), 0);
		CHECK_EQ_INT(e.n, 1);
		mv_meta_close(m);
	}
}

/*
 * As etcd: a lease that carries no key goes without a revision, revoked
 * or expired, and this survives a restart.
 */
TEST(seam_lease_without_keys)
{
	EACH_BACKEND(b) {
		struct mv_meta *m = bopen(b, "seam-lease0");
		struct mv_meta_kv kv;
		int64_t id, r0;

		REQUIRE(m);
		CHECK(put_rev(m, "/x", "x", 0) > 0);
		r0 = cur_rev(m);
		CHECK_EQ_INT(mv_meta_lease_grant(m, 60000, &id, NULL), 0);
		CHECK_EQ_INT(mv_meta_lease_revoke(m, id, NULL), 0);
		CHECK_EQ_INT(cur_rev(m), r0);
		CHECK_EQ_INT(mv_meta_lease_grant(m, 500, &id, NULL), 0);
		/* etcd: its ttl is at least 1 s, checked every 0.5 s */
		usleep(strcmp(b->name, "local") ? 2500000 : 800000);
		CHECK_EQ_INT(mv_meta_lease_keepalive(m, id, NULL), MV_ESERVER);
		CHECK_EQ_INT(cur_rev(m), r0);
		mv_meta_close(m);
		REQUIRE((m = bopen(b, "seam-lease0")));
		CHECK_EQ_INT(cur_rev(m), r0);
		CHECK_EQ_INT(get_revs(m, "/x", &kv), 0);
		CHECK_EQ_INT(put_rev(m, "/y", "y", 0), r0 + 1);
		mv_meta_close(m);
	}
}

static void put_le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

/*
 * Local only: logs written before revisions existed still open, each
 * record a revision; after a restart the history starts at the snapshot.
 */
TEST(meta_local_old_log_and_history)
{
	/* Two records: put /a=1, then put /a=2 and /b=x. */
	static const unsigned char rec1[] = { 1, 0, 0, 0, 0, 2, 0, 0, 0,
					      '/', 'a', 1, 0, 0, 0, '1' };
	static const unsigned char rec2[] = {
		2, 0, 0, 0,
		0, 2, 0, 0, 0, '/', 'a', 1, 0, 0, 0, '2',
		0, 2, 0, 0, 0, '/', 'b', 1, 0, 0, 0, 'x',
	};
	unsigned char log[128], *p = log;
	const char *dir = unit_path("meta-oldlog");
	struct mv_meta *m;
	struct mv_meta_kv kv;
	struct mv_meta_stats st;
	struct evs e = { "", 0 };
	char path[4096];
	uint32_t crc;

	memcpy(p, "MVMETA\x01\x00", 8);
	p += 8;
	put_le(p, sizeof(rec1));
	crc = mv_crc32c(0, rec1, sizeof(rec1));
	put_le(p + 4, crc);
	memcpy(p + 8, rec1, sizeof(rec1));
	p += 8 + sizeof(rec1);
	put_le(p, sizeof(rec2));
	crc = mv_crc32c(0, rec2, sizeof(rec2));
	put_le(p + 4, crc);
	memcpy(p + 8, rec2, sizeof(rec2));
	p += 8 + sizeof(rec2);
	REQUIRE(mkdir(dir, 0700) == 0);
	snprintf(path, sizeof(path), "%s/meta.log", dir);
	REQUIRE(write_file(path, log, p - log) == 0);
	REQUIRE((m = open_dir("meta-oldlog")));
	CHECK_EQ_INT(cur_rev(m), 2);
	CHECK_EQ_INT(get_revs(m, "/a", &kv), 0);
	CHECK_EQ_INT(kv.create_rev, 1);
	CHECK_EQ_INT(kv.mod_rev, 2);
	CHECK_EQ_INT(kv.version, 2);
	CHECK_EQ_INT(mv_meta_watch(m, "/", 1, 0, on_event, &e, NULL, NULL), 0);
	CHECK_STR(e.buf, "P /a=1@1;P /a=2@2;P /b=x@2;");
	CHECK_EQ_INT(put_rev(m, "/c", "c", 0), 3);
	mv_meta_close(m);
	/* Reopened, the new records replay with their revisions. */
	REQUIRE((m = open_dir("meta-oldlog")));
	CHECK_EQ_INT(cur_rev(m), 3);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(mv_meta_watch(m, "/c", 1, 0, on_event, &e, NULL, NULL), 0);
	CHECK_STR(e.buf, "P /c=c@3;");
	mv_meta_stats(m, &st, NULL);
	CHECK_EQ_INT(st.compact_revision, 0);
	mv_meta_close(m);

	/* An old empty store is the bare header: its first txn is rev 1. */
	REQUIRE(write_file(path, "MVMETA\x01\x00", 8) == 0);
	REQUIRE((m = open_dir("meta-oldlog")));
	CHECK_EQ_INT(put_rev(m, "/a", "1", 0), 1);
	mv_meta_close(m);
	REQUIRE((m = open_dir("meta-oldlog")));
	CHECK_EQ_INT(cur_rev(m), 1);
	CHECK_EQ_INT(get_revs(m, "/a", &kv), 0);
	CHECK_EQ_INT(kv.create_rev, 1);
	CHECK_EQ_INT(kv.mod_rev, 1);
	CHECK_EQ_INT(kv.version, 1);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(mv_meta_watch(m, "/", 1, 0, on_event, &e, NULL, NULL), 0);
	CHECK_STR(e.buf, "P /a=1@1;");
	mv_meta_close(m);
}

/*
 * etcd only: its endpoints.  free_port is a loopback port nobody listens
 * on (bound, then closed).
 */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

TEST(etcd_unreachable)
{
	struct mv_err err = { 0 };
	char url[128];
	double t0 = now_s();
	int port = free_port();

	REQUIRE(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	CHECK(mv_meta_open_etcd(url, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EAGAIN);
	CHECK_EQ_INT(mv_exit_code(err.code), 75);
	CHECK(strstr(err.msg, "unreachable") != NULL);
	CHECK(strstr(err.msg, url) != NULL);
	CHECK(now_s() - t0 < 3);
	/* Two dead endpoints: still one answer, still bounded. */
	mv_err_clear(&err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d, http://127.0.0.1:%d",
		 port, port);
	CHECK(mv_meta_open_etcd(url, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EAGAIN);
	CHECK(now_s() - t0 < 6);
	/* Not a URL at all. */
	mv_err_clear(&err);
	CHECK(mv_meta_open_etcd("127.0.0.1:2379", &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EUSAGE);
	mv_err_clear(&err);
	CHECK(mv_meta_open_etcd(" , ", &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EUSAGE);
}

/* Watch /f/ from `from` for up to 5 s, into e. */
struct fwatch {
	struct mv_meta *m;
	int64_t from;
	int rc;
	struct evs e;
};

static void *watch_thread(void *arg)
{
	struct fwatch *f = arg;

	f->rc = mv_meta_watch(f->m, "/f/", f->from, 5000, on_event, &f->e,
			      NULL, NULL);
	return NULL;
}

TEST(etcd_failover)
{
	const char *url = etcd_endpoint();
	char list[512];
	struct mv_meta *m;
	struct fwatch f = { NULL, 0, -1, { "", 0 } };
	pthread_t t;
	int64_t r;
	int port = free_port();

	REQUIRE(url && port > 0);
	/* The first endpoint is down: the second one answers everything. */
	snprintf(list, sizeof(list), "http://127.0.0.1:%d,%s", port, url);
	REQUIRE((m = mv_meta_open_etcd_ns(list, etcd_ns("failover"), NULL)));
	CHECK_EQ_INT(put_str(m, "/f/a", "1"), 0);
	CHECK_STR(get_str(m, "/f/a"), "1");
	CHECK_STR(range_str(m, "/f/"), "/f/a=1;");
	f.m = m;
	f.from = cur_rev(m) + 1;
	REQUIRE(pthread_create(&t, NULL, watch_thread, &f) == 0);
	usleep(200 * 1000);
	r = put_rev(m, "/f/b", "2", 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(f.rc, 0);
	snprintf(list, sizeof(list), "P /f/b=2@%lld;", (long long)r);
	CHECK_STR(f.e.buf, list);
	mv_meta_close(m);
	/* The other way round, with a trailing slash and spaces. */
	snprintf(list, sizeof(list), " %s/ , http://127.0.0.1:%d", url, port);
	REQUIRE((m = mv_meta_open_etcd_ns(list, etcd_ns("failover"), NULL)));
	CHECK_STR(range_str(m, ""), "/f/a=1;/f/b=2;");
	mv_meta_close(m);
}

/* A lease that runs out deletes its keys; a blocked watch sees the DELs. */
TEST(etcd_lease_expiry_watch)
{
	struct mv_meta *m = open_etcd("lease-expiry");
	struct evs e = { "", 0 };
	char want[256];
	int64_t id, r, next = 0;
	double t0;

	REQUIRE(m);
	REQUIRE(mv_meta_lease_grant(m, 1000, &id, NULL) == 0);
	CHECK(put_rev(m, "/e/a", "a", id) > 0);
	CHECK(put_rev(m, "/e/b", "b", id) > 0);
	r = put_rev(m, "/e/c", "c", 0);
	t0 = now_s();
	CHECK_EQ_INT(mv_meta_watch(m, "/e/", r + 1, 10000, on_event, &e,
				   &next, NULL), 0);
	CHECK(now_s() - t0 > 0.3);
	CHECK(now_s() - t0 < 8);
	snprintf(want, sizeof(want), "D /e/a@%lld;D /e/b@%lld;",
		 (long long)r + 1, (long long)r + 1);
	CHECK_STR(e.buf, want);
	CHECK_EQ_INT(next, r + 2);
	CHECK_STR(range_str(m, "/e/"), "/e/c=c;");
	mv_meta_close(m);
}

TEST(etcd_watch_compacted)
{
	struct mv_meta *m = open_etcd("watch-compacted");
	struct mv_err err = { 0 };
	struct evs e = { "", 0 };
	char want[256];
	int64_t r1, r2, r3;

	REQUIRE(m);
	r1 = put_rev(m, "/c/x", "1", 0);
	r2 = put_rev(m, "/c/x", "2", 0);
	r3 = put_rev(m, "/c/x", "3", 0);
	CHECK_EQ_INT(mv_meta_compact(m, r2, NULL), 0);
	/* etcd itself would start at r2; the seam says it is gone. */
	CHECK_EQ_INT(mv_meta_watch(m, "/c/", r2, 0, on_event, &e, NULL, &err),
		     MV_META_COMPACTED);
	snprintf(want, sizeof(want), "required revision %lld has been "
		 "compacted (compacted at %lld)", (long long)r2,
		 (long long)r2);
	CHECK_STR(err.msg, want);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_meta_watch(m, "/c/", r1, 0, on_event, &e, NULL, &err),
		     MV_META_COMPACTED);
	CHECK_EQ_INT(mv_meta_watch(m, "/c/", 1, 0, on_event, &e, NULL, NULL),
		     MV_META_COMPACTED);
	CHECK_EQ_INT(e.n, 0);
	CHECK_EQ_INT(mv_meta_watch(m, "/c/", r2 + 1, 0, on_event, &e, NULL,
				   NULL), 0);
	snprintf(want, sizeof(want), "P /c/x=3@%lld;", (long long)r3);
	CHECK_STR(e.buf, want);
	/* Again, or older: fine; the future: no. */
	CHECK_EQ_INT(mv_meta_compact(m, r1, NULL), 0);
	CHECK_EQ_INT(mv_meta_compact(m, r2, NULL), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_meta_compact(m, r3 + 1000, &err), MV_EUSAGE);
	mv_meta_close(m);
}

TEST(etcd_namespaces)
{
	struct mv_meta *a = open_etcd("ns-a"), *b = open_etcd("ns-b");
	struct mv_meta_op all = { MV_META_DELPREFIX, "", NULL, 0 };
	struct mv_meta_stats st;
	struct evs e = { "", 0 };
	int64_t r;

	REQUIRE(a && b);
	put_str(a, "/k", "a");
	put_str(b, "/k", "b");
	r = cur_rev(a);
	CHECK_STR(get_str(a, "/k"), "a");
	CHECK_STR(range_str(b, ""), "/k=b;");
	CHECK_EQ_INT(mv_meta_txn(a, NULL, 0, &all, 1, NULL), 0);
	CHECK_STR(range_str(a, ""), "");
	CHECK_STR(range_str(b, ""), "/k=b;");
	CHECK_EQ_INT(mv_meta_stats(b, &st, NULL), 0);
	CHECK_EQ_U64(st.keys, 1);
	CHECK_EQ_INT(st.revision, r + 1);
	/* History read across the whole keyspace, filtered to one store. */
	CHECK_EQ_INT(mv_meta_watch(b, "", r - 1, 0, on_event, &e, NULL, NULL),
		     0);
	CHECK_EQ_INT(e.n, 1);
	CHECK(strncmp(e.buf, "P /k=b@", 7) == 0);
	mv_meta_close(a);
	mv_meta_close(b);
}

/*
 * A fake etcd that answers each connection with the next canned reply
 * (and closes it): every bad answer is MV_EPROTO, never a crash.
 */
struct fake {
	int fd;
	const char *const *replies;
};

static void *fake_serve(void *arg);

/* Listen on a free loopback port for f; the URL into url. */
static int fake_start(struct fake *f, pthread_t *t, char *url, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((f->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(f->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(f->fd, (struct sockaddr *)&a, &len) ||
	    listen(f->fd, 8))
		return -1;
	snprintf(url, n, "http://127.0.0.1:%d", ntohs(a.sin_port));
	return pthread_create(t, NULL, fake_serve, f);
}

static void *fake_serve(void *arg)
{
	struct fake *f = arg;

	for (const char *const *r = f->replies; *r; r++) {
		char buf[4096], head[256];
		int c = accept(f->fd, NULL, NULL);

		if (c < 0)
			break;
		if (read(c, buf, sizeof(buf)) > 0) {
			const char *body = *r + 4 * !strncmp(*r, "503 ", 4);

			snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n"
				 "\r\n", body != *r ? "503 No leader" :
				 **r == '{' ? "200 OK" : "500 Oops",
				 strlen(body));
			if (write(c, head, strlen(head)) < 0 ||
			    write(c, body, strlen(body)) < 0)
				break;
		}
		close(c);
	}
	return NULL;
}

TEST(etcd_bad_replies)
{
	static const char *const replies[] = {
		"hello",			/* open: not JSON */
		"{\"header\":{\"revision\":\"x\"}}", /* open: bad number */
		"<html>oops</html>",		/* open: HTTP 500 */
		"{\"header\":{\"revision\":\"5\"},\"count\":\"1\"}", /* open */
		"{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"!!\"}]}",
		"{\"header\":{\"revision\":\"5\"},\"kvs\":{}}",
		"{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"L2s=\","
		"\"value\":\"MQ==\",\"version\":[]}]}",
		"{\"header\":{\"revision\":\"5\"},\"more\":true}",
		"{\"header\":{\"revision\":\"6\"},\"succeeded\":true}",
		"[]",
		"{\"header\":{\"revision\":\"6\"},\"ID\":\"-3\"}",
		NULL,
	};
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	struct fake f = { socket(AF_INET, SOCK_STREAM, 0), replies };
	struct mv_err err = { 0 };
	struct mv_meta *m;
	pthread_t t;
	char url[64], *v;
	size_t n;
	int64_t id;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(f.fd >= 0);
	REQUIRE(bind(f.fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	REQUIRE(getsockname(f.fd, (struct sockaddr *)&a, &len) == 0);
	REQUIRE(listen(f.fd, 8) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	REQUIRE(pthread_create(&t, NULL, fake_serve, &f) == 0);
	for (int i = 0; i < 3; i++) {
		mv_err_clear(&err);
		CHECK(mv_meta_open_etcd(url, &err) == NULL);
		CHECK_EQ_INT(err.code, MV_EPROTO);
	}
	CHECK(strstr(err.msg, "malformed reply (HTTP 500)") != NULL);
	m = mv_meta_open_etcd(url, &err);
	CHECK(m != NULL);
	for (int i = 0; m && i < 3; i++) {
		mv_err_clear(&err);
		CHECK_EQ_INT(mv_meta_get(m, "/k", &v, &n, &err), MV_EPROTO);
		CHECK(strstr(err.msg, "malformed reply") != NULL);
	}
	if (m) {
		CHECK_EQ_INT(mv_meta_range(m, "", collect, &(struct coll){
					   .stop_at = 0 }, NULL), MV_EPROTO);
		CHECK_EQ_INT(mv_meta_put(m, "/k", "v", 1, NULL), 0);
		CHECK_EQ_INT(mv_meta_put(m, "/k", "v", 1, NULL), MV_EPROTO);
		CHECK_EQ_INT(mv_meta_lease_grant(m, 1000, &id, NULL),
			     MV_EPROTO);
		CHECK_EQ_INT(id, 0);
	}
	mv_meta_close(m);
	pthread_join(t, NULL);
	close(f.fd);
}

/* Run scripts/etcd.sh op dir; for start, the URL into url. */
static int etcd_script(const char *op, const char *dir, char *url, size_t n)
{
	char cmd[8192], line[256];
	FILE *f;
	int rc;

	snprintf(cmd, sizeof(cmd), "sh '%s' %s '%s'", etcd_sh(), op, dir);
	if (!(f = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (url && !strncmp(line, "MV_TEST_ETCD=", 13))
			snprintf(url, n, "%s", strtok(line + 13, "\n"));
	rc = pclose(f);
	return rc;
}

struct wgone {
	struct mv_meta *m;
	int rc;
	struct mv_err err;
};

static void *watch_gone(void *arg)
{
	struct wgone *w = arg;

	w->rc = mv_meta_watch(w->m, "/", 0, -1, on_event, &(struct evs){
			      "", 0 }, NULL, &w->err);
	return NULL;
}

/*
 * The server goes away: every call, and a blocked watch, is MV_EAGAIN;
 * when it is back, the same store works again.
 */
TEST(etcd_server_goes_away)
{
	const char *dir = unit_path("etcd-gone");
	struct wgone w = { NULL, 1, { 0 } };
	struct mv_err err = { 0 };
	char url[256] = "", back[256] = "", pid[32] = "", path[4096];
	struct mv_meta *m;
	pthread_t t;
	int64_t id;
	FILE *f;
	double t0;

	REQUIRE(etcd_script("start", dir, url, sizeof(url)) == 0);
	REQUIRE(url[0]);
	snprintf(path, sizeof(path), "%s/etcd.pid", dir);
	if ((f = fopen(path, "r"))) {
		if (!fgets(pid, sizeof(pid), f))
			pid[0] = '\0';
		fclose(f);
	}
	REQUIRE((m = mv_meta_open_etcd(url, NULL)));
	CHECK_EQ_INT(put_str(m, "/g", "1"), 0);
	CHECK_EQ_INT(mv_meta_lease_grant(m, 5000, &id, NULL), 0);
	w.m = m;
	REQUIRE(pthread_create(&t, NULL, watch_gone, &w) == 0);
	usleep(300 * 1000);
	t0 = now_s();
	CHECK_EQ_INT(etcd_script("stop", dir, NULL, 0), 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(w.rc, MV_EAGAIN);
	CHECK(now_s() - t0 < 8);
	/* etcd.sh stop waited until it was gone (or a zombie). */
	CHECK(atoi(pid) > 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", atoi(pid));
	if ((f = fopen(path, "r"))) {
		char st[512] = "", *p;

		if (!fgets(st, sizeof(st), f))
			st[0] = '\0';
		fclose(f);
		p = strrchr(st, ')');
		CHECK(p && p[1] == ' ' && p[2] == 'Z');
	}
	t0 = now_s();
	CHECK_EQ_INT(mv_meta_put(m, "/g", "2", 1, &err), MV_EAGAIN);
	CHECK(strstr(err.msg, "unreachable") != NULL);
	CHECK_EQ_INT(mv_meta_get(m, "/g", &(char *){ NULL }, &(size_t){ 0 },
				 NULL), MV_EAGAIN);
	CHECK_EQ_INT(mv_meta_lease_keepalive(m, id, NULL), MV_EAGAIN);
	CHECK_EQ_INT(mv_meta_watch(m, "/", 0, 100, on_event,
				   &(struct evs){ "", 0 }, NULL, NULL),
		     MV_EAGAIN);
	CHECK_EQ_INT(mv_meta_revision(m, &id, NULL), MV_EAGAIN);
	CHECK(now_s() - t0 < 3);
	/* Back, on the same URL: the same store works on, nothing reopened. */
	REQUIRE(etcd_script("start", dir, back, sizeof(back)) == 0);
	CHECK_STR(back, url);
	CHECK_STR(get_str(m, "/g"), "1");
	CHECK_EQ_INT(put_str(m, "/g", "3"), 0);
	CHECK_STR(get_str(m, "/g"), "3");
	CHECK_EQ_INT(etcd_script("stop", dir, NULL, 0), 0);
	mv_meta_close(m);
}

/* A member that answers 503 (no leader): a read goes to the next one. */
TEST(etcd_failover_503)
{
	static const char *const replies[] = {
		"503 {\"error\":\"etcdserver: no leader\",\"code\":14}",
		"503 {\"error\":\"etcdserver: no leader\",\"code\":14}",
		"503 {\"error\":\"etcdserver: no leader\",\"code\":14}",
		NULL,
	};
	const char *url = etcd_endpoint();
	struct fake f = { -1, replies };
	struct mv_err err = { 0 };
	struct mv_meta *m;
	char fake[64], list[512];
	pthread_t t;
	int64_t r = 0;

	REQUIRE(url);
	REQUIRE(fake_start(&f, &t, fake, sizeof(fake)) == 0);
	snprintf(list, sizeof(list), "%s,%s", fake, url);
	m = mv_meta_open_etcd_ns(list, etcd_ns("f503"), &err);
	CHECK(m != NULL);
	CHECK_EQ_INT(mv_meta_revision(m, &r, NULL), 0);
	CHECK(r > 0);
	mv_meta_close(m);
	/* Alone, it is MV_EAGAIN. */
	mv_err_clear(&err);
	CHECK(mv_meta_open_etcd(fake, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EAGAIN);
	CHECK(strstr(err.msg, "no leader") != NULL);
	/* The third reply is left: take it so the server thread ends. */
	CHECK(mv_meta_open_etcd(fake, NULL) == NULL);
	pthread_join(t, NULL);
	close(f.fd);
}

/* A server that pages forever, or answers keys out of range: MV_EPROTO. */
TEST(etcd_bad_pages)
{
	static const char *const replies[] = {
		"{\"header\":{\"revision\":\"5\"},\"count\":\"1\"}", /* open */
		"{\"header\":{\"revision\":\"5\"},\"more\":true,"
		"\"kvs\":[{\"key\":\"L2E=\"}]}",	/* /a, more */
		"{\"header\":{\"revision\":\"5\"},\"more\":true,"
		"\"kvs\":[{\"key\":\"L2E=\"}]}",	/* /a again */
		"{\"header\":{\"revision\":\"5\"},"
		"\"kvs\":[{\"key\":\"L2E=\"}]}",	/* /a for /b */
		"{\"header\":{\"revision\":\"5\"},"
		"\"kvs\":[{\"key\":\"L2I=\"},{\"key\":\"L2E=\"}]}", /* b, a */
		NULL,
	};
	struct fake f = { -1, replies };
	struct coll c = { .stop_at = 0 };
	struct mv_meta *m;
	char url[64];
	pthread_t t;

	REQUIRE(fake_start(&f, &t, url, sizeof(url)) == 0);
	m = mv_meta_open_etcd(url, NULL);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_INT(mv_meta_range(m, "/", collect, &c, NULL),
			     MV_EPROTO);
		CHECK_STR(c.buf, "/a=;");
		CHECK_EQ_INT(mv_meta_range(m, "/b", collect, &c, NULL),
			     MV_EPROTO);
		CHECK_EQ_INT(mv_meta_range(m, "", collect, &c, NULL),
			     MV_EPROTO);
		mv_meta_close(m);
	}
	pthread_join(t, NULL);
	close(f.fd);
}

static uint64_t watch_conns(struct mv_meta *m)
{
	struct mv_meta_stats st = { 0 };

	mv_meta_stats(m, &st, NULL);
	return st.watch_connects;
}

/*
 * A follower's run of watch calls, each from where the last left off,
 * reads one stream: one connection, with the same events, in order, as
 * a stream per call would give.  A stream that breaks (etcd restarted)
 * is opened again and nothing is lost or seen twice.
 */
TEST(etcd_watch_one_stream)
{
	const char *dir = unit_path("etcd-stream");
	char url[256] = "", back[256] = "", want[8192];
	struct mv_meta *m;
	int64_t next, r, rx, ry;
	uint64_t c0;
	int calls;

	REQUIRE(etcd_script("start", dir, url, sizeof(url)) == 0);
	REQUIRE(url[0]);
	REQUIRE((m = mv_meta_open_etcd(url, NULL)));
	next = cur_rev(m) + 1;
	c0 = watch_conns(m);
	want[0] = '\0';
	for (int i = 0; i < 40; i++) {
		struct evs e = { "", 0 };
		char v[16];
		size_t len = strlen(want);

		snprintf(v, sizeof(v), "%d", i);
		r = put_rev(m, "/s/k", v, 0);
		if (i % 3 == 0)
			put_rev(m, "/other", v, 0);	/* filtered out */
		snprintf(want + len, sizeof(want) - len, "P /s/k=%s@%lld;", v,
			 (long long)r);
		CHECK_EQ_INT(mv_meta_watch(m, "/s/", next, 5000, on_event, &e,
					   &next, NULL), 0);
		CHECK_STR(e.buf, want + len);
		CHECK(next > r && next <= r + 2);
	}
	/* Nothing new: the time is up, nothing, the same stream. */
	{
		struct evs e = { "", 0 };
		double t0 = now_s();

		CHECK_EQ_INT(mv_meta_watch(m, "/s/", next, 150, on_event, &e,
					   &next, NULL), 0);
		CHECK_EQ_INT(e.n, 0);
		CHECK(now_s() - t0 >= 0.14);
	}
	/* 20 revisions waiting in the stream (a follower behind): one call
	 * hands them all out (it took 20 calls, one a revision). */
	{
		struct evs e = { "", 0 };

		for (int i = 0; i < 20; i++)
			put_rev(m, "/s/k", "w", 0);
		usleep(300 * 1000);	/* etcd has sent them */
		for (calls = 0; calls < 20 && e.n < 20; calls++)
			CHECK_EQ_INT(mv_meta_watch(m, "/s/", next, 2000,
						   on_event, &e, &next, NULL),
				     0);
		CHECK_EQ_INT(e.n, 20);
		unit_diag("20 waiting revisions in %d watch calls", calls);
		CHECK(calls <= 2);
	}
	CHECK_EQ_INT((int)(watch_conns(m) - c0), 1);

	unit_diag("etcd restarted: the stream again, nothing lost or twice");
	rx = put_rev(m, "/s/x", "X", 0);
	CHECK_EQ_INT(etcd_script("stop", dir, NULL, 0), 0);
	REQUIRE(etcd_script("start", dir, back, sizeof(back)) == 0);
	CHECK_STR(back, url);
	ry = put_rev(m, "/s/y", "Y", 0);
	REQUIRE(ry > rx);
	snprintf(want, sizeof(want), "P /s/x=X@%lld;P /s/y=Y@%lld;",
		 (long long)rx, (long long)ry);
	{
		struct evs e = { "", 0 };

		/* Bounded: the first calls may find the old stream's end. */
		for (calls = 0; calls < 10 && e.n < 2; calls++) {
			int rc = mv_meta_watch(m, "/s/", next, 2000, on_event,
					       &e, &next, NULL);

			CHECK(rc == 0 || rc == MV_EAGAIN);
		}
		CHECK_STR(e.buf, want);
		CHECK_EQ_INT(next, ry + 1);
	}
	CHECK(watch_conns(m) - c0 >= 2);

	unit_diag("compacted meanwhile: the stream goes on; history is gone");
	{
		struct evs e = { "", 0 };
		uint64_t c1 = watch_conns(m);

		CHECK_EQ_INT(mv_meta_compact(m, ry, NULL), 0);
		r = put_rev(m, "/s/z", "Z", 0);
		CHECK_EQ_INT(mv_meta_watch(m, "/s/", next, 5000, on_event, &e,
					   &next, NULL), 0);
		snprintf(want, sizeof(want), "P /s/z=Z@%lld;", (long long)r);
		CHECK_STR(e.buf, want);
		CHECK_EQ_INT(watch_conns(m) - c1, 0);
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(mv_meta_watch(m, "/s/", rx, 0, on_event, &e, NULL,
					   NULL), MV_META_COMPACTED);
		CHECK_EQ_INT(e.n, 0);
	}
	CHECK_EQ_INT(etcd_script("stop", dir, NULL, 0), 0);
	mv_meta_close(m);
}

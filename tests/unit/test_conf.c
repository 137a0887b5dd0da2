/*
 * test_conf.c - unit tests of mv.conf parsing (conf.h): sizes with
 * suffixes, and sizes too big for 64 bits refused rather than wrapped.
 */
#include <stdio.h>
#include <string.h>
#include "conf.h"
#include "unit.h"

TEST(conf_parse_size_suffixes)
{
	CHECK_EQ_U64(mv_parse_size("4096"), 4096);
	CHECK_EQ_U64(mv_parse_size("16M"), 16u << 20);
	CHECK_EQ_U64(mv_parse_size("1GiB"), 1u << 30);
	CHECK_EQ_U64(mv_parse_size("2kB"), 2048);
	CHECK_EQ_U64(mv_parse_size("8589934591G"), 8589934591ull << 30);
	CHECK_EQ_INT(mv_parse_size("-1"), -1);
	CHECK_EQ_INT(mv_parse_size("12Q"), -1);
	CHECK_EQ_INT(mv_parse_size(""), -1);
}

/* Found by tests/fuzz/fuzz_conf: the shift overflowed (and wrapped). */
TEST(conf_parse_size_refuses_overflow)
{
	struct mv_conf c;
	struct mv_err err = { 0 };

	CHECK_EQ_INT(mv_parse_size("9223372036854775807M"), -1);
	CHECK_EQ_INT(mv_parse_size("8589934592G"), -1);	/* 2^63 */
	CHECK_EQ_INT(mv_parse_size("17592186044416M"), -1);	/* 2^64: 0 */
	CHECK_EQ_INT(mv_parse_size("17592186044417M"), -1);	/* 2^64 + 1M */
	CHECK_EQ_INT(mv_parse_size("9007199254740992K"), -1);	/* 2^63 */
	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_set(&c, "flush_limit", "17592186044417M", &err),
		     MV_ECONFIG);
	CHECK_EQ_U64(c.flush_limit, MV_FLUSH_LIMIT_DEFAULT);
	mv_conf_release(&c);
}

/*
 * A line longer than the reader's buffer is refused: its tail was read as
 * a line of its own, so that the end of a long comment could set a key.
 */
TEST(conf_long_line_is_refused_not_split)
{
	struct mv_conf c;
	struct mv_err err = { 0 };
	const char *path = unit_path("long.conf");
	FILE *f = fopen(path, "w");

	REQUIRE(f);
	fputc('#', f);
	for (int i = 0; i < 4094; i++)	/* the tail starts a line */
		fputc('x', f);
	fputs("listen = 127.0.0.1:7999\n", f);
	fclose(f);
	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_load(&c, path, 0, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "long.conf:1: line too long"));
	CHECK_EQ_INT(c.nlisten, 0);
	mv_conf_release(&c);
}

/*
 * Cluster mode is etcd set: it needs s3_endpoint (with s3_bucket, or a
 * file:/ directory) and a TCP listen; the cluster keys without etcd are
 * refused rather than ignored.
 */
TEST(conf_cluster_keys_need_each_other)
{
	struct mv_conf c;
	struct mv_err err = { 0 };

	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "s3_bucket", "b", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "'s3_bucket' needs 'etcd'"));
	CHECK_EQ_INT(mv_conf_set(&c, "etcd", "http://127.0.0.1:2379", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "needs 's3_endpoint'"));
	CHECK_EQ_INT(mv_conf_set(&c, "s3_endpoint", "ftp://x", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK_EQ_INT(mv_conf_set(&c, "s3_endpoint", "http://127.0.0.1:9000",
				 &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "listen", "unix:/tmp/x.sock", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "TCP 'listen'"));
	CHECK_EQ_INT(mv_conf_set(&c, "listen", "127.0.0.1:7531", &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "num_replicas", "1", &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "sync_level", "2", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK_EQ_INT(mv_conf_set(&c, "sync_level", "1", &err), 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	/* num_replicas at most num_nodes - 1, once num_nodes is given. */
	CHECK_EQ_INT(mv_conf_set(&c, "num_replicas", "2", &err), 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "num_nodes", "2", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "num_replicas 2 exceeds num_nodes - 1"));
	CHECK_EQ_INT(mv_conf_set(&c, "num_nodes", "3", &err), 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	CHECK_EQ_INT(c.sync_timeout, 10);
	CHECK_EQ_INT(mv_conf_set(&c, "sync_timeout", "2", &err), 0);
	CHECK_EQ_INT(c.sync_timeout, 2);
	CHECK(mv_conf_set(&c, "sync_timeout", "0", &err) < 0);
	mv_conf_release(&c);
	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_set(&c, "etcd", "http://127.0.0.1:2379", &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "s3_endpoint", "file:/srv/shared", &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "listen", "127.0.0.1:7531", &err), 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	/* A CA file is for an https:// endpoint only. */
	CHECK_EQ_INT(mv_conf_set(&c, "s3_ca_file", "/etc/ca.pem", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "'s3_ca_file' needs an https:// s3_endpoint"));
	CHECK_EQ_INT(mv_conf_set(&c, "s3_endpoint", "https://s3.example",
				 &err), 0);
	CHECK_EQ_INT(mv_conf_set(&c, "s3_bucket", "b", &err), 0);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), 0);
	CHECK_STR(c.s3_ca_file, "/etc/ca.pem");
	mv_conf_release(&c);
	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(mv_conf_set(&c, "s3_ca_file", "/etc/ca.pem", &err), 0);
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_conf_cluster_check(&c, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "'s3_ca_file' needs 'etcd'"));
	CHECK_EQ_INT(c.memory_limit, 0);	/* no limit by default */
	CHECK_EQ_INT(mv_conf_set(&c, "memory_limit", "1G", &err), 0);
	CHECK(c.memory_limit == (int64_t)1 << 30);
	CHECK_EQ_INT(mv_conf_set(&c, "memory_limit", "0", &err), 0);
	CHECK_EQ_INT(c.memory_limit, 0);
	CHECK_EQ_INT(mv_conf_set(&c, "memory_limit", "lots", &err),
		     MV_ECONFIG);
	CHECK_EQ_INT(mv_conf_set(&c, "memory_limit", "-1", &err), MV_ECONFIG);
	mv_conf_release(&c);
}

TEST(conf_history_retention_durations)
{
	static const struct {
		const char *val;
		long long secs;		/* -1: refused */
	} cases[] = {
		{ "90", 90 }, { "0", 0 }, { "45s", 45 }, { "30m", 1800 },
		{ "1h", 3600 }, { "2d", 172800 }, { "3650d", 3650LL * 86400 },
		{ "3651d", -1 }, { "", -1 }, { "h", -1 }, { "-1", -1 },
		{ "1x", -1 }, { "1.5h", -1 }, { "99999999999999999999", -1 },
		{ "1hh", -1 }, { "1ms", -1 },
	};
	struct mv_err err = { 0 };
	struct mv_conf c;

	REQUIRE(mv_conf_init(&c, &err) == 0);
	CHECK_EQ_INT(c.history_retention, 86400);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int rc = mv_conf_set(&c, "history_retention", cases[i].val,
				     &err);

		if (cases[i].secs < 0) {
			CHECK_EQ_INT(rc, MV_ECONFIG);
		} else {
			CHECK_EQ_INT(rc, 0);
			CHECK_EQ_INT(c.history_retention, cases[i].secs);
		}
	}
	mv_conf_release(&c);
}

static void no_usage(FILE *f)
{
	(void)f;
}

/* Collects key=value pairs as mv_args_apply hands them over. */
static int collect(void *arg, const char *key, const char *val,
		   struct mv_err *err)
{
	char *out = arg;

	if (!strcmp(key, "bad"))
		return mv_err_set(err, MV_ECONFIG, "unknown key 'bad'");
	snprintf(out + strlen(out), 200 - strlen(out), "%s=%s;", key, val);
	return 0;
}

/* The daemons' command line, shared by mv-noded and mv-masterd. */
TEST(conf_daemon_args)
{
	char *ok[] = { "d", "-n", "-c", "/x.conf", "--a=1", "--b", "2", "-vv",
		       "-d", NULL };
	char *bad[] = { "d", "stray", NULL };
	char *help[] = { "d", "--help", NULL };
	char *noval[] = { "d", "--lonely", NULL };
	char *badkey[] = { "d", "--a=1", "--bad=3", "--c=4", NULL };
	struct mv_args a;
	struct mv_err err = { 0 };
	char out[200] = "";

	CHECK_EQ_INT(mv_args_parse(&a, 9, ok, "d", no_usage), -1);
	CHECK_EQ_INT(a.check_only, 1);
	CHECK_EQ_INT(a.verbose, 2);
	CHECK(a.conf_file && !strcmp(a.conf_file, "/x.conf"));
	CHECK_EQ_INT(mv_args_apply(&a, collect, out, &err), 0);
	CHECK(!strcmp(out, "a=1;b=2;"));
	mv_args_release(&a);

	CHECK_EQ_INT(mv_args_parse(&a, 2, bad, "d", no_usage), 64);
	mv_args_release(&a);
	CHECK_EQ_INT(mv_args_parse(&a, 2, help, "d", no_usage), 0);
	mv_args_release(&a);

	CHECK_EQ_INT(mv_args_parse(&a, 2, noval, "d", no_usage), -1);
	CHECK_EQ_INT(mv_args_apply(&a, collect, out, &err), MV_ECONFIG);
	CHECK(strstr(err.msg, "'--lonely' needs a value") != NULL);
	mv_args_release(&a);

	/* The first failure stops: later flags are not applied. */
	out[0] = '\0';
	mv_err_clear(&err);
	CHECK_EQ_INT(mv_args_parse(&a, 4, badkey, "d", no_usage), -1);
	CHECK_EQ_INT(mv_args_apply(&a, collect, out, &err), MV_ECONFIG);
	CHECK(!strcmp(out, "a=1;"));
	mv_args_release(&a);
}

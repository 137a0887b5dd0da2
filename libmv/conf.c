/*
 * conf.c - parsing of mv.conf and of the daemons' --key=value flags into
 * struct mv_conf.  Repeatable keys (listen, allow) accumulate; a key given
 * by a flag replaces what the file said.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conf.h"

int64_t mv_parse_size(const char *s)
{
	char *end;
	long long v;
	int shift = 0;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (v > INT64_MAX >> shift)
		return -1;	/* too big for 64 bits */
	v <<= shift;
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	return *end ? -1 : v;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes") ||
	    !strcmp(s, "on"))
		*out = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no") ||
		 !strcmp(s, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds, or a number with s, m, h or d: 0 up to ten years. */
static int parse_duration(const char *s, int64_t *out)
{
	static const struct {
		char unit;
		int64_t secs;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	size_t n = strlen(s);
	int64_t mul = 1, v;
	char num[32];

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++)
		if (num[n - 1] == units[i].unit) {
			mul = units[i].secs;
			num[--n] = '\0';
			break;
		}
	if (!n || parse_int(num, 0, 3650 * 86400 / mul, &v) < 0)
		return -1;
	*out = v * mul;
	return 0;
}

static int set_str(char **dst, const char *val)
{
	char *s = strdup(val);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

int mv_conf_init(struct mv_conf *c, struct mv_err *err)
{
	memset(c, 0, sizeof(*c));
	c->flush_interval = MV_FLUSH_INTERVAL_DEFAULT;
	c->flush_limit = MV_FLUSH_LIMIT_DEFAULT;
	c->session_ttl = MV_SESSION_TTL_DEFAULT;
	c->busy_poll_us = MV_BUSY_POLL_DEFAULT;
	c->io_timeout = MV_IO_TIMEOUT_DEFAULT;
	c->max_connections = MV_MAX_CONNECTIONS_DEFAULT;
	{
		/* A quarter of the machine's memory. */
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		c->max_pending = pages > 0 && psz > 0 ?
			(int64_t)pages * psz / 4 : (int64_t)1 << 30;
	}
	c->auto_compact = 1;
	c->history_retention = 24 * 3600;
	c->num_nodes = 1;
	c->sync_timeout = MV_SYNC_TIMEOUT_DEFAULT;
	c->heartbeat_timeout = MV_HEARTBEAT_TIMEOUT_DEFAULT;
	c->data_dir = mv_home();
	c->user = strdup("default");
	c->cluster_id = strdup("embedded");
	if (!c->data_dir || !c->user || !c->cluster_id)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	return 0;
}

void mv_conf_release(struct mv_conf *c)
{
	for (int i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	for (int i = 0; i < c->nallow; i++)
		free(c->allow[i]);
	free(c->data_dir);
	free(c->master);
	free(c->etcd);
	free(c->s3_endpoint);
	free(c->s3_bucket);
	free(c->s3_region);
	free(c->s3_ca_file);
	free(c->user);
	free(c->cluster_id);
	memset(c, 0, sizeof(*c));
}

int mv_conf_cluster_check(const struct mv_conf *c, struct mv_err *err)
{
	int tcp = 0;

	if (!c->etcd) {
		if (c->s3_endpoint || c->s3_bucket || c->s3_region ||
		    c->s3_ca_file || c->master)
			return mv_err_set(err, MV_ECONFIG, "'%s' needs 'etcd' "
					  "(cluster mode)", c->s3_endpoint ?
					  "s3_endpoint" : c->s3_bucket ?
					  "s3_bucket" : c->s3_region ?
					  "s3_region" : c->s3_ca_file ?
					  "s3_ca_file" : "master");
		if (c->num_replicas || c->sync_level || c->num_nodes != 1)
			return mv_err_set(err, MV_ECONFIG, "'%s' needs 'etcd' "
					  "(cluster mode)", c->num_replicas ?
					  "num_replicas" : c->sync_level ?
					  "sync_level" : "num_nodes");
		return 0;
	}
	if (!c->s3_endpoint)
		return mv_err_set(err, MV_ECONFIG, "cluster mode ('etcd') "
				  "needs 's3_endpoint' (or "
				  "s3_endpoint=file:/shared/dir)");
	if (!strncmp(c->s3_endpoint, "file:", 5)) {
		if (c->s3_endpoint[5] != '/')
			return mv_err_set(err, MV_ECONFIG, "s3_endpoint '%s': "
					  "want file:/absolute/path",
					  c->s3_endpoint);
	} else if (strncmp(c->s3_endpoint, "http://", 7) &&
		   strncmp(c->s3_endpoint, "https://", 8)) {
		return mv_err_set(err, MV_ECONFIG, "s3_endpoint '%s': want "
				  "http://, https:// or file:/",
				  c->s3_endpoint);
	} else if (!c->s3_bucket) {
		return mv_err_set(err, MV_ECONFIG, "cluster mode ('etcd') "
				  "needs 's3_bucket'");
	}
	if (c->s3_ca_file && strncmp(c->s3_endpoint, "https://", 8))
		return mv_err_set(err, MV_ECONFIG, "'s3_ca_file' needs an "
				  "https:// s3_endpoint, not '%s'",
				  c->s3_endpoint);
	for (int i = 0; i < c->nlisten; i++)
		tcp |= strncmp(c->listen[i], "unix:", 5) != 0;
	if (!tcp)
		return mv_err_set(err, MV_ECONFIG, "cluster mode ('etcd') "
				  "needs a TCP 'listen' address (HOST:PORT)");
	if (c->sync_level > c->num_replicas)
		return mv_err_set(err, MV_ECONFIG, "sync_level %d exceeds "
				  "num_replicas %d", c->sync_level,
				  c->num_replicas);
	if (c->num_nodes_set && c->num_replicas > c->num_nodes - 1)
		return mv_err_set(err, MV_ECONFIG, "num_replicas %d exceeds "
				  "num_nodes - 1 (num_nodes %d): a replica is "
				  "another node", c->num_replicas,
				  c->num_nodes);
	return 0;
}

int mv_conf_set(struct mv_conf *c, const char *key, const char *val,
		struct mv_err *err)
{
	int64_t v;
	int b;

	if (!strcmp(key, "auto_flush")) {
		if (parse_bool(val, &b) < 0)
			goto bad;
		c->auto_flush = b;
	} else if (!strcmp(key, "history_retention")) {
		if (parse_duration(val, &v) < 0)
			goto bad;
		c->history_retention = v;
	} else if (!strcmp(key, "auto_compact")) {
		if (parse_bool(val, &b) < 0)
			goto bad;
		c->auto_compact = b;
	} else if (!strcmp(key, "flush_interval")) {
		if (parse_int(val, 1, 86400000, &v) < 0)
			goto bad;
		c->flush_interval = v;
	} else if (!strcmp(key, "flush_limitition") ||
		   !strcmp(key, "flush_limit")) {
		v = mv_parse_size(val);
		if (v <= 0)
			goto bad;
		c->flush_limit = v;
	} else if (!strcmp(key, "memory_limit")) {
		v = mv_parse_size(val);
		if (v < 0)
			goto bad;
		c->memory_limit = v;	/* 0: no limit */
	} else if (!strcmp(key, "session_ttl")) {
		if (parse_int(val, 1, INT32_MAX, &v) < 0)
			goto bad;
		c->session_ttl = v;
	} else if (!strcmp(key, "busy_poll_us")) {
		if (parse_int(val, 0, 1000000, &v) < 0)
			goto bad;
		c->busy_poll_us = (int)v;
	} else if (!strcmp(key, "io_timeout")) {
		if (parse_int(val, 0, 86400, &v) < 0)
			goto bad;
		c->io_timeout = (int)v;
	} else if (!strcmp(key, "max_connections")) {
		if (parse_int(val, 1, 1000000, &v) < 0)
			goto bad;
		c->max_connections = (int)v;
	} else if (!strcmp(key, "max_pending")) {
		v = mv_parse_size(val);
		if (v <= 0)
			goto bad;
		c->max_pending = v;
	} else if (!strcmp(key, "num_replicas")) {
		if (parse_int(val, 0, 64, &v) < 0)
			goto bad;
		c->num_replicas = (int)v;
	} else if (!strcmp(key, "num_nodes")) {
		if (parse_int(val, 1, 1024, &v) < 0)
			goto bad;
		c->num_nodes = (int)v;
		c->num_nodes_set = 1;
	} else if (!strcmp(key, "sync_level")) {
		if (parse_int(val, 0, 64, &v) < 0)
			goto bad;
		c->sync_level = (int)v;
	} else if (!strcmp(key, "sync_timeout")) {
		if (parse_int(val, 1, 3600, &v) < 0)
			goto bad;
		c->sync_timeout = (int)v;
	} else if (!strcmp(key, "heartbeat_timeout")) {
		char *end;
		double d;

		errno = 0;
		d = strtod(val, &end);
		if (end == val || *end || errno ||
		    !(d >= MV_HEARTBEAT_TIMEOUT_MIN) ||
		    d > MV_HEARTBEAT_TIMEOUT_MAX)
			return mv_err_set(err, MV_ECONFIG, "bad value for "
					  "'heartbeat_timeout': '%.80s' (want "
					  "%g to %g seconds)", val,
					  MV_HEARTBEAT_TIMEOUT_MIN,
					  MV_HEARTBEAT_TIMEOUT_MAX);
		c->heartbeat_timeout = d;
	} else if (!strcmp(key, "listen")) {
		if (c->nlisten == MV_LISTEN_MAX)
			return mv_err_set(err, MV_ECONFIG,
					  "too many 'listen' addresses");
		if (!(c->listen[c->nlisten++] = strdup(val)))
			goto oom;
	} else if (!strcmp(key, "allow")) {
		if (c->nallow == MV_ALLOW_MAX)
			return mv_err_set(err, MV_ECONFIG,
					  "too many 'allow' ranges");
		if (!(c->allow[c->nallow++] = strdup(val)))
			goto oom;
	} else if (!strcmp(key, "node_no")) {
		if (parse_int(val, 0, UINT32_MAX, &v) < 0)
			goto bad;
		c->node_no = (uint32_t)v;
	} else if (!strcmp(key, "verbose")) {
		if (parse_int(val, -1, 3, &v) < 0)
			goto bad;
		c->verbose = (int)v;
	} else {
		static const struct {
			const char *key;
			size_t off;
		} strs[] = {
			{ "data_dir", offsetof(struct mv_conf, data_dir) },
			{ "user", offsetof(struct mv_conf, user) },
			{ "cluster_id", offsetof(struct mv_conf, cluster_id) },
			{ "master", offsetof(struct mv_conf, master) },
			{ "etcd", offsetof(struct mv_conf, etcd) },
			{ "s3_endpoint", offsetof(struct mv_conf, s3_endpoint) },
			{ "s3_bucket", offsetof(struct mv_conf, s3_bucket) },
			{ "s3_region", offsetof(struct mv_conf, s3_region) },
			{ "s3_ca_file", offsetof(struct mv_conf, s3_ca_file) },
		};
		for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
			if (!strcmp(key, strs[i].key)) {
				if (!*val)
					goto bad;
				if (set_str((char **)((char *)c + strs[i].off), val) < 0)
					goto oom;
				if ((!strcmp(key, "user") ||
				     !strcmp(key, "cluster_id")) &&
				    mv_name_check(val, NULL) < 0)
					goto bad;
				return 0;
			}
		return mv_err_set(err, MV_ECONFIG, "unknown key '%.64s'", key);
	}
	return 0;
bad:
	return mv_err_set(err, MV_ECONFIG, "bad value for '%s': '%.80s'", key,
			  val);
oom:
	return mv_err_set(err, MV_EINTERNAL, "out of memory");
}

static int conf_set_cb(void *c, const char *key, const char *val,
		       struct mv_err *err)
{
	return mv_conf_set(c, key, val, err);
}

int mv_conf_load(struct mv_conf *c, const char *path, int missing_ok,
		 struct mv_err *err)
{
	return mv_conf_load_with(path, missing_ok, conf_set_cb, c, err);
}

int mv_conf_load_with(const char *path, int missing_ok,
		      int (*set)(void *arg, const char *key, const char *val,
				 struct mv_err *err),
		      void *arg, struct mv_err *err)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0, rc = 0;

	if (!f) {
		if (missing_ok && errno == ENOENT)
			return 0;
		return mv_err_sys(err, MV_ECONFIG, "cannot open '%s'", path);
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *eq, *k, *v, *e;
		struct mv_err e2 = { 0 };

		lineno++;
		if (!strchr(line, '\n')) {
			int ch = getc(f);	/* a last line without '\n'? */

			if (ch != EOF) {
				rc = mv_err_set(err, MV_ECONFIG, "%s:%d: line too "
						"long", path, lineno);
				break;
			}
		}
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			rc = mv_err_set(err, MV_ECONFIG, "%s:%d: want key = value",
					path, lineno);
			break;
		}
		k = p;
		e = eq;
		while (e > k && isspace((unsigned char)e[-1]))
			e--;
		*e = '\0';
		v = eq + 1;
		while (isspace((unsigned char)*v))
			v++;
		e = v + strlen(v);
		while (e > v && isspace((unsigned char)e[-1]))
			e--;
		*e = '\0';
		if (set(arg, k, v, &e2) < 0) {
			rc = mv_err_set(err, e2.code, "%s:%d: %s", path, lineno,
					e2.msg);
			break;
		}
	}
	fclose(f);
	return rc;
}

int mv_args_parse(struct mv_args *a, int argc, char **argv, const char *prog,
		  void (*usage)(FILE *))
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		char *kv;

		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(s, "--version")) {
			printf("%s (mv) %s\n", prog, MV_VERSION);
			return 0;
		} else if (!strcmp(s, "-c") && i + 1 < argc) {
			a->conf_file = argv[++i];
		} else if (!strcmp(s, "-n")) {
			a->check_only = 1;
		} else if (!strcmp(s, "-v") || !strcmp(s, "-vv")) {
			a->verbose += (int)strlen(s) - 1;
		} else if (!strcmp(s, "-q")) {
			a->verbose = -1;
		} else if (!strcmp(s, "-d")) {
			/* foreground is the default */
		} else if (!strcmp(s, "-b") || !strcmp(s, "--background")) {
			a->background = 1;
		} else if (!strncmp(s, "--", 2) && s[2] &&
			   a->nflags < MV_ARGS_MAX) {
			if (!strchr(s, '=') && i + 1 < argc) {
				/* --key value */
				size_t l = strlen(s) + strlen(argv[i + 1]) + 2;

				kv = malloc(l);
				if (kv)
					snprintf(kv, l, "%s=%s", s + 2, argv[++i]);
			} else {
				kv = strdup(s + 2);
			}
			if (!kv)
				return 70;
			a->flags[a->nflags++] = kv;
		} else {
			fprintf(stderr, "%s: unknown argument '%s'\n", prog, s);
			usage(stderr);
			return 64;
		}
	}
	return -1;
}

int mv_args_apply(const struct mv_args *a,
		  int (*set)(void *arg, const char *key, const char *val,
			     struct mv_err *err),
		  void *arg, struct mv_err *err)
{
	for (int i = 0; i < a->nflags; i++) {
		char key[256];
		const char *eq = strchr(a->flags[i], '=');
		size_t kl = eq ? (size_t)(eq - a->flags[i]) : 0;
		int rc;

		if (!eq)
			return mv_err_set(err, MV_ECONFIG,
					  "flag '--%s' needs a value",
					  a->flags[i]);
		if (kl >= sizeof(key))
			return mv_err_set(err, MV_ECONFIG,
					  "unknown key '%.64s...'", a->flags[i]);
		memcpy(key, a->flags[i], kl);
		key[kl] = '\0';
		rc = set(arg, key, eq + 1, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void mv_args_release(struct mv_args *a)
{
	for (int i = 0; i < a->nflags; i++)
		free(a->flags[i]);
	a->nflags = 0;
}

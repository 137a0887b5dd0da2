/*
 * conf.h - the daemons' configuration: mv.conf (key = value lines, '#'
 * comments) and flags of the same names (--key=value), flags winning.
 */
#ifndef MV_CONF_H
#define MV_CONF_H

#include <stdio.h>
#include "mv.h"

#define MV_LISTEN_MAX 8
#define MV_ALLOW_MAX 32

#define MV_FLUSH_INTERVAL_DEFAULT 1000		/* ms */
#define MV_FLUSH_LIMIT_DEFAULT (16u << 20)	/* bytes */
#define MV_SESSION_TTL_DEFAULT 3600		/* s */
#define MV_BUSY_POLL_DEFAULT 50		/* us */
#define MV_IO_TIMEOUT_DEFAULT 30		/* s */
#define MV_MAX_CONNECTIONS_DEFAULT 1024
#define MV_SYNC_TIMEOUT_DEFAULT 10		/* s */
/* The master's: s without a heartbeat's answer before a node is down. */
#define MV_HEARTBEAT_TIMEOUT_DEFAULT 3.0
#define MV_HEARTBEAT_TIMEOUT_MIN 1.0
#define MV_HEARTBEAT_TIMEOUT_MAX 3600.0

struct mv_conf {
	int auto_flush;
	int auto_compact;		/* merge small segments in the background */
	int64_t flush_interval;		/* ms */
	int64_t flush_limit;		/* bytes */
	int64_t session_ttl;		/* s */
	int busy_poll_us;		/* us a connection polls for the next request */
	int io_timeout;			/* s a payload read may stall; 0 none */
	int max_connections;		/* open client connections */
	int64_t max_pending;		/* bytes of unflushed data, all batches */
	int num_replicas, num_nodes, sync_level;
	int num_nodes_set;		/* num_nodes given: it bounds num_replicas */
	int sync_timeout;		/* s a flush waits for sync_level replicas */
	double heartbeat_timeout;	/* s; the master's (a node checks it,
					 * so that one mv.conf serves both) */
	int nlisten;
	char *listen[MV_LISTEN_MAX];
	char *data_dir;
	int nallow;
	char *allow[MV_ALLOW_MAX];
	char *master, *etcd, *s3_endpoint, *s3_bucket, *s3_region;
	char *s3_ca_file;
	char *user, *cluster_id;
	int64_t memory_limit;		/* bytes, 0 none */
	int64_t history_retention;	/* s of flush history kept; 0 none */
	uint32_t node_no;		/* written in every data record */
	int verbose;
};

/* Defaults (MV_HOME decides data_dir and the socket). */
int mv_conf_init(struct mv_conf *c, struct mv_err *err);
void mv_conf_release(struct mv_conf *c);
/* Set one key; MV_ECONFIG "unknown key 'x'" or "bad value for 'x'". */
int mv_conf_set(struct mv_conf *c, const char *key, const char *val,
		struct mv_err *err);
/*
 * Cluster mode is 'etcd' set: it needs s3_endpoint (http(s):// with
 * s3_bucket, or file:/abs/dir) and a TCP listen; the cluster keys
 * without etcd are refused, s3_ca_file without an https:// s3_endpoint.
 * MV_ECONFIG saying what is missing.
 */
int mv_conf_cluster_check(const struct mv_conf *c, struct mv_err *err);
/* Read a file; errors name "FILE:N". missing_ok: absent file is fine. */
int mv_conf_load(struct mv_conf *c, const char *path, int missing_ok,
		 struct mv_err *err);
/*
 * The same file, each key = value given to set(arg, key, value, err) (a
 * daemon with keys of its own passes its setter; mv_conf_load passes
 * mv_conf_set).
 */
int mv_conf_load_with(const char *path, int missing_ok,
		      int (*set)(void *arg, const char *key, const char *val,
				 struct mv_err *err),
		      void *arg, struct mv_err *err);
/*
 * A daemon's command line: -h/--help, --version, -c FILE, -n (check the
 * configuration and exit), -v/-vv, -q, -d (foreground, the default), -b
 * or --background (daemon.h) and --key=value or --key value, kept in
 * order for mv_args_apply.
 */
#define MV_ARGS_MAX 256
struct mv_args {
	const char *conf_file;		/* -c, or NULL */
	int check_only;			/* -n */
	int verbose;			/* -v: 1, -vv: 2, -q: -1 */
	int background;			/* -b */
	int nflags;
	char *flags[MV_ARGS_MAX];	/* "key=value" or "key", malloc'ed */
};
/*
 * Parse argv for prog ("mv-noded"); usage prints the help to a stream.
 * Returns -1 to go on, or the exit status: 0 after --help or --version,
 * 64 for an unknown argument (usage on stderr), 70 out of memory.
 */
int mv_args_parse(struct mv_args *a, int argc, char **argv, const char *prog,
		  void (*usage)(FILE *));
/*
 * Give every flag, in order, to set(arg, key, value, err); a flag without
 * a value is MV_ECONFIG.  0, or the first failure.
 */
int mv_args_apply(const struct mv_args *a,
		  int (*set)(void *arg, const char *key, const char *val,
			     struct mv_err *err),
		  void *arg, struct mv_err *err);
void mv_args_release(struct mv_args *a);

/* "16M", "1G", "4096" -> bytes; -1 if malformed. */
int64_t mv_parse_size(const char *s);

#endif

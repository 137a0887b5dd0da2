/*
 * verbs_admin.c - the verbs of the connection and of administration:
 * HELLO, PING, QUIT, USER, CREATE, DROP, INDEX, INDEXSTATUS, INDEXDROP,
 * INDEXSET, COMPACT, STAT, LOAD (docs/PROTOCOL.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "conn.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "vcheck.h"

int cmd_hello(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return reply(cn, "OK version=%d server=mv-noded/%s maxline=%d "
		     "maxpayload=%zu", MV_PROTO_VERSION, MV_VERSION,
		     LINE_MAX_LEN, PAYLOAD_MAX);
}

int cmd_ping(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return reply(cn, "OK");
}

int cmd_quit(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cn->quit = 1;
	return reply(cn, "OK");
}

int cmd_user(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };

	(void)argc;
	if (mv_name_check(argv[1], &e) < 0)
		return reply(cn, "ERR BADNAME %s", e.msg);
	snprintf(cn->user, sizeof(cn->user), "%s", argv[1]);
	return reply(cn, "OK");
}

int cmd_create(struct conn *cn, int argc, char **argv)
{
	struct mv_field f[MV_FIELDS_MAX];
	struct mv_err e = { 0 };
	enum mv_metric metric;
	uint64_t dim;
	int nf = 0, ifne = 0, existed;

	if (parse_u64(argv[2], MV_DIM_MAX, &dim) < 0 || dim == 0)
		return reply(cn, "ERR BADDIM bad dimension '%.32s': want 1..%d",
			     argv[2], MV_DIM_MAX);
	if (mv_metric_parse(argv[3], &metric) < 0)
		return proto_err(cn, "bad metric: want l2, ip or cosine");
	for (int i = 4; i < argc; i++) {
		char *colon = strchr(argv[i], ':');

		if (!strcmp(argv[i], "if-not-exists")) {
			ifne = 1;
			continue;
		}
		if (!colon || nf == MV_FIELDS_MAX)
			return proto_err(cn, "bad field: want NAME:TYPE");
		*colon = '\0';
		if (strlen(argv[i]) > MV_NAME_MAX)
			return reply(cn, "ERR BADNAME bad field name");
		snprintf(f[nf].name, sizeof(f[nf].name), "%s", argv[i]);
		if (mv_ftype_parse(colon + 1, &f[nf].type) < 0)
			return proto_err(cn,
				"bad field type: want int64, float64, string or bool");
		nf++;
	}
	if (node_create(cn->nd, cn->user, argv[1], (uint32_t)dim, metric, f, nf, ifne,
			&existed, &e) < 0)
		return reply_err(cn, &e);
	return reply(cn, existed ? "OK exists=1" : "OK");
}

int cmd_drop(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };

	(void)argc;
	if (node_drop(cn->nd, cn->user, argv[1], &e) < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

/* Join argv[from..] into "k=v k=v", checking the form. */
static int join_params(char **argv, int from, int argc, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = from; i < argc; i++) {
		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return -1;
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
					len ? " " : "", argv[i]);
		if (len >= cap)
			return -1;
	}
	return 0;
}

/*
 * c's build as INDEXSTATUS answers it; a failed one ends with the
 * protocol's word for why (code=IO: disk full, storage away, try again)
 * and its message (error=, last, may hold spaces).
 */
static void index_status(struct coll *c, char *out, size_t cap)
{
	struct mv_err failed;
	size_t n;

	node_index_status(c, out, cap, &failed);
	n = strlen(out);
	if (failed.code && n < cap)
		snprintf(out + n, cap - n, " code=%s error=%s",
			 code_name(&failed), failed.msg);
}

int cmd_index(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	struct mv_err e = { 0 };
	char params[256], status[1024];
	int rc;

	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (!(c = node_coll_find(cn->nd, cn->user, argv[1])))
		return unknown_coll(cn, argv[1]);
	if (join_params(argv, 3, argc, params, sizeof(params)) < 0) {
		coll_put(c);
		return proto_err(cn, "bad parameter: want name=value");
	}
	rc = node_index_start(cn->nd, c, argv[2], params, &e);
	if (rc == 0)
		index_status(c, status, sizeof(status));
	coll_put(c);
	if (rc < 0) {
		if (rc == MV_EAGAIN)
			return reply(cn, "ERR BUSY %s", e.msg);
		if (rc == MV_EUSAGE)
			return reply(cn, "ERR BADDATA %s", e.msg);
		return reply_err(cn, &e);
	}
	return reply(cn, "OK %s", status);
}

/* INDEXSTATUS <name> [wait=<ms>]: with wait, a build under way is given
 * up to ms (at most 10 s) to end before the answer. */
int cmd_indexstatus(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	char status[1024];
	uint64_t ms = 0;

	if (argc == 3 && (strncmp(argv[2], "wait=", 5) ||
			  parse_u64(argv[2] + 5, 10000, &ms) < 0))
		return proto_err(cn, "usage: INDEXSTATUS <name> "
				 "[wait=<ms, 0 to 10000>]");
	if (!(c = node_coll_find(cn->nd, cn->user, argv[1])))
		return unknown_coll(cn, argv[1]);
	if (ms)
		node_index_wait(c, (int)ms);
	index_status(c, status, sizeof(status));
	coll_put(c);
	return reply(cn, "OK %s", status);
}

int cmd_indexdrop(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	struct mv_err e = { 0 };
	int rc;

	(void)argc;
	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (!(c = node_coll_find(cn->nd, cn->user, argv[1])))
		return unknown_coll(cn, argv[1]);
	rc = node_index_drop(cn->nd, c, &e);
	coll_put(c);
	if (rc == MV_EAGAIN)
		return reply(cn, "ERR BUSY %s", e.msg);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

int cmd_indexset(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	struct mv_err e = { 0 };
	char params[256];
	int rc;

	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (!(c = node_coll_find(cn->nd, cn->user, argv[1])))
		return unknown_coll(cn, argv[1]);
	if (join_params(argv, 2, argc, params, sizeof(params)) < 0) {
		coll_put(c);
		return proto_err(cn, "bad parameter: want name=value");
	}
	rc = node_index_set(cn->nd, c, params, &e);
	coll_put(c);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK");
}

int cmd_compact(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	struct mv_err e = { 0 };
	size_t segs;
	int merged, rc;

	(void)argc;
	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (!(c = node_coll_find(cn->nd, cn->user, argv[1])))
		return unknown_coll(cn, argv[1]);
	rc = node_compact(cn->nd, c, 1, &merged, &e);
	pthread_rwlock_rdlock(&c->lock);
	segs = c->nsegs;
	pthread_rwlock_unlock(&c->lock);
	coll_put(c);
	if (rc == MV_EAGAIN)
		return reply(cn, "ERR BUSY %s", e.msg);
	if (rc < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK merged=%d segments=%zu", merged, segs);
}

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

/*
 * STAT [limits] [io]: limits adds memory_limit's measure and the limit,
 * io the bytes read from the segment store since the node started.
 */
int cmd_stat(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	size_t segs = node_segment_count(nd);
	char lim[64] = "", io[32] = "";
	int limits = 0, store = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "limits") && !limits)
			limits = 1;
		else if (!strcmp(argv[i], "io") && !store)
			store = 1;
		else
			return proto_err(cn, "usage: STAT [limits] [io]");
	}
	if (limits)
		snprintf(lim, sizeof(lim), "\t%lld\t%lld", node_memory(),
			 (long long)nd->conf.memory_limit);
	if (store)
		snprintf(io, sizeof(io), "\t%llu\t%llu", (unsigned long long)
			 mv_store_bytes_read(nd->store),
			 (unsigned long long)node_revision_reads(nd));
	return reply(cn, "%s\t%s\t%d\t%ld\t%zu%s%s\nEND", nd->addr,
		     atomic_load(&nd->shutting_down) ? "stopping" : "up",
		     atomic_load(&nd->nconns), rss_bytes(), segs, lim, io);
}

/*
 * LOAD: what mv-masterd's heartbeat asks every second.  load is the open
 * connections plus the unflushed bytes in MiB; segments as STAT counts
 * them (node_segment_count); held the memory memory_limit counts
 * (node_memory) and limit memory_limit (0: none), for the Reduce mode;
 * loaded the revision up to which it holds what it should (sync_level).
 */
int cmd_load(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	long long pending = atomic_load(&node_pending);
	int conns = atomic_load(&nd->nconns);
	size_t segs = node_segment_count(nd);

	(void)argc;
	(void)argv;
	if (pending < 0)
		pending = 0;
	return reply(cn, "OK no=%" PRIu32 " load=%lld conns=%d mem=%ld "
		     "segments=%zu applied=%lld held=%lld limit=%lld "
		     "loaded=%lld",
		     nd->node_no, conns + (pending >> 20), conns, rss_bytes(),
		     segs, (long long)atomic_load(&nd->applied_rev),
		     node_memory(), (long long)nd->conf.memory_limit,
		     (long long)node_place_loaded(nd));
}

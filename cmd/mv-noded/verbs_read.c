/*
 * verbs_read.c - the verbs that read: DESCRIBE, LS, SEARCH, GET, SCAN
 * (docs/PROTOCOL.md).
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
#include "filter.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "vcheck.h"

static void coll_counts(struct coll *c, int64_t *rows, size_t *segs,
			char *index, size_t icap)
{
	pthread_rwlock_rdlock(&c->lock);
	*rows = c->rows;
	*segs = c->nsegs;
	snprintf(index, icap, "%s", c->index ? c->index->spec : "-");
	pthread_rwlock_unlock(&c->lock);
}

int cmd_describe(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	char fields[MV_FIELDS_MAX * (MV_NAME_MAX + 10) + 2] = "";
	char index[160];
	int64_t rows;
	size_t segs;
	int rc;

	(void)argc;
	if (visible(cn, 0, &rc) < 0)
		return rc;
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c)
		return unknown_coll(cn, argv[1]);
	for (int i = 0; i < c->nfields; i++) {
		size_t l = strlen(fields);
		snprintf(fields + l, sizeof(fields) - l, "%s%s:%s", i ? "," : "",
			 c->fields[i].name, mv_ftype_name(c->fields[i].type));
	}
	coll_counts(c, &rows, &segs, index, sizeof(index));
	rc = reply(cn, "OK name=%s dim=%u metric=%s rows=%" PRId64
		   " segments=%zu index=%s fields=%s", c->name, c->dim,
		   mv_metric_name(c->metric), rows, segs, index,
		   c->nfields ? fields : "-");
	coll_put(c);
	return rc;
}

int cmd_ls(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct coll *c, **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (argc == 2) {
		c = node_coll_get(nd, cn->user, argv[1]);
		if (!c)
			return unknown_coll(cn, argv[1]);
		list = malloc(sizeof(*list));
		if (!list) {
			coll_put(c);
			return reply(cn, "ERR INTERNAL out of memory");
		}
		list[n++] = c;
	} else {
		pthread_mutex_lock(&nd->lock);
		for (c = nd->colls; c; c = c->next) {
			if (strcmp(c->user, cn->user))
				continue;
			if (n == cap) {
				struct coll **l2;
				cap = cap ? cap * 2 : 16;
				l2 = realloc(list, cap * sizeof(*l2));
				if (!l2)
					break;
				list = l2;
			}
			atomic_fetch_add(&c->refs, 1);
			list[n++] = c;
		}
		pthread_mutex_unlock(&nd->lock);
	}
	cn->out.len = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t rows;
		size_t segs;
		char line[512], index[160];
		int l;

		c = list[i];
		coll_counts(c, &rows, &segs, index, sizeof(index));
		l = snprintf(line, sizeof(line), "%s\t%u\t%s\t%" PRId64 "\t%zu\t%s\n",
			     c->name, c->dim, mv_metric_name(c->metric), rows,
			     segs, index);
		if (nbuf_reserve(&cn->out, (size_t)l) == 0) {
			memcpy(cn->out.p + cn->out.len, line, (size_t)l);
			cn->out.len += (size_t)l;
		}
		coll_put(c);
	}
	free(list);
	if (nbuf_reserve(&cn->out, 4) == 0) {
		memcpy(cn->out.p + cn->out.len, "END\n", 4);
		cn->out.len += 4;
	}
	rc = send_raw(cn, cn->out.p, cn->out.len);
	return rc;
}

struct mv_filter *req_filter(struct conn *cn, struct coll *c, char *val,
			     int *rc)
{
	struct mv_err e = { 0 };
	struct mv_filter *f;

	if (mv_proto_unescape(val) < 0) {
		*rc = reply(cn, "ERR PROTO filter: bad %%XX escape");
		return NULL;
	}
	f = mv_filter_parse(val, c->fields, c->nfields, &e);
	if (!f)
		*rc = e.code == MV_EUSAGE ? reply(cn, "ERR PROTO filter: %s",
						   e.msg)
					  : reply_err(cn, &e);
	return f;
}

/* Field indices of "a,b" for c; -1 and a reply on an unknown one. */
static int parse_fields(struct conn *cn, struct coll *c, char *list, int *which)
{
	char *save = NULL, *f;
	int n = 0;

	for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		int i;
		for (i = 0; i < c->nfields; i++)
			if (!strcmp(c->fields[i].name, f))
				break;
		if (i == c->nfields || n == MV_FIELDS_MAX) {
			reply(cn, "ERR NOTFOUND unknown field '%.64s' in '%s'", f,
			      c->name);
			return -1;
		}
		which[n++] = i;
	}
	return n;
}

/*
 * asof=<flush> of SEARCH, GET and SCAN: 0 and *asof set, or -1 and the
 * reply sent (rc in *rc): a bad number, or a flush not in the retained
 * history.
 */
static int req_asof(struct conn *cn, struct coll *c, const char *val,
		    uint64_t *asof, int *rc)
{
	struct mv_err e = { 0 };

	if (parse_u64(val, UINT64_MAX >> 1, asof) < 0 || *asof == 0) {
		*rc = reply(cn, "ERR PROTO asof: want a flush number");
		return -1;
	}
	if (node_asof_check(cn->nd, c, *asof, &e) < 0) {
		*rc = reply_err(cn, &e);
		return -1;
	}
	return 0;
}

/*
 * The units of want that the search neither served nor listed in
 * missing: this node does not know them (merged away, after the revision
 * the asker had applied).  Into gone; the reply lists them as missing
 * too, so that they are never answered for by silence.
 */
static int units_gone(const struct node_units *want,
		      const struct node_units *served,
		      const struct node_units *missing,
		      struct node_units *gone, struct mv_err *err)
{
	for (size_t i = 0; i < want->n; i++)
		if (!node_units_has(served, want->v[i]) &&
		    !node_units_has(missing, want->v[i]) &&
		    node_units_add(gone, want->v[i]) < 0)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
	return 0;
}

int cmd_search(struct conn *cn, int argc, char **argv)
{
	uint64_t k, nq, bytes;
	struct coll *c;
	float *q = NULL, *dist = NULL;
	int64_t *ids = NULL;
	int which[MV_FIELDS_MAX], nwhich = 0, rc;
	struct mv_err e = { 0 };
	long nprobe = -1, ef = -1;
	struct mv_filter *f = NULL;
	char *ftext = NULL;
	struct node_units want = { 0 }, missing = { 0 }, served = { 0 };
	struct node_units gone = { 0 };
	uint64_t rev = 0, asof = 0, cut = 0;
	int part = 0;

	if (parse_u64(argv[2], 1000000, &k) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &nq) < 0 ||
	    parse_u64(argv[4], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: SEARCH <name> <k> <nq> <bytes> "
				 "[param=value]...");
	}
	/* Another node's part of its search: units=a,b rev=R (fanout.c). */
	for (int i = 5; i < argc; i++)
		if (!strncmp(argv[i], "units=", 6))
			part = 1;
		else if (!strncmp(argv[i], "rev=", 4) &&
			 parse_u64(argv[i] + 4, INT64_MAX, &rev) < 0)
			rev = 0;
	node_test_pause("MV_TEST_PAUSE_SEARCH");
	if (part) {
		struct mv_err we = { 0 };

		if (node_visible_at(cn->nd, (int64_t)rev, &we) < 0) {
			if (skip_payload(cn, bytes) < 0)
				return -1;
			return reply_err(cn, &we);
		}
	} else if (visible(cn, bytes, &rc) < 0) {
		return rc;
	}
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c) {
		if (skip_payload(cn, bytes) < 0)
			return -1;
		return unknown_coll(cn, argv[1]);
	}
	if (bytes != nq * c->dim * sizeof(float) || k == 0 ||
	    nq * k > (PAYLOAD_MAX / 12)) {
		rc = skip_payload(cn, bytes);
		coll_put(c);
		if (rc < 0)
			return -1;
		if (k == 0 || nq * k > PAYLOAD_MAX / 12)
			return reply(cn, "ERR BADDATA k must be 1..%zu per "
				     "request", PAYLOAD_MAX / 12 / (nq ? nq : 1));
		return reply(cn, "ERR BADDIM payload of %" PRIu64 " bytes does "
			     "not hold %" PRIu64 " queries of dimension %u",
			     bytes, nq, c->dim);
	}
	q = malloc(bytes ? bytes : 1);
	if (!q || read_payload(cn, q, bytes) < 0) {
		free(q);
		coll_put(c);
		return -1;
	}
	for (int i = 5; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			rc = proto_err(cn, "bad parameter: want name=value");
			goto out;
		}
		*eq = '\0';
		if (!strcmp(argv[i], "fields")) {
			nwhich = parse_fields(cn, c, eq + 1, which);
			if (nwhich < 0) {
				rc = 0;
				goto out;
			}
		}
		else if (!strcmp(argv[i], "filter")) {
			mv_filter_free(f);
			free(ftext);
			ftext = strdup(eq + 1);	/* as sent, for other nodes */
			f = req_filter(cn, c, eq + 1, &rc);
			if (!f)
				goto out;
			if (!ftext) {
				rc = reply(cn, "ERR INTERNAL out of memory");
				goto out;
			}
		}
		else if (!strcmp(argv[i], "units")) {
			char *save = NULL, *u;

			for (u = strtok_r(eq + 1, ",", &save); u;
			     u = strtok_r(NULL, ",", &save))
				if (node_units_add(&want, u) < 0) {
					rc = reply(cn, "ERR INTERNAL out of "
						   "memory");
					goto out;
				}
		}
		else if (!strcmp(argv[i], "rev")) {
			continue;
		}
		else if (!strcmp(argv[i], "cut")) {
			if (parse_u64(eq + 1, UINT64_MAX >> 1, &cut) < 0) {
				rc = reply(cn, "ERR PROTO cut: want a flush "
					   "number");
				goto out;
			}
		}
		else if (!strcmp(argv[i], "asof")) {
			if (req_asof(cn, c, eq + 1, &asof, &rc) < 0)
				goto out;
		}
		else if (!strcmp(argv[i], "nprobe") || !strcmp(argv[i], "ef") ||
			 !strcmp(argv[i], "efSearch")) {
			uint64_t v;
			if (parse_u64(eq + 1, 1 << 24, &v) < 0 || v == 0) {
				rc = reply(cn, "ERR BADDATA bad value for '%s'",
					   argv[i]);
				goto out;
			}
			if (argv[i][0] == 'n')
				nprobe = (long)v;
			else
				ef = (long)v;
		} else {
			rc = reply(cn, "ERR PROTO unknown search parameter '%.64s'",
				   argv[i]);
			goto out;
		}
	}
	{
		const char *why;
		long bad = mv_vcheck(q, nq, c->dim, &why);

		if (bad >= 0) {
			rc = reply(cn, "ERR BADDATA query %ld: %s", bad + 1, why);
			goto out;
		}
	}
	if (part && cut && !asof)
		asof = node_search_cut(cn->nd, c, cut);
	ids = malloc(nq * k * 8 + 1);
	dist = malloc(nq * k * 4 + 1);
	if (!ids || !dist) {
		rc = reply(cn, "ERR INTERNAL out of memory");
		goto out;
	}
	if ((part ? node_search_units(cn->nd, c, q, nq, k, nprobe, ef, f, asof,
				      &want, &served, &missing, ids, dist, &e)
		  : node_search_all(cn->nd, c, q, nq, k, nprobe, ef, f, ftext,
				    asof, ids, dist, &e)) < 0 ||
	    (part && units_gone(&want, &served, &missing, &gone, &e) < 0) ||
	    /* Units it holds but has yet to load: waited for, bounded. */
	    (missing.n && node_search_held(cn->nd, c, &missing,
					   MV_HELD_WAIT_MS, q, nq, k, nprobe,
					   ef, f, asof, ids, dist, &gone,
					   &e) < 0)) {
		rc = reply_err(cn, &e);
		goto out;
	}
	if (part)
		log_debug("search of '%s' for another node: %zu units at "
			  "cut %llu (as of %llu), %zu missing, %zu gone, "
			  "applied %lld (%lld ms)", c->name, want.n,
			  (unsigned long long)cut, (unsigned long long)asof,
			  missing.n, gone.n,
			  (long long)atomic_load(&cn->nd->applied_rev),
			  (long long)node_mono_ms());
	for (size_t i = 0; i < gone.n; i++)
		if (node_units_add(&missing, gone.v[i]) < 0) {
			rc = reply(cn, "ERR INTERNAL out of memory");
			goto out;
		}
	cn->out.len = 0;
	if (nwhich) {
		struct node_past past;

		pthread_rwlock_rdlock(&c->lock);
		if (node_past_init(c, node_asof_now(c, asof), &past) < 0) {
			pthread_rwlock_unlock(&c->lock);
			rc = reply(cn, "ERR INTERNAL out of memory");
			goto out;
		}
		for (uint64_t i = 0; i < nq * k; i++) {
			struct seg *sg;
			uint64_t row;

			if (ids[i] == MV_ID_NONE)
				continue;
			if (node_row_at(c, &past, ids[i], &sg, &row))
				coll_fields_text(c, sg, row, which, nwhich,
						 &cn->out);
			else if (nbuf_reserve(&cn->out, 1) == 0)
				cn->out.p[cn->out.len++] = '\n';
		}
		node_past_release(&past);
		pthread_rwlock_unlock(&c->lock);
	}
	{
		char line[LINE_MAX_LEN];
		int l = snprintf(line, sizeof(line),
				 "OK nq=%" PRIu64 " k=%" PRIu64 " bytes=%zu",
				 nq, k, nq * k * 12 + cn->out.len);

		/* The units asked for that this node does not serve. */
		for (size_t i = 0; i < missing.n &&
		     (size_t)l < sizeof(line) - 2; i++)
			l += snprintf(line + l, sizeof(line) - (size_t)l, "%s%s",
				      i ? "," : " missing=", missing.v[i]);
		/* Those of them it does not know: merged away, with the
		 * revision it applied, for the asker to catch up to. */
		for (size_t i = 0; i < gone.n &&
		     (size_t)l < sizeof(line) - 2; i++)
			l += snprintf(line + l, sizeof(line) - (size_t)l, "%s%s",
				      i ? "," : " gone=", gone.v[i]);
		if (gone.n && (size_t)l < sizeof(line) - 2)
			l += snprintf(line + l, sizeof(line) - (size_t)l,
				      " applied=%lld", (long long)
				      atomic_load(&cn->nd->applied_rev));
		if ((size_t)l > sizeof(line) - 2)
			l = (int)sizeof(line) - 2;
		line[l++] = '\n';
		struct iovec iov[4] = {
			{ line, (size_t)l },
			{ ids, nq * k * 8 },
			{ dist, nq * k * 4 },
			{ cn->out.p, cn->out.len },
		};
		rc = mv_writev_all(cn->fd, iov, 4);
	}
out:
	mv_filter_free(f);
	free(ftext);
	node_units_free(&want);
	node_units_free(&missing);
	node_units_free(&served);
	node_units_free(&gone);
	free(q);
	free(ids);
	free(dist);
	coll_put(c);
	return rc;
}

/*
 * Send rows (ids known to exist or skipped; with f, those that do not
 * match skipped too) as a GET/SCAN reply.  In a cluster, a vector file
 * gone from storage may have been merged away by another node after this
 * node last applied: it catches up (node_visible) and reads the rows
 * again from what it holds then, ROWS_TRIES times in all; a file still
 * missing after that is said (damage), never a row left out.
 */
#define ROWS_TRIES 3
static int send_rows(struct conn *cn, struct coll *c, const int64_t *want,
		     size_t n, int fields, const struct mv_filter *f,
		     uint64_t asof)
{
	struct node_past past;
	struct nbuf idb = { 0 }, vb = { 0 };
	struct mv_err e = { 0 };
	int which[MV_FIELDS_MAX], rc, tries = 0;
	size_t found, vsz = c->dim * sizeof(float);

	for (int i = 0; i < c->nfields; i++)
		which[i] = i;
	if (nbuf_reserve(&idb, n * 8) < 0 || nbuf_reserve(&vb, n * vsz) < 0) {
		nbuf_release(&idb);
		nbuf_release(&vb);
		return reply(cn, "ERR INTERNAL out of memory");
	}
again:
	found = 0;
	cn->out.len = 0;
	pthread_rwlock_rdlock(&c->lock);
	node_test_pause("MV_TEST_PAUSE_ROWS");
	if (node_past_init(c, node_asof_now(c, asof), &past) < 0) {
		pthread_rwlock_unlock(&c->lock);
		nbuf_release(&idb);
		nbuf_release(&vb);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct seg *sg;
		uint64_t row;
		const float *raw;

		if (!node_row_at(c, &past, want[i], &sg, &row))
			continue;
		/* As of a flush a deleted row may match: the filter alone. */
		if (f && (past.asof ? !node_row_filter(sg, row, f)
				    : !node_row_matches(sg, row, f)))
			continue;
		/* A file that cannot be read (damage, S3 away) is said,
		 * never a row silently left out. */
		if (node_seg_raw(cn->nd, sg, &raw, &e) < 0)
			break;
		memcpy(idb.p + found * 8, &want[i], 8);
		memcpy(vb.p + found * vsz, raw + row * c->dim, vsz);
		found++;
		if (fields && c->nfields)
			coll_fields_text(c, sg, row, which, c->nfields,
					 &cn->out);
	}
	node_past_release(&past);
	pthread_rwlock_unlock(&c->lock);
	if (e.code == MV_ENOINPUT && cn->nd->cluster && ++tries < ROWS_TRIES) {
		struct mv_err ve = { 0 };

		if (node_visible(cn->nd, &ve) == 0) {
			log_info("collection '%s': %s; reading the rows again "
				 "once caught up", c->name, e.msg);
			mv_err_clear(&e);
			goto again;
		}
	}
	if (e.code) {
		nbuf_release(&idb);
		nbuf_release(&vb);
		cn->out.len = 0;
		return reply_err(cn, &e);
	}
	{
		char line[128];
		int l = snprintf(line, sizeof(line), "OK n=%zu bytes=%zu\n",
				 found, found * (8 + vsz) + cn->out.len);
		struct iovec iov[4] = {
			{ line, (size_t)l },
			{ idb.p, found * 8 },
			{ vb.p, found * vsz },
			{ cn->out.p, cn->out.len },
		};
		rc = mv_writev_all(cn->fd, iov, 4);
	}
	nbuf_release(&idb);
	nbuf_release(&vb);
	return rc;
}

int cmd_get(struct conn *cn, int argc, char **argv)
{
	uint64_t n, bytes;
	struct coll *c;
	int64_t *ids;
	struct mv_filter *f = NULL;
	int rc, fields = 0, bad = 0;
	uint64_t asof = 0;

	if (parse_u64(argv[2], PAYLOAD_MAX / 8, &n) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: GET <name> <n> <bytes> [fields] "
				 "[filter=<expr>]");
	}
	if (visible(cn, bytes, &rc) < 0)
		return rc;
	if (!(c = id_payload_coll(cn, argv[1], n, bytes, &rc)))
		return rc;
	ids = malloc(bytes + 1);
	if (!ids || read_payload(cn, ids, bytes) < 0) {
		free(ids);
		coll_put(c);
		return -1;
	}
	rc = 0;
	for (int i = 4; i < argc && !bad; i++) {
		if (!strcmp(argv[i], "fields")) {
			fields = 1;
		} else if (!strncmp(argv[i], "filter=", 7) && !f) {
			if (!(f = req_filter(cn, c, argv[i] + 7, &rc)))
				bad = 1;
		} else if (!strncmp(argv[i], "asof=", 5) && !asof) {
			if (req_asof(cn, c, argv[i] + 5, &asof, &rc) < 0)
				bad = 1;
		} else {
			rc = proto_err(cn, "usage: GET <name> <n> <bytes> "
				       "[fields] [filter=<expr>] [asof=<flush>]");
			bad = 1;
		}
	}
	if (!bad)
		rc = send_rows(cn, c, ids, n, fields, f, asof);
	mv_filter_free(f);
	free(ids);
	coll_put(c);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The live ids of c in order, remade only when they changed since the
 * last SCAN (c->scan_lock held): an export in chunks sorts once.
 */
static int scan_ids(struct coll *c)
{
	int64_t *all;
	size_t n = 0;

	pthread_rwlock_rdlock(&c->lock);
	if (c->scan_gen == c->gen + 1) {
		pthread_rwlock_unlock(&c->lock);
		return 0;
	}
	all = malloc((c->ids.n + 1) * sizeof(*all));
	if (all)
		for (size_t i = 0; i < c->ids.cap; i++)
			if (c->ids.t[i].id != MV_ID_NONE)
				all[n++] = c->ids.t[i].id;
	c->scan_gen = c->gen + 1;
	pthread_rwlock_unlock(&c->lock);
	if (!all)
		return -1;
	qsort(all, n, sizeof(*all), cmp_i64);
	free(c->scan_ids);
	c->scan_ids = all;
	c->scan_n = n;
	return 0;
}

/*
 * SCAN as of a flush (node_asof_scan_page: the first page of an export
 * sorts the ids of then, the next ones reuse them); consumes f and c's
 * reference.
 */
static int scan_asof(struct conn *cn, struct coll *c, long long after,
		     uint64_t limit, int fields, struct mv_filter *f,
		     uint64_t asof)
{
	struct mv_err e = { 0 };
	int64_t *page;
	size_t n;
	int rc;

	rc = node_asof_scan_page(c, asof, after, limit, f, &page, &n, &e);
	mv_filter_free(f);
	if (rc == 0)
		rc = send_rows(cn, c, page, n, fields, NULL, asof);
	else
		rc = reply_err(cn, &e);
	free(page);
	coll_put(c);
	return rc;
}

int cmd_scan(struct conn *cn, int argc, char **argv)
{
	struct coll *c;
	long long after;
	uint64_t limit;
	int64_t *page = NULL;
	size_t lo, n = 0;
	char *end;
	struct mv_filter *f = NULL;
	int rc, fields = 0;
	uint64_t asof = 0;

	if (visible(cn, 0, &rc) < 0)
		return rc;
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c)
		return unknown_coll(cn, argv[1]);
	errno = 0;
	after = strtoll(argv[2], &end, 10);
	if (*end || errno || parse_u64(argv[3], 1000000, &limit) < 0) {
		coll_put(c);
		return proto_err(cn, "usage: SCAN <name> <after> <limit> [fields] "
				 "[filter=<expr>]");
	}
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "fields")) {
			fields = 1;
		} else if (!strncmp(argv[i], "filter=", 7) && !f) {
			if (!(f = req_filter(cn, c, argv[i] + 7, &rc))) {
				coll_put(c);
				return rc;
			}
		} else if (!strncmp(argv[i], "asof=", 5) && !asof) {
			if (req_asof(cn, c, argv[i] + 5, &asof, &rc) < 0) {
				mv_filter_free(f);
				coll_put(c);
				return rc;
			}
		} else {
			mv_filter_free(f);
			coll_put(c);
			return proto_err(cn, "usage: SCAN <name> <after> <limit> "
					 "[fields] [filter=<expr>] [asof=<flush>]");
		}
	}
	if (asof && (asof = node_asof_now(c, asof)))
		return scan_asof(cn, c, after, limit, fields, f, asof);
	pthread_mutex_lock(&c->scan_lock);
	if (scan_ids(c) == 0) {
		lo = node_ids_after(c->scan_ids, c->scan_n, after);
		/* Only ids still live (and matching f), so that a page is
		 * empty only at the end even while rows are being deleted:
		 * with a filter the walk goes on past the rows that do not
		 * match until the page is full. */
		page = malloc(((c->scan_n - lo < limit ? c->scan_n - lo : limit)
			       + 1) * sizeof(*page));
		pthread_rwlock_rdlock(&c->lock);
		for (size_t i = lo; page && i < c->scan_n && n < limit; i++) {
			struct mv_idmap_ent *en =
				mv_idmap_get(&c->ids, c->scan_ids[i]);

			if (en && (!f || node_row_matches(en->seg, en->row, f)))
				page[n++] = c->scan_ids[i];
		}
		pthread_rwlock_unlock(&c->lock);
	}
	pthread_mutex_unlock(&c->scan_lock);
	mv_filter_free(f);
	if (!page) {
		coll_put(c);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	rc = send_rows(cn, c, page, n, fields, NULL, 0);
	free(page);
	coll_put(c);
	return rc;
}

/* HISTORY: a collection's retained flushes, a line each, then END. */
static int history_line(void *arg, const struct node_flushrec *r)
{
	struct conn *cn = arg;
	char line[160];
	int l = snprintf(line, sizeof(line), "%" PRIu64 "\t%" PRId64 "\t%"
			 PRIu64 "\t%" PRIu64 "\t%" PRId64 "\n", r->seq,
			 r->time_ms, r->inserted, r->deleted, r->rows);

	if (nbuf_reserve(&cn->out, (size_t)l) < 0)
		return MV_EINTERNAL;
	memcpy(cn->out.p + cn->out.len, line, (size_t)l);
	cn->out.len += (size_t)l;
	return 0;
}

int cmd_history(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };
	struct coll *c;
	int rc = 0;

	(void)argc;
	if (visible(cn, 0, &rc) < 0)
		return rc;
	c = node_coll_get(cn->nd, cn->user, argv[1]);
	if (!c)
		return unknown_coll(cn, argv[1]);
	cn->out.len = 0;
	rc = node_history(cn->nd, c, history_line, cn, &e);
	coll_put(c);
	if (rc == MV_EINTERNAL && !e.code)
		return reply(cn, "ERR INTERNAL out of memory");
	if (rc < 0)
		return reply_err(cn, &e);
	if (nbuf_reserve(&cn->out, 4) < 0)
		return reply(cn, "ERR INTERNAL out of memory");
	memcpy(cn->out.p + cn->out.len, "END\n", 4);
	cn->out.len += 4;
	return send_raw(cn, cn->out.p, cn->out.len);
}

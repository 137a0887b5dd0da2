/*
 * mv-search - k nearest neighbours of query vectors read from a file or
 * stdin.  Queries go to the node in chunks; each hit is printed as
 * query_no, rank, id and distance (TSV), plus scalar fields on request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bigmem.h"
#include "client.h"
#include "tool.h"
#include "vecio.h"

static const char usage[] =
	"mv-search [-qv] [-a ADDR] [-u USER] [-k K] [options] NAME [FILE]";
static const char help[] =
	"Search the collection NAME for the K nearest neighbours of each query\n"
	"vector of FILE (or stdin; formats as mv-insert).  Prints one line per\n"
	"hit: query_no, rank, id, distance (TSV); query_no from 0, rank from 1.\n"
	"l2 prints squared distances, ip and cosine similarities.\n"
	"\n"
	"  -k K               hits per query (default 10)\n"
	"      --format F     input format: fvecs, bvecs, npy, text, jsonl\n"
	"      --fields A,B   append the values of these scalar fields\n"
	"      --filter EXPR  only rows matching EXPR (Milvus expression syntax)\n"
	"      --as-of FLUSH|TIME  as it stood right after that flush (TIME:\n"
	"                     ISO 8601 UTC or @SECONDS, the last flush before)\n"
	"      --nprobe N     IVF lists to visit\n"
	"      --ef N         HNSW search depth (efSearch)\n"
	"      --param K=V    another search parameter (repeatable)\n";

enum {
	OPT_FORMAT = MV_OPT_TOOL, OPT_FIELDS, OPT_NPROBE, OPT_EF, OPT_PARAM,
	OPT_FILTER, OPT_ASOF
};

#define K_MAX 1000000
#define PARAMS_MAX 800
/* Queries per SEARCH: at most this many, and this many bytes of them. */
#define CHUNK_QUERIES 4096
#define CHUNK_BYTES (8u << 20)
/* Hits of one SEARCH, at most. */
#define CHUNK_HITS (4u << 20)

/* Append " key=value" to the parameter list; 0, or 64 after a message. */
static int add_param(struct mv_tool *t, char *params, const char *key,
		     const char *val)
{
	size_t len = strlen(params);
	const char *p;
	int n;

	for (p = key; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
			break;
	if (!*key || *p)
		return mv_tool_usage(t, "bad parameter name '%.40s'", key);
	for (p = val; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			break;
	if (!*val || *p)
		return mv_tool_usage(t, "bad value '%.40s' for parameter "
				     "'%.40s'", val, key);
	n = snprintf(params + len, PARAMS_MAX - len, "%s%s=%s",
		     len ? " " : "", key, val);
	if (n < 0 || (size_t)n >= PARAMS_MAX - len)
		return mv_tool_usage(t, "too many search parameters");
	return 0;
}

/* Print the hits of nq queries; text holds the field lines, or NULL. */
static void print_hits(struct mv_out *o, uint64_t qno, size_t nq, size_t k,
		       const int64_t *ids, const float *dist,
		       const char *text, const char *tend)
{
	for (size_t q = 0; q < nq; q++, qno++) {
		const int64_t *qi = ids + q * k;
		const float *qd = dist + q * k;

		for (size_t r = 0; r < k; r++) {
			char *p;

			if (qi[r] == INT64_MIN)	/* past the last hit */
				break;
			p = mv_out_room(o, 96);
			if (!p)
				return;
			p += mv_fmt_u64(p, qno);
			*p++ = '\t';
			p += mv_fmt_u64(p, r + 1);
			*p++ = '\t';
			p += mv_fmt_i64(p, qi[r]);
			*p++ = '\t';
			p += mv_fmt_g9(p, qd[r]);
			if (text) {
				const char *nl = memchr(text, '\n',
							tend - text);
				size_t len = nl ? (size_t)(nl - text) :
					(size_t)(tend - text);

				*p++ = '\t';
				o->len = p - o->buf;
				mv_out_write(o, text, len);
				text += nl ? len + 1 : len;
				mv_out_putc(o, '\n');
				continue;
			}
			*p++ = '\n';
			o->len = p - o->buf;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "fields", required_argument, NULL, OPT_FIELDS },
		{ "nprobe", required_argument, NULL, OPT_NPROBE },
		{ "ef", required_argument, NULL, OPT_EF },
		{ "param", required_argument, NULL, OPT_PARAM },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "as-of", required_argument, NULL, OPT_ASOF },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	struct mv_vreader_opts ro = { 0 };
	struct mv_coll_info info;
	struct mv_vreader *r = NULL;
	struct mv_vbatch b = { 0 }, b2 = { 0 }, *bb[2] = { &b, &b2 }, *flying = NULL;
	struct mv_progress prog;
	char params[PARAMS_MAX] = "", *text = NULL, *fparams = NULL;
	const char *name, *path, *eq, *filter = NULL, *sparams = params;
	const char *asof = NULL;
	int64_t k = 10, v, *ids = NULL;
	float *dist = NULL;
	uint64_t qno = 0;
	double t0 = 0;
	size_t qcap, tlen;
	int c, rc, fields = 0;
	long n;

	mv_tool_init(&t, "mv-search", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "k:", lopts)) != -1) {
		switch (c) {
		case 'k':
			if ((rc = mv_tool_int(&t, "-k", optarg, 1, K_MAX, &k)))
				return rc;
			break;
		case OPT_FORMAT:
			if (mv_vformat_parse(optarg, &ro.format) < 0)
				return mv_tool_usage(&t, "bad format '%.40s': "
						     "want fvecs, bvecs, npy, "
						     "text or jsonl", optarg);
			break;
		case OPT_FIELDS:
			for (const char *p = optarg; *p; p++)
				if (*p != ',' && *p != '_' &&
				    !(*p >= 'A' && *p <= 'Z') &&
				    !(*p >= 'a' && *p <= 'z') &&
				    !(*p >= '0' && *p <= '9'))
					return mv_tool_usage(&t, "bad --fields "
							     "'%.80s': want "
							     "names joined "
							     "by ','", optarg);
			if (fields || !*optarg)
				return mv_tool_usage(&t, "--fields given "
						     "twice or empty");
			if ((rc = add_param(&t, params, "fields", optarg)))
				return rc;
			fields = 1;
			break;
		case OPT_NPROBE:
		case OPT_EF:
			if ((rc = mv_tool_int(&t, c == OPT_EF ? "--ef" :
					      "--nprobe", optarg, 1, 1 << 30,
					      &v)))
				return rc;
			if ((rc = add_param(&t, params, c == OPT_EF ? "ef" :
					    "nprobe", optarg)))
				return rc;
			break;
		case OPT_FILTER:
			if (filter)
				return mv_tool_usage(&t, "--filter given twice");
			filter = optarg;
			break;
		case OPT_ASOF: {
			uint64_t fl;
			int64_t ms;

			if (asof)
				return mv_tool_usage(&t, "--as-of given twice");
			if (mv_asof_parse(optarg, &fl, &ms, &err) < 0)
				return mv_tool_usage(&t, "%s", err.msg);
			asof = optarg;
			break;
		}
		case OPT_PARAM: {
			char key[64];

			eq = strchr(optarg, '=');
			if (!eq || eq == optarg ||
			    (size_t)(eq - optarg) >= sizeof(key))
				return mv_tool_usage(&t, "bad --param '%.80s':"
						     " want NAME=VALUE",
						     optarg);
			memcpy(key, optarg, eq - optarg);
			key[eq - optarg] = '\0';
			if (!strcmp(key, "fields") || !strcmp(key, "filter") ||
			    !strcmp(key, "asof"))
				return mv_tool_usage(&t, "use --%s", key);
			if ((rc = add_param(&t, params, key, eq + 1)))
				return rc;
			break;
		}
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	if (argc - optind > 2)
		return mv_tool_usage(&t, "too many arguments");
	name = argv[optind];
	path = optind + 1 < argc ? argv[optind + 1] : "-";
	if ((rc = mv_name_check(name, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);

	if ((rc = mv_tool_connect(&t, &err)) < 0)
		goto out;
	if ((rc = mv_client_describe(t.client, name, &info, &err)) < 0)
		goto out;
	if (asof) {
		/* A time becomes the last flush at or before it. */
		uint64_t fl;
		char num[24];

		if ((rc = mv_asof_resolve(t.client, name, asof, &fl, &err)) < 0)
			goto out;
		snprintf(num, sizeof(num), "%" PRIu64, fl);
		if ((rc = add_param(&t, params, "asof", num)))
			return rc;
	}
	if (filter) {
		/* Parsed here first: a bad one fails before any query. */
		char *fp;

		if ((rc = mv_filter_check(&info, filter, &err)) < 0)
			goto out;
		if (!(fp = mv_filter_param(filter, &err))) {
			rc = err.code;
			goto out;
		}
		fparams = malloc(strlen(params) + strlen(fp) + 2);
		if (fparams)
			sprintf(fparams, "%s%s%s", params, *params ? " " : "",
				fp);
		free(fp);
		if (!fparams) {
			rc = mv_err_set(&err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		sparams = fparams;
	}
	ro.dim = info.dim;
	r = mv_vreader_open(path, &ro, &err);
	if (!r) {
		rc = err.code ? err.code : MV_ENOINPUT;
		goto out;
	}
	qcap = CHUNK_BYTES / ((size_t)info.dim * sizeof(float));
	if (qcap > CHUNK_QUERIES)
		qcap = CHUNK_QUERIES;
	if (qcap > CHUNK_HITS / (size_t)k)
		qcap = CHUNK_HITS / (size_t)k;
	if (qcap < 1)
		qcap = 1;
	ids = mv_big_malloc(qcap * k * sizeof(*ids));
	dist = mv_big_malloc(qcap * k * sizeof(*dist));
	if (!ids || !dist) {
		rc = mv_err_set(&err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = mv_vbatch_init(&b, qcap, info.dim, &err)) < 0 ||
	    (rc = mv_vbatch_init(&b2, qcap, info.dim, &err)) < 0)
		goto out;
	t0 = mv_tool_now();
	mv_progress_start(&prog, &t, mv_vreader_size(r));
	/*
	 * One SEARCH stays in flight while the next chunk is read and the
	 * previous answers are printed; bb[0] and bb[1] take turns.
	 */
	for (int turn = 0;; turn ^= 1) {
		struct mv_vbatch *cur = bb[turn];

		n = mv_vreader_read(r, cur, &err);
		if (n > 0 && (rc = mv_client_search_send(t.client, name, info.dim,
					k, cur->n, cur->vecs, sparams, &err)) < 0)
			break;
		if (flying) {
			rc = mv_client_search_recv(t.client, k, flying->n, ids,
						   dist, fields ? &text : NULL,
						   &tlen, &err);
			if (rc < 0)
				break;
			print_hits(&t.out, qno, flying->n, k, ids, dist, text,
				   text ? text + tlen : NULL);
			free(text);
			text = NULL;
			qno += flying->n;
			/* The answers of each chunk go out as soon as they come. */
			mv_out_flush(&t.out);
			if ((rc = mv_out_status(&t.out, &err)) < 0)
				break;
			mv_progress_update(&prog, qno, mv_vreader_pos(r));
		}
		flying = n > 0 ? cur : NULL;
		if (n <= 0)
			break;
	}
	mv_progress_end(&prog);
	if (n < 0)
		rc = (int)n;
	if (rc == 0) {
		double dt = mv_tool_now() - t0;

		mv_tool_info(&t, "%" PRIu64 " queries in %.2f s (%.0f QPS)",
			     qno, dt, dt > 0 ? qno / dt : 0.0);
	}
out:
	mv_vbatch_release(&b);
	mv_vbatch_release(&b2);
	mv_vreader_close(r);
	free(ids);
	free(dist);
	free(fparams);
	return mv_tool_exit(&t, rc, &err);
}

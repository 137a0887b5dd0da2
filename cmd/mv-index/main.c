/*
 * mv-index - build, inspect or drop a collection's index.  The node builds
 * in the background; this tool starts the build and, unless --no-wait,
 * follows it to the end with a progress bar on a terminal.  Safe from cron:
 * a build already under way makes it exit 75, naming that build.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "client.h"
#include "index.h"
#include "tool.h"

static const char usage[] =
	"mv-index [-qv] [-a ADDR] [-u USER] NAME --type SPEC [--param K=V]...\n"
	"       [--no-wait]\n"
	"       mv-index NAME --status | --drop | --compact | --param K=V...";
static const char help[] =
	"Build an index over the flushed rows of NAME; searches use it once\n"
	"it is built and brute force meanwhile.\n"
	"\n"
	"      --type SPEC     a FAISS index_factory string (Flat, IVF1024,Flat,\n"
	"                      IVF1024,PQ16, IVF1024,SQ8, HNSW32, OPQ16,IVF256,PQ16\n"
	"                      ...) or a Milvus name: FLAT, IVF_FLAT, IVF_SQ8 and\n"
	"                      IVF_PQ (--param nlist=N [m=N]), HNSW (--param M=N\n"
	"                      [efConstruction=N])\n"
	"      --param K=V     build setting (nlist, m, M, efConstruction) or\n"
	"                      search default (nprobe, ef); alone, without\n"
	"                      --type, sets the search defaults of the index\n"
	"      --no-wait       start the build and return at once\n"
	"      --status        print the index and the last build as key=value\n"
	"      --drop          drop the index: back to brute force\n"
	"      --compact       merge small segments and drop deleted rows now\n";

enum {
	OPT_TYPE = MV_OPT_TOOL, OPT_PARAM, OPT_NOWAIT, OPT_STATUS, OPT_DROP,
	OPT_COMPACT
};

static void bar(double p, double elapsed)
{
	int w = 40, full = (int)(p * w + 0.5);

	fprintf(stderr, "\r[");
	for (int i = 0; i < w; i++)
		fputc(i < full ? '#' : ' ', stderr);
	fprintf(stderr, "] %3d%% %4.0fs", (int)(p * 100), elapsed);
	fflush(stderr);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "param", required_argument, NULL, OPT_PARAM },
		{ "no-wait", no_argument, NULL, OPT_NOWAIT },
		{ "status", no_argument, NULL, OPT_STATUS },
		{ "drop", no_argument, NULL, OPT_DROP },
		{ "compact", no_argument, NULL, OPT_COMPACT },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	const char *type = NULL, *name;
	char params[512] = "", factory[128], line[1024], reply[1024];
	char state[32], spec[160];
	int c, rc, nowait = 0, status = 0, drop = 0, compact = 0, show, waits = 1;
	size_t plen = 0;
	double t0;

	mv_tool_init(&t, "mv-index", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_TYPE:
			type = optarg;
			break;
		case OPT_PARAM:
			if (!strchr(optarg, '=') || optarg[0] == '=' ||
			    strchr(optarg, ' '))
				return mv_tool_usage(&t, "bad --param '%.80s': "
						     "want K=V", optarg);
			plen += (size_t)snprintf(params + plen,
						 sizeof(params) - plen, "%s%s",
						 plen ? " " : "", optarg);
			if (plen >= sizeof(params))
				return mv_tool_usage(&t, "too many --param");
			break;
		case OPT_NOWAIT:
			nowait = 1;
			break;
		case OPT_STATUS:
			status = 1;
			break;
		case OPT_DROP:
			drop = 1;
			break;
		case OPT_COMPACT:
			compact = 1;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	if (argc - optind > 1)
		return mv_tool_usage(&t, "too many arguments");
	name = argv[optind];
	if (status + drop + compact + (type != NULL) > 1)
		return mv_tool_usage(&t, "--type, --status, --drop and --compact "
				     "exclude each other");
	if (!type && !status && !drop && !compact && !plen)
		return mv_tool_usage(&t, "missing --type SPEC");
	if ((rc = mv_name_check(name, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	if (type && (rc = mv_index_spec(type, params, factory, sizeof(factory),
					&err)) < 0)
		return mv_tool_usage(&t, "%s", err.msg);
	/* Through a master: the node of the collection's builds. */
	t.coll = name;
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);

	if (status) {
		rc = snprintf(line, sizeof(line), "INDEXSTATUS %s", name) < 0;
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		if (rc == 0) {
			/* One key=value a line: easy for scripts and eyes. */
			char *p = reply, *sp;
			while ((sp = strchr(p, ' ')) && strncmp(p, "error=", 6)) {
				printf("%.*s\n", (int)(sp - p), p);
				p = sp + 1;
			}
			printf("%s\n", p);
		}
		return mv_tool_exit(&t, rc, &err);
	}
	if (compact) {
		int64_t merged = 0, segs = 0;

		snprintf(line, sizeof(line), "COMPACT %s", name);
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		if (rc == 0) {
			mv_reply_get_i64(reply, "merged", &merged);
			mv_reply_get_i64(reply, "segments", &segs);
			mv_tool_info(&t, "merged %lld segments; '%s' has %lld",
				     (long long)merged, name, (long long)segs);
		}
		return mv_tool_exit(&t, rc, &err);
	}
	if (drop) {
		snprintf(line, sizeof(line), "INDEXDROP %s", name);
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		if (rc == 0)
			mv_tool_info(&t, "dropped the index of '%s'", name);
		return mv_tool_exit(&t, rc, &err);
	}
	if (!type) {
		snprintf(line, sizeof(line), "INDEXSET %s %s", name, params);
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		return mv_tool_exit(&t, rc, &err);
	}
	snprintf(line, sizeof(line), "INDEX %s %s%s%s", name, factory,
		 plen ? " " : "", params);
	rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
	if (rc < 0)
		return mv_tool_exit(&t, rc, &err);
	if (nowait) {
		mv_tool_info(&t, "building %s on '%s' in the background",
			     factory, name);
		return mv_tool_exit(&t, 0, &err);
	}
	show = !t.quiet && isatty(2);
	t0 = mv_tool_now();
	for (;;) {
		double p = 0;
		char prog[32];

		/* The node answers as the build ends, or after 200 ms. */
		snprintf(line, sizeof(line), "INDEXSTATUS %s%s", name,
			 waits ? " wait=200" : "");
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		if (rc == MV_EUSAGE && waits) {
			waits = 0;	/* a node before wait=: poll */
			memset(&err, 0, sizeof(err));
			continue;
		}
		if (rc < 0)
			break;
		if (mv_reply_get(reply, "state", state, sizeof(state)) < 0 ||
		    mv_reply_get(reply, "spec", spec, sizeof(spec)) < 0) {
			rc = mv_err_set(&err, MV_EPROTO, "malformed status '%.80s'",
					reply);
			break;
		}
		if (mv_reply_get(reply, "progress", prog, sizeof(prog)) == 0)
			sscanf(prog, "%lf", &p);
		if (show)
			bar(p, mv_tool_now() - t0);
		if (strcmp(state, "running"))
			break;
		if (!waits)
			usleep(200 * 1000);
	}
	if (show)
		fprintf(stderr, "\n");
	if (rc == 0 && strcmp(state, "done")) {
		const char *e = strstr(reply, " error=");
		const char *w = strstr(reply, " code=");
		int code = MV_ESERVER;

		/* Disk full, storage away: 75, try again later; anything
		 * else the node refused, 1 (a node without code=: 1). */
		if (w && (!e || w < e) &&
		    mv_client_code(w + 6, strcspn(w + 6, " ")) == MV_EAGAIN)
			code = MV_EAGAIN;
		rc = mv_err_set(&err, code, "index build failed: %s",
				e ? e + 7 : state);
	} else if (rc == 0) {
		mv_tool_info(&t, "built %s on '%s' in %.1f s", factory, name,
			     mv_tool_now() - t0);
	}
	return mv_tool_exit(&t, rc, &err);
}

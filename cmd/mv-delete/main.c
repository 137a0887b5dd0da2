/*
 * mv-delete - delete the rows of the ids read from a file or stdin, one per
 * line.  Flushed at the end like mv-insert (--batch and --session as
 * there); tells how many rows it removed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "tool.h"
#include "vecio.h"

static const char usage[] =
	"mv-delete [-qv] [-a ADDR] [-u USER] [--batch N | --session S] NAME "
	"[FILE]\n"
	"mv-delete [-qv] [-a ADDR] [-u USER] [--session S] --filter EXPR NAME";
static const char help[] =
	"Delete from the collection NAME the rows whose ids FILE (or stdin)\n"
	"holds, one per line.  All of it is one atomic batch, flushed at the\n"
	"end; then \"mv-delete: removed N rows\" goes to stderr (not with -q).\n"
	"\n"
	"      --filter EXPR  delete the rows matching EXPR (Milvus expression\n"
	"                     syntax) instead of ids; one atomic batch\n"
	"      --batch N      commit every N ids, each batch atomic\n"
	"      --session S    leave the deletes in the named session S, for\n"
	"                     mv-flush S (or mv-flush --abort S)\n";

enum { OPT_BATCH = MV_OPT_TOOL, OPT_SESSION, OPT_FILTER };

/* Ids sent in one DELETE: 4 MiB. */
#define CHUNK_IDS (512u << 10)

struct del {
	struct mv_tool *t;
	const char *name;
	int64_t batch;
	const char *session;
	const char *filter;
	uint64_t pending;	/* ids sent since the last commit */
	uint64_t sent;
	uint64_t removed;	/* rows removed by the commits */
	int commits;
};

static int commit(struct del *s, struct mv_err *err)
{
	int64_t ins = 0, del = 0;
	int rc;

	rc = mv_client_flush(s->t->client, NULL, &ins, &del, err);
	if (rc < 0)
		return mv_tool_in_doubt(s->t, rc, err, "check with mv-get "
					"(the ids) or mv-ls (rows)");
	s->removed += del;
	s->pending = 0;
	s->commits++;
	return 0;
}

static int run(struct del *s, struct mv_idreader *idr, struct mv_err *err)
{
	struct mv_coll_info info;
	int64_t *ids;
	size_t want;
	long n;
	int rc;

	/* An unknown collection is an error even for an empty input. */
	rc = mv_client_describe(s->t->client, s->name, &info, err);
	if (rc < 0)
		return rc;
	if (s->filter && (rc = mv_filter_check(&info, s->filter, err)) < 0)
		return rc;
	if (s->session && (rc = mv_client_session(s->t->client, s->session,
						  err)) < 0)
		return rc;
	if (s->filter) {
		/* The node finds the matching rows: pending deletes. */
		int64_t n;

		rc = mv_client_delete_filter(s->t->client, s->name, s->filter,
					     &n, err);
		if (rc < 0)
			return rc;
		mv_tool_info(s->t, "%" PRId64 " row%s matched --filter", n,
			     n == 1 ? "" : "s");
		s->pending = s->sent = (uint64_t)n;
		if (s->session)
			return mv_client_handoff(s->t->client, err);
		return commit(s, err);
	}
	ids = malloc(CHUNK_IDS * sizeof(*ids));
	if (!ids)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	for (;;) {
		want = CHUNK_IDS;
		if (s->batch && (uint64_t)s->batch - s->pending < want)
			want = s->batch - s->pending;
		n = mv_idreader_read(idr, ids, want, err);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		rc = mv_client_delete(s->t->client, s->name, n, ids, err);
		if (rc < 0)
			break;
		s->pending += n;
		s->sent += n;
		if (s->batch && s->pending >= (uint64_t)s->batch &&
		    (rc = commit(s, err)) < 0)
			break;
	}
	free(ids);
	if (rc == 0 && s->session)
		rc = mv_client_handoff(s->t->client, err);
	if (rc < 0 || s->session)
		return rc;
	if (s->batch && s->pending == 0 && s->sent > 0)
		return 0;
	return commit(s, err);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "session", required_argument, NULL, OPT_SESSION },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	struct mv_idreader *idr = NULL;
	struct del s;
	const char *path;
	int c, rc;

	memset(&s, 0, sizeof(s));
	mv_tool_init(&t, "mv-delete", usage, help);
	s.t = &t;
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_BATCH:
			if ((rc = mv_tool_int(&t, "--batch", optarg, 1,
					      INT64_MAX, &s.batch)))
				return rc;
			break;
		case OPT_SESSION:
			s.session = optarg;
			break;
		case OPT_FILTER:
			if (s.filter)
				return mv_tool_usage(&t, "--filter given twice");
			s.filter = optarg;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	if (argc - optind > 2)
		return mv_tool_usage(&t, "too many arguments");
	if (s.batch && s.session)
		return mv_tool_usage(&t, "--batch and --session exclude each "
				     "other");
	if (s.filter && s.batch)
		return mv_tool_usage(&t, "--batch and --filter exclude each "
				     "other");
	if (s.filter && argc - optind > 1)
		return mv_tool_usage(&t, "--filter reads no ids");
	s.name = argv[optind];
	path = optind + 1 < argc ? argv[optind + 1] : "-";
	if ((rc = mv_name_check(s.name, &err)) < 0 ||
	    (s.session && (rc = mv_name_check(s.session, &err)) < 0))
		return mv_tool_exit(&t, rc, &err);
	if (!s.filter && !(idr = mv_idreader_open(path, &err)))
		return mv_tool_exit(&t, err.code ? err.code : MV_ENOINPUT,
				    &err);
	t.session = s.session;	/* through a master: the session's node */
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		goto out;
	rc = run(&s, idr, &err);
	if (rc < 0 && s.batch && s.commits) {
		mv_tool_err(&t, "%s", err.msg);
		mv_tool_err(&t, "%" PRIu64 " rows removed by the %d batch%s "
			    "committed before the error", s.removed,
			    s.commits, s.commits == 1 ? "" : "es");
		if (idr)
			mv_idreader_close(idr);
		return mv_tool_exit(&t, rc, NULL);
	} else if (rc == 0 && s.session)
		mv_tool_info(&t, "%" PRIu64 " ids queued in session '%s'",
			     s.sent, s.session);
	else if (rc == 0)
		mv_tool_note(&t, "removed %" PRIu64 " row%s", s.removed,
			     s.removed == 1 ? "" : "s");
out:
	if (idr)
		mv_idreader_close(idr);
	return mv_tool_exit(&t, rc, &err);
}

/*
 * mv-flush - commit or abort named sessions left by `mv-insert --session`
 * and `mv-delete --session`, each atomically, or list the open ones.
 */
#include <inttypes.h>
#include <stdio.h>
#include "client.h"
#include "tool.h"

static const char usage[] =
	"mv-flush [-qv] [-a ADDR] [-u USER] [--abort] SESSION...\n"
	"       mv-flush [-qv] [-a ADDR] [-u USER] --list [--header]";
static const char help[] =
	"Commit the named sessions SESSION..., each atomically: their rows\n"
	"become visible to every search at once.\n"
	"\n"
	"      --abort        drop the sessions instead of committing them\n"
	"      --list         print the open sessions as TSV: session,\n"
	"                     collection, rows, idle seconds\n"
	"      --header       with --list, print a header line first\n";

enum { OPT_ABORT = MV_OPT_TOOL, OPT_LIST, OPT_HEADER };

static int print_line(void *arg, char *line)
{
	struct mv_out *o = arg;

	mv_out_str(o, line);
	mv_out_putc(o, '\n');
	return mv_out_status(o, NULL) == MV_TOOL_EPIPE ? MV_TOOL_EPIPE : 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "abort", no_argument, NULL, OPT_ABORT },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "header", no_argument, NULL, OPT_HEADER },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	char line[16 + MV_NAME_MAX], reply[256];
	int64_t ins, del;
	int c, rc = 0, first = 0, abort_ = 0, list = 0, header = 0;

	mv_tool_init(&t, "mv-flush", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_ABORT:
			abort_ = 1;
			break;
		case OPT_LIST:
			list = 1;
			break;
		case OPT_HEADER:
			header = 1;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (list && (abort_ || optind < argc))
		return mv_tool_usage(&t, "--list takes no sessions");
	if (header && !list)
		return mv_tool_usage(&t, "--header goes with --list");
	if (!list && optind == argc)
		return mv_tool_usage(&t, "missing session name");
	for (int i = optind; i < argc; i++)
		if ((rc = mv_name_check(argv[i], &err)) < 0)
			return mv_tool_exit(&t, rc, &err);
	/* Through a master: the node of each session named, in turn. */
	t.session = list ? NULL : argv[optind];
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);

	if (list) {
		if (header)
			mv_out_str(&t.out,
				   "session\tcollection\trows\tidle_seconds\n");
		rc = mv_client_lines(t.client, "SESSIONS", print_line, &t.out,
				     &err);
		return mv_tool_exit(&t, rc, &err);
	}
	for (int i = optind; i < argc; i++) {
		rc = 0;
		if (t.master && i > optind) {
			mv_client_free(t.client);
			t.client = NULL;
			t.session = argv[i];
			rc = mv_tool_connect(&t, &err);
		}
		if (rc < 0) {
			/* Below: the sessions done before are counted. */
		} else if (abort_) {
			snprintf(line, sizeof(line), "ABORT %s", argv[i]);
			rc = mv_client_cmd(t.client, line, reply,
					   sizeof(reply), &err);
		} else {
			ins = del = 0;
			rc = mv_client_flush(t.client, argv[i], &ins, &del,
					     &err);
			rc = mv_tool_in_doubt(&t, rc, &err, "check with mv-get "
					      "(its ids) or mv-ls (rows)");
		}
		if (rc == MV_ESERVER) {
			/* No such session: say so, go on with the others. */
			mv_tool_err(&t, "%s", err.msg);
			mv_err_clear(&err);
			if (!first)
				first = rc;
			continue;
		}
		if (rc < 0) {
			if (i > optind)
				mv_tool_err(&t, "%d sessions done before the "
					    "error", i - optind);
			return mv_tool_exit(&t, rc, &err);
		}
		if (abort_)
			mv_tool_info(&t, "aborted '%s'", argv[i]);
		else
			mv_tool_info(&t, "committed '%s': %" PRId64
				     " rows inserted, %" PRId64 " removed",
				     argv[i], ins, del);
	}
	return mv_tool_exit(&t, first, NULL);
}

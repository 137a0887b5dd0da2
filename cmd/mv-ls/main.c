/*
 * mv-ls - list collections as TSV: name, dim, metric, rows, segments and
 * index, one line each (the LS verb of the node).
 */
#include <stdio.h>
#include "client.h"
#include "tool.h"

static const char usage[] = "mv-ls [-qv] [-a ADDR] [-u USER] [--header] [NAME]";
static const char help[] =
	"List the collections (or only NAME), one TSV line each:\n"
	"name, dim, metric, rows, segments, index.\n"
	"\n"
	"      --header       print a header line first\n";

enum { OPT_HEADER = MV_OPT_TOOL };

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
		{ "header", no_argument, NULL, OPT_HEADER },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	char line[16 + MV_NAME_MAX];
	const char *name = NULL;
	int c, rc, header = 0;

	mv_tool_init(&t, "mv-ls", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_HEADER:
			header = 1;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (argc - optind > 1)
		return mv_tool_usage(&t, "too many arguments");
	if (optind < argc) {
		name = argv[optind];
		if ((rc = mv_name_check(name, &err)) < 0)
			return mv_tool_exit(&t, rc, &err);
	}
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	snprintf(line, sizeof(line), name ? "LS %s" : "LS", name);
	if (header)
		mv_out_str(&t.out, "name\tdim\tmetric\trows\tsegments\tindex\n");
	rc = mv_client_lines(t.client, line, print_line, &t.out, &err);
	return mv_tool_exit(&t, rc, &err);
}

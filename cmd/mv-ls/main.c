/*
 * mv-ls - list collections as TSV: name, dim, metric, rows, segments and
 * index, one line each (the LS verb of the node); with --history, the
 * retained flushes of one (HISTORY).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "client.h"
#include "tool.h"

static const char usage[] =
	"mv-ls [-qv] [-a ADDR] [-u USER] [--header] [NAME | --history NAME]";
static const char help[] =
	"List the collections (or only NAME), one TSV line each:\n"
	"name, dim, metric, rows, segments, index.\n"
	"\n"
	"      --header       print a header line first\n"
	"      --history      the retained flushes of NAME instead: flush,\n"
	"                     time (ISO 8601 UTC), inserted, deleted, rows\n";

enum { OPT_HEADER = MV_OPT_TOOL, OPT_HISTORY };

/* "seq ms inserted deleted rows" from HISTORY, time as ISO 8601 UTC. */
static int print_flush(void *arg, char *line)
{
	struct mv_out *o = arg;
	char *ms = strchr(line, '\t'), *rest, *end, iso[64];
	long long t;
	time_t s;
	struct tm tm;

	if (!ms || !(rest = strchr(ms + 1, '\t')))
		return MV_EPROTO;
	t = strtoll(ms + 1, &end, 10);
	if (end != rest || t < 0)
		return MV_EPROTO;
	s = (time_t)(t / 1000);
	if (!gmtime_r(&s, &tm))
		return MV_EPROTO;
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
	*ms = '\0';
	mv_out_str(o, line);
	mv_out_putc(o, '\t');
	mv_out_str(o, iso);
	snprintf(iso, sizeof(iso), ".%03lldZ", t % 1000);
	mv_out_str(o, iso);
	mv_out_str(o, rest);
	mv_out_putc(o, '\n');
	return mv_out_status(o, NULL) == MV_TOOL_EPIPE ? MV_TOOL_EPIPE : 0;
}

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
		{ "history", no_argument, NULL, OPT_HISTORY },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	char line[16 + MV_NAME_MAX];
	const char *name = NULL;
	int c, rc, header = 0, history = 0;

	mv_tool_init(&t, "mv-ls", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_HEADER:
			header = 1;
			break;
		case OPT_HISTORY:
			history = 1;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (argc - optind > 1)
		return mv_tool_usage(&t, "too many arguments");
	if (history && optind == argc)
		return mv_tool_usage(&t, "--history needs a collection NAME");
	if (optind < argc) {
		name = argv[optind];
		if ((rc = mv_name_check(name, &err)) < 0)
			return mv_tool_exit(&t, rc, &err);
	}
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	if (history) {
		snprintf(line, sizeof(line), "HISTORY %s", name);
		if (header)
			mv_out_str(&t.out, "flush\ttime\tinserted\tdeleted"
				   "\trows\n");
		rc = mv_client_lines(t.client, line, print_flush, &t.out,
				     &err);
		if (rc == MV_EPROTO && !err.code)
			mv_err_set(&err, MV_EPROTO, "malformed reply to "
				   "HISTORY");
		return mv_tool_exit(&t, rc, &err);
	}
	snprintf(line, sizeof(line), name ? "LS %s" : "LS", name);
	if (header)
		mv_out_str(&t.out, "name\tdim\tmetric\trows\tsegments\tindex\n");
	rc = mv_client_lines(t.client, line, print_line, &t.out, &err);
	return mv_tool_exit(&t, rc, &err);
}

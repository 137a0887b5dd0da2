/*
 * mv-stat - print the nodes of the cluster as TSV: address, state, load,
 * memory and segments held, one line each: a master's NODES, or a node's
 * own STAT (the embedded node is the one line).  --forget N asks a
 * master to drop a member stopped for good.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "client.h"
#include "tool.h"

static const char usage[] =
	"mv-stat [-qv] [-a ADDR] [-u USER] [--header] [--limits] [--io]\n"
	"       mv-stat [-qv] -a MASTER --forget N|HOST:PORT";
static const char help[] =
	"Print the nodes, one TSV line each: address, state, load (open\n"
	"connections), memory (resident bytes), segments held.  Given a\n"
	"master's address, every node of the cluster (state up or down).\n"
	"\n"
	"      --header       print a header line first\n"
	"      --limits       add held (the memory memory_limit counts) and\n"
	"                     limit (memory_limit, 0 none)\n"
	"      --io           add store_read (bytes the node read from its\n"
	"                     segment store since it started) and\n"
	"                     revision_reads (etcd revision reads that\n"
	"                     reads waited for; a node only)\n"
	"      --forget N     a master only: node N (or the one listed at\n"
	"                     HOST:PORT), stopped for good, is no longer a\n"
	"                     member (refused while it is live; its number\n"
	"                     is never given again)\n";

enum { OPT_HEADER = MV_OPT_TOOL, OPT_LIMITS, OPT_IO, OPT_FORGET };

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
		{ "limits", no_argument, NULL, OPT_LIMITS },
		{ "io", no_argument, NULL, OPT_IO },
		{ "forget", required_argument, NULL, OPT_FORGET },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	int c, rc, header = 0, limits = 0, io = 0;
	const char *forget = NULL;
	char req[300];

	mv_tool_init(&t, "mv-stat", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_HEADER:
			header = 1;
			break;
		case OPT_LIMITS:
			limits = 1;
			break;
		case OPT_IO:
			io = 1;
			break;
		case OPT_FORGET: {
			int64_t no;

			/*
			 * A number, or the address mv-stat lists, compared
			 * as text: never resolved, as its host may be gone.
			 */
			if (!strchr(optarg, ':')) {
				if ((rc = mv_tool_int(&t, "--forget", optarg,
						      0, UINT32_MAX, &no)))
					return rc;
			} else if (strlen(optarg) > 255 ||
				   strpbrk(optarg, " \t\r\n")) {
				return mv_tool_usage(&t, "bad address '%.40s' "
						     "for --forget", optarg);
			}
			forget = optarg;
			break;
		}
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind < argc)
		return mv_tool_usage(&t, "too many arguments");
	if (forget && (header || limits || io))
		return mv_tool_usage(&t, "--forget takes no other option");
	t.at_master = 1;
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	/* Usage known only once connected: the connection is closed too. */
	if ((io && t.master) || (forget && !t.master)) {
		rc = mv_tool_usage(&t, io ? "--io needs a node's address, not "
				   "a master's" : "--forget needs a master's "
				   "address, not a node's");
		mv_tool_exit(&t, 0, NULL);
		return rc;
	}
	if (forget) {
		char reply[512];

		snprintf(req, sizeof(req), "FORGET %s", forget);
		rc = mv_client_cmd(t.client, req, reply, sizeof(reply), &err);
		return mv_tool_exit(&t, rc, &err);
	}
	if (header) {
		mv_out_str(&t.out, "address\tstate\tload\tmemory\tsegments");
		mv_out_str(&t.out, limits ? "\theld\tlimit" : "");
		mv_out_str(&t.out, io ? "\tstore_read\trevision_reads\n" : "\n");
	}
	/* A master lists every node of the cluster; a node itself. */
	snprintf(req, sizeof(req), "%s%s%s", t.master ? "NODES" : "STAT",
		 limits ? " limits" : "", io ? " io" : "");
	rc = mv_client_lines(t.client, req, print_line, &t.out, &err);
	return mv_tool_exit(&t, rc, &err);
}

/*
 * mv-flush - commit or abort named sessions left by `mv-insert --session`
 * and `mv-delete --session`, each atomically, or list the open ones.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The nodes a master's NODES lists, one a line: address, state, ... */
struct node_ent {
	char addr[256];
	int up;
};

struct nodes {
	struct node_ent *v;
	size_t n, cap;
};

static int add_node(void *arg, char *line)
{
	struct nodes *ns = arg;
	char *state = strchr(line, '\t');

	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 8;
		struct node_ent *v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return MV_EINTERNAL;
		ns->v = v;
		ns->cap = cap;
	}
	if (state)
		*state++ = '\0';
	snprintf(ns->v[ns->n].addr, sizeof(ns->v[0].addr), "%s", line);
	ns->v[ns->n++].up = state && !strncmp(state, "up\t", 3);
	return 0;
}

/*
 * --list through a master: every node's sessions (a session lives on one
 * node), node by node.  A node listed down is skipped, and one up that
 * does not answer passed over; each is said so on stderr, and the list
 * is then incomplete: 75 once the others are printed.
 */
static int list_cluster(struct mv_tool *t, struct mv_err *err)
{
	struct nodes ns = { 0 };
	size_t missed = 0;
	int rc;

	rc = mv_client_lines(t->client, "NODES", add_node, &ns, err);
	if (rc == MV_EINTERNAL && !err->code)
		mv_err_set(err, rc, "out of memory");
	mv_client_free(t->client);
	t->client = NULL;
	t->at_master = 0;
	for (size_t i = 0; rc == 0 && i < ns.n; i++) {
		const char *addr = ns.v[i].addr;
		struct mv_err e = { 0 };

		if (!ns.v[i].up) {
			mv_tool_err(t, "node %s is down: its sessions are not "
				    "listed", addr);
			missed++;
			continue;
		}
		t->addr = addr;
		rc = mv_tool_connect(t, &e);
		if (rc == 0)
			rc = mv_client_lines(t->client, "SESSIONS", print_line,
					     &t->out, &e);
		mv_client_free(t->client);
		t->client = NULL;
		if (rc < 0 && rc != MV_TOOL_EPIPE) {
			mv_tool_err(t, "%s: its sessions are not listed",
				    e.msg);
			missed++;
			rc = 0;
		}
	}
	t->addr = NULL;
	free(ns.v);
	if (rc == 0 && missed)
		rc = mv_err_set(err, MV_EAGAIN, "the list lacks the sessions "
				"of %zu node%s of %zu", missed,
				missed > 1 ? "s" : "", ns.n);
	return rc;
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
	/*
	 * Through a master: the node of each session named, in turn; the
	 * list stays at the master to ask every node.
	 */
	t.session = list ? NULL : argv[optind];
	t.at_master = list;
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);

	if (list) {
		if (header)
			mv_out_str(&t.out,
				   "session\tcollection\trows\tidle_seconds\n");
		rc = t.master ? list_cluster(&t, &err) :
			mv_client_lines(t.client, "SESSIONS", print_line,
					&t.out, &err);
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

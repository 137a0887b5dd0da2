/*
 * mv-drop - drop collections: their rows, files and index go, and the open
 * sessions on them are aborted.  No flush is needed.
 */
#include <stdio.h>
#include "client.h"
#include "tool.h"

static const char usage[] = "mv-drop [-qv] [-a ADDR] [-u USER] NAME...";
static const char help[] =
	"Drop the collections NAME...: rows, files and index are removed and\n"
	"open sessions on them are aborted.\n";

int main(int argc, char **argv)
{
	struct mv_tool t;
	struct mv_err err = { 0 };
	char line[16 + MV_NAME_MAX], reply[256];
	int c, rc, first = 0;

	mv_tool_init(&t, "mv-drop", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", NULL)) != -1)
		return mv_tool_status(&t);
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	for (int i = optind; i < argc; i++)
		if ((rc = mv_name_check(argv[i], &err)) < 0)
			return mv_tool_exit(&t, rc, &err);
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	for (int i = optind; i < argc; i++) {
		snprintf(line, sizeof(line), "DROP %s", argv[i]);
		rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
		if (rc == MV_ESERVER) {
			/* Unknown: say so and go on with the other names. */
			mv_tool_err(&t, "%s", err.msg);
			mv_err_clear(&err);
			if (!first)
				first = rc;
			continue;
		}
		if (rc < 0)
			return mv_tool_exit(&t, rc, &err);
		mv_tool_info(&t, "dropped '%s'", argv[i]);
	}
	return mv_tool_exit(&t, first, NULL);
}

/*
 * mv-create - create a collection of vectors of one dimension and metric,
 * with optional scalar fields.  Creating needs no flush.
 */
#include <stdio.h>
#include <string.h>
#include "client.h"
#include "tool.h"

static const char usage[] =
	"mv-create [-qv] [-a ADDR] [-u USER] NAME --dim D [--metric M]\n"
	"       [--field NAME:TYPE]... [--if-not-exists]";
static const char help[] =
	"Create the collection NAME.\n"
	"\n"
	"      --dim D            dimension of the vectors (1 to 65536)\n"
	"      --metric M         l2 (squared Euclidean, the default), ip (inner\n"
	"                         product) or cosine\n"
	"      --field NAME:TYPE  a scalar field; TYPE is int64, float64,\n"
	"                         string or bool (repeatable, in order)\n"
	"      --if-not-exists    succeed if NAME exists with this dim and metric\n";

enum {
	OPT_DIM = MV_OPT_TOOL, OPT_METRIC, OPT_FIELD, OPT_IFNOT
};

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dim", required_argument, NULL, OPT_DIM },
		{ "metric", required_argument, NULL, OPT_METRIC },
		{ "field", required_argument, NULL, OPT_FIELD },
		{ "if-not-exists", no_argument, NULL, OPT_IFNOT },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	struct mv_field fields[MV_FIELDS_MAX];
	struct mv_coll_info info;
	enum mv_metric metric = MV_L2;
	char line[256 + MV_FIELDS_MAX * (MV_NAME_MAX + 10)], reply[256];
	const char *name;
	int64_t dim = 0, exists = 0;
	int c, rc, ifnot = 0, nf = 0;
	size_t len;

	mv_tool_init(&t, "mv-create", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_DIM:
			if ((rc = mv_tool_int(&t, "--dim", optarg, 1,
					      MV_DIM_MAX, &dim)))
				return rc;
			break;
		case OPT_METRIC:
			if (mv_metric_parse(optarg, &metric) < 0)
				return mv_tool_usage(&t, "bad metric '%.40s': "
						     "want l2, ip or cosine",
						     optarg);
			break;
		case OPT_FIELD: {
			const char *colon = strchr(optarg, ':');
			size_t nlen = colon ? (size_t)(colon - optarg) : 0;

			if (nf == MV_FIELDS_MAX)
				return mv_tool_usage(&t, "more than %d fields",
						     MV_FIELDS_MAX);
			if (!colon || nlen > MV_NAME_MAX ||
			    mv_ftype_parse(colon + 1, &fields[nf].type) < 0)
				return mv_tool_usage(&t, "bad field '%.80s': "
						     "want NAME:TYPE, TYPE "
						     "int64, float64, "
						     "string or bool",
						     optarg);
			memcpy(fields[nf].name, optarg, nlen);
			fields[nf].name[nlen] = '\0';
			if (mv_name_check(fields[nf].name, NULL) < 0)
				return mv_tool_usage(&t, "bad field name "
						     "'%.80s': want [A-Za-z]"
						     "[A-Za-z0-9_]{0,63}",
						     fields[nf].name);
			for (int i = 0; i < nf; i++)
				if (!strcmp(fields[i].name, fields[nf].name))
					return mv_tool_usage(&t, "field '%s' "
							     "given twice",
							     fields[nf].name);
			nf++;
			break;
		}
		case OPT_IFNOT:
			ifnot = 1;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	if (argc - optind > 1)
		return mv_tool_usage(&t, "too many arguments");
	if (!dim)
		return mv_tool_usage(&t, "missing --dim");
	name = argv[optind];
	if ((rc = mv_name_check(name, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);

	len = snprintf(line, sizeof(line), "CREATE %s %d %s", name, (int)dim,
		       mv_metric_name(metric));
	for (int i = 0; i < nf; i++)
		len += snprintf(line + len, sizeof(line) - len, " %s:%s",
				fields[i].name, mv_ftype_name(fields[i].type));
	if (ifnot)
		snprintf(line + len, sizeof(line) - len, " if-not-exists");

	if ((rc = mv_tool_connect(&t, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	rc = mv_client_cmd(t.client, line, reply, sizeof(reply), &err);
	if (rc < 0)
		return mv_tool_exit(&t, rc, &err);
	if (mv_reply_get_i64(reply, "exists", &exists) == 0 && exists) {
		/* Like mkdir -p on a file: the one there must be the same. */
		rc = mv_client_describe(t.client, name, &info, &err);
		if (rc == 0 && (info.dim != dim || info.metric != metric))
			rc = mv_err_set(&err, MV_ESERVER, "collection '%s' "
					"exists with dim %u, metric %s", name,
					(unsigned)info.dim,
					mv_metric_name(info.metric));
		if (rc == 0)
			mv_tool_info(&t, "'%s' exists", name);
		return mv_tool_exit(&t, rc, &err);
	}
	mv_tool_info(&t, "created '%s'", name);
	return mv_tool_exit(&t, 0, &err);
}

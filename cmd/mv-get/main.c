/*
 * mv-get - print the rows of the ids read from a file or stdin, or (with
 * --all) of the whole collection: as TSV `id, v1,v2,..., fields`, as fvecs
 * or as jsonl.  Unknown ids are skipped and counted on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"
#include "tool.h"
#include "vecio.h"

static const char usage[] =
	"mv-get [-qv] [-a ADDR] [-u USER] [--all] [--format F] [--fields A,B]\n"
	"       [--filter EXPR] [--as-of FLUSH|TIME] NAME [FILE]";
static const char help[] =
	"Print the rows of the collection NAME whose ids FILE (or stdin) holds,\n"
	"one per line, as `id<TAB>v1,v2,...[<TAB>field...]`.  Unknown ids are\n"
	"skipped and counted on stderr.\n"
	"\n"
	"      --all          print every row of the collection, by id\n"
	"      --filter EXPR  only the rows matching EXPR (Milvus expression)\n"
	"      --as-of FLUSH|TIME  the rows as they stood right after that\n"
	"                     flush (TIME: ISO 8601 UTC or @SECONDS)\n"
	"      --fields A,B   print only these scalar fields (default: all)\n"
	"      --format F     text (the default), fvecs (vectors only) or\n"
	"                     jsonl ({\"id\":..,\"vector\":[..],field:..})\n";

enum { OPT_ALL = MV_OPT_TOOL, OPT_FORMAT, OPT_FIELDS, OPT_FILTER, OPT_ASOF };

enum { OUT_TEXT, OUT_FVECS, OUT_JSONL };

/* Rows of one GET or SCAN: at most this many, and this many bytes. */
#define CHUNK_ROWS (64u << 10)
#define CHUNK_BYTES (8u << 20)

static void put_vec(struct mv_out *o, const float *v, uint32_t dim)
{
	for (uint32_t i = 0; i < dim; i++) {
		char *p = mv_out_room(o, 32);

		if (!p)
			return;
		if (i)
			*p++ = ',';
		p += mv_fmt_g9(p, v[i]);
		o->len = p - o->buf;
	}
}

/*
 * A JSON string of n bytes.  With tsv, s is a field value as the node
 * sends it, tab, newline and backslash escaped as \t, \n and \\.
 */
static void put_json_str(struct mv_out *o, const char *s, size_t n, int tsv)
{
	static const char hex[] = "0123456789abcdef";

	mv_out_putc(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = s[i];
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

		if (tsv && ch == '\\' && i + 1 < n) {
			ch = s[++i];
			if (ch == 't')
				ch = '\t';
			else if (ch == 'n')
				ch = '\n';
			else if (ch != '\\')
				i--, ch = '\\';
		}

		if (ch == '"' || ch == '\\') {
			mv_out_putc(o, '\\');
			mv_out_putc(o, ch);
		} else if (ch == '\t' || ch == '\n' || ch == '\r') {
			mv_out_putc(o, '\\');
			mv_out_putc(o, ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r');
		} else if (ch < 0x20 || ch == 0x7f) {
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			mv_out_write(o, esc, 6);
		} else {
			mv_out_putc(o, ch);
		}
	}
	mv_out_putc(o, '"');
}

/* 1 if s[0..n) is a JSON number. */
static int json_number(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == d || (s[d] == '0' && i - d > 1))
		return 0;
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i == n;
}

/* The fields to print: indexes into the collection's fields. */
struct sel {
	int n;
	int idx[MV_FIELDS_MAX];
};

/* Split a line of tab-separated field values; returns how many. */
static int split_fields(const char *line, size_t len, const char **val,
			size_t *vlen)
{
	const char *p = line, *end = line + len;
	int n = 0;

	while (n < MV_FIELDS_MAX) {
		const char *tab = memchr(p, '\t', end - p);

		val[n] = p;
		vlen[n] = tab ? (size_t)(tab - p) : (size_t)(end - p);
		n++;
		if (!tab)
			break;
		p = tab + 1;
	}
	return n;
}

static void put_fields(struct mv_out *o, int fmt,
		       const struct mv_coll_info *info, const struct sel *sel,
		       const char *line, size_t len)
{
	const char *val[MV_FIELDS_MAX];
	size_t vlen[MV_FIELDS_MAX];
	int nv = split_fields(line, len, val, vlen);

	for (int i = 0; i < sel->n; i++) {
		const struct mv_field *f = &info->fields[sel->idx[i]];
		const char *v = sel->idx[i] < nv ? val[sel->idx[i]] : "";
		size_t vl = sel->idx[i] < nv ? vlen[sel->idx[i]] : 0;

		if (fmt == OUT_TEXT) {
			mv_out_putc(o, '\t');
			mv_out_write(o, v, vl);
			continue;
		}
		mv_out_putc(o, ',');
		put_json_str(o, f->name, strlen(f->name), 0);
		mv_out_putc(o, ':');
		if (f->type == MV_STRING)
			put_json_str(o, v, vl, 1);
		else if (f->type == MV_BOOL &&
			 ((vl == 4 && !memcmp(v, "true", 4)) ||
			  (vl == 5 && !memcmp(v, "false", 5))))
			mv_out_write(o, v, vl);
		else if (json_number(v, vl))
			mv_out_write(o, v, vl);
		else
			mv_out_str(o, "null");
	}
}

static void print_rows(struct mv_out *o, int fmt,
		       const struct mv_coll_info *info, const struct sel *sel,
		       const struct mv_rows *rows)
{
	const char *text = rows->text;
	const char *tend = text ? text + rows->text_len : NULL;
	uint32_t dim = info->dim;

	for (size_t i = 0; i < rows->n; i++) {
		const float *v = rows->vecs + i * dim;
		const char *line = text, *nl = NULL;
		size_t len = 0;

		if (text) {
			nl = memchr(text, '\n', tend - text);
			len = nl ? (size_t)(nl - text) : (size_t)(tend - text);
			text = nl ? nl + 1 : tend;
		}
		switch (fmt) {
		case OUT_FVECS: {
			uint32_t d = dim;

			mv_out_write(o, &d, 4);
			mv_out_write(o, v, (size_t)dim * 4);
			break;
		}
		case OUT_JSONL:
			mv_out_str(o, "{\"id\":");
			mv_out_i64(o, rows->ids[i]);
			mv_out_str(o, ",\"vector\":[");
			put_vec(o, v, dim);
			mv_out_putc(o, ']');
			if (line)
				put_fields(o, fmt, info, sel, line, len);
			mv_out_str(o, "}\n");
			break;
		default:
			mv_out_i64(o, rows->ids[i]);
			mv_out_putc(o, '\t');
			put_vec(o, v, dim);
			if (line)
				put_fields(o, fmt, info, sel, line, len);
			mv_out_putc(o, '\n');
		}
		if (o->errnum)
			return;
	}
}

/* Resolve --fields a,b (NULL: all of them); 0 or MV_ESERVER. */
static int select_fields(const struct mv_coll_info *info, const char *list,
			 struct sel *sel, struct mv_err *err)
{
	const char *p = list;

	sel->n = 0;
	if (!list) {
		for (int i = 0; i < info->nfields; i++)
			sel->idx[sel->n++] = i;
		return 0;
	}
	while (*p) {
		size_t len = strcspn(p, ",");
		int i;

		for (i = 0; i < info->nfields; i++)
			if (strlen(info->fields[i].name) == len &&
			    !memcmp(info->fields[i].name, p, len))
				break;
		if (i == info->nfields)
			return mv_err_set(err, MV_ESERVER, "collection '%s' "
					  "has no field '%.*s'", info->name,
					  (int)(len > 64 ? 64 : len), p);
		if (sel->n == MV_FIELDS_MAX)
			return mv_err_set(err, MV_ESERVER, "too many fields");
		sel->idx[sel->n++] = i;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "all", no_argument, NULL, OPT_ALL },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "fields", required_argument, NULL, OPT_FIELDS },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "as-of", required_argument, NULL, OPT_ASOF },
		{ NULL, 0, NULL, 0 }
	};
	struct mv_tool t;
	struct mv_err err = { 0 };
	struct mv_coll_info info;
	struct mv_idreader *idr = NULL;
	struct mv_rows rows = { 0 };
	const char *name, *path, *fields = NULL, *filter = NULL, *asof = NULL;
	uint64_t flush = 0;
	struct sel sel;
	int64_t *ids = NULL, after = INT64_MIN;
	uint64_t missing = 0, found = 0;
	size_t cap;
	int c, rc, all = 0, fmt = OUT_TEXT, want;
	long n;

	mv_tool_init(&t, "mv-get", usage, help);
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_ALL:
			all = 1;
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "text"))
				fmt = OUT_TEXT;
			else if (!strcmp(optarg, "fvecs"))
				fmt = OUT_FVECS;
			else if (!strcmp(optarg, "jsonl"))
				fmt = OUT_JSONL;
			else
				return mv_tool_usage(&t, "bad format '%.40s': "
						     "want text, fvecs or "
						     "jsonl", optarg);
			break;
		case OPT_FIELDS:
			if (!*optarg || optarg[strspn(optarg, "abcdefghijklm"
			    "nopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_,")])
				return mv_tool_usage(&t, "bad --fields '%.80s':"
						     " want names joined by "
						     "','", optarg);
			fields = optarg;
			break;
		case OPT_FILTER:
			if (filter)
				return mv_tool_usage(&t, "--filter given twice");
			filter = optarg;
			break;
		case OPT_ASOF: {
			int64_t ms;

			if (asof)
				return mv_tool_usage(&t, "--as-of given twice");
			if (mv_asof_parse(optarg, &flush, &ms, &err) < 0)
				return mv_tool_usage(&t, "%s", err.msg);
			asof = optarg;
			break;
		}
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	if (argc - optind > (all ? 1 : 2))
		return mv_tool_usage(&t, all ? "--all reads no ids" :
				     "too many arguments");
	name = argv[optind];
	path = optind + 1 < argc ? argv[optind + 1] : "-";
	if ((rc = mv_name_check(name, &err)) < 0)
		return mv_tool_exit(&t, rc, &err);
	if (!all && !(idr = mv_idreader_open(path, &err)))
		return mv_tool_exit(&t, err.code ? err.code : MV_ENOINPUT,
				    &err);

	if ((rc = mv_tool_connect(&t, &err)) < 0)
		goto out;
	if ((rc = mv_client_describe(t.client, name, &info, &err)) < 0)
		goto out;
	if ((rc = select_fields(&info, fields, &sel, &err)) < 0)
		goto out;
	if (filter && (rc = mv_filter_check(&info, filter, &err)) < 0)
		goto out;
	if (asof && (rc = mv_asof_resolve(t.client, name, asof, &flush,
					  &err)) < 0)
		goto out;
	want = sel.n > 0 && fmt != OUT_FVECS;
	cap = CHUNK_BYTES / ((size_t)info.dim * sizeof(float) + 8);
	if (cap > CHUNK_ROWS)
		cap = CHUNK_ROWS;
	if (cap < 1)
		cap = 1;
	if (all) {
		/* INT64_MIN is never an id: start before every row. */
		for (;;) {
			rc = mv_client_scan_at(t.client, name, info.dim, after,
					       cap, want, filter, flush, &rows,
					       &err);
			if (rc < 0 || rows.n == 0)
				break;
			print_rows(&t.out, fmt, &info, &sel, &rows);
			found += rows.n;
			after = rows.ids[rows.n - 1];
			mv_rows_release(&rows);
			if ((rc = mv_out_status(&t.out, &err)) < 0)
				break;
		}
		mv_rows_release(&rows);
		goto done;
	}
	if (!(ids = malloc(cap * sizeof(*ids)))) {
		rc = mv_err_set(&err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	while ((n = mv_idreader_read(idr, ids, cap, &err)) > 0) {
		rc = mv_client_get_at(t.client, name, info.dim, n, ids, want,
				      filter, flush, &rows, &err);
		if (rc < 0)
			break;
		print_rows(&t.out, fmt, &info, &sel, &rows);
		found += rows.n;
		if (rows.n < (size_t)n)
			missing += n - rows.n;
		mv_rows_release(&rows);
		mv_out_flush(&t.out);
		if ((rc = mv_out_status(&t.out, &err)) < 0)
			break;
	}
	if (n < 0)
		rc = (int)n;
	if (rc == 0 && missing)
		mv_tool_note(&t, "%" PRIu64 " id%s not found%s", missing,
			     missing == 1 ? "" : "s",
			     filter ? " or not matching --filter" : "");
done:
	if (rc == 0)
		mv_tool_info(&t, "%" PRIu64 " rows", found);
out:
	if (idr)
		mv_idreader_close(idr);
	free(ids);
	return mv_tool_exit(&t, rc, &err);
}

/*
 * mv-insert - insert vectors read from files or stdin into a collection.
 * By default the whole input is one atomic batch, flushed at the end; with
 * --batch every N rows are, and with --session the rows wait in a named
 * session for mv-flush.  Rows go to the node in chunks of a few MiB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "client.h"
#include "tool.h"
#include "vecio.h"

static const char usage[] =
	"mv-insert [-qv] [-a ADDR] [-u USER] [options] NAME [FILE]...";
static const char help[] =
	"Insert the vectors of FILE... (or stdin) into the collection NAME.\n"
	"Formats: fvecs, bvecs, npy, text, jsonl, by extension or --format;\n"
	"sniffed on stdin.  Scalar fields come only in jsonl, one object a\n"
	"line: {\"id\":1,\"vector\":[0.5,1],\"tag\":\"red\"}.  The whole input\n"
	"is one atomic batch, flushed at the end: exit 0 means the rows are\n"
	"durable and visible.\n"
	"\n"
	"      --format F     input format: fvecs, bvecs, npy, text, jsonl\n"
	"      --ids FILE     ids, one per line, in input order\n"
	"      --ids-first    text: the first number of a line is the id\n"
	"      --upsert       replace the rows whose ids exist\n"
	"      --print-ids    print the ids of the rows, one per line\n"
	"      --batch N      commit every N rows, each batch atomic\n"
	"      --session S    leave the rows in the named session S, for\n"
	"                     mv-flush S (or mv-flush --abort S)\n";

enum {
	OPT_FORMAT = MV_OPT_TOOL, OPT_IDS, OPT_IDS_FIRST, OPT_UPSERT,
	OPT_PRINT_IDS, OPT_BATCH, OPT_SESSION
};

/* Bytes of vectors (and ids) sent in one INSERT. */
#define CHUNK_BYTES (8u << 20)

/* A run of consecutive ids, for --print-ids. */
struct idrun {
	int64_t first;
	uint64_t n;
};

struct ins {
	struct mv_tool *t;
	const char *name;
	struct mv_coll_info info;
	struct mv_vreader_opts ropts;
	const char *idpath;
	struct mv_idreader *idr;
	int flags;		/* MV_INSERT_UPSERT */
	int print_ids;
	int64_t batch;		/* rows per commit; 0: the whole input */
	const char *session;
	uint64_t pending;	/* rows sent since the last commit */
	uint64_t committed;	/* rows committed */
	uint64_t rows;		/* rows sent */
	uint64_t ids_read;	/* from --ids */
	uint64_t bytes_done;	/* input bytes of the files done */
	struct idrun *runs;	/* ids sent but not yet printed */
	size_t nruns, capruns;
	struct mv_vbatch *bb[2];	/* the two batches of insert_file */
	uint64_t *idlines[2];	/* --ids: line of each id of bb[i] */
	struct mv_progress prog;
};

static int add_ids(struct ins *s, int64_t first, uint64_t n, int64_t step,
		   const int64_t *ids, struct mv_err *err)
{
	for (uint64_t i = 0; i < n; i++) {
		int64_t id = ids ? ids[i] : first + (int64_t)i * step;
		struct idrun *r = s->nruns ? &s->runs[s->nruns - 1] : NULL;

		if (r && r->first + (int64_t)r->n == id) {
			r->n++;
			continue;
		}
		if (s->nruns == s->capruns) {
			size_t cap = s->capruns ? 2 * s->capruns : 64;
			void *p = realloc(s->runs, cap * sizeof(*s->runs));

			if (!p)
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			s->runs = p;
			s->capruns = cap;
		}
		s->runs[s->nruns].first = id;
		s->runs[s->nruns].n = 1;
		s->nruns++;
	}
	return 0;
}

/* Print the ids held, once they are committed (or queued). */
static void print_ids(struct ins *s)
{
	struct mv_out *o = &s->t->out;

	for (size_t i = 0; i < s->nruns; i++)
		for (uint64_t j = 0; j < s->runs[i].n; j++) {
			mv_out_i64(o, s->runs[i].first + (int64_t)j);
			mv_out_putc(o, '\n');
		}
	s->nruns = 0;
}

static int commit(struct ins *s, struct mv_err *err)
{
	int64_t ins = 0, del = 0;
	int rc;

	rc = mv_client_flush(s->t->client, NULL, &ins, &del, err);
	if (rc < 0)
		return mv_tool_in_doubt(s->t, rc, err, "check with mv-get "
					"(its ids) or mv-ls (rows)");
	s->committed += s->pending;
	s->pending = 0;
	if (s->print_ids)
		print_ids(s);
	return mv_out_status(&s->t->out, err);
}

/* The input line or record of row i of b. */
static uint64_t rec_of(const struct mv_vbatch *b, size_t i)
{
	return b->recs ? b->recs[i] : b->rec0 + i;
}

/* Fill b->ids from the --ids file: exactly b->n of them. */
static int read_ids(struct ins *s, struct mv_vbatch *b, const char *path,
		    struct mv_err *err)
{
	uint64_t *lines = s->idlines[b == s->bb[1]];
	size_t got = 0;
	long n;

	while (got < b->n) {
		n = mv_idreader_read_lines(s->idr, b->ids + got, lines + got,
					   b->n - got, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return mv_err_set(err, MV_EDATA, "%s:%" PRIu64 ": no "
					  "id for this row: '%s' ends after %"
					  PRIu64 " ids", path, rec_of(b, got),
					  s->idpath, s->ids_read + got);
		got += n;
	}
	s->ids_read += got;
	return 0;
}

/*
 * The node numbers the bad row of a request from 1, in front ("row 3: NaN
 * or Inf", "row 3: bad id") or, for an id it refuses, at the end ("id 7
 * given twice (row 3)"); name the input line or record instead: of the
 * --ids file when the error is about the id, else of the vectors.
 */
static void name_row(struct ins *s, struct mv_err *err, const char *path,
		     const struct mv_vbatch *b)
{
	char msg[2 * MV_ERR_LEN], text[MV_ERR_LEN];
	const char *open_;
	unsigned long row;
	uint64_t line;
	int off = 0, end = 0;

	if (sscanf(err->msg, "row %lu: %n", &row, &off) == 1 && off) {
		snprintf(text, sizeof(text), "%s", err->msg + off);
	} else if ((open_ = strrchr(err->msg, '(')) && open_ > err->msg &&
		   open_[-1] == ' ' &&
		   sscanf(open_, "(row %lu)%n", &row, &end) == 1 &&
		   end && !open_[end]) {
		snprintf(text, sizeof(text), "%.*s",
			 (int)(open_ - 1 - err->msg), err->msg);
	} else {
		return;
	}
	if (row < 1 || row > b->n)
		return;
	if (s->idr && (!strncmp(text, "id ", 3) ||
		       !strncmp(text, "bad id", 6))) {
		path = s->idpath;
		line = s->idlines[b == s->bb[1]][row - 1];
	} else {
		line = rec_of(b, row - 1);
	}
	snprintf(msg, sizeof(msg), "%s:%" PRIu64 ": %s", path, line, text);
	memcpy(err->msg, msg, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

/* After the reply to the INSERT of b: ids to print, counts, progress. */
static int sent(struct ins *s, struct mv_vbatch *b, int64_t first,
		uint64_t pos, struct mv_err *err)
{
	int rc = 0;

	/* Assigned ids: b->n of them from first, none past INT64_MAX. */
	if (!s->idr && !b->has_ids && b->n &&
	    (first == INT64_MIN || first > INT64_MAX - (int64_t)(b->n - 1)))
		return mv_err_set(err, MV_EPROTO, "malformed reply from '%s': "
				  "bad first_id for %zu rows",
				  mv_client_addr(s->t->client), b->n);
	if (s->print_ids) {
		if (s->idr || b->has_ids)
			rc = add_ids(s, 0, b->n, 1, b->ids, err);
		else
			rc = add_ids(s, first, b->n, 1, NULL, err);
		if (rc < 0)
			return rc;
	}
	s->pending += b->n;
	s->rows += b->n;
	mv_progress_update(&s->prog, s->rows, s->bytes_done + pos);
	return 0;
}

/*
 * Read, send and account for one file.  Without --batch, one INSERT stays
 * in flight while the next chunk is read and parsed, so that the tool and
 * the node work at the same time; bb[0] and bb[1] take turns.
 */
static int insert_file(struct ins *s, const char *path, struct mv_vbatch **bb,
		       struct mv_err *err)
{
	struct mv_vreader *r;
	struct mv_vbatch *b, *flying = NULL;
	size_t cap0 = bb[0]->cap;
	int64_t first;
	long n;
	int rc = 0, turn = 0;

	r = mv_vreader_open(path, &s->ropts, err);
	if (!r)
		return err->code ? err->code : MV_ENOINPUT;
	for (;; turn ^= 1) {
		b = bb[turn];
		b->cap = cap0;
		if (s->batch && s->batch - s->pending < cap0)
			b->cap = s->batch - s->pending;
		n = mv_vreader_read(r, b, err);
		b->cap = cap0;
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if (s->idr) {
			if (b->has_ids) {
				rc = mv_err_set(err, MV_EDATA, "%s:%" PRIu64
						": the input has ids and --ids "
						"was given", path, b->rec0);
				break;
			}
			if ((rc = read_ids(s, b, path, err)) < 0)
				break;
		}
		rc = mv_client_insert_send(s->t->client, s->name, b->n, b->dim,
					   s->idr || b->has_ids ? b->ids : NULL,
					   b->vecs,
					   b->has_fields ? b->fields : NULL,
					   b->has_fields ? b->fields_len : 0,
					   s->flags, err);
		if (rc < 0)
			break;
		if (flying) {
			first = -1;
			rc = mv_client_insert_recv(s->t->client, &first, err);
			if (rc < 0) {
				name_row(s, err, path, flying);
				break;
			}
			if ((rc = sent(s, flying, first, mv_vreader_pos(r), err)) < 0)
				break;
		}
		flying = b;
		if (!s->batch)
			continue;
		/* --batch: every batch is answered before it is committed. */
		first = -1;
		rc = mv_client_insert_recv(s->t->client, &first, err);
		flying = NULL;
		if (rc < 0) {
			name_row(s, err, path, b);
			break;
		}
		if ((rc = sent(s, b, first, mv_vreader_pos(r), err)) < 0)
			break;
		if (s->pending >= (uint64_t)s->batch && (rc = commit(s, err)) < 0)
			break;
	}
	if (flying && rc == 0) {
		first = -1;
		rc = mv_client_insert_recv(s->t->client, &first, err);
		if (rc < 0)
			name_row(s, err, path, flying);
		else
			rc = sent(s, flying, first, mv_vreader_pos(r), err);
	}
	s->bytes_done += mv_vreader_pos(r);
	mv_vreader_close(r);
	return rc;
}

static int run(struct ins *s, char **files, int nfiles, struct mv_err *err)
{
	struct mv_vbatch b[2], *bb[2] = { &b[0], &b[1] };
	size_t cap;
	int64_t extra;
	uint64_t line;
	int rc;

	rc = mv_client_describe(s->t->client, s->name, &s->info, err);
	if (rc < 0)
		return rc;
	s->ropts.dim = s->info.dim;
	s->ropts.fields = s->info.fields;
	s->ropts.nfields = s->info.nfields;
	if (s->session && (rc = mv_client_session(s->t->client, s->session,
						  err)) < 0)
		return rc;
	cap = CHUNK_BYTES / ((size_t)s->info.dim * sizeof(float) +
			     sizeof(int64_t));
	if (cap < 1)
		cap = 1;
	if ((rc = mv_vbatch_init(&b[0], cap, s->info.dim, err)) < 0)
		return rc;
	if ((rc = mv_vbatch_init(&b[1], cap, s->info.dim, err)) < 0) {
		mv_vbatch_release(&b[0]);
		return rc;
	}
	s->bb[0] = bb[0];
	s->bb[1] = bb[1];
	if (s->idr) {
		s->idlines[0] = malloc(cap * sizeof(uint64_t));
		s->idlines[1] = malloc(cap * sizeof(uint64_t));
		if (!s->idlines[0] || !s->idlines[1])
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	for (int i = 0; i < nfiles && rc == 0; i++)
		rc = insert_file(s, files[i], bb, err);
	mv_vbatch_release(&b[0]);
	mv_vbatch_release(&b[1]);
	free(s->idlines[0]);
	free(s->idlines[1]);
	if (rc < 0)
		return rc;
	if (s->idr) {
		rc = (int)mv_idreader_read_lines(s->idr, &extra, &line, 1, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return mv_err_set(err, MV_EDATA, "%s:%" PRIu64 ": more "
					  "ids than vectors (%" PRIu64 ")",
					  s->idpath, line, s->rows);
	}
	if (s->session) {
		/* The input is whole: only now do its rows join the session. */
		if ((rc = mv_client_handoff(s->t->client, err)) < 0)
			return rc;
		s->committed = 0;
		if (s->print_ids)
			print_ids(s);
		return mv_out_status(&s->t->out, err);
	}
	if (s->batch && s->pending == 0 && s->rows > 0)
		return 0;
	return commit(s, err);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "ids", required_argument, NULL, OPT_IDS },
		{ "ids-first", no_argument, NULL, OPT_IDS_FIRST },
		{ "upsert", no_argument, NULL, OPT_UPSERT },
		{ "print-ids", no_argument, NULL, OPT_PRINT_IDS },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "session", required_argument, NULL, OPT_SESSION },
		{ NULL, 0, NULL, 0 }
	};
	static char *stdin_only[] = { "-" };
	struct mv_tool t;
	struct mv_err err = { 0 };
	struct ins s;
	struct stat st;
	char **files;
	uint64_t total = 0;
	double t0;
	int c, rc, nfiles, nstdin = 0, sized = 1;

	memset(&s, 0, sizeof(s));
	mv_tool_init(&t, "mv-insert", usage, help);
	s.t = &t;
	while ((c = mv_tool_getopt(&t, argc, argv, "", lopts)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			if (mv_vformat_parse(optarg, &s.ropts.format) < 0)
				return mv_tool_usage(&t, "bad format '%.40s': "
						     "want fvecs, bvecs, npy, "
						     "text or jsonl", optarg);
			break;
		case OPT_IDS:
			s.idpath = optarg;
			break;
		case OPT_IDS_FIRST:
			s.ropts.ids_first = 1;
			break;
		case OPT_UPSERT:
			s.flags |= MV_INSERT_UPSERT;
			break;
		case OPT_PRINT_IDS:
			s.print_ids = 1;
			break;
		case OPT_BATCH:
			if ((rc = mv_tool_int(&t, "--batch", optarg, 1,
					      INT64_MAX, &s.batch)))
				return rc;
			break;
		case OPT_SESSION:
			s.session = optarg;
			break;
		default:
			return mv_tool_status(&t);
		}
	}
	if (optind == argc)
		return mv_tool_usage(&t, "missing collection name");
	s.name = argv[optind++];
	if (s.idpath && s.ropts.ids_first)
		return mv_tool_usage(&t, "--ids and --ids-first exclude each "
				     "other");
	if (s.batch && s.session)
		return mv_tool_usage(&t, "--batch and --session exclude each "
				     "other");
	files = optind < argc ? argv + optind : stdin_only;
	nfiles = optind < argc ? argc - optind : 1;
	if ((rc = mv_name_check(s.name, &err)) < 0 ||
	    (s.session && (rc = mv_name_check(s.session, &err)) < 0))
		return mv_tool_exit(&t, rc, &err);

	/* Missing inputs are found before anything is sent. */
	for (int i = 0; i < nfiles; i++) {
		if (!strcmp(files[i], "-")) {
			nstdin++;
			sized = 0;
			continue;
		}
		if (stat(files[i], &st) < 0) {
			rc = mv_err_sys(&err, MV_ENOINPUT, "%s", files[i]);
			return mv_tool_exit(&t, rc, &err);
		}
		if (S_ISREG(st.st_mode))
			total += st.st_size;
		else
			sized = 0;
	}
	if (!sized)
		total = 0;
	if (s.idpath && !strcmp(s.idpath, "-"))
		nstdin++;
	if (nstdin > 1)
		return mv_tool_usage(&t, "stdin read twice");
	if (s.idpath) {
		s.idr = mv_idreader_open(s.idpath, &err);
		if (!s.idr)
			return mv_tool_exit(&t, err.code ? err.code :
					    MV_ENOINPUT, &err);
	}

	t.session = s.session;	/* through a master: the session's node */
	if ((rc = mv_tool_connect(&t, &err)) < 0)
		goto out;
	t0 = mv_tool_now();
	mv_progress_start(&s.prog, &t, total);
	rc = run(&s, files, nfiles, &err);
	mv_progress_end(&s.prog);
	if (rc < 0 && rc != MV_TOOL_EPIPE && s.batch && s.committed) {
		/* The error first, then what stays of the input. */
		mv_tool_err(&t, "%s", err.msg);
		mv_tool_err(&t, "%" PRIu64 " rows committed before the error",
			    s.committed);
		mv_idreader_close(s.idr);
		free(s.runs);
		return mv_tool_exit(&t, rc, NULL);
	}
	if (rc == 0) {
		double dt = mv_tool_now() - t0;

		mv_tool_info(&t, "%s %" PRIu64 " rows in %.2f s (%.1f MB/s)",
			     s.session ? "queued" : "inserted", s.rows, dt,
			     dt > 0 ? s.bytes_done / dt / 1e6 : 0.0);
	}
out:
	if (s.idr)
		mv_idreader_close(s.idr);
	free(s.runs);
	return mv_tool_exit(&t, rc, &err);
}

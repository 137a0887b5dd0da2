/*
 * vecio.h - reading and writing vectors in the formats users pipe into mv:
 * fvecs, bvecs, npy (2-D float32, C order), text (numbers separated by
 * spaces, tabs or commas, one vector per line; optionally id first) and
 * jsonl ({"id":7,"vector":[..],"price":9.5,"tag":"red"}).
 *
 * Readers stream: they fill a caller-owned struct mv_vbatch a batch at a
 * time with no per-vector allocation, so a 100 GB input runs in bounded
 * memory.  Every error names the input and the record: "FILE:N: what is
 * wrong" with N the line (text, jsonl) or record (binary) counted from 1 and
 * FILE "-" for stdin; bad data is MV_EDATA, a missing file MV_ENOINPUT, a
 * read error MV_EIO.
 */
#ifndef MV_VECIO_H
#define MV_VECIO_H

#include <stdio.h>
#include "mv.h"
#include "client.h"

enum mv_vformat {
	MV_FMT_AUTO = 0,	/* by extension, sniffed on stdin */
	MV_FMT_FVECS,
	MV_FMT_BVECS,
	MV_FMT_NPY,
	MV_FMT_TEXT,
	MV_FMT_JSONL,
};
/*
 * "fvecs", "bvecs", "npy", "text" (also "txt", "tsv", "csv"), "jsonl" (also
 * "json", "ndjson") or "auto"; 0, or -1 for anything else.
 */
int mv_vformat_parse(const char *s, enum mv_vformat *out);
const char *mv_vformat_name(enum mv_vformat f);

/*
 * A batch of rows as mv_client_insert wants them.  ids is filled only when
 * the input carries ids (text --ids-first, jsonl "id"); has_ids says so.
 * fields/fields_len hold the encoded scalar column block of PROTOCOL.md
 * (jsonl only; has_fields).  rec0 is the record/line number of row 0.
 * The reserved id INT64_MIN is refused in input (MV_EDATA, FILE:N).
 */
struct mv_vbatch {
	size_t n, cap;		/* rows held, rows that fit */
	uint32_t dim;
	float *vecs;		/* cap * dim */
	int64_t *ids;		/* cap */
	int has_ids;
	unsigned char *fields;	/* encoded columns, fields_len bytes */
	size_t fields_len, fields_cap;
	int has_fields;
	uint64_t rec0;
	uint64_t *recs;		/* line of each row (text/jsonl), for errors */
};
/*
 * cap rows of dim; returns 0 or MV_EINTERNAL (out of memory).  dim may be
 * 0: mv_vreader_read reallocates vecs once when the input's dimension is
 * not b->dim, so one batch serves a reader whose opts->dim was 0.
 */
int mv_vbatch_init(struct mv_vbatch *b, size_t cap, uint32_t dim,
		   struct mv_err *err);
void mv_vbatch_release(struct mv_vbatch *b);

struct mv_vreader;

/* Longest text or jsonl line accepted (without its newline). */
#define MV_VECIO_LINE_MAX (16u << 20)

struct mv_vreader_opts {
	enum mv_vformat format;
	uint32_t dim;		/* expected dimension (0: take the input's) */
	int ids_first;		/* text: first number of a line is the id */
	const struct mv_field *fields;	/* jsonl scalar fields to pick */
	int nfields;
};

/*
 * Open path ("-" or NULL for stdin).  Returns NULL with err set
 * (MV_ENOINPUT when the file is missing).
 */
struct mv_vreader *mv_vreader_open(const char *path,
				   const struct mv_vreader_opts *o,
				   struct mv_err *err);
/*
 * Like mv_vreader_open on an already open descriptor, which the reader
 * reads from but never closes.  name is used in messages and, when the
 * format is MV_FMT_AUTO, for its extension; "-" or NULL (shown as "-")
 * means sniff the content.
 */
struct mv_vreader *mv_vreader_fdopen(int fd, const char *name,
				     const struct mv_vreader_opts *o,
				     struct mv_err *err);
/*
 * Fill b (emptied first) with up to b->cap rows.  Returns the number of
 * rows read (0 at the end) or a negative MV_E* code.  A wrong dimension,
 * NaN/Inf, non-numeric text, a truncated record, a zero or negative
 * dimension in a record or a line over 16 MiB is MV_EDATA naming FILE:N.
 * Errors are sticky: later calls return the same code and message.  A
 * caller may lower b->cap between calls (never above the cap it was made
 * with) when b->dim is the reader's dimension, so vecs is never resized.
 * Reading blocks until b->cap rows or the end: use a cap of 1 to answer
 * each line typed on a terminal.
 */
long mv_vreader_read(struct mv_vreader *r, struct mv_vbatch *b,
		     struct mv_err *err);
/* Bytes consumed so far and total size (0 if unknown), for progress. */
uint64_t mv_vreader_pos(const struct mv_vreader *r);
uint64_t mv_vreader_size(const struct mv_vreader *r);
enum mv_vformat mv_vreader_format(const struct mv_vreader *r);
/* The dimension: opts->dim, else 0 until the first row has been read. */
uint32_t mv_vreader_dim(const struct mv_vreader *r);
void mv_vreader_close(struct mv_vreader *r);

/*
 * An id file (one int64 per line, blank lines and '#' comments skipped).
 * mv_idreader_read fills up to max ids; returns the count, 0 at the end,
 * or MV_EDATA "FILE:N: bad id 'x'" (also for the reserved id INT64_MIN,
 * "FILE:N: id -9223372036854775808 is reserved").
 * mv_idreader_read_lines also stores the line of each id in lines[].
 */
struct mv_idreader;
struct mv_idreader *mv_idreader_open(const char *path, struct mv_err *err);
long mv_idreader_read(struct mv_idreader *r, int64_t *ids, size_t max,
		      struct mv_err *err);
long mv_idreader_read_lines(struct mv_idreader *r, int64_t *ids,
			    uint64_t *lines, size_t max, struct mv_err *err);
void mv_idreader_close(struct mv_idreader *r);

/*
 * Fast, exact float parsing for the text hot path: parses one number at
 * *p (< end), sets *p past it.  0 or -1 when there is no number there.
 * Results and *p equal strtof's (bit for bit) for decimal numbers; unlike
 * strtof it skips no leading blanks and takes no hex.  "inf", "infinity"
 * and "nan" are parsed so that callers can refuse them as NaN or Inf.
 */
int mv_parse_float(const char **p, const char *end, float *out);

/* Writers for mv-get/mv-search output. */
int mv_write_fvecs(FILE *f, const float *v, uint32_t dim);
/* "%.9g" values joined by sep, no newline.  Both return 0 or MV_EIO. */
int mv_write_text(FILE *f, const float *v, uint32_t dim, char sep);

#endif

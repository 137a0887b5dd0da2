/*
 * load.c - reading a collection from the metadata and the store: its
 * schema, segments (with their columns), deletion logs and index.  The
 * start-up load (recover.c) and the cluster's follower (follow.c), which
 * loads what other nodes commit, both come here.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "internal.h"
#include "segfile.h"

struct loaded {
	char name[180];	/* file name under the collection */
	json_t *val;
	uint64_t seq;
	int kind;		/* 0 del, 1 vec (dels first at equal seq) */
};

struct load_ctx {
	struct loaded *v;
	size_t n, cap;
	size_t prefix_len;
	char *index_leaf, *index_val;	/* the newest index key */
	size_t index_vlen;
};

static int load_cb(void *arg, const char *key, const void *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	json_t *j;
	const char *type;

	j = json_loadb(val, vlen, 0, NULL);
	if (!j)
		return 0;
	type = json_string_value(json_object_get(j, "type"));
	if (type && !strcmp(type, "index")) {
		free(lc->index_leaf);
		free(lc->index_val);
		lc->index_leaf = strdup(key + lc->prefix_len);
		lc->index_val = malloc(vlen + 1);
		if (lc->index_val) {
			memcpy(lc->index_val, val, vlen);
			lc->index_vlen = vlen;
		}
		json_decref(j);
		return 0;
	}
	if (!type || (strcmp(type, "vectors") && strcmp(type, "delete"))) {
		json_decref(j);
		return 0;	/* scalar files are found from their vectors */
	}
	if (lc->n == lc->cap) {
		size_t nc = lc->cap ? lc->cap * 2 : 64;
		struct loaded *v = realloc(lc->v, nc * sizeof(*v));
		if (!v) {
			json_decref(j);
			return MV_EINTERNAL;
		}
		lc->v = v;
		lc->cap = nc;
	}
	snprintf(lc->v[lc->n].name, sizeof(lc->v->name), "%s",
		 key + lc->prefix_len);
	lc->v[lc->n].val = j;
	lc->v[lc->n].seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
	lc->v[lc->n].kind = !strcmp(type, "vectors");
	lc->n++;
	return 0;
}

/* A count in a data key's value (0 when absent or not a count). */
static uint64_t json_u64(const json_t *val, const char *name)
{
	json_int_t v = json_integer_value(json_object_get(val, name));

	return v > 0 ? (uint64_t)v : 0;
}

static void load_ctx_free(struct load_ctx *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		json_decref(lc->v[i].val);
	free(lc->v);
	free(lc->index_leaf);
	free(lc->index_val);
}

static int loaded_cmp(const void *a, const void *b)
{
	const struct loaded *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->kind - y->kind;
}

/*
 * c's data keys into lc, in load order (by seq, delete logs first), its
 * files' directory into dir and its newest index key's value (or NULL)
 * into *index.
 */
static int load_list(struct node *nd, struct coll *c, struct load_ctx *lc,
		     char *dir, size_t cap, json_t **index,
		     struct mv_err *err)
{
	char key[256];
	int rc;

	key_coll(key, sizeof(key), c->user, c->name, "data/");
	lc->prefix_len = strlen(key);
	rc = mv_meta_range(nd->meta, key, load_cb, lc, err);
	if (rc < 0)
		return rc;
	if (lc->n)
		qsort(lc->v, lc->n, sizeof(*lc->v), loaded_cmp);
	snprintf(dir, cap, "%s/%s-%s/", c->user, c->name, c->token);
	if (lc->index_val)
		*index = json_loadb(lc->index_val, lc->index_vlen, 0, NULL);
	return 0;
}

/*
 * Block A of the vector file at path by range reads, where a cluster node
 * keeps no vectors of it: size and rows are the metadata's.  The first
 * read, from offset 0, takes the header and up to SPAN_A more bytes (8 a
 * row: a flush's ids, stored raw or smaller): all of A for a flush of up
 * to 8,192 rows, else (or a merge's 24 bytes a row) A is read alone next.
 * A streamed file's header is a trailer, so the same span is read again
 * at the end (A and the trailer).  Block B is not read: it is checked
 * when something maps the file for its vectors (node_seg_raw).  The
 * header and A are checked against the header's checksums; damage is
 * MV_EIO naming the file.
 */
#define SPAN_A (64u << 10)
static int seg_read_a(struct node *nd, const char *path, uint64_t size,
		      uint64_t rows, struct mv_seginfo *info, void **a,
		      struct mv_err *err)
{
	uint64_t span = MV_SEGFILE_HDR + (rows < SPAN_A / 8 ? rows * 8 :
					  SPAN_A);
	uint64_t off = 0;
	unsigned char *buf = NULL;
	struct mv_err e0 = { 0 };
	size_t got;
	int rc;

	if (span > size)
		span = size;
	memset(info, 0, sizeof(*info));
	rc = mv_store_get_range(nd->store, path, 0, span, (void **)&buf, &got,
				err);
	if (rc < 0)
		return rc;
	if (got < MV_SEGFILE_HDR ||
	    mv_segfile_header(path, buf, info, &e0) < 0 || info->tail) {
		/* Not a header at the start: a trailer at the end? */
		int magic = got >= 4 && !memcmp(buf, "MVF1", 4) && !info->tail;

		free(buf);
		buf = NULL;
		off = size - span;
		rc = mv_store_get_range(nd->store, path, off, span,
					(void **)&buf, &got, err);
		if (rc < 0)
			return rc;
		if (got < MV_SEGFILE_HDR)
			rc = mv_err_set(err, MV_EIO, "'%s': truncated (%zu "
					"bytes at %llu)", path, got,
					(unsigned long long)off);
		else if (mv_segfile_header(path, buf + got - MV_SEGFILE_HDR,
					   info, magic ? NULL : err) < 0 ||
			 !info->tail)
			rc = magic && e0.code ?
				mv_err_set(err, e0.code, "%s", e0.msg) :
				mv_err_set(err, MV_EIO, "'%s': not a segment "
					   "file", path);
		if (rc < 0)
			goto out;
	}
	if (info->size != size || info->n != rows) {
		rc = mv_err_set(err, MV_EIO, "'%s': %llu bytes of %llu rows, "
				"the metadata says %llu of %llu", path,
				(unsigned long long)info->size,
				(unsigned long long)info->n,
				(unsigned long long)size,
				(unsigned long long)rows);
		goto out;
	}
	if (info->a_off < off || info->a_off + info->a_len > off + got) {
		/* Block A is larger than the span: read it alone. */
		free(buf);
		buf = NULL;
		off = info->a_off;
		rc = mv_store_get_range(nd->store, path, off, info->a_len,
					(void **)&buf, &got, err);
		if (rc < 0)
			goto out;
	}
	rc = mv_segfile_block_a(path, info, buf + (info->a_off - off),
				got - (info->a_off - off) < info->a_len ?
				got - (info->a_off - off) : info->a_len, a,
				err);
out:
	free(buf);
	return rc;
}

/*
 * Read the segment whose .vec file is path.  Every byte of the file is
 * checked against its checksums, as before, but through a mapping where
 * the vectors are not kept as stored: a segment an index covers (covered;
 * the index holds its vectors, and GET maps the file again), another
 * node's unit, or a cosine segment (a normalised copy is searched).  Only
 * an l2 segment searched by brute force keeps the file's bytes in memory.
 * A mapping's pages are the page cache's: nothing stays resident.  In a
 * cluster (a store shared by the nodes, where the bytes fetched are the
 * cost), a segment whose vectors are not kept is read in part instead:
 * its header and block A only (seg_read_a), when the metadata gives its
 * size and rows (size 0: unknown, read whole).
 */
static int seg_read(struct node *nd, struct coll *c, const char *path,
		    uint64_t seq, uint64_t size, uint64_t rows, int covered,
		    struct seg **out, struct mv_err *err)
{
	struct seg *s = calloc(1, sizeof(*s));
	struct mv_seginfo info;
	void *file = NULL, *a = NULL, *map = NULL;
	const void *b = NULL, *p = NULL;
	size_t len;
	int novecs = covered || !node_place_held(nd, path);
	int rc;

	if (!s || !(s->cols = calloc(c->nfields ? c->nfields : 1,
				     sizeof(*s->cols)))) {
		free(s);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (novecs && nd->place && size) {
		rc = seg_read_a(nd, s->path, size, rows, &info, &a, err);
		len = size;
	} else {
		if (novecs || c->metric == MV_COSINE) {
			rc = mv_store_map(nd->store, s->path, &p, &len, &map,
					  err);
		} else {
			rc = mv_store_get(nd->store, s->path, &file, &len, err);
			p = file;
		}
		if (rc == 0)
			rc = mv_segfile_decode(s->path, p, len, &info, &a, &b,
					       err);
	}
	if (rc < 0)
		goto fail;
	/*
	 * Block A: the ids, or (a merged segment that keeps history) the
	 * ids, the flush that inserted each row and the flush that deleted
	 * it (0: live), 8 bytes each.
	 */
	if (info.kind != MV_SEG_VEC || info.aux != c->dim ||
	    (info.a_raw != info.n * 8 && info.a_raw != info.n * 24) ||
	    info.b_len != info.n * c->dim * sizeof(float)) {
		rc = mv_err_set(err, MV_EIO, "'%s': not a vector file of dim %u",
				s->path, c->dim);
		goto fail;
	}
	s->seq = seq;
	s->n = info.n;
	s->size = len;
	s->ids = a;
	a = NULL;
	if (info.a_raw == info.n * 24 && info.n) {
		const uint64_t *ins = (const uint64_t *)s->ids + info.n;
		const uint64_t *del = ins + info.n;

		s->rowseq = malloc(info.n * sizeof(*s->rowseq));
		if (!s->rowseq) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto fail;
		}
		memcpy(s->rowseq, ins, info.n * sizeof(*s->rowseq));
		s->minseq = UINT64_MAX;
		for (uint64_t r = 0; r < info.n; r++)
			if (s->rowseq[r] < s->minseq)
				s->minseq = s->rowseq[r];
		for (uint64_t r = 0; r < info.n; r++)
			if (del[r] && node_seg_set_deleted_at(s, r, del[r]) < 0) {
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto fail;
			}
	}
	if (file) {
		/* Keep the file buffer: vectors sit 64-byte aligned in it. */
		s->own = file;
		s->vecs = (float *)b;
		file = NULL;
	} else if (!novecs && b) {
		/* Cosine: search a normalised copy (node_seg_prepare). */
		float *nv = malloc(s->n * c->dim * sizeof(float) + 1);
		if (!nv) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto fail;
		}
		memcpy(nv, b, s->n * c->dim * sizeof(float));
		s->own = nv;
		s->vecs = nv;
	}
	mv_store_unmap(nd->store, map);
	map = NULL;
	s->ncols = c->nfields;
	for (int f = 0; f < c->nfields; f++) {
		struct nbuf nb = { 0 };
		void *cf = NULL, *ca = NULL;
		const void *cb;
		size_t clen;

		/* "<base>.vec" -> "<base>.<field>.col" */
		snprintf(s->cols[f].path, sizeof(s->cols->path), "%.*s.%s.col",
			 (int)strlen(path) - 4, path, c->fields[f].name);
		rc = mv_store_get(nd->store, s->cols[f].path, &cf, &clen, err);
		if (rc == 0)
			rc = mv_segfile_decode(s->cols[f].path, cf, clen, &info,
					       &ca, &cb, err);
		free(cf);
		if (rc < 0)
			goto fail;
		if (info.kind != MV_SEG_COL || info.n != s->n ||
		    info.aux != (uint32_t)c->fields[f].type) {
			free(ca);
			rc = mv_err_set(err, MV_EIO, "'%s': bad column file",
					s->cols[f].path);
			goto fail;
		}
		s->size += clen;
		nb.p = ca;
		nb.len = nb.cap = info.a_raw;
		if (node_seg_col_from(&s->cols[f], c->fields[f].type, &nb, s->n) < 0) {
			free(ca);
			rc = mv_err_set(err, MV_EIO, "'%s': bad string column",
					s->cols[f].path);
			goto fail;
		}
	}
	if (!s->vecs) {
		*out = s;
		return 0;
	}
	rc = node_seg_prepare(c, s, 0, err);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	mv_store_unmap(nd->store, map);
	free(file);
	free(a);
	node_seg_free(s);
	return rc;
}

int node_seg_read(struct node *nd, struct coll *c, const char *path,
		  const json_t *val, struct seg **out, struct mv_err *err)
{
	return seg_read(nd, c, path, json_u64(val, "seq"),
			json_u64(val, "size"), json_u64(val, "rows"), 0, out,
			err);
}

/* The vectors of the n rows of path alone (node_seg_vecs_read), in *out. */
static int vecs_read(struct node *nd, struct coll *c, const char *path,
		     uint64_t n, struct seg **out, struct mv_err *err)
{
	struct seg *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	snprintf(t->path, sizeof(t->path), "%s", path);
	rc = node_seg_vecs_read(nd, c, t, n, err);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* Give s the vectors of t (vecs_read of its file) and free t. */
static void seg_take_vecs(struct seg *s, struct seg *t)
{
	s->own = t->own;
	s->vecs = t->vecs;
	s->raw = t->raw;
	s->norms2 = t->norms2;
	t->own = NULL;
	t->norms2 = NULL;
	node_seg_free(t);
}

/*
 * The vectors of s, read without them because an index was to cover it,
 * when that index did not load: brute force needs them after all.
 */
static int seg_fill(struct node *nd, struct coll *c, struct seg *s,
		    struct mv_err *err)
{
	struct seg *t = NULL;
	int rc = vecs_read(nd, c, s->path, s->n, &t, err);

	if (rc == 0)
		seg_take_vecs(s, t);
	return rc;
}

int node_seg_attach(struct coll *c, struct seg *s, struct mv_err *err)
{
	struct seg **segs = realloc(c->segs, (c->nsegs + 1) * sizeof(*segs));

	if (segs)
		c->segs = segs;
	if (!segs || mv_idmap_reserve(&c->ids, s->n) < 0)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	c->segs[c->nsegs++] = s;
	node_seg_held(s);
	if (s->ndeleted) {
		/* A merged file's rows deleted within the history: not live. */
		for (uint64_t r = 0; r < s->n; r++)
			if (!node_seg_is_deleted(s, r))
				mv_idmap_put(&c->ids, s->ids[r], s, r);
	} else {
		mv_idmap_put_rows(&c->ids, s->ids, s->n, s, 0);
	}
	bump_next_id(c, s->ids, s->n);
	c->rows += (int64_t)(s->n - s->ndeleted);
	c->gen++;
	return 0;
}

/* 1 if the index key's value val names leaf among its raw files. */
static int index_covers(const json_t *val, const char *leaf)
{
	const json_t *raw = json_object_get(val, "raw_files");

	for (size_t i = 0; i < json_array_size(raw); i++) {
		const char *f = json_string_value(json_array_get(raw, i));
		if (f && !strcmp(f, leaf))
			return 1;
	}
	return 0;
}

int node_coll_del(const struct coll *c, const char *path)
{
	for (size_t i = 0; i < c->ndels; i++)
		if (!strcmp(c->dels[i].path, path))
			return 1;
	return 0;
}

/*
 * A reload's copy of o, a segment the node holds: its ids, columns and
 * rowseq borrowed (immutable; node_reload_adopt takes them over), its
 * deletions copied (changed only under node.commit, which the reload
 * holds), its vectors left with o until the swap.
 */
static struct seg *seg_clone(struct seg *o)
{
	struct seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	memcpy(s->path, o->path, sizeof(s->path));
	s->from = o;
	s->seq = o->seq;
	s->n = o->n;
	s->size = o->size;
	s->ids = o->ids;
	s->ncols = o->ncols;
	s->cols = o->cols;
	s->rowseq = o->rowseq;
	s->minseq = o->minseq;
	s->ndeleted = o->ndeleted;
	if (o->deleted) {
		if (!(s->deleted = malloc((o->n + 7) / 8)))
			goto oom;
		memcpy(s->deleted, o->deleted, (o->n + 7) / 8);
	}
	if (o->ndseq) {
		if (!(s->dseq = malloc(o->ndseq * sizeof(*s->dseq))))
			goto oom;
		memcpy(s->dseq, o->dseq, o->ndseq * sizeof(*s->dseq));
		s->ndseq = s->dseqcap = o->ndseq;
	}
	return s;
oom:
	node_seg_free(s);
	return NULL;
}

static int load_seg(struct node *nd, struct coll *c, const char *dir,
		    struct loaded *l, const json_t *index, struct reuse *r,
		    struct mv_err *err)
{
	char path[MV_SPATH];
	struct seg *s = NULL, *o;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s", dir, l->name);
	if (!r) {
		rc = seg_read(nd, c, path, l->seq, json_u64(l->val, "size"),
			      json_u64(l->val, "rows"),
			      index && index_covers(index, l->name), &s, err);
		if ((rc = node_gone_since(nd, c, path, rc, err)) != 0)
			return rc;
	} else {
		for (size_t i = 0; !s && i < r->nsegs; i++)
			if (r->segs[i] && !strcmp(r->segs[i]->path, path)) {
				s = r->segs[i];	/* read ahead */
				r->segs[i] = NULL;
				if (l->seq < r->newmin)
					r->newmin = l->seq;
			}
		if (!s && (o = node_coll_seg(r->c, path)) &&
		    !(s = seg_clone(o))) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		} else if (s && s->from) {
			/* Its vectors read again (node_reload_read). */
			for (size_t i = 0; i < r->nfills; i++)
				if (r->fills[i] &&
				    !strcmp(r->fills[i]->path, path)) {
					seg_take_vecs(s, r->fills[i]);
					r->fills[i] = NULL;
				}
		} else if (!s && r->fill_missing) {
			/* Committed after the last read-ahead: read here.
			 * Like one read ahead, it holds rows that the delete
			 * logs after it may delete: they are applied to it. */
			rc = seg_read(nd, c, path, l->seq,
				      json_u64(l->val, "size"),
				      json_u64(l->val, "rows"),
				      index && index_covers(index, l->name),
				      &s, err);
			if ((rc = node_gone_since(nd, c, path, rc, err)) != 0)
				return rc;
			if (l->seq < r->newmin)
				r->newmin = l->seq;
		} else if (!s) {
			mv_err_set(err, MV_EAGAIN, "'%s' appeared after the "
				   "reload's reads", path);
			return NODE_RELOAD_AGAIN;
		}
	}
	if (rc == 0 && (rc = node_seg_attach(c, s, err)) < 0)
		node_seg_free(s);
	return rc;
}

int node_del_read(struct node *nd, const char *path, int64_t **ids,
		  size_t *n, struct mv_err *err)
{
	struct mv_seginfo info;
	void *file = NULL, *a = NULL;
	const void *b;
	size_t len;
	int rc;

	rc = mv_store_get(nd->store, path, &file, &len, err);
	if (rc == 0)
		rc = mv_segfile_decode(path, file, len, &info, &a, &b, err);
	free(file);
	if (rc < 0)
		return rc;
	*ids = a;
	*n = info.a_raw / 8;
	return 0;
}

int node_del_apply(struct coll *c, const char *path, uint64_t seq,
		   const int64_t *d, size_t n, struct mv_err *err)
{
	{
		for (uint64_t j = 0; j < n; j++) {
			struct mv_idmap_ent *e = mv_idmap_get(&c->ids, d[j]);
			if (e) {
				if (node_seg_set_deleted_at(e->seg, e->row,
							    seq) < 0)
					return mv_err_set(err, MV_EINTERNAL,
							  "out of memory");
				mv_idmap_del(&c->ids, d[j]);
				c->rows--;
			}
		}
	}
	/* A delete-only flush is on the time axis too (a follower's as-of
	 * takes a flush at or past next_seq - 1 for now). */
	if (seq >= c->next_seq)
		c->next_seq = seq + 1;
	c->gen++;
	{
		struct dellog *dl = realloc(c->dels, (c->ndels + 1) * sizeof(*dl));
		if (!dl)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		c->dels = dl;
		snprintf(dl[c->ndels].path, sizeof(dl->path), "%s", path);
		dl[c->ndels++].seq = seq;
	}
	return 0;
}

static int load_del(struct node *nd, struct coll *c, const char *dir,
		    struct loaded *l, struct reuse *r, struct mv_err *err)
{
	char path[MV_SPATH];
	int64_t *d = NULL;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s%s", dir, l->name);
	if (r) {
		/*
		 * A log the node applied needs no reading: the copies of its
		 * segments carry its deletions.  Unless a segment read ahead
		 * came before it: then node_reload_read read it too.
		 */
		for (size_t i = 0; i < r->ndels; i++)
			if (!strcmp(r->dels[i].path, path))
				return node_del_apply(c, path, l->seq,
						      r->dels[i].ids,
						      r->dels[i].n, err);
		if (node_coll_del(r->c, path) && r->newmin >= l->seq)
			return node_del_apply(c, path, l->seq, NULL, 0, err);
		if (!r->fill_missing) {
			mv_err_set(err, MV_EAGAIN, "'%s' appeared after the "
				   "reload's reads", path);
			return NODE_RELOAD_AGAIN;
		}
	}
	rc = node_gone_since(nd, c, path, node_del_read(nd, path, &d, &n, err),
			     err);
	if (rc == 0)
		rc = node_del_apply(c, path, l->seq, d, n, err);
	free(d);
	return rc;
}

/* r's read-ahead segment (fill: r's fills) whose file is path, or NULL. */
static struct seg *reuse_seg(const struct reuse *r, const char *path,
			     int fill)
{
	struct seg *const *v = fill ? r->fills : r->segs;
	size_t n = fill ? r->nfills : r->nsegs;

	for (size_t i = 0; i < n; i++)
		if (v[i] && !strcmp(v[i]->path, path))
			return v[i];
	return NULL;
}

static int reuse_has_del(const struct reuse *r, const char *path)
{
	for (size_t i = 0; i < r->ndels; i++)
		if (!strcmp(r->dels[i].path, path))
			return 1;
	return 0;
}

/* Room in r's arrays for n more entries each. */
static int reuse_grow(struct reuse *r, size_t n)
{
	struct seg **segs = realloc(r->segs, (r->nsegs + n + 1) *
				    sizeof(*segs));
	struct seg **fills;
	struct predel *dels;

	if (!segs)
		return -1;
	r->segs = segs;
	if (!(fills = realloc(r->fills, (r->nfills + n + 1) * sizeof(*fills))))
		return -1;
	r->fills = fills;
	if (!(dels = realloc(r->dels, (r->ndels + n + 1) * sizeof(*dels))))
		return -1;
	r->dels = dels;
	return 0;
}

int node_reload_read(struct node *nd, struct coll *c, struct reuse *r,
		     struct mv_err *err)
{
	char dir[200], path[MV_SPATH];
	struct load_ctx lc = { 0 };
	json_t *index = NULL;
	uint64_t minseq = UINT64_MAX;
	int rc, held;

	if (r->c != c) {
		node_reuse_release(r);
		memset(r, 0, sizeof(*r));
		r->c = c;
	}
	r->newmin = UINT64_MAX;
	rc = load_list(nd, c, &lc, dir, sizeof(dir), &index, err);
	if (rc < 0)
		goto out;
	node_test_pause("MV_TEST_PAUSE_READAHEAD");
	if (reuse_grow(r, lc.n) < 0) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->nsegs; i++)
		if (r->segs[i] && r->segs[i]->seq < minseq)
			minseq = r->segs[i]->seq;
	/*
	 * The vector files c lacks, then the delete logs they need; what an
	 * earlier call read (another node committed since) is kept, so each
	 * call reads only what was committed since the one before.
	 */
	for (size_t i = 0; i < lc.n && rc == 0; i++) {
		struct seg *s = NULL, *o;
		uint64_t n = 0;
		int fill;

		if (!lc.v[i].kind)
			continue;
		snprintf(path, sizeof(path), "%s%s", dir, lc.v[i].name);
		pthread_rwlock_rdlock(&c->lock);
		o = node_coll_seg(c, path);
		held = o != NULL;
		fill = o && !o->vecs && o->n > o->ndeleted &&
		       node_place_held(nd, path) &&
		       !(index && index_covers(index, lc.v[i].name));
		if (fill)
			n = o->n;
		pthread_rwlock_unlock(&c->lock);
		if (fill) {
			/*
			 * Held, without vectors because the old index
			 * covered it, and the new one does not (or there is
			 * none): searched by brute force from the swap on.
			 */
			if (reuse_seg(r, path, 1))
				continue;
			rc = node_gone_since(nd, c, path,
					     vecs_read(nd, c, path, n, &s, err),
					     err);
			if (rc == 0)
				r->fills[r->nfills++] = s;
			continue;
		}
		if (held || reuse_seg(r, path, 0))
			continue;
		rc = seg_read(nd, c, path, lc.v[i].seq,
			      json_u64(lc.v[i].val, "size"),
			      json_u64(lc.v[i].val, "rows"),
			      index && index_covers(index, lc.v[i].name), &s,
			      err);
		rc = node_gone_since(nd, c, path, rc, err);
		if (rc == 0)
			r->segs[r->nsegs++] = s;
		if (rc == 0 && lc.v[i].seq < minseq)
			minseq = lc.v[i].seq;
	}
	for (size_t i = 0; i < lc.n && rc == 0; i++) {
		struct predel *p = &r->dels[r->ndels];

		if (lc.v[i].kind)
			continue;
		snprintf(path, sizeof(path), "%s%s", dir, lc.v[i].name);
		if (reuse_has_del(r, path))
			continue;
		pthread_rwlock_rdlock(&c->lock);
		held = node_coll_del(c, path);
		pthread_rwlock_unlock(&c->lock);
		if (held && lc.v[i].seq <= minseq)
			continue;
		snprintf(p->path, sizeof(p->path), "%s", path);
		rc = node_gone_since(nd, c, path, node_del_read(nd, path,
					&p->ids, &p->n, err), err);
		if (rc == 0)
			r->ndels++;
	}
	/* A new index this node holds; the one it has is kept. */
	if (rc == 0 && lc.index_leaf) {
		snprintf(path, sizeof(path), "%s%s", dir, lc.index_leaf);
		pthread_rwlock_rdlock(&c->lock);
		held = c->index && !strcmp(c->index->path, path);
		pthread_rwlock_unlock(&c->lock);
		if (!held && node_place_held(nd, path) &&
		    !(r->ix && !strcmp(r->ixpath, path))) {
			mv_index_free(r->ix);
			r->ix = NULL;
			snprintf(r->ixpath, sizeof(r->ixpath), "%s", path);
			rc = node_gone_since(nd, c, path,
					     node_index_fetch(nd, path,
							      UINT64_MAX,
							      &r->ix,
							      &r->ixlen, err),
					     err);
		}
	}
out:
	load_ctx_free(&lc);
	json_decref(index);
	if (rc != 0)
		node_reuse_release(r);
	return rc;
}

/*
 * Whether r (a reload's read-ahead) has every file of lc that the load
 * would take from it, checked before the load takes any: a load that
 * lacks one returns NODE_RELOAD_AGAIN and keeps r whole for the next
 * read-ahead, which then reads only what is new.  The same rules as
 * load_seg, load_del and node_index_load.
 */
static int reuse_ready(struct node *nd, const struct reuse *r,
		       const char *dir, const struct load_ctx *lc,
		       struct mv_err *err)
{
	char path[MV_SPATH];
	uint64_t newmin = UINT64_MAX;

	for (size_t i = 0; i < lc->n; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, lc->v[i].name);
		if (lc->v[i].kind) {
			if (reuse_seg(r, path, 0)) {
				if (lc->v[i].seq < newmin)
					newmin = lc->v[i].seq;
				continue;
			}
			if (node_coll_seg(r->c, path))
				continue;
		} else if (reuse_has_del(r, path) ||
			   (node_coll_del(r->c, path) &&
			    newmin >= lc->v[i].seq)) {
			continue;
		}
		mv_err_set(err, MV_EAGAIN, "'%s' appeared after the reload's "
			   "reads", path);
		return NODE_RELOAD_AGAIN;
	}
	if (lc->index_leaf) {
		snprintf(path, sizeof(path), "%s%s", dir, lc->index_leaf);
		if (node_place_held(nd, path) &&
		    !(r->c->index && !strcmp(r->c->index->path, path)) &&
		    !(r->ix && !strcmp(r->ixpath, path))) {
			mv_err_set(err, MV_EAGAIN, "index '%s' appeared after "
				   "the reload's reads", path);
			return NODE_RELOAD_AGAIN;
		}
	}
	return 0;
}

void node_reuse_release(struct reuse *r)
{
	for (size_t i = 0; i < r->nsegs; i++)
		node_seg_free(r->segs[i]);
	free(r->segs);
	for (size_t i = 0; i < r->nfills; i++)
		node_seg_free(r->fills[i]);
	free(r->fills);
	for (size_t i = 0; i < r->ndels; i++)
		free(r->dels[i].ids);
	free(r->dels);
	mv_index_free(r->ix);
	r->segs = r->fills = NULL;
	r->dels = NULL;
	r->ix = NULL;
	r->nsegs = r->nfills = r->ndels = 0;
}

void node_reload_adopt(struct coll *c, struct coll *n2)
{
	for (size_t i = 0; i < n2->nsegs; i++) {
		struct seg *s = n2->segs[i], *o = s->from;

		if (!o)
			continue;
		node_seg_lend(o, s);
	}
	/* The same index file: its FAISS index and what it counts. */
	if (c->index && n2->index && !n2->index->ix &&
	    !strcmp(c->index->path, n2->index->path)) {
		n2->index->ix = c->index->ix;
		n2->index->held = c->index->held;
		c->index->ix = NULL;
		c->index->held = 0;
	}
}

static int coll_load_once(struct node *nd, const char *user,
			  const char *name, int startup, struct reuse *r,
			  struct coll **out, struct mv_err *err)
{
	char key[256], *val = NULL, dir[200];
	size_t vlen;
	json_t *j = NULL, *fs, *index = NULL;
	struct mv_field f[MV_FIELDS_MAX];
	int nf = 0, rc;
	enum mv_metric metric;
	struct coll *c = NULL;
	struct load_ctx lc = { 0 };

	key_coll(key, sizeof(key), user, name, "schema");
	rc = mv_meta_get(nd->meta, key, &val, &vlen, err);
	if (rc != 0) {
		if (rc > 0 && startup)
			rc = mv_err_set(err, MV_EIO, "no schema for '%s'", name);
		return rc;
	}
	j = json_loadb(val, vlen, 0, NULL);
	free(val);
	if (!j || mv_metric_parse(json_string_value(json_object_get(j, "metric"))
				  ? json_string_value(json_object_get(j, "metric"))
				  : "?", &metric) < 0) {
		rc = mv_err_set(err, MV_EIO, "bad schema for '%s'", name);
		goto out;
	}
	fs = json_object_get(j, "fields");
	for (size_t i = 0; i < json_array_size(fs) && nf < MV_FIELDS_MAX; i++) {
		json_t *x = json_array_get(fs, i);
		snprintf(f[nf].name, sizeof(f[nf].name), "%s",
			 json_string_value(json_object_get(x, "name")));
		if (mv_ftype_parse(json_string_value(json_object_get(x, "type")),
				   &f[nf].type) < 0) {
			rc = mv_err_set(err, MV_EIO, "bad schema for '%s'", name);
			goto out;
		}
		nf++;
	}
	c = coll_new(user, name,
		     (uint32_t)json_integer_value(json_object_get(j, "dim")),
		     metric, f, nf);
	if (!c) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	c->create_time = json_integer_value(json_object_get(j, "create_time"));
	snprintf(c->token, sizeof(c->token), "%s",
		 json_string_value(json_object_get(j, "token")));
	if (r && strcmp(r->c->token, c->token))
		r = NULL;	/* another incarnation: nothing to reuse */
	if (r)
		r->newmin = UINT64_MAX;
	key_coll(key, sizeof(key), user, name, "state");
	{
		/* Ids below next_id may have been handed out: never again. */
		struct mv_state st;

		if (mv_state_load(nd->meta, key, &c->state, &st, NULL) == 0) {
			c->id_next = c->id_end = st.next_id;
			c->next_seq = st.next_seq;
		}
	}
	if (c->next_seq == 0)
		c->next_seq = 1;
	rc = load_list(nd, c, &lc, dir, sizeof(dir), &index, err);
	if (rc < 0)
		goto out;
	if (r && !r->fill_missing &&
	    (rc = reuse_ready(nd, r, dir, &lc, err)) != 0)
		goto out;
	if (startup)
		node_test_pause("MV_TEST_PAUSE_LOAD");
	for (size_t i = 0; i < lc.n; i++) {
		rc = lc.v[i].kind ? load_seg(nd, c, dir, &lc.v[i], index, r,
					     err)
				  : load_del(nd, c, dir, &lc.v[i], r, err);
		if (rc != 0)
			goto out;
		if (lc.v[i].seq >= c->next_seq)
			c->next_seq = lc.v[i].seq + 1;
	}
	if (!c->state && !startup) {
		rc = mv_err_set(err, MV_EIO, "no state record for '%s'", name);
		goto out;
	}
	if (!c->state) {
		/* No (readable) state record: a fresh one past every row. */
		struct mv_state st = { c->id_next, c->next_seq };
		char sv[96];

		mv_state_format(&st, sv, sizeof(sv));
		key_coll(key, sizeof(key), user, name, "state");
		rc = mv_meta_put(nd->meta, key, sv, strlen(sv), err);
		if (rc < 0)
			goto out;
		if (!(c->state = strdup(sv))) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		c->id_end = c->id_next;
	}
	if (lc.index_leaf &&
	    (rc = node_index_load(nd, c, dir, lc.index_leaf, lc.index_val,
				  lc.index_vlen, r, err)) == NODE_RELOAD_AGAIN)
		goto out;
	if (lc.index_leaf && rc < 0) {
		/* A bad index is not fatal: search falls back to brute force. */
		log_warnx("collection '%s': %s; searching without the index",
			  name, err ? err->msg : "bad index");
		mv_err_clear(err);
		/* The segments it was to cover were read without vectors. */
		for (size_t i = 0; i < c->nsegs; i++) {
			struct seg *s = c->segs[i];

			if (!s->vecs && !s->indexed && s->n &&
			    node_place_held(nd, s->path) &&
			    (rc = seg_fill(nd, c, s, err)) < 0)
				goto out;
		}
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	load_ctx_free(&lc);
	json_decref(index);
	json_decref(j);
	coll_put(c);
	return rc;
}

/*
 * Reads of everything, each of a list a merge changed under it.  At
 * start-up they go on for LOAD_START_MS: under a stream of merges by
 * other nodes a restarted node would otherwise fail to start at all.
 */
#define LOAD_TRIES 5
#define LOAD_START_MS 120000

int node_coll_load(struct node *nd, const char *user, const char *name,
		   int startup, struct reuse *r, struct coll **out,
		   struct mv_err *err)
{
	int64_t t0 = node_mono_ms();
	int rc = coll_load_once(nd, user, name, startup, r, out, err);

	/* With a reuse, its read-ahead is the caller's to do again. */
	for (int t = 1; !r && rc == NODE_RELOAD_AGAIN; t++) {
		if (t >= LOAD_TRIES &&
		    (!startup || node_mono_ms() - t0 >= LOAD_START_MS))
			return err ? err->code : MV_EAGAIN;
		log_info("collection '%s': %s; reading it again", name,
			 err ? err->msg : "");
		mv_err_clear(err);
		rc = coll_load_once(nd, user, name, startup, r, out, err);
	}
	return rc;
}

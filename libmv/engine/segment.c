/*
 * segment.c - flushed segments: their files' names and writing, decoded
 * columns, deletion bitmaps, raw vectors and field text.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include "bigmem.h"
#include "colix.h"
#include "internal.h"
#include "knn.h"
#include "log.h"
#include "segfile.h"
#include "vcheck.h"

void node_seg_base(const struct node *nd, const struct coll *c, char *out,
		   size_t cap)
{
	char tok[17], who[16] = "";

	node_random_hex(tok, 8);
	if (nd->cluster)
		snprintf(who, sizeof(who), "n%u-", nd->node_no);
	snprintf(out, cap, "%s/%s-%s/%s%" PRId64 "-%s", c->user, c->name,
		 c->token, who, node_now_ms(), tok);
}

void node_seg_held(struct seg *s)
{
	if (!s->held && s->size) {
		s->held = s->size;
		node_held_add((long long)s->held);
	}
}

void node_seg_free(struct seg *s)
{
	if (!s)
		return;
	if (s->from) {
		/* A reload's copy not adopted: these are the original's. */
		s->ids = NULL;
		s->rowseq = NULL;
		s->cols = NULL;
		s->ncols = 0;
	}
	if (s->held)
		node_held_add(-(long long)s->held);
	for (int i = 0; i <= MV_FIELDS_MAX; i++) {
		struct mv_colix *x = atomic_load(&s->six[i]);

		if (x) {
			node_held_add(-(long long)mv_colix_bytes(x));
			mv_colix_free(x);
		}
	}
	if (!(s->lent & SEG_LENT_ROWS)) {
		free(s->ids);
		free(s->rowseq);
		for (int i = 0; i < s->ncols; i++) {
			free(s->cols[i].vals);
			free(s->cols[i].off);
		}
		free(s->cols);
	}
	if (!(s->lent & SEG_LENT_VECS)) {
		node_seg_free_own(s, 1);
		free(s->norms2);
	}
	if (s->map && !(s->lent & SEG_LENT_MAP))
		mv_store_unmap(the_node->store, s->map);
	free(s->deleted);
	free(s->dseq);
	free(s);
}

void node_seg_free_own(struct seg *s, int keep)
{
	if (s->big.p)
		mv_big_free(&s->big, s->big.touched, keep);
	else
		free(s->own);
	s->own = NULL;
}

long node_string_block(const unsigned char *p, size_t len, uint64_t n,
		       uint64_t *off)
{
	size_t pos = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t l;

		if (len - pos < 4)
			return -1;
		memcpy(&l, p + pos, 4);
		if (len - pos - 4 < l)
			return -1;
		if (off)
			off[i] = pos;
		pos += 4 + l;
	}
	return (long)pos;
}

/*
 * Offsets of the n string records of a whole column block.  A record takes
 * 4 bytes at least: a larger n (a wrong header) is refused before its
 * offsets are allocated, and n * 8 cannot wrap.
 */
static int string_offsets(const unsigned char *p, size_t len, uint64_t n,
			  uint64_t **off)
{
	*off = NULL;
	if (n > len / 4)
		return MV_EDATA;
	*off = malloc((n ? n : 1) * sizeof(uint64_t));
	if (!*off)
		return MV_EINTERNAL;
	if (node_string_block(p, len, n, *off) == (long)len)
		return 0;
	free(*off);
	*off = NULL;
	return MV_EDATA;
}

/*
 * Finish a segment whose ids and own vectors are set: normalise for
 * cosine the rows from row done on (raw then comes from the stored file),
 * norms for l2.
 */
int node_seg_prepare(struct coll *c, struct seg *s, uint64_t done,
		     struct mv_err *err)
{
	if (c->metric == MV_COSINE) {
		if (done < s->n)
			node_normalise(s->vecs + done * c->dim, s->n - done,
				       c->dim);
	} else {
		s->raw = s->vecs;
	}
	if (c->metric == MV_L2 && s->n && !s->norms2) {
		s->norms2 = malloc(s->n * sizeof(float));
		if (!s->norms2)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		mv_knn_norms2(s->vecs, s->n, c->dim, s->norms2);
	}
	return 0;
}

/*
 * Guards a segment's mapping (map, raw): seg_raw makes it without
 * c->lock, for a merge or build; node_seg_lend moves it.
 */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

void node_seg_lend(struct seg *o, struct seg *s)
{
	pthread_mutex_lock(&map_lock);
	s->from = NULL;		/* ids, cols, rowseq are s's now */
	o->lent |= SEG_LENT_ROWS;
	if (o->map && !s->map && !(o->lent & SEG_LENT_MAP)) {
		s->map = o->map;
		if (!s->raw)	/* else its vectors, read again */
			s->raw = o->raw;
		o->lent |= SEG_LENT_MAP;
	}
	/*
	 * The vectors, unless the index covers the segment now (or they
	 * were read again: an index that failed to load).
	 */
	if (o->vecs && !(o->lent & SEG_LENT_VECS) && !s->indexed &&
	    !s->vecs) {
		s->own = o->own;
		s->big = o->big;
		s->vecs = o->vecs;
		s->norms2 = o->norms2;
		if (o->raw == o->vecs)
			s->raw = s->vecs;
		o->lent |= SEG_LENT_VECS;
	}
	pthread_mutex_unlock(&map_lock);
	/*
	 * The sorted indexes, over the same columns: moved, not lent (no
	 * merge or build reads them; searches do, under c->lock, held
	 * exclusively at the swap).
	 */
	for (int j = 0; j <= MV_FIELDS_MAX; j++)
		if (!atomic_load(&s->six[j]))
			atomic_store(&s->six[j],
				     atomic_exchange(&o->six[j], NULL));
	/* s counts the file now; o, only while it keeps vectors of its own. */
	if (o->held && (!o->vecs || (o->lent & SEG_LENT_VECS))) {
		node_held_add(-(long long)o->held);
		o->held = 0;
	}
}

/*
 * Map the raw vectors of a segment that keeps none in memory (cosine, an
 * index covers it, another node's unit), for GET, merges and builds.
 * Every byte is checked here, block B included: a cluster node read only
 * the header and block A of such a file at load (load.c).
 */
static int seg_raw(struct node *nd, struct seg *s, const float **raw,
		   struct mv_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&map_lock);
	if (!s->raw) {
		const void *p, *b;
		size_t len;
		void *h, *a;
		struct mv_seginfo info;

		rc = mv_store_map(nd->store, s->path, &p, &len, &h, err);
		if (rc == 0 &&
		    (rc = mv_segfile_decode(s->path, p, len, &info, &a, &b,
					    err)) < 0) {
			mv_store_unmap(nd->store, h);
		} else if (rc == 0) {
			/* The checksum read every page: only what GET
			 * reads again need be resident. */
			mv_store_map_evict(nd->store, h);
			free(a);
			s->map = h;
			s->raw = b;
		}
	}
	*raw = s->raw;
	pthread_mutex_unlock(&map_lock);
	if (rc == 0 && !*raw)
		rc = mv_err_set(err, MV_EIO, "'%s': no vectors", s->path);
	return rc;
}

int node_seg_set_deleted(struct seg *s, uint64_t row)
{
	if (!s->deleted) {
		s->deleted = calloc((s->n + 7) / 8, 1);
		if (!s->deleted)
			return MV_EINTERNAL;
	}
	if (!(s->deleted[row / 8] & (1u << (row % 8)))) {
		s->deleted[row / 8] |= (uint8_t)(1u << (row % 8));
		s->ndeleted++;
	}
	return 0;
}

int node_seg_is_deleted(const struct seg *s, uint64_t row)
{
	return s->deleted && (s->deleted[row / 8] & (1u << (row % 8)));
}

int node_put_file(struct node *nd, const char *path, enum mv_segkind kind,
		    uint32_t aux, uint64_t n, const void *a, size_t alen,
		    const void *bp, size_t blen, uint64_t *size,
		    struct mv_err *err)
{
	struct mv_segenc e;
	int rc = mv_segenc_init(&e, kind, aux, n, a, alen, bp, blen, err);

	if (rc < 0)
		return rc;
	*size = 0;
	for (int i = 0; i < 4; i++)
		*size += e.iov[i].iov_len;
	rc = mv_store_put(nd->store, path, e.iov, 4, err);
	mv_segenc_release(&e);
	return rc;
}

/* Decode the column block of a pending batch into a segment column. */
int node_seg_col_from(struct col *col, enum mv_ftype t, struct nbuf *nb,
			uint64_t n)
{
	col->type = t;
	if (t == MV_STRING) {
		if (string_offsets(nb->p, nb->len, n, &col->off) < 0)
			return MV_EDATA;
	}
	col->vals = nb->p;
	memset(nb, 0, sizeof(*nb));
	return 0;
}

int coll_fields_text(struct coll *c, struct seg *s, uint64_t row,
		     const int *which, int nwhich, struct nbuf *out)
{
	for (int i = 0; i < nwhich; i++) {
		int f = which[i];
		const struct col *col = &s->cols[f];
		char num[64];
		const char *p = num;
		size_t len;

		if (c->fields[f].type == MV_INT64) {
			int64_t v;
			memcpy(&v, (char *)col->vals + row * 8, 8);
			len = (size_t)snprintf(num, sizeof(num), "%" PRId64, v);
		} else if (c->fields[f].type == MV_FLOAT64) {
			double v;
			memcpy(&v, (char *)col->vals + row * 8, 8);
			len = (size_t)snprintf(num, sizeof(num), "%.17g", v);
		} else if (c->fields[f].type == MV_BOOL) {
			int64_t v;
			memcpy(&v, (char *)col->vals + row * 8, 8);
			p = v ? "true" : "false";
			len = v ? 4 : 5;
		} else {
			uint32_t l;
			memcpy(&l, (char *)col->vals + col->off[row], 4);
			p = (char *)col->vals + col->off[row] + 4;
			len = l;
		}
		if (nbuf_reserve(out, len * 2 + 2) < 0)
			return MV_EINTERNAL;
		if (i)
			out->p[out->len++] = '\t';
		for (size_t j = 0; j < len; j++) {
			/* Keep the TSV well-formed: escape tab and newline. */
			char ch = p[j];
			if (ch == '\t' || ch == '\n' || ch == '\\') {
				out->p[out->len++] = '\\';
				ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : '\\';
			}
			out->p[out->len++] = (unsigned char)ch;
		}
	}
	if (nbuf_reserve(out, 1) < 0)
		return MV_EINTERNAL;
	out->p[out->len++] = '\n';
	return 0;
}

int node_seg_raw(struct node *nd, struct seg *s, const float **raw,
		 struct mv_err *err)
{
	return seg_raw(nd, s, raw, err);
}

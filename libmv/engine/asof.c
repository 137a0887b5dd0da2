/*
 * asof.c - the time axis in reads (DESIGN.md "The time axis"): which rows
 * a collection held right after a flush.  A row is visible at flush A
 * when the flush that inserted it is at most A (the segment's seq, or a
 * merged segment's per-row seq) and no flush up to A deleted it (the
 * segment's deletion seqs).  The same per-segment bitmaps as filters
 * carry it (node_seg_match, here: the rows that match a filter and are
 * visible now; search.c's plan takes them), so a filter and an as-of
 * combine by AND and take the same plan.  Not here: pruning the records (history.c), keeping
 * deleted rows through merges (compact.c).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "colix.h"
#include "filter.h"
#include "internal.h"

/* The columns of s as the filter reads them, all its rows. */
static void seg_rows(const struct seg *s, struct mv_filter_rows *r)
{
	memset(r, 0, sizeof(*r));
	r->n = s->n;
	r->ids = s->ids;
	for (int i = 0; i < s->ncols && i < MV_FIELDS_MAX; i++) {
		r->vals[i] = s->cols[i].vals;
		r->off[i] = s->cols[i].off;
	}
}

/* Builds of sorted indexes (a column's once; rare, so one lock for all). */
static pthread_mutex_t six_lock = PTHREAD_MUTEX_INITIALIZER;
atomic_ullong node_six_used;

/*
 * The sorted index of s's column i (MV_FIELDS_MAX: the ids), built now
 * if it was not; NULL when it cannot be (out of memory, or it would take
 * node_held past memory_limit).  c->lock held shared or exclusively: two
 * searches may ask at once, the mutex makes one build it and the other
 * wait and take it.
 */
static struct mv_colix *seg_six(const struct seg *s, int i, const void *vals,
				const uint64_t *off, enum mv_colix_type type)
{
	struct seg *w = (struct seg *)s;	/* the index slot only */
	struct mv_colix *x = atomic_load_explicit(&w->six[i],
						  memory_order_acquire);

	if (x)
		return x;
	/* Not past memory_limit: the filter scans instead. */
	if (the_node && the_node->conf.memory_limit > 0 &&
	    node_held + (long long)(s->n * sizeof(uint32_t)) >
	    the_node->conf.memory_limit)
		return NULL;
	pthread_mutex_lock(&six_lock);
	x = atomic_load_explicit(&w->six[i], memory_order_acquire);
	if (!x && (x = mv_colix_build(vals, off, s->n, type))) {
		node_held_add((long long)mv_colix_bytes(x));
		atomic_store_explicit(&w->six[i], x, memory_order_release);
	}
	pthread_mutex_unlock(&six_lock);
	return x;
}

/*
 * f over all of s's rows into bits (deleted rows too), by a sorted index
 * when f bounds a column to few rows (mv_filter_bounds; the field whose
 * bound holds the fewest): the rows in the bound are found by binary
 * searches and only they are tested against f, so the bits are the
 * scan's.  Else, or for a small segment, the scan.
 */
static size_t seg_filter(const struct seg *s, const struct mv_filter *f,
			 uint8_t *bits)
{
	uint64_t mask = mv_filter_fields(f);
	struct mv_colix_hits h, best;
	struct mv_colix *bx = NULL;
	struct mv_filter_rows r;
	size_t nb = (s->n + 7) / 8;

	best.n = SIZE_MAX;
	if (s->n < NODE_SIX_MIN_ROWS || s->n > MV_COLIX_ROWS_MAX)
		goto scan;
	for (int i = -1; i < s->ncols && i < MV_FIELDS_MAX; i++) {
		enum mv_ftype t = i < 0 ? MV_INT64 : s->cols[i].type;
		struct mv_filter_bound b;
		const uint64_t *off = i < 0 ? NULL : s->cols[i].off;
		const void *vals;
		struct mv_colix *x;

		if (!(mask & (i < 0 ? MV_FILTER_ID : UINT64_C(1) << i)))
			continue;
		switch (mv_filter_bounds(f, i, &b)) {
		case MV_BOUND_EMPTY:
			memset(bits, 0, nb);
			return 0;
		case MV_BOUND_NONE:
			continue;
		default:
			break;
		}
		/* The bound is of the schema's type: the column's, surely. */
		if ((b.kind == MV_BOUND_STR) != (t == MV_STRING) ||
		    (b.kind == MV_BOUND_FLOAT) != (t == MV_FLOAT64))
			continue;
		vals = i < 0 ? (const void *)s->ids : s->cols[i].vals;
		if (!vals || (t == MV_STRING && !off) ||
		    !(x = seg_six(s, i < 0 ? MV_FIELDS_MAX : i, vals, off,
				  t == MV_STRING ? MV_COLIX_STR :
				  t == MV_FLOAT64 ? MV_COLIX_FLOAT :
				  MV_COLIX_INT)))
			continue;
		if (mv_colix_find(x, vals, off, &b, &h) < best.n) {
			best = h;
			bx = x;
		}
	}
	if (bx && best.n <= s->n / NODE_SIX_NARROW) {
		atomic_fetch_add_explicit(&node_six_used, 1,
					  memory_order_relaxed);
		memset(bits, 0, nb);
		mv_colix_mark(bx, &best, bits);
		seg_rows(s, &r);
		return mv_filter_eval_sel(f, &r, bits);
	}
scan:
	seg_rows(s, &r);
	return mv_filter_eval(f, &r, bits);
}

size_t node_seg_match(const struct seg *s, const struct mv_filter *f,
		      uint8_t *bits)
{
	size_t nb = (s->n + 7) / 8, m;

	if (s->n == s->ndeleted || s->retired) {
		memset(bits, 0, nb);
		return 0;
	}
	m = seg_filter(s, f, bits);
	if (s->deleted && m) {
		m = 0;
		for (size_t b = 0; b < nb; b++) {
			bits[b] &= (uint8_t)~s->deleted[b];
			m += (size_t)__builtin_popcount(bits[b]);
		}
	}
	return m;
}

int node_row_matches(const struct seg *s, uint64_t row,
		     const struct mv_filter *f)
{
	return !node_seg_is_deleted(s, row) && node_row_filter(s, row, f);
}

int node_row_filter(const struct seg *s, uint64_t row,
		    const struct mv_filter *f)
{
	struct mv_filter_rows r;
	uint8_t bit = 0;

	memset(&r, 0, sizeof(r));
	r.n = 1;
	r.ids = s->ids + row;
	for (int i = 0; i < s->ncols && i < MV_FIELDS_MAX; i++) {
		const struct col *col = &s->cols[i];

		if (col->type == MV_STRING) {
			r.vals[i] = col->vals;
			r.off[i] = col->off + row;
		} else {
			r.vals[i] = (const int64_t *)col->vals + row;
		}
	}
	return mv_filter_eval(f, &r, &bit) == 1;
}

uint64_t node_seg_ins(const struct seg *s, uint64_t row)
{
	return s->rowseq ? s->rowseq[row] : s->seq;
}

int node_seg_reserve_deleted(struct seg *s, size_t more)
{
	if (!s->deleted) {
		s->deleted = calloc((s->n + 7) / 8, 1);
		if (!s->deleted)
			return MV_EINTERNAL;
	}
	if (s->ndseq + more > s->dseqcap) {
		size_t cap = s->dseqcap ? s->dseqcap * 2 : 16;
		struct segdel *d;

		if (cap < s->ndseq + more)
			cap = s->ndseq + more;
		d = realloc(s->dseq, cap * sizeof(*d));
		if (!d)
			return MV_EINTERNAL;
		s->dseq = d;
		s->dseqcap = cap;
	}
	return 0;
}

int node_seg_set_deleted_at(struct seg *s, uint64_t row, uint64_t seq)
{
	if (node_seg_is_deleted(s, row))
		return 0;
	if (node_seg_reserve_deleted(s, 1) < 0 ||
	    node_seg_set_deleted(s, row) < 0)
		return MV_EINTERNAL;
	s->dseq[s->ndseq++] = (struct segdel){ row, seq };
	return 0;
}

uint64_t node_asof_now(const struct coll *c, uint64_t asof)
{
	/* Every row and delete of c has a seq below next_seq. */
	return asof && asof + 1 >= c->next_seq ? 0 : asof;
}

/* The least and largest retained flush, and the time of the least. */
struct span {
	uint64_t first, last;
	int64_t first_ms;
	int n;
};

static int span_cb(void *arg, const struct node_flushrec *r)
{
	struct span *sp = arg;

	if (!sp->n++) {
		sp->first = r->seq;
		sp->first_ms = r->time_ms;
	}
	sp->last = r->seq;
	return 0;
}

int node_asof_check(struct node *nd, struct coll *c, uint64_t asof,
		    struct mv_err *err)
{
	char key[MV_SPATH], *val = NULL, iso[32];
	struct span sp = { 0 };
	size_t vlen;
	time_t t;
	struct tm tm;
	int rc;

	if (asof == 0)
		return mv_err_set(err, MV_ESERVER, "flush numbers start at 1");
	key_flush(key, sizeof(key), c->user, c->name, asof);
	rc = mv_meta_get(nd->meta, key, &val, &vlen, err);
	free(val);
	if (rc <= 0)
		return rc;
	rc = node_history(nd, c, span_cb, &sp, err);
	if (rc < 0)
		return rc;
	if (!sp.n)
		return mv_err_set(err, MV_ESERVER, "collection '%s' has no "
				  "retained history (history_retention)",
				  c->name);
	t = (time_t)(sp.first_ms / 1000);
	gmtime_r(&t, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asof > sp.last)
		return mv_err_set(err, MV_ESERVER, "collection '%s' has no "
				  "flush %" PRIu64 ": its latest is %" PRIu64
				  "; the retained history goes back to flush %"
				  PRIu64 " (%s)", c->name, asof, sp.last,
				  sp.first, iso);
	return mv_err_set(err, MV_ESERVER, "flush %" PRIu64 " of '%s' is not "
			  "in the retained history, which goes back to flush %"
			  PRIu64 " (%s)", asof, c->name, sp.first, iso);
}

/* Clear the bits past row n in the last byte of a bitmap. */
static void bits_tail(uint8_t *bits, uint64_t n)
{
	if (n % 8)
		bits[n / 8] &= (uint8_t)((1u << (n % 8)) - 1);
}

size_t node_seg_match_at(const struct seg *s, const struct mv_filter *f,
			 uint64_t asof, uint8_t *bits)
{
	size_t nb = (s->n + 7) / 8, m = 0;
	uint64_t least = s->rowseq ? s->minseq : s->seq;

	if (!asof) {
		if (f)
			return node_seg_match(s, f, bits);
		/* No filter: the live rows. */
		memset(bits, 0xff, nb);
		bits_tail(bits, s->n);
		if (s->retired || s->n == s->ndeleted)
			memset(bits, 0, nb);
		else if (s->deleted)
			for (size_t b = 0; b < nb; b++)
				bits[b] &= (uint8_t)~s->deleted[b];
		for (size_t b = 0; b < nb; b++)
			m += (size_t)__builtin_popcount(bits[b]);
		return m;
	}
	if (s->retired || least > asof || !s->n) {
		memset(bits, 0, nb);
		return 0;
	}
	if (f) {
		if (!seg_filter(s, f, bits))
			return 0;
	} else {
		memset(bits, 0xff, nb);
		bits_tail(bits, s->n);
	}
	/* Rows inserted after asof (a merged segment's). */
	if (s->rowseq && s->seq > asof)
		for (uint64_t r = 0; r < s->n; r++)
			if (s->rowseq[r] > asof)
				bits[r / 8] &= (uint8_t)~(1u << (r % 8));
	/* Rows deleted up to asof; those deleted later stay. */
	for (size_t i = 0; i < s->ndseq; i++)
		if (s->dseq[i].seq <= asof)
			bits[s->dseq[i].row / 8] &=
				(uint8_t)~(1u << (s->dseq[i].row % 8));
	for (size_t b = 0; b < nb; b++)
		m += (size_t)__builtin_popcount(bits[b]);
	return m;
}

int node_past_init(struct coll *c, uint64_t asof, struct node_past *p)
{
	p->asof = asof;
	mv_idmap_init(&p->dead);
	if (!asof)
		return 0;
	for (size_t i = 0; i < c->nsegs; i++) {
		struct seg *s = c->segs[i];

		if (s->retired)
			continue;
		for (size_t j = 0; j < s->ndseq; j++) {
			uint64_t r = s->dseq[j].row;

			if (s->dseq[j].seq > asof && node_seg_ins(s, r) <= asof &&
			    mv_idmap_put(&p->dead, s->ids[r], s, r) < 0) {
				mv_idmap_release(&p->dead);
				return MV_EINTERNAL;
			}
		}
	}
	return 0;
}

int node_row_at(struct coll *c, const struct node_past *p, int64_t id,
		struct seg **s, uint64_t *row)
{
	struct mv_idmap_ent *e = mv_idmap_get(&c->ids, id);

	if (e && (!p->asof || node_seg_ins(e->seg, e->row) <= p->asof)) {
		*s = e->seg;
		*row = e->row;
		return 1;
	}
	if (!p->asof || !(e = mv_idmap_get(&p->dead, id)))
		return 0;
	*s = e->seg;
	*row = e->row;
	return 1;
}

void node_past_release(struct node_past *p)
{
	mv_idmap_release(&p->dead);
}

/*
 * Sort n ids in place, tmp room for n more: least significant byte first,
 * a counting pass per byte (the sign bit flipped), skipping the bytes all
 * ids share (most of them, for ids from 1 up).  O(n), not O(n log n).
 */
static void sort_ids(int64_t *ids, int64_t *tmp, size_t n)
{
	uint64_t *a = (uint64_t *)ids, *b = (uint64_t *)tmp, *t;
	const uint64_t flip = 1ull << 63;
	size_t cnt[256];

	for (int shift = 0; shift < 64; shift += 8) {
		size_t pos = 0;

		memset(cnt, 0, sizeof(cnt));
		for (size_t i = 0; i < n; i++)
			cnt[((a[i] ^ flip) >> shift) & 0xff]++;
		if (n && cnt[((a[0] ^ flip) >> shift) & 0xff] == n)
			continue;
		for (int d = 0; d < 256; d++) {
			size_t x = cnt[d];

			cnt[d] = pos;
			pos += x;
		}
		for (size_t i = 0; i < n; i++)
			b[cnt[((a[i] ^ flip) >> shift) & 0xff]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	if (a != (uint64_t *)ids)
		memcpy(ids, a, n * sizeof(*ids));
}

/* The ids of the rows visible at asof (0: now) that match f (or all). */
static int visible_ids(struct coll *c, uint64_t asof,
		       const struct mv_filter *f, int64_t **out, size_t *n,
		       struct mv_err *err)
{
	uint64_t maxn = 0, all = 0;
	uint8_t *bits;
	int64_t *ids;
	size_t m = 0;

	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->nsegs; i++) {
		all += c->segs[i]->n;
		if (c->segs[i]->n > maxn)
			maxn = c->segs[i]->n;
	}
	bits = malloc(maxn / 8 + 1);
	ids = malloc(all * sizeof(*ids) + 1);
	if (!bits || !ids) {
		pthread_rwlock_unlock(&c->lock);
		free(bits);
		free(ids);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	for (size_t i = 0; i < c->nsegs; i++) {
		struct seg *s = c->segs[i];

		if (!node_seg_match_at(s, f, asof, bits))
			continue;
		for (uint64_t b = 0; b < (s->n + 7) / 8; b++) {
			unsigned v = bits[b];

			while (v) {
				ids[m++] = s->ids[b * 8 +
						  (unsigned)__builtin_ctz(v)];
				v &= v - 1;
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	free(bits);
	*out = ids;
	*n = m;
	return 0;
}

int node_asof_ids(struct coll *c, uint64_t asof, const struct mv_filter *f,
		  int64_t **out, size_t *n, struct mv_err *err)
{
	int rc = visible_ids(c, asof, f, out, n, err);
	int64_t *tmp;

	if (rc < 0)
		return rc;
	tmp = malloc(*n * sizeof(*tmp) + 1);
	if (!tmp) {
		free(*out);
		*out = NULL;
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	sort_ids(*out, tmp, *n);
	free(tmp);
	return 0;
}

int node_asof_scan_ids(struct coll *c, uint64_t asof, struct mv_err *err)
{
	uint64_t gen;
	int64_t *ids;
	size_t n;
	int rc;

	pthread_rwlock_rdlock(&c->lock);
	gen = c->gen;
	pthread_rwlock_unlock(&c->lock);
	/* The rows of then change not with later flushes; a new segment
	 * (a load, a follower's catch-up) bumps gen too: remade then. */
	if (c->asof_ids && c->asof_seq == asof && c->asof_gen == gen)
		return 0;
	node_asof_scan_done(c);
	rc = node_asof_ids(c, asof, NULL, &ids, &n, err);
	if (rc < 0)
		return rc;
	c->asof_ids = ids;
	c->asof_n = n;
	c->asof_seq = asof;
	c->asof_gen = gen;
	return 0;
}

void node_asof_scan_done(struct coll *c)
{
	free(c->asof_ids);
	c->asof_ids = NULL;
	c->asof_n = 0;
}

size_t node_ids_after(const int64_t *ids, size_t n, int64_t after)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ids[mid] <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int node_asof_scan_page(struct coll *c, uint64_t asof, int64_t after,
			uint64_t limit, const struct mv_filter *f,
			int64_t **page, size_t *n, struct mv_err *err)
{
	struct node_past past;
	size_t lo;
	int rc;

	*page = NULL;
	*n = 0;
	pthread_mutex_lock(&c->scan_lock);
	if ((rc = node_asof_scan_ids(c, asof, err)) < 0)
		goto out;
	lo = node_ids_after(c->asof_ids, c->asof_n, after);
	*page = malloc(((c->asof_n - lo < limit ? c->asof_n - lo : limit) + 1) *
		       sizeof(**page));
	pthread_rwlock_rdlock(&c->lock);
	if (*page && node_past_init(c, asof, &past) < 0) {
		free(*page);
		*page = NULL;
	}
	if (!*page) {
		pthread_rwlock_unlock(&c->lock);
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	/* With a filter the walk goes on past the rows that do not match
	 * until the page is full, as in SCAN of now. */
	for (size_t i = lo; i < c->asof_n && *n < limit; i++) {
		struct seg *sg;
		uint64_t row;

		if (node_row_at(c, &past, c->asof_ids[i], &sg, &row) &&
		    (!f || node_row_filter(sg, row, f)))
			(*page)[(*n)++] = c->asof_ids[i];
	}
	node_past_release(&past);
	pthread_rwlock_unlock(&c->lock);
	/* The empty page that ends an export: the ids go. */
	if (*n == 0)
		node_asof_scan_done(c);
out:
	pthread_mutex_unlock(&c->scan_lock);
	return rc;
}

int node_filter_ids(struct coll *c, const struct mv_filter *f, int64_t **out,
		    size_t *n, struct mv_err *err)
{
	return visible_ids(c, 0, f, out, n, err);
}

/*
 * compact.c - housekeeping: small flushed segments are merged toward a
 * target size, and segments with many deleted rows are rewritten without
 * them, so that space comes back and searches touch fewer, larger blocks.
 * None of it changes what a search returns.  The merged files are written
 * under fresh names, then one metadata transaction swaps them for the old
 * ones (a crash leaves orphans that start-up removes).  Segments an index
 * covers are rewritten too when they have deleted rows; the index keeps
 * their labels, all deleted, until its next build.  Delete logs that no
 * segment needs any more are removed afterwards.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "internal.h"

#define SEG_TARGET_BYTES (256u << 20)	/* vectors of a merged segment */
#define SEG_SMALL_BYTES (16u << 20)	/* smaller ones are merge inputs */
#define MERGE_MIN 8			/* small segments before merging */
#define HISTORY_PRUNE_MS 60000		/* flush records pruned this often */

/*
 * Claim the collection for a compaction: 0 if an index build runs (or,
 * unless wait, another compaction), 1 once claimed.  An explicit
 * compaction waits for the background one instead of failing.
 */
static int compact_start(struct coll *c, int wait)
{
	for (;;) {
		int build, busy;

		pthread_mutex_lock(&c->build_lock);
		build = c->build.state == BUILD_RUNNING;
		busy = c->compacting;
		if (!build && !busy)
			c->compacting = 1;
		pthread_mutex_unlock(&c->build_lock);
		if (!build && !busy) {
			/* What a reload swaps out stays until compact_end. */
			node_coll_reader_start(c);
			return 1;
		}
		if (build || !wait)
			return 0;
		usleep(10 * 1000);
	}
}

/* The end of the claim: what a reload parked meanwhile is freed. */
static void compact_end(struct coll *c)
{
	pthread_mutex_lock(&c->build_lock);
	c->compacting = 0;
	pthread_mutex_unlock(&c->build_lock);
	node_coll_reader_end(c);
}

/*
 * Metadata operations of a compaction of nin inputs: the output's files
 * in, every input's files out, and the index key.
 */
static size_t txn_ops(const struct coll *c, size_t nin)
{
	size_t nfiles = 1 + (size_t)c->nfields;

	return nfiles + nin * nfiles + 1;
}

/*
 * Deleted rows a merge may drop: those deleted by a flush at or before
 * keep (the oldest retained flush: no as-of query sees them), all of
 * them when keep is UINT64_MAX (no history); a row deleted later stays,
 * with its deletion seq, for the time axis.
 */
static uint64_t droppable(const struct seg *s, uint64_t keep)
{
	uint64_t n;

	if (keep == UINT64_MAX)
		return s->ndeleted;
	n = s->ndeleted - s->ndseq;	/* deleted with no seq: none is kept */
	for (size_t i = 0; i < s->ndseq; i++)
		n += s->dseq[i].seq <= keep;
	return n;
}

/* Rows to drop: mostly deleted, or any deleted row when forced. */
static int drop_worth(const struct seg *s, int force, uint64_t keep)
{
	uint64_t d = s->ndeleted ? droppable(s, keep) : 0;

	return d && (d * 5 > s->n || force);
}

/* The oldest retained flush of c, UINT64_MAX if none (no history). */
static int first_cb(void *arg, const struct node_flushrec *r)
{
	*(uint64_t *)arg = r->seq;
	return 1;
}

/*
 * The oldest retained flush of c into *keep (UINT64_MAX: no history
 * kept).  A history that cannot be read is an error, not "none": a merge
 * would drop rows that retained flushes still show.
 */
static int history_floor(struct node *nd, struct coll *c, uint64_t *keep,
			 struct mv_err *err)
{
	*keep = UINT64_MAX;
	if (!nd->conf.history_retention)
		return 0;
	return node_history(nd, c, first_cb, keep, err) < 0 ? -1 : 0;
}

/*
 * Pick the inputs: unindexed segments that are small, and segments (an
 * index covers them or not) with deleted rows to drop; at most as many as
 * one metadata transaction can swap.
 */
static size_t pick(struct coll *c, int force, int placed, uint64_t keep,
		   struct seg **in)
{
	size_t n = 0, cand = 0, bytes = 0;
	size_t row_bytes = c->dim * sizeof(float);

	for (size_t i = 0; i < c->nsegs; i++) {
		struct seg *s = c->segs[i];
		size_t live = s->n - droppable(s, keep);

		/* (a cluster node reads what it does not hold from storage) */
		if (!s->indexed && !s->vecs && !placed)
			continue;
		if ((!s->indexed && s->n * row_bytes < SEG_SMALL_BYTES) ||
		    drop_worth(s, force, keep)) {
			cand++;
			if (txn_ops(c, n + 1) > MV_META_TXN_OPS_MAX ||
			    (bytes + live * row_bytes > SEG_TARGET_BYTES && n))
				continue;
			in[n++] = s;
			bytes += live * row_bytes;
		}
	}
	if (n == 1 && drop_worth(in[0], force, keep))
		return 1;	/* rewrite without its deleted rows */
	if (cand >= MERGE_MIN || (force && n >= 2))
		return n >= 2 ? n : 0;
	return 0;
}

/*
 * Retire an indexed segment that a compaction replaced (c->lock held
 * exclusively): every row deleted, so that the index skips its labels,
 * and its memory and file mapping given back.  Its bitmap exists: it had
 * deleted rows.
 */
static void retire(struct node *nd, struct seg *s)
{
	memset(s->deleted, 0xff, (s->n + 7) / 8);
	s->ndeleted = s->n;
	s->retired = 1;
	free(s->ids);
	s->ids = NULL;
	free(s->norms2);
	s->norms2 = NULL;
	node_seg_free_own(s, 0);
	s->vecs = NULL;
	if (s->map)
		mv_store_unmap(nd->store, s->map);
	s->map = NULL;
	s->raw = NULL;
	for (int f = 0; f < s->ncols; f++) {
		free(s->cols[f].vals);
		free(s->cols[f].off);
		s->cols[f].vals = NULL;
		s->cols[f].off = NULL;
	}
}

/*
 * Collect delete logs.  The log of flush S deletes rows of segments of
 * sequence below S, and may go once none of them still holds a row it
 * lists.  Such a row is a deleted row, and compaction drops deleted rows
 * (keeping the largest sequence of its inputs), so a log goes when no
 * segment of a sequence below S has a deleted row left.  One metadata
 * transaction removes the keys, then the files go (a crash in between
 * leaves orphans that start-up removes).
 */
static int collect_dels(struct node *nd, struct coll *c, struct mv_err *err)
{
	uint64_t low = UINT64_MAX;
	struct mv_meta_op *ops = NULL;
	char (*keys)[MV_SPATH + 64] = NULL, (*paths)[MV_SPATH] = NULL;
	size_t n = 0, k = 0, cap;
	int rc = 0;

	pthread_mutex_lock(&nd->commit);
	if (c->dropped || !c->ndels)
		goto out;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->nsegs; i++)
		if (c->segs[i]->ndeleted && c->segs[i]->seq < low)
			low = c->segs[i]->seq;
	pthread_rwlock_unlock(&c->lock);
	for (size_t i = 0; i < c->ndels; i++)
		n += c->dels[i].seq <= low;
	if (!n)
		goto out;
	cap = n < MV_META_TXN_OPS_MAX ? n : MV_META_TXN_OPS_MAX;
	ops = calloc(cap, sizeof(*ops));
	keys = calloc(cap, sizeof(*keys));
	paths = calloc(cap, sizeof(*paths));
	if (!ops || !keys || !paths) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	n = 0;
	for (size_t i = 0; i < c->ndels && n < cap; i++) {
		if (c->dels[i].seq > low)
			continue;
		snprintf(paths[n], sizeof(paths[n]), "%s", c->dels[i].path);
		key_data(keys[n], sizeof(keys[n]), c->user,
			 c->name, strrchr(c->dels[i].path, '/') + 1);
		ops[n] = (struct mv_meta_op){ MV_META_DEL, keys[n], NULL, 0 };
		n++;
	}
	rc = mv_meta_txn(nd->meta, NULL, 0, ops, n, err);
	if (rc < 0)
		goto out;
	/* The first n logs at or below low are gone from the list. */
	for (size_t i = 0, taken = 0; i < c->ndels; i++) {
		if (c->dels[i].seq <= low && taken < n) {
			taken++;
			continue;
		}
		c->dels[k++] = c->dels[i];
	}
	c->ndels = k;
	pthread_mutex_unlock(&nd->commit);
	for (size_t i = 0; i < n; i++)
		mv_store_del(nd->store, paths[i], NULL);
	log_info("collection '%s': %zu delete logs collected", c->name, n);
	free(ops);
	free(keys);
	free(paths);
	return 0;
out:
	pthread_mutex_unlock(&nd->commit);
	free(ops);
	free(keys);
	free(paths);
	return rc;
}

int node_compact(struct node *nd, struct coll *c, int force, int *merged,
		 struct mv_err *err)
{
	struct seg **in = NULL, *out = NULL;
	size_t nin, rows = 0;
	uint32_t *src_seg = NULL;
	uint64_t *src_row = NULL, seq = 0;
	float *raw = NULL;
	struct nbuf cols[MV_FIELDS_MAX];
	char base[200], (*paths)[MV_SPATH] = NULL;
	char (*keys)[MV_SPATH + 64] = NULL, **vals = NULL;
	struct mv_meta_op *ops = NULL;
	size_t nfiles = 1 + (size_t)c->nfields, nops = 0;
	int64_t *ids = NULL;
	uint64_t sizes[1 + MV_FIELDS_MAX];	/* of each file written */
	int rc = 0, written = 0;
	size_t nidx = 0;
	char *ival = NULL;
	/*
	 * The time axis: rows deleted after keep (the oldest retained
	 * flush) stay, with the seq that deleted them (delseq) and the one
	 * that inserted them (insseq); the file then carries both (hist).
	 */
	uint64_t keep = UINT64_MAX, *insseq = NULL, *delseq = NULL;
	uint64_t *ds = NULL, kept = 0;
	size_t *snap_nd = NULL;
	int hist = 0;

	*merged = 0;
	memset(cols, 0, sizeof(cols));
	if (!compact_start(c, force))
		return force ? mv_err_set(err, MV_EAGAIN, "an index build of "
					  "'%s' is under way", c->name) : 0;
	if (history_floor(nd, c, &keep, err) < 0) {
		rc = err->code ? err->code : MV_EINTERNAL;
		goto out;
	}
	pthread_rwlock_rdlock(&c->lock);
	in = malloc((c->nsegs + 1) * sizeof(*in));
	nin = in ? pick(c, force, nd->place != NULL, keep, in) : 0;
	if (txn_ops(c, nin) > MV_META_TXN_OPS_MAX)
		MV_BUG("compaction of %zu segments exceeds a transaction", nin);
	/* Snapshot the rows kept: (segment, row) of each output row. */
	for (size_t i = 0; i < nin; i++)
		rows += in[i]->n - droppable(in[i], keep);
	if (nin) {
		src_seg = malloc((rows + 1) * sizeof(*src_seg));
		src_row = malloc((rows + 1) * sizeof(*src_row));
		ids = malloc((rows + 1) * sizeof(*ids));
		raw = malloc(rows * c->dim * sizeof(float) + 1);
		insseq = malloc((rows + 1) * sizeof(*insseq));
		delseq = calloc(rows + 1, sizeof(*delseq));
		snap_nd = calloc(nin, sizeof(*snap_nd));
	}
	if (nin && (!src_seg || !src_row || !ids || !raw || !insseq ||
		    !delseq || !snap_nd)) {
		pthread_rwlock_unlock(&c->lock);
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	rows = 0;
	for (size_t i = 0; i < nin; i++) {
		struct seg *s = in[i];

		if (s->seq > seq)
			seq = s->seq;
		snap_nd[i] = s->ndseq;
		free(ds);
		ds = NULL;
		if (keep != UINT64_MAX && s->ndseq) {
			/* Each deleted row's seq, to test it in one step. */
			ds = calloc(s->n + 1, sizeof(*ds));
			if (!ds) {
				pthread_rwlock_unlock(&c->lock);
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto out;
			}
			for (size_t d = 0; d < s->ndseq; d++)
				ds[s->dseq[d].row] = s->dseq[d].seq;
		}
		for (uint64_t r = 0; r < s->n; r++) {
			uint64_t dq = 0;

			if (node_seg_is_deleted(s, r)) {
				if (!ds || ds[r] <= keep)
					continue;
				dq = ds[r];
				kept++;
			}
			src_seg[rows] = (uint32_t)i;
			src_row[rows] = r;
			ids[rows] = s->ids[r];
			insseq[rows] = node_seg_ins(s, r);
			delseq[rows] = dq;
			if (insseq[rows] != insseq[0])
				hist = 1;
			rows++;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	/* Per-row seqs only when history needs them. */
	hist = keep != UINT64_MAX && (hist || kept);
	if (nin == 0)
		goto out;
	node_test_pause("MV_TEST_PAUSE_COMPACT");
	/* Segments are immutable but for deletions: read them unlocked. */
	for (size_t j = 0; j < rows; j++) {
		struct seg *s = in[src_seg[j]];
		const float *r;

		if ((rc = node_seg_raw(nd, s, &r, err)) < 0)
			goto out;
		memcpy(raw + j * c->dim, r + src_row[j] * c->dim,
		       c->dim * sizeof(float));
		for (int f = 0; f < c->nfields; f++) {
			const struct col *col = &s->cols[f];
			const unsigned char *p;
			size_t len;

			if (col->type == MV_STRING) {
				uint32_t l;
				memcpy(&l, (char *)col->vals + col->off[src_row[j]], 4);
				p = (unsigned char *)col->vals + col->off[src_row[j]];
				len = 4 + l;
			} else {
				p = (unsigned char *)col->vals + src_row[j] * 8;
				len = 8;
			}
			if (nbuf_reserve(&cols[f], len) < 0) {
				rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
				goto out;
			}
			memcpy(cols[f].p + cols[f].len, p, len);
			cols[f].len += len;
		}
	}
	paths = calloc(nfiles, sizeof(*paths));
	keys = calloc(nfiles + nin * nfiles + 1, sizeof(*keys));
	vals = calloc(nfiles, sizeof(*vals));
	ops = calloc(nfiles + nin * nfiles + 1, sizeof(*ops));
	if (!paths || !keys || !vals || !ops) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	node_seg_base(nd, c, base, sizeof(base));
	snprintf(paths[0], sizeof(paths[0]), "%s.vec", base);
	out = calloc(1, sizeof(*out));
	if (!out || !(out->cols = calloc(c->nfields ? c->nfields : 1,
					 sizeof(*out->cols)))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	if (hist) {
		/* Block A: ids, then insseq, then delseq (segfile.h). */
		int64_t *a = malloc(rows * 24 + 1);

		if (!a) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		memcpy(a, ids, rows * 8);
		memcpy(a + rows, insseq, rows * 8);
		memcpy(a + 2 * rows, delseq, rows * 8);
		rc = node_put_file(nd, paths[0], MV_SEG_VEC, c->dim, rows, a,
				   rows * 24, raw, rows * c->dim * sizeof(float),
				   &sizes[0], err);
		free(a);
	} else {
		rc = node_put_file(nd, paths[0], MV_SEG_VEC, c->dim, rows, ids,
				   rows * 8, raw, rows * c->dim * sizeof(float),
				   &sizes[0], err);
	}
	written = 1;
	out->size = sizes[0];
	for (int f = 0; rc == 0 && f < c->nfields; f++) {
		snprintf(paths[1 + f], sizeof(paths[0]), "%s.%s.col", base,
			 c->fields[f].name);
		rc = node_put_file(nd, paths[1 + f], MV_SEG_COL,
				   c->fields[f].type, rows, cols[f].p,
				   cols[f].len, NULL, 0, &sizes[1 + f], err);
		written++;
		out->size += sizes[1 + f];
		snprintf(out->cols[f].path, sizeof(out->cols->path), "%s",
			 paths[1 + f]);
	}
	if (rc < 0)
		goto out;
	/* The merged segment in memory. */
	snprintf(out->path, sizeof(out->path), "%s", paths[0]);
	out->seq = seq;
	out->n = rows;
	out->ids = ids;
	ids = NULL;
	out->own = raw;
	out->vecs = raw;
	raw = NULL;
	out->ncols = c->nfields;
	for (int f = 0; f < c->nfields; f++)
		if (node_seg_col_from(&out->cols[f], c->fields[f].type, &cols[f],
				      rows) < 0)
			MV_BUG("bad string column in compaction");
	rc = node_seg_prepare(c, out, 0, err);
	if (rc < 0)
		goto out;
	/* Room for rows deleted meanwhile, so that nothing fails after. */
	out->deleted = calloc((rows + 7) / 8 + 1, 1);
	if (!out->deleted) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	if (hist) {
		out->rowseq = insseq;
		insseq = NULL;
		out->minseq = UINT64_MAX;
		for (size_t j = 0; j < rows; j++) {
			if (out->rowseq[j] < out->minseq)
				out->minseq = out->rowseq[j];
			if (delseq[j] &&
			    node_seg_set_deleted_at(out, j, delseq[j]) < 0) {
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto out;
			}
		}
	}
	/* The metadata: new keys in, old keys out, in one transaction. */
	for (size_t i = 0; i < nfiles; i++) {
		const char *leaf = strrchr(paths[i], '/') + 1;

		key_data(keys[nops], sizeof(keys[0]),
			 c->user, c->name, leaf);
		vals[i] = i == 0 ? node_data_json("vectors", sizes[0],
						  nd->node_no, seq, rows, NULL,
						  NULL)
				 : node_data_json("scalar", sizes[i],
						  nd->node_no, seq,
						  rows, c->fields[i - 1].name,
						  strrchr(paths[0], '/') + 1);
		if (!vals[i]) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		ops[nops] = (struct mv_meta_op){ MV_META_PUT, keys[nops], vals[i],
						 strlen(vals[i]) };
		nops++;
	}
	for (size_t i = 0; i < nin; i++) {
		const char *leaf = strrchr(in[i]->path, '/') + 1;

		key_data(keys[nops], sizeof(keys[0]),
			 c->user, c->name, leaf);
		ops[nops] = (struct mv_meta_op){ MV_META_DEL, keys[nops], NULL, 0 };
		nops++;
		for (int f = 0; f < c->nfields; f++) {
			const char *cl = strrchr(in[i]->cols[f].path, '/') + 1;
			key_data(keys[nops], sizeof(keys[0]),
				 c->user, c->name, cl);
			ops[nops] = (struct mv_meta_op){ MV_META_DEL, keys[nops],
							 NULL, 0 };
			nops++;
		}
	}
	pthread_mutex_lock(&nd->commit);
	if (c->dropped) {
		pthread_mutex_unlock(&nd->commit);
		rc = mv_err_set(err, MV_ESERVER, "collection '%s' was dropped",
				c->name);
		goto out;
	}
	/*
	 * A follower's reload may have swapped c's segments since the
	 * snapshot (the old ones, read above, stay parked until this merge
	 * ends): the commit works on the inputs found again by path in
	 * c->segs, which node.commit keeps as they are now.  Their
	 * deletions are then all looked at again (snap_nd 0): a reload's
	 * copy may list them in another order.  An input gone (merged by
	 * another node) or covered by an index since ends the merge.
	 */
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < nin && rc == 0; i++) {
		struct seg *cur = node_coll_seg(c, in[i]->path);

		if (cur == in[i])
			continue;
		if (!cur || cur->indexed != in[i]->indexed) {
			rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY,
					 "collection '%s' changed under the "
					 "merge: '%s' %s; merge again", c->name,
					 in[i]->path, cur ? "is indexed now" :
					 "is gone");
			break;
		}
		in[i] = cur;
		snap_nd[i] = 0;
	}
	pthread_rwlock_unlock(&c->lock);
	if (rc < 0) {
		pthread_mutex_unlock(&nd->commit);
		goto out;
	}
	{
		/*
		 * Deletes commit under node.commit, held now: room for the
		 * seqs of those since the snapshot, so nothing fails after.
		 */
		size_t more = out->ndseq;
		struct segdel *d;

		for (size_t i = 0; i < nin; i++)
			more += in[i]->ndseq - snap_nd[i];
		if (more > out->dseqcap) {
			d = realloc(out->dseq, more * sizeof(*d));
			if (!d) {
				pthread_mutex_unlock(&nd->commit);
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto out;
			}
			out->dseq = d;
			out->dseqcap = more;
		}
	}
	for (size_t i = 0; i < nin; i++)
		nidx += in[i]->indexed;
	if (nidx) {
		/* The index keeps its labels: it names the inputs retired. */
		ival = index_retire_json(nd, c, in, nin, err);
		if (!ival) {
			pthread_mutex_unlock(&nd->commit);
			rc = err ? err->code : MV_EINTERNAL;
			goto out;
		}
		ops[nops] = (struct mv_meta_op){ MV_META_PUT, c->index->key,
						 ival, strlen(ival) };
		nops++;
	}
	{
		/*
		 * Cluster: another node may merge the same inputs; each input's
		 * key must still exist (etcd's create_rev > 0), else nothing.
		 */
		struct mv_meta_rcmp *rcmps = calloc(nin ? nin : 1,
						    sizeof(*rcmps));
		struct mv_meta_req req = { 0 };

		if (!rcmps) {
			pthread_mutex_unlock(&nd->commit);
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			goto out;
		}
		for (size_t i = 0; nd->cluster && i < nin; i++)
			rcmps[i] = (struct mv_meta_rcmp){
				keys[nfiles + i * (1 + (size_t)c->nfields)],
				MV_META_CMP_CREATE, MV_META_GT, 0 };
		req.rcmps = rcmps;
		req.nrcmp = nd->cluster ? nin : 0;
		req.ops = ops;
		req.nops = nops;
		rc = mv_meta_txn_req(nd->meta, &req, err);
		free(rcmps);
		if (rc < 0 && written) {
			/* It may have applied: the files go only once it
			 * certainly did not (the inputs' keys gone with them
			 * otherwise, their rows would be lost). */
			pthread_mutex_unlock(&nd->commit);
			node_txn_files(nd, "a merge", keys[0], paths,
				       (size_t)written);
			written = 0;
			goto out;
		}
	}
	if (rc > 0) {
		mv_err_clear(err);
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_BUSY, "collection '%s': "
				 "another node merged these segments first",
				 c->name);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&nd->commit);
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	/*
	 * Rows deleted since the snapshot stay deleted, with their seqs:
	 * output rows are in (input, row) order, so a binary search finds
	 * each.
	 */
	for (size_t i = 0; i < nin; i++)
		for (size_t d = snap_nd[i]; d < in[i]->ndseq; d++) {
			uint64_t r = in[i]->dseq[d].row;
			size_t lo = 0, hi = rows;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (src_seg[mid] < i ||
				    (src_seg[mid] == i && src_row[mid] < r))
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < rows && src_seg[lo] == i && src_row[lo] == r &&
			    node_seg_set_deleted_at(out, lo,
						    in[i]->dseq[d].seq) < 0)
				MV_BUG("no room for a deletion after commit");
		}
	{
		size_t k = 0;
		for (size_t i = 0; i < c->nsegs; i++) {
			int gone = 0;
			for (size_t x = 0; x < nin; x++)
				gone |= c->segs[i] == in[x];
			if (!gone)
				c->segs[k++] = c->segs[i];
		}
		c->segs[k++] = out;
		c->nsegs = k;
		node_seg_held(out);
	}
	/*
	 * Each live row's id already maps to its input row: repoint the
	 * entry in place, which allocates nothing and so cannot fail after
	 * the commit.
	 */
	for (uint64_t j = 0; j < rows; j++) {
		struct mv_idmap_ent *e;

		if (node_seg_is_deleted(out, j))
			continue;
		e = mv_idmap_get(&c->ids, out->ids[j]);
		if (!e || e->seg != in[src_seg[j]] || e->row != src_row[j]) {
			const struct seg *m = e ? e->seg : NULL;

			MV_BUG("id %" PRId64 " of a merged row is not mapped "
			       "to its input row: %s row %" PRIu64 ", mapped "
			       "to %s row %" PRIu64 "%s", out->ids[j],
			       in[src_seg[j]]->path, src_row[j],
			       m ? m->path : "nothing", e ? e->row : 0,
			       m && m->retired ? " (retired)" : "");
		}
		e->seg = out;
		e->row = j;
	}
	/*
	 * An indexed input stays in the index, its rows all deleted, until
	 * the next build: the index's labels still count its rows.
	 */
	for (size_t i = 0; i < nin; i++)
		if (in[i]->indexed)
			retire(nd, in[i]);
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&nd->commit);
	for (size_t i = 0; i < nin; i++) {
		mv_store_del(nd->store, in[i]->path, NULL);
		for (int f = 0; f < c->nfields; f++)
			mv_store_del(nd->store, in[i]->cols[f].path, NULL);
		if (!in[i]->retired)
			node_seg_free(in[i]);
	}
	*merged = (int)nin;
	log_info("collection '%s': merged %zu segments into one of %zu rows",
		 c->name, nin, rows);
	out = NULL;
	written = 0;
out:
	if (written)
		for (int i = 0; i < written; i++)
			mv_store_del(nd->store, paths[i], NULL);
	node_seg_free(out);
	for (int f = 0; f < MV_FIELDS_MAX; f++)
		nbuf_release(&cols[f]);
	for (size_t i = 0; vals && i < nfiles; i++)
		free(vals[i]);
	free(vals);
	free(keys);
	free(ops);
	free(paths);
	free(in);
	free(src_seg);
	free(src_row);
	free(ids);
	free(raw);
	free(ival);
	free(insseq);
	free(delseq);
	free(ds);
	free(snap_nd);
	if (rc == 0) {
		struct mv_err e = { 0 };

		if (collect_dels(nd, c, &e) < 0)
			log_warnx("collection '%s': collecting delete logs: %s",
				  c->name, e.msg);
	}
	compact_end(c);
	return rc;
}

void node_housekeep(struct node *nd)
{
	struct coll **list;
	int64_t now = node_mono_ms();
	int prune = !nd->pruned || now - nd->pruned >= HISTORY_PRUNE_MS;
	size_t n;

	/*
	 * Cluster: each collection's merges and pruning run on one live
	 * node, a pure function of the live set (node_place_merger), so
	 * they go on whichever nodes are gone; the compare in node_compact
	 * keeps two nodes merging at once (the live set changing) harmless.
	 * mv-index --compact works on any node.
	 */
	if (!prune && !nd->conf.auto_compact)
		return;
	list = node_colls_ref(nd, &n);
	if (!list)
		return;
	if (prune)
		nd->pruned = now;
	for (size_t i = 0; i < n; i++) {
		struct mv_err e = { 0 };
		int merged;

		if (nd->cluster && !node_place_merger(nd, list[i])) {
			coll_put(list[i]);
			continue;
		}
		if (prune && !atomic_load(&nd->shutting_down))
			node_history_prune(nd, list[i], node_now_ms());
		if (nd->conf.auto_compact && !atomic_load(&nd->shutting_down) &&
		    node_compact(nd, list[i], 0, &merged, &e) < 0)
			log_warnx("collection '%s': compaction failed: %s",
				  list[i]->name, e.msg);
		coll_put(list[i]);
	}
	free(list);
}

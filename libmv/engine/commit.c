/*
 * commit.c - the flush: node_flush commits a batch.
 *
 * A flush writes its segment files to storage first (under new names, so a
 * crash leaves only orphans that start-up removes), then commits one
 * metadata transaction naming them, then swaps them into memory.  The
 * transaction is the commit point: all of a flush is visible or none.
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
#include "internal.h"
#include "knn.h"
#include "log.h"
#include "segfile.h"
#include "vcheck.h"

struct written {
	char path[MV_SPATH];		/* storage path */
	char key[MV_SPATH + 200];
	char *val;
	struct seg *seg;	/* for .vec */
	struct pcoll *pc;
	enum mv_segkind kind;
	int field;
	uint64_t size;
};

/*
 * A flush with work for a collection dropped since fails whole: it must
 * not report rows that went nowhere, nor leave files that nothing names.
 */
static int check_dropped(struct batch *b, struct mv_err *err)
{
	for (struct pcoll *pc = b->colls; pc; pc = pc->next)
		if (pc->c->dropped)
			return mv_err_set(err, MV_ESERVER, "collection '%s' was "
					  "dropped; nothing was committed",
					  pc->c->name);
	return 0;
}

/* A flush under way: what it wrote and the transaction it builds. */
struct flush {
	struct written *w;		/* files written, nw of cap */
	size_t nw, cap;
	struct mv_meta_op *ops;		/* nops of cap + ncolls */
	size_t nops, ncolls;
	struct mv_meta_cmp *cmps;	/* one per collection: its state */
	char (*skeys)[256], **svals;	/* the state records' keys, values */
	char (*hkeys)[MV_SPATH], **hvals; /* the flush records (history.c) */
};

/*
 * 1. Write every file of b under a fresh name (nothing refers to it yet),
 * then normalise (cosine) or take the norms (l2) of the new rows: all of
 * it before node.commit, which every other flush waits for.
 */
static int flush_write(struct node *nd, struct batch *b, struct flush *fl,
		       struct mv_err *err)
{
	struct written *w = fl->w;
	struct pcoll *pc;
	int rc = 0;

	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;
		const char *base = pc->base;

		if (!pc->vw)
			node_seg_base(nd, c, pc->base, sizeof(pc->base));
		if (pc->dels.len) {
			struct written *x = &w[fl->nw++];
			snprintf(x->path, sizeof(x->path), "%s.del", base);
			x->kind = MV_SEG_DEL;
			x->pc = pc;
			rc = node_put_file(nd, x->path, MV_SEG_DEL, 0,
				      pc->dels.len / 8, pc->dels.p,
				      pc->dels.len, NULL, 0, &x->size, err);
			if (rc < 0)
				return rc;
		}
		if (pc->n) {
			struct written *x = &w[fl->nw++];
			size_t vbytes = pc->n * c->dim * sizeof(float);

			snprintf(x->path, sizeof(x->path), "%s.vec", base);
			x->kind = MV_SEG_VEC;
			x->pc = pc;
			if (pc->vw)
				rc = stage_finish(pc, &x->size, err);
			else
				rc = node_put_file(nd, x->path, MV_SEG_VEC,
						   c->dim, pc->n, pc->ids.p,
						   pc->n * 8, pc->vecs.p,
						   vbytes, &x->size, err);
			if (rc < 0)
				return rc;
			for (int f = 0; f < c->nfields; f++) {
				struct written *y = &w[fl->nw++];
				snprintf(y->path, sizeof(y->path), "%s.%s.col",
					 base, c->fields[f].name);
				y->kind = MV_SEG_COL;
				y->pc = pc;
				y->field = f;
				rc = node_put_file(nd, y->path, MV_SEG_COL,
					      c->fields[f].type, pc->n,
					      pc->cols[f].p, pc->cols[f].len,
					      NULL, 0, &y->size, err);
				if (rc < 0)
					return rc;
			}
		}
	}
	/*
	 * Normalisation (cosine) and norms (l2) now, not under node.commit,
	 * which every other flush waits for.  The files hold the raw rows.
	 */
	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;

		if (!pc->n)
			continue;
		if (c->metric == MV_COSINE && pc->vnorm < pc->n) {
			node_normalise((float *)(void *)pc->vecs.p +
				       pc->vnorm * c->dim, pc->n - pc->vnorm,
				       c->dim);
			pc->vnorm = pc->n;
			node_test_pause("MV_TEST_PAUSE_NORMALISE");
		} else if (c->metric == MV_L2 && !pc->norms2) {
			pc->norms2 = malloc(pc->n * sizeof(float));
			if (!pc->norms2) {
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				return rc;
			}
			mv_knn_norms2((const float *)(void *)pc->vecs.p, pc->n,
				      c->dim, pc->norms2);
		}
	}
	return 0;
}

/*
 * 2. The transaction (node.commit and the state locks held): the data
 * records of the written files and the collections' state records, to be
 * compared and swapped; made again after a conflict.
 */
static int flush_build_txn(struct node *nd, struct batch *b,
			   struct flush *fl, struct mv_err *err)
{
	struct written *w = fl->w;
	struct mv_meta_op *ops = fl->ops;
	struct mv_meta_cmp *cmps = fl->cmps;
	char (*skeys)[256] = fl->skeys, **svals = fl->svals;
	struct pcoll *pc;
	int rc = 0;

	fl->nops = 0;
	for (size_t i = 0; i < fl->cap; i++) {
		free(w[i].val);
		w[i].val = NULL;
	}
	{
		size_t si = 0;
		for (pc = b->colls; pc; pc = pc->next, si++) {
			struct coll *c = pc->c;
			const int64_t *ids = (const int64_t *)pc->ids.p;
			struct mv_state st;
			uint64_t seq, ndel = 0;
			int64_t live;
			char state[96];

			/* This flush's sequence, past what the record says. */
			if (mv_state_parse(c->state, strlen(c->state), &st,
					   err) < 0) {
				rc = err ? err->code : MV_EDATA;
				return rc;
			}
			if (st.next_seq > c->next_seq)
				c->next_seq = st.next_seq;
			seq = c->next_seq;

			/* Ids committed by others since INSERT checked them. */
			pthread_rwlock_rdlock(&c->lock);
			{
				struct mv_idmap dm;
				const int64_t *d = (const int64_t *)pc->dels.p;
				int built = 0;

				mv_idmap_init(&dm);
				for (size_t i = 0; i < pc->n && rc == 0; i++) {
					if (!mv_idmap_get(&c->ids, ids[i]))
						continue;
					if (!built) {
						/* Ids replaced by upserts. */
						built = 1;
						if (mv_idmap_reserve(&dm, pc->dels.len / 8) < 0)
							rc = mv_err_set(err, MV_EINTERNAL,
									"out of memory");
						for (size_t j = 0; rc == 0 &&
						     j < pc->dels.len / 8; j++)
							mv_idmap_put(&dm, d[j], NULL, 0);
					}
					if (rc == 0 && !mv_idmap_get(&dm, ids[i]))
						rc = mv_err_setk(err, MV_EDATA, MV_K_DUPID,
							"id %" PRId64 " already in collection '%s'",
							ids[i], c->name);
				}
				mv_idmap_release(&dm);
			}
			/* Rows this flush deletes (each id once), for its
			 * record on the time axis. */
			if (rc == 0 && pc->dels.len && nd->conf.history_retention) {
				const int64_t *d = (const int64_t *)pc->dels.p;
				struct mv_idmap once;

				mv_idmap_init(&once);
				if (mv_idmap_reserve(&once, pc->dels.len / 8) < 0)
					rc = mv_err_set(err, MV_EINTERNAL,
							"out of memory");
				for (size_t j = 0; rc == 0 &&
				     j < pc->dels.len / 8; j++) {
					if (!mv_idmap_get(&c->ids, d[j]) ||
					    mv_idmap_get(&once, d[j]))
						continue;
					mv_idmap_put(&once, d[j], NULL, 0);
					ndel++;
				}
				mv_idmap_release(&once);
			}
			live = c->rows;
			pthread_rwlock_unlock(&c->lock);
			if (rc < 0)
				return rc;
			for (size_t i = 0; i < fl->nw; i++) {
				struct written *x = &w[i];
				const char *slash;

				if (x->pc != pc)
					continue;
				slash = strrchr(x->path, '/');
				key_data(x->key, sizeof(x->key), c->user, c->name,
					 slash + 1);
				if (x->kind == MV_SEG_VEC)
					x->val = node_data_json("vectors", x->size,
						nd->node_no, seq, pc->n, NULL, NULL);
				else if (x->kind == MV_SEG_DEL)
					x->val = node_data_json("delete", x->size,
						nd->node_no, seq,
						pc->dels.len / 8, NULL, NULL);
				else
					x->val = node_data_json("scalar", x->size,
						nd->node_no, seq, pc->n,
						c->fields[x->field].name,
						strrchr(w[i - 1 - x->field].path, '/') + 1);
				if (!x->val) {
					rc = mv_err_set(err, MV_EINTERNAL,
							"out of memory");
					return rc;
				}
				ops[fl->nops++] = (struct mv_meta_op){
					MV_META_PUT, x->key, x->val,
					strlen(x->val) };
			}
			pthread_mutex_lock(&c->id_lock);
			if (c->id_next > st.next_id)
				st.next_id = c->id_next;	/* given ids */
			pthread_mutex_unlock(&c->id_lock);
			st.next_seq = seq + 1;
			mv_state_format(&st, state, sizeof(state));
			key_coll(skeys[si], sizeof(skeys[si]), c->user,
				 c->name, "state");
			cmps[si] = (struct mv_meta_cmp){ skeys[si], c->state,
							 strlen(c->state) };
			free(svals[si]);
			svals[si] = strdup(state);
			if (!svals[si]) {
				rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
				return rc;
			}
			ops[fl->nops++] = (struct mv_meta_op){ MV_META_PUT, skeys[si],
				svals[si], strlen(svals[si]) };
			if (!nd->conf.history_retention)
				continue;
			/* Its number and commit time on the time axis. */
			key_flush(fl->hkeys[si], sizeof(fl->hkeys[si]), c->user,
				  c->name, seq);
			free(fl->hvals[si]);
			fl->hvals[si] = node_flush_json(node_now_ms(), pc->n,
				ndel, live + (int64_t)pc->n - (int64_t)ndel);
			if (!fl->hvals[si])
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			ops[fl->nops++] = (struct mv_meta_op){ MV_META_PUT,
				fl->hkeys[si], fl->hvals[si],
				strlen(fl->hvals[si]) };
		}
	}
	/* Room in the delete-log lists now: nothing may fail after commit. */
	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;
		struct dellog *dl;

		if (c->dropped || !pc->dels.len)
			continue;
		dl = realloc(c->dels, (c->ndels + 1) * sizeof(*dl));
		if (!dl) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			return rc;
		}
		c->dels = dl;
	}
	return 0;
}

/* 3. Committed: swap the new segments and deletions into memory. */
static void flush_swap(struct batch *b, struct flush *fl, int64_t *inserted,
		       int64_t *deleted)
{
	struct written *w = fl->w;
	struct pcoll *pc;

	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;
		uint64_t seq;

		seq = c->next_seq++;
		struct seg *s = NULL;
		const int64_t *d = (const int64_t *)pc->dels.p;
		struct seg **segs;

		for (size_t i = 0; i < fl->nw; i++) {
			if (w[i].pc != pc)
				continue;
			if (w[i].kind == MV_SEG_DEL) {
				/* Room made before the commit. */
				struct dellog *dl = c->dels;

				snprintf(dl[c->ndels].path, sizeof(dl->path),
					 "%s", w[i].path);
				dl[c->ndels++].seq = seq;
			}
		}
		if (pc->n) {
			s = calloc(1, sizeof(*s));
			if (!s || !(s->cols = calloc(c->nfields ? c->nfields : 1,
						     sizeof(*s->cols))))
				MV_BUG("out of memory after commit");
			for (size_t i = 0; i < fl->nw; i++) {
				if (w[i].pc != pc)
					continue;
				if (w[i].kind == MV_SEG_VEC)
					snprintf(s->path, sizeof(s->path), "%s",
						 w[i].path);
				else if (w[i].kind == MV_SEG_COL)
					snprintf(s->cols[w[i].field].path,
						 sizeof(s->cols->path), "%s",
						 w[i].path);
				s->size += w[i].kind == MV_SEG_DEL ? 0 : w[i].size;
			}
			s->seq = seq;
			s->n = pc->n;
			s->ids = (int64_t *)pc->ids.p;
			s->vecs = (float *)pc->vecs.p;
			s->own = pc->vecs.p;
			s->big = (struct mv_big){ pc->vecs.p, pc->vecs.cap,
						  pc->vecs.touched };
			memset(&pc->ids, 0, sizeof(pc->ids));
			pc->vecs.p = NULL;
			pc->vecs.len = pc->vecs.cap = pc->vecs.touched = 0;
			s->norms2 = pc->norms2;
			pc->norms2 = NULL;
			s->ncols = c->nfields;
			for (int f = 0; f < c->nfields; f++)
				if (node_seg_col_from(&s->cols[f], c->fields[f].type,
						 &pc->cols[f], s->n) < 0)
					MV_BUG("bad string column after check");
			if (node_seg_prepare(c, s, pc->vnorm, NULL) < 0)
				MV_BUG("out of memory after commit");
		}
		pthread_rwlock_wrlock(&c->lock);
		c->gen++;
		for (size_t j = 0; j < pc->dels.len / 8; j++) {
			struct mv_idmap_ent *e = mv_idmap_get(&c->ids, d[j]);
			if (e) {
				if (node_seg_set_deleted_at(e->seg, e->row,
							    seq) < 0)
					MV_BUG("out of memory after commit");
				mv_idmap_del(&c->ids, d[j]);
				c->rows--;
				(*deleted)++;
			}
		}
		if (s) {
			segs = realloc(c->segs, (c->nsegs + 1) * sizeof(*segs));
			if (!segs || mv_idmap_reserve(&c->ids, s->n) < 0)
				MV_BUG("out of memory after commit");
			c->segs = segs;
			c->segs[c->nsegs++] = s;
			node_seg_held(s);
			mv_idmap_put_rows(&c->ids, s->ids, s->n, s, 0);
			c->rows += (int64_t)s->n;
			*inserted += (int64_t)s->n;
		}
		pthread_rwlock_unlock(&c->lock);
	}
}

int node_flush(struct node *nd, struct batch *b, int64_t *inserted,
	       int64_t *deleted, struct mv_err *err)
{
	int64_t rev;

	return node_flush_rev(nd, b, inserted, deleted, &rev, err);
}

static int cmp_seg(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(struct seg *const *)a;
	uintptr_t y = (uintptr_t)*(struct seg *const *)b;

	return (x > y) - (x < y);
}

/*
 * Room, before the commit, for marking the rows the flush deletes (each
 * segment's bitmap and deletion seqs, asof.c), so that step 3 cannot run
 * out of memory half way (node.commit held, so the id map stays as it is
 * until then).
 */
static int flush_reserve_deletes(struct batch *b, struct mv_err *err)
{
	for (struct pcoll *pc = b->colls; pc; pc = pc->next) {
		const int64_t *d = (const int64_t *)pc->dels.p;
		size_t n = pc->dels.len / 8, m = 0;
		struct coll *c = pc->c;
		struct seg **hit;
		int rc = 0;

		if (!n)
			continue;
		hit = malloc(n * sizeof(*hit));
		if (!hit)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		pthread_rwlock_wrlock(&c->lock);
		for (size_t j = 0; j < n; j++) {
			struct mv_idmap_ent *e = mv_idmap_get(&c->ids, d[j]);

			if (e)
				hit[m++] = e->seg;
		}
		qsort(hit, m, sizeof(*hit), cmp_seg);
		for (size_t i = 0, j; rc == 0 && i < m; i = j) {
			for (j = i; j < m && hit[j] == hit[i]; j++)
				;
			rc = node_seg_reserve_deleted(hit[i], j - i);
		}
		pthread_rwlock_unlock(&c->lock);
		free(hit);
		if (rc < 0)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	return 0;
}

int node_flush_rev(struct node *nd, struct batch *b, int64_t *inserted,
		   int64_t *deleted, int64_t *rev, struct mv_err *err)
{
	struct flush fl = { 0 };
	struct pcoll *pc;
	int rc = 0, locked = 0, slocked = 0, conflicts = 0;
	int64_t t_start = node_now_ms(), t_written = 0, t_meta = 0;
	int64_t commit_rev = 0;
	int unknown = 0;

	*inserted = *deleted = 0;
	*rev = 0;
	if (!b->colls)
		return 0;
	if (atomic_load(&nd->shutting_down)) {
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_SHUTDOWN,
				 "node is shutting down");
		goto out;
	}
	if ((rc = check_dropped(b, err)) < 0)
		goto out;
	{
		size_t nrec = 0;	/* metadata records the commit writes */

		for (pc = b->colls; pc; pc = pc->next) {
			fl.ncolls++;
			fl.cap += 2 + (size_t)pc->c->nfields;
			nrec += 1 + (pc->dels.len > 0) +
				(pc->n ? 1 + (size_t)pc->c->nfields : 0) +
				(nd->conf.history_retention > 0);
		}
		if (nrec > MV_META_TXN_OPS_MAX) {
			rc = mv_err_set(err, MV_EDATA, "this flush spans %zu "
				"collections and would commit %zu metadata "
				"records in one transaction, more than the %d "
				"the metadata store allows; nothing was "
				"committed: flush fewer collections at a time",
				fl.ncolls, nrec,
				MV_META_TXN_OPS_MAX);
			goto out;
		}
	}
	fl.w = calloc(fl.cap, sizeof(*fl.w));
	fl.svals = calloc(fl.ncolls, sizeof(*fl.svals));
	fl.skeys = calloc(fl.ncolls, sizeof(*fl.skeys));
	fl.hvals = calloc(fl.ncolls, sizeof(*fl.hvals));
	fl.hkeys = calloc(fl.ncolls, sizeof(*fl.hkeys));
	fl.ops = calloc(fl.cap + 2 * fl.ncolls, sizeof(*fl.ops));
	fl.cmps = calloc(fl.ncolls, sizeof(*fl.cmps));
	if (!fl.w || !fl.svals || !fl.skeys || !fl.ops || !fl.cmps ||
	    !fl.hvals || !fl.hkeys) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	/* 1. The files, under names nothing refers to yet. */
	if ((rc = flush_write(nd, b, &fl, err)) < 0)
		goto out;
	t_written = node_now_ms();
	/* 2. The commit point: one metadata transaction. */
	pthread_mutex_lock(&nd->commit);
	locked = 1;
	if (atomic_load(&nd->shutting_down)) {
		rc = mv_err_setk(err, MV_EAGAIN, MV_K_SHUTDOWN,
				 "node is shutting down");
		goto out;
	}
	/* node_drop takes node.commit too: dropped is settled here. */
	if ((rc = check_dropped(b, err)) < 0)
		goto out;
	/* The state records: compared and swapped by the transaction. */
	for (pc = b->colls; pc; pc = pc->next)
		pthread_mutex_lock(&pc->c->state_lock);
	slocked = 1;
retry:
	if ((rc = flush_build_txn(nd, b, &fl, err)) < 0 ||
	    (rc = flush_reserve_deletes(b, err)) < 0)
		goto out;
	{
		struct mv_meta_req req = { 0 };

		req.cmps = fl.cmps;
		req.ncmp = fl.ncolls;
		req.ops = fl.ops;
		req.nops = fl.nops;
		rc = mv_meta_txn_req(nd->meta, &req, err);
		commit_rev = req.rev;
		/* etcd did not answer: the txn may have applied all the same. */
		unknown = rc < 0 && nd->cluster;
	}
	if (rc == MV_META_CMPFAIL && nd->cluster && conflicts < 1000) {
		/*
		 * Another node committed to a collection of this flush:
		 * wait, without the locks, until the follower has applied
		 * what it committed (its rows count in the duplicate check),
		 * then read the state records and build the txn again.
		 */
		mv_err_clear(err);
		for (pc = b->colls; pc; pc = pc->next)
			pthread_mutex_unlock(&pc->c->state_lock);
		slocked = 0;
		pthread_mutex_unlock(&nd->commit);
		locked = 0;
		rc = node_wait_applied(nd, commit_rev, MV_VISIBLE_WAIT_MS, err);
		if (rc < 0)
			goto out;
		pthread_mutex_lock(&nd->commit);
		locked = 1;
		if ((rc = check_dropped(b, err)) < 0)
			goto out;
		for (pc = b->colls; pc; pc = pc->next)
			pthread_mutex_lock(&pc->c->state_lock);
		slocked = 1;
		rc = MV_META_CMPFAIL;	/* then read the state records */
	}
	if (rc == MV_META_CMPFAIL && ++conflicts < 1000) {
		/* Another writer changed a state record: read it, redo. */
		mv_err_clear(err);
		rc = 0;
		for (pc = b->colls; rc == 0 && pc; pc = pc->next) {
			struct mv_state st;
			char key[256];

			key_coll(key, sizeof(key), pc->c->user, pc->c->name,
				 "state");
			rc = mv_state_load(nd->meta, key, &pc->c->state, &st,
					   err);
		}
		if (rc < 0)
			goto out;
		goto retry;
	}
	if (rc > 0)
		rc = mv_err_set(err, MV_EAGAIN, "metadata conflict");
	if (rc < 0)
		goto out;
	if (conflicts)
		log_info("flush: a state record changed under another writer "
			 "%d times; committed after it", conflicts);
	{
		size_t si = 0;
		for (pc = b->colls; pc; pc = pc->next, si++) {
			free(pc->c->state);
			pc->c->state = fl.svals[si];
			fl.svals[si] = NULL;
		}
	}
	t_meta = node_now_ms();
	/* 3. Committed: into memory (cannot fail from here on). */
	flush_swap(b, &fl, inserted, deleted);
	{
		/* Applied up to here, unless others committed in between:
		 * then the follower catches up. */
		long long prev = commit_rev - 1;

		atomic_compare_exchange_strong(&nd->applied_rev, &prev,
					       commit_rev);
	}
	for (size_t i = 0; b->flushed && i < fl.nw; i++)
		if (fl.w[i].kind == MV_SEG_VEC)
			node_flushed_add(b->flushed, fl.w[i].path);
	fl.nw = 0;		/* committed: keep the files */
	*rev = commit_rev;
	log_debug("flush of %" PRId64 " rows, %" PRId64 " deletes: files %lld ms, "
		  "metadata %lld ms, in memory %lld ms", *inserted, *deleted,
		  (long long)(t_written - t_start), (long long)(t_meta - t_written),
		  (long long)(node_now_ms() - t_meta));
out:
	for (pc = slocked ? b->colls : NULL; pc; pc = pc->next)
		pthread_mutex_unlock(&pc->c->state_lock);
	if (locked)
		pthread_mutex_unlock(&nd->commit);
	if (unknown && fl.nw) {
		/*
		 * Whether the txn applied is unknown: its files go only if its
		 * first key is certainly absent; else they stay (the follower
		 * loads them if it did apply; the start-up sweep removes them,
		 * this node's own, if it did not).
		 */
		char (*paths)[MV_SPATH] = calloc(fl.nw, sizeof(*paths));

		for (size_t i = 0; paths && i < fl.nw; i++)
			snprintf(paths[i], sizeof(*paths), "%s", fl.w[i].path);
		if (paths)
			node_txn_files(nd, "a flush", fl.w[0].key, paths,
				       fl.nw);
		free(paths);
		fl.nw = 0;	/* out of memory: kept for the sweep */
	}
	for (size_t i = 0; i < fl.nw; i++)
		mv_store_del(nd->store, fl.w[i].path, NULL);
	if (fl.w)
		for (size_t i = 0; i < fl.cap; i++)
			free(fl.w[i].val);
	for (size_t i = 0; fl.svals && i < fl.ncolls; i++)
		free(fl.svals[i]);
	for (size_t i = 0; fl.hvals && i < fl.ncolls; i++)
		free(fl.hvals[i]);
	free(fl.svals);
	free(fl.skeys);
	free(fl.hvals);
	free(fl.hkeys);
	free(fl.cmps);
	free(fl.ops);
	free(fl.w);
	batch_clear(b);
	return rc;
}
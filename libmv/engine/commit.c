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

int node_flush(struct node *nd, struct batch *b, int64_t *inserted,
	       int64_t *deleted, struct mv_err *err)
{
	struct written *w = NULL;
	size_t nw = 0, cap = 0;
	struct mv_meta_op *ops = NULL;
	struct mv_meta_cmp *cmps = NULL;
	char (*skeys)[256] = NULL, **svals = NULL;
	size_t nops = 0, ncolls = 0;
	struct pcoll *pc;
	int rc = 0, locked = 0, slocked = 0, conflicts = 0;
	int64_t t_start = node_now_ms(), t_written = 0, t_meta = 0;

	*inserted = *deleted = 0;
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
			ncolls++;
			cap += 2 + (size_t)pc->c->nfields;
			nrec += 1 + (pc->dels.len > 0) +
				(pc->n ? 1 + (size_t)pc->c->nfields : 0);
		}
		if (nrec > MV_META_TXN_OPS_MAX) {
			rc = mv_err_set(err, MV_EDATA, "this flush spans %zu "
				"collections and would commit %zu metadata "
				"records in one transaction, more than the %d "
				"the metadata store allows; nothing was "
				"committed: flush fewer collections at a time",
				ncolls, nrec,
				MV_META_TXN_OPS_MAX);
			goto out;
		}
	}
	w = calloc(cap, sizeof(*w));
	svals = calloc(ncolls, sizeof(*svals));
	skeys = calloc(ncolls, sizeof(*skeys));
	ops = calloc(cap + ncolls, sizeof(*ops));
	cmps = calloc(ncolls, sizeof(*cmps));
	if (!w || !svals || !skeys || !ops || !cmps) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	/* 1. Write every file under a fresh name; nothing refers to it yet. */
	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;
		const char *base = pc->base;

		if (!pc->vw)
			node_seg_base(c, pc->base, sizeof(pc->base));
		if (pc->dels.len) {
			struct written *x = &w[nw++];
			snprintf(x->path, sizeof(x->path), "%s.del", base);
			x->kind = MV_SEG_DEL;
			x->pc = pc;
			rc = node_put_file(nd, x->path, MV_SEG_DEL, 0,
				      pc->dels.len / 8, pc->dels.p,
				      pc->dels.len, NULL, 0, &x->size, err);
			if (rc < 0)
				goto out;
		}
		if (pc->n) {
			struct written *x = &w[nw++];
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
				goto out;
			for (int f = 0; f < c->nfields; f++) {
				struct written *y = &w[nw++];
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
					goto out;
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
		} else if (c->metric == MV_L2 && !pc->norms2) {
			pc->norms2 = malloc(pc->n * sizeof(float));
			if (!pc->norms2) {
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
				goto out;
			}
			mv_knn_norms2((const float *)(void *)pc->vecs.p, pc->n,
				      c->dim, pc->norms2);
		}
	}
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
	nops = 0;
	for (size_t i = 0; i < cap; i++) {
		free(w[i].val);
		w[i].val = NULL;
	}
	{
		size_t si = 0;
		for (pc = b->colls; pc; pc = pc->next, si++) {
			struct coll *c = pc->c;
			const int64_t *ids = (const int64_t *)pc->ids.p;
			struct mv_state st;
			uint64_t seq;
			char state[96];

			/* This flush's sequence, past what the record says. */
			if (mv_state_parse(c->state, strlen(c->state), &st,
					   err) < 0) {
				rc = err ? err->code : MV_EDATA;
				goto out;
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
			pthread_rwlock_unlock(&c->lock);
			if (rc < 0)
				goto out;
			for (size_t i = 0; i < nw; i++) {
				struct written *x = &w[i];
				const char *slash;

				if (x->pc != pc)
					continue;
				slash = strrchr(x->path, '/');
				snprintf(x->key, sizeof(x->key),
					 "/%s/%s/data/%s", c->user,
					 c->name, slash + 1);
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
					goto out;
				}
				ops[nops++] = (struct mv_meta_op){
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
				goto out;
			}
			ops[nops++] = (struct mv_meta_op){ MV_META_PUT, skeys[si],
				svals[si], strlen(svals[si]) };
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
			goto out;
		}
		c->dels = dl;
	}
	rc = mv_meta_txn(nd->meta, cmps, ncolls, ops, nops, err);
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
			pc->c->state = svals[si];
			svals[si] = NULL;
		}
	}
	t_meta = node_now_ms();
	/* 3. Committed: swap into memory (cannot fail from here on). */
	for (pc = b->colls; pc; pc = pc->next) {
		struct coll *c = pc->c;
		uint64_t seq;

		seq = c->next_seq++;
		struct seg *s = NULL;
		const int64_t *d = (const int64_t *)pc->dels.p;
		struct seg **segs;

		for (size_t i = 0; i < nw; i++) {
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
			for (size_t i = 0; i < nw; i++) {
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
				node_seg_set_deleted(e->seg, e->row);
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
			mv_idmap_put_rows(&c->ids, s->ids, s->n, s, 0);
			c->rows += (int64_t)s->n;
			*inserted += (int64_t)s->n;
		}
		pthread_rwlock_unlock(&c->lock);
	}
	nw = 0;		/* committed: keep the files */
	log_debug("flush of %" PRId64 " rows, %" PRId64 " deletes: files %lld ms, "
		  "metadata %lld ms, in memory %lld ms", *inserted, *deleted,
		  (long long)(t_written - t_start), (long long)(t_meta - t_written),
		  (long long)(node_now_ms() - t_meta));
out:
	for (pc = slocked ? b->colls : NULL; pc; pc = pc->next)
		pthread_mutex_unlock(&pc->c->state_lock);
	if (locked)
		pthread_mutex_unlock(&nd->commit);
	for (size_t i = 0; i < nw; i++)
		mv_store_del(nd->store, w[i].path, NULL);
	if (w)
		for (size_t i = 0; i < cap; i++)
			free(w[i].val);
	for (size_t i = 0; svals && i < ncolls; i++)
		free(svals[i]);
	free(svals);
	free(skeys);
	free(cmps);
	free(ops);
	free(w);
	batch_clear(b);
	return rc;
}

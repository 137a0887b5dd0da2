/*
 * stage.c - a batch's vectors go to storage while they arrive.
 *
 * Once a batch holds STAGE_CHUNK bytes of vectors for a collection that
 * are not yet on their way, the INSERT that brought them hands the
 * page-aligned run to one background thread, which appends it to the
 * segment file (a store writer: direct I/O, no page cache), folds it into
 * the file's CRC and, for cosine, normalises the rows it completed.  The
 * INSERT answers at once; the client's next batch arrives meanwhile.  A
 * flush then writes only the rest, the ids and the trailer (segfile.h's
 * tail layout) and commits the writer, so that a large flush costs little
 * more than its fsync.  Nothing of this is visible: the file is a
 * temporary until the flush's metadata transaction names it, and a batch
 * that is discarded aborts its writer (a crash leaves a temporary that
 * start-up removes).
 *
 * The thread reads the batch's buffer while the connection appends past
 * its end; the buffer may move only when no chunk is in flight
 * (stage_wait before growing it).  stage_lock is a leaf: nothing else is
 * taken under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include "crc32c.h"
#include "log.h"
#include "internal.h"

#define STAGE_CHUNK (4u << 20)

struct sjob {
	struct pcoll *pc;
	size_t off, len;
	struct sjob *next;
};

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stage_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t stage_done = PTHREAD_COND_INITIALIZER;
static struct sjob *queue, **queue_tail = &queue;
static int started;

/* Write one chunk, then normalise the rows it completed. */
static void run(struct sjob *j)
{
	struct pcoll *pc = j->pc;
	struct coll *c = pc->c;
	size_t row = (size_t)c->dim * sizeof(float), end;
	unsigned char *p = pc->vecs.p;	/* does not move meanwhile */
	struct iovec iov = { p + j->off, j->len };

	if (pc->verr.code)
		return;		/* an earlier chunk failed: the flush will */
	if (mv_store_append(pc->vw, &iov, 1, &pc->verr) < 0)
		return;
	pc->vcrc = mv_crc32c(pc->vcrc, p + j->off, j->len);
	end = (j->off + j->len) / row;
	if (c->metric == MV_COSINE && end > pc->vnorm) {
		node_normalise((float *)(void *)(p + pc->vnorm * row),
			       end - pc->vnorm, c->dim);
		pc->vnorm = end;
	}
}

static void *stage_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&stage_lock);
	for (;;) {
		struct sjob *j;

		while (!queue)
			pthread_cond_wait(&stage_work, &stage_lock);
		j = queue;
		queue = j->next;
		if (!queue)
			queue_tail = &queue;
		pthread_mutex_unlock(&stage_lock);
		run(j);
		pthread_mutex_lock(&stage_lock);
		j->pc->vjobs--;
		pthread_cond_broadcast(&stage_done);
		free(j);
	}
	return NULL;
}

void stage_wait(struct pcoll *pc)
{
	pthread_mutex_lock(&stage_lock);
	while (pc->vjobs)
		pthread_cond_wait(&stage_done, &stage_lock);
	pthread_mutex_unlock(&stage_lock);
}

void stage_more(struct node *nd, struct pcoll *pc)
{
	size_t todo = (pc->vecs.len - pc->vqueued) & ~(size_t)4095;
	struct sjob *j;
	struct mv_err err = { 0 };

	if (todo < STAGE_CHUNK || pc->vskip || pc->c->dropped)
		return;
	if (!pc->vw) {
		char path[MV_SPATH];

		node_seg_base(nd, pc->c, pc->base, sizeof(pc->base));
		snprintf(path, sizeof(path), "%s.vec", pc->base);
		if (mv_store_begin(nd->store, path, &pc->vw, &err) < 0) {
			/* Not fatal: the flush writes it all at once. */
			log_warnx("cannot stage '%s': %s", path, err.msg);
			pc->base[0] = '\0';
			pc->vskip = 1;
			return;
		}
	}
	if (!(j = malloc(sizeof(*j))))
		return;		/* the flush writes it */
	*j = (struct sjob){ pc, pc->vqueued, todo, NULL };
	pc->vqueued += todo;
	pthread_mutex_lock(&stage_lock);
	if (!started) {
		pthread_t th;
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&th, &attr, stage_main, NULL) == 0;
		pthread_attr_destroy(&attr);
		if (!started) {
			pthread_mutex_unlock(&stage_lock);
			pc->vqueued -= todo;
			free(j);
			return;
		}
	}
	pc->vjobs++;
	*queue_tail = j;
	queue_tail = &j->next;
	pthread_cond_signal(&stage_work);
	pthread_mutex_unlock(&stage_lock);
}

int stage_end(struct mv_store_writer *w, enum mv_segkind kind, uint32_t aux,
	      uint64_t n, const void *a, size_t alen, const struct iovec *last,
	      uint64_t blen, uint32_t crc_b, uint64_t *size, struct mv_err *err)
{
	struct mv_segenc e;
	int rc = mv_segenc_tail(&e, kind, aux, n, a, alen, blen, crc_b, err);

	if (rc < 0) {
		mv_store_abort(w);
		return rc;
	}
	if ((last && (rc = mv_store_append(w, last, 1, err)) < 0) ||
	    (rc = mv_store_append(w, e.iov, 2, err)) < 0)
		mv_store_abort(w);
	else
		rc = mv_store_commit(w, size, err);
	mv_segenc_release(&e);
	return rc;
}

int stage_finish(struct pcoll *pc, uint64_t *size, struct mv_err *err)
{
	struct coll *c = pc->c;
	struct iovec iov;
	struct mv_store_writer *w = pc->vw;

	stage_wait(pc);
	pc->vw = NULL;
	if (pc->verr.code) {
		mv_store_abort(w);
		return mv_err_set(err, pc->verr.code, "%s", pc->verr.msg);
	}
	iov = (struct iovec){ pc->vecs.p + pc->vqueued,
			      pc->vecs.len - pc->vqueued };
	pc->vcrc = mv_crc32c(pc->vcrc, iov.iov_base, iov.iov_len);
	return stage_end(w, MV_SEG_VEC, c->dim, pc->n, pc->ids.p, pc->n * 8,
			 &iov, pc->vecs.len, pc->vcrc, size, err);
}

void stage_abort(struct pcoll *pc)
{
	if (!pc->vw)
		return;
	stage_wait(pc);
	mv_store_abort(pc->vw);
	pc->vw = NULL;
}

/*
 * tick.c - background work: auto-flush and session expiry (node_tick,
 * run by mv-noded's ticker thread).  An automatic flush keeps the
 * guarantees of FLUSH: in a cluster it waits for sync_level too.
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

/* Keep what an automatic flush committed for node_autoflush_sync. */
static void autoflush_keep(struct batch *b, int64_t rev,
			   struct node_flushed *f)
{
	struct node_flushed *k = &b->sync_units;

	if (!b->sync_rev) {
		*k = *f;
		memset(f, 0, sizeof(*f));
	} else {
		/* Two before the connection's next command (the ticker's
		 * and flush_limit's): one wait covers both. */
		for (size_t i = 0; i < f->n; i++)
			node_flushed_add(k, f->paths[i]);
		k->lost |= f->lost;
	}
	if (rev > b->sync_rev)
		b->sync_rev = rev;
}

int node_autoflush(struct node *nd, struct batch *b, int64_t *inserted,
		   int64_t *deleted, struct mv_err *err)
{
	struct node_flushed f = { 0 };
	int sync = nd->cluster && nd->conf.sync_level > 0;
	int64_t rev = 0;
	int rc;

	b->flushed = sync ? &f : NULL;
	rc = node_flush_rev(nd, b, inserted, deleted, &rev, err);
	b->flushed = NULL;
	if (rc == 0 && sync && rev > 0)
		autoflush_keep(b, rev, &f);
	node_flushed_release(&f);
	return rc;
}

int node_autoflush_sync(struct node *nd, struct batch *b, struct mv_err *err)
{
	struct node_flushed f;
	int64_t rev;
	int rc;

	pthread_mutex_lock(&b->lock);
	rev = b->sync_rev;
	f = b->sync_units;
	b->sync_rev = 0;
	memset(&b->sync_units, 0, sizeof(b->sync_units));
	pthread_mutex_unlock(&b->lock);
	if (!rev)
		return 0;
	rc = node_sync_wait(nd, rev, &f, err);
	if (rc < 0)
		log_warnx("automatic flush: %s", err->msg);
	node_flushed_release(&f);
	return rc;
}

/* Drop a reference that is not the owner's: the work stays for it. */
static void batch_put(struct batch *b)
{
	if (atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	batch_clear(b);
	node_flushed_release(&b->sync_units);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void node_tick(struct node *nd)
{
	time_t now = node_mono_s();
	int64_t ms = node_mono_ms();
	struct batch *b, **pp, **due = NULL;
	size_t ndue = 0, all = 0;

	pthread_mutex_lock(&nd->slock);
	for (pp = &nd->sessions; (b = *pp);) {
		if (b->conns == 0 && now - b->last_used >= nd->conf.session_ttl) {
			*pp = b->next;
			log_info("session '%s' expired after %lld s idle",
				 b->session, (long long)nd->conf.session_ttl);
			node_cluster_session(nd, b->session, 0);
			batch_free(b);
			continue;
		}
		pp = &b->next;
	}
	pthread_mutex_unlock(&nd->slock);
	if (!nd->conf.auto_flush)
		return;
	/*
	 * Take the batches due off the list with a reference, and flush them
	 * outside node.blist: accept (which takes it) must not wait for a
	 * flush.
	 */
	pthread_mutex_lock(&nd->blist);
	for (b = nd->conn_batches; b; b = b->next)
		all++;
	due = all ? malloc(all * sizeof(*due)) : NULL;
	for (b = due ? nd->conn_batches : NULL; b; b = b->next) {
		int ready;

		if (pthread_mutex_trylock(&b->lock))
			continue;
		ready = !b->held && b->rows + b->ndels > 0 && b->first_ms &&
			ms - b->first_ms >= nd->conf.flush_interval &&
			!b->autoflush_failed;
		pthread_mutex_unlock(&b->lock);
		if (ready) {
			atomic_fetch_add(&b->refs, 1);
			due[ndue++] = b;
		}
	}
	pthread_mutex_unlock(&nd->blist);
	for (size_t i = 0; i < ndue; i++) {
		int64_t ins, del;
		struct mv_err e = { 0 };

		b = due[i];
		if (pthread_mutex_trylock(&b->lock) == 0) {
			/* Again: its connection may have flushed or gone. */
			if (!b->held && b->rows + b->ndels > 0 &&
			    !b->autoflush_failed) {
				atomic_fetch_add(&nd->inflight, 1);
				node_test_pause("MV_TEST_PAUSE_AUTOFLUSH");
				if (node_autoflush(nd, b, &ins, &del, &e) < 0) {
					b->autoflush_failed = 1;
					snprintf(b->autoflush_err,
						 sizeof(b->autoflush_err), "%s",
						 e.msg);
					log_warnx("automatic flush failed: %s",
						  e.msg);
				}
				atomic_fetch_sub(&nd->inflight, 1);
			}
			pthread_mutex_unlock(&b->lock);
		}
		batch_put(b);		/* the reference taken above */
	}
	free(due);
}

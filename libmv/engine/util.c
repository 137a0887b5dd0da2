/*
 * util.c - the engine's lowest layer: growable buffers, clocks, random
 * names, normalising vectors and merging a hit into a top-k list (used by
 * both exact and index search), and the files of a metadata transaction
 * that failed (kept in limbo until it is known whether it applied; the
 * follower settles them, follow.c).
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
#include <time.h>
#include "bigmem.h"
#include "internal.h"
#include "knn.h"
#include "log.h"
#include "segfile.h"
#include "vcheck.h"

struct node *the_node;

int nbuf_reserve(struct nbuf *b, size_t more)
{
	size_t cap;
	void *p;

	if (b->len + more <= b->cap)
		return 0;
	if (b->len + more < b->len)
		return MV_EINTERNAL;
	if (b->mapped) {
		struct mv_big big = { b->p, b->cap, b->touched };

		if (mv_big_reserve(&big, b->len + more) < 0)
			return MV_EINTERNAL;
		b->p = big.p;
		b->cap = big.cap;
		b->touched = big.touched;
		return 0;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return MV_EINTERNAL;
	b->p = p;
	b->cap = cap;
	return 0;
}

void nbuf_touch(struct nbuf *b, size_t end)
{
	struct mv_big big = { b->p, b->cap, b->touched };

	if (!b->mapped || !b->p)
		return;
	mv_big_touch(&big, end);
	b->touched = big.touched;
}

void nbuf_release(struct nbuf *b)
{
	int mapped = b->mapped;

	if (mapped) {
		struct mv_big big = { b->p, b->cap, b->touched };

		mv_big_free(&big, b->touched, 1);
	} else {
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
	b->mapped = mapped;
}

int64_t node_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t node_mono_ms(void)
{
	return mv_mono_ms();
}

void node_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

time_t node_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Tests only: with the environment variable VAR set to N, pause N ms here,
 * logging the start and the end.  Off (one getenv) otherwise; called on
 * slow paths only (an index drop's copy, an automatic flush).
 */
void node_test_pause(const char *var)
{
	const char *v = getenv(var);
	long ms = v ? strtol(v, NULL, 10) : 0;
	struct timespec ts;

	if (ms <= 0)
		return;
	log_info("test pause: %s, %ld ms", var, ms);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = ms % 1000 * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	log_info("test pause: %s over", var);
}

void node_random_hex(char *out, size_t bytes)
{
	unsigned char r[16];

	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (getrandom(r, bytes, 0) != (ssize_t)bytes) {
		uint64_t t = (uint64_t)node_now_ms() ^ (uint64_t)(uintptr_t)out;
		memcpy(r, &t, bytes < 8 ? bytes : 8);
	}
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

void node_normalise(float *v, size_t n, uint32_t dim)
{
	mv_knn_renorm(v, n, dim);
}

static inline int better(int l2, float d1, int64_t i1, float d2, int64_t i2)
{
	if (d1 != d2)
		return l2 ? d1 < d2 : d1 > d2;
	return i1 < i2;
}

void node_merge_hit(int l2, int64_t *ri, float *rd, size_t k, int64_t id,
		    float d)
{
	size_t pos;

	if (ri[k - 1] != MV_ID_NONE &&
	    !better(l2, d, id, rd[k - 1], ri[k - 1]))
		return;
	pos = k - 1;
	while (pos > 0 && (ri[pos - 1] == MV_ID_NONE ||
			   better(l2, d, id, rd[pos - 1], ri[pos - 1]))) {
		ri[pos] = ri[pos - 1];
		rd[pos] = rd[pos - 1];
		pos--;
	}
	ri[pos] = id;
	rd[pos] = d;
}
void node_topk_clear(int l2, int64_t *ids, float *dist, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ids[i] = MV_ID_NONE;
		dist[i] = l2 ? INFINITY : -INFINITY;
	}
}

/* memory_limit's count of loaded segments and indexes (engine.h). */
atomic_llong node_held;

void node_held_add(long long bytes)
{
	atomic_fetch_add(&node_held, bytes);
}

/* --- files of a transaction that failed ---------------------------- */

/*
 * Keep the n files at paths until the metadata says whether key, which
 * what's transaction put, is there: absent, they are removed.
 */
static void limbo_add(struct node *nd, const char *what, const char *key,
		      char (*paths)[MV_SPATH], size_t n)
{
	struct limbo *l = calloc(1, sizeof(*l));

	if (!l || !(l->paths = malloc(n * sizeof(*l->paths)))) {
		free(l);
		return;		/* the start-up sweep removes them */
	}
	snprintf(l->what, sizeof(l->what), "%s", what);
	snprintf(l->key, sizeof(l->key), "%s", key);
	memcpy(l->paths, paths, n * sizeof(*l->paths));
	l->n = n;
	pthread_mutex_lock(&nd->limbo_lock);
	l->next = nd->limbo;
	nd->limbo = l;
	pthread_mutex_unlock(&nd->limbo_lock);
}

void node_txn_files(struct node *nd, const char *what, const char *key,
		    char (*paths)[MV_SPATH], size_t n)
{
	char *v = NULL;
	size_t vl;

	if (!nd->cluster || mv_meta_get(nd->meta, key, &v, &vl, NULL) == 1) {
		for (size_t i = 0; i < n; i++)
			mv_store_del(nd->store, paths[i], NULL);
		free(v);
		return;
	}
	free(v);
	limbo_add(nd, what, key, paths, n);
	log_warnx("%s: the metadata did not answer; its %zu files are kept "
		  "until it is known whether it committed", what, n);
}

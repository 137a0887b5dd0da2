/*
 * visible - the time from a flush returning on one node to its row being
 * found by a search on other nodes of a cluster (issue 7).
 *
 *   visible [-n ROUNDS] [--id0 ID] NAME WRITER_ADDR READER_ADDR...
 *
 * NAME is an existing collection of dimension 4 (l2).  Each round inserts
 * one row (id ID + round, a vector made from the id: no other id has
 * it; ids below 10^10, rounds below 10^5) through WRITER
 * and flushes it; the moment the FLUSH reply is read is t0.  Then one
 * thread per reader, each over its own persistent connection, searches
 * that vector (k = 1) until the row comes back first, and notes the time
 * since t0.  A node's visibility wait makes the first search find it; the
 * tries are counted to show that.  A round gives up after 10 s (exit 1).
 *
 * Prints "key<TAB>value" lines: rounds, flush_median_ms, and for each
 * reader I (1-based, in argument order) readerI_median_ms, readerI_max_ms,
 * readerI_first_try (rounds found by the first search).
 * Exit 0, 1 when a row was not found in time, the sysexits status of a
 * failing call, 64 on usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "bench.h"

static const char *prog = "visible";

#define READERS_MAX 8
#define DIM 4

struct reader {
	const char *addr;
	struct mv_client *c;
	double *ms;		/* per round */
	long first;		/* rounds found by the first search */
	int rc;			/* 0, 1 (not found in time) or a sysexits code */
	struct mv_err err;
};

static const char *name;
static pthread_barrier_t go, done;
static float vec[DIM];
static int64_t want;
static double t0;
static long round_no, stop;

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [-n ROUNDS] [--id0 ID] NAME WRITER_ADDR "
		"READER_ADDR...\n", prog);
	exit(rc);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (;;) {
		pthread_barrier_wait(&go);
		if (stop)
			return NULL;
		long tries = 0;

		while (!r->rc) {
			int64_t id = -1;
			float d;
			int rc = mv_client_search(r->c, name, DIM, 1, 1, vec,
						  NULL, &id, &d, NULL, NULL,
						  &r->err);
			double t = now();

			tries++;
			if (rc < 0) {
				r->rc = mv_exit_code(rc);
				break;
			}
			if (id == want) {
				r->ms[round_no] = (t - t0) * 1e3;
				if (tries == 1)
					r->first++;
				break;
			}
			if (t - t0 > 10) {
				snprintf(r->err.msg, sizeof(r->err.msg),
					 "row %lld not found in 10 s",
					 (long long)want);
				r->rc = 1;
			}
		}
		pthread_barrier_wait(&done);
	}
}

int main(int argc, char **argv)
{
	long rounds = 50;
	int64_t id0 = 1000000000;
	struct mv_err err = { 0 };
	struct reader rd[READERS_MAX];
	pthread_t th[READERS_MAX];
	int i, nr, rc = 0;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			usage(0);
		if (!v)
			usage(64);
		if (!strcmp(argv[i], "-n"))
			rounds = strtol(v, NULL, 10);
		else if (!strcmp(argv[i], "--id0"))
			id0 = strtoll(v, NULL, 10);
		else
			usage(64);
		i++;
	}
	nr = argc - i - 2;
	if (nr < 1 || nr > READERS_MAX || rounds <= 0)
		usage(64);
	name = argv[i];

	struct mv_client *w = mv_client_connect(argv[i + 1], &err);
	double *flush_ms = calloc((size_t)rounds, sizeof(double));

	if (!w || !flush_ms)
		goto fail;
	memset(rd, 0, sizeof(rd));
	for (int r = 0; r < nr; r++) {
		rd[r].addr = argv[i + 2 + r];
		rd[r].ms = calloc((size_t)rounds, sizeof(double));
		rd[r].c = mv_client_connect(rd[r].addr, &err);
		if (!rd[r].c || !rd[r].ms)
			goto fail;
	}
	pthread_barrier_init(&go, NULL, (unsigned)nr + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nr + 1);
	for (int r = 0; r < nr; r++)
		pthread_create(&th[r], NULL, reader_main, &rd[r]);
	for (round_no = 0; round_no < rounds; round_no++) {
		want = id0 + round_no;
		/* A vector of its own, for any id (runs use other id0s). */
		vec[0] = (float)(want % 100000);
		vec[1] = (float)(want / 100000) + 0.5f;
		vec[2] = -vec[0];
		vec[3] = 1;
		double ts = now();
		int wrc = mv_client_insert(w, name, 1, DIM, &want, vec, NULL, 0,
					   0, NULL, &err);

		if (wrc >= 0)
			wrc = mv_client_flush(w, NULL, NULL, NULL, &err);
		t0 = now();
		if (wrc < 0) {
			rc = mv_exit_code(wrc);
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i + 1],
				err.msg);
			break;
		}
		flush_ms[round_no] = (t0 - ts) * 1e3;
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&done);
		for (int r = 0; r < nr; r++)
			if (rd[r].rc) {
				fprintf(stderr, "%s: %s: %s\n", prog,
					rd[r].addr, rd[r].err.msg);
				rc = rd[r].rc;
			}
		if (rc)
			break;
	}
	stop = 1;
	pthread_barrier_wait(&go);
	for (int r = 0; r < nr; r++)
		pthread_join(th[r], NULL);
	if (rc)
		return rc;
	qsort(flush_ms, (size_t)rounds, sizeof(double), cmp_double);
	printf("rounds\t%ld\nflush_median_ms\t%.2f\n", rounds,
	       quantile(flush_ms, (size_t)rounds, 0.5));
	for (int r = 0; r < nr; r++) {
		qsort(rd[r].ms, (size_t)rounds, sizeof(double), cmp_double);
		printf("reader%d_median_ms\t%.2f\nreader%d_max_ms\t%.2f\n"
		       "reader%d_first_try\t%ld\n", r + 1,
		       quantile(rd[r].ms, (size_t)rounds, 0.5), r + 1,
		       rd[r].ms[rounds - 1], r + 1, rd[r].first);
		mv_client_free(rd[r].c);
		free(rd[r].ms);
	}
	mv_client_free(w);
	free(flush_ms);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", prog, err.msg);
	return mv_exit_code(err.code ? err.code : MV_EUNAVAIL);
}

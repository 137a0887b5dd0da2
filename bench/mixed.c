/*
 * mixed - search throughput of C concurrent clients at mixed parameters
 * against one client, through mv's client library over the socket
 * (issue 9: searches at different ef or nprobe must not serialise).
 *
 *   mixed [-a ADDR] [-c C] [-k K] [-r ROUNDS] [-t SECONDS]
 *         -p PARAMS [-p PARAMS ...] NAME QUERY.fvecs
 *
 * Each client is a thread with its own connection (mv_client_connect: -a,
 * else $MV_ADDR, else the embedded node's socket) sending single queries
 * (nq = 1, k = K, default 10) in a loop; query j of client t goes with the
 * (t + j)-th PARAMS of the list, round robin, so that at any moment the
 * clients search at different settings.  Phases of SECONDS (default 5)
 * each, after a one-second warm-up: one client alone, then C (default 8)
 * at once, and so on for ROUNDS rounds (default 3), so that a shared
 * machine's changing load falls on both alike.  Throughput is the queries
 * answered in a phase over its wall-clock time.
 *
 * Prints "key<TAB>value" lines: clients, params (joined by ", "), rounds,
 * qps_1, qps_C (medians over the rounds), ratio (qps_C / qps_1) and
 * ratio_min, ratio_max (of the rounds' ratios).  Exit 0, 1 on a failed
 * call, 64 on usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "bench.h"

static const char *prog = "mixed";

#define MAXP 32
#define MAXC 256

static const char *addr, *name, *params[MAXP];
static int np;
static size_t nq, k = 10;
static int dim;
static const float *xq;
static volatile int stop;

struct client {
	int t;
	long done;
	int failed;
	char msg[256];
};

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: %s [-a ADDR] [-c CLIENTS] [-k K] [-r ROUNDS] "
		"[-t SECONDS]\n"
		"       -p PARAMS [-p PARAMS ...] NAME QUERY.fvecs\n", prog);
	exit(rc);
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct mv_err err = { 0 };
	struct mv_client *c = mv_client_connect(addr, &err);
	int64_t ids[1024];
	float dist[1024];
	size_t j = (size_t)cl->t * 7919;

	if (!c)
		goto fail;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		if (mv_client_search(c, name, (uint32_t)dim, k, 1,
				     xq + (j % nq) * (size_t)dim,
				     params[(cl->t + j) % (size_t)np], ids,
				     dist, NULL, NULL, &err) < 0)
			goto fail;
		cl->done++;
		j++;
	}
	mv_client_free(c);
	return NULL;
fail:
	cl->failed = 1;
	snprintf(cl->msg, sizeof(cl->msg), "%s", err.msg);
	if (c)
		mv_client_free(c);
	return NULL;
}

/* Queries per second of n clients over secs (after a 1 s warm-up). */
static double phase(int n, double secs)
{
	static struct client cl[MAXC];
	pthread_t th[MAXC];
	long before = 0, after = 0;
	double t0, t1;

	stop = 0;
	for (int t = 0; t < n; t++) {
		cl[t] = (struct client){ .t = t };
		if (pthread_create(&th[t], NULL, client_main, &cl[t]))
			die("cannot start a client thread", NULL);
	}
	nanosleep(&(struct timespec){ 1, 0 }, NULL);
	t0 = now();
	for (int t = 0; t < n; t++)
		before += __atomic_load_n(&cl[t].done, __ATOMIC_RELAXED);
	nanosleep(&(struct timespec){ (time_t)secs,
				      (long)((secs - (time_t)secs) * 1e9) },
		  NULL);
	for (int t = 0; t < n; t++)
		after += __atomic_load_n(&cl[t].done, __ATOMIC_RELAXED);
	t1 = now();
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int t = 0; t < n; t++) {
		pthread_join(th[t], NULL);
		if (cl[t].failed)
			die("search failed", cl[t].msg);
	}
	return (after - before) / (t1 - t0);
}

int main(int argc, char **argv)
{
	struct mv_err err = { 0 };
	struct mv_client *c;
	struct mv_coll_info info;
	long clients = 8, rounds = 3;
	double secs = 5, q1[64], qn[64], ratio[64];
	size_t rows;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (!v)
			usage(64);
		if (!strcmp(a, "-a"))
			addr = v;
		else if (!strcmp(a, "-c"))
			clients = strtol(v, NULL, 10);
		else if (!strcmp(a, "-k"))
			k = (size_t)strtol(v, NULL, 10);
		else if (!strcmp(a, "-r"))
			rounds = strtol(v, NULL, 10);
		else if (!strcmp(a, "-t"))
			secs = strtod(v, NULL);
		else if (!strcmp(a, "-p") && np < MAXP)
			params[np++] = v;
		else
			usage(64);
		i++;
	}
	if (argc - i != 2 || np == 0 || clients < 1 || clients > MAXC ||
	    k < 1 || k > 1024 || !(secs > 0) || rounds < 1 || rounds > 64)
		usage(64);
	name = argv[i];
	xq = read_vecs(argv[i + 1], &rows, &dim);
	nq = rows;
	if (nq == 0)
		die("no queries", argv[i + 1]);

	c = mv_client_connect(addr, &err);
	if (!c || mv_client_describe(c, name, &info, &err) < 0)
		die("cannot describe the collection", err.msg);
	mv_client_free(c);
	if ((int)info.dim != dim)
		die("query dimension differs from the collection's", argv[i + 1]);

	for (long r = 0; r < rounds; r++) {
		q1[r] = phase(1, secs);
		qn[r] = phase((int)clients, secs);
		ratio[r] = qn[r] / q1[r];
		fprintf(stderr, "%s: round %ld: 1 client %.1f QPS, %ld clients "
			"%.1f QPS\n", prog, r + 1, q1[r], clients, qn[r]);
	}
	qsort(q1, (size_t)rounds, sizeof(double), cmp_double);
	qsort(qn, (size_t)rounds, sizeof(double), cmp_double);
	qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
	printf("clients\t%ld\nparams\t", clients);
	for (int p = 0; p < np; p++)
		printf("%s%s", p ? ", " : "", params[p]);
	printf("\nrounds\t%ld\nqps_1\t%.1f\nqps_%ld\t%.1f\nratio\t%.2f\n"
	       "ratio_min\t%.2f\nratio_max\t%.2f\n", rounds,
	       quantile(q1, (size_t)rounds, 0.5), clients,
	       quantile(qn, (size_t)rounds, 0.5),
	       quantile(qn, (size_t)rounds, 0.5) /
		       quantile(q1, (size_t)rounds, 0.5),
	       ratio[0], ratio[rounds - 1]);
	return 0;
}

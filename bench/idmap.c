/*
 * bench/idmap - the id map (libmv/idmap.c) at two fill limits in one run:
 * at most 1/2 full (before) and at most 2/3 full (now).  For N ids
 * 0..N-1 (as auto-assigned ids are), per limit and round, in turns: CPU
 * time of put_rows of all (a load), get of every id (GET, deletes), get
 * of N absent ids (the duplicate check of new rows), and the table's
 * bytes.  bench/idmap [N [ROUNDS]]; defaults 331479 (glove-100) and 5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int half;
#define MV_IDMAP_SLOTS(n) (half ? (n) * 2 : (n) + (n) / 2)
#include "../libmv/idmap.c"

static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 331479;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	int64_t *ids = malloc(n * sizeof(*ids));
	double best[2][3] = { { 1e9, 1e9, 1e9 }, { 1e9, 1e9, 1e9 } };
	size_t bytes[2] = { 0, 0 };
	volatile size_t hits = 0;

	if (!ids || n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i;
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < 2; k++) {
			struct mv_idmap m;
			double t0, t1, t2, t3;

			half = (k + r) % 2;	/* alternate which goes first */
			mv_idmap_init(&m);
			t0 = cpu_s();
			if (mv_idmap_put_rows(&m, ids, n, &m, 0) < 0)
				return 1;
			t1 = cpu_s();
			for (size_t i = 0; i < n; i++)
				hits += mv_idmap_get(&m, ids[i]) != NULL;
			t2 = cpu_s();
			for (size_t i = 0; i < n; i++)
				hits += mv_idmap_get(&m, (int64_t)(n + i)) != NULL;
			t3 = cpu_s();
			bytes[half] = m.cap * sizeof(*m.t);
			if (t1 - t0 < best[half][0]) best[half][0] = t1 - t0;
			if (t2 - t1 < best[half][1]) best[half][1] = t2 - t1;
			if (t3 - t2 < best[half][2]) best[half][2] = t3 - t2;
			mv_idmap_release(&m);
		}
	printf("ids\t%zu\tbest of %d rounds, CPU ns per id\n", n, rounds);
	printf("fill limit\tbytes\tput_rows\tget (present)\tget (absent)\n");
	for (int h = 1; h >= 0; h--)
		printf("%s\t%zu\t%.1f\t%.1f\t%.1f\n", h ? "1/2" : "2/3",
		       bytes[h], best[h][0] / n * 1e9, best[h][1] / n * 1e9,
		       best[h][2] / n * 1e9);
	printf("2/3 over 1/2\t%.2f\t%.2f\t%.2f\t%.2f\n",
	       (double)bytes[0] / bytes[1], best[0][0] / best[1][0],
	       best[0][1] / best[1][1], best[0][2] / best[1][2]);
	free(ids);
	return hits == (size_t)-1;
}

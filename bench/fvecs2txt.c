/*
 * fvecs2txt - fvecs (or bvecs with --bvecs) to text: one vector per line,
 * values printed with "%.6g" and separated by single spaces, the text
 * format mv-insert reads.
 *
 *   fvecs2txt [-n N] [--bvecs] [FILE]      (stdin when no FILE or "-")
 *
 * -n N stops after N vectors.  Exit 0, 1 on a read/write error or a
 * malformed file, 64 on usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "fvecs2txt";

int main(int argc, char **argv)
{
	long long nmax = -1;
	int bvecs = 0, i;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			nmax = strtoll(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--bvecs")) {
			bvecs = 1;
		} else {
			fprintf(stderr, "usage: %s [-n N] [--bvecs] [FILE]\n", prog);
			return 64;
		}
	}
	if (argc - i > 1) {
		fprintf(stderr, "usage: %s [-n N] [--bvecs] [FILE]\n", prog);
		return 64;
	}
	const char *path = i < argc ? argv[i] : "-";
	FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!in) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return 1;
	}
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	size_t cap = 0;
	float *v = NULL;
	unsigned char *bv = NULL;
	char *line = NULL;
	unsigned long long rec = 0;
	int32_t d;
	while ((nmax < 0 || (long long)rec < nmax) && fread(&d, 4, 1, in) == 1) {
		rec++;
		if (d <= 0 || d > 1 << 20) {
			fprintf(stderr, "%s: %s:%llu: bad dimension %d\n", prog,
				path, rec, (int)d);
			return 1;
		}
		if ((size_t)d > cap) {
			cap = (size_t)d;
			v = realloc(v, cap * sizeof(float));
			bv = realloc(bv, cap);
			line = realloc(line, cap * 16 + 2);
			if (!v || !bv || !line) {
				fprintf(stderr, "%s: out of memory\n", prog);
				return 1;
			}
		}
		size_t got = bvecs ? fread(bv, 1, (size_t)d, in) :
				     fread(v, 4, (size_t)d, in);
		if (got != (size_t)d) {
			fprintf(stderr, "%s: %s:%llu: truncated record\n", prog,
				path, rec);
			return 1;
		}
		size_t len = 0;
		for (int j = 0; j < d; j++) {
			if (j)
				line[len++] = ' ';
			double x = bvecs ? (double)bv[j] : (double)v[j];
			len += (size_t)snprintf(line + len, 16, "%.6g", x);
		}
		line[len++] = '\n';
		if (fwrite(line, 1, len, stdout) != len)
			break;
	}
	if (ferror(in)) {
		fprintf(stderr, "%s: %s: read error\n", prog, path);
		return 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno == EPIPE)
			return 0;
		fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno));
		return 1;
	}
	free(v);
	free(bv);
	free(line);
	return 0;
}

/*
 * test_main.c - main() of tests/unit/run-unit: runs every TEST() that the
 * linked test_*.c files registered and reports them as unit.h describes.
 * It holds no tests itself.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "unit.h"

static struct unit_test *head, **tail = &head;
static int cur_failed;
static char tmpdir[64];

void unit_register(struct unit_test *t)
{
	t->next = NULL;
	*tail = t;
	tail = &t->next;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	cur_failed++;
	printf("#   %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void unit_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void unit_catf(char *buf, size_t size, const char *fmt, ...)
{
	size_t k = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + k, size - k, fmt, ap);
	va_end(ap);
}

const char *unit_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/mv-unit.XXXXXX",
			 base && *base && strlen(base) < 40 ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

const char *unit_path(const char *name)
{
	static char slots[8][4096];
	static int next;
	char *p = slots[next++ % 8];

	snprintf(p, sizeof(slots[0]), "%s/%s", unit_tmpdir(), name);
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct unit_test *t;
	int n = 0, passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = head; t; t = t->next)
		if (selected(t->name, argc, argv))
			n++;
	printf("1..%d\n", n);
	n = 0;
	for (t = head; t; t = t->next) {
		if (!selected(t->name, argc, argv))
			continue;
		cur_failed = 0;
		t->fn();
		n++;
		if (cur_failed) {
			printf("not ok %d - %s\n", n, t->name);
			failed++;
		} else {
			printf("ok %d - %s\n", n, t->name);
			passed++;
		}
	}
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

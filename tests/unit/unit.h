/*
 * unit.h - a tiny unit-test runner for libmv: TAP-like output, no
 * dependencies, no registration list to keep up to date.
 *
 * Write tests in tests/unit/test_<module>.c; the Makefile links every such
 * file with libmv.a and tests/unit/test_main.c into tests/unit/run-unit.
 *
 *	#include "unit.h"
 *
 *	TEST(err_first_wins)
 *	{
 *		struct mv_err err = { 0 };
 *
 *		mv_err_set(&err, MV_EIO, "one");
 *		mv_err_set(&err, MV_EDATA, "two");
 *		CHECK_EQ_INT(err.code, MV_EIO);
 *		CHECK_STR(err.msg, "one");
 *	}
 *
 * TEST(name) defines a test and registers it before main() runs (a
 * constructor); names are C identifiers, unique across the files.  Tests
 * run in link order, one after the other, in one process.  Each prints
 * "ok N - name" or "not ok N - name", every failed check adds a line
 * "#   file:line: what failed", and the run ends with the line
 * "N passed, N failed"; the exit status is 1 if any test failed.
 *
 * CHECK* record a failure and let the test go on; REQUIRE(cond) also
 * returns from the test (use it before dereferencing what it checks).
 * unit_diag() prints a "# ..." note (timings, seeds).  unit_tmpdir() is a
 * scratch directory made on first use and removed, with its contents, at
 * the end of the run.  `run-unit WORD...` runs only the tests whose name
 * contains one of the WORDs.
 */
#ifndef MV_UNIT_H
#define MV_UNIT_H

#include <stddef.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	const char *file;
	struct unit_test *next;
};

void unit_register(struct unit_test *t);
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void unit_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Append printf's output to the string in buf[size], truncating. */
void unit_catf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A per-run scratch directory (absolute path); removed at exit. */
const char *unit_tmpdir(void);
/* unit_tmpdir()/name in a static buffer of one of 8 slots, for brevity. */
const char *unit_path(const char *name);

struct node;
struct mv_err;
/* test_engine.c: an embedded node on data_dir dir, opened as the_node. */
int unit_engine_open(struct node *nd, const char *dir, struct mv_err *err);

#define TEST(name)							\
	static void unit_fn_##name(void);				\
	static struct unit_test unit_t_##name = {			\
		#name, unit_fn_##name, __FILE__, NULL			\
	};								\
	__attribute__((constructor)) static void unit_reg_##name(void)	\
	{								\
		unit_register(&unit_t_##name);				\
	}								\
	static void unit_fn_##name(void)

#define CHECK(cond)							\
	do {								\
		if (!(cond))						\
			unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define REQUIRE(cond)							\
	do {								\
		if (!(cond)) {						\
			unit_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); \
			return;						\
		}							\
	} while (0)

#define CHECK_EQ_INT(a, b)						\
	do {								\
		long long unit_a = (long long)(a);			\
		long long unit_b = (long long)(b);			\
		if (unit_a != unit_b)					\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_EQ_INT(%s, %s): %lld != %lld",	\
				  #a, #b, unit_a, unit_b);		\
	} while (0)

#define CHECK_EQ_U64(a, b)						\
	do {								\
		unsigned long long unit_a = (unsigned long long)(a);	\
		unsigned long long unit_b = (unsigned long long)(b);	\
		if (unit_a != unit_b)					\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_EQ_U64(%s, %s): %llu != %llu",	\
				  #a, #b, unit_a, unit_b);		\
	} while (0)

/* Doubles equal within eps (use 0 for exact). */
#define CHECK_NEAR(a, b, eps)						\
	do {								\
		double unit_a = (double)(a), unit_b = (double)(b);	\
		double unit_d = unit_a > unit_b ? unit_a - unit_b	\
						: unit_b - unit_a;	\
		if (!(unit_d <= (double)(eps)))				\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_NEAR(%s, %s): %.17g != %.17g",	\
				  #a, #b, unit_a, unit_b);		\
	} while (0)

/* NUL-terminated strings; NULL equals only NULL. */
#define CHECK_STR(a, b)							\
	do {								\
		const char *unit_a = (a), *unit_b = (b);		\
		if (unit_a != unit_b &&					\
		    (!unit_a || !unit_b || strcmp(unit_a, unit_b)))	\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_STR(%s, %s): \"%s\" != \"%s\"", \
				  #a, #b, unit_a ? unit_a : "(null)",	\
				  unit_b ? unit_b : "(null)");		\
	} while (0)

#define CHECK_MEM(a, b, n)						\
	do {								\
		if (memcmp((a), (b), (n)))				\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_MEM(%s, %s, %s)", #a, #b, #n);	\
	} while (0)

#endif

/*
 * fuzz.h - helpers shared by the libFuzzer targets of tests/fuzz/: the
 * parsers under test read files and descriptors, so an input is handed to
 * them as an anonymous in-memory file.
 */
#ifndef MV_FUZZ_H
#define MV_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memfd holding data, offset 0; aborts when the system refuses one. */
static inline int fuzz_memfd(const uint8_t *data, size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w <= 0) {
			perror("write");
			abort();
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

/* Fail loudly (a crash libFuzzer reports) when an invariant breaks. */
#define FUZZ_CHECK(x) do { if (!(x)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
	abort(); } } while (0)

#endif

/*
 * fuzz_ids - the id-list parser of libmv/vecio.c (mv_idreader: --ids,
 * mv-delete, mv-get).  The first byte picks how many ids one read asks
 * for (1..8); the rest is the file.
 */
#include <string.h>
#include "fuzz.h"
#include "vecio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct mv_idreader *r;
	struct mv_err err = { 0 };
	int64_t ids[9];
	char path[64];
	size_t max;
	long n;
	int fd;

	if (len < 1)
		return 0;
	max = (size_t)(data[0] & 7) + 1;
	fd = fuzz_memfd(data + 1, len - 1);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = mv_idreader_open(path, &err);
	FUZZ_CHECK(r);
	ids[max] = 0x5a5a5a5a5a5a5a5a;
	while ((n = mv_idreader_read(r, ids, max, &err)) > 0)
		FUZZ_CHECK((size_t)n <= max && ids[max] == 0x5a5a5a5a5a5a5a5a);
	if (n < 0) {
		FUZZ_CHECK(n == MV_EDATA || n == MV_EIO);
		FUZZ_CHECK(err.code == n && err.msg[0]);
		FUZZ_CHECK(mv_idreader_read(r, ids, max, NULL) == n);
	}
	mv_idreader_close(r);
	close(fd);
	return 0;
}

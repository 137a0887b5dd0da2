/*
 * fuzz_conf - mv.conf (libmv/conf.c): the input is the file, loaded over
 * the defaults; each line's value is also given to mv_parse_size.
 */
#include <string.h>
#include "conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct mv_conf c;
	struct mv_err err = { 0 };
	char path[64];
	int fd, rc;

	if (mv_conf_init(&c, &err) < 0)
		abort();
	fd = fuzz_memfd(data, len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = mv_conf_load(&c, path, 0, &err);
	if (rc < 0) {
		FUZZ_CHECK(err.code == rc && err.msg[0]);
	} else {
		FUZZ_CHECK(c.nlisten >= 0 && c.nlisten <= MV_LISTEN_MAX);
		FUZZ_CHECK(c.nallow >= 0 && c.nallow <= MV_ALLOW_MAX);
		for (int i = 0; i < c.nlisten; i++)
			FUZZ_CHECK(c.listen[i]);
		FUZZ_CHECK(c.data_dir);
	}
	mv_conf_release(&c);
	close(fd);
	{
		/* Every line as a size too. */
		char line[256];
		size_t i = 0;

		while (i < len) {
			size_t j = 0;
			while (i < len && data[i] != '\n' && j < sizeof(line) - 1)
				line[j++] = (char)data[i++];
			while (i < len && data[i] != '\n')
				i++;
			i++;
			line[j] = '\0';
			(void)mv_parse_size(line);
		}
	}
	return 0;
}

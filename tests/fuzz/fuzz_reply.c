/*
 * fuzz_reply - the reply parser of libmv/client.c.  A real client
 * connects to a Unix socket of this process; the input (after its first
 * byte) is what the "node" answers, then the node closes.  The first byte
 * picks the request: a text command, a listing, DESCRIBE, INSERT, DELETE,
 * FLUSH/COMMIT, SESSION, SEARCH (with or without fields), GET or SCAN.
 * What a call returns must be all there: every id, vector and text byte
 * it promises is read.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "client.h"
#include "fuzz.h"

static int lfd = -1;
static char addr[160], dir[128];

static void cleanup(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/sock", dir);
	unlink(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("TMPDIR");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	(void)argc; (void)argv;
	setenv("MV_BUSY_POLL_US", "0", 1);
	snprintf(dir, sizeof(dir), "%s/mv-fuzz-reply.XXXXXX",
		 base && *base && strlen(base) < 64 ? base : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4) < 0) {
		perror("fuzz_reply: socket");
		abort();
	}
	atexit(cleanup);
	return 0;
}

static volatile unsigned char sink;

static void touch(const void *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sink ^= ((const unsigned char *)p)[i];
}

static int each_line(void *arg, char *line)
{
	(*(int *)arg)++;
	touch(line, strlen(line));
	return 0;
}

/*
 * A client allocates the payload size a reply announces, up to 2 GiB by
 * design; poisoning that much under ASan takes seconds.  Replies that
 * announce more than 16 MiB are skipped.
 */
static int huge(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 6 < len; i++)
		if (!memcmp(p + i, "bytes=", 6)) {
			size_t j = i + 6, v = 0;
			while (j < len && p[j] >= '0' && p[j] <= '9' &&
			       v < ((size_t)1 << 40))
				v = v * 10 + (p[j++] - '0');
			if (v > (16u << 20))
				return 1;
		}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct mv_err err = { 0 };
	struct mv_client *c;
	int sfd, rc = 0, op;
	size_t off = 0;
	static const int64_t ids[3] = { 1, 2, 3 };
	static const float vecs[16] = { 0 };	/* up to 4 queries of 4 */

	if (len < 1 || len > 65536 || huge(data + 1, len - 1))
		return 0;
	op = data[0];
	c = mv_client_connect(addr, &err);
	if (!c)
		abort();
	sfd = accept(lfd, NULL, NULL);
	if (sfd < 0)
		abort();
	while (off < len - 1) {
		ssize_t w = write(sfd, data + 1 + off, len - 1 - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	shutdown(sfd, SHUT_WR);
	switch (op % 12) {
	case 0: {
		char reply[256];
		rc = mv_client_cmd(c, "PING", reply, sizeof(reply), &err);
		if (rc == 0)
			FUZZ_CHECK(strlen(reply) < sizeof(reply));
		break;
	}
	case 1: {
		int n = 0;
		rc = mv_client_lines(c, "LS", each_line, &n, &err);
		break;
	}
	case 2: {
		struct mv_coll_info info;
		rc = mv_client_describe(c, "c", &info, &err);
		if (rc == 0) {
			FUZZ_CHECK(info.dim > 0 && info.dim <= MV_DIM_MAX);
			FUZZ_CHECK(info.nfields >= 0 &&
				   info.nfields <= MV_FIELDS_MAX);
		}
		break;
	}
	case 3:
	case 4: {
		int64_t first = 0;
		rc = mv_client_insert(c, "c", 3, 4, op % 12 == 3 ? ids : NULL,
				      vecs, NULL, 0, 0, &first, &err);
		break;
	}
	case 5:
		rc = mv_client_delete(c, "c", 3, ids, &err);
		break;
	case 6: {
		int64_t ins, del;
		rc = mv_client_flush(c, (op & 16) ? "s" : NULL, &ins, &del,
				     &err);
		break;
	}
	case 7:
		rc = mv_client_session(c, "s", &err);
		break;
	case 8:
	case 9: {
		size_t k = (size_t)(op >> 4 & 3) + 1, nq = (size_t)(op >> 6) + 1;
		int64_t rid[16];
		float dist[16];
		char *text = NULL;
		size_t tl = 0;

		rc = mv_client_search(c, "c", 4, k, nq, vecs, op % 12 == 9 ?
				      "fields=a" : NULL, rid, dist, &text,
				      &tl, &err);
		if (rc == 0 && text) {
			touch(text, tl + 1);
			FUZZ_CHECK(text[tl] == '\0');
		}
		free(text);
		break;
	}
	default: {
		struct mv_rows rows;
		uint32_t dim = (uint32_t)(op >> 4) + 1;

		if (op % 12 == 10)
			rc = mv_client_get(c, "c", dim, 3, ids, op & 16, &rows,
					   &err);
		else
			rc = mv_client_scan(c, "c", dim, 0, 10, op & 16, &rows,
					    &err);
		if (rc == 0) {
			touch(rows.ids, rows.n * sizeof(*rows.ids));
			touch(rows.vecs, rows.n * dim * sizeof(float));
			if (rows.text)
				touch(rows.text, rows.text_len);
			mv_rows_release(&rows);
		}
		break;
	}
	}
	/* (The message may be empty: "ERR IO " from the node.) */
	if (rc < 0)
		FUZZ_CHECK(err.code == rc);
	mv_client_free(c);
	close(sfd);
	return 0;
}

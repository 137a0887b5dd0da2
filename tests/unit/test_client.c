/*
 * test_client.c - unit tests of the client's reply parser (client.h)
 * against a fake node: a Unix socket of the test that answers a canned
 * reply and closes.  Malformed replies are MV_EPROTO, whatever sizes they
 * claim (found by tests/fuzz/fuzz_reply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "client.h"
#include "unit.h"

/* A client connected to a node that answers reply (len bytes) and closes. */
static struct mv_client *fake_node(const char *reply, size_t len, int *sfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char addr[sizeof(sa.sun_path) + 8];
	struct mv_client *c;
	int lfd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fake.sock",
		 unit_tmpdir());
	unlink(sa.sun_path);
	snprintf(addr, sizeof(addr), "unix:%s", sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0)
		return NULL;
	c = mv_client_connect(addr, NULL);
	*sfd = c ? accept(lfd, NULL, NULL) : -1;
	close(lfd);
	unlink(sa.sun_path);
	if (*sfd < 0 || write(*sfd, reply, len) != (ssize_t)len) {
		mv_client_free(c);
		return NULL;
	}
	shutdown(*sfd, SHUT_WR);
	return c;
}

static int get_reply(const char *reply, size_t len, uint32_t dim,
		     struct mv_rows *rows, struct mv_err *err)
{
	static const int64_t ids[3] = { 1, 2, 3 };
	int sfd, rc;
	struct mv_client *c = fake_node(reply, len, &sfd);

	if (!c)
		return 1;
	rc = mv_client_get(c, "c", dim, 3, ids, 0, rows, err);
	mv_client_free(c);
	close(sfd);
	return rc;
}

TEST(client_rows_reply_checked)
{
	static const char good[] = "OK n=1 bytes=12\n\1\0\0\0\0\0\0\0\0\0\200?";
	struct mv_rows rows;
	struct mv_err err = { 0 };

	CHECK_EQ_INT(get_reply(good, sizeof(good) - 1, 1, &rows, &err), 0);
	CHECK_EQ_U64(rows.n, 1);
	CHECK_EQ_U64(rows.ids[0], 1);
	CHECK_NEAR(rows.vecs[0], 1.0, 1e-9);
	mv_rows_release(&rows);
	/* A negative size: once a read into a 0-byte block. */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(get_reply("OK n=0 bytes=-1\nxxxxxxxx", 24, 1, &rows,
			       &err), MV_EPROTO);
	CHECK(strstr(err.msg, "malformed reply"));
	/* n * (8 + 4 * dim) wraps to 0: once 2^60 rows in 0 bytes. */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(get_reply("OK n=1152921504606846976 bytes=0\n", 33, 2,
			       &rows, &err), MV_EPROTO);
	CHECK(strstr(err.msg, "malformed reply"));
}

TEST(client_search_reply_negative_size)
{
	static const char reply[] = "OK nq=1 k=1 bytes=-1\n0123456789ab";
	struct mv_err err = { 0 };
	float q[2] = { 0 }, dist[1];
	int64_t ids[1];
	char *text = NULL;
	int sfd;
	struct mv_client *c = fake_node(reply, sizeof(reply) - 1, &sfd);

	REQUIRE(c);
	CHECK_EQ_INT(mv_client_search(c, "c", 2, 1, 1, q, NULL, ids, dist,
				      &text, NULL, &err), MV_EPROTO);
	CHECK(strstr(err.msg, "malformed reply"));
	CHECK(text == NULL);
	mv_client_free(c);
	close(sfd);
}

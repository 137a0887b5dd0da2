/*
 * fuzz_etcd - libmv/meta_etcd.c's reading of etcd's JSON gateway.  A
 * child process plays etcd on a loopback port: it answers every HTTP
 * request with the input (after its first two bytes, handed over in
 * shared memory), then closes.  (A thread would do, but LeakSanitizer's
 * check at exit hangs with one.)
 * Byte 0 picks the call of the metadata seam (get, range, txn, watch from
 * now or from a revision, lease grant, keepalive, revoke, compact, stats,
 * revision); byte 1 the HTTP status (200, 400, 503, 500).  Whatever the
 * answer, a call returns one of its documented codes and never crashes,
 * leaks or loops.
 */
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "fuzz.h"
#include "meta.h"

#define ANSWER_MAX (1u << 17)

/* The current answer, shared with the server. */
static struct answer {
	size_t len;
	int status;
	uint8_t body[ANSWER_MAX];
} *ans;
static struct mv_meta *m;
static pid_t server = -1;

/* Read one HTTP request whole: the headers, then Content-Length bytes. */
static void read_request(int c)
{
	char buf[8192], *end = NULL, *cl;
	size_t len = 0, want;
	ssize_t r;

	while (!end) {
		if (len == sizeof(buf) ||
		    (r = read(c, buf + len, sizeof(buf) - len)) <= 0)
			return;
		len += (size_t)r;
		end = memmem(buf, len, "\r\n\r\n", 4);
	}
	cl = memmem(buf, (size_t)(end - buf), "Content-Length: ", 16);
	want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
	while (len < want) {
		char skip[8192];

		r = read(c, skip, want - len < sizeof(skip) ? want - len :
			 sizeof(skip));
		if (r <= 0)
			return;
		len += (size_t)r;
	}
}

static void serve(int lfd)
{
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		char head[160];
		const char *st;

		if (c < 0)
			continue;
		read_request(c);
		st = ans->status == 0 ? "200 OK" : ans->status == 1 ?
		     "400 Bad Request" : ans->status == 2 ?
		     "503 Service Unavailable" : "500 Oops";
		snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: "
			 "application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", st, ans->len);
		if (write(c, head, strlen(head)) < 0 ||
		    (ans->len && write(c, ans->body, ans->len) < 0))
			perror("fuzz_etcd: write");
		close(c);
	}
}

static void answer(const uint8_t *p, size_t len, int st)
{
	ans->len = len < ANSWER_MAX ? len : ANSWER_MAX;
	memcpy(ans->body, p, ans->len);
	ans->status = st;
}

static void stop_server(void)
{
	mv_meta_close(m);
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char ok[] = "{\"header\":{\"revision\":\"7\"},"
				 "\"count\":\"0\"}";
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct mv_err err = { 0 };
	char url[64];
	int lfd;

	(void)argc; (void)argv;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ans = mmap(NULL, sizeof(*ans), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ans == MAP_FAILED || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    listen(lfd, 16) < 0 || (server = fork()) < 0) {
		perror("fuzz_etcd: socket");
		abort();
	}
	if (!server) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* no orphan on a crash */
		serve(lfd);
		_exit(0);
	}
	close(lfd);
	atexit(stop_server);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	answer((const uint8_t *)ok, strlen(ok), 0);
	if (!(m = mv_meta_open_etcd_ns(url, "/ns", &err))) {
		fprintf(stderr, "fuzz_etcd: open: %s\n", err.msg);
		abort();
	}
	return 0;
}

static volatile unsigned char sink;

static int on_kv(void *arg, const struct mv_meta_kv *kv)
{
	(void)arg;
	FUZZ_CHECK(kv->key && kv->val && kv->val[kv->vlen] == '\0');
	for (size_t i = 0; i <= kv->vlen; i++)
		sink ^= (unsigned char)kv->val[i];
	sink ^= (unsigned char)strlen(kv->key);
	return 0;
}

static int on_event(void *arg, const struct mv_meta_event *ev)
{
	FUZZ_CHECK(ev->type == MV_META_PUT || ev->type == MV_META_DEL);
	FUZZ_CHECK(!strncmp(ev->kv.key, "/", 1));
	return on_kv(arg, &ev->kv);
}

/* rc is 0, one of the positive returns allowed, or an MV_E* code. */
static void check_rc(int rc, int pos_ok)
{
	FUZZ_CHECK(rc == 0 || (rc > 0 && rc <= pos_ok) ||
		   rc == MV_ESERVER || rc == MV_EUSAGE || rc == MV_EIO ||
		   rc == MV_EAGAIN || rc == MV_EPROTO ||
		   rc == MV_EINTERNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct mv_meta_op op = { MV_META_PUT, "/k", "v", 1 };
	struct mv_meta_cmp cmp = { "/k", NULL, 0 };
	int64_t lease = 5, id = 0, next = 0;
	struct mv_meta_req req = { .cmps = &cmp, .ncmp = 1, .ops = &op,
				   .nops = 1, .leases = &lease };
	struct mv_meta_stats st;
	struct mv_err err = { 0 };
	char *v = NULL;
	size_t n = 0;
	int rc;

	if (len < 2)
		return 0;
	answer(data + 2, len - 2, data[1] & 3);
	switch (data[0] % 11) {
	case 0:
		rc = mv_meta_get(m, "/k", &v, &n, &err);
		check_rc(rc, 1);
		FUZZ_CHECK(rc == 0 ? v && v[n] == '\0' : !v);
		free(v);
		break;
	case 1:
		rc = mv_meta_range_kv(m, "/p", on_kv, NULL, &next, &err);
		check_rc(rc, 0);
		break;
	case 2:
		rc = mv_meta_txn_req(m, &req, &err);
		check_rc(rc, MV_META_CMPFAIL);
		FUZZ_CHECK(rc < 0 || req.rev > 0);
		break;
	case 3:
		rc = mv_meta_watch(m, "/w", 0, 0, on_event, NULL, &next, &err);
		check_rc(rc, MV_META_COMPACTED);
		break;
	case 4:
		rc = mv_meta_watch(m, "/w", 3, 0, on_event, NULL, &next, &err);
		check_rc(rc, MV_META_COMPACTED);
		FUZZ_CHECK(next >= 3);
		break;
	case 5:
		rc = mv_meta_lease_grant(m, 1000, &id, &err);
		check_rc(rc, 0);
		FUZZ_CHECK(rc ? id == 0 : id > 0);
		break;
	case 6:
		check_rc(mv_meta_lease_keepalive(m, 5, &err), 0);
		break;
	case 7:
		check_rc(mv_meta_lease_revoke(m, 5, &err), 0);
		break;
	case 8:
		check_rc(mv_meta_compact(m, 3, &err), 0);
		break;
	case 9:
		check_rc(mv_meta_stats(m, &st, &err), 0);
		break;
	default:
		rc = mv_meta_revision(m, &id, &err);
		check_rc(rc, 0);
		FUZZ_CHECK(rc ? id == 0 : id > 0);
		break;
	}
	FUZZ_CHECK(!err.code || err.msg[0]);
	return 0;
}

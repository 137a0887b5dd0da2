/*
 * test_s3.c - unit tests of the S3 store (store_s3.c): its request signing
 * against AWS's published Signature V4 examples (through a loopback
 * listener that reads the Authorization header libcurl sends), its
 * answers to a misbehaving server, and against a real S3, Ceph's RGW:
 * multipart writers, abort, ranges, a wrong secret, an unreachable
 * endpoint, the map cache.  The RGW comes from MV_TEST_S3_ENDPOINT and
 * friends (scripts/check.sh), else scripts/rgw.sh starts one for the run.
 * The seam's shared tests run on it from test_store.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "store.h"
#include "store_s3.h"
#include "unit.h"

/* Shared with test_store.c. */
const struct mv_s3_conf *unit_s3_conf(void);
struct mv_store *unit_s3_open(const char *name, const char *cache_dir);
const char *unit_s3_prefix(const char *name);
void unit_s3_wipe(struct mv_store *s);

/* A loopback HTTP server giving one canned answer to every request. */
struct fake {
	int lfd, port, stop;
	pthread_t t;
	const char *reply;
	const char *next[4];	/* if set, the answers to requests 2, 3... */
	int nreq;		/* atomic: requests answered */
	char req[8192];		/* the head of the first request */
	char lines[16][256];	/* the request lines of the first 16 */
};

/* Read a request head and its body (Content-Length) from fd. */
static int fake_read(int fd, char *head, size_t cap)
{
	size_t n = 0;
	long long body = 0;
	char *end = NULL, *cl;

	while (!end) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (n + 1 >= cap || poll(&p, 1, 5000) != 1)
			return -1;
		if ((r = read(fd, head + n, cap - 1 - n)) <= 0)
			return -1;
		n += r;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if ((cl = strcasestr(head, "\ncontent-length:")))
		body = atoll(cl + 16);
	body -= n - (end + 4 - head);
	while (body > 0) {
		char buf[65536];
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 5000) != 1 ||
		    (r = read(fd, buf, sizeof(buf))) <= 0)
			return -1;
		body -= r;
	}
	return 0;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = { f->lfd, POLLIN, 0 };
		char head[8192];
		int fd;

		if (poll(&p, 1, 50) != 1 || (fd = accept(f->lfd, NULL,
							 NULL)) < 0)
			continue;
		if (fake_read(fd, head, sizeof(head)) == 0) {
			int n = __atomic_fetch_add(&f->nreq, 1,
						   __ATOMIC_RELAXED);

			if (n == 0)
				snprintf(f->req, sizeof(f->req), "%s", head);
			if (n < 16)
				snprintf(f->lines[n], sizeof(f->lines[n]),
					 "%.*s", (int)strcspn(head, "\r"),
					 head);
			const char *a = f->reply;

			for (int k = 0; k < 4 && k + 2 <= n; k++)
				if (f->next[k])
					a = f->next[k];
			if (write(fd, a, strlen(a)) < 0)
				unit_diag("fake: write: %s", strerror(errno));
		}
		close(fd);
	}
	return NULL;
}

static int fake_start(struct fake *f, const char *reply)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->reply = reply;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(f->lfd, 16) < 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(&f->t, NULL, fake_run, f) ? -1 : 0;
}

static void fake_stop(struct fake *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
	pthread_join(f->t, NULL);
	close(f->lfd);
}

static const char *ok_reply =
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static size_t drop(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

struct body {
	const char *p;
	size_t left;
};

static size_t feed(char *buf, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t k = size * n < b->left ? size * n : b->left;

	memcpy(buf, b->p, k);
	b->p += k;
	b->left -= k;
	return k;
}

/*
 * Send one request prepared by mv_s3_prepare to http://host/target (host
 * on port 80, which the listener stands in for) and return the
 * Authorization header it carried, "" if none.
 */
static const char *auth_of(const char *method, const char *host,
			   const char *target, const char *sigv4,
			   const char *userpwd, const char *sha,
			   const char *const *hdrs, const char *data)
{
	static char out[512];
	struct fake f;
	struct curl_slist *list, *to;
	struct body b = { data ? data : "", data ? strlen(data) : 0 };
	char url[512], conn[256];
	const char *a, *e;
	CURL *h;

	out[0] = '\0';
	if (fake_start(&f, ok_reply) < 0)
		return "(no listener)";
	snprintf(url, sizeof(url), "http://%s%s", host, target);
	snprintf(conn, sizeof(conn), "%s:80:127.0.0.1:%d", host, f.port);
	h = curl_easy_init();
	to = curl_slist_append(NULL, conn);
	if (h && to && mv_s3_prepare(h, method, url, sigv4, userpwd, sha, hdrs,
				     &list) == 0) {
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, to);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, feed);
		curl_easy_setopt(h, CURLOPT_READDATA, &b);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)b.left);
		curl_easy_perform(h);
		curl_slist_free_all(list);
	}
	curl_slist_free_all(to);
	curl_easy_cleanup(h);
	fake_stop(&f);
	if ((a = strcasestr(f.req, "\nAuthorization: ")) &&
	    (e = strstr(a + 1, "\r\n")))
		snprintf(out, sizeof(out), "%.*s", (int)(e - a - 16), a + 16);
	return out;
}

#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/*
 * AWS's Signature V4 test suite (aws-sig-v4-test-suite: get-vanilla,
 * post-vanilla, get-vanilla-query-order-key-case) and the S3 examples of
 * "Authenticating Requests: Using the Authorization Header" (GET Object
 * with a Range, PUT Object, GET Bucket lifecycle, GET Bucket), each at
 * its fixed date: the X-Amz-Date header we may set pins libcurl's clock.
 * The S3 ones carry x-amz-content-sha256 and a bare-key query written
 * "lifecycle=", as store_s3.c writes "uploads=".
 */
TEST(s3_sigv4_aws_examples)
{
	const char *suite = "aws:amz:us-east-1:service";
	const char *suite_key = "AKIDEXAMPLE:"
				"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	const char *s3 = "aws:amz:us-east-1:s3";
	const char *s3_key = "AKIAIOSFODNN7EXAMPLE:"
			     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	const char *d15[] = { "X-Amz-Date: 20150830T123600Z", NULL };
	const char *d13[] = { "X-Amz-Date: 20130524T000000Z", NULL };
	const char *range[] = { "X-Amz-Date: 20130524T000000Z",
				"Range: bytes=0-9", NULL };
	const char *put[] = { "Date: Fri, 24 May 2013 00:00:00 GMT",
			      "X-Amz-Date: 20130524T000000Z",
			      "x-amz-storage-class: REDUCED_REDUNDANCY",
			      NULL };
	const char *host = "example.amazonaws.com";
	const char *bucket = "examplebucket.s3.amazonaws.com";

	CHECK_STR(auth_of("GET", host, "/", suite, suite_key, NULL, d15, NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "service/aws4_request, SignedHeaders=host;x-amz-date, "
		  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9"
		  "b8aae1d763fbf31");
	CHECK_STR(auth_of("POST", host, "/", suite, suite_key, NULL, d15,
			  NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "service/aws4_request, SignedHeaders=host;x-amz-date, "
		  "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dd"
		  "db68e92efbe5d6b");
	/* The query sorted as store_s3.c writes it. */
	CHECK_STR(auth_of("GET", host, "/?Param1=value1&Param2=value2", suite,
			  suite_key, NULL, d15, NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "service/aws4_request, SignedHeaders=host;x-amz-date, "
		  "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d"
		  "3219ec94cdf2500");
	CHECK_STR(auth_of("GET", bucket, "/test.txt", s3, s3_key, EMPTY, range,
			  NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
		  "x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420"
		  "e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	CHECK_STR(auth_of("PUT", bucket, "/test%24file.text", s3, s3_key,
			  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e4203"
			  "4a8b803f8b072", put, "Welcome to Amazon S3."),
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, SignedHeaders=date;host;"
		  "x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
		  "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b"
		  "5971af0ece108bd");
	CHECK_STR(auth_of("GET", bucket, "/?lifecycle=", s3, s3_key, EMPTY,
			  d13, NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, SignedHeaders=host;"
		  "x-amz-content-sha256;x-amz-date, Signature=fea454ca298b7da1"
		  "c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	CHECK_STR(auth_of("GET", bucket, "/?max-keys=2&prefix=J", s3, s3_key,
			  EMPTY, d13, NULL),
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		  "us-east-1/s3/aws4_request, SignedHeaders=host;"
		  "x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45"
		  "bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Open an S3 store on a fake server that answers "HTTP/1.1 status" and
 * body to every request: 0 or the error code.
 */
static int open_fake(struct fake *f, const char *status, const char *body,
		     struct mv_err *err)
{
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s" };
	struct mv_store *s;
	char ep[64], reply[1024];

	snprintf(reply, sizeof(reply), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", status, strlen(body), body);
	mv_err_clear(err);
	if (fake_start(f, reply) < 0)
		return mv_err_set(err, MV_EINTERNAL, "no listener");
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", f->port);
	c.endpoint = ep;
	s = mv_store_open_s3(&c, err);
	fake_stop(f);
	mv_store_close(s);
	return s ? 0 : err->code;
}

/* A server's errors: 5xx retried then 75, 4xx at once, garbage is 76. */
TEST(s3_server_answers)
{
	struct mv_err err = { 0 };
	struct fake f;
	double t;

	t = now();
	CHECK_EQ_INT(open_fake(&f, "503 Slow Down", "<Error><Code>SlowDown"
			       "</Code><Message>easy &amp; slow</Message>"
			       "</Error>", &err), MV_EAGAIN);
	t = now() - t;
	CHECK_EQ_INT(f.nreq, 4);
	CHECK(t >= 0.65 && t < 5);	/* 100 + 200 + 400 ms */
	CHECK(strstr(err.msg, "HTTP 503 SlowDown: easy & slow"));
	CHECK_EQ_INT(open_fake(&f, "429 Too Many", "", &err), MV_EAGAIN);
	CHECK_EQ_INT(f.nreq, 4);

	CHECK_EQ_INT(open_fake(&f, "400 Bad", "", &err), MV_EIO);
	CHECK_EQ_INT(f.nreq, 1);
	CHECK_EQ_INT(open_fake(&f, "403 No", "<Error><Code>AccessDenied</Code>"
			       "</Error>", &err), MV_EPERM);
	CHECK_EQ_INT(f.nreq, 1);
	CHECK(strstr(err.msg, "HTTP 403 AccessDenied"));
	CHECK_EQ_INT(open_fake(&f, "404 Not Found", "<Error><Code>NoSuchBucket"
			       "</Code>", &err), MV_ECONFIG);
	CHECK_EQ_INT(f.nreq, 1);
	/* Not a listing; a listing cut short, or with a bad key or size. */
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<html>", &err), MV_EPROTO);
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult><Contents>"
			       "<Key>a%zz</Key><Size>1</Size></Contents>",
			       &err), MV_EPROTO);
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult><Contents>"
			       "<Key>a</Key><Size>-1x</Size></Contents>",
			       &err), MV_EPROTO);
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult><Contents>"
			       "<Key>a&#0;</Key><Size>1</Size></Contents>",
			       &err), MV_EPROTO);
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult><Contents>"
			       "<Key>a", &err), 0);	/* no whole entry */
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult><IsTruncated>"
			       "true</IsTruncated>", &err), MV_EPROTO);
	CHECK_EQ_INT(open_fake(&f, "200 OK", "<ListBucketResult>"
			       "</ListBucketResult>", &err), 0);
}

static int count_cb(void *arg, const char *path, uint64_t size)
{
	(void)path;
	(void)size;
	++*(int *)arg;
	return 0;
}

/*
 * Listings put together at random from pieces of the real thing: each is
 * read (0) or refused (76), never a crash nor a loop, also when every
 * page says there is a next one.
 */
TEST(s3_random_listings)
{
	static const char *piece[] = {
		"<ListBucketResult>", "<Contents>", "</Contents>", "<Key>",
		"</Key>", "<Size>", "</Size>", "12", "a%2", "%41", "&amp;",
		"&#", "&#x41;", "&#65;", "&bogus;", "<IsTruncated>",
		"true</IsTruncated>", "<NextContinuationToken>",
		"</NextContinuationToken>", "t", "<", ">", "/",
	};
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s" };
	uint64_t seed = 99;
	int bad = 0, opened = 0;

	for (int i = 0; i < 60; i++) {
		char body[1024] = "<ListBucketResult>", reply[1400], ep[64];
		struct mv_err err = { 0 };
		struct mv_store *s;
		struct fake f;
		int n = 0, rc;

		for (int k = 0; k < 24; k++) {
			seed = seed * 6364136223846793005ull + 1;
			strcat(body, piece[(seed >> 33) % 23]);
		}
		snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n"
			 "%s", strlen(body), body);
		REQUIRE(fake_start(&f, reply) == 0);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
		c.endpoint = ep;
		if ((s = mv_store_open_s3(&c, &err))) {
			opened++;
			rc = mv_store_list(s, "", count_cb, &n, &err);
			bad += rc != 0 && rc != MV_EPROTO;
		} else {
			bad += err.code != MV_EPROTO;
		}
		mv_store_close(s);
		fake_stop(&f);
	}
	CHECK_EQ_INT(bad, 0);
	unit_diag("%d of 60 random listings opened", opened);

	/* Two pages: the token goes back encoded, both pages are read. */
	{
		static const char p1[] = "<ListBucketResult><IsTruncated>"
			"true</IsTruncated><NextContinuationToken>n/2 x+"
			"</NextContinuationToken><Contents><Key>k1</Key>"
			"<Size>1</Size></Contents></ListBucketResult>";
		static const char p2[] = "<ListBucketResult><IsTruncated>"
			"false</IsTruncated><Contents><Key>k2</Key>"
			"<Size>2</Size></Contents></ListBucketResult>";
		char r1[512], r2[512], ep[64];
		struct mv_err err = { 0 };
		struct mv_store *s;
		struct fake f;
		int n = 0;

		snprintf(r1, sizeof(r1), "HTTP/1.1 200 OK\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n"
			 "%s", strlen(p1), p1);
		snprintf(r2, sizeof(r2), "HTTP/1.1 200 OK\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n"
			 "%s", strlen(p2), p2);
		REQUIRE(fake_start(&f, r1) == 0);
		f.next[0] = r2;
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
		c.endpoint = ep;
		s = mv_store_open_s3(&c, &err);
		CHECK(s != NULL);
		if (s) {
			CHECK_EQ_INT(mv_store_list(s, "", count_cb, &n, &err),
				     0);
			CHECK_EQ_INT(n, 2);
		}
		mv_store_close(s);
		fake_stop(&f);
		CHECK_EQ_INT(f.nreq, 3);
		CHECK_STR(f.lines[2], "GET /b/?continuation-token=n%2F2%20x%2B&"
			  "encoding-type=url&list-type=2&prefix= HTTP/1.1");
	}

	/* Every page says "more, from t": refused on the second. */
	{
		static const char body[] = "<ListBucketResult><IsTruncated>"
			"true</IsTruncated><NextContinuationToken>t"
			"</NextContinuationToken><Contents><Key>k</Key>"
			"<Size>1</Size></Contents></ListBucketResult>";
		char reply[512], ep[64];
		struct mv_err err = { 0 };
		struct mv_store *s;
		struct fake f;
		int n = 0;

		snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n"
			 "%s", strlen(body), body);
		REQUIRE(fake_start(&f, reply) == 0);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
		c.endpoint = ep;
		s = mv_store_open_s3(&c, &err);
		CHECK(s != NULL);
		if (s) {
			CHECK_EQ_INT(mv_store_list(s, "", count_cb, &n, &err),
				     MV_EPROTO);
			CHECK_EQ_INT(n, 2);
			CHECK(strstr(err.msg, "same continuation token"));
		}
		mv_store_close(s);
		fake_stop(&f);
		CHECK_STR(f.lines[2], "GET /b/?continuation-token=t&"
			  "encoding-type=url&list-type=2&prefix= HTTP/1.1");
	}
}

/*
 * A multipart upload whose completion fails is aborted: a server that
 * answers every request with an UploadId, an ETag and no
 * CompleteMultipartUploadResult.
 */
TEST(s3_failed_complete_aborts)
{
	static const char body[] = "<ListBucketResult></ListBucketResult>"
				   "<UploadId>u/1</UploadId>";
	char reply[512];
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s", .prefix = "p/" };
	struct mv_err err = { 0 };
	struct mv_store *s;
	struct mv_store_writer *w;
	size_t big = 9u << 20;
	char ep[64], *a = calloc(1, big);
	struct iovec iov = { a, big };
	struct fake f;

	snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	REQUIRE(a && fake_start(&f, reply) == 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c.endpoint = ep;
	s = mv_store_open_s3(&c, &err);
	CHECK(s != NULL);
	if (s && mv_store_begin(s, "obj", &w, &err) == 0) {
		CHECK_EQ_INT(mv_store_append(w, &iov, 1, &err), 0);
		CHECK_EQ_INT(mv_store_commit(w, NULL, &err), MV_EAGAIN);
		CHECK(strstr(err.msg, "complete upload of 'obj' failed"));
	}
	mv_store_close(s);
	fake_stop(&f);
	CHECK_EQ_INT(f.nreq, 6);
	CHECK_STR(f.lines[0], "GET /b/?encoding-type=url&list-type=2&"
		  "max-keys=1&prefix=p%2F HTTP/1.1");
	CHECK_STR(f.lines[1], "POST /b/p/obj?uploads= HTTP/1.1");
	CHECK_STR(f.lines[2], "PUT /b/p/obj?partNumber=1&uploadId=u%2F1 "
		  "HTTP/1.1");
	CHECK_STR(f.lines[3], "PUT /b/p/obj?partNumber=2&uploadId=u%2F1 "
		  "HTTP/1.1");
	CHECK_STR(f.lines[4], "POST /b/p/obj?uploadId=u%2F1 HTTP/1.1");
	CHECK_STR(f.lines[5], "DELETE /b/p/obj?uploadId=u%2F1 HTTP/1.1");
	free(a);
}

/* A server that ignores Range and sends all: the range is cut out. */
TEST(s3_range_ignored)
{
	static const char body[] = "<ListBucketResult></ListBucketResult>";
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s" };
	struct mv_err err = { 0 };
	struct mv_store *s;
	char reply[256], ep[64];
	struct fake f;
	void *buf;
	size_t got;

	snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Length: "
		 "%zu\r\nConnection: close\r\n\r\n%s", strlen(body), body);
	REQUIRE(fake_start(&f, reply) == 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c.endpoint = ep;
	s = mv_store_open_s3(&c, &err);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(mv_store_get_range(s, "o", 1, 4, &buf, &got,
						&err), 0);
		CHECK_EQ_INT(got, 4);
		CHECK_STR(buf, "List");
		free(buf);
		CHECK_EQ_INT(mv_store_get_range(s, "o", 30, 40, &buf, &got,
						&err), 0);
		CHECK_STR(buf, "Result>");
		free(buf);
		CHECK_EQ_INT(mv_store_get_range(s, "o", 99, 4, &buf, &got,
						&err), 0);
		CHECK_EQ_INT(got, 0);
		free(buf);
	}
	mv_store_close(s);
	fake_stop(&f);
	CHECK(strstr(f.req, "GET /b/?encoding-type=url&list-type=2&"
		     "max-keys=1&prefix= "));
}

/* Nothing listens on the endpoint: 75 naming it, in bounded time. */
TEST(s3_unreachable)
{
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s" };
	struct mv_err err = { 0 };
	struct fake f;
	char ep[64];
	double t;

	REQUIRE(fake_start(&f, ok_reply) == 0);
	fake_stop(&f);		/* a port nobody listens on now */
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c.endpoint = ep;
	t = now();
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	t = now() - t;
	CHECK_EQ_INT(err.code, MV_EAGAIN);
	CHECK_EQ_INT(mv_exit_code(err.code), 75);
	CHECK(strstr(err.msg, ep));
	CHECK(t < 5);
	unit_diag("unreachable after %.2f s: %s", t, err.msg);

	/* Configuration mistakes are 78. */
	mv_err_clear(&err);
	c.endpoint = "127.0.0.1:1";
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
	mv_err_clear(&err);
	c.endpoint = ep;
	c.bucket = NULL;
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
}

/*
 * Temporary credentials: the token goes out as x-amz-security-token and
 * libcurl signs it; a token that is not printable ASCII (a header's end
 * in it) is refused at open, before any request.
 */
TEST(s3_session_token)
{
	struct mv_s3_conf c = { .bucket = "b", .access_key = "k",
				.secret_key = "s", .session_token = "t0k+/=" };
	struct mv_err err = { 0 };
	struct mv_store *s;
	const char *a;
	char ep[64];
	struct fake f;

	REQUIRE(fake_start(&f, "HTTP/1.1 200 OK\r\nContent-Length: 37\r\n"
			   "Connection: close\r\n\r\n"
			   "<ListBucketResult></ListBucketResult>") == 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c.endpoint = ep;
	s = mv_store_open_s3(&c, &err);
	CHECK(s != NULL);
	mv_store_close(s);
	fake_stop(&f);
	CHECK(strstr(f.req, "\r\nx-amz-security-token: t0k+/=\r\n"));
	a = strstr(f.req, "SignedHeaders=");
	CHECK(a && strstr(a, "SignedHeaders=host;x-amz-content-sha256;"
			  "x-amz-date;x-amz-security-token,"));

	c.session_token = "t0k\r\nx-evil: 1";
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
	CHECK(strstr(err.msg, "s3 session token: a character 0x0d at 3"));
}

/*
 * A CA file for https is checked at open, before any request: missing,
 * not PEM, or damaged, MV_ECONFIG naming it and where it came from.
 */
TEST(s3_ca_file_checked)
{
	struct mv_s3_conf c = { .endpoint = "https://127.0.0.1:1",
				.bucket = "b", .access_key = "k",
				.secret_key = "s" };
	struct mv_err err = { 0 };
	const char *p;
	FILE *f;

	c.ca_file = unit_path("nope.pem");
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
	CHECK(strstr(err.msg, "s3_ca_file '") && strstr(err.msg, "nope.pem"
							  "': No such file"));

	p = unit_path("text.pem");
	REQUIRE((f = fopen(p, "w")) != NULL);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
	      "-----END CERTIFICATE-----\n", f);
	fclose(f);
	c.ca_file = NULL;
	setenv("AWS_CA_BUNDLE", p, 1);
	mv_err_clear(&err);
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
	CHECK(strstr(err.msg, "AWS_CA_BUNDLE '") &&
	      strstr(err.msg, "text.pem': certificate 1 is damaged"));
	unsetenv("AWS_CA_BUNDLE");
}

/* ---- A real S3: Ceph's RGW. ---- */

static struct mv_s3_conf rgw;
static int rgw_state;		/* 0 not tried, 1 up, -1 failed */
static char rgw_dir[64], rgw_script[4200];

static pid_t rgw_owner;

static void rgw_stop(void)
{
	char cmd[8400];

	if (getpid() != rgw_owner)
		return;		/* a forked child's exit */
	snprintf(cmd, sizeof(cmd), "sh '%s' stop '%s' >/dev/null 2>&1; "
		 "rm -rf '%s'", rgw_script, rgw_dir, rgw_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "rgw.sh stop failed\n");
}

/* scripts/rgw.sh, from the source tree run-unit was built in. */
static int find_script(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	snprintf(rgw_script, sizeof(rgw_script), "scripts/rgw.sh");
	if (access(rgw_script, R_OK) == 0)
		return 0;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int i = 0; i < 3 && (slash = strrchr(exe, '/')); i++)
		*slash = '\0';
	snprintf(rgw_script, sizeof(rgw_script), "%s/scripts/rgw.sh", exe);
	return access(rgw_script, R_OK);
}

/* Start an RGW for this run and export its variables. */
static int rgw_start(void)
{
	char cmd[8400], line[512];
	FILE *p;
	int n = 0;

	if (find_script() < 0) {
		unit_diag("scripts/rgw.sh not found");
		return -1;
	}
	snprintf(rgw_dir, sizeof(rgw_dir), "/tmp/mv-unit-rgw.XXXXXX");
	if (!mkdtemp(rgw_dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "sh '%s' start '%s' 2>&1", rgw_script,
		 rgw_dir);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\n")] = '\0';
		if (eq && (!strncmp(line, "MV_TEST_S3_", 11) ||
			   !strncmp(line, "AWS_", 4))) {
			*eq = '\0';
			setenv(line, eq + 1, 1);
			n++;
		} else {
			unit_diag("rgw.sh: %s", line);
		}
	}
	rgw_owner = getpid();
	atexit(rgw_stop);
	if (pclose(p) != 0 || n != 4)
		return -1;
	return 0;
}

const struct mv_s3_conf *unit_s3_conf(void)
{
	if (rgw_state == 0) {
		rgw_state = -1;
		if (getenv("MV_TEST_S3_ENDPOINT") || rgw_start() == 0) {
			rgw.endpoint = getenv("MV_TEST_S3_ENDPOINT");
			rgw.bucket = getenv("MV_TEST_S3_BUCKET");
			rgw_state = rgw.endpoint && rgw.bucket ? 1 : -1;
		}
		if (rgw_state < 0)
			unit_diag("no S3: set MV_TEST_S3_ENDPOINT, "
				  "MV_TEST_S3_BUCKET and AWS_* or install "
				  "radosgw (scripts/deps.sh)");
	}
	return rgw_state > 0 ? &rgw : NULL;
}

/* "unit-PID-TIME/name/": a run's objects stay apart from other runs'. */
const char *unit_s3_prefix(const char *name)
{
	static char run[64], out[8][256];
	static int next;
	char *p = out[next++ % 8];

	if (!run[0])
		snprintf(run, sizeof(run), "unit-%ld-%ld", (long)getpid(),
			 (long)time(NULL));
	snprintf(p, sizeof(out[0]), "%s/%s/", run, name);
	return p;
}

struct mv_store *unit_s3_open(const char *name, const char *cache_dir)
{
	const struct mv_s3_conf *base = unit_s3_conf();
	struct mv_s3_conf c;
	struct mv_err err = { 0 };
	struct mv_store *s;

	if (!base)
		return NULL;
	c = *base;
	c.prefix = unit_s3_prefix(name);
	c.cache_dir = cache_dir;
	if (!(s = mv_store_open_s3(&c, &err)))
		unit_diag("open s3 '%s': %s", name, err.msg);
	return s;
}

static int del_one(void *arg, const char *path, uint64_t size)
{
	(void)size;
	return mv_store_del(arg, path, NULL);
}

/* Delete everything the store holds (RGW's memstore is RAM). */
void unit_s3_wipe(struct mv_store *s)
{
	if (s && mv_store_list(s, "", del_one, s, NULL) != 0)
		unit_diag("wipe failed");
}

/* Append an answer to the malloc'ed string *arg. */
static size_t keep(char *p, size_t size, size_t n, void *arg)
{
	char **b = arg;
	size_t old = *b ? strlen(*b) : 0;
	char *nb = realloc(*b, old + size * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + old, p, size * n);
	nb[old + size * n] = '\0';
	*b = nb;
	return size * n;
}

/*
 * A signed GET of the bucket with query (sorted), through the signing
 * store_s3.c uses: the body, malloc'ed, or NULL.
 */
static char *raw_get(const char *query)
{
	const struct mv_s3_conf *c = unit_s3_conf();
	char url[1024], up[256], *body = NULL;
	struct curl_slist *list;
	CURL *h = curl_easy_init();
	long code = 0;

	snprintf(url, sizeof(url), "%s/%s/?%s", c->endpoint, c->bucket, query);
	snprintf(up, sizeof(up), "%s:%s", getenv("AWS_ACCESS_KEY_ID"),
		 getenv("AWS_SECRET_ACCESS_KEY"));
	if (!h || mv_s3_prepare(h, "GET", url, "aws:amz:us-east-1:s3", up,
				EMPTY, NULL, &list) < 0) {
		curl_easy_cleanup(h);
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(h) != CURLE_OK ||
	    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    code != 200) {
		free(body);
		body = NULL;
	}
	curl_slist_free_all(list);
	curl_easy_cleanup(h);
	return body;
}

/* s URI-encoded for a signed query, in a static buffer. */
static const char *qenc(const char *s)
{
	static char out[1024];
	size_t o = 0;

	for (; *s && o + 4 < sizeof(out); s++) {
		unsigned char c = *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c))
			out[o++] = c;
		else
			o += snprintf(out + o, 4, "%%%02X", c);
	}
	out[o] = '\0';
	return out;
}

/* Multipart uploads in progress under the store named name. */
static int uploads_under(const char *name)
{
	char q[1100], *b, *p;
	int n = 0;

	snprintf(q, sizeof(q), "prefix=%s&uploads=",
		 qenc(unit_s3_prefix(name)));
	if (!(b = raw_get(q)))
		return -1;
	for (p = b; (p = strstr(p, "<Upload>")); p++)
		n++;
	free(b);
	return n;
}

/* How many parts the ETag of the listing says the object has (0: one PUT). */
static int etag_parts(const char *name, const char *path)
{
	char q[1100], *b, *k, *e;
	int parts = 0;

	snprintf(q, sizeof(q), "list-type=2&prefix=%s",
		 qenc(unit_s3_prefix(name)));
	if (!(b = raw_get(q)))
		return -1;
	snprintf(q, sizeof(q), "<Key>%s%s</Key>", unit_s3_prefix(name), path);
	if ((k = strstr(b, q)) && (k = strstr(k, "<ETag>")) &&
	    (e = strstr(k, "</ETag>"))) {
		*e = '\0';
		if ((k = strchr(k, '-')))
			parts = atoi(k + 1);
	}
	free(b);
	return parts;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed ^= seed >> 12;
		seed ^= seed << 25;
		seed ^= seed >> 27;
		p[i] = (seed * 2685821657736338717ull) >> 56;
	}
}

/* 20 MiB through a writer: three parts, 8 + 8 + 4 MiB, in odd pieces. */
TEST(s3_multipart)
{
	struct mv_store *s = unit_s3_open("multipart", NULL);
	size_t big = 20u << 20, off = 0, got;
	unsigned char *a = malloc(big);
	struct mv_store_writer *w;
	struct mv_err err = { 0 };
	uint64_t size = 0;
	void *buf;
	double t;

	REQUIRE(s && a);
	fill(a, big, 11);
	t = now();
	REQUIRE(mv_store_begin(s, "seg/big.vec", &w, &err) == 0);
	for (size_t step = 1; off < big; step = step * 7 % 3000001 + 1) {
		struct iovec iov[2] = { { a + off, 0 }, { NULL, 0 } };
		size_t k = step < big - off ? step : big - off;

		iov[0].iov_len = k / 2;
		iov[1].iov_base = a + off + k / 2;
		iov[1].iov_len = k - k / 2;
		REQUIRE(mv_store_append(w, iov, 2, &err) == 0);
		off += k;
	}
	CHECK_EQ_INT(uploads_under("multipart"), 1);
	CHECK_EQ_INT(mv_store_get(s, "seg/big.vec", &buf, &got, NULL),
		     MV_ENOINPUT);
	CHECK_EQ_INT(mv_store_commit(w, &size, &err), 0);
	unit_diag("20 MiB multipart in %.2f s %s", now() - t, err.msg);
	CHECK_EQ_U64(size, big);
	CHECK_EQ_INT(etag_parts("multipart", "seg/big.vec"), 3);
	CHECK_EQ_INT(uploads_under("multipart"), 0);
	REQUIRE(mv_store_get(s, "seg/big.vec", &buf, &got, &err) == 0);
	CHECK_EQ_U64(got, big);
	CHECK(got == big && memcmp(buf, a, big) == 0);
	free(buf);

	/* Exactly one part's worth: one part, no empty last one. */
	REQUIRE(mv_store_begin(s, "seg/8m.vec", &w, &err) == 0);
	{
		struct iovec iov = { a, 8u << 20 };

		CHECK_EQ_INT(mv_store_append(w, &iov, 1, &err), 0);
	}
	CHECK_EQ_INT(mv_store_commit(w, &size, &err), 0);
	CHECK_EQ_INT(etag_parts("multipart", "seg/8m.vec"), 1);
	REQUIRE(mv_store_get_range(s, "seg/8m.vec", (8u << 20) - 3, 10, &buf,
				   &got, &err) == 0);
	CHECK_EQ_U64(got, 3);
	CHECK_MEM(buf, a + (8u << 20) - 3, 3);
	free(buf);

	/* Small objects are one PUT at commit, no upload. */
	REQUIRE(mv_store_begin(s, "seg/small", &w, &err) == 0);
	{
		struct iovec iov = { a, 1000 };

		CHECK_EQ_INT(mv_store_append(w, &iov, 1, &err), 0);
	}
	CHECK_EQ_INT(uploads_under("multipart"), 0);
	CHECK_EQ_INT(mv_store_commit(w, &size, &err), 0);
	CHECK_EQ_INT(etag_parts("multipart", "seg/small"), 0);
	CHECK_EQ_INT(err.code, 0);
	unit_s3_wipe(s);
	mv_store_close(s);
	free(a);
}

/* Abort leaves no object and no upload behind. */
TEST(s3_abort)
{
	struct mv_store *s = unit_s3_open("abort", NULL);
	size_t big = 12u << 20;
	unsigned char *a = malloc(big);
	struct mv_store_writer *w;
	struct iovec iov = { a, big };
	void *buf;
	size_t len;

	REQUIRE(s && a);
	fill(a, big, 12);
	REQUIRE(mv_store_begin(s, "gone.vec", &w, NULL) == 0);
	CHECK_EQ_INT(mv_store_append(w, &iov, 1, NULL), 0);
	CHECK_EQ_INT(uploads_under("abort"), 1);
	mv_store_abort(w);
	CHECK_EQ_INT(uploads_under("abort"), 0);
	CHECK_EQ_INT(mv_store_get(s, "gone.vec", &buf, &len, NULL),
		     MV_ENOINPUT);
	mv_store_close(s);
	free(a);
}

/*
 * Uploads a killed writer left (begun, a part sent, never completed nor
 * aborted) are aborted under the prefix given only: another writer's
 * upload stays and still completes.
 */
TEST(s3_clean_uploads)
{
	struct mv_store *s = unit_s3_open("uploads", NULL);
	size_t big = 9u << 20;
	unsigned char *a = malloc(big);
	struct mv_store_writer *w1, *w2, *w3;
	struct iovec iov = { a, big };
	struct mv_err err = { 0 };
	uint64_t size;
	void *buf;
	size_t len;

	REQUIRE(s && a);
	fill(a, big, 13);
	REQUIRE(mv_store_begin(s, "c/n1-a.vec", &w1, NULL) == 0);
	REQUIRE(mv_store_begin(s, "c/n1-b.vec", &w2, NULL) == 0);
	REQUIRE(mv_store_begin(s, "c/n2-a.vec", &w3, NULL) == 0);
	CHECK_EQ_INT(mv_store_append(w1, &iov, 1, NULL), 0);
	CHECK_EQ_INT(mv_store_append(w2, &iov, 1, NULL), 0);
	CHECK_EQ_INT(mv_store_append(w3, &iov, 1, NULL), 0);
	CHECK_EQ_INT(uploads_under("uploads"), 3);
	CHECK_EQ_INT(mv_store_clean_uploads(s, "c/n1-", &err), 2);
	CHECK_EQ_INT(err.code, 0);
	CHECK_EQ_INT(uploads_under("uploads"), 1);
	CHECK_EQ_INT(mv_store_clean_uploads(s, "c/n1-", &err), 0);
	/* The one left is whole; the others' writers find theirs gone. */
	CHECK_EQ_INT(mv_store_commit(w3, &size, &err), 0);
	CHECK_EQ_U64(size, big);
	CHECK(mv_store_commit(w1, &size, NULL) < 0);
	mv_store_abort(w2);	/* its upload is gone: a 404, quietly */
	CHECK_EQ_INT(uploads_under("uploads"), 0);
	CHECK_EQ_INT(mv_store_get(s, "c/n1-a.vec", &buf, &len, NULL),
		     MV_ENOINPUT);
	REQUIRE(mv_store_get(s, "c/n2-a.vec", &buf, &len, &err) == 0);
	CHECK(len == big && memcmp(buf, a, big) == 0);
	free(buf);
	unit_s3_wipe(s);
	mv_store_close(s);
	free(a);
}

/* Ranges: inside, across the end, past it, of an absent object. */
TEST(s3_range)
{
	struct mv_store *s = unit_s3_open("range", NULL);
	struct mv_err err = { 0 };
	struct iovec iov = { "0123456789", 10 };
	void *buf;
	size_t got;

	REQUIRE(s);
	REQUIRE(mv_store_put(s, "r", &iov, 1, NULL) == 0);
	REQUIRE(mv_store_get_range(s, "r", 2, 3, &buf, &got, &err) == 0);
	CHECK_EQ_INT(got, 3);
	CHECK_STR(buf, "234");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r", 7, 100, &buf, &got, &err) == 0);
	CHECK_EQ_INT(got, 3);
	CHECK_STR(buf, "789");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r", 10, 5, &buf, &got, &err) == 0);
	CHECK_EQ_INT(got, 0);
	CHECK_STR(buf, "");
	free(buf);
	REQUIRE(mv_store_get_range(s, "r", 0, 0, &buf, &got, &err) == 0);
	CHECK_EQ_INT(got, 0);
	free(buf);
	CHECK_EQ_INT(mv_store_get_range(s, "nope", 0, 5, &buf, &got, &err),
		     MV_ENOINPUT);
	CHECK(buf == NULL);
	CHECK(strstr(err.msg, "HTTP 404 NoSuchKey"));
	unit_s3_wipe(s);
	mv_store_close(s);
}

/* A wrong secret: 77, with S3's SignatureDoesNotMatch. */
TEST(s3_wrong_secret)
{
	const struct mv_s3_conf *base = unit_s3_conf();
	struct mv_s3_conf c;
	struct mv_err err = { 0 };

	REQUIRE(base);
	c = *base;
	c.secret_key = "not-the-secret";
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_EPERM);
	CHECK_EQ_INT(mv_exit_code(err.code), 77);
	CHECK(strstr(err.msg, "SignatureDoesNotMatch"));
	unit_diag("%s", err.msg);
	mv_err_clear(&err);
	c = *base;
	c.bucket = "mv-no-such-bucket";
	CHECK(mv_store_open_s3(&c, &err) == NULL);
	CHECK_EQ_INT(err.code, MV_ECONFIG);
	CHECK(strstr(err.msg, "NoSuchBucket"));
}

/*
 * Maps download into the cache directory; a cached copy of the right
 * size is used again after a reopen (we mark it to tell), one of the
 * wrong size is fetched anew.
 */
TEST(s3_map_cache)
{
	const char *cache = unit_path("s3-cache");
	struct mv_store *s = unit_s3_open("mapcache", cache);
	struct mv_err err = { 0 };
	struct iovec iov = { "cached bytes", 12 };
	const void *p;
	void *h;
	size_t len;
	char file[4200];
	int fd;

	REQUIRE(s);
	REQUIRE(mv_store_put(s, "d/obj", &iov, 1, NULL) == 0);
	if (mv_store_map(s, "d/obj", &p, &len, &h, &err) != 0)
		unit_diag("%s", err.msg);
	REQUIRE(err.code == 0);
	CHECK_EQ_INT(len, 12);
	CHECK_MEM(p, "cached bytes", 12);
	mv_store_unmap(s, h);
	mv_store_close(s);

	snprintf(file, sizeof(file), "%s/d/obj", cache);
	REQUIRE((fd = open(file, O_WRONLY)) >= 0);
	CHECK_EQ_INT(write(fd, "CACHED", 6), 6);
	close(fd);
	REQUIRE((s = unit_s3_open("mapcache", cache)));
	REQUIRE(mv_store_map(s, "d/obj", &p, &len, &h, NULL) == 0);
	CHECK_MEM(p, "CACHED bytes", 12);
	mv_store_unmap(s, h);
	/* Replaced by a longer object: downloaded again. */
	iov.iov_base = "replaced bytes";
	iov.iov_len = 14;
	REQUIRE(mv_store_put(s, "d/obj", &iov, 1, NULL) == 0);
	REQUIRE(mv_store_map(s, "d/obj", &p, &len, &h, NULL) == 0);
	CHECK_EQ_INT(len, 14);
	CHECK_MEM(p, "replaced bytes", 14);
	mv_store_unmap(s, h);
	CHECK_EQ_INT(mv_store_map(s, "d/none", &p, &len, &h, NULL),
		     MV_ENOINPUT);
	unit_s3_wipe(s);
	mv_store_close(s);
}

static const char *odd_paths[] = { "a b/c+d", "x&y=z?%", "tilde~/\xc3\xbc/.dot",
				   "semi;colon,comma" };

/* Each listed path is one of odd_paths, of its size. */
static int listed_ok(void *arg, const char *path, uint64_t size)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(path, odd_paths[i]) && size == strlen(path)) {
			++*(int *)arg;
			return 0;
		}
	unit_diag("listed '%s' %llu", path, (unsigned long long)size);
	return 1;
}

/* Keys with characters that need encoding, in requests and listings. */
TEST(s3_odd_keys)
{
	struct mv_store *s = unit_s3_open("odd keys+&=", NULL);
	const char **paths = odd_paths;
	int n = 0;

	REQUIRE(s);
	for (int i = 0; i < 4; i++) {
		struct iovec iov = { (void *)paths[i], strlen(paths[i]) };
		void *buf;
		size_t len;

		CHECK_EQ_INT(mv_store_put(s, paths[i], &iov, 1, NULL), 0);
		REQUIRE(mv_store_get(s, paths[i], &buf, &len, NULL) == 0);
		CHECK_STR(buf, paths[i]);
		free(buf);
	}
	CHECK_EQ_INT(mv_store_list(s, "", listed_ok, &n, NULL), 0);
	CHECK_EQ_INT(n, 4);
	n = 0;
	CHECK_EQ_INT(mv_store_list(s, "a b/c", listed_ok, &n, NULL), 0);
	CHECK_EQ_INT(n, 1);
	unit_s3_wipe(s);
	{
		void *buf;
		size_t len;

		CHECK_EQ_INT(mv_store_get(s, paths[0], &buf, &len, NULL),
			     MV_ENOINPUT);
	}
	mv_store_close(s);
}

#define PAGED 1001		/* RGW pages listings by 1000 */

struct pager {
	struct mv_store *s;
	int from, bad;
};

static void *put_some(void *arg)
{
	struct pager *p = arg;

	for (int i = p->from; i < PAGED; i += 4) {
		char path[32];
		struct iovec iov = { path, 0 };

		iov.iov_len = snprintf(path, sizeof(path), "p/%04d", i);
		p->bad += mv_store_put(p->s, path, &iov, 1, NULL) != 0;
	}
	return NULL;
}

static void *del_some(void *arg)
{
	struct pager *p = arg;

	for (int i = p->from; i < PAGED; i += 4) {
		char path[32];

		snprintf(path, sizeof(path), "p/%04d", i);
		p->bad += mv_store_del(p->s, path, NULL) != 0;
	}
	return NULL;
}

/* More objects than one page of the listing: all of them, once. */
TEST(s3_list_pages)
{
	struct mv_store *s = unit_s3_open("pages", NULL);
	struct pager p[4];
	pthread_t t[4];
	int n = 0, bad = 0;
	double t0 = now();

	REQUIRE(s);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 4; i++) {
			p[i] = (struct pager){ s, i, 0 };
			REQUIRE(pthread_create(&t[i], NULL, pass ? del_some :
					       put_some, &p[i]) == 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			bad += p[i].bad;
		}
		if (pass == 0) {
			CHECK_EQ_INT(mv_store_list(s, "p/", count_cb, &n,
						   NULL), 0);
			CHECK_EQ_INT(n, PAGED);
		}
	}
	CHECK_EQ_INT(bad, 0);
	n = 0;
	CHECK_EQ_INT(mv_store_list(s, "", count_cb, &n, NULL), 0);
	CHECK_EQ_INT(n, 0);
	unit_diag("%d objects put, listed, deleted in %.1f s", PAGED,
		  now() - t0);
	mv_store_close(s);
}

/*
 * store_s3.c - the segment store on an S3-compatible service (AWS, Ceph
 * RGW), spoken with libcurl and its Signature V4 (CURLOPT_AWS_SIGV4):
 * path-style URLs endpoint/bucket/prefix+path.  Objects are written with
 * one PUT, or by a writer as a multipart upload once they pass S3_PART
 * bytes; maps download into a cache directory.  Not libs3: Debian's 2.0
 * signs only V2 and has no multipart upload.
 *
 * libcurl's signer signs what it is given and no more: it neither adds
 * x-amz-content-sha256 (we send the body's SHA-256, so that the server
 * checks the body too) nor sorts the query (URLs here are written sorted),
 * and a bare query key must be written "uploads=".  It signs every header
 * it is given, x-amz-security-token (temporary credentials) too.
 *
 * https: libcurl verifies the server's certificate, always; a private CA
 * comes from a PEM file (s3_ca_file, else AWS_CA_BUNDLE), checked at open
 * and then the only CAs trusted, as the AWS tools do.  A certificate that
 * does not verify, or a server that answers https in plain text, is a
 * configuration error (MV_ECONFIG, a node's ERR CONFIG), not retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "store.h"
#include "store_s3.h"

#define S3_PART (8u << 20)	/* a writer's buffer; multipart part size */
#define S3_PARTS_MAX 10000	/* S3's limit */
#define S3_TRIES 4		/* attempts of a request */
#define S3_BACKOFF_MS 100	/* first pause between attempts, doubling */
#define S3_POOL 8		/* idle curl handles kept (connections) */
#define S3_XML_MAX (32u << 20)	/* cap of a listing or other XML answer */
#define S3_ERRBODY_MAX 8192	/* cap of an error answer kept */
#define S3_CONNECT_MS 5000
#define S3_STALL_S 60		/* a transfer below 1 byte/s this long fails */
#define S3_CURL_BUF (512 * 1024)	/* libcurl's receive and send buffers */
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
	char *endpoint;		/* no trailing '/' */
	char *bucket, *prefix, *cache_dir;
	char *sigv4;		/* "aws:amz:REGION:s3" */
	char *userpwd;		/* "ACCESS:SECRET" */
	char *token_hdr;	/* "x-amz-security-token: T", or NULL */
	char *ca_file;		/* absolute; NULL: libcurl's default */
	const char *ca_from;	/* "s3_ca_file" or "AWS_CA_BUNDLE" */
	pthread_mutex_t lock;	/* guards pool, npool */
	CURL *pool[S3_POOL];
	int npool;
	unsigned long seq;	/* atomic; names cache temporaries */
};

/* A growing byte buffer with a hard cap. */
struct dbuf {
	char *p;
	size_t len, cap, max;
};

static int dbuf_add(struct dbuf *b, const void *data, size_t n)
{
	if (n > b->max - b->len)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		if (!(p = realloc(b->p, cap)))
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int dbuf_str(struct dbuf *b, const char *s)
{
	return dbuf_add(b, s, strlen(s));
}

/*
 * Append s URI-encoded as SigV4 wants it: unreserved characters as they
 * are, '/' too when keep_slash, everything else %XX.
 */
static int dbuf_enc(struct dbuf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = *s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || (c == '/' && keep_slash)) {
			if (dbuf_add(b, s, 1) < 0)
				return -1;
		} else if (dbuf_add(b, e, 3) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The hex SHA-256 of the concatenated buffers. */
static int sha256_hex(const struct iovec *iov, int iovcnt, char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char md[32];
	unsigned int n = 0;
	int ok;

	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (int i = 0; ok && i < iovcnt; i++)
		ok = EVP_DigestUpdate(c, iov[i].iov_base, iov[i].iov_len);
	ok = ok && EVP_DigestFinal_ex(c, md, &n) && n == 32;
	EVP_MD_CTX_free(c);
	for (int i = 0; ok && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return ok ? 0 : -1;
}

int mv_s3_prepare(CURL *h, const char *method, const char *url,
		  const char *sigv4, const char *userpwd,
		  const char *payload_sha256, const char *const *hdrs,
		  struct curl_slist **list)
{
	struct curl_slist *l = NULL, *t;
	char line[128];

	*list = NULL;
	if (payload_sha256) {
		snprintf(line, sizeof(line), "x-amz-content-sha256: %s",
			 payload_sha256);
		if (!(l = curl_slist_append(NULL, line)))
			return -1;
	}
	for (; hdrs && *hdrs; hdrs++) {
		if (!(t = curl_slist_append(l, *hdrs))) {
			curl_slist_free_all(l);
			return -1;
		}
		l = t;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "PUT") || !strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		if (strcmp(method, "PUT"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (strcmp(method, "GET"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	*list = l;
	return 0;
}

/* One request and its answer. */
struct req {
	const char *method;
	const char *path;	/* object path under the prefix; NULL: bucket */
	const char *query;	/* sorted and encoded, no '?'; NULL: none */
	const char *range;	/* "bytes=A-B", or NULL */
	const struct iovec *iov;	/* the body, PUT and POST */
	int iovcnt;
	int fd;			/* >= 0: a 2xx body goes to this file */
	long long foff;		/* where the next bytes go in it */
	size_t max;		/* else into out, at most this many bytes
				 * (0: S3_XML_MAX) */
	/* Filled in by s3_do. */
	long status;
	struct dbuf out;	/* the body of a 2xx answer (fd < 0) */
	struct dbuf ebody;	/* the body of any other answer, capped */
	char etag[128];
	long long clen;		/* Content-Length, -1 if none */
	int wfail;		/* a write to fd failed: errno */
	/* The body being sent. */
	int vi;
	size_t voff;
};

static void req_release(struct req *r)
{
	free(r->out.p);
	free(r->ebody.p);
	r->out.p = r->ebody.p = NULL;
}

static CURL *handle_get(struct s3 *s)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->npool)
		h = s->pool[--s->npool];
	pthread_mutex_unlock(&s->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct s3 *s, CURL *h)
{
	pthread_mutex_lock(&s->lock);
	if (s->npool < S3_POOL) {
		s->pool[s->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (h)
		curl_easy_cleanup(h);
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t want = size * n, got = 0;

	while (got < want && r->vi < r->iovcnt) {
		const struct iovec *v = &r->iov[r->vi];
		size_t k = v->iov_len - r->voff;

		if (k > want - got)
			k = want - got;
		if (k)
			memcpy(buf + got, (char *)v->iov_base + r->voff, k);
		got += k;
		r->voff += k;
		if (r->voff == v->iov_len) {
			r->vi++;
			r->voff = 0;
		}
	}
	return got;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t len = size * n;
	long status = r->status;

	if (status < 200 || status > 299) {
		/* Keep the start of an error answer, drop the rest. */
		size_t k = r->ebody.max - r->ebody.len;

		if (k > len)
			k = len;
		if (k && dbuf_add(&r->ebody, data, k) < 0)
			return 0;
		return len;
	}
	if (r->fd >= 0) {
		if (mv_pwrite_all(r->fd, data, len, r->foff) < 0) {
			r->wfail = errno ? errno : EIO;
			return 0;
		}
		r->foff += len;
		return len;
	}
	/* Room for the whole body at once, when its length is known. */
	if (!r->out.p && r->clen > 0 && (uint64_t)r->clen < r->out.max &&
	    (r->out.p = malloc(r->clen + 1)))
		r->out.cap = r->clen + 1;
	return dbuf_add(&r->out, data, len) < 0 ? 0 : len;
}

/* Headers: the status of each answer (1xx too), and the ETag. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t len = size * n;

	if (len > 9 && !strncmp(data, "HTTP/", 5)) {
		const char *sp = memchr(data, ' ', len);

		if (sp && (size_t)(sp - data) + 4 <= len)
			r->status = strtol(sp + 1, NULL, 10);
		r->clen = -1;	/* the headers of a new answer follow */
		r->etag[0] = '\0';
	} else if (len > 5 && !strncasecmp(data, "etag:", 5)) {
		size_t i = 5, j = len;

		while (i < j && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (j > i && (data[j - 1] == '\r' || data[j - 1] == '\n' ||
				 data[j - 1] == ' '))
			j--;
		if (j - i < sizeof(r->etag)) {
			memcpy(r->etag, data + i, j - i);
			r->etag[j - i] = '\0';
		}
	} else if (len > 15 && !strncasecmp(data, "content-length:", 15)) {
		char num[32], *e;
		size_t k = len - 15 < sizeof(num) - 1 ? len - 15 :
			   sizeof(num) - 1;

		memcpy(num, data + 15, k);
		num[k] = '\0';
		errno = 0;
		r->clen = strtoll(num, &e, 10);
		while (*e == ' ' || *e == '\r' || *e == '\n')
			e++;
		if (errno || *e || r->clen < 0)
			r->clen = -1;
	}
	return len;
}

/* The URL of a request, malloc'ed, or NULL when out of memory. */
static char *req_url(struct s3 *s, const struct req *r)
{
	struct dbuf b = { NULL, 0, 0, SIZE_MAX };
	int bad;

	bad = dbuf_str(&b, s->endpoint) < 0 || dbuf_str(&b, "/") < 0 ||
	      dbuf_enc(&b, s->bucket, 0) < 0 || dbuf_str(&b, "/") < 0;
	if (!bad && r->path)
		bad = dbuf_enc(&b, s->prefix, 1) < 0 ||
		      dbuf_enc(&b, r->path, 1) < 0;
	if (!bad && r->query)
		bad = dbuf_str(&b, "?") < 0 || dbuf_str(&b, r->query) < 0;
	if (bad) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* A server certificate that does not verify with the CAs given. */
static int cert_curl(CURLcode c)
{
	return c == CURLE_PEER_FAILED_VERIFICATION ||
	       c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_ISSUER_ERROR;
}

/*
 * An https endpoint whose server answered the handshake in plain text:
 * OpenSSL's "wrong version number".  Not retried: a port serving http
 * does not start serving TLS.
 */
static int plain_curl(CURLcode c, const char *errbuf)
{
	return c == CURLE_SSL_CONNECT_ERROR &&
	       strstr(errbuf, "wrong version number");
}

static int retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/*
 * Send r, retrying connection failures, 5xx and 429 with exponential
 * backoff.  Returns 0 with r->status set to the final HTTP status (any),
 * or MV_EAGAIN (unreachable), MV_EIO, MV_EPROTO or MV_EINTERNAL.
 */
static int s3_do(struct s3 *s, struct req *r, struct mv_err *err)
{
	char sha[65] = EMPTY_SHA256, range[64], errbuf[CURL_ERROR_SIZE];
	const char *hdrs[3] = { NULL, NULL, NULL };
	int nh = 0;
	uint64_t body = 0;
	long pause = S3_BACKOFF_MS;
	char *url;
	CURL *h;
	int rc = 0;

	r->out.max = r->max ? r->max : S3_XML_MAX;
	r->ebody.max = S3_ERRBODY_MAX;
	for (int i = 0; i < r->iovcnt; i++)
		body += r->iov[i].iov_len;
	if (r->iovcnt && sha256_hex(r->iov, r->iovcnt, sha) < 0)
		return mv_err_set(err, MV_EINTERNAL, "sha256 failed");
	if (r->range) {
		snprintf(range, sizeof(range), "Range: %s", r->range);
		hdrs[nh++] = range;
	}
	if (s->token_hdr)
		hdrs[nh++] = s->token_hdr;
	if (!(url = req_url(s, r)))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (!(h = handle_get(s))) {
		free(url);
		return mv_err_set(err, MV_EINTERNAL, "curl_easy_init failed");
	}
	for (int try = 1; ; try++) {
		struct curl_slist *list;
		CURLcode c;

		r->status = 0;
		r->out.len = r->ebody.len = 0;
		r->etag[0] = '\0';
		r->clen = -1;
		r->vi = 0;
		r->voff = 0;
		r->wfail = 0;
		r->foff = 0;
		if (r->fd >= 0 && ftruncate(r->fd, 0) < 0) {
			rc = mv_err_sys(err, MV_EIO, "truncate a download");
			break;
		}
		errbuf[0] = '\0';
		curl_easy_reset(h);
		if (mv_s3_prepare(h, r->method, url, s->sigv4, s->userpwd, sha,
				  hdrs, &list) < 0) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			break;
		}
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
		if (s->ca_file) {
			curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
			curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		}
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)S3_CONNECT_MS);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)S3_STALL_S);
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)S3_CURL_BUF);
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE,
				 (long)S3_CURL_BUF);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
		if (!strcmp(r->method, "PUT") || !strcmp(r->method, "POST")) {
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, r);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)body);
		}
		c = curl_easy_perform(h);
		curl_slist_free_all(list);
		if (c == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE,
					  &r->status);
			if (r->status < 500 && r->status != 429)
				break;
		} else if (c == CURLE_WRITE_ERROR && r->wfail) {
			errno = r->wfail;
			rc = mv_err_sys(err, MV_EIO, "s3 %s '%s': write",
					r->method, url);
			break;
		} else if (c == CURLE_WRITE_ERROR) {
			rc = mv_err_set(err, MV_EPROTO, "s3 %s '%s': answer "
					"larger than %zu bytes", r->method,
					url, r->max);
			break;
		} else if (cert_curl(c)) {
			char cas[PATH_MAX + 64];

			if (s->ca_file)
				snprintf(cas, sizeof(cas), "the CAs of %s "
					 "'%s'", s->ca_from, s->ca_file);
			else
				snprintf(cas, sizeof(cas), "the system's CAs "
					 "(a private CA: set s3_ca_file or "
					 "AWS_CA_BUNDLE)");
			rc = mv_err_set(err, MV_ECONFIG, "s3 endpoint '%s': "
					"its TLS certificate does not verify "
					"with %s: %s", s->endpoint, cas,
					*errbuf ? errbuf : curl_easy_strerror(c));
			break;
		} else if (plain_curl(c, errbuf)) {
			rc = mv_err_set(err, MV_ECONFIG, "s3 endpoint '%s' "
					"does not answer TLS (%s): an http:// "
					"endpoint?", s->endpoint, errbuf);
			break;
		} else if (!retryable_curl(c)) {
			rc = mv_err_set(err, MV_EIO, "s3 %s '%s': %s",
					r->method, url,
					*errbuf ? errbuf : curl_easy_strerror(c));
			break;
		}
		if (try == S3_TRIES) {
			if (c != CURLE_OK)
				rc = mv_err_set(err, MV_EAGAIN, "s3 endpoint "
						"'%s' unreachable: %s",
						s->endpoint, *errbuf ? errbuf :
						curl_easy_strerror(c));
			break;	/* a 5xx: the caller reports it */
		}
		mv_sleep_ms(pause);
		pause *= 2;
	}
	if (rc < 0)
		curl_easy_cleanup(h);
	else
		handle_put(s, h);
	free(url);
	return rc;
}

/*
 * The text of <tag>...</tag> at or after p and before end: *v and *vlen,
 * and a pointer past the closing tag; NULL if there is none.
 */
static const char *xml_tag(const char *p, const char *end, const char *tag,
			   const char **v, size_t *vlen)
{
	char open[64], close[64];
	size_t no, nc;
	const char *a, *b;

	no = snprintf(open, sizeof(open), "<%s>", tag);
	nc = snprintf(close, sizeof(close), "</%s>", tag);
	a = p < end ? memmem(p, end - p, open, no) : NULL;
	if (!a)
		return NULL;
	a += no;
	if (!(b = memmem(a, end - a, close, nc)))
		return NULL;
	*v = a;
	*vlen = b - a;
	return b + nc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode XML text (the five entities and ASCII character references) into
 * out (size n), then with url also %XX escapes.  -1 if it is malformed or
 * does not fit.
 */
static int xml_text(const char *v, size_t vlen, int url, char *out, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < vlen; i++) {
		char c = v[i];

		if (c == '&') {
			static const struct { const char *e; char c; } ent[] = {
				{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
				{ "quot;", '"' }, { "apos;", '\'' },
			};
			size_t k;

			for (k = 0; k < 5; k++) {
				size_t el = strlen(ent[k].e);

				if (vlen - i - 1 >= el &&
				    !memcmp(v + i + 1, ent[k].e, el)) {
					c = ent[k].c;
					i += el;
					break;
				}
			}
			if (k == 5) {
				unsigned long cp = 0;
				size_t j = i + 1;
				int hex = 0, d;

				if (j >= vlen || v[j] != '#')
					return -1;
				if (++j < vlen && v[j] == 'x')
					hex = 1, j++;
				for (; j < vlen && v[j] != ';'; j++) {
					d = hex ? hexval(v[j]) :
					    (v[j] >= '0' && v[j] <= '9' ?
					     v[j] - '0' : -1);
					if (d < 0 || cp > 0x10ffff)
						return -1;
					cp = cp * (hex ? 16 : 10) + d;
				}
				if (j >= vlen || cp == 0 || cp > 127)
					return -1;
				c = (char)cp;
				i = j;
			}
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	if (url) {
		size_t w = 0;

		for (size_t i = 0; i < o; i++) {
			if (out[i] == '%') {
				int hi, lo;

				if (i + 2 >= o)
					return -1;
				hi = hexval(out[i + 1]);
				lo = hexval(out[i + 2]);
				if (hi < 0 || lo < 0)
					return -1;
				out[w++] = (char)(hi << 4 | lo);
				i += 2;
			} else if (out[i] == '+') {
				out[w++] = ' ';
			} else {
				out[w++] = out[i];
			}
		}
		out[w] = '\0';
	}
	return 0;
}

/*
 * Turn an answer that is not 2xx into MV_E*: 403 is MV_EPERM, 404
 * MV_ENOINPUT (MV_ECONFIG for a missing bucket), 5xx and 429 after the
 * retries MV_EAGAIN, anything else MV_EIO; the message has S3's code and
 * text.
 */
static int s3_fail(struct s3 *s, const struct req *r, struct mv_err *err)
{
	const char *end = r->ebody.p ? r->ebody.p + r->ebody.len : NULL;
	const char *v;
	size_t vl;
	char code[64] = "", msg[160] = "";
	int rc;

	if (end && xml_tag(r->ebody.p, end, "Code", &v, &vl))
		xml_text(v, vl, 0, code, sizeof(code));
	if (end && xml_tag(r->ebody.p, end, "Message", &v, &vl))
		xml_text(v, vl, 0, msg, sizeof(msg));
	if (r->status == 403)
		rc = MV_EPERM;
	else if (r->status == 404 && !strcmp(code, "NoSuchBucket"))
		rc = MV_ECONFIG;
	else if (r->status == 404)
		rc = MV_ENOINPUT;
	else if (r->status >= 500 || r->status == 429)
		rc = MV_EAGAIN;
	else
		rc = MV_EIO;
	return mv_err_set(err, rc, "s3 %s '%s/%s%s%s': HTTP %ld%s%s%s%s",
			  r->method, s->bucket, r->path ? s->prefix : "",
			  r->path ? r->path : "", r->query ? "?..." : "",
			  r->status, *code ? " " : "", code, *msg ? ": " : "",
			  msg);
}

static int s3_put(void *impl, const char *path, const struct iovec *iov,
		  int iovcnt, struct mv_err *err)
{
	struct req r = { .method = "PUT", .path = path, .iov = iov,
			 .iovcnt = iovcnt, .fd = -1 };
	int rc = s3_do(impl, &r, err);

	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = s3_fail(impl, &r, err);
	req_release(&r);
	return rc;
}

/*
 * GET path (a range of it with range) into *buf, NUL-terminated; *status
 * gets the HTTP status (206 for a range, 200 if the server sent all).
 */
static int s3_fetch(struct s3 *s, const char *path, const char *range,
		    void **buf, size_t *len, long *status, struct mv_err *err)
{
	struct req r = { .method = "GET", .path = path, .range = range,
			 .fd = -1, .max = SIZE_MAX - 1 };
	int rc = s3_do(s, &r, err);

	if (rc == 0 && r.status == 416) {
		r.status = 206;	/* a range past the end: no bytes */
		r.out.len = 0;
	}
	if (rc == 0 && (r.status < 200 || r.status > 299))
		rc = s3_fail(s, &r, err);
	if (rc == 0 && !r.out.p && !(r.out.p = calloc(1, 1)))
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (rc == 0) {
		*buf = r.out.p;
		*len = r.out.len;
		*status = r.status;
		r.out.p = NULL;
	}
	req_release(&r);
	return rc;
}

static int s3_get(void *impl, const char *path, void **buf, size_t *len,
		  struct mv_err *err)
{
	long status;

	return s3_fetch(impl, path, NULL, buf, len, &status, err);
}

static int s3_get_range(void *impl, const char *path, uint64_t off,
			size_t len, void **buf, size_t *got,
			struct mv_err *err)
{
	char range[64];
	uint64_t n = len;
	long status;
	int rc;

	if (off > UINT64_MAX - n)
		n = UINT64_MAX - off;
	if (n == 0)
		n = 1;		/* still says whether the object exists */
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + n - 1));
	if ((rc = s3_fetch(impl, path, range, buf, got, &status, err)) < 0)
		return rc;
	if (status != 206) {
		/* The server ignored the range and sent the whole object. */
		size_t from = off < *got ? off : *got;

		*got -= from;
		memmove(*buf, (char *)*buf + from, *got);
	}
	if (*got > len)
		*got = len;
	((char *)*buf)[*got] = '\0';
	return 0;
}

static int s3_del(void *impl, const char *path, struct mv_err *err)
{
	struct req r = { .method = "DELETE", .path = path, .fd = -1,
			 .max = S3_XML_MAX };
	int rc = s3_do(impl, &r, err);

	if (rc == 0 && r.status != 404 && (r.status < 200 || r.status > 299))
		rc = s3_fail(impl, &r, err);
	req_release(&r);
	return rc;
}

/* GET the bucket with query (encoded, sorted) into r: a 200, or MV_E*. */
static int bucket_get(struct s3 *s, struct req *r, const char *query,
		      struct mv_err *err)
{
	int rc;

	*r = (struct req){ .method = "GET", .query = query, .fd = -1,
			   .max = S3_XML_MAX };
	rc = s3_do(s, r, err);
	if (rc == 0 && r->status != 200)
		rc = s3_fail(s, r, err);
	return rc;
}

/*
 * Call fn for each <Contents> of a ListObjectsV2 page; *token gets the
 * next continuation token (malloc'ed) or NULL on the last page.
 */
static int list_page(struct s3 *s, const struct req *r,
		     int (*fn)(void *, const char *, uint64_t), void *arg,
		     char **token, struct mv_err *err)
{
	const char *p = r->out.p, *end = r->out.p + r->out.len, *v, *next;
	size_t plen = strlen(s->prefix), vl;
	char key[3 * MV_STORE_PATH_MAX + 64], num[32];
	int rc;

	*token = NULL;
	if (!p || !memmem(p, r->out.len, "<ListBucketResult", 17))
		return mv_err_set(err, MV_EPROTO, "s3 list '%s': not a "
				  "ListBucketResult", s->bucket);
	while ((next = xml_tag(p, end, "Contents", &v, &vl))) {
		const char *ve = v + vl, *kv, *sv;
		size_t kl, sl;
		unsigned long long size;
		char *e;

		if (!xml_tag(v, ve, "Key", &kv, &kl) ||
		    !xml_tag(v, ve, "Size", &sv, &sl) ||
		    xml_text(kv, kl, 1, key, sizeof(key)) < 0 ||
		    xml_text(sv, sl, 0, num, sizeof(num)) < 0)
			return mv_err_set(err, MV_EPROTO, "s3 list '%s': bad "
					  "<Contents>", s->bucket);
		errno = 0;
		size = strtoull(num, &e, 10);
		if (!*num || *e || errno)
			return mv_err_set(err, MV_EPROTO, "s3 list '%s': bad "
					  "size '%s'", s->bucket, num);
		p = next;
		if (strncmp(key, s->prefix, plen) || !key[plen])
			continue;
		if ((rc = fn(arg, key + plen, size)) != 0)
			return rc;
	}
	if (xml_tag(r->out.p, end, "IsTruncated", &v, &vl) && vl == 4 &&
	    !memcmp(v, "true", 4)) {
		if (!xml_tag(r->out.p, end, "NextContinuationToken", &v, &vl) ||
		    !vl || !(*token = malloc(vl + 1)) ||
		    xml_text(v, vl, 0, *token, vl + 1) < 0) {
			free(*token);
			*token = NULL;
			return mv_err_set(err, MV_EPROTO, "s3 list '%s': "
					  "truncated without a token",
					  s->bucket);
		}
	}
	return 0;
}

static int s3_list(void *impl, const char *prefix,
		   int (*fn)(void *, const char *, uint64_t), void *arg,
		   struct mv_err *err)
{
	struct s3 *s = impl;
	char *token = NULL, *full = NULL, *last = NULL;
	int rc = 0;

	if (asprintf(&full, "%s%s", s->prefix, prefix) < 0)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	do {
		struct dbuf q = { NULL, 0, 0, SIZE_MAX };
		struct req r;
		int bad = 0;

		if (token)
			bad = dbuf_str(&q, "continuation-token=") < 0 ||
			      dbuf_enc(&q, token, 0) < 0 ||
			      dbuf_str(&q, "&") < 0;
		bad = bad || dbuf_str(&q, "encoding-type=url&list-type=2"
				      "&prefix=") < 0 ||
		      dbuf_enc(&q, full, 0) < 0;
		free(last);
		last = token;
		token = NULL;
		if (bad) {
			free(q.p);
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			break;
		}
		rc = bucket_get(s, &r, q.p, err);
		if (rc == 0)
			rc = list_page(s, &r, fn, arg, &token, err);
		/* A server that sends the same page again would loop. */
		if (rc == 0 && token && last && !strcmp(token, last))
			rc = mv_err_set(err, MV_EPROTO, "s3 list '%s': the "
					"same continuation token twice",
					s->bucket);
		req_release(&r);
		free(q.p);
	} while (rc == 0 && token);
	free(token);
	free(last);
	free(full);
	return rc;
}

/* HEAD path: its size, or MV_ENOINPUT. */
static int s3_head(struct s3 *s, const char *path, uint64_t *size,
		   struct mv_err *err)
{
	struct req r = { .method = "HEAD", .path = path, .fd = -1 };
	int rc = s3_do(s, &r, err);

	if (rc == 0 && r.status != 200)
		rc = s3_fail(s, &r, err);
	if (rc == 0 && r.clen < 0)
		rc = mv_err_set(err, MV_EPROTO, "s3 HEAD '%s': no "
				"Content-Length", path);
	req_release(&r);
	if (rc == 0)
		*size = r.clen;
	return rc;
}

struct s3_map {
	void *addr;
	size_t len;
	int mapped;		/* munmap, else free */
};

/* Make the directories of the file path cache/rel, cache included. */
static int cache_dirs(const char *file, struct mv_err *err)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", file);
	if (!(slash = strrchr(dir, '/')))
		return 0;
	*slash = '\0';
	return mv_mkdir_p(dir, err);
}

/* Download path into the cache (a temporary renamed in place). */
static int cache_fill(struct s3 *s, const char *path, const char *file,
		      uint64_t size, struct mv_err *err)
{
	char tmp[PATH_MAX];
	const char *base = strrchr(file, '/') + 1;
	struct req r = { .method = "GET", .path = path };
	struct stat st;
	int rc;

	if ((rc = cache_dirs(file, err)) < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%.*s%s%ld-%lu-%s", (int)(base - file),
		 file, MV_STORE_TMP_PREFIX, (long)getpid(),
		 __atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED), base);
	if ((r.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			 0600)) < 0)
		return mv_err_sys(err, MV_EIO, "create '%s'", tmp);
	rc = s3_do(s, &r, err);
	if (rc == 0 && r.status != 200)
		rc = s3_fail(s, &r, err);
	if (rc == 0 && (fstat(r.fd, &st) < 0 || (uint64_t)st.st_size != size))
		rc = mv_err_set(err, MV_EAGAIN, "s3 GET '%s': got %lld bytes, "
				"not %llu (replaced meanwhile?)", path,
				(long long)st.st_size,
				(unsigned long long)size);
	if (rc == 0 && fsync(r.fd) < 0)
		rc = mv_err_sys(err, MV_EIO, "fsync '%s'", tmp);
	if (rc == 0 && rename(tmp, file) < 0)
		rc = mv_err_sys(err, MV_EIO, "rename '%s'", tmp);
	close(r.fd);
	if (rc < 0)
		unlink(tmp);
	req_release(&r);
	return rc;
}

static int s3_map(void *impl, const char *path, const void **p,
		  size_t *len, void **handle, struct mv_err *err)
{
	struct s3 *s = impl;
	struct s3_map *m;
	char file[PATH_MAX];
	uint64_t size = 0;
	struct stat st;
	int fd, rc;

	if (!(m = calloc(1, sizeof(*m))))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if (!s->cache_dir) {
		if ((rc = s3_get(s, path, &m->addr, &m->len, err)) < 0)
			goto fail;
		goto done;
	}
	if ((rc = s3_head(s, path, &size, err)) < 0)
		goto fail;
	if ((size_t)snprintf(file, sizeof(file), "%s/%s", s->cache_dir,
			     path) >= sizeof(file)) {
		rc = mv_err_set(err, MV_EUSAGE, "cache path of '%s' too long",
				path);
		goto fail;
	}
	if ((stat(file, &st) < 0 || (uint64_t)st.st_size != size) &&
	    (rc = cache_fill(s, path, file, size, err)) < 0)
		goto fail;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = mv_err_sys(err, MV_EIO, "open '%s'", file);
		goto fail;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size) {
		close(fd);
		rc = mv_err_set(err, MV_EAGAIN, "cached '%s' changed size",
				file);
		goto fail;
	}
	m->len = size;
	m->mapped = 1;
	if (size) {
		m->addr = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (m->addr == MAP_FAILED) {
			rc = mv_err_sys(err, MV_EIO, "mmap '%s'", file);
			close(fd);
			goto fail;
		}
	}
	close(fd);
done:
	*p = m->addr ? m->addr : (const void *)"";
	*len = m->len;
	*handle = m;
	return 0;
fail:
	free(m);
	return rc;
}

static void s3_unmap(void *impl, void *handle)
{
	struct s3_map *m = handle;

	(void)impl;
	if (m->mapped && m->addr)
		munmap(m->addr, m->len);
	else if (!m->mapped)
		free(m->addr);
	free(m);
}

static int s3_clean_tmp(void *impl, struct mv_err *err)
{
	(void)impl;
	(void)err;
	return 0;	/* S3 objects appear whole: uploads, below */
}

/*
 * A writer: up to S3_PART bytes buffered; an object that outgrows it
 * becomes a multipart upload of S3_PART-sized parts.
 */
struct s3_writer {
	char *path;
	char *buf;
	size_t blen;
	uint64_t size;
	char *upload_id;	/* NULL until the first part goes */
	char (*etags)[128];
	int nparts;
};

static int s3_begin(void *impl, const char *path, void **wp,
		    struct mv_err *err)
{
	struct s3_writer *w = calloc(1, sizeof(*w));

	(void)impl;
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	*wp = w;
	return 0;
}

/* "uploadId=ID" encoded, malloc'ed; with part, "partNumber=N&" first. */
static char *upload_query(const char *id, int part)
{
	struct dbuf q = { NULL, 0, 0, SIZE_MAX };
	char pn[32];

	snprintf(pn, sizeof(pn), "partNumber=%d&", part);
	if ((part && dbuf_str(&q, pn) < 0) || dbuf_str(&q, "uploadId=") < 0 ||
	    dbuf_enc(&q, id, 0) < 0) {
		free(q.p);
		return NULL;
	}
	return q.p;
}

/* Send the buffer as the next part, starting the upload if need be. */
static int put_part(struct s3 *s, struct s3_writer *w, struct mv_err *err)
{
	struct iovec iov = { w->buf, w->blen };
	struct req r = { .fd = -1, .max = S3_XML_MAX };
	char id[1024], (*et)[128];
	const char *v;
	size_t vl;
	int rc;

	if (w->nparts == S3_PARTS_MAX)
		return mv_err_set(err, MV_EUSAGE, "s3 '%s': more than %d "
				  "parts", w->path, S3_PARTS_MAX);
	if (!w->upload_id) {
		r.method = "POST";
		r.path = w->path;
		r.query = "uploads=";
		rc = s3_do(s, &r, err);
		if (rc == 0 && r.status != 200)
			rc = s3_fail(s, &r, err);
		if (rc == 0 && (!r.out.p ||
				!xml_tag(r.out.p, r.out.p + r.out.len,
					 "UploadId", &v, &vl) ||
				xml_text(v, vl, 0, id, sizeof(id)) < 0 ||
				!*id))
			rc = mv_err_set(err, MV_EPROTO, "s3 POST '%s?uploads':"
					" no UploadId", w->path);
		req_release(&r);
		if (rc < 0)
			return rc;
		if (!(w->upload_id = strdup(id)))
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if (!(et = realloc(w->etags, (w->nparts + 1) * sizeof(*et))))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	w->etags = et;
	memset(&r, 0, sizeof(r));
	r.method = "PUT";
	r.path = w->path;
	r.fd = -1;
	r.max = S3_XML_MAX;
	r.iov = &iov;
	r.iovcnt = 1;
	if (!(r.query = upload_query(w->upload_id, w->nparts + 1)))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	rc = s3_do(s, &r, err);
	if (rc == 0 && r.status != 200)
		rc = s3_fail(s, &r, err);
	if (rc == 0 && !r.etag[0])
		rc = mv_err_set(err, MV_EPROTO, "s3 PUT '%s' part %d: no ETag",
				w->path, w->nparts + 1);
	if (rc == 0) {
		memcpy(w->etags[w->nparts++], r.etag, sizeof(r.etag));
		w->blen = 0;
	}
	free((char *)r.query);
	req_release(&r);
	return rc;
}

static int s3_append(void *impl, void *wp, const struct iovec *iov,
		     int iovcnt, struct mv_err *err)
{
	struct s3_writer *w = wp;
	int rc;

	for (int i = 0; i < iovcnt; i++) {
		const char *d = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		while (n) {
			size_t k = S3_PART - w->blen;

			if (!w->buf && !(w->buf = malloc(S3_PART)))
				return mv_err_set(err, MV_EINTERNAL,
						  "out of memory");
			if (k > n)
				k = n;
			memcpy(w->buf + w->blen, d, k);
			w->blen += k;
			w->size += k;
			d += k;
			n -= k;
			if (w->blen == S3_PART &&
			    (rc = put_part(impl, w, err)) < 0)
				return rc;
		}
	}
	return 0;
}

static void writer_free(struct s3_writer *w)
{
	free(w->path);
	free(w->buf);
	free(w->upload_id);
	free(w->etags);
	free(w);
}

/*
 * Abort the multipart upload id of path: 0 (gone already, a 404,
 * included) or MV_E*.
 */
static int upload_abort(struct s3 *s, const char *path, const char *id,
			struct mv_err *err)
{
	struct req r = { .method = "DELETE", .path = path, .fd = -1,
			 .max = S3_XML_MAX };
	int rc;

	if (!(r.query = upload_query(id, 0)))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	rc = s3_do(s, &r, err);
	if (rc == 0 && r.status != 404 && (r.status < 200 || r.status > 299))
		rc = s3_fail(s, &r, err);
	free((char *)r.query);
	req_release(&r);
	return rc;
}

static void s3_abort(void *impl, void *wp)
{
	struct s3_writer *w = wp;

	if (w->upload_id)
		upload_abort(impl, w->path, w->upload_id, NULL); /* best effort */
	writer_free(w);
}

static int s3_commit(void *impl, void *wp, uint64_t *size,
		     struct mv_err *err)
{
	struct s3 *s = impl;
	struct s3_writer *w = wp;
	struct dbuf x = { NULL, 0, 0, SIZE_MAX };
	struct req r = { .method = "POST", .fd = -1, .max = S3_XML_MAX };
	struct iovec iov;
	char pn[64];
	int rc = 0;

	if (size)
		*size = w->size;
	if (!w->upload_id) {
		iov.iov_base = w->buf;
		iov.iov_len = w->blen;
		rc = s3_put(s, w->path, &iov, 1, err);
		writer_free(w);
		return rc;
	}
	if (w->blen && (rc = put_part(s, w, err)) < 0)
		goto out;
	rc = dbuf_str(&x, "<CompleteMultipartUpload>");
	for (int i = 0; i < w->nparts && rc == 0; i++) {
		snprintf(pn, sizeof(pn), "<Part><PartNumber>%d</PartNumber>"
			 "<ETag>", i + 1);
		rc = dbuf_str(&x, pn) < 0 || dbuf_str(&x, w->etags[i]) < 0 ||
		     dbuf_str(&x, "</ETag></Part>") < 0 ? -1 : 0;
	}
	if (rc < 0 || dbuf_str(&x, "</CompleteMultipartUpload>") < 0 ||
	    !(r.query = upload_query(w->upload_id, 0))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	iov.iov_base = x.p;
	iov.iov_len = x.len;
	r.path = w->path;
	r.iov = &iov;
	r.iovcnt = 1;
	rc = s3_do(s, &r, err);
	if (rc == 0 && r.status != 200)
		rc = s3_fail(s, &r, err);
	/* S3 may answer 200 and an <Error> in the body. */
	if (rc == 0 && (!r.out.p ||
			memmem(r.out.p, r.out.len, "<Error>", 7) ||
			!memmem(r.out.p, r.out.len,
				"CompleteMultipartUploadResult", 29)))
		rc = mv_err_set(err, MV_EAGAIN, "s3 complete upload of '%s' "
				"failed: %.100s", w->path,
				r.out.p ? r.out.p : "(no answer)");
out:
	free((char *)r.query);
	req_release(&r);
	free(x.p);
	if (rc < 0) {
		s3_abort(s, w);
		return rc;
	}
	writer_free(w);
	return 0;
}

static void s3_close(void *impl)
{
	struct s3 *s = impl;

	for (int i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->endpoint);
	free(s->bucket);
	free(s->prefix);
	free(s->cache_dir);
	free(s->sigv4);
	free(s->userpwd);
	free(s->token_hdr);
	free(s->ca_file);
	free(s);
}

/*
 * The markers of the next ListMultipartUploads page, malloc'ed into
 * *key and *id, or NULL on the last page.
 */
static int uploads_next(const struct req *r, char **key, char **id)
{
	const char *end = r->out.p + r->out.len, *v;
	size_t vl;

	*key = *id = NULL;
	if (!xml_tag(r->out.p, end, "IsTruncated", &v, &vl) || vl != 4 ||
	    memcmp(v, "true", 4))
		return 0;
	if (!xml_tag(r->out.p, end, "NextKeyMarker", &v, &vl) || !vl ||
	    !(*key = malloc(vl + 1)) || xml_text(v, vl, 0, *key, vl + 1) < 0)
		goto bad;
	if (xml_tag(r->out.p, end, "NextUploadIdMarker", &v, &vl) &&
	    (!(*id = malloc(vl + 1)) || xml_text(v, vl, 0, *id, vl + 1) < 0))
		goto bad;
	return 0;
bad:
	free(*key);
	free(*id);
	*key = *id = NULL;
	return -1;
}

/* Abort every <Upload> of a ListMultipartUploads page; how many. */
static int uploads_abort(struct s3 *s, const struct req *r,
			 struct mv_err *err)
{
	const char *p = r->out.p, *end = r->out.p + r->out.len, *v, *next;
	char key[3 * MV_STORE_PATH_MAX + 64], id[1024];
	size_t plen = strlen(s->prefix), vl;
	int n = 0, rc;

	if (!p || !memmem(p, r->out.len, "<ListMultipartUploadsResult", 27))
		return mv_err_set(err, MV_EPROTO, "s3 uploads '%s': not a "
				  "ListMultipartUploadsResult", s->bucket);
	while ((next = xml_tag(p, end, "Upload", &v, &vl))) {
		const char *ve = v + vl, *kv, *iv;
		size_t kl, il;

		if (!xml_tag(v, ve, "Key", &kv, &kl) ||
		    !xml_tag(v, ve, "UploadId", &iv, &il) ||
		    xml_text(kv, kl, 0, key, sizeof(key)) < 0 ||
		    xml_text(iv, il, 0, id, sizeof(id)) < 0 || !*id)
			return mv_err_set(err, MV_EPROTO, "s3 uploads '%s': "
					  "bad <Upload>", s->bucket);
		p = next;
		if (strncmp(key, s->prefix, plen) || !key[plen])
			continue;
		/* (one completed or aborted meanwhile is a 404: gone) */
		if ((rc = upload_abort(s, key + plen, id, err)) < 0)
			return rc;
		n++;
	}
	return n;
}

static int s3_clean_uploads(void *impl, const char *prefix,
			    struct mv_err *err)
{
	struct s3 *s = impl;
	char *full = NULL, *key = NULL, *id = NULL;
	int rc = 0, n = 0;

	if (asprintf(&full, "%s%s", s->prefix, prefix) < 0)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	do {
		struct dbuf q = { NULL, 0, 0, SIZE_MAX };
		struct req r;
		char *lkey = key, *lid = id;

		/* The query's names in order, as SigV4 signs them. */
		if ((key && (dbuf_str(&q, "key-marker=") < 0 ||
			     dbuf_enc(&q, key, 0) < 0 ||
			     dbuf_str(&q, "&") < 0)) ||
		    dbuf_str(&q, "prefix=") < 0 || dbuf_enc(&q, full, 0) < 0 ||
		    (id && (dbuf_str(&q, "&upload-id-marker=") < 0 ||
			    dbuf_enc(&q, id, 0) < 0)) ||
		    dbuf_str(&q, "&uploads=") < 0) {
			free(q.p);
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			break;
		}
		rc = bucket_get(s, &r, q.p, err);
		if (rc == 0 && (rc = uploads_abort(s, &r, err)) >= 0) {
			n += rc;
			rc = uploads_next(&r, &key, &id) < 0 ?
				mv_err_set(err, MV_EPROTO, "s3 uploads '%s': "
					   "truncated without markers",
					   s->bucket) : 0;
		} else {
			key = id = NULL;
		}
		/* A server that sends the same page again would loop. */
		if (rc == 0 && key && lkey && !strcmp(key, lkey) &&
		    !strcmp(id ? id : "", lid ? lid : ""))
			rc = mv_err_set(err, MV_EPROTO, "s3 uploads '%s': the "
					"same markers twice", s->bucket);
		free(lkey);
		free(lid);
		req_release(&r);
		free(q.p);
	} while (rc == 0 && key);
	free(key);
	free(id);
	free(full);
	return rc < 0 ? rc : n;
}

static const struct mv_store_ops s3_ops = {
	.name = "s3",
	.put = s3_put,
	.get = s3_get,
	.get_range = s3_get_range,
	.map = s3_map,
	.unmap = s3_unmap,
	.del = s3_del,
	.list = s3_list,
	.clean_tmp = s3_clean_tmp,
	.clean_uploads = s3_clean_uploads,
	.begin = s3_begin,
	.append = s3_append,
	.commit = s3_commit,
	.abort = s3_abort,
	.close = s3_close,
};

static int probe_fn(void *arg, const char *path, uint64_t size)
{
	(void)arg;
	(void)path;
	(void)size;
	return 0;
}

/*
 * Whether the bucket answers a listing under the prefix, and a sound one:
 * 0 or MV_E*.
 */
static int s3_probe(struct s3 *s, struct mv_err *err)
{
	struct req r = { .method = "GET", .fd = -1, .max = S3_XML_MAX };
	struct dbuf q = { NULL, 0, 0, SIZE_MAX };
	char *token = NULL;
	int rc;

	if (dbuf_str(&q, "encoding-type=url&list-type=2&max-keys=1&prefix=")
	    < 0 || dbuf_enc(&q, s->prefix, 0) < 0) {
		free(q.p);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	r.query = q.p;
	rc = s3_do(s, &r, err);

	if (rc == 0 && r.status != 200)
		rc = s3_fail(s, &r, err);
	if (rc == 0)
		rc = list_page(s, &r, probe_fn, NULL, &token, err);
	free(token);
	free(q.p);
	req_release(&r);
	return rc;
}

/*
 * The CA file path (from names where it came from): *abs gets its
 * absolute path, malloc'ed, once it is readable and holds PEM
 * certificates and nothing damaged.  MV_ECONFIG naming the file.
 */
static int ca_check(const char *path, const char *from, char **abs,
		    struct mv_err *err)
{
	unsigned long e;
	int n = 0, rc = 0;
	X509 *x;
	FILE *f;

	*abs = NULL;
	if (!(*abs = realpath(path, NULL)) || !(f = fopen(*abs, "r"))) {
		rc = mv_err_sys(err, MV_ECONFIG, "%s '%s'", from, path);
		free(*abs);
		*abs = NULL;
		return rc;
	}
	ERR_clear_error();
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	e = ERR_peek_last_error();
	if (ferror(f))
		rc = mv_err_sys(err, MV_ECONFIG, "%s '%s': read", from, path);
	else if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
		 ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		rc = mv_err_set(err, MV_ECONFIG, "%s '%s': certificate %d is "
				"damaged (%s)", from, path, n + 1,
				ERR_reason_error_string(e) ?
				ERR_reason_error_string(e) : "?");
	else if (!n)
		rc = mv_err_set(err, MV_ECONFIG, "%s '%s': no PEM "
				"certificate in it", from, path);
	ERR_clear_error();
	fclose(f);
	if (rc < 0) {
		free(*abs);
		*abs = NULL;
	}
	return rc;
}

/*
 * The temporary credentials' token as the header that carries it, into
 * *hdr (malloc'ed); printable ASCII only, or MV_ECONFIG.
 */
static int token_header(const char *tok, const char *from, char **hdr,
			struct mv_err *err)
{
	*hdr = NULL;
	for (const char *p = tok; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return mv_err_set(err, MV_ECONFIG, "%s: a character "
					  "0x%02x at %zu, not printable ASCII",
					  from, (unsigned char)*p,
					  (size_t)(p - tok));
	if (asprintf(hdr, "x-amz-security-token: %s", tok) < 0) {
		*hdr = NULL;
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	return 0;
}

struct mv_store *mv_store_open_s3(const struct mv_s3_conf *c,
				  struct mv_err *err)
{
	const char *ak = c->access_key ? c->access_key :
			 getenv("AWS_ACCESS_KEY_ID");
	const char *sk = c->secret_key ? c->secret_key :
			 getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = c->region && *c->region ? c->region :
			     "us-east-1";
	/* The token goes with the keys: from the environment with them. */
	const char *tok = c->session_token ? c->session_token :
			  c->access_key ? NULL : getenv("AWS_SESSION_TOKEN");
	const char *ca = c->ca_file ? c->ca_file : getenv("AWS_CA_BUNDLE");
	struct s3 *s;
	size_t n;

	if (!c->endpoint || (strncmp(c->endpoint, "http://", 7) &&
			     strncmp(c->endpoint, "https://", 8))) {
		mv_err_set(err, MV_ECONFIG, "s3 endpoint '%s' is not an "
			   "http:// or https:// URL",
			   c->endpoint ? c->endpoint : "");
		return NULL;
	}
	if (!c->bucket || !*c->bucket) {
		mv_err_set(err, MV_ECONFIG, "no s3 bucket");
		return NULL;
	}
	if (!ak || !*ak || !sk || !*sk) {
		mv_err_set(err, MV_ECONFIG, "no s3 keys (set AWS_ACCESS_KEY_ID"
			   " and AWS_SECRET_ACCESS_KEY)");
		return NULL;
	}
	if (strchr(region, ':')) {
		mv_err_set(err, MV_ECONFIG, "bad s3 region '%s'", region);
		return NULL;
	}
	if (ca && !*ca)
		ca = NULL;	/* AWS_CA_BUNDLE= : none */
	if (tok && !*tok)
		tok = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		mv_err_set(err, MV_EINTERNAL, "curl_global_init failed");
		return NULL;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->endpoint = strdup(c->endpoint);
	s->bucket = strdup(c->bucket);
	s->prefix = strdup(c->prefix ? c->prefix : "");
	s->cache_dir = c->cache_dir && *c->cache_dir ? strdup(c->cache_dir) :
		       NULL;
	if (asprintf(&s->sigv4, "aws:amz:%s:s3", region) < 0)
		s->sigv4 = NULL;
	if (asprintf(&s->userpwd, "%s:%s", ak, sk) < 0)
		s->userpwd = NULL;
	s->ca_from = c->ca_file ? "s3_ca_file" : "AWS_CA_BUNDLE";
	if ((tok && token_header(tok, c->session_token ? "s3 session token" :
				 "AWS_SESSION_TOKEN", &s->token_hdr,
				 err) < 0) ||
	    (ca && !strncmp(c->endpoint, "https://", 8) &&
	     ca_check(ca, s->ca_from, &s->ca_file, err) < 0)) {
		s3_close(s);
		return NULL;
	}
	if (!s->endpoint || !s->bucket || !s->prefix || !s->sigv4 ||
	    !s->userpwd || (c->cache_dir && *c->cache_dir && !s->cache_dir)) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		s3_close(s);
		return NULL;
	}
	n = strlen(s->endpoint);
	while (n > 8 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	if ((s->cache_dir && mv_mkdir_p(s->cache_dir, err) < 0) ||
	    s3_probe(s, err) < 0) {
		s3_close(s);
		return NULL;
	}
	return mv_store_new(&s3_ops, s, err);
}

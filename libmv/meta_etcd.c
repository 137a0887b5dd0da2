/*
 * meta_etcd.c - the metadata store on etcd v3, through its HTTP/JSON
 * gateway (POST /v3/kv/range, /v3/kv/txn, /v3/kv/compaction, /v3/watch,
 * /v3/lease/grant, keepalive, revoke) with libcurl and jansson: Debian's
 * etcd has no C client, and the gateway is stable in 3.4.
 *
 * The gateway's JSON: keys and values are base64, 64-bit integers come as
 * strings, zero and false fields are left out (no "kvs" when nothing
 * matches, no "succeeded" when a compare failed) and errors are
 * {"error","message","code"} with a gRPC code.  Every reply is untrusted:
 * what does not parse is MV_EPROTO.
 *
 * Requests reuse curl handles (and their connections) from a small pool.
 * The endpoint that answered last is tried first; on a failure to connect
 * the next one is tried (any transport failure or an HTTP 503, for a
 * request that can be repeated), and when none answers the call is
 * MV_EAGAIN.  A range's pages must hold keys of its prefix in increasing
 * order, so that no answer makes it loop.
 *
 * A watch is one streaming request, kept open across calls: a call that
 * asks for the same prefix from where the last one left off goes on
 * reading the same stream (one connection for a follower's whole life,
 * and no check of the history), any other call, or one after the stream
 * broke, opens another (one thread at a time uses the kept stream; a
 * concurrent watch has a stream of its own for its call).  etcd streams
 * the events of
 * a revision range but never says when the history it holds has been sent
 * in full when nothing matched, so a watch that must read history (from
 * at or before the current revision S) watches the whole keyspace, where
 * every revision has events, reads up to S and filters by prefix itself;
 * a watch of new revisions only watches the prefix.  etcd lets a watch
 * start at the compaction revision itself (its events there may be gone);
 * the seam does not, so a range at revision from - 1 checks that first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include "meta.h"

#define POOL_MAX 8		/* idle curl handles kept */
#define CONNECT_MS 2000
#define REQUEST_MS 10000
#define PAGE_KEYS 256		/* keys per range request */
#define REPLY_MAX (1u << 30)	/* larger replies are refused */
#define G_NOT_FOUND 5		/* gRPC codes */
#define G_INVALID 3
#define G_OUT_OF_RANGE 11
#define G_EXHAUSTED 8
#define G_UNAVAILABLE 14
#define G_DEADLINE 4

struct etcd {
	char **urls;
	size_t nurls;
	char *endpoints;	/* as given, for messages */
	char *ns;		/* namespace, put before every key */
	size_t nslen;
	struct curl_slist *hdrs;
	pthread_mutex_t mu;	/* guards everything below */
	size_t cur;		/* the endpoint that answered last */
	CURL *idle[POOL_MAX];
	size_t nidle;
	int64_t compact_rev;	/* highest compaction seen */
	uint64_t txns;
	uint64_t wconns;	/* connections opened by watches */
	struct wkeep *wk;	/* the watch stream kept open */
};

/* A growing byte buffer; oom set when it could not grow. */
struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->oom)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (b->len + n > REPLY_MAX || !(q = realloc(b->p, cap))) {
			b->oom = 1;
			return -1;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of p/n, malloc'ed; NULL when out of memory. */
static char *b64_enc(const void *p, size_t n)
{
	const unsigned char *s = p;
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* The value of a base64 digit, or -1 (every key and value goes through). */
static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/*
 * Decode base64 s into a malloc'ed buffer, NUL-terminated after *n bytes.
 * Returns NULL on bad input (*n = 0) or no memory (*n = 1).
 */
static char *b64_dec(const char *s, size_t *n)
{
	size_t len = strlen(s), pad = 0;
	char *out, *o;

	*n = 0;
	if (len % 4)
		return NULL;
	if (len && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	if (!(out = malloc(len / 4 * 3 + 1))) {
		*n = 1;
		return NULL;
	}
	o = out;
	for (size_t i = 0; i < len; i += 4) {
		int last = i + 4 == len, v[4];

		for (int j = 0; j < 4; j++) {
			v[j] = b64_val(s[i + j]);
			if (v[j] < 0 && !(last && j >= 4 - (int)pad)) {
				free(out);
				return NULL;
			}
		}
		*o++ = (char)(v[0] << 2 | v[1] >> 4);
		if (!last || pad < 2)
			*o++ = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (!last || pad < 1)
			*o++ = (char)((v[2] & 3) << 6 | v[3]);
	}
	*o = '\0';
	*n = (size_t)(o - out);
	return out;
}

/* An int64 field, a string of digits or a number; absent is 0.  0 or -1. */
static int j_i64(json_t *o, const char *name, int64_t *v)
{
	json_t *f = json_object_get(o, name);
	const char *s;
	char *end;
	long long x;

	*v = 0;
	if (!f)
		return 0;
	if (json_is_integer(f)) {
		*v = json_integer_value(f);
		return 0;
	}
	if (!json_is_string(f))
		return -1;
	s = json_string_value(f);
	if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (*end || errno)
		return -1;
	*v = x;
	return 0;
}

/* header.revision of a reply; -1 when missing or bad. */
static int64_t hdr_rev(json_t *r)
{
	json_t *h = json_object_get(r, "header");
	int64_t rev;

	if (!json_is_object(h) || j_i64(h, "revision", &rev) || rev < 0)
		return -1;
	return rev;
}

/* A boolean field, absent meaning false. */
static int j_true(json_t *o, const char *name)
{
	return json_is_true(json_object_get(o, name));
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) ? 0 : size * n;
}

static CURL *handle_get(struct etcd *e)
{
	CURL *h = NULL;

	pthread_mutex_lock(&e->mu);
	if (e->nidle)
		h = e->idle[--e->nidle];
	pthread_mutex_unlock(&e->mu);
	if (h || !(h = curl_easy_init()))
		return h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)REQUEST_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	return h;
}

static void handle_put(struct etcd *e, CURL *h)
{
	pthread_mutex_lock(&e->mu);
	if (e->nidle < POOL_MAX) {
		e->idle[e->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->mu);
	curl_easy_cleanup(h);
}

/* 1 if the request surely did not reach the server. */
static int not_sent(CURL *h, CURLcode cc)
{
	curl_off_t t = 0;

	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
		return 1;
	curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &t);
	return t == 0;
}

/* A reply: its JSON (an object) or the server's error. */
struct reply {
	json_t *j;
	int code;		/* gRPC code of an error reply, else 0 */
	char msg[160];		/* its message */
	const char *url;	/* the endpoint that answered */
};

/*
 * POST req (consumed) to path.  Returns 0 with rp filled (rp->code set for
 * an error reply; the caller json_decrefs rp->j) or MV_E* with err set.
 * again: the request can be repeated on another endpoint after any
 * transport failure, not only a failure to connect.
 */
static int call(struct etcd *e, const char *path, json_t *req, int again,
		struct reply *rp, struct mv_err *err)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	char url[2048], cerr[CURL_ERROR_SIZE];
	struct buf b = { 0 };
	CURL *h = NULL;
	CURLcode cc = CURLE_OK;
	json_error_t je;
	size_t first, i;
	long status = 0;
	int rc;

	json_decref(req);
	memset(rp, 0, sizeof(*rp));
	if (!body || !(h = handle_get(e))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&e->mu);
	first = e->cur;
	pthread_mutex_unlock(&e->mu);
	for (i = 0; i < e->nurls; i++) {
		size_t u = (first + i) % e->nurls;

		snprintf(url, sizeof(url), "%s%s", e->urls[u], path);
		b.len = 0;
		b.oom = 0;
		cerr[0] = '\0';
		curl_easy_setopt(h, CURLOPT_URL, url);
		/*
		 * libcurl sends a request again, unasked, when a kept-alive
		 * connection closes before any answer: a commit that etcd
		 * applied would go twice, its compares would then fail, and
		 * the node would take its own commit for another's (a merge
		 * then deleted the files it had just committed).  A request
		 * that must not be repeated goes on a connection of its own,
		 * so that a lost answer is an unknown outcome, said.
		 */
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, again ? 0L : 1L);
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, again ? 0L : 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
		cc = curl_easy_perform(h);
		if (cc == CURLE_OK && again && i + 1 < e->nurls &&
		    (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status),
		     status == 503))
			continue;	/* a member without a leader: next */
		if (cc == CURLE_OK) {
			rp->url = e->urls[u];
			pthread_mutex_lock(&e->mu);
			e->cur = u;
			pthread_mutex_unlock(&e->mu);
			break;
		}
		if (b.oom) {
			rc = mv_err_set(err, MV_EPROTO, "etcd at %s: reply too "
					"large or out of memory", e->urls[u]);
			goto out;
		}
		if (!again && !not_sent(h, cc)) {
			rc = mv_err_set(err, MV_EAGAIN, "etcd at %s: %s (the "
					"request's outcome is unknown)",
					e->urls[u], cerr[0] ? cerr :
					curl_easy_strerror(cc));
			goto out;
		}
	}
	if (cc != CURLE_OK) {
		rc = mv_err_set(err, MV_EAGAIN, "etcd at %s unreachable: %s",
				e->endpoints,
				cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	rp->j = b.p ? json_loadb(b.p, b.len, 0, &je) : NULL;
	if (!json_is_object(rp->j)) {
		if (status == 503)
			rc = mv_err_set(err, MV_EAGAIN, "etcd at %s: HTTP 503",
					rp->url);
		else
			rc = mv_err_set(err, MV_EPROTO, "etcd at %s: malformed "
					"reply (HTTP %ld)", rp->url, status);
		json_decref(rp->j);
		rp->j = NULL;
		goto out;
	}
	if (json_object_get(rp->j, "error") || status != 200) {
		json_t *m = json_object_get(rp->j, "message");
		int64_t code;

		if (!json_is_string(m))
			m = json_object_get(rp->j, "error");
		if (j_i64(rp->j, "code", &code) || !code || code > 99)
			code = 2;	/* unknown */
		rp->code = (int)code;
		snprintf(rp->msg, sizeof(rp->msg), "%s",
			 json_is_string(m) ? json_string_value(m) :
			 "error without a message");
	}
	rc = 0;
out:
	if (h) {	/* nothing in it may point at this frame */
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
		handle_put(e, h);
	}
	free(b.p);
	free(body);
	return rc;
}

/* The default mapping of an error reply to MV_E*. */
static int server_err(const struct reply *rp, struct mv_err *err)
{
	const char *m = rp->msg;
	int code;

	if (!strncmp(m, "etcdserver: ", 12))
		m += 12;
	switch (rp->code) {
	case G_INVALID:
		code = MV_EUSAGE;
		break;
	case G_UNAVAILABLE:
	case G_DEADLINE:
		code = MV_EAGAIN;
		break;
	case G_EXHAUSTED:
		code = MV_EIO;
		break;
	default:
		code = MV_ESERVER;
	}
	return mv_err_set(err, code, "etcd at %s: %s", rp->url, m);
}

static int bad_reply(const struct reply *rp, struct mv_err *err)
{
	return mv_err_set(err, MV_EPROTO, "etcd at %s: malformed reply",
			  rp->url);
}

/* ns + key (klen bytes) as base64 into a json string; NULL: no memory. */
static json_t *j_key(struct etcd *e, const char *key, size_t klen)
{
	char *raw = malloc(e->nslen + klen + 1), *s;
	json_t *j;

	if (!raw)
		return NULL;
	memcpy(raw, e->ns, e->nslen);
	memcpy(raw + e->nslen, key, klen);
	s = b64_enc(raw, e->nslen + klen);
	free(raw);
	j = s ? json_string(s) : NULL;
	free(s);
	return j;
}

static json_t *j_b64(const void *p, size_t n)
{
	char *s = b64_enc(p, n);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *j_int(int64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_string(s);
}

/* Set o[name] = v (stolen); -1 when v is NULL or out of memory. */
static int jset(json_t *o, const char *name, json_t *v)
{
	return v ? json_object_set_new(o, name, v) : -1;
}

/*
 * The range of keys starting with ns + prefix into o: "key", and
 * "range_end" (the prefix with its last byte raised, after dropping
 * trailing 0xff bytes; "\0", all keys after "key", when none is left).
 */
static int j_prefix(struct etcd *e, json_t *o, const char *prefix)
{
	size_t plen = strlen(prefix), n = e->nslen + plen;
	char *raw = malloc(n + 1);
	int rc = -1;

	if (!raw)
		return -1;
	memcpy(raw, e->ns, e->nslen);
	memcpy(raw + e->nslen, prefix, plen);
	if (!n)
		rc = jset(o, "key", j_b64("", 1)) ||
		     jset(o, "range_end", j_b64("", 1));
	else if (!jset(o, "key", j_b64(raw, n))) {
		while (n && (unsigned char)raw[n - 1] == 0xff)
			n--;
		if (n)
			raw[n - 1]++;
		rc = jset(o, "range_end", n ? j_b64(raw, n) : j_b64("", 1));
	}
	free(raw);
	return rc;
}

/* A kv decoded from a reply; key without the namespace. */
struct dkv {
	struct mv_meta_kv kv;
	char *rawkey, *val;	/* malloc'ed; rawkey with the namespace */
	size_t rawlen;
};

static void dkv_free(struct dkv *d)
{
	free(d->rawkey);
	free(d->val);
	d->rawkey = d->val = NULL;
}

/*
 * Decode a reply's mvccpb.KeyValue: 0, MV_EPROTO or MV_EINTERNAL, or 1
 * (nothing kept) when filter is not NULL and the key does not start with
 * its flen bytes.
 */
static int dkv_decode(struct etcd *e, json_t *o, struct dkv *d,
		      const char *filter, size_t flen)
{
	json_t *k = json_object_get(o, "key"), *v = json_object_get(o, "value");
	size_t n;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o) || !json_is_string(k) ||
	    (v && !json_is_string(v)))
		return MV_EPROTO;
	if (!(d->rawkey = b64_dec(json_string_value(k), &n)))
		return n ? MV_EINTERNAL : MV_EPROTO;
	d->rawlen = n;
	if (filter && (n < flen || memcmp(d->rawkey, filter, flen))) {
		dkv_free(d);
		return 1;
	}
	d->val = b64_dec(v ? json_string_value(v) : "", &n);
	if (!d->val) {
		dkv_free(d);
		return n ? MV_EINTERNAL : MV_EPROTO;
	}
	d->kv.vlen = n;
	d->kv.val = d->val;
	if (d->rawlen <= e->nslen || memcmp(d->rawkey, e->ns, e->nslen) ||
	    strlen(d->rawkey) != d->rawlen ||
	    j_i64(o, "create_revision", &d->kv.create_rev) ||
	    j_i64(o, "mod_revision", &d->kv.mod_rev) ||
	    j_i64(o, "version", &d->kv.version) ||
	    j_i64(o, "lease", &d->kv.lease)) {
		dkv_free(d);
		return MV_EPROTO;
	}
	d->kv.key = d->rawkey + e->nslen;
	return 0;
}

static int decode_err(int rc, const struct reply *rp, struct mv_err *err)
{
	if (rc == MV_EINTERNAL)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	return bad_reply(rp, err);
}

static int etcd_get(void *impl, const char *key,
		    int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		    struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object(), *kvs;
	struct reply rp;
	struct dkv d;
	int rc;

	if (!req || jset(req, "key", j_key(e, key, strlen(key)))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/kv/range", req, 1, &rp, err)))
		return rc;
	if (rp.code) {
		rc = server_err(&rp, err);
		goto out;
	}
	kvs = json_object_get(rp.j, "kvs");
	if (!kvs) {
		rc = hdr_rev(rp.j) < 0 ? bad_reply(&rp, err) : 1;
		goto out;
	}
	if (!json_is_array(kvs) || json_array_size(kvs) != 1) {
		rc = bad_reply(&rp, err);
		goto out;
	}
	if ((rc = dkv_decode(e, json_array_get(kvs, 0), &d, NULL, 0))) {
		rc = decode_err(rc, &rp, err);
		goto out;
	}
	if (strcmp(d.kv.key, key))
		rc = bad_reply(&rp, err);
	else
		rc = fn(arg, &d.kv);
	dkv_free(&d);
out:
	json_decref(rp.j);
	return rc;
}

/* Bytewise order of two keys, as etcd's. */
static int key_order(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

static int etcd_range(void *impl, const char *prefix,
		      int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		      int64_t *rev, struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *base = json_object(), *req, *kvs;
	size_t plen = strlen(prefix), lastlen = 0;
	char *last = NULL;	/* the last key seen, raw */
	int64_t snap = 0;
	struct reply rp;
	int rc = 0, more = 1;

	if (!base || j_prefix(e, base, prefix) ||
	    jset(base, "limit", j_int(PAGE_KEYS))) {
		json_decref(base);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	while (more && !rc) {
		size_t n;

		if (!(req = json_deep_copy(base))) {
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			break;
		}
		if (snap && jset(req, "revision", j_int(snap))) {
			json_decref(req);
			rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
			break;
		}
		if ((rc = call(e, "/v3/kv/range", req, 1, &rp, err)))
			break;
		kvs = json_object_get(rp.j, "kvs");
		more = j_true(rp.j, "more");
		n = json_array_size(kvs);
		if (rp.code)
			rc = server_err(&rp, err);
		else if ((kvs && !json_is_array(kvs)) || (more && !n) ||
			 hdr_rev(rp.j) <= 0)
			rc = bad_reply(&rp, err);
		if (!snap && !rc)
			snap = hdr_rev(rp.j);
		for (size_t i = 0; i < n && !rc; i++) {
			struct dkv d;

			rc = dkv_decode(e, json_array_get(kvs, i), &d, NULL, 0);
			if (rc) {
				rc = decode_err(rc, &rp, err);
				break;
			}
			/* In the range, in order, each once: or no end. */
			if (strncmp(d.kv.key, prefix, plen) ||
			    (last && key_order(last, lastlen, d.rawkey,
					       d.rawlen) >= 0)) {
				dkv_free(&d);
				rc = bad_reply(&rp, err);
				break;
			}
			free(last);
			last = d.rawkey;
			lastlen = d.rawlen;
			d.rawkey = NULL;
			rc = fn(arg, &d.kv);
			if (!rc && more && i + 1 == n &&
			    jset(base, "key", j_b64(last, lastlen + 1)))
				/* the next page starts after this key */
				rc = mv_err_set(err, MV_EINTERNAL,
						"out of memory");
			dkv_free(&d);
		}
		json_decref(rp.j);
	}
	json_decref(base);
	free(last);
	if (rev)
		*rev = snap;
	return rc;
}

static const char *const results[] = {
	"EQUAL", "NOT_EQUAL", "LESS", "GREATER",
};

/* The JSON of a txn request; NULL when out of memory. */
static json_t *txn_json(struct etcd *e, const struct mv_meta_req *req)
{
	json_t *t = json_object(), *cmps = json_array(), *ops = json_array();
	int bad = !t || !cmps || !ops;

	if (t)
		bad |= json_object_set_new(t, "compare", cmps) |
		       json_object_set_new(t, "success", ops);
	for (size_t i = 0; i < req->ncmp && !bad; i++) {
		const struct mv_meta_cmp *c = &req->cmps[i];
		json_t *o = json_object();

		bad |= json_array_append_new(cmps, o) ||
		       jset(o, "key", j_key(e, c->key, strlen(c->key)));
		if (bad)
			break;
		if (!c->val)	/* absent: created at revision 0 */
			bad |= jset(o, "target", json_string("CREATE")) ||
			       jset(o, "result", json_string("EQUAL")) ||
			       jset(o, "create_revision", j_int(0));
		else if (!c->vlen)	/* empty: below "\0", never unset */
			bad |= jset(o, "target", json_string("VALUE")) ||
			       jset(o, "result", json_string("LESS")) ||
			       jset(o, "value", j_b64("", 1));
		else
			bad |= jset(o, "target", json_string("VALUE")) ||
			       jset(o, "result", json_string("EQUAL")) ||
			       jset(o, "value", j_b64(c->val, c->vlen));
	}
	for (size_t i = 0; i < req->nrcmp && !bad; i++) {
		static const char *const tg[] = { "MOD", "CREATE", "VERSION" };
		static const char *const fld[] = { "mod_revision",
						   "create_revision",
						   "version" };
		const struct mv_meta_rcmp *c = &req->rcmps[i];
		json_t *o = json_object();

		bad |= json_array_append_new(cmps, o) ||
		       jset(o, "key", j_key(e, c->key, strlen(c->key))) ||
		       jset(o, "target", json_string(tg[c->target])) ||
		       jset(o, "result", json_string(results[c->result])) ||
		       jset(o, fld[c->target], j_int(c->rev));
	}
	for (size_t i = 0; i < req->nops && !bad; i++) {
		const struct mv_meta_op *op = &req->ops[i];
		int64_t lease = req->leases ? req->leases[i] : 0;
		json_t *w = json_object(), *o = json_object();

		bad |= json_array_append_new(ops, w) || !o;
		if (bad) {
			json_decref(o);
			break;
		}
		if (op->type == MV_META_PUT) {
			bad |= json_object_set_new(w, "request_put", o) ||
			       jset(o, "key", j_key(e, op->key,
						    strlen(op->key))) ||
			       jset(o, "value", j_b64(op->val, op->vlen));
			if (lease)
				bad |= jset(o, "lease", j_int(lease));
		} else {
			bad |= json_object_set_new(w, "request_delete_range",
						   o);
			if (op->type == MV_META_DEL)
				bad |= jset(o, "key", j_key(e, op->key,
							    strlen(op->key)));
			else
				bad |= j_prefix(e, o, op->key);
		}
	}
	if (bad) {
		json_decref(t);
		return NULL;
	}
	return t;
}

static int etcd_txn(void *impl, struct mv_meta_req *req, struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *t = txn_json(e, req);
	struct reply rp;
	int rc;

	if (!t)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	if ((rc = call(e, "/v3/kv/txn", t, 0, &rp, err)))
		return rc;
	if (rp.code == G_NOT_FOUND && strstr(rp.msg, "lease")) {
		int64_t id = 0;

		for (size_t i = 0; req->leases && i < req->nops && !id; i++)
			id = req->leases[i];
		rc = mv_err_set(err, MV_ESERVER, "lease %lld not found",
				(long long)id);
	} else if (rp.code) {
		rc = server_err(&rp, err);
	} else if ((req->rev = hdr_rev(rp.j)) <= 0) {
		req->rev = 0;
		rc = bad_reply(&rp, err);
	} else if (!j_true(rp.j, "succeeded")) {
		rc = MV_META_CMPFAIL;
	} else if (req->nops) {
		pthread_mutex_lock(&e->mu);
		e->txns++;
		pthread_mutex_unlock(&e->mu);
	}
	json_decref(rp.j);
	return rc;
}

/* A matching event kept until the watch hands it to fn. */
struct wev {
	enum mv_meta_optype type;
	struct dkv d;
};

/* The state of one watch stream, fed by its write callback. */
struct wstate {
	struct etcd *e;
	const char *url;
	const char *filter;	/* raw prefix (with ns) to keep; NULL: all */
	size_t flen;
	int64_t snap;		/* history to read up to here; 0: none */
	int64_t seen;		/* the highest revision of a response read */
	int64_t compact;	/* compact_revision of a cancel */
	int now;		/* from 0: seen starts at the current revision */
	int created, done, rc;
	struct buf line;
	struct wev *evs;
	size_t nev, cap;
	struct mv_err *err;
};

/* The watch stream kept open between calls (see the header). */
struct wkeep {
	pthread_mutex_t mu;	/* held by the call using it */
	CURLM *mh;		/* NULL: no stream open */
	CURL *h;
	char *body;		/* the request, which curl points at */
	char *prefix;		/* the caller's prefix */
	char *raw;		/* w.filter */
	int64_t pos;		/* the revision the next call continues at */
	struct wstate w;
	char cerr[CURL_ERROR_SIZE];
};

static int ws_fail(struct wstate *w, int code, const char *what)
{
	w->done = 1;
	w->rc = mv_err_set(w->err, code, "etcd at %s: watch: %s", w->url,
			   what);
	return w->rc;
}

/* One response line of the stream. */
static void ws_line(struct wstate *w, const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL), *r, *evs;
	int64_t rev;

	r = json_object_get(j, "result");
	if (json_is_object(json_object_get(j, "error")) ||
	    json_is_string(json_object_get(j, "error"))) {
		json_t *m = json_object_get(json_object_get(j, "error"),
					    "message");

		ws_fail(w, MV_ESERVER, json_is_string(m) ?
			json_string_value(m) : "error");
		goto out;
	}
	if (!json_is_object(r)) {
		ws_fail(w, MV_EPROTO, "malformed reply");
		goto out;
	}
	if (j_i64(r, "compact_revision", &rev)) {
		ws_fail(w, MV_EPROTO, "malformed reply");
		goto out;
	}
	if (rev > 0) {
		w->compact = rev;
		w->done = 1;
		w->rc = MV_META_COMPACTED;
		goto out;
	}
	if (j_true(r, "canceled")) {
		json_t *m = json_object_get(r, "cancel_reason");

		ws_fail(w, MV_ESERVER, json_is_string(m) ?
			json_string_value(m) : "canceled");
		goto out;
	}
	if (j_true(r, "created")) {
		w->created = 1;
		if (w->now && (rev = hdr_rev(r)) > 0)
			w->seen = rev;
	}
	evs = json_object_get(r, "events");
	if (evs && !json_is_array(evs)) {
		ws_fail(w, MV_EPROTO, "malformed reply");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(evs); i++) {
		json_t *ev = json_array_get(evs, i), *t;
		struct wev x = { .type = MV_META_PUT };
		int64_t rev;
		int rc = dkv_decode(w->e, json_object_get(ev, "kv"), &x.d,
				    w->filter, w->flen);

		if (rc == 1) {	/* another key: only its revision counts */
			if (j_i64(json_object_get(ev, "kv"), "mod_revision",
				  &rev)) {
				ws_fail(w, MV_EPROTO, "malformed event");
				goto out;
			}
			if (rev > w->seen)
				w->seen = rev;
			continue;
		}
		if (rc) {
			ws_fail(w, rc, rc == MV_EPROTO ? "malformed event" :
				"out of memory");
			goto out;
		}
		t = json_object_get(ev, "type");
		if (json_is_string(t) &&
		    !strcmp(json_string_value(t), "DELETE"))
			x.type = MV_META_DEL;
		else if (t && !(json_is_string(t) &&
				!strcmp(json_string_value(t), "PUT")) &&
			 !(json_is_integer(t) && json_integer_value(t) == 0)) {
			dkv_free(&x.d);
			ws_fail(w, MV_EPROTO, "malformed event");
			goto out;
		}
		if (x.d.kv.mod_rev > w->seen)
			w->seen = x.d.kv.mod_rev;
		if (x.type == MV_META_DEL) {
			x.d.kv.val = "";
			x.d.kv.vlen = 0;
			x.d.kv.create_rev = x.d.kv.version = 0;
			x.d.kv.lease = 0;
		}
		if (w->nev == w->cap) {
			size_t c = w->cap ? 2 * w->cap : 16;
			struct wev *v = realloc(w->evs, c * sizeof(*v));

			if (!v) {
				dkv_free(&x.d);
				ws_fail(w, MV_EINTERNAL, "out of memory");
				goto out;
			}
			w->evs = v;
			w->cap = c;
		}
		w->evs[w->nev++] = x;
	}
	if (w->nev && w->seen >= w->snap)
		w->done = 1;
out:
	json_decref(j);
}

/*
 * The whole lines buffered, until one makes the call done; once events
 * made it done, the other whole lines already here too (up to
 * WATCH_MORE events), so that a follower behind gets the revisions that
 * waited in the stream in one call, not one a call.
 */
#define WATCH_MORE 4096
static void ws_lines(struct wstate *w)
{
	size_t off = 0;
	char *nl;

	/* The lines walked in place; what follows the last moved once. */
	while ((!w->done || (!w->rc && w->nev < WATCH_MORE)) &&
	       off < w->line.len &&
	       (nl = memchr(w->line.p + off, '\n', w->line.len - off))) {
		size_t l = (size_t)(nl - (w->line.p + off));

		if (l)
			ws_line(w, w->line.p + off, l);
		off += l + 1;
	}
	if (off) {
		memmove(w->line.p, w->line.p + off, w->line.len - off + 1);
		w->line.len -= off;
	}
}

static size_t ws_body(char *p, size_t size, size_t n, void *arg)
{
	struct wstate *w = arg;
	size_t len = size * n;

	/* After done, lines wait for the next call on a kept stream. */
	if (buf_add(&w->line, p, len)) {
		if (!w->done)
			ws_fail(w, MV_EPROTO, "reply too large or out of "
				"memory");
		return len;
	}
	ws_lines(w);
	return len;
}

/* A watch's new connection: counted (mv_meta_stats' watch_connects). */
static int ws_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct etcd *e = arg;

	(void)fd;
	if (purpose == CURLSOCKTYPE_IPCXN) {
		pthread_mutex_lock(&e->mu);
		e->wconns++;
		pthread_mutex_unlock(&e->mu);
	}
	return CURL_SOCKOPT_OK;
}

/*
 * Read the stream of h (added to mh) until w->done, its end (*running 0,
 * *cc its outcome) or, once the history up to w->snap is read, until
 * timeout_ms (<0: forever) from t0 has passed.
 */
static void ws_pump(CURLM *mh, struct wstate *w, int64_t t0, int timeout_ms,
		    int *running, CURLcode *cc)
{
	while (!w->done) {
		int64_t now, left;
		CURLMsg *msg;
		int q;

		curl_multi_perform(mh, running);
		if ((msg = curl_multi_info_read(mh, &q)) &&
		    msg->msg == CURLMSG_DONE) {
			*cc = msg->data.result;
			*running = 0;
		}
		if (!*running || w->done)
			break;
		now = mv_mono_ms();
		if (w->seen < w->snap || !w->created)
			left = t0 + (timeout_ms > REQUEST_MS ? timeout_ms :
				     REQUEST_MS) - now;
		else if (timeout_ms < 0)
			left = 1000;
		else
			left = t0 + timeout_ms - now;
		if (left <= 0) {
			if (w->seen < w->snap || !w->created)
				ws_fail(w, MV_EAGAIN, "no reply in time");
			break;
		}
		curl_multi_poll(mh, NULL, 0, left < 1000 ? (int)left : 1000,
				NULL);
	}
}

/*
 * Stream the watch of req (consumed) until w->done or, once the history
 * up to w->snap is read, until timeout_ms (<0: forever) has passed.  With
 * k, a stream that is still open at the end is kept in k.  Returns 0
 * (w->rc holds the outcome) or MV_E*.
 */
static int ws_run(struct etcd *e, json_t *req, struct wstate *w,
		  int timeout_ms, struct wkeep *k, struct mv_err *err)
{
	char *body = json_dumps(req, JSON_COMPACT);
	char url[2048], lcerr[CURL_ERROR_SIZE], *cerr = k ? k->cerr : lcerr;
	int64_t t0 = mv_mono_ms();
	CURLM *mh = curl_multi_init();
	CURL *h = curl_easy_init();
	CURLcode cc = CURLE_OK;
	size_t first;
	int rc = 0, running = 0;

	json_decref(req);
	if (!body || !mh || !h) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);	/* a host gone */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ws_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, ws_sockopt);
	curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, e);
	pthread_mutex_lock(&e->mu);
	first = e->cur;
	pthread_mutex_unlock(&e->mu);
	for (size_t i = 0; i < e->nurls; i++) {
		size_t u = (first + i) % e->nurls;

		running = 1;
		snprintf(url, sizeof(url), "%s/v3/watch", e->urls[u]);
		w->url = e->urls[u];
		cerr[0] = '\0';
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_multi_add_handle(mh, h);
		ws_pump(mh, w, t0, timeout_ms, &running, &cc);
		if (w->done || running || w->created) {
			if (!w->done && !running)
				ws_fail(w, MV_EAGAIN, cerr[0] ? cerr :
					"the stream ended");
			pthread_mutex_lock(&e->mu);
			e->cur = u;
			pthread_mutex_unlock(&e->mu);
			if (k && running && w->created && !w->rc) {
				k->mh = mh;	/* kept, still added */
				k->h = h;
				k->body = body;
				return 0;
			}
			curl_multi_remove_handle(mh, h);
			goto out;
		}
		curl_multi_remove_handle(mh, h);
		if (cc == CURLE_OK)	/* ended before it was created */
			break;
	}
	if (cc == CURLE_OK)
		rc = mv_err_set(err, MV_EPROTO, "etcd at %s: watch: malformed "
				"reply", w->url);
	else
		rc = mv_err_set(err, MV_EAGAIN, "etcd at %s unreachable: %s",
				e->endpoints,
				cerr[0] ? cerr : curl_easy_strerror(cc));
out:
	curl_easy_cleanup(h);
	curl_multi_cleanup(mh);
	free(body);
	return rc;
}

static void ws_free(struct wstate *w)
{
	for (size_t i = 0; i < w->nev; i++)
		dkv_free(&w->evs[i].d);
	free(w->evs);
	free(w->line.p);
}

static void note_compact(struct etcd *e, int64_t rev)
{
	pthread_mutex_lock(&e->mu);
	if (rev > e->compact_rev)
		e->compact_rev = rev;
	pthread_mutex_unlock(&e->mu);
}

/* Learn the compaction revision: a watch from 1 of one key is refused. */
static void learn_compact(struct etcd *e)
{
	struct wstate w = { .e = e };
	json_t *req = json_pack("{s:{s:s,s:s}}", "create_request", "key",
				"AA==", "start_revision", "1");

	if (req && !ws_run(e, req, &w, 1000, NULL, NULL) && w.compact)
		note_compact(e, w.compact);
	ws_free(&w);
}

/*
 * The current revision S, checking that the history from `from` is still
 * there.  Returns 0 (*cur = S, or 0 when from is past S + 1),
 * MV_META_COMPACTED or MV_E*.  Without a from (0 or 1) no old revision is
 * asked for, so an out-of-range answer is an error like any other.
 */
static int watch_check(struct etcd *e, int64_t from, int64_t *cur,
		       struct mv_err *err)
{
	json_t *req = json_pack("{s:s,s:b}", "key", "AA==", "count_only", 1);
	struct reply rp;
	int rc;

	*cur = 0;
	if (!req || (from > 1 && jset(req, "revision", j_int(from - 1)))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/kv/range", req, 1, &rp, err)))
		return rc;
	if (from > 1 && rp.code == G_OUT_OF_RANGE &&
	    strstr(rp.msg, "compacted"))
		rc = MV_META_COMPACTED;
	else if (from > 1 && rp.code == G_OUT_OF_RANGE &&
		 strstr(rp.msg, "future"))
		rc = 0;
	else if (rp.code)
		rc = server_err(&rp, err);
	else if ((*cur = hdr_rev(rp.j)) <= 0)
		rc = bad_reply(&rp, err);
	json_decref(rp.j);
	return rc;
}

/* The events of w handed to the caller: gone; what is buffered stays. */
static void ws_clear(struct wstate *w)
{
	for (size_t i = 0; i < w->nev; i++)
		dkv_free(&w->evs[i].d);
	w->nev = 0;
	w->done = 0;
	w->rc = 0;
}

/* Close k's stream, if any. */
static void wk_close(struct wkeep *k)
{
	if (k->mh) {
		curl_multi_remove_handle(k->mh, k->h);
		curl_easy_cleanup(k->h);
		curl_multi_cleanup(k->mh);
	}
	ws_free(&k->w);
	free(k->body);
	free(k->prefix);
	free(k->raw);
	k->mh = NULL;
	k->h = NULL;
	k->body = k->prefix = k->raw = NULL;
	memset(&k->w, 0, sizeof(k->w));
}

/*
 * Go on reading k's stream for at most timeout_ms: 0 (k->w.rc holds the
 * outcome, and k->w.done says whether events came), or 1 when the stream
 * ended with nothing new: closed, open another.
 */
static int wk_resume(struct wkeep *k, int timeout_ms, struct mv_err *err)
{
	struct wstate *w = &k->w;
	CURLcode cc = CURLE_OK;
	int running = 1;

	w->err = err;
	ws_lines(w);		/* what came after the last call's events */
	if (!w->done)
		ws_pump(k->mh, w, mv_mono_ms(), timeout_ms, &running, &cc);
	if (!running && !w->done && !w->rc) {
		wk_close(k);
		return 1;
	}
	if (!running || w->rc) {
		/* Ended, or refused: what came is handed out, then closed. */
		curl_multi_remove_handle(k->mh, k->h);
		curl_easy_cleanup(k->h);
		curl_multi_cleanup(k->mh);
		k->mh = NULL;
		k->h = NULL;
	}
	return 0;
}

static int etcd_watch(void *impl, const char *prefix, int64_t from,
		      int timeout_ms,
		      int (*fn)(void *, const struct mv_meta_event *),
		      void *arg, int64_t *next, struct mv_err *err)
{
	struct etcd *e = impl;
	struct wkeep *k = e->wk;
	struct wstate lw = { 0 }, *w = &lw;
	json_t *req = NULL, *cr = NULL;
	size_t plen = strlen(prefix);
	char *raw = NULL;
	int64_t cur = 0, nx;
	int rc = 0;

	if (k && pthread_mutex_trylock(&k->mu))
		k = NULL;	/* another thread's: a stream of this call's */
	if (k && k->mh && from && from == k->pos &&
	    !strcmp(prefix, k->prefix)) {
		w = &k->w;
		rc = wk_resume(k, timeout_ms, err);
		if (rc == 0)
			goto got;
		rc = 0;		/* broken: another one */
	}
	if (k) {
		wk_close(k);
		w = &k->w;
	}
	w->e = e;
	w->err = err;
	req = json_object();
	cr = json_object();
	raw = malloc(e->nslen + plen + 1);
	if (!req || !cr || !raw || json_object_set(req, "create_request", cr)) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	if (from && (rc = watch_check(e, from, &cur, err))) {
		if (rc == MV_META_COMPACTED)
			learn_compact(e);
		goto out;
	}
	memcpy(raw, e->ns, e->nslen);
	memcpy(raw + e->nslen, prefix, plen);
	if (from && from <= cur && cur > 1) {
		/* History: the whole keyspace, filtered here. */
		w->snap = cur;
		rc = jset(cr, "key", j_b64("", 1)) ||
		     jset(cr, "range_end", j_b64("", 1));
	} else {
		rc = j_prefix(e, cr, prefix);
	}
	w->filter = raw;	/* a prefix of 0xff bytes has a wider range */
	w->flen = e->nslen + plen;
	w->now = !from;
	if (rc || (from && jset(cr, "start_revision", j_int(from))) ||
	    (k && !(k->prefix = strdup(prefix)))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	rc = ws_run(e, json_incref(req), w, timeout_ms, k, err);
	if (k && k->mh) {
		k->raw = raw;	/* w->filter */
		raw = NULL;
	}
got:
	if (!rc)
		rc = w->rc;
	if (rc == MV_META_COMPACTED)
		note_compact(e, w->compact);
	if (rc) {
		if (k)
			wk_close(k);
		goto out;
	}
	if (!from)
		from = w->seen + 1;	/* the created response's revision */
	nx = w->seen + 1 > from ? w->seen + 1 : from;
	if (next)
		*next = nx;
	if (k && k->mh)
		k->pos = nx;
	for (size_t i = 0; i < w->nev && !rc; i++) {
		struct mv_meta_event ev = { w->evs[i].type, w->evs[i].d.kv };

		rc = fn(arg, &ev);
	}
out:
	if (k) {
		ws_clear(w);
		if (!k->mh)
			wk_close(k);
		pthread_mutex_unlock(&k->mu);
	} else {
		ws_free(w);
	}
	json_decref(cr);
	json_decref(req);
	free(raw);
	return rc;
}

static int etcd_compact(void *impl, int64_t rev, struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object();
	struct reply rp;
	int rc;

	if (!req || jset(req, "revision", j_int(rev))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/kv/compaction", req, 1, &rp, err)))
		return rc;
	if (rp.code == G_OUT_OF_RANGE && strstr(rp.msg, "future"))
		rc = mv_err_set(err, MV_EUSAGE, "cannot compact to revision "
				"%lld, past the current one", (long long)rev);
	else if (rp.code == G_OUT_OF_RANGE && strstr(rp.msg, "compacted"))
		rc = 0;		/* already compacted: fine */
	else if (rp.code)
		rc = server_err(&rp, err);
	else if (hdr_rev(rp.j) <= 0)
		rc = bad_reply(&rp, err);
	else
		note_compact(e, rev);
	json_decref(rp.j);
	return rc;
}

static int lease_missing(int64_t id, struct mv_err *err)
{
	return mv_err_set(err, MV_ESERVER, "lease %lld not found",
			  (long long)id);
}

static int etcd_lease_grant(void *impl, int64_t ttl_ms, int64_t *id,
			    struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object();
	struct reply rp;
	int rc;

	if (!req || jset(req, "TTL", j_int((ttl_ms + 999) / 1000))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/lease/grant", req, 0, &rp, err)))
		return rc;
	if (rp.code)
		rc = server_err(&rp, err);
	else if (j_i64(rp.j, "ID", id) || *id <= 0)
		rc = bad_reply(&rp, err);
	json_decref(rp.j);
	if (rc)
		*id = 0;
	return rc;
}

static int etcd_lease_keepalive(void *impl, int64_t id, struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object(), *r;
	struct reply rp;
	int64_t ttl;
	int rc;

	if (!req || jset(req, "ID", j_int(id))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/lease/keepalive", req, 1, &rp, err)))
		return rc;
	r = json_object_get(rp.j, "result");
	if (rp.code)
		rc = server_err(&rp, err);
	else if (!json_is_object(r) || j_i64(r, "TTL", &ttl))
		rc = bad_reply(&rp, err);
	else if (ttl <= 0)
		rc = lease_missing(id, err);
	json_decref(rp.j);
	return rc;
}

static int etcd_lease_revoke(void *impl, int64_t id, struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object();
	struct reply rp;
	int rc;

	if (!req || jset(req, "ID", j_int(id))) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/lease/revoke", req, 0, &rp, err)))
		return rc;
	if (rp.code == G_NOT_FOUND)
		rc = lease_missing(id, err);
	else if (rp.code)
		rc = server_err(&rp, err);
	else if (hdr_rev(rp.j) <= 0)
		rc = bad_reply(&rp, err);
	json_decref(rp.j);
	return rc;
}

static int etcd_revision(void *impl, int64_t *rev, struct mv_err *err)
{
	int rc = watch_check(impl, 0, rev, err);

	if (rc)
		*rev = 0;
	return rc;
}

static int etcd_stats(void *impl, struct mv_meta_stats *st,
		      struct mv_err *err)
{
	struct etcd *e = impl;
	json_t *req = json_object();
	struct reply rp;
	int64_t n;
	int rc;

	if (!req || j_prefix(e, req, "") ||
	    jset(req, "count_only", json_true())) {
		json_decref(req);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	if ((rc = call(e, "/v3/kv/range", req, 1, &rp, err)))
		return rc;
	if (rp.code)
		rc = server_err(&rp, err);
	else if ((st->revision = hdr_rev(rp.j)) <= 0 ||
		 j_i64(rp.j, "count", &n) || n < 0) {
		st->revision = 0;
		rc = bad_reply(&rp, err);
	} else {
		st->keys = (uint64_t)n;
	}
	json_decref(rp.j);
	pthread_mutex_lock(&e->mu);
	st->txns = e->txns;
	st->compact_revision = e->compact_rev;
	st->watch_connects = e->wconns;
	pthread_mutex_unlock(&e->mu);
	return rc;
}

static void etcd_close(void *impl)
{
	struct etcd *e = impl;

	if (!e)
		return;
	if (e->wk) {
		wk_close(e->wk);
		pthread_mutex_destroy(&e->wk->mu);
		free(e->wk);
	}
	for (size_t i = 0; i < e->nidle; i++)
		curl_easy_cleanup(e->idle[i]);
	for (size_t i = 0; i < e->nurls; i++)
		free(e->urls[i]);
	free(e->urls);
	free(e->endpoints);
	free(e->ns);
	curl_slist_free_all(e->hdrs);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

static const struct mv_meta_ops etcd_ops = {
	.name = "etcd",
	.get = etcd_get,
	.range = etcd_range,
	.txn = etcd_txn,
	.watch = etcd_watch,
	.compact = etcd_compact,
	.lease_grant = etcd_lease_grant,
	.lease_keepalive = etcd_lease_keepalive,
	.lease_revoke = etcd_lease_revoke,
	.stats = etcd_stats,
	.close = etcd_close,
	.revision = etcd_revision,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* Split endpoints into e->urls: 0 or MV_E*. */
static int parse_endpoints(struct etcd *e, const char *endpoints,
			   struct mv_err *err)
{
	const char *p = endpoints;

	while (*p) {
		size_t n = strcspn(p, ",");
		const char *s = p;
		char **v;

		p += n + (p[n] == ',');
		while (n && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n && (s[n - 1] == ' ' || s[n - 1] == '/'))
			n--;
		if (!n)
			continue;
		if ((strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) ||
		    n > 1000)
			return mv_err_set(err, MV_EUSAGE, "etcd endpoint "
					  "'%.*s' is not an http:// or "
					  "https:// URL", (int)(n > 200 ? 200 :
								n), s);
		if (!(v = realloc(e->urls, (e->nurls + 1) * sizeof(*v))))
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		e->urls = v;
		if (!(v[e->nurls] = strndup(s, n)))
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		e->nurls++;
	}
	if (!e->nurls)
		return mv_err_set(err, MV_EUSAGE, "no etcd endpoint in '%s'",
				  endpoints);
	return 0;
}

struct mv_meta *mv_meta_open_etcd_ns(const char *endpoints, const char *ns,
				     struct mv_err *err)
{
	struct etcd *e;
	struct mv_meta_stats st;

	pthread_once(&curl_once, curl_init);
	if (!curl_ok) {
		mv_err_set(err, MV_EINTERNAL, "libcurl did not initialize");
		return NULL;
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&e->mu, NULL);
	if ((e->wk = calloc(1, sizeof(*e->wk))))
		pthread_mutex_init(&e->wk->mu, NULL);
	e->endpoints = strdup(endpoints ? endpoints : "");
	e->ns = strdup(ns ? ns : "");
	e->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (e->hdrs)	/* no "Expect: 100-continue" wait for large txns */
		e->hdrs = curl_slist_append(e->hdrs, "Expect:");
	if (!e->wk || !e->endpoints || !e->ns || !e->hdrs) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto fail;
	}
	e->nslen = strlen(e->ns);
	if (parse_endpoints(e, e->endpoints, err))
		goto fail;
	memset(&st, 0, sizeof(st));
	if (etcd_stats(e, &st, err))	/* somebody answers */
		goto fail;
	return mv_meta_new(&etcd_ops, e, err);
fail:
	etcd_close(e);
	return NULL;
}

struct mv_meta *mv_meta_open_etcd(const char *endpoints, struct mv_err *err)
{
	return mv_meta_open_etcd_ns(endpoints, "", err);
}

/*
 * store_s3.h - the request signing of store_s3.c, private to it and to its
 * unit test (tests/unit/test_s3.c), which checks it against AWS's published
 * Signature V4 examples.  Everything else uses store.h.
 */
#ifndef MV_STORE_S3_H
#define MV_STORE_S3_H

#include <curl/curl.h>

/*
 * Set up h (fresh or reset) for one request signed by libcurl's SigV4:
 * method "GET", "HEAD", "PUT", "POST" or "DELETE" on url, whose path must
 * be URI-encoded and whose query sorted and encoded as SigV4 wants it (a
 * bare key as "uploads="); sigv4 is "aws:amz:REGION:SERVICE", userpwd
 * "ACCESS:SECRET".  payload_sha256 (64 hex digits, or NULL for none) goes
 * out as x-amz-content-sha256; hdrs (NULL-terminated, may be NULL) are
 * more "Name: value" headers.  libcurl signs every header set here.  A
 * body (PUT, POST) is the caller's: CURLOPT_READFUNCTION and
 * CURLOPT_INFILESIZE_LARGE.  *list gets the header list to free with
 * curl_slist_free_all after the transfer.  Returns 0, or -1 when out of
 * memory.
 */
int mv_s3_prepare(CURL *h, const char *method, const char *url,
		  const char *sigv4, const char *userpwd,
		  const char *payload_sha256, const char *const *hdrs,
		  struct curl_slist **list);

#endif
